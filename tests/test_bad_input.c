/* SPDX-License-Identifier: Apache-2.0 */
/* Bad input must never crash, corrupt the file or vanish silently: NULL and empty names, NULL
 * keys and values, megabyte strings, the characters TraceMe's encoding reserves, invalid UTF-8,
 * 10,000 arguments on one scope, and 1,000 start/stop cycles. */
#include "strtab.h"
#include "tt.h"

static bool valid_utf8(const char *s)
{
	size_t n;
	char *r = tfprof__utf8_sanitize(s, strlen(s), &n);
	bool same = strcmp(r, s) == 0;
	free(r);
	return same;
}

/* Every string in the file must be valid UTF-8, or protobuf's C++ parser (xprof's) rejects it. */
static void assert_all_utf8(const XSpace *s)
{
	for (size_t i = 0; i < s->n_hostnames; i++)
		assert_true(valid_utf8(s->hostnames[i]));
	for (size_t i = 0; i < s->n_warnings; i++)
		assert_true(valid_utf8(s->warnings[i]));
	for (size_t i = 0; i < s->n_planes; i++) {
		const XPlane *p = s->planes[i];
		assert_true(valid_utf8(p->name));
		for (size_t j = 0; j < p->n_lines; j++)
			assert_true(valid_utf8(p->lines[j]->name));
		for (size_t j = 0; j < p->n_event_metadata; j++)
			assert_true(valid_utf8(p->event_metadata[j]->value->name));
		for (size_t j = 0; j < p->n_stat_metadata; j++)
			assert_true(valid_utf8(p->stat_metadata[j]->value->name));
	}
}

static void test_null_and_empty(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	tfprof_scope a = tfprof_scope_begin(NULL, NULL, 0);
	tfprof_scope_end(a);
	tfprof_scope b = tfprof_scope_begin("", NULL, 3); /* NULL args with nargs > 0 */
	tfprof_scope_end(b);
	struct tfprof_arg args[] = {
		{ .key = NULL, .type = TFPROF_ARG_I64, .v.i64 = 1 },
		{ .key = "", .type = TFPROF_ARG_I64, .v.i64 = 2 },
		{ .key = "nullstr", .type = TFPROF_ARG_STR, .v.str = NULL },
		{ .key = "badtype", .type = 99, .v.i64 = 3 },
		{ .key = "ok", .type = TFPROF_ARG_I64, .v.i64 = 4 },
	};
	tfprof_scope c = tfprof_scope_begin("args", args, 5);
	tfprof_scope_set_metadata(c, NULL, 4);
	tfprof_scope_end(c);
	tfprof_scope_end((tfprof_scope){ 12345, 678 }); /* a forged handle */
	tfprof_scope_set_metadata((tfprof_scope){ 12345, 678 }, args, 5);
	tfprof_set_thread_name(NULL);
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	assert_int_equal(tt_count_events(h, "(unnamed)"), 2);
	const XLine *l = tt_my_line(s);
	const XEvent *e = l->events[2];
	assert_int_equal(e->n_stats, 2);
	assert_string_equal(tt_stat_meta_name(h, tt_event_stat(h, e, "nullstr")->ref_value), "(null)");
	assert_int_equal(tt_event_stat(h, e, "ok")->int64_value, 4);
	assert_int_equal(tt_warning_count(s, "ignored: empty key or unknown type"), 3);
	assert_int_equal(tt_warning_count(s, "ignored: ended on another thread"), 1);
	assert_int_equal(tt_warning_count(s, "ignored: the scope was not open"), 1);
	tt_xspace_free(s);
}

