/* SPDX-License-Identifier: Apache-2.0 */
/* The profiler server's request checks (src/server/request.c): every way a client could make the
 * server write where it should not, or record what it should not, is refused with the right
 * status and a reason; good requests come out as the client meant them. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "profiler_service.pb-c.h"
#include "request.h"

#define NOW_NS 2000000000000000000ull
#define MAX_MS 600000u

static char tmp[1024];

struct req {
	const char *root, *sid, *host;
	uint64_t duration_ms, opts_duration_ms, start_ns;
	uint32_t version, host_level, device_level, python_level;
	bool no_opts;
};

static uint8_t *pack(const struct req *q, size_t *len)
{
	Tensorflow__ProfileRequest r = TENSORFLOW__PROFILE_REQUEST__INIT;
	Tensorflow__ProfileOptions o = TENSORFLOW__PROFILE_OPTIONS__INIT;
	r.repository_root = (char *)(q->root ? q->root : "");
	r.session_id = (char *)(q->sid ? q->sid : "");
	r.host_name = (char *)(q->host ? q->host : "");
	r.duration_ms = q->duration_ms;
	if (!q->no_opts) {
		o.version = q->version;
		o.duration_ms = q->opts_duration_ms;
		o.start_timestamp_ns = q->start_ns;
		o.host_tracer_level = q->host_level;
		o.device_tracer_level = q->device_level;
		o.python_tracer_level = q->python_level;
		r.opts = &o;
	}
	*len = tensorflow__profile_request__get_packed_size(&r);
	uint8_t *b = malloc(*len + 1);
	assert_non_null(b);
	tensorflow__profile_request__pack(&r, b);
	return b;
}

static int decode(const struct req *q, const char *server_root, struct tfprof__profile_req *out,
		  char *msg)
{
	size_t len;
	uint8_t *b = pack(q, &len);
	int rc = tfprof__decode_profile_request(b, len, server_root, MAX_MS, NOW_NS, out, msg, 512);
	free(b);
	return rc;
}

static void expect(const struct req *q, const char *server_root, int code, const char *in_msg)
{
	struct tfprof__profile_req out;
	char msg[512] = "";
	int rc = decode(q, server_root, &out, msg);
	if (rc != code || (in_msg && !strstr(msg, in_msg)))
		fail_msg("expected status %d with \"%s\", got %d: %s", code, in_msg ? in_msg : "", rc, msg);
}

static void good_request_as_xprof_sends_it(void **state)
{
	(void)state;
	struct req q = { .root = "/logs/plugins/profile", .sid = "2026_12_04_10_00_00",
			 .host = "localhost:6009", .duration_ms = 2000, .opts_duration_ms = 2000,
			 .start_ns = NOW_NS + 500000000, .version = 1, .host_level = 2,
			 .device_level = 1, .python_level = 1 };
	struct tfprof__profile_req out;
	char msg[512];
	assert_int_equal(decode(&q, NULL, &out, msg), TFPROF__RPC_OK);
	assert_string_equal(out.root, "/logs/plugins/profile");
	assert_string_equal(out.session_id, "2026_12_04_10_00_00");
	assert_string_equal(out.host, "localhost:6009");
	assert_int_equal(out.duration_ms, 2000);
	assert_int_equal(out.start_ns, NOW_NS + 500000000);
	assert_int_equal(out.host_level, 2);
	assert_int_equal(out.device_level, 1);
	assert_int_equal(out.python_level, 1);
}

static void version_zero_means_tensorflows_defaults(void **state)
{
	(void)state;
	/* proto3 cannot tell 0 from unset: TensorFlow's server reads version 0 as "defaults". */
	struct req q = { .root = "/r", .sid = "s", .duration_ms = 10, .host_level = 0,
			 .device_level = 0 };
	struct tfprof__profile_req out;
	char msg[512];
	assert_int_equal(decode(&q, NULL, &out, msg), TFPROF__RPC_OK);
	assert_int_equal(out.host_level, 2);
	assert_int_equal(out.device_level, 1);
	assert_int_equal(out.python_level, 0);
	q.version = 1;
	assert_int_equal(decode(&q, NULL, &out, msg), TFPROF__RPC_OK);
	assert_int_equal(out.host_level, 0);
	assert_int_equal(out.device_level, 0);
	/* No options at all: defaults, and the top-level duration. */
	struct req bare = { .root = "/r", .sid = "s", .duration_ms = 10, .no_opts = true };
	assert_int_equal(decode(&bare, NULL, &out, msg), TFPROF__RPC_OK);
	assert_int_equal(out.host_level, 2);
	assert_int_equal(out.duration_ms, 10);
	assert_string_equal(out.host, "");
}

