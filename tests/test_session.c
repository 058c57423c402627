/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of the session semantics a user relies on: start/stop rules, events only while a session
 * records, set_metadata, scopes open at stop, ignored ends, the options struct and the scoped
 * macros' cleanup on every way out of a block. */
#include <errno.h>
#include <pthread.h>

#include "tt.h"

static void test_start_rules(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(NULL, NULL), -EINVAL);
	assert_int_equal(tfprof_start("", NULL), -EINVAL);
	assert_int_equal(tfprof_stop(), TFPROF_ERR_NOT_ACTIVE);
	assert_false(tfprof_enabled());
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	assert_true(tfprof_enabled());
	assert_int_equal(tfprof_start(tt_logdir, NULL), TFPROF_ERR_ACTIVE);
	assert_int_equal(tfprof_stop(), 0);
	assert_false(tfprof_enabled());
	assert_int_equal(tfprof_stop(), TFPROF_ERR_NOT_ACTIVE);
	/* Each error has its own explanation. */
	assert_string_not_equal(tfprof_strerror(TFPROF_ERR_ACTIVE), tfprof_strerror(TFPROF_ERR_NOT_ACTIVE));
	assert_non_null(strstr(tfprof_strerror(TFPROF_ERR_ACTIVE), "tfprof_stop"));
	assert_non_null(strstr(tfprof_strerror(TFPROF_ERR_ACTIVATED), "tfprof-start"));
	assert_non_null(tfprof_strerror(-12345678));
}

static void test_events_only_while_on(void **state)
{
	(void)state;
	tfprof_scope before = tfprof_scope_begin("before", NULL, 0);
	tfprof_scope_end(before);
	TFPROF_OPTIONS(o, .run_name = "one");
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	tfprof_scope a = tfprof_scope_begin("during", NULL, 0);
	tfprof_scope_end(a);
	assert_int_equal(tfprof_stop(), 0);
	tfprof_scope after = tfprof_scope_begin("after", NULL, 0);
	tfprof_scope_end(after);
	XSpace *s = tt_read_xspace(tfprof_last_output());
	assert_int_equal(tt_count_events(tt_host(s), "during"), 1);
	assert_int_equal(tt_count_events(tt_host(s), "before"), 0);
	assert_int_equal(tt_count_events(tt_host(s), "after"), 0);
	tt_xspace_free(s);

	/* Start, stop, start again: the second session holds only its own events. */
	TFPROF_OPTIONS(o2, .run_name = "two");
	assert_int_equal(tfprof_start(tt_logdir, &o2), 0);
	tfprof_scope b = tfprof_scope_begin("second", NULL, 0);
	tfprof_scope_end(b);
	s = tt_stop_and_read();
	assert_non_null(strstr(tfprof_last_output(), "/plugins/profile/two/"));
	assert_int_equal(tt_count_events(tt_host(s), "second"), 1);
	assert_int_equal(tt_count_events(tt_host(s), "during"), 0);
	tt_xspace_free(s);
}

static void test_set_metadata(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	{
		TFPROF_SCOPE_AS(tm, "Load", TFPROF_I64("batch", 1), TFPROF_BOOL("in_cache", 0));
		TFPROF_SET_METADATA(tm, TFPROF_BOOL("in_cache", 1), TFPROF_STR("source", "disk"));
		TFPROF_SET_METADATA(tm, TFPROF_I64("batch", 7));
	}
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	const XLine *l = tt_my_line(s);
	assert_non_null(l);
	assert_int_equal(l->n_events, 1);
	const XEvent *e = l->events[0];
	assert_string_equal(tt_event_name(h, e), "Load");
	assert_int_equal(e->n_stats, 3); /* overridden keys appear once */
	assert_int_equal(tt_event_stat(h, e, "batch")->int64_value, 7);
	assert_int_equal(tt_event_stat(h, e, "in_cache")->int64_value, 1);
	const XStat *src = tt_event_stat(h, e, "source");
	assert_int_equal(src->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE);
	assert_string_equal(tt_stat_meta_name(h, src->ref_value), "disk");
	tt_xspace_free(s);
}

