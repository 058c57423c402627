/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof as an NVTX tool (see nvtx_tool.h): handlers for the NVTX calls that open and close
 * ranges, which turn the program's own NVTX ranges into tfprof scopes.
 *
 * Mapping.
 * - nvtxRangePush{A,W,Ex} / nvtxDomainRangePushEx begin a scope named by the message;
 *   nvtxRangePop / nvtxDomainRangePop end the innermost open range of that domain on the
 *   thread. A range of a named domain gets the stat nvtx_domain; a payload becomes nvtx_payload,
 *   a category nvtx_category.
 * - nvtxRangeStart{A,W,Ex} / nvtxDomainRangeStartEx begin a scope and return its handle packed
 *   into the range id; nvtxRangeEnd ends it. A tfprof scope must end on its own thread and nest
 *   with the thread's other scopes, so a start/end range that ends on another thread is ignored
 *   (counted in the profile's warnings) and one that overlaps other ranges closes them with it.
 * - Registered strings are static call sites, so pushing one copies no name.
 * - A range named like a training step gets the argument step_num, which makes it a step for
 *   tfprof-report and for TFPROF_STEPS (activate.h): its name contains "step" in any case and
 *   ends in a whole number ("step 12", "Step#12", "train_step_12", "step12": 12), or, a name
 *   with "step" and no number ("train_step"), an integer payload gives the number.
 * - nvtxMark{A,W,Ex} / nvtxDomainMarkEx record an instant: a scope that ends as it begins, with
 *   the stat nvtx_mark = 1 and the same name and stats as a range. A mark is never a step, even
 *   when named like one: a step needs a duration.
 * - nvtxNameOsThread{A,W} for the calling thread names its line in the profile.
 * - Categories, resources and counters are not handled: NVTX makes them no-ops.
 * While no session records, every handler costs one load and a branch (tfprof_scope_begin's),
 * plus the per-thread bookkeeping that keeps pops matched to pushes across a session's start.
 *
 * Thread-safety: the handlers run on the program's threads, concurrently. The range stacks are
 * per thread. Domain and string handles are allocated once and never freed (NVTX lets a program
 * use them for its whole life; a program creates few), so they need no lock after creation. */
#include "nvtx_tool.h"

#if defined(TFPROF_HAVE_NVTX) && TFPROF_HAVE_NVTX

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <wchar.h>

/* Only NVTX's types and callback ids: this file implements NVTX calls and must not make any
 * (libtfprof's NVTX implementation lives in nvtx.c). */
#define NVTX_NO_IMPL
#define NVTX_AS_SYSTEM_HEADER 1
#include <nvtx3/nvToolsExt.h>

#define DOMAIN_MAGIC 0x7466646du /* "tfdm" */
#define STRING_MAGIC 0x74667374u /* "tfst" */
/* Ranges deeper than this on one thread are counted, not recorded (tfprof's own limit is the
 * same). */
#define STACK_MAX 256
#define NAME_MAX_BYTES 1024

struct tool_domain {
	uint32_t magic;
	char name[];
};

struct tool_string {
	uint32_t magic;
	struct tfprof_site site;
};

struct range {
	const struct tool_domain *domain; /* NULL: the default domain */
	tfprof_scope scope;               /* tag 0: not recorded, or already closed */
};

struct range_stack {
	uint32_t depth;
	uint32_t overflow; /* pushes beyond STACK_MAX not yet popped */
	struct range r[STACK_MAX];
};

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t stack_key;
static __thread struct range_stack *tls_stack;

static void free_stack(void *p)
{
	free(p);
	tls_stack = NULL;
}

static void make_key(void)
{
	pthread_key_create(&stack_key, free_stack);
}

static struct range_stack *stack_get(void)
{
	struct range_stack *st = tls_stack;
	if (__builtin_expect(st != NULL, 1))
		return st;
	pthread_once(&key_once, make_key);
	st = calloc(1, sizeof *st);
	if (st) {
		tls_stack = st;
		pthread_setspecific(stack_key, st);
	}
	return st;
}

static const struct tool_domain *as_domain(nvtxDomainHandle_t h)
{
	const struct tool_domain *d = (const struct tool_domain *)(const void *)h;
	return d && d->magic == DOMAIN_MAGIC ? d : NULL;
}

/* Wide (UCS-4 on Linux) to UTF-8, truncated to fit cap bytes with its NUL. */
static const char *wide_to_utf8(const wchar_t *w, char *out, size_t cap)
{
	size_t n = 0;
	for (; w && *w; w++) {
		uint32_t c = (uint32_t)*w;
		unsigned char b[4];
		size_t k;
		if (c < 0x80) {
			b[0] = (unsigned char)c;
			k = 1;
		} else if (c < 0x800) {
			b[0] = (unsigned char)(0xc0 | (c >> 6));
			b[1] = (unsigned char)(0x80 | (c & 0x3f));
			k = 2;
		} else if (c < 0x10000) {
			if (c >= 0xd800 && c < 0xe000)
				c = 0xfffd;
			b[0] = (unsigned char)(0xe0 | (c >> 12));
			b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
			b[2] = (unsigned char)(0x80 | (c & 0x3f));
			k = 3;
		} else if (c < 0x110000) {
			b[0] = (unsigned char)(0xf0 | (c >> 18));
			b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
			b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
			b[3] = (unsigned char)(0x80 | (c & 0x3f));
			k = 4;
		} else {
			b[0] = '?';
			k = 1;
		}
		if (n + k >= cap)
			break;
		memcpy(out + n, b, k);
		n += k;
	}
	out[n] = 0;
	return out;
}

/* True when name contains "step" in any case. */
static bool names_a_step(const char *name)
{
	for (const char *p = name; p && *p; p++)
		if ((p[0] | 0x20) == 's' && (p[1] | 0x20) == 't' && (p[2] | 0x20) == 'e' && (p[3] | 0x20) == 'p')
			return true;
	return false;
}

/* The step number a range's name gives: a whole number at its end, after "step" (see the mapping
 * above). The payload is the caller's fallback. */
static bool step_from_name(const char *name, int64_t *out)
{
	if (!names_a_step(name))
		return false;
	size_t n = strlen(name), k = n;
	while (k > 0 && name[k - 1] >= '0' && name[k - 1] <= '9')
		k--;
	if (k == n || n - k > 18) /* no number, or one too long for int64 */
		return false;
	int64_t v = 0;
	for (size_t i = k; i < n; i++)
		v = v * 10 + (name[i] - '0');
	*out = v;
	return true;
}

/* Begins the scope for a range, or for a mark: named by ascii, else by the attributes'
 * message. */
static tfprof_scope begin_range(const struct tool_domain *d, const nvtxEventAttributes_t *a,
				const char *ascii, bool mark)
{
	/* Any bit, not only recording: while TFPROF_STEPS waits for its first step, a step range's
	 * begin is what starts the session. */
	if (!__atomic_load_n(&tfprof__state, __ATOMIC_RELAXED))
		return (tfprof_scope){ 0, 0 };
	struct tfprof_arg args[5];
	bool int_payload = false;
	int64_t payload = 0;
	size_t nargs = 0;
	if (d)
		args[nargs++] = TFPROF_STR("nvtx_domain", d->name);
	if (mark)
		args[nargs++] = TFPROF_I64("nvtx_mark", 1);
	const char *name = ascii;
	struct tfprof_site *site = NULL;
	char buf[NAME_MAX_BYTES];
	/* Fields past the caller's struct size are not read; every NVTX 3 struct has them all. */
	if (!ascii && a && a->size >= NVTX_EVENT_ATTRIB_STRUCT_SIZE) {
		switch (a->messageType) {
		case NVTX_MESSAGE_TYPE_ASCII:
			name = a->message.ascii;
			break;
		case NVTX_MESSAGE_TYPE_UNICODE:
			name = wide_to_utf8(a->message.unicode, buf, sizeof buf);
			break;
		case NVTX_MESSAGE_TYPE_REGISTERED: {
			struct tool_string *s = (struct tool_string *)(void *)a->message.registered;
			if (s && s->magic == STRING_MAGIC)
				site = &s->site;
			break;
		}
		default:
			break;
		}
		switch (a->payloadType) {
		case NVTX_PAYLOAD_TYPE_UNSIGNED_INT64:
			args[nargs++] = TFPROF_U64("nvtx_payload", a->payload.ullValue);
			int_payload = a->payload.ullValue <= (uint64_t)INT64_MAX;
			payload = (int64_t)a->payload.ullValue;
			break;
		case NVTX_PAYLOAD_TYPE_INT64:
			args[nargs++] = TFPROF_I64("nvtx_payload", a->payload.llValue);
			int_payload = true;
			payload = a->payload.llValue;
			break;
		case NVTX_PAYLOAD_TYPE_DOUBLE:
			args[nargs++] = TFPROF_F64("nvtx_payload", a->payload.dValue);
			break;
		case NVTX_PAYLOAD_TYPE_UNSIGNED_INT32:
			args[nargs++] = TFPROF_U64("nvtx_payload", a->payload.uiValue);
			int_payload = true;
			payload = a->payload.uiValue;
			break;
		case NVTX_PAYLOAD_TYPE_INT32:
			args[nargs++] = TFPROF_I64("nvtx_payload", a->payload.iValue);
			int_payload = true;
			payload = a->payload.iValue;
			break;
		case NVTX_PAYLOAD_TYPE_FLOAT:
			args[nargs++] = TFPROF_F64("nvtx_payload", a->payload.fValue);
			break;
		default:
			break;
		}
		if (a->category)
			args[nargs++] = TFPROF_U64("nvtx_category", a->category);
	}
	const char *text = site ? site->name : name;
	int64_t step = 0;
	bool is_step = !mark && step_from_name(text, &step);
	if (!is_step && !mark && int_payload && payload >= 0 && names_a_step(text)) {
		step = payload;
		is_step = true;
	}
	if (is_step)
		args[nargs++] = TFPROF_I64("step_num", step);
	if (site)
		return tfprof_scope_begin_site(site, args, nargs);
	return tfprof_scope_begin(name, args, nargs);
}

/* Ranges of domain d open below the top of the stack: NVTX's push/pop return value. */
static int domain_depth(const struct range_stack *st, const struct tool_domain *d)
{
	int n = 0;
	for (uint32_t i = 0; i < st->depth; i++)
		n += st->r[i].domain == d;
	return n;
}

static int push(nvtxDomainHandle_t h, const nvtxEventAttributes_t *a, const char *ascii)
{
	const struct tool_domain *d = as_domain(h);
	struct range_stack *st = stack_get();
	if (!st)
		return -1;
	if (st->depth >= STACK_MAX || st->overflow) {
		st->overflow++;
		return (int)(st->depth + st->overflow - 1);
	}
	int level = domain_depth(st, d);
	st->r[st->depth].domain = d;
	st->r[st->depth].scope = begin_range(d, a, ascii, false);
	st->depth++;
	return level;
}

static int pop(nvtxDomainHandle_t h)
{
	const struct tool_domain *d = as_domain(h);
	struct range_stack *st = tls_stack;
	if (!st)
		return -1;
	if (st->overflow) {
		st->overflow--;
		return (int)(st->depth + st->overflow);
	}
	int i = (int)st->depth - 1;
	while (i >= 0 && st->r[i].domain != d)
		i--;
	if (i < 0)
		return -1; /* a pop without a push */
	tfprof_scope s = st->r[i].scope;
	/* tfprof scopes nest per thread: ending this one closes the scopes of other domains' ranges
	 * opened inside it. Their ranges stay open for NVTX; their pops end nothing. */
	for (uint32_t j = (uint32_t)i + 1; j < st->depth; j++) {
		st->r[j - 1] = st->r[j];
		st->r[j - 1].scope = (tfprof_scope){ 0, 0 };
	}
	st->depth--;
	tfprof_scope_end(s);
	return domain_depth(st, d);
}

/* A start/end range's id is its scope handle; 0 when it was not recorded. */
static nvtxRangeId_t range_start(nvtxDomainHandle_t h, const nvtxEventAttributes_t *a, const char *ascii)
{
	tfprof_scope s = begin_range(as_domain(h), a, ascii, false);
	return ((uint64_t)s.tag << 32) | s.serial;
}

static void range_end(nvtxRangeId_t id)
{
	tfprof_scope s = { (uint32_t)(id >> 32), (uint32_t)id };
	tfprof_scope_end(s);
}

static void mark(nvtxDomainHandle_t h, const nvtxEventAttributes_t *a, const char *ascii)
{
	tfprof_scope_end(begin_range(as_domain(h), a, ascii, true));
}

/* ---- Handlers ---- */

static void NVTX_API h_MarkA(const char *msg)
{
	mark(NULL, NULL, msg ? msg : "");
}

static void NVTX_API h_MarkW(const wchar_t *msg)
{
	char buf[NAME_MAX_BYTES];
	mark(NULL, NULL, wide_to_utf8(msg, buf, sizeof buf));
}

static void NVTX_API h_MarkEx(const nvtxEventAttributes_t *a)
{
	mark(NULL, a, NULL);
}

static void NVTX_API h_DomainMarkEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a)
{
	mark(d, a, NULL);
}

static int NVTX_API h_RangePushA(const char *msg)
{
	return push(NULL, NULL, msg ? msg : "");
}

static int NVTX_API h_RangePushW(const wchar_t *msg)
{
	char buf[NAME_MAX_BYTES];
	return push(NULL, NULL, wide_to_utf8(msg, buf, sizeof buf));
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

static nvtxRangeId_t NVTX_API h_RangeStartW(const wchar_t *msg)
{
	char buf[NAME_MAX_BYTES];
	return range_start(NULL, NULL, wide_to_utf8(msg, buf, sizeof buf));
}

static nvtxRangeId_t NVTX_API h_RangeStartEx(const nvtxEventAttributes_t *a)
{
	return range_start(NULL, a, NULL);
}

static void NVTX_API h_RangeEnd(nvtxRangeId_t id)
{
	range_end(id);
}

static int NVTX_API h_DomainRangePushEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a)
{
	return push(d, a, NULL);
}

static int NVTX_API h_DomainRangePop(nvtxDomainHandle_t d)
{
	return pop(d);
}

static nvtxRangeId_t NVTX_API h_DomainRangeStartEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t *a)
{
	return range_start(d, a, NULL);
}

