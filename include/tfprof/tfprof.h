/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof public API: profiling sessions, host trace scopes with typed arguments, and the error
 * codes they return. This header is the whole public surface of libtfprof; everything else is
 * internal.
 *
 * The model is TensorFlow's `tf.profiler.experimental`: tfprof_start(logdir) begins a session,
 * scopes record host work while it runs, tfprof_stop() writes
 * <logdir>/plugins/profile/<run>/<host>.xplane.pb, which TensorBoard's profile plugin (xprof) opens.
 *
 * Thread-safety: every function may be called from any thread. tfprof_start() and tfprof_stop()
 * are serialized internally. A scope must be ended on the thread that began it; other ends are
 * ignored and counted, never a crash. */
#ifndef TFPROF_TFPROF_H
#define TFPROF_TFPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TFPROF_API __attribute__((visibility("default")))
#define TFPROF_LIKELY(x) __builtin_expect(!!(x), 1)
#define TFPROF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define TFPROF_API
#define TFPROF_LIKELY(x) (x)
#define TFPROF_UNLIKELY(x) (x)
#endif

#define TFPROF_VERSION_MAJOR 0
#define TFPROF_VERSION_MINOR 1
#define TFPROF_VERSION_PATCH 0
/* The version as one number, MAJOR * 10000 + MINOR * 100 + PATCH, as tfprof_version() returns it
 * for the library actually loaded: a program can check that it runs against a library at least
 * as new as the header it was built with (same major, minor >=). */
#define TFPROF_VERSION (TFPROF_VERSION_MAJOR * 10000 + TFPROF_VERSION_MINOR * 100 + TFPROF_VERSION_PATCH)

/* ---- Errors --------------------------------------------------------------------------------
 * Functions that can fail return 0 or a negative code: a negative errno (e.g. -EACCES when the
 * logdir cannot be written) or one of the codes below, which lie above the errno range.
 * tfprof_strerror() explains either kind in one line that says what to do. */
enum tfprof_error {
	TFPROF_ERR_BASE = 4096,
	/* tfprof_start() while a session is already running. */
	TFPROF_ERR_ACTIVE = -(TFPROF_ERR_BASE + 1),
	/* tfprof_stop() without a running session. */
	TFPROF_ERR_NOT_ACTIVE = -(TFPROF_ERR_BASE + 2),
	/* The options struct has a size or a value this version cannot use. */
	TFPROF_ERR_OPTIONS = -(TFPROF_ERR_BASE + 3),
	/* The logdir could not be written; the profile was written to the fallback path that
	 * tfprof_last_output() returns instead. */
	TFPROF_ERR_FALLBACK = -(TFPROF_ERR_BASE + 4),
	/* The profile could be written neither to the logdir nor to the fallback directory; it is
	 * kept in memory and the next tfprof_stop_retry() tries again. */
	TFPROF_ERR_UNWRITTEN = -(TFPROF_ERR_BASE + 5),
	/* tfprof_stop() while the running session is tfprof-start's (TFPROF_START=1): it belongs to
	 * the environment, goes on and is written when the program ends; nothing was stopped. */
	TFPROF_ERR_ACTIVATED = -(TFPROF_ERR_BASE + 6),
};

/* The loaded library's version, encoded as TFPROF_VERSION is. */
TFPROF_API int tfprof_version(void);

/* Returns a static, NUL-terminated, one-line description of err (0, a negative errno or a
 * TFPROF_ERR_* code). Never NULL. */
TFPROF_API const char *tfprof_strerror(int err);

/* ---- Sessions ------------------------------------------------------------------------------ */

/* Called with each message tfprof has for the user (warnings, errors, where a profile went).
 * level is one of TFPROF_LOG_*; msg is valid only during the call. The callback may run on any
 * thread that calls tfprof_start()/tfprof_stop() and must not call them. */
enum tfprof_log_level { TFPROF_LOG_ERROR = 0, TFPROF_LOG_WARN = 1, TFPROF_LOG_INFO = 2 };
typedef void (*tfprof_log_fn)(int level, const char *msg, void *ctx);

