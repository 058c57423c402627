/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of where profiles go: the run directory layout, never overwriting a profile, creating a
 * missing logdir, what happens when the logdir cannot be written (fallback, then keeping the
 * profile in memory for a retry), and what a writer killed half-way leaves (nothing, or a
 * temporary file that the next writer removes). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "tt.h"

static char *logdir;

static int setup(void **state)
{
	(void)state;
	logdir = tt_scratch_dir("files");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (tfprof_enabled())
		tfprof_stop();
	unsetenv("TMPDIR");
	tt_rm_rf(logdir);
	free(logdir);
	return 0;
}

static char *record_one(const char *dir, const char *run, const char *scope)
{
	TFPROF_OPTIONS(o, .run_name = run, .host_name = "h");
	assert_int_equal(tfprof_start(dir, &o), 0);
	tfprof_scope s = tfprof_scope_begin(scope, NULL, 0);
	tfprof_scope_end(s);
	assert_int_equal(tfprof_stop(), 0);
	return strdup(tfprof_last_output());
}

static void test_never_overwrites(void **state)
{
	(void)state;
	char *a = record_one(logdir, "same", "first");
	char *b = record_one(logdir, "same", "second");
	char *c = record_one(logdir, "same", "third");
	assert_string_not_equal(a, b);
	assert_non_null(strstr(b, "/plugins/profile/same_1/h.xplane.pb"));
	assert_non_null(strstr(c, "/plugins/profile/same_2/h.xplane.pb"));
	XSpace *s = tt_read_xspace(a);
	assert_int_equal(tt_count_events(tt_host(s), "first"), 1);
	tt_xspace_free(s);
	s = tt_read_xspace(b);
	assert_int_equal(tt_count_events(tt_host(s), "second"), 1);
	tt_xspace_free(s);
	/* Only the profile lies in the run directory: the temporary file was renamed away. */
	char *rundir = strdup(a);
	*strrchr(rundir, '/') = 0;
	assert_int_equal(tt_dir_entries(rundir), 1);
	free(rundir);
	free(a);
	free(b);
	free(c);
}

static void test_other_hosts_share_a_run(void **state)
{
	(void)state;
	TFPROF_OPTIONS(o1, .run_name = "shared", .host_name = "host-a");
	assert_int_equal(tfprof_start(logdir, &o1), 0);
	assert_int_equal(tfprof_stop(), 0);
	TFPROF_OPTIONS(o2, .run_name = "shared", .host_name = "host-b");
	assert_int_equal(tfprof_start(logdir, &o2), 0);
	assert_int_equal(tfprof_stop(), 0);
	assert_non_null(strstr(tfprof_last_output(), "/plugins/profile/shared/host-b.xplane.pb"));
}

static void test_missing_logdir_is_created(void **state)
{
	(void)state;
	char *deep;
	assert_true(asprintf(&deep, "%s/a/b/c", logdir) > 0);
	char *out = record_one(deep, "r", "x");
	assert_true(tt_file_exists(out));
	assert_int_equal(strncmp(out, deep, strlen(deep)), 0);
	free(out);
	free(deep);
}

