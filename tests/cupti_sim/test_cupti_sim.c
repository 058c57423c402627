/* SPDX-License-Identifier: Apache-2.0 */
/* Self-test of the CUPTI simulator: a small CUPTI client that opens the simulator by path and
 * resolves the CUPTI functions with dlsym, as tfprof does, while driving the simulated GPU
 * through the linked tfsim_ API. Checks delivery (exactly once, off the launching thread, out of
 * order), callbacks, stream timelines, every fault, and record layouts against the real
 * libcupti iterator where one is installed. Checks made on other threads are counted and
 * asserted on the main thread, because cmocka's asserts are not thread-safe. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cupti.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cupti_sim.h"

#ifndef TFSIM_LIBRARY_PATH
#error "TFSIM_LIBRARY_PATH must name libtfprof_cupti_sim.so"
#endif

/* ---- The CUPTI function table, resolved by name like tfprof's loader ---------------------- */

#define CUPTI_FUNCS(X)                   \
    X(cuptiGetVersion)                   \
    X(cuptiGetResultString)              \
    X(cuptiGetTimestamp)                 \
    X(cuptiActivityRegisterCallbacks)    \
    X(cuptiActivityEnable)               \
    X(cuptiActivityEnableAndDump)        \
    X(cuptiActivityDisable)              \
    X(cuptiActivityFlushAll)             \
    X(cuptiActivityFlushPeriod)          \
    X(cuptiActivityGetNextRecord)        \
    X(cuptiActivityGetNumDroppedRecords) \
    X(cuptiActivityRegisterTimestampCallback) \
    X(cuptiActivityPushExternalCorrelationId) \
    X(cuptiActivityPopExternalCorrelationId)  \
    X(cuptiSubscribe)                    \
    X(cuptiSubscribe_v2)                 \
    X(cuptiUnsubscribe)                  \
    X(cuptiEnableCallback)               \
    X(cuptiEnableDomain)                 \
    X(cuptiFinalize)                     \
    X(cuptiGetContextId)                 \
    X(cuptiGetDeviceId)                  \
    X(cuptiGetStreamId)

static struct {
    void *handle;
#define DECLARE(f) __typeof__(&f) f;
    CUPTI_FUNCS(DECLARE)
#undef DECLARE
} api;

