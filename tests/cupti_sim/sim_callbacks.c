/* SPDX-License-Identifier: Apache-2.0 */
/* The CUPTI simulator's callback API: the single subscriber, per-domain/cbid enables, firing
 * API ENTER/EXIT, resource and synchronize callbacks on the calling thread, the API activity
 * records (RUNTIME/DRIVER kinds) and the external correlation stacks that precede them.
 * Locking follows sim_internal.h: callbacks run with no simulator lock held. */
#include "sim_internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

_Static_assert(CUPTI_DRIVER_TRACE_CBID_SIZE <= SIM_MAX_CBID, "driver cbids exceed the table");
_Static_assert(CUPTI_RUNTIME_TRACE_CBID_SIZE <= SIM_MAX_CBID, "runtime cbids exceed the table");
_Static_assert(CUPTI_CBID_RESOURCE_SIZE <= SIM_MAX_CBID, "resource cbids exceed the table");
_Static_assert(CUPTI_CBID_SYNCHRONIZE_SIZE <= SIM_MAX_CBID, "sync cbids exceed the table");
_Static_assert(CUPTI_CBID_NVTX_SIZE <= SIM_MAX_CBID, "nvtx cbids exceed the table");
_Static_assert(CUPTI_CBID_STATE_SIZE <= SIM_MAX_CBID, "state cbids exceed the table");

/* The header only declares the subscriber type, so the simulator defines it; the one
 * subscriber's handle is the address of this object. */
struct CUpti_Subscriber_st {
    int unused;
};
static struct CUpti_Subscriber_st subscriber_object;

static uint32_t domain_cbid_count(CUpti_CallbackDomain domain)
{
    switch (domain) {
    case CUPTI_CB_DOMAIN_DRIVER_API:
        return CUPTI_DRIVER_TRACE_CBID_SIZE;
    case CUPTI_CB_DOMAIN_RUNTIME_API:
        return CUPTI_RUNTIME_TRACE_CBID_SIZE;
    case CUPTI_CB_DOMAIN_RESOURCE:
        return CUPTI_CBID_RESOURCE_SIZE;
    case CUPTI_CB_DOMAIN_SYNCHRONIZE:
        return CUPTI_CBID_SYNCHRONIZE_SIZE;
    case CUPTI_CB_DOMAIN_NVTX:
        return CUPTI_CBID_NVTX_SIZE;
    case CUPTI_CB_DOMAIN_STATE:
        return CUPTI_CBID_STATE_SIZE;
    default:
        return 0;
    }
}

void sim_callbacks_reset_locked(void)
{
    sim.subscribed = false;
    sim.sub_cb = NULL;
    sim.sub_userdata = NULL;
    sim.sub_name[0] = '\0';
    for (int d = 0; d < CUPTI_CB_DOMAIN_SIZE; d++)
        for (int c = 0; c < SIM_MAX_CBID; c++)
            atomic_store_explicit(&sim.cb_on[d][c], 0, memory_order_relaxed);
}

static bool is_our_subscriber_locked(CUpti_SubscriberHandle s)
{
    return sim.subscribed && s == &subscriber_object;
}