/* Session options. Initialise with TFPROF_OPTIONS() so that sz is set: fields beyond sz keep
 * their defaults, which lets a program built against an older header run with a newer library
 * (the libbpf convention). Zero means "default" for every field. Strings are copied by
 * tfprof_start(); the caller keeps ownership. */
struct tfprof_options {
	size_t sz;
	/* Run directory name under <logdir>/plugins/profile/. Default: local time as
	 * %Y_%m_%d_%H_%M_%S. An existing profile is never overwritten: a taken name gets a _N
	 * suffix. */
	const char *run_name;
	/* File name stem, shown by xprof as the host. Default: gethostname(); ':' and '/' become
	 * '_'. */
	const char *host_name;
	/* Upper bound in bytes on event buffer memory for the whole session. Default: 256 MiB or
	 * TFPROF_MAX_MEMORY_MB. When it is reached, new events are dropped and counted; the count
	 * appears in the profile's warnings. */
	size_t max_memory;
	/* Disables GPU tracing (CUPTI) for this session (also: TFPROF_GPU=0). */
	bool disable_gpu;
	/* Disables the NVTX range that each scope also emits. */
	bool disable_nvtx;
	/* Receives messages. Default: nothing is printed unless TFPROF_LOG=1 (then stderr). */
	tfprof_log_fn log_fn;
	void *log_ctx;
	/* Size in bytes of each CUPTI activity buffer. Default: TFPROF_CUPTI_BUFFER_KB or 4 MiB. */
	size_t gpu_buffer_size;
	/* CUPTI activity buffers allocated at start (the pool never grows while recording).
	 * Default: TFPROF_CUPTI_BUFFERS or 16. */
	size_t gpu_buffer_count;
	/* With GPU tracing on, CUDA allocations and releases are recorded (xprof's Memory Profile,
	 * a bytes-in-use counter on each GPU, peak memory per step in tfprof-report); this turns
	 * that off (also: TFPROF_GPU_MEMORY=0). */
	bool disable_gpu_memory;
};

#define TFPROF_OPTIONS(name, ...)                                                               \
	struct tfprof_options name = { .sz = sizeof(struct tfprof_options), __VA_ARGS__ }

/* Starts a session that writes under logdir (created if missing). opts may be NULL for
 * defaults. Returns 0, TFPROF_ERR_ACTIVE if a session is running (also tfprof-start's, whose
 * session then records this program's scopes), -EINVAL for a NULL or empty logdir,
 * TFPROF_ERR_OPTIONS for a bad options struct. */
TFPROF_API int tfprof_start(const char *logdir, const struct tfprof_options *opts);

/* Stops the session, merges what was recorded and writes the profile (to a temporary name, then
 * renamed, so no reader ever sees half a file). Returns 0, TFPROF_ERR_NOT_ACTIVE without a
 * session, TFPROF_ERR_ACTIVATED when the session is tfprof-start's (left running), TFPROF_ERR_FALLBACK when the logdir was unwritable and the profile went to the
 * fallback path instead, or TFPROF_ERR_UNWRITTEN when it could not be written at all (it is then
 * kept for tfprof_stop_retry()). Scopes still open are closed at the stop time and marked with
 * the stat `tfprof_open_at_stop`. */
TFPROF_API int tfprof_stop(void);

/* Writes a profile that tfprof_stop() could not write (TFPROF_ERR_UNWRITTEN), to logdir if it is
 * not NULL, else to the session's logdir. Returns 0, TFPROF_ERR_NOT_ACTIVE when nothing is kept,
 * or the same errors as tfprof_stop(). */
TFPROF_API int tfprof_stop_retry(const char *logdir);

/* Path of the last profile written, or "" if none. The string stays valid until the next
 * tfprof_stop() or tfprof_stop_retry(). */
TFPROF_API const char *tfprof_last_output(void);

/* Implementation detail of tfprof_enabled() and the scope macros: bit 0 is set while a session
 * records. Read it only through tfprof_enabled(). */
TFPROF_API extern uint32_t tfprof__state;
#define TFPROF_STATE_ON 1u

/* True while a session records. One relaxed atomic load: cheap enough to guard argument
 * computation in hot code. */
static inline bool tfprof_enabled(void)
{
	return (__atomic_load_n(&tfprof__state, __ATOMIC_RELAXED) & TFPROF_STATE_ON) != 0;
}

