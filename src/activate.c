/* SPDX-License-Identifier: Apache-2.0 */
/* Environment activation (see activate.h): a constructor that starts a session when the library
 * loads with TFPROF_START=1, a control thread that applies TFPROF_DELAY / TFPROF_DURATION and
 * turns SIGINT/SIGTERM into a written profile, the exit handler, fork handling for all of it,
 * and the CUDA injection entry point.
 *
 * Threads and signals.
 * - The signal handler does two async-signal-safe things: it stores the signal number and posts
 *   a semaphore (sem_post). The control thread, waiting on the semaphore, reads the number,
 *   stops the session (which merges and writes: malloc, locks,
 *   files, nothing a handler may do), restores the default action and raises the signal again
 *   on itself, so the program still dies of it and its parent sees that. A second signal while the first
 *   is being handled kills at once, without a profile: a second Ctrl-C means "now".
 * - No file descriptor: the wake-up was once a pipe, and a program that closed every descriptor
 *   and opened files of its own (daemons do) had tfprof write signal numbers into its log, read
 *   the first byte of its input and spin on a closed descriptor. tfprof keeps no descriptor open
 *   across the program's code; the files it writes are opened and closed within one stop.
 * - act_mu guards the activation state below. It is taken before session_mu (the control
 *   thread starts sessions under it) and never inside a session lock.
 * - A fork child is not activated: it has no control thread, its signal handlers go back to the
 *   defaults, and session.c drops the parent's session in it. A child that execs runs this
 *   constructor again as a new process and gets its own profile.
 * - Steps (TFPROF_STEPS, see activate.h): the session is started and stopped by the program's
 *   own stepping thread, inside its scope begin and end, through the same start_locked() and
 *   stop_and_report() (act_mu is taken there with no tracer or session lock held).
 * - Crashes (SIGSEGV, abort) are not caught: writing a profile from a corrupted process risks a
 *   corrupt file, and files.c never leaves a partial file under a profile's name.
 * - Chrome trace (TFPROF_FORMAT=xplane,chrome): once the profile is written, tfprof-report
 *   (TFPROF_REPORT_BIN, else from PATH) converts it into <stem>.trace.json.gz beside it, as a
 *   child process (posix_spawn, no shell) that is waited for, never in a signal handler: in the
 *   exit handler, on the control thread (signal, --duration) before it goes on, and for --steps
 *   on the control thread too, so that the stepping thread does not wait for it. Every activated
 *   stop is counted in Cv.running before it begins, and the exit handler and a signal's re-raise
 *   wait until none is left: an exit during another thread's stop gets the profile and its trace,
 *   and a re-raise never cuts short an exit handler's stop. An exit while a signal is being
 *   handled waits for the signal to end the process. Cv.mu is a leaf lock:
 *   nothing is taken under it, and it is never held while a stop or conversion runs. */
#include "activate.h"
#include "server.h"
#include "session.h"
#include "tracer.h"

#include "chrome_convert.h"
#include "env.h"
#include "files.h"
#include "format.h"
#include "job_rank.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h> /* isfinite, a macro */
#include <stdint.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_LOGDIR "tfprof-logdir"

static const int handled_signals[] = { SIGINT, SIGTERM };
#define NSIG_HANDLED (sizeof handled_signals / sizeof handled_signals[0])

static pthread_mutex_t act_mu = PTHREAD_MUTEX_INITIALIZER;

static struct {
	bool activated;        /* TFPROF_START was set at load, and this is not a fork child */
	pid_t pid;             /* the activated process (a vfork child shares A but not the pid) */
	bool exiting;          /* exit or a signal: no session may start any more */
	bool cuda_initialized; /* InitializeInjection() ran */
	bool inject_is_us;     /* CUDA_INJECTION64_PATH names this library */
	bool is_root;          /* the program tfprof-start ran (TFPROF_START_PID): writes even empty */
	bool start_pending;    /* waiting for TFPROF_DELAY */
	bool stop_pending;     /* a session of ours runs until TFPROF_DURATION */
	double delay, duration;
	int64_t start_at, stop_at; /* mono_ns() deadlines */
	char *logdir, *run, *host;
	/* TFPROF_SERVER: the address the program's profiler server listens on; server_only: no
	 * --delay, --duration or --steps, so only captures record. */
	char *server;
	bool server_only;
	bool installed[NSIG_HANDLED];
	struct sigaction old_action[NSIG_HANDLED];
} A;

/* TFPROF_STEPS. first/last are set at load; the rest changes under act_mu, except owner and
 * watch, which the stepping thread reads on its own without a lock. */
