/* SPDX-License-Identifier: Apache-2.0 */
/* CUPTI activity buffers and record decoding: a pool of buffers allocated at session start is
 * lent to CUPTI through the request callback, and each buffer CUPTI hands back is decoded into
 * neutral device events (device_events.h) and returned to the pool.
 *
 * Threads and synchronization
 * - Request callback (on_request): runs on an application thread, possibly inside a kernel
 *   launch, whenever CUPTI needs a buffer. It takes no lock and allocates nothing: it registers
 *   itself in `inflight`, checks `accepting`, and takes a buffer from a lock-free bitmap of free
 *   buffers (one compare-and-swap in the common case). An empty pool or a closed one yields no
 *   buffer; CUPTI then drops the record and counts it, and tfprof counts the refusal.
 * - Completion callback (on_complete): runs on CUPTI's worker thread, or on whatever thread
 *   calls cuptiActivityFlushAll, possibly on several threads at once. It registers in
 *   `inflight` and checks `accepting` like a request. It walks the buffer with
 *   cuptiActivityGetNextRecord and decodes each record as it comes, WITHOUT any lock held, into
 *   chunks that it alone fills until the buffer ends (struct sink). It takes decode_mu only
 *   briefly and never while calling CUPTI: to take or give back a partly filled chunk at the
 *   start and end of the buffer, to add a chunk (once per TFPROF_CUPTI_CHUNK_EVENTS events), to
 *   intern a kernel name the buffer has not seen, to record a device or a context, and to add
 *   its counters at the end. Finally it returns the buffer to the pool with an atomic OR.
 * - decode_mu is taken by completion callbacks and, once they are shut out, by stop. No thread
 *   ever holds it while calling into CUPTI, and cuptiActivityFlushAll is only ever called with no
 *   tfprof lock held except the session lock, which the callbacks never take. This rules out the
 *   deadlock Kineto hit (a flush under a mutex whose completion callback wanted the same mutex).
 * - Shutting the callbacks out (stop or a failed start): the session thread stores accepting = 0
 *   and then waits until inflight == 0. Callbacks increment inflight before they load accepting;
 *   both sides use sequentially consistent operations, so either a callback sees accepting == 0
 *   and leaves without touching the pool, or the session thread sees it in flight and waits for
 *   it (Dekker's pattern). Afterwards the pool and the decoder belong to the session thread.
 * - A buffer CUPTI still holds when stop's bounded wait ends may come back later. The pool it
 *   lives in is then never freed (retired), so the late completion reads valid memory; it is
 *   recognized as not belonging to the current pool and ignored.
 *
 * Memory: the pool is allocated once per session and never grows. Decoded events go into
 * chunks of TFPROF_CUPTI_CHUNK_EVENTS, allocated on the completion thread, and chunks plus
 * kernel names are bounded by max_memory; beyond it records are dropped and counted. */
#include "activity.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "testpoint.h"

/* Stop waits this long after the forced flush for buffers still with CUPTI. CUPTI's flush is
 * synchronous, so buffers normally are back before the wait starts; the bound only matters
 * when CUPTI misbehaves, and a stop must never hang. */
#define BUFFER_WAIT_NS (2000ull * 1000000ull)
/* While waiting, the flush is repeated this often, for buffers handed out after it began. */
#define REFLUSH_NS (100ull * 1000000ull)
/* Bound on waiting for a completion callback that is decoding when stop shuts them out. */
#define DECODER_WAIT_NS (5000ull * 1000000ull)

/* ---- The buffer pool ------------------------------------------------------------------------ */

struct pool {
	uint8_t *base;
	size_t buf_size, count, nwords;
	_Atomic uint64_t *free_bits; /* bit set = buffer free */
	struct pool *retired_next;   /* in the list of pools kept for late buffers */
	/* Kept with the pool rather than the session: a callback that outlived its session's stop
	 * (a stuck decoder) returns its buffer to its own pool, not to the next session's count. */
	_Atomic uint64_t handed_out, returned;
};

/* Pools that still had buffers with CUPTI at stop. Never freed: a late completion may read
 * them. Only the session thread touches this list. */
static struct pool *retired;

static struct pool *pool_new(size_t buf_size, size_t count)
{
	struct pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->buf_size = buf_size;
	p->count = count;
	p->nwords = (count + 63) / 64;
	p->free_bits = calloc(p->nwords, sizeof *p->free_bits);
	void *mem = NULL;
	/* Page alignment exceeds CUPTI's 8-byte requirement; the pages are only touched when CUPTI
	 * first writes a buffer. */
	if (!p->free_bits || posix_memalign(&mem, 4096, buf_size * count)) {
		free(p->free_bits);
		free(p);
		return NULL;
	}
	p->base = mem;
	for (size_t i = 0; i < count; i++)
		atomic_fetch_or_explicit(&p->free_bits[i / 64], 1ull << (i % 64), memory_order_relaxed);
	return p;
}

static void pool_free(struct pool *p)
{
	if (!p)
		return;
	free(p->base);
	free(p->free_bits);
	free(p);
}

/* Takes a free buffer; returns its index or -1 when none is free. Lock-free: a CAS clears the
 * lowest set bit of the first word that has one. */
static long pool_take(struct pool *p)
{
	for (size_t w = 0; w < p->nwords; w++) {
		uint64_t bits = atomic_load_explicit(&p->free_bits[w], memory_order_relaxed);
		while (bits) {
			unsigned b = (unsigned)__builtin_ctzll(bits);
			if (atomic_compare_exchange_weak_explicit(&p->free_bits[w], &bits,
								  bits & ~(1ull << b),
								  memory_order_acquire,
								  memory_order_relaxed))
				return (long)(w * 64 + b);
		}
	}
	return -1;
}

