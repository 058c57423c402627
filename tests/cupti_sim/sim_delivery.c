/* SPDX-License-Identifier: Apache-2.0 */
/* Activity buffers in the CUPTI simulator: writing records into client buffers, asking for new
 * ones, and handing completed ones back from a separate delivery thread in shuffled order,
 * periodically and on cuptiActivityFlushAll.
 *
 * Buffer life: the client's request callback gives a buffer (on the producing thread, lock
 * released); it becomes the current buffer of the producing thread's slot (per-thread buffers
 * are CUDA 13's default). Records are appended under sim.lock. A buffer is queued for delivery
 * when the next record does not fit, when maxNumRecords is reached, when it holds records older
 * than the flush period (the delivery thread checks), or on flush. The delivery thread takes the
 * whole queue, releases the lock, shuffles each buffer's records and calls the completion
 * callback. Every queued buffer has a ticket; a flush waits until the delivered ticket reaches
 * the last one it queued, so it returns only after those completion callbacks returned. */
#define _GNU_SOURCE
#include "sim_internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Each thread remembers its slot; the generation tells a slot from before tfsim_reset(). */
static __thread int my_slot = -1;
static __thread uint64_t my_slot_generation;

/* Set while the delivery thread waits with nothing to age, so a first record wakes it. */
static bool worker_idle_forever;
/* Set by the unload destructor: from then on a flush delivers on the calling thread. */
static bool shut_down;

/* The smallest record the simulator writes; a buffer with less room left counts as full. */
#define SIM_MIN_RECORD sizeof(CUpti_ActivityExternalCorrelation)

static struct sim_slot *slot_for_thread_locked(void)
{
    if (!sim.per_thread_buffers)
        return &sim.slots[0];
    if (my_slot >= 0 && my_slot_generation == sim.slot_generation)
        return &sim.slots[my_slot];
    if (sim.nslots < SIM_MAX_SLOTS) {
        my_slot = sim.nslots++;
        sim.slots[my_slot].in_use = true;
    } else {
        my_slot = 0; /* more threads than slots share slot 0 */
    }
    my_slot_generation = sim.slot_generation;
    return &sim.slots[my_slot];
}

static void *worker_main(void *arg);

static void ensure_worker_locked(void)
{
    if (sim.worker_running || shut_down)
        return;
    /* The delivery thread blocks every signal so that the application's handlers (tfprof's
     * SIGINT/SIGTERM ones included) never run on it, as with CUPTI's own worker. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    sim.worker_stop = false;
    if (pthread_create(&sim.worker, NULL, worker_main, NULL) == 0)
        sim.worker_running = true;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void queue_locked(struct sim_buf *b)
{
    b->next = NULL;
    b->seq = ++sim.enqueued_seq;
    if (sim.queue_tail)
        sim.queue_tail->next = b;
    else
        sim.queue_head = b;
    sim.queue_tail = b;
    ensure_worker_locked();
    pthread_cond_signal(&sim.work_cv);
}

static void drop_locked(void)
{
    sim.dropped_unread++;
    atomic_fetch_add(&sim.stats.records_dropped, 1);
}

static bool buf_fits(const struct sim_buf *b, size_t need)
{
    if (b->max_records && b->nrec >= b->max_records)
        return false;
    return b->size - b->used >= need;
}

static void buf_append_locked(struct sim_buf *b, const void *rec, size_t size)
{
    size_t need = SIM_ALIGN(size);
    memcpy(b->data + b->used, rec, size);
    if (need > size)
        memset(b->data + b->used + size, 0, need - size);
    b->used += need;
    if (b->nrec++ == 0) {
        /* The delivery thread ages partially filled buffers, so it must be running, and awake
         * if it was waiting with nothing to age. */
        b->first_mono = sim_mono_ns();
        ensure_worker_locked();
        if (worker_idle_forever)
            pthread_cond_signal(&sim.work_cv);
    }
}

static bool buf_full(const struct sim_buf *b)
{
    return (b->max_records && b->nrec >= b->max_records) || b->size - b->used < SIM_MIN_RECORD;
}

/* Asks the client for a buffer with the lock released. Returns with the lock held and the
 * buffer installed (true), or the record to be dropped (false). */
