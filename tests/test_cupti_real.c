/* SPDX-License-Identifier: Apache-2.0 */
/* GPU tracing against the real libcupti, no simulator: on a machine without an NVIDIA GPU or
 * driver, libcupti loads but refuses to subscribe (CUPTI_ERROR_UNKNOWN), and tfprof must fall
 * back to host-only tracing with that reason, quickly, without crashing or hanging, session
 * after session. On a machine with a GPU the same test checks that tracing starts and stops
 * cleanly. Skipped (visibly) where libcupti is not installed. */
#include <dlfcn.h>
#include <time.h>

#include "gpu.h"
#include "tt.h"

static const char *cupti_path;

/* The file of the libcupti the default search would find first, or NULL when there is none. */
static const char *find_cupti(void)
{
	static const char *const cands[] = {
		"libcupti.so.13",
		"/usr/local/cuda/lib64/libcupti.so.13",
		"/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13",
	};
	static char path[4096];
	for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
		void *h = dlopen(cands[i], RTLD_NOW | RTLD_LOCAL); /* kept open, as tfprof keeps it */
		if (!h)
			continue;
		Dl_info info;
		void *sym = dlsym(h, "cuptiGetVersion");
		if (sym && dladdr(sym, &info) && info.dli_fname && info.dli_fname[0] == '/')
			snprintf(path, sizeof path, "%s", info.dli_fname);
		else
			snprintf(path, sizeof path, "%s", cands[i]);
		return path;
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One session with GPU tracing through whatever TFPROF_CUPTI_LIBRARY says now. */
static void one_session(void)
{
	TFPROF_OPTIONS(o, .disable_gpu = true, .disable_nvtx = true);
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	double t0 = now_s();
	int rc = tfprof__gpu_start(&(struct tfprof__gpu_config){ 0 });
	tfprof_scope h = tfprof_scope_begin("host_only_work", NULL, 0);
	tfprof_scope_end(h);
	XSpace *x = tt_stop_and_read();
	assert_int_equal(tt_count_events(tt_host(x), "host_only_work"), 1);
	tt_xspace_free(x);
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	double took = now_s() - t0;
	if (rc == 0) {
		/* A GPU is here: tracing ran and stopped cleanly. */
		assert_int_equal(r.active, 1);
		assert_int_equal(r.nerrors, 0);
		print_message("  GPU present: tracing ran (%zu devices)\n", r.ndevices);
	} else {
		assert_int_equal(r.active, 0);
		assert_int_equal(r.nerrors, 1);
		print_message("  %s\n", r.errors[0]);
		if (strstr(r.errors[0], "built without CUPTI headers")) {
			tfprof__gpu_result_free(&r);
			skip(); /* libtfprof has no GPU tracing to test */
		}
		assert_non_null(strstr(r.errors[0], "GPU tracing is off"));
		/* No GPU or driver here: CUPTI_ERROR_UNKNOWN, with what to do about it. Other
		 * reasons (privileges, another tool) are just as valid on a GPU machine. */
		if (!strstr(r.errors[0], "INSUFFICIENT_PRIVILEGES") &&
		    !strstr(r.errors[0], "MULTIPLE_SUBSCRIBERS")) {
			assert_non_null(strstr(r.errors[0], "CUPTI_ERROR_UNKNOWN"));
			assert_non_null(strstr(r.errors[0], "TFPROF_GPU=0"));
		}
	}
	/* Falling back costs little: nothing waits for a GPU that is not there. */
	assert_true(took < 5.0);
	tfprof__gpu_result_free(&r);
}

static void test_default_search(void **state)
{
	(void)state;
	if (!cupti_path)
		skip(); /* libcupti is not installed here */
	unsetenv("TFPROF_CUPTI_LIBRARY");
	for (int i = 0; i < 3; i++)
		one_session();
}

static void test_explicit_path(void **state)
{
	(void)state;
	if (!cupti_path || cupti_path[0] != '/')
		skip(); /* only found through the loader's search path, no file to name */
	setenv("TFPROF_CUPTI_LIBRARY", cupti_path, 1);
	for (int i = 0; i < 3; i++)
		one_session();
	unsetenv("TFPROF_CUPTI_LIBRARY");
}

int main(void)
{
	cupti_path = find_cupti();
	if (!cupti_path)
		print_message("libcupti.so.13 is not installed: the real-CUPTI tests are skipped\n");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_search, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_explicit_path, tt_setup, tt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
