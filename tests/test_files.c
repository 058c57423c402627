/* Tests of where profiles go: the run directory layout, never overwriting a profile, creating a
 * missing logdir, and what happens when the logdir cannot be written (fallback, then keeping
 * the profile in memory for a retry). */
#include <errno.h>
#include <sys/stat.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_never_overwrites, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_hosts_share_a_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_logdir_is_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_logdir_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_dir_must_be_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_file_stem, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
