/* SPDX-License-Identifier: Apache-2.0 */
/* A stand-in ProfilerService for testing tfprof-capture without a profiled program: it answers
 * /tensorflow.ProfilerService/Profile on 127.0.0.1 with the gRPC C core, logs every request it
 * decodes as one JSON line, and answers the way the chosen --mode says (a written profile,
 * an empty trace, an error, an undecodable answer, or no answer at all).
 *
 * usage: capture_fake_server --mode MODE --log FILE [--port N] [--lifetime SECONDS]
 * It prints "PORT <n>" on stdout once it listens, and exits after --lifetime seconds (default
 * 120) so that a test that dies never leaves it behind. Modes:
 *   ok           write <repository_root>/<session_id>/<host stem>.xplane.pb; empty_trace false
 *   empty        write nothing; empty_trace true
 *   exists-once  the first Profile gets ALREADY_EXISTS, the next ones as "ok"
 *   unavailable  every Profile gets UNAVAILABLE
 *   error        every Profile gets INTERNAL with a message
 *   malformed    answer OK with bytes that are not a ProfileResponse
 *   hang         never answer (the client's deadline ends the call)
 *   tool-data    write nothing; answer with tool_data entries, two of them with hostile names */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "profiler_service.pb-c.h"

enum mode { MODE_OK, MODE_EMPTY, MODE_EXISTS_ONCE, MODE_UNAVAILABLE, MODE_ERROR, MODE_MALFORMED,
	    MODE_HANG, MODE_TOOL_DATA };

static const char *const mode_names[] = { "ok", "empty", "exists-once", "unavailable", "error",
					  "malformed", "hang", "tool-data" };

/* One incoming call, from grpc_server_request_call until the client has gone. */
struct rpc {
	enum { WAIT_CALL, WAIT_MESSAGE, WAIT_DONE } stage;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array metadata;
	grpc_byte_buffer *request;
	grpc_byte_buffer *response;
	grpc_slice status_details;
	int cancelled;
};

static enum mode mode;
static FILE *log_file;
static int profiles_seen;
static grpc_server *server;
static grpc_completion_queue *cq;

static void die(const char *what)
{
	fprintf(stderr, "capture_fake_server: %s\n", what);
	exit(2);
}

static unsigned long long realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Writes s as a JSON string literal. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void log_request(const Tensorflow__ProfileRequest *r, int n)
{
	const Tensorflow__ProfileOptions *o = r->opts;

	fprintf(log_file, "{\"n\":%d,\"received_ns\":%llu,\"duration_ms\":%llu,\"max_events\":%llu,"
		"\"n_tools\":%zu,\"repository_root\":", n, realtime_ns(),
		(unsigned long long)r->duration_ms, (unsigned long long)r->max_events, r->n_tools);
	json_string(log_file, r->repository_root);
	fprintf(log_file, ",\"session_id\":");
	json_string(log_file, r->session_id);
	fprintf(log_file, ",\"host_name\":");
	json_string(log_file, r->host_name);
	if (o) {
		fprintf(log_file, ",\"opts\":{\"host_tracer_level\":%u,\"device_tracer_level\":%u,"
			"\"python_tracer_level\":%u,\"version\":%u,\"start_timestamp_ns\":%llu,"
			"\"duration_ms\":%llu,\"repository_path\":", o->host_tracer_level,
			o->device_tracer_level, o->python_tracer_level, o->version,
			(unsigned long long)o->start_timestamp_ns, (unsigned long long)o->duration_ms);
		json_string(log_file, o->repository_path);
		fprintf(log_file, ",\"session_id\":");
		json_string(log_file, o->session_id);
		fprintf(log_file, "}");
	}
	fprintf(log_file, "}\n");
	fflush(log_file);
}

/* Creates dir and its parents. */
static void mkdirs(const char *dir)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0777);
			*p = '/';
		}
	}
	if (mkdir(buf, 0777) != 0 && errno != EEXIST)
		die("cannot create the run directory");
}

/* Writes the profile where a real server would: <root>/<session>/<host with ':' '/' as '_'>. */
static void write_profile(const Tensorflow__ProfileRequest *r)
{
	char dir[4096], path[4400], stem[256];
	FILE *f;

	snprintf(stem, sizeof(stem), "%s", r->host_name);
	for (char *p = stem; *p; p++)
		if (*p == ':' || *p == '/')
			*p = '_';
	snprintf(dir, sizeof(dir), "%s/%s", r->repository_root, r->session_id);
	mkdirs(dir);
	snprintf(path, sizeof(path), "%s/%s.xplane.pb", dir, stem);
	f = fopen(path, "wb");
	if (!f)
		die("cannot write the profile");
	fputs("fake xplane", f);
	fclose(f);
}