static void NVTX_API h_DomainRangeEnd(nvtxDomainHandle_t d, nvtxRangeId_t id)
{
	(void)d;
	range_end(id);
}

static void NVTX_API h_NameOsThreadA(uint32_t tid, const char *name)
{
	/* tfprof names the calling thread only; naming others would need a lock on their state. */
	if ((pid_t)tid == (pid_t)syscall(SYS_gettid))
		tfprof_set_thread_name(name);
}

static void NVTX_API h_NameOsThreadW(uint32_t tid, const wchar_t *name)
{
	char buf[NAME_MAX_BYTES];
	h_NameOsThreadA(tid, wide_to_utf8(name, buf, sizeof buf));
}

static nvtxDomainHandle_t create_domain(const char *name)
{
	/* tfprof's own domain: refusing it keeps tfprof's scopes from coming back as ranges (see
	 * nvtx_tool.h). */
	if (!name || strcmp(name, "tfprof") == 0)
		return NULL;
	size_t n = strlen(name) + 1;
	struct tool_domain *d = malloc(sizeof *d + n);
	if (!d)
		return NULL;
	d->magic = DOMAIN_MAGIC;
	memcpy(d->name, name, n);
	return (nvtxDomainHandle_t)(void *)d;
}

static nvtxDomainHandle_t NVTX_API h_DomainCreateA(const char *name)
{
	return create_domain(name);
}

