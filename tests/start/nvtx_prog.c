/* SPDX-License-Identifier: Apache-2.0 */
/* An unmodified program for the tfprof-start tests: it uses only NVTX (no tfprof call, not linked
 * to tfprof) and ends in the way its first argument says, so that the tests can check what
 * tfprof-start records for each exit path, fork, exec and time window.
 *
 * Usage: nvtx_prog MODE [ARG]. Every mode first records "outer" with three "inner" ranges.
 *   return [N]  return N (default 0) from main
 *   exit        exit(3)
 *   sigint, sigterm  open "open_at_signal", send the signal to itself and wait to be killed
 *   sigterm_return   the same with SIGTERM, but return 98 from main at once
 *   abort, segv crash
 *   fork        a thread pushes and pops "spin" ranges nonstop while the main thread forks 20
 *               children; each child records "child_range" and calls exit(0). Then "after_fork".
 *   forkexec    one child execs this program with "return"; then "after_fork"
 *   helpers     runs /bin/true, directly and through sh -c, and waits for them
 *   exec_chain K  records "image_<K>", then (K > 0) execs itself in place as exec_chain K-1,
 *               through execv, execvp, execve, execle or execl by turn; at K = 5 it first
 *               calls an exec that fails and records "after_failed_exec"
 *   timed       "phase_a" at 0 s, "phase_b" at 1.0 s, "phase_c" at 2.2 s, each 50 ms
 *   ex          the other NVTX forms: PushEx (ASCII, registered, Unicode, payload), a domain's
 *               push/pop, start/end, marks (three "ex_mark" inside "ex_around_marks", a
 *               domain's registered "ex_registered", and "step 7"), and naming the thread
 *   threads     4 waves of 16 threads, each named "worker_<wave>_<i>", record "worker" around 5
 *               "task" ranges and exit; the first of each wave leaves "left_open" pushed as it
 *               exits. A last thread pushes "still_running" and is still in it when main returns.
 *   vfork       vfork()s a child that execs /bin/true (as Python's subprocess does), waits for
 *               it, then records "after_vfork"
 *   fds DATA LOG MS  a daemon's start: closes descriptors 0..1023, opens /dev/null on 0-2, DATA
 *               (must become 3) and LOG (4, appended to); writes "start read=<n> first=<byte>"
 *               to LOG after reading DATA, sleeps MS ms inside "sleeping", then writes "end"
 *   none        no NVTX at all */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NVTX_AS_SYSTEM_HEADER 1
#include <nvtx3/nvToolsExt.h>

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t))
		;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void standard_ranges(void)
{
	nvtxRangePushA("outer");
	for (int i = 0; i < 3; i++) {
		nvtxRangePushA("inner");
		sleep_ms(1);
		nvtxRangePop();
	}
	nvtxRangePop();
}

static volatile int spinning = 1;

static void *spin(void *arg)
{
	(void)arg;
	while (spinning) {
		nvtxRangePushA("spin");
		nvtxRangePop();
	}
	return NULL;
}

static int do_fork(void)
{
	pthread_t t;
	pthread_create(&t, NULL, spin, NULL);
	sleep_ms(20);
	for (int i = 0; i < 20; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return 10;
		if (pid == 0) {
			/* A child that hangs (on a lock the parent held, or waiting for a thread that does
			 * not exist here) is killed by the alarm, and the parent fails. */
			alarm(10);
			nvtxRangePushA("child_range");
			nvtxRangePop();
			exit(0);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "nvtx_prog: fork child %d ended with status 0x%x\n", i, st);
			return 11;
		}
	}
	spinning = 0;
	pthread_join(t, NULL);
	nvtxRangePushA("after_fork");
	nvtxRangePop();
	return 0;
}

static int do_forkexec(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return 10;
	if (pid == 0) {
		char *args[] = { "nvtx_prog", "return", NULL };
		execv("/proc/self/exe", args);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 11;
	nvtxRangePushA("after_fork");
	nvtxRangePop();
	return 0;
}

/* Runs helpers that record nothing, as programs do (a shell, ldconfig...): /bin/true directly
 * and through sh, each a profiled process of its own. */
static int do_helpers(void)
{
	int bad = 0;
	char *const direct[] = { "true", NULL }, *const viash[] = { "sh", "-c", "true", NULL };
	char *const *cmds[] = { direct, viash };
	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return 12;
		if (pid == 0) {
			execvp(cmds[i][0], cmds[i]);
			_exit(127);
		}
		int st;
		bad |= waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	return bad ? 13 : 0;
}

enum { WAVES = 4, PER_WAVE = 16 };

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	char name[32];
	snprintf(name, sizeof name, "worker_%d_%d", id / PER_WAVE, id % PER_WAVE);
	nvtxNameOsThreadA((uint32_t)syscall(SYS_gettid), name);
	nvtxRangePushA("worker");
	for (int i = 0; i < 5; i++) {
		nvtxRangePushA("task");
		nvtxRangePop();
	}
	nvtxRangePop();
	if (id % PER_WAVE == 0)
		nvtxRangePushA("left_open"); /* and the thread ends with it open */
	return NULL;
}

