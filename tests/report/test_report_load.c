/* Tests for src/cli/report_load.c on real files: a profile is mapped, not read, and a file that
 * shrinks while it is mapped ends the tool with one line and exit code 2 instead of a SIGBUS. */
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
		cmocka_unit_test(test_a_profile_that_shrinks_while_mapped_is_one_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
