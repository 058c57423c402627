/* SPDX-License-Identifier: Apache-2.0 */
/* The session's internal entry points for its owners other than the program: activation
 * (tfprof-start, activate.c) and the profiler server's captures (server.c). */
#ifndef TFPROF_SESSION_H
#define TFPROF_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "tfprof/tfprof.h"

/* Who started the running session, and so who may stop it. */
enum tfprof__owner { TFPROF__OWNER_PROGRAM, TFPROF__OWNER_ACTIVATION, TFPROF__OWNER_CAPTURE };

/* ---- For activation (activate.c, exec_hook.c) ---- */

/* tfprof_start() for activation: the same, except that the session is activation's (the
 * program's own tfprof_stop() leaves it running and returns TFPROF_ERR_ACTIVATED) and that,
 * with defer_gpu, GPU tracing (unless disabled) waits for tfprof__session_gpu_attach(). */
int tfprof__start_activated(const char *logdir, const struct tfprof_options *opts, bool defer_gpu);
/* tfprof_stop() for activation: stops activation's own session only (TFPROF_ERR_NOT_ACTIVE for
 * one the program started) and copies the written profile's path into path ("" when none).
 * With skip_empty, a session that recorded nothing writes no file and returns
 * TFPROF__STOP_EMPTY. */
int tfprof__stop_activated(bool skip_empty, char *path, size_t pathlen);
#define TFPROF__STOP_EMPTY 1
/* Starts the GPU tracing that the running session deferred. Returns 0 when there was nothing to
 * do or tracing started, TFPROF_ERR_NOT_ACTIVE without a session, or the negative code of a
 * failed start (the session goes on host-only and its profile says why). */
int tfprof__session_gpu_attach(void);
/* Renames the host (the file's stem) of the running activated session, for its profile
 * written before an exec. Returns 0, TFPROF_ERR_NOT_ACTIVE (no activated session) or -ENOMEM. */
int tfprof__session_set_host(const char *host);

/* ---- For the profiler server (server.c) ---- */

/* Starts a capture's session: like tfprof_start(), but the profile goes to
 * root/<opts->run_name>/<host>.xplane.pb (root is a repository_root, not a logdir); no_scopes:
 * user scopes are not recorded (host_tracer_level 0), CUDA calls are. Returns 0,
 * TFPROF_ERR_ACTIVE when any session runs, or tfprof_start()'s errors. */
int tfprof__start_capture(const char *root, const struct tfprof_options *opts, bool no_scopes);

/* Stops the capture's session and writes its profile; the path written goes to path. Returns 0,
 * TFPROF__STOP_EMPTY when nothing was recorded and nothing written,
 * TFPROF_ERR_NOT_ACTIVE when no capture runs, or tfprof_stop()'s errors. */
int tfprof__stop_capture(char *path, size_t pathlen);

#endif
