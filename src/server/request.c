/* SPDX-License-Identifier: Apache-2.0 */
/* The server's checks on what a client asks for. A request names the directory the server
 * writes into, so everything in it is treated as hostile: names are single path components, the
 * root is absolute and free of "..", and with a server root the write must land inside it (after
 * symlinks are resolved). Refusals carry a one-line reason for the client. */
#include "request.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "profiler_service.pb-c.h"

static int refuse(int code, char *msg, size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(int code, char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return code;
}

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* protobuf-c hands strings over NUL-terminated, so a NUL inside one would silently shorten a
 * name: look for it in the wire bytes of the request's top-level string fields. */
static bool strings_have_nul(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf, *end = buf + len;
	while (p < end) {
		uint64_t key, n;
		if (!read_varint(&p, end, &key))
			return true;
		switch (key & 7) {
		case 0:
			if (!read_varint(&p, end, &n))
				return true;
			break;
		case 1:
			p += 8;
			break;
		case 5:
			p += 4;
			break;
		case 2:
			if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p))
				return true;
			if ((key >> 3) >= 5 && (key >> 3) <= 7 && memchr(p, 0, n))
				return true;
			p += n;
			break;
		default:
			return true;
		}
	}
	return p != end;
}

/* A name that is one path component: not empty, not "." or "..", no '/', bounded. */
static int check_name(const char *what, const char *s, char *out, size_t outlen, char *msg,
		      size_t msglen)
{
	size_t n = strlen(s);
	if (!n)
		return refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen, "%s is empty: name the capture's %s",
			      what, what);
	if (n > TFPROF__MAX_NAME || n >= outlen)
		return refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen, "%s is %zu bytes long; at most %d are accepted",
			      what, n, TFPROF__MAX_NAME);
	if (strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, ".."))
		return refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen,
			      "%s \"%.64s\" must be a single file name (no '/', not \".\" or \"..\")", what, s);
	memcpy(out, s, n + 1);
	return TFPROF__RPC_OK;
}

/* Copies an absolute path without "." and ".." components or repeated slashes. */
static int normalize_root(const char *s, char *out, size_t outlen, char *msg, size_t msglen)
{
	if (s[0] != '/')
		return refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen,
			      "repository_root \"%.100s\" must be an absolute path", s);
	size_t o = 0;
	const char *p = s;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen,
				      "repository_root \"%.100s\" must not contain \".\" or \"..\" components", s);
		if (o + 1 + n + 1 > outlen)
			return refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen, "repository_root is too long");
		out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	if (!o)
		out[o++] = '/';
	out[o] = '\0';
	return TFPROF__RPC_OK;
}

static bool under(const char *path, const char *root)
{
	size_t n = strlen(root);
	if (n == 1 && root[0] == '/')
		return true;
	return !strncmp(path, root, n) && (path[n] == '\0' || path[n] == '/');
}

/* With a server root: the deepest existing ancestor of root (symlinks resolved) must lie in it,
 * and so must the path as written. What does not exist yet is made by the writer, below it. */
static int check_inside(const char *root, const char *server_root, char *msg, size_t msglen)
{
	if (!under(root, server_root))
		return refuse(TFPROF__RPC_PERMISSION_DENIED, msg, msglen,
			      "repository_root \"%.100s\" is outside the server root %.100s: capture into a directory under it",
			      root, server_root);
	char probe[PATH_MAX], real[PATH_MAX];
	snprintf(probe, sizeof probe, "%s", root);
	for (;;) {
		struct stat st;
		if (lstat(probe, &st) == 0)
			break;
		char *slash = strrchr(probe, '/');
		if (!slash || slash == probe) {
			snprintf(probe, sizeof probe, "/");
			break;
		}
		*slash = '\0';
	}
	if (!realpath(probe, real) || !under(real, server_root))
		return refuse(TFPROF__RPC_PERMISSION_DENIED, msg, msglen,
			      "repository_root \"%.100s\" leads outside the server root %.100s (through a link)",
			      root, server_root);
	return TFPROF__RPC_OK;
}

