/* SPDX-License-Identifier: Apache-2.0 */
/* Finds libcupti at run time, checks its version and resolves the functions tfprof calls (see
 * loader.h for the search order and why nothing is ever unloaded). */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"

/* Libraries that loaded and resolved, each with its table. Distinct libraries in one process are
 * rare (a test that switches TFPROF_CUPTI_LIBRARY between sessions), so a few slots suffice. */
#define MAX_LIBS 8

struct lib {
	void *handle;
	char path[4096];
	struct tfprof__cupti_fns fns;
};

static struct lib libs[MAX_LIBS];
static size_t nlibs;

/* Appends formatted text to a message buffer, truncating quietly when it is full. */
static void msg_add(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msg_add(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strnlen(buf, len);
	if (used + 1 >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

/* dlerror() text on one line: a message in the profile is a single line. */
static void copy_one_line(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "unknown error");
	for (char *p = dst; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

#define REQUIRED(field, sym) { offsetof(struct tfprof__cupti_fns, field), #sym, true }
#define OPTIONAL(field, sym) { offsetof(struct tfprof__cupti_fns, field), #sym, false }

static const struct symbol {
	size_t offset;
	const char *name;
	bool required;
} symbols[] = {
	REQUIRED(GetVersion, cuptiGetVersion),
	REQUIRED(GetResultString, cuptiGetResultString),
	REQUIRED(GetTimestamp, cuptiGetTimestamp),
	REQUIRED(GetDeviceId, cuptiGetDeviceId),
	REQUIRED(ActivityRegisterCallbacks, cuptiActivityRegisterCallbacks),
	REQUIRED(ActivityEnable, cuptiActivityEnable),
	REQUIRED(ActivityDisable, cuptiActivityDisable),
	REQUIRED(ActivityFlushAll, cuptiActivityFlushAll),
	REQUIRED(ActivityGetNextRecord, cuptiActivityGetNextRecord),
	REQUIRED(ActivityGetNumDroppedRecords, cuptiActivityGetNumDroppedRecords),
	REQUIRED(Subscribe, cuptiSubscribe),
	REQUIRED(Unsubscribe, cuptiUnsubscribe),
	REQUIRED(EnableCallback, cuptiEnableCallback),
	OPTIONAL(Subscribe_v2, cuptiSubscribe_v2),
	OPTIONAL(ActivityEnableAndDump, cuptiActivityEnableAndDump),
};

/* Resolves every symbol of one opened library into fns. Returns false with the reason in why. */
static bool resolve(void *h, struct tfprof__cupti_fns *fns, char *why, size_t whylen)
{
	for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
		dlerror();
		void *p = dlsym(h, symbols[i].name);
		if (!p && symbols[i].required) {
			snprintf(why, whylen, "it has no %s", symbols[i].name);
			return false;
		}
		/* POSIX guarantees that a data pointer from dlsym converts to a function pointer. */
		memcpy((char *)fns + symbols[i].offset, &p, sizeof p);
	}
	return true;
}

/* Tries one candidate. Returns the loaded library, or NULL with the reason in why. */
static const struct lib *try_load(const char *path, char *why, size_t whylen)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		copy_one_line(why, whylen, dlerror());
		return NULL;
	}
	for (size_t i = 0; i < nlibs; i++)
		if (libs[i].handle == h) {
			/* Already resolved: drop the reference this dlopen added (the library stays
			 * loaded through the first one, which is never released). */
			dlclose(h);
			return &libs[i];
		}
	/* From here on the handle is deliberately never closed, even when the library turns out
	 * unusable: its constructors have run, and CUPTI's may have started threads. */
	struct tfprof__cupti_fns fns = { 0 };
	if (!resolve(h, &fns, why, whylen))
		return NULL;
	uint32_t v = 0;
	CUptiResult rc = fns.GetVersion(&v);
	if (rc != CUPTI_SUCCESS) {
		snprintf(why, whylen, "cuptiGetVersion failed with CUPTI error %d", (int)rc);
		return NULL;
	}
	if (v < TFPROF_CUPTI_MIN_VERSION) {
		snprintf(why, whylen,
			 "it is CUPTI API version %u, older than the %u (CUDA 13.0) that tfprof needs", v,
			 TFPROF_CUPTI_MIN_VERSION);
		return NULL;
	}
	if (nlibs == MAX_LIBS) {
		snprintf(why, whylen, "tfprof already loaded %d different CUPTI libraries in this process",
			 MAX_LIBS);
		return NULL;
	}
	struct lib *l = &libs[nlibs++];
	l->handle = h;
	snprintf(l->path, sizeof l->path, "%s", path);
	l->fns = fns;
	l->fns.path = l->path;
	l->fns.version = v;
	return l;
}

int tfprof__cupti_load(const struct tfprof__cupti_fns **out, char *err, size_t errlen)
{
	char why[1024];
	*out = NULL;
	if (errlen)
		err[0] = '\0';

	const char *env = tfprof__getenv("TFPROF_CUPTI_LIBRARY");
	if (env && *env) {
		why[0] = '\0';
		const struct lib *l = try_load(env, why, sizeof why);
		if (l) {
			*out = &l->fns;
			return 0;
		}
		snprintf(err, errlen,
			 "GPU tracing is off: TFPROF_CUPTI_LIBRARY=%s could not be used (%s); point it at "
			 "the CUDA 13 libcupti.so.13 or unset it to search the usual places",
			 env, why);
		return -ENOENT;
	}

	/* The candidates, in order; $CUDA_HOME ones only when it is set. */
	char cands[6][1024];
	size_t n = 0;
	snprintf(cands[n++], sizeof cands[0], "libcupti.so.13");
	snprintf(cands[n++], sizeof cands[0], "libcupti.so");
	const char *home = tfprof__getenv("CUDA_HOME");
	if (home && *home) {
		snprintf(cands[n++], sizeof cands[0], "%s/lib64/libcupti.so.13", home);
		snprintf(cands[n++], sizeof cands[0], "%s/extras/CUPTI/lib64/libcupti.so.13", home);
	}
	snprintf(cands[n++], sizeof cands[0], "/usr/local/cuda/lib64/libcupti.so.13");
	snprintf(cands[n++], sizeof cands[0], "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13");

	/* Reasons worth reporting: a library that exists but cannot be used says more than the
	 * "no such file" of every other candidate. */
	char tried[2048] = "", unusable[2048] = "", last[1024] = "";
	for (size_t i = 0; i < n; i++) {
		why[0] = '\0';
		const struct lib *l = try_load(cands[i], why, sizeof why);
		if (l) {
			*out = &l->fns;
			return 0;
		}
		msg_add(tried, sizeof tried, "%s%s", i ? ", " : "", cands[i]);
		if (strstr(why, "No such file") || strstr(why, "cannot open shared object")) {
			snprintf(last, sizeof last, "%s", why);
		} else {
			msg_add(unusable, sizeof unusable, "%s%s: %s", unusable[0] ? "; " : "", cands[i],
				why);
		}
	}
	if (unusable[0]) {
		snprintf(err, errlen,
			 "GPU tracing is off: no usable libcupti was found (tried %s; %s); install the "
			 "CUDA 13 toolkit's CUPTI or set TFPROF_CUPTI_LIBRARY to its libcupti.so.13",
			 tried, unusable);
		return -ENOEXEC;
	}
	snprintf(err, errlen,
		 "GPU tracing is off: libcupti could not be loaded (tried %s; last error: %s); install "
		 "the CUDA toolkit's CUPTI or set TFPROF_CUPTI_LIBRARY to the path of libcupti.so.13",
		 tried, last[0] ? last : "not found");
	return -ENOENT;
}

const char *tfprof__cupti_result_name(const struct tfprof__cupti_fns *f, CUptiResult r)
{
	static __thread char buf[48];
	const char *s = NULL;
	if (f && f->GetResultString && f->GetResultString(r, &s) == CUPTI_SUCCESS && s && *s)
		return s;
	snprintf(buf, sizeof buf, "CUPTI error %d", (int)r);
	return buf;
}