static CUptiResult subscribe(CUpti_SubscriberHandle *subscriber, CUpti_CallbackFunc callback,
                             void *userdata, CUpti_SubscriberParams *params)
{
    if (!subscriber)
        return CUPTI_ERROR_INVALID_PARAMETER;
    if (params && params->structSize == 0)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *subscriber = NULL;
    CUptiResult rc = CUPTI_SUCCESS;
    const char *holder = NULL;
    sim_lock();
    if (sim.fault_no_gpu) {
        rc = CUPTI_ERROR_UNKNOWN;
    } else if (sim.fault_no_privileges) {
        rc = CUPTI_ERROR_INSUFFICIENT_PRIVILEGES;
    } else if (sim.fault_multiple_subscribers) {
        rc = CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
        holder = "Nsight Systems";
    } else if (sim.subscribed) {
        rc = CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
        holder = sim.sub_name;
    } else {
        sim_callbacks_reset_locked();
        sim.subscribed = true;
        sim.sub_cb = callback;
        sim.sub_userdata = userdata;
        snprintf(sim.sub_name, sizeof sim.sub_name, "CUPTI for %s",
                 params && params->subscriberName ? params->subscriberName : "client");
        *subscriber = &subscriber_object;
    }
    /* CUDA 13's cuptiSubscribe_v2 names whoever holds the subscription. */
    if (holder && params && params->oldSubscriberName && params->oldSubscriberSize)
        snprintf(params->oldSubscriberName, params->oldSubscriberSize, "%s", holder);
    sim_unlock();
    return rc;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiSubscribe(CUpti_SubscriberHandle *subscriber,
                                               CUpti_CallbackFunc callback, void *userdata)
{
    return subscribe(subscriber, callback, userdata, NULL);
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiSubscribe_v2(CUpti_SubscriberHandle *subscriber,
                                                  CUpti_CallbackFunc callback, void *userdata,
                                                  CUpti_SubscriberParams *params)
{
    if (!params)
        return CUPTI_ERROR_INVALID_PARAMETER;
    return subscribe(subscriber, callback, userdata, params);
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiUnsubscribe(CUpti_SubscriberHandle subscriber)
{
    sim_check_alive("cuptiUnsubscribe");
    sim_lock();
    if (!is_our_subscriber_locked(subscriber)) {
        sim_unlock();
        return CUPTI_ERROR_INVALID_PARAMETER;
    }
    sim_callbacks_reset_locked();
    sim_unlock();
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiEnableCallback(uint32_t enable,
                                                    CUpti_SubscriberHandle subscriber,
                                                    CUpti_CallbackDomain domain,
                                                    CUpti_CallbackId cbid)
{
    sim_check_alive("cuptiEnableCallback");
    sim_lock();
    CUptiResult rc = CUPTI_SUCCESS;
    if (!is_our_subscriber_locked(subscriber) || cbid >= domain_cbid_count(domain))
        rc = CUPTI_ERROR_INVALID_PARAMETER;
    else
        atomic_store(&sim.cb_on[domain][cbid], enable ? 1 : 0);
    sim_unlock();
    return rc;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiEnableDomain(uint32_t enable,
                                                  CUpti_SubscriberHandle subscriber,
                                                  CUpti_CallbackDomain domain)
{
    sim_check_alive("cuptiEnableDomain");
    sim_lock();
    uint32_t n = domain_cbid_count(domain);
    CUptiResult rc = CUPTI_SUCCESS;
    if (!is_our_subscriber_locked(subscriber) || n == 0)
        rc = CUPTI_ERROR_INVALID_PARAMETER;
    else
        for (uint32_t c = 0; c < n; c++)
            atomic_store(&sim.cb_on[domain][c], enable ? 1 : 0);
    sim_unlock();
    return rc;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiEnableAllDomains(uint32_t enable,
                                                      CUpti_SubscriberHandle subscriber)
{
    for (int d = CUPTI_CB_DOMAIN_DRIVER_API; d < CUPTI_CB_DOMAIN_SIZE; d++) {
        CUptiResult rc = cuptiEnableDomain(enable, subscriber, (CUpti_CallbackDomain)d);
        if (rc != CUPTI_SUCCESS)
            return rc;
    }
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetCallbackState(uint32_t *enable,
                                                      CUpti_SubscriberHandle subscriber,
                                                      CUpti_CallbackDomain domain,
                                                      CUpti_CallbackId cbid)
{
    if (!enable)
        return CUPTI_ERROR_INVALID_PARAMETER;
    sim_lock();
    CUptiResult rc = CUPTI_SUCCESS;
    if (!is_our_subscriber_locked(subscriber) || cbid >= domain_cbid_count(domain))
        rc = CUPTI_ERROR_INVALID_PARAMETER;
    else
        *enable = atomic_load(&sim.cb_on[domain][cbid]);
    sim_unlock();
    return rc;
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiSupportedDomains(size_t *domainCount,
                                                      CUpti_DomainTable *domainTable)
{
    static CUpti_CallbackDomain domains[] = {
        CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_CB_DOMAIN_RESOURCE,
        CUPTI_CB_DOMAIN_SYNCHRONIZE, CUPTI_CB_DOMAIN_NVTX,        CUPTI_CB_DOMAIN_STATE,
    };
    if (!domainCount || !domainTable)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *domainCount = sizeof domains / sizeof domains[0];
    *domainTable = domains;
    return CUPTI_SUCCESS;
}

/* ---- Function names ----------------------------------------------------------------------- */

struct cb_name {
    CUpti_CallbackDomain domain;
    CUpti_CallbackId cbid;
    const char *name;
};

/* The calls the simulator can make, with the functionName CUDA reports for each. */
static const struct cb_name cb_names[] = {
#define RT(id, name) {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_##id, name}
#define DRV(id) {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_##id, #id}
    RT(cudaLaunchKernel_v7000, "cudaLaunchKernel"),
    RT(cudaLaunchKernel_ptsz_v7000, "cudaLaunchKernel_ptsz"),
    RT(cudaLaunchKernelExC_v11060, "cudaLaunchKernelExC"),
    RT(cudaLaunchKernelExC_ptsz_v11060, "cudaLaunchKernelExC_ptsz"),
    RT(cudaLaunchCooperativeKernel_v9000, "cudaLaunchCooperativeKernel"),
    RT(cudaLaunchCooperativeKernel_ptsz_v9000, "cudaLaunchCooperativeKernel_ptsz"),
    RT(cudaGraphLaunch_v10000, "cudaGraphLaunch"),
    RT(cudaGraphLaunch_ptsz_v10000, "cudaGraphLaunch_ptsz"),
    RT(__cudaLaunchKernel_v13000, "__cudaLaunchKernel"),
    RT(__cudaLaunchKernel_ptsz_v13000, "__cudaLaunchKernel_ptsz"),
    RT(cudaMemcpy_v3020, "cudaMemcpy"),
    RT(cudaMemcpyAsync_v3020, "cudaMemcpyAsync"),
    RT(cudaMemcpyPeer_v4000, "cudaMemcpyPeer"),
    RT(cudaMemcpyPeerAsync_v4000, "cudaMemcpyPeerAsync"),
    RT(cudaMemset_v3020, "cudaMemset"),
    RT(cudaMemsetAsync_v3020, "cudaMemsetAsync"),
    RT(cudaStreamSynchronize_v3020, "cudaStreamSynchronize"),
    RT(cudaDeviceSynchronize_v3020, "cudaDeviceSynchronize"),
    DRV(cuLaunchKernel),
    DRV(cuLaunchKernel_ptsz),
    DRV(cuLaunchKernelEx),
    DRV(cuLaunchKernelEx_ptsz),
    DRV(cuLaunchCooperativeKernel),
    DRV(cuLaunchCooperativeKernel_ptsz),
    DRV(cuGraphLaunch),
    DRV(cuGraphLaunch_ptsz),
    DRV(cuMemcpy),
    DRV(cuMemcpyAsync),
    DRV(cuMemsetD8Async),
    DRV(cuStreamSynchronize),
    DRV(cuCtxSynchronize),
#undef RT
#undef DRV
};

const char *sim_default_function_name(CUpti_CallbackDomain domain, CUpti_CallbackId cbid)
{
    for (size_t i = 0; i < sizeof cb_names / sizeof cb_names[0]; i++)
        if (cb_names[i].domain == domain && cb_names[i].cbid == cbid)
            return cb_names[i].name;
    return domain == CUPTI_CB_DOMAIN_DRIVER_API ? "cuUnknown" : "cudaUnknown";
}

SIM_EXPORT CUptiResult CUPTIAPI cuptiGetCallbackName(CUpti_CallbackDomain domain, uint32_t cbid,
                                                     const char **name)
{
    if (!name || cbid >= domain_cbid_count(domain))
        return CUPTI_ERROR_INVALID_PARAMETER;
    for (size_t i = 0; i < sizeof cb_names / sizeof cb_names[0]; i++) {
        if (cb_names[i].domain == domain && cb_names[i].cbid == cbid) {
            *name = cb_names[i].name;
            return CUPTI_SUCCESS;
        }
    }
    return CUPTI_ERROR_INVALID_PARAMETER;
}

/* ---- External correlation ----------------------------------------------------------------- */

/* Per thread and per kind, like CUPTI's. Deeper pushes than the cap are counted so pops stay
 * balanced, but only the ids within the cap are kept. */
#define EXT_STACK_CAP 64
static __thread struct {
    uint64_t ids[EXT_STACK_CAP];
    uint32_t depth;
} ext_stack[CUPTI_EXTERNAL_CORRELATION_KIND_SIZE];

SIM_EXPORT CUptiResult CUPTIAPI
cuptiActivityPushExternalCorrelationId(CUpti_ExternalCorrelationKind kind, uint64_t id)
{
    if (kind <= CUPTI_EXTERNAL_CORRELATION_KIND_INVALID ||
        kind >= CUPTI_EXTERNAL_CORRELATION_KIND_SIZE)
        return CUPTI_ERROR_INVALID_PARAMETER;
    if (ext_stack[kind].depth < EXT_STACK_CAP)
        ext_stack[kind].ids[ext_stack[kind].depth] = id;
    ext_stack[kind].depth++;
    return CUPTI_SUCCESS;
}

SIM_EXPORT CUptiResult CUPTIAPI
cuptiActivityPopExternalCorrelationId(CUpti_ExternalCorrelationKind kind, uint64_t *lastId)
{
    if (kind <= CUPTI_EXTERNAL_CORRELATION_KIND_INVALID ||
        kind >= CUPTI_EXTERNAL_CORRELATION_KIND_SIZE)
        return CUPTI_ERROR_INVALID_PARAMETER;
    if (ext_stack[kind].depth == 0)
        return CUPTI_ERROR_QUEUE_EMPTY;
    uint32_t d = --ext_stack[kind].depth;
    if (lastId)
        *lastId = d < EXT_STACK_CAP ? ext_stack[kind].ids[d] : 0;
    return CUPTI_SUCCESS;
}

/* ---- Firing ------------------------------------------------------------------------------- */

static void snapshot_subscriber(CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
                                CUpti_CallbackFunc *cb, void **userdata)
{
    *cb = NULL;
    if ((unsigned)domain >= CUPTI_CB_DOMAIN_SIZE || cbid >= SIM_MAX_CBID ||
        !atomic_load_explicit(&sim.cb_on[domain][cbid], memory_order_relaxed))
        return;
    sim_lock();
    if (sim.subscribed) {
        *cb = sim.sub_cb;
        *userdata = sim.sub_userdata;
    }
    sim_unlock();
}

static void invoke_api(struct sim_api_call *c, CUpti_ApiCallbackSite site)
{
    CUpti_CallbackData d = {
        .callbackSite = site,
        .functionName = c->function_name,
        .functionParams = c->params,
        .functionReturnValue = &c->return_value,
        .symbolName = c->symbol_name,
        .context = c->device >= 0 ? sim_context_handle_of(c->device) : NULL,
        .contextUid = c->device >= 0 ? (uint32_t)c->device + 1 : 0,
        .correlationData = &c->correlation_data,
        .correlationId = c->correlation_id,
    };
    c->cb(c->userdata, c->domain, c->cbid, &d);
    atomic_fetch_add(&sim.stats.api_callbacks, 1);
}

void sim_api_enter(struct sim_api_call *c)
{
    c->correlation_id = sim_next_correlation_id();
    c->correlation_data = 0;
    c->return_value = 0;
    /* One snapshot serves ENTER and EXIT so a client always sees them in pairs. */
    snapshot_subscriber(c->domain, c->cbid, &c->cb, &c->userdata);
    if (c->device >= 0)
        sim_set_current_device(c->device);
    c->start = sim_now();
    if (c->cb)
        invoke_api(c, CUPTI_API_ENTER);
}

void sim_api_exit(struct sim_api_call *c)
{
    c->end = sim_now();
    if (c->cb)
        invoke_api(c, CUPTI_API_EXIT);
    CUpti_ActivityKind kind = c->domain == CUPTI_CB_DOMAIN_DRIVER_API
                                  ? CUPTI_ACTIVITY_KIND_DRIVER
                                  : CUPTI_ACTIVITY_KIND_RUNTIME;
    if (!sim_kind_on(kind))
        return;
    if (sim_kind_on(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION)) {
        for (int k = CUPTI_EXTERNAL_CORRELATION_KIND_UNKNOWN;
             k < CUPTI_EXTERNAL_CORRELATION_KIND_SIZE; k++) {
            uint32_t depth = ext_stack[k].depth;
            if (depth == 0)
                continue;
            CUpti_ActivityExternalCorrelation e;
            memset(&e, 0, sizeof e);
            e.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
            e.externalKind = (CUpti_ExternalCorrelationKind)k;
            e.externalId = depth <= EXT_STACK_CAP ? ext_stack[k].ids[depth - 1] : 0;
            e.correlationId = c->correlation_id;
            sim_emit(&e, sizeof e);
        }
    }
    CUpti_ActivityAPI a;
    memset(&a, 0, sizeof a);
    a.kind = kind;
    a.cbid = c->cbid;
    a.start = c->start;
    a.end = c->end;
    a.processId = (uint32_t)getpid();
    a.threadId = sim_thread_id();
    a.correlationId = c->correlation_id;
    a.returnValue = (uint32_t)c->return_value;
    sim_emit(&a, sizeof a);
}

void sim_fire_resource(CUpti_CallbackId cbid, int device, uint32_t stream)
{
    CUpti_CallbackFunc cb;
    void *ud = NULL;
    snapshot_subscriber(CUPTI_CB_DOMAIN_RESOURCE, cbid, &cb, &ud);
    if (!cb)
        return;
    CUpti_ResourceData d = {
        .context = sim_context_handle_of(device),
        .resourceHandle.stream = stream ? sim_stream_handle_of(stream) : NULL,
        .resourceDescriptor = NULL,
    };
    cb(ud, CUPTI_CB_DOMAIN_RESOURCE, cbid, &d);
    atomic_fetch_add(&sim.stats.api_callbacks, 1);
}

void sim_fire_synchronize(CUpti_CallbackId cbid, int device, uint32_t stream)
{
    CUpti_CallbackFunc cb;
    void *ud = NULL;
    snapshot_subscriber(CUPTI_CB_DOMAIN_SYNCHRONIZE, cbid, &cb, &ud);
    if (!cb)
        return;
    CUpti_SynchronizeData d = {
        .context = sim_context_handle_of(device),
        .stream = stream ? sim_stream_handle_of(stream) : NULL,
    };
    cb(ud, CUPTI_CB_DOMAIN_SYNCHRONIZE, cbid, &d);
    atomic_fetch_add(&sim.stats.api_callbacks, 1);
}
