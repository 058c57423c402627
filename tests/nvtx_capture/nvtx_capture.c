/* SPDX-License-Identifier: Apache-2.0 */
/* libtfprof_nvtx_capture: a small NVTX injection library for tests. NVTX loads it through
 * NVTX_INJECTION64_PATH and calls InitializeInjectionNvtx2() once per module; it installs
 * handlers for the core and domain calls, which record each call in an in-memory log that
 * tests read through nvtx_capture.h.
 *
 * It is a test tool, so simplicity wins over speed: one mutex guards the log, the domains and
 * the registered strings. Push depths are per thread and per domain, as NVTX defines them, and
 * live in thread-local storage. Handles are pointers to this library's own records, and every
 * handle a caller passes in is looked up before it is used, so a bad handle is recorded, never
 * dereferenced. */
#define _GNU_SOURCE
#include "nvtx_capture.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <wchar.h>

/* Only NVTX's types and callback ids are needed here: this library implements NVTX calls and
 * must never make them. */
#define NVTX_NO_IMPL
#define NVTX_AS_SYSTEM_HEADER 1
#include <nvtx3/nvToolsExt.h>

#define NVTXCAP_EXPORT __attribute__((visibility("default")))

/* Depths are tracked for this many domains per thread; later domains share the last slot. */
#define MAX_DEPTH_SLOTS 64

struct cap_domain {
	const char *name;
	unsigned slot; /* index into a thread's depth array; 0 is the default domain */
};