static void pool_put(struct pool *p, size_t i)
{
	atomic_fetch_or_explicit(&p->free_bits[i / 64], 1ull << (i % 64), memory_order_release);
}

/* The index of a buffer of this pool, or -1 when buf is not one of its buffers. */
static long pool_index(const struct pool *p, const uint8_t *buf)
{
	if (!p || buf < p->base)
		return -1;
	size_t off = (size_t)(buf - p->base);
	if (off >= p->buf_size * p->count || off % p->buf_size)
		return -1;
	return (long)(off / p->buf_size);
}

/* ---- Session state -------------------------------------------------------------------------- */

struct name_table {
	char **names; /* names[0] = "" */
	size_t n, cap;
	uint32_t *slots; /* open addressing: name index + 1, 0 = empty */
	size_t nslots;
};

/* CUPTI shares one name string among all the records of a kernel, so within a buffer the
 * string's address finds the name's index without hashing it: a small direct-mapped cache,
 * one per buffer being decoded. It must not outlive the buffer: the records of one buffer are
 * all undelivered at once, so CUPTI cannot have freed a name one of them points at and reused
 * its address for another, but once a buffer is back CUPTI may free names. */
#define NAME_CACHE_BITS 8
#define NAME_CACHE (1u << NAME_CACHE_BITS)

struct name_cache {
	const char *ptr;
	uint32_t idx;
};

struct ctx_device {
	uint32_t context_id, device_id;
};

/* Everything a completion callback writes, one per session, guarded by its mu (decode_mu in
 * the header), except the events in the chunk each callback is filling (struct sink), which
 * only that callback touches until it gives the chunk back under mu. Callbacks read the
 * session's decoder pointer once, so a decoder abandoned to a stuck callback is never shared
 * with the next session. */
struct decoder {
	pthread_mutex_t mu;
	struct tfprof__dev_chunk *head, *tail; /* every chunk, including those being filled */
	/* A chunk of the list with room left that no callback is filling: the next buffer goes on
	 * filling it, so that a session of many small buffers does not leave a chunk mostly empty
	 * per buffer. */
	struct tfprof__dev_chunk *spare;
	size_t nevents;
	struct name_table names;
	struct tfprof__dev_device *devices;
	size_t ndevices, cap_devices;
	struct ctx_device *contexts;
	size_t ncontexts, cap_contexts;
	size_t bytes, max_bytes;
	uint64_t dropped_by_bound, zero_timestamps, bad_buffers, other_records;
	uint64_t syncs; /* SYNCHRONIZATION events, whose device stop resolves */
	struct decoder *abandoned_next; /* in the list of decoders left to stuck callbacks */
};

static struct {
	const struct tfprof__cupti_fns *f;
	struct pool *pool;
	_Atomic int accepting;
	_Atomic long inflight;
	_Atomic uint64_t refused, dropped_by_cupti, late, foreign;
	struct decoder *dec;
	CUpti_ActivityKind enabled[16];
	size_t nenabled;
	bool started;
	bool memory; /* the session collects allocations and releases */
} A;

