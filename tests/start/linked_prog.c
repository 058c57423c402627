/* SPDX-License-Identifier: Apache-2.0 */
/* A program that uses tfprof itself (linked to libtfprof.so) and NVTX, for the tfprof-start
 * tests: run under tfprof-start, libtfprof is both the preloaded profiler and the NVTX tool, and
 * every scope must be recorded exactly once (not again through tfprof's own NVTX ranges).
 * Its own tfprof_start() finds the activated session running and says so, and its own
 * tfprof_stop() leaves that session running.
 * With the argument "steps" it runs ten tfprof steps (scopes with step_num 0..9, each with a
 * nested "work") for --steps, and starts no session of its own; "own_steps LOGDIR" runs the same
 * steps inside a session of its own in LOGDIR, which tfprof-start must leave to it; "busy
 * SECONDS" records scopes nonstop for that long and returns (an exit while a --duration profile
 * is still being written). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NVTX_AS_SYSTEM_HEADER 1
#include <nvtx3/nvToolsExt.h>

#include "tfprof/tfprof.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "steps") == 0) {
		TFPROF_SCOPE("before_steps");
		for (int i = 0; i < 10; i++) {
			TFPROF_SCOPE("train_step", TFPROF_I64("step_num", i));
			TFPROF_SCOPE("work");
		}
		return 0;
	}
	if (argc > 2 && strcmp(argv[1], "own_steps") == 0) {
		int rc = tfprof_start(argv[2], NULL);
		if (rc) {
			fprintf(stderr, "linked_prog: its own tfprof_start: %s\n", tfprof_strerror(rc));
			return 5;
		}
		for (int i = 0; i < 10; i++) {
			TFPROF_SCOPE("train_step", TFPROF_I64("step_num", i));
			TFPROF_SCOPE("work");
		}
		rc = tfprof_stop();
		if (rc) {
			fprintf(stderr, "linked_prog: its own tfprof_stop: %s\n", tfprof_strerror(rc));
			return 6;
		}
		printf("%s\n", tfprof_last_output());
		return 0;
	}
	if (argc > 2 && strcmp(argv[1], "busy") == 0) {
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		double secs = atof(argv[2]);
		do {
			for (int i = 0; i < 1000; i++) {
				TFPROF_SCOPE("busy");
			}
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 < secs);
		return 0;
	}
	int rc = tfprof_start("unused-logdir", NULL);
	if (rc != TFPROF_ERR_ACTIVE) {
		fprintf(stderr, "linked_prog: tfprof_start returned %d, not TFPROF_ERR_ACTIVE\n", rc);
		return 3;
	}
	for (int i = 0; i < 5; i++) {
		TFPROF_SCOPE("linked_scope", TFPROF_I64("step_num", i));
		nvtxRangePushA("linked_nvtx");
		nvtxRangePop();
	}
	/* Its own stop must leave tfprof-start's session running: what follows is recorded too, and
	 * the profile is written once, at exit. */
	rc = tfprof_stop();
	if (rc != TFPROF_ERR_ACTIVATED) {
		fprintf(stderr, "linked_prog: tfprof_stop returned %d, not TFPROF_ERR_ACTIVATED\n", rc);
		return 4;
	}
	TFPROF_SCOPE("after_own_stop");
	return 0;
}
