/* SPDX-License-Identifier: Apache-2.0 */
/* Gates over the library's test points (src/testpoint.h): a test arms a gate at a named point
 * for one thread, waits until that thread is held there, does what the interleaving needs from
 * other threads, and then lets it go. Every wait is bounded (TP_GUARD_S) so that a broken
 * protocol fails the test instead of hanging it; the bound is a deadlock guard, not a timing. */
#ifndef TFPROF_TEST_TESTPOINT_GATE_H
#define TFPROF_TEST_TESTPOINT_GATE_H

#include <stdbool.h>
#include <sys/types.h>

#define TP_GUARD_S 10

struct tp_gate {
	const char *point; /* the TFPROF_TESTPOINT name */
	pid_t tid;         /* the thread held there; 0: the first thread to reach it */
	int skip;          /* passes of that thread to let through before holding it */
	/* Filled in by the gates: */
	bool hit;           /* a thread is (or was) held here */
	bool open;          /* tp_open() let it go */
	bool guard_expired; /* the held thread was let go by the guard, not by the test */
};

/* Installs the hook (once) and arms g; g must stay valid until tp_disarm_all(). */
void tp_arm(struct tp_gate *g);
/* Waits until a thread is held at g; false when none came within the guard. */
bool tp_wait_hit(struct tp_gate *g);
/* Waits until a thread is held at a or at b: 1 for a, 2 for b, 0 when none came in time. */
int tp_wait_either(struct tp_gate *a, struct tp_gate *b);
/* Lets the thread held at g go (or lets it pass without stopping when it comes later). */
void tp_open(struct tp_gate *g);
/* Opens every gate and forgets them: the next test starts with none. */
void tp_disarm_all(void);
/* Whether a gate's guard expired since the last tp_disarm_all(). */
bool tp_any_guard_expired(void);
/* The calling thread's id, for tp_gate.tid. */
pid_t tp_gettid(void);

/* A semaphore-like event with a bounded wait, for the tests' own threads. */
struct tp_event {
	bool set;
};
void tp_event_set(struct tp_event *e);
bool tp_event_wait(struct tp_event *e);

#endif
