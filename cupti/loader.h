/* SPDX-License-Identifier: Apache-2.0 */
/* Loading libcupti at run time: tfprof is never linked against CUPTI, so a program that uses it
 * runs on machines without CUDA. This finds libcupti with dlopen, checks its API version and
 * resolves every CUPTI function tfprof calls into one table.
 *
 * Lifetime: a library that loaded is never closed. CUPTI starts threads of its own and keeps
 * pointers to our callbacks; unloading it (or us) while those threads live would crash. The
 * tables returned here therefore stay valid for the life of the process. */
#ifndef TFPROF_CUPTI_LOADER_H
#define TFPROF_CUPTI_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include <cupti.h>

/* The oldest CUPTI tfprof accepts: CUDA 13.0. The record structs tfprof decodes
 * (CUpti_ActivityKernel10, CUpti_ActivityMemcpy6, ...) and the callback ids it enables are those
 * of the CUDA 13 headers; a CUDA 12 libcupti writes older record layouts (CUpti_ActivityKernel9
 * and friends) that these structs would misread. CUDA 13 is also where CUPTI switched to the
 * xxyyzz version scheme, so every older library reports a number below this (12.9.1 is 28).
 * Newer 13.x libraries only append fields to the records, which tfprof does not read. */
#define TFPROF_CUPTI_MIN_VERSION 130000u

/* The CUPTI entry points tfprof uses, typed from the CUDA 13 headers. Required ones are never
 * NULL in a table returned by tfprof__cupti_load(); optional ones may be NULL. */
struct tfprof__cupti_fns {
	const char *path; /* the file that was loaded, as it was named to dlopen */
	uint32_t version; /* cuptiGetVersion() */

	__typeof__(cuptiGetVersion) *GetVersion;
	__typeof__(cuptiGetResultString) *GetResultString;
	__typeof__(cuptiGetTimestamp) *GetTimestamp;
	__typeof__(cuptiGetDeviceId) *GetDeviceId;
	__typeof__(cuptiActivityRegisterCallbacks) *ActivityRegisterCallbacks;
	__typeof__(cuptiActivityEnable) *ActivityEnable;
	__typeof__(cuptiActivityDisable) *ActivityDisable;
	__typeof__(cuptiActivityFlushAll) *ActivityFlushAll;
	__typeof__(cuptiActivityGetNextRecord) *ActivityGetNextRecord;
	__typeof__(cuptiActivityGetNumDroppedRecords) *ActivityGetNumDroppedRecords;
	__typeof__(cuptiSubscribe) *Subscribe;
	__typeof__(cuptiUnsubscribe) *Unsubscribe;
	__typeof__(cuptiEnableCallback) *EnableCallback;

	/* Optional: cuptiSubscribe_v2 names the tool that holds the subscription when another one
	 * does; cuptiActivityEnableAndDump replays DEVICE and CONTEXT records for GPUs that CUDA
	 * initialized before this session (a second session in one process needs it). */
	__typeof__(cuptiSubscribe_v2) *Subscribe_v2;
	__typeof__(cuptiActivityEnableAndDump) *ActivityEnableAndDump;
};

/* Finds and loads libcupti, checks its version and resolves the table.
 *
 * Search order: TFPROF_CUPTI_LIBRARY when it is set and not empty, and nothing else then (a
 * library the user named that fails to load is an error, not a cue to pick another one);
 * otherwise libcupti.so.13 and libcupti.so through the dynamic loader's search path, then
 * $CUDA_HOME/lib64, $CUDA_HOME/extras/CUPTI/lib64, /usr/local/cuda/lib64 and
 * /usr/local/cuda/extras/CUPTI/lib64 (libcupti.so.13 in each). A candidate that loads but is
 * too old or lacks a function is skipped with its reason noted.
 *
 * Returns 0 and sets *out to a table that lives as long as the process, or a negative errno
 * (-ENOENT: nothing usable found; -ENOEXEC: found but unusable) with a one-line message in err
 * that says what was tried and how to fix it. Called with the session lock held; not
 * thread-safe against itself. */
int tfprof__cupti_load(const struct tfprof__cupti_fns **out, char *err, size_t errlen);

/* The name of a CUPTI result code ("CUPTI_ERROR_UNKNOWN"), or "CUPTI error <n>" when the
 * library does not know it. Returns a static or thread-local string. */
const char *tfprof__cupti_result_name(const struct tfprof__cupti_fns *f, CUptiResult r);

#endif
