/* SPDX-License-Identifier: Apache-2.0 */
/* The CUPTI simulator's machine: global state and its lock, clocks, interned names, simulated
 * devices and streams, faults, counters, reset, fork and unload handling.
 * Threading and locking rules are in sim_internal.h. */
#define _GNU_SOURCE
#include "sim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct sim_state sim = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .nslots = 1,
    .flush_period_ms = SIM_DEFAULT_FLUSH_PERIOD_MS,
    .per_thread_buffers = true,
};

/* Correlation ids stay unique for the life of the process, across resets, so a record from an
 * earlier test can never be mistaken for a later one. */
static atomic_uint_fast32_t next_correlation = 0;

/* The device of the last API call made on this thread, standing in for CUDA's current context
 * when a CUPTI query passes a NULL context. */
static __thread int current_device = -1;

void sim_lock(void)
{
    pthread_mutex_lock(&sim.lock);
}

void sim_unlock(void)
{
    pthread_mutex_unlock(&sim.lock);
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sim_now(void)
{
    CUpti_TimestampCallbackFunc fn = atomic_load_explicit(&sim.timestamp_cb, memory_order_acquire);
    return fn ? fn() : clock_ns(CLOCK_REALTIME);
}

uint64_t sim_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint32_t sim_next_correlation_id(void)
{
    uint32_t id;
    do {
        id = (uint32_t)atomic_fetch_add(&next_correlation, 1) + 1;
    } while (id == 0); /* 0 means "no correlation" to clients */
    return id;
}

uint32_t sim_thread_id(void)
{
    if (atomic_load_explicit(&sim.thread_id_type, memory_order_relaxed) ==
        CUPTI_ACTIVITY_THREAD_ID_TYPE_SYSTEM)
        return (uint32_t)syscall(SYS_gettid);
    return (uint32_t)pthread_self();
}

bool sim_fault_take_locked(struct sim_count *c)
{
    if (!c->active)
        return false;
    if (c->left > 0 && --c->left == 0)
        c->active = false;
    return true;
}

/* ---- Interned strings ---------------------------------------------------------------------
 * Kernel and device names live in records that clients read after the call that made them has
 * returned, so they are copied once and kept for the life of the process. An open-addressing
 * table keyed by content makes repeated launches of one kernel cost a hash and a compare. */

static pthread_mutex_t intern_lock = PTHREAD_MUTEX_INITIALIZER;
static const char **intern_table;
static size_t intern_cap, intern_count;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool intern_grow_locked(void)
{
    size_t ncap = intern_cap ? intern_cap * 2 : 1024;
    const char **nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return false;
    for (size_t i = 0; i < intern_cap; i++) {
        if (!intern_table[i])
            continue;
        size_t j = hash_str(intern_table[i]) & (ncap - 1);
        while (nt[j])
            j = (j + 1) & (ncap - 1);
        nt[j] = intern_table[i];
    }
    free(intern_table);
    intern_table = nt;
    intern_cap = ncap;
    return true;
}

const char *sim_intern(const char *s)
{
    if (!s)
        return NULL;
    uint64_t h = hash_str(s);
    const char *out = NULL;
    pthread_mutex_lock(&intern_lock);
    if ((intern_count + 1) * 2 > intern_cap && !intern_grow_locked()) {
        pthread_mutex_unlock(&intern_lock);
        return NULL;
    }
    size_t j = h & (intern_cap - 1);
    while (intern_table[j] && strcmp(intern_table[j], s) != 0)
        j = (j + 1) & (intern_cap - 1);
    if (!intern_table[j]) {
        char *copy = strdup(s);
        if (copy) {
            intern_table[j] = copy;
            intern_count++;
        }
    }
    out = intern_table[j];
    pthread_mutex_unlock(&intern_lock);
    return out;
}

/* ---- Devices, contexts and streams -------------------------------------------------------- */

struct sim_device *sim_device_get_locked(int ordinal)
{
    if (ordinal < 0 || ordinal >= sim.ndevices || !sim.devices[ordinal].in_use)
        return NULL;
    return &sim.devices[ordinal];
}

struct sim_stream *sim_stream_get_locked(uint32_t id)
{
    if (id == 0 || id > sim.nstreams || !sim.streams[id - 1].in_use)
        return NULL;
    return &sim.streams[id - 1];
}

/* A CUcontext handle is the address of the device's entry; nothing outside ever dereferences
 * it, and the address range check below tells ours from anything else. */
CUcontext sim_context_handle_of(int ordinal)
{
    return (CUcontext)(void *)&sim.devices[ordinal];
}

int sim_context_to_ordinal(CUcontext ctx)
{
    uintptr_t p = (uintptr_t)(void *)ctx, base = (uintptr_t)&sim.devices[0];
    if (p < base || p >= base + sizeof sim.devices || (p - base) % sizeof sim.devices[0] != 0)
        return -1;
    int ordinal = (int)((p - base) / sizeof sim.devices[0]);
    sim_lock();
    bool ok = sim_device_get_locked(ordinal) != NULL;
    sim_unlock();
    return ok ? ordinal : -1;
}

CUstream sim_stream_handle_of(uint32_t id)
{
    return (CUstream)(void *)&sim.streams[id - 1];
}

void sim_set_current_device(int ordinal)
{
    current_device = ordinal;
}

int sim_current_device(void)
{
    return current_device;
}

static uint32_t stream_create_locked(int device)
{
    if (sim.nstreams >= TFSIM_MAX_STREAMS)
        return 0;
    struct sim_stream *s = &sim.streams[sim.nstreams++];
    s->in_use = true;
    s->id = sim.nstreams;
    s->device = device;
    s->tail = 0;
    return s->id;
}

void sim_fill_device_record(CUpti_ActivityDevice5 *r, const struct sim_device *d)
{
    memset(r, 0, sizeof *r);
    r->kind = CUPTI_ACTIVITY_KIND_DEVICE;
    r->globalMemoryBandwidth = d->desc.memory_bandwidth / 1000u; /* the record holds kB/s */
    r->globalMemorySize = d->desc.global_memory_bytes;
    r->constantMemorySize = 64u * 1024u;
    r->l2CacheSize = 50u * 1024u * 1024u;
    r->numThreadsPerWarp = d->desc.no_occupancy_limits ? 0 : 32;
    r->coreClockRate = d->desc.core_clock_khz;
    r->numMemcpyEngines = 3;
    r->numMultiprocessors = d->desc.sm_count;
    r->maxIPC = 4;
    r->maxWarpsPerMultiprocessor = d->desc.max_warps_per_sm;
    r->maxBlocksPerMultiprocessor = d->desc.max_blocks_per_sm;
    r->maxSharedMemoryPerMultiprocessor = d->desc.smem_per_sm;
    r->maxRegistersPerMultiprocessor = d->desc.regs_per_sm;
    r->maxRegistersPerBlock = 65536;
    r->maxSharedMemoryPerBlock = 48u * 1024u;
    r->maxThreadsPerBlock = 1024;
    r->maxBlockDimX = 1024;
    r->maxBlockDimY = 1024;
    r->maxBlockDimZ = 64;
    r->maxGridDimX = 2147483647u;
    r->maxGridDimY = 65535;
    r->maxGridDimZ = 65535;
    r->computeCapabilityMajor = (uint32_t)d->desc.cc_major;
    r->computeCapabilityMinor = (uint32_t)d->desc.cc_minor;
    r->id = (uint32_t)d->ordinal;
    /* A recognizable, per-device UUID: "tfsim" then the ordinal. */
    memcpy(r->uuid.bytes, "tfsim", 5);
    r->uuid.bytes[15] = (char)d->ordinal;
    r->name = d->name;
    r->isCudaVisible = 1;
    r->gpuInstanceId = 0xFFFFFFFFu;
    r->computeInstanceId = 0xFFFFFFFFu;
}

void sim_fill_context_record(CUpti_ActivityContext3 *r, const struct sim_device *d)
{
    memset(r, 0, sizeof *r);
    r->kind = CUPTI_ACTIVITY_KIND_CONTEXT;
    r->contextId = (uint32_t)d->ordinal + 1;
    r->deviceId = (uint32_t)d->ordinal;
    r->computeApiKind = CUPTI_ACTIVITY_COMPUTE_API_CUDA;
    r->nullStreamId = (uint16_t)d->null_stream;
    r->parentContextId = 0;
    r->numMultiprocessors = (uint16_t)d->desc.sm_count;
    r->cigMode = CUPTI_CONTEXT_CIG_MODE_NONE;
}

/* The occupancy limits of a compute capability, where the description leaves them 0. */
static void occupancy_defaults(struct tfsim_device_desc *d)
{
    if (d->no_occupancy_limits) {
        d->max_warps_per_sm = d->max_blocks_per_sm = d->regs_per_sm = d->smem_per_sm = 0;
        return;
    }
    static const struct {
        int major, minor;
        uint32_t warps, blocks, smem_kib;
    } caps[] = {
        {7, 0, 64, 32, 96}, {7, 5, 32, 16, 64}, {8, 0, 64, 32, 164},
        {8, 6, 48, 16, 100}, {8, 9, 48, 24, 100}, {9, 0, 64, 32, 228},
    };
    size_t i = sizeof caps / sizeof caps[0] - 1; /* anything else: an H100's */
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++)
        if (caps[k].major == d->cc_major && caps[k].minor == d->cc_minor)
            i = k;
    if (!d->max_warps_per_sm)
        d->max_warps_per_sm = caps[i].warps;
    if (!d->max_blocks_per_sm)
        d->max_blocks_per_sm = caps[i].blocks;
    if (!d->regs_per_sm)
        d->regs_per_sm = 65536;
    if (!d->smem_per_sm)
        d->smem_per_sm = caps[i].smem_kib * 1024u;
}

