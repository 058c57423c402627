/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof's time base: a cheap tick counter read on the hot path, and anchors that map ticks to
 * nanoseconds of CLOCK_MONOTONIC and CLOCK_REALTIME at merge time.
 *
 * Ticks are the x86 TSC when the CPU says it is invariant (constant rate, runs in all sleep
 * states), else CLOCK_MONOTONIC nanoseconds; TFPROF_CLOCK=monotonic forces the latter. Reading the
 * TSC costs about 10 ns here against about 24 ns for vDSO clock_gettime, and a scope reads the clock
 * twice, so the choice is most of the enabled cost. Ticks become nanoseconds by interpolating
 * between an anchor taken at session start and one taken at stop, so no calibration spin is
 * needed and the error anywhere in the session is bounded by the error of the two anchors. */
#ifndef TFPROF_CLOCK_H
#define TFPROF_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define TFPROF_HAVE_TSC 1
#endif

/* Chosen once by tfprof__clock_init(); read on every tick. */
extern bool tfprof__clock_tsc;

static inline uint64_t tfprof__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t tfprof__real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The hot-path clock read. */
static inline uint64_t tfprof__ticks(void)
{
#ifdef TFPROF_HAVE_TSC
	if (__builtin_expect(tfprof__clock_tsc, 1))
		return __rdtsc();
#endif
	return tfprof__mono_ns();
}

/* One simultaneous reading of ticks and both system clocks. */
struct tfprof__anchor {
	uint64_t ticks;
	uint64_t mono_ns;
	uint64_t real_ns;
};

/* Picks the tick source (idempotent, thread-safe). Returns "tsc" or "monotonic". */
const char *tfprof__clock_init(void);
/* Takes an anchor, keeping the tightest of a few tries so the pairing error stays small. */
void tfprof__anchor_take(struct tfprof__anchor *a);

/* Maps ticks to ns since begin.mono_ns by interpolating between two anchors. Ticks outside
 * [begin, end] are extrapolated with the same rate. */
struct tfprof__timebase {
	struct tfprof__anchor begin, end;
};
int64_t tfprof__ticks_to_rel_ns(const struct tfprof__timebase *tb, uint64_t ticks);
/* Maps a CLOCK_MONOTONIC or CLOCK_REALTIME time to ns since the session began. */
int64_t tfprof__mono_to_rel_ns(const struct tfprof__timebase *tb, uint64_t mono_ns);
int64_t tfprof__real_to_rel_ns(const struct tfprof__timebase *tb, uint64_t real_ns);

#endif
