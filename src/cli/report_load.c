/* SPDX-License-Identifier: Apache-2.0 */
/* Turns the PATH given to tfprof-report into XSpaces: a .xplane.pb file, a run directory holding
 * one <host>.xplane.pb per host, a logdir (its newest run, or the one --run names) or the
 * logdir's plugins/profile folder. Every way this can fail ends in one line that says what to
 * pass instead.
 *
 * Memory: each file is mapped read-only, not read; report_wire.c unpacks only its small parts,
 * the analyses decode the events one at a time from the mapping, and each walk hands the pages it
 * has passed back (report_wire.c), so memory is what the analyses keep, not the file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"

#define SUFFIX ".xplane.pb"
#define WHAT_TO_PASS "pass a logdir, a run directory (<logdir>/plugins/profile/<run>) or a .xplane.pb file"

static void set_err(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

static char *path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = rp_xmalloc(a + b + 2);
	memcpy(p, dir, a);
	size_t k = a;
	if (k && p[k - 1] != '/')
		p[k++] = '/';
	memcpy(p + k, name, b + 1);
	return p;
}

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* What a file that is not an XSpace probably is, for the error message. */
static const char *sniff(const unsigned char *b, size_t n)
{
	if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
		return "it is gzip-compressed: decompress it (gunzip) and pass the .xplane.pb inside";
	size_t i = 0;
	while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t'))
		i++;
	if (i < n && (b[i] == '{' || b[i] == '['))
		return "it looks like JSON (a Chrome trace?), not an XSpace: pass the .xplane.pb file";
	if (n >= 4 && memcmp(b, "PK\3\4", 4) == 0)
		return "it is a zip archive: unpack it and pass the .xplane.pb inside";
	size_t z = 0;
	while (z < n && !b[z])
		z++;
	if (n >= 8 && z == n)
		return "it starts with zero bytes, as a file that was allocated but never written does: "
		       "capture the profile again";
	return "it is truncated, corrupt or another kind of file: pass a complete .xplane.pb written "
	       "by tfprof, TensorFlow or JAX";
}

/* The one-line message for bytes that report_wire.c refused; head is the file's first bytes. */
static void wire_error(const struct rp_wire_fault *f, const unsigned char *head, size_t nh, uint64_t n,
		       const char *path, char *err, size_t errlen)
{
	if (f->why == RP_WIRE_NO_PLANES)
		set_err(err, errlen, "%s is not an XSpace profile: it holds no planes; capture the profile again",
			path);
	else if (f->why == RP_WIRE_TRUNCATED && f->need)
		set_err(err, errlen, "%s is cut short: it ends %llu bytes before the end of the part that "
			"starts at byte %llu; copy the complete file or capture the profile again", path,
			(unsigned long long)f->need, (unsigned long long)f->at);
	else if (f->why == RP_WIRE_TRUNCATED)
		set_err(err, errlen, "%s is cut short: it ends inside the header of the part that starts at "
			"byte %llu; copy the complete file or capture the profile again", path,
			(unsigned long long)f->at);
	else if (f->at)
		set_err(err, errlen, "%s is not a readable XSpace profile: it is corrupt from byte %llu of %llu "
			"(a damaged copy, or other data after the profile); copy the complete file or capture "
			"the profile again", path, (unsigned long long)f->at, (unsigned long long)n);
	else
		set_err(err, errlen, "%s is not a readable XSpace profile: %s", path, sniff(head, nh));
}

/* Parses and validates one XSpace held in memory (taking buf); path names it in messages. */
static struct rp_space *parse_space(uint8_t *buf, size_t n, enum rp_buf_kind kind, const char *path,
				    char *err, size_t errlen)
{
	/* The sniff needs the first bytes after the buffer is gone. */
	unsigned char head[64];
	size_t nh = n < sizeof head ? n : sizeof head;
	memcpy(head, buf, nh);
	struct rp_wire_fault f;
	struct rp_space *s = rp_space_parse(buf, n, kind, &f);
	if (!s)
		wire_error(&f, head, nh, n, path, err, errlen);
	return s;
}

/* The one-line message for a path that is not a regular file: what it is and what to pass. */
static void not_a_file(mode_t m, const char *path, char *err, size_t errlen)
{
	if (S_ISFIFO(m) || S_ISSOCK(m))
		set_err(err, errlen, "%s is a %s: tfprof-report maps the profile and cannot read it from a "
			"pipe; save the profile to a file and pass that", path, S_ISFIFO(m) ? "pipe (FIFO)" : "socket");
	else
		set_err(err, errlen, "%s is %s, not a file: " WHAT_TO_PASS, path,
			S_ISCHR(m) || S_ISBLK(m) ? "a device" : S_ISDIR(m) ? "a directory" : "not a regular file");
}

/* The files mapped so far, for the SIGBUS handler: a file that shrinks while it is mapped (another
 * program truncates or rewrites it in place) makes every access past its new end fault with
 * SIGBUS, which would kill the tool without a word. The list only grows (a file's entry outlives
 * its mapping), so it is searched newest first; the tool is single-threaded and the signal comes
 * from its own reads, never from inside the code that grows the list. */
