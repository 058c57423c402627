/* SPDX-License-Identifier: Apache-2.0 */
/* The public header from C++: typed args, the RAII scope and set_metadata record what the C forms
 * record (CUDA and PyTorch extension code is C++). */
extern "C" {
#include "tt.h"
}

static int scoped(int x)
{
	TFPROF_SCOPE("cxx_return", TFPROF_I64("x", x));
	if (x > 0)
		return x;
	return 0;
}

static void test_cxx_scopes(void **state)
{
	(void)state;
	char *dir = tt_scratch_dir("cxx");
	assert_int_equal(tfprof_start(dir, NULL), 0);
	scoped(3);
	{
		TFPROF_SCOPE_AS(tm, "cxx_load", TFPROF_U64("u", 7), TFPROF_F64("f", 0.5));
		TFPROF_SET_METADATA(tm, TFPROF_BOOL("in_cache", true), TFPROF_STR("src", "disk"));
	}
	{
		TFPROF_SCOPE("cxx_noargs");
	}
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	const XLine *l = tt_my_line(s);
	assert_int_equal(l->n_events, 3);
	assert_string_equal(tt_event_name(h, l->events[0]), "cxx_return");
	assert_int_equal(tt_event_stat(h, l->events[0], "x")->int64_value, 3);
	const XEvent *e = l->events[1];
	assert_string_equal(tt_event_name(h, e), "cxx_load");
	assert_int_equal(tt_event_stat(h, e, "u")->uint64_value, 7);
	assert_true(tt_event_stat(h, e, "f")->double_value == 0.5);
	assert_int_equal(tt_event_stat(h, e, "in_cache")->int64_value, 1);
	assert_string_equal(tt_stat_meta_name(h, tt_event_stat(h, e, "src")->ref_value), "disk");
	assert_int_equal(l->events[2]->n_stats, 0);
	for (size_t i = 0; i < 3; i++)
		assert_null(tt_event_stat(h, l->events[i], "tfprof_open_at_stop"));
	tt_xspace_free(s);
	tt_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_cxx_scopes) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