static nvtxDomainHandle_t NVTX_API h_DomainCreateW(const wchar_t *name)
{
	char buf[NAME_MAX_BYTES];
	return create_domain(name ? wide_to_utf8(name, buf, sizeof buf) : NULL);
}

static void NVTX_API h_DomainDestroy(nvtxDomainHandle_t d)
{
	/* Kept: strings registered in it, and ranges still open, may refer to it. */
	(void)d;
}

static nvtxStringHandle_t register_string(const char *text)
{
	struct tool_string *s = calloc(1, sizeof *s);
	char *copy = strdup(text ? text : "");
	if (!s || !copy) {
		free(s);
		free(copy);
		return NULL;
	}
	s->magic = STRING_MAGIC;
	s->site.name = copy;
	s->site.file = "nvtx";
	return (nvtxStringHandle_t)(void *)s;
}

static nvtxStringHandle_t NVTX_API h_DomainRegisterStringA(nvtxDomainHandle_t d, const char *text)
{
	(void)d;
	return register_string(text);
}

static nvtxStringHandle_t NVTX_API h_DomainRegisterStringW(nvtxDomainHandle_t d, const wchar_t *text)
{
	(void)d;
	char buf[NAME_MAX_BYTES];
	return register_string(text ? wide_to_utf8(text, buf, sizeof buf) : NULL);
}