static grpc_byte_buffer *buffer_of(const void *data, size_t len)
{
	grpc_slice s = grpc_slice_from_copied_buffer(data, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);

	grpc_slice_unref(s);
	return bb;
}

static grpc_byte_buffer *pack_response(Tensorflow__ProfileResponse *resp)
{
	size_t len = tensorflow__profile_response__get_packed_size(resp);
	uint8_t *buf = malloc(len ? len : 1);
	grpc_byte_buffer *bb;

	if (!buf)
		die("out of memory");
	tensorflow__profile_response__pack(resp, buf);
	bb = buffer_of(buf, len);
	free(buf);
	return bb;
}

/* Decides the answer to one decoded request: *code and *msg for the status, and the
 * ProfileResponse (NULL for none). Returns false to leave the call unanswered. */
static bool answer(const Tensorflow__ProfileRequest *r, grpc_status_code *code, const char **msg,
		   grpc_byte_buffer **out)
{
	Tensorflow__ProfileResponse resp = TENSORFLOW__PROFILE_RESPONSE__INIT;
	Tensorflow__ProfileToolData t[4] = { TENSORFLOW__PROFILE_TOOL_DATA__INIT,
					     TENSORFLOW__PROFILE_TOOL_DATA__INIT,
					     TENSORFLOW__PROFILE_TOOL_DATA__INIT,
					     TENSORFLOW__PROFILE_TOOL_DATA__INIT };
	Tensorflow__ProfileToolData *tp[4] = { &t[0], &t[1], &t[2], &t[3] };
	static const char names[4][32] = { "xplane.pb", "trace.json.gz", "../escaped", "a/b" };
	static const uint8_t malformed[] = { 0x32, 0x64, 0x00, 0x00 };

	*code = GRPC_STATUS_OK;
	*msg = "";
	*out = NULL;
	switch (mode) {
	case MODE_HANG:
		return false;
	case MODE_UNAVAILABLE:
		*code = GRPC_STATUS_UNAVAILABLE;
		*msg = "the fake server is not ready";
		return true;
	case MODE_ERROR:
		*code = GRPC_STATUS_INTERNAL;
		*msg = "the fake profiler failed to start";
		return true;
	case MODE_EXISTS_ONCE:
		if (profiles_seen == 1) {
			*code = GRPC_STATUS_ALREADY_EXISTS;
			*msg = "another profiling session is active";
			return true;
		}
		/* fall through */
	case MODE_OK:
		write_profile(r);
		break;
	case MODE_EMPTY:
		resp.empty_trace = 1;
		break;
	case MODE_MALFORMED:
		*out = buffer_of(malformed, sizeof(malformed));
		return true;
	case MODE_TOOL_DATA:
		for (int i = 0; i < 4; i++) {
			t[i].name = (char *)names[i];
			t[i].data.data = (uint8_t *)names[i];
			t[i].data.len = strlen(names[i]);
		}
		resp.n_tool_data = 4;
		resp.tool_data = tp;
		break;
	}
	*out = pack_response(&resp);
	return true;
}

static void request_next_call(void)
{
	struct rpc *r = calloc(1, sizeof(*r));

	if (!r)
		die("out of memory");
	r->stage = WAIT_CALL;
	grpc_call_details_init(&r->details);
	grpc_metadata_array_init(&r->metadata);
	r->status_details = grpc_empty_slice();
	if (grpc_server_request_call(server, &r->call, &r->details, &r->metadata, cq, cq, r) !=
	    GRPC_CALL_OK)
		die("grpc_server_request_call failed");
}

static void free_rpc(struct rpc *r)
{
	if (r->call)
		grpc_call_unref(r->call);
	grpc_call_details_destroy(&r->details);
	grpc_metadata_array_destroy(&r->metadata);
	if (r->request)
		grpc_byte_buffer_destroy(r->request);
	if (r->response)
		grpc_byte_buffer_destroy(r->response);
	grpc_slice_unref(r->status_details);
	free(r);
}

static void start_batch(struct rpc *r, grpc_op *ops, size_t n)
{
	if (grpc_call_start_batch(r->call, ops, n, r, NULL) != GRPC_CALL_OK)
		die("grpc_call_start_batch failed");
}