static void decoder_free(struct decoder *d)
{
	if (!d)
		return;
	while (d->head) {
		struct tfprof__dev_chunk *c = d->head;
		d->head = c->next;
		free(c);
	}
	for (size_t i = 0; i < d->names.n; i++)
		free(d->names.names[i]);
	free(d->names.names);
	free(d->names.slots);
	free(d->devices);
	free(d->contexts);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

/* ---- Decoding (completion thread) ----------------------------------------------------------- */

/* What one completion callback decodes from its buffer. The records are decoded without a lock
 * into `cur`, a chunk no other callback fills at the same time, and the counters add up here;
 * decode_buffer hands them to the decoder at the end of the buffer. Decoding each record right
 * after the iterator found it, with no lock or store-draining atomic between records, lets the
 * loads of the next records overlap with the stores of the last events. */
struct sink {
	struct decoder *d;
	struct tfprof__dev_chunk *cur; /* in d's list; NULL until the first event */
	size_t nevents;
	uint64_t dropped_by_bound, zero_timestamps, other_records, syncs;
	bool full; /* the memory bound refused a chunk: it refuses every later one too */
	struct name_cache cache[NAME_CACHE];
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static bool names_grow(struct name_table *t)
{
	size_t ns = t->nslots ? t->nslots * 2 : 256;
	uint32_t *s = calloc(ns, sizeof *s);
	if (!s)
		return false;
	for (size_t i = 1; i < t->n; i++) {
		size_t j = hash_str(t->names[i]) & (ns - 1);
		while (s[j])
			j = (j + 1) & (ns - 1);
		s[j] = (uint32_t)i + 1;
	}
	free(t->slots);
	t->slots = s;
	t->nslots = ns;
	return true;
}

/* Interns a kernel name, copying it: CUPTI's string belongs to CUPTI. Returns false when the
 * memory bound or malloc says no. decode_mu held. */
static bool intern_slow(struct decoder *d, const char *s, uint32_t *out)
{
	struct name_table *t = &d->names;
	if (!*s) {
		*out = 0;
		return true;
	}
	if ((t->n + 1) * 2 > t->nslots && !names_grow(t))
		return false;
	size_t j = hash_str(s) & (t->nslots - 1);
	while (t->slots[j]) {
		if (strcmp(t->names[t->slots[j] - 1], s) == 0) {
			*out = t->slots[j] - 1;
			return true;
		}
		j = (j + 1) & (t->nslots - 1);
	}
	size_t len = strlen(s) + 1;
	if (d->bytes + len + sizeof(char *) > d->max_bytes || t->n >= UINT32_MAX - 1)
		return false;
	if (t->n == t->cap) {
		size_t nc = t->cap * 2;
		char **nn = realloc(t->names, nc * sizeof *nn);
		if (!nn)
			return false;
		t->names = nn;
		t->cap = nc;
	}
	char *copy = malloc(len);
	if (!copy)
		return false;
	memcpy(copy, s, len);
	t->names[t->n] = copy;
	t->slots[j] = (uint32_t)t->n + 1;
	*out = (uint32_t)t->n++;
	d->bytes += len + sizeof(char *);
	return true;
}

/* intern_slow behind the buffer's cache of name addresses, which needs no lock: decode_mu is
 * taken only for a name this buffer has not seen yet. */
static bool intern(struct sink *out, const char *s, uint32_t *idx)
{
	struct name_cache *cache = out->cache;
	if (!s) {
		*idx = 0;
		return true;
	}
	/* Open addressing with a short probe, so that two busy names never evict each other;
	 * when the probe finds no room the home slot is replaced. */
	size_t h = ((uintptr_t)s * 0x9e3779b97f4a7c15ull) >> (64 - NAME_CACHE_BITS), home = h;
	for (unsigned k = 0; k < 8; k++, h = (h + 1) & (NAME_CACHE - 1)) {
		if (cache[h].ptr == s) {
			*idx = cache[h].idx;
			return true;
		}
		if (!cache[h].ptr)
			break;
	}
	pthread_mutex_lock(&out->d->mu);
	bool ok = intern_slow(out->d, s, idx);
	pthread_mutex_unlock(&out->d->mu);
	if (!ok)
		return false;
	struct name_cache *c = cache[h].ptr ? &cache[home] : &cache[h];
	c->ptr = s;
	c->idx = *idx;
	return true;
}

/* Gives the sink a new chunk to fill, appended to the decoder's list (whose other chunks it
 * never touches), or counts a drop and returns false beyond the memory bound. Kept out of
 * line: it runs once per TFPROF_CUPTI_CHUNK_EVENTS events. */
static __attribute__((noinline)) bool add_chunk(struct sink *out)
{
	struct decoder *d = out->d;
	size_t bytes = tfprof__activity_chunk_bytes();
	struct tfprof__dev_chunk *c = NULL;
	if (!out->full) {
		pthread_mutex_lock(&d->mu);
		if (d->bytes + bytes <= d->max_bytes && (c = malloc(bytes))) {
			c->next = NULL;
			c->n = 0;
			c->cap = TFPROF_CUPTI_CHUNK_EVENTS;
			if (d->tail)
				d->tail->next = c;
			else
				d->head = c;
			d->tail = c;
			d->bytes += bytes;
		}
		pthread_mutex_unlock(&d->mu);
	}
	if (!c) {
		/* The bound only grows tighter during a session, so the rest of the buffer is
		 * dropped without asking again (a failed malloc is not retried either). */
		out->full = true;
		out->dropped_by_bound++;
		return false;
	}
	out->cur = c;
	return true;
}

/* The next event slot in the sink's chunk, or NULL (counted) beyond the memory bound. The slot
 * is not cleared: every caller stores a whole event into it (a compound literal, whose unnamed
 * fields are zero), so each byte of the event is written once instead of twice. Inline, so that
 * the common case is a compare and an increment in the decoding loop. */
static inline struct tfprof__dev_event *push_event(struct sink *out)
{
	struct tfprof__dev_chunk *c = out->cur;
	if (__builtin_expect(!c || c->n == c->cap, 0)) {
		if (!add_chunk(out))
			return NULL;
		c = out->cur;
	}
	out->nevents++;
	return &c->ev[c->n++];
}

/* Timed records without both timestamps (CUPTI writes 0 when it could not time the work, e.g.
 * for lack of device memory, or for work still running at a forced flush) are left out. */
static bool times_ok(struct sink *out, uint64_t start, uint64_t end)
{
	if (start == 0 || end == 0 || end < start) {
		out->zero_timestamps++;
		return false;
	}
	return true;
}

static void add_device(struct decoder *d, const CUpti_ActivityDevice5 *r)
{
	struct tfprof__dev_device *dev = NULL;
	for (size_t i = 0; i < d->ndevices; i++)
		if (d->devices[i].id == r->id)
			dev = &d->devices[i]; /* a later record describes the same GPU again */
	if (!dev) {
		if (d->ndevices == d->cap_devices) {
			size_t nc = d->cap_devices ? d->cap_devices * 2 : 8;
			struct tfprof__dev_device *n = realloc(d->devices, nc * sizeof *n);
			if (!n)
				return;
			d->devices = n;
			d->cap_devices = nc;
		}
		dev = &d->devices[d->ndevices++];
	}
	memset(dev, 0, sizeof *dev);
	dev->id = r->id;
	snprintf(dev->name, sizeof dev->name, "%s", r->name ? r->name : "");
	dev->cc_major = (int)r->computeCapabilityMajor;
	dev->cc_minor = (int)r->computeCapabilityMinor;
	dev->sm_count = r->numMultiprocessors;
	dev->memory_size = r->globalMemorySize;
	/* CUPTI reports the bandwidth in kB/s (10^3 bytes per second). */
	dev->memory_bandwidth = r->globalMemoryBandwidth * 1000u;
	dev->clock_khz = r->coreClockRate;
	dev->warp_size = r->numThreadsPerWarp;
	dev->max_warps_per_sm = r->maxWarpsPerMultiprocessor;
	dev->max_blocks_per_sm = r->maxBlocksPerMultiprocessor;
	dev->regs_per_sm = r->maxRegistersPerMultiprocessor;
	dev->smem_per_sm = r->maxSharedMemoryPerMultiprocessor;
}

static void add_context(struct decoder *d, uint32_t context_id, uint32_t device_id)
{
	for (size_t i = 0; i < d->ncontexts; i++)
		if (d->contexts[i].context_id == context_id) {
			d->contexts[i].device_id = device_id;
			return;
		}
	if (d->ncontexts == d->cap_contexts) {
		size_t nc = d->cap_contexts ? d->cap_contexts * 2 : 8;
		struct ctx_device *n = realloc(d->contexts, nc * sizeof *n);
		if (!n)
			return;
		d->contexts = n;
		d->cap_contexts = nc;
	}
	d->contexts[d->ncontexts++] = (struct ctx_device){ context_id, device_id };
}

/* The fields that kernel, memcpy and memset records name alike, as designated initializers of
 * an event of kind k made from record r. */
#define WORK_FIELDS(k, r)                                                                         \
	.kind = (k), .start = (r)->start, .end = (r)->end, .correlation_id = (r)->correlationId, \
	.device_id = (r)->deviceId, .context_id = (r)->contextId, .stream_id = (r)->streamId

/* MEMCPY and MEMCPY2 records are different structs with the same field names: one macro makes
 * the event of either. */
#define MEMCPY_EVENT(m, src_dev, dst_dev)                                                         \
	((struct tfprof__dev_event){                                                              \
		WORK_FIELDS(TFPROF_DEV_MEMCPY, m),                                                \
		.u.memcpy = { .bytes = (m)->bytes,                                                \
			      .copy_kind = (m)->copyKind,                                         \
			      .src_kind = (m)->srcKind,                                           \
			      .dst_kind = (m)->dstKind,                                           \
			      .async = ((m)->flags & CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC) != 0,      \
			      .src_device = (src_dev),                                            \
			      .dst_device = (dst_dev) },                                          \
	})

/* Each case stores a whole event with one compound literal: the fields it names and zero in
 * every other byte, written once into the chunk (push_event does not clear the slot). */
static void decode_record(struct sink *out, const CUpti_Activity *rec)
{
	struct tfprof__dev_event *e;
	switch (rec->kind) {
	case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
	case CUPTI_ACTIVITY_KIND_KERNEL: {
		/* KERNEL is never enabled by tfprof (it serializes kernels); if another party enabled
		 * it, its records have the same layout and are just as useful. */
		const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)rec;
		if (!times_ok(out, k->start, k->end))
			return;
		uint32_t name;
		if (!intern(out, k->name, &name)) {
			out->dropped_by_bound++;
			return;
		}
		if (!(e = push_event(out)))
			return;
		*e = (struct tfprof__dev_event){
			WORK_FIELDS(TFPROF_DEV_KERNEL, k),
			.name = name,
			.shared_config = k->sharedMemoryExecuted,
			.u.kernel = { .grid = { (uint32_t)k->gridX, (uint32_t)k->gridY, (uint32_t)k->gridZ },
				      .block = { (uint32_t)k->blockX, (uint32_t)k->blockY, (uint32_t)k->blockZ },
				      .registers_per_thread = k->registersPerThread,
				      .static_shared = k->staticSharedMemory,
				      .dynamic_shared = k->dynamicSharedMemory,
				      .graph_id = k->graphId },
		};
		return;
	}
	case CUPTI_ACTIVITY_KIND_MEMCPY: {
		const CUpti_ActivityMemcpy6 *m = (const CUpti_ActivityMemcpy6 *)rec;
		if (!times_ok(out, m->start, m->end) || !(e = push_event(out)))
			return;
		/* A MEMCPY record has one device: the one that ran the copy (for a peer copy without
		 * MEMCPY2 it is the source). */
		*e = MEMCPY_EVENT(m, m->deviceId, m->deviceId);
		return;
	}
	case CUPTI_ACTIVITY_KIND_MEMCPY2: {
		const CUpti_ActivityMemcpyPtoP4 *m = (const CUpti_ActivityMemcpyPtoP4 *)rec;
		if (!times_ok(out, m->start, m->end) || !(e = push_event(out)))
			return;
		*e = MEMCPY_EVENT(m, m->srcDeviceId, m->dstDeviceId);
		return;
	}
	case CUPTI_ACTIVITY_KIND_MEMSET: {
		const CUpti_ActivityMemset4 *m = (const CUpti_ActivityMemset4 *)rec;
		if (!times_ok(out, m->start, m->end) || !(e = push_event(out)))
			return;
		*e = (struct tfprof__dev_event){
			WORK_FIELDS(TFPROF_DEV_MEMSET, m),
			.u.memset = { .bytes = m->bytes,
				      .value = m->value,
				      .memory_kind = m->memoryKind,
				      .async = (m->flags & CUPTI_ACTIVITY_FLAG_MEMSET_ASYNC) != 0 },
		};
		return;
	}
	case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION: {
		const CUpti_ActivitySynchronization2 *s = (const CUpti_ActivitySynchronization2 *)rec;
		if (!times_ok(out, s->start, s->end) || !(e = push_event(out)))
			return;
		out->syncs++;
		*e = (struct tfprof__dev_event){
			.kind = TFPROF_DEV_SYNC,
			.start = s->start,
			.end = s->end,
			.correlation_id = s->correlationId,
			/* The record names a context, not a device; stop resolves it once every
			 * CONTEXT record is in, as records arrive in no particular order. */
			.device_id = TFPROF_DEV_NONE,
			.context_id = s->contextId,
			.stream_id = s->streamId, /* CUPTI_SYNCHRONIZATION_INVALID_VALUE for a context */
			.u.sync.type = (uint32_t)s->type,
		};
		return;
	}
	case CUPTI_ACTIVITY_KIND_OVERHEAD: {
		const CUpti_ActivityOverhead3 *o = (const CUpti_ActivityOverhead3 *)rec;
		if (!times_ok(out, o->start, o->end) || !(e = push_event(out)))
			return;
		uint32_t device = TFPROF_DEV_NONE, context = 0, stream = TFPROF_DEV_NONE;
		switch (o->objectKind) {
		/* A stream's id also names its context and device, a context's its device. */
		case CUPTI_ACTIVITY_OBJECT_STREAM:
			stream = o->objectId.dcs.streamId;
			__attribute__((fallthrough));
		case CUPTI_ACTIVITY_OBJECT_CONTEXT:
			context = o->objectId.dcs.contextId;
			__attribute__((fallthrough));
		case CUPTI_ACTIVITY_OBJECT_DEVICE:
			device = o->objectId.dcs.deviceId;
			break;
		default:
			break; /* a process or thread: no device */
		}
		*e = (struct tfprof__dev_event){
			.kind = TFPROF_DEV_OVERHEAD,
			.start = o->start,
			.end = o->end,
			.correlation_id = o->correlationId,
			.device_id = device,
			.context_id = context,
			.stream_id = stream,
			.u.overhead.overhead_kind = (uint32_t)o->overheadKind,
		};
		return;
	}
	case CUPTI_ACTIVITY_KIND_MEMORY2: {
		const CUpti_ActivityMemory4 *m = (const CUpti_ActivityMemory4 *)rec;
		if (m->memoryOperationType != CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION &&
		    m->memoryOperationType != CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE) {
			out->other_records++;
			return;
		}
		if (!times_ok(out, m->timestamp, m->timestamp) || !(e = push_event(out)))
			return;
		*e = (struct tfprof__dev_event){
			.kind = TFPROF_DEV_MEMORY,
			.start = m->timestamp,
			.end = m->timestamp,
			.correlation_id = m->correlationId,
			.device_id = m->deviceId,
			.context_id = m->contextId,
			.stream_id = m->streamId, /* CUPTI_INVALID_STREAM_ID unless stream-ordered */
			.u.memory = { .address = m->address,
				      .bytes = m->bytes,
				      .op = m->memoryOperationType ==
							    CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION
						    ? TFPROF_MEM_ALLOC
						    : TFPROF_MEM_RELEASE,
				      .memory_kind = (uint32_t)m->memoryKind,
				      .stream_ordered = m->isAsync ? 1u : 0u },
		};
		return;
	}
	case CUPTI_ACTIVITY_KIND_MEMORY_POOL: {
		const CUpti_ActivityMemoryPool3 *m = (const CUpti_ActivityMemoryPool3 *)rec;
		if (!times_ok(out, m->timestamp, m->timestamp) || !(e = push_event(out)))
			return;
		*e = (struct tfprof__dev_event){
			.kind = TFPROF_DEV_MEMPOOL,
			.start = m->timestamp,
			.end = m->timestamp,
			.correlation_id = m->correlationId,
			.device_id = m->deviceId,
			.stream_id = TFPROF_DEV_NONE,
			.u.mempool = { .size = m->size,
				       .utilized = m->utilizedSize,
				       .op = (uint32_t)m->memoryPoolOperationType,
				       .managed = m->isManagedPool ? 1u : 0u },
		};
		return;
	}
	case CUPTI_ACTIVITY_KIND_DEVICE:
		pthread_mutex_lock(&out->d->mu);
		add_device(out->d, (const CUpti_ActivityDevice5 *)rec);
		pthread_mutex_unlock(&out->d->mu);
		return;
	case CUPTI_ACTIVITY_KIND_CONTEXT: {
		const CUpti_ActivityContext3 *c = (const CUpti_ActivityContext3 *)rec;
		pthread_mutex_lock(&out->d->mu);
		add_context(out->d, c->contextId, c->deviceId);
		pthread_mutex_unlock(&out->d->mu);
		return;
	}
	default:
		out->other_records++;
		return;
	}
}

/* Walks a buffer and decodes each record as cuptiActivityGetNextRecord finds it, with no lock
 * held while CUPTI is called or a record decoded. f is the session's table (A.f) for the
 * completion callback, the caller's for tfprof__activity_decode_buffers. */
static void decode_buffer(const struct tfprof__cupti_fns *f, struct decoder *d, uint8_t *buf, size_t valid)
{
	struct sink out = { .d = d };
	pthread_mutex_lock(&d->mu);
	out.cur = d->spare; /* NULL when there is none or another callback is filling it */
	d->spare = NULL;
	pthread_mutex_unlock(&d->mu);
	/* Test point: a callback owns the chunk it fills, and has not decoded a record yet: another
	 * callback may now decode a whole buffer, adding chunks behind it, and finish first. */
	TFPROF_TESTPOINT("activity_buffer_opened");

	CUpti_Activity *rec = NULL;
	CUptiResult rc;
	while ((rc = f->ActivityGetNextRecord(buf, valid, &rec)) == CUPTI_SUCCESS)
		decode_record(&out, rec);

	pthread_mutex_lock(&d->mu);
	/* MAX_LIMIT_REACHED is the normal end; anything else (INVALID_KIND: a record cut short or
	 * unknown to this libcupti) ended the buffer early. */
	if (rc != CUPTI_ERROR_MAX_LIMIT_REACHED)
		d->bad_buffers++;
	d->nevents += out.nevents;
	d->dropped_by_bound += out.dropped_by_bound;
	d->zero_timestamps += out.zero_timestamps;
	d->other_records += out.other_records;
	d->syncs += out.syncs;
	/* The chunk with room left is the next buffer's to fill, unless another callback left one
	 * meanwhile; then this one stays partly empty (only when buffers complete concurrently). */
	if (out.cur && out.cur->n < out.cur->cap && !d->spare)
		d->spare = out.cur;
	pthread_mutex_unlock(&d->mu);
}

/* ---- CUPTI's callbacks ---------------------------------------------------------------------- */

static void CUPTIAPI on_request(uint8_t **buffer, size_t *size, size_t *max_records)
{
	*buffer = NULL;
	*size = 0;
	*max_records = 0; /* fill the buffer */
	atomic_fetch_add(&A.inflight, 1);
	/* Test point: a request in flight that has not yet loaded accepting (Dekker's window):
	 * either it sees the pool closed or the shut-out waits for it. */
	TFPROF_TESTPOINT("activity_request_entered");
	if (atomic_load(&A.accepting)) {
		struct pool *p = A.pool;
		/* Test point: a request that saw the pool open is about to take a buffer: the shut-out
		 * must wait for it and count the buffer as handed out, so the pool is kept for it. */
		TFPROF_TESTPOINT("activity_request_taking");
		long i = pool_take(p);
		if (i >= 0) {
			*buffer = p->base + (size_t)i * p->buf_size;
			*size = p->buf_size;
			atomic_fetch_add_explicit(&p->handed_out, 1, memory_order_relaxed);
		} else {
			atomic_fetch_add_explicit(&A.refused, 1, memory_order_relaxed);
		}
	}
	atomic_fetch_sub_explicit(&A.inflight, 1, memory_order_release);
}

static void CUPTIAPI on_complete(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size,
				 size_t valid)
{
	(void)ctx;
	(void)stream;
	atomic_fetch_add(&A.inflight, 1);
	/* Test point: a completion in flight that has not yet loaded accepting (Dekker's window). */
	TFPROF_TESTPOINT("activity_complete_entered");
	if (!atomic_load(&A.accepting)) {
		/* Stop stopped waiting for this buffer; its pool was retired, never freed. */
		atomic_fetch_add_explicit(&A.late, 1, memory_order_relaxed);
		goto out;
	}
	struct pool *p = A.pool;
	struct decoder *d = A.dec;
	long i = pool_index(p, buf);
	if (i < 0) {
		/* A buffer from an earlier session's retired pool: its records belong to no one. */
		atomic_fetch_add_explicit(&A.foreign, 1, memory_order_relaxed);
		goto out;
	}
	if (valid > size)
		valid = size;
	/* Test point: a completion that passed the check is about to decode: stop's shut-out must
	 * wait for it, or abandon the decoder and pool to it when it stays past the bound. */
	TFPROF_TESTPOINT("activity_complete_decoding");
	if (valid)
		decode_buffer(A.f, d, buf, valid);
	/* The count resets on every call, so it is read here and added up; stop reads it once more
	 * after the last buffer. */
	size_t dropped = 0;
	if (A.f->ActivityGetNumDroppedRecords(NULL, 0, &dropped) == CUPTI_SUCCESS && dropped)
		atomic_fetch_add_explicit(&A.dropped_by_cupti, dropped, memory_order_relaxed);
	pool_put(p, (size_t)i);
	atomic_fetch_add_explicit(&p->returned, 1, memory_order_release);
out:
	atomic_fetch_sub_explicit(&A.inflight, 1, memory_order_release);
}

/* ---- Session control (session thread) ------------------------------------------------------- */

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
	nanosleep(&ts, NULL);
}

