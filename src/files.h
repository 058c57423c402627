/* SPDX-License-Identifier: Apache-2.0 */
/* Where profiles go and how they get there: the run directory layout xprof expects, directory
 * creation, and a write that never leaves a partial file under the final name. */
#ifndef TFPROF_FILES_H
#define TFPROF_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Creates dir and its parents (mode 0777 before umask). Returns 0 or a negative errno. */
int tfprof__mkdirs(const char *dir);
/* Creates dir with mode 0700 if missing (its parents as ordinary directories) and checks that it is a real directory
 * (not a symlink) owned by the calling user and closed to others. Returns 0 or a negative errno
 * (-EPERM when someone else owns it or can enter it). */
int tfprof__private_dir(const char *dir);
/* The default run name: the local time as %Y_%m_%d_%H_%M_%S (what TensorFlow names runs), malloc'd,
 * or NULL when out of memory. */
char *tfprof__default_run_name(void);
/* Makes a host name usable as a file name stem: ':' and '/' become '_', "" becomes
 * "localhost". Returns a malloc'd string. */
char *tfprof__host_file_stem(const char *host);
/* Writes data to <logdir>/plugins/profile/<run>[_N]/<host>.xplane.pb, choosing the first N (none,
 * 1, 2, ...) whose file does not exist yet, through a file that is linked into place, so an
 * existing profile is never overwritten and no reader sees half a file. The file has no name
 * until it is linked (O_TMPFILE), so a writer killed half-way leaves nothing; where the file
 * system cannot do that, a named temporary file is used, and those of dead writers on this
 * machine are removed by the next write into the same directory. When nothing could be
 * written, the directories this call created are removed again. The file's mode is 0644. On
 * success *out_path is the malloc'd final path. Returns 0 or a negative errno. */
int tfprof__write_profile(const char *logdir, const char *run, const char *host, const uint8_t *data,
			  size_t len, char **out_path);

/* The same, for a profile whose run directories live directly under root (a capture's
 * repository_root, which is <logdir>/plugins/profile for xprof's client): root/<run>[_N]/. */
int tfprof__write_profile_root(const char *root, const char *run, const char *host,
			       const uint8_t *data, size_t len, char **out_path);

/* Tests only (tests/test_files.c); never set in production. The hook runs after each chunk of
 * a profile is written (to kill a writer half-way); no_tmpfile makes writes go through a named
 * temporary file, as on file systems without O_TMPFILE. */
extern void (*tfprof__files_chunk_hook)(void);
extern bool tfprof__files_no_tmpfile;

#endif
