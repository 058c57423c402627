/* SPDX-License-Identifier: Apache-2.0 */
/* The process environment as the C library holds it, read and set without going through a
 * program's own getenv/setenv (see env.c for why). */
#ifndef TFPROF_ENV_H
#define TFPROF_ENV_H

/* NAME's value in the environment, or NULL when unset. Also NULL for every name in a
 * set-user-ID or set-group-ID process, so that the environment cannot steer where a privileged
 * program writes (glibc's secure_getenv rule). */
const char *tfprof__getenv(const char *name);

/* Sets NAME=VALUE (replacing it) in the C library's environment, which programs the process
 * starts with exec*() inherit. 0 or -errno. */
int tfprof__setenv(const char *name, const char *value);

#endif