static void *lingerer(void *arg)
{
	(void)arg;
	nvtxRangePushA("still_running");
	for (;;)
		pause();
	return NULL;
}

static int do_threads(void)
{
	for (int w = 0; w < WAVES; w++) {
		pthread_t t[PER_WAVE];
		for (int i = 0; i < PER_WAVE; i++)
			if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)(w * PER_WAVE + i)))
				return 15;
		for (int i = 0; i < PER_WAVE; i++)
			pthread_join(t[i], NULL);
	}
	pthread_t l;
	if (pthread_create(&l, NULL, lingerer, NULL))
		return 15;
	sleep_ms(20);
	return 0;
}

static void timed_range(const char *name, double at, double t0)
{
	double wait = t0 + at - now_s();
	if (wait > 0)
		sleep_ms((long)(wait * 1000));
	nvtxRangePushA(name);
	sleep_ms(50);
	nvtxRangePop();
}

/* Event attributes of this NVTX version, with nothing set yet. */
static nvtxEventAttributes_t attrs(void)
{
	nvtxEventAttributes_t a = { 0 };
	a.version = NVTX_VERSION;
	a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
	return a;
}

/* Attributes naming an event by an ASCII message, with an int64 payload. */
static nvtxEventAttributes_t ascii_i64(const char *name, int64_t payload)
{
	nvtxEventAttributes_t a = attrs();
	a.messageType = NVTX_MESSAGE_TYPE_ASCII;
	a.message.ascii = name;
	a.payloadType = NVTX_PAYLOAD_TYPE_INT64;
	a.payload.llValue = payload;
	return a;
}

static void do_ex(void)
{
	nvtxEventAttributes_t a = ascii_i64("ex_ascii", -42);
	nvtxRangePushEx(&a);
	nvtxRangePop();

	nvtxDomainHandle_t d = nvtxDomainCreateA("mydomain");
	nvtxStringHandle_t s = nvtxDomainRegisterStringA(d, "ex_registered");
	nvtxEventAttributes_t r = attrs();
	r.messageType = NVTX_MESSAGE_TYPE_REGISTERED;
	r.message.registered = s;
	for (int i = 0; i < 2; i++) {
		nvtxDomainRangePushEx(d, &r);
		nvtxDomainRangePop(d);
	}

	nvtxEventAttributes_t w = attrs();
	w.messageType = NVTX_MESSAGE_TYPE_UNICODE;
	w.message.unicode = L"ex_w\u00e9";
	nvtxRangePushEx(&w);
	nvtxRangePop();

	nvtxRangeId_t id = nvtxRangeStartA("ex_startend");
	sleep_ms(1);
	nvtxRangeEnd(id);

	/* Marks: inside a range and on their own, in each form; one is named like a step. */
	nvtxRangePushA("ex_around_marks");
	nvtxMarkA("ex_mark");
	nvtxMarkW(L"ex_mark");
	nvtxEventAttributes_t m = ascii_i64("ex_mark", 7);
	nvtxMarkEx(&m);
	nvtxRangePop();
	nvtxDomainMarkEx(d, &r);
	nvtxMarkA("step 7");

	nvtxNameOsThreadA((uint32_t)syscall(SYS_gettid), "ex_main_thread");
}

/* Ten steps (0..9) as NVTX ranges, each with a nested "fwd": steps 0..4 are named "Step#<n>",
 * steps 5..9 "train_step" with the number as payload (the two forms the NVTX tool reads as
 * steps). Ranges before and after ("outer"/"inner", "after_steps") are outside any window. */
static void do_steps(void)
{
	for (int i = 0; i < 10; i++) {
		if (i < 5) {
			char name[32];
			snprintf(name, sizeof name, "Step#%d", i);
			nvtxRangePushA(name);
		} else {
			nvtxEventAttributes_t a = attrs();
			a.messageType = NVTX_MESSAGE_TYPE_ASCII;
			a.message.ascii = "train_step";
			a.payloadType = NVTX_PAYLOAD_TYPE_INT32;
			a.payload.iValue = i;
			nvtxRangePushEx(&a);
		}
		nvtxRangePushA("fwd");
		nvtxRangePop();
		nvtxRangePop();
	}
	nvtxRangePushA("after_steps");
	nvtxRangePop();
}