struct cap_string {
	const char *text;
	struct cap_domain *domain; /* NULL for the default domain */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct nvtxcap_entry *entries;
static size_t n_entries, cap_entries;
static uint64_t next_seq;

/* Domains and strings are never freed: NVTX lets a caller keep using their handles. */
static struct cap_domain **domains;
static size_t n_domains, cap_domains;
static struct cap_string **strings;
static size_t n_strings, cap_strings;

static uint64_t next_range_id = 1;
static unsigned init_count;

static __thread int depth[MAX_DEPTH_SLOTS];

/* Grows *arr (of *cap elements of size sz) so that one more fits; false when out of memory. */
static bool grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 64;
	void *p = realloc(*arr, ncap * sz);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

/* The caller holds lock. */
static struct cap_domain *find_domain(nvtxDomainHandle_t h)
{
	for (size_t i = 0; i < n_domains; i++)
		if ((void *)domains[i] == (void *)h)
			return domains[i];
	return NULL;
}

/* The caller holds lock. */
static struct cap_string *find_string(nvtxStringHandle_t h)
{
	for (size_t i = 0; i < n_strings; i++)
		if ((void *)strings[i] == (void *)h)
			return strings[i];
	return NULL;
}

static char *narrow(const wchar_t *w)
{
	size_t n = wcslen(w);
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		s[i] = (w[i] > 0 && w[i] < 128) ? (char)w[i] : '?';
	s[n] = '\0';
	return s;
}

/* Fills the message and attribute fields of e from an event attribute struct. The caller holds
 * lock. The message is copied into memory the log owns. */
static void take_attrs(struct nvtxcap_entry *e, const nvtxEventAttributes_t *a)
{
	/* Fields past what the caller's struct holds are left unset; NVTX 3 structs hold all. */
	if (!a || a->size < NVTX_EVENT_ATTRIB_STRUCT_SIZE)
		return;
	e->category = a->category;
	e->color_type = a->colorType;
	e->color = a->color;
	if (a->payloadType != NVTX_PAYLOAD_UNKNOWN) {
		e->has_payload = true;
		e->payload_type = a->payloadType;
		memcpy(&e->payload, &a->payload, sizeof(e->payload));
	}
	e->message_type = a->messageType;
	switch (a->messageType) {
	case NVTX_MESSAGE_TYPE_ASCII:
		e->message = a->message.ascii ? strdup(a->message.ascii) : NULL;
		break;
	case NVTX_MESSAGE_TYPE_UNICODE:
		e->message = a->message.unicode ? narrow(a->message.unicode) : NULL;
		break;
	case NVTX_MESSAGE_TYPE_REGISTERED: {
		struct cap_string *s = find_string(a->message.registered);
		e->handle = a->message.registered;
		e->message = s ? strdup(s->text) : NULL;
		break;
	}
	default:
		break;
	}
}

/* Starts an entry of the given kind for the calling thread in domain d (NULL: the default
 * domain). The caller holds lock and fills in the rest. Returns NULL when out of memory; the
 * call is then not recorded. */
static struct nvtxcap_entry *new_entry(enum nvtxcap_kind kind, struct cap_domain *d,
				       const void *domain_handle)
{
	if (!grow((void **)&entries, &cap_entries, n_entries, sizeof(*entries)))
		return NULL;
	struct nvtxcap_entry *e = &entries[n_entries++];
	memset(e, 0, sizeof(*e));
	e->seq = next_seq++;
	e->kind = kind;
	e->tid = (pid_t)syscall(SYS_gettid);
	e->domain = d ? d->name : NULL;
	e->domain_handle = domain_handle;
	return e;
}

/* Resolves a domain handle for an event. An unknown non-null handle is recorded with the name
 * "(unknown domain)" and the default domain's depth slot. The caller holds lock. */
static struct cap_domain *event_domain(nvtxDomainHandle_t h, unsigned *slot)
{
	static struct cap_domain unknown = { "(unknown domain)", 0 };
	struct cap_domain *d = h ? find_domain(h) : NULL;
	if (h && !d)
		d = &unknown;
	*slot = d ? d->slot : 0;
	return d;
}

/* ---- Handlers: each records one call. ---- */

static int push(nvtxDomainHandle_t h, const nvtxEventAttributes_t *a, const char *ascii)
{
	unsigned slot;
	pthread_mutex_lock(&lock);
	struct cap_domain *d = event_domain(h, &slot);
	int level = depth[slot]++;
	struct nvtxcap_entry *e = new_entry(NVTXCAP_PUSH, d, h);
	if (e) {
		if (ascii) {
			e->message_type = NVTXCAP_MSG_ASCII;
			e->message = strdup(ascii);
		} else {
			take_attrs(e, a);
		}
		e->depth = level;
	}
	pthread_mutex_unlock(&lock);
	return level;
}

static int pop(nvtxDomainHandle_t h)
{
	unsigned slot;
	pthread_mutex_lock(&lock);
	struct cap_domain *d = event_domain(h, &slot);
	/* NVTX returns a negative value for a pop without a push. */
	int level = depth[slot] > 0 ? --depth[slot] : -1;
	struct nvtxcap_entry *e = new_entry(NVTXCAP_POP, d, h);
	if (e)
		e->depth = level;
	pthread_mutex_unlock(&lock);
	return level;
}

static nvtxRangeId_t range_start(nvtxDomainHandle_t h, const nvtxEventAttributes_t *a,
				 const char *ascii)
{
	unsigned slot;
	pthread_mutex_lock(&lock);
	struct cap_domain *d = event_domain(h, &slot);
	nvtxRangeId_t id = next_range_id++;
	struct nvtxcap_entry *e = new_entry(NVTXCAP_RANGE_START, d, h);
	if (e) {
		if (ascii) {
			e->message_type = NVTXCAP_MSG_ASCII;
			e->message = strdup(ascii);
		} else {
			take_attrs(e, a);
		}
		e->range_id = id;
	}
	pthread_mutex_unlock(&lock);
	return id;
}

static void range_end(nvtxDomainHandle_t h, nvtxRangeId_t id)
{
	unsigned slot;
	pthread_mutex_lock(&lock);
	struct nvtxcap_entry *e = new_entry(NVTXCAP_RANGE_END, event_domain(h, &slot), h);
	if (e)
		e->range_id = id;
	pthread_mutex_unlock(&lock);
}

static void mark(nvtxDomainHandle_t h, const nvtxEventAttributes_t *a, const char *ascii)
{
	unsigned slot;
	pthread_mutex_lock(&lock);
	struct nvtxcap_entry *e = new_entry(NVTXCAP_MARK, event_domain(h, &slot), h);
	if (e) {
		if (ascii) {
			e->message_type = NVTXCAP_MSG_ASCII;
			e->message = strdup(ascii);
		} else {
			take_attrs(e, a);
		}
	}
	pthread_mutex_unlock(&lock);
}

static int NVTX_API h_RangePushA(const char *msg)
{
	return push(NULL, NULL, msg ? msg : "");
}

static int NVTX_API h_RangePushEx(const nvtxEventAttributes_t *a)
{
	return push(NULL, a, NULL);
}

static int NVTX_API h_RangePop(void)
{
	return pop(NULL);
}

static nvtxRangeId_t NVTX_API h_RangeStartA(const char *msg)
{
	return range_start(NULL, NULL, msg ? msg : "");
}

static nvtxRangeId_t NVTX_API h_RangeStartEx(const nvtxEventAttributes_t *a)
{
	return range_start(NULL, a, NULL);
}

static void NVTX_API h_RangeEnd(nvtxRangeId_t id)
{
	range_end(NULL, id);
}

static void NVTX_API h_MarkA(const char *msg)
{
	mark(NULL, NULL, msg ? msg : "");
}

static void NVTX_API h_MarkEx(const nvtxEventAttributes_t *a)
{
	mark(NULL, a, NULL);
}

static int NVTX_API h_DomainRangePushEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a)
{
	return push(d, a, NULL);
}

