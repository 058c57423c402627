/* SPDX-License-Identifier: Apache-2.0 */
/* The training loop of train_loop.c with GPU work, run on tfprof's CUPTI simulator so that a
 * machine without a GPU produces a profile with /device:GPU planes: each step copies a batch to
 * the device, runs kernels on two streams and copies the loss back. It allocates like a training
 * loop: weights and a pinned staging buffer once, activations (stream-ordered, cudaMallocAsync)
 * and gradients every step, freed before the step ends, and a 1 MiB loss record per step that
 * stays on the GPU (the slow growth a logging bug makes), so the memory profile has a peak of
 * 384 MiB + 1 MiB per earlier step in each step's backward pass.
 *
 *   usage: sim_train_loop [LOGDIR] [STEPS]      (defaults: ./logdir, 10)
 *          sim_train_loop --serve ADDR STEPS     no session: a profiler server on ADDR
 *                                                (tfprof_server_start) answers captures
 *          sim_train_loop --bare STEPS           no session, no server (for tfprof-start)
 *
 * The simulator is a stand-in for libcupti; tfprof loads it because TFPROF_CUPTI_LIBRARY names
 * it (set here from the library's own path). On a machine with a GPU, run cuda_train_loop. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tfprof/tfprof.h>

#include "cupti_sim.h"

static void busy_us(long us)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static const struct tfsim_dim3 grid = { 1024, 1, 1 }, block = { 256, 1, 1 };

/* The matrix multiply holds a tile in 48 KiB of shared memory and needs 128 registers per thread,
 * as such kernels do: it can keep only a quarter of an SM's warps busy (its occupancy, 25%),
 * where the element-wise kernels (32 registers, no shared memory) keep all of them. */
static void gemm(uint32_t stream, uint32_t duration_ns)
{
	struct tfsim_launch l = { .stream = stream, .name = "_Z9gemm_tileILi128EEvPKfS1_Pfiii", .grid = grid,
				  .block = block, .duration_ns = duration_ns, .registers_per_thread = 128,
				  .static_shared_bytes = 48 * 1024 };
	tfsim_launch_kernel_ex(&l);
}

#define MiB (1ull << 20)

static void train_step(int step, uint32_t compute, uint32_t copy)
{
	TFPROF_SCOPE("Train", TFPROF_I64("step_num", step));
	uint64_t activations, gradients;
	{
		TFPROF_SCOPE("input", TFPROF_I64("batch", 256));
		busy_us(100);
		tfsim_memcpy(copy, TFSIM_COPY_HTOD, 32u << 20, 0, 1);
	}
	{
		TFPROF_SCOPE("forward");
		activations = tfsim_malloc_async(compute, 256 * MiB);
		gemm(compute, 900000);
		tfsim_launch_kernel(compute, "_Z4reluPfi", grid, block, 60000);
		tfsim_launch_kernel(copy, "_Z13softmax_crossPKfPKiPfi", grid, block, 120000);
		busy_us(1000);
	}
	{
		TFPROF_SCOPE("backward");
		gradients = tfsim_malloc(tfsim_stream_device(compute), 64 * MiB);
		gemm(compute, 1700000);
		tfsim_launch_kernel(compute, "_Z9relu_gradPKfPfi", grid, block, 70000);
		tfsim_memset(compute, 4u << 20, 0, 0);
		busy_us(1900);
		tfsim_free_async(compute, activations);
	}
	{
		TFPROF_SCOPE("optimizer", TFPROF_STR("algo", "adam"));
		tfsim_launch_kernel(compute, "_Z11adam_updatePfPKffffi", grid, block, 200000);
		tfsim_free(gradients);
		tfsim_malloc(tfsim_stream_device(compute), 1 * MiB); /* the loss record, kept on the GPU and never freed */
		tfsim_memcpy(copy, TFSIM_COPY_DTOH, 4, 0, 1);
		tfsim_stream_synchronize(copy);
		busy_us(300);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 && argv[1][0] == '-' ? argv[1] : NULL;
	if (mode && strcmp(mode, "--serve") && strcmp(mode, "--bare")) {
		fprintf(stderr, "usage: sim_train_loop [LOGDIR] [STEPS] | --serve ADDR STEPS | --bare STEPS\n");
		return 2;
	}
	bool serve = mode && !strcmp(mode, "--serve");
	const char *logdir = !mode && argc > 1 ? argv[1] : "logdir";
	const char *addr = serve && argc > 2 ? argv[2] : "0";
	int steps = mode ? (argc > 2 + serve ? atoi(argv[2 + serve]) : 10) : argc > 2 ? atoi(argv[2]) : 10;
	Dl_info info;
	if (!dladdr((void *)tfsim_reset, &info) || !info.dli_fname) {
		fprintf(stderr, "sim_train_loop: cannot find the CUPTI simulator's path\n");
		return 1;
	}
	setenv("TFPROF_CUPTI_LIBRARY", info.dli_fname, 1);
	struct tfsim_device_desc gpu = { .name = "Simulated H100" };
	int dev = tfsim_device_add(&gpu);
	uint32_t compute = tfsim_stream_create(dev), copy = tfsim_stream_create(dev);

	tfprof_set_thread_name("train");
	if (mode) {
		/* Recorded only while a capture (or tfprof-start's session) runs. */
		if (serve) {
			int rc = tfprof_server_start(addr, NULL);
			if (rc) {
				fprintf(stderr, "sim_train_loop: tfprof_server_start: %s\n", tfprof_strerror(rc));
				return 1;
			}
			printf("port %d\n", tfprof_server_port());
			fflush(stdout);
		}
		for (int step = 0; step < steps; step++)
			train_step(step, compute, copy);
		if (serve)
			tfprof_server_stop();
		return 0;
	}
	int rc = tfprof_start(logdir, NULL);
	if (rc) {
		fprintf(stderr, "sim_train_loop: tfprof_start: %s\n", tfprof_strerror(rc));
		return 1;
	}
	uint64_t weights, staging;
	{
		TFPROF_SCOPE("init");
		weights = tfsim_malloc(dev, 64 * MiB);
		staging = tfsim_malloc_ex(&(struct tfsim_alloc){ .device = dev, .kind = TFSIM_MEM_PINNED,
								  .bytes = 32 * MiB },
					  NULL);
	}
	for (int step = 0; step < steps; step++)
		train_step(step, compute, copy);
	/* The weights and the staging buffer live on past the profile (listed as live at stop). */
	(void)weights;
	(void)staging;
	rc = tfprof_stop();
	if (rc && rc != TFPROF_ERR_FALLBACK) {
		fprintf(stderr, "sim_train_loop: tfprof_stop: %s\n", tfprof_strerror(rc));
		return 1;
	}
	printf("%s\n", tfprof_last_output());
	return 0;
}
