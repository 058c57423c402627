/* SPDX-License-Identifier: Apache-2.0 */
/* The profiler server (libtfprof_server.so): answers tensorflow.ProfilerService over gRPC's C
 * core, so that xprof's Capture Profile button, TensorFlow's client and tfprof-capture can
 * profile the running program. Loaded by libtfprof (src/server.c) only when a server starts.
 *
 * Threads and synchronization
 * - The queue thread owns the gRPC server and its completion queue: it accepts calls, reads
 *   requests, answers Terminate, Monitor and refusals at once, and hands an accepted Profile to
 *   the capture thread. Nothing it does blocks on the program or on a capture.
 * - The capture thread (one capture at a time) waits for the start time, starts the session,
 *   waits for the duration, stops the session (which writes the file) and sends the answer. Its
 *   waits end early when the capture is told to end: Terminate, the client going away (the
 *   call's close completes cancelled), tfprof_server_stop() or the program's exit.
 * - cap_mu guards the capture's state (busy, end, the call it answers); the queue thread and the
 *   capture thread both start batches on a call, which gRPC allows from any thread. A call is
 *   freed by whoever drops its last reference (refs, atomic): one per batch in flight and one
 *   held by the capture thread until it has answered. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>

#include "request.h"
#include "server_module.h"

#define EXPORT __attribute__((visibility("default")))

/* Calls in flight beyond which new ones are refused at once (RESOURCE_EXHAUSTED). */
#define MAX_CALLS 256
/* Requests are a few hundred bytes; anything much larger is not a client of this protocol. */
#define MAX_REQUEST_BYTES (64 * 1024)
/* How long the program's exit waits for a capture in progress to be written. */
#define EXIT_WAIT_S 30

enum method { M_UNKNOWN, M_PROFILE, M_TERMINATE, M_MONITOR };
enum tag_kind { T_NEW, T_RECV, T_SENT, T_CLOSE, T_SHUTDOWN };

struct call;
struct tag {
	struct call *c;
	enum tag_kind kind;
};

struct call {
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	grpc_byte_buffer *recv, *send;
	grpc_slice status_details;
	bool has_details;
	int cancelled;
	/* Batches in flight, plus one while the capture thread holds the call. */
	_Atomic int refs;
	struct tag t_new, t_recv, t_sent, t_close;
};

static const struct tfprof__server_host *H;
static grpc_server *server;
static grpc_completion_queue *cq;
static pthread_t queue_thread;
static _Atomic int ncalls;
static struct tag shutdown_tag = { NULL, T_SHUTDOWN };

/* The capture in progress. */
static pthread_mutex_t cap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cap_cv;
static bool cap_busy, cap_end, cap_thread_live;
static struct call *cap_call;
static struct tfprof__profile_req cap_req;
static pthread_t cap_thread;

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void grpc_log_to_tfprof(gpr_log_func_args *a)
{
	/* gRPC's own errors (a port it cannot bind, a broken connection) reach tfprof's log
	 * rather than the program's stderr. */
	if (H && a->severity == GPR_LOG_SEVERITY_ERROR)
		H->log(TFPROF_LOG_WARN, "gRPC: %s", a->message);
}

static struct call *call_new(void)
{
	struct call *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	c->t_new = (struct tag){ c, T_NEW };
	c->t_recv = (struct tag){ c, T_RECV };
	c->t_sent = (struct tag){ c, T_SENT };
	c->t_close = (struct tag){ c, T_CLOSE };
	return c;
}

static void call_free(struct call *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	if (c->recv)
		grpc_byte_buffer_destroy(c->recv);
	if (c->send)
		grpc_byte_buffer_destroy(c->send);
	if (c->has_details)
		grpc_slice_unref(c->status_details);
	free(c);
	ncalls--;
}

static void call_unref(struct call *c)
{
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		call_free(c);
}

/* Asks gRPC for the next incoming call. */
static void request_next(void)
{
	struct call *c = call_new();
	if (!c) {
		H->log(TFPROF_LOG_ERROR, "tfprof server: out of memory; no longer accepting captures");
		return;
	}
	ncalls++;
	if (grpc_server_request_call(server, &c->call, &c->details, &c->md, cq, cq, &c->t_new) !=
	    GRPC_CALL_OK)
		call_free(c);
}

