/* SPDX-License-Identifier: Apache-2.0 */
/* Measures what GPU memory tracing costs per allocation on a real GPU: the time of an allocation
 * and release pair (stream-ordered cudaMallocAsync + cudaFreeAsync, and cudaMalloc + cudaFree)
 * with no session, in a session with memory tracing off (TFPROF_GPU_MEMORY=0's option) and in
 * one with it on, interleaved in the same run, and what stop takes per pair. bench/memory_alloc
 * measures the same on the CUPTI simulator; this one needs a GPU and prints one JSON line per kind.
 *
 *   usage: gpu_memory_alloc [PAIRS]   (default 20000) */
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <cuda_runtime.h>
#include <tfprof/tfprof.h>

#define CHECK(x)                                                                                  \
	do {                                                                                      \
		cudaError_t e_ = (x);                                                             \
		if (e_ != cudaSuccess) {                                                          \
			fprintf(stderr, "gpu_memory_alloc: %s: %s\n", #x, cudaGetErrorString(e_)); \
			exit(2);                                                                  \
		}                                                                                 \
	} while (0)

static double now_ns()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

enum mode { UNTRACED, MEMORY_OFF, MEMORY_ON };

/* One loop of n pairs; the loop's and the stop's ns per pair. */
static void run(const char *logdir, int n, bool async, mode m, cudaStream_t st, double *loop_ns,
		double *stop_ns)
{
	if (m != UNTRACED) {
		TFPROF_OPTIONS(o, .disable_nvtx = true, .disable_gpu_memory = m == MEMORY_OFF);
		int rc = tfprof_start(logdir, &o);
		if (rc) {
			fprintf(stderr, "gpu_memory_alloc: tfprof_start: %s\n", tfprof_strerror(rc));
			exit(1);
		}
	}
	double t0 = now_ns();
	for (int i = 0; i < n; i++) {
		void *p;
		if (async) {
			CHECK(cudaMallocAsync(&p, 1 << 16, st));
			CHECK(cudaFreeAsync(p, st));
		} else {
			CHECK(cudaMalloc(&p, 1 << 16));
			CHECK(cudaFree(p));
		}
	}
	CHECK(cudaStreamSynchronize(st));
	double t1 = now_ns();
	if (m != UNTRACED) {
		int rc = tfprof_stop();
		if (rc) {
			fprintf(stderr, "gpu_memory_alloc: tfprof_stop: %s\n", tfprof_strerror(rc));
			exit(1);
		}
	}
	*loop_ns = (t1 - t0) / n;
	*stop_ns = (now_ns() - t1) / n;
}

static double med(double *v, int n)
{
	std::sort(v, v + n);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000;
	if (n <= 0) {
		fprintf(stderr, "gpu_memory_alloc: usage: gpu_memory_alloc [PAIRS]\n");
		return 2;
	}
	char dir[] = "/tmp/tfprof_gpu_memXXXXXX";
	if (!mkdtemp(dir))
		return 1;
	cudaStream_t st;
	CHECK(cudaStreamCreate(&st));
	/* Warm up CUDA, the pool and CUPTI so the first measured session pays no set-up. */
	double l, s;
	run(dir, 1000, true, MEMORY_ON, st, &l, &s);
	run(dir, 200, false, MEMORY_ON, st, &l, &s);
	enum { REPS = 5 };
	for (int async = 1; async >= 0; async--) {
		int pairs = async ? n : n / 10;
		double loop[3][REPS], stop[3][REPS];
		for (int r = 0; r < REPS; r++)
			for (int m = 0; m < 3; m++)
				run(dir, pairs, async, (mode)m, st, &loop[m][r], &stop[m][r]);
		double u = med(loop[UNTRACED], REPS), off = med(loop[MEMORY_OFF], REPS), on = med(loop[MEMORY_ON], REPS);
		double soff = med(stop[MEMORY_OFF], REPS), son = med(stop[MEMORY_ON], REPS);
		printf("{\"bench\":\"gpu_memory_alloc\",\"kind\":\"%s\",\"pairs\":%d,\"untraced_ns_per_pair\":%.0f,"
		       "\"memory_off_ns_per_pair\":%.0f,\"memory_on_ns_per_pair\":%.0f,"
		       "\"added_ns_per_allocation\":%.0f,\"stop_ns_per_pair_off\":%.0f,\"stop_ns_per_pair_on\":%.0f,"
		       "\"added_stop_ns_per_allocation\":%.0f}\n",
		       async ? "cudaMallocAsync" : "cudaMalloc", pairs, u, off, on, (on - off) / 2, soff, son,
		       (son - soff) / 2);
	}
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) ? 1 : 0;
}
