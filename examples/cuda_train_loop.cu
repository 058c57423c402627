/* SPDX-License-Identifier: Apache-2.0 */
/* The training loop of sim_train_loop.c on a real GPU: each step copies a batch to the device,
 * runs kernels on two streams, copies the loss back and waits for it. Built when nvcc is found.
 *
 *   usage: cuda_train_loop [LOGDIR] [STEPS] [--untraced]
 *
 * With --untraced no session runs, which gives the baseline for tracing overhead. The last line
 * of output is JSON with the mean step time, so tests/gpu can compare the two runs. */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <cuda_runtime.h>
#include <tfprof/tfprof.h>

#define CHECK(x)                                                                                  \
	do {                                                                                      \
		cudaError_t e_ = (x);                                                             \
		if (e_ != cudaSuccess) {                                                          \
			fprintf(stderr, "cuda_train_loop: %s: %s\n", #x, cudaGetErrorString(e_)); \
			exit(2);                                                                  \
		}                                                                                 \
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

__global__ void reduce_sum(const float *x, float *out, int n)
{
	__shared__ float s[256];
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	s[threadIdx.x] = i < n ? x[i] : 0.f;
	__syncthreads();
	for (int k = blockDim.x / 2; k > 0; k /= 2) {
		if (threadIdx.x < k)
			s[threadIdx.x] += s[threadIdx.x + k];
		__syncthreads();
	}
	if (threadIdx.x == 0)
		atomicAdd(out, s[0]);
}

__global__ void adam_update(float *w, const float *g, float lr, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		w[i] -= lr * g[i];
}

static double now_s(void)
{
	timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	const char *logdir = argc > 1 ? argv[1] : "logdir";
	int steps = argc > 2 ? atoi(argv[2]) : 10;
	bool traced = !(argc > 3 && strcmp(argv[3], "--untraced") == 0);
	float *h_in, *d_x, *d_y, *d_w, *d_loss, h_loss;
	cudaStream_t compute, copy;
	CHECK(cudaMallocHost(&h_in, N * sizeof(float)));
	for (int i = 0; i < N; i++)
		h_in[i] = (float)(i % 13) - 6.f;
	/* Weights and input once; the activations are allocated every step (stream-ordered) and freed
	 * at its end, as a framework's allocator does, so the profile's memory timeline has a step
	 * pattern (tests/gpu checks one allocation and one release per step). */
	CHECK(cudaMalloc(&d_x, N * sizeof(float)));
	CHECK(cudaMalloc(&d_w, N * sizeof(float)));
	CHECK(cudaMalloc(&d_loss, sizeof(float)));
	CHECK(cudaStreamCreate(&compute));
	CHECK(cudaStreamCreate(&copy));
	CHECK(cudaDeviceSynchronize());

	if (traced) {
		int rc = tfprof_start(logdir, NULL);
		if (rc) {
			fprintf(stderr, "cuda_train_loop: tfprof_start: %s\n", tfprof_strerror(rc));
			return 1;
		}
	}
	dim3 block(256), grid((N + 255) / 256);
	double t0 = now_s();
	for (int step = 0; step < steps; step++) {
		TFPROF_SCOPE("Train", TFPROF_I64("step_num", step));
		tfprof_scope in = tfprof_scope_begin("input", NULL, 0);
		CHECK(cudaMemcpyAsync(d_x, h_in, N * sizeof(float), cudaMemcpyHostToDevice, copy));
		CHECK(cudaMemsetAsync(d_loss, 0, sizeof(float), copy));
		CHECK(cudaStreamSynchronize(copy));
		tfprof_scope_end(in);
		tfprof_scope fw = tfprof_scope_begin("forward", NULL, 0);
		CHECK(cudaMallocAsync((void **)&d_y, N * sizeof(float), compute));
		scale_add<<<grid, block, 0, compute>>>(d_y, d_x, 0.5f, N);
		relu<<<grid, block, 0, compute>>>(d_y, N);
		reduce_sum<<<grid, block, 0, compute>>>(d_y, d_loss, N);
		tfprof_scope_end(fw);
		tfprof_scope bw = tfprof_scope_begin("backward", NULL, 0);
		scale_add<<<grid, block, 0, compute>>>(d_w, d_y, 0.1f, N);
		adam_update<<<grid, block, 0, compute>>>(d_w, d_y, 1e-3f, N);
		CHECK(cudaFreeAsync(d_y, compute));
		tfprof_scope_end(bw);
		CHECK(cudaStreamSynchronize(compute));
		CHECK(cudaMemcpy(&h_loss, d_loss, sizeof(float), cudaMemcpyDeviceToHost));
	}
	double per_step_us = (now_s() - t0) / steps * 1e6;
	if (traced) {
		int rc = tfprof_stop();
		if (rc && rc != TFPROF_ERR_FALLBACK) {
			fprintf(stderr, "cuda_train_loop: tfprof_stop: %s\n", tfprof_strerror(rc));
			return 1;
		}
		printf("%s\n", tfprof_last_output());
	}
	printf("{\"traced\":%s,\"steps\":%d,\"step_us\":%.2f,\"loss\":%g}\n", traced ? "true" : "false",
	       steps, per_step_us, (double)h_loss);
	return 0;
}
