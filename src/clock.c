/* SPDX-License-Identifier: Apache-2.0 */
/* Chooses tfprof's tick source and converts ticks to session-relative nanoseconds (see clock.h
 * for why ticks and anchors). */
#include "clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef TFPROF_HAVE_TSC
#include <cpuid.h>
#endif

#include "env.h"

bool tfprof__clock_tsc;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

static void clock_pick(void)
{
	const char *env = tfprof__getenv("TFPROF_CLOCK");
	bool want_tsc = !(env && strcmp(env, "monotonic") == 0);
#ifdef TFPROF_HAVE_TSC
	unsigned a, b, c, d;
	/* CPUID 0x80000007 EDX bit 8: the TSC is invariant, so it ticks at one rate on every core
	 * in every power state and ticks from different threads compare. */
	bool invariant = __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8));
	tfprof__clock_tsc = want_tsc && invariant;
#else
	(void)want_tsc;
	tfprof__clock_tsc = false;
#endif
}

const char *tfprof__clock_init(void)
{
	pthread_once(&clock_once, clock_pick);
	return tfprof__clock_tsc ? "tsc" : "monotonic";
}

void tfprof__anchor_take(struct tfprof__anchor *a)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 7; i++) {
		uint64_t t0 = tfprof__ticks();
		uint64_t mono = tfprof__mono_ns();
		uint64_t t1 = tfprof__ticks();
		uint64_t real = tfprof__real_ns();
		if (t1 - t0 < best) {
			best = t1 - t0;
			a->ticks = t0 + (t1 - t0) / 2;
			a->mono_ns = mono;
			a->real_ns = real;
		}
	}
}

int64_t tfprof__ticks_to_rel_ns(const struct tfprof__timebase *tb, uint64_t ticks)
{
	if (!tfprof__clock_tsc)
		return (int64_t)(ticks - tb->begin.mono_ns);
	__int128 dt = (__int128)ticks - (__int128)tb->begin.ticks;
	__int128 span_ticks = (__int128)tb->end.ticks - (__int128)tb->begin.ticks;
	__int128 span_ns = (__int128)tb->end.mono_ns - (__int128)tb->begin.mono_ns;
	if (span_ticks <= 0)
		return 0;
	/* Round to nearest so that equal ticks on two lines map to equal nanoseconds. */
	__int128 num = dt * span_ns;
	__int128 q = num >= 0 ? (num + span_ticks / 2) / span_ticks : -((-num + span_ticks / 2) / span_ticks);
	return (int64_t)q;
}

int64_t tfprof__mono_to_rel_ns(const struct tfprof__timebase *tb, uint64_t mono_ns)
{
	return (int64_t)(mono_ns - tb->begin.mono_ns);
}

int64_t tfprof__real_to_rel_ns(const struct tfprof__timebase *tb, uint64_t real_ns)
{
	return (int64_t)(real_ns - tb->begin.real_ns);
}
