/* SPDX-License-Identifier: Apache-2.0 */
/* CUPTI API callbacks: every traced CUDA runtime or driver call (kernel launches, copies,
 * memsets, synchronizations) becomes a host event on the calling thread, named after the kernel
 * for launches, carrying the correlation id that ties it to the device work it queued.
 * Synchronization and the nesting rule are written down at the top of callbacks.c. */
#ifndef TFPROF_CUPTI_CALLBACKS_H
#define TFPROF_CUPTI_CALLBACKS_H

#include <stdbool.h>
#include <stdint.h>

#include "loader.h"

/* Subscribes to CUPTI and enables the traced runtime and driver callback ids, with the
 * allocation and release calls when memory is true. Returns
 * CUPTI_SUCCESS, or the failing result with the call's name in *what; when another tool holds
 * the subscription and the library says which, its name is copied to holder (else holder is
 * ""). On failure nothing stays subscribed. Called from the session thread. */
CUptiResult tfprof__callbacks_start(const struct tfprof__cupti_fns *f, bool memory, const char **what,
				    char *holder, size_t holderlen);

/* Unsubscribes. A callback already running on another thread may still finish; it only touches
 * its own thread's state and the tracer, which copes with calls after a session ended. */
void tfprof__callbacks_stop(void);

/* The device of a context, by the context id CUPTI's records carry, as learned from API
 * callbacks of this session. Returns false when no callback saw that context. Thread-safe. */
bool tfprof__callbacks_context_device(uint32_t context_id, uint32_t *device_id);

/* The subscriber function itself, exposed so tests can play call sequences CUPTI produces but
 * the simulator does not (a runtime call whose driver call reports its own callback). */
void CUPTIAPI tfprof__callbacks_api(void *userdata, CUpti_CallbackDomain domain,
				    CUpti_CallbackId cbid, const void *cbdata);

#endif