static bool request_buffer_locked(struct sim_slot *slot, size_t need)
{
    atomic_fetch_add(&sim.stats.buffers_requested, 1);
    CUpti_BuffersCallbackRequestFunc cb = sim.request_cb;
    if (!cb || sim_fault_take_locked(&sim.fault_refuse)) {
        atomic_fetch_add(&sim.stats.buffers_refused, 1);
        return false;
    }
    bool zero = !sim.client_zeroes_buffers;
    sim_unlock();

    /* The bookkeeping is allocated first so that a buffer the client hands over can always be
     * tracked and returned. */
    struct sim_buf *nb = calloc(1, sizeof *nb);
    uint8_t *data = NULL;
    size_t size = 0, max_records = 0;
    uint64_t t0 = sim_now(), t1 = t0;
    if (nb) {
        cb(&data, &size, &max_records);
        t1 = sim_now();
        if (data && size && zero)
            memset(data, 0, size); /* CUPTI zeroes buffers unless the client promised to */
    }

    sim_lock();
    if (!data || !size) {
        free(nb);
        atomic_fetch_add(&sim.stats.buffers_refused, 1);
        return false;
    }
    nb->data = data;
    nb->size = size;
    nb->max_records = max_records;
    if (((uintptr_t)data & 7u) != 0 || size < need) {
        /* CUPTI needs 8-byte aligned buffers big enough for a record; an unusable one goes back
         * to the client empty, so the client's pool accounting stays whole. */
        queue_locked(nb);
        return false;
    }
    if (sim_kind_on(CUPTI_ACTIVITY_KIND_OVERHEAD) &&
        buf_fits(nb, SIM_ALIGN(sizeof(CUpti_ActivityOverhead3)) + need) &&
        (max_records == 0 || max_records >= 2)) {
        CUpti_ActivityOverhead3 o;
        memset(&o, 0, sizeof o);
        o.kind = CUPTI_ACTIVITY_KIND_OVERHEAD;
        o.overheadKind = CUPTI_ACTIVITY_OVERHEAD_ACTIVITY_BUFFER_REQUEST;
        o.objectKind = CUPTI_ACTIVITY_OBJECT_THREAD;
        o.objectId.pt.processId = (uint32_t)getpid();
        o.objectId.pt.threadId = sim_thread_id();
        o.start = t0;
        o.end = t1;
        buf_append_locked(nb, &o, sizeof o);
        atomic_fetch_add(&sim.stats.records_produced, 1);
    }
    if (!slot->cur) {
        slot->cur = nb;
    } else {
        nb->next = sim.spares; /* only in shared-slot mode can another thread have won */
        sim.spares = nb;
    }
    return true;
}

void sim_emit(const void *rec, size_t size)
{
    size_t need = SIM_ALIGN(size);
    atomic_fetch_add(&sim.stats.records_produced, 1);
    sim_lock();
    if (sim_fault_take_locked(&sim.fault_drop)) {
        drop_locked();
        sim_unlock();
        return;
    }
    struct sim_slot *slot = slot_for_thread_locked();
    bool requested = false;
    for (;;) {
        struct sim_buf *b = slot->cur;
        if (b && buf_fits(b, need)) {
            buf_append_locked(b, rec, size);
            if (buf_full(b)) {
                slot->cur = NULL;
                queue_locked(b);
            }
            break;
        }
        if (b) {
            slot->cur = NULL;
            queue_locked(b);
        }
        if (sim.spares) {
            slot->cur = sim.spares;
            sim.spares = sim.spares->next;
            slot->cur->next = NULL;
            continue;
        }
        /* One request per record: a client that keeps refusing costs one drop per record,
         * and a buffer too small for the record cannot loop forever. */
        if (requested || !request_buffer_locked(slot, need)) {
            drop_locked();
            break;
        }
        requested = true;
    }
    sim_unlock();
}

/* ---- Delivery ----------------------------------------------------------------------------- */

/* Scratch owned by whichever thread delivers; only one does at a time (the delivery thread, or
 * after unload the flushing thread), so no lock is needed. */
static uint8_t *scratch;
static size_t scratch_cap;
static uint32_t *offsets;
static size_t offsets_cap;

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

/* Records are in no particular order in real CUPTI buffers; clients that assume launch order
 * must fail here. The permutation is never the identity when there are two or more records. */