/* Names the calling thread's line in the profile (default: the OS thread name). The string is
 * copied; it may be set before, during or between sessions. */
TFPROF_API void tfprof_set_thread_name(const char *name);

/* ---- Profiler server (on-demand capture) ---------------------------------------------------
 * A server inside this process that answers TensorFlow's ProfilerService gRPC protocol, so that
 * xprof's "Capture Profile" button, tf.profiler.experimental.client.trace and tfprof-capture can
 * profile the running program for a while. It runs on its own threads; the program is not
 * profiled (and runs at full speed) until a capture arrives. One session at a time: a capture
 * while another session runs is answered ALREADY_EXISTS. The gRPC code lives in a separate
 * module (libtfprof_server.so, beside libtfprof) that is loaded only by tfprof_server_start(). */

/* What a capture asked for, given to the hooks below (e.g. so that a Python binding can switch
 * its Python tracer on for python_tracer_level 1). */
struct tfprof_capture_info {
	size_t sz;
	uint32_t host_tracer_level, device_tracer_level, python_tracer_level;
	uint64_t duration_ms;
	/* The file the capture writes (on_capture_stop: the one it wrote, or "" if none). */
	const char *path;
};
typedef void (*tfprof_capture_fn)(const struct tfprof_capture_info *info, void *ctx);

struct tfprof_server_options {
	size_t sz;
	/* Captures may write only under this directory (also: TFPROF_SERVER_ROOT). Default: any
	 * absolute repository_root the client names, as TensorFlow's server does. */
	const char *root;
	/* Longest capture accepted, in ms; longer requests are refused with INVALID_ARGUMENT.
	 * Default: TFPROF_SERVER_MAX_MS or 600000 (10 minutes). */
	uint64_t max_duration_ms;
	/* Called on the server's capture thread just after a capture's session started and just
	 * after its profile was written (path: the file, or "" when nothing was recorded); they must
	 * not call tfprof_start()/tfprof_stop(). */
	tfprof_capture_fn on_capture_start, on_capture_stop;
	void *hook_ctx;
};

#define TFPROF_SERVER_OPTIONS(name, ...)                                                        \
	struct tfprof_server_options name = { .sz = sizeof(struct tfprof_server_options), __VA_ARGS__ }

/* Starts the server on addr: "PORT", "HOST:PORT" or "[IPv6]:PORT" (default host 127.0.0.1:
 * listening on other interfaces takes an explicit address such as "0.0.0.0:6009"); port 0 picks
 * a free port (see tfprof_server_port()). opts may be NULL. Returns 0, -EINVAL for a bad address
 * or server root, TFPROF_ERR_OPTIONS for a bad options struct, -EADDRINUSE when the port cannot be
 * bound, -EALREADY when a server runs, -ENOTSUP when the server module or gRPC cannot be loaded;
 * tfprof_server_last_error() says which, in words. */
TFPROF_API int tfprof_server_start(const char *addr, const struct tfprof_server_options *opts);

/* Why the last tfprof_server_start() failed, in one line that says what to do ("" after a
 * success). Valid until the next tfprof_server_start(). */
TFPROF_API const char *tfprof_server_last_error(void);

/* The port the running server listens on, or 0 when none runs. */
TFPROF_API int tfprof_server_port(void);

/* Stops the server: a capture in progress ends and its profile is written first. Returns 0 or
 * TFPROF_ERR_NOT_ACTIVE when no server runs. */
TFPROF_API int tfprof_server_stop(void);

/* ---- Typed arguments -------------------------------------------------------------------------
 * A scope's key=value arguments, kept typed until the profile is written (no formatting on the
 * hot path). In the profile each becomes a per-event stat named by the key: int64, uint64,
 * double, string (interned, as ref_value), bool (as int64 0/1). Keys and string values are
 * copied when the scope begins unless TFPROF_ARG_STATIC_KEY says the key is a string literal
 * (the TFPROF_I64()... macros set it, and reject keys that are not literals). */
enum tfprof_arg_type {
	TFPROF_ARG_I64 = 1,
	TFPROF_ARG_U64 = 2,
	TFPROF_ARG_F64 = 3,
	TFPROF_ARG_BOOL = 4,
	TFPROF_ARG_STR = 5,
};
#define TFPROF_ARG_STATIC_KEY 0x80u

