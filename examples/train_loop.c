/* SPDX-License-Identifier: Apache-2.0 */
/* The example from tf.profiler.experimental.Trace, in C: a training loop whose steps are step
 * markers ("Train" with step_num), with nested forward/backward scopes and set_metadata for a
 * fact learned inside the scope (whether the batch came from the cache).
 *
 *   usage: train_loop [LOGDIR] [STEPS]      (defaults: ./logdir, 10)
 *
 * The Python it mirrors:
 *   tf.profiler.experimental.start(logdir)
 *   for step in range(steps):
 *       with tf.profiler.experimental.Trace("Train", step_num=step, _r=1):
 *           with tf.profiler.experimental.Trace("Load") as tm:
 *               batch, hit = load(); tm.set_metadata(in_cache=hit)
 *           ...
 *   tf.profiler.experimental.stop() */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <tfprof/tfprof.h>

/* Stands in for real work so that the scopes have a visible duration. */
static void busy_us(long us)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static void train_step(int step)
{
	TFPROF_SCOPE("Train", TFPROF_I64("step_num", step));
	{
		TFPROF_SCOPE_AS(load, "Load");
		bool in_cache = step % 3 != 0;
		busy_us(in_cache ? 200 : 800);
		TFPROF_SET_METADATA(load, TFPROF_BOOL("in_cache", in_cache));
	}
	{
		TFPROF_SCOPE("forward", TFPROF_I64("batch", 64));
		busy_us(1500);
	}
	{
		TFPROF_SCOPE("backward", TFPROF_I64("batch", 64));
		busy_us(3000);
	}
	{
		TFPROF_SCOPE("optimizer", TFPROF_STR("algo", "adam"), TFPROF_F64("lr", 1e-3));
		busy_us(300);
	}
}

int main(int argc, char **argv)
{
	const char *logdir = argc > 1 ? argv[1] : "logdir";
	int steps = argc > 2 ? atoi(argv[2]) : 10;
	tfprof_set_thread_name("train");
	int rc = tfprof_start(logdir, NULL);
	if (rc) {
		fprintf(stderr, "train_loop: tfprof_start: %s\n", tfprof_strerror(rc));
		return 1;
	}
	for (int step = 0; step < steps; step++)
		train_step(step);
	rc = tfprof_stop();
	if (rc && rc != TFPROF_ERR_FALLBACK) {
		fprintf(stderr, "train_loop: tfprof_stop: %s\n", tfprof_strerror(rc));
		return 1;
	}
	if (rc)
		fprintf(stderr, "train_loop: %s\n", tfprof_strerror(rc));
	printf("%s\n", tfprof_last_output());
	return 0;
}
