/* SPDX-License-Identifier: Apache-2.0 */
/* Writes the profiles that tests/report checks tfprof-report against, each with a known truth:
 *
 *   make_profiles sim LOGDIR      one host (run "single"): tfprof session on the CUPTI simulator
 *   make_profiles multi LOGDIR    two hosts in run "multi"; hostB's steps take 15 ms longer
 *   make_profiles devbound LOGDIR one host (run "devbound") whose GPU work outlasts every step
 *   make_profiles tfstyle FILE    a hand-built XSpace laid out like TensorFlow's (other metadata
 *                                 ids, no step_num on device events, derived device lines, a
 *                                 launch on an executor thread), every time chosen exactly
 *   make_profiles tfshifted FILE  tfstyle with step_num 1000 and 1001 (none in common with it)
 *   make_profiles tfnosteps FILE  tfstyle without step_num stats: no steps
 *   make_profiles tfepochs FILE   the same layout with two epochs that restart step_num, a nested
 *                                 step marker and device work found by each attribution rule
 *   make_profiles epochs LOGDIR   one host (run "epochs"): 2 epochs of 3 steps restarting
 *                                 step_num, each step two gradient-accumulation micro-steps
 *                                 (nested step scopes) that launch one kernel each
 *   make_profiles multiepochs LOGDIR  two hosts (run "multiepochs"), 2 epochs of 2 steps each;
 *                                 hostB's steps take 6 ms longer
 *   make_profiles memory LOGDIR   one host (run "memory"), 6 steps of mem_session with a 1 MiB leak
 *   make_profiles memleak LOGDIR  the same job (run "memleak") leaking 4 MiB per step
 *   make_profiles memmulti LOGDIR two hosts (run "memmulti"): hostA leaks 1 MiB per step, hostB 3
 *   make_profiles tfmemory FILE   tfstyle's two steps with hand-built MemoryAllocation events:
 *                                 a host allocator, corrupt sizes and releases without allocation
 *   make_profiles tfmemhuge FILE  the same with sizes near 2^63 (must stay non-negative)
 *   make_profiles diffbase LOGDIR / diffslow LOGDIR  runs "base" and "slow" of one job, 30 steps:
 *                                 a 4 MiB H2D copy, matmul 6 ms, relu 1 ms and a 1 ms load_batch
 *                                 scope; in "slow" matmul takes 7.8 ms (30% slower)
 *
 * Simulated device time is deterministic per stream (start = max(stream tail, launch + 5 us),
 * end = start + duration), so in the sim modes each step's device busy time is the sum of the
 * durations on stream A: its first kernel is long enough that everything launched after it
 * queues back to back, and the kernel on stream B runs inside it. The numbers are printed by
 * the Python checker (check_report.py), which holds the expected values; keep the two in sync. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tfprof/tfprof.h>

#include "cupti_sim.h"
#include "xplane.pb-c.h"

static void sleep_us(long us)
{
	struct timespec t = { us / 1000000, (us % 1000000) * 1000 };
	while (nanosleep(&t, &t))
		;
}

static const struct tfsim_dim3 grid = { 64, 1, 1 }, block = { 128, 1, 1 };

/* One step: 20 ms + 300 us kernels, 1 MiB H2D of 50 us, 4 KiB D2H of 10 us and a 1 MiB memset of
 * 20 us on stream A (20380 us busy), 400 us on stream B inside A's first kernel. The first kernel
 * is long so that a host stalled for milliseconds on a loaded machine still launches the rest
 * before it ends (no gaps in the chain, B inside it). */
static void sim_step(int step, uint32_t a, uint32_t b, long host_us, long input_us)
{
	TFPROF_SCOPE("train", TFPROF_I64("step_num", step));
	if (input_us) {
		TFPROF_SCOPE("load_batch");
		sleep_us(input_us);
	}
	tfsim_launch_kernel(a, "_Z7kernelAPfi", grid, block, 20000000);
	tfsim_launch_kernel(b, "_Z7kernelCPfi", grid, block, 400000);
	tfsim_memcpy(a, TFSIM_COPY_HTOD, 1u << 20, 50000, 1);
	tfsim_launch_kernel(a, "_Z7kernelBPfi", grid, block, 300000);
	tfsim_memcpy(a, TFSIM_COPY_DTOH, 4096, 10000, 1);
	tfsim_memset(a, 1u << 20, 0, 20000);
	tfsim_stream_synchronize(a);
	sleep_us(host_us);
}

