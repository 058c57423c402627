/* SPDX-License-Identifier: Apache-2.0 */
/* The test points' hook for the protocol tests: holds the thread a gate names at its point
 * until the test opens the gate, with a bounded wait as a deadlock guard. */
#include "testpoint_gate.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "testpoint.h"

#define MAX_GATES 16

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct tp_gate *gates[MAX_GATES];
static int ngates;
static bool expired;

pid_t tp_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static struct timespec guard_deadline(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += TP_GUARD_S;
	return t;
}

/* Waits on cv (mu held) until *flag is set; false when the guard expired first. */
static bool wait_flag(const bool *flag)
{
	struct timespec t = guard_deadline();
	while (!*flag)
		if (pthread_cond_timedwait(&cv, &mu, &t) == ETIMEDOUT)
			return *flag;
	return true;
}

static void hook(const char *name)
{
	pid_t self = 0;
	pthread_mutex_lock(&mu);
	struct tp_gate *g = NULL;
	for (int i = 0; i < ngates && !g; i++) {
		struct tp_gate *c = gates[i];
		if (c->hit || strcmp(c->point, name) != 0)
			continue;
		if (c->tid) {
			if (!self)
				self = tp_gettid();
			if (c->tid != self)
				continue;
		}
		if (c->skip > 0) {
			c->skip--;
			continue;
		}
		g = c;
	}
	if (g) {
		g->hit = true;
		pthread_cond_broadcast(&cv);
		if (!wait_flag(&g->open))
			g->guard_expired = expired = true;
	}
	pthread_mutex_unlock(&mu);
}

void tp_arm(struct tp_gate *g)
{
	pthread_mutex_lock(&mu);
	g->hit = g->open = g->guard_expired = false;
	if (ngates < MAX_GATES)
		gates[ngates++] = g;
	pthread_mutex_unlock(&mu);
	tfprof__testpoint_set_hook(hook);
}

bool tp_wait_hit(struct tp_gate *g)
{
	pthread_mutex_lock(&mu);
	bool ok = wait_flag(&g->hit);
	pthread_mutex_unlock(&mu);
	return ok;
}

int tp_wait_either(struct tp_gate *a, struct tp_gate *b)
{
	struct timespec t = guard_deadline();
	int which = 0;
	pthread_mutex_lock(&mu);
	while (!(which = a->hit ? 1 : b->hit ? 2 : 0))
		if (pthread_cond_timedwait(&cv, &mu, &t) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&mu);
	return which;
}

void tp_open(struct tp_gate *g)
{
	pthread_mutex_lock(&mu);
	g->open = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

void tp_disarm_all(void)
{
	pthread_mutex_lock(&mu);
	for (int i = 0; i < ngates; i++)
		gates[i]->open = true;
	ngates = 0;
	expired = false;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

bool tp_any_guard_expired(void)
{
	pthread_mutex_lock(&mu);
	bool e = expired;
	pthread_mutex_unlock(&mu);
	return e;
}

void tp_event_set(struct tp_event *e)
{
	pthread_mutex_lock(&mu);
	e->set = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

bool tp_event_wait(struct tp_event *e)
{
	pthread_mutex_lock(&mu);
	bool ok = wait_flag(&e->set);
	pthread_mutex_unlock(&mu);
	return ok;
}
