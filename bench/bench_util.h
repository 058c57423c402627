/* Helpers shared by the benchmarks: the outer clock, page-fault counts, and a sink that keeps
 * the compiler from dropping what a measured loop computes. */
#ifndef TFPROF_BENCH_UTIL_H
#define TFPROF_BENCH_UTIL_H

#include <stdint.h>
#include <sys/resource.h>

#include "clock.h"

/* Written once per loop so that the compiler must compute what the loops consume. */
static volatile uint64_t sink;

static inline uint64_t now_ns(void)
{
	return tfprof__mono_ns();
}

static inline long minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

#endif