/* ABI: struct tfprof_arg and struct tfprof_site are compiled into programs (arrays of arguments,
 * static descriptors), so their layout is frozen for the life of major version 0: the sizes and
 * offsets below never change (the static assertions after them say so to anyone editing). They
 * grow without breaking old binaries this way: `reserved` is 0 in everything built against this
 * header; a later version may set bits there that announce what it added (new argument types
 * carry their payload through v.str's pointer; a larger site descriptor is announced by a bit in
 * tfprof_site.reserved and read only when set). The library accepts what older headers made. */
struct tfprof_arg {
	const char *key;
	uint32_t type; /* enum tfprof_arg_type, optionally | TFPROF_ARG_STATIC_KEY */
	uint32_t reserved; /* 0; see the ABI note above */
	union {
		int64_t i64;
		uint64_t u64;
		double f64;
		bool b;
		const char *str;
	} v;
};

#ifndef __cplusplus
#define TFPROF_ARG_(k, t, field, val)                                                           \
	((struct tfprof_arg){ .key = "" k "", .type = (t) | TFPROF_ARG_STATIC_KEY, .v.field = (val) })
#define TFPROF_I64(key, val) TFPROF_ARG_(key, TFPROF_ARG_I64, i64, (int64_t)(val))
#define TFPROF_U64(key, val) TFPROF_ARG_(key, TFPROF_ARG_U64, u64, (uint64_t)(val))
#define TFPROF_F64(key, val) TFPROF_ARG_(key, TFPROF_ARG_F64, f64, (double)(val))
#define TFPROF_BOOL(key, val) TFPROF_ARG_(key, TFPROF_ARG_BOOL, b, (bool)(val))
#define TFPROF_STR(key, val) TFPROF_ARG_(key, TFPROF_ARG_STR, str, (val))
#else
/* C++ has no compound literals with nested designators: the same typed args as functions. */
static inline tfprof_arg tfprof_arg_make_(const char *k, uint32_t t)
{
	tfprof_arg a;
	a.key = k;
	a.type = t | TFPROF_ARG_STATIC_KEY;
	a.reserved = 0;
	a.v.u64 = 0;
	return a;
}
static inline tfprof_arg tfprof_arg_i64_(const char *k, int64_t v)
{
	tfprof_arg a = tfprof_arg_make_(k, TFPROF_ARG_I64);
	a.v.i64 = v;
	return a;
}
static inline tfprof_arg tfprof_arg_u64_(const char *k, uint64_t v)
{
	tfprof_arg a = tfprof_arg_make_(k, TFPROF_ARG_U64);
	a.v.u64 = v;
	return a;
}
static inline tfprof_arg tfprof_arg_f64_(const char *k, double v)
{
	tfprof_arg a = tfprof_arg_make_(k, TFPROF_ARG_F64);
	a.v.f64 = v;
	return a;
}
static inline tfprof_arg tfprof_arg_bool_(const char *k, bool v)
{
	tfprof_arg a = tfprof_arg_make_(k, TFPROF_ARG_BOOL);
	a.v.b = v;
	return a;
}
static inline tfprof_arg tfprof_arg_str_(const char *k, const char *v)
{
	tfprof_arg a = tfprof_arg_make_(k, TFPROF_ARG_STR);
	a.v.str = v;
	return a;
}
#define TFPROF_I64(key, val) tfprof_arg_i64_("" key "", (int64_t)(val))
#define TFPROF_U64(key, val) tfprof_arg_u64_("" key "", (uint64_t)(val))
#define TFPROF_F64(key, val) tfprof_arg_f64_("" key "", (double)(val))
#define TFPROF_BOOL(key, val) tfprof_arg_bool_("" key "", (bool)(val))
#define TFPROF_STR(key, val) tfprof_arg_str_("" key "", (val))
#endif