static int begin(const char *logdir, const char *run, const char *host)
{
	TFPROF_OPTIONS(o, .run_name = run, .host_name = host);
	int rc = tfprof_start(logdir, &o);
	if (rc)
		fprintf(stderr, "make_profiles: tfprof_start: %s\n", tfprof_strerror(rc));
	return rc ? 1 : 0;
}

static int end(void)
{
	int rc = tfprof_stop();
	if (rc) {
		fprintf(stderr, "make_profiles: tfprof_stop: %s\n", tfprof_strerror(rc));
		return 1;
	}
	printf("%s\n", tfprof_last_output());
	return 0;
}

/* Epochs that restart step_num: in epoch e (from 0) every step runs two micro-steps (nested step
 * scopes, as in gradient accumulation, numbered 100 and 101) that launch a kernel of e + 1 ms each
 * on stream a, back to back (busy 2 (e + 1) ms), then the host works for host_us (e + 1) + extra_us.
 * The micro-steps must not become steps of their own. */
static int epochs_session(const char *logdir, const char *run, const char *host, int epochs, int steps,
			  long host_us, long extra_us, uint32_t a)
{
	if (begin(logdir, run, host))
		return 1;
	for (int e = 0; e < epochs; e++)
		for (int s = 0; s < steps; s++) {
			TFPROF_SCOPE("train", TFPROF_I64("step_num", s));
			for (int m = 0; m < 2; m++) {
				TFPROF_SCOPE("micro", TFPROF_I64("step_num", 100 + m));
				tfsim_launch_kernel(a, "_Z4gradPf", grid, block, 1000000u * (uint32_t)(e + 1));
			}
			sleep_us(host_us * (e + 1) + extra_us);
		}
	return end();
}

/* One job's steps: the host loads a batch (1 ms), copies 4 MiB to the device (170 us), runs
 * matmul and relu (1 ms) and waits for the device as cudaStreamSynchronize would (the
 * simulator's device time never blocks the caller, so the wait is slept here). */
static int diff_session(const char *logdir, const char *run, int steps, uint32_t matmul_ns, uint32_t a)
{
	if (begin(logdir, run, "hostA"))
		return 1;
	for (int s = 0; s < steps; s++) {
		TFPROF_SCOPE("train", TFPROF_I64("step_num", s));
		{
			TFPROF_SCOPE("load_batch");
			sleep_us(1000);
		}
		tfsim_memcpy(a, TFSIM_COPY_HTOD, 4u << 20, 170000, 1);
		tfsim_launch_kernel(a, "_Z6matmulPf", grid, block, matmul_ns);
		tfsim_launch_kernel(a, "_Z4reluPf", grid, block, 1000000);
		sleep_us(((long)matmul_ns + 1170000) / 1000 + 10);
	}
	return end();
}

#define MiB (1ull << 20)

/* A training loop's memory: weights (64 MiB, scope "init") and a pinned 8 MiB staging buffer
 * (host memory) before the steps, and a release of 16 MiB the session never saw allocated
 * (made before it began). Each step allocates activations (128 MiB, stream-ordered, scope
 * "forward") and a workspace (32 MiB, "backward"), frees both, then allocates leak_mib MiB
 * ("optimizer") that is never freed. So step s peaks at 64 + 128 + 32 + leak_mib * s MiB of
 * device memory, allocates 160 + leak_mib and frees 160 MiB, and ends with 64 + leak_mib (s + 1)
 * in use; check_report.py computes the same from these numbers. */
