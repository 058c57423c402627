/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of the profile's string table: deduplication, growth, and the repair of invalid UTF-8
 * that would otherwise make protobuf readers reject the whole file. */
#include "strtab.h"
#include "tt.h"

static void test_intern_dedups_and_grows(void **state)
{
	(void)state;
	struct tfprof__strtab t;
	assert_int_equal(tfprof__strtab_init(&t), 0);
	assert_int_equal(tfprof__strtab_intern(&t, ""), 0);
	uint32_t a = tfprof__strtab_intern(&t, "alpha");
	assert_int_equal(tfprof__strtab_intern(&t, "alpha"), a);
	assert_int_not_equal(tfprof__strtab_intern(&t, "alph"), a);
	char buf[32];
	for (int i = 0; i < 100000; i++) {
		snprintf(buf, sizeof buf, "s%d", i);
		uint32_t id = tfprof__strtab_intern(&t, buf);
		assert_string_equal(tfprof__strtab_get(&t, id), buf);
	}
	for (int i = 0; i < 100000; i += 997) {
		snprintf(buf, sizeof buf, "s%d", i);
		assert_int_equal(tfprof__strtab_find(&t, buf), tfprof__strtab_intern(&t, buf));
	}
	assert_int_equal(t.count, 100000 + 3);
	assert_int_equal(tfprof__strtab_find(&t, "missing"), UINT32_MAX);
	tfprof__strtab_free(&t);
}

static void check_sanitized(const char *in, const char *want)
{
	size_t n;
	char *out = tfprof__utf8_sanitize(in, strlen(in), &n);
	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
	free(out);
}

static void test_utf8_repair(void **state)
{
	(void)state;
	check_sanitized("plain #=, ascii", "plain #=, ascii");
	check_sanitized("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	check_sanitized("bad\xff", "bad\xef\xbf\xbd");
	check_sanitized("\xc3", "\xef\xbf\xbd");                                /* truncated */
	check_sanitized("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");                /* overlong */
	check_sanitized("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* surrogate */
	check_sanitized("\xf4\x90\x80\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx");
	struct tfprof__strtab t;
	assert_int_equal(tfprof__strtab_init(&t), 0);
	uint32_t id = tfprof__strtab_intern(&t, "x\xffy");
	assert_string_equal(tfprof__strtab_get(&t, id), "x\xef\xbf\xbdy");
	/* The repaired form and its valid twin are one entry. */
	assert_int_equal(tfprof__strtab_intern(&t, "x\xef\xbf\xbdy"), id);
	tfprof__strtab_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intern_dedups_and_grows),
		cmocka_unit_test(test_utf8_repair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
