/* SPDX-License-Identifier: Apache-2.0 */
/* Simulated CUDA allocations for the CUPTI simulator: cudaMalloc, cudaMallocHost,
 * cudaMallocManaged, cudaMallocAsync and their releases play the API call on the calling thread
 * and produce CUPTI_ACTIVITY_KIND_MEMORY2 records (CUpti_ActivityMemory4) carrying the call's
 * correlation id, plus a CUPTI_ACTIVITY_KIND_MEMORY_POOL record (CUpti_ActivityMemoryPool3) when
 * a device's stream-ordered pool is first used. The simulator keeps the live allocations, so a
 * release record carries the bytes of its allocation as CUPTI's does. Locking follows
 * sim_internal.h: the table is guarded by sim.lock, never held while a callback runs. */
#include "sim_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct live {
    uint64_t address, bytes;
    int device;
    uint32_t kind;
    bool stream_ordered;
};

/* Each kind of memory lives in its own fake address range, per device, so addresses never
 * collide and a test can tell them apart; nothing is ever dereferenced. */
#define DEVICE_BASE 0x7f0000000000ull
#define POOL_BASE 0x7e0000000000ull
#define MANAGED_BASE 0x6b0000000000ull
#define PINNED_BASE 0x5a0000000000ull
#define DEVICE_SPAN (1ull << 36)
/* cudaMalloc aligns to at least 256 bytes; the simulator uses the same granularity. */
#define ALIGN_BYTES 256u
/* A stream-ordered pool grows in steps of this size, as CUDA's pools map memory in chunks. */
#define POOL_GRANULE (32ull << 20)

static struct {
    struct live *v;
    size_t n, cap;
    uint64_t bump[TFSIM_MAX_DEVICES][4]; /* next offset per device and address range */
    uint64_t pool_size[TFSIM_MAX_DEVICES], pool_used[TFSIM_MAX_DEVICES];
} M;

static int range_of(uint32_t kind, bool stream_ordered)
{
    if (stream_ordered)
        return 1;
    return kind == CUPTI_ACTIVITY_MEMORY_KIND_MANAGED ? 2
           : kind == CUPTI_ACTIVITY_MEMORY_KIND_PINNED ? 3
                                                        : 0;
}

static uint64_t range_base(int range)
{
    static const uint64_t bases[4] = {DEVICE_BASE, POOL_BASE, MANAGED_BASE, PINNED_BASE};
    return bases[range];
}

void sim_memory_reset_locked(void)
{
    free(M.v);
    memset(&M, 0, sizeof M);
}

/* The activity record of one allocation or release; pool fields describe the device's pool for
 * stream-ordered memory. */
static void emit_memory(const struct live *a, uint32_t op, uint32_t correlation_id, uint32_t stream,
                        uint64_t ts)
{
    if (!sim_kind_on(CUPTI_ACTIVITY_KIND_MEMORY2))
        return;
    CUpti_ActivityMemory4 r;
    memset(&r, 0, sizeof r);
    r.kind = CUPTI_ACTIVITY_KIND_MEMORY2;
    r.memoryOperationType = (CUpti_ActivityMemoryOperationType)op;
    r.memoryKind = (CUpti_ActivityMemoryKind)a->kind;
    r.correlationId = correlation_id;
    r.address = a->address;
    r.bytes = a->bytes;
    sim_lock();
    bool zero = sim_fault_take_locked(&sim.fault_zero_ts);
    if (a->stream_ordered && a->device >= 0 && a->device < TFSIM_MAX_DEVICES) {
        r.memoryPoolConfig.memoryPoolType = CUPTI_ACTIVITY_MEMORY_POOL_TYPE_LOCAL;
        r.memoryPoolConfig.address = POOL_BASE + (uint64_t)a->device * DEVICE_SPAN;
        r.memoryPoolConfig.pool.size = M.pool_size[a->device];
        r.memoryPoolConfig.utilizedSize = M.pool_used[a->device];
    }
    sim_unlock();
    r.timestamp = zero ? 0 : ts;
    r.processId = (uint32_t)getpid();
    r.deviceId = (uint32_t)a->device;
    r.contextId = (uint32_t)a->device + 1;
    r.streamId = a->stream_ordered ? stream : CUPTI_INVALID_STREAM_ID;
    r.isAsync = a->stream_ordered ? 1u : 0u;
    sim_emit(&r, sizeof r);
}

