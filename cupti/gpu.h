/* SPDX-License-Identifier: Apache-2.0 */
/* GPU tracing for one session, the only interface between cupti/ and the rest of tfprof: start
 * CUPTI activity collection and API callbacks, and at stop hand back neutral device events.
 * Nothing outside cupti/ includes a CUPTI header. Called by the session with its lock held:
 * start after host recording is on, stop after host recording is off. */
#ifndef TFPROF_CUPTI_GPU_H
#define TFPROF_CUPTI_GPU_H

#include <stddef.h>

#include "device_events.h"

struct tfprof__gpu_config {
	size_t buffer_size;  /* bytes per CUPTI activity buffer; 0 = default (TFPROF_CUPTI_BUFFER_KB or 4 MiB) */
	size_t buffer_count; /* buffers in the pool allocated at start; 0 = default (TFPROF_CUPTI_BUFFERS or 16) */
	size_t max_memory;   /* bound on decoded device event memory; 0 = default (256 MiB) */
	bool no_memory;      /* do not record CUDA allocations and releases (also TFPROF_GPU_MEMORY=0) */
};

/* Loads libcupti, registers the buffer pool and API callbacks, enables the activity kinds.
 * Returns 0 when GPU tracing runs, or a negative code when it fell back to host-only tracing;
 * either way the session goes on, and the reason is in the result of tfprof__gpu_stop(). */
int tfprof__gpu_start(const struct tfprof__gpu_config *cfg);
/* Disables collection, flushes CUPTI (forced), waits for buffers in flight and fills *out.
 * Safe to call after a failed start. */
void tfprof__gpu_stop(struct tfprof__gpu_result *out);
/* In a fork child (session.c's pthread_atfork child handler): forgets the parent's GPU tracing
 * without one CUPTI call. CUPTI's threads do not exist in the child, and a flush or unsubscribe
 * of the parent's state there can hang (HPCToolkit saw FlushAll hang at exit). When tracing was
 * active at the fork, every later tfprof__gpu_start() in this process falls back to host-only
 * with an error saying why, rather than subscribe to a CUPTI whose state is the parent's. */
void tfprof__gpu_fork_child(void);

#endif
