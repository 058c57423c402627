/* SPDX-License-Identifier: Apache-2.0 */
/* The CUPTI simulator's activity API and small queries: version, result strings, timestamps,
 * enabling kinds, buffer callbacks, flush, dropped-record counts, attributes, context/device/
 * stream ids and cuptiFinalize. Return codes follow the CUDA 13 headers and what libcupti does
 * on a machine without a GPU. Locking follows sim_internal.h. */
#include "sim_internal.h"

#include <string.h>

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetVersion(uint32_t *version)
{
    if (!version)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *version = CUPTI_API_VERSION;
    return CUPTI_SUCCESS;
}

static const char *result_name(CUptiResult r)
{
    switch (r) {
#define R(x) \
    case x:  \
        return #x;
        R(CUPTI_SUCCESS)
        R(CUPTI_ERROR_INVALID_PARAMETER)
        R(CUPTI_ERROR_INVALID_DEVICE)
        R(CUPTI_ERROR_INVALID_CONTEXT)
        R(CUPTI_ERROR_INVALID_EVENT_DOMAIN_ID)
        R(CUPTI_ERROR_INVALID_EVENT_ID)
        R(CUPTI_ERROR_INVALID_EVENT_NAME)
        R(CUPTI_ERROR_INVALID_OPERATION)
        R(CUPTI_ERROR_OUT_OF_MEMORY)
        R(CUPTI_ERROR_HARDWARE)
        R(CUPTI_ERROR_PARAMETER_SIZE_NOT_SUFFICIENT)
        R(CUPTI_ERROR_API_NOT_IMPLEMENTED)
        R(CUPTI_ERROR_MAX_LIMIT_REACHED)
        R(CUPTI_ERROR_NOT_READY)
        R(CUPTI_ERROR_NOT_COMPATIBLE)
        R(CUPTI_ERROR_NOT_INITIALIZED)
        R(CUPTI_ERROR_INVALID_METRIC_ID)
        R(CUPTI_ERROR_INVALID_METRIC_NAME)
        R(CUPTI_ERROR_QUEUE_EMPTY)
        R(CUPTI_ERROR_INVALID_HANDLE)
        R(CUPTI_ERROR_INVALID_STREAM)
        R(CUPTI_ERROR_INVALID_KIND)
        R(CUPTI_ERROR_INVALID_EVENT_VALUE)
        R(CUPTI_ERROR_DISABLED)
        R(CUPTI_ERROR_INVALID_MODULE)
        R(CUPTI_ERROR_INVALID_METRIC_VALUE)
        R(CUPTI_ERROR_HARDWARE_BUSY)
        R(CUPTI_ERROR_NOT_SUPPORTED)
        R(CUPTI_ERROR_UM_PROFILING_NOT_SUPPORTED)
        R(CUPTI_ERROR_UM_PROFILING_NOT_SUPPORTED_ON_DEVICE)
        R(CUPTI_ERROR_UM_PROFILING_NOT_SUPPORTED_ON_NON_P2P_DEVICES)
        R(CUPTI_ERROR_UM_PROFILING_NOT_SUPPORTED_WITH_MPS)
        R(CUPTI_ERROR_CDP_TRACING_NOT_SUPPORTED)
        R(CUPTI_ERROR_VIRTUALIZED_DEVICE_NOT_SUPPORTED)
        R(CUPTI_ERROR_CUDA_COMPILER_NOT_COMPATIBLE)
        R(CUPTI_ERROR_INSUFFICIENT_PRIVILEGES)
        R(CUPTI_ERROR_OLD_PROFILER_API_INITIALIZED)
        R(CUPTI_ERROR_OPENACC_UNDEFINED_ROUTINE)
        R(CUPTI_ERROR_LEGACY_PROFILER_NOT_SUPPORTED)
        R(CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED)
        R(CUPTI_ERROR_VIRTUALIZED_DEVICE_INSUFFICIENT_PRIVILEGES)
        R(CUPTI_ERROR_CONFIDENTIAL_COMPUTING_NOT_SUPPORTED)
        R(CUPTI_ERROR_CMP_DEVICE_NOT_SUPPORTED)
        R(CUPTI_ERROR_MIG_DEVICE_NOT_SUPPORTED)
        R(CUPTI_ERROR_SLI_DEVICE_NOT_SUPPORTED)
        R(CUPTI_ERROR_WSL_DEVICE_NOT_SUPPORTED)
        R(CUPTI_ERROR_INVALID_CHIP_NAME)
        R(CUPTI_ERROR_UNKNOWN)
#undef R
    default:
        return NULL;
    }
}

