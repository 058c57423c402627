/* SPDX-License-Identifier: Apache-2.0 */
/* The session state machine behind tfprof_start() / tfprof_stop(): options, the run's names,
 * switching recording on and off, and driving collect -> merge -> write at stop. start and stop
 * are serialized by session_mu; the recording threads never take it. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "activate.h"
#include "clock.h"
#include "env.h"
#include "gpu.h"
#include "files.h"
#include "log.h"
#include "merge.h"
#include "nvtx.h"
#include "profile.h"
#include "session.h"
#include "tracer.h"
#include "xspace_write.h"

#define DEFAULT_MAX_MEMORY ((size_t)256 << 20)

struct session {
	bool active;
	char *logdir, *run, *host;
	size_t max_memory;
	bool nvtx, gpu;
	/* GPU tracing waits for CUDA to initialize (tfprof__session_gpu_attach()); set only for
	 * sessions that environment activation starts (activate.c). */
	bool gpu_deferred;
	/* Who started it, and so who may stop it: the program (tfprof_start()), activation
	 * (tfprof-start) or the profiler server (a capture). */
	enum tfprof__owner owner;
	struct tfprof__gpu_config gpu_cfg;
	struct tfprof__anchor begin;
};

/* A profile that could not be written anywhere, kept for tfprof_stop_retry(). */
struct kept_profile {
	uint8_t *data;
	size_t len;
	char *logdir, *run, *host;
	bool root;
};

static pthread_mutex_t session_mu = PTHREAD_MUTEX_INITIALIZER;
static struct session S;
static struct kept_profile kept;
/* A static buffer, not a heap string: a library that is dlclose()d would leak one. */
static char last_output[PATH_MAX];

static void session_clear(void)
{
	free(S.logdir);
	free(S.run);
	free(S.host);
	memset(&S, 0, sizeof S);
}

static void kept_clear(void)
{
	free(kept.data);
	free(kept.logdir);
	free(kept.run);
	free(kept.host);
	memset(&kept, 0, sizeof kept);
}

/* Copies the caller's options, of whatever size its header had, into a full struct. */
static int read_options(const struct tfprof_options *in, struct tfprof_options *out)
{
	memset(out, 0, sizeof *out);
	if (!in)
		return 0;
	if (in->sz < sizeof(size_t)) {
		tfprof__log(TFPROF_LOG_ERROR, "tfprof_start: options.sz is %zu; initialise options with TFPROF_OPTIONS()",
			    in->sz);
		return TFPROF_ERR_OPTIONS;
	}
	if (in->sz > sizeof *out) {
		/* A newer caller may pass fields this library does not know, as long as they are
		 * zero, i.e. left at their defaults. */
		const unsigned char *extra = (const unsigned char *)in + sizeof *out;
		for (size_t i = 0; i < in->sz - sizeof *out; i++)
			if (extra[i]) {
				tfprof__log(TFPROF_LOG_ERROR,
					    "tfprof_start: options set fields this tfprof version does not know; "
					    "upgrade libtfprof or leave them zero");
				return TFPROF_ERR_OPTIONS;
			}
	}
	memcpy(out, in, in->sz < sizeof *out ? in->sz : sizeof *out);
	out->sz = sizeof *out;
	return 0;
}

static size_t env_max_memory(void)
{
	const char *e = tfprof__getenv("TFPROF_MAX_MEMORY_MB");
	if (!e || !*e)
		return DEFAULT_MAX_MEMORY;
	char *end;
	errno = 0;
	unsigned long long mb = strtoull(e, &end, 10);
	if (errno || *end || mb == 0 || mb > (SIZE_MAX >> 20)) {
		tfprof__log(TFPROF_LOG_WARN,
			    "TFPROF_MAX_MEMORY_MB=%s is not a positive number of MiB; using %zu", e,
			    DEFAULT_MAX_MEMORY >> 20);
		return DEFAULT_MAX_MEMORY;
	}
	return (size_t)mb << 20;
}

static bool env_off(const char *name)
{
	const char *e = tfprof__getenv(name);
	return e && (strcmp(e, "0") == 0 || strcmp(e, "off") == 0 || strcmp(e, "false") == 0);
}

static bool env_on(const char *name)
{
	const char *e = tfprof__getenv(name);
	return e && strcmp(e, "1") == 0;
}