static int mem_session(const char *logdir, const char *run, const char *host, int steps, uint64_t leak_mib,
		       int dev, uint32_t a)
{
	if (begin(logdir, run, host))
		return 1;
	{
		TFPROF_SCOPE("init");
		tfsim_malloc(dev, 64 * MiB);
		tfsim_malloc_ex(&(struct tfsim_alloc){ .device = dev, .kind = TFSIM_MEM_PINNED, .bytes = 8 * MiB }, NULL);
		tfsim_free_unknown(dev, 0x10000000, 16 * MiB);
	}
	for (int s = 0; s < steps; s++) {
		TFPROF_SCOPE("train", TFPROF_I64("step_num", s));
		uint64_t act, ws;
		{
			TFPROF_SCOPE("forward");
			act = tfsim_malloc_async(a, 128 * MiB);
			tfsim_launch_kernel(a, "_Z7forwardPf", grid, block, 500000);
		}
		{
			TFPROF_SCOPE("backward");
			ws = tfsim_malloc(dev, 32 * MiB);
			tfsim_launch_kernel(a, "_Z8backwardPf", grid, block, 500000);
			tfsim_free(ws);
			tfsim_free_async(a, act);
		}
		{
			TFPROF_SCOPE("optimizer");
			tfsim_malloc(dev, leak_mib * MiB);
		}
		tfsim_stream_synchronize(a);
		sleep_us(1500);
	}
	return end();
}

static int session(const char *logdir, const char *run, const char *host, int steps, long host_us,
		   long input_us, uint32_t a, uint32_t b, uint32_t long_kernel_ns)
{
	if (begin(logdir, run, host))
		return 1;
	for (int s = 0; s < steps; s++) {
		if (long_kernel_ns) {
			TFPROF_SCOPE("train", TFPROF_I64("step_num", s));
			tfsim_launch_kernel(a, "_Z4longv", grid, block, long_kernel_ns);
			sleep_us(host_us);
		} else {
			sim_step(s, a, b, host_us, input_us);
		}
	}
	return end();
}

/* ---- the TensorFlow-like profile, built message by message ------------------------------ */

typedef Tensorflow__Profiler__XStat XStat;
typedef Tensorflow__Profiler__XEvent XEvent;
typedef Tensorflow__Profiler__XLine XLine;
typedef Tensorflow__Profiler__XPlane XPlane;

static XStat *stat_i64(int64_t key, int64_t v)
{
	XStat *s = calloc(1, sizeof *s);
	tensorflow__profiler__xstat__init(s);
	s->metadata_id = key;
	s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE;
	s->int64_value = v;
	return s;
}

static XStat *stat_u64(int64_t key, uint64_t v)
{
	XStat *s = stat_i64(key, 0);
	s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE;
	s->uint64_value = v;
	return s;
}

static XStat *stat_str(int64_t key, const char *v)
{
	XStat *s = stat_i64(key, 0);
	s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_STR_VALUE;
	s->str_value = (char *)v;
	return s;
}

/* An event from start_us for dur_us, relative to its line's timestamp, with up to two stats. */
static XEvent *event(int64_t meta, double start_us, double dur_us, XStat *s1, XStat *s2)
{
	XEvent *e = calloc(1, sizeof *e);
	tensorflow__profiler__xevent__init(e);
	e->metadata_id = meta;
	e->data_case = TENSORFLOW__PROFILER__XEVENT__DATA_OFFSET_PS;
	e->offset_ps = (int64_t)(start_us * 1e6);
	e->duration_ps = (int64_t)(dur_us * 1e6);
	e->stats = calloc(2, sizeof *e->stats);
	if (s1)
		e->stats[e->n_stats++] = s1;
	if (s2)
		e->stats[e->n_stats++] = s2;
	return e;
}

static XLine *line(int64_t id, const char *name, int64_t ts_ns, XEvent **ev, size_t n)
{
	XLine *l = calloc(1, sizeof *l);
	tensorflow__profiler__xline__init(l);
	l->id = id;
	l->name = (char *)name;
	l->timestamp_ns = ts_ns;
	l->events = ev;
	l->n_events = n;
	return l;
}

