/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of argument signatures (src/arg_sig.c) through the public API: a call site's scopes keep
 * only their argument values, so every event must still come back with exactly its own keys,
 * types and values, whatever shapes one site is called with, past the signature limits, and
 * when many threads meet a site for the first time at once. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "arg_sig.h"
#include "tt.h"

/* The stat of key on event e: it must exist and have the given value case. */
static const XStat *stat_of(const XPlane *h, const XEvent *e, const char *key, int value_case)
{
	const XStat *st = tt_event_stat(h, e, key);
	assert_non_null(st);
	assert_int_equal(st->value_case, value_case);
	return st;
}

#define I64_CASE TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE
#define U64_CASE TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE
#define F64_CASE TENSORFLOW__PROFILER__XSTAT__VALUE_DOUBLE_VALUE
#define STR_CASE TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE

static void test_every_type_round_trips(void **state)
{
	(void)state;
	const int64_t i64s[] = { 0, -1, INT64_MIN, INT64_MAX, 42 };
	const uint64_t u64s[] = { 0, 1, UINT64_MAX, 1ull << 63, 7 };
	const double f64s[] = { 0.0, -2.5, 1e300, -0.0, 3.25 };
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	for (int i = 0; i < 5; i++) {
		/* A bool next to wider values: each must come back whole, true and false. */
		TFPROF_SCOPE("typed", TFPROF_I64("i", i64s[i]), TFPROF_BOOL("b", i & 1), TFPROF_U64("u", u64s[i]),
			     TFPROF_F64("f", f64s[i]), TFPROF_BOOL("t", i != 2));
	}
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	const XLine *l = tt_my_line(s);
	assert_int_equal(l->n_events, 5);
	for (int i = 0; i < 5; i++) {
		const XEvent *e = l->events[i];
		assert_string_equal(tt_event_name(h, e), "typed");
		assert_int_equal(e->n_stats, 5);
		assert_true(stat_of(h, e, "i", I64_CASE)->int64_value == i64s[i]);
		assert_int_equal(stat_of(h, e, "b", I64_CASE)->int64_value, i & 1);
		assert_true(stat_of(h, e, "u", U64_CASE)->uint64_value == u64s[i]);
		double f = stat_of(h, e, "f", F64_CASE)->double_value;
		assert_true(f == f64s[i] && signbit(f) == signbit(f64s[i]));
		assert_int_equal(stat_of(h, e, "t", I64_CASE)->int64_value, i != 2);
	}
	tt_xspace_free(s);
}

/* One static site descriptor called with arrays of different shapes, as a program that calls
 * tfprof_scope_begin_site() itself may: each event has its own args, never another shape's. */
static struct tfprof_site shape_site = { "shaped", __FILE__, __LINE__, 0, 0 };

static void begin_end(const struct tfprof_arg *a, size_t n)
{
	tfprof_scope_end(tfprof_scope_begin_site(&shape_site, a, n));
}

static void test_one_site_many_shapes(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	for (int round = 0; round < 3; round++) {
		struct tfprof_arg a1[] = { TFPROF_I64("a", 10 + round) };
		struct tfprof_arg a2[] = { TFPROF_F64("a", 0.5 + round) };
		struct tfprof_arg a3[] = { TFPROF_I64("b", 20 + round) };
		struct tfprof_arg a4[] = { TFPROF_I64("a", 30 + round), TFPROF_I64("b", 40 + round) };
		/* A string value and a key that is not a literal are copied at the begin: the
		 * caller overwrites both right after. */
		char val[8];
		snprintf(val, sizeof val, "%s", round == 1 ? "one" : "other");
		struct tfprof_arg a5[] = { TFPROF_STR("a", val) };
		char key[] = "a";
		struct tfprof_arg a6[] = { { .key = key, .type = TFPROF_ARG_I64, .v.i64 = 60 + round } };
		begin_end(a1, 1);
		begin_end(a2, 1);
		begin_end(a3, 1);
		begin_end(a4, 2);
		begin_end(a5, 1);
		snprintf(val, sizeof val, "gone");
		begin_end(NULL, 0);
		begin_end(a6, 1);
		key[0] = 'z';
	}
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	const XLine *l = tt_my_line(s);
	assert_int_equal(l->n_events, 3 * 7);
	for (int round = 0; round < 3; round++) {
		const XEvent *const *e = (const XEvent *const *)&l->events[round * 7];
		for (int k = 0; k < 7; k++)
			assert_string_equal(tt_event_name(h, e[k]), "shaped");
		assert_int_equal(e[0]->n_stats, 1);
		assert_int_equal(stat_of(h, e[0], "a", I64_CASE)->int64_value, 10 + round);
		assert_int_equal(e[1]->n_stats, 1);
		assert_true(stat_of(h, e[1], "a", F64_CASE)->double_value == 0.5 + round);
		assert_int_equal(e[2]->n_stats, 1);
		assert_int_equal(stat_of(h, e[2], "b", I64_CASE)->int64_value, 20 + round);
		assert_int_equal(e[3]->n_stats, 2);
		assert_int_equal(stat_of(h, e[3], "a", I64_CASE)->int64_value, 30 + round);
		assert_int_equal(stat_of(h, e[3], "b", I64_CASE)->int64_value, 40 + round);
		assert_int_equal(e[4]->n_stats, 1);
		assert_string_equal(tt_stat_meta_name(h, stat_of(h, e[4], "a", STR_CASE)->ref_value),
				    round == 1 ? "one" : "other");
		assert_int_equal(e[5]->n_stats, 0);
		assert_int_equal(e[6]->n_stats, 1);
		assert_int_equal(stat_of(h, e[6], "a", I64_CASE)->int64_value, 60 + round);
	}
	tt_xspace_free(s);
}