static struct {
	bool on;      /* TFPROF_STEPS was given */
	bool started; /* the session of the window was started */
	bool done;    /* the window is over (written, or the program is exiting) */
	long long first, last;
	_Atomic uint64_t owner;  /* the stepping thread's steps_id, 0: none yet */
	_Atomic uint64_t watch;  /* step B's scope handle (tag << 32 | serial), 0: not begun */
} St;
/* Threads are told apart by a number given at their first step begin, never reused (a thread's
 * id or TLS address may be reused by a later thread). */
static __thread uint64_t steps_id;
static _Atomic uint64_t steps_next_id;

/* The Chrome trace (TFPROF_FORMAT). chrome and report_bin are set at load; the rest is guarded
 * by mu. */
static struct {
	bool chrome;      /* a Chrome trace is wanted beside each profile */
	bool control;     /* the control thread runs and takes queued conversions */
	char *report_bin; /* TFPROF_REPORT_BIN, or NULL: tfprof-report from PATH */
	int running;      /* activated stops and their conversions under way, counted from before
			   * the stop begins */
	char *queued;     /* a profile handed to the control thread, not yet taken (counted) */
	bool dying;       /* the control thread turns a signal into a profile, then re-raises it */
	bool raising;     /* ... and is about to re-raise it now */
	pthread_mutex_t mu;
	pthread_cond_t done;
} Cv = { .mu = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER };

/* The number of the signal being turned into a profile (0: none), set by the handler. */
static volatile sig_atomic_t signal_pending;
/* Wakes the control thread: posted by the signal handler, by convert_later() and by nothing
 * else; a post that finds nothing to do only costs a turn of its loop. */
static sem_t wake;
/* A profile waits in Cv.queued for the control thread to convert it. */
static atomic_bool convert_wanted;

/* ---- Small helpers ---- */

static bool env_on(const char *name)
{
	const char *e = tfprof__getenv(name);
	return e && *e && strcmp(e, "0") != 0 && strcmp(e, "off") != 0 && strcmp(e, "false") != 0;
}

/* Reads a number of seconds >= 0 from the environment; warns and uses 0 for a bad value. */
static double env_seconds(const char *name)
{
	const char *e = tfprof__getenv(name);
	if (!e || !*e)
		return 0;
	char *end;
	errno = 0;
	double v = strtod(e, &end);
	if (errno || *end || !isfinite(v) || v < 0 || v > 1e9) {
		fprintf(stderr, "tfprof: warning: %s=%s is not a number of seconds >= 0; ignoring it\n", name, e);
		return 0;
	}
	return v;
}

/* Parses TFPROF_STEPS: "A:B" (A <= B) or "A" (A:A), whole numbers >= 0. */
static bool parse_steps(const char *e, long long *first, long long *last)
{
	char *end;
	errno = 0;
	if (*e < '0' || *e > '9')
		return false;
	long long a = strtoll(e, &end, 10), b = a;
	if (errno)
		return false;
	if (*end == ':') {
		const char *p = end + 1;
		if (*p < '0' || *p > '9')
			return false;
		b = strtoll(p, &end, 10);
		if (errno)
			return false;
	}
	if (*end || b < a)
		return false;
	*first = a;
	*last = b;
	return true;
}

/* Deadlines are in CLOCK_MONOTONIC nanoseconds (integer math: no libm). */
static int64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t now_plus(double seconds)
{
	return mono_ns() + (int64_t)(seconds * 1e9);
}

/* Milliseconds from now until the deadline, rounded up, at least 0. */
static int ms_until(int64_t deadline)
{
	int64_t ns = deadline - mono_ns();
	if (ns <= 0)
		return 0;
	int64_t ms = (ns + 999999) / 1000000;
	return ms > 1000000000 ? 1000000000 : (int)ms;
}

/* The profile's file stem: <host>.rank<r>, or <host>.<pid> outside a job. A process that
 * inherited its rank from another profiled process (a fork+exec child of a rank) would collide
 * with that rank's file: the first process of a rank records its pid in TFPROF_RANK_PID, and a
 * descendant with the same rank adds its own pid. */
static char *host_stem(void)
{
	char host[256] = { 0 };
	if (gethostname(host, sizeof host - 1) || !host[0])
		strcpy(host, "localhost");
	long rank = tfprof__job_rank(tfprof__getenv);
	long pid = (long)getpid();
	char *stem = NULL;
	int n;
	if (rank < 0) {
		n = asprintf(&stem, "%s.%ld", host, pid);
	} else {
		const char *owner = tfprof__getenv("TFPROF_RANK_PID");
		char mine[32];
		snprintf(mine, sizeof mine, "%ld", pid);
		if (owner && *owner && strcmp(owner, mine) != 0) {
			n = asprintf(&stem, "%s.rank%ld.%ld", host, rank, pid);
		} else {
			n = asprintf(&stem, "%s.rank%ld", host, rank);
			tfprof__setenv("TFPROF_RANK_PID", mine);
		}
	}
	return n < 0 ? NULL : stem;
}