static void add_event_meta(XPlane *p, int64_t id, const char *name)
{
	Tensorflow__Profiler__XPlane__EventMetadataEntry *e = calloc(1, sizeof *e);
	tensorflow__profiler__xplane__event_metadata_entry__init(e);
	Tensorflow__Profiler__XEventMetadata *m = calloc(1, sizeof *m);
	tensorflow__profiler__xevent_metadata__init(m);
	m->id = id;
	m->name = (char *)name;
	e->key = id;
	e->value = m;
	p->event_metadata = realloc(p->event_metadata, (p->n_event_metadata + 1) * sizeof *p->event_metadata);
	p->event_metadata[p->n_event_metadata++] = e;
}

static void add_stat_meta(XPlane *p, int64_t id, const char *name)
{
	Tensorflow__Profiler__XPlane__StatMetadataEntry *e = calloc(1, sizeof *e);
	tensorflow__profiler__xplane__stat_metadata_entry__init(e);
	Tensorflow__Profiler__XStatMetadata *m = calloc(1, sizeof *m);
	tensorflow__profiler__xstat_metadata__init(m);
	m->id = id;
	m->name = (char *)name;
	e->key = id;
	e->value = m;
	p->stat_metadata = realloc(p->stat_metadata, (p->n_stat_metadata + 1) * sizeof *p->stat_metadata);
	p->stat_metadata[p->n_stat_metadata++] = e;
}

/* Truth (check_report.py holds the same numbers):
 *   step 0: host [0, 10 ms); step 1: [10, 20 ms)
 *   step 0 device: foo corr 11 [1.1, 2.1) on stream 7, bar corr 12 [1.5, 3.0) on stream 8,
 *     H2D corr 13 (launched on the executor thread, no step scope) [3.0, 3.5) 1000 bytes
 *     -> busy 2.4 ms, idle 7.6 ms, 2 kernels, launches 11, 12, 13 (10 us each) = 30 us
 *   step 1 device: foo corr 21 [11.2, 12.2); foo corr 99 (no launch) [15, 15.5)
 *     -> busy 1.0 ms, idle 8.5 ms, 1 kernel, launch 10 us
 *   The "XLA Ops" line's 18 ms event is not device work. */
static int write_space(const char *path, XPlane *host, XPlane *gpu);

/* The metadata ids both TensorFlow-style profiles use on their host plane. */
enum { S_CORR = 3, S_STEP = 7, S_R = 9, E_TRAIN = 21, E_LAUNCH = 22 };

/* Names host /host:CPU and gives it the stats and events every TensorFlow-style host plane has. */
static void tf_host_plane(XPlane *host)
{
	host->id = 0;
	host->name = "/host:CPU";
	add_stat_meta(host, S_CORR, "correlation_id");
	add_stat_meta(host, S_STEP, "step_num");
	add_stat_meta(host, S_R, "_r");
	add_event_meta(host, E_TRAIN, "train");
	add_event_meta(host, E_LAUNCH, "cudaLaunchKernel");
}

/* first_step: the first step's step_num (tfshifted: 1000, sharing none with tfstyle); steps false
 * leaves the step_num stats out (tfnosteps: a profile without steps). */