SIM_EXPORT int tfsim_device_add(const struct tfsim_device_desc *in)
{
    struct tfsim_device_desc d = in ? *in : (struct tfsim_device_desc){0};
    if (d.cc_major == 0) {
        d.cc_major = 9;
        d.cc_minor = 0;
    }
    if (!d.sm_count)
        d.sm_count = 132;
    if (!d.global_memory_bytes)
        d.global_memory_bytes = 80ull << 30;
    if (!d.memory_bandwidth)
        d.memory_bandwidth = 3350000000000ull;
    if (!d.host_link_bandwidth)
        d.host_link_bandwidth = 25000000000ull;
    if (!d.core_clock_khz)
        d.core_clock_khz = 1980000;
    occupancy_defaults(&d);
    const char *name = sim_intern(d.name ? d.name : "Simulated GPU");
    d.name = name;

    sim_lock();
    if (sim.ndevices >= TFSIM_MAX_DEVICES) {
        sim_unlock();
        return -1;
    }
    int ordinal = sim.ndevices;
    struct sim_device *dev = &sim.devices[ordinal];
    memset(dev, 0, sizeof *dev);
    dev->in_use = true;
    dev->ordinal = ordinal;
    dev->name = name;
    dev->desc = d;
    sim.ndevices++;
    dev->null_stream = stream_create_locked(ordinal);
    CUpti_ActivityDevice5 drec;
    CUpti_ActivityContext3 crec;
    sim_fill_device_record(&drec, dev);
    sim_fill_context_record(&crec, dev);
    sim_unlock();

    /* Like CUDA initialization with CUPTI attached: callbacks first, then the records. */
    sim_fire_resource(CUPTI_CBID_RESOURCE_CONTEXT_CREATED, ordinal, 0);
    if (sim_kind_on(CUPTI_ACTIVITY_KIND_DEVICE))
        sim_emit(&drec, sizeof drec);
    if (sim_kind_on(CUPTI_ACTIVITY_KIND_CONTEXT))
        sim_emit(&crec, sizeof crec);
    return ordinal;
}