static void load_cupti(void)
{
    api.handle = dlopen(TFSIM_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!api.handle) {
        fprintf(stderr, "dlopen %s: %s\n", TFSIM_LIBRARY_PATH, dlerror());
        exit(1);
    }
#define RESOLVE(f)                                                 \
    api.f = (__typeof__(&f))dlsym(api.handle, #f);                 \
    if (!api.f) {                                                  \
        fprintf(stderr, "missing %s in the simulator\n", #f);      \
        exit(1);                                                   \
    }
    CUPTI_FUNCS(RESOLVE)
#undef RESOLVE
}

/* ---- Client state ------------------------------------------------------------------------- */

#define MAX_LAUNCHERS 8
#define MAX_CB 200000
#define CORR_MAGIC 0xC0FFEE0000000000ull

struct rec {
    uint32_t kind;
    uint32_t corr;
    uint64_t start, end;
    uint32_t stream, device, context;
    const char *name;
    union {
        CUpti_ActivityKernel10 kernel;
        CUpti_ActivityMemcpy6 memcpy;
        CUpti_ActivityMemcpyPtoP4 p2p;
        CUpti_ActivityMemset4 memset;
        CUpti_ActivityDevice5 device;
        CUpti_ActivityContext3 ctx;
        CUpti_ActivitySynchronization2 sync;
        CUpti_ActivityOverhead3 overhead;
        CUpti_ActivityAPI api;
        CUpti_ActivityExternalCorrelation ext;
    } raw;
};

struct cbrec {
    uint32_t domain, cbid, site, corr, ctx_uid;
    const char *fn, *sym;
    pthread_t thread;
    uint64_t stream_from_params; /* stream id looked up from the params' stream handle */
};

static struct client {
    pthread_mutex_t mu;
    size_t buf_size;
    size_t max_records;
    bool refuse;
    bool keep_records;
    unsigned sleep_ms_in_complete;
    bool reenter_in_complete;

    pthread_t launchers[MAX_LAUNCHERS];
    int nlaunchers;
    pthread_t main_thread;

    atomic_uint_fast64_t requested, completed, records, bad_request_thread, bad_complete_thread;
    atomic_uint_fast64_t out_of_order_buffers, multi_record_buffers, iter_errors;
    atomic_uint_fast64_t reentered, dropped_seen_in_cb, complete_flag;
    atomic_uint_fast64_t kinds[CUPTI_ACTIVITY_KIND_COUNT];

    struct rec *recs;
    size_t nrecs, cap;

    /* Buffers handed to the simulator and not yet returned, so a test that makes the
     * simulator discard them can free them. */
    uint8_t *outstanding[4096];
    size_t noutstanding;

    struct cbrec *cbs;
    size_t ncbs;
    atomic_uint_fast64_t corr_data_mismatch;
} C = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool is_launcher(pthread_t t)
{
    for (int i = 0; i < C.nlaunchers; i++)
        if (pthread_equal(C.launchers[i], t))
            return true;
    return false;
}

static void client_reset(void)
{
    free(C.recs);
    free(C.cbs);
    pthread_mutex_t mu = C.mu;
    memset(&C, 0, sizeof C);
    C.mu = mu;
    C.buf_size = 64 * 1024;
    C.keep_records = true;
    C.main_thread = pthread_self();
    C.cbs = calloc(MAX_CB, sizeof *C.cbs);
}

static void CUPTIAPI on_request(uint8_t **buffer, size_t *size, size_t *max_records)
{
    pthread_t self = pthread_self();
    if (C.nlaunchers && !is_launcher(self))
        atomic_fetch_add(&C.bad_request_thread, 1);
    if (C.refuse) {
        *buffer = NULL;
        *size = 0;
        return;
    }
    *buffer = aligned_alloc(8, C.buf_size);
    *size = C.buf_size;
    *max_records = C.max_records;
    atomic_fetch_add(&C.requested, 1);
    pthread_mutex_lock(&C.mu);
    if (C.noutstanding < sizeof C.outstanding / sizeof C.outstanding[0])
        C.outstanding[C.noutstanding++] = *buffer;
    pthread_mutex_unlock(&C.mu);
}

static void store_record(const CUpti_Activity *r)
{
    struct rec x = {.kind = r->kind};
    switch (r->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        const CUpti_ActivityKernel10 *k = (const void *)r;
        x.corr = k->correlationId;
        x.start = k->start;
        x.end = k->end;
        x.stream = k->streamId;
        x.device = k->deviceId;
        x.context = k->contextId;
        x.name = k->name;
        x.raw.kernel = *k;
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const CUpti_ActivityMemcpy6 *m = (const void *)r;
        x.corr = m->correlationId;
        x.start = m->start;
        x.end = m->end;
        x.stream = m->streamId;
        x.device = m->deviceId;
        x.context = m->contextId;
        x.raw.memcpy = *m;
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY2: {
        const CUpti_ActivityMemcpyPtoP4 *m = (const void *)r;
        x.corr = m->correlationId;
        x.start = m->start;
        x.end = m->end;
        x.stream = m->streamId;
        x.device = m->deviceId;
        x.context = m->contextId;
        x.raw.p2p = *m;
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
        const CUpti_ActivityMemset4 *m = (const void *)r;
        x.corr = m->correlationId;
        x.start = m->start;
        x.end = m->end;
        x.stream = m->streamId;
        x.device = m->deviceId;
        x.context = m->contextId;
        x.raw.memset = *m;
        break;
    }
    case CUPTI_ACTIVITY_KIND_DEVICE:
        x.raw.device = *(const CUpti_ActivityDevice5 *)(const void *)r;
        x.name = x.raw.device.name;
        break;
    case CUPTI_ACTIVITY_KIND_CONTEXT:
        x.raw.ctx = *(const CUpti_ActivityContext3 *)(const void *)r;
        break;
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION:
        x.raw.sync = *(const CUpti_ActivitySynchronization2 *)(const void *)r;
        x.corr = x.raw.sync.correlationId;
        x.start = x.raw.sync.start;
        x.end = x.raw.sync.end;
        x.stream = x.raw.sync.streamId;
        break;
    case CUPTI_ACTIVITY_KIND_OVERHEAD:
        x.raw.overhead = *(const CUpti_ActivityOverhead3 *)(const void *)r;
        break;
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_DRIVER:
        x.raw.api = *(const CUpti_ActivityAPI *)(const void *)r;
        x.corr = x.raw.api.correlationId;
        break;
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION:
        x.raw.ext = *(const CUpti_ActivityExternalCorrelation *)(const void *)r;
        x.corr = x.raw.ext.correlationId;
        break;
    default:
        break;
    }
    if (C.nrecs == C.cap) {
        C.cap = C.cap ? C.cap * 2 : 4096;
        C.recs = realloc(C.recs, C.cap * sizeof *C.recs);
    }
    C.recs[C.nrecs++] = x;
}

static void CUPTIAPI on_complete(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size,
                                 size_t valid)
{
    (void)ctx;
    (void)stream;
    (void)size;
    pthread_t self = pthread_self();
    if (pthread_equal(self, C.main_thread) || is_launcher(self))
        atomic_fetch_add(&C.bad_complete_thread, 1);
    if (C.sleep_ms_in_complete)
        usleep(C.sleep_ms_in_complete * 1000u);
    if (C.reenter_in_complete) {
        /* A client may query drops, iterate and even flush from here without deadlocking. */
        size_t dropped = 0;
        if (api.cuptiActivityGetNumDroppedRecords(NULL, 0, &dropped) == CUPTI_SUCCESS)
            atomic_fetch_add(&C.dropped_seen_in_cb, dropped);
        if (api.cuptiActivityFlushAll(0) == CUPTI_SUCCESS)
            atomic_fetch_add(&C.reentered, 1);
    }
    CUpti_Activity *r = NULL;
    CUptiResult st;
    uint32_t last_corr = 0, n = 0;
    bool ordered = true;
    pthread_mutex_lock(&C.mu);
    while ((st = api.cuptiActivityGetNextRecord(buffer, valid, &r)) == CUPTI_SUCCESS) {
        n++;
        atomic_fetch_add(&C.records, 1);
        if (r->kind < CUPTI_ACTIVITY_KIND_COUNT)
            atomic_fetch_add(&C.kinds[r->kind], 1);
        if (r->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
            uint32_t corr = ((const CUpti_ActivityKernel10 *)(const void *)r)->correlationId;
            if (corr < last_corr)
                ordered = false;
            last_corr = corr;
        }
        if (C.keep_records)
            store_record(r);
    }
    for (size_t i = 0; i < C.noutstanding; i++) {
        if (C.outstanding[i] == buffer) {
            C.outstanding[i] = C.outstanding[--C.noutstanding];
            break;
        }
    }
    pthread_mutex_unlock(&C.mu);
    if (st != CUPTI_ERROR_MAX_LIMIT_REACHED)
        atomic_fetch_add(&C.iter_errors, 1);
    if (n > 1) {
        atomic_fetch_add(&C.multi_record_buffers, 1);
        if (!ordered)
            atomic_fetch_add(&C.out_of_order_buffers, 1);
    }
    free(buffer);
    atomic_fetch_add(&C.completed, 1);
    atomic_store(&C.complete_flag, 1);
}

static void CUPTIAPI on_callback(void *userdata, CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
                                 const void *data)
{
    (void)userdata;
    struct cbrec x = {.domain = domain, .cbid = cbid, .thread = pthread_self()};
    if (domain == CUPTI_CB_DOMAIN_RUNTIME_API || domain == CUPTI_CB_DOMAIN_DRIVER_API) {
        const CUpti_CallbackData *d = data;
        x.site = d->callbackSite;
        x.corr = d->correlationId;
        x.ctx_uid = d->contextUid;
        x.fn = d->functionName;
        x.sym = d->symbolName;
        if (d->callbackSite == CUPTI_API_ENTER)
            *d->correlationData = CORR_MAGIC | d->correlationId;
        else if (*d->correlationData != (CORR_MAGIC | d->correlationId))
            atomic_fetch_add(&C.corr_data_mismatch, 1);
        /* Launch parameters carry the stream handle; map it back through CUPTI. */
        CUstream s = NULL;
        if (domain == CUPTI_CB_DOMAIN_RUNTIME_API &&
            cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000)
            s = ((const cudaLaunchKernel_v7000_params *)d->functionParams)->stream;
        else if (domain == CUPTI_CB_DOMAIN_DRIVER_API &&
                 cbid == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel)
            s = ((const cuLaunchKernel_params *)d->functionParams)->hStream;
        else if (domain == CUPTI_CB_DOMAIN_RUNTIME_API &&
                 cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060)
            s = ((const cudaLaunchKernelExC_v11060_params *)d->functionParams)->config->stream;
        uint32_t sid = 0;
        if (s && api.cuptiGetStreamId(d->context, s, &sid) == CUPTI_SUCCESS)
            x.stream_from_params = sid;
    }
    pthread_mutex_lock(&C.mu);
    if (C.ncbs < MAX_CB)
        C.cbs[C.ncbs++] = x;
    pthread_mutex_unlock(&C.mu);
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void enable_kinds(const CUpti_ActivityKind *kinds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(api.cuptiActivityEnable(kinds[i]), CUPTI_SUCCESS);
}

static void start_activity(void)
{
    assert_int_equal(api.cuptiActivityRegisterCallbacks(on_request, on_complete), CUPTI_SUCCESS);
    CUpti_ActivityKind k[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                              CUPTI_ACTIVITY_KIND_MEMSET};
    enable_kinds(k, 3);
}

static CUpti_SubscriberHandle subscribe_launches(void)
{
    CUpti_SubscriberHandle sub = NULL;
    assert_int_equal(api.cuptiSubscribe(&sub, on_callback, NULL), CUPTI_SUCCESS);
    assert_non_null(sub);
    assert_int_equal(api.cuptiEnableCallback(1, sub, CUPTI_CB_DOMAIN_RUNTIME_API,
                                             CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000),
                     CUPTI_SUCCESS);
    return sub;
}

static void flush(void)
{
    assert_int_equal(api.cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), CUPTI_SUCCESS);
}

static size_t count_kind(uint32_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < C.nrecs; i++)
        n += C.recs[i].kind == kind;
    return n;
}

static const struct rec *find_rec(uint32_t kind, uint32_t corr)
{
    for (size_t i = 0; i < C.nrecs; i++)
        if (C.recs[i].kind == kind && C.recs[i].corr == corr)
            return &C.recs[i];
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    tfsim_reset();
    client_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tfsim_reset();
    return 0;
}

/* ---- Basics ------------------------------------------------------------------------------- */

static void test_same_instance(void **state)
{
    (void)state;
    /* tfprof's dlopen by path and the test's link must share one simulator. */
    assert_ptr_equal(dlsym(api.handle, "tfsim_stats"), (void *)tfsim_stats);
    assert_ptr_equal(dlsym(api.handle, "cuptiActivityEnable"), (void *)cuptiActivityEnable);
    printf("record iterator: %s%s\n", tfsim_using_real_iterator() ? "real libcupti at " : "simulator's own",
           tfsim_using_real_iterator() ? tfsim_real_cupti_path() : "");
    /* Where the toolkit's libcupti of this API version is installed, it must be the one used. */
    const char *env = getenv("TFSIM_REAL_CUPTI");
    void *real = (env && *env) ? NULL : dlopen("/usr/local/cuda/lib64/libcupti.so.13", RTLD_NOW | RTLD_LOCAL);
    if (real) {
        __typeof__(&cuptiGetVersion) ver = (__typeof__(&cuptiGetVersion))dlsym(real, "cuptiGetVersion");
        uint32_t v = 0;
        if (ver && ver(&v) == CUPTI_SUCCESS && v == CUPTI_API_VERSION)
            assert_true(tfsim_using_real_iterator());
    }
    if (env && strcmp(env, "none") == 0)
        assert_false(tfsim_using_real_iterator());
}

static void test_version_strings_timestamp(void **state)
{
    (void)state;
    uint32_t v = 0;
    assert_int_equal(api.cuptiGetVersion(&v), CUPTI_SUCCESS);
    assert_int_equal(v, CUPTI_API_VERSION);
    const char *s = NULL;
    assert_int_equal(api.cuptiGetResultString(CUPTI_ERROR_UNKNOWN, &s), CUPTI_SUCCESS);
    assert_string_equal(s, "CUPTI_ERROR_UNKNOWN");
    assert_int_equal(api.cuptiGetResultString(CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED, &s),
                     CUPTI_SUCCESS);
    assert_string_equal(s, "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED");
    assert_int_equal(api.cuptiGetResultString((CUptiResult)-5, &s), CUPTI_ERROR_INVALID_PARAMETER);
    uint64_t before = realtime_ns(), t = 0;
    assert_int_equal(api.cuptiGetTimestamp(&t), CUPTI_SUCCESS);
    uint64_t after = realtime_ns();
    assert_true(t >= before && t <= after);
    size_t dropped = 99;
    assert_int_equal(api.cuptiActivityGetNumDroppedRecords(NULL, 0, &dropped), CUPTI_SUCCESS);
    assert_int_equal(dropped, 0);
    assert_int_equal(api.cuptiActivityGetNumDroppedRecords(NULL, 0, NULL),
                     CUPTI_ERROR_INVALID_PARAMETER);
    assert_int_equal(api.cuptiActivityEnable(CUPTI_ACTIVITY_KIND_INVALID), CUPTI_ERROR_INVALID_KIND);
    /* Flushing before registering buffer callbacks is an invalid operation. */
    assert_int_equal(api.cuptiActivityFlushAll(0), CUPTI_ERROR_INVALID_OPERATION);
}

static uint64_t fake_clock;
static uint64_t CUPTIAPI my_clock(void)
{
    return __atomic_add_fetch(&fake_clock, 1000, __ATOMIC_RELAXED);
}

static void test_timestamp_callback(void **state)
{
    (void)state;
    fake_clock = 1000000;
    assert_int_equal(api.cuptiActivityRegisterTimestampCallback(my_clock), CUPTI_SUCCESS);
    start_activity();
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    uint32_t corr = tfsim_launch_kernel(s, "k", (struct tfsim_dim3){1, 1, 1},
                                        (struct tfsim_dim3){1, 1, 1}, 100);
    uint64_t t = 0;
    assert_int_equal(api.cuptiGetTimestamp(&t), CUPTI_SUCCESS);
    assert_true(t > 1000000 && t < 2000000);
    flush();
    const struct rec *k = find_rec(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, corr);
    assert_non_null(k);
    assert_true(k->start > 1000000 && k->start < 2000000 + TFSIM_LAUNCH_LATENCY_NS);
    assert_int_equal(k->end - k->start, 100);
}

/* ---- End to end: 2 devices x 3 streams, 2 launching threads ------------------------------ */

#define E2E_PER_THREAD 3000
#define E2E_THREADS 2

struct launched {
    uint32_t corr;
    uint32_t kind;
    uint32_t stream;
    uint32_t duration;
    const char *name;
    struct tfsim_dim3 grid, block;
};

struct launcher_arg {
    int t;
    uint32_t streams[6];
    struct launched *out;
    pthread_barrier_t *go;
};

static void *launcher(void *p)
{
    struct launcher_arg *a = p;
    static const char *names[E2E_THREADS] = {"_Z6kernelILi0EEvPf", "_Z6kernelILi1EEvPf"};
    pthread_barrier_wait(a->go);
    for (int i = 0; i < E2E_PER_THREAD; i++) {
        struct launched *l = &a->out[i];
        l->stream = a->streams[(i + a->t) % 6];
        l->duration = 200 + (uint32_t)(i % 7) * 100;
        if (i % 10 == 3) {
            l->kind = CUPTI_ACTIVITY_KIND_MEMCPY;
            l->corr = tfsim_memcpy(l->stream, TFSIM_COPY_HTOD, 4096, l->duration, 1);
        } else if (i % 15 == 4) {
            l->kind = CUPTI_ACTIVITY_KIND_MEMSET;
            l->corr = tfsim_memset(l->stream, 1024, 0, l->duration);
        } else {
            l->kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
            l->name = names[a->t];
            l->grid = (struct tfsim_dim3){(uint32_t)i % 5 + 1, 2, 1};
            l->block = (struct tfsim_dim3){128, 1, 1};
            l->corr = tfsim_launch_kernel(l->stream, l->name, l->grid, l->block, l->duration);
        }
    }
    return NULL;
}

static int cmp_start(const void *a, const void *b)
{
    const struct rec *x = *(const struct rec *const *)a, *y = *(const struct rec *const *)b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static void test_end_to_end(void **state)
{
    (void)state;
    int d0 = tfsim_device_add(&(struct tfsim_device_desc){.name = "GPU A"});
    int d1 = tfsim_device_add(&(struct tfsim_device_desc){.name = "GPU B"});
    uint32_t streams[6];
    for (int i = 0; i < 6; i++)
        streams[i] = tfsim_stream_create(i < 3 ? d0 : d1);
    start_activity();
    CUpti_SubscriberHandle sub = subscribe_launches();
    assert_int_equal(api.cuptiEnableCallback(1, sub, CUPTI_CB_DOMAIN_RUNTIME_API,
                                             CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020),
                     CUPTI_SUCCESS);

    static struct launched out[E2E_THREADS][E2E_PER_THREAD];
    struct launcher_arg args[E2E_THREADS];
    pthread_t th[E2E_THREADS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, E2E_THREADS + 1);
    for (int t = 0; t < E2E_THREADS; t++) {
        args[t] = (struct launcher_arg){.t = t, .out = out[t], .go = &go};
        memcpy(args[t].streams, streams, sizeof streams);
        pthread_create(&th[t], NULL, launcher, &args[t]);
        C.launchers[C.nlaunchers++] = th[t];
    }
    uint64_t t_before = realtime_ns();
    pthread_barrier_wait(&go);
    for (int t = 0; t < E2E_THREADS; t++)
        pthread_join(th[t], NULL);
    uint64_t t_after = realtime_ns();
    flush();
    pthread_barrier_destroy(&go);

    /* Every record exactly once. */
    uint32_t lo = UINT32_MAX, hi = 0;
    uint64_t total_dur = 0;
    for (int t = 0; t < E2E_THREADS; t++)
        for (int i = 0; i < E2E_PER_THREAD; i++) {
            assert_int_not_equal(out[t][i].corr, 0);
            lo = out[t][i].corr < lo ? out[t][i].corr : lo;
            hi = out[t][i].corr > hi ? out[t][i].corr : hi;
            total_dur += out[t][i].duration;
        }
    size_t span = hi - lo + 1;
    const struct rec **by_corr = calloc(span, sizeof *by_corr);
    unsigned *seen = calloc(span, sizeof *seen);
    for (size_t i = 0; i < C.nrecs; i++) {
        const struct rec *r = &C.recs[i];
        assert_true(r->corr >= lo && r->corr <= hi);
        seen[r->corr - lo]++;
        by_corr[r->corr - lo] = r;
    }
    for (int t = 0; t < E2E_THREADS; t++)
        for (int i = 0; i < E2E_PER_THREAD; i++) {
            const struct launched *l = &out[t][i];
            assert_int_equal(seen[l->corr - lo], 1);
            const struct rec *r = by_corr[l->corr - lo];
            assert_int_equal(r->kind, l->kind);
            assert_int_equal(r->stream, l->stream);
            int dev = tfsim_stream_device(l->stream);
            assert_int_equal(r->device, dev);
            assert_int_equal(r->context, dev + 1);
            assert_int_equal(r->end - r->start, l->duration);
            /* Times are CLOCK_REALTIME: after the first launch could start, and no later than
             * the last call plus every queued duration. */
            assert_true(r->start >= t_before + TFSIM_LAUNCH_LATENCY_NS);
            assert_true(r->end <= t_after + TFSIM_LAUNCH_LATENCY_NS + total_dur);
            if (l->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
                assert_string_equal(r->name, l->name);
                assert_int_equal(r->raw.kernel.gridX, l->grid.x);
                assert_int_equal(r->raw.kernel.gridY, 2);
                assert_int_equal(r->raw.kernel.blockX, 128);
                assert_int_equal(r->raw.kernel.registersPerThread, 32);
            } else if (l->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
                assert_int_equal(r->raw.memcpy.copyKind, CUPTI_ACTIVITY_MEMCPY_KIND_HTOD);
                assert_int_equal(r->raw.memcpy.bytes, 4096);
                assert_int_equal(r->raw.memcpy.flags, CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC);
            } else {
                assert_int_equal(r->raw.memset.bytes, 1024);
            }
        }
    assert_int_equal(C.nrecs, E2E_THREADS * E2E_PER_THREAD);

    /* Delivery came from the simulator's thread, buffers were asked for on launching threads,
     * and records inside buffers were not in launch order. */
    assert_int_equal(atomic_load(&C.bad_complete_thread), 0);
    assert_int_equal(atomic_load(&C.bad_request_thread), 0);
    assert_int_equal(atomic_load(&C.iter_errors), 0);
    assert_true(atomic_load(&C.multi_record_buffers) > 0);
    assert_true(atomic_load(&C.out_of_order_buffers) > 0);
    /* Per-thread buffers: each launching thread asked for its own. */
    assert_true(atomic_load(&C.requested) >= E2E_THREADS);

    /* Per stream: no overlap, and one thread's launches run in its launch order. */
    const struct rec **ps = calloc(C.nrecs, sizeof *ps);
    for (int s = 0; s < 6; s++) {
        size_t n = 0;
        for (size_t i = 0; i < C.nrecs; i++)
            if (C.recs[i].stream == streams[s])
                ps[n++] = &C.recs[i];
        assert_true(n > 0);
        qsort(ps, n, sizeof *ps, cmp_start);
        for (size_t i = 1; i < n; i++)
            assert_true(ps[i - 1]->end <= ps[i]->start);
    }
    for (int t = 0; t < E2E_THREADS; t++) {
        uint64_t last_start[6] = {0};
        for (int i = 0; i < E2E_PER_THREAD; i++) {
            const struct launched *l = &out[t][i];
            int s = 0;
            while (streams[s] != l->stream)
                s++;
            const struct rec *r = by_corr[l->corr - lo];
            assert_true(r->start > last_start[s]);
            last_start[s] = r->start;
        }
    }
    free(ps);

    /* Callbacks: ENTER then EXIT on the launching thread, same correlation id as the record. */
    size_t kernels = 0, memcpys = 0;
    for (int t = 0; t < E2E_THREADS; t++)
        for (int i = 0; i < E2E_PER_THREAD; i++) {
            kernels += out[t][i].kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
            memcpys += out[t][i].kind == CUPTI_ACTIVITY_KIND_MEMCPY;
        }
    assert_int_equal(C.ncbs, 2 * (kernels + memcpys));
    int *enter_at = calloc(span, sizeof *enter_at), *exit_at = calloc(span, sizeof *exit_at);
    for (size_t i = 0; i < C.ncbs; i++) {
        const struct cbrec *c = &C.cbs[i];
        assert_true(c->corr >= lo && c->corr <= hi);
        assert_true(is_launcher(c->thread));
        if (c->site == CUPTI_API_ENTER)
            enter_at[c->corr - lo] = (int)i + 1;
        else
            exit_at[c->corr - lo] = (int)i + 1;
    }
    for (int t = 0; t < E2E_THREADS; t++)
        for (int i = 0; i < E2E_PER_THREAD; i++) {
            const struct launched *l = &out[t][i];
            if (l->kind == CUPTI_ACTIVITY_KIND_MEMSET)
                continue; /* not enabled */
            int e = enter_at[l->corr - lo], x = exit_at[l->corr - lo];
            assert_true(e > 0 && x > e);
            const struct cbrec *ce = &C.cbs[e - 1], *cx = &C.cbs[x - 1];
            assert_true(pthread_equal(ce->thread, th[t]) && pthread_equal(cx->thread, th[t]));
            if (l->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
                assert_int_equal(ce->cbid, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000);
                assert_string_equal(ce->fn, "cudaLaunchKernel");
                assert_string_equal(ce->sym, l->name);
                assert_int_equal(ce->stream_from_params, l->stream);
            } else {
                assert_string_equal(ce->fn, "cudaMemcpyAsync");
            }
            assert_int_equal(ce->ctx_uid, tfsim_stream_device(l->stream) + 1);
        }
    assert_int_equal(atomic_load(&C.corr_data_mismatch), 0);
    free(enter_at);
    free(exit_at);
    free(by_corr);
    free(seen);

    struct tfsim_stats st;
    tfsim_stats(&st);
    assert_int_equal(st.records_produced, E2E_THREADS * E2E_PER_THREAD);
    assert_int_equal(st.records_delivered, st.records_produced);
    assert_int_equal(st.records_dropped, 0);
    assert_int_equal(st.buffers_requested, st.buffers_completed + st.buffers_refused);
    assert_int_equal(st.buffers_requested, atomic_load(&C.requested));
    assert_int_equal(st.buffers_completed, atomic_load(&C.completed));
    assert_int_equal(api.cuptiUnsubscribe(sub), CUPTI_SUCCESS);
}

/* ---- Launch variants ---------------------------------------------------------------------- */

static void test_launch_variants(void **state)
{
    (void)state;
    static const struct {
        uint32_t domain, cbid;
        const char *fn;
        bool coop;
    } v[] = {
        {TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, "cudaLaunchKernel", 0},
        {TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000,
         "cudaLaunchKernel_ptsz", 0},
        {TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060,
         "cudaLaunchKernelExC", 0},
        {TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000,
         "cudaLaunchCooperativeKernel", 1},
        {TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, "cudaGraphLaunch", 0},
        {TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000,
         "__cudaLaunchKernel", 0},
        {TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, "cuLaunchKernel", 0},
        {TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz, "cuLaunchKernel_ptsz", 0},
        {TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx, "cuLaunchKernelEx", 0},
        {TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel,
         "cuLaunchCooperativeKernel", 1},
        {TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, "cuGraphLaunch", 0},
    };
    int dev = tfsim_device_add(NULL);
    uint32_t s = tfsim_stream_create(dev);
    start_activity();
    CUpti_SubscriberHandle sub = NULL;
    assert_int_equal(api.cuptiSubscribe(&sub, on_callback, NULL), CUPTI_SUCCESS);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        C.ncbs = 0;
        assert_int_equal(api.cuptiEnableCallback(1, sub, v[i].domain, v[i].cbid), CUPTI_SUCCESS);
        struct tfsim_launch l = {.stream = s, .name = "_Z3foov", .duration_ns = 1000,
                                 .domain = v[i].domain, .cbid = v[i].cbid};
        uint32_t corr = tfsim_launch_kernel_ex(&l);
        assert_int_not_equal(corr, 0);
        assert_int_equal(C.ncbs, 2);
        assert_int_equal(C.cbs[0].site, CUPTI_API_ENTER);
        assert_int_equal(C.cbs[1].site, CUPTI_API_EXIT);
        for (int j = 0; j < 2; j++) {
            assert_int_equal(C.cbs[j].domain, v[i].domain);
            assert_int_equal(C.cbs[j].cbid, v[i].cbid);
            assert_int_equal(C.cbs[j].corr, corr);
            assert_string_equal(C.cbs[j].fn, v[i].fn);
            assert_string_equal(C.cbs[j].sym, "_Z3foov");
        }
        if (v[i].cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000 ||
            v[i].cbid == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel ||
            (v[i].domain == TFSIM_DOMAIN_RUNTIME &&
             v[i].cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060))
            assert_int_equal(C.cbs[0].stream_from_params, s);
        assert_int_equal(api.cuptiEnableCallback(0, sub, v[i].domain, v[i].cbid), CUPTI_SUCCESS);
        /* Disabled: the launch still runs and records, but nothing is called back. */
        C.ncbs = 0;
        uint32_t corr2 = tfsim_launch_kernel_ex(&l);
        assert_int_equal(C.ncbs, 0);
        flush();
        const struct rec *r = find_rec(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, corr);
        assert_non_null(r);
        assert_int_equal(r->raw.kernel.launchType,
                         v[i].coop ? CUPTI_ACTIVITY_LAUNCH_TYPE_COOPERATIVE_SINGLE_DEVICE
                                   : CUPTI_ACTIVITY_LAUNCH_TYPE_REGULAR);
        assert_non_null(find_rec(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, corr2));
    }
    /* A whole domain, and a graph's later kernels sharing the launch's correlation id. */
    assert_int_equal(api.cuptiEnableDomain(1, sub, CUPTI_CB_DOMAIN_RUNTIME_API), CUPTI_SUCCESS);
    C.ncbs = 0;
    struct tfsim_launch g = {.stream = s, .name = "node0", .duration_ns = 10,
                             .cbid = CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000,
                             .graph_id = 7, .graph_node_id = 1};
    uint32_t gc = tfsim_launch_kernel_ex(&g);
    g.name = "node1";
    g.graph_node_id = 2;
    g.correlation_id = gc;
    assert_int_equal(tfsim_launch_kernel_ex(&g), gc);
    assert_int_equal(C.ncbs, 2);
    flush();
    size_t graph_kernels = 0;
    for (size_t i = 0; i < C.nrecs; i++)
        if (C.recs[i].kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && C.recs[i].corr == gc) {
            assert_int_equal(C.recs[i].raw.kernel.graphId, 7);
            graph_kernels++;
        }
    assert_int_equal(graph_kernels, 2);
    /* Bad arguments. */
    assert_int_equal(api.cuptiEnableCallback(1, sub, CUPTI_CB_DOMAIN_RUNTIME_API, 100000),
                     CUPTI_ERROR_INVALID_PARAMETER);
    assert_int_equal(api.cuptiEnableCallback(1, NULL, CUPTI_CB_DOMAIN_RUNTIME_API, 1),
                     CUPTI_ERROR_INVALID_PARAMETER);
    assert_int_equal(tfsim_launch_kernel(9999, "x", (struct tfsim_dim3){0}, (struct tfsim_dim3){0}, 1),
                     0);
}

/* ---- Memcpy kinds, memset, synchronization ------------------------------------------------ */

static void test_memcpy_memset_sync(void **state)
{
    (void)state;
    int d0 = tfsim_device_add(NULL), d1 = tfsim_device_add(NULL);
    uint32_t s = tfsim_stream_create(d0);
    (void)d1;
    start_activity();
    CUpti_ActivityKind more[] = {CUPTI_ACTIVITY_KIND_MEMCPY2, CUPTI_ACTIVITY_KIND_SYNCHRONIZATION};
    enable_kinds(more, 2);
    CUpti_SubscriberHandle sub = NULL;
    assert_int_equal(api.cuptiSubscribe(&sub, on_callback, NULL), CUPTI_SUCCESS);
    assert_int_equal(api.cuptiEnableDomain(1, sub, CUPTI_CB_DOMAIN_SYNCHRONIZE), CUPTI_SUCCESS);

    uint32_t c_dtoh = tfsim_memcpy(s, TFSIM_COPY_DTOH, 1 << 20, 0, 0);
    uint32_t c_dtod = tfsim_memcpy(s, TFSIM_COPY_DTOD, 1 << 20, 0, 1);
    uint32_t c_p2p = tfsim_memcpy(s, TFSIM_COPY_PTOP, 1 << 20, 5000, 1);
    uint32_t c_set = tfsim_memset(s, 256, 7, 300);
    uint32_t c_sync = tfsim_stream_synchronize(s);
    uint32_t c_dsync = tfsim_device_synchronize(d0);
    assert_int_equal(api.cuptiActivityDisable(CUPTI_ACTIVITY_KIND_MEMCPY2), CUPTI_SUCCESS);
    uint32_t c_p2p_plain = tfsim_memcpy(s, TFSIM_COPY_PTOP, 64, 100, 1);
    flush();

    const struct rec *r = find_rec(CUPTI_ACTIVITY_KIND_MEMCPY, c_dtoh);
    assert_non_null(r);
    assert_int_equal(r->raw.memcpy.copyKind, CUPTI_ACTIVITY_MEMCPY_KIND_DTOH);
    assert_int_equal(r->raw.memcpy.srcKind, CUPTI_ACTIVITY_MEMORY_KIND_DEVICE);
    assert_int_equal(r->raw.memcpy.dstKind, CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE);
    assert_int_equal(r->raw.memcpy.flags, 0);
    /* Derived from the bandwidth: a copy to the host crosses PCIe (25 GB/s by default), one on
     * the device runs at memory bandwidth (3.35 TB/s); both plus 1 us of overhead. */
    assert_int_equal(r->end - r->start, (uint64_t)((1 << 20) * 1e9 / 25e9 + 1000.0));
    r = find_rec(CUPTI_ACTIVITY_KIND_MEMCPY, c_dtod);
    assert_non_null(r);
    assert_int_equal(r->end - r->start, (uint64_t)((1 << 20) * 1e9 / 3.35e12 + 1000.0));
    r = find_rec(CUPTI_ACTIVITY_KIND_MEMCPY2, c_p2p);
    assert_non_null(r);
    assert_int_equal(r->raw.p2p.copyKind, CUPTI_ACTIVITY_MEMCPY_KIND_PTOP);
    assert_int_equal(r->raw.p2p.srcDeviceId, 0);
    assert_int_equal(r->raw.p2p.dstDeviceId, 1);
    assert_int_equal(r->raw.p2p.dstContextId, 2);
    r = find_rec(CUPTI_ACTIVITY_KIND_MEMCPY, c_p2p_plain);
    assert_non_null(r);
    assert_int_equal(r->raw.memcpy.copyKind, CUPTI_ACTIVITY_MEMCPY_KIND_PTOP);
    r = find_rec(CUPTI_ACTIVITY_KIND_MEMSET, c_set);
    assert_non_null(r);
    assert_int_equal(r->raw.memset.value, 7);
    assert_int_equal(r->raw.memset.memoryKind, CUPTI_ACTIVITY_MEMORY_KIND_DEVICE);
    uint64_t memset_end = r->end;
    r = find_rec(CUPTI_ACTIVITY_KIND_SYNCHRONIZATION, c_sync);
    assert_non_null(r);
    assert_int_equal(r->raw.sync.type, CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE);
    assert_int_equal(r->raw.sync.streamId, s);
    assert_true(r->end >= memset_end); /* the wait lasts until the stream drained */
    r = find_rec(CUPTI_ACTIVITY_KIND_SYNCHRONIZATION, c_dsync);
    assert_non_null(r);
    assert_int_equal(r->raw.sync.type, CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE);
    assert_int_equal(r->raw.sync.streamId, CUPTI_SYNCHRONIZATION_INVALID_VALUE);
    size_t sync_cbs = 0;
    for (size_t i = 0; i < C.ncbs; i++)
        sync_cbs += C.cbs[i].domain == CUPTI_CB_DOMAIN_SYNCHRONIZE;
    assert_int_equal(sync_cbs, 2);
}

/* ---- Device, context, API, external correlation and overhead records ---------------------- */

static void test_device_context_records(void **state)
{
    (void)state;
    int d0 = tfsim_device_add(&(struct tfsim_device_desc){
        .name = "NVIDIA H100 80GB HBM3", .cc_major = 9, .cc_minor = 0, .sm_count = 132,
        .global_memory_bytes = 85520809984ull, .memory_bandwidth = 3352320000000ull,
        .core_clock_khz = 1980000});
    assert_int_equal(d0, 0);
    assert_int_equal(api.cuptiActivityRegisterCallbacks(on_request, on_complete), CUPTI_SUCCESS);
    CUpti_ActivityKind k[] = {CUPTI_ACTIVITY_KIND_DEVICE, CUPTI_ACTIVITY_KIND_CONTEXT};
    enable_kinds(k, 2);
    /* Attached after CUDA initialization: plain enable replays nothing... */
    tfsim_launch_kernel(tfsim_null_stream(d0), "k", (struct tfsim_dim3){0}, (struct tfsim_dim3){0}, 1);
    flush();
    assert_int_equal(count_kind(CUPTI_ACTIVITY_KIND_DEVICE), 0);
    /* ...EnableAndDump does. */
    assert_int_equal(api.cuptiActivityEnableAndDump(CUPTI_ACTIVITY_KIND_DEVICE), CUPTI_SUCCESS);
    assert_int_equal(api.cuptiActivityEnableAndDump(CUPTI_ACTIVITY_KIND_CONTEXT), CUPTI_SUCCESS);
    flush();
    assert_int_equal(count_kind(CUPTI_ACTIVITY_KIND_DEVICE), 1);
    assert_int_equal(count_kind(CUPTI_ACTIVITY_KIND_CONTEXT), 1);
    for (size_t i = 0; i < C.nrecs; i++) {
        if (C.recs[i].kind == CUPTI_ACTIVITY_KIND_DEVICE) {
            const CUpti_ActivityDevice5 *d = &C.recs[i].raw.device;
            assert_string_equal(d->name, "NVIDIA H100 80GB HBM3");
            assert_int_equal(d->id, 0);
            assert_int_equal(d->computeCapabilityMajor, 9);
            assert_int_equal(d->computeCapabilityMinor, 0);
            assert_int_equal(d->numMultiprocessors, 132);
            assert_int_equal(d->globalMemorySize, 85520809984ull);
            assert_int_equal(d->globalMemoryBandwidth, 3352320000ull); /* kB/s */
            assert_int_equal(d->coreClockRate, 1980000);
            /* An H100's occupancy limits (cc 9.0). */
            assert_int_equal(d->numThreadsPerWarp, 32);
            assert_int_equal(d->maxWarpsPerMultiprocessor, 64);
            assert_int_equal(d->maxBlocksPerMultiprocessor, 32);
            assert_int_equal(d->maxRegistersPerMultiprocessor, 65536);
            assert_int_equal(d->maxSharedMemoryPerMultiprocessor, 233472);
        } else if (C.recs[i].kind == CUPTI_ACTIVITY_KIND_CONTEXT) {
            const CUpti_ActivityContext3 *c = &C.recs[i].raw.ctx;
            assert_int_equal(c->contextId, 1);
            assert_int_equal(c->deviceId, 0);
            assert_int_equal(c->nullStreamId, tfsim_null_stream(d0));
        }
    }
    /* A device that appears while attached produces its records right away. */
    int d1 = tfsim_device_add(NULL);
    flush();
    assert_int_equal(count_kind(CUPTI_ACTIVITY_KIND_DEVICE), 2);
    assert_int_equal(count_kind(CUPTI_ACTIVITY_KIND_CONTEXT), 2);

    /* Context and stream queries through the handles. */
    uint32_t id = 0;
    assert_int_equal(api.cuptiGetContextId(tfsim_context_handle(d1), &id), CUPTI_SUCCESS);
    assert_int_equal(id, 2);
    assert_int_equal(api.cuptiGetDeviceId(tfsim_context_handle(d1), &id), CUPTI_SUCCESS);
    assert_int_equal(id, 1);
    assert_int_equal(api.cuptiGetStreamId(tfsim_context_handle(d1), NULL, &id), CUPTI_SUCCESS);
    assert_int_equal(id, tfsim_null_stream(d1));
    uint32_t s = tfsim_stream_create(d1);
    assert_int_equal(api.cuptiGetStreamId(NULL, tfsim_stream_handle(s), &id), CUPTI_SUCCESS);
    assert_int_equal(id, s);
    int bogus;
    assert_int_equal(api.cuptiGetContextId((CUcontext)(void *)&bogus, &id),
                     CUPTI_ERROR_INVALID_CONTEXT);
}

static void test_api_and_external_correlation(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    start_activity();
    CUpti_ActivityKind k[] = {CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
                              CUPTI_ACTIVITY_KIND_OVERHEAD};
    enable_kinds(k, 3);
    assert_int_equal(api.cuptiActivityPushExternalCorrelationId(
                         CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, 42),
                     CUPTI_SUCCESS);
    uint64_t t0 = realtime_ns();
    uint32_t c1 = tfsim_launch_kernel(s, "a", (struct tfsim_dim3){0}, (struct tfsim_dim3){0}, 1);
    uint64_t last = 0;
    assert_int_equal(api.cuptiActivityPopExternalCorrelationId(
                         CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last),
                     CUPTI_SUCCESS);
    assert_int_equal(last, 42);
    assert_int_equal(api.cuptiActivityPopExternalCorrelationId(
                         CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last),
                     CUPTI_ERROR_QUEUE_EMPTY);
    uint32_t c2 = tfsim_launch_kernel(s, "b", (struct tfsim_dim3){0}, (struct tfsim_dim3){0}, 1);
    flush();
    const struct rec *e = find_rec(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, c1);
    assert_non_null(e);
    assert_int_equal(e->raw.ext.externalKind, CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0);
    assert_int_equal(e->raw.ext.externalId, 42);
    assert_null(find_rec(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, c2));
    const struct rec *a = find_rec(CUPTI_ACTIVITY_KIND_RUNTIME, c1);
    assert_non_null(a);
    assert_int_equal(a->raw.api.cbid, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000);
    assert_int_equal(a->raw.api.processId, (uint32_t)getpid());
    assert_true(a->raw.api.start >= t0 && a->raw.api.end >= a->raw.api.start);
    assert_non_null(find_rec(CUPTI_ACTIVITY_KIND_RUNTIME, c2));
    size_t overhead = 0;
    for (size_t i = 0; i < C.nrecs; i++)
        if (C.recs[i].kind == CUPTI_ACTIVITY_KIND_OVERHEAD) {
            assert_int_equal(C.recs[i].raw.overhead.overheadKind,
                             CUPTI_ACTIVITY_OVERHEAD_ACTIVITY_BUFFER_REQUEST);
            overhead++;
        }
    assert_int_equal(overhead, atomic_load(&C.requested));
}

/* ---- Faults ------------------------------------------------------------------------------- */

static void test_fault_no_gpu(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    tfsim_inject(TFSIM_FAULT_NO_GPU, 0);
    /* Like libcupti without a driver: loading, version, timestamps and callbacks registration
     * work; enabling, subscribing and flushing do not. */
    uint32_t v;
    uint64_t t;
    assert_int_equal(api.cuptiGetVersion(&v), CUPTI_SUCCESS);
    assert_int_equal(api.cuptiGetTimestamp(&t), CUPTI_SUCCESS);
    assert_int_equal(api.cuptiActivityRegisterCallbacks(on_request, on_complete), CUPTI_SUCCESS);
    assert_int_equal(api.cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL),
                     CUPTI_ERROR_UNKNOWN);
    CUpti_SubscriberHandle sub = NULL;
    assert_int_equal(api.cuptiSubscribe(&sub, on_callback, NULL), CUPTI_ERROR_UNKNOWN);
    assert_null(sub);
    assert_int_equal(api.cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), CUPTI_ERROR_UNKNOWN);
    assert_int_equal(api.cuptiActivityRegisterTimestampCallback(my_clock), CUPTI_ERROR_UNKNOWN);
    tfsim_launch_kernel(s, "k", (struct tfsim_dim3){0}, (struct tfsim_dim3){0}, 1);
    struct tfsim_stats st;
    tfsim_stats(&st);
    assert_int_equal(st.records_produced, 0);
    assert_int_equal(st.api_callbacks, 0);
    tfsim_fault_clear();
    assert_int_equal(api.cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), CUPTI_SUCCESS);
}