static int tfstyle(const char *path, int64_t first_step, bool steps)
{
	enum { S_KDET = 4, S_MDET = 5 };
	enum { E_MEMCPY_API = 23, E_FOO = 1001, E_BAR = 1002, E_H2D = 1003,
	       E_FUSION = 1004 };
	/* Static: the messages stay reachable until exit instead of being freed one by one. */
	static XPlane host = TENSORFLOW__PROFILER__XPLANE__INIT, gpu = TENSORFLOW__PROFILER__XPLANE__INIT;
	tf_host_plane(&host);
	add_event_meta(&host, E_MEMCPY_API, "cudaMemcpyAsync");
	static XEvent *main_ev[6], *exec_ev[1];
	main_ev[0] = event(E_TRAIN, 0, 10000, steps ? stat_i64(S_STEP, first_step) : NULL, stat_i64(S_R, 1));
	main_ev[1] = event(E_LAUNCH, 1000, 10, stat_i64(S_CORR, 11), NULL);
	main_ev[2] = event(E_LAUNCH, 1400, 10, stat_i64(S_CORR, 12), NULL);
	main_ev[3] = event(E_TRAIN, 10000, 10000, steps ? stat_i64(S_STEP, first_step + 1) : NULL, stat_i64(S_R, 1));
	main_ev[4] = event(E_LAUNCH, 11100, 10, stat_i64(S_CORR, 21), NULL);
	/* A nested step_num without _r is not a step of its own. */
	main_ev[5] = event(E_LAUNCH, 11500, 1, steps ? stat_i64(S_STEP, 77) : NULL, NULL);
	exec_ev[0] = event(E_MEMCPY_API, 2900, 10, stat_i64(S_CORR, 13), NULL);
	static XLine *host_lines[2];
	host_lines[0] = line(100, "python", 0, main_ev, 6);
	host_lines[1] = line(200, "tf_executor", 0, exec_ev, 1);
	host.lines = host_lines;
	host.n_lines = 2;

	gpu.id = 0;
	gpu.name = "/device:GPU:0";
	add_stat_meta(&gpu, 1, "kernel_details");
	add_stat_meta(&gpu, 2, "memcpy_details");
	add_stat_meta(&gpu, 6, "correlation_id");
	add_event_meta(&gpu, E_FOO, "_Z3fooPf");
	add_event_meta(&gpu, E_BAR, "_Z3barPf");
	add_event_meta(&gpu, E_H2D, "MemcpyH2D");
	add_event_meta(&gpu, E_FUSION, "fusion.1");
	/* Stream lines start at 1 ms, so their offsets are relative to that. */
	static XEvent *s7[4], *s8[1], *ops[1];
	s7[0] = event(E_FOO, 100, 1000, stat_u64(6, 11), stat_str(1, "regs:32 grid:1,1,1 block:1,1,1"));
	s7[1] = event(E_H2D, 2000, 500, stat_u64(6, 13),
		      stat_str(2, "kind_src:pinned kind_dst:device size:1000 dest:0 async:1"));
	s7[2] = event(E_FOO, 10200, 1000, stat_u64(6, 21), NULL);
	s7[3] = event(E_FOO, 14000, 500, stat_u64(6, 99), NULL);
	s8[0] = event(E_BAR, 500, 1500, stat_u64(6, 12), NULL);
	ops[0] = event(E_FUSION, 0, 18000, NULL, NULL);
	static XLine *gpu_lines[3];
	gpu_lines[0] = line(7, "Stream #7(Compute,MemcpyH2D)", 1000000, s7, 4);
	gpu_lines[1] = line(8, "Stream #8(Compute)", 1000000, s8, 1);
	gpu_lines[2] = line(0xdeadbeef, "XLA Ops", 1000000, ops, 1);
	gpu.lines = gpu_lines;
	gpu.n_lines = 3;

	return write_space(path, &host, &gpu);
}

/* Appends a stat to an event made by event(). */
static void add_stat(XEvent *e, XStat *s)
{
	e->stats = realloc(e->stats, (e->n_stats + 1) * sizeof *e->stats);
	e->stats[e->n_stats++] = s;
}

/* A memory event at t_us on the memory line: allocator, addr, allocation_bytes and, when has_in_use,
 * bytes_allocated; scope NULL leaves tf_op out. */
enum { S_ALLOCATOR = 30, S_IN_USE = 31, S_ABYTES = 32, S_ADDR = 33, S_TFOP = 34, S_UNMATCHED = 35,
       E_MALLOC = 40, E_MFREE = 41 };
static XEvent *mem_event(bool alloc, double t_us, const char *allocator, uint64_t addr, XStat *bytes,
			 XStat *in_use, const char *scope)
{
	XEvent *e = event(alloc ? E_MALLOC : E_MFREE, t_us, 0, stat_str(S_ALLOCATOR, allocator), stat_u64(S_ADDR, addr));
	if (bytes)
		add_stat(e, bytes);
	if (in_use)
		add_stat(e, in_use);
	if (scope)
		add_stat(e, stat_str(S_TFOP, scope));
	return e;
}