/* Closes the pool to the callbacks and waits until none is inside. Returns false when one did
 * not leave within the bound (it is then still using the decoder). */
static bool shut_out_callbacks(void)
{
	atomic_store(&A.accepting, 0);
	uint64_t deadline = tfprof__mono_ns() + DECODER_WAIT_NS;
	while (atomic_load(&A.inflight) != 0) {
		if (tfprof__mono_ns() > deadline)
			return false;
		/* Test point: the pool is closed and a callback is still in flight, so the session
		 * thread waits for it. */
		TFPROF_TESTPOINT("activity_shut_out_wait");
		sleep_ns(100000);
	}
	return true;
}

static struct decoder *decoder_new(size_t max_bytes)
{
	struct decoder *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	pthread_mutex_init(&d->mu, NULL);
	d->max_bytes = max_bytes;
	d->names.cap = 16;
	d->names.names = malloc(d->names.cap * sizeof(char *));
	if (d->names.names && (d->names.names[0] = strdup("")))
		d->names.n = 1;
	if (d->names.n != 1) {
		decoder_free(d);
		return NULL;
	}
	return d;
}

int tfprof__activity_start(const struct tfprof__cupti_fns *f, const struct tfprof__activity_config *cfg,
			   char *err, size_t errlen)
{
	A.f = f;
	atomic_store(&A.refused, 0);
	atomic_store(&A.dropped_by_cupti, 0);
	atomic_store(&A.late, 0);
	atomic_store(&A.foreign, 0);
	A.nenabled = 0;
	A.memory = cfg->memory;
	A.dec = decoder_new(cfg->max_memory);
	A.pool = A.dec ? pool_new(cfg->buffer_size, cfg->buffer_count) : NULL;
	if (!A.pool) {
		decoder_free(A.dec);
		A.dec = NULL;
		snprintf(err, errlen,
			 "GPU tracing is off: the CUPTI buffer pool (%zu buffers of %zu KiB) could not be "
			 "allocated; lower TFPROF_CUPTI_BUFFERS or TFPROF_CUPTI_BUFFER_KB",
			 cfg->buffer_count, cfg->buffer_size >> 10);
		return -ENOMEM;
	}

	/* Drops counted between sessions (requests refused while the pool was closed) are not
	 * this session's: read and discard them. */
	size_t stale = 0;
	f->ActivityGetNumDroppedRecords(NULL, 0, &stale);

	/* inflight is not reset: it is already 0 unless a callback of an earlier session is still
	 * running (a stuck decoder), whose decrement must then balance its own increment. */
	atomic_store(&A.accepting, 1);
	CUptiResult rc = f->ActivityRegisterCallbacks(on_request, on_complete);
	if (rc != CUPTI_SUCCESS) {
		/* Callbacks that a half-done registration might still run must not find freed
		 * memory: shut them out before freeing (and leak if one is stuck). */
		if (shut_out_callbacks()) {
			decoder_free(A.dec);
			pool_free(A.pool);
		}
		A.dec = NULL;
		A.pool = NULL;
		snprintf(err, errlen,
			 "GPU tracing is off: cuptiActivityRegisterCallbacks failed with %s; check that "
			 "%s is the CUDA 13 libcupti and that no other CUPTI tool is attached",
			 tfprof__cupti_result_name(f, rc), f->path);
		return -EIO;
	}
	A.started = true;
	return 0;
}