/* More args than a signature holds, and a site with no name: whole args, same result. */
static void test_many_args_and_unnamed_site(void **state)
{
	(void)state;
	static struct tfprof_site unnamed = { "", __FILE__, __LINE__, 0, 0 };
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	for (int i = 0; i < 2; i++) {
		TFPROF_SCOPE("eight", TFPROF_I64("k0", i), TFPROF_I64("k1", i + 1), TFPROF_I64("k2", i + 2),
			     TFPROF_I64("k3", i + 3), TFPROF_I64("k4", i + 4), TFPROF_I64("k5", i + 5),
			     TFPROF_I64("k6", i + 6), TFPROF_BOOL("k7", i));
		TFPROF_SCOPE("nine", TFPROF_I64("k0", i), TFPROF_I64("k1", i + 1), TFPROF_I64("k2", i + 2),
			     TFPROF_I64("k3", i + 3), TFPROF_I64("k4", i + 4), TFPROF_I64("k5", i + 5),
			     TFPROF_I64("k6", i + 6), TFPROF_I64("k7", i + 7), TFPROF_BOOL("k8", !i));
		struct tfprof_arg a[] = { TFPROF_I64("x", 5 + i) };
		tfprof_scope_end(tfprof_scope_begin_site(&unnamed, a, 1));
	}
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	const XLine *l = tt_my_line(s);
	assert_int_equal(l->n_events, 6);
	for (int i = 0; i < 2; i++) {
		const XEvent *eight = l->events[i * 3], *nine = l->events[i * 3 + 1], *un = l->events[i * 3 + 2];
		assert_string_equal(tt_event_name(h, eight), "eight");
		assert_string_equal(tt_event_name(h, nine), "nine");
		assert_int_equal(eight->n_stats, 8);
		assert_int_equal(nine->n_stats, 9);
		char key[4];
		for (int k = 0; k < 7; k++) {
			snprintf(key, sizeof key, "k%d", k);
			assert_int_equal(stat_of(h, eight, key, I64_CASE)->int64_value, i + k);
			assert_int_equal(stat_of(h, nine, key, I64_CASE)->int64_value, i + k);
		}
		assert_int_equal(stat_of(h, eight, "k7", I64_CASE)->int64_value, i);
		assert_int_equal(stat_of(h, nine, "k7", I64_CASE)->int64_value, i + 7);
		assert_int_equal(stat_of(h, nine, "k8", I64_CASE)->int64_value, !i);
		assert_string_equal(tt_event_name(h, un), "(unnamed)");
		assert_int_equal(stat_of(h, un, "x", I64_CASE)->int64_value, 5 + i);
	}
	tt_xspace_free(s);
}

/* More sites than the table holds signatures: the later ones keep whole args, and every event,
 * before and after the table filled, is right. Run last: it fills the table for the process. */
enum { NSITES = TFPROF__SIG_SLOTS + 500 };
static struct tfprof_site many[NSITES];

