/* SPDX-License-Identifier: Apache-2.0 */
/* An unmodified CUDA program for tfprof-start on a real GPU: it never links tfprof and marks its
 * training steps only with NVTX ranges ("train_step N"), as PyTorch or Megatron code does. Under
 * tfprof-start its kernels, copies and memsets must reach the profile through the CUDA injection
 * (CUDA_INJECTION64_PATH -> InitializeInjection) and its ranges through the NVTX tool, which
 * also gives the step ranges their step_num. The work per step is cuda_train_loop's: an H2D copy
 * and a memset, five kernels, a D2H copy.
 *
 *   usage: nvtx_cuda_loop [STEPS] */
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>

#define CHECK(x)                                                                                 \
	do {                                                                                     \
		cudaError_t e_ = (x);                                                            \
		if (e_ != cudaSuccess) {                                                         \
			fprintf(stderr, "nvtx_cuda_loop: %s: %s\n", #x, cudaGetErrorString(e_)); \
			exit(2);                                                                 \
		}                                                                                \
	} while (0)

static const int N = 1 << 20;

__global__ void scale_add(float *y, const float *x, float a, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] = a * x[i] + y[i];
}

__global__ void relu(float *x, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n && x[i] < 0.f)
		x[i] = 0.f;
}

__global__ void square_sum(const float *x, float *out, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		atomicAdd(out, x[i] * x[i]);
}

__global__ void sgd_update(float *w, const float *g, float lr, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		w[i] -= lr * g[i];
}

int main(int argc, char **argv)
{
	int steps = argc > 1 ? atoi(argv[1]) : 10;
	float *h_in, *d_x, *d_y, *d_w, *d_loss, h_loss = 0;
	cudaStream_t compute, copy;
	CHECK(cudaMallocHost(&h_in, N * sizeof(float)));
	for (int i = 0; i < N; i++)
		h_in[i] = (float)(i % 7) - 3.f;
	CHECK(cudaMalloc(&d_x, N * sizeof(float)));
	CHECK(cudaMalloc(&d_y, N * sizeof(float)));
	CHECK(cudaMalloc(&d_w, N * sizeof(float)));
	CHECK(cudaMalloc(&d_loss, sizeof(float)));
	CHECK(cudaStreamCreate(&compute));
	CHECK(cudaStreamCreate(&copy));
	CHECK(cudaDeviceSynchronize());
	dim3 block(256), grid((N + 255) / 256);
	for (int step = 0; step < steps; step++) {
		char name[32];
		snprintf(name, sizeof name, "train_step %d", step);
		nvtxRangePushA(name);
		nvtxRangePushA("input");
		CHECK(cudaMemcpyAsync(d_x, h_in, N * sizeof(float), cudaMemcpyHostToDevice, copy));
		CHECK(cudaMemsetAsync(d_loss, 0, sizeof(float), copy));
		CHECK(cudaStreamSynchronize(copy));
		nvtxRangePop();
		nvtxRangePushA("forward_backward");
		scale_add<<<grid, block, 0, compute>>>(d_y, d_x, 0.5f, N);
		relu<<<grid, block, 0, compute>>>(d_y, N);
		square_sum<<<grid, block, 0, compute>>>(d_y, d_loss, N);
		scale_add<<<grid, block, 0, compute>>>(d_w, d_y, 0.1f, N);
		sgd_update<<<grid, block, 0, compute>>>(d_w, d_y, 1e-3f, N);
		nvtxRangePop();
		CHECK(cudaStreamSynchronize(compute));
		CHECK(cudaMemcpy(&h_loss, d_loss, sizeof(float), cudaMemcpyDeviceToHost));
		nvtxRangePop();
	}
	printf("{\"steps\":%d,\"loss\":%g}\n", steps, (double)h_loss);
	return 0;
}