/* Truth (check_report.py holds the same): steps [0, 10 ms) and [10, 20 ms); device memory is
 * GPU_0_bfc, gpu_host_bfc is host memory.
 *   0.5 ms  alloc 0x100 1000 B "a" (in use 1000)         1 ms alloc host 0x200 5000 B
 *   2 ms    alloc 0x300 3000 B "b", bytes_allocated -7 (corrupt: derived, 4000)
 *   3 ms    release 0x999 50 B: no allocation (unmatched, nothing changes)
 *   4 ms    alloc 0x400, allocation_bytes -5 (corrupt: 0 B)
 *   12 ms   release 0x300 (3000 B, in use 1000)          13 ms release 0x777 flagged unmatched
 * -> step 0: peak 4000, allocated 4000, freed 0, end 4000; step 1: peak 4000, allocated 0,
 *    freed 3000, end 1000; growth -3000 B/step; run peak 4000 at 2 ms with 0x300 and 0x100 live;
 *    live at stop 0x200 (5000), 0x100 (1000), 0x400 (0); 2 unmatched, 2 corrupt.
 * huge: allocation sizes of 2^63 + 5 and bytes_allocated of INT64_MAX, which must saturate. */
static int tfmemory(const char *path, bool huge)
{
	static XPlane host = TENSORFLOW__PROFILER__XPLANE__INIT, gpu = TENSORFLOW__PROFILER__XPLANE__INIT;
	tf_host_plane(&host);
	add_stat_meta(&host, S_ALLOCATOR, "allocator_name");
	add_stat_meta(&host, S_IN_USE, "bytes_allocated");
	add_stat_meta(&host, S_ABYTES, "allocation_bytes");
	add_stat_meta(&host, S_ADDR, "addr");
	add_stat_meta(&host, S_TFOP, "tf_op");
	add_stat_meta(&host, S_UNMATCHED, "tfprof_unmatched_release");
	add_event_meta(&host, E_MALLOC, "MemoryAllocation");
	add_event_meta(&host, E_MFREE, "MemoryDeallocation");
	static XEvent *main_ev[2], *mem[8];
	main_ev[0] = event(E_TRAIN, 0, 10000, stat_i64(S_STEP, 0), stat_i64(S_R, 1));
	main_ev[1] = event(E_TRAIN, 10000, 10000, stat_i64(S_STEP, 1), stat_i64(S_R, 1));
	size_t n = 0;
	if (huge) {
		mem[n++] = mem_event(true, 500, "GPU_0_bfc", 0x100, stat_u64(S_ABYTES, (1ull << 63) + 5),
				     stat_i64(S_IN_USE, INT64_MAX), "a");
		mem[n++] = mem_event(true, 600, "GPU_0_bfc", 0x200, stat_u64(S_ABYTES, (1ull << 63) + 5), NULL, "b");
		mem[n++] = mem_event(true, 700, "GPU_1_bfc", 0x200, stat_u64(S_ABYTES, UINT64_MAX), NULL, "c");
		mem[n++] = mem_event(false, 12000, "GPU_0_bfc", 0x100, stat_i64(S_ABYTES, INT64_MIN),
				     stat_i64(S_IN_USE, INT64_MIN), NULL);
		mem[n++] = mem_event(false, 13000, "GPU_0_bfc", 0x200, NULL, NULL, NULL);
	} else {
		mem[n++] = mem_event(true, 500, "GPU_0_bfc", 0x100, stat_i64(S_ABYTES, 1000), stat_i64(S_IN_USE, 1000), "a");
		mem[n++] = mem_event(true, 1000, "gpu_host_bfc", 0x200, stat_i64(S_ABYTES, 5000), stat_i64(S_IN_USE, 5000),
				     "h");
		mem[n++] = mem_event(true, 2000, "GPU_0_bfc", 0x300, stat_i64(S_ABYTES, 3000), stat_i64(S_IN_USE, -7), "b");
		mem[n++] = mem_event(false, 3000, "GPU_0_bfc", 0x999, stat_i64(S_ABYTES, 50), NULL, NULL);
		mem[n++] = mem_event(true, 4000, "GPU_0_bfc", 0x400, stat_i64(S_ABYTES, -5), NULL, "c");
		mem[n++] = mem_event(false, 12000, "GPU_0_bfc", 0x300, stat_i64(S_ABYTES, 3000), NULL, NULL);
		mem[n] = mem_event(false, 13000, "GPU_0_bfc", 0x777, stat_i64(S_ABYTES, 10), NULL, NULL);
		add_stat(mem[n++], stat_i64(S_UNMATCHED, 1));
	}
	static XLine *host_lines[2];
	host_lines[0] = line(100, "python", 0, main_ev, 2);
	host_lines[1] = line(0x7fffff00, "GPU memory", 0, mem, n);
	host.lines = host_lines;
	host.n_lines = 2;
	gpu.id = 1;
	gpu.name = "/device:GPU:0";
	return write_space(path, &host, &gpu);
}