static bool valid_run_name(const char *r)
{
	return *r && !strchr(r, '/') && strcmp(r, ".") != 0 && strcmp(r, "..") != 0;
}

static char *default_host(void)
{
	char buf[256] = { 0 };
	if (gethostname(buf, sizeof buf - 1))
		buf[0] = 0;
	return tfprof__host_file_stem(buf);
}

/* fork() during or after a session: the child must never write the parent's events (see
 * fork_child()). Registered at the first start, since before it there is nothing to protect. The prepare handler takes session_mu before the tracer's locks, the same
 * order tfprof_stop() takes them in. */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
	pthread_mutex_lock(&session_mu);
	tfprof__tracer_fork_prepare();
}

static void fork_parent(void)
{
	tfprof__tracer_fork_parent();
	pthread_mutex_unlock(&session_mu);
}

static void fork_child(void)
{
	tfprof__tracer_fork_child();
	/* The child records nothing and writes nothing of the parent's: drop the session and any
	 * profile kept for tfprof_stop_retry() without writing them. GPU tracing is forgotten
	 * without a CUPTI call (tfprof__gpu_fork_child): CUPTI's threads do not exist in the child,
	 * and a flush there can hang. */
	tfprof__gpu_fork_child();
	__atomic_store_n(&tfprof__state, 0, __ATOMIC_RELAXED);
	session_clear();
	kept_clear();
	pthread_mutex_unlock(&session_mu);
}