/* Sends the answer: a message (may be NULL) and the status. Any thread. */
static void answer(struct call *c, int code, const char *message, const uint8_t *msg, size_t len)
{
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	size_t n = 0;
	if (msg && code == TFPROF__RPC_OK) {
		grpc_slice s = grpc_slice_from_copied_buffer((const char *)msg, len);
		c->send = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = c->send;
		n++;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = (grpc_status_code)code;
	if (message && *message) {
		c->status_details = grpc_slice_from_copied_string(message);
		c->has_details = true;
		ops[n].data.send_status_from_server.status_details = &c->status_details;
	}
	n++;
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	if (grpc_call_start_batch(c->call, ops, n, &c->t_sent, NULL) != GRPC_CALL_OK) {
		H->log(TFPROF_LOG_WARN, "tfprof server: could not answer a call");
		call_unref(c);
	}
}

/* Waits on cap_cv until deadline (CLOCK_MONOTONIC ns) or until the capture is told to end.
 * cap_mu held. Returns true when told to end. */
static uint64_t mono_ns(void);

static bool wait_until(uint64_t deadline)
{
	while (!cap_end) {
		if (mono_ns() >= deadline)
			return false;
		struct timespec ts = { (time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u) };
		pthread_cond_timedwait(&cap_cv, &cap_mu, &ts);
	}
	return true;
}

static uint64_t mono_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void *capture_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&cap_mu);
	struct call *c = cap_call;
	struct tfprof__profile_req r = cap_req;
	/* All workers of one capture were given the same start time: wait for it here. */
	uint64_t now = realtime_ns();
	bool ended = r.start_ns > now && wait_until(mono_ns() + (r.start_ns - now));
	pthread_mutex_unlock(&cap_mu);

	char msg[512] = "";
	int code = TFPROF__RPC_OK, empty = 0;
	if (ended) {
		/* Not UNAVAILABLE: xprof's client would retry, and start the capture it was told to end. */
		code = TFPROF__RPC_ABORTED;
		snprintf(msg, sizeof msg, "the capture was ended before it started (Terminate, or the program is exiting)");
	} else {
		struct tfprof__capture cap = {
			.root = r.root,
			.session_id = r.session_id,
			.host = r.host[0] ? r.host : NULL,
			.host_level = r.host_level,
			.device_level = r.device_level,
			.python_level = r.python_level,
			.duration_ms = r.duration_ms,
		};
		int rc = H->capture_start(&cap);
		if (rc == TFPROF_ERR_ACTIVE) {
			code = TFPROF__RPC_ALREADY_EXISTS;
			snprintf(msg, sizeof msg, "a tfprof session is already recording in this process (the program's own or tfprof-start's); try again when it has stopped");
		} else if (rc) {
			code = TFPROF__RPC_INTERNAL;
			snprintf(msg, sizeof msg, "the capture could not start: %s", H->strerror(rc));
		} else {
			pthread_mutex_lock(&cap_mu);
			wait_until(mono_ns() + r.duration_ms * 1000000u);
			pthread_mutex_unlock(&cap_mu);
			char path[PATH_MAX];
			rc = H->capture_stop(path, sizeof path);
			if (rc == 1) {
				empty = 1;
			} else if (rc) {
				code = TFPROF__RPC_INTERNAL;
				snprintf(msg, sizeof msg, "the profile could not be written under %.200s: %s", r.root,
					 H->strerror(rc));
			} else {
				H->log(TFPROF_LOG_INFO, "capture %s written to %s", r.session_id, path);
			}
		}
	}
	size_t len = 0;
	uint8_t *resp = code == TFPROF__RPC_OK ? tfprof__encode_profile_response(empty, &len) : NULL;
	if (code == TFPROF__RPC_OK && !resp) {
		code = TFPROF__RPC_INTERNAL;
		snprintf(msg, sizeof msg, "out of memory");
	}
	pthread_mutex_lock(&cap_mu);
	/* Answered under the lock, so that the queue thread never sees cap_call freed while it
	 * still compares calls against it. */
	answer(c, code, msg, resp, len);
	cap_call = NULL;
	cap_busy = false;
	pthread_mutex_unlock(&cap_mu);
	free(resp);
	call_unref(c);
	return NULL;
}

/* Ends the capture in progress early (its profile is still written). */
static void end_capture(void)
{
	pthread_mutex_lock(&cap_mu);
	if (cap_busy) {
		cap_end = true;
		pthread_cond_broadcast(&cap_cv);
	}
	pthread_mutex_unlock(&cap_mu);
}

