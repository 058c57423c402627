/* SPDX-License-Identifier: Apache-2.0 */
/* The host tracer's hot path: scope begin/end and set_metadata append records to per-thread
 * chunks with no lock and no allocation per event, within a session-wide memory bound.
 *
 * Synchronization (the protocol the stopper and the recording threads follow):
 * - Each thread owns a thread state (tls_ts) and the chunks hanging from it. Only the owning
 *   thread writes records, its cursor and its counters while a session records.
 * - Every record operation runs between enter() and leave(): enter() makes the thread's op_seq
 *   odd (relaxed store), then re-reads the session state; leave() makes it even again (release
 *   store), so op_seq counts operations and is odd while one runs. The recording side has no
 *   hardware fence: the stopper supplies it with membarrier(PRIVATE_EXPEDITED), which runs a full
 *   barrier on every running thread of the process (the asymmetric-fence scheme of liburcu's
 *   membarrier flavour). After the stopper clears the ON bit and calls membarrier, any thread
 *   either sees the bit clear or has its odd op_seq visible to the stopper, which then waits
 *   (acquire loads) until op_seq moves past the value it saw: that operation ended, and any later
 *   one sees the bit clear. It never waits for an operation that began after the barrier, so a
 *   thread that keeps entering operations cannot hold it up, and it waits for all the threads it
 *   saw inside one at once, pausing with short sleeps. What remains is inherent to waiting: each
 *   thread preempted inside an operation must be scheduled once more, so the quiesce takes up to
 *   one scheduler round of the runnable threads (40-900 ms measured with 64 busy threads on 2
 *   vCPUs, test_stop_under_load). From then on no thread touches its chunks, and the stopper may
 *   take them. Where membarrier is missing, enter() issues a seq_cst fence instead (need_fence).
 * - A thread joins a session lazily (attach) under list_mu, which also guards the thread list,
 *   thread names and the exit path; the stopper holds list_mu while it quiesces and harvests.
 * - A thread that exits during a session hands back the unused end of its last chunk and leaves
 *   a compact record of its events and counts (struct dead_thread, charged to the memory bound
 *   with its first chunk) on the dead list, which the harvest takes: events of threads that exit
 *   before stop are kept, and thousands of short-lived threads cost what they recorded. Chunks
 *   start small (MIN_CHUNK_BYTES) and double up to CHUNK_BYTES, so a thread that records one
 *   scope does not hold 128 KiB of the bound. A thread that recorded nothing leaves only its
 *   counts, folded into dead_counts, so every scope begun is recorded or counted (dropped for
 *   the bound, or too deep) whatever its thread did.
 * - A scope handle carries the tag of the (thread, session) attach that made it; the harvest
 *   resets the tag, so a stale handle or one ended on another thread never matches and never
 *   reaches memory that was handed back. */

#include "tracer.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "nvtx.h"
#include "testpoint.h"

#define MAX_DEPTH 256
#define MAX_ARGS 65535u
#define CHUNK_BYTES (128u * 1024u)
#define MIN_CHUNK_BYTES 4096u
#define PAGE_BYTES 4096u
/* Standard chunks kept between sessions for reuse, so that later sessions do not pay first-touch
 * page faults (about 2 us each on a VM, 40 ns per scope). */
#define SPARE_BYTES ((size_t)32 << 20)

uint32_t tfprof__state;

struct open_scope {
	uint32_t serial;
	struct tfprof__rec_scope *rec;
};

/* The NVTX ranges this thread pushed for scopes, kept apart from the recording state: a range
 * must be popped when its scope ends even if the session stopped in between (the harvest
 * resets the recording state), or every later range on the thread would nest inside it. */
struct nvtx_open {
	uint32_t tag, serial;
};

struct thread_state {
	struct thread_state *next;
	uint32_t gen;   /* session this state is attached to */
	uint32_t tag;   /* unique per attach; 0 = not attached */
	uint32_t op_seq; /* odd while a record operation runs (see the header) */
	uint32_t chunk_bytes; /* size of this thread's next chunk: doubles up to CHUNK_BYTES */
	unsigned char *pos, *end;
	struct tfprof__chunk *head, *cur;
	uint32_t serial; /* serial of the last recorded scope */
	uint32_t depth;
	/* Outlives sessions: reset_session_fields() leaves it alone. Next to the fields above, on
	 * the cache line every end reads anyway. */
	uint32_t nvtx_depth;
	uint64_t dropped, too_deep, meta_dropped, bad_ends, bad_metadata, misnested, truncated_args;
	int64_t tid;
	bool name_set;
	char name[256];
	struct open_scope open[MAX_DEPTH];
	/* Outlives sessions, as nvtx_depth. */
	struct nvtx_open nvtx_stack[MAX_DEPTH];
};

/* The only thread-local variable: 8 bytes of initial-exec TLS keep the hot path's access to one
 * instruction while leaving the library loadable with dlopen (glibc's static TLS reserve for
 * dlopen'ed libraries is small; ctypes, CUDA and NVTX injection all load with dlopen). */
static __thread struct thread_state *tls_ts __attribute__((tls_model("initial-exec")));

static pthread_mutex_t list_mu = PTHREAD_MUTEX_INITIALIZER;
static struct thread_state *threads;
static pthread_key_t exit_key;
static uint32_t session_gen;
static uint32_t tag_counter;
static bool harvest_pending;
static size_t max_memory;
static size_t reserved;
static bool nvtx_on;
static bool need_fence;
static int membarrier_cmd;
static uint64_t orphan_bad_ends;
static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tfprof__chunk *spare; /* recycled CHUNK_BYTES chunks */
static size_t spare_bytes;

/* What a thread that exited during the session left for the harvest (list_mu guards the list). */
struct dead_thread {
	struct dead_thread *next;
	struct tfprof__thread_harvest h;
};
static struct dead_thread *dead;
/* Counts of exited threads that left no record (nothing recorded, or no room for one), folded
 * together; list_mu. */
static struct tfprof__thread_harvest dead_counts;

static void thread_exit(void *p);