/* Like libcupti: the enum's name, and "<unknown>" with INVALID_PARAMETER for other values. */
SIM_EXPORT CUptiResult CUPTIAPI cuptiGetResultString(CUptiResult result, const char **str)
{
    if (!str)
        return CUPTI_ERROR_INVALID_PARAMETER;
    const char *n = result_name(result);
    *str = n ? n : "<unknown>";
    return n ? CUPTI_SUCCESS : CUPTI_ERROR_INVALID_PARAMETER;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetErrorMessage(CUptiResult result, const char **str)
{
    if (!str)
        return CUPTI_ERROR_INVALID_PARAMETER;
    const char *n = result_name(result);
    *str = n ? n : "<unknown>";
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetLastError(void)
{
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetTimestamp(uint64_t *timestamp)
{
    if (!timestamp)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *timestamp = sim_now();
    return CUPTI_SUCCESS;
}

/* ---- Enabling kinds ----------------------------------------------------------------------- */

static CUptiResult enable_check(CUpti_ActivityKind kind)
{
    if (kind <= CUPTI_ACTIVITY_KIND_INVALID || kind >= CUPTI_ACTIVITY_KIND_COUNT)
        return CUPTI_ERROR_INVALID_KIND;
    sim_lock();
    CUptiResult rc = sim.fault_no_gpu          ? CUPTI_ERROR_UNKNOWN
                     : sim.fault_no_privileges ? CUPTI_ERROR_INSUFFICIENT_PRIVILEGES
                                               : CUPTI_SUCCESS;
    if (rc == CUPTI_SUCCESS)
        atomic_store(&sim.kind_on[kind], 1);
    sim_unlock();
    return rc;
}

/* Enabling DEVICE or CONTEXT does not replay devices that exist already: as with real CUPTI,
 * those records come at CUDA initialization only if CUPTI was attached then (here:
 * tfsim_device_add after enabling), or from cuptiActivityEnableAndDump. */
SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityEnable(CUpti_ActivityKind kind)
{
    sim_check_alive("cuptiActivityEnable");
    return enable_check(kind);
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityEnableAndDump(CUpti_ActivityKind kind)
{
    CUptiResult rc = enable_check(kind);
    if (rc != CUPTI_SUCCESS || (kind != CUPTI_ACTIVITY_KIND_DEVICE &&
                                kind != CUPTI_ACTIVITY_KIND_CONTEXT))
        return rc;
    /* The dump produces records on this thread (it may ask for a buffer), one device at a
     * time so the lock is not held while emitting. */
    for (int i = 0; i < TFSIM_MAX_DEVICES; i++) {
        CUpti_ActivityDevice5 d;
        CUpti_ActivityContext3 c;
        sim_lock();
        struct sim_device *dev = sim_device_get_locked(i);
        bool have_callbacks = sim.request_cb != NULL;
        if (dev) {
            sim_fill_device_record(&d, dev);
            sim_fill_context_record(&c, dev);
        }
        sim_unlock();
        if (!dev)
            break;
        if (!have_callbacks)
            return CUPTI_SUCCESS; /* enabled, but no records without buffer callbacks */
        if (kind == CUPTI_ACTIVITY_KIND_DEVICE)
            sim_emit(&d, sizeof d);
        else
            sim_emit(&c, sizeof c);
    }
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityDisable(CUpti_ActivityKind kind)
{
    sim_check_alive("cuptiActivityDisable");
    if (kind <= CUPTI_ACTIVITY_KIND_INVALID || kind >= CUPTI_ACTIVITY_KIND_COUNT)
        return CUPTI_ERROR_INVALID_KIND;
    atomic_store(&sim.kind_on[kind], 0);
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityEnableContext(CUcontext context,
                                                           CUpti_ActivityKind kind)
{
    if (sim_context_to_ordinal(context) < 0)
        return CUPTI_ERROR_INVALID_CONTEXT;
    return enable_check(kind);
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityDisableContext(CUcontext context,
                                                            CUpti_ActivityKind kind)
{
    if (sim_context_to_ordinal(context) < 0)
        return CUPTI_ERROR_INVALID_CONTEXT;
    return cuptiActivityDisable(kind);
}

/* Accepted and ignored: the simulator has no latency timestamps or launch attributes. */
SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityEnableLatencyTimestamps(uint8_t enable)
{
    (void)enable;
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityEnableLaunchAttributes(uint8_t enable)
{
    (void)enable;
    return CUPTI_SUCCESS;
}

/* ---- Buffers, flush and drops ------------------------------------------------------------- */

SIM_EXPORT CUptiResult CUPTIAPI
cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc funcBufferRequested,
                               CUpti_BuffersCallbackCompleteFunc funcBufferCompleted)
{
    if (!funcBufferRequested || !funcBufferCompleted)
        return CUPTI_ERROR_INVALID_PARAMETER;
    /* Iteration follows soon; opening libcupti here keeps dlopen out of completion callbacks,
     * where the client may hold its own locks. */
    sim_iterator_preload();
    sim_lock();
    sim.request_cb = funcBufferRequested;
    sim.complete_cb = funcBufferCompleted;
    sim_unlock();
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityFlushAll(uint32_t flag)
{
    sim_check_alive("cuptiActivityFlushAll");
    sim_lock();
    bool no_gpu = sim.fault_no_gpu;
    sim_unlock();
    if (no_gpu)
        return CUPTI_ERROR_UNKNOWN;
    return sim_flush_all(flag);
}

/* Deprecated in CUDA 13; the context and stream are ignored, as there. */
SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityFlush(CUcontext context, uint32_t streamId,
                                                   uint32_t flag)
{
    (void)context;
    (void)streamId;
    return cuptiActivityFlushAll(flag);
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityFlushPeriod(uint32_t time)
{
    sim_lock();
    sim.flush_period_ms = time ? time : SIM_DEFAULT_FLUSH_PERIOD_MS;
    pthread_cond_signal(&sim.work_cv);
    sim_unlock();
    return CUPTI_SUCCESS;
}

/* Returns the records dropped since the previous call and resets the count, like CUPTI. */
SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityGetNumDroppedRecords(CUcontext context,
                                                                  uint32_t streamId,
                                                                  size_t *dropped)
{
    (void)context;
    (void)streamId;
    if (!dropped)
        return CUPTI_ERROR_INVALID_PARAMETER;
    sim_lock();
    *dropped = (size_t)sim.dropped_unread;
    sim.dropped_unread = 0;
    sim_unlock();
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI
cuptiActivityRegisterTimestampCallback(CUpti_TimestampCallbackFunc funcTimestamp)
{
    if (!funcTimestamp)
        return CUPTI_ERROR_INVALID_PARAMETER;
    sim_lock();
    bool no_gpu = sim.fault_no_gpu;
    sim_unlock();
    if (no_gpu)
        return CUPTI_ERROR_UNKNOWN;
    atomic_store_explicit(&sim.timestamp_cb, funcTimestamp, memory_order_release);
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiActivitySetAttribute(CUpti_ActivityAttribute attr,
                                                          size_t *valueSize, void *value)
{
    if (!valueSize || !value || (unsigned)attr >= sizeof sim.attr_values / sizeof(uint64_t))
        return CUPTI_ERROR_INVALID_PARAMETER;
    uint64_t v = 0;
    if (*valueSize == 1)
        v = *(const uint8_t *)value;
    else if (*valueSize == 4)
        v = *(const uint32_t *)value;
    else if (*valueSize == 8)
        v = *(const uint64_t *)value;
    else
        return CUPTI_ERROR_INVALID_PARAMETER;
    sim_lock();
    sim.attr_values[attr] = v;
    if (attr == CUPTI_ACTIVITY_ATTR_ZEROED_OUT_ACTIVITY_BUFFER)
        sim.client_zeroes_buffers = v != 0;
    if (attr == CUPTI_ACTIVITY_ATTR_PER_THREAD_ACTIVITY_BUFFER)
        sim.per_thread_buffers = v != 0;
    sim_unlock();
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityGetAttribute(CUpti_ActivityAttribute attr,
                                                          size_t *valueSize, void *value)
{
    if (!valueSize || !value || (unsigned)attr >= sizeof sim.attr_values / sizeof(uint64_t))
        return CUPTI_ERROR_INVALID_PARAMETER;
    sim_lock();
    uint64_t v = sim.attr_values[attr];
    if (attr == CUPTI_ACTIVITY_ATTR_PER_THREAD_ACTIVITY_BUFFER)
        v = sim.per_thread_buffers;
    sim_unlock();
    if (*valueSize >= 8)
        *(uint64_t *)value = v, *valueSize = 8;
    else if (*valueSize >= 4)
        *(uint32_t *)value = (uint32_t)v, *valueSize = 4;
    else if (*valueSize >= 1)
        *(uint8_t *)value = (uint8_t)v, *valueSize = 1;
    else
        return CUPTI_ERROR_PARAMETER_SIZE_NOT_SUFFICIENT;
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiSetThreadIdType(CUpti_ActivityThreadIdType type)
{
    if ((unsigned)type >= CUPTI_ACTIVITY_THREAD_ID_TYPE_SIZE)
        return CUPTI_ERROR_INVALID_PARAMETER;
    atomic_store(&sim.thread_id_type, (int)type);
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetThreadIdType(CUpti_ActivityThreadIdType *type)
{
    if (!type)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *type = (CUpti_ActivityThreadIdType)atomic_load(&sim.thread_id_type);
    return CUPTI_SUCCESS;
}

/* Detaches: remaining buffers are delivered first (unless called from a completion callback,
 * where waiting would deadlock), then kinds, callbacks and the subscriber are gone. */
SIM_EXPORT CUptiResult CUPTIAPI cuptiFinalize(void)
{
    sim_flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    sim_lock();
    for (int k = 0; k < CUPTI_ACTIVITY_KIND_COUNT; k++)
        atomic_store(&sim.kind_on[k], 0);
    atomic_store(&sim.timestamp_cb, NULL);
    sim.request_cb = NULL;
    sim.complete_cb = NULL;
    sim_callbacks_reset_locked();
    sim_unlock();
    return CUPTI_SUCCESS;
}

/* ---- Ids of contexts, devices and streams ------------------------------------------------- */

static int ordinal_of(CUcontext ctx)
{
    return ctx ? sim_context_to_ordinal(ctx) : sim_current_device();
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetContextId(CUcontext context, uint32_t *contextId)
{
    if (!context || !contextId)
        return CUPTI_ERROR_INVALID_PARAMETER;
    int ord = sim_context_to_ordinal(context);
    if (ord < 0)
        return CUPTI_ERROR_INVALID_CONTEXT;
    *contextId = (uint32_t)ord + 1;
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetDeviceId(CUcontext context, uint32_t *deviceId)
{
    if (!deviceId)
        return CUPTI_ERROR_INVALID_PARAMETER;
    int ord = ordinal_of(context);
    if (ord < 0)
        return CUPTI_ERROR_INVALID_CONTEXT;
    *deviceId = (uint32_t)ord;
    return CUPTI_SUCCESS;
}

static CUptiResult stream_id(CUcontext context, CUstream stream, uint32_t *streamId)
{
    if (!streamId)
        return CUPTI_ERROR_INVALID_PARAMETER;
    if (!stream) {
        int ord = ordinal_of(context);
        uint32_t id = ord >= 0 ? tfsim_null_stream(ord) : 0;
        if (!id)
            return CUPTI_ERROR_INVALID_CONTEXT;
        *streamId = id;
        return CUPTI_SUCCESS;
    }
    uintptr_t p = (uintptr_t)(void *)stream, base = (uintptr_t)&sim.streams[0];
    if (p < base || p >= base + sizeof sim.streams || (p - base) % sizeof sim.streams[0] != 0)
        return CUPTI_ERROR_INVALID_STREAM;
    uint32_t id = (uint32_t)((p - base) / sizeof sim.streams[0]) + 1;
    if (tfsim_stream_device(id) < 0)
        return CUPTI_ERROR_INVALID_STREAM;
    *streamId = id;
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetStreamId(CUcontext context, CUstream stream,
                                                 uint32_t *streamId)
{
    return stream_id(context, stream, streamId);
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetStreamIdEx(CUcontext context, CUstream stream,
                                                   uint8_t perThreadStream, uint32_t *streamId)
{
    (void)perThreadStream;
    return stream_id(context, stream, streamId);
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiComputeCapabilitySupported(int major, int minor,
                                                                int *support)
{
    (void)minor;
    if (!support)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *support = major >= 7; /* CUDA 13 supports Volta and newer */
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiDeviceSupported(CUdevice dev, int *support)
{
    if (!support)
        return CUPTI_ERROR_INVALID_PARAMETER;
    if (dev < 0 || dev >= tfsim_device_count())
        return CUPTI_ERROR_INVALID_DEVICE;
    *support = 1;
    return CUPTI_SUCCESS;
}