static void test_fault_privileges(void **state)
{
    (void)state;
    tfsim_inject(TFSIM_FAULT_INSUFFICIENT_PRIVILEGES, 0);
    assert_int_equal(api.cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL),
                     CUPTI_ERROR_INSUFFICIENT_PRIVILEGES);
    CUpti_SubscriberHandle sub = NULL;
    assert_int_equal(api.cuptiSubscribe(&sub, on_callback, NULL),
                     CUPTI_ERROR_INSUFFICIENT_PRIVILEGES);
}

static void test_multiple_subscribers(void **state)
{
    (void)state;
    CUpti_SubscriberHandle a = NULL, b = NULL;
    assert_int_equal(api.cuptiSubscribe(&a, on_callback, NULL), CUPTI_SUCCESS);
    assert_int_equal(api.cuptiSubscribe(&b, on_callback, NULL),
                     CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED);
    assert_null(b);
    char holder[CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN] = "";
    CUpti_SubscriberParams p = {.structSize = CUpti_SubscriberParams_STRUCT_SIZE,
                                .subscriberName = "second",
                                .oldSubscriberName = holder,
                                .oldSubscriberSize = sizeof holder};
    assert_int_equal(api.cuptiSubscribe_v2(&b, on_callback, NULL, &p),
                     CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED);
    assert_string_equal(holder, "CUPTI for client");
    assert_int_equal(api.cuptiUnsubscribe(a), CUPTI_SUCCESS);
    assert_int_equal(api.cuptiUnsubscribe(a), CUPTI_ERROR_INVALID_PARAMETER);
    /* Another tool (Nsight Systems) holding CUPTI. */
    tfsim_inject(TFSIM_FAULT_MULTIPLE_SUBSCRIBERS, 0);
    assert_int_equal(api.cuptiSubscribe_v2(&b, on_callback, NULL, &p),
                     CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED);
    assert_string_equal(holder, "Nsight Systems");
    tfsim_fault_clear();
    assert_int_equal(api.cuptiSubscribe(&b, on_callback, NULL), CUPTI_SUCCESS);
}

