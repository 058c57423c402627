/* SPDX-License-Identifier: Apache-2.0 */
/* Test API of libtfprof_nvtx_capture, an NVTX injection library that records every NVTX call
 * the process makes, so that tests can check which ranges tfprof emitted.
 *
 * Load it as NVTX's tool by setting NVTX_INJECTION64_PATH to its absolute path before the first
 * NVTX call of each module, and link the test to it as well: NVTX's dlopen() then returns the
 * instance the test already has, so this API sees what every module emitted.
 *
 * Thread-safety: every function may be called from any thread; the log is guarded by a mutex.
 * Strings in an entry belong to the log and stay valid until nvtxcap_clear(); domain names stay
 * valid for the life of the process. */
#ifndef NVTX_CAPTURE_H
#define NVTX_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NVTXCAP_API __attribute__((visibility("default")))

enum nvtxcap_kind {
	NVTXCAP_DOMAIN_CREATE = 1,   /* nvtxDomainCreateA: message = name, handle = the domain */
	NVTXCAP_DOMAIN_DESTROY = 2,  /* nvtxDomainDestroy */
	NVTXCAP_REGISTER_STRING = 3, /* nvtxDomainRegisterStringA: message = string, handle = it */
	NVTXCAP_PUSH = 4,            /* nvtxRangePushA/Ex, nvtxDomainRangePushEx */
	NVTXCAP_POP = 5,             /* nvtxRangePop, nvtxDomainRangePop */
	NVTXCAP_RANGE_START = 6,     /* nvtxRangeStartA/Ex, nvtxDomainRangeStartEx */
	NVTXCAP_RANGE_END = 7,       /* nvtxRangeEnd, nvtxDomainRangeEnd */
	NVTXCAP_MARK = 8,            /* nvtxMarkA/Ex, nvtxDomainMarkEx */
};

/* The same values as NVTX's nvtxMessageType_t. */
enum nvtxcap_msg_type {
	NVTXCAP_MSG_NONE = 0,
	NVTXCAP_MSG_ASCII = 1,
	NVTXCAP_MSG_UNICODE = 2,
	NVTXCAP_MSG_REGISTERED = 3,
};

struct nvtxcap_entry {
	uint64_t seq;              /* 0, 1, 2... in the order the calls took the log's lock */
	enum nvtxcap_kind kind;
	pid_t tid;                 /* the calling thread (gettid) */
	const char *domain;        /* the domain's name; NULL for NVTX's default domain */
	const void *domain_handle; /* NULL for the default domain */
	/* The event's text: an ASCII message as given, a registered string resolved to its text,
	 * a wide message narrowed to ASCII ('?' for other characters). NULL when the event had no
	 * message or named a string handle this library never issued. */
	const char *message;
	int message_type;     /* enum nvtxcap_msg_type */
	const void *handle;   /* DOMAIN_CREATE, REGISTER_STRING: the handle returned; PUSH, MARK,
			       * RANGE_START with a registered message: the handle passed */
	bool has_payload;
	int payload_type;     /* nvtxPayloadType_t */
	uint64_t payload;     /* the payload union's bytes */
	uint32_t category;
	int color_type;
	uint32_t color;
	int depth;            /* PUSH: the 0-based level started; POP: the level ended, or -1 when
			       * the thread had no open range in that domain */
	uint64_t range_id;    /* RANGE_START: the id returned; RANGE_END: the id passed */
};

/* True once some module's NVTX attached this library as its tool. */
NVTXCAP_API bool nvtxcap_is_initialized(void);
/* How many modules' NVTX attached this library (each module initializes NVTX separately). */
NVTXCAP_API unsigned nvtxcap_init_count(void);
/* Number of entries in the log. */
NVTXCAP_API size_t nvtxcap_count(void);
/* Copies entry i into *out; false if i is out of range. */
NVTXCAP_API bool nvtxcap_get(size_t i, struct nvtxcap_entry *out);
/* Empties the log and frees its strings. Domains, registered strings and per-thread push depths
 * are kept: they are NVTX state, not log entries. */
NVTXCAP_API void nvtxcap_clear(void);
/* How many domains named name were created since the process started (not reset by
 * nvtxcap_clear()). */
NVTXCAP_API size_t nvtxcap_domain_created_count(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* NVTX_CAPTURE_H */
