/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof-report's output files (--svg, --chrome-trace): written to a temporary file in the same
 * folder and renamed over the path at the end, so that a failed run never leaves half a file
 * under the name asked for; optionally gzip-compressed through zlib. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "report.h"

static ssize_t gz_cookie_write(void *cookie, const char *buf, size_t n)
{
	/* gzwrite takes an unsigned count; stdio hands over at most its buffer size here. */
	int k = gzwrite((gzFile)cookie, buf, (unsigned)n);
	return k > 0 ? k : (n ? -1 : 0);
}

static int gz_cookie_close(void *cookie)
{
	return gzclose((gzFile)cookie) == Z_OK ? 0 : -1;
}

int rp_outfile_open(struct rp_outfile *o, const char *path, const char *option, bool gzip, char *err,
		    size_t errlen)
{
	memset(o, 0, sizeof *o);
	o->path = path;
	struct stat pst;
	bool special = stat(path, &pst) == 0 && !S_ISREG(pst.st_mode);
	if (special && S_ISDIR(pst.st_mode)) {
		snprintf(err, errlen, "cannot write %s: it is a directory; give %s a file name inside it", path,
			 option);
		return -1;
	}
	size_t n = strlen(path) + 16;
	o->tmp = rp_xmalloc(n);
	int fd;
	if (special) {
		/* A pipe or device (/dev/stdout, a FIFO) is written in place: renaming over it would
		 * replace the device node instead of writing to it. */
		o->tmp[0] = '\0';
		fd = open(path, O_WRONLY);
	} else {
		/* The same folder, so that the final rename cannot cross file systems. */
		snprintf(o->tmp, n, "%s.tmp.XXXXXX", path);
		fd = mkstemp(o->tmp);
		if (fd >= 0) {
			/* mkstemp makes the file 0600; an output is meant to be shared like any other. */
			mode_t um = umask(0);
			umask(um);
			fchmod(fd, 0666 & ~um);
		}
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot write %s: %s; pick a writable folder for %s", path, strerror(errno),
			 option);
		free(o->tmp);
		o->tmp = NULL;
		return -1;
	}
	if (gzip) {
		/* stdio on top of zlib, so that writers print to a FILE either way. */
		gzFile z = gzdopen(fd, "wb6");
		if (z) {
			o->f = fopencookie(z, "w", (cookie_io_functions_t){ .write = gz_cookie_write,
									   .close = gz_cookie_close });
			if (!o->f)
				gzclose(z);
		} else {
			close(fd);
		}
		fd = -1;
	} else {
		o->f = fdopen(fd, "w");
	}
	if (!o->f) {
		snprintf(err, errlen, "cannot write %s: %s; check free memory and retry", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		rp_outfile_abort(o);
		return -1;
	}
	return 0;
}

int rp_outfile_commit(struct rp_outfile *o, char *err, size_t errlen)
{
	/* A write error sets the stream's error flag and errno at the time; fclose may report it
	 * again or not at all, so both are checked and the first errno is kept. */
	int saved = ferror(o->f) ? errno : 0;
	bool failed = ferror(o->f) != 0;
	if (fclose(o->f))
		failed = true, saved = saved ? saved : errno;
	o->f = NULL;
	if (failed) {
		snprintf(err, errlen, "cannot write %s: %s; check free disk space and retry", o->path,
			 strerror(saved ? saved : EIO));
		rp_outfile_abort(o);
		return -1;
	}
	/* On disk before it takes the name: after a crash the name holds the whole file or the old
	 * one, never an empty one. Through a new descriptor, since the gzip stream closed its own. */
	if (o->tmp[0]) {
		int fd = open(o->tmp, O_RDONLY);
		bool synced = fd >= 0 && fsync(fd) == 0;
		int saved_sync = errno;
		if (fd >= 0)
			close(fd);
		if (!synced) {
			snprintf(err, errlen, "cannot write %s: %s; check the disk and retry", o->path,
				 strerror(saved_sync));
			rp_outfile_abort(o);
			return -1;
		}
	}
	if (o->tmp[0] && rename(o->tmp, o->path)) {
		snprintf(err, errlen, "cannot write %s: %s; check the path and retry", o->path, strerror(errno));
		rp_outfile_abort(o);
		return -1;
	}
	free(o->tmp);
	o->tmp = NULL;
	return 0;
}

void rp_outfile_abort(struct rp_outfile *o)
{
	if (o->f)
		fclose(o->f);
	o->f = NULL;
	if (o->tmp && o->tmp[0])
		unlink(o->tmp);
	free(o->tmp);
	o->tmp = NULL;
}
