/* SPDX-License-Identifier: Apache-2.0 */
/* NVTX emission: every tfprof scope is also an NVTX range in a domain named "tfprof", so that
 * Nsight Systems (or any NVTX tool) shows the same scopes as the tfprof profile.
 *
 * Without NVTX3 headers at build time (TFPROF_HAVE_NVTX not defined) these functions exist and
 * do nothing.
 *
 * Thread-safety: every function may be called from any thread. tfprof__nvtx_init() must have
 * returned before the first push (tfprof_start() calls it before it switches recording on); it
 * is idempotent. NVTX ranges are per thread: tfprof__nvtx_pop() ends the innermost range that
 * the calling thread pushed, so the caller must pop on the thread that pushed, innermost
 * first, exactly once per push. */
#ifndef TFPROF_NVTX_H
#define TFPROF_NVTX_H

#include <stdbool.h>

#include "tfprof/tfprof.h"

/* Creates the "tfprof" NVTX domain once per process. Idempotent and thread-safe; not on the hot
 * path. This is also the first NVTX call of libtfprof, so it is where NVTX reads
 * NVTX_INJECTION64_PATH and attaches a tool (once per process for this module; later changes of
 * the variable have no effect).
 *
 * Returns true when an NVTX tool is attached (Nsight Systems, CUPTI, a test tool). When it
 * returns false, which it always does without NVTX support, every push and pop below is a
 * no-op for the life of the process, so a caller may skip them and save their ~3 ns; calling
 * them anyway is harmless. */
bool tfprof__nvtx_init(void);

/* Pushes a range named site->name in the tfprof domain. On the first use of a site the name is
 * registered as an NVTX string and the handle is kept in site->nvtx_string (the site must be
 * static storage, as TFPROF_SCOPE makes it); later pushes are one NVTX call. Lock-free and
 * allocation-free. */
void tfprof__nvtx_push_site(struct tfprof_site *site);

/* Pushes a range whose name is built at run time (sent as an ASCII message; NVTX tools copy it
 * during the call, so name only has to live until this returns). NULL or "" is sent as
 * "(unnamed)", like the scope itself. */
void tfprof__nvtx_push_name(const char *name);

/* Ends the innermost tfprof range pushed by the calling thread. */
void tfprof__nvtx_pop(void);

#endif /* TFPROF_NVTX_H */
