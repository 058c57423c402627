/* SPDX-License-Identifier: Apache-2.0 */
/* Profile file placement and crash-safe writing (see files.h). */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
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

void (*tfprof__files_chunk_hook)(void);
bool tfprof__files_no_tmpfile;

/* Profiles are written in chunks of this size, so that the test hook can stop a writer between
 * two of them; one write() call each is as fast as one big one. */
#define WRITE_CHUNK ((size_t)1 << 20)

static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len < WRITE_CHUNK ? len : WRITE_CHUNK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
		if (tfprof__files_chunk_hook)
			tfprof__files_chunk_hook();
	}
	return 0;
}

/* Writes, sets the mode (0644 whatever the umask, as profiles always had) and syncs. */
static int fill(int fd, const uint8_t *data, size_t len)
{
	int rc = write_all(fd, data, len);
	if (!rc && fchmod(fd, 0644))
		rc = -errno;
	if (!rc && fsync(fd))
		rc = -errno;
	return rc;
}

/* Writes the profile as a file with no name in dir (O_TMPFILE) and links it in as path, so that
 * a writer killed at any point leaves nothing behind. Returns 0, -EEXIST when path exists,
 * -EOPNOTSUPP when the file system (or a missing /proc without the privilege to link by
 * descriptor) does not allow it, or another negative errno. */
static int place_unnamed(const char *dir, const char *path, const uint8_t *data, size_t len)
{
	if (tfprof__files_no_tmpfile)
		return -EOPNOTSUPP;
	int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL ? -EOPNOTSUPP : -errno;
	int rc = fill(fd, data, len);
	if (!rc) {
		/* Linking through /proc works for any user; by descriptor (AT_EMPTY_PATH) needs
		 * CAP_DAC_READ_SEARCH, but no /proc. Neither replaces an existing file. */
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
			rc = 0;
		else if (errno != ENOENT) /* ENOENT: no /proc (or the directory went; see below) */
			rc = -errno;
		else if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0)
			rc = 0;
		else
			rc = errno == ENOENT || errno == EPERM || errno == EACCES || errno == EINVAL ? -EOPNOTSUPP
												 : -errno;
	}
	close(fd);
	return rc;
}

/* Who this writer is, as temporary file names say it: the machine's name and its pid namespace
 * (containers on one host share a name but not their pids), "<host>-<pidns inode>". Returns
 * false when the namespace cannot be known (no /proc): such a writer removes no one's files. */
static bool writer_domain(char *buf, size_t size)
{
	char host[200] = { 0 };
	if (gethostname(host, sizeof host - 1) || !host[0])
		snprintf(host, sizeof host, "localhost");
	for (char *c = host; *c; c++)
		if (*c == '/' || *c == '.')
			*c = '_';
	struct stat ns;
	bool known = stat("/proc/self/ns/pid", &ns) == 0;
	snprintf(buf, size, "%s-%llu", host, known ? (unsigned long long)ns.st_ino : 0ull);
	return known;
}

/* Removes the temporary files that writers of this machine and pid namespace left in dir when
 * they died (killed during a write, where O_TMPFILE cannot be used): named
 * .<stem>.xplane.pb.tmp.<domain>.<pid>.<6 characters>, with a pid that no longer runs. A live
 * writer's file, or one from another machine or container sharing the directory, is never
 * touched. */
static void remove_stale_temps(const char *dir, const char *machine)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	char marker[300];
	snprintf(marker, sizeof marker, ".xplane.pb.tmp.%s.", machine);
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *m = e->d_name[0] == '.' ? strstr(e->d_name, marker) : NULL;
		if (!m)
			continue;
		char *end;
		errno = 0;
		long pid = strtol(m + strlen(marker), &end, 10);
		if (errno || pid <= 0 || *end != '.' || strlen(end + 1) != 6 || pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

/* The same through a named temporary file in dir, linked into place (or renamed, on file
 * systems without hard links); stale temporary files of dead writers are removed first. */
static int place_named(const char *dir, const char *path, const char *host, const uint8_t *data, size_t len)
{
	char machine[256], *tmp;
	if (writer_domain(machine, sizeof machine))
		remove_stale_temps(dir, machine);
	if (asprintf(&tmp, "%s/.%s.xplane.pb.tmp.%s.%ld.XXXXXX", dir, host, machine, (long)getpid()) < 0)
		return -ENOMEM;
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		free(tmp);
		return rc;
	}
	int rc = fill(fd, data, len);
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc) {
		/* link() refuses to replace an existing file, so a profile that appeared since the
		 * caller's check survives; rename() would overwrite it. */
		if (link(tmp, path) == 0)
			rc = 0;
		else if (errno == EEXIST || access(path, F_OK) == 0)
			rc = -EEXIST;
		else if (rename(tmp, path) == 0)
			rc = 0; /* file systems without hard links: rename after the check */
		else
			rc = -errno;
	}
	unlink(tmp); /* gone already after a rename */
	free(tmp);
	return rc;
}

