/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the benchmarks: the outer clock, page-fault counts, a sink that keeps the
 * compiler from dropping what a measured loop computes, and the median of repetitions. */
#ifndef TFPROF_BENCH_UTIL_H
#define TFPROF_BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of v[0..n) (n >= 1), v left as it is. */
static inline double median(const double *v, int n)
{
	double s[n];
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

#endif
