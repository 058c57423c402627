/* SPDX-License-Identifier: Apache-2.0 */
/* The merge step: what the recorders collected becomes planes of the merged profile. Runs once
 * per session, on the thread that calls tfprof_stop(), after recording has stopped. */
#ifndef TFPROF_MERGE_H
#define TFPROF_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "device_events.h"
#include "launch_map.h"
#include "profile.h"
#include "tracer.h"

/* Totals over all threads of one session, for warnings and tests. */
struct tfprof__host_counts {
	uint64_t emitted, recorded, dropped, too_deep, meta_dropped, bad_ends, bad_metadata, misnested;
	uint64_t truncated_args, ignored_args, open_at_stop;
};

/* Adds the /host:CPU plane: a line per thread (id = tid, name = thread name), an event per scope
 * or CUDA API call. Scopes open at stop_ticks end there. When launches is not NULL, each CUDA API
 * event with a correlation_id is entered there with its innermost enclosing scope and step. */
int tfprof__merge_host(struct tfprof__profile *p, const struct tfprof__timebase *tb, uint64_t stop_ticks,
		       const struct tfprof__thread_harvest *h, size_t n, struct tfprof__host_counts *counts,
		       struct tfprof__launch_map *launches);
/* Adds a /device:GPU:<ordinal> plane per device with a line per stream, each device event tagged
 * with the scope and step of the host call that launched it, and GPU tracing's errors and
 * warnings. *max_align_ns receives the clock pairing error bound. */
int tfprof__merge_device(struct tfprof__profile *p, const struct tfprof__timebase *tb,
			 const struct tfprof__gpu_result *g, const struct tfprof__launch_map *launches,
			 uint64_t *max_align_ns);
/* Adds what GPU tracing recorded of CUDA allocations and releases (merge_memory.c): a "GPU memory"
 * line on /host:CPU with the MemoryAllocation / MemoryDeallocation events xprof's Memory Profile
 * reads, one allocator per device and memory kind, each event tagged with the scope (tf_op) and
 * step of the CUDA call that made it, and a "_counters_" line there of each GPU's bytes in
 * use. Call after tfprof__merge_device. Does nothing without memory events. */
int tfprof__merge_memory(struct tfprof__profile *p, const struct tfprof__timebase *tb,
			 const struct tfprof__gpu_result *g, const struct tfprof__launch_map *launches);
/* Adds a warning for each kind of event that could not be recorded as asked. */
int tfprof__merge_host_warnings(struct tfprof__profile *p, const struct tfprof__host_counts *c,
				size_t max_memory);
/* Adds the "Task Environment" plane with profile_start_time / profile_stop_time (ns since the
 * epoch). */
int tfprof__merge_task_env(struct tfprof__profile *p, uint64_t start_walltime_ns, uint64_t stop_walltime_ns);

#endif
