/* SPDX-License-Identifier: Apache-2.0 */
/* Internal state shared by the CUPTI simulator's files; nothing here is exported.
 *
 * Threading and locking (the whole simulator follows these rules):
 * - One mutex, sim.lock, guards all mutable state below unless a field says otherwise
 *   (atomics are read without it on hot paths). It is never held while calling client code:
 *   API callbacks, buffer request and completion callbacks and the timestamp callback all run
 *   with no simulator lock held, so they may call back into any CUPTI entry point.
 * - sim.work_cv wakes the delivery thread; sim.done_cv wakes flushers waiting for delivery.
 * - Interned strings have their own mutex (sim_core.c) so they can be made without sim.lock.
 * - The delivery thread owns a buffer from the moment it takes it off the queue until the
 *   completion callback returns; producers own nothing: they write into the current buffer of
 *   their slot while holding sim.lock. */
#ifndef TFPROF_TESTS_CUPTI_SIM_INTERNAL_H
#define TFPROF_TESTS_CUPTI_SIM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The CUPTI declarations get default visibility so that the definitions in this library are
 * exported although it is built with -fvisibility=hidden; everything else stays hidden. */
#pragma GCC visibility push(default)
#include <cupti.h>
#pragma GCC visibility pop

#include "cupti_sim.h"

#define SIM_EXPORT __attribute__((visibility("default")))

/* Records are placed at 8-byte aligned offsets, like CUPTI's. */
#define SIM_ALIGN(n) (((n) + 7u) & ~(size_t)7u)

/* Buffer slots: slot 0 is shared (CUPTI_ACTIVITY_ATTR_PER_THREAD_ACTIVITY_BUFFER = 0, or when
 * more threads than slots have produced records); every other slot belongs to one thread. */
#define SIM_MAX_SLOTS 1024

/* Largest callback id kept per domain; static asserts in sim_callbacks.c check the headers. */
#define SIM_MAX_CBID 1024

/* Default age after which the delivery thread hands over a partially filled buffer. */
#define SIM_DEFAULT_FLUSH_PERIOD_MS 10u

/* One client buffer while the simulator holds it. */
struct sim_buf {
    struct sim_buf *next;
    uint8_t *data;
    size_t size;          /* as the client gave it */
    size_t used;          /* bytes of records written */
    size_t max_records;   /* 0: as many as fit */
    size_t nrec;
    uint64_t first_mono;  /* CLOCK_MONOTONIC ns of the first record, for aging */
    uint64_t seq;         /* delivery ticket, set when queued */
};

struct sim_slot {
    struct sim_buf *cur;
    bool in_use;
};

struct sim_device {
    bool in_use;
    int ordinal;
    const char *name; /* interned */
    struct tfsim_device_desc desc;
    uint32_t null_stream;
};

struct sim_stream {
    bool in_use;
    uint32_t id;
    int device;
    uint64_t tail; /* end of the last work queued on it, simulated time */
};

/* A fault that strikes a number of times; left == 0 with active set means until cleared. */
struct sim_count {
    bool active;
    uint64_t left;
};

struct sim_stats_atomic {
    atomic_uint_fast64_t records_produced, records_delivered, records_dropped;
    atomic_uint_fast64_t buffers_requested, buffers_refused, buffers_completed, api_callbacks;
};

struct sim_state {
    pthread_mutex_t lock;
    pthread_cond_t work_cv;
    pthread_cond_t done_cv;

    /* The simulated machine. Handles given out (CUcontext, CUstream) point into these arrays. */
    struct sim_device devices[TFSIM_MAX_DEVICES];
    int ndevices;
    struct sim_stream streams[TFSIM_MAX_STREAMS]; /* stream id = index + 1 */
    uint32_t nstreams;

    /* Activity API configuration. kind_on and timestamp_cb are read without the lock. */
    atomic_uchar kind_on[CUPTI_ACTIVITY_KIND_COUNT];
    _Atomic(CUpti_TimestampCallbackFunc) timestamp_cb;
    atomic_int thread_id_type;
    CUpti_BuffersCallbackRequestFunc request_cb;
    CUpti_BuffersCallbackCompleteFunc complete_cb;
    uint32_t flush_period_ms;
    bool per_thread_buffers;
    bool client_zeroes_buffers; /* CUPTI_ACTIVITY_ATTR_ZEROED_OUT_ACTIVITY_BUFFER */
    uint64_t attr_values[CUPTI_ACTIVITY_ATTR_DEVICE_BUFFER_SIZE_DEVICE_GRAPHS + 1];