static void emit_pool(int device, uint32_t correlation_id, uint64_t size, uint64_t used, uint64_t ts)
{
    if (!sim_kind_on(CUPTI_ACTIVITY_KIND_MEMORY_POOL))
        return;
    CUpti_ActivityMemoryPool3 r;
    memset(&r, 0, sizeof r);
    r.kind = CUPTI_ACTIVITY_KIND_MEMORY_POOL;
    r.memoryPoolOperationType = CUPTI_ACTIVITY_MEMORY_POOL_OPERATION_TYPE_CREATED;
    r.memoryPoolType = CUPTI_ACTIVITY_MEMORY_POOL_TYPE_LOCAL;
    r.correlationId = correlation_id;
    r.processId = (uint32_t)getpid();
    r.deviceId = (uint32_t)device;
    r.address = POOL_BASE + (uint64_t)device * DEVICE_SPAN;
    r.size = size;
    r.timestamp = ts;
    r.utilizedSize = used;
    sim_emit(&r, sizeof r);
}

static const char *alloc_function(const struct tfsim_alloc *a, CUpti_CallbackId *cbid)
{
    if (a->stream) {
        *cbid = CUPTI_RUNTIME_TRACE_CBID_cudaMallocAsync_v11020;
        return "cudaMallocAsync";
    }
    if (a->kind == TFSIM_MEM_MANAGED) {
        *cbid = CUPTI_RUNTIME_TRACE_CBID_cudaMallocManaged_v6000;
        return "cudaMallocManaged";
    }
    if (a->kind == TFSIM_MEM_PINNED) {
        *cbid = CUPTI_RUNTIME_TRACE_CBID_cudaMallocHost_v3020;
        return "cudaMallocHost";
    }
    *cbid = CUPTI_RUNTIME_TRACE_CBID_cudaMalloc_v3020;
    return "cudaMalloc";
}

SIM_EXPORT uint64_t tfsim_malloc_ex(const struct tfsim_alloc *a, uint32_t *correlation_id)
{
    if (correlation_id)
        *correlation_id = 0;
    if (!a || !a->bytes)
        return 0;
    int dev = a->device;
    sim_lock();
    if (a->stream) {
        struct sim_stream *s = sim_stream_get_locked(a->stream);
        dev = s ? s->device : -1;
    }
    bool ok = sim_device_get_locked(dev) != NULL;
    sim_unlock();
    if (!ok || (a->stream && a->kind && a->kind != TFSIM_MEM_DEVICE))
        return 0;

    unsigned char params[256] = {0}; /* read by no client; zeroed so none faults */
    CUpti_CallbackId cbid;
    struct sim_api_call call = {
        .domain = CUPTI_CB_DOMAIN_RUNTIME_API,
        .function_name = alloc_function(a, &cbid),
        .params = params,
        .device = dev,
    };
    call.cbid = cbid;
    sim_api_enter(&call);
    struct live l = {
        .bytes = a->bytes,
        .device = dev,
        .kind = a->kind ? (uint32_t)a->kind : CUPTI_ACTIVITY_MEMORY_KIND_DEVICE,
        .stream_ordered = a->stream != 0,
    };
    uint64_t ts = sim_now();
    bool pool_created = false;
    uint64_t pool_size = 0, pool_used = 0;
    sim_lock();
    int range = range_of(l.kind, l.stream_ordered);
    l.address = range_base(range) + (uint64_t)dev * DEVICE_SPAN + M.bump[dev][range];
    M.bump[dev][range] += (a->bytes + ALIGN_BYTES - 1) / ALIGN_BYTES * ALIGN_BYTES;
    if (l.stream_ordered) {
        pool_created = M.pool_size[dev] == 0;
        M.pool_used[dev] += a->bytes;
        while (M.pool_size[dev] < M.pool_used[dev])
            M.pool_size[dev] += POOL_GRANULE;
        pool_size = M.pool_size[dev];
        pool_used = M.pool_used[dev];
    }
    bool stored = true;
    if (M.n == M.cap) {
        size_t nc = M.cap ? M.cap * 2 : 256;
        struct live *nv = realloc(M.v, nc * sizeof *nv);
        if (nv) {
            M.v = nv;
            M.cap = nc;
        } else {
            stored = false;
        }
    }
    if (stored)
        M.v[M.n++] = l;
    sim_unlock();
    if (pool_created)
        emit_pool(dev, call.correlation_id, pool_size, pool_used, ts);
    emit_memory(&l, CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION, call.correlation_id, a->stream, ts);
    sim_api_exit(&call);
    if (correlation_id)
        *correlation_id = call.correlation_id;
    return stored ? l.address : 0;
}

