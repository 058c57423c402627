/* SPDX-License-Identifier: Apache-2.0 */
/* Routes library messages to the user's callback or, when asked, stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"

static tfprof_log_fn log_fn;
static void *log_ctx;

void tfprof__log_configure(tfprof_log_fn fn, void *ctx)
{
	__atomic_store_n(&log_ctx, ctx, __ATOMIC_RELAXED);
	__atomic_store_n(&log_fn, fn, __ATOMIC_RELEASE);
}

void tfprof__log(int level, const char *fmt, ...)
{
	tfprof_log_fn fn = __atomic_load_n(&log_fn, __ATOMIC_ACQUIRE);
	const char *env = tfprof__getenv("TFPROF_LOG");
	bool to_stderr = !fn && env && *env && strcmp(env, "0") != 0;
	if (!fn && !to_stderr)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (fn)
		fn(level, msg, __atomic_load_n(&log_ctx, __ATOMIC_RELAXED));
	else
		fprintf(stderr, "tfprof: %s%s\n",
			level == TFPROF_LOG_ERROR ? "error: " : level == TFPROF_LOG_WARN ? "warning: " : "",
			msg);
}