/* Results that mean CUPTI cannot trace at all in this process, whatever the kind. */
static bool fatal_result(CUptiResult rc)
{
	return rc == CUPTI_ERROR_UNKNOWN || rc == CUPTI_ERROR_INSUFFICIENT_PRIVILEGES ||
	       rc == CUPTI_ERROR_VIRTUALIZED_DEVICE_INSUFFICIENT_PRIVILEGES ||
	       rc == CUPTI_ERROR_NOT_INITIALIZED || rc == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
}

CUptiResult tfprof__activity_enable(const char **what, char *warn, size_t warnlen)
{
	static const struct kind {
		CUpti_ActivityKind kind;
		const char *name;
		bool needed, dump, memory;
	} kinds[] = {
		{ CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, "CONCURRENT_KERNEL", true, false },
		{ CUPTI_ACTIVITY_KIND_MEMCPY, "MEMCPY", true, false },
		{ CUPTI_ACTIVITY_KIND_MEMSET, "MEMSET", true, false },
		{ CUPTI_ACTIVITY_KIND_MEMCPY2, "MEMCPY2", false, false },
		{ CUPTI_ACTIVITY_KIND_SYNCHRONIZATION, "SYNCHRONIZATION", false, false },
		{ CUPTI_ACTIVITY_KIND_OVERHEAD, "OVERHEAD", false, false },
		{ CUPTI_ACTIVITY_KIND_DEVICE, "DEVICE", false, true },
		{ CUPTI_ACTIVITY_KIND_CONTEXT, "CONTEXT", false, true },
		/* Allocations and releases with their correlation ids (CUpti_ActivityMemory4), and
		 * the stream-ordered pools cudaMallocAsync draws from (CUpti_ActivityMemoryPool3). */
		{ CUPTI_ACTIVITY_KIND_MEMORY2, "MEMORY2", false, false, true },
		{ CUPTI_ACTIVITY_KIND_MEMORY_POOL, "MEMORY_POOL", false, false, true },
	};
	const struct tfprof__cupti_fns *f = A.f;
	if (warnlen)
		warn[0] = '\0';
	*what = NULL;
	A.nenabled = 0;
	size_t wused = 0;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		const struct kind *k = &kinds[i];
		if (k->memory && !A.memory)
			continue;
		bool dump = k->dump && f->ActivityEnableAndDump;
		CUptiResult rc = dump ? f->ActivityEnableAndDump(k->kind) : f->ActivityEnable(k->kind);
		if (rc == CUPTI_SUCCESS) {
			A.enabled[A.nenabled++] = k->kind;
			continue;
		}
		if (k->needed || fatal_result(rc)) {
			*what = dump ? "cuptiActivityEnableAndDump" : "cuptiActivityEnable";
			tfprof__activity_disable();
			return rc;
		}
		if (wused + 1 < warnlen) {
			int w = snprintf(warn + wused, warnlen - wused, "%s%s (%s)",
					 wused ? ", " : "CUPTI could not enable activity kinds ", k->name,
					 tfprof__cupti_result_name(f, rc));
			if (w > 0)
				wused += (size_t)w;
		}
	}
	if (wused && wused + 1 < warnlen)
		snprintf(warn + wused, warnlen - wused,
			 "; the profile lacks those records, the rest is complete");
	return CUPTI_SUCCESS;
}

