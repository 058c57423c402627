/* SPDX-License-Identifier: Apache-2.0 */
/* The Chrome trace of a written profile (TFPROF_FORMAT=xplane,chrome): tfprof-report converts
 * <stem>.xplane.pb into <stem>.trace.json.gz beside it, run as a child process that is not
 * profiled itself. One converter serves the CLI and activation, so the trace is the same either
 * way. activate.c decides when (never in a signal handler); this file only runs it and says on
 * stderr what came of it. */
#include "chrome_convert.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "activate.h"
#include "preload_list.h"

#define XPLANE_SUFFIX ".xplane.pb"
#define CHROME_SUFFIX ".trace.json.gz"
#define DEFAULT_REPORT_BIN "tfprof-report"

extern char **environ;

/* "NAME=value" -> value when the entry is NAME's, else NULL. */
static const char *env_value(const char *entry, const char *name)
{
	size_t n = strlen(name);
	return strncmp(entry, name, n) == 0 && entry[n] == '=' ? entry + n + 1 : NULL;
}

/* An LD_PRELOAD entry that loads libtfprof: this very file, or any libtfprof.so*. */
static bool preload_is_tfprof(const char *t, const void *unused)
{
	(void)unused;
	const char *base = strrchr(t, '/');
	base = base ? base + 1 : t;
	return strncmp(base, "libtfprof.so", 12) == 0 || tfprof__names_this_library(t);
}

/* "LD_PRELOAD=<v without libtfprof>", malloc'd, with *empty set when nothing is left; NULL when
 * out of memory. */
static char *preload_without_tfprof(const char *v, bool *empty)
{
	char *rest = tfprof__preload_without(v, preload_is_tfprof, NULL), *out = NULL;
	if (rest && asprintf(&out, "LD_PRELOAD=%s", rest) < 0)
		out = NULL;
	*empty = !rest || !*rest;
	free(rest);
	return out;
}

/* The converter's environment: this process's, less what activates tfprof (libtfprof in
 * LD_PRELOAD, injection paths naming this library) and with TFPROF_START=0, so that the converter
 * is not profiled itself: a profiled converter would convert its own profile with another one,
 * and so on without end. TFPROF_START=0 holds even where libtfprof comes back some other way
 * (/etc/ld.so.preload, a name this filter does not know). The array is malloc'd and points into
 * environ, except *own (malloc'd, may be NULL), the new LD_PRELOAD entry. NULL when out of
 * memory. */
static char **converter_env(char **own)
{
	static char start_off[] = "TFPROF_START=0";
	size_t n = 0;
	for (char **e = environ; e && *e; e++)
		n++;
	char **out = calloc(n + 2, sizeof *out);
	*own = NULL;
	if (!out)
		return NULL;
	size_t k = 0;
	out[k++] = start_off;
	for (char **e = environ; e && *e; e++) {
		const char *v;
		if (env_value(*e, "TFPROF_START"))
			continue;
		if ((v = env_value(*e, "CUDA_INJECTION64_PATH")) || (v = env_value(*e, "NVTX_INJECTION64_PATH"))) {
			if (tfprof__names_this_library(v))
				continue;
		} else if ((v = env_value(*e, "LD_PRELOAD")) && !*own) {
			bool empty;
			*own = preload_without_tfprof(v, &empty);
			if (!*own) {
				free(out);
				return NULL;
			}
			if (!empty)
				out[k++] = *own;
			continue;
		}
		out[k++] = *e;
	}
	return out;
}

/* The last non-empty line of text, trimmed, copied into out. */
static void last_line(const char *text, char *out, size_t outlen)
{
	size_t end = strlen(text);
	while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == ' '))
		end--;
	size_t start = end;
	while (start > 0 && text[start - 1] != '\n')
		start--;
	snprintf(out, outlen, "%.*s", (int)(end - start), text + start);
}

/* Reads what is there of a non-blocking fd into buf (cap bytes with its NUL), keeping the tail
 * when it overflows. Returns false at end of file or on an error, true when it would block. */
