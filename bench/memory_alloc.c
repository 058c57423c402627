/* SPDX-License-Identifier: Apache-2.0 */
/* Measures what GPU memory tracing costs per allocation: the time of a simulated cudaMalloc +
 * cudaFree pair (API callbacks, the MEMORY2 records, their decoding) and the time stop takes
 * to merge and write them, with memory tracing on against a session with it off
 * (TFPROF_GPU_MEMORY=0), in the same run. The CUPTI simulator stands in for libcupti, so the
 * absolute times include the simulator's own work; the difference between the two is tfprof's.
 * Prints one JSON object per line.
 *
 *   usage: memory_alloc [PAIRS]   (default 200000) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <tfprof/tfprof.h>

#include "bench_util.h"
#include "cupti_sim.h"

/* One session of n allocation and release pairs; the loop's and the stop's ns per pair. */
static int run(const char *logdir, int n, bool memory, double *loop_ns, double *stop_ns)
{
	TFPROF_OPTIONS(o, .disable_gpu_memory = !memory, .disable_nvtx = true);
	if (tfprof_start(logdir, &o))
		return -1;
	uint64_t t0 = now_ns();
	for (int i = 0; i < n; i++) {
		TFPROF_SCOPE("step");
		sink += tfsim_free(tfsim_malloc(0, 4096));
	}
	uint64_t t1 = now_ns();
	int rc = tfprof_stop();
	uint64_t t2 = now_ns();
	*loop_ns = (double)(t1 - t0) / n;
	*stop_ns = (double)(t2 - t1) / n;
	return rc == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200000;
	Dl_info info;
	if (n <= 0 || !dladdr((void *)tfsim_reset, &info) || !info.dli_fname) {
		fprintf(stderr, "memory_alloc: usage: memory_alloc [PAIRS]; needs the CUPTI simulator\n");
		return 2;
	}
	setenv("TFPROF_CUPTI_LIBRARY", info.dli_fname, 1);
	tfsim_device_add(NULL);
	char dir[] = "/tmp/tfprof_bench_memXXXXXX";
	if (!mkdtemp(dir))
		return 1;
	enum { REPS = 5 };
	double on_loop[REPS], on_stop[REPS], off_loop[REPS], off_stop[REPS];
	for (int r = 0; r < REPS; r++) {
		/* Interleaved, so that a noisy moment hurts both alike. */
		if (run(dir, n, false, &off_loop[r], &off_stop[r]) || run(dir, n, true, &on_loop[r], &on_stop[r])) {
			fprintf(stderr, "memory_alloc: a session failed\n");
			return 1;
		}
	}
	double lon = median(on_loop, REPS), loff = median(off_loop, REPS);
	double son = median(on_stop, REPS), soff = median(off_stop, REPS);
	printf("{\"bench\":\"memory_alloc\",\"pairs\":%d,\"loop_ns_per_pair_on\":%.1f,\"loop_ns_per_pair_off\":%.1f,"
	       "\"loop_ratio\":%.3f,\"added_ns_per_allocation\":%.1f,\"stop_ns_per_pair_on\":%.1f,"
	       "\"stop_ns_per_pair_off\":%.1f,\"added_stop_ns_per_allocation\":%.1f}\n",
	       n, lon, loff, lon / loff, (lon - loff) / 2, son, soff, (son - soff) / 2);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) ? 1 : 0;
}