/* A real invalid store. Exempt from UndefinedBehaviorSanitizer, which would otherwise report the
 * null store and exit instead of letting the program die of SIGSEGV (scripts/test's sanitized
 * run). */
__attribute__((noinline, no_sanitize_undefined)) static int crash_segv(void)
{
	volatile int *volatile p = NULL; /* volatile: the compiler may not see the crash coming */
	*p = 1;
	return 99;
}

extern char **environ;

static int do_exec_chain(int k)
{
	char name[32], next[16];
	snprintf(name, sizeof name, "image_%d", k);
	nvtxRangePushA(name);
	nvtxRangePop();
	if (k <= 0)
		return 0;
	if (k == 5) {
		char *bad[] = { "nvtx_prog", NULL };
		if (execv("/nonexistent/nvtx_prog", bad) != -1 || errno != ENOENT)
			return 30;
		nvtxRangePushA("after_failed_exec");
		nvtxRangePop();
	}
	/* Replaced in place (same pid), as a wrapper script's exec does. */
	snprintf(next, sizeof next, "%d", k - 1);
	const char *self = "/proc/self/exe";
	char *args[] = { "nvtx_prog", "exec_chain", next, NULL };
	switch (k % 5) {
	case 0: execv(self, args); break;
	case 4: execvp(self, args); break;
	case 3: execve(self, args, environ); break;
	case 2: execle(self, "nvtx_prog", "exec_chain", next, (char *)NULL, environ); break;
	case 1: execl(self, "nvtx_prog", "exec_chain", next, (char *)NULL); break;
	}
	return 31;
}

static int do_fds(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	for (int fd = 0; fd < 1024; fd++)
		close(fd);
	for (int fd = 0; fd < 3; fd++)
		if (open("/dev/null", O_RDWR) != fd)
			return 20;
	int data = open(argv[2], O_RDONLY), log = open(argv[3], O_WRONLY | O_APPEND);
	if (data != 3 || log != 4)
		return 21;
	char buf[4096];
	ssize_t n = read(data, buf, sizeof buf);
	dprintf(log, "start read=%zd first=%d\n", n, n > 0 ? buf[0] : -1);
	nvtxRangePushA("sleeping");
	sleep_ms(atol(argv[4]));
	nvtxRangePop();
	dprintf(log, "end\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "return";
	double t0 = now_s();
	if (strcmp(mode, "none") == 0)
		return 0;
	if (strcmp(mode, "timed") != 0)
		standard_ranges();
	if (strcmp(mode, "return") == 0)
		return argc > 2 ? atoi(argv[2]) : 0;
	if (strcmp(mode, "exit") == 0)
		exit(3);
	if (strcmp(mode, "sigint") == 0 || strcmp(mode, "sigterm") == 0) {
		nvtxRangePushA("open_at_signal");
		kill(getpid(), strcmp(mode, "sigint") == 0 ? SIGINT : SIGTERM);
		sleep_ms(10000);
		return 99; /* the signal should have ended the program */
	}
	if (strcmp(mode, "sigterm_return") == 0) {
		/* Returns at once, while tfprof's control thread is still writing the profile. */
		nvtxRangePushA("open_at_signal");
		kill(getpid(), SIGTERM);
		return 98;
	}
	if (strcmp(mode, "abort") == 0)
		abort();
	if (strcmp(mode, "segv") == 0)
		return crash_segv();
	if (strcmp(mode, "fork") == 0)
		return do_fork();
	if (strcmp(mode, "forkexec") == 0)
		return do_forkexec();
	if (strcmp(mode, "helpers") == 0)
		return do_helpers();
	if (strcmp(mode, "exec_chain") == 0)
		return do_exec_chain(argc > 2 ? atoi(argv[2]) : 0);
	if (strcmp(mode, "timed") == 0) {
		timed_range("phase_a", 0.0, t0);
		timed_range("phase_b", 1.0, t0);
		timed_range("phase_c", 2.2, t0);
		return 0;
	}
	if (strcmp(mode, "steps") == 0) {
		do_steps();
		return 0;
	}
	if (strcmp(mode, "threads") == 0)
		return do_threads();
	if (strcmp(mode, "vfork") == 0) {
		pid_t pid = vfork();
		if (pid == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		int status;
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
			return 40;
		nvtxRangePushA("after_vfork");
		nvtxRangePop();
		return 0;
	}
	if (strcmp(mode, "fds") == 0)
		return do_fds(argc, argv);
	if (strcmp(mode, "ex") == 0) {
		do_ex();
		return 0;
	}
	fprintf(stderr, "nvtx_prog: unknown mode %s\n", mode);
	return 2;
}
