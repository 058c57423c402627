/* SPDX-License-Identifier: Apache-2.0 */
/* Environment activation (tfprof-start): the library starts a session by itself when it loads
 * into a program with TFPROF_START=1 in its environment, and writes the profile when the program
 * exits or is stopped by SIGINT/SIGTERM. This header is activation's: what the rest of the library
 * calls in activate.c (the CUDA injection, exec, and the steps hooks tracer.c calls). What
 * activation calls in session.c is declared in session.h.
 *
 * Environment read at load (tfprof-start sets it; `tfprof-start --help` documents it):
 *   TFPROF_START=1        activate
 *   TFPROF_LOGDIR         where profiles go (default ./tfprof-logdir, made absolute at load)
 *   TFPROF_RUN            the run directory name; when unset it is chosen at load and exported,
 *                         so that programs this one starts write into the same run
 *   TFPROF_DELAY          seconds after load before recording starts (default 0)
 *   TFPROF_DURATION       seconds of recording, then the profile is written (default: until exit)
 *   TFPROF_STEPS=A:B      record training steps A to B (inclusive) only, see "Steps" below; it
 *                         replaces TFPROF_DELAY and TFPROF_DURATION, which are then ignored
 *   TFPROF_GPU=0, TFPROF_MAX_MEMORY_MB  as for any session
 *   TFPROF_FORMAT         xplane (default) or xplane,chrome ("chrome" alone: the same): once the
 *                         profile is written, also its Chrome trace, <stem>.trace.json.gz beside
 *                         it, by tfprof-report run as an unprofiled child process (chrome_convert.c);
 *                         a bad value: one warning, the XSpace only
 *   TFPROF_REPORT_BIN     that tfprof-report (default: tfprof-report from PATH)
 *   TFPROF_START_PID      the pid of the program tfprof-start ran (it keeps tfprof-start's pid
 *                         through exec): that process always writes its profile; any other
 *                         (helpers the program runs: sh, ldconfig, nvidia-smi...; every command
 *                         of a --shell) writes one only when it recorded something
 * The profile's file is <host>.<pid>.xplane.pb, or <host>.rank<r>.xplane.pb when an MPI or
 * launcher rank is set (OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK, SLURM_PROCID, RANK,
 * LOCAL_RANK, first found), so that every process of a job has its own file in one run.
 *
 * GPU tracing of an activated session waits for CUDA to initialize when CUDA_INJECTION64_PATH
 * names this library: the driver then calls InitializeInjection(), which starts it. Programs
 * that never use CUDA never load libcupti.
 *
 * Steps (TFPROF_STEPS=A:B, "A" alone means A:A). A step is a scope whose arguments at its begin
 * include an integer step_num (TFPROF_I64/TFPROF_U64), which the NVTX tool also gives to NVTX
 * ranges named like steps (nvtx_tool.c). The first thread that begins such a scope is the
 * stepping thread; other threads' steps are not looked at. Recording starts at the begin of the
 * first step numbered A..B (normally A) and the profile is written at the end of step B, on the
 * stepping thread, before the program goes on. A step numbered past B while recording (B was
 * skipped) stops before that step begins. The program ending in between writes steps A..k as
 * usual; ending before step A writes nothing and says so.
 * Cost: while TFPROF_STEPS waits or records, bit TFPROF__STATE_HOOKS of tfprof__state sends every
 * scope begin to the library (a call and a scan of its arguments, no recording while waiting),
 * and every recorded scope's end compares its handle with step B's; without it, nothing. */
#ifndef TFPROF_ACTIVATE_H
#define TFPROF_ACTIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "tfprof/tfprof.h"

/* The CUDA injection entry point: the CUDA driver dlopen()s CUDA_INJECTION64_PATH while CUDA
 * initializes and calls this once. It starts GPU tracing in the running session if that session
 * deferred it (an activated session), and notes that CUDA is up so that a session started later
 * (after TFPROF_DELAY) traces the GPU from its start. Idempotent; returns 1 (success) always:
 * a profiler must never make CUDA initialization fail. */
TFPROF_API int InitializeInjection(void);

/* Called when CUDA is seen to be up (InitializeInjection, the first CUDA call CUPTI reports):
 * registers the exit handler again, so that an activated session is written at exit before
 * libcupti and the CUDA runtime are torn down. Cheap after the first call; any thread. */
void tfprof__activate_cuda_up(void);

/* exec in place (exec_hook.c). Before an exec replaces an activated image, its session is
 * stopped and written as <host>.<pid>.exec<N> (the first N free in the run; nothing when it
 * recorded nothing), since no exit handler runs then; the new image writes <host>.<pid> as
 * usual. Returns whether a session was stopped that tfprof__activate_exec_failed() should start
 * again, for when the exec returns (fails). Cheap and false outside activation. */
bool tfprof__activate_before_exec(void);
void tfprof__activate_exec_failed(bool restart);

/* True when path names the file this code was loaded from (libtfprof.so, or the program when
 * tfprof is linked statically). */
bool tfprof__names_this_library(const char *path);

#endif /* TFPROF_ACTIVATE_H */