static void test_open_at_stop(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	tfprof_scope closed = tfprof_scope_begin("closed", NULL, 0);
	tfprof_scope_end(closed);
	tfprof_scope open = tfprof_scope_begin("open", NULL, 0);
	XSpace *s = tt_stop_and_read();
	tfprof_scope_end(open); /* after stop: ignored, no crash */
	const XPlane *h = tt_host(s);
	const XLine *l = tt_my_line(s);
	assert_int_equal(l->n_events, 2);
	const XEvent *e = l->events[1];
	assert_string_equal(tt_event_name(h, e), "open");
	assert_non_null(tt_event_stat(h, e, "tfprof_open_at_stop"));
	assert_null(tt_event_stat(h, l->events[0], "tfprof_open_at_stop"));
	/* It ends at the stop time, which is the profile's last instant. */
	const XStat *t0 = tt_plane_stat(tt_plane(s, "Task Environment"), "profile_start_time");
	const XStat *t1 = tt_plane_stat(tt_plane(s, "Task Environment"), "profile_stop_time");
	int64_t span_ps = (int64_t)(t1->uint64_value - t0->uint64_value) * 1000;
	/* Both clocks are read within one anchor, some tens of ns apart. */
	assert_true(llabs(tt_event_end_ps(l, e) - span_ps) <= 200000);
	assert_int_equal(tt_warning_count(s, "still open at stop"), 1);
	tt_xspace_free(s);
}

static tfprof_scope shared_handle;

static void *end_elsewhere(void *arg)
{
	(void)arg;
	tfprof_scope_end(shared_handle);
	return NULL;
}

/* Thread B, attached with an open scope of its own (serial 1, as A's), ends A's handle: the
 * fast end path must see the tag is not B's and leave B's scope open until B ends it. */
static void *end_foreign_same_serial(void *arg)
{
	(void)arg;
	{
		TFPROF_SCOPE_AS(mine, "b_scope", TFPROF_I64("k", 1));
		assert_int_equal(mine.serial, shared_handle.serial);
		tfprof_scope_end(shared_handle); /* A's: ignored here */
		{
			TFPROF_SCOPE("b_inner");
		}
	}
	return NULL;
}

static void test_foreign_handle_with_the_same_serial(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	{
		TFPROF_SCOPE_AS(a, "a_scope", TFPROF_I64("k", 0));
		shared_handle = a;
		pthread_t t;
		pthread_create(&t, NULL, end_foreign_same_serial, NULL);
		pthread_join(t, NULL);
	}
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	assert_int_equal(tt_count_events(h, "a_scope"), 1);
	assert_int_equal(tt_count_events(h, "b_scope"), 1);
	assert_int_equal(tt_count_events(h, "b_inner"), 1);
	/* b_inner nests in b_scope (which the foreign end did not close), and nothing is open or
	 * closed by a parent. */
	for (size_t li = 0; li < h->n_lines; li++) {
		const XLine *l = h->lines[li];
		if (l->n_events != 2)
			continue;
		assert_string_equal(tt_event_name(h, l->events[0]), "b_scope");
		assert_string_equal(tt_event_name(h, l->events[1]), "b_inner");
		assert_true(tt_event_end_ps(l, l->events[0]) >= tt_event_end_ps(l, l->events[1]));
		for (int k = 0; k < 2; k++) {
			assert_null(tt_event_stat(h, l->events[k], "tfprof_open_at_stop"));
			assert_null(tt_event_stat(h, l->events[k], "tfprof_closed_by_parent"));
		}
	}
	assert_non_null(tt_find_msg(s->warnings, s->n_warnings, "tfprof: 1 scope end was ignored"));
	tt_xspace_free(s);
}

static void test_bad_ends_are_ignored_and_counted(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	tfprof_scope outer = tfprof_scope_begin("outer", NULL, 0);
	shared_handle = tfprof_scope_begin("inner", NULL, 0);
	pthread_t t;
	pthread_create(&t, NULL, end_elsewhere, NULL); /* another thread: ignored */
	pthread_join(t, NULL);
	tfprof_scope_end(shared_handle);
	tfprof_scope_end(shared_handle); /* double end: ignored */
	tfprof_scope_end(outer);
	tfprof_scope_end(outer); /* double end of the outer one too */
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	const XLine *l = tt_my_line(s);
	assert_int_equal(l->n_events, 2);
	assert_string_equal(tt_event_name(h, l->events[0]), "outer");
	assert_string_equal(tt_event_name(h, l->events[1]), "inner");
	assert_null(tt_event_stat(h, l->events[0], "tfprof_open_at_stop"));
	assert_null(tt_event_stat(h, l->events[1], "tfprof_open_at_stop"));
	assert_int_equal(tt_warning_count(s, "ignored: ended on another thread"), 3);
	assert_non_null(tt_find_msg(s->warnings, s->n_warnings, "tfprof: 3 scope ends were ignored"));
	tt_xspace_free(s);

	/* A handle from an earlier session never touches the next one. */
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	tfprof_scope fresh = tfprof_scope_begin("fresh", NULL, 0);
	tfprof_scope_end(outer);
	tfprof_scope_end(fresh);
	s = tt_stop_and_read();
	l = tt_my_line(s);
	assert_int_equal(l->n_events, 1);
	assert_null(tt_event_stat(tt_host(s), l->events[0], "tfprof_open_at_stop"));
	assert_int_equal(tt_warning_count(s, "ignored: ended on another thread"), 1);
	/* One is singular in the message too. */
	assert_non_null(tt_find_msg(s->warnings, s->n_warnings, "tfprof: 1 scope end was ignored"));
	tt_xspace_free(s);
}

