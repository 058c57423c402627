/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof-capture: asks running programs for a profile over TensorFlow's ProfilerService gRPC
 * protocol, the way xprof's "Capture profile" button (TSL CaptureRemoteTrace) does: one Profile
 * RPC per worker, all sent at once with the same run name and the same start time, so that every
 * worker records the same window. Each server writes its own XSpace into the run directory;
 * this tool saves what comes back in the answer and says, per worker, where the profile is. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "capture_args.h"
#include "files.h"
#include "profiler_service.pb-c.h"

#define PROG "tfprof-capture"
#define USAGE_LINE "usage: tfprof-capture ADDR[,ADDR...] --duration TIME [options]"
#define EXIT_CAPTURED 0
#define EXIT_NOTHING 1
#define EXIT_USAGE 2
#define PROFILE_METHOD "/tensorflow.ProfilerService/Profile"
/* What xprof's client asks for; servers that keep fewer events say so in the profile. */
#define MAX_EVENTS 1000000
/* Beyond start delay + 2 x duration: time for the server to stop, merge and write the file. */
#define DEFAULT_MARGIN_MS 30000

/* What became of one worker, once its last attempt is over. */
enum outcome {
	OUT_PENDING,
	OUT_CAPTURED,    /* The server recorded events (empty_trace false). */
	OUT_EMPTY,       /* The server answered, but recorded nothing. */
	OUT_FAILED,      /* The server answered with an error, or an answer we cannot read. */
	OUT_UNREACHABLE, /* No server answered at the address (UNAVAILABLE after every attempt). */
};

struct worker {
	const char *addr; /* As typed, less a grpc:// prefix: the request's host_name. */
	char *stem;       /* addr with ':' and '/' made '_': the name of its files. */
	grpc_channel *channel;
	int attempts;
	enum outcome outcome;
	char *why;   /* malloc'd: why there is no profile, or a note beside its path. */
	char *saved; /* malloc'd: the tool files saved from the answer, comma-separated. */

	/* One attempt: what grpc_call_start_batch fills in. Valid from start_attempt() to
	 * end_attempt(). */
	grpc_call *call;
	grpc_byte_buffer *request;
	grpc_metadata_array initial_md, trailing_md;
	grpc_byte_buffer *response;
	grpc_status_code status;
	grpc_slice details;
	const char *error_string;
};

struct options {
	uint64_t duration_ms, delay_ms, timeout_ms;
	bool timeout_set;
	unsigned host_level, device_level, python_level, attempts;
	const char *logdir, *run;
	char *repository_root; /* <absolute logdir>/plugins/profile */
	char *run_dir;         /* <repository_root>/<run> */
};

static const char *const status_names[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
};

static const char *status_name(grpc_status_code code)
{
	if ((unsigned)code < sizeof(status_names) / sizeof(status_names[0]))
		return status_names[code];
	return "UNKNOWN_STATUS";
}