static void launch_n(uint32_t s, int n, uint32_t *corr)
{
    for (int i = 0; i < n; i++) {
        uint32_t c = tfsim_launch_kernel(s, "k", (struct tfsim_dim3){0}, (struct tfsim_dim3){0}, 100);
        if (corr)
            corr[i] = c;
    }
}

static void test_fault_drop_records(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    start_activity();
    tfsim_inject(TFSIM_FAULT_DROP_RECORDS, 5);
    launch_n(s, 20, NULL);
    flush();
    assert_int_equal(C.nrecs, 15);
    size_t dropped = 0;
    assert_int_equal(api.cuptiActivityGetNumDroppedRecords(NULL, 0, &dropped), CUPTI_SUCCESS);
    assert_int_equal(dropped, 5);
    /* The count resets on read. */
    assert_int_equal(api.cuptiActivityGetNumDroppedRecords(NULL, 0, &dropped), CUPTI_SUCCESS);
    assert_int_equal(dropped, 0);
    struct tfsim_stats st;
    tfsim_stats(&st);
    assert_int_equal(st.records_dropped, 5);
    assert_int_equal(st.records_produced, st.records_delivered + st.records_dropped);
}

static void test_fault_refuse_buffer(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    start_activity();
    tfsim_inject(TFSIM_FAULT_REFUSE_BUFFER, 3);
    uint32_t corr[10];
    launch_n(s, 10, corr);
    flush();
    /* The first three records each needed a buffer and got none. */
    assert_int_equal(C.nrecs, 7);
    for (int i = 0; i < 3; i++)
        assert_null(find_rec(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, corr[i]));
    size_t dropped = 0;
    api.cuptiActivityGetNumDroppedRecords(NULL, 0, &dropped);
    assert_int_equal(dropped, 3);
    /* The client itself returning no buffer behaves the same. */
    C.refuse = true;
    launch_n(s, 4, NULL);
    C.refuse = false;
    launch_n(s, 2, NULL);
    flush();
    assert_int_equal(C.nrecs, 9);
    api.cuptiActivityGetNumDroppedRecords(NULL, 0, &dropped);
    assert_int_equal(dropped, 4);
    struct tfsim_stats st;
    tfsim_stats(&st);
    assert_int_equal(st.buffers_refused, 7);
    assert_int_equal(st.buffers_requested, st.buffers_refused + st.buffers_completed);
    assert_int_equal(st.records_produced, st.records_delivered + st.records_dropped);
}

