/* A program that uses tfprof itself (linked to libtfprof.so) and NVTX, for the tfprof-start
 * tests: run under tfprof-start, libtfprof is both the preloaded profiler and the NVTX tool, and
 * every scope must be recorded exactly once (not again through tfprof's own NVTX ranges).
 * Its own tfprof_start() finds the activated session running and says so. */
#include <stdio.h>

#define NVTX_AS_SYSTEM_HEADER 1
#include <nvtx3/nvToolsExt.h>

#include "tfprof/tfprof.h"

int main(void)
{
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
	return 0;
}
