/* SPDX-License-Identifier: Apache-2.0 */
/* Simulated GPU work for the CUPTI simulator: kernel launches, memory copies, memsets and
 * synchronizations. Each one plays the API call on the calling thread (ENTER/EXIT callbacks with
 * realistic parameter structs), places the work on its stream's timeline in simulated time, and
 * produces the activity record with the CUDA 13 struct layout. Locking follows sim_internal.h:
 * the lock is held only to read and advance a stream's timeline. */
#include "sim_internal.h"

#include <string.h>

/* Parameter structs exactly as CUDA passes them in CUpti_CallbackData.functionParams, for the
 * calls the simulator makes; any other cbid gets zeroed storage so a client that reads
 * parameters never faults. */
struct sim_params {
    union {
        cudaLaunchKernel_v7000_params rt_launch; /* also _ptsz and cooperative: same layout */
        cudaLaunchCooperativeKernel_v9000_params rt_coop;
        cudaLaunchKernelExC_v11060_params rt_launch_ex;
        cudaGraphLaunch_v10000_params rt_graph;
        cuLaunchKernel_params drv_launch;
        cuLaunchCooperativeKernel_params drv_coop;
        cuLaunchKernelEx_params drv_launch_ex;
        cuGraphLaunch_params drv_graph;
        cudaMemcpy_v3020_params rt_memcpy;
        cudaMemcpyAsync_v3020_params rt_memcpy_async;
        cudaMemcpyPeer_v4000_params rt_peer;
        cudaMemcpyPeerAsync_v4000_params rt_peer_async;
        cudaMemsetAsync_v3020_params rt_memset_async;
        cudaStreamSynchronize_v3020_params rt_stream_sync;
        cuMemcpy_params drv_memcpy;
        cuMemcpyAsync_params drv_memcpy_async;
        cuMemsetD8Async_params drv_memset_async;
        cuStreamSynchronize_params drv_stream_sync;
        unsigned char zero[256];
    } u;
    cudaLaunchConfig_t rt_config;
    CUlaunchConfig drv_config;
};

/* Fake device and host addresses for parameter structs; never dereferenced. */
#define FAKE_DEVICE_PTR ((void *)(uintptr_t)0x7f0000000000ull)
#define FAKE_HOST_PTR ((void *)(uintptr_t)0x5a0000000000ull)

static atomic_int_fast64_t next_grid_id = 0;

static int stream_device(uint32_t stream)
{
    sim_lock();
    struct sim_stream *s = sim_stream_get_locked(stream);
    int dev = s ? s->device : -1;
    sim_unlock();
    return dev;
}

/* Places dur ns of work on a stream: start = max(tail, now + launch latency). Also consumes a
 * ZERO_TIMESTAMPS strike when the record will be produced. */
static void schedule(uint32_t stream, uint64_t now, uint64_t dur, bool will_record,
                     uint64_t *start, uint64_t *end, bool *zero)
{
    sim_lock();
    struct sim_stream *s = sim_stream_get_locked(stream);
    uint64_t t = now + TFSIM_LAUNCH_LATENCY_NS;
    if (s && s->tail > t)
        t = s->tail;
    *start = t;
    *end = t + (dur ? dur : 1);
    if (s)
        s->tail = *end;
    *zero = will_record && sim_fault_take_locked(&sim.fault_zero_ts);
    sim_unlock();
}

/* The bandwidth a transfer of this kind runs at: copies that touch host memory cross the host
 * link (PCIe), so a 32 MiB H2D takes about 1.3 ms as on a real machine, not the 10 us that
 * device memory bandwidth would give; everything else stays on the device. */
static uint64_t device_bandwidth(int dev, bool host_link)
{
    sim_lock();
    struct sim_device *d = sim_device_get_locked(dev);
    uint64_t bw = d ? (host_link ? d->desc.host_link_bandwidth : d->desc.memory_bandwidth) : 0;
    sim_unlock();
    return bw ? bw : 1000000000000ull;
}

/* The shared memory per SM of a device: the carveout a launch gets unless it says otherwise. */
static uint32_t device_smem_per_sm(int dev)
{
    sim_lock();
    struct sim_device *d = sim_device_get_locked(dev);
    uint32_t smem = d ? d->desc.smem_per_sm : 0;
    sim_unlock();
    return smem;
}

