/* SPDX-License-Identifier: Apache-2.0 */
/* Deterministic tests of the host tracer's stop protocol (src/tracer.c's header): each test
 * holds threads at the library's test points to force one interleaving of recording threads,
 * exiting threads and the stopper, then checks what the user gets: complete records, nothing
 * lost or recorded twice, a stop that returns. */
#include <pthread.h>

#include "testpoint.h"
#include "testpoint_gate.h"
#include "tracer.h"
#include "tt.h"

/* A thread that runs body once the test has armed its gates (it needs the thread's id). */
struct actor {
	pthread_t t;
	pid_t tid;
	struct tp_event started, go, phase1, step, finished;
	void (*body)(struct actor *);
	tfprof_scope h, h2;
};

static void *actor_main(void *p)
{
	struct actor *a = p;
	a->tid = tp_gettid();
	tp_event_set(&a->started);
	if (tp_event_wait(&a->go))
		a->body(a);
	tp_event_set(&a->finished);
	return NULL;
}

static void actor_start(struct actor *a, void (*body)(struct actor *))
{
	memset(a, 0, sizeof *a);
	a->body = body;
	assert_int_equal(pthread_create(&a->t, NULL, actor_main, a), 0);
	assert_true(tp_event_wait(&a->started));
}

/* tfprof_stop() on its own thread, so that the test can act while it is held at a point. */
struct stopper {
	pthread_t t;
	int rc;
	struct tp_event done;
};

static void *stopper_main(void *p)
{
	struct stopper *s = p;
	s->rc = tfprof_stop();
	tp_event_set(&s->done);
	return NULL;
}

static void stopper_start(struct stopper *s)
{
	memset(s, 0, sizeof *s);
	assert_int_equal(pthread_create(&s->t, NULL, stopper_main, s), 0);
}

static int setup(void **state)
{
	return tt_setup(state);
}

static int teardown(void **state)
{
	tp_disarm_all();
	return tt_teardown(state);
}

/* The one event of the host plane with this name; fails when there is not exactly one. */
static const XEvent *only_event(const XSpace *s, const char *name)
{
	const XPlane *h = tt_host(s);
	const XEvent *found = NULL;
	size_t n = 0;
	for (size_t i = 0; i < h->n_lines; i++)
		for (size_t j = 0; j < h->lines[i]->n_events; j++)
			if (strcmp(tt_event_name(h, h->lines[i]->events[j]), name) == 0) {
				found = h->lines[i]->events[j];
				n++;
			}
	if (n != 1)
		fail_msg("%zu events named %s, expected 1", n, name);
	return found;
}

static XSpace *read_last(void)
{
	XSpace *s = tt_read_xspace(tfprof_last_output());
	tt_check_well_formed(s);
	return s;
}

/* ---- A thread inside an operation when recording goes off ----------------------------------- */

static void body_begin_inflight(struct actor *a)
{
	struct tfprof_arg args[] = { TFPROF_I64("k", 42) };
	a->h = tfprof_scope_begin("inflight", args, 1);
}

/* A begin that saw recording on is held before it writes its record while stop clears the bit:
 * the quiesce must wait for it, so the record is complete (name and argument) in the profile. */
static void test_stop_waits_for_begin_writing(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	struct actor r;
	actor_start(&r, body_begin_inflight);
	struct tp_gate writing = { .point = "tracer_begin_recording", .tid = r.tid };
	struct tp_gate waiting = { .point = "tracer_quiesce_wait" };
	struct tp_gate harvest = { .point = "tracer_harvest" };
	tp_arm(&writing);
	tp_arm(&waiting);
	tp_arm(&harvest);
	tp_event_set(&r.go);
	assert_true(tp_wait_hit(&writing));
	struct stopper st;
	stopper_start(&st);
	/* The stopper must be found waiting for the begin, not on its way to the harvest. */
	bool waited = tp_wait_either(&waiting, &harvest) == 1;
	tp_open(&writing);
	tp_open(&waiting);
	tp_open(&harvest);
	bool stopped = tp_event_wait(&st.done);
	pthread_join(st.t, NULL);
	pthread_join(r.t, NULL);
	assert_true(waited);
	assert_true(stopped);
	assert_int_equal(st.rc, 0);
	assert_false(tp_any_guard_expired());

	XSpace *s = read_last();
	const XEvent *e = only_event(s, "inflight");
	const XStat *k = tt_event_stat(tt_host(s), e, "k");
	assert_non_null(k);
	assert_int_equal(k->int64_value, 42);
	/* Never ended: recording went off first. */
	assert_non_null(tt_event_stat(tt_host(s), e, "tfprof_open_at_stop"));
	tt_xspace_free(s);
}

static void body_warmup_then_begin(struct actor *a)
{
	tfprof_scope w = tfprof_scope_begin("warmup", NULL, 0);
	tfprof_scope_end(w);
	tp_event_set(&a->phase1);
	if (tp_event_wait(&a->step))
		a->h = tfprof_scope_begin("after_off", NULL, 0);
}

