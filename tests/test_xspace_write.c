/* SPDX-License-Identifier: Apache-2.0 */
/* End-to-end tests of the written file, read back with protobuf-c and checked plane by plane,
 * line by line, event by event and stat by stat against the format xprof reads. */
#include <regex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tt.h"

static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_layout_and_stats(void **state)
{
	(void)state;
	TFPROF_OPTIONS(o, .host_name = "worker:0/a", .run_name = "layout");
	uint64_t before = real_ns();
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	tfprof_set_thread_name("main-thread");
	for (int step = 0; step < 3; step++) {
		TFPROF_SCOPE("Train", TFPROF_I64("step_num", step));
		TFPROF_SCOPE("forward", TFPROF_I64("i64", -5), TFPROF_U64("u64", UINT64_MAX),
			     TFPROF_F64("f64", 0.25), TFPROF_BOOL("yes", 1), TFPROF_BOOL("no", 0),
			     TFPROF_STR("str", "hello"), TFPROF_I64("zero", 0));
	}
	{
		TFPROF_SCOPE("Explicit", TFPROF_I64("step_num", 9), TFPROF_I64("_r", 2));
	}
	assert_int_equal(tfprof_stop(), 0);
	uint64_t after = real_ns();

	/* <tt_logdir>/plugins/profile/<run>/<host>.xplane.pb, ':' and '/' made safe. */
	char *want;
	assert_true(asprintf(&want, "%s/plugins/profile/layout/worker_0_a.xplane.pb", tt_logdir) > 0);
	assert_string_equal(tfprof_last_output(), want);
	free(want);
	XSpace *s = tt_read_xspace(tfprof_last_output());
	tt_check_well_formed(s);
	assert_int_equal(s->n_hostnames, 1);
	assert_string_equal(s->hostnames[0], "worker_0_a");
	assert_int_equal(s->n_errors, 0);
	assert_int_equal(s->n_planes, 2);

	const XPlane *env = tt_plane(s, "Task Environment");
	assert_non_null(env);
	const XStat *t0 = tt_plane_stat(env, "profile_start_time");
	const XStat *t1 = tt_plane_stat(env, "profile_stop_time");
	assert_int_equal(t0->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE);
	assert_true(t0->uint64_value >= before && t0->uint64_value <= t1->uint64_value);
	assert_true(t1->uint64_value <= after);

	const XPlane *h = tt_host(s);
	assert_int_equal(h->n_lines, 1);
	const XLine *l = h->lines[0];
	assert_int_equal(l->id, (int64_t)syscall(SYS_gettid));
	assert_int_equal(l->display_id, l->id);
	assert_string_equal(l->name, "main-thread");
	/* Line timestamps are relative to the session start and lie inside it. */
	assert_true(l->timestamp_ns >= 0);
	assert_true((uint64_t)l->timestamp_ns <= t1->uint64_value - t0->uint64_value);
	assert_int_equal(l->n_events, 7);
	/* The first event sits at the line's timestamp: offset 0, still on the wire. */
	assert_int_equal(l->events[0]->data_case, TENSORFLOW__PROFILER__XEVENT__DATA_OFFSET_PS);
	assert_int_equal(l->events[0]->offset_ps, 0);

	/* Event metadata: one entry per distinct name. */
	assert_int_equal(h->n_event_metadata, 3);
	assert_int_equal(l->events[0]->metadata_id, l->events[2]->metadata_id);
	for (int step = 0; step < 3; step++) {
		const XEvent *tr = l->events[2 * step], *fw = l->events[2 * step + 1];
		assert_string_equal(tt_event_name(h, tr), "Train");
		assert_int_equal(tr->n_stats, 2);
		const XStat *sn = tt_event_stat(h, tr, "step_num");
		assert_int_equal(sn->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE);
		assert_int_equal(sn->int64_value, step);
		/* A step marker gets _r = 1 so xprof groups steps. */
		const XStat *r = tt_event_stat(h, tr, "_r");
		assert_int_equal(r->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE);
		assert_int_equal(r->int64_value, 1);

		assert_string_equal(tt_event_name(h, fw), "forward");
		assert_int_equal(fw->n_stats, 7);
		assert_null(tt_event_stat(h, fw, "_r"));
		const XStat *st = tt_event_stat(h, fw, "i64");
		assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE);
		assert_int_equal(st->int64_value, -5);
		st = tt_event_stat(h, fw, "u64");
		assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE);
		assert_true(st->uint64_value == UINT64_MAX);
		st = tt_event_stat(h, fw, "f64");
		assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_DOUBLE_VALUE);
		assert_true(st->double_value == 0.25);
		st = tt_event_stat(h, fw, "yes");
		assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE);
		assert_int_equal(st->int64_value, 1);
		st = tt_event_stat(h, fw, "no");
		assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE);
		assert_int_equal(st->int64_value, 0);
		st = tt_event_stat(h, fw, "zero");
		assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE);
		st = tt_event_stat(h, fw, "str");
		assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE);
		assert_string_equal(tt_stat_meta_name(h, st->ref_value), "hello");
		/* forward nests in its Train step. */
		assert_true(tt_event_start_ps(l, fw) >= tt_event_start_ps(l, tr));
		assert_true(tt_event_end_ps(l, fw) <= tt_event_end_ps(l, tr));
		assert_true(fw->duration_ps >= 0 && tr->duration_ps > 0);
	}
	/* The caller's own _r wins. */
	const XEvent *ex = l->events[6];
	assert_string_equal(tt_event_name(h, ex), "Explicit");
	assert_int_equal(tt_event_stat(h, ex, "_r")->int64_value, 2);
	assert_int_equal(ex->n_stats, 2);
	/* Stat metadata: each key and each string value once. */
	size_t hello = 0;
	for (size_t i = 0; i < h->n_stat_metadata; i++)
		hello += strcmp(h->stat_metadata[i]->value->name, "hello") == 0;
	assert_int_equal(hello, 1);
	tt_xspace_free(s);
}