static void help(void)
{
	fputs(USAGE_LINE "\n"
	      "\n"
	      "Captures a profile from programs that run a profiler server (tfprof-start --server\n"
	      "HOST:PORT, or TensorFlow/JAX's profiler server), like TensorBoard's \"Capture profile\"\n"
	      "button: each worker records the same window and writes\n"
	      "<logdir>/plugins/profile/<run>/<host>_<port>.xplane.pb, which TensorBoard's profile\n"
	      "plugin (xprof) opens.\n"
	      "\n"
	      "ADDR is host:port (a grpc:// prefix is allowed; IPv6 as [addr]:port). Several workers,\n"
	      "comma-separated, are captured together into one run.\n"
	      "\n"
	      "Options\n"
	      "  --duration TIME   how long to record (required): 500ms, 2s, 1.5m; a bare number is\n"
	      "                    seconds; at most 24h\n"
	      "  --logdir DIR      the TensorBoard log directory the servers write under (default\n"
	      "                    ./tfprof-logdir; made absolute here, so use a path that means the\n"
	      "                    same on the workers' machines)\n"
	      "  --run NAME        run directory name (default: the local time, %Y_%m_%d_%H_%M_%S)\n"
	      "  --delay TIME      start recording this long from now (default 0)\n"
	      "  --no-gpu          do not trace the GPU (device tracer level 0; default 1)\n"
	      "  --host-level N    host tracer level, 0-3 (default 2)\n"
	      "  --python-level N  Python tracer level, 0-1 (default 0)\n"
	      "  --attempts N      tries per worker when it is unreachable or busy with another\n"
	      "                    capture (UNAVAILABLE, ALREADY_EXISTS), 1-100 (default 3)\n"
	      "  --timeout TIME    how long to wait for each worker's answer, per attempt (default:\n"
	      "                    delay + 2 x duration + 30s)\n"
	      "  --help            this text\n"
	      "\n"
	      "Output: one line per worker, \"ADDR: PATH\" where its profile is, or \"ADDR: no profile:\n"
	      "REASON\"; then \"run: DIR\". Retries and errors go to stderr.\n"
	      "\n"
	      "Exit status\n"
	      "  0  at least one worker captured a trace\n"
	      "  1  nothing captured: every worker answered that it recorded nothing, or failed\n"
	      "     (a server error, no answer before the timeout, an answer that cannot be decoded)\n"
	      "  2  a usage error, or nothing captured and some worker could not be reached\n",
	      stdout);
}

/* Says on one line what is wrong with the command line, and exits with EXIT_USAGE. */
__attribute__((noreturn)) static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "; see " PROG " --help\n");
	exit(EXIT_USAGE);
}

static void *xmalloc_or_die(void *p)
{
	if (!p) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(EXIT_USAGE);
	}
	return p;
}

/* asprintf that exits on failure: a tool this small has nothing better to do without memory. */
__attribute__((format(printf, 1, 2))) static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return xmalloc_or_die(n < 0 ? NULL : s);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* gRPC logs connection failures on stderr; this tool says once, on one line, what happened. Its
 * own logging comes back when someone asks for it with GRPC_VERBOSITY or GRPC_TRACE. */
static void quiet_log(gpr_log_func_args *args)
{
	(void)args;
}

/* The absolute form of the log directory, so that a server with another working directory
 * writes where this tool looks. "./" prefixes and trailing slashes are dropped. */
static char *absolute_logdir(const char *logdir)
{
	char cwd[4096];
	size_t n;

	while (logdir[0] == '.' && logdir[1] == '/')
		logdir += 2;
	n = strlen(logdir);
	while (n > 1 && logdir[n - 1] == '/')
		n--;
	if (logdir[0] == '/')
		return xasprintf("%.*s", (int)n, logdir);
	if (!getcwd(cwd, sizeof(cwd))) {
		fprintf(stderr, PROG ": cannot find the current directory (%s); pass an absolute --logdir\n",
			strerror(errno));
		exit(EXIT_USAGE);
	}
	if (n == 0 || (n == 1 && logdir[0] == '.'))
		return xasprintf("%s", cwd);
	return xasprintf("%s/%.*s", cwd, (int)n, logdir);
}