static void on_profile(struct call *c, const uint8_t *buf, size_t len)
{
	struct tfprof__profile_req r;
	char msg[512];
	int code = tfprof__decode_profile_request(buf, len, H->root, H->max_duration_ms, realtime_ns(),
						  &r, msg, sizeof msg);
	if (code != TFPROF__RPC_OK) {
		H->log(TFPROF_LOG_WARN, "tfprof server: refused a capture: %s", msg);
		answer(c, code, msg, NULL, 0);
		return;
	}
	pthread_mutex_lock(&cap_mu);
	if (cap_busy) {
		pthread_mutex_unlock(&cap_mu);
		answer(c, TFPROF__RPC_ALREADY_EXISTS,
		       "another capture is in progress in this process; try again when it has ended", NULL, 0);
		return;
	}
	if (cap_thread_live) {
		/* The previous capture thread has answered already; collect it. */
		pthread_join(cap_thread, NULL);
		cap_thread_live = false;
	}
	cap_busy = true;
	cap_end = false;
	cap_call = c;
	cap_req = r;
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	if (pthread_create(&cap_thread, NULL, capture_main, NULL)) {
		cap_busy = false;
		cap_call = NULL;
		__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
		pthread_mutex_unlock(&cap_mu);
		answer(c, TFPROF__RPC_RESOURCE_EXHAUSTED, "the server could not start a capture thread", NULL, 0);
		return;
	}
	cap_thread_live = true;
	pthread_mutex_unlock(&cap_mu);
}

static void on_terminate(struct call *c, const uint8_t *buf, size_t len)
{
	char sid[TFPROF__MAX_NAME + 1], msg[512];
	int code = tfprof__decode_terminate_request(buf, len, sid, sizeof sid, msg, sizeof msg);
	if (code != TFPROF__RPC_OK) {
		answer(c, code, msg, NULL, 0);
		return;
	}
	pthread_mutex_lock(&cap_mu);
	/* An empty session_id ends whatever capture runs: there is only ever one. */
	bool match = cap_busy && (!sid[0] || !strcmp(sid, cap_req.session_id));
	if (match) {
		cap_end = true;
		pthread_cond_broadcast(&cap_cv);
	}
	pthread_mutex_unlock(&cap_mu);
	if (!match) {
		snprintf(msg, sizeof msg, "no capture with session_id \"%.200s\" is in progress", sid);
		answer(c, TFPROF__RPC_NOT_FOUND, msg, NULL, 0);
		return;
	}
	size_t n;
	uint8_t *resp = tfprof__encode_terminate_response(&n);
	answer(c, TFPROF__RPC_OK, NULL, resp, n);
	free(resp);
}

static enum method method_of(const struct call *c)
{
	if (!grpc_slice_str_cmp(c->details.method, "/tensorflow.ProfilerService/Profile"))
		return M_PROFILE;
	if (!grpc_slice_str_cmp(c->details.method, "/tensorflow.ProfilerService/Terminate"))
		return M_TERMINATE;
	if (!grpc_slice_str_cmp(c->details.method, "/tensorflow.ProfilerService/Monitor"))
		return M_MONITOR;
	return M_UNKNOWN;
}

/* A call arrived: read its request and learn when it closes. */
static void on_new(struct call *c)
{
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_RECV_MESSAGE;
	ops[1].data.recv_message.recv_message = &c->recv;
	c->refs = 2;
	if (grpc_call_start_batch(c->call, ops, 2, &c->t_recv, NULL) != GRPC_CALL_OK)
		c->refs--;
	grpc_op close_op;
	memset(&close_op, 0, sizeof close_op);
	close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	close_op.data.recv_close_on_server.cancelled = &c->cancelled;
	if (grpc_call_start_batch(c->call, &close_op, 1, &c->t_close, NULL) != GRPC_CALL_OK)
		c->refs--;
	if (!c->refs)
		call_free(c);
}

static void on_recv(struct call *c)
{
	enum method m = method_of(c);
	if (ncalls > MAX_CALLS) {
		answer(c, TFPROF__RPC_RESOURCE_EXHAUSTED, "too many calls at once; try again", NULL, 0);
		return;
	}
	if (m == M_MONITOR || m == M_UNKNOWN) {
		answer(c, TFPROF__RPC_UNIMPLEMENTED,
		       m == M_MONITOR ? "tfprof's profiler server answers Profile and Terminate; Monitor is not implemented"
				      : "unknown method: tfprof's profiler server answers tensorflow.ProfilerService Profile and Terminate",
		       NULL, 0);
		return;
	}
	if (!c->recv) {
		answer(c, TFPROF__RPC_INVALID_ARGUMENT, "the call carried no request message", NULL, 0);
		return;
	}
	grpc_byte_buffer_reader rd;
	if (!grpc_byte_buffer_reader_init(&rd, c->recv)) {
		answer(c, TFPROF__RPC_INVALID_ARGUMENT, "the request could not be read", NULL, 0);
		return;
	}
	grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	const uint8_t *buf = GRPC_SLICE_START_PTR(s);
	size_t len = GRPC_SLICE_LENGTH(s);
	if (m == M_PROFILE)
		on_profile(c, buf, len);
	else
		on_terminate(c, buf, len);
	grpc_slice_unref(s);
}