void tfprof__activity_disable(void)
{
	for (size_t i = A.nenabled; i-- > 0;)
		A.f->ActivityDisable(A.enabled[i]);
	A.nenabled = 0;
}

/* Decoders left to callbacks that outlived stop's bound. Never freed, like retired pools, and
 * kept reachable so that the leak is visibly on purpose. Only the session thread touches it. */
static struct decoder *abandoned;

/* Leaves the session's decoder and pool to a completion callback that is still inside: they
 * are never freed under it. */
static void abandon(void)
{
	if (A.pool) {
		A.pool->retired_next = retired;
		retired = A.pool;
	}
	if (A.dec) {
		A.dec->abandoned_next = abandoned;
		abandoned = A.dec;
	}
	A.pool = NULL;
	A.dec = NULL;
}

/* Gets every buffer back from CUPTI, as far as a bounded wait allows, then shuts the callbacks
 * out and settles the counters. Returns false when a completion callback did not leave in time;
 * the decoder and the pool are then abandoned to it (leaked, never freed under it). */
static bool drain(struct tfprof__activity_summary *sum)
{
	const struct tfprof__cupti_fns *f = A.f;
	/* Forced: buffers with records still incomplete come back too. Called with no tfprof lock
	 * but the session's held: the completion callbacks it may run take neither. */
	sum->flush_rc = f->ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
	uint64_t t0 = tfprof__mono_ns(), next_flush = t0 + REFLUSH_NS;
	struct pool *p = A.pool;
	while (atomic_load(&p->returned) < atomic_load(&p->handed_out)) {
		uint64_t now = tfprof__mono_ns();
		if (now - t0 > BUFFER_WAIT_NS)
			break;
		if (now >= next_flush) {
			f->ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
			next_flush = now + REFLUSH_NS;
		}
		sleep_ns(1000000);
	}
	sum->wait_ns = tfprof__mono_ns() - t0;

	bool quiet = shut_out_callbacks();
	size_t dropped = 0;
	if (f->ActivityGetNumDroppedRecords(NULL, 0, &dropped) == CUPTI_SUCCESS)
		atomic_fetch_add(&A.dropped_by_cupti, dropped);
	sum->buffers_handed_out = atomic_load(&p->handed_out);
	sum->buffers_unreturned = sum->buffers_handed_out - atomic_load(&p->returned);
	sum->buffers_late = atomic_load(&A.late);
	sum->buffers_foreign = atomic_load(&A.foreign);
	A.started = false;
	if (!quiet) {
		sum->decoder_stuck = true;
		abandon();
	}
	return quiet;
}

