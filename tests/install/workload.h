/* SPDX-License-Identifier: Apache-2.0 */
/* The workload that the installed-package consumer records and the checker expects, in one place
 * so that both agree: names, thread count and every argument value. Header-only and free of tfprof
 * types, because the checker reads the file with protobuf-c alone. */
#ifndef TFPROF_INSTALL_WORKLOAD_H
#define TFPROF_INSTALL_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Fixed names make the output path predictable: <logdir>/plugins/profile/RUN/HOST.xplane.pb. */
#define WL_RUN_NAME "tfprof-install-run"
#define WL_HOST_NAME "tfprof-install-host"

#define WL_THREADS 4
#define WL_STEPS 3
/* Per thread: WL_STEPS x (train_step > {load, forward > matmul}), then one runtime-named scope
 * and one step marker that sets its own _r. */
#define WL_EVENTS_PER_THREAD (WL_STEPS * 4 + 2)

static inline void wl_thread_name(char *buf, size_t n, int t)
{
	snprintf(buf, n, "worker-%d", t);
}

/* The runtime-built scope name, recorded with tfprof_scope_begin() (not a literal). */
static inline void wl_flush_name(char *buf, size_t n, int t)
{
	snprintf(buf, n, "flush-%d", t);
}

/* A runtime-built string argument value. */
static inline void wl_device(char *buf, size_t n, int t)
{
	snprintf(buf, n, "cpu:%d", t);
}

static inline uint64_t wl_bytes(int t, int step)
{
	/* Above INT64_MAX, so that a value written as int64 instead of uint64 would not compare. */
	return UINT64_C(0x8000000000000000) + (uint64_t)(t * 1000 + step);
}

static inline bool wl_cache_hit(int t, int step)
{
	return (t + step) % 2 == 1;
}

static inline double wl_lr(int t)
{
	return 0.001 * (t + 1) + 0.25;
}

static inline int64_t wl_delta(int t, int step)
{
	return -1000000000000LL - t * 10 - step;
}

static inline int64_t wl_eval_step(int t)
{
	return 100 + t;
}

#endif
