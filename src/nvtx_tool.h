/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof as an NVTX tool: with NVTX_INJECTION64_PATH naming libtfprof, NVTX hands every module's
 * NVTX calls to libtfprof, which records the program's own ranges (push/pop and start/end, in
 * any domain) as tfprof scopes on the calling thread while a session records. This is how
 * tfprof-start profiles programs that only use NVTX.
 *
 * Recursion and double recording: tfprof's own scopes are NVTX ranges in the "tfprof" domain.
 * The tool refuses to create that domain (it returns no handle), so a tfprof instance whose NVTX
 * reaches this tool, this library's own or a second copy linked statically into the program,
 * sees no tool attached and emits no ranges: each scope is recorded once, by the instance that
 * owns it. */
#ifndef TFPROF_NVTX_TOOL_H
#define TFPROF_NVTX_TOOL_H

#include <stdint.h>

#include "tfprof/tfprof.h"

/* NVTX's tool entry point (signature NvtxInitializeInjectionNvtxFunc_t), called once per module
 * that makes NVTX calls, on the thread that makes that module's first call. Installs the
 * handlers and returns 1, or 0 (that module's NVTX stays a no-op) when its NVTX lacks a call
 * tfprof needs. Built only with the NVTX3 headers. */
TFPROF_API int InitializeInjectionNvtx2(const void *(*get_export_table)(uint32_t id));

#endif /* TFPROF_NVTX_TOOL_H */
