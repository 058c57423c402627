/* SPDX-License-Identifier: Apache-2.0 */
/* CUPTI activity collection for one session: the pool of activity buffers CUPTI fills, the
 * request and completion callbacks, and the decoding of records into neutral device events
 * (device_events.h). The locking is written down at the top of activity.c.
 *
 * Call order, from the thread that owns the session (gpu.c, under the session lock):
 *   tfprof__activity_start -> tfprof__activity_enable -> ... -> tfprof__activity_disable ->
 *   tfprof__activity_finish
 * or, when a later step of the start fails, tfprof__activity_enable's own undo and then
 * tfprof__activity_abort. */
#ifndef TFPROF_CUPTI_ACTIVITY_H
#define TFPROF_CUPTI_ACTIVITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device_events.h"
#include "loader.h"


/* Decoded events are kept in chunks of this many; a chunk is the unit the memory bound counts. */
#define TFPROF_CUPTI_CHUNK_EVENTS 4096u

/* Bytes one chunk takes from the memory bound. */
static inline size_t tfprof__activity_chunk_bytes(void)
{
	return sizeof(struct tfprof__dev_chunk) +
	       (size_t)TFPROF_CUPTI_CHUNK_EVENTS * sizeof(struct tfprof__dev_event);
}

struct tfprof__activity_config {
	size_t buffer_size;  /* bytes per buffer, a multiple of 4096 */
	size_t buffer_count; /* 1 .. 4096 */
	size_t max_memory;   /* bound on decoded events and kernel names, bytes */
	bool memory;         /* collect allocations and releases (MEMORY2, MEMORY_POOL) */
};

/* What stop learned besides the events, for gpu.c's messages. */
struct tfprof__activity_summary {
	uint64_t buffers_handed_out;  /* buffers given to CUPTI this session */
	uint64_t buffers_unreturned;  /* of those, still with CUPTI when the wait ended */
	uint64_t buffers_late;        /* completions after stop began waiting no more; ignored */
	uint64_t buffers_foreign;     /* completions of buffers not from this session's pool */
	uint64_t buffers_bad;         /* buffers whose iteration ended with an error */
	uint64_t records_other;       /* records of kinds tfprof does not decode; ignored */
	uint64_t wait_ns;             /* how long stop waited for buffers after the first flush */
	CUptiResult flush_rc;         /* cuptiActivityFlushAll's result */
	bool decoder_stuck;           /* a completion callback did not finish in time: no events */
};

/* Allocates the buffer pool and the decoder, opens the pool and registers the buffer callbacks
 * with CUPTI (allowed again in every session, as no activity kind is enabled in between).
 * Returns 0, or a negative errno with a one-line reason and fix in err. */
int tfprof__activity_start(const struct tfprof__cupti_fns *f, const struct tfprof__activity_config *cfg,
			   char *err, size_t errlen);

/* Enables the activity kinds. CONCURRENT_KERNEL (never the serializing KERNEL), MEMCPY and
 * MEMSET are needed: if one fails, the kinds enabled so far are disabled again and the failing
 * result is returned with the call's name in *what. MEMCPY2, SYNCHRONIZATION, OVERHEAD, DEVICE
 * and CONTEXT only add detail, as do MEMORY2 and MEMORY_POOL (enabled when the config
 * given to tfprof__activity_start asks for memory): a failure there is noted in warn (one line) and collection goes
 * on, unless the result says CUPTI cannot work at all (no GPU, no privileges), which fails the
 * whole start like a needed kind. DEVICE and CONTEXT use cuptiActivityEnableAndDump where the
 * library has it, so GPUs that CUDA set up before this session are described too. */
CUptiResult tfprof__activity_enable(const char **what, char *warn, size_t warnlen);

/* Disables every kind tfprof__activity_enable() enabled. */
void tfprof__activity_disable(void);

/* Undoes tfprof__activity_start() after a failed start: closes and frees the pool. */
void tfprof__activity_abort(void);

/* Ends the session's collection (kinds must be disabled already): forced flush, a bounded wait
 * for every buffer handed out, then the pool closes and the decoded events, kernel names,
 * devices and counters move into out (events, nevents, names, nnames, devices, ndevices,
 * dropped_by_cupti, dropped_by_bound, dropped_no_buffer, zero_timestamps). Synchronizations,
 * whose records carry a context but no device, get the device from CONTEXT records, else from
 * context_device (may be NULL), else TFPROF_DEV_NONE. */
void tfprof__activity_finish(struct tfprof__gpu_result *out, struct tfprof__activity_summary *sum,
			     bool (*context_device)(uint32_t context_id, uint32_t *device_id));

/* Decodes whole buffers of activity records with the code the completion callback runs (the
 * same walk through f->ActivityGetNextRecord, batching, locking and decoding) into a decoder of
 * its own, bounded by max_memory, then moves the events, kernel names, devices and counters
 * into out and sum as tfprof__activity_finish does (both are zeroed first; free out with
 * tfprof__gpu_result_free). Synchronizations keep the device their CONTEXT records give, else
 * TFPROF_DEV_NONE. It touches no session state and may run with or without a session; it
 * exists so that the benchmark (bench/cupti_ingest.c) measures the production decoder on
 * synthetic buffers. The buffers stay the caller's. Returns 0, or -ENOMEM. */
/* In a fork child (via tfprof__gpu_fork_child): closes the pool to the callbacks and forgets the
 * pool and the decoder without freeing them or calling CUPTI. The child's copy of CUPTI may still
 * hold the pool's buffers and call back with them, and the decoder's lock may have been held by
 * a completion thread of the parent's that does not exist here; both are leaked, once. */
void tfprof__activity_fork_child(void);

int tfprof__activity_decode_buffers(const struct tfprof__cupti_fns *f, uint8_t *const *bufs,
				    const size_t *valid, size_t nbufs, size_t max_memory,
				    struct tfprof__gpu_result *out, struct tfprof__activity_summary *sum);

#endif
