/* An unmodified "CUDA" program for the tfprof-start tests, on the CUPTI simulator: it launches a
 * kernel, then does what the CUDA driver does when CUDA initializes with CUDA_INJECTION64_PATH
 * set (dlopen that path, call its InitializeInjection), then launches another. Under
 * tfprof-start, GPU tracing must start at that point: the profile shows "after_init" on the GPU
 * and not "before_init". It links the simulator only, never tfprof. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "cupti_sim.h"

int main(void)
{
	int dev = tfsim_device_add(NULL);
	uint32_t stream = tfsim_stream_create(dev);
	struct tfsim_dim3 one = { 1, 1, 1 };
	tfsim_launch_kernel(stream, "before_init", one, one, 1000);

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
	tfsim_launch_kernel(stream, "after_init", one, one, 1000);
	tfsim_stream_synchronize(stream);
	return 0;
}