static void register_fork_handlers(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static int start_session(const char *logdir, const struct tfprof_options *opts, bool defer_gpu,
			 enum tfprof__owner owner, bool no_scopes)
{
	struct tfprof_options o;
	if (!logdir || !*logdir) {
		tfprof__log(TFPROF_LOG_ERROR, "tfprof_start: logdir is %s; pass the directory for profiles",
			    logdir ? "empty" : "NULL");
		return -EINVAL;
	}
	int rc = read_options(opts, &o);
	if (rc)
		return rc;
	if (o.run_name && !valid_run_name(o.run_name)) {
		tfprof__log(TFPROF_LOG_ERROR,
			    "tfprof_start: run name \"%s\" must be a non-empty directory name without '/'",
			    o.run_name);
		return TFPROF_ERR_OPTIONS;
	}
	pthread_once(&fork_once, register_fork_handlers);
	pthread_mutex_lock(&session_mu);
	if (S.active) {
		pthread_mutex_unlock(&session_mu);
		return TFPROF_ERR_ACTIVE;
	}
	tfprof__log_configure(o.log_fn, o.log_ctx);
	tfprof__clock_init();
	S.logdir = strdup(logdir);
	S.run = o.run_name ? strdup(o.run_name) : tfprof__default_run_name();
	S.host = o.host_name ? tfprof__host_file_stem(o.host_name) : default_host();
	if (!S.logdir || !S.run || !S.host) {
		session_clear();
		pthread_mutex_unlock(&session_mu);
		return -ENOMEM;
	}
	S.max_memory = o.max_memory ? o.max_memory : env_max_memory();
	S.nvtx = !o.disable_nvtx && !env_off("TFPROF_NVTX");
	int mk = tfprof__mkdirs(logdir);
	if (mk)
		tfprof__log(TFPROF_LOG_WARN,
			    "cannot create logdir %s (%s); recording anyway, the profile will go to a "
			    "fallback directory at stop unless the logdir becomes writable",
			    logdir, strerror(-mk));
	/* With no NVTX tool attached every push would be a no-op: skip them. */
	if (S.nvtx)
		S.nvtx = tfprof__nvtx_init();
	S.gpu = !o.disable_gpu && !env_off("TFPROF_GPU");
	if (defer_gpu && S.gpu) {
		S.gpu = false;
		S.gpu_deferred = true;
	}
	S.gpu_cfg = (struct tfprof__gpu_config){ .buffer_size = o.gpu_buffer_size,
						 .buffer_count = o.gpu_buffer_count,
						 .max_memory = S.max_memory,
						 .no_memory = o.disable_gpu_memory || no_scopes };
	/* The memory timeline is written as host events (as TensorFlow's allocators write theirs
	 * through the host tracer), so a capture at host_tracer_level 0 leaves it out too. */
	S.owner = owner;
	tfprof__tracer_begin_session(S.max_memory, S.nvtx);
	tfprof__anchor_take(&S.begin);
	S.active = true;
	/* Before recording starts, so that not one user scope slips in. */
	if (no_scopes)
		__atomic_or_fetch(&tfprof__state, TFPROF__STATE_NO_SCOPES, __ATOMIC_RELAXED);
	/* Only the recording bit: TFPROF__STATE_HOOKS (tracer.h) belongs to whoever registered hooks. */
	__atomic_or_fetch(&tfprof__state, TFPROF_STATE_ON, __ATOMIC_RELEASE);
	/* GPU tracing starts once host recording is on, so the first launches find a thread buffer
	 * to record into; when it cannot start, the session goes on host-only and the profile says
	 * why. */
	if (S.gpu && tfprof__gpu_start(&S.gpu_cfg))
		tfprof__log(TFPROF_LOG_WARN, "GPU tracing is off for this session; the profile's errors say why");
	pthread_mutex_unlock(&session_mu);
	return 0;
}

int tfprof_start(const char *logdir, const struct tfprof_options *opts)
{
	return start_session(logdir, opts, false, TFPROF__OWNER_PROGRAM, false);
}

int tfprof__start_activated(const char *logdir, const struct tfprof_options *opts, bool defer_gpu)
{
	return start_session(logdir, opts, defer_gpu, TFPROF__OWNER_ACTIVATION, false);
}

int tfprof__start_capture(const char *root, const struct tfprof_options *opts, bool no_scopes)
{
	return start_session(root, opts, false, TFPROF__OWNER_CAPTURE, no_scopes);
}

int tfprof__session_gpu_attach(void)
{
	pthread_mutex_lock(&session_mu);
	int rc = 0;
	if (!S.active)
		rc = TFPROF_ERR_NOT_ACTIVE;
	else if (S.gpu_deferred) {
		S.gpu_deferred = false;
		S.gpu = true;
		rc = tfprof__gpu_start(&S.gpu_cfg);
		if (rc)
			tfprof__log(TFPROF_LOG_WARN, "GPU tracing could not start when CUDA initialized; the profile's errors say why");
	}
	pthread_mutex_unlock(&session_mu);
	return rc;
}

int tfprof__session_set_host(const char *host)
{
	pthread_mutex_lock(&session_mu);
	int rc = TFPROF_ERR_NOT_ACTIVE;
	if (S.active && S.owner == TFPROF__OWNER_ACTIVATION) {
		char *h = strdup(host);
		rc = h ? 0 : -ENOMEM;
		if (h) {
			free(S.host);
			S.host = h;
		}
	}
	pthread_mutex_unlock(&session_mu);
	return rc;
}

/* Takes path (malloc'd). A written file's path fits PATH_MAX; a longer one is not kept. */
static void set_last_output(char *path)
{
	if (strlen(path) < sizeof last_output)
		memcpy(last_output, path, strlen(path) + 1);
	else
		last_output[0] = '\0';
	free(path);
}

/* Writes the encoded profile to the logdir, else to the fallback directory, else keeps it. */
static int deliver(uint8_t *data, size_t len, const char *logdir, const char *run, const char *host,
		   bool root)
{
	char *path;
	int rc = root ? tfprof__write_profile_root(logdir, run, host, data, len, &path)
		      : tfprof__write_profile(logdir, run, host, data, len, &path);
	if (!rc) {
		set_last_output(path);
		tfprof__log(TFPROF_LOG_INFO, "profile written to %s", last_output);
		free(data);
		return 0;
	}
	const char *tmp = tfprof__getenv("TMPDIR");
	char *fallback = NULL;
	/* The fallback lives in a shared directory: it must be ours alone, or another user could
	 * read the profile or redirect where it goes. */
	if (asprintf(&fallback, "%s/tfprof-%ld", tmp && *tmp ? tmp : "/tmp", (long)getuid()) >= 0 &&
	    tfprof__private_dir(fallback) == 0 &&
	    tfprof__write_profile(fallback, run, host, data, len, &path) == 0) {
		tfprof__log(TFPROF_LOG_ERROR,
			    "cannot write the profile under %s (%s); it was saved to %s instead", logdir,
			    strerror(-rc), path);
		set_last_output(path);
		free(fallback);
		free(data);
		return TFPROF_ERR_FALLBACK;
	}
	free(fallback);
	tfprof__log(TFPROF_LOG_ERROR,
		    "cannot write the profile under %s (%s) nor to the fallback directory; it is kept "
		    "in memory: call tfprof_stop_retry() with a writable logdir",
		    logdir, strerror(-rc));
	/* The names may be the kept profile's own (a failed retry): copy them before clearing. */
	char *l = strdup(logdir), *r = strdup(run), *h = strdup(host);
	if (kept.data && kept.data != data)
		tfprof__log(TFPROF_LOG_WARN, "an older unwritten profile was discarded for this one");
	kept_clear();
	if (!l || !r || !h) {
		free(l);
		free(r);
		free(h);
		free(data);
		tfprof__log(TFPROF_LOG_ERROR, "out of memory: the unwritten profile was lost");
		return -ENOMEM;
	}
	kept.data = data;
	kept.len = len;
	kept.logdir = l;
	kept.run = r;
	kept.host = h;
	kept.root = root;
	return TFPROF_ERR_UNWRITTEN;
}

static int build_profile(struct tfprof__profile *p, const struct tfprof__timebase *tb,
			 struct tfprof__thread_harvest *h, size_t n, const struct tfprof__gpu_result *g)
{
	if (tfprof__profile_init(p))
		return -ENOMEM;
	size_t hl;
	struct tfprof__launch_map launches = { 0 };
	struct tfprof__host_counts counts;
	uint64_t align_ns = 0;
	int rc = -ENOMEM;
	p->hostname = tfprof__utf8_sanitize(S.host, strlen(S.host), &hl);
	if (!p->hostname || tfprof__merge_host(p, tb, tb->end.ticks, h, n, &counts, g ? &launches : NULL))
		goto out;
	counts.bad_ends += tfprof__tracer_orphan_bad_ends();
	if (tfprof__merge_host_warnings(p, &counts, S.max_memory))
		goto out;
	if (g && tfprof__merge_device(p, tb, g, &launches, &align_ns))
		goto out;
	if (g && tfprof__merge_memory(p, tb, g, &launches))
		goto out;
	if (tfprof__merge_task_env(p, tb->begin.real_ns, tb->end.real_ns))
		goto out;
	if (g && g->active)
		tfprof__log(TFPROF_LOG_INFO, "GPU clock alignment error bound: %llu ns", (unsigned long long)align_ns);
	rc = 0;
out:
	tfprof__launch_map_free(&launches);
	return rc;
}

/* Stops the session if caller started it; activation and the server receive the written
 * profile's path in out (taken under the lock: tfprof_last_output() may change as soon as it is
 * released). */
static int stop_session(enum tfprof__owner caller, bool skip_empty, char *out, size_t outlen)
{
	if (out && outlen)
		out[0] = '\0';
	pthread_mutex_lock(&session_mu);
	if (!S.active || (caller != TFPROF__OWNER_PROGRAM && S.owner != caller) ||
	    (caller == TFPROF__OWNER_PROGRAM && S.owner == TFPROF__OWNER_CAPTURE)) {
		/* A session the program started itself is the program's to stop, also under
		 * tfprof-start (whose own session could then not start); a capture is the
		 * server's, and for the program there is no session of its own. */
		pthread_mutex_unlock(&session_mu);
		return TFPROF_ERR_NOT_ACTIVE;
	}
	if (S.owner == TFPROF__OWNER_ACTIVATION && caller != TFPROF__OWNER_ACTIVATION) {
		/* The program's own stop must not end the whole-program profile that tfprof-start
		 * promised, nor write it early: the session goes on to the program's end. */
		pthread_mutex_unlock(&session_mu);
		tfprof__log(TFPROF_LOG_INFO, "tfprof_stop: the session is tfprof-start's and goes on until "
			    "the program ends");
		return TFPROF_ERR_ACTIVATED;
	}
	__atomic_and_fetch(&tfprof__state, ~(TFPROF_STATE_ON | TFPROF__STATE_NO_SCOPES), __ATOMIC_RELEASE);
	struct tfprof__timebase tb = { .begin = S.begin };
	tfprof__anchor_take(&tb.end);
	tfprof__tracer_quiesce();
	/* Host recording is off, so CUPTI's flush cannot race with new launch events. */
	struct tfprof__gpu_result g = { 0 };
	if (S.gpu)
		tfprof__gpu_stop(&g);

	struct tfprof__thread_harvest *h = NULL;
	size_t n = 0;
	struct tfprof__profile p = { 0 };
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = tfprof__tracer_harvest(&h, &n);
	if (!rc && skip_empty) {
		/* Nothing recorded: no scope began and the GPU did nothing (or was never traced). */
		uint64_t seen = S.gpu ? g.nevents + g.nerrors : 0;
		for (size_t i = 0; i < n; i++)
			seen += h[i].emitted + h[i].bad_ends + h[i].bad_metadata;
		if (!seen)
			rc = TFPROF__STOP_EMPTY;
	}
	if (!rc)
		rc = build_profile(&p, &tb, h, n, S.gpu ? &g : NULL);
	tfprof__tracer_harvest_free(h, n);
	if (S.gpu)
		tfprof__gpu_result_free(&g);
	if (!rc)
		rc = tfprof__xspace_encode(&p, &data, &len);
	if (!rc && env_on("TFPROF_VERIFY_ENCODER"))
		tfprof__xspace_verify(&p, data, len);
	tfprof__profile_free(&p);
	if (!rc)
		rc = deliver(data, len, S.logdir, S.run, S.host, S.owner == TFPROF__OWNER_CAPTURE);
	else if (rc == TFPROF__STOP_EMPTY)
		tfprof__log(TFPROF_LOG_INFO, "nothing was recorded; no profile was written");
	else
		tfprof__log(TFPROF_LOG_ERROR, "out of memory while merging the profile; it was not written");
	if (out && outlen && (rc == 0 || rc == TFPROF_ERR_FALLBACK))
		snprintf(out, outlen, "%s", last_output);
	session_clear();
	pthread_mutex_unlock(&session_mu);
	return rc;
}

int tfprof_stop(void)
{
	return stop_session(TFPROF__OWNER_PROGRAM, false, NULL, 0);
}

int tfprof__stop_activated(bool skip_empty, char *path, size_t pathlen)
{
	return stop_session(TFPROF__OWNER_ACTIVATION, skip_empty, path, pathlen);
}

int tfprof__stop_capture(char *path, size_t pathlen)
{
	return stop_session(TFPROF__OWNER_CAPTURE, true, path, pathlen);
}

int tfprof_stop_retry(const char *logdir)
{
	pthread_mutex_lock(&session_mu);
	if (!kept.data) {
		pthread_mutex_unlock(&session_mu);
		return TFPROF_ERR_NOT_ACTIVE;
	}
	char *dir = strdup(logdir && *logdir ? logdir : kept.logdir);
	uint8_t *data = kept.data;
	kept.data = NULL;
	int rc = dir ? deliver(data, kept.len, dir, kept.run, kept.host, kept.root && !(logdir && *logdir))
		     : -ENOMEM;
	if (rc != TFPROF_ERR_UNWRITTEN) {
		if (!dir)
			free(data);
		kept_clear();
	}
	free(dir);
	pthread_mutex_unlock(&session_mu);
	return rc;
}

const char *tfprof_last_output(void)
{
	return last_output;
}

int tfprof_version(void)
{
	return TFPROF_VERSION;
}

const char *tfprof_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case TFPROF_ERR_ACTIVE:
		return "a tfprof session is already running: call tfprof_stop() before starting another";
	case TFPROF_ERR_NOT_ACTIVE:
		return "no tfprof session is running (or no unwritten profile is kept): call tfprof_start() first";
	case TFPROF_ERR_OPTIONS:
		return "invalid tfprof_options: initialise them with TFPROF_OPTIONS() and check the run name";
	case TFPROF_ERR_FALLBACK:
		return "the logdir could not be written; the profile was saved to the fallback path "
		       "tfprof_last_output() returns: fix the logdir's permissions or choose another";
	case TFPROF_ERR_ACTIVATED:
		return "the running session is tfprof-start's: it goes on and is written when the program "
		       "ends (run the program without tfprof-start to control sessions yourself)";
	case TFPROF_ERR_UNWRITTEN:
		return "the profile could not be written to the logdir nor to $TMPDIR; it is kept in "
		       "memory: call tfprof_stop_retry() with a writable logdir";
	case -EINVAL:
		return "invalid argument: pass a non-empty logdir";
	case -ENOMEM:
		return "out of memory";
	default:
		if (err < 0 && err > -TFPROF_ERR_BASE)
			return strerror(-err);
		return "unknown tfprof error code";
	}
}