static uint32_t transfer_ns(uint64_t bytes, int dev, bool host_link)
{
    double ns = (double)bytes * 1e9 / (double)device_bandwidth(dev, host_link) + 1000.0;
    return ns > 4e9 ? 4000000000u : (uint32_t)ns;
}

/* ---- Kernels ------------------------------------------------------------------------------ */

static bool is_cooperative(CUpti_CallbackDomain domain, CUpti_CallbackId cbid)
{
    if (domain == CUPTI_CB_DOMAIN_RUNTIME_API)
        return cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000 ||
               cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000;
    return cbid == CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel ||
           cbid == CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz;
}

static void fill_launch_params(struct sim_params *p, CUpti_CallbackDomain domain,
                               CUpti_CallbackId cbid, const char *name, dim3 grid, dim3 block,
                               uint32_t dyn_shared, CUstream stream)
{
    memset(p, 0, sizeof *p);
    if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
        switch (cbid) {
        case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000:
        case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000:
        case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000:
        case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000:
            p->u.rt_launch = (cudaLaunchKernel_v7000_params){
                .func = name, .gridDim = grid, .blockDim = block, .sharedMem = dyn_shared,
                .stream = stream};
            break;
        case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060:
        case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060:
            p->rt_config = (cudaLaunchConfig_t){.gridDim = grid, .blockDim = block,
                                                .dynamicSmemBytes = dyn_shared, .stream = stream};
            p->u.rt_launch_ex = (cudaLaunchKernelExC_v11060_params){.config = &p->rt_config,
                                                                    .func = name};
            break;
        case CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000:
        case CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_ptsz_v10000:
            p->u.rt_graph.stream = stream;
            break;
        default:
            break;
        }
        return;
    }
    switch (cbid) {
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel:
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz:
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel:
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz:
        /* cuLaunchKernel_params and cuLaunchCooperativeKernel_params share their prefix. */
        p->u.drv_launch = (cuLaunchKernel_params){
            .f = (CUfunction)(uintptr_t)name, .gridDimX = grid.x, .gridDimY = grid.y,
            .gridDimZ = grid.z, .blockDimX = block.x, .blockDimY = block.y,
            .blockDimZ = block.z, .sharedMemBytes = dyn_shared, .hStream = stream};
        break;
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx:
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz:
        p->drv_config = (CUlaunchConfig){
            .gridDimX = grid.x, .gridDimY = grid.y, .gridDimZ = grid.z, .blockDimX = block.x,
            .blockDimY = block.y, .blockDimZ = block.z, .sharedMemBytes = dyn_shared,
            .hStream = stream};
        p->u.drv_launch_ex = (cuLaunchKernelEx_params){.config = &p->drv_config,
                                                       .f = (CUfunction)(uintptr_t)name};
        break;
    case CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch:
    case CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz:
        p->u.drv_graph.hStream = stream;
        break;
    default:
        break;
    }
}

static uint32_t dim_or_one(uint32_t v)
{
    return v ? v : 1;
}