static void test_huge_and_reserved_strings(void **state)
{
	(void)state;
	const size_t mb = 1 << 20;
	char *big = malloc(mb + 1);
	memset(big, 'n', mb);
	big[mb] = 0;
	char *bigkey = strdup(big);
	bigkey[0] = 'k';
	char *bigval = strdup(big);
	bigval[0] = 'v';
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	struct tfprof_arg a1[] = {
		{ .key = bigkey, .type = TFPROF_ARG_STR, .v.str = bigval },
	};
	tfprof_scope s1 = tfprof_scope_begin(big, a1, 1);
	/* The caller may reuse its buffers as soon as begin returns. */
	memset(big, 'x', 16);
	memset(bigkey, 'x', 16);
	memset(bigval, 'x', 16);
	tfprof_scope_end(s1);
	struct tfprof_arg a2[] = {
		{ .key = "k#=,ey", .type = TFPROF_ARG_STR, .v.str = "v#a=1,b=2#" },
	};
	tfprof_scope s2 = tfprof_scope_begin("name#with=reserved,chars#", a2, 1);
	tfprof_scope_end(s2);
	struct tfprof_arg a3[] = {
		{ .key = "key\xff", .type = TFPROF_ARG_STR, .v.str = "val\xc3(" },
	};
	tfprof_scope s3 = tfprof_scope_begin("bad\xfe\xffname", a3, 1);
	tfprof_scope_end(s3);
	TFPROF_OPTIONS(o, .host_name = "host\xff");
	(void)o;
	XSpace *s = tt_stop_and_read();
	assert_all_utf8(s);
	const XPlane *h = tt_host(s);
	const XLine *l = tt_my_line(s);
	assert_int_equal(l->n_events, 3);
	const char *n0 = tt_event_name(h, l->events[0]);
	assert_int_equal(strlen(n0), mb);
	assert_int_equal(n0[0], 'n');
	const XStat *st = l->events[0]->stats[0];
	const char *k0 = tt_stat_meta_name(h, (uint64_t)st->metadata_id);
	assert_int_equal(strlen(k0), mb);
	assert_int_equal(k0[0], 'k');
	const char *v0 = tt_stat_meta_name(h, st->ref_value);
	assert_int_equal(strlen(v0), mb);
	assert_int_equal(v0[0], 'v');
	/* TraceMe's separators are plain characters here: kept verbatim. */
	assert_string_equal(tt_event_name(h, l->events[1]), "name#with=reserved,chars#");
	const XStat *r = tt_event_stat(h, l->events[1], "k#=,ey");
	assert_non_null(r);
	assert_string_equal(tt_stat_meta_name(h, r->ref_value), "v#a=1,b=2#");
	/* Invalid UTF-8 is repaired with U+FFFD, not dropped. */
	assert_string_equal(tt_event_name(h, l->events[2]), "bad\xef\xbf\xbd\xef\xbf\xbdname");
	r = tt_event_stat(h, l->events[2], "key\xef\xbf\xbd");
	assert_non_null(r);
	assert_string_equal(tt_stat_meta_name(h, r->ref_value), "val\xef\xbf\xbd(");
	tt_xspace_free(s);

	/* A host name that is not UTF-8 still makes a readable file. */
	TFPROF_OPTIONS(o2, .host_name = "host\xff", .run_name = "badhost");
	assert_int_equal(tfprof_start(tt_logdir, &o2), 0);
	s = tt_stop_and_read();
	assert_all_utf8(s);
	assert_string_equal(s->hostnames[0], "host\xef\xbf\xbd");
	tt_xspace_free(s);
	free(big);
	free(bigkey);
	free(bigval);
}

static void test_ten_thousand_args(void **state)
{
	(void)state;
	enum { N = 10000 };
	struct tfprof_arg *args = calloc(N, sizeof *args);
	char (*keys)[16] = calloc(N, 16);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], 16, "k%d", i);
		args[i] = (struct tfprof_arg){ .key = keys[i], .type = TFPROF_ARG_I64, .v.i64 = i };
	}
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	tfprof_scope sc = tfprof_scope_begin("many", args, N);
	tfprof_scope_set_metadata(sc, args, N); /* same keys again: overrides, no duplicates */
	tfprof_scope_end(sc);
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	const XEvent *e = tt_my_line(s)->events[0];
	assert_int_equal(e->n_stats, N);
	for (int i = 0; i < N; i += 499) {
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		assert_int_equal(tt_event_stat(h, e, k)->int64_value, i);
	}
	tt_xspace_free(s);
	free(args);
	free(keys);
}

static void test_thousand_cycles(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		char run[32];
		snprintf(run, sizeof run, "c%d", i);
		TFPROF_OPTIONS(o, .run_name = run, .host_name = "h");
		assert_int_equal(tfprof_start(tt_logdir, &o), 0);
		TFPROF_SCOPE("cycle", TFPROF_I64("i", i));
		assert_int_equal(tfprof_stop(), 0);
		if (i % 250 == 0 || i == 999) {
			XSpace *s = tt_read_xspace(tfprof_last_output());
			const XLine *l = tt_my_line(s);
			assert_int_equal(l->n_events, 1);
			assert_int_equal(tt_event_stat(tt_host(s), l->events[0], "i")->int64_value, i);
			tt_xspace_free(s);
		}
	}
	char *prof;
	assert_true(asprintf(&prof, "%s/plugins/profile", tt_logdir) > 0);
	assert_int_equal(tt_dir_entries(prof), 1000);
	free(prof);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_null_and_empty, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_huge_and_reserved_strings, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_ten_thousand_args, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_thousand_cycles, tt_setup, tt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
