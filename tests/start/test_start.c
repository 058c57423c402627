/* SPDX-License-Identifier: Apache-2.0 */
/* End-to-end tests of tfprof-start: unmodified programs (nvtx_prog.c, inject_prog.c) run under
 * the real tool, and the profiles they leave are read back with protobuf-c. Covers every exit
 * path, crashes, many threads that exit early, fork with and without exec, the --delay/--duration
 * window, several ranked processes in one run, --shell/--deactivate, bad options, an unwritable
 * logdir, and --format chrome (the Chrome trace tfprof-report writes beside each profile, on
 * every path that writes one, and what happens when the converter is missing or fails).
 *
 * Paths of the tool and the programs come from CMake (TFPROF_START_EXE, NVTX_PROG, INJECT_PROG,
 * CUPTI_SIM; PYTHON3 where CMake found one, to parse the Chrome traces as JSON). */
#include "tt.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "files.h"

struct run_result {
	int status;  /* from waitpid */
	char *out;   /* stdout */
	char *err;   /* stderr */
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(m);
	fclose(f);
	return buf;
}

/* Starts argv with the extra environment entries ("NAME=value", or "NAME" to unset), with
 * stdout and stderr going to files in dir. Returns the child's pid. */
static pid_t spawn(const char *dir, const char *tag, char *const argv[], char *const env[])
{
	char *out, *err;
	assert_true(asprintf(&out, "%s/%s.out", dir, tag) > 0);
	assert_true(asprintf(&err, "%s/%s.err", dir, tag) > 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (size_t i = 0; env && env[i]; i++) {
			if (strchr(env[i], '='))
				putenv(env[i]);
			else
				unsetenv(env[i]);
		}
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	free(out);
	free(err);
	return pid;
}

static struct run_result finish(const char *dir, const char *tag, pid_t pid)
{
	struct run_result r = { 0 };
	assert_int_equal(waitpid(pid, &r.status, 0), pid);
	char *out, *err;
	assert_true(asprintf(&out, "%s/%s.out", dir, tag) > 0);
	assert_true(asprintf(&err, "%s/%s.err", dir, tag) > 0);
	r.out = slurp(out);
	r.err = slurp(err);
	free(out);
	free(err);
	return r;
}

static struct run_result run(const char *dir, const char *tag, char *const argv[], char *const env[])
{
	return finish(dir, tag, spawn(dir, tag, argv, env));
}

static void result_free(struct run_result *r)
{
	free(r->out);
	free(r->err);
}

/* Runs `tfprof-start --logdir <dir>/logdir --run R <opts...> -- nvtx_prog <mode> [arg]`. */
static struct run_result start_prog(const char *dir, const char *run_name, const char *const *opts,
				    const char *mode, const char *arg, char *const env[])
{
	char *logdir;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	const char *argv[32];
	size_t n = 0;
	argv[n++] = TFPROF_START_EXE;
	argv[n++] = "--logdir";
	argv[n++] = logdir;
	argv[n++] = "--run";
	argv[n++] = run_name;
	for (size_t i = 0; opts && opts[i]; i++)
		argv[n++] = opts[i];
	argv[n++] = "--";
	argv[n++] = NVTX_PROG;
	argv[n++] = mode;
	if (arg)
		argv[n++] = arg;
	argv[n] = NULL;
	struct run_result r = run(dir, run_name, (char *const *)argv, env);
	free(logdir);
	return r;
}

/* Files named *<suffix> in the run directory rd, sorted; also fails on leftover temporary files.
 * Returns the count; *names gets malloc'd names when not NULL. */
static size_t files_in(const char *rd, const char *suffix, char ***names)
{
	size_t n = 0, sl = strlen(suffix);
	char **list = NULL;
	DIR *d = opendir(rd);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (strstr(e->d_name, ".tmp."))
				fail_msg("temporary file left in %s: %s", rd, e->d_name);
			size_t l = strlen(e->d_name);
			if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0) {
				list = realloc(list, (n + 1) * sizeof *list);
				assert_true(asprintf(&list[n++], "%s/%s", rd, e->d_name) > 0);
			}
		}
		closedir(d);
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(list[j - 1], list[j]) > 0; j--) {
			char *t = list[j];
			list[j] = list[j - 1];
			list[j - 1] = t;
		}
	if (names)
		*names = list;
	else {
		for (size_t i = 0; i < n; i++)
			free(list[i]);
		free(list);
	}
	return n;
}

/* Profiles (*.xplane.pb) in <dir>/logdir/plugins/profile/<run>, as files_in(). */
static size_t profiles(const char *dir, const char *run_name, char ***names)
{
	char *rd;
	assert_true(asprintf(&rd, "%s/logdir/plugins/profile/%s", dir, run_name) > 0);
	size_t n = files_in(rd, ".xplane.pb", names);
	free(rd);
	return n;
}

/* Chrome traces (*.trace.json.gz, --format chrome) in the same run, as files_in(). */
static size_t traces(const char *dir, const char *run_name, char ***names)
{
	char *rd;
	assert_true(asprintf(&rd, "%s/logdir/plugins/profile/%s", dir, run_name) > 0);
	size_t n = files_in(rd, ".trace.json.gz", names);
	free(rd);
	return n;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Reads the run's only profile. */
static XSpace *only_profile(const char *dir, const char *run_name)
{
	char **names;
	size_t n = profiles(dir, run_name, &names);
	if (n != 1)
		fail_msg("expected 1 profile in run %s, found %zu", run_name, n);
	XSpace *s = tt_read_xspace(names[0]);
	tt_check_well_formed(s);
	free_names(names, n);
	return s;
}

static void assert_standard_ranges(const XSpace *s)
{
	const XPlane *h = tt_host(s);
	assert_int_equal(tt_count_events(h, "outer"), 1);
	assert_int_equal(tt_count_events(h, "inner"), 3);
}

/* ---- Chrome traces (--format chrome) ---- */

/* The Chrome trace that belongs to a profile: <stem>.xplane.pb -> <stem>.trace.json.gz. */
static char *trace_of(const char *profile)
{
	size_t n = strlen(profile);
	assert_true(n > 10 && strcmp(profile + n - 10, ".xplane.pb") == 0);
	char *t;
	assert_true(asprintf(&t, "%.*s.trace.json.gz", (int)(n - 10), profile) > 0);
	return t;
}

/* Checks a Chrome trace written by --format chrome: gzip (not plain JSON), a stream that
 * decompresses to its end, one JSON object with traceEvents that ends where it closes, and an
 * event for each of names (NULL-terminated); with python3, json.load parses it and finds the
 * same names among the traceEvents. dir holds python's output files. */
static void check_chrome_trace(const char *dir, const char *path, const char *const *names)
{
	unsigned char magic[2] = { 0 };
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("no Chrome trace at %s", path);
	assert_int_equal(fread(magic, 1, 2, f), 2);
	fclose(f);
	assert_true(magic[0] == 0x1f && magic[1] == 0x8b);
	gzFile z = gzopen(path, "rb");
	assert_non_null(z);
	char *json = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&json, &len);
	char chunk[1 << 16];
	int r;
	while ((r = gzread(z, chunk, sizeof chunk)) > 0)
		fwrite(chunk, 1, (size_t)r, m);
	assert_int_equal(r, 0);
	int zerr;
	gzerror(z, &zerr);
	assert_int_equal(zerr, Z_OK);
	assert_int_equal(gzclose(z), Z_OK);
	fclose(m);
	assert_true(len > 0 && json[0] == '{');
	assert_non_null(strstr(json, "\"traceEvents\":["));
	size_t end = len;
	while (end > 0 && (json[end - 1] == '\n' || json[end - 1] == ' '))
		end--;
	assert_true(end >= 2 && json[end - 2] == ']' && json[end - 1] == '}');
	for (size_t i = 0; names[i]; i++) {
		char *want;
		assert_true(asprintf(&want, "\"name\":\"%s\"", names[i]) > 0);
		if (!strstr(json, want))
			fail_msg("%s has no event %s", path, names[i]);
		free(want);
	}
	free(json);
#ifdef PYTHON3
	const char *argv[16] = { PYTHON3, "-c",
				 "import gzip, json, sys\n"
				 "d = json.load(gzip.open(sys.argv[1], 'rt'))\n"
				 "seen = {e.get('name') for e in d['traceEvents'] if e.get('ph') == 'X'}\n"
				 "missing = set(sys.argv[2:]) - seen\n"
				 "sys.exit('missing: %s' % sorted(missing) if missing else 0)\n",
				 path };
	size_t n = 4;
	for (size_t i = 0; names[i] && n < 15; i++)
		argv[n++] = names[i];
	argv[n] = NULL;
	struct run_result pr = run(dir, "json", (char *const *)argv, NULL);
	if (!WIFEXITED(pr.status) || WEXITSTATUS(pr.status) != 0)
		fail_msg("python's json does not accept %s: status 0x%x, %s", path, pr.status, pr.err);
	result_free(&pr);
#else
	(void)dir;
#endif
}