static int NVTX_API h_DomainRangePop(nvtxDomainHandle_t d)
{
	return pop(d);
}

static nvtxRangeId_t NVTX_API h_DomainRangeStartEx(nvtxDomainHandle_t d,
						   const nvtxEventAttributes_t *a)
{
	return range_start(d, a, NULL);
}

static void NVTX_API h_DomainRangeEnd(nvtxDomainHandle_t d, nvtxRangeId_t id)
{
	range_end(d, id);
}

static void NVTX_API h_DomainMarkEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a)
{
	mark(d, a, NULL);
}

static nvtxDomainHandle_t NVTX_API h_DomainCreateA(const char *name)
{
	struct cap_domain *d = calloc(1, sizeof(*d));
	char *copy = strdup(name ? name : "");
	if (!d || !copy) {
		free(d);
		free(copy);
		return NULL;
	}
	d->name = copy;
	pthread_mutex_lock(&lock);
	if (!grow((void **)&domains, &cap_domains, n_domains, sizeof(*domains))) {
		pthread_mutex_unlock(&lock);
		free(copy);
		free(d);
		return NULL;
	}
	domains[n_domains++] = d;
	d->slot = n_domains < MAX_DEPTH_SLOTS ? (unsigned)n_domains : MAX_DEPTH_SLOTS - 1;
	struct nvtxcap_entry *e = new_entry(NVTXCAP_DOMAIN_CREATE, d, d);
	if (e) {
		e->message = strdup(d->name);
		e->message_type = NVTXCAP_MSG_ASCII;
		e->handle = d;
	}
	pthread_mutex_unlock(&lock);
	return (nvtxDomainHandle_t)(void *)d;
}

static void NVTX_API h_DomainDestroy(nvtxDomainHandle_t h)
{
	unsigned slot;
	pthread_mutex_lock(&lock);
	new_entry(NVTXCAP_DOMAIN_DESTROY, event_domain(h, &slot), h);
	pthread_mutex_unlock(&lock);
}

static nvtxStringHandle_t NVTX_API h_DomainRegisterStringA(nvtxDomainHandle_t h,
							   const char *text)
{
	struct cap_string *s = calloc(1, sizeof(*s));
	char *copy = strdup(text ? text : "");
	if (!s || !copy) {
		free(s);
		free(copy);
		return NULL;
	}
	s->text = copy;
	unsigned slot;
	pthread_mutex_lock(&lock);
	if (!grow((void **)&strings, &cap_strings, n_strings, sizeof(*strings))) {
		pthread_mutex_unlock(&lock);
		free(copy);
		free(s);
		return NULL;
	}
	strings[n_strings++] = s;
	s->domain = event_domain(h, &slot);
	struct nvtxcap_entry *e = new_entry(NVTXCAP_REGISTER_STRING, s->domain, h);
	if (e) {
		e->message = strdup(s->text);
		e->message_type = NVTXCAP_MSG_ASCII;
		e->handle = s;
	}
	pthread_mutex_unlock(&lock);
	return (nvtxStringHandle_t)(void *)s;
}