static void test_fault_zero_timestamps(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    start_activity();
    tfsim_inject(TFSIM_FAULT_ZERO_TIMESTAMPS, 2);
    uint32_t corr[5];
    launch_n(s, 5, corr);
    flush();
    for (int i = 0; i < 5; i++) {
        const struct rec *r = find_rec(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, corr[i]);
        assert_non_null(r);
        if (i < 2)
            assert_true(r->start == 0 && r->end == 0);
        else
            assert_true(r->start > 0 && r->end > r->start);
    }
}

/* ---- Delivery behaviour ------------------------------------------------------------------- */

static void test_periodic_delivery(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    start_activity();
    launch_n(s, 3, NULL);
    /* No flush: a partially filled buffer goes out once its records are older than ~10 ms. */
    uint64_t deadline = mono_ns() + 5000000000ull;
    while (atomic_load(&C.completed) == 0 && mono_ns() < deadline)
        usleep(1000);
    assert_int_equal(atomic_load(&C.completed), 1);
    assert_int_equal(atomic_load(&C.records), 3);
}

static void test_flush_waits_and_reentry(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    start_activity();
    C.sleep_ms_in_complete = 50;
    C.reenter_in_complete = true;
    tfsim_inject(TFSIM_FAULT_DROP_RECORDS, 1);
    launch_n(s, 4, NULL);
    flush();
    /* Flush returned only after the completion callback, which itself flushed and read the
     * drop count without deadlocking. */
    assert_int_equal(atomic_load(&C.complete_flag), 1);
    assert_true(atomic_load(&C.reentered) >= 1);
    assert_int_equal(atomic_load(&C.dropped_seen_in_cb), 1);
    assert_int_equal(atomic_load(&C.records), 3);
}

