/* SPDX-License-Identifier: Apache-2.0 */
/* Writes a run directory that holds two hosts, the way a two-worker job profiled at the same time
 * does: <logdir>/plugins/profile/<run>/worker-0.xplane.pb and worker-1.xplane.pb, each a short
 * training loop with step markers, run at the same time by two processes that start together
 * (xprof lines the hosts' steps up by time). Each profile also carries a warning that xprof must
 * show in the overview page's diagnostics: worker-0 leaves a scope open at stop, worker-1 ends a
 * scope twice.
 *
 *   usage: two_hosts LOGDIR RUN [STEPS]      (prints the two profile paths) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tfprof/tfprof.h>

static void busy_us(long us)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static int worker(const char *logdir, const char *run, int id, int steps)
{
	char host[32];
	snprintf(host, sizeof host, "worker-%d", id);
	TFPROF_OPTIONS(o, .run_name = run, .host_name = host, .disable_gpu = true);
	int rc = tfprof_start(logdir, &o);
	if (rc) {
		fprintf(stderr, "two_hosts: tfprof_start: %s\n", tfprof_strerror(rc));
		return 1;
	}
	for (int step = 0; step < steps; step++) {
		TFPROF_SCOPE("Train", TFPROF_I64("step_num", step), TFPROF_STR("worker", host));
		/* 20 ms steps: a few milliseconds that a loaded machine takes from one worker must not
		 * shift its steps out of xprof's intersection of the two hosts' steps. */
		{
			TFPROF_SCOPE("forward", TFPROF_I64("batch", 32));
			busy_us(8000);
		}
		{
			TFPROF_SCOPE("backward");
			busy_us(12000);
		}
	}
	if (id == 0) {
		/* Still open at stop: a warning in worker-0's profile. */
		tfprof_scope_begin("checkpoint", NULL, 0);
		busy_us(100);
	} else {
		/* Ended twice: the second end is ignored and counted in worker-1's warnings. */
		tfprof_scope s = tfprof_scope_begin("checkpoint", NULL, 0);
		busy_us(100);
		tfprof_scope_end(s);
		tfprof_scope_end(s);
	}
	rc = tfprof_stop();
	if (rc) {
		fprintf(stderr, "two_hosts: tfprof_stop: %s\n", tfprof_strerror(rc));
		return 1;
	}
	printf("%s\n", tfprof_last_output());
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: two_hosts LOGDIR RUN [STEPS]\n");
		return 2;
	}
	int steps = argc > 3 ? atoi(argv[3]) : 5;
	tfprof_set_thread_name("train");
	/* Both workers wait on a pipe, then start their sessions together. */
	int go[2];
	if (pipe(go)) {
		perror("two_hosts: pipe");
		return 1;
	}
	fflush(stdout);
	pid_t child = fork();
	if (child < 0) {
		perror("two_hosts: fork");
		return 1;
	}
	char c;
	if (child == 0) {
		close(go[1]);
		if (read(go[0], &c, 1) < 0)
			_exit(1);
		int rc = worker(argv[1], argv[2], 1, steps);
		fflush(stdout);
		_exit(rc);
	}
	close(go[0]);
	int rc = write(go[1], "g", 1) != 1;
	close(go[1]);
	rc |= worker(argv[1], argv[2], 0, steps);
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		rc = 1;
	return rc;
}