struct mapped_file {
	const uint8_t *addr;
	size_t len;
	char *path;
};
static struct mapped_file *mapped;
static size_t n_mapped, mapped_cap;

static void put_str(const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(STDERR_FILENO, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	const uint8_t *a = si->si_addr;
	for (size_t i = n_mapped; i-- > 0;)
		if (a >= mapped[i].addr && a < mapped[i].addr + mapped[i].len) {
			put_str("tfprof-report: ");
			put_str(mapped[i].path);
			put_str(" shrank while it was being read (another program truncated or rewrote it); "
				"read it again once it is complete\n");
			_exit(RP_EXIT_BAD_INPUT);
		}
	/* Not a mapped profile: the default action, as if there were no handler, when the faulting
	 * access runs again. */
	signal(sig, SIG_DFL);
}

/* Installs the handler for every file, not once: whoever set SIGBUS since the last file (a
 * test harness does) would otherwise keep it. */
static void watch_mapping(const void *addr, size_t len, const char *path)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	rp_grow((void **)&mapped, &mapped_cap, n_mapped + 1, sizeof *mapped);
	mapped[n_mapped] = (struct mapped_file){ addr, len, rp_xstrdup(path) };
	n_mapped++;
}

/* Maps one file and parses it. The file is mapped, not read: no page of it is in memory before
 * a walk touches it, and a file whose first bytes cannot start an XSpace is refused from those
 * bytes alone. */
