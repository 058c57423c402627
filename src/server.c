/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof_server_start() / tfprof_server_stop(): loads the gRPC server module
 * (libtfprof_server.so) on demand and gives it the two calls a capture needs, a session started
 * and stopped on the module's capture thread. libtfprof links no gRPC: a program that never
 * starts a server never loads it. server_mu serializes start, stop and the exit handler; the
 * module calls capture_start/capture_stop without it (they take the session's own lock). */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "env.h"
#include "log.h"
#include "server.h"
#include "server/server_module.h"
#include "session.h"

#define MODULE_NAME "libtfprof_server.so"
#define DEFAULT_MAX_DURATION_MS 600000u
/* Past TensorFlow's own limits for a capture (its RPC deadlines), yet bounded. */
#define MAX_MAX_DURATION_MS (24u * 3600u * 1000u)

static pthread_mutex_t server_mu = PTHREAD_MUTEX_INITIALIZER;
static void *module_handle;
static const struct tfprof__server_module *module;
static bool running;
static int bound_port;
static char server_root[PATH_MAX];
static struct tfprof__server_host host_table;
/* The program's hooks, read by the capture thread while the server runs. */
static tfprof_capture_fn hook_start, hook_stop;
static void *hook_ctx;
static struct tfprof__capture current;
/* Registered again after the first capture's start, which may have loaded libcupti: see
 * at_exit. */
static bool exit_after_first_capture;
static char last_error[320];

/* Logs a failure to start, and keeps it for tfprof__server_error(). */
static void start_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void start_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
	tfprof__log(TFPROF_LOG_ERROR, "tfprof server: %s", last_error);
}

const char *tfprof_server_last_error(void)
{
	return last_error;
}

static void at_exit(void);

static void call_hook(tfprof_capture_fn fn, const struct tfprof__capture *c, const char *path)
{
	if (!fn)
		return;
	struct tfprof_capture_info info = {
		.sz = sizeof info,
		.host_tracer_level = c->host_level,
		.device_tracer_level = c->device_level,
		.python_tracer_level = c->python_level,
		.duration_ms = c->duration_ms,
		.path = path,
	};
	fn(&info, hook_ctx);
}

static int capture_start(const struct tfprof__capture *c)
{
	TFPROF_OPTIONS(o, .run_name = c->session_id, .host_name = c->host,
		       .disable_gpu = c->device_level == 0);
	/* Level 0 asks for no host tracing: user scopes are skipped, CUDA calls still recorded
	 * (TensorFlow's CUPTI tracer records them under the device tracer level). */
	int rc = tfprof__start_capture(c->root, &o, c->host_level == 0);
	if (rc)
		return rc;
	current = *c;
	/* An exit handler runs after those registered later: libcupti's, registered when this
	 * session's GPU tracing loaded it, would otherwise run first and leave the capture's stop
	 * at exit calling into a finalized libcupti. */
	if (!exit_after_first_capture)
		exit_after_first_capture = atexit(at_exit) == 0;
	call_hook(hook_start, c, "");
	tfprof__log(TFPROF_LOG_INFO, "capture %s started for %llu ms", c->session_id,
		    (unsigned long long)c->duration_ms);
	return 0;
}

static int capture_stop(char *path, size_t pathlen)
{
	int rc = tfprof__stop_capture(path, pathlen);
	if (rc != TFPROF_ERR_NOT_ACTIVE)
		call_hook(hook_stop, &current, rc == 0 || rc == TFPROF_ERR_FALLBACK ? path : "");
	if (rc == TFPROF__STOP_EMPTY)
		return 1;
	return rc == TFPROF_ERR_FALLBACK ? 0 : rc;
}

/* The module's path: TFPROF_SERVER_MODULE, else beside this library (build tree and install
 * alike), else the dynamic linker's search. */
static void *load_module(void)
{
	const char *env = tfprof__getenv("TFPROF_SERVER_MODULE");
	if (env && *env)
		return dlopen(env, RTLD_NOW | RTLD_LOCAL);
	Dl_info info;
	if (dladdr((void *)tfprof_server_start, &info) && info.dli_fname) {
		const char *slash = strrchr(info.dli_fname, '/');
		char path[PATH_MAX];
		if (slash && snprintf(path, sizeof path, "%.*s/%s", (int)(slash - info.dli_fname),
				      info.dli_fname, MODULE_NAME) < (int)sizeof path) {
			void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
			if (h)
				return h;
		}
	}
	return dlopen(MODULE_NAME, RTLD_NOW | RTLD_LOCAL);
}