static void test_max_num_records(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    start_activity();
    C.max_records = 3;
    launch_n(s, 10, NULL);
    flush();
    assert_int_equal(C.nrecs, 10);
    assert_int_equal(atomic_load(&C.completed), 4);
}

static void test_reset_with_pending(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    start_activity();
    assert_int_equal(api.cuptiActivityFlushPeriod(60000), CUPTI_SUCCESS);
    launch_n(s, 5, NULL);
    tfsim_reset();
    /* Undelivered buffers are discarded without calling back; nothing hangs. */
    assert_int_equal(atomic_load(&C.completed), 0);
    struct tfsim_stats st;
    tfsim_stats(&st);
    assert_int_equal(st.records_produced, 0);
    assert_int_equal(tfsim_device_count(), 0);
    assert_int_equal(C.noutstanding, 1);
    free(C.outstanding[0]); /* still the client's after the discard */
}

static void test_finalize(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    start_activity();
    CUpti_SubscriberHandle sub = subscribe_launches();
    (void)sub;
    launch_n(s, 3, NULL);
    assert_int_equal(api.cuptiFinalize(), CUPTI_SUCCESS);
    assert_int_equal(atomic_load(&C.records), 3); /* pending buffers were delivered */
    C.ncbs = 0;
    launch_n(s, 3, NULL);
    assert_int_equal(C.ncbs, 0); /* detached */
    CUpti_SubscriberHandle again = NULL;
    assert_int_equal(api.cuptiSubscribe(&again, on_callback, NULL), CUPTI_SUCCESS);
}

