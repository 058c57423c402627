/* SPDX-License-Identifier: Apache-2.0 */
/* CUPTI API callbacks: each traced CUDA call becomes a host event on the thread that made it
 * (tfprof__api_begin at API_ENTER, tfprof_scope_end_slow at API_EXIT), so the call nests under
 * the scope that was open and carries the correlation id of the device work it queued.
 *
 * Threads and synchronization
 * - The subscriber function runs on application threads, inside CUDA calls, for every enabled
 *   callback id. It takes no lock, allocates nothing and calls nothing that could call back into
 *   CUDA. Per thread it keeps a small struct (thread-local): the nesting depth, the outermost
 *   call's handle and correlation id, and a one-entry cache of the last context's device.
 * - Host events are written by the tracer, which copies the name and arguments into the
 *   thread's own buffer (lock-free, see src/tracer.c). The scope handle travels from ENTER to
 *   EXIT in CUPTI's per-call correlationData slot: tag in the high 32 bits, serial in the low.
 * - Devices of contexts: cuptiGetDeviceId is called once per context and thread at most; the
 *   answer goes to a fixed table of slots filled with compare-and-swap (readers check a ready
 *   flag with acquire loads), so later calls on any thread find it with plain loads.
 * - Start and stop run on the session thread. The session generation, bumped at every start,
 *   tells a thread that its depth counter belongs to an earlier session (a call that was in
 *   flight when the subscription ended never got its EXIT), and the counter is reset.
 *
 * Nesting rule (no double recording): only the outermost traced call on a thread is recorded.
 * cudaLaunchKernel is implemented with the driver's cuLaunchKernel, and CUPTI can report both.
 * CUPTI documents a kernel record's correlation id as that of "the driver or runtime API
 * activity record that launched the kernel", and traces of runtime launches show it equal to
 * the runtime call's id, so the outer runtime call wins and the driver callback inside it is
 * skipped, whether or not CUPTI gives it the same correlation id. If a
 * nested call does report a different id, it is added to the outer event as the argument
 * nested_correlation_id, so the merger can still attach the device work should it carry that
 * id (CUDA 13's __cudaLaunchKernel entry point and the public launch calls it may use are the
 * case this covers). A driver call made directly (cuBLAS, Triton) has no runtime call around
 * it and is recorded itself. */
#include "callbacks.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tfprof/tfprof.h"
#include "activate.h"
#include "tracer.h"

#define RT(name) CUPTI_RUNTIME_TRACE_CBID_##name
#define DRV(name) CUPTI_DRIVER_TRACE_CBID_##name

/* Kernel launches: their host events are named after the kernel (symbolName). */
static const CUpti_CallbackId runtime_launches[] = {
	RT(cudaLaunchKernel_v7000),
	RT(cudaLaunchKernel_ptsz_v7000),
	RT(cudaLaunchKernelExC_v11060),
	RT(cudaLaunchKernelExC_ptsz_v11060),
	RT(cudaLaunchCooperativeKernel_v9000),
	RT(cudaLaunchCooperativeKernel_ptsz_v9000),
	RT(cudaGraphLaunch_v10000),
	RT(cudaGraphLaunch_ptsz_v10000),
	/* What nvcc's <<<>>> calls in CUDA 13; the nesting rule keeps it from counting twice
	 * should it go through one of the public entry points above. */
	RT(__cudaLaunchKernel_v13000),
	RT(__cudaLaunchKernel_ptsz_v13000),
};