static void names_must_be_single_components(void **state)
{
	(void)state;
	const char *bad[] = { "..", ".", "a/b", "../../etc", "/abs", "x/" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct req q = { .root = "/r", .sid = bad[i], .duration_ms = 10 };
		expect(&q, NULL, TFPROF__RPC_INVALID_ARGUMENT, "session_id");
		struct req h = { .root = "/r", .sid = "s", .host = bad[i], .duration_ms = 10 };
		expect(&h, NULL, TFPROF__RPC_INVALID_ARGUMENT, "host_name");
	}
	struct req empty = { .root = "/r", .sid = "", .duration_ms = 10 };
	expect(&empty, NULL, TFPROF__RPC_INVALID_ARGUMENT, "session_id is empty");
	char longname[TFPROF__MAX_NAME + 2];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	struct req lng = { .root = "/r", .sid = longname, .duration_ms = 10 };
	expect(&lng, NULL, TFPROF__RPC_INVALID_ARGUMENT, "at most");
	longname[TFPROF__MAX_NAME] = '\0';
	struct req ok = { .root = "/r", .sid = longname, .duration_ms = 10 };
	expect(&ok, NULL, TFPROF__RPC_OK, NULL);
}

static void nul_inside_a_name_is_refused(void **state)
{
	(void)state;
	/* Hand-made wire bytes: protobuf-c would hand "ok" over and drop the rest. */
	const uint8_t wire[] = { 0x08, 10,				      /* duration_ms */
				 0x2a, 2, '/', 'r',			      /* repository_root */
				 0x32, 5, 'o', 'k', 0, '/', 'x' };	      /* session_id */
	struct tfprof__profile_req out;
	char msg[512] = "";
	assert_int_equal(tfprof__decode_profile_request(wire, sizeof wire, NULL, MAX_MS, NOW_NS, &out, msg,
							sizeof msg),
			 TFPROF__RPC_INVALID_ARGUMENT);
	assert_non_null(strstr(msg, "NUL"));
}

static void roots_must_be_absolute_without_dotdot(void **state)
{
	(void)state;
	struct req rel = { .root = "logs/plugins/profile", .sid = "s", .duration_ms = 10 };
	expect(&rel, NULL, TFPROF__RPC_INVALID_ARGUMENT, "absolute");
	struct req up = { .root = "/logs/../../etc", .sid = "s", .duration_ms = 10 };
	expect(&up, NULL, TFPROF__RPC_INVALID_ARGUMENT, "\"..\"");
	struct req none = { .sid = "s", .duration_ms = 10 };
	expect(&none, NULL, TFPROF__RPC_INVALID_ARGUMENT, "repository_root is empty");
	/* Repeated slashes and "." are tidied, not refused when harmless... */
	struct req messy = { .root = "//logs///plugins/profile/", .sid = "s", .duration_ms = 10 };
	struct tfprof__profile_req out;
	char msg[512];
	assert_int_equal(decode(&messy, NULL, &out, msg), TFPROF__RPC_OK);
	assert_string_equal(out.root, "/logs/plugins/profile");
	/* ...but "." is refused like "..": a root names one directory one way. */
	struct req dot = { .root = "/logs/./x", .sid = "s", .duration_ms = 10 };
	expect(&dot, NULL, TFPROF__RPC_INVALID_ARGUMENT, "\"..\"");
}

static void server_root_confines_writes(void **state)
{
	(void)state;
	char root[PATH_MAX], inside[PATH_MAX + 32], outside[PATH_MAX], link[PATH_MAX + 16];
	snprintf(root, sizeof root, "%s/srvroot", tmp);
	snprintf(outside, sizeof outside, "%s/elsewhere", tmp);
	mkdir(root, 0755);
	mkdir(outside, 0755);
	char real[PATH_MAX];
	assert_non_null(realpath(root, real));
	snprintf(inside, sizeof inside, "%s/logs/plugins/profile", real);
	struct req in = { .root = inside, .sid = "s", .duration_ms = 10 };
	expect(&in, real, TFPROF__RPC_OK, NULL);
	struct req at = { .root = real, .sid = "s", .duration_ms = 10 };
	expect(&at, real, TFPROF__RPC_OK, NULL);
	struct req out = { .root = "/tmp/x", .sid = "s", .duration_ms = 10 };
	expect(&out, real, TFPROF__RPC_PERMISSION_DENIED, "outside the server root");
	/* A name that merely starts like the root is not inside it. */
	char sib[PATH_MAX + 32];
	snprintf(sib, sizeof sib, "%s-evil/plugins/profile", real);
	struct req s2 = { .root = sib, .sid = "s", .duration_ms = 10 };
	expect(&s2, real, TFPROF__RPC_PERMISSION_DENIED, "outside");
	/* A link inside the root that leads out of it. */
	snprintf(link, sizeof link, "%s/escape", real);
	unlink(link);
	assert_int_equal(symlink(outside, link), 0);
	char via[PATH_MAX + 32];
	snprintf(via, sizeof via, "%s/escape/plugins/profile", real);
	struct req l = { .root = via, .sid = "s", .duration_ms = 10 };
	expect(&l, real, TFPROF__RPC_PERMISSION_DENIED, "through a link");
	unlink(link);
}