SIM_EXPORT uint32_t tfsim_launch_kernel_ex(const struct tfsim_launch *l)
{
    if (!l || !l->name)
        return 0;
    int dev = stream_device(l->stream);
    if (dev < 0)
        return 0;
    const char *name = sim_intern(l->name);
    CUpti_CallbackDomain domain = l->domain ? (CUpti_CallbackDomain)l->domain
                                            : CUPTI_CB_DOMAIN_RUNTIME_API;
    CUpti_CallbackId cbid = l->cbid;
    if (!cbid)
        cbid = domain == CUPTI_CB_DOMAIN_DRIVER_API ? CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel
                                                    : CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000;
    dim3 grid = {dim_or_one(l->grid.x), dim_or_one(l->grid.y), dim_or_one(l->grid.z)};
    dim3 block = {dim_or_one(l->block.x), dim_or_one(l->block.y), dim_or_one(l->block.z)};

    struct sim_params params;
    struct sim_api_call call = {0};
    uint32_t correlation = l->correlation_id;
    if (!correlation) {
        fill_launch_params(&params, domain, cbid, name, grid, block,
                           (uint32_t)l->dynamic_shared_bytes, sim_stream_handle_of(l->stream));
        call.domain = domain;
        call.cbid = cbid;
        call.function_name = l->function_name ? sim_intern(l->function_name)
                                              : sim_default_function_name(domain, cbid);
        call.symbol_name = name;
        call.params = &params;
        call.device = dev;
        sim_api_enter(&call);
        correlation = call.correlation_id;
    }

    CUpti_ActivityKind kind = sim_kind_on(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)
                                  ? CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL
                              : sim_kind_on(CUPTI_ACTIVITY_KIND_KERNEL)
                                  ? CUPTI_ACTIVITY_KIND_KERNEL
                                  : CUPTI_ACTIVITY_KIND_INVALID;
    uint64_t start, end;
    bool zero;
    schedule(l->stream, sim_now(), l->duration_ns, kind != CUPTI_ACTIVITY_KIND_INVALID, &start,
             &end, &zero);
    if (!l->correlation_id)
        sim_api_exit(&call);
    if (kind == CUPTI_ACTIVITY_KIND_INVALID)
        return correlation;

    CUpti_ActivityKernel10 k;
    memset(&k, 0, sizeof k);
    k.kind = kind;
    k.registersPerThread = l->registers_per_thread ? l->registers_per_thread : 32;
    k.start = zero ? 0 : start;
    k.end = zero ? 0 : end;
    k.completed = CUPTI_TIMESTAMP_UNKNOWN;
    k.deviceId = (uint32_t)dev;
    k.contextId = (uint32_t)dev + 1;
    k.streamId = l->stream;
    k.gridX = (int32_t)grid.x;
    k.gridY = (int32_t)grid.y;
    k.gridZ = (int32_t)grid.z;
    k.blockX = (int32_t)block.x;
    k.blockY = (int32_t)block.y;
    k.blockZ = (int32_t)block.z;
    k.staticSharedMemory = l->static_shared_bytes;
    k.dynamicSharedMemory = l->dynamic_shared_bytes;
    k.correlationId = correlation;
    k.gridId = (int64_t)atomic_fetch_add(&next_grid_id, 1) + 1;
    k.name = name;
    k.queued = CUPTI_TIMESTAMP_UNKNOWN;
    k.submitted = CUPTI_TIMESTAMP_UNKNOWN;
    k.launchType = is_cooperative(domain, cbid) ? CUPTI_ACTIVITY_LAUNCH_TYPE_COOPERATIVE_SINGLE_DEVICE
                                                : CUPTI_ACTIVITY_LAUNCH_TYPE_REGULAR;
    k.sharedMemoryExecuted = l->shared_memory_executed ? l->shared_memory_executed : device_smem_per_sm(dev);
    k.graphNodeId = l->graph_node_id;
    k.graphId = l->graph_id;
    k.channelType = CUPTI_CHANNEL_TYPE_COMPUTE;
    sim_emit(&k, sizeof k);
    return correlation;
}

SIM_EXPORT uint32_t tfsim_launch_kernel(uint32_t stream, const char *name, struct tfsim_dim3 grid,
                                        struct tfsim_dim3 block, uint32_t duration_ns)
{
    struct tfsim_launch l = {
        .stream = stream, .name = name, .grid = grid, .block = block, .duration_ns = duration_ns};
    return tfsim_launch_kernel_ex(&l);
}

/* ---- Memory copies and memsets ------------------------------------------------------------ */

static enum cudaMemcpyKind runtime_copy_kind(enum tfsim_copy_kind k)
{
    switch (k) {
    case TFSIM_COPY_HTOD:
        return cudaMemcpyHostToDevice;
    case TFSIM_COPY_DTOH:
        return cudaMemcpyDeviceToHost;
    case TFSIM_COPY_DTOD:
    case TFSIM_COPY_PTOP:
        return cudaMemcpyDeviceToDevice;
    default:
        return cudaMemcpyHostToHost;
    }
}