/* Encodes the request xprof's client sends (TSL PopulateProfileRequest) for one worker. */
static grpc_byte_buffer *build_request(const struct options *o, const struct worker *w,
				       uint64_t start_ns)
{
	/* TSL lists these tools for TPU servers; GPU servers (and tfprof) ignore them. */
	static char *tools[] = { "trace_viewer", "op_profile", "input_pipeline", "kernel_stats",
				 "memory_viewer", "memory_profile", "overview_page", "pod_viewer",
				 "tensorflow_stats", "xplane.pb" };
	Tensorflow__ProfileRequest req = TENSORFLOW__PROFILE_REQUEST__INIT;
	Tensorflow__ProfileOptions opts = TENSORFLOW__PROFILE_OPTIONS__INIT;
	grpc_byte_buffer *bb;
	grpc_slice slice;
	size_t len;
	uint8_t *buf;

	opts.host_tracer_level = o->host_level;
	opts.device_tracer_level = o->device_level;
	opts.python_tracer_level = o->python_level;
	opts.version = 1;
	opts.start_timestamp_ns = start_ns;
	opts.duration_ms = o->duration_ms;
	opts.repository_path = o->repository_root;
	opts.session_id = (char *)o->run;
	req.duration_ms = o->duration_ms;
	req.max_events = MAX_EVENTS;
	req.n_tools = sizeof(tools) / sizeof(tools[0]);
	req.tools = tools;
	req.opts = &opts;
	req.repository_root = o->repository_root;
	req.session_id = (char *)o->run;
	req.host_name = (char *)w->addr;

	len = tensorflow__profile_request__get_packed_size(&req);
	buf = xmalloc_or_die(malloc(len ? len : 1));
	tensorflow__profile_request__pack(&req, buf);
	slice = grpc_slice_from_copied_buffer((const char *)buf, len);
	free(buf);
	bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

/* Sends one Profile RPC to w on cq. Returns false (with w->why set) when gRPC refused the batch,
 * in which case no completion will come for w. */
static bool start_attempt(struct worker *w, const struct options *o, grpc_completion_queue *cq,
			  uint64_t start_ns)
{
	grpc_slice method = grpc_slice_from_static_string(PROFILE_METHOD);
	uint64_t wait_ms = o->timeout_set ? o->timeout_ms
					  : o->delay_ms + 2 * o->duration_ms + DEFAULT_MARGIN_MS;
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					     gpr_time_from_millis((int64_t)wait_ms, GPR_TIMESPAN));
	grpc_op ops[6];
	grpc_call_error err;

	w->attempts++;
	w->response = NULL;
	w->error_string = NULL;
	w->details = grpc_empty_slice();
	w->status = GRPC_STATUS_UNKNOWN;
	grpc_metadata_array_init(&w->initial_md);
	grpc_metadata_array_init(&w->trailing_md);
	w->request = build_request(o, w, start_ns);
	w->call = grpc_channel_create_call(w->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
					   deadline, NULL);

	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = w->request;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &w->initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &w->response;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &w->trailing_md;
	ops[5].data.recv_status_on_client.status = &w->status;
	ops[5].data.recv_status_on_client.status_details = &w->details;
	ops[5].data.recv_status_on_client.error_string = &w->error_string;
	err = w->call ? grpc_call_start_batch(w->call, ops, sizeof(ops) / sizeof(ops[0]), w, NULL)
		      : GRPC_CALL_ERROR;
	if (err != GRPC_CALL_OK) {
		w->status = GRPC_STATUS_INTERNAL;
		free(w->why);
		w->why = xasprintf("INTERNAL: gRPC refused to start the call (error %d); report this "
				   "as a tfprof bug", (int)err);
		return false;
	}
	return true;
}

/* Releases everything one attempt holds; w->status stays for the caller. */
static void end_attempt(struct worker *w)
{
	if (w->call)
		grpc_call_unref(w->call);
	w->call = NULL;
	grpc_byte_buffer_destroy(w->request);
	w->request = NULL;
	if (w->response)
		grpc_byte_buffer_destroy(w->response);
	w->response = NULL;
	grpc_metadata_array_destroy(&w->initial_md);
	grpc_metadata_array_destroy(&w->trailing_md);
	grpc_slice_unref(w->details);
	w->details = grpc_empty_slice();
	gpr_free((void *)w->error_string);
	w->error_string = NULL;
}

/* Whether another attempt may succeed where this one failed: the worker is not up yet, busy
 * with another capture, or (per TSL) gRPC lost a stream to a restarted worker. */
static bool worth_retrying(const struct worker *w)
{
	static const char stream_removed[] = "Stream removed";

	if (w->status == GRPC_STATUS_UNAVAILABLE || w->status == GRPC_STATUS_ALREADY_EXISTS)
		return true;
	return w->status == GRPC_STATUS_UNKNOWN &&
	       GRPC_SLICE_LENGTH(w->details) == sizeof(stream_removed) - 1 &&
	       memcmp(GRPC_SLICE_START_PTR(w->details), stream_removed, sizeof(stream_removed) - 1) == 0;
}

