/* SPDX-License-Identifier: Apache-2.0 */
/* libtfprof.so must load with dlopen: Python's ctypes, CUDA's injection and NVTX tools all load
 * libraries that way, and a library with too much initial-exec TLS fails there ("cannot allocate
 * memory in static TLS block"). */
#include <dlfcn.h>

#include "tt.h"

static void test_dlopen_and_record(void **state)
{
	(void)state;
	void *h = dlopen(TFPROF_SHARED_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		fail_msg("dlopen(%s): %s", TFPROF_SHARED_LIBRARY, dlerror());
	int (*start)(const char *, const struct tfprof_options *) = (int (*)(const char *, const struct tfprof_options *))dlsym(h, "tfprof_start");
	int (*stop)(void) = (int (*)(void))dlsym(h, "tfprof_stop");
	tfprof_scope (*begin)(const char *, const struct tfprof_arg *, size_t) =
		(tfprof_scope(*)(const char *, const struct tfprof_arg *, size_t))dlsym(h, "tfprof_scope_begin_slow");
	void (*end)(tfprof_scope) = (void (*)(tfprof_scope))dlsym(h, "tfprof_scope_end_slow");
	const char *(*last)(void) = (const char *(*)(void))dlsym(h, "tfprof_last_output");
	assert_non_null(start);
	assert_non_null(stop);
	assert_non_null(begin);
	assert_non_null(end);
	assert_non_null(last);
	/* Internal names stay hidden. */
	assert_null(dlsym(h, "tfprof__tracer_harvest"));
	char *dir = tt_scratch_dir("dlopen");
	assert_int_equal(start(dir, NULL), 0);
	end(begin("from_dlopen", NULL, 0));
	assert_int_equal(stop(), 0);
	XSpace *s = tt_read_xspace(last());
	assert_int_equal(tt_count_events(tt_host(s), "from_dlopen"), 1);
	tt_xspace_free(s);
	tt_rm_rf(dir);
	free(dir);
	dlclose(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_dlopen_and_record) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
