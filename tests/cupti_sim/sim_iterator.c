/* SPDX-License-Identifier: Apache-2.0 */
/* Record iteration for the CUPTI simulator. Where a real libcupti of the same CUPTI API version
 * is installed, cuptiActivityGetNextRecord forwards to it, so NVIDIA's own code walks the
 * buffers the simulator wrote and any layout mistake shows up as a wrong stride or
 * CUPTI_ERROR_INVALID_KIND. Otherwise the simulator iterates itself with the semantics measured
 * on libcupti 13.0 without a GPU (documented at sim_next_record below).
 *
 * The real library is opened with RTLD_LOCAL, so its symbols never enter the global scope and
 * cannot take the place of this library's exports; only dlsym on its own handle reaches it.
 * libcupti is linked -Bsymbolic, so its internal calls stay inside it as well. It is never
 * closed: its constructors may have started state that outlives a dlclose. */
#define _GNU_SOURCE
#include "sim_internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef CUptiResult (*next_record_fn)(uint8_t *, size_t, CUpti_Activity **);
typedef CUptiResult (*get_version_fn)(uint32_t *);

static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static next_record_fn real_next;
static char real_path[4096];

/* Sizes of the current (CUDA 13) record structs by kind. The self-test checks each against the
 * stride the real libcupti uses. */
size_t sim_record_size(uint32_t kind)
{
    switch (kind) {
    case CUPTI_ACTIVITY_KIND_MEMCPY:
        return sizeof(CUpti_ActivityMemcpy6);
    case CUPTI_ACTIVITY_KIND_MEMSET:
        return sizeof(CUpti_ActivityMemset4);
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
        return sizeof(CUpti_ActivityKernel10);
    case CUPTI_ACTIVITY_KIND_DRIVER:
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_INTERNAL_LAUNCH_API:
        return sizeof(CUpti_ActivityAPI);
    case CUPTI_ACTIVITY_KIND_DEVICE:
        return sizeof(CUpti_ActivityDevice5);
    case CUPTI_ACTIVITY_KIND_CONTEXT:
        return sizeof(CUpti_ActivityContext3);
    case CUPTI_ACTIVITY_KIND_NAME:
        return sizeof(CUpti_ActivityName);
    case CUPTI_ACTIVITY_KIND_MARKER:
        return sizeof(CUpti_ActivityMarker2);
    case CUPTI_ACTIVITY_KIND_MARKER_DATA:
        return sizeof(CUpti_ActivityMarkerData2);
    case CUPTI_ACTIVITY_KIND_MEMCPY2:
        return sizeof(CUpti_ActivityMemcpyPtoP4);
    case CUPTI_ACTIVITY_KIND_OVERHEAD:
        return sizeof(CUpti_ActivityOverhead3);
    case CUPTI_ACTIVITY_KIND_ENVIRONMENT:
        return sizeof(CUpti_ActivityEnvironment);
    case CUPTI_ACTIVITY_KIND_DEVICE_ATTRIBUTE:
        return sizeof(CUpti_ActivityDeviceAttribute);
    case CUPTI_ACTIVITY_KIND_CDP_KERNEL:
        return sizeof(CUpti_ActivityCdpKernel);
    case CUPTI_ACTIVITY_KIND_PREEMPTION:
        return sizeof(CUpti_ActivityPreemption);
    case CUPTI_ACTIVITY_KIND_CUDA_EVENT:
        return sizeof(CUpti_ActivityCudaEvent2);
    case CUPTI_ACTIVITY_KIND_STREAM:
        return sizeof(CUpti_ActivityStream);
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION:
        return sizeof(CUpti_ActivitySynchronization2);
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION:
        return sizeof(CUpti_ActivityExternalCorrelation);
    case CUPTI_ACTIVITY_KIND_MEMORY2:
        return sizeof(CUpti_ActivityMemory4);
    case CUPTI_ACTIVITY_KIND_MEMORY_POOL:
        return sizeof(CUpti_ActivityMemoryPool3);
    case CUPTI_ACTIVITY_KIND_GRAPH_TRACE:
        return sizeof(CUpti_ActivityGraphTrace2);
    case CUPTI_ACTIVITY_KIND_JIT:
        return sizeof(CUpti_ActivityJit2);
    default:
        return 0;
    }
}

static bool try_real(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return false;
    next_record_fn fn = (next_record_fn)dlsym(h, "cuptiActivityGetNextRecord");
    get_version_fn ver = (get_version_fn)dlsym(h, "cuptiGetVersion");
    uint32_t v = 0;
    /* Refuse ourselves (TFSIM_REAL_CUPTI pointing at the simulator would recurse) and a
     * libcupti of another API version, whose record structs may differ from our headers. */
    if (!fn || fn == cuptiActivityGetNextRecord || !ver || ver(&v) != CUPTI_SUCCESS ||
        v != CUPTI_API_VERSION) {
        dlclose(h);
        return false;
    }
    real_next = fn;
    snprintf(real_path, sizeof real_path, "%s", path);
    return true;
}

static void load_real(void)
{
    const char *env = getenv("TFSIM_REAL_CUPTI");
    if (env && *env) {
        if (strcmp(env, "none") != 0 && strcmp(env, "0") != 0)
            try_real(env);
        return;
    }
    static const char *const defaults[] = {
        "/usr/local/cuda/lib64/libcupti.so.13",
        "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13",
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (try_real(defaults[i]))
            return;
}

/* Own iteration, matching libcupti 13.0: NULL buffer or record pointer -> INVALID_PARAMETER;
 * no room left for the next record's kind, or for the whole record -> MAX_LIMIT_REACHED; a kind
 * it does not know (0 included) -> INVALID_KIND. */
static CUptiResult sim_next_record(uint8_t *buffer, size_t valid, CUpti_Activity **record)
{
    if (!buffer || !record)
        return CUPTI_ERROR_INVALID_PARAMETER;
    size_t off = 0;
    if (*record) {
        size_t prev = sim_record_size((*record)->kind);
        if (!prev)
            return CUPTI_ERROR_INVALID_KIND;
        off = (size_t)((uint8_t *)*record - buffer) + SIM_ALIGN(prev);
    }
    if (off + sizeof(CUpti_ActivityKind) > valid)
        return CUPTI_ERROR_MAX_LIMIT_REACHED;
    CUpti_ActivityKind kind;
    memcpy(&kind, buffer + off, sizeof kind);
    size_t size = sim_record_size(kind);
    if (!size)
        return CUPTI_ERROR_INVALID_KIND;
    if (off + size > valid)
        return CUPTI_ERROR_MAX_LIMIT_REACHED;
    *record = (CUpti_Activity *)(void *)(buffer + off);
    return CUPTI_SUCCESS;
}

void sim_iterator_preload(void)
{
    pthread_once(&real_once, load_real);
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiActivityGetNextRecord(uint8_t *buffer,
                                                           size_t validBufferSizeBytes,
                                                           CUpti_Activity **record)
{
    pthread_once(&real_once, load_real);
    if (real_next)
        return real_next(buffer, validBufferSizeBytes, record);
    return sim_next_record(buffer, validBufferSizeBytes, record);
}

SIM_EXPORT int tfsim_using_real_iterator(void)
{
    pthread_once(&real_once, load_real);
    return real_next != NULL;
}

SIM_EXPORT const char *tfsim_real_cupti_path(void)
{
    pthread_once(&real_once, load_real);
    return real_next ? real_path : NULL;
}