int tfprof__decode_profile_request(const uint8_t *buf, size_t len, const char *server_root,
				   uint64_t max_ms, uint64_t now_ns, struct tfprof__profile_req *out,
				   char *msg, size_t msglen)
{
	memset(out, 0, sizeof *out);
	Tensorflow__ProfileRequest *r = tensorflow__profile_request__unpack(NULL, len, buf);
	if (!r)
		return refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen,
			      "the request is not a tensorflow.ProfileRequest (%zu bytes that do not decode)", len);
	int rc;
	if (strings_have_nul(buf, len)) {
		rc = refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen,
			    "repository_root, session_id and host_name must not contain NUL bytes");
		goto out;
	}
	const Tensorflow__ProfileOptions *o = r->opts;
	out->duration_ms = o && o->duration_ms ? o->duration_ms : r->duration_ms;
	if (out->duration_ms == 0 || out->duration_ms > max_ms) {
		rc = refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen,
			    "duration_ms is %llu; ask for 1 to %llu ms (the server's limit)",
			    (unsigned long long)out->duration_ms, (unsigned long long)max_ms);
		goto out;
	}
	/* As TensorFlow's server reads them: options of version 0 (older clients, or none) mean
	 * the defaults, host level 2, device 1, Python 0, since proto3 cannot tell 0 from unset. */
	bool versioned = o && o->version;
	out->host_level = versioned ? o->host_tracer_level : 2;
	out->device_level = versioned ? o->device_tracer_level : 1;
	out->python_level = versioned ? o->python_tracer_level : 0;
	out->start_ns = o ? o->start_timestamp_ns : 0;
	if (out->start_ns > now_ns && out->start_ns - now_ns > max_ms * 1000000u) {
		rc = refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen,
			    "start_timestamp_ns is %.1f s ahead; a capture may start at most %llu ms from now",
			    (double)(out->start_ns - now_ns) / 1e9, (unsigned long long)max_ms);
		goto out;
	}
	const char *sid = r->session_id && *r->session_id ? r->session_id
			  : o && o->session_id			 ? o->session_id
								 : "";
	if ((rc = check_name("session_id", sid, out->session_id, sizeof out->session_id, msg, msglen)))
		goto out;
	if (r->host_name && *r->host_name &&
	    (rc = check_name("host_name", r->host_name, out->host, sizeof out->host, msg, msglen)))
		goto out;
	const char *root = r->repository_root && *r->repository_root ? r->repository_root
			   : o && o->repository_path			 ? o->repository_path
									 : "";
	if (!*root) {
		rc = refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen,
			    "repository_root is empty: name the directory to write the profile into");
		goto out;
	}
	if ((rc = normalize_root(root, out->root, sizeof out->root, msg, msglen)))
		goto out;
	if (server_root && (rc = check_inside(out->root, server_root, msg, msglen)))
		goto out;
	rc = TFPROF__RPC_OK;
out:
	tensorflow__profile_request__free_unpacked(r, NULL);
	return rc;
}

int tfprof__decode_terminate_request(const uint8_t *buf, size_t len, char *sid, size_t sidlen,
				     char *msg, size_t msglen)
{
	Tensorflow__TerminateRequest *r = tensorflow__terminate_request__unpack(NULL, len, buf);
	if (!r)
		return refuse(TFPROF__RPC_INVALID_ARGUMENT, msg, msglen,
			      "the request is not a tensorflow.TerminateRequest");
	snprintf(sid, sidlen, "%s", r->session_id ? r->session_id : "");
	tensorflow__terminate_request__free_unpacked(r, NULL);
	return TFPROF__RPC_OK;
}

uint8_t *tfprof__encode_profile_response(int empty_trace, size_t *len)
{
	Tensorflow__ProfileResponse r = TENSORFLOW__PROFILE_RESPONSE__INIT;
	r.empty_trace = empty_trace != 0;
	*len = tensorflow__profile_response__get_packed_size(&r);
	uint8_t *b = malloc(*len ? *len : 1);
	if (b)
		tensorflow__profile_response__pack(&r, b);
	return b;
}

uint8_t *tfprof__encode_terminate_response(size_t *len)
{
	*len = 0;
	return malloc(1);
}