/* A begin held after entering its operation but before it reads the state, while stop clears
 * the bit and waits for it: it must see recording off and write nothing into the chunks the
 * stopper is about to take. */
static void test_begin_entered_sees_recording_off(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	struct actor r;
	actor_start(&r, body_warmup_then_begin);
	tp_event_set(&r.go);
	assert_true(tp_event_wait(&r.phase1));
	struct tp_gate entered = { .point = "tracer_op_entered", .tid = r.tid };
	struct tp_gate waiting = { .point = "tracer_quiesce_wait" };
	tp_arm(&entered);
	tp_arm(&waiting);
	tp_event_set(&r.step);
	assert_true(tp_wait_hit(&entered));
	struct stopper st;
	stopper_start(&st);
	bool waited = tp_wait_hit(&waiting);
	size_t reserved = tfprof__tracer_reserved_bytes();
	tp_open(&entered);
	bool finished = tp_event_wait(&r.finished);
	size_t reserved_after = tfprof__tracer_reserved_bytes();
	tp_open(&waiting);
	bool stopped = tp_event_wait(&st.done);
	pthread_join(st.t, NULL);
	pthread_join(r.t, NULL);
	assert_true(waited);
	assert_true(finished);
	assert_true(stopped);
	assert_int_equal(st.rc, 0);
	assert_false(tp_any_guard_expired());
	assert_int_equal(r.h.tag, 0);
	assert_int_equal(reserved_after, reserved);

	XSpace *s = read_last();
	only_event(s, "warmup");
	assert_int_equal(tt_count_events(tt_host(s), "after_off"), 0);
	tt_xspace_free(s);
}

static void body_two_operations(struct actor *a)
{
	a->h = tfprof_scope_begin("first", NULL, 0);
	/* The slow path directly: a thread that read the state word just before stop cleared it. */
	a->h2 = tfprof_scope_begin_slow("second", NULL, 0);
}

/* The stopper waits for the operation it saw, not for the thread: once the held begin leaves
 * and the same thread is inside a new operation (op_seq odd again, but past the value seen),
 * the stop must return without waiting for that one. */
static void test_quiesce_ignores_later_operations(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	struct actor r;
	actor_start(&r, body_two_operations);
	struct tp_gate first = { .point = "tracer_begin_recording", .tid = r.tid };
	/* The first begin's enter() passes; the second's holds the thread inside its operation. */
	struct tp_gate second = { .point = "tracer_op_entered", .tid = r.tid, .skip = 1 };
	struct tp_gate waiting = { .point = "tracer_quiesce_wait" };
	tp_arm(&first);
	tp_arm(&second);
	tp_arm(&waiting);
	tp_event_set(&r.go);
	assert_true(tp_wait_hit(&first));
	struct stopper st;
	stopper_start(&st);
	bool waited = tp_wait_hit(&waiting);
	tp_open(&first);
	bool in_second = tp_wait_hit(&second);
	tp_open(&waiting);
	/* The stop must finish while the thread is still held inside its second operation. */
	bool stopped = tp_event_wait(&st.done);
	bool second_still_held = !second.open && !second.guard_expired;
	tp_open(&second);
	pthread_join(st.t, NULL);
	pthread_join(r.t, NULL);
	assert_true(waited);
	assert_true(in_second);
	assert_true(stopped);
	assert_true(second_still_held);
	assert_false(tp_any_guard_expired());
	assert_int_equal(st.rc, 0);
	assert_int_equal(r.h2.tag, 0);

	XSpace *s = read_last();
	only_event(s, "first");
	assert_int_equal(tt_count_events(tt_host(s), "second"), 0);
	tt_xspace_free(s);
}

/* ---- Threads that exit around the harvest --------------------------------------------------- */

static void body_record_then_exit(struct actor *a)
{
	TFPROF_SCOPE("exiting", TFPROF_I64("k", 7));
	tp_event_set(&a->phase1);
	tp_event_wait(&a->step);
}

/* A thread exits after recording went off but before the harvest: it must leave its records on
 * the dead list (harvest_pending), and the harvest must deliver them. */
static void test_exit_between_quiesce_and_harvest(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	struct actor w;
	actor_start(&w, body_record_then_exit);
	tp_event_set(&w.go);
	assert_true(tp_event_wait(&w.phase1));
	struct tp_gate harvest = { .point = "tracer_harvest" };
	tp_arm(&harvest);
	struct stopper st;
	stopper_start(&st);
	bool at_harvest = tp_wait_hit(&harvest);
	tp_event_set(&w.step);
	pthread_join(w.t, NULL); /* its exit ran in full: list_mu is free before the harvest */
	tp_open(&harvest);
	bool stopped = tp_event_wait(&st.done);
	pthread_join(st.t, NULL);
	assert_true(at_harvest);
	assert_true(stopped);
	assert_int_equal(st.rc, 0);

	XSpace *s = read_last();
	const XEvent *e = only_event(s, "exiting");
	assert_int_equal(tt_event_stat(tt_host(s), e, "k")->int64_value, 7);
	tt_xspace_free(s);
}