/* Copies, memsets and synchronizations: named after the API function. */
static const CUpti_CallbackId runtime_others[] = {
	RT(cudaMemcpy_v3020),
	RT(cudaMemcpy_ptds_v7000),
	RT(cudaMemcpyAsync_v3020),
	RT(cudaMemcpyAsync_ptsz_v7000),
	RT(cudaMemcpy2D_v3020),
	RT(cudaMemcpy2D_ptds_v7000),
	RT(cudaMemcpy2DAsync_v3020),
	RT(cudaMemcpy2DAsync_ptsz_v7000),
	RT(cudaMemcpy3D_v3020),
	RT(cudaMemcpy3D_ptds_v7000),
	RT(cudaMemcpy3DAsync_v3020),
	RT(cudaMemcpy3DAsync_ptsz_v7000),
	RT(cudaMemcpyPeer_v4000),
	RT(cudaMemcpyPeerAsync_v4000),
	RT(cudaMemcpy3DPeer_v4000),
	RT(cudaMemcpy3DPeer_ptds_v7000),
	RT(cudaMemcpy3DPeerAsync_v4000),
	RT(cudaMemcpy3DPeerAsync_ptsz_v7000),
	RT(cudaMemcpyToSymbol_v3020),
	RT(cudaMemcpyToSymbol_ptds_v7000),
	RT(cudaMemcpyFromSymbol_v3020),
	RT(cudaMemcpyFromSymbol_ptds_v7000),
	RT(cudaMemcpyToSymbolAsync_v3020),
	RT(cudaMemcpyToSymbolAsync_ptsz_v7000),
	RT(cudaMemcpyFromSymbolAsync_v3020),
	RT(cudaMemcpyFromSymbolAsync_ptsz_v7000),
	RT(cudaMemcpyBatchAsync_v13000),
	RT(cudaMemcpyBatchAsync_ptsz_v13000),
	RT(cudaMemcpy3DBatchAsync_v13000),
	RT(cudaMemcpy3DBatchAsync_ptsz_v13000),
	RT(cudaMemset_v3020),
	RT(cudaMemset_ptds_v7000),
	RT(cudaMemsetAsync_v3020),
	RT(cudaMemsetAsync_ptsz_v7000),
	RT(cudaMemset2D_v3020),
	RT(cudaMemset2D_ptds_v7000),
	RT(cudaMemset2DAsync_v3020),
	RT(cudaMemset2DAsync_ptsz_v7000),
	RT(cudaMemset3D_v3020),
	RT(cudaMemset3D_ptds_v7000),
	RT(cudaMemset3DAsync_v3020),
	RT(cudaMemset3DAsync_ptsz_v7000),
	RT(cudaDeviceSynchronize_v3020),
	RT(cudaStreamSynchronize_v3020),
	RT(cudaStreamSynchronize_ptsz_v7000),
	RT(cudaEventSynchronize_v3020),
};

/* Allocations and releases, enabled when memory is traced: their host events carry the
 * correlation id that ties a MEMORY2 record to the scope and step that made it. */
static const CUpti_CallbackId runtime_memory[] = {
	RT(cudaMalloc_v3020),
	RT(cudaMallocPitch_v3020),
	RT(cudaMalloc3D_v3020),
	RT(cudaFree_v3020),
	RT(cudaMallocHost_v3020),
	RT(cudaHostAlloc_v3020),
	RT(cudaFreeHost_v3020),
	RT(cudaMallocManaged_v6000),
	RT(cudaMallocAsync_v11020),
	RT(cudaMallocAsync_ptsz_v11020),
	RT(cudaMallocFromPoolAsync_v11020),
	RT(cudaMallocFromPoolAsync_ptsz_v11020),
	RT(cudaFreeAsync_v11020),
	RT(cudaFreeAsync_ptsz_v11020),
};

static const CUpti_CallbackId driver_memory[] = {
	DRV(cuMemAlloc_v2),
	DRV(cuMemAllocPitch_v2),
	DRV(cuMemFree_v2),
	DRV(cuMemAllocHost_v2),
	DRV(cuMemHostAlloc),
	DRV(cuMemFreeHost),
	DRV(cuMemAllocManaged),
	DRV(cuMemAllocAsync),
	DRV(cuMemAllocAsync_ptsz),
	DRV(cuMemAllocFromPoolAsync),
	DRV(cuMemAllocFromPoolAsync_ptsz),
	DRV(cuMemFreeAsync),
	DRV(cuMemFreeAsync_ptsz),
};

static const CUpti_CallbackId driver_launches[] = {
	DRV(cuLaunchKernel),
	DRV(cuLaunchKernel_ptsz),
	DRV(cuLaunchKernelEx),
	DRV(cuLaunchKernelEx_ptsz),
	DRV(cuLaunchCooperativeKernel),
	DRV(cuLaunchCooperativeKernel_ptsz),
	DRV(cuGraphLaunch),
	DRV(cuGraphLaunch_ptsz),
};