/* The server's message, or gRPC's own description when the server sent none. */
static char *status_message(const struct worker *w)
{
	char *details = grpc_slice_to_c_string(w->details);
	char *msg;

	if (details[0])
		msg = xasprintf("%s", details);
	else if (w->error_string && w->error_string[0])
		msg = xasprintf("%s", w->error_string);
	else
		msg = xasprintf("no message");
	gpr_free(details);
	/* One line per worker: a multi-line message from a server must not break the output. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return msg;
}

/* What to do about an error, in words, for the codes a capture meets. */
static const char *advice(grpc_status_code code)
{
	switch (code) {
	case GRPC_STATUS_UNAVAILABLE:
		return "check the address, and that the program runs with a profiler server there "
		       "(tfprof-start --server HOST:PORT)";
	case GRPC_STATUS_ALREADY_EXISTS:
		return "another capture is running on that worker; wait for it, or pass more --attempts";
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		return "the worker did not answer in time; pass a longer --timeout";
	case GRPC_STATUS_UNIMPLEMENTED:
		return "that port serves gRPC but not the ProfilerService; check the port";
	case GRPC_STATUS_INVALID_ARGUMENT:
	case GRPC_STATUS_FAILED_PRECONDITION:
		return "the server refused the request; see its log";
	default:
		return "see the server's log";
	}
}

/* Writes data to dir/name through a temporary file, so that no reader sees half of it. */
static int save_file(const char *dir, const char *name, const uint8_t *data, size_t len)
{
	char *tmp = xasprintf("%s/.%s.%ld.tmp", dir, name, (long)getpid());
	char *path = xasprintf("%s/%s", dir, name);
	int fd, rc = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
out:
	free(tmp);
	free(path);
	return rc;
}

/* Saves the tool data a server sent back (servers that write the XSpace themselves send none),
 * each entry as <stem>.<name> in the run directory, as TSL's SaveProfile does. Names that could
 * leave the directory are refused. */
static void save_tool_data(struct worker *w, const struct options *o,
			   const Tensorflow__ProfileResponse *resp)
{
	if (resp->n_tool_data == 0)
		return;
	if (tfprof__mkdirs(o->run_dir) != 0) {
		fprintf(stderr, PROG ": %s: cannot create %s (%s); the tool data it sent is lost, pass a "
			"writable --logdir\n", w->addr, o->run_dir, strerror(errno));
		return;
	}
	for (size_t i = 0; i < resp->n_tool_data; i++) {
		const Tensorflow__ProfileToolData *t = resp->tool_data[i];
		char *file;
		int rc;

		if (!t || !capture_file_name_ok(t->name)) {
			fprintf(stderr, PROG ": %s: ignored tool data with the name \"%s\", which is not a "
				"plain file name; the server is broken or hostile\n", w->addr,
				t && t->name ? t->name : "");
			continue;
		}
		file = xasprintf("%s.%s", w->stem, t->name);
		rc = save_file(o->run_dir, file, t->data.data, t->data.len);
		if (rc != 0) {
			fprintf(stderr, PROG ": %s: cannot write %s/%s (%s); check the space and "
				"permissions there\n", w->addr, o->run_dir, file, strerror(-rc));
		} else if (strcmp(t->name, "xplane.pb") != 0) {
			char *saved = w->saved ? xasprintf("%s, %s", w->saved, file) : xasprintf("%s", file);

			free(w->saved);
			w->saved = saved;
		}
		free(file);
	}
}

/* How long to wait before the next attempt of a worker that has made w->attempts: 1 s, 2 s,
 * 4 s, then 8 s each; short, since a worker that is busy with another capture is usually done
 * within its duration, and one that is starting up within seconds. */
static unsigned backoff_s(const struct worker *w)
{
	return 1u << (w->attempts - 1 < 3 ? w->attempts - 1 : 3);
}

/* Decides what one finished attempt means. Returns true when the worker should try again. */
static bool finish_attempt(struct worker *w, const struct options *o)
{
	Tensorflow__ProfileResponse *resp;
	grpc_byte_buffer_reader reader;
	grpc_slice all;
	char *msg;

	if (w->status != GRPC_STATUS_OK) {
		msg = status_message(w);
		free(w->why);
		w->why = xasprintf("%s: %s; %s", status_name(w->status), msg, advice(w->status));
		if (worth_retrying(w) && w->attempts < (int)o->attempts) {
			fprintf(stderr, PROG ": %s: %s: %s; trying again in %u s (attempt %d of %u)\n",
				w->addr, status_name(w->status), msg, backoff_s(w), w->attempts + 1,
				o->attempts);
			free(msg);
			return true;
		}
		free(msg);
		w->outcome = w->status == GRPC_STATUS_UNAVAILABLE ? OUT_UNREACHABLE : OUT_FAILED;
		return false;
	}
	if (!w->response) {
		free(w->why);
		w->why = xasprintf("the server answered OK without a ProfileResponse; is it a "
				   "ProfilerService?");
		w->outcome = OUT_FAILED;
		return false;
	}
	if (!grpc_byte_buffer_reader_init(&reader, w->response)) {
		free(w->why);
		w->why = xasprintf("the server's answer could not be read (compressed in a way gRPC "
				   "cannot undo?)");
		w->outcome = OUT_FAILED;
		return false;
	}
	all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	resp = tensorflow__profile_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
						    GRPC_SLICE_START_PTR(all));
	if (!resp) {
		free(w->why);
		w->why = xasprintf("the server's answer (%zu bytes) is not a ProfileResponse; is that "
				   "port a TensorFlow ProfilerService of a compatible version?",
				   (size_t)GRPC_SLICE_LENGTH(all));
		w->outcome = OUT_FAILED;
		grpc_slice_unref(all);
		return false;
	}
	grpc_slice_unref(all);
	save_tool_data(w, o, resp);
	w->outcome = resp->empty_trace ? OUT_EMPTY : OUT_CAPTURED;
	if (resp->empty_trace) {
		free(w->why);
		w->why = xasprintf("the worker recorded nothing in the window; check that it runs work "
				   "then (move the window with --delay, widen it with --duration)");
	}
	tensorflow__profile_response__free_unpacked(resp, NULL);
	return false;
}