static void test_default_run_name_is_local_time(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	assert_int_equal(tfprof_stop(), 0);
	const char *out = tfprof_last_output();
	regex_t re;
	assert_int_equal(regcomp(&re, "/plugins/profile/[0-9]{4}_[0-9]{2}_[0-9]{2}_[0-9]{2}_[0-9]{2}_[0-9]{2}(_[0-9]+)?/[^/]+\\.xplane\\.pb$",
				 REG_EXTENDED),
			 0);
	assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
	regfree(&re);
	char host[256] = { 0 };
	gethostname(host, sizeof host - 1);
	XSpace *s = tt_read_xspace(out);
	assert_string_equal(s->hostnames[0], host[0] ? host : "localhost");
	/* An empty session is still a valid profile. */
	assert_non_null(tt_plane(s, "/host:CPU"));
	tt_xspace_free(s);
}

static void test_timestamps_follow_the_clock(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	tfprof_scope sc = tfprof_scope_begin("sleep", NULL, 0);
	struct timespec d = { 0, 20 * 1000 * 1000 };
	nanosleep(&d, NULL);
	tfprof_scope_end(sc);
	clock_gettime(CLOCK_MONOTONIC, &b);
	XSpace *s = tt_stop_and_read();
	const XLine *l = tt_my_line(s);
	int64_t outer_ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
	int64_t dur_ns = l->events[0]->duration_ps / 1000;
	/* The scope lies within what the caller measured around it, to a microsecond. */
	assert_true(dur_ns >= 20 * 1000 * 1000 - 1000);
	assert_true(dur_ns <= outer_ns + 1000);
	tt_xspace_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout_and_stats, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_default_run_name_is_local_time, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_timestamps_follow_the_clock, tt_setup, tt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