/* How many lines of text contain what. */
static size_t count_lines_with(const char *text, const char *what)
{
	size_t n = 0;
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t l = nl ? (size_t)(nl - line) : strlen(line);
		char *copy = strndup(line, l);
		n += strstr(copy, what) != NULL;
		free(copy);
		line = nl ? nl + 1 : NULL;
	}
	return n;
}

/* The run's only profile and its Chrome trace, both there; returns the trace's path. */
static char *only_trace(const char *dir, const char *run_name, const struct run_result *r)
{
	char **names;
	size_t n = profiles(dir, run_name, &names);
	if (n != 1)
		fail_msg("expected 1 profile in run %s, found %zu; stderr: %s", run_name, n, r->err);
	char *t = trace_of(names[0]);
	if (traces(dir, run_name, NULL) != 1 || access(t, R_OK))
		fail_msg("no Chrome trace %s beside the profile; stderr: %s", t, r->err);
	/* Both paths are on stderr, the trace's once. */
	assert_non_null(strstr(r->err, names[0]));
	char *line;
	assert_true(asprintf(&line, "tfprof: Chrome trace written to %s\n", t) > 0);
	assert_non_null(strstr(r->err, line));
	assert_int_equal(count_lines_with(r->err, "Chrome trace"), 1);
	free(line);
	free_names(names, n);
	return t;
}

static char *scratch(const char *tag)
{
	return tt_scratch_dir(tag);
}

/* ---- Exit paths ---- */

