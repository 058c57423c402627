/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared by the tests: scratch directories and file checks. */
#ifndef TFPROF_TEST_UTIL_H
#define TFPROF_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* A new empty directory for one test (under $TFPROF_TEST_TMP or /tmp); malloc'd path. */
char *tt_scratch_dir(const char *tag);
/* Removes a directory tree. */
void tt_rm_rf(const char *path);
bool tt_file_exists(const char *path);
/* Number of entries (not . or ..) in a directory; -1 if it cannot be read. */
int tt_dir_entries(const char *path);
/* The process's peak resident set (VmHWM) in KiB, -1 when /proc cannot say. */
long tt_peak_rss_kb(void);

#endif