/* The driver copies and memsets that libraries and JITs use directly; the array variants and
 * the unaligned 2D copy are left out as rare. */
static const CUpti_CallbackId driver_others[] = {
	DRV(cuMemcpy),
	DRV(cuMemcpy_ptds),
	DRV(cuMemcpyAsync),
	DRV(cuMemcpyAsync_ptsz),
	DRV(cuMemcpyHtoD_v2),
	DRV(cuMemcpyHtoD_v2_ptds),
	DRV(cuMemcpyDtoH_v2),
	DRV(cuMemcpyDtoH_v2_ptds),
	DRV(cuMemcpyDtoD_v2),
	DRV(cuMemcpyDtoD_v2_ptds),
	DRV(cuMemcpyHtoDAsync_v2),
	DRV(cuMemcpyHtoDAsync_v2_ptsz),
	DRV(cuMemcpyDtoHAsync_v2),
	DRV(cuMemcpyDtoHAsync_v2_ptsz),
	DRV(cuMemcpyDtoDAsync_v2),
	DRV(cuMemcpyDtoDAsync_v2_ptsz),
	DRV(cuMemcpyPeer),
	DRV(cuMemcpyPeer_ptds),
	DRV(cuMemcpyPeerAsync),
	DRV(cuMemcpyPeerAsync_ptsz),
	DRV(cuMemcpy2D_v2),
	DRV(cuMemcpy2D_v2_ptds),
	DRV(cuMemcpy2DAsync_v2),
	DRV(cuMemcpy2DAsync_v2_ptsz),
	DRV(cuMemcpy3D_v2),
	DRV(cuMemcpy3D_v2_ptds),
	DRV(cuMemcpy3DAsync_v2),
	DRV(cuMemcpy3DAsync_v2_ptsz),
	DRV(cuMemcpyBatchAsync_v2),
	DRV(cuMemcpyBatchAsync_v2_ptsz),
	DRV(cuMemcpy3DBatchAsync_v2),
	DRV(cuMemcpy3DBatchAsync_v2_ptsz),
	DRV(cuMemsetD8_v2),
	DRV(cuMemsetD8_v2_ptds),
	DRV(cuMemsetD16_v2),
	DRV(cuMemsetD16_v2_ptds),
	DRV(cuMemsetD32_v2),
	DRV(cuMemsetD32_v2_ptds),
	DRV(cuMemsetD8Async),
	DRV(cuMemsetD8Async_ptsz),
	DRV(cuMemsetD16Async),
	DRV(cuMemsetD16Async_ptsz),
	DRV(cuMemsetD32Async),
	DRV(cuMemsetD32Async_ptsz),
	DRV(cuMemsetD2D8_v2),
	DRV(cuMemsetD2D8_v2_ptds),
	DRV(cuMemsetD2D16_v2),
	DRV(cuMemsetD2D16_v2_ptds),
	DRV(cuMemsetD2D32_v2),
	DRV(cuMemsetD2D32_v2_ptds),
	DRV(cuMemsetD2D8Async),
	DRV(cuMemsetD2D8Async_ptsz),
	DRV(cuMemsetD2D16Async),
	DRV(cuMemsetD2D16Async_ptsz),
	DRV(cuMemsetD2D32Async),
	DRV(cuMemsetD2D32Async_ptsz),
	DRV(cuCtxSynchronize),
	DRV(cuCtxSynchronize_v2),
	DRV(cuStreamSynchronize),
	DRV(cuStreamSynchronize_ptsz),
	DRV(cuEventSynchronize),
};

/* Which callback ids are launches, indexed by id: one load on the hot path. */
static uint8_t runtime_is_launch[CUPTI_RUNTIME_TRACE_CBID_SIZE];
static uint8_t driver_is_launch[CUPTI_DRIVER_TRACE_CBID_SIZE];