SIM_EXPORT int tfsim_device_count(void)
{
    sim_lock();
    int n = sim.ndevices;
    sim_unlock();
    return n;
}

SIM_EXPORT uint32_t tfsim_stream_create(int device)
{
    sim_lock();
    uint32_t id = sim_device_get_locked(device) ? stream_create_locked(device) : 0;
    sim_unlock();
    if (id)
        sim_fire_resource(CUPTI_CBID_RESOURCE_STREAM_CREATED, device, id);
    return id;
}

SIM_EXPORT uint32_t tfsim_null_stream(int device)
{
    sim_lock();
    struct sim_device *d = sim_device_get_locked(device);
    uint32_t id = d ? d->null_stream : 0;
    sim_unlock();
    return id;
}

SIM_EXPORT int tfsim_stream_device(uint32_t stream)
{
    sim_lock();
    struct sim_stream *s = sim_stream_get_locked(stream);
    int dev = s ? s->device : -1;
    sim_unlock();
    return dev;
}

SIM_EXPORT void *tfsim_context_handle(int device)
{
    sim_lock();
    bool ok = sim_device_get_locked(device) != NULL;
    sim_unlock();
    return ok ? (void *)sim_context_handle_of(device) : NULL;
}

SIM_EXPORT void *tfsim_stream_handle(uint32_t stream)
{
    sim_lock();
    bool ok = sim_stream_get_locked(stream) != NULL;
    sim_unlock();
    return ok ? (void *)sim_stream_handle_of(stream) : NULL;
}

