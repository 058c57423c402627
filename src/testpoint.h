/* SPDX-License-Identifier: Apache-2.0 */
/* Test points (LTTng-UST's TESTPOINT style): named places in the synchronization protocols
 * where a test can stop a thread to force one interleaving deterministically. They exist only
 * in the test-only copy of the library built with TFPROF_TESTPOINTS; elsewhere they are nothing. */
#ifndef TFPROF_TESTPOINT_H
#define TFPROF_TESTPOINT_H

#ifdef TFPROF_TESTPOINTS

/* Called with the point's name (a string literal) on the thread that reached it. A hook may
 * block that thread until the test lets it go; it must not call back into tfprof. */
typedef void (*tfprof__testpoint_hook)(const char *name);

/* Installs hook for every point (NULL removes it). Install it while no thread can reach a
 * point, for instance before the session the test drives starts. */
void tfprof__testpoint_set_hook(tfprof__testpoint_hook hook);
void tfprof__testpoint(const char *name);

#define TFPROF_TESTPOINT(name) tfprof__testpoint(name)

#else

#define TFPROF_TESTPOINT(name) ((void)0)

#endif

#endif