/* Set once (activation registers before it sets TFPROF__STATE_HOOKS), read by the slow paths. */
static const struct tfprof__scope_hooks *scope_hooks;

void tfprof__tracer_set_scope_hooks(const struct tfprof__scope_hooks *hooks)
{
	__atomic_store_n(&scope_hooks, hooks, __ATOMIC_RELEASE);
}

static inline const struct tfprof__scope_hooks *hooks(void)
{
	return __atomic_load_n(&scope_hooks, __ATOMIC_ACQUIRE);
}

/* Priority 101 (the first one applications may use): activate.c's constructor may start a
 * session when the library loads, and recording needs exit_key and the membarrier registration
 * made here first. */
__attribute__((constructor(101))) static void tracer_init(void)
{
	pthread_key_create(&exit_key, thread_exit);
	tfprof__clock_init();
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		membarrier_cmd = MEMBARRIER_CMD_PRIVATE_EXPEDITED;
	else if (cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL))
		membarrier_cmd = MEMBARRIER_CMD_GLOBAL;
	else
		need_fence = true;
}

/* Moves to a new session generation, never 0 (the "not attached" of reset_session_fields).
 * Callers hold list_mu. */
static void next_generation(void)
{
	uint32_t g = __atomic_load_n(&session_gen, __ATOMIC_RELAXED) + 1;
	__atomic_store_n(&session_gen, g ? g : 1, __ATOMIC_RELAXED);
}

static inline bool recording(void)
{
	return __atomic_load_n(&tfprof__state, __ATOMIC_RELAXED) & TFPROF_STATE_ON;
}

/* op_seq += 1 by its owner, seen by the stopper as one store. On x86 one unlocked add to memory
 * does it (an aligned 4-byte store is single-copy atomic there, and the "memory" clobber keeps
 * the compiler from moving accesses across it, which is all a release store needs on x86);
 * elsewhere, a relaxed or release store of the incremented value. Only the owner writes
 * op_seq, so no read-modify-write atomicity is needed. */
#if defined(__x86_64__) || defined(__i386__)
#define OP_SEQ_STEP(ts, order) __asm__ volatile("addl $1, %0" : "+m"((ts)->op_seq) : : "memory")
#else
#define OP_SEQ_STEP(ts, order) \
	__atomic_store_n(&(ts)->op_seq, __atomic_load_n(&(ts)->op_seq, __ATOMIC_RELAXED) + 1, order)
#endif

static inline void enter(struct thread_state *ts)
{
	OP_SEQ_STEP(ts, __ATOMIC_RELAXED);
	if (__builtin_expect(need_fence, 0))
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	else
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	/* Test point: a thread inside an operation (op_seq odd) that has not yet read the session
	 * state, so recording may go off before it looks: it must then see the bit clear, and a
	 * stopper that saw it inside must wait for it. */
	TFPROF_TESTPOINT("tracer_op_entered");
}

static inline void leave(struct thread_state *ts)
{
	OP_SEQ_STEP(ts, __ATOMIC_RELEASE);
}

static void read_comm(int64_t tid, char *out, size_t cap)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%lld/comm", (long long)tid);
	FILE *f = fopen(path, "r");
	out[0] = 0;
	if (f) {
		if (fgets(out, (int)cap, f))
			out[strcspn(out, "\n")] = 0;
		fclose(f);
	}
}

static void reset_session_fields(struct thread_state *ts)
{
	/* No session has generation 0 (next_generation), so the hot paths' one test of gen also
	 * says the state is attached. */
	ts->gen = 0;
	ts->tag = 0;
	ts->pos = ts->end = NULL;
	ts->head = ts->cur = NULL;
	ts->chunk_bytes = MIN_CHUNK_BYTES;
	ts->serial = 0;
	ts->depth = 0;
	ts->dropped = ts->too_deep = ts->meta_dropped = ts->bad_ends = 0;
	ts->bad_metadata = ts->misnested = ts->truncated_args = 0;
}

/* Joins the calling thread to the current session. Not on the hot path: once per thread and
 * session. */
static __attribute__((noinline)) struct thread_state *attach(void)
{
	struct thread_state *ts = tls_ts;
	if (!ts) {
		ts = calloc(1, sizeof *ts);
		if (!ts)
			return NULL;
		ts->tid = (int64_t)syscall(SYS_gettid);
		pthread_setspecific(exit_key, ts);
		pthread_mutex_lock(&list_mu);
		ts->next = threads;
		threads = ts;
		pthread_mutex_unlock(&list_mu);
		tls_ts = ts;
	}
	pthread_mutex_lock(&list_mu);
	reset_session_fields(ts);
	ts->gen = __atomic_load_n(&session_gen, __ATOMIC_RELAXED);
	if (++tag_counter == 0)
		++tag_counter;
	ts->tag = tag_counter;
	pthread_mutex_unlock(&list_mu);
	return ts;
}

/* Frees chunks, keeping standard-size ones (up to SPARE_BYTES) for the next refill. */
static void free_chunks(struct tfprof__chunk *c)
{
	pthread_mutex_lock(&spare_mu);
	while (c) {
		struct tfprof__chunk *n = c->next;
		if (c->cap + sizeof *c == CHUNK_BYTES && spare_bytes + CHUNK_BYTES <= SPARE_BYTES) {
			c->next = spare;
			spare = c;
			spare_bytes += CHUNK_BYTES;
		} else {
			free(c);
		}
		c = n;
	}
	pthread_mutex_unlock(&spare_mu);
}

/* A chunk of want bytes: a recycled one (its pages already touched) or a new one. New chunks
 * are not pre-faulted with MADV_POPULATE_WRITE: measured, it saved ~8 ns a scope on fresh
 * memory but cost ~2.6 ns on memory malloc had already touched, the steady state. */
static struct tfprof__chunk *chunk_alloc(size_t want)
{
	struct tfprof__chunk *c = NULL;
	if (want == CHUNK_BYTES) {
		pthread_mutex_lock(&spare_mu);
		if ((c = spare)) {
			spare = c->next;
			spare_bytes -= CHUNK_BYTES;
		}
		pthread_mutex_unlock(&spare_mu);
		if (c)
			return c;
	}
	/* Page-aligned, so that the unused pages at a chunk's end can be handed back in place
	 * (trim_last_chunk): records point into their chunk, so it can never move. */
	return aligned_alloc(PAGE_BYTES, want);
}

