/* SPDX-License-Identifier: Apache-2.0 */
/* Measures tfprof-report on a large profile: the time and peak memory of reading and summarizing
 * it, per million events, against the target (10 M events in under 5 s, memory under 3x
 * the file's size). The profile is a real tfprof session on the CUPTI simulator (training steps
 * of scopes, kernel launches and copies), so the file has the shape users' files have.
 *
 * Baseline, measured in the same run: protobuf-c unpacking the whole file in one call, which is
 * the least work any reader of the format does before it can look at an event; tfprof-report's
 * time is printed as a ratio to it. Memory is the child's peak resident set (wait4's ru_maxrss),
 * printed as a ratio to the file size.
 *
 *   report_read [--quick] [--events N] [--reps N] [--keep DIR] [--profile FILE] [--compare BIN]
 *
 * --profile reads an existing .xplane.pb (e.g. one --keep left) instead of writing a new one.
 * --compare BIN also runs another tfprof-report (e.g. a build of an older commit) on the same
 * file, alternating with this one in every repetition, and prints a second line with its time
 * and peak memory as ratios to this build's: a before/after measured in one run.
 *
 * One JSON object per line; exits 0 whether or not the targets are met (it is a measurement). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tfprof/tfprof.h>

#include "bench_util.h"
#include "cupti_sim.h"
#include "xplane.pb-c.h"

#define BENCH "\"bench\":\"report_read\""
#define TARGET_S_PER_10M 5.0
#define TARGET_MEM_RATIO 3.0
#define MAX_REPS 9

extern char **environ;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const struct tfsim_dim3 grid = { 1024, 1, 1 }, block = { 256, 1, 1 };
static const char *const kernels[] = {
	"_Z10gemm_tiledILi128ELi64EEvPKfS1_Pfiii", "_Z11relu_kernelPfi", "_Z13softmax_kernelPKfPfi",
	"_Z16layernorm_kernelPKfS0_S0_Pfi", "_Z14dropout_kernelPfPKhfi", "_Z13adam_update_kPfS_S_S_fffi",
};
#define NKERNELS (sizeof kernels / sizeof kernels[0])
#define LAUNCHES_PER_STEP 64

/* One step: an input copy, 64 kernels over three compute streams, the loss copied back. Each
 * launch makes two events (the host API call and the kernel); with the scopes and copies a step
 * is about 140 events. */
static void step(int n, const uint32_t *streams)
{
	TFPROF_SCOPE("train_step", TFPROF_I64("step_num", n));
	{
		TFPROF_SCOPE("load_batch");
		tfsim_memcpy(streams[3], TFSIM_COPY_HTOD, 4u << 20, 0, 1);
	}
	{
		TFPROF_SCOPE("forward_backward");
		for (int i = 0; i < LAUNCHES_PER_STEP; i++)
			tfsim_launch_kernel(streams[i % 3], kernels[i % NKERNELS], grid, block,
					    4000 + 500 * (uint32_t)(i % 7));
	}
	tfsim_memcpy(streams[3], TFSIM_COPY_DTOH, 4, 0, 1);
	tfsim_stream_synchronize(streams[3]);
}

/* Writes the profile and returns its path (malloc'd), or NULL. */
static char *make_profile(const char *logdir, size_t events)
{
	Dl_info info;
	if (!dladdr((void *)tfsim_reset, &info) || !info.dli_fname) {
		fprintf(stderr, "report_read: cannot find the CUPTI simulator's path\n");
		return NULL;
	}
	setenv("TFPROF_CUPTI_LIBRARY", info.dli_fname, 1);
	tfsim_reset();
	int dev = tfsim_device_add(NULL);
	uint32_t streams[4];
	for (int i = 0; i < 4; i++)
		streams[i] = tfsim_stream_create(dev);
	/* Room for every event: about 100 bytes each on the host and in the decoded device events. */
	TFPROF_OPTIONS(o, .run_name = "bench", .host_name = "bench", .disable_nvtx = true,
		       .max_memory = (events + 1000) * 200, .gpu_buffer_size = 8 << 20, .gpu_buffer_count = 16);
	int rc = tfprof_start(logdir, &o);
	if (rc) {
		fprintf(stderr, "report_read: tfprof_start: %s\n", tfprof_strerror(rc));
		return NULL;
	}
	int steps = (int)(events / (2 * LAUNCHES_PER_STEP + 12)) + 1;
	for (int s = 0; s < steps; s++)
		step(s, streams);
	rc = tfprof_stop();
	if (rc) {
		fprintf(stderr, "report_read: tfprof_stop: %s\n", tfprof_strerror(rc));
		return NULL;
	}
	return strdup(tfprof_last_output());
}