/* "PORT", "HOST:PORT", "[V6]:PORT" -> host (default 127.0.0.1) and port. */
static int parse_addr(const char *addr, char *host, size_t hostlen, int *port)
{
	if (!addr || !*addr)
		return -EINVAL;
	const char *p = addr, *colon = strrchr(addr, ':');
	if (*addr == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':' || close == addr + 1)
			return -EINVAL;
		colon = close + 1;
	}
	if (colon) {
		size_t n = (size_t)(colon - addr);
		if (n == 0 || n >= hostlen)
			return -EINVAL;
		memcpy(host, addr, n);
		host[n] = '\0';
		p = colon + 1;
	} else {
		snprintf(host, hostlen, "127.0.0.1");
	}
	char *end;
	errno = 0;
	long v = strtol(p, &end, 10);
	if (!*p || *end || errno || v < 0 || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

/* The server's threads do not exist in a forked child: it has no server (it may start one). */
static void fork_child(void)
{
	pthread_mutex_init(&server_mu, NULL);
	running = false;
	bound_port = 0;
}

/* Ends a capture in progress at exit; the server goes down with the process. Registered more
 * than once: later calls find nothing running. */
static void at_exit(void)
{
	pthread_mutex_lock(&server_mu);
	if (running)
		module->stop(true);
	running = false;
	pthread_mutex_unlock(&server_mu);
}

void tfprof__server_at_exit(void)
{
	at_exit();
}

static uint64_t env_max_duration(void)
{
	const char *s = tfprof__getenv("TFPROF_SERVER_MAX_MS");
	if (!s || !*s)
		return DEFAULT_MAX_DURATION_MS;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v == 0 || v > MAX_MAX_DURATION_MS) {
		tfprof__log(TFPROF_LOG_WARN, "TFPROF_SERVER_MAX_MS=%s is not a number of ms in 1..%u; using %u",
			    s, MAX_MAX_DURATION_MS, DEFAULT_MAX_DURATION_MS);
		return DEFAULT_MAX_DURATION_MS;
	}
	return v;
}

int tfprof_server_start(const char *addr, const struct tfprof_server_options *opts)
{
	struct tfprof_server_options o = { 0 };
	if (opts) {
		if (opts->sz < offsetof(struct tfprof_server_options, root) + sizeof o.root) {
			start_error("initialise the options with TFPROF_SERVER_OPTIONS()");
			return TFPROF_ERR_OPTIONS;
		}
		memcpy(&o, opts, opts->sz < sizeof o ? opts->sz : sizeof o);
	}
	char host[256];
	int port;
	if (parse_addr(addr, host, sizeof host, &port)) {
		start_error("address \"%s\" is not PORT, HOST:PORT or [IPV6]:PORT (port 0 to 65535)",
			    addr ? addr : "(null)");
		return -EINVAL;
	}
	if (o.max_duration_ms > MAX_MAX_DURATION_MS) {
		start_error("max_duration_ms is above %u ms (24 h)", MAX_MAX_DURATION_MS);
		return TFPROF_ERR_OPTIONS;
	}
	const char *root = o.root && *o.root ? o.root : tfprof__getenv("TFPROF_SERVER_ROOT");
	char resolved[PATH_MAX];
	if (root && *root) {
		/* Resolved once, so that a capture's path is checked against where the root really
		 * is, not against a name a symlink could later redirect. */
		struct stat st;
		if (root[0] != '/' || !realpath(root, resolved) || stat(resolved, &st) || !S_ISDIR(st.st_mode)) {
			start_error("the server root \"%s\" must be an existing directory given by its absolute path",
				    root);
			return -EINVAL;
		}
	}

	pthread_mutex_lock(&server_mu);
	int rc = 0;
	last_error[0] = '\0';
	if (running) {
		rc = -EALREADY;
		start_error("already listening on port %d; stop it first", bound_port);
		goto out;
	}
	if (!module_handle) {
		module_handle = load_module();
		tfprof__server_entry_fn entry =
			module_handle ? (tfprof__server_entry_fn)dlsym(module_handle, TFPROF__SERVER_ENTRY) : NULL;
		module = entry ? entry() : NULL;
		if (!module || module->abi != TFPROF__SERVER_ABI) {
			start_error("cannot load %s (%s); install gRPC (Debian: libgrpc29) and tfprof's server module, or set TFPROF_SERVER_MODULE",
				    MODULE_NAME, module_handle ? "wrong version" : dlerror());
			if (module_handle)
				dlclose(module_handle);
			module_handle = NULL;
			module = NULL;
			rc = -ENOTSUP;
			goto out;
		}
	}
	if (root && *root)
		snprintf(server_root, sizeof server_root, "%s", resolved);
	else
		server_root[0] = '\0';
	hook_start = o.on_capture_start;
	hook_stop = o.on_capture_stop;
	hook_ctx = o.hook_ctx;
	host_table = (struct tfprof__server_host){
		.sz = sizeof host_table,
		.capture_start = capture_start,
		.capture_stop = capture_stop,
		.log = tfprof__log,
		.strerror = tfprof_strerror,
		.root = server_root[0] ? server_root : NULL,
		.max_duration_ms = o.max_duration_ms ? o.max_duration_ms : env_max_duration(),
	};
	char err[256] = "";
	rc = module->start(host, port, &host_table, &bound_port, err, sizeof err);
	if (rc) {
		start_error("%s", err[0] ? err : tfprof_strerror(rc));
		goto out;
	}
	static bool registered;
	if (!registered)
		registered = atexit(at_exit) == 0 && pthread_atfork(NULL, NULL, fork_child) == 0;
	running = true;
	tfprof__log(TFPROF_LOG_INFO, "profiler server listening on %s:%d", host, bound_port);
out:
	pthread_mutex_unlock(&server_mu);
	return rc;
}

int tfprof_server_port(void)
{
	pthread_mutex_lock(&server_mu);
	int p = running ? bound_port : 0;
	pthread_mutex_unlock(&server_mu);
	return p;
}

int tfprof_server_stop(void)
{
	pthread_mutex_lock(&server_mu);
	int rc = TFPROF_ERR_NOT_ACTIVE;
	if (running) {
		module->stop(false);
		running = false;
		bound_port = 0;
		rc = 0;
	}
	pthread_mutex_unlock(&server_mu);
	return rc;
}
