/* SPDX-License-Identifier: Apache-2.0 */
/* NVTX emission for tfprof scopes: the "tfprof" domain, one registered string per static call
 * site, and the push/pop pair each scope adds while a session runs with NVTX on.
 *
 * Hot path. A site push is one acquire load of site->nvtx_string (a plain load on x86), three
 * compares, and one nvtxDomainRangePushEx() call; a pop is one nvtxDomainRangePop(). With no
 * NVTX tool attached, NVTX's own functions are a load of a null function pointer and a return:
 * push+pop measured 3.5 ns on a 2-vCPU EPYC VM, of which 2.2 ns are the two function calls. The
 * caller can save even that: tfprof__nvtx_init() says whether a tool is attached, and without
 * one the pushes and pops do nothing and need not be made.
 *
 * Thread-safety.
 * - The domain handle is written once, under pthread_once(), by tfprof__nvtx_init(), which
 *   tfprof_start() calls before it switches recording on. Pushes read it with an acquire load so
 *   that a thread that sees a session running also sees the handle.
 * - A site's string is registered exactly once per process, without a lock: the first thread
 *   to use the site claims it by a compare-exchange from NULL to a "registering" sentinel,
 *   registers the name, and publishes the handle with a release store. A thread that meets the
 *   sentinel does not wait; it pushes that one range with the name as an ASCII message, which a
 *   tool shows the same way. Registering from both threads instead would leave two handles for
 *   one name, since NVTX cannot unregister a string.
 * - If the tool returns no handle (no tool attached, or one without string registration), the
 *   site keeps a "not registered" sentinel and is always pushed as ASCII; NVTX attaches its tool
 *   once per module, so that answer never changes for the life of the process.
 * - Registered handles belong to the tfprof domain, which lives as long as the process, so a
 *   site's handle stays valid across sessions. */
#include "nvtx.h"

#if defined(TFPROF_HAVE_NVTX) && TFPROF_HAVE_NVTX

#include <pthread.h>

/* NVTX's implementation is header code; treat it as a system header so that -Wall -Wextra
 * report our code only. */
#define NVTX_AS_SYSTEM_HEADER 1
#include <nvtx3/nvToolsExt.h>

static pthread_once_t nvtx_once = PTHREAD_ONCE_INIT;
static nvtxDomainHandle_t nvtx_domain;

/* Sentinels stored in site->nvtx_string. Their addresses cannot be handles a tool returned,
 * because a tool cannot own tfprof's static storage. */
static char nvtx_site_registering;
static char nvtx_site_unregistered;

static void nvtx_create_domain(void)
{
	__atomic_store_n(&nvtx_domain, nvtxDomainCreateA("tfprof"), __ATOMIC_RELEASE);
}

static inline nvtxDomainHandle_t nvtx_get_domain(void)
{
	return __atomic_load_n(&nvtx_domain, __ATOMIC_ACQUIRE);
}

bool tfprof__nvtx_init(void)
{
	pthread_once(&nvtx_once, nvtx_create_domain);
	/* With no tool attached NVTX returns no domain, and every NVTX call is a no-op. */
	return nvtx_get_domain() != NULL;
}

/* Pushes a range with an ASCII name; NVTX tools copy the text during the call. */
static void nvtx_push_ascii(const char *name)
{
	nvtxEventAttributes_t a = {
		.version = NVTX_VERSION,
		.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE,
		.messageType = NVTX_MESSAGE_TYPE_ASCII,
		.message.ascii = name && name[0] ? name : "(unnamed)",
	};
	nvtxDomainRangePushEx(nvtx_get_domain(), &a);
}

/* First use of a site: returns what to push with, a registered handle or one of the
 * sentinels. Kept out of line so that the common path stays small. */
static __attribute__((noinline, cold)) void *nvtx_register_site(struct tfprof_site *site)
{
	void *expected = NULL;
	if (!__atomic_compare_exchange_n(&site->nvtx_string, &expected, &nvtx_site_registering,
					 false, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
		return expected; /* another thread registers it, or has done so */

	/* A push before tfprof__nvtx_init() would register into the wrong domain; this is the
	 * cold path, so make sure rather than assume. */
	tfprof__nvtx_init();
	const char *name = site->name && site->name[0] ? site->name : "(unnamed)";
	void *h = nvtxDomainRegisterStringA(nvtx_get_domain(), name);
	if (h == NULL)
		h = &nvtx_site_unregistered;
	__atomic_store_n(&site->nvtx_string, h, __ATOMIC_RELEASE);
	return h;
}

void tfprof__nvtx_push_site(struct tfprof_site *site)
{
	void *h = __atomic_load_n(&site->nvtx_string, __ATOMIC_ACQUIRE);
	if (TFPROF_UNLIKELY(h == NULL))
		h = nvtx_register_site(site);
	if (TFPROF_UNLIKELY(h == &nvtx_site_registering || h == &nvtx_site_unregistered)) {
		nvtx_push_ascii(site->name);
		return;
	}
	nvtxEventAttributes_t a = {
		.version = NVTX_VERSION,
		.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE,
		.messageType = NVTX_MESSAGE_TYPE_REGISTERED,
		.message.registered = (nvtxStringHandle_t)h,
	};
	nvtxDomainRangePushEx(nvtx_get_domain(), &a);
}

void tfprof__nvtx_push_name(const char *name)
{
	nvtx_push_ascii(name);
}

void tfprof__nvtx_pop(void)
{
	nvtxDomainRangePop(nvtx_get_domain());
}

#else /* !TFPROF_HAVE_NVTX */

/* Built without NVTX3 headers: scopes emit no NVTX ranges. */

bool tfprof__nvtx_init(void)
{
	return false;
}

void tfprof__nvtx_push_site(struct tfprof_site *site)
{
	(void)site;
}

void tfprof__nvtx_push_name(const char *name)
{
	(void)name;
}

void tfprof__nvtx_pop(void)
{
}

#endif /* TFPROF_HAVE_NVTX */