/* Runs every worker's attempts: all pending workers are sent their Profile RPC together with
 * one start time (now + delay), and those worth retrying go again, together, after a short
 * backoff, with a new common start time, as xprof's client does. */
static void capture(struct worker *ws, size_t n, const struct options *o)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	size_t pending = n;

	while (pending > 0) {
		uint64_t start_ns = realtime_ns() + o->delay_ms * 1000000u;
		size_t outstanding = 0, retry = 0;
		unsigned wait_s = 0;

		for (size_t i = 0; i < n; i++) {
			if (ws[i].outcome != OUT_PENDING)
				continue;
			if (start_attempt(&ws[i], o, cq, start_ns))
				outstanding++;
			else {
				end_attempt(&ws[i]);
				ws[i].outcome = OUT_FAILED;
			}
		}
		while (outstanding > 0) {
			grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
								   NULL);
			struct worker *w = ev.tag;

			if (ev.type != GRPC_OP_COMPLETE)
				continue;
			outstanding--;
			if (!ev.success) {
				/* The batch itself failed: the status op still reports why. */
				if (w->status == GRPC_STATUS_OK)
					w->status = GRPC_STATUS_INTERNAL;
			}
			if (finish_attempt(w, o)) {
				retry++;
				if (backoff_s(w) > wait_s)
					wait_s = backoff_s(w);
			}
			end_attempt(w);
		}
		pending = retry;
		if (pending > 0)
			sleep(wait_s);
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
}

