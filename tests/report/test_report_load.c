/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for src/cli/report_load.c on real files: a profile is mapped, not read, so walking its
 * events keeps only a window of the file in memory, and a file that shrinks while it is mapped
 * ends the tool with one line and exit code 2 instead of a SIGBUS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "report.h"

/* Events of 8 bytes each: field 4 of the line, length 6, holding metadata_id, offset_ps and
 * duration_ps as one-byte varints. */
#define EVENT_BYTES 8
static const uint8_t event[EVENT_BYTES] = { 4 << 3 | 2, 6, 1 << 3, 1, 2 << 3, 5, 3 << 3, 7 };

static size_t varint(uint8_t *b, uint64_t v)
{
	size_t n = 0;
	do {
		b[n] = (uint8_t)(v & 0x7f) | (v >> 7 ? 0x80 : 0);
		v >>= 7;
		n++;
	} while (v);
	return n;
}

/* Writes a profile of one plane with one line of n events to a new file in the working folder
 * (the build tree) and returns its name; *size receives the file's size. */
static char *write_profile(uint64_t n, uint64_t *size)
{
	char *path = strdup("test_report_load.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "wb");
	assert_non_null(f);
	uint8_t h[64];
	/* The line: id 1, then the events. */
	uint64_t line_len = 2 + n * EVENT_BYTES;
	size_t k = 0;
	uint8_t line_hdr[16];
	line_hdr[k++] = 3 << 3 | 2;
	k += varint(line_hdr + k, line_len);
	/* The plane: its name, then the line. */
	static const char name[] = "/host:CPU";
	uint64_t plane_len = 2 + (sizeof name - 1) + k + line_len;
	size_t m = 0;
	h[m++] = 1 << 3 | 2;
	m += varint(h + m, plane_len);
	h[m++] = 2 << 3 | 2;
	h[m++] = sizeof name - 1;
	memcpy(h + m, name, sizeof name - 1);
	m += sizeof name - 1;
	memcpy(h + m, line_hdr, k);
	m += k;
	h[m++] = 1 << 3;
	h[m++] = 1;
	assert_int_equal(fwrite(h, 1, m, f), m);
	uint8_t chunk[EVENT_BYTES * 4096];
	for (size_t i = 0; i < sizeof chunk; i += EVENT_BYTES)
		memcpy(chunk + i, event, EVENT_BYTES);
	for (uint64_t left = n; left;) {
		uint64_t c = left < 4096 ? left : 4096;
		assert_int_equal(fwrite(chunk, EVENT_BYTES, c, f), c);
		left -= c;
	}
	assert_int_equal(fclose(f), 0);
	*size = m + n * EVENT_BYTES;
	return path;
}

/* A line of /proc/self/status in bytes (its kB figure), -1 when it cannot be read. */
static long long status_bytes(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	long long v = -1;
	size_t n = strlen(key);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = strtoll(line + n + 1, NULL, 10) * 1024;
	fclose(f);
	return v;
}

/* Loads path and walks every event of every line; returns how many there were. */
static uint64_t load_and_walk(const char *path)
{
	struct rp_inputs in;
	char err[512];
	if (rp_load(path, NULL, &in, err, sizeof err))
		fail_msg("rp_load: %s", err);
	struct rp_events it;
	rp_events_init(&it);
	uint64_t n = 0;
	const struct rp_space *s = in.v[0].space;
	for (size_t p = 0; p < s->n_planes; p++)
		for (size_t l = 0; l < s->planes[p].n_lines; l++) {
			rp_events_line(&it, &s->planes[p].lines[l]);
			for (const XEvent *e; (e = rp_events_next(&it));) {
				assert_int_equal(e->duration_ps, 7);
				n++;
			}
			assert_false(it.bad);
		}
	rp_events_free(&it);
	rp_inputs_free(&in);
	return n;
}

/* A 48 MiB profile is parsed and walked end to end while the process's peak resident memory
 * grows by well under the file's size: the mapped pages are released behind each walk. (Reading
 * the file into memory, or mapping it without releasing, grows it by the whole file.) */
static void test_walking_a_mapped_profile_keeps_a_window_in_memory(void **state)
{
	(void)state;
	uint64_t n = 6u << 20, size;
	char *path = write_profile(n, &size);
	/* Writing 5 to clear_refs resets the peak (VmHWM) to the current resident set. */
	FILE *c = fopen("/proc/self/clear_refs", "w");
	if (!c || fputs("5", c) < 0 || fclose(c)) {
		unlink(path);
		free(path);
		skip();
	}
	long long before = status_bytes("VmRSS");
	assert_int_equal(load_and_walk(path), n);
	long long peak = status_bytes("VmHWM");
	print_message("file %llu MiB, peak resident growth %lld MiB\n", (unsigned long long)size >> 20,
		      (peak - before) >> 20);
	assert_true(before > 0 && peak > 0);
	assert_true(peak - before < (long long)size / 2);
	unlink(path);
	free(path);
}

/* A profile truncated by another program after it was mapped: the next walk faults past the new
 * end, and the SIGBUS becomes one line naming the file, exit code 2. */
static void test_a_profile_that_shrinks_while_mapped_is_one_line(void **state)
{
	(void)state;
	uint64_t n = 1u << 20, size;
	char *path = write_profile(n, &size);
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], STDERR_FILENO);
		close(fd[0]);
		struct rp_inputs in;
		char err[512];
		if (rp_load(path, NULL, &in, err, sizeof err))
			_exit(10);
		if (truncate(path, 4096))
			_exit(11);
		struct rp_events it;
		rp_events_init(&it);
		rp_events_line(&it, &in.v[0].space->planes[0].lines[0]);
		while (rp_events_next(&it))
			;
		_exit(12); /* the walk ended without the fault */
	}
	close(fd[1]);
	char msg[1024];
	size_t got = 0;
	for (ssize_t r; got < sizeof msg - 1 && (r = read(fd[0], msg + got, sizeof msg - 1 - got)) > 0;)
		got += (size_t)r;
	msg[got] = '\0';
	close(fd[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != RP_EXIT_BAD_INPUT)
		fail_msg("child: status %#x, want exit 2; stderr: %s", status, msg);
	assert_non_null(strstr(msg, "tfprof-report: "));
	assert_non_null(strstr(msg, path));
	assert_non_null(strstr(msg, "shrank while it was being read"));
	assert_non_null(strchr(msg, '\n'));
	assert_int_equal(strchr(msg, '\n') - msg, (ptrdiff_t)got - 1); /* one line */
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walking_a_mapped_profile_keeps_a_window_in_memory),
		cmocka_unit_test(test_a_profile_that_shrinks_while_mapped_is_one_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