/* ---- Faults and counters ------------------------------------------------------------------ */

SIM_EXPORT int tfsim_inject(enum tfsim_fault f, uint64_t arg)
{
    int rc = 0;
    sim_lock();
    switch (f) {
    case TFSIM_FAULT_NO_GPU:
        sim.fault_no_gpu = true;
        break;
    case TFSIM_FAULT_INSUFFICIENT_PRIVILEGES:
        sim.fault_no_privileges = true;
        break;
    case TFSIM_FAULT_MULTIPLE_SUBSCRIBERS:
        sim.fault_multiple_subscribers = true;
        break;
    case TFSIM_FAULT_DROP_RECORDS:
        sim.fault_drop = (struct sim_count){.active = true, .left = arg};
        break;
    case TFSIM_FAULT_REFUSE_BUFFER:
        sim.fault_refuse = (struct sim_count){.active = true, .left = arg};
        break;
    case TFSIM_FAULT_ZERO_TIMESTAMPS:
        sim.fault_zero_ts = (struct sim_count){.active = true, .left = arg};
        break;
    default:
        rc = -1;
    }
    sim_unlock();
    return rc;
}

static void fault_clear_locked(void)
{
    sim.fault_no_gpu = false;
    sim.fault_no_privileges = false;
    sim.fault_multiple_subscribers = false;
    sim.fault_drop = (struct sim_count){0};
    sim.fault_refuse = (struct sim_count){0};
    sim.fault_zero_ts = (struct sim_count){0};
}

SIM_EXPORT void tfsim_fault_clear(void)
{
    sim_lock();
    fault_clear_locked();
    sim_unlock();
}

SIM_EXPORT void tfsim_stats(struct tfsim_stats *out)
{
    if (!out)
        return;
    out->records_produced = atomic_load(&sim.stats.records_produced);
    out->records_delivered = atomic_load(&sim.stats.records_delivered);
    out->records_dropped = atomic_load(&sim.stats.records_dropped);
    out->buffers_requested = atomic_load(&sim.stats.buffers_requested);
    out->buffers_refused = atomic_load(&sim.stats.buffers_refused);
    out->buffers_completed = atomic_load(&sim.stats.buffers_completed);
    out->api_callbacks = atomic_load(&sim.stats.api_callbacks);
}