SIM_EXPORT uint64_t tfsim_malloc(int device, uint64_t bytes)
{
    return tfsim_malloc_ex(&(struct tfsim_alloc){.device = device, .bytes = bytes}, NULL);
}

SIM_EXPORT uint64_t tfsim_malloc_async(uint32_t stream, uint64_t bytes)
{
    return tfsim_malloc_ex(&(struct tfsim_alloc){.stream = stream, .bytes = bytes}, NULL);
}

SIM_EXPORT uint64_t tfsim_malloc_managed(int device, uint64_t bytes)
{
    return tfsim_malloc_ex(
        &(struct tfsim_alloc){.device = device, .kind = TFSIM_MEM_MANAGED, .bytes = bytes}, NULL);
}

/* Plays a release API call and emits its record for allocation l. */
static uint32_t release(const struct live *l, uint32_t stream)
{
    unsigned char params[256] = {0};
    struct sim_api_call call = {
        .domain = CUPTI_CB_DOMAIN_RUNTIME_API,
        .params = params,
        .device = l->device,
    };
    if (stream) {
        call.cbid = CUPTI_RUNTIME_TRACE_CBID_cudaFreeAsync_v11020;
        call.function_name = "cudaFreeAsync";
    } else if (l->kind == CUPTI_ACTIVITY_MEMORY_KIND_PINNED) {
        call.cbid = CUPTI_RUNTIME_TRACE_CBID_cudaFreeHost_v3020;
        call.function_name = "cudaFreeHost";
    } else {
        call.cbid = CUPTI_RUNTIME_TRACE_CBID_cudaFree_v3020;
        call.function_name = "cudaFree";
    }
    sim_api_enter(&call);
    emit_memory(l, CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE, call.correlation_id, stream, sim_now());
    sim_api_exit(&call);
    return call.correlation_id;
}

static uint32_t free_common(uint64_t address, uint32_t stream)
{
    sim_lock();
    struct live l;
    bool found = false;
    /* Newest first: a training loop frees what it allocated last. */
    for (size_t i = M.n; i-- > 0;)
        if (M.v[i].address == address) {
            l = M.v[i];
            M.v[i] = M.v[--M.n];
            found = true;
            break;
        }
    if (found && l.stream_ordered && l.device >= 0 && l.device < TFSIM_MAX_DEVICES)
        M.pool_used[l.device] -= l.bytes;
    sim_unlock();
    if (!found)
        return 0;
    /* cudaFreeAsync of stream-ordered memory is the only release that names a stream. */
    return release(&l, l.stream_ordered ? (stream ? stream : tfsim_null_stream(l.device)) : 0);
}

SIM_EXPORT uint32_t tfsim_free(uint64_t address)
{
    return free_common(address, 0);
}

SIM_EXPORT uint32_t tfsim_free_async(uint32_t stream, uint64_t address)
{
    return free_common(address, stream);
}

SIM_EXPORT uint32_t tfsim_free_unknown(int device, uint64_t address, uint64_t bytes)
{
    sim_lock();
    bool ok = sim_device_get_locked(device) != NULL;
    sim_unlock();
    if (!ok)
        return 0;
    struct live l = {
        .address = address,
        .bytes = bytes,
        .device = device,
        .kind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE,
    };
    return release(&l, 0);
}

SIM_EXPORT uint64_t tfsim_memory_in_use(int device)
{
    uint64_t sum = 0;
    sim_lock();
    for (size_t i = 0; i < M.n; i++)
        if (M.v[i].device == device)
            sum += M.v[i].bytes;
    sim_unlock();
    return sum;
}