static void test_unwritable_logdir_falls_back(void **state)
{
	(void)state;
	/* A path under a regular file cannot be created, not even by root. */
	char *file, *bad, *tmp;
	assert_true(asprintf(&file, "%s/plain-file", logdir) > 0);
	FILE *f = fopen(file, "w");
	fclose(f);
	assert_true(asprintf(&bad, "%s/logdir", file) > 0);
	assert_true(asprintf(&tmp, "%s/tmp", logdir) > 0);
	setenv("TMPDIR", tmp, 1);
	TFPROF_OPTIONS(o, .run_name = "fb", .host_name = "h");
	assert_int_equal(tfprof_start(bad, &o), 0);
	tfprof_scope s = tfprof_scope_begin("kept", NULL, 0);
	tfprof_scope_end(s);
	int rc = tfprof_stop();
	assert_int_equal(rc, TFPROF_ERR_FALLBACK);
	assert_non_null(strstr(tfprof_strerror(rc), "tfprof_last_output"));
	char *want;
	assert_true(asprintf(&want, "%s/tfprof-%ld/plugins/profile/fb/h.xplane.pb", tmp, (long)getuid()) > 0);
	assert_string_equal(tfprof_last_output(), want);
	XSpace *x = tt_read_xspace(want);
	assert_int_equal(tt_count_events(tt_host(x), "kept"), 1);
	tt_xspace_free(x);
	free(want);

	/* With the fallback unwritable too, the profile is kept for a retry. */
	char *badtmp;
	assert_true(asprintf(&badtmp, "%s/tmp", file) > 0);
	setenv("TMPDIR", badtmp, 1);
	assert_int_equal(tfprof_stop_retry(NULL), TFPROF_ERR_NOT_ACTIVE);
	assert_int_equal(tfprof_start(bad, &o), 0);
	s = tfprof_scope_begin("retried", NULL, 0);
	tfprof_scope_end(s);
	rc = tfprof_stop();
	assert_int_equal(rc, TFPROF_ERR_UNWRITTEN);
	assert_non_null(strstr(tfprof_strerror(rc), "tfprof_stop_retry"));
	/* A new session may run meanwhile; the kept profile waits. */
	assert_int_equal(tfprof_start(logdir, NULL), 0);
	assert_int_equal(tfprof_stop(), 0);
	assert_int_equal(tfprof_stop_retry(bad), TFPROF_ERR_UNWRITTEN);
	assert_int_equal(tfprof_stop_retry(logdir), 0);
	assert_int_equal(strncmp(tfprof_last_output(), logdir, strlen(logdir)), 0);
	x = tt_read_xspace(tfprof_last_output());
	assert_int_equal(tt_count_events(tt_host(x), "retried"), 1);
	tt_xspace_free(x);
	assert_int_equal(tfprof_stop_retry(logdir), TFPROF_ERR_NOT_ACTIVE);
	free(badtmp);
	free(file);
	free(bad);
	free(tmp);
}

static void test_fallback_dir_must_be_private(void **state)
{
	(void)state;
	char *d;
	assert_true(asprintf(&d, "%s/private", logdir) > 0);
	assert_int_equal(tfprof__private_dir(d), 0);
	assert_int_equal(tfprof__private_dir(d), 0); /* ours already: fine */
	/* Open to others, or owned by someone else, or a symlink: refused. */
	chmod(d, 0777);
	assert_int_equal(tfprof__private_dir(d), -EPERM);
	chmod(d, 0700);
	if (getuid() == 0) {
		assert_int_equal(chown(d, 65534, 65534), 0);
		assert_int_equal(tfprof__private_dir(d), -EPERM);
	}
	char *link;
	assert_true(asprintf(&link, "%s/link", logdir) > 0);
	assert_int_equal(symlink(d, link), 0);
	assert_int_equal(tfprof__private_dir(link), -ENOTDIR);
	free(link);
	free(d);
}

static void test_host_file_stem(void **state)
{
	(void)state;
	char *s = tfprof__host_file_stem("a:b/c.d");
	assert_string_equal(s, "a_b_c.d");
	free(s);
	s = tfprof__host_file_stem("");
	assert_string_equal(s, "localhost");
	free(s);
	s = tfprof__host_file_stem("..");
	assert_string_equal(s, "localhost");
	free(s);
	assert_int_equal(tfprof__mkdirs(""), -EINVAL);
}

/* ---- Writers that die or fail half-way ---- */

#define BIG ((size_t)8 << 20) /* eight chunks */

static void die_now(void)
{
	raise(SIGKILL);
}

/* Forks a writer of an 8 MiB profile <dir>/plugins/profile/<run>/<host>.xplane.pb that is
 * killed after its first megabyte; named: as on a file system without O_TMPFILE. */
static void killed_writer(const char *dir, const char *run, const char *host, bool named)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint8_t *data = calloc(1, BIG);
		tfprof__files_no_tmpfile = named;
		tfprof__files_chunk_hook = die_now;
		char *out;
		tfprof__write_profile(dir, run, host, data, BIG, &out);
		_exit(0); /* not reached: the hook kills the writer */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* How many names in dir contain part. */
static size_t entries_with(const char *dir, const char *part)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, part))
			n++;
	closedir(d);
	return n;
}