static void test_more_sites_than_signatures(void **state)
{
	(void)state;
	static char names[NSITES][12];
	for (int i = 0; i < NSITES; i++) {
		snprintf(names[i], sizeof names[i], "site%d", i);
		many[i] = (struct tfprof_site){ names[i], __FILE__, (uint32_t)i, 0, 0 };
	}
	TFPROF_OPTIONS(o, .max_memory = (size_t)256 << 20);
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	size_t locks_after_first = 0;
	for (int rep = 0; rep < 2; rep++) {
		for (int i = 0; i < NSITES; i++) {
			struct tfprof_arg a[] = { TFPROF_I64("n", i * 2 + rep), TFPROF_BOOL("odd", i & 1) };
			tfprof_scope_end(tfprof_scope_begin_site(&many[i], a, 2));
		}
		if (rep == 0)
			locks_after_first = tfprof__sig_lock_count();
	}
	/* Once full, the table is no longer locked for the shapes it cannot take: the second
	 * round's begins of the sites left out take no lock at all. */
	assert_int_equal(tfprof__sig_lock_count(), locks_after_first);
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	const XLine *l = tt_my_line(s);
	assert_int_equal(l->n_events, 2 * NSITES);
	for (int rep = 0; rep < 2; rep++)
		for (int i = 0; i < NSITES; i++) {
			const XEvent *e = l->events[rep * NSITES + i];
			assert_string_equal(tt_event_name(h, e), names[i]);
			assert_int_equal(e->n_stats, 2);
			assert_int_equal(stat_of(h, e, "n", I64_CASE)->int64_value, i * 2 + rep);
			assert_int_equal(stat_of(h, e, "odd", I64_CASE)->int64_value, i & 1);
		}
	tt_xspace_free(s);
}

/* Threads that meet the same new sites at the same moment add each signature once between them,
 * and each thread's events carry that thread's values. */
enum { NTHREADS = 8, NRACE = 64, PER_THREAD = 200 };
static struct tfprof_site race_sites[NRACE];
static pthread_barrier_t race_barrier;

static void *race_body(void *p)
{
	int64_t t = (int64_t)(intptr_t)p;
	pthread_barrier_wait(&race_barrier);
	for (int i = 0; i < PER_THREAD; i++) {
		struct tfprof_arg a[] = { TFPROF_I64("thread", t), TFPROF_I64("i", i) };
		tfprof_scope_end(tfprof_scope_begin_site(&race_sites[i % NRACE], a, 2));
	}
	return NULL;
}

static void test_threads_meet_new_sites_at_once(void **state)
{
	(void)state;
	for (int i = 0; i < NRACE; i++)
		race_sites[i] = (struct tfprof_site){ "race", __FILE__, (uint32_t)i, 0, 0 };
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	pthread_barrier_init(&race_barrier, NULL, NTHREADS);
	pthread_t th[NTHREADS];
	for (int t = 0; t < NTHREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, race_body, (void *)(intptr_t)t), 0);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&race_barrier);
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	size_t seen = 0;
	for (size_t li = 0; li < h->n_lines; li++) {
		const XLine *l = h->lines[li];
		if (l->n_events == 0 || strcmp(tt_event_name(h, l->events[0]), "race") != 0)
			continue;
		assert_int_equal(l->n_events, PER_THREAD);
		int64_t t = stat_of(h, l->events[0], "thread", I64_CASE)->int64_value;
		for (size_t i = 0; i < l->n_events; i++) {
			assert_int_equal(stat_of(h, l->events[i], "thread", I64_CASE)->int64_value, t);
			assert_int_equal(stat_of(h, l->events[i], "i", I64_CASE)->int64_value, (int64_t)i);
		}
		seen++;
	}
	assert_int_equal(seen, NTHREADS);
	tt_xspace_free(s);
	/* One signature per site, however many threads raced to add it. */
	for (int i = 0; i < NRACE; i++) {
		int found = 0;
		for (size_t k = 0; k < TFPROF__SIG_SLOTS; k++)
			if (tfprof__sig_table[k] && tfprof__sig_table[k]->site == &race_sites[i])
				found++;
		assert_int_equal(found, 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_type_round_trips, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_one_site_many_shapes, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_many_args_and_unnamed_site, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_threads_meet_new_sites_at_once, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_more_sites_than_signatures, tt_setup, tt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