static void t_return(void **state)
{
	(void)state;
	char *dir = scratch("start-return");
	struct run_result r = start_prog(dir, "ret", NULL, "return", "5", NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 5);
	XSpace *s = only_profile(dir, "ret");
	assert_standard_ranges(s);
	/* The file is named <host>.<pid> and the path is on stderr. */
	char **names;
	size_t n = profiles(dir, "ret", &names);
	assert_int_equal(n, 1);
	assert_non_null(strstr(r.err, "tfprof: profile written to "));
	assert_non_null(strstr(r.err, names[0]));
	free_names(names, n);
	tt_xspace_free(s);
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

static void t_exit(void **state)
{
	(void)state;
	char *dir = scratch("start-exit");
	struct run_result r = start_prog(dir, "exit", NULL, "exit", NULL, NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 3);
	XSpace *s = only_profile(dir, "exit");
	assert_standard_ranges(s);
	tt_xspace_free(s);
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

static void check_signal(const char *mode, int sig)
{
	char *dir = scratch(mode);
	struct run_result r = start_prog(dir, mode, NULL, mode, NULL, NULL);
	/* The program still dies of the signal. */
	if (!WIFSIGNALED(r.status) || WTERMSIG(r.status) != sig)
		fail_msg("%s: status 0x%x, stderr: %s", mode, r.status, r.err);
	XSpace *s = only_profile(dir, mode);
	assert_standard_ranges(s);
	/* The range open when the signal came is closed at the stop. */
	assert_int_equal(tt_count_events(tt_host(s), "open_at_signal"), 1);
	assert_non_null(strstr(r.err, "tfprof: profile written to "));
	tt_xspace_free(s);
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

static void t_sigint(void **state)
{
	(void)state;
	check_signal("sigint", SIGINT);
}

/* main returns while the control thread turns the signal into a profile: the program must still
 * die of the signal (not exit with main's 98), with the profile written. */
static void t_sigterm_then_return(void **state)
{
	(void)state;
	check_signal("sigterm_return", SIGTERM);
}

static void t_sigterm(void **state)
{
	(void)state;
	check_signal("sigterm", SIGTERM);
}

static void check_crash(const char *mode, int sig)
{
	char *dir = scratch(mode);
	struct run_result r = start_prog(dir, mode, NULL, mode, NULL, NULL);
	assert_true(WIFSIGNALED(r.status));
	assert_int_equal(WTERMSIG(r.status), sig);
	/* Nothing is written, and no partial file either (profiles() fails on temporaries). */
	assert_int_equal(profiles(dir, mode, NULL), 0);
	assert_null(strstr(r.err, "profile written"));
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

static void t_abort(void **state)
{
	(void)state;
	check_crash("abort", SIGABRT);
}

static void t_segv(void **state)
{
	(void)state;
	check_crash("segv", SIGSEGV);
}

/* ---- NVTX forms ---- */

static void t_nvtx_forms(void **state)
{
	(void)state;
	char *dir = scratch("start-ex");
	struct run_result r = start_prog(dir, "ex", NULL, "ex", NULL, NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	XSpace *s = only_profile(dir, "ex");
	const XPlane *h = tt_host(s);
	assert_standard_ranges(s);
	assert_int_equal(tt_count_events(h, "ex_ascii"), 1);
	assert_int_equal(tt_count_events(h, "ex_registered"), 3); /* two ranges and a mark */
	assert_int_equal(tt_count_events(h, "ex_mark"), 3);
	assert_int_equal(tt_count_events(h, "step 7"), 1);
	assert_int_equal(tt_count_events(h, "ex_w\xc3\xa9"), 1);
	assert_int_equal(tt_count_events(h, "ex_startend"), 1);
	bool payload = false, domain = false, named = false;
	size_t marks = 0, mark_payload = 0;
	for (size_t i = 0; i < h->n_lines; i++) {
		const XLine *l = h->lines[i];
		if (l->name && strcmp(l->name, "ex_main_thread") == 0)
			named = true;
		for (size_t j = 0; j < l->n_events; j++) {
			const XEvent *e = l->events[j];
			const char *name = tt_event_name(h, e);
			if (strcmp(name, "ex_ascii") == 0) {
				const XStat *st = tt_event_stat(h, e, "nvtx_payload");
				assert_non_null(st);
				assert_int_equal(st->int64_value, -42);
				payload = true;
			}
			if (strcmp(name, "ex_registered") == 0) {
				const XStat *st = tt_event_stat(h, e, "nvtx_domain");
				assert_non_null(st);
				domain = true;
			}
			const XStat *mk = tt_event_stat(h, e, "nvtx_mark");
			if (strcmp(name, "ex_mark") == 0 || strcmp(name, "step 7") == 0 || mk) {
				/* A mark is an instant with nvtx_mark, and never a step. */
				assert_non_null(mk);
				assert_int_equal(mk->int64_value, 1);
				assert_true(e->duration_ps < 1000000); /* under a microsecond */
				assert_null(tt_event_stat(h, e, "step_num"));
				marks++;
				const XStat *p = tt_event_stat(h, e, "nvtx_payload");
				mark_payload += p && p->int64_value == 7;
			}
		}
	}
	assert_true(payload);
	assert_true(domain);
	assert_true(named);
	assert_int_equal(marks, 5);
	assert_int_equal(mark_payload, 1);
	tt_xspace_free(s);
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

/* 64 short-lived threads and one still running at exit: every thread's ranges are kept on its
 * own named line, and ranges a thread never closed end at the stop, marked as open. */
static void t_threads(void **state)
{
	(void)state;
	char *dir = scratch("start-threads");
	struct run_result r = start_prog(dir, "thr", NULL, "threads", NULL, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("threads: status 0x%x, stderr: %s", r.status, r.err);
	XSpace *s = only_profile(dir, "thr");
	const XPlane *h = tt_host(s);
	assert_standard_ranges(s);
	assert_int_equal(tt_count_events(h, "worker"), 64);
	assert_int_equal(tt_count_events(h, "task"), 320);
	assert_int_equal(tt_count_events(h, "left_open"), 4);
	assert_int_equal(tt_count_events(h, "still_running"), 1);
	size_t worker_lines = 0, open_marked = 0;
	for (size_t i = 0; i < h->n_lines; i++) {
		const XLine *l = h->lines[i];
		size_t workers = 0, tasks = 0;
		for (size_t j = 0; j < l->n_events; j++) {
			const XEvent *e = l->events[j];
			const char *name = tt_event_name(h, e);
			workers += strcmp(name, "worker") == 0;
			tasks += strcmp(name, "task") == 0;
			if (strcmp(name, "left_open") == 0 || strcmp(name, "still_running") == 0) {
				const XStat *st = tt_event_stat(h, e, "tfprof_open_at_stop");
				if (!st || st->int64_value != 1)
					fail_msg("%s on line %s is not marked open", name, l->name ? l->name : "?");
				open_marked++;
			}
		}
		if (l->name && strncmp(l->name, "worker_", 7) == 0) {
			/* Each thread's own events, on its own line: one "worker" around five "task". */
			worker_lines++;
			if (workers != 1 || tasks != 5)
				fail_msg("line %s: %zu worker, %zu task events", l->name, workers, tasks);
		} else if (workers || tasks) {
			fail_msg("worker events on line %s", l->name ? l->name : "(unnamed)");
		}
	}
	assert_int_equal(worker_lines, 64);
	assert_int_equal(open_marked, 5);
	tt_xspace_free(s);
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

/* A program linked to libtfprof: one library instance, each scope recorded once. */
static void t_linked(void **state)
{
	(void)state;
	char *dir = scratch("start-linked");
	char *logdir;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	char *argv[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "linked", "--", LINKED_PROG, NULL };
	struct run_result r = run(dir, "linked", argv, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	XSpace *s = only_profile(dir, "linked");
	const XPlane *h = tt_host(s);
	assert_int_equal(tt_count_events(h, "linked_scope"), 5);
	assert_int_equal(tt_count_events(h, "linked_nvtx"), 5);
	assert_int_equal(tt_count_events(h, "after_own_stop"), 1);
	tt_xspace_free(s);
	result_free(&r);
	free(logdir);
	tt_rm_rf(dir);
	free(dir);
}

/* A program that runs a session of its own under tfprof-start --steps: tfprof-start's session
 * cannot start (one error line) and never takes over the program's, which records all its steps
 * and is stopped and written by the program itself. */
static void t_steps_own_session(void **state)
{
	(void)state;
	char *dir = scratch("start-own");
	char *logdir, *own;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	assert_true(asprintf(&own, "%s/own", dir) > 0);
	char *argv[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "own", "--steps", "2:4", "--",
			 LINKED_PROG, "own_steps", own, NULL };
	struct run_result r = run(dir, "own", argv, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	assert_int_equal(count_lines_with(r.err, "cannot start profiling"), 1);
	assert_int_equal(profiles(dir, "own", NULL), 0);
	char *path = strtok(r.out, "\n");
	assert_non_null(path);
	assert_non_null(strstr(path, own));
	XSpace *s = tt_read_xspace(path);
	assert_int_equal(tt_count_events(tt_host(s), "train_step"), 10);
	tt_xspace_free(s);
	result_free(&r);
	free(own);
	free(logdir);
	tt_rm_rf(dir);
	free(dir);
}

/* ---- --steps ---- */

/* The step_num of every event named name on the host plane, as a bit set (steps 0..63). */
static uint64_t step_set(const XPlane *h, const char *name)
{
	uint64_t set = 0;
	for (size_t i = 0; i < h->n_lines; i++)
		for (size_t j = 0; j < h->lines[i]->n_events; j++) {
			const XEvent *e = h->lines[i]->events[j];
			if (strcmp(tt_event_name(h, e), name) != 0)
				continue;
			const XStat *st = tt_event_stat(h, e, "step_num");
			assert_non_null(st);
			assert_true(st->int64_value >= 0 && st->int64_value < 64);
			set |= 1ull << st->int64_value;
		}
	return set;
}

#define STEPS_3_TO_5 ((1ull << 3) | (1ull << 4) | (1ull << 5))

static void t_steps(void **state)
{
	(void)state;
	char *dir = scratch("start-steps");
	char *logdir;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);

	/* tfprof step scopes (step_num 0..9, each with a nested "work"). */
	char *argv[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "tfsteps", "--steps", "3:5", "--",
			 LINKED_PROG, "steps", NULL };
	struct run_result r = run(dir, "tfsteps", argv, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	/* Written once, at step 5's end; the exit after it writes nothing more. */
	const char *w = strstr(r.err, "profile written to ");
	assert_non_null(w);
	assert_null(strstr(w + 1, "profile written to "));
	XSpace *s = only_profile(dir, "tfsteps");
	const XPlane *h = tt_host(s);
	assert_int_equal(tt_count_events(h, "train_step"), 3);
	assert_int_equal(step_set(h, "train_step"), STEPS_3_TO_5);
	assert_int_equal(tt_count_events(h, "work"), 3);
	/* Begun before step 3: not recorded (it was not open when recording began). */
	assert_int_equal(tt_count_events(h, "before_steps"), 0);
	tt_xspace_free(s);
	result_free(&r);

	/* NVTX step ranges: "Step#0".."Step#4", then "train_step" with payloads 5..9. */
	r = start_prog(dir, "nvsteps", (const char *[]){ "--steps", "3:5", NULL }, "steps", NULL, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	s = only_profile(dir, "nvsteps");
	h = tt_host(s);
	assert_int_equal(tt_count_events(h, "Step#3"), 1);
	assert_int_equal(tt_count_events(h, "Step#4"), 1);
	assert_int_equal(tt_count_events(h, "Step#2"), 0);
	assert_int_equal(tt_count_events(h, "train_step"), 1);
	assert_int_equal(step_set(h, "Step#3") | step_set(h, "Step#4") | step_set(h, "train_step"), STEPS_3_TO_5);
	assert_int_equal(tt_count_events(h, "fwd"), 3);
	assert_int_equal(tt_count_events(h, "outer"), 0);
	assert_int_equal(tt_count_events(h, "after_steps"), 0);
	tt_xspace_free(s);
	result_free(&r);

	/* A window the program never reaches: nothing written, and stderr says why. */
	r = start_prog(dir, "nosteps", (const char *[]){ "--steps", "20:30", NULL }, "steps", NULL, NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	assert_int_equal(profiles(dir, "nosteps", NULL), 0);
	assert_non_null(strstr(r.err, "before step 20"));
	result_free(&r);

	/* A program without steps: the same. */
	r = start_prog(dir, "nostepsatall", (const char *[]){ "--steps", "1:2", NULL }, "return", NULL, NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(profiles(dir, "nostepsatall", NULL), 0);
	assert_non_null(strstr(r.err, "no profile was written"));
	result_free(&r);

	free(logdir);
	tt_rm_rf(dir);
	free(dir);
}

/* ---- fork ---- */

static void t_fork(void **state)
{
	(void)state;
	char *dir = scratch("start-fork");
	struct run_result r = start_prog(dir, "fork", NULL, "fork", NULL, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	/* One profile, the parent's: children write nothing, of theirs or of the parent's. */
	XSpace *s = only_profile(dir, "fork");
	const XPlane *h = tt_host(s);
	assert_standard_ranges(s);
	assert_int_equal(tt_count_events(h, "after_fork"), 1);
	assert_int_equal(tt_count_events(h, "child_range"), 0);
	assert_true(tt_count_events(h, "spin") > 0);
	tt_xspace_free(s);
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

static void t_fork_exec(void **state)
{
	(void)state;
	char *dir = scratch("start-forkexec");
	struct run_result r = start_prog(dir, "fx", NULL, "forkexec", NULL, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	char **names;
	size_t n = profiles(dir, "fx", &names);
	assert_int_equal(n, 2);
	assert_string_not_equal(names[0], names[1]);
	size_t after = 0;
	for (size_t i = 0; i < n; i++) {
		XSpace *s = tt_read_xspace(names[i]);
		tt_check_well_formed(s);
		assert_standard_ranges(s);
		after += tt_count_events(tt_host(s), "after_fork");
		tt_xspace_free(s);
	}
	assert_int_equal(after, 1);
	free_names(names, n);
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

/* Helper processes that record nothing (true, sh) write no file: the run holds the program's
 * profile only, and stderr names it alone. */
static void t_helpers_write_nothing(void **state)
{
	(void)state;
	char *dir = scratch("start-helpers");
	struct run_result r = start_prog(dir, "hp", NULL, "helpers", NULL, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	XSpace *s = only_profile(dir, "hp");
	assert_standard_ranges(s);
	tt_xspace_free(s);
	assert_int_equal(count_lines_with(r.err, "profile written to"), 1);
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

/* exec without fork keeps the pid, and no exit handler runs: each image writes its profile
 * before it is replaced (<host>.<pid>.exec<N>), and the last one <host>.<pid>. A failed exec
 * writes what came before it and records on. Every image's ranges are there exactly once. */
static void t_exec_in_place(void **state)
{
	(void)state;
	char *dir = scratch("start-execchain");
	struct run_result r = start_prog(dir, "xs", NULL, "exec_chain", "5", NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	char **names;
	size_t n = profiles(dir, "xs", &names);
	/* Image 5 writes twice (at the failed exec and at its exec), images 4..1 once each, and
	 * image 0 at its exit. */
	assert_int_equal(n, 7);
	assert_int_equal(count_lines_with(r.err, "profile written to"), 7);
	size_t plain = 0, outer = 0, after = 0, image[6] = { 0 };
	for (size_t i = 0; i < n; i++) {
		if (!strstr(names[i], ".exec"))
			plain++;
		XSpace *s = tt_read_xspace(names[i]);
		tt_check_well_formed(s);
		const XPlane *h = tt_host(s);
		outer += tt_count_events(h, "outer");
		after += tt_count_events(h, "after_failed_exec");
		for (int k = 0; k <= 5; k++) {
			char name[16];
			snprintf(name, sizeof name, "image_%d", k);
			image[k] += tt_count_events(h, name);
		}
		tt_xspace_free(s);
	}
	assert_int_equal(plain, 1);
	assert_int_equal(outer, 6);
	assert_int_equal(after, 1);
	for (int k = 0; k <= 5; k++)
		assert_int_equal(image[k], 1);
	for (int k = 1; k <= 6; k++) {
		char *p;
		assert_true(asprintf(&p, ".exec%d.xplane.pb", k) > 0);
		size_t found = 0;
		for (size_t i = 0; i < n; i++)
			found += strstr(names[i], p) != NULL;
		assert_int_equal(found, 1);
		free(p);
	}
	free_names(names, n);
	assert_null(strstr(r.err, "warning"));
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

/* A vfork() child that execs shares the parent's memory but is not the activated process: the
 * parent's session goes on (one profile, with what came after), and no .exec file appears. */
static void t_vfork_exec(void **state)
{
	(void)state;
	char *dir = scratch("start-vfork");
	struct run_result r = start_prog(dir, "vf", NULL, "vfork", NULL, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	XSpace *s = only_profile(dir, "vf");
	assert_standard_ranges(s);
	assert_int_equal(tt_count_events(tt_host(s), "after_vfork"), 1);
	tt_xspace_free(s);
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

/* ---- A program that closes every descriptor ---- */

/* Waits for pid up to limit_s seconds (then kills it and fails); returns the status and the
 * child's CPU time in seconds. */
static int wait_bounded(pid_t pid, double limit_s, double *cpu_s)
{
	struct rusage ru;
	int status;
	for (int i = 0; i < (int)(limit_s * 100); i++) {
		pid_t w = wait4(pid, &status, WNOHANG, &ru);
		assert_true(w >= 0);
		if (w == pid) {
			*cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
				 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
			return status;
		}
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail_msg("the program did not end within %.0f s (killed)", limit_s);
	return -1;
}

/* The daemon-style program (nvtx_prog fds) closes descriptors 0..1023 and opens its own data
 * file and log as 3 and 4, the numbers tfprof's wake-up pipe once had: its files must hold
 * exactly what it wrote and read, a signal must end it as without tfprof and give a profile,
 * and tfprof must not spin while the program sleeps. sig 0: no signal, the program ends. */
static void closed_fds_case(const char *dir, const char *run_name, int sig)
{
	static const char data[] = "DATA-0123456789\n";
	char *data_path, *log_path, *logdir;
	assert_true(asprintf(&data_path, "%s/%s.data", dir, run_name) > 0);
	assert_true(asprintf(&log_path, "%s/%s.log", dir, run_name) > 0);
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	FILE *f = fopen(data_path, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
	f = fopen(log_path, "w");
	assert_non_null(f);
	fclose(f);
	char *argv[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", (char *)run_name, "--", NVTX_PROG,
			 "fds", data_path, log_path, sig ? "3000" : "1500", NULL };
	pid_t pid = spawn(dir, run_name, argv, NULL);
	double cpu = 0;
	if (sig) {
		sleep(1);
		kill(pid, sig);
	}
	int status = wait_bounded(pid, 20, &cpu);
	char *got = slurp(log_path), *want;
	assert_true(asprintf(&want, "start read=%zu first=%d\n%s", sizeof data - 1, data[0], sig ? "" : "end\n") > 0);
	assert_string_equal(got, want);
	char *data_after = slurp(data_path);
	assert_string_equal(data_after, data);
	if (sig) {
		if (!WIFSIGNALED(status) || WTERMSIG(status) != sig)
			fail_msg("status 0x%x: the program should have died of signal %d", status, sig);
	} else {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("status 0x%x", status);
		/* 1.5 s of sleep: tfprof's threads must sleep too (a spin took 1.7 s of CPU). */
		if (cpu > 0.5)
			fail_msg("the program used %.2f s of CPU while it slept 1.5 s", cpu);
	}
	XSpace *s = only_profile(dir, run_name);
	assert_standard_ranges(s);
	assert_int_equal(tt_count_events(tt_host(s), "sleeping"), 1);
	tt_xspace_free(s);
	free(got);
	free(want);
	free(data_after);
	free(data_path);
	free(log_path);
	free(logdir);
}

static void t_closed_fds(void **state)
{
	(void)state;
	char *dir = scratch("start-fds");
	closed_fds_case(dir, "term", SIGTERM);
	closed_fds_case(dir, "int", SIGINT);
	closed_fds_case(dir, "none", 0);
	tt_rm_rf(dir);
	free(dir);
}

/* A program with tfprof linked statically carries a second copy next to the preloaded one:
 * one profile, not two, and one line that says the program's own scopes are not recorded. */
static void t_static_copy(void **state)
{
	(void)state;
	char *dir = scratch("start-static");
	char *logdir;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	char *argv[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "st", "--", STATIC_PROG, "steps", NULL };
	struct run_result r = run(dir, "st", argv, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	/* A second profile of the same process would go to run st_1 (files.c never overwrites). */
	assert_int_equal(profiles(dir, "st", NULL), 1);
	assert_int_equal(profiles(dir, "st_1", NULL), 0);
	assert_int_equal(count_lines_with(r.err, "profile written to"), 1);
	assert_int_equal(count_lines_with(r.err, "carries its own copy of tfprof (linked statically)"), 1);
	result_free(&r);
	free(logdir);
	tt_rm_rf(dir);
	free(dir);
}

/* The same fork rules for a program that runs its own session (no tfprof-start): the child
 * finds no session, records nothing of the parent's, and can run a session of its own. */
static volatile int spin_on = 1;

static void *spin_scopes(void *arg)
{
	(void)arg;
	while (spin_on) {
		TFPROF_SCOPE("parent_spin");
	}
	return NULL;
}

/* Runs in the child; returns its exit code (0 = all as expected). */
static int fork_child_checks(const char *logdir)
{
	if (tfprof_enabled())
		return 20;
	if (tfprof_stop() != TFPROF_ERR_NOT_ACTIVE)
		return 21;
	TFPROF_OPTIONS(o, .run_name = "child", .host_name = "child", .disable_gpu = true);
	if (tfprof_start(logdir, &o))
		return 22;
	{
		TFPROF_SCOPE("child_own");
	}
	if (tfprof_stop())
		return 23;
	XSpace *s = tt_read_xspace(tfprof_last_output());
	const XPlane *h = tt_plane(s, "/host:CPU");
	int rc = !h ? 24
		 : tt_count_events(h, "child_own") != 1 ? 25
		 : tt_count_events(h, "parent_spin") + tt_count_events(h, "parent_before") != 0 ? 26
		 : h->n_lines != 1 ? 27
		 : 0;
	tt_xspace_free(s);
	return rc;
}

static void t_fork_in_process(void **state)
{
	(void)state;
	char *dir = scratch("start-fork-lib");
	TFPROF_OPTIONS(o, .run_name = "parent", .host_name = "parent", .disable_gpu = true);
	assert_int_equal(tfprof_start(dir, &o), 0);
	pthread_t t;
	spin_on = 1;
	assert_int_equal(pthread_create(&t, NULL, spin_scopes, NULL), 0);
	{
		TFPROF_SCOPE("parent_before");
	}
	for (int i = 0; i < 10; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			alarm(20); /* a hang in the child fails the test instead of stalling it */
			_exit(fork_child_checks(dir));
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("fork child %d: status 0x%x", i, st);
	}
	spin_on = 0;
	pthread_join(t, NULL);
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	assert_int_equal(tt_count_events(h, "parent_before"), 1);
	assert_true(tt_count_events(h, "parent_spin") > 0);
	assert_int_equal(tt_count_events(h, "child_own"), 0);
	tt_xspace_free(s);
	tt_rm_rf(dir);
	free(dir);
}

/* ---- Time window ---- */

static void t_window(void **state)
{
	(void)state;
	char *dir = scratch("start-window");
	/* phase_a at 0 s, phase_b at 1.0 s, phase_c at 2.2 s: only phase_b is in [0.5, 1.7]. */
	const char *opts[] = { "--delay", "0.5", "--duration", "1.2", NULL };
	struct run_result r = start_prog(dir, "win", opts, "timed", NULL, NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	XSpace *s = only_profile(dir, "win");
	const XPlane *h = tt_host(s);
	assert_int_equal(tt_count_events(h, "phase_a"), 0);
	assert_int_equal(tt_count_events(h, "phase_b"), 1);
	assert_int_equal(tt_count_events(h, "phase_c"), 0);
	tt_xspace_free(s);
	result_free(&r);

	/* --delay alone: from 1.5 s to the exit. */
	const char *late[] = { "--delay", "1.5", NULL };
	r = start_prog(dir, "late", late, "timed", NULL, NULL);
	assert_true(WIFEXITED(r.status));
	s = only_profile(dir, "late");
	h = tt_host(s);
	assert_int_equal(tt_count_events(h, "phase_a") + tt_count_events(h, "phase_b"), 0);
	assert_int_equal(tt_count_events(h, "phase_c"), 1);
	tt_xspace_free(s);
	result_free(&r);

	/* A program that ends before the delay: no profile, and a line that says why. */
	const char *never[] = { "--delay", "30", NULL };
	r = start_prog(dir, "never", never, "return", NULL, NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	assert_int_equal(profiles(dir, "never", NULL), 0);
	assert_non_null(strstr(r.err, "before TFPROF_DELAY"));
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

/* ---- Several processes ---- */

static void t_ranks(void **state)
{
	(void)state;
	char *dir = scratch("start-ranks");
	pid_t pids[4];
	char *envs[4][3];
	char tags[4][16];
	for (int i = 0; i < 4; i++) {
		assert_true(asprintf(&envs[i][0], "RANK=%d", i) > 0);
		/* Other rank variables of an outer launcher must not win over RANK here. */
		envs[i][1] = "OMPI_COMM_WORLD_RANK";
		envs[i][2] = NULL;
		snprintf(tags[i], sizeof tags[i], "rank%d", i);
	}
	char *logdir;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	for (int i = 0; i < 4; i++) {
		char *argv[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "job", "--",
				 NVTX_PROG, "return", NULL };
		envs[i][1] = "OMPI_COMM_WORLD_RANK";
		pids[i] = spawn(dir, tags[i], argv, envs[i]);
	}
	for (int i = 0; i < 4; i++) {
		struct run_result r = finish(dir, tags[i], pids[i]);
		assert_true(WIFEXITED(r.status));
		assert_int_equal(WEXITSTATUS(r.status), 0);
		result_free(&r);
		free(envs[i][0]);
	}
	char **names;
	size_t n = profiles(dir, "job", &names);
	assert_int_equal(n, 4);
	char host[256] = { 0 };
	gethostname(host, sizeof host - 1);
	char *stem = tfprof__host_file_stem(host);
	for (int i = 0; i < 4; i++) {
		char *want;
		assert_true(asprintf(&want, "%s/logdir/plugins/profile/job/%s.rank%d.xplane.pb", dir, stem, i) > 0);
		assert_string_equal(names[i], want);
		XSpace *s = tt_read_xspace(names[i]);
		assert_standard_ranges(s);
		tt_xspace_free(s);
		free(want);
	}
	free(stem);
	free_names(names, n);
	free(logdir);
	tt_rm_rf(dir);
	free(dir);
}

/* A job script: bash runs the program, as `tfprof-start -- bash job.sh` and `mpirun tfprof-start
 * -- job.sh` do. bash defines its own getenv and setenv, and the library's copy in bash must
 * still see every setting (logdir, run, --no-gpu), and under a rank bash's file and the
 * program's must not collide. */
static void t_job_script(void **state)
{
	(void)state;
	char *dir = scratch("start-script");
	char *logdir, *cmd;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	/* The builtin at the end keeps bash from replacing itself with the program. */
	assert_true(asprintf(&cmd, "'%s' return; :", NVTX_PROG) > 0);
	char host[256] = { 0 };
	gethostname(host, sizeof host - 1);
	char *stem = tfprof__host_file_stem(host);
	for (int ranked = 0; ranked < 2; ranked++) {
		const char *run_name = ranked ? "script_rank" : "script";
		char *argv[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", (char *)run_name, "--no-gpu", "--",
				 "/bin/bash", "-c", cmd, NULL };
		char *env[] = { ranked ? "RANK=3" : "RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK",
				"SLURM_PROCID", "LOCAL_RANK", "TFPROF_RANK_PID", NULL };
		struct run_result r = run(dir, run_name, argv, env);
		if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
			fail_msg("%s: status 0x%x, stderr: %s", run_name, r.status, r.err);
		/* bash's profile and the program's, both in the run asked for. */
		char **names;
		size_t n = profiles(dir, run_name, &names);
		if (n != 2)
			fail_msg("%s: %zu profiles in the run, not 2; stderr: %s", run_name, n, r.err);
		assert_int_equal(count_lines_with(r.err, "profile written to"), 2);
		size_t with_ranges = 0;
		for (size_t i = 0; i < n; i++) {
			XSpace *s = tt_read_xspace(names[i]);
			/* --no-gpu reached both: no GPU tracing was tried, so no error says why it is off. */
			for (size_t k = 0; k < s->n_errors; k++)
				if (strstr(s->errors[k], "GPU"))
					fail_msg("%s: %s", names[i], s->errors[k]);
			bool is_prog = tt_count_events(tt_host(s), "outer") == 1;
			with_ranges += is_prog;
			const char *base = strrchr(names[i], '/') + 1;
			char *want;
			if (ranked && !is_prog)
				assert_true(asprintf(&want, "%s.rank3.xplane.pb", stem) > 0);
			else
				assert_true(asprintf(&want, "%s.%s", stem, ranked ? "rank3." : "") > 0);
			/* bash is the rank's first process; the program it starts adds its pid. */
			if (strncmp(base, want, strlen(want)) != 0 || (ranked && !is_prog && strcmp(base, want) != 0))
				fail_msg("%s: %s is not named %s...", run_name, base, want);
			free(want);
			tt_xspace_free(s);
		}
		assert_int_equal(with_ranges, 1);
		free_names(names, n);
		result_free(&r);
	}
	free(stem);
	free(cmd);
	free(logdir);
	tt_rm_rf(dir);
	free(dir);
}

/* ---- Shell activation ---- */

static void t_shell(void **state)
{
	(void)state;
	char *dir = scratch("start-shell");
	char *script;
	assert_true(asprintf(&script,
			     "eval \"$('%s' --shell --logdir '%s/logdir' --run sh --no-gpu)\" || exit 90\n"
			     "'%s' return 4; rc=$?\n"
			     "eval \"$('%s' --deactivate)\" || exit 91\n"
			     "echo \"rc=$rc start=${TFPROF_START-unset} preload=${LD_PRELOAD-unset} "
			     "nvtx=${NVTX_INJECTION64_PATH-unset}\"\n",
			     TFPROF_START_EXE, dir, NVTX_PROG, TFPROF_START_EXE) > 0);
	char *argv[] = { "/bin/sh", "-c", script, NULL };
	char *env[] = { "LD_PRELOAD", "NVTX_INJECTION64_PATH", "CUDA_INJECTION64_PATH", "TFPROF_START", NULL };
	struct run_result r = run(dir, "sh", argv, env);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	assert_non_null(strstr(r.out, "rc=4 start=unset preload=unset nvtx=unset"));
	/* The NVTX program's profile is in the run (the shell's other commands may add theirs). */
	char **names;
	size_t n = profiles(dir, "sh", &names);
	size_t found = 0;
	for (size_t i = 0; i < n; i++) {
		XSpace *s = tt_read_xspace(names[i]);
		found += tt_count_events(tt_host(s), "outer");
		tt_xspace_free(s);
	}
	assert_int_equal(found, 1);
	free_names(names, n);
	result_free(&r);

	/* --shell prints exports, quoted for the shell. */
	char *argv2[] = { TFPROF_START_EXE, "--shell", "--logdir", "/tmp/it's here", "--delay", "2", NULL };
	r = run(dir, "shell2", argv2, env);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	assert_non_null(strstr(r.out, "export TFPROF_START='1';"));
	assert_non_null(strstr(r.out, "export TFPROF_LOGDIR='/tmp/it'\\''s here';"));
	assert_non_null(strstr(r.out, "export TFPROF_DELAY='2';"));
	assert_non_null(strstr(r.out, "export LD_PRELOAD='/"));
	assert_non_null(strstr(r.out, "export NVTX_INJECTION64_PATH='/"));
	assert_non_null(strstr(r.out, "export CUDA_INJECTION64_PATH='/"));
	assert_null(strstr(r.out, "TFPROF_FORMAT"));
	result_free(&r);

	/* --format chrome exports the format and the converter's absolute path; --deactivate unsets
	 * both. */
	char *argv3[] = { TFPROF_START_EXE, "--shell", "--format", "chrome", NULL };
	r = run(dir, "shell3", argv3, env);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	assert_non_null(strstr(r.out, "export TFPROF_FORMAT='xplane,chrome';"));
	const char *bin = strstr(r.out, "export TFPROF_REPORT_BIN='/");
	assert_non_null(bin);
	char *path = strndup(bin + strlen("export TFPROF_REPORT_BIN='"),
			     strcspn(bin + strlen("export TFPROF_REPORT_BIN='"), "'"));
	assert_int_equal(access(path, X_OK), 0);
	assert_non_null(strstr(path, "tfprof-report"));
	free(path);
	result_free(&r);
	char *argv4[] = { TFPROF_START_EXE, "--deactivate", NULL };
	r = run(dir, "deact", argv4, env);
	assert_non_null(strstr(r.out, "unset TFPROF_FORMAT;"));
	assert_non_null(strstr(r.out, "unset TFPROF_REPORT_BIN;"));
	result_free(&r);
	free(script);
	tt_rm_rf(dir);
	free(dir);
}

/* ---- Errors ---- */

static void t_bad_options(void **state)
{
	(void)state;
	char *dir = scratch("start-bad");
	const char *cases[][8] = {
		{ "--delay", "abc", "--", NVTX_PROG, NULL },
		{ "--duration", "-1", "--", NVTX_PROG, NULL },
		{ "--max-memory", "0", "--", NVTX_PROG, NULL },
		{ "--run", "a/b", "--", NVTX_PROG, NULL },
		{ "--bogus", "--", NVTX_PROG, NULL },
		{ "-x", NVTX_PROG, NULL },
		{ "--steps", "5:1", "--", NVTX_PROG, NULL },
		{ "--steps", "x", "--", NVTX_PROG, NULL },
		{ "--steps", "1:2", "--delay", "1", "--", NVTX_PROG, NULL },
		{ "--format", "pdf", "--", NVTX_PROG, NULL },
		{ "--format", "xplane,", "--", NVTX_PROG, NULL },
		{ "--format", "", "--", NVTX_PROG, NULL },
		{ "--format", "xplane,chrome,json", "--", NVTX_PROG, NULL },
		{ "--shell", "--", NVTX_PROG, NULL },
		{ "--logdir", NULL },
		{ NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *argv[8] = { TFPROF_START_EXE };
		size_t n = 1;
		for (size_t j = 0; cases[i][j]; j++)
			argv[n++] = cases[i][j];
		argv[n] = NULL;
		struct run_result r = run(dir, "bad", (char *const *)argv, NULL);
		if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 2)
			fail_msg("case %zu (%s): status 0x%x", i, argv[1] ? argv[1] : "(none)", r.status);
		/* One line, naming the tool, and nothing run. */
		assert_true(strncmp(r.err, "tfprof-start: ", 14) == 0);
		char *nl = strchr(r.err, '\n');
		assert_non_null(nl);
		assert_int_equal(nl[1], 0);
		assert_string_equal(r.out, "");
		result_free(&r);
	}
	/* A program that does not exist: exit 127 and one line. */
	char *argv[] = { TFPROF_START_EXE, "--logdir", dir, "--", "/nonexistent/prog", NULL };
	struct run_result r = run(dir, "noprog", argv, NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 127);
	assert_non_null(strstr(r.err, "cannot run /nonexistent/prog"));
	result_free(&r);
	/* --help documents the options and their variables. */
	char *help[] = { TFPROF_START_EXE, "--help", NULL };
	r = run(dir, "help", help, NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	const char *words[] = { "--logdir", "TFPROF_LOGDIR", "--run", "TFPROF_RUN", "--delay", "TFPROF_DELAY",
				"--duration", "TFPROF_DURATION", "--no-gpu", "TFPROF_GPU", "--max-memory",
				"TFPROF_MAX_MEMORY_MB", "--shell", "--deactivate", "--steps", "TFPROF_STEPS",
				"step_num", "SIGTERM", "--format", "TFPROF_FORMAT", "TFPROF_REPORT_BIN",
				"trace.json.gz", "tfprof-report --chrome-trace" };
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (!strstr(r.out, words[i]))
			fail_msg("--help does not mention %s", words[i]);
	assert_null(strstr(r.out, "Not yet"));
	result_free(&r);
	/* A bad TFPROF_FORMAT is refused like a bad --format. */
	char *badenv[] = { "TFPROF_FORMAT=html", NULL };
	char *argv3[] = { TFPROF_START_EXE, "--", NVTX_PROG, NULL };
	r = run(dir, "badenv", argv3, badenv);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 2);
	assert_non_null(strstr(r.err, "TFPROF_FORMAT"));
	result_free(&r);
	tt_rm_rf(dir);
	free(dir);
}

static void t_unwritable_logdir(void **state)
{
	(void)state;
	char *dir = scratch("start-unwritable");
	/* A logdir below a regular file cannot be created, even by root. */
	char *file, *logdir, *tmp, *tmpenv;
	assert_true(asprintf(&file, "%s/file", dir) > 0);
	assert_true(asprintf(&logdir, "%s/file/logdir", dir) > 0);
	assert_true(asprintf(&tmp, "%s/tmp", dir) > 0);
	assert_true(asprintf(&tmpenv, "TMPDIR=%s", tmp) > 0);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	mkdir(tmp, 0700);
	char *argv[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "u", "--", NVTX_PROG, "return", "7", NULL };
	char *env[] = { tmpenv, NULL };
	struct run_result r = run(dir, "u", argv, env);
	/* The program ran and exited with its own status. */
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 7);
	assert_non_null(strstr(r.err, "tfprof-start: warning: cannot write to logdir"));
	assert_non_null(strstr(r.err, "it was saved to"));
	/* The profile went to the fallback directory, complete. */
	char *rd, *path = NULL;
	assert_true(asprintf(&rd, "%s/tfprof-%ld/plugins/profile/u", tmp, (long)getuid()) > 0);
	DIR *d = opendir(rd);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".xplane.pb") && e->d_name[0] != '.' && !path)
			assert_true(asprintf(&path, "%s/%s", rd, e->d_name) > 0);
	closedir(d);
	assert_non_null(path);
	XSpace *s = tt_read_xspace(path);
	assert_standard_ranges(s);
	tt_xspace_free(s);
	free(path);
	free(rd);
	result_free(&r);

	/* --format chrome: the trace goes beside the profile, where it was really written. */
	char *argv2[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "uc", "--format", "chrome", "--",
			  NVTX_PROG, "return", "7", NULL };
	r = run(dir, "uc", argv2, env);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 7);
	assert_true(asprintf(&rd, "%s/tfprof-%ld/plugins/profile/uc", tmp, (long)getuid()) > 0);
	char **names;
	assert_int_equal(files_in(rd, ".xplane.pb", &names), 1);
	char *t = trace_of(names[0]);
	assert_int_equal(files_in(rd, ".trace.json.gz", NULL), 1);
	check_chrome_trace(dir, t, (const char *[]){ "outer", "inner", NULL });
	assert_non_null(strstr(r.err, t));
	free(t);
	free_names(names, 1);
	free(rd);
	result_free(&r);
	free(file);
	free(logdir);
	free(tmp);
	free(tmpenv);
	tt_rm_rf(dir);
	free(dir);
}

/* ---- CUDA injection ---- */

static void t_cuda_injection(void **state)
{
	(void)state;
#ifdef INJECT_PROG
	char *dir = scratch("start-inject");
	char *logdir;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	char *argv[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "cuda", "--", INJECT_PROG, CUPTI_SIM, NULL };
	char *env[] = { "TFPROF_CUPTI_LIBRARY=" CUPTI_SIM, "CUDA_INJECTION64_PATH", NULL };
	struct run_result r = run(dir, "cuda", argv, env);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	XSpace *s = only_profile(dir, "cuda");
	const XPlane *g = tt_plane(s, "/device:GPU:0");
	assert_non_null(g);
	/* GPU tracing started when CUDA initialized, not before. */
	assert_int_equal(tt_count_events(g, "after_init"), 1);
	assert_int_equal(tt_count_events(g, "before_init"), 0);
	tt_xspace_free(s);
	result_free(&r);

	/* --no-gpu: no GPU plane even after CUDA initializes. */
	char *argv2[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "nogpu", "--no-gpu", "--", INJECT_PROG, CUPTI_SIM, NULL };
	r = run(dir, "nogpu", argv2, env);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	s = only_profile(dir, "nogpu");
	assert_null(tt_plane(s, "/device:GPU:0"));
	tt_xspace_free(s);
	result_free(&r);
	free(logdir);
	tt_rm_rf(dir);
	free(dir);
#else
	skip();
#endif
}

/* ---- --format chrome ---- */

static void t_format_chrome(void **state)
{
	(void)state;
	char *dir = scratch("start-chrome");
	/* Return from main: both files, the program's exit status, and the converter (a child of
	 * the program, with its environment) was not profiled: still one profile in the run. */
	struct run_result r = start_prog(dir, "ret", (const char *[]){ "--format", "xplane,chrome", NULL },
					 "return", "5", NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 5)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	XSpace *s = only_profile(dir, "ret");
	assert_standard_ranges(s);
	tt_xspace_free(s);
	char *t = only_trace(dir, "ret", &r);
	check_chrome_trace(dir, t, (const char *[]){ "outer", "inner", NULL });
	free(t);
	result_free(&r);

	/* "chrome" alone means both; the program's stdout is its own (the converter's goes
	 * nowhere). */
	r = start_prog(dir, "exit", (const char *[]){ "--format", "chrome", NULL }, "exit", NULL, NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 3);
	t = only_trace(dir, "exit", &r);
	check_chrome_trace(dir, t, (const char *[]){ "outer", "inner", NULL });
	assert_null(strstr(r.out, "tfprof"));
	free(t);
	result_free(&r);

	/* SIGTERM: converted on the control thread before the program dies of the signal. */
	r = start_prog(dir, "sigterm", (const char *[]){ "--format", "chrome", NULL }, "sigterm", NULL, NULL);
	if (!WIFSIGNALED(r.status) || WTERMSIG(r.status) != SIGTERM)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	t = only_trace(dir, "sigterm", &r);
	check_chrome_trace(dir, t, (const char *[]){ "outer", "inner", "open_at_signal", NULL });
	free(t);
	result_free(&r);

	/* --steps: the profile is written at step 5's end on the stepping thread and converted on
	 * the control thread; the exit waits for it. */
	char *logdir;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	char *argv[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "steps", "--steps", "3:5", "--format",
			 "chrome", "--", LINKED_PROG, "steps", NULL };
	r = run(dir, "steps", argv, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	t = only_trace(dir, "steps", &r);
	check_chrome_trace(dir, t, (const char *[]){ "train_step", "work", NULL });
	free(t);
	result_free(&r);

	/* --duration: written and converted on the control thread while the program runs on. */
	r = start_prog(dir, "dur", (const char *[]){ "--duration", "0.5", "--format", "chrome", NULL }, "timed",
		       NULL, NULL);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 0);
	t = only_trace(dir, "dur", &r);
	check_chrome_trace(dir, t, (const char *[]){ "phase_a", NULL });
	free(t);
	result_free(&r);

	/* The program returns while the --duration profile is still being written (0.2 s of scopes
	 * recorded nonstop take longer than 0.1 s to write): the exit waits for the profile and its
	 * trace instead of ending the process between the two. */
	char *busy[] = { TFPROF_START_EXE, "--logdir", logdir, "--run", "busy", "--duration", "0.2",
			 "--max-memory", "64", "--format", "chrome", "--", LINKED_PROG, "busy", "0.3", NULL };
	r = run(dir, "busy", busy, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	t = only_trace(dir, "busy", &r);
	free(t);
	result_free(&r);

	/* fork without exec: only the parent writes, and converts, once. */
	r = start_prog(dir, "fork", (const char *[]){ "--format", "chrome", NULL }, "fork", NULL, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	t = only_trace(dir, "fork", &r);
	free(t);
	result_free(&r);

	/* fork + exec: two processes, two profiles, each with its trace. */
	r = start_prog(dir, "fx", (const char *[]){ "--format", "chrome", NULL }, "forkexec", NULL, NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("status 0x%x, stderr: %s", r.status, r.err);
	char **names;
	size_t n = profiles(dir, "fx", &names);
	assert_int_equal(n, 2);
	assert_int_equal(traces(dir, "fx", NULL), 2);
	for (size_t i = 0; i < n; i++) {
		t = trace_of(names[i]);
		check_chrome_trace(dir, t, (const char *[]){ "outer", NULL });
		free(t);
	}
	free_names(names, n);
	result_free(&r);

	/* Nothing written (a crash): nothing converted, and not a word about a trace. */
	r = start_prog(dir, "abort", (const char *[]){ "--format", "chrome", NULL }, "abort", NULL, NULL);
	assert_true(WIFSIGNALED(r.status));
	assert_int_equal(traces(dir, "abort", NULL), 0);
	assert_null(strstr(r.err, "Chrome trace"));
	result_free(&r);

	/* Without --format: no trace. */
	r = start_prog(dir, "plain", NULL, "return", NULL, NULL);
	assert_int_equal(profiles(dir, "plain", NULL), 1);
	assert_int_equal(traces(dir, "plain", NULL), 0);
	assert_null(strstr(r.err, "Chrome trace"));
	result_free(&r);
	free(logdir);
	tt_rm_rf(dir);
	free(dir);
}

/* A converter that is missing or fails: the profile stays, one line says why and how to convert
 * by hand, and the program's exit status is its own. */
static void t_format_chrome_fails(void **state)
{
	(void)state;
	char *dir = scratch("start-chrome-fails");
	const char *bins[] = { "TFPROF_REPORT_BIN=/nonexistent/tfprof-report", "TFPROF_REPORT_BIN=/bin/false" };
	const char *whys[] = { "cannot run /nonexistent/tfprof-report", "/bin/false exited with status 1" };
	for (size_t i = 0; i < 2; i++) {
		char run_name[16];
		snprintf(run_name, sizeof run_name, "fail%zu", i);
		char *env[] = { (char *)bins[i], NULL };
		struct run_result r = start_prog(dir, run_name, (const char *[]){ "--format", "chrome", NULL },
						 "return", "7", env);
		if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 7)
			fail_msg("status 0x%x, stderr: %s", r.status, r.err);
		XSpace *s = only_profile(dir, run_name);
		assert_standard_ranges(s);
		tt_xspace_free(s);
		assert_int_equal(traces(dir, run_name, NULL), 0);
		if (count_lines_with(r.err, "Chrome trace") != 1 || !strstr(r.err, whys[i]) ||
		    !strstr(r.err, "tfprof-report --chrome-trace "))
			fail_msg("expected one line about the Chrome trace saying '%s'; stderr: %s", whys[i], r.err);
		assert_int_equal(count_lines_with(r.err, "tfprof"), 2); /* written to ..., and that */
		result_free(&r);
	}

	/* A bad TFPROF_FORMAT reaching the library (not through tfprof-start, which refuses it):
	 * one warning, and the XSpace only. */
	char *logdir, *logdir_env, *preload;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	assert_true(asprintf(&logdir_env, "TFPROF_LOGDIR=%s", logdir) > 0);
	char *shell[] = { TFPROF_START_EXE, "--shell", "--logdir", logdir, "--run", "badfmt", NULL };
	struct run_result sh = run(dir, "badfmt-sh", shell, NULL);
	const char *p = strstr(sh.out, "export LD_PRELOAD='");
	assert_non_null(p);
	p += strlen("export LD_PRELOAD='");
	assert_true(asprintf(&preload, "LD_PRELOAD=%.*s", (int)strcspn(p, "'"), p) > 0);
	result_free(&sh);
	char *env[] = { "TFPROF_START=1", logdir_env, "TFPROF_RUN=badfmt", preload, "TFPROF_FORMAT=xplane,svg",
			NULL };
	char *argv[] = { NVTX_PROG, "return", "4", NULL };
	struct run_result r = run(dir, "badfmt", argv, env);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 4);
	XSpace *s = only_profile(dir, "badfmt");
	tt_xspace_free(s);
	assert_int_equal(traces(dir, "badfmt", NULL), 0);
	assert_int_equal(count_lines_with(r.err, "TFPROF_FORMAT=xplane,svg"), 1);
	result_free(&r);
	free(logdir);
	free(logdir_env);
	free(preload);
	tt_rm_rf(dir);
	free(dir);
}

/* ---- Open MPI ---- */

/* mpirun's path on PATH, or NULL. */
static char *find_mpirun(void)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path && *path ? path : "/usr/bin:/bin"), *save = NULL;
	char *found = NULL;
	for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		char *cand;
		assert_true(asprintf(&cand, "%s/mpirun", *d ? d : ".") > 0);
		if (access(cand, X_OK) == 0)
			found = cand;
		else
			free(cand);
	}
	free(copy);
	return found;
}

/* mpirun -np 4 tfprof-start --run R -- prog: four files in one run, <host>.rank<r> with r from
 * OMPI_COMM_WORLD_RANK. The program does not call MPI itself, so no transport (btl) is set up
 * and no container workaround is needed; --stdin none because tests run without a stdin, and
 * --oversubscribe for machines with fewer than 4 cores. */
static void t_mpi(void **state)
{
	(void)state;
	char *mpirun = find_mpirun();
	assert_non_null(mpirun); /* main() skips when there is none */
	char *dir = scratch("start-mpi");
	char *logdir;
	assert_true(asprintf(&logdir, "%s/logdir", dir) > 0);
	char *argv[] = { mpirun, "-np", "4", "--oversubscribe", "--allow-run-as-root", "--stdin", "none",
			 TFPROF_START_EXE, "--logdir", logdir, "--run", "mpi", "--format", "xplane,chrome", "--",
			 NVTX_PROG, "return", NULL };
	/* Variables of an enclosing MPI job would make mpirun join it instead of starting one. */
	char *env[] = { "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID", "RANK", "LOCAL_RANK",
			"PMIX_NAMESPACE", "PMIX_SERVER_URI2", "PMIX_SERVER_URI3", "TFPROF_RANK_PID", NULL };
	struct run_result r = run(dir, "mpi", argv, env);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
		fail_msg("mpirun: status 0x%x, stdout: %s, stderr: %s", r.status, r.out, r.err);
	char **names;
	size_t n = profiles(dir, "mpi", &names);
	if (n != 4)
		fail_msg("expected 4 profiles (one per rank), found %zu; stderr: %s", n, r.err);
	char host[256] = { 0 };
	assert_int_equal(gethostname(host, sizeof host - 1), 0);
	bool plain = strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == strlen(host);
	for (size_t i = 0; i < n; i++) {
		/* Sorted, so names[i] is rank i's. */
		char suffix[64];
		snprintf(suffix, sizeof suffix, ".rank%zu.xplane.pb", i);
		const char *base = strrchr(names[i], '/') + 1;
		size_t bl = strlen(base), sl = strlen(suffix);
		if (bl <= sl || strcmp(base + bl - sl, suffix) != 0)
			fail_msg("profile %s is not named <host>%s", base, suffix);
		if (plain && (bl - sl != strlen(host) || strncmp(base, host, bl - sl) != 0))
			fail_msg("profile %s is not named %s%s", base, host, suffix);
		XSpace *s = tt_read_xspace(names[i]);
		tt_check_well_formed(s);
		assert_standard_ranges(s);
		tt_xspace_free(s);
		/* Each rank converted its own profile: <host>.rank<r>.trace.json.gz. */
		char *t = trace_of(names[i]);
		check_chrome_trace(dir, t, (const char *[]){ "outer", "inner", NULL });
		free(t);
	}
	assert_int_equal(traces(dir, "mpi", NULL), 4);
	assert_int_equal(count_lines_with(r.err, "tfprof: Chrome trace written to "), 4);
	free_names(names, n);
	result_free(&r);
	free(logdir);
	free(mpirun);
	tt_rm_rf(dir);
	free(dir);
}

int main(int argc, char **argv)
{
	/* `test_start mpi`: the Open MPI test alone, a ctest of its own that reports itself skipped
	 * (exit 77) where mpirun is missing. */
	if (argc > 1 && strcmp(argv[1], "mpi") == 0) {
		char *mpirun = find_mpirun();
		if (!mpirun) {
			printf("SKIPPED: mpirun was not found on PATH; install Open MPI (openmpi-bin, in scripts/deps)\n");
			return 77;
		}
		free(mpirun);
		const struct CMUnitTest mpi[] = { cmocka_unit_test(t_mpi) };
		return cmocka_run_group_tests(mpi, NULL, NULL);
	}
	/* `test_start PATTERN`: only the cases whose names match (cmocka's filter, * wildcards). */
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_return),
		cmocka_unit_test(t_exit),
		cmocka_unit_test(t_sigint),
		cmocka_unit_test(t_sigterm),
		cmocka_unit_test(t_sigterm_then_return),
		cmocka_unit_test(t_abort),
		cmocka_unit_test(t_segv),
		cmocka_unit_test(t_nvtx_forms),
		cmocka_unit_test(t_threads),
		cmocka_unit_test(t_linked),
		cmocka_unit_test(t_steps_own_session),
		cmocka_unit_test(t_steps),
		cmocka_unit_test(t_fork),
		cmocka_unit_test(t_fork_exec),
		cmocka_unit_test(t_helpers_write_nothing),
		cmocka_unit_test(t_exec_in_place),
		cmocka_unit_test(t_static_copy),
		cmocka_unit_test(t_fork_in_process),
		cmocka_unit_test(t_window),
		cmocka_unit_test(t_ranks),
		cmocka_unit_test(t_job_script),
		cmocka_unit_test(t_shell),
		cmocka_unit_test(t_bad_options),
		cmocka_unit_test(t_unwritable_logdir),
		cmocka_unit_test(t_vfork_exec),
		cmocka_unit_test(t_closed_fds),
		cmocka_unit_test(t_cuda_injection),
		cmocka_unit_test(t_format_chrome),
		cmocka_unit_test(t_format_chrome_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