static void fill_memcpy_params(struct sim_params *p, CUpti_CallbackDomain domain,
                               CUpti_CallbackId cbid, const struct tfsim_memcpy *m, int src_dev,
                               int dst_dev, CUstream stream)
{
    memset(p, 0, sizeof *p);
    bool src_host = m->kind == TFSIM_COPY_HTOD || m->kind == TFSIM_COPY_HTOH;
    bool dst_host = m->kind == TFSIM_COPY_DTOH || m->kind == TFSIM_COPY_HTOH;
    void *src = src_host ? FAKE_HOST_PTR : FAKE_DEVICE_PTR;
    void *dst = dst_host ? FAKE_HOST_PTR : FAKE_DEVICE_PTR;
    if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
        switch (cbid) {
        case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020:
            p->u.rt_memcpy = (cudaMemcpy_v3020_params){dst, src, m->bytes,
                                                       runtime_copy_kind(m->kind)};
            break;
        case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020:
            p->u.rt_memcpy_async = (cudaMemcpyAsync_v3020_params){
                dst, src, m->bytes, runtime_copy_kind(m->kind), stream};
            break;
        case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyPeer_v4000:
            p->u.rt_peer = (cudaMemcpyPeer_v4000_params){dst, dst_dev, src, src_dev, m->bytes};
            break;
        case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyPeerAsync_v4000:
            p->u.rt_peer_async = (cudaMemcpyPeerAsync_v4000_params){dst, dst_dev, src, src_dev,
                                                                    m->bytes, stream};
            break;
        default:
            break;
        }
        return;
    }
    if (cbid == CUPTI_DRIVER_TRACE_CBID_cuMemcpy)
        p->u.drv_memcpy = (cuMemcpy_params){(CUdeviceptr)(uintptr_t)dst,
                                            (CUdeviceptr)(uintptr_t)src, m->bytes};
    else if (cbid == CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync)
        p->u.drv_memcpy_async = (cuMemcpyAsync_params){
            (CUdeviceptr)(uintptr_t)dst, (CUdeviceptr)(uintptr_t)src, m->bytes, stream};
}