static char *absolute_dir(const char *dir)
{
	if (dir[0] == '/')
		return strdup(dir);
	char cwd[4096];
	char *out = NULL;
	if (!getcwd(cwd, sizeof cwd) || asprintf(&out, "%s/%s", cwd, dir) < 0)
		return strdup(dir);
	return out;
}

/* True when path names the file this code was loaded from. */
bool tfprof__names_this_library(const char *path)
{
	if (!path || !*path)
		return false;
	Dl_info info;
	struct stat a, b;
	const char *self = NULL;
	if (dladdr((void *)&tfprof__names_this_library, &info) && info.dli_fname && info.dli_fname[0] == '/')
		self = info.dli_fname;
	else
		self = "/proc/self/exe"; /* linked statically into the program */
	return stat(path, &a) == 0 && stat(self, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Library messages in activated mode: errors always reach stderr (the user asked for a profile
 * and must hear why it went elsewhere); warnings and information only with TFPROF_LOG=1. */
static void act_log(int level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level == TFPROF_LOG_ERROR)
		fprintf(stderr, "tfprof: error: %s\n", msg);
	else if (level == TFPROF_LOG_INFO && strncmp(msg, "profile written to ", 19) == 0)
		return; /* stop_and_report() always prints this line */
	else if (env_on("TFPROF_LOG"))
		fprintf(stderr, "tfprof: %s%s\n", level == TFPROF_LOG_WARN ? "warning: " : "", msg);
}

/* ---- Chrome trace (TFPROF_FORMAT) ---- */

/* One stop or conversion fewer under way: the exit handler may go on when none is left. */
static void uncount(void)
{
	pthread_mutex_lock(&Cv.mu);
	Cv.running--;
	pthread_cond_broadcast(&Cv.done);
	pthread_mutex_unlock(&Cv.mu);
}

/* Converts path (taken) now; the caller counted it in Cv.running. */
static void convert_counted(char *path)
{
	tfprof__chrome_convert(path, Cv.report_bin);
	free(path);
	uncount();
}

/* Converts the queued profile if it is still queued: the control thread and the exit handler
 * both try, and the first one takes it. */
static void convert_queued(void)
{
	pthread_mutex_lock(&Cv.mu);
	char *p = Cv.queued;
	Cv.queued = NULL;
	pthread_mutex_unlock(&Cv.mu);
	if (p)
		convert_counted(p);
}

/* Hands path (taken, counted) to the control thread, which converts it while the caller goes
 * on; without a control thread (or with a profile already queued, which cannot happen: one
 * window per process), converts it now. */
static void convert_later(char *path)
{
	pthread_mutex_lock(&Cv.mu);
	bool queued = Cv.control && !Cv.queued;
	if (queued) {
		Cv.queued = path;
		pthread_cond_broadcast(&Cv.done); /* a finish_conversions() waiting takes it */
	}
	pthread_mutex_unlock(&Cv.mu);
	if (!queued) {
		convert_counted(path);
		return;
	}
	atomic_store(&convert_wanted, true);
	if (sem_post(&wake))
		convert_queued();
}

/* Waits until no stop or conversion is queued or under way (the exit handler, and the control
 * thread before it re-raises a signal). */
static void finish_conversions(void)
{
	pthread_mutex_lock(&Cv.mu);
	while (Cv.running) {
		/* A profile queued meanwhile is converted here: the control thread, which would take
		 * it, may be the caller. */
		char *p = Cv.queued;
		Cv.queued = NULL;
		if (!p) {
			pthread_cond_wait(&Cv.done, &Cv.mu);
			continue;
		}
		pthread_mutex_unlock(&Cv.mu);
		convert_counted(p);
		pthread_mutex_lock(&Cv.mu);
	}
	pthread_mutex_unlock(&Cv.mu);
}

/* ---- Sessions ---- */

/* Starts the activated session. The caller holds act_mu. Returns 0 or the error (printed). */
static int start_locked(void)
{
	TFPROF_OPTIONS(o, .run_name = A.run, .host_name = A.host, .log_fn = act_log);
	/* With our injection in place GPU tracing waits for CUDA (InitializeInjection); otherwise,
	 * or once CUDA is up, it starts with the session. */
	int rc = tfprof__start_activated(A.logdir, &o, A.inject_is_us && !A.cuda_initialized);
	if (rc)
		fprintf(stderr, "tfprof: error: cannot start profiling: %s\n", tfprof_strerror(rc));
	else if (A.duration > 0) {
		A.stop_at = now_plus(A.duration);
		A.stop_pending = true;
	}
	return rc;
}

/* Stops the session and says where the profile went, then has its Chrome trace written when
 * TFPROF_FORMAT asks for one: now (the caller waits), or later, on the control thread. Not with
 * act_mu held: writing takes time and InitializeInjection must not wait for it. The stop is
 * counted in Cv.running before it begins, so that an exit handler that comes while another
 * thread writes the profile waits for the profile and its trace instead of ending the process
 * between the two. */
static int stop_and_report(bool convert_in_background, bool skip_empty)
{
	/* Counted whether or not a trace follows: a signal's re-raise also waits for an exit
	 * handler's stop to have said where the profile went. */
	bool chrome = Cv.chrome;
	pthread_mutex_lock(&Cv.mu);
	Cv.running++;
	pthread_mutex_unlock(&Cv.mu);
	char written[PATH_MAX];
	int rc = tfprof__stop_activated(skip_empty, written, sizeof written);
	if (rc == 0)
		fprintf(stderr, "tfprof: profile written to %s\n", written);
	else if (rc == TFPROF_ERR_UNWRITTEN)
		fprintf(stderr, "tfprof: error: the profile was lost: neither %s nor $TMPDIR could be written; "
				"rerun with a writable --logdir\n", A.logdir);
	/* TFPROF_ERR_FALLBACK: act_log already printed where the profile went instead.
	 * TFPROF_ERR_NOT_ACTIVE: already written (--duration, a signal), never started, or the
	 * program's own session, which is the program's to stop. */
	if (!chrome) {
		uncount();
		return rc;
	}
	char *path = (rc == 0 || rc == TFPROF_ERR_FALLBACK) && written[0] ? strdup(written) : NULL;
	if (!path) {
		if ((rc == 0 || rc == TFPROF_ERR_FALLBACK) && written[0])
			fprintf(stderr, "tfprof: warning: out of memory; no Chrome trace was written: convert the "
					"profile by hand: tfprof-report --chrome-trace OUT.json.gz %s\n", written);
		uncount();
	} else if (convert_in_background) {
		convert_later(path);
	} else {
		convert_counted(path);
	}
	return rc;
}

/* ---- Steps (TFPROF_STEPS; the hooks tracer.c calls, see activate.h) ---- */

static void steps_unwatch(void)
{
	__atomic_and_fetch(&tfprof__state, ~TFPROF__STATE_HOOKS, __ATOMIC_RELAXED);
}

/* The step number among a scope's arguments: an integer step_num. */
static bool step_num_of(const struct tfprof_arg *args, size_t nargs, long long *out)
{
	for (size_t i = 0; args && i < nargs; i++) {
		uint32_t t = args[i].type & ~TFPROF_ARG_STATIC_KEY;
		if (!args[i].key || strcmp(args[i].key, "step_num") != 0)
			continue;
		if (t == TFPROF_ARG_I64)
			*out = args[i].v.i64;
		else if (t == TFPROF_ARG_U64 && args[i].v.u64 <= (uint64_t)INT64_MAX)
			*out = (long long)args[i].v.u64;
		else
			continue;
		return true;
	}
	return false;
}

/* Ends the window: no more step checks, and the profile is written now, on this thread. */
static void steps_finish(void)
{
	pthread_mutex_lock(&act_mu);
	bool stop = St.started && !St.done && !A.exiting;
	St.done = true;
	steps_unwatch();
	pthread_mutex_unlock(&act_mu);
	if (stop)
		stop_and_report(true, !A.is_root); /* the program goes on while its Chrome trace is written */
}

static bool steps_before_begin(const struct tfprof_arg *args, size_t nargs)
{
	long long n;
	if (!step_num_of(args, nargs, &n))
		return false;
	if (!steps_id)
		steps_id = atomic_fetch_add(&steps_next_id, 1) + 1;
	uint64_t me = steps_id, owner = 0;
	if (!atomic_compare_exchange_strong(&St.owner, &owner, me) && owner != me)
		return false; /* another thread's steps */
	if (n < St.first)
		return false;
	if (n > St.last) {
		/* Step B was skipped (or never began while recording): the window ends before this
		 * step, or never opened. */
		pthread_mutex_lock(&act_mu);
		bool never = !St.started && !St.done;
		pthread_mutex_unlock(&act_mu);
		if (never)
			fprintf(stderr, "tfprof: step %lld began before any step of --steps %lld:%lld did; no "
					"profile is written (check the step numbers given to --steps)\n",
				n, St.first, St.last);
		steps_finish();
		return false;
	}
	pthread_mutex_lock(&act_mu);
	if (!St.started && !St.done && !A.exiting) {
		/* A start that fails (the program runs a session of its own) ends the window: its
		 * error was printed once, and the program's session is not activation's to stop. */
		if (start_locked() == 0)
			St.started = true;
		else
			St.done = true;
	}
	bool recording = St.started && !St.done;
	pthread_mutex_unlock(&act_mu);
	return recording && n == St.last && atomic_load(&St.watch) == 0;
}

static void steps_began(tfprof_scope s)
{
	atomic_store(&St.watch, ((uint64_t)s.tag << 32) | s.serial);
}

static void steps_ended(tfprof_scope s)
{
	uint64_t h = ((uint64_t)s.tag << 32) | s.serial, w = atomic_load(&St.watch);
	if (w == 0 || h != w || !atomic_compare_exchange_strong(&St.watch, &w, 0))
		return;
	steps_finish();
}

/* TFPROF_STEPS's view of scopes: the tracer calls these while TFPROF__STATE_HOOKS is set. */
static const struct tfprof__scope_hooks steps_hooks = {
	.before_begin = steps_before_begin,
	.began = steps_began,
	.ended = steps_ended,
};

/* ---- Signals and the control thread ---- */

static void on_signal(int sig)
{
	int saved = errno;
	if (signal_pending) {
		/* Second signal while the first one is being handled: die now. */
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigaction(sig, &dfl, NULL);
		raise(sig);
	} else {
		signal_pending = sig;
		if (sem_post(&wake)) {
			/* The count would overflow (cannot happen: the thread takes posts as they come):
			 * do what the default would. */
			struct sigaction dfl = { .sa_handler = SIG_DFL };
			sigaction(sig, &dfl, NULL);
			raise(sig);
		}
	}
	errno = saved;
}

/* Installs on_signal for SIGINT and SIGTERM where the program left the default action (a shell
 * may have set SIG_IGN for background jobs; the program's own handlers stay). */
static void install_signal_handlers(void)
{
	for (size_t i = 0; i < NSIG_HANDLED; i++) {
		struct sigaction old;
		if (sigaction(handled_signals[i], NULL, &old) || old.sa_handler != SIG_DFL ||
		    (old.sa_flags & SA_SIGINFO))
			continue;
		struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
		sigemptyset(&sa.sa_mask);
		if (sigaction(handled_signals[i], &sa, &A.old_action[i]) == 0)
			A.installed[i] = true;
	}
}

/* Puts back the actions that were there before ours, where ours is still installed. */
static void restore_signal_handlers(void)
{
	for (size_t i = 0; i < NSIG_HANDLED; i++) {
		struct sigaction cur;
		if (A.installed[i] && sigaction(handled_signals[i], NULL, &cur) == 0 &&
		    cur.sa_handler == on_signal)
			sigaction(handled_signals[i], &A.old_action[i], NULL);
		A.installed[i] = false;
	}
}

static void handle_signal(int sig)
{
	pthread_mutex_lock(&Cv.mu);
	Cv.dying = true; /* an exit meanwhile waits for the signal to end the process (at_exit) */
	pthread_mutex_unlock(&Cv.mu);
	pthread_mutex_lock(&act_mu);
	A.exiting = true;
	A.start_pending = A.stop_pending = false;
	St.done = true;
	steps_unwatch();
	pthread_mutex_unlock(&act_mu);
	tfprof__server_at_exit();
	stop_and_report(false, !A.is_root);
	finish_conversions(); /* a --steps profile's may still be queued or under way */
	/* Die of the signal as the program would have without tfprof: on this thread, which blocks
	 * every signal but this one now, so that no thread's mask can keep it pending. */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	pthread_mutex_lock(&Cv.mu);
	Cv.raising = true;
	pthread_cond_broadcast(&Cv.done);
	pthread_mutex_unlock(&Cv.mu);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	raise(sig);
}

/* Starts the program's profiler server (--server). On the control thread, not in the
 * constructor: gRPC starts threads of its own, which inherit this thread's blocked signals. */
static void start_server(void)
{
	int rc = tfprof_server_start(A.server, NULL);
	if (rc) {
		const char *why = tfprof_server_last_error();
		fprintf(stderr, "tfprof: error: the profiler server did not start: %s; the program runs %s\n",
			*why ? why : tfprof_strerror(rc), A.server_only ? "unprofiled" : "without it");
		return;
	}
	int port = tfprof_server_port();
	fprintf(stderr, "tfprof: profiler server on port %d: capture with xprof's Capture Profile (localhost:%d) "
			"or tfprof-capture localhost:%d --duration 2s\n", port, port, port);
}

static void *control_thread(void *arg)
{
	(void)arg;
	if (A.server)
		start_server();
	for (;;) {
		pthread_mutex_lock(&act_mu);
		int64_t deadline = A.start_pending ? A.start_at : A.stop_pending ? A.stop_at : -1;
		pthread_mutex_unlock(&act_mu);

		if (!signal_pending && !atomic_load(&convert_wanted)) {
			/* EINTR and ETIMEDOUT need nothing: the state is read again below. */
			if (deadline < 0) {
				sem_wait(&wake);
			} else {
				struct timespec at = { deadline / 1000000000, deadline % 1000000000 };
				sem_clockwait(&wake, CLOCK_MONOTONIC, &at);
			}
		}
		int sig = signal_pending;
		if (sig) {
			handle_signal(sig);
			return NULL;
		}
		if (atomic_exchange(&convert_wanted, false))
			convert_queued();

		bool stop = false;
		pthread_mutex_lock(&act_mu);
		if (A.start_pending && ms_until(A.start_at) == 0) {
			A.start_pending = false;
			if (!A.exiting)
				start_locked();
		} else if (A.stop_pending && ms_until(A.stop_at) == 0) {
			A.stop_pending = false;
			stop = !A.exiting;
		}
		pthread_mutex_unlock(&act_mu);
		if (stop)
			stop_and_report(false, !A.is_root);
	}
}

/* ---- exec in place (exec_hook.c) ---- */

/* <host>.<pid>.exec<N>: the first N whose profile is not in the run yet. NULL when out of
 * memory or after 10,000 (the session then keeps its name, and files.c's rule for a taken
 * name applies). */
static char *exec_stem(void)
{
	for (int n = 1; n <= 10000; n++) {
		char *stem = NULL, *path = NULL;
		if (asprintf(&stem, "%s.exec%d", A.host, n) < 0)
			return NULL;
		if (asprintf(&path, "%s/plugins/profile/%s/%s.xplane.pb", A.logdir, A.run, stem) < 0) {
			free(stem);
			return NULL;
		}
		bool taken = access(path, F_OK) == 0;
		free(path);
		if (!taken)
			return stem;
		free(stem);
	}
	return NULL;
}

bool tfprof__activate_before_exec(void)
{
	/* A vfork() child (Python's subprocess uses one) runs in the parent's memory until it
	 * execs, and no fork handler tells it apart: only its pid does. Its exec replaces no image
	 * of ours, and it must not touch the parent's session. */
	if (!A.activated || getpid() != A.pid)
		return false;
	pthread_mutex_lock(&act_mu);
	bool stop = !A.exiting;
	char *stem = stop ? exec_stem() : NULL;
	/* The --steps window ends with this image: a failed exec does not open it again. */
	bool window = St.on;
	if (stop && St.on) {
		St.done = true;
		steps_unwatch();
	}
	pthread_mutex_unlock(&act_mu);
	if (stem)
		tfprof__session_set_host(stem); /* NOT_ACTIVE: nothing to write, stop says so too */
	free(stem);
	/* An image that recorded nothing (a wrapper script's shell) leaves no file. */
	int rc = stop ? stop_and_report(false, true) : TFPROF_ERR_NOT_ACTIVE;
	/* A --steps window's Chrome trace may still be queued for the control thread, which the
	 * exec is about to end. */
	finish_conversions();
	return rc != TFPROF_ERR_NOT_ACTIVE && !window;
}

void tfprof__activate_exec_failed(bool restart)
{
	if (!restart)
		return;
	pthread_mutex_lock(&act_mu);
	if (!A.exiting)
		start_locked();
	pthread_mutex_unlock(&act_mu);
	/* A new --duration deadline: the control thread may be waiting with none. */
	sem_post(&wake);
}

/* ---- Exit and fork ---- */

static void at_exit(void)
{
	/* Registered twice (tfprof__activate_cuda_up): the first call does the work. */
	static atomic_flag ran = ATOMIC_FLAG_INIT;
	if (atomic_flag_test_and_set(&ran))
		return;
	pthread_mutex_lock(&act_mu);
	bool ours = A.activated;
	bool never_started = A.start_pending;
	bool no_step = St.on && !St.started && !St.done;
	A.exiting = true;
	A.start_pending = A.stop_pending = false;
	if (St.on) {
		St.done = true;
		steps_unwatch();
	}
	pthread_mutex_unlock(&act_mu);
	if (!ours)
		return;
	/* A capture in progress is written first, before libcupti's teardown (see
	 * tfprof__activate_cuda_up). */
	tfprof__server_at_exit();
	if (A.server_only)
		; /* no session of activation's own: only captures record */
	else if (no_step)
		fprintf(stderr, "tfprof: the program ended before step %lld of --steps %lld:%lld began; no profile "
				"was written (steps are scopes with an integer step_num, or NVTX ranges named "
				"like \"step 12\"; see tfprof-start --help)\n",
			St.first, St.first, St.last);
	else if (never_started)
		fprintf(stderr, "tfprof: the program ended before TFPROF_DELAY (%g s) elapsed; no profile was written\n",
			A.delay);
	else
		stop_and_report(false, !A.is_root);
	/* A --duration or --steps profile's Chrome trace may be under way on the control thread. */
	finish_conversions();
	/* The program returned while a signal is being turned into a profile: the process must die
	 * of that signal, as it would have without tfprof, not exit with main's status. */
	pthread_mutex_lock(&Cv.mu);
	/* signal_pending: the handler ran (the program may have signalled itself and returned at
	 * once) but the control thread may not have woken yet. */
	bool dying = Cv.dying || (signal_pending && Cv.control);
	while (dying && !Cv.raising)
		pthread_cond_wait(&Cv.done, &Cv.mu);
	pthread_mutex_unlock(&Cv.mu);
	if (dying) {
		/* The signal is raised now; should it not end the process, exit as asked. */
		struct timespec t = { 5, 0 };
		while (nanosleep(&t, &t))
			;
	}
}

static void fork_child(void)
{
	/* The control thread and any holder of act_mu do not exist in the child. */
	pthread_mutex_init(&act_mu, NULL);
	if (!A.activated)
		return;
	A.activated = false;
	A.start_pending = A.stop_pending = false;
	/* The child watches no steps (session.c clears the rest of the state word once a session
	 * has started; before that, only this bit can be set). */
	St.done = true;
	steps_unwatch();
	restore_signal_handlers();
	signal_pending = 0;
	/* The semaphore wakes the parent's control thread, which the child does not have. */
	sem_init(&wake, 0, 0);
	atomic_store(&convert_wanted, false);
	/* No conversions either: the parent's are the parent's (its profile, its control thread). */
	pthread_mutex_init(&Cv.mu, NULL);
	pthread_cond_init(&Cv.done, NULL);
	Cv.chrome = Cv.control = Cv.dying = Cv.raising = false;
	Cv.running = 0;
	Cv.queued = NULL;
}

/* ---- Load ---- */

/* tfprof-start itself runs with the environment it exports when a shell was activated with
 * --shell (`eval "$(tfprof-start --deactivate)"` among others); profiling it is only noise. */
static bool is_tfprof_start(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	const char *base = strrchr(exe, '/');
	return strcmp(base ? base + 1 : exe, "tfprof-start") == 0;
}

/* Claims activation for this copy of the library in this process image; false when another
 * copy already did (a program that links tfprof statically, or a libtfprof.so other than the
 * preloaded one, next to the preloaded copy), which would otherwise write a second profile.
 * The claim is an environment variable that names the process image: the pid and the random
 * bytes the kernel gives each exec (AT_RANDOM), so that a program exec'd in place (same pid)
 * and children (which inherit the variable) claim anew. */
static bool claim_activation(void)
{
	const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
	char id[64];
	snprintf(id, sizeof id, "%ld:%02x%02x%02x%02x%02x%02x%02x%02x", (long)getpid(), r ? r[0] : 0,
		 r ? r[1] : 0, r ? r[2] : 0, r ? r[3] : 0, r ? r[4] : 0, r ? r[5] : 0, r ? r[6] : 0,
		 r ? r[7] : 0);
	const char *claimed = tfprof__getenv("TFPROF_ACTIVE_IMAGE");
	if (claimed && strcmp(claimed, id) == 0) {
		Dl_info info;
		bool shared = dladdr((void *)&claim_activation, &info) && info.dli_fname &&
			      strstr(info.dli_fname, ".so");
		fprintf(stderr, "tfprof: warning: this program carries its own copy of tfprof (%s) besides the one "
				"tfprof-start loaded; the program's tfprof scopes are not recorded (its NVTX ranges "
				"and GPU work are): %s\n",
			shared ? info.dli_fname : "linked statically",
			shared ? "pass this library to tfprof-start --library"
			       : "link libtfprof.so instead, or call tfprof_start() without tfprof-start");
		return false;
	}
	tfprof__setenv("TFPROF_ACTIVE_IMAGE", id);
	return true;
}

__attribute__((constructor)) static void activate_init(void)
{
	if (!env_on("TFPROF_START") || is_tfprof_start() || !claim_activation())
		return;
	const char *dir = tfprof__getenv("TFPROF_LOGDIR");
	A.logdir = absolute_dir(dir && *dir ? dir : DEFAULT_LOGDIR);
	const char *run = tfprof__getenv("TFPROF_RUN");
	if (run && *run) {
		A.run = strdup(run);
	} else {
		/* Chosen once, here, and inherited by the programs this one starts, so that a job's
		 * processes share one run directory. */
		A.run = tfprof__default_run_name();
		if (A.run)
			tfprof__setenv("TFPROF_RUN", A.run);
	}
	A.host = host_stem();
	const char *server = tfprof__getenv("TFPROF_SERVER");
	if (server && *server) {
		/* Only this program serves: the programs it starts would find the port taken. */
		A.server = strdup(server);
		tfprof__setenv("TFPROF_SERVER", "");
	}
	A.delay = env_seconds("TFPROF_DELAY");
	A.duration = env_seconds("TFPROF_DURATION");
	const char *steps = tfprof__getenv("TFPROF_STEPS");
	if (steps && *steps) {
		if (!parse_steps(steps, &St.first, &St.last)) {
			fprintf(stderr, "tfprof: error: TFPROF_STEPS=%s is not A:B (whole numbers, A <= B); this "
					"process is not profiled\n", steps);
			return;
		}
		if (A.delay > 0 || A.duration > 0)
			fprintf(stderr, "tfprof: warning: TFPROF_STEPS chooses what is recorded; TFPROF_DELAY and "
					"TFPROF_DURATION are ignored\n");
		A.delay = A.duration = 0;
		St.on = true;
	}
	const char *fmt = tfprof__getenv("TFPROF_FORMAT");
	if (fmt && *fmt && !tfprof__parse_format(fmt, &Cv.chrome))
		fprintf(stderr, "tfprof: warning: TFPROF_FORMAT=%s is not a comma-separated list of xplane and "
				"chrome; writing the XSpace (.xplane.pb) only\n", fmt);
	const char *bin = tfprof__getenv("TFPROF_REPORT_BIN");
	if (Cv.chrome && bin && *bin)
		Cv.report_bin = strdup(bin); /* out of memory: tfprof-report from PATH */
	A.inject_is_us = tfprof__names_this_library(tfprof__getenv("CUDA_INJECTION64_PATH"));
	const char *root = tfprof__getenv("TFPROF_START_PID");
	A.is_root = root && *root && strtol(root, NULL, 10) == (long)getpid();
	if (!A.logdir || !A.run || !A.host) {
		fprintf(stderr, "tfprof: error: out of memory at load; this process is not profiled\n");
		return;
	}
	sem_init(&wake, 0, 0); /* cannot fail: not shared, and 0 is a valid count */
	A.pid = getpid();
	A.activated = true;
	pthread_atfork(NULL, NULL, fork_child);
	atexit(at_exit);

	A.server_only = A.server && !St.on && A.delay <= 0 && A.duration <= 0;
	pthread_mutex_lock(&act_mu);
	if (A.server_only) {
		/* Nothing records until a capture arrives (the server starts on the control
		 * thread). */
	} else if (St.on) {
		/* The session starts at step A's begin (steps_before_begin). */
		tfprof__tracer_set_scope_hooks(&steps_hooks);
		__atomic_or_fetch(&tfprof__state, TFPROF__STATE_HOOKS, __ATOMIC_RELAXED);
	} else if (A.delay > 0) {
		A.start_at = now_plus(A.delay);
		A.start_pending = true;
	} else {
		start_locked();
	}
	pthread_mutex_unlock(&act_mu);

	/* The control thread blocks every signal, so that signals meant for the program reach the
	 * program's threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	Cv.control = true; /* before it runs */
	int rc = pthread_create(&t, NULL, control_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		Cv.control = false;
		fprintf(stderr, "tfprof: warning: cannot start tfprof's control thread (%s); --delay, "
				"--duration and the profile on SIGINT/SIGTERM are off\n", strerror(rc));
		if (A.start_pending) {
			pthread_mutex_lock(&act_mu);
			A.start_pending = false;
			start_locked();
			pthread_mutex_unlock(&act_mu);
		}
		return;
	}
	pthread_detach(t);
	pthread_setname_np(t, "tfprof-control");
	install_signal_handlers();
}

/* ---- CUDA injection ---- */

/* The exit handler that the constructor registers runs too late once libcupti is loaded. The
 * constructor runs before __libc_start_main registers the dynamic linker's finalizer, so exit()
 * runs that finalizer first: it runs the destructors of every library, libcupti's (loaded
 * after this library, so finalized before it) among them, and only then this library's, which
 * is where glibc runs an atexit handler that a library registered. The stop then called into a
 * finalized libcupti: on a real GPU (H200, CUDA 13.0), cuptiActivityDisable crashed at every
 * exit of a program run by tfprof-start. Registered again once CUDA is up and libcupti loaded
 * (from main, in practice), the handler runs before that finalizer and before the exit
 * handlers that libcupti and the CUDA runtime registered earlier, as NVIDIA's injection
 * samples do it. A program that uses CUDA only in its own constructors keeps the late one. The
 * price: exit handlers the program registered before its first CUDA call (C++ static
 * destructors among them) now run after the profile is written, so what they record is not in
 * it. */
void tfprof__activate_cuda_up(void)
{
	static atomic_flag done = ATOMIC_FLAG_INIT;
	if (A.activated && !atomic_flag_test_and_set(&done))
		atexit(at_exit);
}

int InitializeInjection(void)
{
	pthread_mutex_lock(&act_mu);
	A.cuda_initialized = true;
	/* A session that deferred its GPU tracing (ours, or any started for activation) gets it
	 * now; any other session is left alone. */
	tfprof__session_gpu_attach();
	pthread_mutex_unlock(&act_mu);
	/* After the attach, which loaded libcupti: handlers that libcupti registered as it loaded
	 * then run after ours. */
	tfprof__activate_cuda_up();
	return 1;
}