/* ---- Attaching to a module's NVTX. ---- */

/* Points entry cbid of a module's function table at fn. False if NVTX has no such entry. */
static bool install(const NvtxExportTableCallbacks *cb, NvtxCallbackModule module, unsigned cbid,
		    NvtxFunctionPointer fn)
{
	NvtxFunctionTable table = NULL;
	unsigned size = 0;
	if (!cb->GetModuleFunctionTable(module, &table, &size) || !table)
		return false;
	if (cbid >= size || !table[cbid])
		return false;
	*table[cbid] = fn;
	return true;
}

#define FN(f) ((NvtxFunctionPointer)(f))

NVTXCAP_EXPORT int NVTX_API InitializeInjectionNvtx2(NvtxGetExportTableFunc_t get_table)
{
	const NvtxExportTableCallbacks *cb = get_table(NVTX_ETID_CALLBACKS);
	if (!cb || cb->struct_size < sizeof(*cb) || !cb->GetModuleFunctionTable)
		return 0;

	bool ok = true;
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_MarkEx, FN(h_MarkEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_MarkA, FN(h_MarkA));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangeStartEx, FN(h_RangeStartEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangeStartA, FN(h_RangeStartA));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangeEnd, FN(h_RangeEnd));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangePushEx, FN(h_RangePushEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangePushA, FN(h_RangePushA));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangePop, FN(h_RangePop));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainMarkEx, FN(h_DomainMarkEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRangeStartEx,
		      FN(h_DomainRangeStartEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRangeEnd,
		      FN(h_DomainRangeEnd));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRangePushEx,
		      FN(h_DomainRangePushEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRangePop,
		      FN(h_DomainRangePop));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRegisterStringA,
		      FN(h_DomainRegisterStringA));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainCreateA,
		      FN(h_DomainCreateA));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainDestroy,
		      FN(h_DomainDestroy));
	/* A module whose NVTX lacks any of these calls is older than anything tfprof builds
	 * with; refusing it turns that module's NVTX into no-ops, which a test then notices. */
	if (!ok)
		return 0;

	/* Tools are asked to say which NVTX version they were built for. */
	const NvtxExportTableVersionInfo *vi = get_table(NVTX_ETID_VERSIONINFO);
	if (vi && vi->struct_size >= sizeof(*vi) && vi->SetInjectionNvtxVersion)
		vi->SetInjectionNvtxVersion(NVTX_VERSION);

	pthread_mutex_lock(&lock);
	init_count++;
	pthread_mutex_unlock(&lock);
	return 1;
}

/* ---- Test API. ---- */

NVTXCAP_API bool nvtxcap_is_initialized(void)
{
	return nvtxcap_init_count() > 0;
}

NVTXCAP_API unsigned nvtxcap_init_count(void)
{
	pthread_mutex_lock(&lock);
	unsigned n = init_count;
	pthread_mutex_unlock(&lock);
	return n;
}

NVTXCAP_API size_t nvtxcap_count(void)
{
	pthread_mutex_lock(&lock);
	size_t n = n_entries;
	pthread_mutex_unlock(&lock);
	return n;
}

NVTXCAP_API bool nvtxcap_get(size_t i, struct nvtxcap_entry *out)
{
	pthread_mutex_lock(&lock);
	bool ok = i < n_entries;
	if (ok)
		*out = entries[i];
	pthread_mutex_unlock(&lock);
	return ok;
}

NVTXCAP_API void nvtxcap_clear(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_entries; i++)
		free((void *)entries[i].message);
	n_entries = 0;
	pthread_mutex_unlock(&lock);
}

NVTXCAP_API size_t nvtxcap_domain_created_count(const char *name)
{
	size_t n = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_domains; i++)
		if (name && strcmp(domains[i]->name, name) == 0)
			n++;
	pthread_mutex_unlock(&lock);
	return n;
}
