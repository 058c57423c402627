/* SPDX-License-Identifier: Apache-2.0 */
/* Neutral device events: what the GPU did, decoded from CUPTI records by cupti/ and handed to the
 * merger, which knows nothing of CUPTI. Timestamps are in the collector's clock (CUPTI's, ns);
 * struct tfprof__gpu_result carries the clock pairs that map them onto tfprof's time base. */
#ifndef TFPROF_DEVICE_EVENTS_H
#define TFPROF_DEVICE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"

enum tfprof__dev_kind {
	TFPROF_DEV_KERNEL = 1,
	TFPROF_DEV_MEMCPY = 2,
	TFPROF_DEV_MEMSET = 3,
	TFPROF_DEV_SYNC = 4,
	TFPROF_DEV_OVERHEAD = 5,
	TFPROF_DEV_MEMORY = 6,   /* an allocation or a release (CUPTI's MEMORY2) */
	TFPROF_DEV_MEMPOOL = 7,  /* a stream-ordered pool created, trimmed or destroyed (MEMORY_POOL) */
};

/* What a TFPROF_DEV_MEMORY event did (CUPTI's CUpti_ActivityMemoryOperationType values). */
enum tfprof__mem_op {
	TFPROF_MEM_ALLOC = 1,
	TFPROF_MEM_RELEASE = 2,
};

/* Memcpy directions (CUPTI's values). */
enum tfprof__copy_kind {
	TFPROF_COPY_UNKNOWN = 0,
	TFPROF_COPY_HTOD = 1,
	TFPROF_COPY_DTOH = 2,
	TFPROF_COPY_HTOA = 3,
	TFPROF_COPY_ATOH = 4,
	TFPROF_COPY_ATOA = 5,
	TFPROF_COPY_ATOD = 6,
	TFPROF_COPY_DTOA = 7,
	TFPROF_COPY_DTOD = 8,
	TFPROF_COPY_HTOH = 9,
	TFPROF_COPY_PTOP = 10,
};

/* device_id / stream_id of an event that has none: an overhead charged to a thread, or a
 * synchronization whose device could not be found. */
#define TFPROF_DEV_NONE UINT32_MAX

/* Memory kinds (CUPTI's values): 1 pageable, 2 pinned, 3 device, 4 array, 5 managed,
 * 6 device static, 7 managed static. */

struct tfprof__dev_event {
	uint64_t start, end;     /* collector clock, ns; 0 = unknown */
	uint64_t correlation_id; /* ties the event to the host API call that launched it */
	uint32_t kind;           /* enum tfprof__dev_kind */
	uint32_t device_id, context_id, stream_id;
	uint32_t name; /* kernels: index in tfprof__gpu_result.names (mangled); else 0 */
	/* Kernels: the shared memory the driver configured on each SM for this launch (the carveout,
	 * CUPTI's sharedMemoryExecuted), bytes; 0 = unknown; else 0. Kept out of u.kernel, where it
	 * would make every event 8 bytes larger, in what was padding. */
	uint32_t shared_config;
	union {
		struct {
			uint32_t grid[3], block[3];
			uint32_t registers_per_thread;
			int32_t static_shared, dynamic_shared;
			uint32_t graph_id;
		} kernel;
		struct {
			uint64_t bytes;
			uint32_t copy_kind, src_kind, dst_kind;
			uint32_t async;
			uint32_t src_device, dst_device;
		} memcpy;
		struct {
			uint64_t bytes;
			uint32_t value, memory_kind, async;
		} memset;
		struct {
			uint32_t type; /* CUpti_ActivitySynchronizationType */
		} sync;
		struct {
			uint32_t overhead_kind; /* CUpti_ActivityOverheadKind */
		} overhead;
		/* Memory events have one time (start == end). A release carries the bytes CUPTI
		 * gives it, but the merger subtracts what the matching allocation added, so a
		 * release of memory allocated before the session never makes a total negative. */
		struct {
			uint64_t address, bytes;
			uint32_t op;          /* enum tfprof__mem_op */
			uint32_t memory_kind; /* CUPTI's memory kinds, listed above */
			uint32_t stream_ordered; /* 1: cudaMallocAsync / cudaFreeAsync (a pool) */
		} memory;
		/* A pool event: its operation (1 created, 2 destroyed, 3 trimmed, CUPTI's
		 * CUpti_ActivityMemoryPoolOperationType), the pool's size and what of it is used. */
		struct {
			uint64_t size, utilized;
			uint32_t op;
			uint32_t managed; /* 1: a pool of managed memory */
		} mempool;
	} u;
};

struct tfprof__dev_device {
	uint32_t id; /* ordinal */
	char name[256];
	int cc_major, cc_minor;
	uint32_t sm_count;
	uint64_t memory_size;      /* bytes */
	uint64_t memory_bandwidth; /* bytes/s */
	uint32_t clock_khz;
	/* The limits theoretical occupancy is computed from (occupancy.h), as the DEVICE record
	 * gives them; 0 = not reported. */
	uint32_t warp_size;         /* threads per warp */
	uint32_t max_warps_per_sm;  /* resident warps per multiprocessor */
	uint32_t max_blocks_per_sm; /* resident blocks per multiprocessor */
	uint32_t regs_per_sm;       /* 32-bit registers per multiprocessor */
	uint32_t smem_per_sm;       /* shared memory per multiprocessor, bytes (the largest carveout) */
};

/* Device events in fixed-size chunks (no realloc of millions of events). */
struct tfprof__dev_chunk {
	struct tfprof__dev_chunk *next;
	size_t n, cap;
	struct tfprof__dev_event ev[];
};

/* A simultaneous reading of the collector's clock and tfprof's anchor. */
struct tfprof__clock_pair {
	uint64_t collector_ns;
	struct tfprof__anchor anchor;
	uint64_t width_ns; /* how far apart the two readings could be: the pairing error bound */
};

/* Everything GPU tracing produced in one session. Owned by the caller of tfprof__gpu_stop() and
 * freed with tfprof__gpu_result_free(). */
struct tfprof__gpu_result {
	int active; /* 1 if GPU tracing ran; 0 if it fell back to host-only (see errors) */
	struct tfprof__dev_chunk *events; /* oldest first */
	size_t nevents;
	char **names; /* kernel names, mangled as CUPTI gave them; index 0 is "" */
	size_t nnames;
	struct tfprof__dev_device *devices;
	size_t ndevices;
	uint64_t dropped_by_cupti;  /* cuptiActivityGetNumDroppedRecords, accumulated */
	uint64_t dropped_by_bound;  /* decoded records dropped: tfprof's memory bound */
	uint64_t dropped_no_buffer; /* buffer requests refused: pool exhausted */
	uint64_t zero_timestamps;   /* records without timestamps, left out */
	char **errors;   /* why GPU tracing did not run, with the fix; malloc'd strings */
	size_t nerrors;
	char **warnings;
	size_t nwarnings;
	struct tfprof__clock_pair begin, end;
};

void tfprof__gpu_result_free(struct tfprof__gpu_result *r);

#endif