    /* Buffers: each slot's current buffer, spare empty buffers, and the delivery queue. */
    struct sim_slot slots[SIM_MAX_SLOTS];
    int nslots;
    uint64_t slot_generation; /* bumped by reset so threads pick new slots */
    struct sim_buf *spares;
    struct sim_buf *queue_head, *queue_tail;
    uint64_t enqueued_seq;  /* ticket of the last queued buffer */
    uint64_t delivered_seq; /* every ticket up to this one has been delivered or discarded */
    uint64_t dropped_unread; /* for cuptiActivityGetNumDroppedRecords */

    /* The delivery thread. */
    pthread_t worker;
    bool worker_running;
    bool worker_stop;

    /* Callback API: one subscriber. */
    bool subscribed;
    CUpti_CallbackFunc sub_cb;
    void *sub_userdata;
    char sub_name[64];
    atomic_uchar cb_on[CUPTI_CB_DOMAIN_SIZE][SIM_MAX_CBID];

    /* Faults. */
    bool fault_no_gpu;
    bool fault_no_privileges;
    bool fault_multiple_subscribers;
    struct sim_count fault_drop;
    struct sim_count fault_refuse;
    struct sim_count fault_zero_ts;

    struct sim_stats_atomic stats;
};

extern struct sim_state sim;

/* sim_core.c */
void sim_lock(void);
void sim_unlock(void);
uint64_t sim_now(void);      /* CUPTI timestamp: the client's clock or CLOCK_REALTIME */
uint64_t sim_mono_ns(void);  /* CLOCK_MONOTONIC, for delivery timing only */
const char *sim_intern(const char *s);
uint32_t sim_next_correlation_id(void);
uint32_t sim_thread_id(void); /* as CUpti_ActivityAPI.threadId, honouring the thread id type */
bool sim_fault_take_locked(struct sim_count *c);
static inline bool sim_kind_on(CUpti_ActivityKind k)
{
    return (unsigned)k < CUPTI_ACTIVITY_KIND_COUNT &&
           atomic_load_explicit(&sim.kind_on[k], memory_order_relaxed);
}
struct sim_device *sim_device_get_locked(int ordinal);
struct sim_stream *sim_stream_get_locked(uint32_t id);
int sim_context_to_ordinal(CUcontext ctx); /* -1 when not one of ours */
CUcontext sim_context_handle_of(int ordinal);
CUstream sim_stream_handle_of(uint32_t id);
void sim_set_current_device(int ordinal); /* per thread, for NULL-context queries */
int sim_current_device(void);
void sim_fill_device_record(CUpti_ActivityDevice5 *r, const struct sim_device *d);
void sim_fill_context_record(CUpti_ActivityContext3 *r, const struct sim_device *d);

/* sim_delivery.c */
void sim_emit(const void *rec, size_t size);
CUptiResult sim_flush_all(uint32_t flag);
void sim_delivery_stop_worker(bool at_exit);      /* joins the delivery thread */
/* Like the real libcupti, the simulator is unusable once its destructor has run (at exit, for a
 * library loaded after the caller): these entry points then abort with a message saying who
 * called them, where the real library crashes (seen on an H200: cuptiActivityDisable, SIGSEGV). */
void sim_check_alive(const char *fn);
void sim_delivery_discard_locked(void);           /* drops every held buffer */
void sim_delivery_after_fork_child(void);

/* sim_callbacks.c: one simulated API call, ENTER then EXIT on the calling thread. */
struct sim_api_call {
    CUpti_CallbackDomain domain;
    CUpti_CallbackId cbid;
    const char *function_name;
    const char *symbol_name;
    const void *params;
    int device;
    uint32_t correlation_id;
    uint64_t start, end;         /* API record times */
    uint64_t correlation_data;   /* the slot carried from ENTER to EXIT */
    int return_value;            /* cudaError_t / CUresult, always success */
    CUpti_CallbackFunc cb;       /* snapshot at ENTER, NULL when not enabled */
    void *userdata;
};
void sim_api_enter(struct sim_api_call *c);
void sim_api_exit(struct sim_api_call *c);
void sim_fire_resource(CUpti_CallbackId cbid, int device, uint32_t stream);
void sim_fire_synchronize(CUpti_CallbackId cbid, int device, uint32_t stream);
const char *sim_default_function_name(CUpti_CallbackDomain domain, CUpti_CallbackId cbid);
void sim_callbacks_reset_locked(void);

/* sim_memory.c */
void sim_memory_reset_locked(void); /* forgets every live allocation and pool */

/* sim_iterator.c */
size_t sim_record_size(uint32_t kind); /* 0 for kinds the simulator does not know */
void sim_iterator_preload(void);       /* opens the real libcupti now rather than mid-callback */

#endif /* TFPROF_TESTS_CUPTI_SIM_INTERNAL_H */