/* ---- Scopes ----------------------------------------------------------------------------------
 * A scope is a named, timed range on the calling thread, the C form of
 * `tf.profiler.experimental.Trace(name, **kwargs)`. While a session records it becomes an event
 * on its thread's line in the profile and, unless NVTX is disabled, an NVTX range in the
 * "tfprof" domain. When no session records, a scope costs one relaxed load and a branch.
 *
 * End every scope exactly once, on the thread that began it. An end on another thread, a second
 * end, or the end of a handle from an earlier session is ignored and counted in the profile's
 * warnings. Ending an outer scope before an inner one closes the inner one at the same time. */
typedef struct tfprof_scope {
	uint32_t tag;    /* identifies the (thread, session) that began it; 0 = not recorded */
	uint32_t serial; /* the scope's number on that thread */
} tfprof_scope;

/* A static descriptor per call site (Tracy's source location): the scope macros make one for
 * each literal name, which makes the name free to record and lets NVTX register it once. */
struct tfprof_site {
	const char *name;
	const char *file;
	uint32_t line;
	uint32_t reserved; /* 0; see the ABI note at struct tfprof_arg */
	void *nvtx_string; /* registered NVTX string, filled in on first use */
};

#if defined(__x86_64__) || defined(__aarch64__)
#ifdef __cplusplus
#define TFPROF_STATIC_ASSERT_(c, m) static_assert(c, m)
#else
#define TFPROF_STATIC_ASSERT_(c, m) _Static_assert(c, m)
#endif
TFPROF_STATIC_ASSERT_(sizeof(struct tfprof_arg) == 24 && offsetof(struct tfprof_arg, v) == 16,
		      "struct tfprof_arg is frozen ABI");
TFPROF_STATIC_ASSERT_(sizeof(struct tfprof_site) == 32 && offsetof(struct tfprof_site, nvtx_string) == 24,
		      "struct tfprof_site is frozen ABI");
TFPROF_STATIC_ASSERT_(sizeof(tfprof_scope) == 8, "tfprof_scope is frozen ABI");
#endif

/* Begins a scope named name (copied; NULL or "" is recorded as "(unnamed)") with nargs arguments
 * (copied). args may be NULL when nargs is 0. Returns a handle for tfprof_scope_end(). */
TFPROF_API tfprof_scope tfprof_scope_begin_slow(const char *name, const struct tfprof_arg *args,
						 size_t nargs);
/* Begins a scope described by a static call-site descriptor (see TFPROF_SCOPE()). */
TFPROF_API tfprof_scope tfprof_scope_begin_site_slow(struct tfprof_site *site,
						      const struct tfprof_arg *args, size_t nargs);
/* Adds arguments to an open scope begun on this thread; an argument whose key is already set
 * replaces it (the last value wins). Ignored for a scope that is not open. */
TFPROF_API void tfprof_scope_set_metadata_slow(tfprof_scope s, const struct tfprof_arg *args,
						size_t nargs);
TFPROF_API void tfprof_scope_end_slow(tfprof_scope s);

static inline tfprof_scope tfprof_scope_begin(const char *name, const struct tfprof_arg *args,
					      size_t nargs)
{
	if (TFPROF_LIKELY(!__atomic_load_n(&tfprof__state, __ATOMIC_RELAXED))) {
		tfprof_scope none = { 0, 0 };
		return none;
	}
	return tfprof_scope_begin_slow(name, args, nargs);
}

static inline tfprof_scope tfprof_scope_begin_site(struct tfprof_site *site,
						   const struct tfprof_arg *args, size_t nargs)
{
	if (TFPROF_LIKELY(!__atomic_load_n(&tfprof__state, __ATOMIC_RELAXED))) {
		tfprof_scope none = { 0, 0 };
		return none;
	}
	return tfprof_scope_begin_site_slow(site, args, nargs);
}

static inline void tfprof_scope_set_metadata(tfprof_scope s, const struct tfprof_arg *args,
					     size_t nargs)
{
	if (s.tag != 0)
		tfprof_scope_set_metadata_slow(s, args, nargs);
}

static inline void tfprof_scope_end(tfprof_scope s)
{
	if (s.tag != 0)
		tfprof_scope_end_slow(s);
}