static void on_close(struct call *c)
{
	/* The client went away (cancelled, deadline, connection lost) during its capture: end
	 * it now rather than record for nobody; the profile is still written. */
	if (!c->cancelled)
		return;
	pthread_mutex_lock(&cap_mu);
	if (cap_busy && cap_call == c) {
		cap_end = true;
		pthread_cond_broadcast(&cap_cv);
		H->log(TFPROF_LOG_WARN, "tfprof server: the client of capture %s went away; ending it",
		       cap_req.session_id);
	}
	pthread_mutex_unlock(&cap_mu);
}

static void *queue_main(void *arg)
{
	(void)arg;
	request_next();
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct tag *t = ev.tag;
		struct call *c = t->c;
		switch (t->kind) {
		case T_SHUTDOWN:
			grpc_completion_queue_shutdown(cq);
			continue;
		case T_NEW:
			if (!ev.success) {
				call_free(c); /* the server is shutting down */
				continue;
			}
			request_next();
			on_new(c);
			continue;
		case T_RECV:
			if (ev.success)
				on_recv(c);
			break;
		case T_CLOSE:
			on_close(c);
			break;
		case T_SENT:
			break;
		}
		call_unref(c);
	}
	return NULL;
}

static int start(const char *host, int port, const struct tfprof__server_host *h, int *bound,
		 char *err, size_t errlen)
{
	H = h;
	gpr_set_log_function(grpc_log_to_tfprof);
	gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
	grpc_init();
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cap_cv, &ca);
	pthread_condattr_destroy(&ca);
	cap_busy = cap_end = cap_thread_live = false;
	cap_call = NULL;
	ncalls = 0;

	/* No SO_REUSEPORT: a second server on a taken port must fail, not share it. */
	grpc_arg args[2] = {
		{ .type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0 },
		{ .type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		  .value.integer = MAX_REQUEST_BYTES },
	};
	grpc_channel_args ch = { 2, args };
	cq = grpc_completion_queue_create_for_next(NULL);
	server = grpc_server_create(&ch, NULL);
	grpc_server_register_completion_queue(server, cq, NULL);
	char addr[300];
	snprintf(addr, sizeof addr, "%s:%d", host, port);
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
	*bound = grpc_server_add_http2_port(server, addr, creds);
	grpc_server_credentials_release(creds);
	if (*bound <= 0) {
		snprintf(err, errlen, "cannot listen on %s: the port is taken or the address is not this machine's; choose another port",
			 addr);
		grpc_server_destroy(server);
		grpc_completion_queue_shutdown(cq);
		while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
		       GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(cq);
		server = NULL;
		cq = NULL;
		grpc_shutdown();
		return -EADDRINUSE;
	}
	grpc_server_start(server);
	if (pthread_create(&queue_thread, NULL, queue_main, NULL)) {
		snprintf(err, errlen, "cannot start the server thread");
		grpc_server_shutdown_and_notify(server, cq, &shutdown_tag);
		grpc_server_cancel_all_calls(server);
		grpc_completion_queue_shutdown(cq);
		return -EAGAIN;
	}
	return 0;
}

/* Waits for the capture thread, at most timeout_s (0: no bound). Returns false on timeout. */
static bool join_capture(int timeout_s)
{
	pthread_mutex_lock(&cap_mu);
	bool live = cap_thread_live;
	cap_thread_live = false;
	pthread_mutex_unlock(&cap_mu);
	if (!live)
		return true;
	if (!timeout_s)
		return pthread_join(cap_thread, NULL) == 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_s;
	return pthread_timedjoin_np(cap_thread, NULL, &ts) == 0;
}

static void stop(bool at_exit)
{
	end_capture();
	if (at_exit) {
		/* The profile of a capture in progress is written before the program ends; gRPC's
		 * threads are left to the process's end. */
		if (!join_capture(EXIT_WAIT_S) && H)
			H->log(TFPROF_LOG_WARN, "tfprof server: the capture in progress did not finish within %d s of exit; it is abandoned",
			       EXIT_WAIT_S);
		return;
	}
	join_capture(0);
	grpc_server_shutdown_and_notify(server, cq, &shutdown_tag);
	grpc_server_cancel_all_calls(server);
	pthread_join(queue_thread, NULL);
	grpc_server_destroy(server);
	grpc_completion_queue_destroy(cq);
	server = NULL;
	cq = NULL;
	pthread_cond_destroy(&cap_cv);
	grpc_shutdown_blocking();
}

static const struct tfprof__server_module the_module = {
	.abi = TFPROF__SERVER_ABI,
	.start = start,
	.stop = stop,
};

EXPORT const struct tfprof__server_module *tfprof_server_module_v1(void)
{
	return &the_module;
}
