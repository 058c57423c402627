/* Profile file placement and crash-safe writing (see files.h). */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int tfprof__mkdirs(const char *dir)
{
	if (!dir || !*dir)
		return -EINVAL;
	char *p = strdup(dir);
	if (!p)
		return -ENOMEM;
	int rc = 0;
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0777) && errno != EEXIST) {
				rc = -errno;
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	if (!rc) {
		struct stat st;
		if (stat(p, &st))
			rc = -errno;
		else if (!S_ISDIR(st.st_mode))
			rc = -ENOTDIR;
	}
	free(p);
	return rc;
}

int tfprof__private_dir(const char *dir)
{
	/* Parents (e.g. a $TMPDIR that does not exist yet) are ordinary directories. */
	char *parent = strdup(dir);
	if (!parent)
		return -ENOMEM;
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		tfprof__mkdirs(parent);
	}
	free(parent);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	struct stat st;
	if (lstat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != getuid() || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

char *tfprof__host_file_stem(const char *host)
{
	char *s = strdup(host && *host ? host : "localhost");
	if (!s)
		return NULL;
	for (char *c = s; *c; c++)
		if (*c == ':' || *c == '/')
			*c = '_';
	/* "." and ".." would name directories, not files. */
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
		free(s);
		s = strdup("localhost");
	}
	return s;
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes data to a new temporary file in dir; *tmp receives its malloc'd path. */
static int write_temp(const char *dir, const char *host, const uint8_t *data, size_t len, char **tmp)
{
	if (asprintf(tmp, "%s/.%s.xplane.pb.tmp.%ld.XXXXXX", dir, host, (long)getpid()) < 0)
		return -ENOMEM;
	int fd = mkstemp(*tmp);
	if (fd < 0) {
		int rc = -errno;
		free(*tmp);
		*tmp = NULL;
		return rc;
	}
	int rc = write_all(fd, data, len);
	if (!rc && fchmod(fd, 0644))
		rc = -errno;
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (rc) {
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
	}
	return rc;
}

int tfprof__write_profile(const char *logdir, const char *run, const char *host, const uint8_t *data,
			  size_t len, char **out_path)
{
	*out_path = NULL;
	for (unsigned n = 0; n < 10000; n++) {
		char *dir = NULL, *path = NULL, *tmp = NULL;
		int rc;
		if ((n ? asprintf(&dir, "%s/plugins/profile/%s_%u", logdir, run, n)
		       : asprintf(&dir, "%s/plugins/profile/%s", logdir, run)) < 0)
			return -ENOMEM;
		if (asprintf(&path, "%s/%s.xplane.pb", dir, host) < 0) {
			free(dir);
			return -ENOMEM;
		}
		if (access(path, F_OK) == 0) {
			free(dir);
			free(path);
			continue;
		}
		rc = tfprof__mkdirs(dir);
		if (!rc)
			rc = write_temp(dir, host, data, len, &tmp);
		if (!rc) {
			/* link() refuses to replace an existing file, so a profile that appeared since
			 * the check above survives; rename() would overwrite it. */
			if (link(tmp, path) == 0) {
				unlink(tmp);
			} else if (errno == EEXIST) {
				unlink(tmp);
				free(tmp);
				free(dir);
				free(path);
				continue;
			} else if (access(path, F_OK) != 0 && rename(tmp, path) == 0) {
				/* File systems without hard links: rename after the check. */
			} else {
				rc = -errno;
				unlink(tmp);
			}
		}
		free(tmp);
		free(dir);
		if (rc) {
			free(path);
			return rc;
		}
		*out_path = path;
		return 0;
	}
	return -EEXIST;
}
char *tfprof__default_run_name(void)
{
	char buf[64];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(buf, sizeof buf, "%Y_%m_%d_%H_%M_%S", &tm);
	return strdup(buf);
}