/* Prints each worker's line and returns the exit status. */
static int report(struct worker *ws, size_t n, const struct options *o)
{
	size_t captured = 0, unreachable = 0;

	for (size_t i = 0; i < n; i++) {
		struct worker *w = &ws[i];

		if (w->outcome == OUT_CAPTURED) {
			char *path = xasprintf("%s/%s.xplane.pb", o->run_dir, w->stem);
			struct stat st;

			captured++;
			printf("%s: %s", w->addr, path);
			if (capture_host_is_local(w->addr) && stat(path, &st) != 0)
				printf(" (not on this machine: the server may run in a container or "
				       "another file system; look there)");
			if (w->saved)
				printf(" (also saved: %s)", w->saved);
			printf("\n");
			free(path);
		} else {
			if (w->outcome == OUT_UNREACHABLE)
				unreachable++;
			printf("%s: no profile: %s\n", w->addr, w->why ? w->why : "unknown reason");
		}
	}
	printf("run: %s\n", o->run_dir);
	fflush(stdout);
	if (captured > 0)
		return EXIT_CAPTURED;
	for (size_t i = 0; i < n; i++)
		if (ws[i].outcome == OUT_UNREACHABLE)
			fprintf(stderr, PROG ": cannot reach %s; check the address, and that the program "
				"runs with a profiler server there (tfprof-start --server HOST:PORT)\n",
				ws[i].addr);
	if (unreachable > 0)
		return EXIT_USAGE;
	fprintf(stderr, PROG ": no worker captured a trace; see the reason beside each worker above\n");
	return EXIT_NOTHING;
}

/* Splits the address list into workers. Returns the count, or 0 after printing why not. */
static size_t parse_workers(char *list, struct worker **out)
{
	size_t n = 1, k = 0;
	struct worker *ws;

	for (const char *p = list; *p; p++)
		n += *p == ',';
	ws = xmalloc_or_die(calloc(n, sizeof(*ws)));
	/* Walked by hand, not with strtok, which would hide an empty field ("a:1,,b:2"). */
	for (char *a = list; a; k++) {
		char *comma = strchr(a, ',');
		const char *why;
		int skip;

		if (comma)
			*comma = '\0';
		skip = capture_check_address(a, &why);
		if (skip < 0) {
			fprintf(stderr, PROG ": \"%s\" is not a worker address: %s; write host:port, e.g. "
				"localhost:6009, several separated by commas\n", a, why);
			free(ws);
			return 0;
		}
		ws[k].addr = a + skip;
		for (size_t j = 0; j < k; j++) {
			if (strcmp(ws[j].addr, ws[k].addr) == 0) {
				fprintf(stderr, PROG ": %s is listed twice; name each worker once\n",
					ws[k].addr);
				free(ws);
				return 0;
			}
		}
		a = comma ? comma + 1 : NULL;
	}
	*out = ws;
	return k;
}

enum { OPT_DURATION = 256, OPT_LOGDIR, OPT_DELAY, OPT_NO_GPU, OPT_HOST_LEVEL, OPT_PYTHON_LEVEL,
       OPT_RUN, OPT_TIMEOUT, OPT_ATTEMPTS, OPT_HELP };

static const struct option long_options[] = {
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "logdir", required_argument, NULL, OPT_LOGDIR },
	{ "delay", required_argument, NULL, OPT_DELAY },
	{ "no-gpu", no_argument, NULL, OPT_NO_GPU },
	{ "host-level", required_argument, NULL, OPT_HOST_LEVEL },
	{ "python-level", required_argument, NULL, OPT_PYTHON_LEVEL },
	{ "run", required_argument, NULL, OPT_RUN },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "attempts", required_argument, NULL, OPT_ATTEMPTS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Reads the command line into o and returns the address list, or exits with EXIT_USAGE. */