/* Writes the space of a host and a GPU plane to path; prints path. */
static int write_space(const char *path, XPlane *host, XPlane *gpu)
{
	Tensorflow__Profiler__XSpace space = TENSORFLOW__PROFILER__XSPACE__INIT;
	XPlane *planes[2] = { host, gpu };
	space.planes = planes;
	space.n_planes = 2;
	size_t n = tensorflow__profiler__xspace__get_packed_size(&space);
	uint8_t *buf = malloc(n);
	tensorflow__profiler__xspace__pack(&space, buf);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, n, f) != n || fclose(f)) {
		fprintf(stderr, "make_profiles: cannot write %s\n", path);
		return 1;
	}
	free(buf);
	printf("%s\n", path);
	return 0;
}

/* Two epochs of two steps, step_num restarting, in TensorFlow's layout (truth in
 * check_report.py, case tfepochs; times in ms):
 *   occurrence 0: step 0 [0, 4), step 1 [4, 8); occurrence 1: step 0 [10, 18), step 1 [18, 26)
 *   step 1 of epoch 1 holds a nested step marker (step_num 7, _r) at [19, 20): not a step.
 *   kernels: corr 1 [1, 2) and corr 2 [5, 6) (launches in the step scopes), corr 3 [11, 14) and
 *   corr 4 [20, 23) likewise; an event with only a step_num stat 0 at [14.5, 15) (its launch is
 *   not in the profile: the occurrence of step 0 begun by then, epoch 1's); corr 5 [23.5, 24)
 *   launched at 19 ms on an executor thread (by time: epoch 1's step 1).
 *   -> busy 1, 1, 3.5, 3.5 ms; attribution 4 by launch scope, 1 by stat, 1 by launch time. */