static void test_misnested_end_closes_inner(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	tfprof_scope a = tfprof_scope_begin("a", NULL, 0);
	tfprof_scope b = tfprof_scope_begin("b", NULL, 0);
	tfprof_scope_end(a); /* closes b too */
	tfprof_scope_end(b); /* already closed: ignored */
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	const XLine *l = tt_my_line(s);
	assert_int_equal(l->n_events, 2);
	assert_non_null(tt_event_stat(h, l->events[1], "tfprof_closed_by_parent"));
	assert_int_equal(tt_event_end_ps(l, l->events[0]), tt_event_end_ps(l, l->events[1]));
	assert_int_equal(tt_warning_count(s, "closed early"), 1);
	assert_int_equal(tt_warning_count(s, "ignored: ended on another thread"), 1);
	tt_xspace_free(s);
}

static int leave_by_return(int x)
{
	TFPROF_SCOPE("by_return");
	if (x > 0)
		return x;
	return 0;
}

static void test_scope_macro_cleanup(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	leave_by_return(1);
	for (int i = 0; i < 3; i++) {
		TFPROF_SCOPE("by_break", TFPROF_I64("i", i));
		if (i == 1)
			break;
	}
	{
		TFPROF_SCOPE("by_goto");
		goto done;
	}
done:;
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	assert_int_equal(tt_count_events(h, "by_return"), 1);
	assert_int_equal(tt_count_events(h, "by_break"), 2);
	assert_int_equal(tt_count_events(h, "by_goto"), 1);
	const XLine *l = tt_my_line(s);
	for (size_t i = 0; i < l->n_events; i++)
		assert_null(tt_event_stat(h, l->events[i], "tfprof_open_at_stop"));
	assert_int_equal(tt_warning_count(s, "ignored"), -1);
	tt_xspace_free(s);
}

static void test_options_struct(void **state)
{
	(void)state;
	struct tfprof_options bad = { .sz = 0 };
	assert_int_equal(tfprof_start(tt_logdir, &bad), TFPROF_ERR_OPTIONS);
	/* An older caller's shorter struct: fields beyond sz keep their defaults. */
	struct tfprof_options old = { .sz = offsetof(struct tfprof_options, host_name), .run_name = "short",
				      .host_name = "ignored-host" };
	assert_int_equal(tfprof_start(tt_logdir, &old), 0);
	assert_int_equal(tfprof_stop(), 0);
	assert_non_null(strstr(tfprof_last_output(), "/short/"));
	assert_null(strstr(tfprof_last_output(), "ignored-host"));
	/* A newer caller's longer struct: fine while the unknown tail is zero. */
	struct {
		struct tfprof_options o;
		uint64_t future;
	} newer = { .o = { .sz = sizeof newer, .run_name = "long", .host_name = "h1" } };
	assert_int_equal(tfprof_start(tt_logdir, &newer.o), 0);
	assert_int_equal(tfprof_stop(), 0);
	assert_non_null(strstr(tfprof_last_output(), "/long/h1.xplane.pb"));
	newer.future = 1;
	assert_int_equal(tfprof_start(tt_logdir, &newer.o), TFPROF_ERR_OPTIONS);
	/* A run name must be one directory name. */
	TFPROF_OPTIONS(slash, .run_name = "a/b");
	assert_int_equal(tfprof_start(tt_logdir, &slash), TFPROF_ERR_OPTIONS);
	assert_false(tfprof_enabled());
}

static int log_calls;
static char last_log[1024];

static void capture_log(int level, const char *msg, void *ctx)
{
	(void)level;
	*(int *)ctx += 1;
	snprintf(last_log, sizeof last_log, "%s", msg);
}

static void test_log_callback(void **state)
{
	(void)state;
	TFPROF_OPTIONS(o, .log_fn = capture_log, .log_ctx = &log_calls, .run_name = "logged");
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	assert_int_equal(tfprof_stop(), 0);
	assert_true(log_calls >= 1);
	assert_non_null(strstr(last_log, tfprof_last_output()));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_rules, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_events_only_while_on, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_set_metadata, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_foreign_handle_with_the_same_serial, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_open_at_stop, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_bad_ends_are_ignored_and_counted, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_misnested_end_closes_inner, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_scope_macro_cleanup, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_options_struct, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_log_callback, tt_setup, tt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