static char *parse_options(int argc, char **argv, struct options *o)
{
	bool have_duration = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_DURATION:
			if (!capture_parse_duration(optarg, &o->duration_ms) || o->duration_ms == 0) {
				usage_error("--duration %s is not a duration from 1ms to 24h (e.g. 500ms, "
					    "2s, 1m)", optarg);
			}
			have_duration = true;
			break;
		case OPT_DELAY:
			if (!capture_parse_duration(optarg, &o->delay_ms)) {
				usage_error("--delay %s is not a time from 0 to 24h (e.g. 0, 500ms, 5s)",
					    optarg);
			}
			break;
		case OPT_TIMEOUT:
			if (!capture_parse_duration(optarg, &o->timeout_ms) || o->timeout_ms == 0) {
				usage_error("--timeout %s is not a time from 1ms to 24h (e.g. 90s, 5m)",
					    optarg);
			}
			o->timeout_set = true;
			break;
		case OPT_LOGDIR:
			if (!optarg[0]) {
				usage_error("--logdir needs a directory%s", "");
			}
			o->logdir = optarg;
			break;
		case OPT_RUN:
			if (!capture_file_name_ok(optarg)) {
				usage_error("--run \"%s\" is not a plain directory name (no '/', no '..', "
					    "not starting with '.')", optarg);
			}
			o->run = optarg;
			break;
		case OPT_NO_GPU:
			o->device_level = 0;
			break;
		case OPT_HOST_LEVEL:
			if (!capture_parse_level(optarg, 3, &o->host_level)) {
				usage_error("--host-level %s is not a level from 0 to 3", optarg);
			}
			break;
		case OPT_PYTHON_LEVEL:
			if (!capture_parse_level(optarg, 1, &o->python_level)) {
				usage_error("--python-level %s is not 0 or 1", optarg);
			}
			break;
		case OPT_ATTEMPTS:
			if (!capture_parse_level(optarg, 100, &o->attempts) || o->attempts == 0) {
				usage_error("--attempts %s is not a number from 1 to 100", optarg);
			}
			break;
		case 'h':
		case OPT_HELP:
			help();
			exit(0);
		case ':':
			usage_error("%s needs a value", argv[optind - 1]);
		default:
			usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		usage_error("name the workers to capture, e.g. " PROG " localhost:6009 --duration 2s%s",
			    "");
	}
	if (optind + 1 < argc) {
		usage_error("unexpected argument \"%s\" (separate several workers with commas, no "
			    "spaces)", argv[optind + 1]);
	}
	if (!have_duration) {
		usage_error("say how long to record with --duration, e.g. --duration 2s%s", "");
	}
	return argv[optind];
}

int main(int argc, char **argv)
{
	struct options o = { .host_level = 2, .device_level = 1, .python_level = 0, .attempts = 3,
			     .logdir = "tfprof-logdir" };
	struct worker *ws = NULL;
	char *addresses, *run_owned = NULL;
	grpc_arg arg;
	grpc_channel_args args;
	grpc_channel_credentials *creds;
	size_t n;
	int rc;

	/* A closed stdout (| head) must not kill the tool before the servers' answers are handled. */
	signal(SIGPIPE, SIG_IGN);
	addresses = parse_options(argc, argv, &o);
	n = parse_workers(addresses, &ws);
	if (n == 0)
		return EXIT_USAGE;
	if (!o.run)
		o.run = run_owned = xmalloc_or_die(tfprof__default_run_name());
	{
		char *logdir = absolute_logdir(o.logdir);

		o.repository_root = xasprintf("%s/plugins/profile", logdir);
		o.run_dir = xasprintf("%s/%s", o.repository_root, o.run);
		free(logdir);
	}
	for (size_t i = 0; i < n; i++)
		ws[i].stem = xmalloc_or_die(tfprof__host_file_stem(ws[i].addr));

	if (!getenv("GRPC_VERBOSITY") && !getenv("GRPC_TRACE"))
		gpr_set_log_function(quiet_log);
	grpc_init();
	/* An answer may carry the whole profile as tool data: no 4 MiB cap on what comes back. */
	arg.type = GRPC_ARG_INTEGER;
	arg.key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	arg.value.integer = -1;
	args.num_args = 1;
	args.args = &arg;
	creds = grpc_insecure_credentials_create();
	for (size_t i = 0; i < n; i++)
		ws[i].channel = grpc_channel_create(ws[i].addr, creds, &args);
	grpc_channel_credentials_release(creds);
	if (isatty(STDERR_FILENO))
		fprintf(stderr, PROG ": recording %llu ms on %zu worker(s)%s into %s\n",
			(unsigned long long)o.duration_ms, n, o.delay_ms ? " after the delay" : "",
			o.run_dir);

	capture(ws, n, &o);
	rc = report(ws, n, &o);

	for (size_t i = 0; i < n; i++) {
		grpc_channel_destroy(ws[i].channel);
		free(ws[i].stem);
		free(ws[i].why);
		free(ws[i].saved);
	}
	grpc_shutdown_blocking();
	free(ws);
	free(o.repository_root);
	free(o.run_dir);
	free(run_owned);
	return rc;
}