SIM_EXPORT uint32_t tfsim_memcpy_ex(const struct tfsim_memcpy *m)
{
    if (!m)
        return 0;
    switch (m->kind) {
    case TFSIM_COPY_HTOD:
    case TFSIM_COPY_DTOH:
    case TFSIM_COPY_DTOD:
    case TFSIM_COPY_HTOH:
    case TFSIM_COPY_PTOP:
        break;
    default:
        return 0;
    }
    int dev = stream_device(m->stream);
    if (dev < 0)
        return 0;
    int ndev = tfsim_device_count();
    int peer = dev;
    if (m->kind == TFSIM_COPY_PTOP)
        peer = (m->peer_device >= 0 && m->peer_device < ndev && m->peer_device != dev)
                   ? m->peer_device
                   : (dev + 1) % ndev;
    bool ptop = m->kind == TFSIM_COPY_PTOP;
    CUpti_CallbackDomain domain = m->domain ? (CUpti_CallbackDomain)m->domain
                                            : CUPTI_CB_DOMAIN_RUNTIME_API;
    CUpti_CallbackId cbid = m->cbid;
    if (!cbid) {
        if (domain == CUPTI_CB_DOMAIN_DRIVER_API)
            cbid = m->async ? CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync : CUPTI_DRIVER_TRACE_CBID_cuMemcpy;
        else if (ptop)
            cbid = m->async ? CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyPeerAsync_v4000
                            : CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyPeer_v4000;
        else
            cbid = m->async ? CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020
                            : CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020;
    }
    bool host_link = m->kind == TFSIM_COPY_HTOD || m->kind == TFSIM_COPY_DTOH || m->kind == TFSIM_COPY_HTOH;
    uint32_t dur = m->duration_ns ? m->duration_ns : transfer_ns(m->bytes, dev, host_link);

    struct sim_params params;
    fill_memcpy_params(&params, domain, cbid, m, dev, peer, sim_stream_handle_of(m->stream));
    struct sim_api_call call = {
        .domain = domain,
        .cbid = cbid,
        .function_name = m->function_name ? sim_intern(m->function_name)
                                          : sim_default_function_name(domain, cbid),
        .params = &params,
        .device = dev,
    };
    sim_api_enter(&call);
    CUpti_ActivityKind kind = ptop && sim_kind_on(CUPTI_ACTIVITY_KIND_MEMCPY2)
                                  ? CUPTI_ACTIVITY_KIND_MEMCPY2
                              : sim_kind_on(CUPTI_ACTIVITY_KIND_MEMCPY)
                                  ? CUPTI_ACTIVITY_KIND_MEMCPY
                                  : CUPTI_ACTIVITY_KIND_INVALID;
    uint64_t start, end;
    bool zero;
    schedule(m->stream, sim_now(), dur, kind != CUPTI_ACTIVITY_KIND_INVALID, &start, &end, &zero);
    sim_api_exit(&call);
    if (kind == CUPTI_ACTIVITY_KIND_INVALID)
        return call.correlation_id;

    uint8_t host_kind = m->async ? CUPTI_ACTIVITY_MEMORY_KIND_PINNED
                                 : CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE;
    uint8_t src_kind = (m->kind == TFSIM_COPY_HTOD || m->kind == TFSIM_COPY_HTOH)
                           ? host_kind
                           : CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
    uint8_t dst_kind = (m->kind == TFSIM_COPY_DTOH || m->kind == TFSIM_COPY_HTOH)
                           ? host_kind
                           : CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
    uint8_t flags = m->async ? CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC : 0;
    bool runtime = domain == CUPTI_CB_DOMAIN_RUNTIME_API;
    if (kind == CUPTI_ACTIVITY_KIND_MEMCPY2) {
        CUpti_ActivityMemcpyPtoP4 r;
        memset(&r, 0, sizeof r);
        r.kind = kind;
        r.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_PTOP;
        r.srcKind = src_kind;
        r.dstKind = dst_kind;
        r.flags = flags;
        r.bytes = m->bytes;
        r.start = zero ? 0 : start;
        r.end = zero ? 0 : end;
        r.deviceId = (uint32_t)dev;
        r.contextId = (uint32_t)dev + 1;
        r.streamId = m->stream;
        r.srcDeviceId = (uint32_t)dev;
        r.srcContextId = (uint32_t)dev + 1;
        r.dstDeviceId = (uint32_t)peer;
        r.dstContextId = (uint32_t)peer + 1;
        r.correlationId = call.correlation_id;
        r.channelType = CUPTI_CHANNEL_TYPE_ASYNC_MEMCPY;
        sim_emit(&r, sizeof r);
    } else {
        CUpti_ActivityMemcpy6 r;
        memset(&r, 0, sizeof r);
        r.kind = kind;
        r.copyKind = (uint8_t)m->kind;
        r.srcKind = src_kind;
        r.dstKind = dst_kind;
        r.flags = flags;
        r.bytes = m->bytes;
        r.start = zero ? 0 : start;
        r.end = zero ? 0 : end;
        r.deviceId = (uint32_t)dev;
        r.contextId = (uint32_t)dev + 1;
        r.streamId = m->stream;
        r.correlationId = call.correlation_id;
        r.runtimeCorrelationId = runtime ? call.correlation_id : 0;
        r.channelType = CUPTI_CHANNEL_TYPE_ASYNC_MEMCPY;
        r.copyCount = 1;
        sim_emit(&r, sizeof r);
    }
    return call.correlation_id;
}

SIM_EXPORT uint32_t tfsim_memcpy(uint32_t stream, enum tfsim_copy_kind kind, uint64_t bytes,
                                 uint32_t duration_ns, int async)
{
    struct tfsim_memcpy m = {.stream = stream, .kind = kind, .bytes = bytes,
                             .duration_ns = duration_ns, .async = async, .peer_device = -1};
    return tfsim_memcpy_ex(&m);
}

