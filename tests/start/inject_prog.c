/* SPDX-License-Identifier: Apache-2.0 */
/* An unmodified "CUDA" program for the tfprof-start tests, on the CUPTI simulator: it launches a
 * kernel, then does what the CUDA driver does when CUDA initializes with CUDA_INJECTION64_PATH
 * set (dlopen that path, call its InitializeInjection), then launches another. Under
 * tfprof-start, GPU tracing must start at that point: the profile shows "after_init" on the GPU
 * and not "before_init". It never links tfprof, and it dlopen()s the simulator (its "driver",
 * as the CUDA runtime dlopen()s libcuda) rather than linking it, so that the simulator is
 * loaded after the preloaded libtfprof and finalized before it at exit, as libcupti is on a
 * real GPU: a profile written at exit must not call into a finalized libcupti.
 *   usage: inject_prog SIMULATOR_LIBRARY */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "cupti_sim.h"

/* One simulator entry point, or exit 5 with a message. */
static void *sym(void *lib, const char *name)
{
	void *f = dlsym(lib, name);
	if (!f) {
		fprintf(stderr, "inject_prog: the simulator has no %s\n", name);
		exit(5);
	}
	return f;
}

int main(int argc, char **argv)
{
	void *lib = argc > 1 ? dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL) : NULL;
	if (!lib) {
		fprintf(stderr, "inject_prog: cannot load the simulator %s (%s)\n", argc > 1 ? argv[1] : "(none)",
			dlerror());
		return 2;
	}
	__typeof__(tfsim_device_add) *device_add = sym(lib, "tfsim_device_add");
	__typeof__(tfsim_stream_create) *stream_create = sym(lib, "tfsim_stream_create");
	__typeof__(tfsim_launch_kernel) *launch = sym(lib, "tfsim_launch_kernel");
	__typeof__(tfsim_stream_synchronize) *sync = sym(lib, "tfsim_stream_synchronize");

	int dev = device_add(NULL);
	uint32_t stream = stream_create(dev);
	struct tfsim_dim3 one = { 1, 1, 1 };
	launch(stream, "before_init", one, one, 1000);

	const char *path = getenv("CUDA_INJECTION64_PATH");
	if (!path) {
		fprintf(stderr, "inject_prog: CUDA_INJECTION64_PATH is not set\n");
		return 3;
	}
	void *h = dlopen(path, RTLD_NOW);
	int (*init)(void) = h ? (int (*)(void))dlsym(h, "InitializeInjection") : NULL;
	if (!init || init() != 1) {
		fprintf(stderr, "inject_prog: no working InitializeInjection in %s\n", path);
		return 4;
	}
	launch(stream, "after_init", one, one, 1000);
	sync(stream);
	return 0;
}
