/* SPDX-License-Identifier: Apache-2.0 */
/* libtfprof's internal calls into the profiler server (src/server.c), for activation. */
#ifndef TFPROF_SERVER_H
#define TFPROF_SERVER_H

/* Ends a capture in progress, writing its profile, before the program exits or dies of a
 * signal; activation calls it first thing in its exit handler and signal path, which run before
 * libcupti's teardown (see tfprof__activate_cuda_up). No-op without a server. */
void tfprof__server_at_exit(void);

#endif