static void test_fork_child_flush(void **state)
{
    (void)state;
    uint32_t s = tfsim_null_stream(tfsim_device_add(NULL));
    start_activity();
    /* No periodic delivery, so no completion callback holds the client's mutex at fork. */
    assert_int_equal(api.cuptiActivityFlushPeriod(60000), CUPTI_SUCCESS);
    /* The delivery thread starts with the first record. It must be past its start before the
     * fork: under ASan a fork during a thread's start copies the sanitizer's thread-registry
     * lock held, and the child's own thread start then never returns. The flush also settles
     * the thread, and the three launches after it are still pending when the child is made. */
    launch_n(s, 1, NULL);
    flush();
    assert_int_equal(C.nrecs, 1);
    launch_n(s, 3, NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child has no delivery thread; a flush there must not hang. */
        alarm(10);
        launch_n(s, 2, NULL);
        int rc = api.cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
        _exit(rc == CUPTI_SUCCESS && atomic_load(&C.records) >= 2 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    flush();
    assert_int_equal(C.nrecs, 4); /* the parent's own, none of the child's */
}

/* ---- Record layout and iteration ---------------------------------------------------------- */

static void test_iterator_layouts(void **state)
{
    (void)state;
    /* One record of each kind the simulator writes (and some it iterates), back to back: the
     * iterator in use must step exactly by the CUDA 13 header struct sizes. */
    static const struct {
        CUpti_ActivityKind kind;
        size_t size;
    } k[] = {
        {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, sizeof(CUpti_ActivityKernel10)},
        {CUPTI_ACTIVITY_KIND_KERNEL, sizeof(CUpti_ActivityKernel10)},
        {CUPTI_ACTIVITY_KIND_MEMCPY, sizeof(CUpti_ActivityMemcpy6)},
        {CUPTI_ACTIVITY_KIND_MEMCPY2, sizeof(CUpti_ActivityMemcpyPtoP4)},
        {CUPTI_ACTIVITY_KIND_MEMSET, sizeof(CUpti_ActivityMemset4)},
        {CUPTI_ACTIVITY_KIND_DEVICE, sizeof(CUpti_ActivityDevice5)},
        {CUPTI_ACTIVITY_KIND_CONTEXT, sizeof(CUpti_ActivityContext3)},
        {CUPTI_ACTIVITY_KIND_OVERHEAD, sizeof(CUpti_ActivityOverhead3)},
        {CUPTI_ACTIVITY_KIND_SYNCHRONIZATION, sizeof(CUpti_ActivitySynchronization2)},
        {CUPTI_ACTIVITY_KIND_RUNTIME, sizeof(CUpti_ActivityAPI)},
        {CUPTI_ACTIVITY_KIND_DRIVER, sizeof(CUpti_ActivityAPI)},
        {CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, sizeof(CUpti_ActivityExternalCorrelation)},
        {CUPTI_ACTIVITY_KIND_MARKER, sizeof(CUpti_ActivityMarker2)},
        {CUPTI_ACTIVITY_KIND_NAME, sizeof(CUpti_ActivityName)},
        {CUPTI_ACTIVITY_KIND_STREAM, sizeof(CUpti_ActivityStream)},
        {CUPTI_ACTIVITY_KIND_CUDA_EVENT, sizeof(CUpti_ActivityCudaEvent2)},
        {CUPTI_ACTIVITY_KIND_MEMORY2, sizeof(CUpti_ActivityMemory4)},
    };
    const size_t n = sizeof k / sizeof k[0];
    uint8_t *buf = aligned_alloc(8, 8192);
    memset(buf, 0, 8192);
    size_t off = 0, offs[32];
    for (size_t i = 0; i < n; i++) {
        offs[i] = off;
        ((CUpti_Activity *)(void *)(buf + off))->kind = k[i].kind;
        off += (k[i].size + 7) & ~(size_t)7;
    }
    CUpti_Activity *r = NULL;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(api.cuptiActivityGetNextRecord(buf, off, &r), CUPTI_SUCCESS);
        assert_ptr_equal((uint8_t *)r, buf + offs[i]);
        assert_int_equal(r->kind, k[i].kind);
    }
    assert_int_equal(api.cuptiActivityGetNextRecord(buf, off, &r), CUPTI_ERROR_MAX_LIMIT_REACHED);
    /* A truncated record is the end; an unknown kind is invalid; a NULL buffer is an error. */
    r = NULL;
    assert_int_equal(api.cuptiActivityGetNextRecord(buf, 0, &r), CUPTI_ERROR_MAX_LIMIT_REACHED);
    r = NULL;
    assert_int_equal(api.cuptiActivityGetNextRecord(buf, k[0].size + 10, &r), CUPTI_SUCCESS);
    assert_int_equal(api.cuptiActivityGetNextRecord(buf, k[0].size + 10, &r),
                     CUPTI_ERROR_MAX_LIMIT_REACHED);
    ((CUpti_Activity *)(void *)buf)->kind = (CUpti_ActivityKind)12345;
    r = NULL;
    assert_int_equal(api.cuptiActivityGetNextRecord(buf, off, &r), CUPTI_ERROR_INVALID_KIND);
    ((CUpti_Activity *)(void *)buf)->kind = CUPTI_ACTIVITY_KIND_INVALID;
    r = NULL;
    assert_int_equal(api.cuptiActivityGetNextRecord(buf, off, &r), CUPTI_ERROR_INVALID_KIND);
    r = NULL;
    assert_int_equal(api.cuptiActivityGetNextRecord(NULL, off, &r), CUPTI_ERROR_INVALID_PARAMETER);
    free(buf);
    printf("record iterator: %s\n", tfsim_using_real_iterator() ? "real libcupti" : "simulator's own");
}

/* ---- Scale -------------------------------------------------------------------------------- */

static void test_million_kernels(void **state)
{
    (void)state;
    const uint32_t n = 1000000;
    int dev = tfsim_device_add(NULL);
    uint32_t streams[4];
    for (int i = 0; i < 4; i++)
        streams[i] = tfsim_stream_create(dev);
    C.keep_records = false;
    C.buf_size = 8u << 20;
    start_activity();
    CUpti_SubscriberHandle sub = subscribe_launches();
    (void)sub;
    uint64_t t0 = mono_ns();
    for (uint32_t i = 0; i < n; i++)
        tfsim_launch_kernel(streams[i & 3], "_Z4stepv", (struct tfsim_dim3){1, 1, 1},
                            (struct tfsim_dim3){256, 1, 1}, 50);
    uint64_t t1 = mono_ns();
    flush();
    uint64_t t2 = mono_ns();
    assert_int_equal(atomic_load(&C.kinds[CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL]), n);
    assert_int_equal(atomic_load(&C.iter_errors), 0);
    struct tfsim_stats st;
    tfsim_stats(&st);
    assert_int_equal(st.records_delivered, n);
    assert_int_equal(st.api_callbacks, 2ull * n);
    printf("1M kernels: launch %.1f ns/kernel, flush %.1f ms, %llu buffers\n",
           (double)(t1 - t0) / n, (double)(t2 - t1) / 1e6,
           (unsigned long long)st.buffers_completed);
}

int main(void)
{
    load_cupti();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_strings_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_launch_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcpy_memset_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_context_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_and_external_correlation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_no_gpu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_privileges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiple_subscribers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_drop_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_refuse_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_zero_timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_waits_and_reentry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_num_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finalize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_child_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterator_layouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_million_kernels, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