static void test_killed_write_leaves_nothing(void **state)
{
	(void)state;
	char *run;
	assert_true(asprintf(&run, "%s/plugins/profile/k", logdir) > 0);
	killed_writer(logdir, "k", "h", false);
	int probe = open(run, O_TMPFILE | O_WRONLY, 0600);
	if (probe >= 0) {
		/* The file had no name yet: the killed writer left none. */
		close(probe);
		assert_int_equal(tt_dir_entries(run), 0);
	}
	/* Either way the next profile is the only file in the run. */
	uint8_t data[64] = { 0 };
	char *out;
	assert_int_equal(tfprof__write_profile(logdir, "k", "h2", data, sizeof data, &out), 0);
	assert_int_equal(tt_dir_entries(run), 1);
	struct stat st;
	assert_int_equal(stat(out, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(st.st_size, sizeof data);
	free(out);
	free(run);
}

static void test_stale_named_temps_are_removed(void **state)
{
	(void)state;
	char *run, machine[256] = { 0 }, host[200] = { 0 };
	assert_true(asprintf(&run, "%s/plugins/profile/n", logdir) > 0);
	/* The writer's domain in temporary names: <host, '.' and '/' as '_'>-<pid namespace inode>. */
	gethostname(host, sizeof host - 1);
	for (char *c = host; *c; c++)
		if (*c == '.' || *c == '/')
			*c = '_';
	struct stat ns;
	assert_int_equal(stat("/proc/self/ns/pid", &ns), 0);
	snprintf(machine, sizeof machine, "%s-%llu", host, (unsigned long long)ns.st_ino);
	killed_writer(logdir, "n", "h", true);
	/* The named temporary file of the dead writer is there... */
	assert_int_equal(entries_with(run, ".xplane.pb.tmp."), 1);
	/* ... beside a live writer's (a child that sleeps) and one from another container. */
	pid_t live = fork();
	assert_true(live >= 0);
	if (live == 0) {
		pause();
		_exit(0);
	}
	char *p1, *p2;
	assert_true(asprintf(&p1, "%s/.x.xplane.pb.tmp.%s.%ld.AbCdEf", run, machine, (long)live) > 0);
	/* Same machine name, another pid namespace (a container): its pids are not ours to judge. */
	assert_true(asprintf(&p2, "%s/.x.xplane.pb.tmp.%s-1.999999.AbCdEf", run, host) > 0);
	fclose(fopen(p1, "w"));
	fclose(fopen(p2, "w"));
	tfprof__files_no_tmpfile = true;
	uint8_t data[64] = { 0 };
	char *out;
	int rc = tfprof__write_profile(logdir, "n", "h2", data, sizeof data, &out);
	tfprof__files_no_tmpfile = false;
	kill(live, SIGKILL);
	waitpid(live, NULL, 0);
	assert_int_equal(rc, 0);
	/* The dead writer's file is gone; the live one's and the other container's stay. */
	assert_int_equal(entries_with(run, ".xplane.pb.tmp."), 2);
	assert_true(tt_file_exists(p1));
	assert_true(tt_file_exists(p2));
	assert_int_equal(entries_with(run, "h2.xplane.pb"), 1);
	assert_int_equal(tt_dir_entries(run), 3);
	free(out);
	free(p1);
	free(p2);
	free(run);
}

/* A write that fails (the file size limit, in a child) leaves none of the directories it
 * created: no empty run directory in the logdir, nor in the fallback directory of a session. */
static void test_failed_write_leaves_no_directories(void **state)
{
	(void)state;
	char *dir, *tmp;
	assert_true(asprintf(&dir, "%s/new/logdir", logdir) > 0);
	assert_true(asprintf(&tmp, "%s/tmpdir", logdir) > 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit r = { 4096, 4096 };
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &r))
			_exit(10);
		static uint8_t data[65536];
		char *out;
		if (tfprof__write_profile(dir, "r", "h", data, sizeof data, &out) != -EFBIG)
			_exit(11);
		/* A session: neither the logdir nor $TMPDIR/tfprof-<uid> can take the file. */
		setenv("TMPDIR", tmp, 1);
		TFPROF_OPTIONS(o, .run_name = "big", .host_name = "h");
		if (tfprof_start(dir, &o))
			_exit(12);
		for (int i = 0; i < 2000; i++) {
			tfprof_scope s = tfprof_scope_begin("a scope with a name long enough to fill 4 KiB", NULL, 0);
			tfprof_scope_end(s);
		}
		_exit(tfprof_stop() == TFPROF_ERR_UNWRITTEN ? 0 : 13);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The logdir itself stays (the session made it at start, as the user asked); the run
	 * directory and its parents, made by the failed writes, are gone. */
	char *plugins;
	assert_true(asprintf(&plugins, "%s/plugins", dir) > 0);
	assert_true(tt_file_exists(dir));
	assert_false(tt_file_exists(plugins));
	free(plugins);
	char *fallback;
	assert_true(asprintf(&fallback, "%s/tfprof-%ld", tmp, (long)getuid()) > 0);
	assert_int_equal(tt_dir_entries(fallback), 0);
	free(fallback);
	free(dir);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_never_overwrites, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_hosts_share_a_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_logdir_is_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_logdir_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_dir_must_be_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_file_stem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_write_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_named_temps_are_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_leaves_no_directories, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