/* Sends the status (and a message, if any) and waits for the client to close. */
static void send_answer(struct rpc *r, grpc_status_code code, const char *msg)
{
	grpc_op ops[4];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (r->response) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = r->response;
	}
	r->status_details = grpc_slice_from_copied_string(msg);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n++].data.send_status_from_server.status_details = &r->status_details;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &r->cancelled;
	r->stage = WAIT_DONE;
	start_batch(r, ops, n);
}

static void on_event(struct rpc *r)
{
	Tensorflow__ProfileRequest *req;
	grpc_byte_buffer_reader reader;
	grpc_status_code code;
	const char *msg;
	grpc_slice all;
	grpc_op op;

	switch (r->stage) {
	case WAIT_CALL:
		request_next_call();
		if (grpc_slice_str_cmp(r->details.method, "/tensorflow.ProfilerService/Profile") != 0) {
			send_answer(r, GRPC_STATUS_UNIMPLEMENTED, "the fake server only has Profile");
			return;
		}
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &r->request;
		r->stage = WAIT_MESSAGE;
		start_batch(r, &op, 1);
		return;
	case WAIT_MESSAGE:
		if (!r->request || !grpc_byte_buffer_reader_init(&reader, r->request)) {
			send_answer(r, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
			return;
		}
		all = grpc_byte_buffer_reader_readall(&reader);
		grpc_byte_buffer_reader_destroy(&reader);
		req = tensorflow__profile_request__unpack(NULL, GRPC_SLICE_LENGTH(all),
							  GRPC_SLICE_START_PTR(all));
		grpc_slice_unref(all);
		if (!req) {
			fprintf(log_file, "{\"error\":\"unpack\"}\n");
			fflush(log_file);
			send_answer(r, GRPC_STATUS_INVALID_ARGUMENT, "not a ProfileRequest");
			return;
		}
		profiles_seen++;
		log_request(req, profiles_seen);
		if (answer(req, &code, &msg, &r->response)) {
			send_answer(r, code, msg);
		} else {
			/* Hang: only learn when the client gives up, so that the call can be freed. */
			memset(&op, 0, sizeof(op));
			op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
			op.data.recv_close_on_server.cancelled = &r->cancelled;
			r->stage = WAIT_DONE;
			start_batch(r, &op, 1);
		}
		tensorflow__profile_request__free_unpacked(req, NULL);
		return;
	case WAIT_DONE:
		free_rpc(r);
		return;
	}
}

int main(int argc, char **argv)
{
	const char *log_path = NULL;
	int port = 0, lifetime_s = 120, bound;
	bool have_mode = false;
	grpc_server_credentials *creds;
	char addr[64];
	time_t end;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--mode") == 0) {
			for (size_t m = 0; m < sizeof(mode_names) / sizeof(mode_names[0]); m++) {
				if (strcmp(argv[i + 1], mode_names[m]) == 0) {
					mode = (enum mode)m;
					have_mode = true;
				}
			}
		} else if (strcmp(argv[i], "--log") == 0) {
			log_path = argv[i + 1];
		} else if (strcmp(argv[i], "--port") == 0) {
			port = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--lifetime") == 0) {
			lifetime_s = atoi(argv[i + 1]);
		} else {
			die("usage: capture_fake_server --mode MODE --log FILE [--port N] [--lifetime S]");
		}
	}
	if (!have_mode || !log_path)
		die("usage: capture_fake_server --mode MODE --log FILE [--port N] [--lifetime S]");
	log_file = fopen(log_path, "a");
	if (!log_file)
		die("cannot open the log file");

	grpc_init();
	server = grpc_server_create(NULL, NULL);
	cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(server, cq, NULL);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	creds = grpc_insecure_server_credentials_create();
	bound = grpc_server_add_http2_port(server, addr, creds);
	grpc_server_credentials_release(creds);
	if (bound <= 0)
		die("cannot listen");
	grpc_server_start(server);
	request_next_call();
	printf("PORT %d\n", bound);
	fflush(stdout);

	/* Served until the lifetime ends; the process exit reclaims what is in flight. */
	end = time(NULL) + lifetime_s;
	while (time(NULL) < end) {
		gpr_timespec wake = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
						 gpr_time_from_millis(200, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(cq, wake, NULL);

		if (ev.type == GRPC_OP_COMPLETE)
			on_event(ev.tag);
	}
	fclose(log_file);
	return 0;
}