/* Writes the profile at path, unnamed until linked where the file system allows it. */
static int place(const char *dir, const char *path, const char *host, const uint8_t *data, size_t len)
{
	int rc = place_unnamed(dir, path, data, len);
	return rc == -EOPNOTSUPP ? place_named(dir, path, host, data, len) : rc;
}

/* Removes the directories of dirs[0..n) that are empty, last first (those this writer created,
 * when no profile could be written in them). */
static void remove_created(char **dirs, size_t n)
{
	while (n--)
		if (dirs[n])
			rmdir(dirs[n]);
}

/* Writes under root/<run>[_N]/; parents are the directories above the run directories that
 * this call must remove again when nothing could be written and it created them. */
static int write_under(const char *root, const char *const *parents, size_t nparents,
		       const char *run, const char *host, const uint8_t *data, size_t len,
		       char **out_path)
{
	*out_path = NULL;
	int rc = -EEXIST;
	/* The directories this call creates: the parents, and the run directories. */
	char *created[16];
	size_t ncreated = 0;
	for (size_t i = 0; i < nparents; i++) {
		if (access(parents[i], F_OK) == 0)
			continue;
		char *p = strdup(parents[i]);
		if (!p) {
			while (ncreated)
				free(created[--ncreated]);
			return -ENOMEM;
		}
		created[ncreated++] = p;
	}
	for (unsigned n = 0; n < 10000; n++) {
		char *dir = NULL, *path = NULL;
		if ((n ? asprintf(&dir, "%s/%s_%u", root, run, n) : asprintf(&dir, "%s/%s", root, run)) <
		    0) {
			rc = -ENOMEM;
			break;
		}
		if (asprintf(&path, "%s/%s.xplane.pb", dir, host) < 0) {
			free(dir);
			rc = -ENOMEM;
			break;
		}
		if (access(path, F_OK) == 0) {
			free(dir);
			free(path);
			continue;
		}
		bool fresh = access(dir, F_OK) != 0;
		rc = tfprof__mkdirs(dir);
		if (fresh && ncreated < sizeof created / sizeof created[0])
			created[ncreated++] = strdup(dir); /* NULL (no memory): left in place */
		if (!rc) {
			rc = place(dir, path, host, data, len);
			/* Another writer that failed may have removed the empty run directory this one
			 * had just seen or made (ENOENT): make it again, once. */
			if (rc == -ENOENT && tfprof__mkdirs(dir) == 0)
				rc = place(dir, path, host, data, len);
		}
		free(dir);
		if (rc == -EEXIST) {
			free(path);
			continue;
		}
		if (!rc)
			*out_path = path;
		else
			free(path);
		break;
	}
	if (rc)
		remove_created(created, ncreated);
	for (size_t i = 0; i < ncreated; i++)
		free(created[i]);
	return rc;
}

int tfprof__write_profile(const char *logdir, const char *run, const char *host, const uint8_t *data,
			  size_t len, char **out_path)
{
	char *plugins = NULL, *root = NULL;
	*out_path = NULL;
	if (asprintf(&plugins, "%s/plugins", logdir) < 0 ||
	    asprintf(&root, "%s/plugins/profile", logdir) < 0) {
		free(plugins);
		return -ENOMEM;
	}
	const char *parents[] = { logdir, plugins, root };
	int rc = write_under(root, parents, 3, run, host, data, len, out_path);
	free(plugins);
	free(root);
	return rc;
}

int tfprof__write_profile_root(const char *root, const char *run, const char *host,
			       const uint8_t *data, size_t len, char **out_path)
{
	const char *parents[] = { root };
	return write_under(root, parents, 1, run, host, data, len, out_path);
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