static void unlink_thread(struct thread_state *ts)
{
	for (struct thread_state **pp = &threads; *pp; pp = &(*pp)->next) {
		if (*pp == ts) {
			*pp = ts->next;
			return;
		}
	}
}

/* Gives the whole unused pages at the end of the thread's last chunk back to the system and to
 * the bound. The chunk stays where it is (records point into it): its pages are released in
 * place (MADV_DONTNEED) and its cap shrinks to the pages still in use. */
static void trim_last_chunk(struct thread_state *ts)
{
	struct tfprof__chunk *c = ts->cur;
	if (!c)
		return;
	size_t used = (size_t)(ts->pos - c->data);
	uintptr_t from = ((uintptr_t)(c->data + used) + PAGE_BYTES - 1) & ~(uintptr_t)(PAGE_BYTES - 1);
	uintptr_t to = (uintptr_t)(c->data + c->cap); /* a page boundary: chunks are whole pages */
	c->used = used;
	if (to <= from || madvise((void *)from, to - from, MADV_DONTNEED))
		return;
	c->cap -= to - from;
	__atomic_fetch_sub(&reserved, to - from, __ATOMIC_RELAXED);
	ts->end = c->data + c->cap;
}

static void fold_counts(struct tfprof__thread_harvest *into, const struct tfprof__thread_harvest *h)
{
#define FOLD_COUNT(f) into->f += h->f;
	TFPROF__THREAD_COUNTERS(FOLD_COUNT)
#undef FOLD_COUNT
}

/* Moves the thread's records and counts into h and resets the state's session fields. */
static void take_records(struct thread_state *ts, struct tfprof__thread_harvest *h)
{
	h->tid = ts->tid;
	if (!ts->name_set)
		read_comm(ts->tid, ts->name, sizeof ts->name);
	memcpy(h->name, ts->name, sizeof h->name);
	if (ts->cur)
		ts->cur->used = (size_t)(ts->pos - ts->cur->data);
	h->chunks = ts->head;
	h->first_serial = 1;
	h->recorded = ts->serial;
#define TAKE_COUNT(f) h->f = ts->f;
	TFPROF__THREAD_KEPT_COUNTERS(TAKE_COUNT)
#undef TAKE_COUNT
	/* Every begin seen while the session recorded was recorded, dropped or too deep. */
	h->emitted = h->recorded + h->dropped + h->too_deep;
	reset_session_fields(ts);
}

/* A thread that exits while a session records (or before its harvest) leaves a compact record
 * on the dead list; its 6 KiB state is freed now. Caller holds list_mu. */
static void leave_records(struct thread_state *ts)
{
	trim_last_chunk(ts);
	struct tfprof__thread_harvest h = { 0 };
	take_records(ts, &h);
	/* The record was charged with the thread's first chunk (refill). */
	struct dead_thread *d = h.chunks ? malloc(sizeof *d) : NULL;
	if (d) {
		d->h = h;
		d->next = dead;
		dead = d;
		return;
	}
	if (h.chunks) {
		/* Out of memory for the record: its events become drops, counted, and their memory
		 * goes back to the bound with the record's share. */
		size_t bytes = sizeof *d;
		for (struct tfprof__chunk *c = h.chunks; c; c = c->next)
			bytes += c->cap + sizeof *c;
		__atomic_fetch_sub(&reserved, bytes, __ATOMIC_RELAXED);
		free_chunks(h.chunks);
		h.dropped += h.recorded;
	}
	fold_counts(&dead_counts, &h);
}

static void thread_exit(void *p)
{
	struct thread_state *ts = p;
	/* Test point: a thread exits while the stopper quiesces or harvests; list_mu orders the
	 * two, so its records are either left on the dead list or taken by the harvest, once. */
	TFPROF_TESTPOINT("tracer_thread_exit");
	pthread_mutex_lock(&list_mu);
	/* take_records() reads the thread's OS name while it still has one. */
	if (ts->tag != 0 && (recording() || harvest_pending))
		leave_records(ts);
	unlink_thread(ts);
	free_chunks(ts->head);
	free(ts);
	pthread_mutex_unlock(&list_mu);
	tls_ts = NULL;
}

static inline struct thread_state *current(void)
{
	struct thread_state *ts = tls_ts;
	if (__builtin_expect(!ts || ts->gen != __atomic_load_n(&session_gen, __ATOMIC_RELAXED) ||
				     ts->tag == 0,
			     0))
		ts = attach();
	return ts;
}

static size_t round_page(size_t n)
{
	return (n + PAGE_BYTES - 1) & ~(size_t)(PAGE_BYTES - 1);
}