/* Contexts whose device is known. Filled in slot order with compare-and-swap on ctx, so the
 * used slots are always a prefix and a reader can stop at the first empty one. */
#define CTX_SLOTS 64
static struct ctx_slot {
	_Atomic(uintptr_t) ctx;
	_Atomic uint32_t context_id, device_id;
	_Atomic uint32_t ready;
} ctx_slots[CTX_SLOTS];

struct thread_api {
	uint32_t gen;        /* session generation the fields below belong to */
	uint32_t depth;      /* traced calls open on this thread */
	uint64_t outer_corr; /* correlation id of the outermost one */
	uint64_t nested_corr;
	tfprof_scope outer;  /* its host event */
	uintptr_t ctx;       /* last context seen and its device */
	uint32_t ctx_device;
	uint32_t ctx_gen;
};

static __thread struct thread_api tl __attribute__((tls_model("initial-exec")));
static _Atomic uint32_t session_gen;
static _Atomic(const struct tfprof__cupti_fns *) fns;
static CUpti_SubscriberHandle subscriber;

static inline uint64_t pack(tfprof_scope s)
{
	return ((uint64_t)s.tag << 32) | s.serial;
}

static inline tfprof_scope unpack(uint64_t v)
{
	return (tfprof_scope){ .tag = (uint32_t)(v >> 32), .serial = (uint32_t)v };
}

static bool ctx_lookup(uintptr_t ctx, uint32_t *device_id)
{
	for (size_t i = 0; i < CTX_SLOTS; i++) {
		uintptr_t c = atomic_load_explicit(&ctx_slots[i].ctx, memory_order_acquire);
		if (c == 0)
			return false;
		if (c == ctx && atomic_load_explicit(&ctx_slots[i].ready, memory_order_acquire)) {
			*device_id = atomic_load_explicit(&ctx_slots[i].device_id, memory_order_relaxed);
			return true;
		}
	}
	return false;
}

static void ctx_insert(uintptr_t ctx, uint32_t context_id, uint32_t device_id)
{
	for (size_t i = 0; i < CTX_SLOTS; i++) {
		uintptr_t expected = 0;
		if (atomic_compare_exchange_strong_explicit(&ctx_slots[i].ctx, &expected, ctx,
							    memory_order_acq_rel, memory_order_acquire)) {
			atomic_store_explicit(&ctx_slots[i].context_id, context_id, memory_order_relaxed);
			atomic_store_explicit(&ctx_slots[i].device_id, device_id, memory_order_relaxed);
			atomic_store_explicit(&ctx_slots[i].ready, 1, memory_order_release);
			return;
		}
		if (expected == ctx)
			return; /* another thread got there first */
	}
	/* Full: more contexts than slots is unusual; those are looked up every time. */
}

/* The device of the call's context, from this thread's cache, the shared table, or CUPTI. */
static bool device_of(const CUpti_CallbackData *d, uint32_t gen, uint32_t *device_id)
{
	uintptr_t ctx = (uintptr_t)(void *)d->context;
	if (!ctx)
		return false;
	if (tl.ctx == ctx && tl.ctx_gen == gen) {
		*device_id = tl.ctx_device;
		return true;
	}
	if (!ctx_lookup(ctx, device_id)) {
		const struct tfprof__cupti_fns *f = atomic_load_explicit(&fns, memory_order_acquire);
		if (!f || f->GetDeviceId(d->context, device_id) != CUPTI_SUCCESS)
			return false;
		ctx_insert(ctx, d->contextUid, *device_id);
	}
	tl.ctx = ctx;
	tl.ctx_device = *device_id;
	tl.ctx_gen = gen;
	return true;
}

static bool is_launch(CUpti_CallbackDomain domain, CUpti_CallbackId cbid)
{
	if (domain == CUPTI_CB_DOMAIN_RUNTIME_API)
		return cbid < CUPTI_RUNTIME_TRACE_CBID_SIZE && runtime_is_launch[cbid];
	return cbid < CUPTI_DRIVER_TRACE_CBID_SIZE && driver_is_launch[cbid];
}