static struct rp_space *read_space(const char *path, char *err, size_t errlen)
{
	/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; it is refused
	 * below like every other file that cannot be mapped. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		set_err(err, errlen, "cannot open %s: %s; check the path and its permissions", path,
			strerror(errno));
		return NULL;
	}
	struct rp_space *s = NULL;
	struct stat st;
	if (fstat(fd, &st)) {
		set_err(err, errlen, "cannot read %s: %s; check the file and retry", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		not_a_file(st.st_mode, path, err, errlen);
		goto out;
	}
	if (st.st_size == 0) {
		set_err(err, errlen, "%s is empty (0 bytes): the profile was not written; capture it again",
			path);
		goto out;
	}
	uint64_t n = (uint64_t)st.st_size;
	unsigned char head[64];
	ssize_t nh;
	do
		nh = pread(fd, head, sizeof head, 0);
	while (nh < 0 && errno == EINTR);
	if (nh <= 0) {
		set_err(err, errlen, "cannot read %s: %s; check the file and retry", path,
			nh ? strerror(errno) : "it shrank to 0 bytes while being opened");
		goto out;
	}
	struct rp_wire_fault f;
	if (rp_space_check_head(head, (size_t)nh, n, &f)) {
		wire_error(&f, head, (size_t)nh, n, path, err, errlen);
		goto out;
	}
	if (n > SIZE_MAX) {
		set_err(err, errlen, "%s is too large to map (%llu bytes) on this machine; use a 64-bit build",
			path, (unsigned long long)n);
		goto out;
	}
	void *map = mmap(NULL, (size_t)n, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		set_err(err, errlen, "cannot map %s (%llu bytes): %s; check the file, or free address space "
			"(ulimit -v) and retry", path, (unsigned long long)n, strerror(errno));
		goto out;
	}
	watch_mapping(map, (size_t)n, path);
	s = parse_space(map, (size_t)n, RP_BUF_MAPPED, path, err, errlen);
out:
	close(fd);
	return s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir that end in SUFFIX (want_files) or that are directories, sorted. */
static char **list_dir(const char *dir, bool want_files, size_t *n)
{
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char **v = NULL;
	size_t cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *full = path_join(dir, e->d_name);
		bool keep = want_files ? has_suffix(e->d_name, SUFFIX) && !is_dir(full) : is_dir(full);
		free(full);
		if (!keep)
			continue;
		rp_grow((void **)&v, &cap, *n + 1, sizeof *v);
		v[(*n)++] = rp_xstrdup(e->d_name);
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof *v, cmp_str);
	return v;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void add_space(struct rp_inputs *out, struct rp_space *s, const char *path, const char *name)
{
	out->v = rp_xrealloc(out->v, (out->n + 1) * sizeof *out->v);
	struct rp_input *in = &out->v[out->n++];
	in->path = rp_xstrdup(path);
	in->host = rp_xstrdup(name);
	if (has_suffix(in->host, SUFFIX))
		in->host[strlen(in->host) - strlen(SUFFIX)] = '\0';
	else if (has_suffix(in->host, ".pb"))
		in->host[strlen(in->host) - 3] = '\0';
	in->space = s;
}

static int add_file(struct rp_inputs *out, const char *path, const char *name, char *err, size_t errlen)
{
	struct rp_space *s = read_space(path, err, errlen);
	if (!s)
		return -1;
	add_space(out, s, path, name);
	return 0;
}

int rp_load_buffer(const void *buf, size_t n, const char *name, struct rp_inputs *out, char *err,
		   size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (n == 0) {
		set_err(err, errlen, "%s is empty (0 bytes): the profile was not written; capture it again", name);
		return -1;
	}
	/* The same first-bytes check as a file gets, then the same parse. */
	struct rp_wire_fault f;
	if (rp_space_check_head(buf, n < 64 ? n : 64, n, &f)) {
		wire_error(&f, buf, n < 64 ? n : 64, n, name, err, errlen);
		return -1;
	}
	uint8_t *copy = rp_xmalloc(n);
	memcpy(copy, buf, n);
	struct rp_space *s = parse_space(copy, n, RP_BUF_MALLOC, name, err, errlen);
	if (!s)
		return -1;
	add_space(out, s, name, name);
	return 0;
}

static int load_run_dir(struct rp_inputs *out, const char *dir, char **files, size_t nfiles, char *err,
			size_t errlen)
{
	out->run_dir = rp_xstrdup(dir);
	for (size_t i = 0; i < nfiles; i++) {
		char *p = path_join(dir, files[i]);
		int rc = add_file(out, p, files[i], err, errlen);
		free(p);
		if (rc)
			return -1;
	}
	return 0;
}

/* The newest modification time of the profiles in a run directory, 0 when it holds none. */
static long long run_mtime(const char *dir, size_t *nfiles)
{
	char **f = list_dir(dir, true, nfiles);
	long long t = 0;
	for (size_t i = 0; i < *nfiles; i++) {
		char *p = path_join(dir, f[i]);
		struct stat st;
		if (stat(p, &st) == 0 && (long long)st.st_mtime > t)
			t = st.st_mtime;
		free(p);
	}
	free_list(f, *nfiles);
	return t;
}

/* A folder whose subfolders are runs: <logdir>/plugins/profile. */
static int load_profile_root(struct rp_inputs *out, const char *root, const char *shown, const char *run,
			     char *err, size_t errlen)
{
	size_t nruns = 0;
	char **runs = list_dir(root, false, &nruns);
	char *best = NULL;
	long long best_t = -1;
	size_t usable = 0;
	int rc = -1;
	for (size_t i = 0; i < nruns; i++) {
		char *p = path_join(root, runs[i]);
		size_t nf = 0;
		long long t = run_mtime(p, &nf);
		free(p);
		if (!nf)
			continue;
		usable++;
		if (run ? strcmp(runs[i], run) == 0 : t >= best_t) {
			/* Equal times: run names are timestamps by default, so the later name wins. */
			best = runs[i];
			best_t = t;
			if (run)
				break;
		}
	}
	if (!best) {
		if (run)
			set_err(err, errlen, "no run named %s with profiles in %s; run it without --run for the "
				"newest run, or list the runs with ls %s", run, root, root);
		else
			set_err(err, errlen, "no profile (*" SUFFIX ") in %s: " WHAT_TO_PASS, shown);
		goto out;
	}
	char *dir = path_join(root, best);
	size_t nf = 0;
	char **files = list_dir(dir, true, &nf);
	rc = load_run_dir(out, dir, files, nf, err, errlen);
	free_list(files, nf);
	free(dir);
	if (rc == 0 && usable > 1 && !run) {
		char buf[512];
		snprintf(buf, sizeof buf, "newest of %zu runs in %s (--run NAME picks another)", usable, root);
		out->note = rp_xstrdup(buf);
	}
out:
	free_list(runs, nruns);
	return rc;
}

static int load_path(const char *path, const char *run, struct rp_inputs *out, char *err, size_t errlen)
{
	struct stat st;
	if (!path[0] || stat(path, &st)) {
		set_err(err, errlen, "%s: %s; " WHAT_TO_PASS, path[0] ? path : "(empty path)",
			path[0] ? strerror(errno) : "no such file or directory");
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (run) {
			set_err(err, errlen, "--run needs a logdir, but %s is a file; drop --run", path);
			return -1;
		}
		const char *slash = strrchr(path, '/');
		return add_file(out, path, slash ? slash + 1 : path, err, errlen);
	}
	size_t nf = 0;
	char **files = list_dir(path, true, &nf);
	int rc;
	if (nf && !run) {
		rc = load_run_dir(out, path, files, nf, err, errlen);
	} else if (nf) {
		set_err(err, errlen, "--run needs a logdir, but %s is a run directory; drop --run", path);
		rc = -1;
	} else {
		char *plugins = path_join(path, "plugins/profile");
		rc = load_profile_root(out, is_dir(plugins) ? plugins : path, path, run, err, errlen);
		free(plugins);
	}
	free_list(files, nf);
	return rc;
}

int rp_load(const char *path, const char *run, struct rp_inputs *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	int rc = load_path(path, run, out, err, errlen);
	if (rc)
		rp_inputs_free(out); /* the files of a run read before the one that failed */
	return rc;
}

void rp_inputs_free(struct rp_inputs *in)
{
	for (size_t i = 0; i < in->n; i++) {
		free(in->v[i].host);
		free(in->v[i].path);
		rp_space_free(in->v[i].space);
	}
	free(in->v);
	free(in->run_dir);
	free(in->note);
	memset(in, 0, sizeof *in);
}