static int tfepochs(const char *path)
{
	enum { E_MICRO = 24, E_K = 1001 };
	static XPlane host = TENSORFLOW__PROFILER__XPLANE__INIT, gpu = TENSORFLOW__PROFILER__XPLANE__INIT;
	tf_host_plane(&host);
	add_event_meta(&host, E_MICRO, "accumulate");
	static XEvent *main_ev[9], *exec_ev[1];
	static const double starts[4] = { 0, 4000, 10000, 18000 }, durs[4] = { 4000, 4000, 8000, 8000 };
	static const double launch_at[4] = { 900, 4900, 10900, 19900 };
	size_t k = 0;
	for (int i = 0; i < 4; i++) {
		main_ev[k++] = event(E_TRAIN, starts[i], durs[i], stat_i64(S_STEP, i % 2), stat_i64(S_R, 1));
		if (i == 3)
			main_ev[k++] = event(E_MICRO, 19000, 1000, stat_i64(S_STEP, 7), stat_i64(S_R, 1));
		main_ev[k++] = event(E_LAUNCH, launch_at[i], 10, stat_i64(S_CORR, i + 1), NULL);
	}
	exec_ev[0] = event(E_LAUNCH, 19000, 10, stat_i64(S_CORR, 5), NULL);
	static XLine *host_lines[2];
	host_lines[0] = line(100, "python", 0, main_ev, k);
	host_lines[1] = line(200, "tf_executor", 0, exec_ev, 1);
	host.lines = host_lines;
	host.n_lines = 2;

	gpu.name = "/device:GPU:0";
	add_stat_meta(&gpu, 6, "correlation_id");
	add_stat_meta(&gpu, 8, "step_num");
	add_event_meta(&gpu, E_K, "_Z4stepPf");
	static XEvent *s7[6];
	static const double kstart[4] = { 1000, 5000, 11000, 20000 }, kdur[4] = { 1000, 1000, 3000, 3000 };
	for (int i = 0; i < 4; i++)
		s7[i] = event(E_K, kstart[i], kdur[i], stat_u64(6, (uint64_t)i + 1), NULL);
	s7[4] = event(E_K, 14500, 500, stat_i64(8, 0), NULL);
	s7[5] = event(E_K, 23500, 500, stat_u64(6, 5), NULL);
	static XLine *gpu_lines[1];
	gpu_lines[0] = line(7, "Stream #7(Compute)", 0, s7, 6);
	gpu.lines = gpu_lines;
	gpu.n_lines = 1;
	return write_space(path, &host, &gpu);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: make_profiles sim|multi|devbound|tfstyle|tfepochs|epochs|multiepochs|"
				"diffbase|diffslow|tfshifted|tfnosteps|memory|memleak|memmulti|tfmemory|tfmemhuge OUT\n");
		return 2;
	}
	const char *mode = argv[1], *out = argv[2];
	if (strcmp(mode, "tfstyle") == 0)
		return tfstyle(out, 0, true);
	if (strcmp(mode, "tfshifted") == 0)
		return tfstyle(out, 1000, true);
	if (strcmp(mode, "tfnosteps") == 0)
		return tfstyle(out, 0, false);
	if (strcmp(mode, "tfepochs") == 0)
		return tfepochs(out);
	if (strcmp(mode, "tfmemory") == 0)
		return tfmemory(out, false);
	if (strcmp(mode, "tfmemhuge") == 0)
		return tfmemory(out, true);
	Dl_info info;
	if (!dladdr((void *)tfsim_reset, &info) || !info.dli_fname) {
		fprintf(stderr, "make_profiles: cannot find the CUPTI simulator's path\n");
		return 1;
	}
	setenv("TFPROF_CUPTI_LIBRARY", info.dli_fname, 1);
	int dev = tfsim_device_add(NULL);
	uint32_t a = tfsim_stream_create(dev), b = tfsim_stream_create(dev);
	tfprof_set_thread_name("train");
	if (strcmp(mode, "sim") == 0)
		return session(out, "single", "hostA", 4, 25000, 10000, a, b, 0);
	if (strcmp(mode, "multi") == 0)
		return session(out, "multi", "hostA", 3, 30000, 0, a, b, 0) ||
		       session(out, "multi", "hostB", 3, 45000, 0, a, b, 0);
	if (strcmp(mode, "devbound") == 0)
		return session(out, "devbound", "hostA", 3, 1000, 0, a, b, 10000000);
	if (strcmp(mode, "epochs") == 0)
		return epochs_session(out, "epochs", "hostA", 2, 3, 4000, 0, a);
	if (strcmp(mode, "multiepochs") == 0)
		return epochs_session(out, "multiepochs", "hostA", 2, 2, 3000, 0, a) ||
		       epochs_session(out, "multiepochs", "hostB", 2, 2, 3000, 6000, a);
	if (strcmp(mode, "memory") == 0)
		return mem_session(out, "memory", "hostA", 6, 1, dev, a);
	if (strcmp(mode, "memleak") == 0)
		return mem_session(out, "memleak", "hostA", 6, 4, dev, a);
	if (strcmp(mode, "memmulti") == 0)
		return mem_session(out, "memmulti", "hostA", 6, 1, dev, a) ||
		       mem_session(out, "memmulti", "hostB", 6, 3, dev, a);
	if (strcmp(mode, "diffbase") == 0)
		return diff_session(out, "base", 30, 6000000, a);
	if (strcmp(mode, "diffslow") == 0)
		return diff_session(out, "slow", 30, 7800000, a);
	fprintf(stderr, "make_profiles: unknown mode %s\n", mode);
	return 2;
}
