/* SPDX-License-Identifier: Apache-2.0 */
/* The interface between libtfprof (src/server.c) and its gRPC server module (libtfprof_server.so,
 * src/server/): libtfprof dlopen()s the module only when a server is started, and hands it a table
 * of the library functions it may call, so that neither links the other and a program profiled
 * without a server never loads gRPC. */
#ifndef TFPROF_SERVER_MODULE_H
#define TFPROF_SERVER_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tfprof/tfprof.h"

/* Bumped when either table below changes incompatibly; libtfprof refuses another version. */
#define TFPROF__SERVER_ABI 1
#define TFPROF__SERVER_ENTRY "tfprof_server_module_v1"

/* One capture, validated by the module (src/server/request.c): the profile goes to
 * <root>/<session_id>/<host>.xplane.pb. */
struct tfprof__capture {
	const char *root, *session_id, *host;
	uint32_t host_level, device_level, python_level;
	uint64_t duration_ms;
};

/* libtfprof's side, valid while the module runs. */
struct tfprof__server_host {
	size_t sz;
	/* Starts the capture's session: 0, TFPROF_ERR_ACTIVE when a session runs, or another
	 * negative error. */
	int (*capture_start)(const struct tfprof__capture *c);
	/* Stops the capture's session and writes its profile. Returns 0 with the written file's
	 * path in path, 1 when nothing was recorded (nothing written), or a negative error. */
	int (*capture_stop)(char *path, size_t pathlen);
	void (*log)(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
	const char *(*strerror)(int err);
	/* Writes are refused outside this directory (NULL: anywhere absolute). */
	const char *root;
	uint64_t max_duration_ms;
};

/* The module's side. */
struct tfprof__server_module {
	int abi;
	/* Binds host:port (port 0: any) and starts serving. Returns 0 and the bound port, or a
	 * negative errno with a one-line reason in err. */
	int (*start)(const char *host, int port, const struct tfprof__server_host *h, int *bound,
		     char *err, size_t errlen);
	/* Ends a capture in progress (its profile is written) and stops serving. at_exit: the
	 * process is exiting; only end the capture, within a bounded time, and leave gRPC's
	 * threads alone. */
	void (*stop)(bool at_exit);
};

typedef const struct tfprof__server_module *(*tfprof__server_entry_fn)(void);

#endif