static bool read_tail(int fd, char *buf, size_t *len, size_t cap)
{
	for (;;) {
		if (*len == cap - 1) {
			memmove(buf, buf + *len / 2, *len - *len / 2);
			*len -= *len / 2;
		}
		ssize_t r = read(fd, buf + *len, cap - 1 - *len);
		if (r > 0) {
			*len += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

/* Runs tfprof-report to write the Chrome trace of the profile at xplane beside it
 * (<stem>.trace.json.gz), waits for it and says on stderr what came of it: one line either way.
 * The converter gets /dev/null for stdin and stdout (the program's output stays its own), a pipe
 * for stderr whose last line goes into ours, no blocked signals (the control thread blocks them
 * all) and a process group of its own, so that a second Ctrl-C, which kills the program at once,
 * does not leave a half-written trace: the converter finishes it. */
void tfprof__chrome_convert(const char *xplane, const char *report_bin)
{
	size_t n = strlen(xplane), sl = strlen(XPLANE_SUFFIX);
	int stem = (int)(n > sl && strcmp(xplane + n - sl, XPLANE_SUFFIX) == 0 ? n - sl : n);
	char *out = NULL;
	if (asprintf(&out, "%.*s%s", stem, xplane, CHROME_SUFFIX) < 0) {
		fprintf(stderr, "tfprof: warning: out of memory; no Chrome trace was written: convert the "
				"profile by hand: tfprof-report --chrome-trace OUT.json.gz %s\n", xplane);
		return;
	}
	const char *bin = report_bin ? report_bin : DEFAULT_REPORT_BIN;
	char *const argv[] = { (char *)bin, "--chrome-trace", out, "--", (char *)xplane, NULL };
	char why[768] = "";
	char *own = NULL;
	char **env = converter_env(&own);
	int pfd[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	bool have_fa = false, have_attr = false;
	pid_t pid = -1;
	int rc = ENOMEM;
	if (!env)
		goto done;
	if (pipe2(pfd, O_CLOEXEC))
		pfd[0] = pfd[1] = -1; /* then its stderr goes to /dev/null and we only see its status */
	sigset_t none, dfl;
	sigemptyset(&none);
	/* Signals the program ignores (SIGPIPE, SIGHUP...) are the converter's to handle. */
	sigfillset(&dfl);
	sigdelset(&dfl, SIGKILL);
	sigdelset(&dfl, SIGSTOP);
	if ((rc = posix_spawn_file_actions_init(&fa)))
		goto done;
	have_fa = true;
	if ((rc = posix_spawnattr_init(&attr)))
		goto done;
	have_attr = true;
	if ((rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) ||
	    (rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)) ||
	    (rc = pfd[1] >= 0 ? posix_spawn_file_actions_adddup2(&fa, pfd[1], 2)
			      : posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)) ||
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	    /* Nor does it keep the program's other descriptors (sockets, pipes) open. */
	    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) ||
#endif
	    (rc = posix_spawnattr_setsigmask(&attr, &none)) || (rc = posix_spawnattr_setsigdefault(&attr, &dfl)) ||
	    (rc = posix_spawnattr_setpgroup(&attr, 0)) ||
	    (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
							  POSIX_SPAWN_SETPGROUP)))
		goto done;
	rc = strchr(bin, '/') ? posix_spawn(&pid, bin, &fa, &attr, argv, env)
			      : posix_spawnp(&pid, bin, &fa, &attr, argv, env);
	if (rc) {
		snprintf(why, sizeof why, "cannot run %s: %s%s", bin, strerror(rc),
			 report_bin ? "" : " (not found on PATH; set TFPROF_REPORT_BIN to its path)");
		goto done;
	}
	if (pfd[1] >= 0) {
		close(pfd[1]);
		pfd[1] = -1;
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	}
	/* Its stderr (only the tail is kept) until it exits. Not until end of file alone: a process
	 * that another thread of the program forks meanwhile may hold the pipe's write end open. */
	char buf[4096];
	size_t len = 0;
	bool eof = pfd[0] < 0;
	int st = 0;
	pid_t w;
	for (;;) {
		if (!eof) {
			struct pollfd pp = { .fd = pfd[0], .events = POLLIN };
			if (poll(&pp, 1, 100) > 0)
				eof = !read_tail(pfd[0], buf, &len, sizeof buf);
		}
		w = waitpid(pid, &st, eof ? 0 : WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
	}
	if (!eof)
		read_tail(pfd[0], buf, &len, sizeof buf); /* what it wrote just before it exited */
	buf[len] = 0;
	last_line(buf, why, sizeof why);
	if (w < 0) {
		/* The program reaped it (wait(-1), SIGCHLD ignored): the file tells. */
		if (access(out, F_OK) == 0)
			why[0] = 0;
		else if (!why[0])
			snprintf(why, sizeof why, "%s ended but its exit status was lost", bin);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		why[0] = 0;
	} else if (!why[0] || WIFSIGNALED(st)) {
		if (WIFSIGNALED(st))
			snprintf(why, sizeof why, "%s was killed by signal %d", bin, WTERMSIG(st));
		else
			snprintf(why, sizeof why, "%s exited with status %d", bin, WEXITSTATUS(st));
	}
	rc = why[0] ? -1 : 0;
done:
	if (rc > 0 && !why[0])
		snprintf(why, sizeof why, "cannot start %s: %s", bin, strerror(rc));
	if (rc)
		fprintf(stderr, "tfprof: warning: no Chrome trace was written (%s); the profile is kept: convert it "
				"by hand: tfprof-report --chrome-trace %s %s\n", why, out, xplane);
	else
		fprintf(stderr, "tfprof: Chrome trace written to %s\n", out);
	if (have_fa)
		posix_spawn_file_actions_destroy(&fa);
	if (have_attr)
		posix_spawnattr_destroy(&attr);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	free(env);
	free(own);
	free(out);
}