/* Frees the pool, or keeps it forever when CUPTI still holds some of its buffers. */
static void release_pool(const struct tfprof__activity_summary *sum)
{
	if (!A.pool)
		return;
	if (sum->buffers_unreturned == 0) {
		pool_free(A.pool);
	} else {
		A.pool->retired_next = retired;
		retired = A.pool;
	}
	A.pool = NULL;
}

void tfprof__activity_abort(void)
{
	if (!A.started)
		return;
	struct tfprof__activity_summary sum = { 0 };
	/* Nothing was handed out unless a kind was enabled for a while (DEVICE records dumped by
	 * the enable, for instance); only then is a flush needed to get buffers back. */
	if (atomic_load(&A.pool->handed_out) == 0) {
		A.started = false;
		if (!shut_out_callbacks()) {
			abandon();
			return;
		}
	} else if (!drain(&sum)) {
		return;
	}
	decoder_free(A.dec);
	A.dec = NULL;
	release_pool(&sum);
}

/* What a fork child inherits from the parent's session and must never free (a parent thread may
 * have been half way through changing it, and the child's CUPTI may still hold a buffer): kept
 * here, reachable, so that it is visibly retained on purpose rather than lost. */
static struct {
	struct pool *volatile pool, *volatile retired; /* volatile: stores nothing reads are kept */
	struct decoder *volatile dec;
} inherited;