/* ---- Attaching ---- */

static bool install(const NvtxExportTableCallbacks *cb, NvtxCallbackModule module, unsigned cbid,
		    NvtxFunctionPointer fn)
{
	NvtxFunctionTable table = NULL;
	unsigned size = 0;
	if (!cb->GetModuleFunctionTable(module, &table, &size) || !table || cbid >= size || !table[cbid])
		return false;
	*table[cbid] = fn;
	return true;
}

#define FN(f) ((NvtxFunctionPointer)(f))

int NVTX_API InitializeInjectionNvtx2(NvtxGetExportTableFunc_t get_table)
{
	const NvtxExportTableCallbacks *cb = get_table(NVTX_ETID_CALLBACKS);
	if (!cb || cb->struct_size < sizeof *cb || !cb->GetModuleFunctionTable)
		return 0;
	bool ok = true;
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_MarkEx, FN(h_MarkEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_MarkA, FN(h_MarkA));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_MarkW, FN(h_MarkW));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangeStartEx, FN(h_RangeStartEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangeStartA, FN(h_RangeStartA));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangeStartW, FN(h_RangeStartW));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangeEnd, FN(h_RangeEnd));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangePushEx, FN(h_RangePushEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangePushA, FN(h_RangePushA));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangePushW, FN(h_RangePushW));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_RangePop, FN(h_RangePop));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_NameOsThreadA, FN(h_NameOsThreadA));
	ok &= install(cb, NVTX_CB_MODULE_CORE, NVTX_CBID_CORE_NameOsThreadW, FN(h_NameOsThreadW));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainMarkEx, FN(h_DomainMarkEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRangeStartEx, FN(h_DomainRangeStartEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRangeEnd, FN(h_DomainRangeEnd));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRangePushEx, FN(h_DomainRangePushEx));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRangePop, FN(h_DomainRangePop));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRegisterStringA, FN(h_DomainRegisterStringA));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainRegisterStringW, FN(h_DomainRegisterStringW));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainCreateA, FN(h_DomainCreateA));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainCreateW, FN(h_DomainCreateW));
	ok &= install(cb, NVTX_CB_MODULE_CORE2, NVTX_CBID_CORE2_DomainDestroy, FN(h_DomainDestroy));
	/* A module whose NVTX lacks one of these is older than any NVTX 3; its NVTX stays a no-op
	 * rather than half-recorded. */
	if (!ok)
		return 0;
	const NvtxExportTableVersionInfo *vi = get_table(NVTX_ETID_VERSIONINFO);
	if (vi && vi->struct_size >= sizeof *vi && vi->SetInjectionNvtxVersion)
		vi->SetInjectionNvtxVersion(NVTX_VERSION);
	return 1;
}

#endif /* TFPROF_HAVE_NVTX */
