/* SPDX-License-Identifier: Apache-2.0 */
/* The library's only voice: messages go to the log callback from tfprof_options, or to stderr
 * when TFPROF_LOG=1, and nowhere otherwise. */
#ifndef TFPROF_LOG_H
#define TFPROF_LOG_H

#include "tfprof/tfprof.h"

/* Sets the callback for messages from now on (NULL: stderr if TFPROF_LOG=1, else silence). */
void tfprof__log_configure(tfprof_log_fn fn, void *ctx);
void tfprof__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