/* ---- Scoped forms (C with GCC or Clang: __attribute__((cleanup)); C++: a destructor) ---------
 * TFPROF_SCOPE("name", TFPROF_I64("step_num", i), ...) begins a scope that ends when the
 * enclosing block is left, also through return, break, continue or goto. name must be a string
 * literal; use tfprof_scope_begin() for names built at run time.
 *
 * TFPROF_SCOPE_AS(var, "name", args...) does the same and names the handle, so that
 * TFPROF_SET_METADATA(var, args...) can add arguments later: the C form of
 *   with tf.profiler.experimental.Trace("name") as tm: tm.set_metadata(in_cache=True) */
#define TFPROF_CAT2_(a, b) a##b
#define TFPROF_CAT_(a, b) TFPROF_CAT2_(a, b)
#define TFPROF_SCOPE(name, ...)                                                                 \
	TFPROF_SCOPE_AS(TFPROF_CAT_(tfprof_scope_, __LINE__), name, __VA_ARGS__)

/* The session check comes first so that, with no session, not even the argument array is built:
 * a disabled scope is one load and a branch. */
#if defined(__cplusplus)
} /* extern "C" */
/* C++: the scope is an object whose destructor ends it. */
struct tfprof_scope_guard_ {
	tfprof_scope s;
	explicit tfprof_scope_guard_(tfprof_scope begun) : s(begun) {}
	~tfprof_scope_guard_() { tfprof_scope_end(s); }
	tfprof_scope_guard_(const tfprof_scope_guard_ &) = delete;
	tfprof_scope_guard_ &operator=(const tfprof_scope_guard_ &) = delete;
};
#define TFPROF_SCOPE_AS(var, name, ...)                                                         \
	static tfprof_site TFPROF_CAT_(var, _site_) = { "" name "", __FILE__, __LINE__, 0, 0 };    \
	tfprof_scope_guard_ var(                                                                \
		TFPROF_UNLIKELY(__atomic_load_n(&tfprof__state, __ATOMIC_RELAXED))                \
			? [&]() {                                                                   \
				  const tfprof_arg a_[] = { tfprof_arg(), __VA_ARGS__ };            \
				  return tfprof_scope_begin_site_slow(                              \
					  &TFPROF_CAT_(var, _site_), a_ + 1,                        \
					  sizeof(a_) / sizeof(tfprof_arg) - 1);                     \
			  }()                                                                       \
			: tfprof_scope())
#define TFPROF_SET_METADATA(var, ...)                                                           \
	do {                                                                                    \
		const tfprof_arg tfprof_md_[] = { tfprof_arg(), __VA_ARGS__ };                  \
		tfprof_scope_set_metadata((var).s, tfprof_md_ + 1,                              \
					  sizeof(tfprof_md_) / sizeof(tfprof_arg) - 1);         \
	} while (0)
extern "C" {
#elif defined(__GNUC__) || defined(__clang__)
static inline void tfprof_scope_cleanup_(tfprof_scope *s)
{
	tfprof_scope_end(*s);
}

#define TFPROF_ARGS_(...) ((const struct tfprof_arg[]){ { 0 }, __VA_ARGS__ } + 1)
#define TFPROF_NARGS_(...) (sizeof((struct tfprof_arg[]){ { 0 }, __VA_ARGS__ }) / sizeof(struct tfprof_arg) - 1)

#define TFPROF_SCOPE_AS(var, name, ...)                                                         \
	static struct tfprof_site TFPROF_CAT_(var, _site_) = { "" name "", __FILE__, __LINE__, 0,   \
							     0 };                                   \
	__attribute__((cleanup(tfprof_scope_cleanup_))) tfprof_scope var =                         \
		TFPROF_UNLIKELY(__atomic_load_n(&tfprof__state, __ATOMIC_RELAXED))                \
			? tfprof_scope_begin_site_slow(&TFPROF_CAT_(var, _site_),                   \
						       TFPROF_ARGS_(__VA_ARGS__),                   \
						       TFPROF_NARGS_(__VA_ARGS__))                  \
			: (tfprof_scope){ 0, 0 }

#define TFPROF_SET_METADATA(var, ...)                                                           \
	tfprof_scope_set_metadata((var), TFPROF_ARGS_(__VA_ARGS__), TFPROF_NARGS_(__VA_ARGS__))
#endif

#ifdef __cplusplus
}
#endif

#endif /* TFPROF_TFPROF_H */
