/* SPDX-License-Identifier: Apache-2.0 */
/* Scratch directories and file checks for the tests (see test_util.h). */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

static unsigned counter;

char *tt_scratch_dir(const char *tag)
{
	const char *base = getenv("TFPROF_TEST_TMP");
	char *dir;
	if (asprintf(&dir, "%s/%s-%ld-%u", base && *base ? base : "/tmp/tfprof-test", tag, (long)getpid(),
		     counter++) < 0)
		abort();
	tt_rm_rf(dir);
	if (tfprof__mkdirs(dir))
		abort();
	return dir;
}

void tt_rm_rf(const char *path)
{
	char *cmd;
	if (asprintf(&cmd, "rm -rf '%s'", path) < 0)
		abort();
	if (system(cmd)) {
	}
	free(cmd);
}

bool tt_file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

int tt_dir_entries(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Helpers that need cmocka and the reader live here too, so every test links one library. */
#include "tt.h"
#include <errno.h>
#include <sys/syscall.h>

char *tt_logdir;

int tt_setup(void **state)
{
	(void)state;
	tt_logdir = tt_scratch_dir(program_invocation_short_name);
	return 0;
}

int tt_teardown(void **state)
{
	(void)state;
	if (tfprof_enabled())
		tfprof_stop();
	tt_rm_rf(tt_logdir);
	free(tt_logdir);
	tt_logdir = NULL;
	return 0;
}

XSpace *tt_stop_and_read(void)
{
	int rc = tfprof_stop();
	if (rc)
		fail_msg("tfprof_stop: %s", tfprof_strerror(rc));
	XSpace *s = tt_read_xspace(tfprof_last_output());
	tt_check_well_formed(s);
	return s;
}

const char *tt_find_msg(char *const *msgs, size_t n, const char *needle)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(msgs[i], needle))
			return msgs[i];
	return NULL;
}

long long tt_warning_count(const XSpace *s, const char *needle)
{
	const char *w = tt_find_msg(s->warnings, s->n_warnings, needle);
	if (!w)
		return -1;
	const char *p = w;
	while (*p && (*p < '0' || *p > '9'))
		p++;
	return *p ? atoll(p) : -1;
}

const XPlane *tt_host(const XSpace *s)
{
	const XPlane *p = tt_plane(s, "/host:CPU");
	assert_non_null(p);
	return p;
}

const XLine *tt_my_line(const XSpace *s)
{
	return tt_line(tt_host(s), (int64_t)syscall(SYS_gettid));
}

long tt_peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}
