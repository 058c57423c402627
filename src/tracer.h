/* SPDX-License-Identifier: Apache-2.0 */
/* Per-thread event recording: the records a scope leaves in its thread's buffer, the thread
 * state that owns those buffers, and the harvest that hands them to the merger at stop.
 *
 * Records are appended to chunks that belong to one thread; only that thread writes them. The
 * synchronization with tfprof_stop() is written down in tracer.c's header. */
#ifndef TFPROF_TRACER_H
#define TFPROF_TRACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arg_sig.h"
#include "tfprof/tfprof.h"

/* Internal bit of tfprof__state, set while a capture asked for host_tracer_level 0: user
 * scopes (C, NVTX, Python) are not recorded, the CUDA API calls of GPU tracing are. The public
 * fast paths test the whole word, so scope begins reach the slow path that checks it. */
#define TFPROF__STATE_NO_SCOPES 4u

/* Internal bit of tfprof__state (next to TFPROF_STATE_ON), set while registered scope hooks
 * must see every scope begin and end, even while nothing records (activation's TFPROF_STEPS
 * starts the session at a step's begin): the public fast paths test the whole word, so every
 * begin then reaches the slow path. session.c sets and clears TFPROF_STATE_ON without touching
 * it; whoever registers the hooks sets and clears it. */
#define TFPROF__STATE_HOOKS 2u

/* Calls into a layer above the tracer, registered by it, so that the tracer depends on nothing
 * above it. Called from scope slow paths while TFPROF__STATE_HOOKS is set: never from a CUPTI
 * callback or with a tracer lock held. */
struct tfprof__scope_hooks {
	/* Before a user scope begins, with its arguments; may start the session. Returns true to
	 * get the handle of the scope about to begin through began(). */
	bool (*before_begin)(const struct tfprof_arg *args, size_t nargs);
	void (*began)(tfprof_scope s);
	/* After a scope ended (closed, NVTX range popped). */
	void (*ended)(tfprof_scope s);
};

/* Registers hooks (static storage; NULL removes them). Register before setting
 * TFPROF__STATE_HOOKS. */
void tfprof__tracer_set_scope_hooks(const struct tfprof__scope_hooks *hooks);

enum tfprof__rec_kind {
	TFPROF_REC_SCOPE = 1, /* a scope: struct tfprof__rec_scope */
	TFPROF_REC_META = 2,  /* set_metadata args for an open scope: struct tfprof__rec_meta */
};

enum tfprof__rec_flags {
	TFPROF_REC_NAME_SITE = 1u << 0,       /* name points at a struct tfprof_site */
	TFPROF_REC_CLOSED_BY_PARENT = 1u << 1, /* ended because an enclosing scope ended first */
	TFPROF_REC_ARGS_TRUNCATED = 1u << 2,  /* more args were passed than a record holds */
	TFPROF_REC_API = 1u << 3,             /* a CUDA API call recorded by the GPU tracer */
	TFPROF_REC_NAME_SIG = 1u << 4,        /* name points at a struct tfprof__sig (arg_sig.h):
					       * the site, and the keys and types of the args,
					       * which follow as nargs 8-byte values */
};

/* What every record starts with. A thread's records follow each other in its chunks; scopes are
 * numbered by their order there (the first is serial 1), which is what a handle's serial says. */
struct tfprof__rec {
	uint32_t size; /* bytes, including this header; a multiple of 8 */
	uint8_t kind;  /* enum tfprof__rec_kind */
	uint8_t flags; /* enum tfprof__rec_flags */
	uint16_t nargs;
};

/* A scope: 32 bytes, then its args (nargs values, or nargs struct tfprof_arg unless NAME_SIG),
 * then the bytes of copied strings. Every pointer in a record points at static storage, at a
 * signature (never freed) or into the record itself. */
struct tfprof__rec_scope {
	struct tfprof__rec h;
	uint64_t t0;      /* begin ticks */
	uint64_t t1;      /* end ticks; written once by the owning thread's end, 0 while open */
	const void *name; /* struct tfprof_site *, struct tfprof__sig * or a NUL-terminated string */
};

/* set_metadata's args (nargs struct tfprof_arg, then copied strings) for the scope with serial. */
struct tfprof__rec_meta {
	struct tfprof__rec h;
	uint32_t serial;
	uint32_t unused;
};

/* The whole struct tfprof_arg that follow a record's header (not for NAME_SIG scopes). */
static inline struct tfprof_arg *tfprof__rec_args(struct tfprof__rec *r)
{
	size_t head = r->kind == TFPROF_REC_SCOPE ? sizeof(struct tfprof__rec_scope) : sizeof(struct tfprof__rec_meta);
	return (struct tfprof_arg *)((char *)r + head);
}