SIM_EXPORT uint32_t tfsim_memset(uint32_t stream, uint64_t bytes, uint32_t value,
                                 uint32_t duration_ns)
{
    int dev = stream_device(stream);
    if (dev < 0)
        return 0;
    uint32_t dur = duration_ns ? duration_ns : transfer_ns(bytes, dev, false);
    struct sim_params params;
    memset(&params, 0, sizeof params);
    params.u.rt_memset_async = (cudaMemsetAsync_v3020_params){
        FAKE_DEVICE_PTR, (int)value, bytes, sim_stream_handle_of(stream)};
    struct sim_api_call call = {
        .domain = CUPTI_CB_DOMAIN_RUNTIME_API,
        .cbid = CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020,
        .function_name = "cudaMemsetAsync",
        .params = &params,
        .device = dev,
    };
    sim_api_enter(&call);
    bool on = sim_kind_on(CUPTI_ACTIVITY_KIND_MEMSET);
    uint64_t start, end;
    bool zero;
    schedule(stream, sim_now(), dur, on, &start, &end, &zero);
    sim_api_exit(&call);
    if (!on)
        return call.correlation_id;
    CUpti_ActivityMemset4 r;
    memset(&r, 0, sizeof r);
    r.kind = CUPTI_ACTIVITY_KIND_MEMSET;
    r.value = value;
    r.bytes = bytes;
    r.start = zero ? 0 : start;
    r.end = zero ? 0 : end;
    r.deviceId = (uint32_t)dev;
    r.contextId = (uint32_t)dev + 1;
    r.streamId = stream;
    r.correlationId = call.correlation_id;
    r.flags = CUPTI_ACTIVITY_FLAG_MEMSET_ASYNC;
    r.memoryKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
    r.channelType = CUPTI_CHANNEL_TYPE_ASYNC_MEMCPY;
    sim_emit(&r, sizeof r);
    return call.correlation_id;
}

/* ---- Synchronization ---------------------------------------------------------------------- */

/* The simulated wait ends when the stream (or every stream of the device) has drained. */
static uint64_t drained_at(int dev, uint32_t stream)
{
    uint64_t tail = 0;
    sim_lock();
    for (uint32_t i = 0; i < sim.nstreams; i++) {
        const struct sim_stream *s = &sim.streams[i];
        if (s->in_use && s->device == dev && (stream == 0 || s->id == stream) && s->tail > tail)
            tail = s->tail;
    }
    sim_unlock();
    return tail;
}

static uint32_t synchronize(int dev, uint32_t stream)
{
    struct sim_params params;
    memset(&params, 0, sizeof params);
    struct sim_api_call call = {.domain = CUPTI_CB_DOMAIN_RUNTIME_API, .device = dev};
    if (stream) {
        params.u.rt_stream_sync.stream = sim_stream_handle_of(stream);
        call.cbid = CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020;
        call.function_name = "cudaStreamSynchronize";
    } else {
        call.cbid = CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020;
        call.function_name = "cudaDeviceSynchronize";
    }
    call.params = &params;
    sim_api_enter(&call);
    uint64_t begin = sim_now(), tail = drained_at(dev, stream);
    bool on = sim_kind_on(CUPTI_ACTIVITY_KIND_SYNCHRONIZATION);
    bool zero = false;
    if (on) {
        sim_lock();
        zero = sim_fault_take_locked(&sim.fault_zero_ts);
        sim_unlock();
    }
    sim_fire_synchronize(stream ? CUPTI_CBID_SYNCHRONIZE_STREAM_SYNCHRONIZED
                                : CUPTI_CBID_SYNCHRONIZE_CONTEXT_SYNCHRONIZED,
                         dev, stream);
    sim_api_exit(&call);
    if (!on)
        return call.correlation_id;
    CUpti_ActivitySynchronization2 r;
    memset(&r, 0, sizeof r);
    r.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
    r.type = stream ? CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE
                    : CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE;
    r.start = zero ? 0 : begin;
    r.end = zero ? 0 : (tail > begin ? tail : begin);
    r.correlationId = call.correlation_id;
    r.contextId = (uint32_t)dev + 1;
    r.streamId = stream ? stream : CUPTI_SYNCHRONIZATION_INVALID_VALUE;
    r.cudaEventId = CUPTI_SYNCHRONIZATION_INVALID_VALUE;
    r.cudaEventSyncId = CUPTI_SYNCHRONIZATION_INVALID_VALUE;
    r.returnValue = 0;
    sim_emit(&r, sizeof r);
    return call.correlation_id;
}

SIM_EXPORT uint32_t tfsim_stream_synchronize(uint32_t stream)
{
    int dev = stream_device(stream);
    return dev < 0 ? 0 : synchronize(dev, stream);
}

SIM_EXPORT uint32_t tfsim_device_synchronize(int device)
{
    sim_lock();
    bool ok = sim_device_get_locked(device) != NULL;
    sim_unlock();
    return ok ? synchronize(device, 0) : 0;
}