struct file_facts {
	size_t bytes;
	uint64_t events;
	double unpack_s;
};

/* The baseline: read the file and unpack it in one protobuf-c call; counts the events. */
static int unpack_baseline(const char *path, struct file_facts *ff)
{
	double t0 = now_s();
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		return -1;
	uint8_t *buf = malloc((size_t)st.st_size);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		free(buf);
		return -1;
	}
	Tensorflow__Profiler__XSpace *s = tensorflow__profiler__xspace__unpack(NULL, got, buf);
	ff->unpack_s = now_s() - t0;
	free(buf);
	if (!s)
		return -1;
	ff->bytes = got;
	ff->events = 0;
	for (size_t p = 0; p < s->n_planes; p++)
		for (size_t l = 0; l < s->planes[p]->n_lines; l++)
			ff->events += s->planes[p]->lines[l]->n_events;
	tensorflow__profiler__xspace__free_unpacked(s, NULL);
	return 0;
}

/* Runs fn in a child process and returns what it wrote into out (n bytes), so that the memory
 * the session and the baseline take never shows in this process: a spawned child's peak RSS
 * (ru_maxrss) starts from the spawning process's peak, since the child shares its memory until
 * it execs. */
static int in_child(void (*fn)(void *arg, void *out), void *arg, void *out, size_t n)
{
	int fd[2];
	if (pipe(fd))
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(fd[0]);
		memset(out, 0, n);
		fn(arg, out);
		ssize_t w = write(fd[1], out, n);
		_exit(w == (ssize_t)n ? 0 : 1);
	}
	close(fd[1]);
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd[0], (char *)out + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd[0]);
	int status;
	waitpid(pid, &status, 0);
	return got == n && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

struct gen_args {
	const char *logdir;
	size_t events;
};

struct gen_out {
	char path[4096];
	double seconds;
};

static void gen_child(void *arg, void *out)
{
	const struct gen_args *a = arg;
	struct gen_out *o = out;
	double t0 = now_s();
	char *p = make_profile(a->logdir, a->events);
	o->seconds = now_s() - t0;
	if (p && strlen(p) < sizeof o->path)
		strcpy(o->path, p);
	free(p);
}

static void unpack_child(void *arg, void *out)
{
	struct file_facts *ff = out;
	if (unpack_baseline(arg, ff))
		ff->bytes = 0;
}

/* Runs tfprof-report ARGS with stdout to /dev/null; returns its wall time and peak RSS (bytes). */
static int run_report(const char *bin, const char *fmt, const char *path, double *wall, long *maxrss)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	char *argv[] = { (char *)bin, (char *)fmt, (char *)path, NULL };
	pid_t pid;
	double t0 = now_s();
	int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc) {
		fprintf(stderr, "report_read: cannot run %s: %s\n", bin, strerror(rc));
		return -1;
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) != pid)
		return -1;
	*wall = now_s() - t0;
	*maxrss = ru.ru_maxrss * 1024L;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "report_read: %s %s %s failed (status %d)\n", bin, fmt, path, status);
		return -1;
	}
	return 0;
}

/* The CPU's model name from /proc/cpuinfo (JSON-safe), for the context of the figures. */
static void cpu_model(char *out, size_t n)
{
	snprintf(out, n, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) || !colon)
			continue;
		size_t k = 0;
		for (char *c = colon + 1; *c && *c != '\n' && k + 1 < n; c++)
			if (!(k == 0 && *c == ' ') && *c != '"' && *c != '\\')
				out[k++] = *c;
		out[k] = '\0';
		break;
	}
	fclose(f);
}

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