/* Opens a new chunk big enough for size bytes, charged to the session's memory bound. */
static __attribute__((noinline)) void *refill(struct thread_state *ts, size_t size)
{
	size_t want = ts->chunk_bytes ? ts->chunk_bytes : MIN_CHUNK_BYTES;
	if (want < CHUNK_BYTES)
		ts->chunk_bytes = (uint32_t)(want * 2);
	if (max_memory / 16 < want)
		want = max_memory / 16 < MIN_CHUNK_BYTES ? MIN_CHUNK_BYTES : max_memory / 16;
	/* Whole pages: chunks are page-aligned (chunk_alloc), so that trim_last_chunk() can hand
	 * unused pages back in place. */
	size_t need = round_page(sizeof(struct tfprof__chunk) + size);
	want = round_page(want);
	if (want < need)
		want = need;
	/* A thread's first chunk of the session also pays for the record it leaves should it exit
	 * before the stop (leave_records), so that an exit never needs room the bound lacks. */
	size_t extra = ts->head ? 0 : sizeof(struct dead_thread);
	size_t before = __atomic_load_n(&reserved, __ATOMIC_RELAXED);
	for (;;) {
		size_t left = before < max_memory ? max_memory - before : 0;
		/* Near the bound, as many whole pages as are left, if the record fits in them. */
		size_t take = want + extra <= left ? want : left > extra ? (left - extra) & ~(size_t)(PAGE_BYTES - 1) : 0;
		if (take < need)
			return NULL;
		if (__atomic_compare_exchange_n(&reserved, &before, before + take + extra, true,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			want = take;
			break;
		}
	}
	struct tfprof__chunk *c = chunk_alloc(want);
	if (!c) {
		__atomic_fetch_sub(&reserved, want + extra, __ATOMIC_RELAXED);
		return NULL;
	}
	c->next = NULL;
	c->cap = want - sizeof *c;
	c->used = 0;
	if (ts->cur) {
		ts->cur->used = (size_t)(ts->pos - ts->cur->data);
		ts->cur->next = c;
	} else {
		ts->head = c;
	}
	ts->cur = c;
	ts->pos = c->data + size;
	ts->end = c->data + c->cap;
	return c->data;
}

static inline void *reserve(struct thread_state *ts, size_t size)
{
	if (__builtin_expect((size_t)(ts->end - ts->pos) >= size, 1)) {
		void *p = ts->pos;
		ts->pos += size;
		return p;
	}
	return refill(ts, size);
}

/* True when no argument needs a string copied: literal keys and no string values (the common
 * TFPROF_I64()... case), checked branch-free. */
static inline bool args_plain(const struct tfprof_arg *args, size_t nargs)
{
	uint32_t bad = 0;
	for (size_t i = 0; i < nargs; i++) {
		uint32_t t = args[i].type;
		bad |= (~t & TFPROF_ARG_STATIC_KEY) | (t == (TFPROF_ARG_STR | TFPROF_ARG_STATIC_KEY));
	}
	return bad == 0;
}

/* Bytes of strings that must be copied into the record: keys that are not literals and string
 * values, which the caller may free as soon as the call returns. */
static __attribute__((noinline)) size_t args_string_bytes_slow(const struct tfprof_arg *args, size_t nargs)
{
	size_t bytes = 0;
	for (size_t i = 0; i < nargs; i++) {
		uint32_t t = args[i].type;
		if (!(t & TFPROF_ARG_STATIC_KEY) && args[i].key)
			bytes += strlen(args[i].key) + 1;
		if ((t & ~TFPROF_ARG_STATIC_KEY) == TFPROF_ARG_STR && args[i].v.str)
			bytes += strlen(args[i].v.str) + 1;
	}
	return bytes;
}

static inline size_t args_string_bytes(const struct tfprof_arg *args, size_t nargs)
{
	return __builtin_expect(args_plain(args, nargs), 1) ? 0 : args_string_bytes_slow(args, nargs);
}

static char *copy_str(char **pool, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = *pool;
	memcpy(d, s, n);
	*pool += n;
	return d;
}

static inline void args_copy(struct tfprof_arg *dst, const struct tfprof_arg *src, size_t nargs,
			     size_t str_bytes, char *pool)
{
	/* A few arguments are copied as structs: cheaper than a call to memcpy. */
	if (nargs <= 4)
		for (size_t i = 0; i < nargs; i++)
			dst[i] = src[i];
	else
		memcpy(dst, src, nargs * sizeof *dst);
	if (__builtin_expect(str_bytes == 0, 1))
		return;
	for (size_t i = 0; i < nargs; i++) {
		uint32_t t = src[i].type;
		if (!(t & TFPROF_ARG_STATIC_KEY) && src[i].key)
			dst[i].key = copy_str(&pool, src[i].key);
		if ((t & ~TFPROF_ARG_STATIC_KEY) == TFPROF_ARG_STR && src[i].v.str)
			dst[i].v.str = copy_str(&pool, src[i].v.str);
	}
}

static inline size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* The values of args whose keys and types are sig's. Each is read at the width its argument
 * macro wrote it: a bool is one byte, and an 8-byte load over that byte store cannot be
 * forwarded from the store buffer, which stalls Intel cores for a dozen cycles or more per
 * argument (measured there: the whole-struct copy this replaced did so for every argument). */
static inline void pack_values(uint64_t *v, const struct tfprof__sig *sig, const struct tfprof_arg *args,
			       size_t nargs)
{
	for (size_t i = 0; i < nargs; i++) {
		if (sig->args[i].type == (TFPROF_ARG_BOOL | TFPROF_ARG_STATIC_KEY)) {
			/* As the union holds it, so that v.b reads it back on any byte order. */
			struct tfprof_arg one = { .v.u64 = 0 };
			one.v.b = args[i].v.b;
			v[i] = one.v.u64;
		} else {
			v[i] = args[i].v.u64;
		}
	}
}

/* Writes a scope record's header at r (its args are the caller's to fill), numbers it and
 * pushes it on the thread's open stack: the one place that keeps a scope's serial equal to the
 * order of its record, which the merge relies on. Returns the serial. */
static inline uint32_t open_record(struct thread_state *ts, struct tfprof__rec_scope *r, size_t size,
				   uint8_t flags, size_t nargs, const void *name)
{
	r->h = (struct tfprof__rec){ (uint32_t)size, TFPROF_REC_SCOPE, flags, (uint16_t)nargs };
	r->t1 = 0;
	r->name = name;
	uint32_t serial = ++ts->serial;
	ts->open[ts->depth++] = (struct open_scope){ serial, r };
	return serial;
}

static inline __attribute__((always_inline)) tfprof_scope
begin_common(struct tfprof_site *site, const char *name, const struct tfprof_arg *args, size_t nargs,
	     bool api, bool point)
{
	tfprof_scope h = { 0, 0 };
	struct thread_state *ts = current();
	if (__builtin_expect(!ts, 0))
		return h;
	if (!args)
		nargs = 0;
	/* Looked up before the operation begins: it touches no session state, and adding a
	 * signature takes a lock. */
	const struct tfprof__sig *sig = site && nargs ? tfprof__sig_find(site, args, nargs) : NULL;
	/* Test point: current() has looked at the state, no operation has begun yet: a stop and a
	 * new start may come in between, which the check after enter() must notice. */
	if (point)
		TFPROF_TESTPOINT("tracer_begin_before_enter");
	enter(ts);
	if (__builtin_expect(!recording(), 0))
		goto out;
	/* current() looked before enter(), when a stop and a new start could still come between;
	 * from here until leave() no harvest can reset the state, so look again. */
	if (__builtin_expect(ts->gen != __atomic_load_n(&session_gen, __ATOMIC_RELAXED) || ts->tag == 0, 0)) {
		leave(ts);
		if (!(ts = attach()))
			return h;
		enter(ts);
		if (!recording() || ts->gen != __atomic_load_n(&session_gen, __ATOMIC_RELAXED))
			goto out;
	}
	/* Test point: a begin that saw recording on is about to write its record; the stopper
	 * must wait for it (op_seq odd) before it takes this thread's chunks. */
	TFPROF_TESTPOINT("tracer_begin_recording");
	uint8_t flags = (site ? TFPROF_REC_NAME_SITE : 0) | (api ? TFPROF_REC_API : 0);
	if (__builtin_expect(nargs > MAX_ARGS, 0)) {
		ts->truncated_args += nargs - MAX_ARGS;
		nargs = MAX_ARGS;
		flags |= TFPROF_REC_ARGS_TRUNCATED;
	}
	size_t name_bytes = 0, str_bytes = 0, size;
	if (sig) {
		/* Keys and types are the signature's: the record holds the values only. */
		flags = TFPROF_REC_NAME_SIG;
		size = sizeof(struct tfprof__rec_scope) + nargs * sizeof(uint64_t);
	} else {
		if (!site) {
			if (!name || !*name)
				name = "(unnamed)";
			name_bytes = strlen(name) + 1;
		}
		str_bytes = args_string_bytes(args, nargs);
		size = round8(sizeof(struct tfprof__rec_scope) + nargs * sizeof(struct tfprof_arg) + str_bytes +
			      name_bytes);
	}
	struct tfprof__rec_scope *r;
	if (__builtin_expect(ts->depth >= MAX_DEPTH, 0)) {
		ts->too_deep++;
		goto out;
	}
	if (__builtin_expect(size > UINT32_MAX, 0) || !(r = reserve(ts, size))) {
		ts->dropped++;
		goto out;
	}
	uint32_t serial;
	if (sig) {
		serial = open_record(ts, r, size, flags, nargs, sig);
		pack_values((uint64_t *)(r + 1), sig, args, nargs);
	} else {
		/* The copied name goes after the copied argument strings. */
		char *pool = (char *)((struct tfprof_arg *)(r + 1) + nargs);
		serial = open_record(ts, r, size, flags, nargs, site ? (const void *)site : pool + str_bytes);
		args_copy(tfprof__rec_args(&r->h), args, nargs, str_bytes, pool);
		if (!site)
			memcpy(pool + str_bytes, name, name_bytes);
	}
	h.tag = ts->tag;
	h.serial = serial;
	/* The NVTX stack has its own bound: it outlives sessions, so ranges of scopes that were
	 * never ended stay on it. */
	if (!api && nvtx_on && ts->nvtx_depth < MAX_DEPTH) {
		if (site)
			tfprof__nvtx_push_site(site);
		else
			tfprof__nvtx_push_name(tfprof__rec_name(r));
		ts->nvtx_stack[ts->nvtx_depth++] = (struct nvtx_open){ h.tag, h.serial };
	}
	/* The begin time is taken last so the bookkeeping above is not inside the scope. */
	r->t0 = tfprof__ticks();
out:
	leave(ts);
	return h;
}

/* A scope begin while hooks watch scopes (TFPROF__STATE_HOOKS; activation's TFPROF_STEPS): the
 * hook sees the arguments first, since a step's begin may start the session; nothing is
 * recorded while none runs. Kept out of line so that the usual begin pays one test of the state
 * word. */
static __attribute__((noinline)) tfprof_scope hooked_begin(struct tfprof_site *site, const char *name,
							   const struct tfprof_arg *args, size_t nargs)
{
	const struct tfprof__scope_hooks *hk = hooks();
	bool last = hk && hk->before_begin(args, nargs);
	if (!recording())
		return (tfprof_scope){ 0, 0 };
	tfprof_scope h = begin_common(site, name, args, nargs, false, true);
	if (last && h.tag)
		hk->began(h);
	return h;
}

static inline bool hooks_watch(void)
{
	return __builtin_expect(__atomic_load_n(&tfprof__state, __ATOMIC_RELAXED) & TFPROF__STATE_HOOKS, 0);
}

/* The scope begin slow paths' one extra test: hooks watching, or user scopes switched off. */
static inline bool begin_is_special(void)
{
	return __builtin_expect(__atomic_load_n(&tfprof__state, __ATOMIC_RELAXED) &
					(TFPROF__STATE_HOOKS | TFPROF__STATE_NO_SCOPES),
				0);
}

static inline bool scopes_off(void)
{
	return __atomic_load_n(&tfprof__state, __ATOMIC_RELAXED) & TFPROF__STATE_NO_SCOPES;
}

tfprof_scope tfprof_scope_begin_slow(const char *name, const struct tfprof_arg *args, size_t nargs)
{
	if (begin_is_special())
		return scopes_off() ? (tfprof_scope){ 0, 0 } : hooked_begin(NULL, name, args, nargs);
	return begin_common(NULL, name, args, nargs, false, true);
}

tfprof_scope tfprof__api_begin(const char *name, const struct tfprof_arg *args, size_t nargs)
{
	if (!recording())
		return (tfprof_scope){ 0, 0 };
	return begin_common(NULL, name, args, nargs, true, true);
}

/* Any begin the fast path does not take: the general path, with all its checks. point is false
 * when the fast path already passed the test point before its operation. */
static __attribute__((noinline)) tfprof_scope
begin_site_general(struct tfprof_site *site, const struct tfprof_arg *args, size_t nargs, bool point)
{
	if (!site || !site->name || !*site->name)
		site = NULL;
	if (begin_is_special())
		return scopes_off() ? (tfprof_scope){ 0, 0 }
				    : hooked_begin(site, site ? NULL : "(unnamed)", args, nargs);
	return point ? begin_common(site, NULL, args, nargs, false, true)
		     : begin_common(site, NULL, args, nargs, false, false);
}

/* The usual begin, a call site's scope with literal keys and numeric values while a session
 * records: a fixed-size record (32 bytes and 8 per argument value), written with as few
 * instructions as the protocol allows, since on some processors (measured on an Intel Xeon VM)
 * they add up on top of the clock reads instead of hiding behind them. Anything unusual (a
 * thread not attached to this session, hooks watching, NVTX ranges to push, a full chunk, an
 * argument shape without a signature) goes to begin_site_general() before anything is written,
 * so the two paths never both count one begin. */
tfprof_scope tfprof_scope_begin_site_slow(struct tfprof_site *site, const struct tfprof_arg *args,
					  size_t nargs)
{
	struct thread_state *ts = tls_ts;
	if (__builtin_expect(!ts || nargs > TFPROF__SIG_MAX_ARGS || nvtx_on, 0))
		return begin_site_general(site, args, nargs, true);
	const void *name;
	uint8_t flags;
	if (nargs) {
		/* The home slot only: a signature still to add is begin_common()'s (it may lock). */
		const struct tfprof__sig *sig = args ? tfprof__sig_at_home(site, args, nargs) : NULL;
		if (__builtin_expect(!sig, 0))
			return begin_site_general(site, args, nargs, true);
		name = sig;
		flags = TFPROF_REC_NAME_SIG;
	} else {
		if (__builtin_expect(!site || !site->name || !*site->name, 0))
			return begin_site_general(site, args, nargs, true);
		name = site;
		flags = TFPROF_REC_NAME_SITE;
	}
	size_t size = sizeof(struct tfprof__rec_scope) + nargs * sizeof(uint64_t);
	TFPROF_TESTPOINT("tracer_begin_before_enter");
	enter(ts);
	uint32_t d = ts->depth;
	/* Exactly ON: no hooks watching, user scopes not switched off. */
	if (__builtin_expect(__atomic_load_n(&tfprof__state, __ATOMIC_RELAXED) != TFPROF_STATE_ON ||
				     ts->gen != __atomic_load_n(&session_gen, __ATOMIC_RELAXED) || d >= MAX_DEPTH ||
				     (size_t)(ts->end - ts->pos) < size,
			     0)) {
		leave(ts);
		return begin_site_general(site, args, nargs, false);
	}
	TFPROF_TESTPOINT("tracer_begin_recording");
	struct tfprof__rec_scope *r = (struct tfprof__rec_scope *)ts->pos;
	ts->pos += size;
	uint32_t serial = open_record(ts, r, size, flags, nargs, name);
	pack_values((uint64_t *)(r + 1), name, args, nargs);
	tfprof_scope h = { ts->tag, serial };
	r->t0 = tfprof__ticks();
	leave(ts);
	return h;
}

/* Finds an open scope of this thread by serial; returns its depth index or -1. */
static int find_open(const struct thread_state *ts, uint32_t serial)
{
	for (int i = (int)ts->depth - 1; i >= 0; i--)
		if (ts->open[i].serial == serial)
			return i;
	return -1;
}

static __attribute__((noinline)) void end_out_of_order(struct thread_state *ts, uint32_t serial,
							uint64_t t1)
{
	int k = find_open(ts, serial);
	if (k < 0) {
		ts->bad_ends++;
		return;
	}
	for (int j = (int)ts->depth - 1; j >= k; j--) {
		struct open_scope *o = &ts->open[j];
		__atomic_store_n(&o->rec->t1, t1, __ATOMIC_RELAXED);
		if (j > k) {
			o->rec->h.flags |= TFPROF_REC_CLOSED_BY_PARENT;
			ts->misnested++;
		}
	}
	ts->depth = (uint32_t)k;
}

/* Pops the NVTX ranges of scope s and of any scope opened inside it on this thread. */
static __attribute__((noinline)) void nvtx_end_slow(struct thread_state *ts, tfprof_scope s)
{
	for (int i = (int)ts->nvtx_depth - 1; i >= 0; i--) {
		if (ts->nvtx_stack[i].tag == s.tag && ts->nvtx_stack[i].serial == s.serial) {
			while (ts->nvtx_depth > (uint32_t)i) {
				tfprof__nvtx_pop();
				ts->nvtx_depth--;
			}
			return;
		}
	}
}

/* The NVTX stack belongs to the calling thread alone, so no enter()/leave() is needed. */
static inline void nvtx_end(struct thread_state *ts, tfprof_scope s)
{
	uint32_t d = ts->nvtx_depth;
	if (__builtin_expect(d == 0, 1))
		return;
	if (__builtin_expect(ts->nvtx_stack[d - 1].tag == s.tag && ts->nvtx_stack[d - 1].serial == s.serial, 1)) {
		tfprof__nvtx_pop();
		ts->nvtx_depth = d - 1;
	} else {
		nvtx_end_slow(ts, s);
	}
}

/* An end's operation, with every check, NVTX ranges and the scope hooks: for any end the fast
 * path does not take (it has written nothing). */
static __attribute__((noinline)) void end_op(struct thread_state *ts, tfprof_scope s, uint64_t t1)
{
	enter(ts);
	if (__builtin_expect(!recording(), 0))
		goto out;
	/* Checked only after enter(): from here until leave() no harvest can reset the state. */
	if (__builtin_expect(ts->gen != __atomic_load_n(&session_gen, __ATOMIC_RELAXED) || ts->tag == 0, 0)) {
		__atomic_fetch_add(&orphan_bad_ends, 1, __ATOMIC_RELAXED);
		goto out;
	}
	if (__builtin_expect(s.tag != ts->tag, 0)) {
		ts->bad_ends++;
		goto out;
	}
	uint32_t d = ts->depth;
	if (__builtin_expect(d != 0 && ts->open[d - 1].serial == s.serial, 1)) {
		__atomic_store_n(&ts->open[d - 1].rec->t1, t1, __ATOMIC_RELAXED);
		ts->depth = d - 1;
	} else {
		end_out_of_order(ts, s.serial, t1);
	}
out:
	leave(ts);
	nvtx_end(ts, s);
	/* Last, once the scope is closed (activation writes the profile at step B's end). */
	const struct tfprof__scope_hooks *hk;
	if (hooks_watch() && (hk = hooks()))
		hk->ended(s);
}

/* The usual end (the innermost open scope of this session, no NVTX range, no hooks watching) in
 * few instructions, as the begin's fast path; anything else goes to end_op(). */
void tfprof_scope_end_slow(tfprof_scope s)
{
	/* The end time is taken first so the bookkeeping below is not inside the scope. */
	uint64_t t1 = tfprof__ticks();
	struct thread_state *ts = tls_ts;
	if (__builtin_expect(!ts, 0)) {
		if (recording())
			__atomic_fetch_add(&orphan_bad_ends, 1, __ATOMIC_RELAXED);
		return;
	}
	/* Test point: an end that has not begun its operation: a stop and a new start may come in
	 * between, so the record it would close may already be handed back. */
	TFPROF_TESTPOINT("tracer_end_before_enter");
	if (__builtin_expect(ts->nvtx_depth == 0, 1)) {
		enter(ts);
		uint32_t d = ts->depth;
		if (__builtin_expect(__atomic_load_n(&tfprof__state, __ATOMIC_RELAXED) == TFPROF_STATE_ON &&
					     ts->gen == __atomic_load_n(&session_gen, __ATOMIC_RELAXED) &&
					     s.tag == ts->tag && d != 0 && ts->open[d - 1].serial == s.serial,
				     1)) {
			__atomic_store_n(&ts->open[d - 1].rec->t1, t1, __ATOMIC_RELAXED);
			ts->depth = d - 1;
			leave(ts);
			return;
		}
		leave(ts);
	}
	end_op(ts, s, t1);
}

void tfprof_scope_set_metadata_slow(tfprof_scope s, const struct tfprof_arg *args, size_t nargs)
{
	struct thread_state *ts = tls_ts;
	if (!ts)
		return;
	enter(ts);
	if (!recording() || ts->gen != __atomic_load_n(&session_gen, __ATOMIC_RELAXED) || ts->tag == 0)
		goto out;
	if (s.tag != ts->tag || find_open(ts, s.serial) < 0) {
		ts->bad_metadata++;
		goto out;
	}
	if (!args || nargs == 0)
		goto out;
	uint8_t flags = 0;
	if (nargs > MAX_ARGS) {
		ts->truncated_args += nargs - MAX_ARGS;
		nargs = MAX_ARGS;
		flags |= TFPROF_REC_ARGS_TRUNCATED;
	}
	size_t str_bytes = args_string_bytes(args, nargs);
	size_t size = round8(sizeof(struct tfprof__rec_meta) + nargs * sizeof(struct tfprof_arg) + str_bytes);
	struct tfprof__rec_meta *r;
	if (size > UINT32_MAX || !(r = reserve(ts, size))) {
		ts->meta_dropped++;
		goto out;
	}
	r->h.size = (uint32_t)size;
	r->h.kind = TFPROF_REC_META;
	r->h.flags = flags;
	r->h.nargs = (uint16_t)nargs;
	r->serial = s.serial;
	r->unused = 0;
	args_copy(tfprof__rec_args(&r->h), args, nargs, str_bytes, (char *)(tfprof__rec_args(&r->h) + nargs));
out:
	leave(ts);
}

void tfprof_set_thread_name(const char *name)
{
	struct thread_state *ts = tls_ts;
	if (!ts) {
		/* Create the state now so the name is there when the thread first records. */
		ts = attach();
		if (!ts)
			return;
	}
	pthread_mutex_lock(&list_mu);
	snprintf(ts->name, sizeof ts->name, "%s", name ? name : "");
	ts->name_set = name && *name;
	pthread_mutex_unlock(&list_mu);
}

/* Frees what exited threads left for a harvest that never took it. Caller holds list_mu. */
static void drop_dead(void)
{
	while (dead) {
		struct dead_thread *d = dead;
		dead = d->next;
		free_chunks(d->h.chunks);
		free(d);
	}
	memset(&dead_counts, 0, sizeof dead_counts);
}

void tfprof__tracer_begin_session(size_t max_mem, bool nvtx)
{
	pthread_mutex_lock(&list_mu);
	/* A harvest that failed (out of memory) left the last session's exited threads. */
	drop_dead();
	max_memory = max_mem;
	__atomic_store_n(&reserved, 0, __ATOMIC_RELAXED);
	nvtx_on = nvtx;
	__atomic_store_n(&orphan_bad_ends, 0, __ATOMIC_RELAXED);
	harvest_pending = true;
	/* A new generation makes every thread attach afresh, with a new tag. */
	next_generation();
	pthread_mutex_unlock(&list_mu);
}

static uint64_t last_quiesce_ns;

uint64_t tfprof__tracer_last_quiesce_ns(void)
{
	return __atomic_load_n(&last_quiesce_ns, __ATOMIC_RELAXED);
}

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void pause_briefly(void)
{
	struct timespec t = { 0, 20000 };
	nanosleep(&t, NULL);
}

void tfprof__tracer_quiesce(void)
{
	uint64_t t0 = mono_ns();
	/* The expedited barrier needs the registration made at load (or, in a fork child, again
	 * in tfprof__tracer_fork_child()); should it fail anyway, the global barrier needs none. */
	if (membarrier_cmd && syscall(SYS_membarrier, membarrier_cmd, 0, 0) != 0)
		syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
	else if (!membarrier_cmd)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(&list_mu);
	/* The threads seen inside an operation are waited for together, so that one pause serves
	 * them all; the pause is a short sleep rather than sched_yield(), which under CFS can leave
	 * the stopper behind every busy thread for a whole round per call, while a waking sleeper
	 * is run promptly. Without memory for the list, they are waited for one at a time. */
	size_t n = 0;
	for (struct thread_state *ts = threads; ts; ts = ts->next)
		n++;
	struct pending {
		struct thread_state *ts;
		uint32_t seen;
	} *pend = malloc((n ? n : 1) * sizeof *pend);
	size_t npend = 0;
	for (struct thread_state *ts = threads; ts; ts = ts->next) {
		uint32_t seen = __atomic_load_n(&ts->op_seq, __ATOMIC_ACQUIRE);
		if (!(seen & 1))
			continue;
		if (pend) {
			pend[npend++] = (struct pending){ ts, seen };
			continue;
		}
		while (__atomic_load_n(&ts->op_seq, __ATOMIC_ACQUIRE) == seen)
			pause_briefly();
	}
	while (npend) {
		size_t k = 0;
		for (size_t i = 0; i < npend; i++)
			if (__atomic_load_n(&pend[i].ts->op_seq, __ATOMIC_ACQUIRE) == pend[i].seen)
				pend[k++] = pend[i];
		npend = k;
		if (npend) {
			/* Test point: the stopper looked again and threads it saw inside an operation
			 * are still inside that one, so it waits (for it only: later operations see
			 * recording off). */
			TFPROF_TESTPOINT("tracer_quiesce_wait");
			pause_briefly();
		}
	}
	free(pend);
	pthread_mutex_unlock(&list_mu);
	__atomic_store_n(&last_quiesce_ns, mono_ns() - t0, __ATOMIC_RELAXED);
}

int tfprof__tracer_harvest(struct tfprof__thread_harvest **out, size_t *n)
{
	/* Test point: between the quiesce and the harvest, where a thread that exits must leave
	 * its records for the harvest (harvest_pending) rather than free them. */
	TFPROF_TESTPOINT("tracer_harvest");
	pthread_mutex_lock(&list_mu);
	uint32_t gen = __atomic_load_n(&session_gen, __ATOMIC_RELAXED);
	size_t count = 1; /* the folded counts of exited threads */
	for (struct thread_state *ts = threads; ts; ts = ts->next)
		count++;
	for (struct dead_thread *d = dead; d; d = d->next)
		count++;
	struct tfprof__thread_harvest *h = calloc(count, sizeof *h);
	if (!h) {
		pthread_mutex_unlock(&list_mu);
		return -ENOMEM;
	}
	size_t k = 0;
	for (struct thread_state *ts = threads; ts; ts = ts->next)
		if (ts->gen == gen && ts->tag != 0)
			take_records(ts, &h[k++]);
	/* Exited threads: their records (oldest last on the list, so reversed) and their counts. */
	size_t first_dead = k;
	for (struct dead_thread *d = dead; d;) {
		struct dead_thread *next = d->next;
		h[k++] = d->h;
		free(d);
		d = next;
	}
	for (size_t a = first_dead, b = k; a + 1 < b; a++, b--) {
		struct tfprof__thread_harvest t = h[a];
		h[a] = h[b - 1];
		h[b - 1] = t;
	}
	dead = NULL;
	h[k] = dead_counts;
	h[k].no_line = true;
	k++;
	memset(&dead_counts, 0, sizeof dead_counts);
	harvest_pending = false;
	pthread_mutex_unlock(&list_mu);
	*out = h;
	*n = k;
	return 0;
}

void tfprof__tracer_harvest_free(struct tfprof__thread_harvest *h, size_t n)
{
	if (!h)
		return;
	for (size_t i = 0; i < n; i++)
		free_chunks(h[i].chunks);
	free(h);
}

size_t tfprof__tracer_reserved_bytes(void)
{
	return __atomic_load_n(&reserved, __ATOMIC_RELAXED);
}

uint64_t tfprof__tracer_orphan_bad_ends(void)
{
	return __atomic_load_n(&orphan_bad_ends, __ATOMIC_RELAXED);
}

/* fork() support (called from session.c's pthread_atfork handlers): the parent's locks are held
 * across fork, so the child finds the thread list consistent. */
void tfprof__tracer_fork_prepare(void)
{
	pthread_mutex_lock(&list_mu);
	pthread_mutex_lock(&spare_mu);
	tfprof__sig_fork_prepare();
}

void tfprof__tracer_fork_parent(void)
{
	tfprof__sig_fork_release();
	pthread_mutex_unlock(&spare_mu);
	pthread_mutex_unlock(&list_mu);
}

void tfprof__tracer_fork_child(void)
{
	tfprof__sig_fork_release();
	pthread_mutex_unlock(&spare_mu);
	pthread_mutex_unlock(&list_mu);
	/* Only the forking thread exists in the child. The other threads' states are copies that
	 * nobody will ever release; one may even show an odd op_seq (it was mid-record at the fork), so
	 * no quiesce may wait on them: drop them, and every record of the parent with them. */
	struct thread_state *self = tls_ts;
	pthread_mutex_lock(&list_mu);
	struct thread_state **pp = &threads;
	while (*pp) {
		struct thread_state *ts = *pp;
		free_chunks(ts->head);
		ts->head = NULL;
		if (ts == self) {
			reset_session_fields(ts);
			ts->op_seq = 0;
			/* The forking thread has a new thread id in the child. */
			ts->tid = (int64_t)syscall(SYS_gettid);
			pp = &ts->next;
		} else {
			*pp = ts->next;
			free(ts);
		}
	}
	/* membarrier registrations belong to the address space, which the child does not share:
	 * register again, or make the writers fence themselves (only this thread runs now, so the
	 * switch cannot race with a writer). */
	if (membarrier_cmd == MEMBARRIER_CMD_PRIVATE_EXPEDITED &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) {
		membarrier_cmd = 0;
		need_fence = true;
	}
	/* Records of the parent's exited threads are the parent's. */
	drop_dead();
	/* A new generation makes handles from the parent's session stale in the child. */
	next_generation();
	harvest_pending = false;
	__atomic_store_n(&reserved, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&orphan_bad_ends, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&list_mu);
}
