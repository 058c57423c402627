/* SPDX-License-Identifier: Apache-2.0 */
/* A program that uses tfprof the way a downstream project would, through the installed header and
 * library only: it records a known workload (see workload.h) on four named threads and prints the
 * path of the profile it wrote. The install tests build it against an installed prefix and hand
 * the path to the checker.
 *
 *   usage: consumer LOGDIR */
#define _POSIX_C_SOURCE 200809L /* pthread barriers and clock_gettime under -std=c11 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <tfprof/tfprof.h>

#include "workload.h"

/* Makes every scope last a little, so that nesting is visible in the timestamps. */
static void busy_us(long us)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

/* All workers are alive at once, so each has its own thread id and thus its own line. */
static pthread_barrier_t all_started;

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	char name[32], device[32], flush[32];
	wl_thread_name(name, sizeof name, t);
	wl_device(device, sizeof device, t);
	wl_flush_name(flush, sizeof flush, t);
	tfprof_set_thread_name(name);
	pthread_barrier_wait(&all_started);

	for (int step = 0; step < WL_STEPS; step++) {
		TFPROF_SCOPE("train_step", TFPROF_I64("step_num", step), TFPROF_STR("phase", "train"));
		{
			TFPROF_SCOPE_AS(load, "load", TFPROF_U64("bytes", wl_bytes(t, step)));
			busy_us(50);
			TFPROF_SET_METADATA(load, TFPROF_BOOL("cache_hit", wl_cache_hit(t, step)));
		}
		{
			TFPROF_SCOPE("forward", TFPROF_F64("lr", wl_lr(t)),
				     TFPROF_I64("delta", wl_delta(t, step)));
			busy_us(20);
			{
				TFPROF_SCOPE("matmul", TFPROF_STR("device", device),
					     TFPROF_BOOL("fused", false));
				busy_us(50);
			}
			busy_us(20);
		}
	}

	/* A name built at run time goes through the begin/end API. */
	const struct tfprof_arg flush_args[] = {
		TFPROF_U64("max", UINT64_MAX),
		TFPROF_STR("note", "bye"),
	};
	tfprof_scope s = tfprof_scope_begin(flush, flush_args, 2);
	busy_us(30);
	tfprof_scope_end(s);

	/* A step marker that sets _r itself: the caller's value must win over tfprof's default 1. */
	{
		TFPROF_SCOPE("eval", TFPROF_I64("step_num", wl_eval_step(t)), TFPROF_I64("_r", 2));
		busy_us(30);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	/* The library found at run time is the one the header describes (same major, not older). */
	if (tfprof_version() / 10000 != TFPROF_VERSION_MAJOR || tfprof_version() < TFPROF_VERSION) {
		fprintf(stderr, "consumer: built against tfprof %d, running with %d\n", TFPROF_VERSION,
			tfprof_version());
		return 1;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: consumer LOGDIR\n");
		return 2;
	}
	TFPROF_OPTIONS(opts, .run_name = WL_RUN_NAME, .host_name = WL_HOST_NAME, .disable_gpu = true);
	int rc = tfprof_start(argv[1], &opts);
	if (rc) {
		fprintf(stderr, "consumer: tfprof_start: %s\n", tfprof_strerror(rc));
		return 1;
	}
	pthread_t th[WL_THREADS];
	pthread_barrier_init(&all_started, NULL, WL_THREADS);
	for (int t = 0; t < WL_THREADS; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t)) {
			fprintf(stderr, "consumer: pthread_create failed\n");
			return 1;
		}
	for (int t = 0; t < WL_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&all_started);
	rc = tfprof_stop();
	if (rc) {
		fprintf(stderr, "consumer: tfprof_stop: %s\n", tfprof_strerror(rc));
		return 1;
	}
	printf("%s\n", tfprof_last_output());
	return 0;
}
