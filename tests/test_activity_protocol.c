/* SPDX-License-Identifier: Apache-2.0 */
/* Deterministic tests of GPU tracing's shut-out protocol (cupti/activity.c's header), on the
 * CUPTI simulator: the test stands between the simulator and tfprof's buffer callbacks, keeps
 * the buffers it wants CUPTI to "still hold", hands them to tfprof's completion callback on its
 * own threads, and holds those threads (and the stopping thread) at the library's test points to
 * force each order of callbacks against stop. */
#include <pthread.h>

#include <cupti.h>

#include "activity.h"
#include "cupti_sim.h"
#include "testpoint.h"
#include "testpoint_gate.h"
#include "tt.h"

#define KERNELS 5

static const struct tfprof__cupti_fns *real;
static struct tfprof__cupti_fns wrapped;
static CUpti_BuffersCallbackRequestFunc tf_request;
static CUpti_BuffersCallbackCompleteFunc tf_complete;

/* Completed buffers that hold records, kept back from tfprof while hold is set. */
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static bool hold;
static struct held {
	uint8_t *buf;
	size_t size, valid;
} held[8];
static size_t nheld;

static void CUPTIAPI sim_request(uint8_t **buf, size_t *size, size_t *max_records)
{
	tf_request(buf, size, max_records);
}

static void CUPTIAPI sim_complete(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid)
{
	pthread_mutex_lock(&held_mu);
	if (hold && valid && nheld < sizeof held / sizeof held[0]) {
		held[nheld++] = (struct held){ buf, size, valid };
		pthread_mutex_unlock(&held_mu);
		return;
	}
	pthread_mutex_unlock(&held_mu);
	tf_complete(ctx, stream, buf, size, valid);
}

static CUptiResult CUPTIAPI wrap_register(CUpti_BuffersCallbackRequestFunc req,
					  CUpti_BuffersCallbackCompleteFunc comp)
{
	tf_request = req;
	tf_complete = comp;
	return real->ActivityRegisterCallbacks(sim_request, sim_complete);
}

