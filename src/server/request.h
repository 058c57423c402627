/* SPDX-License-Identifier: Apache-2.0 */
/* Decoding and checking the ProfilerService requests the server answers: what a client may ask
 * for, and where it may make the server write. Pure functions over the request bytes (no gRPC),
 * so that tests/fuzz can feed them anything. */
#ifndef TFPROF_SERVER_REQUEST_H
#define TFPROF_SERVER_REQUEST_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes (grpc/status.h), here so that this file needs no gRPC header. */
enum tfprof__rpc_status {
	TFPROF__RPC_OK = 0,
	TFPROF__RPC_INVALID_ARGUMENT = 3,
	TFPROF__RPC_NOT_FOUND = 5,
	TFPROF__RPC_ALREADY_EXISTS = 6,
	TFPROF__RPC_PERMISSION_DENIED = 7,
	TFPROF__RPC_RESOURCE_EXHAUSTED = 8,
	TFPROF__RPC_ABORTED = 10,
	TFPROF__RPC_UNIMPLEMENTED = 12,
	TFPROF__RPC_INTERNAL = 13,
	TFPROF__RPC_UNAVAILABLE = 14,
};

/* The longest session_id and host_name accepted: a file name has room for the ".xplane.pb"
 * suffix and a "_N" run suffix within NAME_MAX. */
#define TFPROF__MAX_NAME 200

/* A Profile request that passed every check. */
struct tfprof__profile_req {
	char root[PATH_MAX - 2 * (TFPROF__MAX_NAME + 16)];
	char session_id[TFPROF__MAX_NAME + 1];
	char host[TFPROF__MAX_NAME + 1]; /* "" means the machine's host name */
	uint32_t host_level, device_level, python_level;
	uint64_t duration_ms;
	/* CLOCK_REALTIME ns at which to start (0: at once), as every worker of a multi-host
	 * capture was asked. */
	uint64_t start_ns;
};

/* Decodes and checks a ProfileRequest. server_root: the directory writes must stay in (NULL:
 * any absolute path); max_ms: the longest capture; now_ns: CLOCK_REALTIME now (a start further
 * ahead than max_ms is refused). Returns TFPROF__RPC_OK, or INVALID_ARGUMENT / PERMISSION_DENIED
 * with a one-line reason in msg. */
int tfprof__decode_profile_request(const uint8_t *buf, size_t len, const char *server_root,
				   uint64_t max_ms, uint64_t now_ns, struct tfprof__profile_req *out,
				   char *msg, size_t msglen);

/* Decodes a TerminateRequest's session_id into sid. Returns TFPROF__RPC_OK or
 * INVALID_ARGUMENT with a reason in msg. */
int tfprof__decode_terminate_request(const uint8_t *buf, size_t len, char *sid, size_t sidlen,
				     char *msg, size_t msglen);

/* Encodes a ProfileResponse / TerminateResponse into a malloc'd buffer; NULL without memory. */
uint8_t *tfprof__encode_profile_response(int empty_trace, size_t *len);
uint8_t *tfprof__encode_terminate_response(size_t *len);

#endif
