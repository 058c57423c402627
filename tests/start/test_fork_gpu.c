/* SPDX-License-Identifier: Apache-2.0 */
/* fork() while GPU tracing is active, on the CUPTI simulator (loaded as libcupti through
 * TFPROF_CUPTI_LIBRARY): a child that starts and stops a session of its own must not touch the
 * parent's CUPTI state (a flush or unsubscribe of it can hang, as HPCToolkit saw with real
 * CUPTI). Its session falls back to host-only with an error that says why; a child that only
 * exits must exit; the parent's profile stays complete. alarm() turns a hang into a failure. */
#include "tt.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cupti_sim.h"

static const struct tfsim_dim3 one = { 1, 1, 1 };

/* The child's checks, as exit codes (cmocka's asserts cannot cross the fork). */
static int child_with_session(uint32_t stream)
{
	alarm(20);
	TFPROF_OPTIONS(o, .run_name = "child");
	if (tfprof_start(tt_logdir, &o) != 0)
		return 10;
	{
		TFPROF_SCOPE("child_scope");
		tfsim_launch_kernel(stream, "child_kernel", one, one, 1000);
		tfsim_stream_synchronize(stream);
	}
	if (tfprof_stop() != 0)
		return 11;
	XSpace *s = tt_read_xspace(tfprof_last_output());
	if (!s)
		return 12;
	int rc = 0;
	if (tt_plane(s, "/device:GPU:0"))
		rc = 13; /* the child must not trace the GPU through the parent's CUPTI state */
	else if (!tt_find_msg(s->errors, s->n_errors, "forked"))
		rc = 14; /* and must say why */
	else if (tt_count_events(tt_host(s), "child_scope") != 1)
		rc = 15;
	tt_xspace_free(s);
	/* A second session in the same child falls back the same way, and does not hang either. */
	if (!rc && (tfprof_start(tt_logdir, &o) != 0 || tfprof_stop() != 0))
		rc = 16;
	return rc;
}

static void wait_ok(pid_t pid, const char *what)
{
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("%s: killed by signal %d%s", what, WTERMSIG(status),
			 WTERMSIG(status) == SIGALRM ? " (it hung)" : "");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s: exit status %d", what, WEXITSTATUS(status));
}

static void t_fork_with_gpu_active(void **state)
{
	(void)state;
	TFPROF_OPTIONS(o, .run_name = "parent");
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	int dev = tfsim_device_add(NULL);
	uint32_t stream = tfsim_stream_create(dev);
	tfsim_launch_kernel(stream, "parent_before", one, one, 1000);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_with_session(stream));
	wait_ok(pid, "child with a session");

	/* A child that records nothing and leaves through exit() (atexit handlers, destructors). */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20);
		tfsim_launch_kernel(stream, "child_only_kernel", one, one, 1000);
		exit(0);
	}
	wait_ok(pid, "child without a session");

	tfsim_launch_kernel(stream, "parent_after", one, one, 1000);
	tfsim_stream_synchronize(stream);
	XSpace *s = tt_stop_and_read();
	const XPlane *g = tt_plane(s, "/device:GPU:0");
	assert_non_null(g);
	assert_int_equal(tt_count_events(g, "parent_before"), 1);
	assert_int_equal(tt_count_events(g, "parent_after"), 1);
	assert_int_equal(tt_count_events(g, "child_kernel"), 0);
	assert_int_equal(tt_count_events(g, "child_only_kernel"), 0);
	assert_null(tt_find_msg(s->errors, s->n_errors, "forked"));
	tt_xspace_free(s);

	/* The parent itself goes on tracing the GPU in a new session. */
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	tfsim_launch_kernel(stream, "parent_again", one, one, 1000);
	tfsim_stream_synchronize(stream);
	s = tt_stop_and_read();
	g = tt_plane(s, "/device:GPU:0");
	assert_non_null(g);
	assert_int_equal(tt_count_events(g, "parent_again"), 1);
	tt_xspace_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_fork_with_gpu_active, tt_setup, tt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