static void shuffle_records(struct sim_buf *b)
{
    if (b->nrec < 2)
        return;
    if (offsets_cap < b->nrec) {
        uint32_t *n = realloc(offsets, b->nrec * sizeof *n);
        if (!n)
            return;
        offsets = n;
        offsets_cap = b->nrec;
    }
    if (scratch_cap < b->used) {
        uint8_t *n = realloc(scratch, b->used);
        if (!n)
            return;
        scratch = n;
        scratch_cap = b->used;
    }
    size_t n = 0;
    for (size_t off = 0; off < b->used && n < b->nrec;) {
        size_t sz = sim_record_size(((const CUpti_Activity *)(b->data + off))->kind);
        if (sz == 0)
            return; /* cannot happen for records we wrote; leave the buffer as it is */
        offsets[n++] = (uint32_t)off;
        off += SIM_ALIGN(sz);
    }
    uint64_t state = 0x9E3779B97F4A7C15ull ^ (b->seq * 0xBF58476D1CE4E5B9ull) ^ b->used;
    if (!state)
        state = 1;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(xorshift(&state) % (i + 1));
        uint32_t t = offsets[i];
        offsets[i] = offsets[j];
        offsets[j] = t;
    }
    bool identity = true;
    for (size_t i = 1; i < n && identity; i++)
        identity = offsets[i] > offsets[i - 1];
    if (identity) {
        uint32_t t = offsets[0];
        offsets[0] = offsets[1];
        offsets[1] = t;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t sz = SIM_ALIGN(sim_record_size(((const CUpti_Activity *)(b->data + offsets[i]))->kind));
        memcpy(scratch + pos, b->data + offsets[i], sz);
        pos += sz;
    }
    memcpy(b->data, scratch, pos);
}

static void deliver_batch(struct sim_buf *batch, CUpti_BuffersCallbackCompleteFunc cb)
{
    while (batch) {
        struct sim_buf *b = batch;
        batch = b->next;
        shuffle_records(b);
        if (cb) {
            cb(NULL, 0, b->data, b->size, b->used);
            atomic_fetch_add(&sim.stats.records_delivered, b->nrec);
            atomic_fetch_add(&sim.stats.buffers_completed, 1);
        }
        free(b);
    }
}

/* Takes the whole queue, delivers it with the lock released, and advances the ticket. Called
 * and returns with the lock held. */
static void deliver_queue_locked(void)
{
    struct sim_buf *batch = sim.queue_head;
    if (!batch)
        return;
    uint64_t last = sim.queue_tail->seq;
    sim.queue_head = sim.queue_tail = NULL;
    CUpti_BuffersCallbackCompleteFunc cb = sim.complete_cb;
    sim_unlock();
    deliver_batch(batch, cb);
    sim_lock();
    if (last > sim.delivered_seq)
        sim.delivered_seq = last;
    pthread_cond_broadcast(&sim.done_cv);
}

static void *worker_main(void *arg)
{
    (void)arg;
    sim_lock();
    while (!sim.worker_stop) {
        if (sim.queue_head) {
            deliver_queue_locked();
            continue;
        }
        /* Partially filled buffers go out once their oldest record is older than the period. */
        uint64_t now = sim_mono_ns(), period = (uint64_t)sim.flush_period_ms * 1000000u;
        uint64_t due = UINT64_MAX;
        for (int i = 0; i < sim.nslots; i++) {
            struct sim_buf *b = sim.slots[i].cur;
            if (!b || b->nrec == 0)
                continue;
            if (now - b->first_mono >= period) {
                sim.slots[i].cur = NULL;
                queue_locked(b);
            } else if (b->first_mono + period < due) {
                due = b->first_mono + period;
            }
        }
        if (sim.queue_head)
            continue;
        if (due == UINT64_MAX) {
            worker_idle_forever = true;
            pthread_cond_wait(&sim.work_cv, &sim.lock);
            worker_idle_forever = false;
        } else {
            struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u),
                                  .tv_nsec = (long)(due % 1000000000u)};
            pthread_cond_timedwait(&sim.work_cv, &sim.lock, &ts);
        }
    }
    sim_unlock();
    return NULL;
}