static void durations_and_start_times_are_bounded(void **state)
{
	(void)state;
	struct req zero = { .root = "/r", .sid = "s" };
	expect(&zero, NULL, TFPROF__RPC_INVALID_ARGUMENT, "duration_ms is 0");
	struct req big = { .root = "/r", .sid = "s", .duration_ms = MAX_MS + 1 };
	expect(&big, NULL, TFPROF__RPC_INVALID_ARGUMENT, "server's limit");
	struct req max = { .root = "/r", .sid = "s", .duration_ms = MAX_MS };
	expect(&max, NULL, TFPROF__RPC_OK, NULL);
	/* opts.duration_ms wins over the top-level field (xprof sets both, equal). */
	struct req both = { .root = "/r", .sid = "s", .duration_ms = 5, .opts_duration_ms = MAX_MS + 5 };
	expect(&both, NULL, TFPROF__RPC_INVALID_ARGUMENT, "duration_ms");
	struct req far = { .root = "/r", .sid = "s", .duration_ms = 10,
			   .start_ns = NOW_NS + (uint64_t)(MAX_MS + 1000) * 1000000u };
	expect(&far, NULL, TFPROF__RPC_INVALID_ARGUMENT, "start_timestamp_ns");
	struct req past = { .root = "/r", .sid = "s", .duration_ms = 10, .start_ns = 1 };
	expect(&past, NULL, TFPROF__RPC_OK, NULL);
}

static void malformed_bytes_are_refused(void **state)
{
	(void)state;
	const uint8_t junk[][6] = { { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, /* endless varint */
				    { 0x2a, 0x7f, 'a', 'b', 0, 0 },	    /* length past the end */
				    { 0x0f, 0, 0, 0, 0, 0 } };		    /* wire type 7 */
	for (size_t i = 0; i < 3; i++) {
		struct tfprof__profile_req out;
		char msg[512] = "";
		assert_int_equal(tfprof__decode_profile_request(junk[i], sizeof junk[i], NULL, MAX_MS, NOW_NS,
								&out, msg, sizeof msg),
				 TFPROF__RPC_INVALID_ARGUMENT);
		assert_true(msg[0]);
	}
	char sid[64], msg[512];
	assert_int_equal(tfprof__decode_terminate_request(junk[0], 6, sid, sizeof sid, msg, sizeof msg),
			 TFPROF__RPC_INVALID_ARGUMENT);
}

static void responses_decode_as_the_client_reads_them(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = tfprof__encode_profile_response(1, &len);
	Tensorflow__ProfileResponse *r = tensorflow__profile_response__unpack(NULL, len, b);
	assert_non_null(r);
	assert_true(r->empty_trace);
	assert_int_equal(r->n_tool_data, 0);
	tensorflow__profile_response__free_unpacked(r, NULL);
	free(b);
	b = tfprof__encode_profile_response(0, &len);
	r = tensorflow__profile_response__unpack(NULL, len, b);
	assert_non_null(r);
	assert_false(r->empty_trace);
	tensorflow__profile_response__free_unpacked(r, NULL);
	free(b);
}

int main(void)
{
	const char *t = getenv("TFPROF_TEST_TMP");
	snprintf(tmp, sizeof tmp, "%s", t && *t ? t : "/tmp");
	mkdir(tmp, 0755);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_request_as_xprof_sends_it),
		cmocka_unit_test(version_zero_means_tensorflows_defaults),
		cmocka_unit_test(names_must_be_single_components),
		cmocka_unit_test(nul_inside_a_name_is_refused),
		cmocka_unit_test(roots_must_be_absolute_without_dotdot),
		cmocka_unit_test(server_root_confines_writes),
		cmocka_unit_test(durations_and_start_times_are_bounded),
		cmocka_unit_test(malformed_bytes_are_refused),
		cmocka_unit_test(responses_decode_as_the_client_reads_them),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
