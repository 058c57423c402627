/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of tfprof-capture's parsing (src/cli/capture_args.c): duration units and rounding, the
 * address forms it accepts and refuses, and the names that may not become files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "capture_args.h"

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		uint64_t ms;
	} good[] = { { "2", 2000 }, { "2s", 2000 }, { "1.5s", 1500 }, { "250ms", 250 },
		     { "0.01m", 600 }, { "1m", 60000 }, { "0", 0 }, { ".5", 500 },
		     { "0.0004s", 0 }, { "0.0006s", 1 }, { "86400s", 86400000 }, { "1440m", 86400000 } };
	static const char *const bad[] = { "", "s", "-1", "+1", " 1", "1 ", "1h", "1sec", "nan", "inf",
					   "0x10", "1e3", "1e3x", "1.2.3",  "86400.001s", "1441m", "1ms2" };
	uint64_t ms;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = 12345;
		assert_true(capture_parse_duration(good[i].text, &ms));
		assert_int_equal(ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(capture_parse_duration(bad[i], &ms));
}

static void test_levels(void **state)
{
	unsigned v;

	(void)state;
	assert_true(capture_parse_level("3", 3, &v));
	assert_int_equal(v, 3);
	assert_false(capture_parse_level("4", 3, &v));
	assert_false(capture_parse_level("-1", 3, &v));
	assert_false(capture_parse_level("1x", 3, &v));
	assert_false(capture_parse_level("", 3, &v));
	assert_false(capture_parse_level("99999999999999999999", 100, &v));
}

static void test_addresses(void **state)
{
	static const char *const good[] = { "localhost:6009", "10.0.0.2:1", "[::1]:6009",
					    "worker-3.cluster.local:65535", "h_1:80" };
	static const char *const bad[] = { "", "localhost", ":6009", "localhost:", "localhost:0",
					   "localhost:65536", "localhost:http", "::1:6009", "[::1:6009",
					   "[]:6009", "[::1]6009", "a b:1", "a/b:1", "a,b:1", "grpc://",
					   "http://a:1", "user@a:1", "a:1x", "a]:1" };
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(capture_check_address(good[i], &why), 0);
	assert_int_equal(capture_check_address("grpc://localhost:6009", &why), 7);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(capture_check_address(bad[i], &why), -1);
		assert_non_null(why);
	}
}

static void test_local_hosts(void **state)
{
	(void)state;
	assert_true(capture_host_is_local("localhost:6009"));
	assert_true(capture_host_is_local("LOCALHOST:6009"));
	assert_true(capture_host_is_local("127.0.0.1:6009"));
	assert_true(capture_host_is_local("[::1]:6009"));
	assert_false(capture_host_is_local("10.1.2.3:6009"));
	assert_false(capture_host_is_local("localhostx:6009"));
	assert_false(capture_host_is_local("127:6009"));
}

static void test_file_names(void **state)
{
	static const char *const good[] = { "xplane.pb", "trace.json.gz", "run_1", "2024_01_02" };
	static const char *const bad[] = { "", ".", "..", "../x", "a/b", "/abs", ".hidden", "a..b",
					   "tab\there" };

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(capture_file_name_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(capture_file_name_ok(bad[i]));
	assert_false(capture_file_name_ok(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),   cmocka_unit_test(test_levels),
		cmocka_unit_test(test_addresses),   cmocka_unit_test(test_local_hosts),
		cmocka_unit_test(test_file_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