static tfprof_scope begin_event(CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
				const CUpti_CallbackData *d, uint32_t gen)
{
	const char *api = d->functionName ? d->functionName : "";
	/* Launches are named after the kernel, mangled as CUPTI gives it (the merger demangles);
	 * a graph launch has no single kernel and CUPTI gives no symbol for it, so it keeps the
	 * API's name. */
	const char *name = api;
	if (is_launch(domain, cbid) && d->symbolName && *d->symbolName)
		name = d->symbolName;
	struct tfprof_arg args[3];
	size_t n = 0;
	args[n++] = TFPROF_U64("correlation_id", d->correlationId);
	uint32_t dev;
	if (device_of(d, gen, &dev))
		args[n++] = TFPROF_U64("device_id", dev);
	args[n++] = TFPROF_STR("cuda_api", api);
	return tfprof__api_begin(name, args, n);
}

void CUPTIAPI tfprof__callbacks_api(void *userdata, CUpti_CallbackDomain domain,
				    CUpti_CallbackId cbid, const void *cbdata)
{
	(void)userdata;
	if ((domain != CUPTI_CB_DOMAIN_RUNTIME_API && domain != CUPTI_CB_DOMAIN_DRIVER_API) || !cbdata)
		return;
	const CUpti_CallbackData *d = cbdata;
	struct thread_api *t = &tl;
	uint32_t gen = atomic_load_explicit(&session_gen, memory_order_relaxed);
	if (t->gen != gen) {
		/* Whatever was open belonged to an earlier subscription. */
		t->gen = gen;
		t->depth = 0;
		t->outer = (tfprof_scope){ 0, 0 };
	}

	if (d->callbackSite == CUPTI_API_ENTER) {
		/* The first CUDA call of the process: the exit handler must now run before libcupti
		 * is finalized (activate.c says why). One relaxed load per call after that. */
		static atomic_bool cuda_seen;
		if (!atomic_load_explicit(&cuda_seen, memory_order_relaxed) &&
		    !atomic_exchange_explicit(&cuda_seen, true, memory_order_relaxed))
			tfprof__activate_cuda_up();
		if (t->depth++ > 0) {
			/* Inside a traced call on this thread: see the nesting rule above. */
			if (d->correlationData)
				*d->correlationData = 0;
			if (t->outer.tag && d->correlationId != t->outer_corr &&
			    d->correlationId != t->nested_corr) {
				t->nested_corr = d->correlationId;
				struct tfprof_arg a = TFPROF_U64("nested_correlation_id", d->correlationId);
				tfprof_scope_set_metadata(t->outer, &a, 1);
			}
			return;
		}
		tfprof_scope h = { 0, 0 };
		if (tfprof_enabled())
			h = begin_event(domain, cbid, d, gen);
		t->outer = h;
		t->outer_corr = d->correlationId;
		t->nested_corr = 0;
		if (d->correlationData)
			*d->correlationData = pack(h);
		return;
	}

	if (d->callbackSite == CUPTI_API_EXIT) {
		/* An EXIT without its ENTER: the call began before this subscription did. */
		if (t->depth == 0 || --t->depth > 0)
			return;
		tfprof_scope h = d->correlationData ? unpack(*d->correlationData) : t->outer;
		t->outer = (tfprof_scope){ 0, 0 };
		tfprof_scope_end(h);
	}
}

static pthread_once_t launches_once = PTHREAD_ONCE_INIT;

/* Fills the launch tables once per process; they are read without synchronization after. */
static void mark_launches(void)
{
	for (size_t i = 0; i < sizeof runtime_launches / sizeof runtime_launches[0]; i++)
		runtime_is_launch[runtime_launches[i]] = 1;
	for (size_t i = 0; i < sizeof driver_launches / sizeof driver_launches[0]; i++)
		driver_is_launch[driver_launches[i]] = 1;
}

/* Enables one list. A library that does not know an id answers INVALID_PARAMETER: that id is
 * skipped. Any other failure is returned. */
static CUptiResult enable_list(const struct tfprof__cupti_fns *f, CUpti_CallbackDomain domain,
			       const CUpti_CallbackId *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		CUptiResult rc = f->EnableCallback(1, subscriber, domain, ids[i]);
		if (rc != CUPTI_SUCCESS && rc != CUPTI_ERROR_INVALID_PARAMETER)
			return rc;
	}
	return CUPTI_SUCCESS;
}

