/* The session's internal entry points for its other owners than the program: the profiler
 * server's captures (src/server.c). Activation's are declared in activate.h. */
#ifndef TFPROF_SESSION_H
#define TFPROF_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "tfprof/tfprof.h"

/* Who started the running session, and so who may stop it. */
enum tfprof__owner { TFPROF__OWNER_PROGRAM, TFPROF__OWNER_ACTIVATION, TFPROF__OWNER_CAPTURE };

/* Starts a capture's session: like tfprof_start(), but the profile goes to
 * root/<opts->run_name>/<host>.xplane.pb (root is a repository_root, not a logdir); no_scopes:
 * user scopes are not recorded (host_tracer_level 0), CUDA calls are. Returns 0,
 * TFPROF_ERR_ACTIVE when any session runs, or tfprof_start()'s errors. */
int tfprof__start_capture(const char *root, const struct tfprof_options *opts, bool no_scopes);

/* Stops the capture's session and writes its profile; the path written goes to path. Returns 0,
 * TFPROF__STOP_EMPTY (activate.h) when nothing was recorded and nothing written,
 * TFPROF_ERR_NOT_ACTIVE when no capture runs, or tfprof_stop()'s errors. */
int tfprof__stop_capture(char *path, size_t pathlen);

#endif