CUptiResult sim_flush_all(uint32_t flag)
{
    bool forced = (flag & CUPTI_ACTIVITY_FLAG_FLUSH_FORCED) != 0;
    sim_lock();
    if (!sim.request_cb || !sim.complete_cb) {
        sim_unlock();
        return CUPTI_ERROR_INVALID_OPERATION;
    }
    for (int i = 0; i < sim.nslots; i++) {
        struct sim_buf *b = sim.slots[i].cur;
        if (b && (b->nrec > 0 || forced)) {
            sim.slots[i].cur = NULL;
            queue_locked(b);
        }
    }
    if (forced) {
        /* A forced flush returns every buffer the simulator holds, empty ones included, so a
         * client can account for its whole pool after stopping. */
        while (sim.spares) {
            struct sim_buf *b = sim.spares;
            sim.spares = b->next;
            queue_locked(b);
        }
    }
    uint64_t target = sim.enqueued_seq;
    if (!shut_down)
        ensure_worker_locked();
    if (shut_down || !sim.worker_running) {
        /* After unload began (or if no thread could be started) there is no delivery thread;
         * deliver here so a late flush from an exit handler still returns the data. */
        deliver_queue_locked();
        sim_unlock();
        return CUPTI_SUCCESS;
    }
    if (sim.worker_running && pthread_equal(pthread_self(), sim.worker)) {
        /* Called from a completion callback: waiting would wait for ourselves. The queued
         * buffers go out as soon as the callback returns. */
        sim_unlock();
        return CUPTI_SUCCESS;
    }
    pthread_cond_signal(&sim.work_cv);
    while (sim.delivered_seq < target && sim.worker_running && !sim.worker_stop)
        pthread_cond_wait(&sim.done_cv, &sim.lock);
    sim_unlock();
    return CUPTI_SUCCESS;
}

void sim_delivery_stop_worker(bool at_exit)
{
    sim_lock();
    if (at_exit)
        shut_down = true;
    if (!sim.worker_running) {
        sim_unlock();
        return;
    }
    if (pthread_equal(pthread_self(), sim.worker)) {
        /* From a completion callback: the thread cannot join itself. Ask it to stop after the
         * callback returns; tfsim_reset() documents that it must not be called from here. */
        sim.worker_stop = true;
        sim_unlock();
        return;
    }
    sim.worker_stop = true;
    pthread_cond_broadcast(&sim.work_cv);
    pthread_cond_broadcast(&sim.done_cv);
    pthread_t w = sim.worker;
    sim_unlock();

    int rc = 0;
    if (at_exit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 2;
        rc = pthread_timedjoin_np(w, NULL, &ts);
        if (rc != 0)
            pthread_detach(w); /* stuck in a client callback; exit must go on */
    } else {
        rc = pthread_join(w, NULL);
    }
    sim_lock();
    sim.worker_running = false;
    /* Whatever the thread did not deliver counts as handled for waiting flushers. */
    sim.delivered_seq = sim.queue_head ? sim.queue_head->seq - 1 : sim.enqueued_seq;
    pthread_cond_broadcast(&sim.done_cv);
    sim_unlock();
}

void sim_delivery_discard_locked(void)
{
    struct sim_buf *lists[2] = {sim.queue_head, sim.spares};
    sim.queue_head = sim.queue_tail = NULL;
    sim.spares = NULL;
    for (int l = 0; l < 2; l++) {
        while (lists[l]) {
            struct sim_buf *b = lists[l];
            lists[l] = b->next;
            free(b);
        }
    }
    for (int i = 0; i < SIM_MAX_SLOTS; i++) {
        free(sim.slots[i].cur);
        sim.slots[i].cur = NULL;
        sim.slots[i].in_use = false;
    }
    sim.slots[0].in_use = true;
    sim.nslots = 1;
    sim.slot_generation++;
    sim.delivered_seq = sim.enqueued_seq;
    pthread_cond_broadcast(&sim.done_cv);
}

void sim_delivery_after_fork_child(void)
{
    /* Buffers the parent's delivery thread had taken are not in the queue and will never be
     * delivered here; count their tickets as done so no flush waits for them. */
    sim.worker_running = false;
    sim.worker_stop = false;
    worker_idle_forever = false;
    sim.delivered_seq = sim.queue_head ? sim.queue_head->seq - 1 : sim.enqueued_seq;
}