void tfprof__activity_fork_child(void)
{
	/* Closed first: a callback the child's CUPTI still makes finds accepting == 0 and leaves
	 * (a request gets no buffer, a completion counts as late) without touching the pool. */
	atomic_store(&A.accepting, 0);
	/* Callbacks that were running on the parent's other threads never leave in the child. */
	atomic_store(&A.inflight, 0);
	inherited.pool = A.pool;
	inherited.dec = A.dec;
	inherited.retired = retired;
	A.pool = NULL;
	A.dec = NULL;
	A.nenabled = 0;
	A.started = false;
	retired = NULL;
}

/* Moves what a decoder holds into out and its counters into sum, leaving the decoder empty for
 * decoder_free. Called once no completion callback can reach the decoder any more. */
static void hand_over(struct decoder *d, struct tfprof__gpu_result *out, struct tfprof__activity_summary *sum,
		      bool (*context_device)(uint32_t context_id, uint32_t *device_id))
{
	pthread_mutex_lock(&d->mu); /* uncontended now; taken for the memory ordering */
	sum->buffers_bad = d->bad_buffers;
	sum->records_other = d->other_records;
	out->dropped_by_bound = d->dropped_by_bound;
	out->zero_timestamps = d->zero_timestamps;
	/* The walk reads every event again; without synchronizations there is nothing to resolve. */
	for (struct tfprof__dev_chunk *c = d->syncs ? d->head : NULL; c; c = c->next)
		for (size_t i = 0; i < c->n; i++) {
			struct tfprof__dev_event *e = &c->ev[i];
			if (e->kind != TFPROF_DEV_SYNC || e->device_id != TFPROF_DEV_NONE)
				continue;
			for (size_t k = 0; k < d->ncontexts; k++)
				if (d->contexts[k].context_id == e->context_id)
					e->device_id = d->contexts[k].device_id;
			uint32_t dev;
			if (e->device_id == TFPROF_DEV_NONE && context_device &&
			    context_device(e->context_id, &dev))
				e->device_id = dev;
		}
	out->events = d->head;
	out->nevents = d->nevents;
	out->names = d->names.names;
	out->nnames = d->names.n;
	out->devices = d->devices;
	out->ndevices = d->ndevices;
	/* What moved to out must not be freed with the decoder. */
	d->head = d->tail = d->spare = NULL;
	d->names.names = NULL;
	d->names.n = 0;
	d->devices = NULL;
	pthread_mutex_unlock(&d->mu);
}

void tfprof__activity_finish(struct tfprof__gpu_result *out, struct tfprof__activity_summary *sum,
			     bool (*context_device)(uint32_t context_id, uint32_t *device_id))
{
	memset(sum, 0, sizeof *sum);
	if (!A.started)
		return;
	bool quiet = drain(sum);
	out->dropped_by_cupti = atomic_load(&A.dropped_by_cupti);
	out->dropped_no_buffer = atomic_load(&A.refused);
	if (!quiet)
		return; /* no device events this session: a callback still holds the decoder */

	struct decoder *d = A.dec;
	A.dec = NULL;
	hand_over(d, out, sum, context_device);
	decoder_free(d);

	release_pool(sum);
}

int tfprof__activity_decode_buffers(const struct tfprof__cupti_fns *f, uint8_t *const *bufs,
				    const size_t *valid, size_t nbufs, size_t max_memory,
				    struct tfprof__gpu_result *out, struct tfprof__activity_summary *sum)
{
	memset(out, 0, sizeof *out);
	memset(sum, 0, sizeof *sum);
	struct decoder *d = decoder_new(max_memory);
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < nbufs; i++)
		if (valid[i])
			decode_buffer(f, d, bufs[i], valid[i]);
	hand_over(d, out, sum, NULL);
	decoder_free(d);
	return 0;
}