/* A thread exits while the stop runs and reaches its exit path only after the harvest took its
 * records as a live thread's: the exit must find nothing left to hand in or free, so the events
 * are in this profile once and in no later one, and nothing is freed twice. */
static void test_exit_after_harvest(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	struct actor w;
	actor_start(&w, body_record_then_exit);
	tp_event_set(&w.go);
	assert_true(tp_event_wait(&w.phase1));
	struct tp_gate exiting = { .point = "tracer_thread_exit", .tid = w.tid };
	tp_arm(&exiting);
	tp_event_set(&w.step);
	bool held = tp_wait_hit(&exiting);
	XSpace *s = tt_stop_and_read();
	tp_open(&exiting);
	pthread_join(w.t, NULL);
	assert_true(held);
	only_event(s, "exiting");
	tt_xspace_free(s);

	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	tfprof_scope_end(tfprof_scope_begin("next", NULL, 0));
	s = tt_stop_and_read();
	only_event(s, "next");
	assert_int_equal(tt_count_events(tt_host(s), "exiting"), 0);
	tt_xspace_free(s);
}

/* ---- Operations that straddle a stop and the next start ------------------------------------- */

static void body_warmup_then_straddle(struct actor *a)
{
	tfprof_scope w = tfprof_scope_begin("s1", NULL, 0);
	tfprof_scope_end(w);
	tp_event_set(&a->phase1);
	if (!tp_event_wait(&a->step))
		return;
	a->h = tfprof_scope_begin("straddle", NULL, 0);
	tfprof_scope_end(a->h);
}

/* Session 1 records body's first part; body's next operation is held at the caller's gate (its
 * point set; it must stay valid until the teardown disarms it) while session 1 stops (its profile
 * read into *s1) and session 2 starts, then let go and run to its end. The start's result goes to
 * *rc, whether body finished to *finished. */
static void straddle(void (*body)(struct actor *), struct tp_gate *before, XSpace **s1, int *rc,
		     bool *finished)
{
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	struct actor r;
	actor_start(&r, body);
	tp_event_set(&r.go);
	assert_true(tp_event_wait(&r.phase1));
	before->tid = r.tid;
	tp_arm(before);
	tp_event_set(&r.step);
	assert_true(tp_wait_hit(before));
	*s1 = tt_stop_and_read();
	*rc = tfprof_start(tt_logdir, NULL);
	tp_open(before);
	*finished = tp_event_wait(&r.finished);
	pthread_join(r.t, NULL);
}

/* A begin looked at its thread state (attached to session 1), then was held before entering its
 * operation while session 1 stopped and session 2 started: it must notice, attach to session 2
 * and record there, not into the state session 1's harvest reset. */
static void test_begin_across_stop_and_start(void **state)
{
	(void)state;
	XSpace *s1;
	int rc;
	bool finished;
	struct tp_gate before = { .point = "tracer_begin_before_enter" };
	straddle(body_warmup_then_straddle, &before, &s1, &rc, &finished);
	assert_int_equal(rc, 0);
	assert_true(finished);
	only_event(s1, "s1");
	assert_int_equal(tt_count_events(tt_host(s1), "straddle"), 0);
	tt_xspace_free(s1);

	XSpace *s2 = tt_stop_and_read();
	const XEvent *e = only_event(s2, "straddle");
	assert_null(tt_event_stat(tt_host(s2), e, "tfprof_open_at_stop"));
	tt_xspace_free(s2);
}

static void body_end_straddles(struct actor *a)
{
	a->h = tfprof_scope_begin("old", NULL, 0);
	tp_event_set(&a->phase1);
	if (!tp_event_wait(&a->step))
		return;
	tfprof_scope_end(a->h);
	tfprof_scope n = tfprof_scope_begin("new", NULL, 0);
	tfprof_scope_end(n);
}

/* An end held before entering its operation while the session that recorded its scope stops
 * and the next starts: it must be counted as an ignored end, never write into the record that
 * session 1's harvest handed back, and the thread records normally in session 2. */
static void test_end_across_stop_and_start(void **state)
{
	(void)state;
	XSpace *s1;
	int rc;
	bool finished;
	struct tp_gate before = { .point = "tracer_end_before_enter" };
	straddle(body_end_straddles, &before, &s1, &rc, &finished);
	uint64_t orphans = tfprof__tracer_orphan_bad_ends();
	assert_int_equal(rc, 0);
	assert_true(finished);
	const XEvent *old = only_event(s1, "old");
	assert_non_null(tt_event_stat(tt_host(s1), old, "tfprof_open_at_stop"));
	tt_xspace_free(s1);

	XSpace *s2 = tt_stop_and_read();
	assert_int_equal(orphans, 1);
	only_event(s2, "new");
	assert_int_equal(tt_count_events(tt_host(s2), "old"), 0);
	tt_xspace_free(s2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stop_waits_for_begin_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_begin_entered_sees_recording_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quiesce_ignores_later_operations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_between_quiesce_and_harvest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_after_harvest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_begin_across_stop_and_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_across_stop_and_start, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
