/* SPDX-License-Identifier: Apache-2.0 */
/* GPU tracing stand-in for builds without the CUPTI headers: every session falls back to
 * host-only tracing, and the profile says why and how to get GPU timelines. Compiled instead of
 * loader.c, activity.c, callbacks.c and gpu.c. */
#include "gpu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char reason[] =
	"tfprof: GPU tracing is off: tfprof was built without CUPTI headers; rebuild it with the "
	"CUDA toolkit installed (or TFPROF_CUPTI_INCLUDE_DIR set) to trace GPUs";

static int started;

int tfprof__gpu_start(const struct tfprof__gpu_config *cfg)
{
	(void)cfg;
	started = 1;
	return -ENOSYS;
}

void tfprof__gpu_stop(struct tfprof__gpu_result *out)
{
	memset(out, 0, sizeof *out);
	if (!started)
		return;
	started = 0;
	out->errors = malloc(sizeof *out->errors);
	if (out->errors && (out->errors[0] = strdup(reason)))
		out->nerrors = 1;
}

void tfprof__gpu_fork_child(void)
{
	/* Nothing to forget: this build never traces the GPU. */
}