int main(int argc, char **argv)
{
	bool quick = false;
	size_t events = 10000000;
	int reps = 3;
	const char *keep = NULL, *profile = NULL, *compare = NULL;
	const char *bin = TFPROF_REPORT_BIN;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--events") && i + 1 < argc)
			events = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--keep") && i + 1 < argc)
			keep = argv[++i];
		else if (!strcmp(argv[i], "--report") && i + 1 < argc)
			bin = argv[++i];
		else if (!strcmp(argv[i], "--profile") && i + 1 < argc)
			profile = argv[++i];
		else if (!strcmp(argv[i], "--compare") && i + 1 < argc)
			compare = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--quick] [--events N] [--reps N] [--keep DIR] [--report BIN] "
				"[--profile FILE] [--compare BIN]\n", argv[0]);
			return 2;
		}
	}
	if (quick) {
		events = 100000;
		reps = 1;
	}
	if (!events || reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "report_read: --events must be positive and --reps 1..%d\n", MAX_REPS);
		return 2;
	}
	unsetenv("TFPROF_GPU");
	unsetenv("NVTX_INJECTION64_PATH");
	char tmp[] = "/tmp/tfprof-report-read-XXXXXX";
	const char *logdir = keep;
	if (!logdir && !(logdir = mkdtemp(tmp))) {
		fprintf(stderr, "report_read: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	struct gen_args ga = { logdir, events };
	struct gen_out go = { .seconds = 0 };
	struct file_facts ff = { 0 };
	if (profile && strlen(profile) < sizeof go.path)
		strcpy(go.path, profile);
	if ((!profile && in_child(gen_child, &ga, &go, sizeof go)) || !go.path[0] ||
	    in_child(unpack_child, go.path, &ff, sizeof ff) || !ff.bytes) {
		fprintf(stderr, "report_read: the profile could not be written or read back\n");
		return 1;
	}
	const char *path = go.path;
	double gen_s = go.seconds;
	double wall[MAX_REPS], base[MAX_REPS], cwall[MAX_REPS];
	long rss = 0, crss = 0;
	for (int r = 0; r < reps; r++) {
		long m;
		if (r && (in_child(unpack_child, go.path, &ff, sizeof ff) || !ff.bytes))
			return 1;
		base[r] = ff.unpack_s;
		if (run_report(bin, "--json", path, &wall[r], &m))
			return 1;
		if (m > rss)
			rss = m;
		if (compare && run_report(compare, "--json", path, &cwall[r], &m))
			return 1;
		if (compare && m > crss)
			crss = m;
	}
	char cpu[128];
	cpu_model(cpu, sizeof cpu);
	double w = median(wall, reps), b = median(base, reps);
	double per_m = w / ((double)ff.events / 1e6);
	double mem_ratio = (double)rss / (double)ff.bytes;
	bool time_pass = per_m * 10 <= TARGET_S_PER_10M, mem_pass = mem_ratio <= TARGET_MEM_RATIO;
	printf("{" BENCH ",\"events\":%" PRIu64 ",\"file_bytes\":%zu,\"bytes_per_event\":%.1f,"
	       "\"generate_s\":%.2f,\"report_s\":%.3f,\"report_s_per_million\":%.3f,"
	       "\"report_s_per_10m\":%.2f,\"target_s_per_10m\":%.1f,\"time_pass\":%s,"
	       "\"baseline_unpack_s\":%.3f,\"ratio_to_unpack\":%.2f,"
	       "\"peak_rss_bytes\":%ld,\"peak_rss_per_million\":%.0f,\"mem_ratio_to_file\":%.2f,"
	       "\"target_mem_ratio\":%.1f,\"mem_pass\":%s,\"reps\":%d,\"cpu\":\"%s\"%s}\n",
	       ff.events, ff.bytes, (double)ff.bytes / (double)ff.events, gen_s, w, per_m, per_m * 10,
	       TARGET_S_PER_10M, time_pass ? "true" : "false", b, w / b, rss,
	       (double)rss / ((double)ff.events / 1e6), mem_ratio, TARGET_MEM_RATIO,
	       mem_pass ? "true" : "false", reps, cpu, quick ? ",\"quick\":true" : "");
	if (compare) {
		double cw = median(cwall, reps);
		printf("{" BENCH ",\"compare\":\"%s\",\"file_bytes\":%zu,\"report_s\":%.3f,"
		       "\"compare_report_s\":%.3f,\"time_ratio_to_compare\":%.2f,\"peak_rss_bytes\":%ld,"
		       "\"compare_peak_rss_bytes\":%ld,\"rss_ratio_to_compare\":%.2f,"
		       "\"compare_mem_ratio_to_file\":%.2f,\"reps\":%d,\"cpu\":\"%s\"}\n",
		       compare, ff.bytes, w, cw, w / cw, rss, crss, (double)rss / (double)crss,
		       (double)crss / (double)ff.bytes, reps, cpu);
	}
	if (keep)
		fprintf(stderr, "report_read: profile kept at %s\n", path);
	else if (!profile)
		nftw(logdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