/* The values of a NAME_SIG scope's args. */
static inline const uint64_t *tfprof__rec_values(const struct tfprof__rec_scope *r)
{
	return (const uint64_t *)(r + 1);
}

static inline const char *tfprof__rec_name(const struct tfprof__rec_scope *r)
{
	if (r->h.flags & TFPROF_REC_NAME_SIG)
		return ((const struct tfprof__sig *)r->name)->site->name;
	return (r->h.flags & TFPROF_REC_NAME_SITE) ? ((const struct tfprof_site *)r->name)->name
						    : (const char *)r->name;
}

/* A run of records. used is written by the thread that owns the chunk (when it opens the next
 * chunk, or at exit) and by the harvest, once the quiesce has made the chunk the stopper's; no
 * other thread reads it while records are written. */
struct tfprof__chunk {
	struct tfprof__chunk *next;
	size_t cap;
	size_t used;
	_Alignas(8) unsigned char data[];
};

/* The per-thread counts that are added up across threads (the harvest's, and merge's totals),
 * as an X-macro so that every place that sums them names them once. */
#define TFPROF__THREAD_COUNTERS(X) X(emitted) TFPROF__THREAD_KEPT_COUNTERS(X)
/* The ones a thread state keeps as they are; emitted is derived (recorded + dropped + too_deep),
 * so that the hot path has one count less to keep. */
#define TFPROF__THREAD_KEPT_COUNTERS(X) \
	X(dropped) X(too_deep) X(meta_dropped) X(bad_ends) X(bad_metadata) X(misnested) X(truncated_args)

/* What one thread recorded in one session, taken out of its thread state at stop. */
struct tfprof__thread_harvest {
	int64_t tid;
	char name[256];
	struct tfprof__chunk *chunks; /* oldest first */
	uint64_t first_serial;        /* serial of the first recorded scope */
	uint64_t emitted;             /* scope begins seen while the session recorded */
	uint64_t recorded;
	uint64_t dropped;        /* begins dropped because the memory bound was reached */
	uint64_t too_deep;       /* begins dropped because scopes nested deeper than 256 */
	uint64_t meta_dropped;   /* set_metadata calls dropped for the same reason */
	uint64_t bad_ends;       /* ends ignored: other thread, double end, stale handle */
	uint64_t bad_metadata;   /* set_metadata on a scope that is not open on this thread */
	uint64_t misnested;      /* inner scopes closed because an outer one ended first */
	uint64_t truncated_args; /* arguments left out of records (over the per-scope limit) */
	bool no_line;            /* counts only (of exited threads that left no record): no line */
};

/* Records a CUDA API call (from a CUPTI API callback, on the thread that called CUDA) as a host
 * event in the thread's buffer, so it nests under the scope that was open. name and args are
 * copied; no NVTX range is emitted (Nsight traces CUDA itself). End it with
 * tfprof_scope_end_slow() on the same thread. Returns a handle with tag 0 when not recorded. */
tfprof_scope tfprof__api_begin(const char *name, const struct tfprof_arg *args, size_t nargs);

/* Session-wide recording parameters, set by tfprof_start() before recording is switched on. */
void tfprof__tracer_begin_session(size_t max_memory, bool nvtx);
/* Waits until no thread is inside a record operation; recording must already be off. */
void tfprof__tracer_quiesce(void);
/* Takes every thread's records for the session that just stopped; threads that exited are
 * freed. Call after tfprof__tracer_quiesce(). *out is malloc'd; free it with
 * tfprof__tracer_harvest_free(). */
int tfprof__tracer_harvest(struct tfprof__thread_harvest **out, size_t *n);
void tfprof__tracer_harvest_free(struct tfprof__thread_harvest *h, size_t n);
/* How long the last tfprof__tracer_quiesce() took (for the stop-under-load test and bench). */
uint64_t tfprof__tracer_last_quiesce_ns(void);
/* Bytes of event buffers reserved in this session (for tests of the memory bound). */
size_t tfprof__tracer_reserved_bytes(void);
/* Ignored ends that could not be charged to a thread (the ending thread had no state). */
uint64_t tfprof__tracer_orphan_bad_ends(void);

/* ---- Fork safety, called from session.c's pthread_atfork handlers ---- */

/* Takes the tracer's locks before fork() and releases them after it, in the parent. */
void tfprof__tracer_fork_prepare(void);
void tfprof__tracer_fork_parent(void);
/* In the child: releases the locks and forgets every thread state but the calling thread's,
 * with all their records, so that nothing of the parent's is ever harvested in the child. */
void tfprof__tracer_fork_child(void);

#endif