/* ---- Reset, fork and unload --------------------------------------------------------------- */

SIM_EXPORT void tfsim_reset(void)
{
    /* The delivery thread is stopped first so no completion callback can run while the state
     * it reads is torn down; it is restarted on demand. */
    sim_delivery_stop_worker(false);
    sim_lock();
    sim_delivery_discard_locked();
    memset(sim.devices, 0, sizeof sim.devices);
    sim.ndevices = 0;
    memset(sim.streams, 0, sizeof sim.streams);
    sim.nstreams = 0;
    for (int k = 0; k < CUPTI_ACTIVITY_KIND_COUNT; k++)
        atomic_store(&sim.kind_on[k], 0);
    atomic_store(&sim.timestamp_cb, NULL);
    atomic_store(&sim.thread_id_type, CUPTI_ACTIVITY_THREAD_ID_TYPE_DEFAULT);
    sim.request_cb = NULL;
    sim.complete_cb = NULL;
    sim.flush_period_ms = SIM_DEFAULT_FLUSH_PERIOD_MS;
    sim.per_thread_buffers = true;
    sim.client_zeroes_buffers = false;
    memset(sim.attr_values, 0, sizeof sim.attr_values);
    sim.dropped_unread = 0;
    sim_callbacks_reset_locked();
    sim_memory_reset_locked();
    fault_clear_locked();
    atomic_store(&sim.stats.records_produced, 0);
    atomic_store(&sim.stats.records_delivered, 0);
    atomic_store(&sim.stats.records_dropped, 0);
    atomic_store(&sim.stats.buffers_requested, 0);
    atomic_store(&sim.stats.buffers_refused, 0);
    atomic_store(&sim.stats.buffers_completed, 0);
    atomic_store(&sim.stats.api_callbacks, 0);
    sim.worker_stop = false;
    sim_unlock();
}

/* Fork: the child has only the forking thread, so the delivery thread is gone. Both locks are
 * taken around fork so the child never inherits one mid-update; the child then forgets the
 * worker (a new one starts on demand) so a flush there cannot wait for a thread that does not
 * exist (the hang HPCToolkit saw with real CUPTI). */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&intern_lock);
    pthread_mutex_lock(&sim.lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&sim.lock);
    pthread_mutex_unlock(&intern_lock);
}

static void atfork_child(void)
{
    sim_delivery_after_fork_child();
    pthread_mutex_unlock(&sim.lock);
    pthread_mutex_unlock(&intern_lock);
}

static atomic_bool finalized;

/* libcupti's teardown may be an exit handler it registers as it loads (C++ static objects), or
 * its ELF destructor; either way a client that flushes at exit must do it before. Both are
 * modelled: this handler, registered by the constructor, and sim_fini. */
static void sim_teardown_at_exit(void)
{
    atomic_store(&finalized, true);
}

__attribute__((constructor)) static void sim_init(void)
{
    /* Condition waits use CLOCK_MONOTONIC so a wall-clock step cannot stall delivery. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sim.work_cv, &ca);
    pthread_cond_init(&sim.done_cv, &ca);
    pthread_condattr_destroy(&ca);
    sim.slots[0].in_use = true;
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    atexit(sim_teardown_at_exit);
}

void sim_check_alive(const char *fn)
{
    if (!atomic_load(&finalized))
        return;
    fprintf(stderr, "cupti_sim: %s was called after libcupti was torn down at exit; the real "
                    "libcupti crashes here (call it from an exit handler registered after it loaded)\n",
            fn);
    abort();
}

__attribute__((destructor)) static void sim_fini(void)
{
    atomic_store(&finalized, true);
    /* At unload or exit the delivery thread must not outlive the code it runs; a client
     * callback that never returns must not hang exit either, so the join is bounded there. */
    sim_delivery_stop_worker(true);
}