CUptiResult tfprof__callbacks_start(const struct tfprof__cupti_fns *f, bool memory, const char **what,
				    char *holder, size_t holderlen)
{
	if (holderlen)
		holder[0] = '\0';
	pthread_once(&launches_once, mark_launches);
	for (size_t i = 0; i < CTX_SLOTS; i++) {
		atomic_store(&ctx_slots[i].ready, 0);
		atomic_store(&ctx_slots[i].ctx, 0);
	}
	atomic_store(&fns, f);
	atomic_fetch_add(&session_gen, 1);

	CUptiResult rc;
	subscriber = NULL;
	if (f->Subscribe_v2) {
		/* The v2 call names whoever holds the subscription when it fails. */
		char old[CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN] = "";
		CUpti_SubscriberParams p = {
			.structSize = CUpti_SubscriberParams_STRUCT_SIZE,
			.subscriberName = "tfprof",
			.oldSubscriberName = old,
			.oldSubscriberSize = sizeof old,
		};
		*what = "cuptiSubscribe_v2";
		rc = f->Subscribe_v2(&subscriber, tfprof__callbacks_api, NULL, &p);
		old[sizeof old - 1] = '\0';
		if (rc == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED && holderlen)
			snprintf(holder, holderlen, "%s", old);
	} else {
		*what = "cuptiSubscribe";
		rc = f->Subscribe(&subscriber, tfprof__callbacks_api, NULL);
	}
	if (rc != CUPTI_SUCCESS) {
		subscriber = NULL;
		return rc;
	}

	*what = "cuptiEnableCallback";
	rc = enable_list(f, CUPTI_CB_DOMAIN_RUNTIME_API, runtime_launches,
			 sizeof runtime_launches / sizeof runtime_launches[0]);
	if (rc == CUPTI_SUCCESS)
		rc = enable_list(f, CUPTI_CB_DOMAIN_RUNTIME_API, runtime_others,
				 sizeof runtime_others / sizeof runtime_others[0]);
	if (rc == CUPTI_SUCCESS)
		rc = enable_list(f, CUPTI_CB_DOMAIN_DRIVER_API, driver_launches,
				 sizeof driver_launches / sizeof driver_launches[0]);
	if (rc == CUPTI_SUCCESS)
		rc = enable_list(f, CUPTI_CB_DOMAIN_DRIVER_API, driver_others,
				 sizeof driver_others / sizeof driver_others[0]);
	if (rc == CUPTI_SUCCESS && memory)
		rc = enable_list(f, CUPTI_CB_DOMAIN_RUNTIME_API, runtime_memory,
				 sizeof runtime_memory / sizeof runtime_memory[0]);
	if (rc == CUPTI_SUCCESS && memory)
		rc = enable_list(f, CUPTI_CB_DOMAIN_DRIVER_API, driver_memory,
				 sizeof driver_memory / sizeof driver_memory[0]);
	if (rc != CUPTI_SUCCESS) {
		f->Unsubscribe(subscriber);
		subscriber = NULL;
	}
	return rc;
}

void tfprof__callbacks_stop(void)
{
	const struct tfprof__cupti_fns *f = atomic_load(&fns);
	if (subscriber && f)
		f->Unsubscribe(subscriber);
	subscriber = NULL;
}

bool tfprof__callbacks_context_device(uint32_t context_id, uint32_t *device_id)
{
	for (size_t i = 0; i < CTX_SLOTS; i++) {
		if (atomic_load_explicit(&ctx_slots[i].ctx, memory_order_acquire) == 0)
			return false;
		if (atomic_load_explicit(&ctx_slots[i].ready, memory_order_acquire) &&
		    atomic_load_explicit(&ctx_slots[i].context_id, memory_order_relaxed) == context_id) {
			*device_id = atomic_load_explicit(&ctx_slots[i].device_id, memory_order_relaxed);
			return true;
		}
	}
	return false;
}