static int setup(void **state)
{
	(void)state;
	tfsim_reset();
	setenv("TFPROF_CUPTI_LIBRARY", TFSIM_LIBRARY_PATH, 1);
	if (!real) {
		char err[512];
		if (tfprof__cupti_load(&real, err, sizeof err))
			fail_msg("loading the simulator: %s", err);
		wrapped = *real;
		wrapped.ActivityRegisterCallbacks = wrap_register;
	}
	hold = false;
	nheld = 0;
	assert_int_equal(tfsim_device_add(NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tp_disarm_all();
	tfsim_reset();
	return 0;
}

static void session_start(void)
{
	struct tfprof__activity_config cfg = { .buffer_size = 256u << 10, .buffer_count = 8,
					       .max_memory = 64u << 20 };
	char err[512], warn[512];
	const char *what;
	if (tfprof__activity_start(&wrapped, &cfg, err, sizeof err))
		fail_msg("tfprof__activity_start: %s", err);
	assert_int_equal(tfprof__activity_enable(&what, warn, sizeof warn), CUPTI_SUCCESS);
}

/* Launches n kernels and flushes: with hold set, their buffer stays with the test ("CUPTI"). */
static void launch_and_flush(int n)
{
	for (int i = 0; i < n; i++)
		tfsim_launch_kernel(tfsim_null_stream(0), "_Z1kv", (struct tfsim_dim3){ 1, 1, 1 },
				    (struct tfsim_dim3){ 32, 1, 1 }, 100);
	assert_int_equal(real->ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), CUPTI_SUCCESS);
}

static size_t kernels(const struct tfprof__gpu_result *r)
{
	size_t n = 0;
	for (const struct tfprof__dev_chunk *c = r->events; c; c = c->next)
		for (size_t i = 0; i < c->n; i++)
			n += c->ev[i].kind == TFPROF_DEV_KERNEL;
	return n;
}

/* A thread standing in for CUPTI's: delivers a held buffer, or asks for one. */
struct caller {
	pthread_t t;
	pid_t tid;
	struct tp_event started, go, done;
	struct held b;
	bool request;
	uint8_t *got;
	size_t got_size;
};

static void *caller_main(void *p)
{
	struct caller *c = p;
	c->tid = tp_gettid();
	tp_event_set(&c->started);
	if (tp_event_wait(&c->go)) {
		if (c->request) {
			size_t max_records;
			tf_request(&c->got, &c->got_size, &max_records);
		} else {
			tf_complete(NULL, 0, c->b.buf, c->b.size, c->b.valid);
		}
	}
	tp_event_set(&c->done);
	return NULL;
}

/* Starts a caller that delivers b, or asks for a buffer when request is set; it waits for go. */
static void caller_run(struct caller *c, bool request, struct held b)
{
	memset(c, 0, sizeof *c);
	c->request = request;
	c->b = b;
	assert_int_equal(pthread_create(&c->t, NULL, caller_main, c), 0);
	assert_true(tp_event_wait(&c->started));
}

static void caller_start(struct caller *c, bool request)
{
	if (!request)
		assert_int_equal(nheld, 1);
	caller_run(c, request, request ? (struct held){ 0 } : held[0]);
}

/* Stop (disable, then finish) on its own thread, so that the test can act while it waits. */
struct stopper {
	pthread_t t;
	struct tp_event done;
	struct tfprof__gpu_result out;
	struct tfprof__activity_summary sum;
};

static void *stopper_main(void *p)
{
	struct stopper *s = p;
	tfprof__activity_disable();
	tfprof__activity_finish(&s->out, &s->sum, NULL);
	tp_event_set(&s->done);
	return NULL;
}

static void stopper_start(struct stopper *s)
{
	memset(s, 0, sizeof *s);
	assert_int_equal(pthread_create(&s->t, NULL, stopper_main, s), 0);
}

static void stop_here(struct stopper *s)
{
	memset(s, 0, sizeof *s);
	stopper_main(s);
}

/* Holds the caller at point, stops on another thread, and lets the caller go once the stopping
 * thread is found waiting for it in the shut-out; asserts that it was and that stop returned. */
static void race_shut_out(struct caller *c, const char *point, struct stopper *st)
{
	struct tp_gate held = { .point = point, .tid = c->tid };
	struct tp_gate waiting = { .point = "activity_shut_out_wait" };
	tp_arm(&held);
	tp_arm(&waiting);
	tp_event_set(&c->go);
	assert_true(tp_wait_hit(&held));
	stopper_start(st);
	/* For a held completion, after stop's bounded wait for the buffer it holds. */
	bool waited = tp_wait_hit(&waiting);
	tp_open(&held);
	tp_open(&waiting);
	bool stopped = tp_event_wait(&st->done);
	pthread_join(st->t, NULL);
	pthread_join(c->t, NULL);
	tp_disarm_all();
	assert_true(waited);
	assert_true(stopped);
	assert_false(st->sum.decoder_stuck);
}

/* A completion is decoding when stop shuts the callbacks out: stop must wait for it, and the
 * buffer's kernels are in the result, the buffer counted as returned. */
static void test_shut_out_waits_for_decoding(void **state)
{
	(void)state;
	session_start();
	hold = true;
	launch_and_flush(KERNELS);
	struct caller c;
	caller_start(&c, false);
	struct stopper st;
	race_shut_out(&c, "activity_complete_decoding", &st);
	assert_int_equal(kernels(&st.out), KERNELS);
	assert_int_equal(st.sum.buffers_unreturned, 0);
	assert_int_equal(st.sum.buffers_late, 0);
	tfprof__gpu_result_free(&st.out);
}

/* A completion has registered in flight but not yet looked at accepting when stop closes the
 * pool (Dekker's window): it must see the pool closed and leave (counted late), and stop must
 * wait until it has. Its buffer is still CUPTI's, so the pool is kept, not freed. */
static void test_completion_in_window_sees_pool_closed(void **state)
{
	(void)state;
	session_start();
	hold = true;
	launch_and_flush(KERNELS);
	struct caller c;
	caller_start(&c, false);
	struct stopper st;
	race_shut_out(&c, "activity_complete_entered", &st);
	assert_int_equal(st.sum.buffers_late, 1);
	assert_int_equal(st.sum.buffers_unreturned, 1);
	assert_int_equal(kernels(&st.out), 0);
	/* CUPTI may still write the buffer it holds: the retired pool must still be there. */
	memset(c.b.buf, 0, c.b.valid);
	tfprof__gpu_result_free(&st.out);
}

/* A buffer request is in Dekker's window when stop closes the pool: it must get no buffer,
 * and nothing is counted as handed out. */
static void test_request_in_window_gets_no_buffer(void **state)
{
	(void)state;
	session_start();
	struct caller c;
	caller_start(&c, true);
	struct stopper st;
	race_shut_out(&c, "activity_request_entered", &st);
	assert_null(c.got);
	assert_int_equal(c.got_size, 0);
	assert_int_equal(st.sum.buffers_unreturned, 0);
	tfprof__gpu_result_free(&st.out);
}

/* A request that saw the pool open is taking a buffer when stop closes it: stop must wait, count
 * the buffer as still with CUPTI and keep the pool, so the buffer stays valid memory. */
static void test_request_taking_keeps_pool(void **state)
{
	(void)state;
	session_start();
	struct caller c;
	caller_start(&c, true);
	struct stopper st;
	race_shut_out(&c, "activity_request_taking", &st);
	assert_non_null(c.got);
	assert_int_equal(st.sum.buffers_unreturned, 1);
	/* CUPTI fills the buffer it was given: the pool must not have been freed. */
	memset(c.got, 0xab, c.got_size);
	tfprof__gpu_result_free(&st.out);
}

/* A buffer CUPTI still held when stop's bounded wait ended comes back after stop: it is
 * counted as unreturned, ignored when it comes, and its memory stays valid. */
static void test_completion_after_stop_is_late(void **state)
{
	(void)state;
	session_start();
	hold = true;
	launch_and_flush(KERNELS);
	assert_int_equal(nheld, 1);
	struct stopper st;
	stop_here(&st);
	assert_int_equal(st.sum.buffers_unreturned, 1);
	assert_int_equal(kernels(&st.out), 0);
	tfprof__gpu_result_free(&st.out);
	/* CUPTI goes on writing the buffer, then completes it. */
	memset(held[0].buf, 0, held[0].valid);
	tf_complete(NULL, 0, held[0].buf, held[0].size, 0);
}

/* A buffer of an earlier session's pool completes during the next session: it is counted as
 * foreign and ignored, and the new session's own events are complete. */
static void test_old_buffer_in_next_session_is_foreign(void **state)
{
	(void)state;
	session_start();
	hold = true;
	launch_and_flush(KERNELS);
	assert_int_equal(nheld, 1);
	struct held old = held[0];
	struct stopper st;
	stop_here(&st);
	tfprof__gpu_result_free(&st.out);

	hold = false;
	session_start();
	launch_and_flush(3);
	tf_complete(NULL, 0, old.buf, old.size, old.valid);
	stop_here(&st);
	assert_int_equal(st.sum.buffers_foreign, 1);
	assert_int_equal(st.sum.buffers_unreturned, 0);
	assert_int_equal(kernels(&st.out), 3);
	tfprof__gpu_result_free(&st.out);
}

/* A completion stays inside past stop's bound: stop must return anyway and abandon the decoder
 * and the pool to it (never free them under it); when it finally finishes, during the next
 * session, that session is not disturbed. */
static void test_stuck_completion_is_abandoned(void **state)
{
	(void)state;
	session_start();
	hold = true;
	launch_and_flush(KERNELS);
	struct caller c;
	caller_start(&c, false);
	struct tp_gate decoding = { .point = "activity_complete_decoding", .tid = c.tid };
	tp_arm(&decoding);
	tp_event_set(&c.go);
	assert_true(tp_wait_hit(&decoding));
	struct stopper st;
	stopper_start(&st);
	/* Stop's own bounds (buffer wait, then decoder wait) end it; the guard is longer. */
	bool stopped = tp_event_wait(&st.done);
	pthread_join(st.t, NULL);
	assert_true(stopped);
	assert_true(st.sum.decoder_stuck);
	assert_int_equal(kernels(&st.out), 0);
	tfprof__gpu_result_free(&st.out);

	hold = false;
	nheld = 0;
	session_start();
	tp_open(&decoding); /* the stuck callback finishes into the abandoned decoder and pool */
	bool finished = tp_event_wait(&c.done);
	pthread_join(c.t, NULL);
	assert_true(finished);
	launch_and_flush(3);
	stop_here(&st);
	assert_false(st.sum.decoder_stuck);
	assert_int_equal(kernels(&st.out), 3);
	assert_int_equal(st.sum.buffers_unreturned, 0);
	tfprof__gpu_result_free(&st.out);
}

/* The correlation ids of the result's kernels, each exactly once, and their count. */
static size_t distinct_kernels(const struct tfprof__gpu_result *r)
{
	size_t n = kernels(r), k = 0;
	uint64_t *ids = calloc(n ? n : 1, sizeof *ids);
	assert_non_null(ids);
	for (const struct tfprof__dev_chunk *c = r->events; c; c = c->next)
		for (size_t i = 0; i < c->n; i++)
			if (c->ev[i].kind == TFPROF_DEV_KERNEL)
				ids[k++] = c->ev[i].correlation_id;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_true(ids[i] != ids[j]);
	free(ids);
	return n;
}

/* The result's chunks; asserts that their events add up to the count the result gives. */
static size_t chunks(const struct tfprof__gpu_result *r)
{
	size_t n = 0, events = 0;
	for (const struct tfprof__dev_chunk *c = r->events; c; c = c->next) {
		n++;
		events += c->n;
	}
	assert_int_equal(events, r->nevents);
	return n;
}

/* Two completions decode at once (the protocol allows it; CUPTI's worker and a thread that
 * flushes can both deliver). A small buffer first leaves a chunk with room; the next completion
 * takes it and is held before decoding, while a third decodes its whole buffer and finishes
 * first: it must not fill the held one's chunk but add its own behind it. Every record of every
 * buffer is in the result once, in two chunks. */
static void test_concurrent_completions_fill_their_own_chunks(void **state)
{
	(void)state;
	session_start();
	hold = true;
	launch_and_flush(KERNELS);
	/* More than one 256 KiB buffer holds, so that two more buffers come back. */
	enum { N = 2000 };
	launch_and_flush(N);
	assert_int_equal(nheld, 3);
	tf_complete(NULL, 0, held[0].buf, held[0].size, held[0].valid);
	struct caller a, b;
	caller_run(&a, false, held[1]);
	struct tp_gate opened = { .point = "activity_buffer_opened", .tid = a.tid };
	tp_arm(&opened);
	tp_event_set(&a.go);
	assert_true(tp_wait_hit(&opened));
	caller_run(&b, false, held[2]);
	tp_event_set(&b.go);
	bool b_done = tp_event_wait(&b.done);
	tp_open(&opened);
	bool a_done = tp_event_wait(&a.done);
	pthread_join(b.t, NULL);
	pthread_join(a.t, NULL);
	tp_disarm_all();
	assert_true(b_done);
	assert_true(a_done);
	struct stopper st;
	stop_here(&st);
	assert_int_equal(distinct_kernels(&st.out), KERNELS + N);
	assert_int_equal(st.out.dropped_by_bound, 0);
	assert_int_equal(st.sum.buffers_unreturned, 0);
	/* The first chunk (the small buffer's, then the held completion's) and the one the other
	 * completion added. */
	assert_int_equal(chunks(&st.out), 2);
	tfprof__gpu_result_free(&st.out);
}

/* Buffers that complete one after another go on filling the same chunk: a session of many
 * small buffers (frequent flushes) does not leave a mostly empty chunk per buffer. */
static void test_small_buffers_share_a_chunk(void **state)
{
	(void)state;
	session_start();
	hold = true;
	for (int i = 0; i < 4; i++)
		launch_and_flush(KERNELS);
	assert_int_equal(nheld, 4);
	for (size_t i = 0; i < nheld; i++)
		tf_complete(NULL, 0, held[i].buf, held[i].size, held[i].valid);
	struct stopper st;
	stop_here(&st);
	assert_int_equal(distinct_kernels(&st.out), 4 * KERNELS);
	assert_int_equal(chunks(&st.out), 1);
	tfprof__gpu_result_free(&st.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shut_out_waits_for_decoding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_completion_in_window_sees_pool_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_in_window_gets_no_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_taking_keeps_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_completion_after_stop_is_late, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_buffer_in_next_session_is_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stuck_completion_is_abandoned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_completions_fill_their_own_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_buffers_share_a_chunk, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
