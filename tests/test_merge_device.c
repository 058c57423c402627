/* SPDX-License-Identifier: Apache-2.0 */
/* End-to-end tests of GPU timelines through the CUPTI simulator: a session records host scopes
 * while simulated work runs on several devices and streams; the written profile must hold
 * /device:GPU planes with the right lines, names and stats, every device event correlated to
 * exactly one host launch on the launching thread's line, nested in its step scope, and every
 * failure mode must leave a host-only profile with the reason in errors. */
#include <pthread.h>

#include "cupti_sim.h"
#include "device_events.h"
#include "launch_map.h"
#include "merge.h"
#include "tt.h"
#include "xspace_write.h"

static char *logdir;

static int setup(void **state)
{
	(void)state;
	tfsim_reset();
	logdir = tt_scratch_dir("gpu");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (tfprof_enabled())
		tfprof_stop();
	tfsim_reset();
	tt_rm_rf(logdir);
	free(logdir);
	return 0;
}

static const struct tfsim_dim3 G = { 64, 2, 1 }, B = { 128, 1, 1 };

static const XPlane *gpu_plane(const XSpace *s, int ordinal)
{
	char name[32];
	snprintf(name, sizeof name, "/device:GPU:%d", ordinal);
	return tt_plane(s, name);
}

static const XStat *need_stat(const XPlane *p, const XEvent *e, const char *key)
{
	const XStat *st = tt_event_stat(p, e, key);
	if (!st)
		fail_msg("event %s has no stat %s", tt_event_name(p, e), key);
	return st;
}

static const char *str_stat(const XPlane *p, const XEvent *e, const char *key)
{
	const XStat *st = need_stat(p, e, key);
	assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE);
	return tt_stat_meta_name(p, st->ref_value);
}

/* Finds the host event with this correlation id; fails unless there is exactly one. */
static void find_launch(const XSpace *s, uint64_t corr, const XLine **line, const XEvent **ev)
{
	const XPlane *h = tt_host(s);
	int found = 0;
	for (size_t i = 0; i < h->n_lines; i++)
		for (size_t j = 0; j < h->lines[i]->n_events; j++) {
			const XEvent *e = h->lines[i]->events[j];
			const XStat *c = tt_event_stat(h, e, "correlation_id");
			if (c && c->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE &&
			    c->uint64_value == corr) {
				*line = h->lines[i];
				*ev = e;
				found++;
			}
		}
	assert_int_equal(found, 1);
}

/* The host event on line l that is the innermost "Train" step around event e. */
static const XEvent *enclosing_step(const XPlane *h, const XLine *l, const XEvent *e)
{
	const XEvent *best = NULL;
	for (size_t i = 0; i < l->n_events; i++) {
		const XEvent *c = l->events[i];
		if (strcmp(tt_event_name(h, c), "Train") == 0 &&
		    tt_event_start_ps(l, c) <= tt_event_start_ps(l, e) && tt_event_end_ps(l, c) >= tt_event_end_ps(l, e))
			best = c;
	}
	return best;
}

static void test_train_loop_timeline(void **state)
{
	(void)state;
	struct tfsim_device_desc d = { .name = "Sim A100", .cc_major = 8, .cc_minor = 0, .sm_count = 108,
				       .global_memory_bytes = 40ull << 30, .memory_bandwidth = 1555000000000ull,
				       .core_clock_khz = 1410000 };
	int dev = tfsim_device_add(&d);
	uint32_t compute = tfsim_stream_create(dev), copy = tfsim_stream_create(dev);
	assert_int_equal(tfprof_start(logdir, NULL), 0);
	uint32_t kcorr[5][2];
	for (int step = 0; step < 5; step++) {
		TFPROF_SCOPE("Train", TFPROF_I64("step_num", step));
		tfsim_memcpy(copy, TFSIM_COPY_HTOD, 1 << 20, 0, 1);
		{
			TFPROF_SCOPE("forward");
			kcorr[step][0] = tfsim_launch_kernel(compute, "_Z4gemmPKfS0_Pfi", G, B, 50000);
		}
		{
			TFPROF_SCOPE("backward");
			kcorr[step][1] = tfsim_launch_kernel(compute, "_Z4reluPfi", G, B, 20000);
			tfsim_memset(compute, 4096, 0, 0);
		}
		tfsim_memcpy(copy, TFSIM_COPY_DTOH, 4, 0, 0);
	}
	XSpace *s = tt_stop_and_read();
	assert_int_equal(s->n_errors, 0);
	const XPlane *h = tt_host(s);
	const XPlane *g = gpu_plane(s, dev);
	assert_non_null(g);
	assert_int_equal(g->id, dev);
	/* Device properties as plane stats. */
	assert_string_equal(tt_stat_meta_name(g, tt_plane_stat(g, "gpu_device_name")->ref_value), "Sim A100");
	assert_string_equal(tt_stat_meta_name(g, tt_plane_stat(g, "device_vendor")->ref_value), "Nvidia");
	assert_int_equal(tt_plane_stat(g, "core_count")->int64_value, 108);
	assert_int_equal(tt_plane_stat(g, "compute_cap_major")->int64_value, 8);
	assert_int_equal(tt_plane_stat(g, "compute_cap_minor")->int64_value, 0);
	assert_int_equal(tt_plane_stat(g, "clock_rate")->int64_value, 1410000);
	assert_int_equal(tt_plane_stat(g, "memory_size")->int64_value, 40ll << 30);
	/* CUPTI reports bandwidth in KB/s; the plane says bytes/s. */
	assert_true(llabs(tt_plane_stat(g, "memory_bandwidth")->int64_value - 1555000000000ll) <= 1000);

	/* Lines per stream, named by what ran on them. */
	const XLine *lc = tt_line(g, compute), *lk = tt_line(g, copy);
	assert_non_null(lc);
	assert_non_null(lk);
	char want[64];
	snprintf(want, sizeof want, "Stream #%u(Compute,Memset)", compute);
	assert_string_equal(lc->name, want);
	snprintf(want, sizeof want, "Stream #%u(MemcpyH2D,MemcpyD2H)", copy);
	assert_string_equal(lk->name, want);
	assert_int_equal(lc->n_events, 15);
	assert_int_equal(lk->n_events, 10);
	assert_int_equal(tt_count_events(g, "gemm(float const*, float const*, float*, int)"), 5);
	assert_int_equal(tt_count_events(g, "relu(float*, int)"), 5);
	assert_int_equal(tt_count_events(g, "MemcpyH2D"), 5);
	assert_int_equal(tt_count_events(g, "MemcpyD2H"), 5);
	assert_int_equal(tt_count_events(g, "Memset"), 5);

	/* Every device event: one host launch with its correlation id, on the launching thread's
	 * line, nested in the step scope whose step_num the device event carries. */
	for (size_t li = 0; li < g->n_lines; li++) {
		const XLine *l = g->lines[li];
		for (size_t i = 0; i < l->n_events; i++) {
			const XEvent *e = l->events[i];
			const XStat *corr = need_stat(g, e, "correlation_id");
			assert_int_equal(corr->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE);
			const XLine *hl;
			const XEvent *he;
			find_launch(s, corr->uint64_value, &hl, &he);
			assert_int_equal(hl->id, tt_my_line(s)->id);
			const XEvent *step = enclosing_step(h, hl, he);
			assert_non_null(step);
			assert_int_equal(need_stat(g, e, "step_num")->int64_value,
					 tt_event_stat(h, step, "step_num")->int64_value);
			/* The plane's device and its one context are on the name's metadata, once,
			 * not on each event. */
			assert_null(tt_event_stat(g, e, "device_id"));
			assert_null(tt_event_stat(g, e, "context_id"));
			const XStat *dv = tt_event_metadata_stat(g, e, "device_id");
			assert_non_null(dv);
			assert_int_equal(dv->uint64_value, (uint64_t)dev);
			assert_non_null(tt_event_metadata_stat(g, e, "context_id"));
			/* The device work starts after its launch began. */
			assert_true(tt_event_start_ps(l, e) >= tt_event_start_ps(hl, he));
		}
	}
	/* Launch events on the host are named after the kernel, and the scope is recorded. */
	const XLine *ml = tt_my_line(s);
	size_t gemm_launches = 0;
	for (size_t i = 0; i < ml->n_events; i++)
		gemm_launches += strcmp(tt_event_name(h, ml->events[i]), "gemm(float const*, float const*, float*, int)") == 0;
	assert_int_equal(gemm_launches, 5);
	for (int step = 0; step < 5; step++) {
		for (size_t i = 0; i < lc->n_events; i++) {
			const XEvent *e = lc->events[i];
			uint64_t c = need_stat(g, e, "correlation_id")->uint64_value;
			if (c == kcorr[step][0]) {
				assert_string_equal(str_stat(g, e, "scope_name"), "forward");
				assert_int_equal(need_stat(g, e, "step_num")->int64_value, step);
				const char *det = str_stat(g, e, "kernel_details");
				assert_non_null(strstr(det, "grid:64,2,1 block:128,1,1"));
				assert_non_null(strstr(det, "regs:"));
				/* A100 (cc 8.0: 64 warps, 32 blocks, 164 KiB): 128 threads = 4 warps,
				 * 32 registers: 64/4 = 16 blocks = 64 warps: 100. */
				assert_non_null(strstr(det, " occ_pct:100"));
			} else if (c == kcorr[step][1]) {
				assert_string_equal(str_stat(g, e, "scope_name"), "backward");
			}
		}
	}
	/* The mangled name stays available on the event metadata. */
	bool mangled = false;
	for (size_t i = 0; i < g->n_event_metadata; i++) {
		const Tensorflow__Profiler__XEventMetadata *m = g->event_metadata[i]->value;
		if (strcmp(m->name, "relu(float*, int)") == 0) {
			/* mangled_name, device_id and context_id, each once. */
			assert_int_equal(m->n_stats, 3);
			assert_string_equal(tt_stat_meta_name(g, m->stats[0]->metadata_id), "mangled_name");
			assert_string_equal(tt_stat_meta_name(g, m->stats[0]->ref_value), "_Z4reluPfi");
			mangled = true;
		}
	}
	assert_true(mangled);
	/* Copies carry memcpy_details, memsets Memset_details. */
	for (size_t i = 0; i < lk->n_events; i++) {
		const XEvent *e = lk->events[i];
		const char *det = str_stat(g, e, "memcpy_details");
		if (strcmp(tt_event_name(g, e), "MemcpyH2D") == 0)
			assert_non_null(strstr(det, "size:1048576"));
		assert_non_null(strstr(det, "kind_src:"));
	}
	for (size_t i = 0; i < lc->n_events; i++)
		if (strcmp(tt_event_name(g, lc->events[i]), "Memset") == 0)
			assert_non_null(strstr(str_stat(g, lc->events[i], "Memset_details"), "num_bytes:4096"));
	tt_xspace_free(s);
}

/* The kernel_details of the device event with this correlation id on plane g. */
static const char *details_of(const XPlane *g, uint64_t corr)
{
	for (size_t li = 0; li < g->n_lines; li++)
		for (size_t i = 0; i < g->lines[li]->n_events; i++) {
			const XEvent *e = g->lines[li]->events[i];
			const XStat *c = tt_event_stat(g, e, "correlation_id");
			if (c && c->uint64_value == corr)
				return str_stat(g, e, "kernel_details");
		}
	fail_msg("no kernel with correlation id %llu", (unsigned long long)corr);
	return NULL;
}

static uint32_t launch(uint32_t stream, uint32_t threads, uint16_t regs, int32_t static_shared,
		       uint32_t carveout)
{
	struct tfsim_launch l = { .stream = stream, .name = "_Z4stepv", .grid = { 8, 1, 1 },
				  .block = { threads, 1, 1 }, .duration_ns = 1000, .registers_per_thread = regs,
				  .static_shared_bytes = static_shared, .shared_memory_executed = carveout };
	return tfsim_launch_kernel_ex(&l);
}

/* Theoretical occupancy in kernel_details, from the DEVICE record's limits through the written
 * file: per device (one string per distinct value, never shared across devices with different
 * limits), per carveout, and left out where the device reported no limits. */
static void test_kernel_occupancy(void **state)
{
	(void)state;
	int h100 = tfsim_device_add(NULL); /* 64 warps, 32 blocks, 65536 registers, 228 KiB per SM */
	struct tfsim_device_desc rtx = { .name = "Sim RTX", .cc_major = 8, .cc_minor = 6 };
	int sm86 = tfsim_device_add(&rtx); /* 48 warps, 16 blocks, 65536 registers, 100 KiB per SM */
	struct tfsim_device_desc blind = { .name = "No limits", .no_occupancy_limits = 1 };
	int none = tfsim_device_add(&blind);
	uint32_t s0 = tfsim_stream_create(h100), s1 = tfsim_stream_create(sm86), s2 = tfsim_stream_create(none);
	assert_int_equal(tfprof_start(logdir, NULL), 0);
	uint32_t c[8];
	{
		TFPROF_SCOPE("Train", TFPROF_I64("step_num", 0));
		/* The same launch on all three devices. 33 threads take 2 warps. H100: min(32 blocks,
		 * 64/2 warps, registers 32*32 = 1024 per warp: 64 warps / 2, shared 1 KiB reserve:
		 * 233472/1024) = 32 blocks = 64 of 64 warps: 100. cc 8.6: min(16 blocks, 48/2 = 24,
		 * 32, 102400/1024 = 100) = 16 blocks = 32 of 48 warps: 66.6667. */
		c[0] = launch(s0, 33, 32, 0, 0);
		c[1] = launch(s1, 33, 32, 0, 0);
		c[2] = launch(s2, 33, 32, 0, 0);
		/* H100, 256 threads (8 warps), 128 registers: 4096 per warp, 16 warps per SM: 2 blocks
		 * = 16 of 64 warps: 25. */
		c[3] = launch(s0, 256, 128, 0, 0);
		/* H100, 1 warp with 5000 B static shared: 5000 + 1024 reserved rounded to 128 = 6144.
		 * The default carveout (the record says 228 KiB): 233472/6144 = 38, so 32 blocks = 32
		 * warps: 50. A 100 KiB carveout: 102400/6144 = 16 blocks = 16 warps: 25. */
		c[4] = launch(s0, 32, 32, 5000, 0);
		c[5] = launch(s0, 32, 32, 5000, 100 * 1024);
		c[6] = launch(s0, 32, 32, 5000, 100 * 1024); /* the same string again */
		/* Not even one block fits in 233472 B: left out, never made up. */
		c[7] = launch(s0, 32, 32, 300 * 1024, 0);
	}
	XSpace *s = tt_stop_and_read();
	const XPlane *g0 = gpu_plane(s, h100), *g1 = gpu_plane(s, sm86), *g2 = gpu_plane(s, none);
	assert_non_null(g0);
	assert_non_null(g1);
	assert_non_null(g2);
	assert_string_equal(details_of(g0, c[0]),
			    "regs:32 static_shared:0 dynamic_shared:0 grid:8,1,1 block:33,1,1 occ_pct:100");
	assert_string_equal(details_of(g1, c[1]),
			    "regs:32 static_shared:0 dynamic_shared:0 grid:8,1,1 block:33,1,1 occ_pct:66.6667");
	assert_string_equal(details_of(g2, c[2]), "regs:32 static_shared:0 dynamic_shared:0 grid:8,1,1 block:33,1,1");
	assert_non_null(strstr(details_of(g0, c[3]), "block:256,1,1 occ_pct:25"));
	assert_string_equal(details_of(g0, c[4]),
			    "regs:32 static_shared:5000 dynamic_shared:0 grid:8,1,1 block:32,1,1 occ_pct:50");
	assert_string_equal(details_of(g0, c[5]),
			    "regs:32 static_shared:5000 dynamic_shared:0 grid:8,1,1 block:32,1,1 occ_pct:25");
	assert_string_equal(details_of(g0, c[6]), details_of(g0, c[5]));
	assert_null(strstr(details_of(g0, c[7]), "occ_pct"));
	tt_xspace_free(s);
}

struct launcher {
	uint32_t streams[3];
	int n;
};

static void *launch_thread(void *arg)
{
	struct launcher *l = arg;
	for (int step = 0; step < l->n; step++) {
		TFPROF_SCOPE("Train", TFPROF_I64("step_num", step));
		for (int k = 0; k < 3; k++)
			tfsim_launch_kernel(l->streams[k], "_Z6kernelv", G, B, 3000 + 1000 * k);
	}
	return NULL;
}

static void test_two_devices_three_streams_two_threads(void **state)
{
	(void)state;
	struct launcher ls[2];
	for (int d = 0; d < 2; d++) {
		int dev = tfsim_device_add(NULL);
		for (int k = 0; k < 3; k++)
			ls[d].streams[k] = tfsim_stream_create(dev);
		ls[d].n = 200;
	}
	assert_int_equal(tfprof_start(logdir, NULL), 0);
	pthread_t t[2];
	for (int d = 0; d < 2; d++)
		pthread_create(&t[d], NULL, launch_thread, &ls[d]);
	for (int d = 0; d < 2; d++)
		pthread_join(t[d], NULL);
	XSpace *s = tt_stop_and_read(); /* also checks each stream line nests, sorted by start */
	for (int d = 0; d < 2; d++) {
		const XPlane *g = gpu_plane(s, d);
		assert_non_null(g);
		assert_int_equal(g->n_lines, 3);
		for (int k = 0; k < 3; k++) {
			const XLine *l = tt_line(g, ls[d].streams[k]);
			assert_non_null(l);
			assert_int_equal(l->n_events, 200);
			/* Work on one stream runs in launch order, back to back at most. */
			for (size_t i = 1; i < l->n_events; i++)
				assert_true(tt_event_start_ps(l, l->events[i]) >= tt_event_end_ps(l, l->events[i - 1]));
			for (size_t i = 0; i < l->n_events; i++) {
				const XLine *hl;
				const XEvent *he;
				find_launch(s, need_stat(g, l->events[i], "correlation_id")->uint64_value, &hl, &he);
			}
		}
	}
	assert_int_equal(tt_count_events(tt_host(s), "kernel()"), 2 * 3 * 200);
	tt_xspace_free(s);
}

static const XLine *line_named(const XPlane *p, const char *name)
{
	for (size_t i = 0; i < p->n_lines; i++)
		if (!strcmp(p->lines[i]->name, name))
			return p->lines[i];
	return NULL;
}

/* Two waits for one stream that overlap in part (as when two threads wait for it, one of them
 * after more work was queued) go to two lines, on each of which events nest. The simulator does not block in
 * a synchronize: each wait lasts from the call to the stream's drain, so a second kernel queued
 * between the two waits makes the second end later. */
static void test_overlapping_waits_get_their_own_line(void **state)
{
	(void)state;
	int dev = tfsim_device_add(NULL);
	uint32_t s = tfsim_stream_create(dev);
	assert_int_equal(tfprof_start(logdir, NULL), 0);
	tfsim_launch_kernel(s, "_Z5firstv", G, B, 10000000);
	tfsim_stream_synchronize(s);
	tfsim_launch_kernel(s, "_Z6secondv", G, B, 10000000);
	tfsim_stream_synchronize(s);
	tfsim_stream_synchronize(s); /* inside the second wait: nests in it, on its line */
	XSpace *x = tt_stop_and_read();
	const XPlane *g = gpu_plane(x, 0);
	assert_non_null(g);
	char name[64], name2[64];
	snprintf(name, sizeof name, "Stream #%u synchronization", s);
	snprintf(name2, sizeof name2, "Stream #%u synchronization (2)", s);
	const XLine *a = line_named(g, name), *b = line_named(g, name2);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->n_events, 1);
	assert_int_equal(b->n_events, 2);
	/* tt_stop_and_read() has checked that every line's events nest (support/xspace_read.c). */
	tt_xspace_free(x);
}

static void check_host_only(enum tfsim_fault f, const char *needle)
{
	tfsim_device_add(NULL);
	uint32_t st = tfsim_stream_create(0);
	tfsim_inject(f, 0);
	assert_int_equal(tfprof_start(logdir, NULL), 0);
	{
		TFPROF_SCOPE("Train", TFPROF_I64("step_num", 0));
		tfsim_launch_kernel(st, "_Z1kv", G, B, 1000);
	}
	XSpace *s = tt_stop_and_read();
	assert_null(gpu_plane(s, 0));
	assert_int_equal(tt_count_events(tt_host(s), "Train"), 1);
	const char *err = tt_find_msg(s->errors, s->n_errors, needle);
	if (!err)
		fail_msg("no error mentions \"%s\" (%zu errors)", needle, s->n_errors);
	tt_xspace_free(s);
	tfsim_fault_clear();
}

static void test_no_gpu_falls_back(void **state)
{
	(void)state;
	check_host_only(TFSIM_FAULT_NO_GPU, "GPU");
}

static void test_insufficient_privileges_falls_back(void **state)
{
	(void)state;
	check_host_only(TFSIM_FAULT_INSUFFICIENT_PRIVILEGES, "NVreg_RestrictProfilingToAdminUsers");
}

static void test_second_subscriber_falls_back(void **state)
{
	(void)state;
	check_host_only(TFSIM_FAULT_MULTIPLE_SUBSCRIBERS, "Nsight");
}

static void test_missing_libcupti_falls_back(void **state)
{
	(void)state;
	const char *saved = getenv("TFPROF_CUPTI_LIBRARY");
	char *keep = saved ? strdup(saved) : NULL;
	setenv("TFPROF_CUPTI_LIBRARY", "/nonexistent/libcupti.so", 1);
	assert_int_equal(tfprof_start(logdir, NULL), 0);
	{
		TFPROF_SCOPE("host_only");
	}
	XSpace *s = tt_stop_and_read();
	assert_int_equal(tt_count_events(tt_host(s), "host_only"), 1);
	assert_non_null(tt_find_msg(s->errors, s->n_errors, "TFPROF_CUPTI_LIBRARY"));
	tt_xspace_free(s);
	if (keep) {
		setenv("TFPROF_CUPTI_LIBRARY", keep, 1);
		free(keep);
	}
}

static void test_dropped_records_are_reported(void **state)
{
	(void)state;
	tfsim_device_add(NULL);
	uint32_t st = tfsim_stream_create(0);
	assert_int_equal(tfprof_start(logdir, NULL), 0);
	tfsim_inject(TFSIM_FAULT_DROP_RECORDS, 7);
	for (int i = 0; i < 20; i++)
		tfsim_launch_kernel(st, "_Z1kv", G, B, 1000);
	XSpace *s = tt_stop_and_read();
	assert_int_equal(tt_count_events(gpu_plane(s, 0), "k()"), 13);
	assert_int_equal(tt_warning_count(s, "dropped by CUPTI"), 7);
	tt_xspace_free(s);
}

static void test_session_cycles_with_gpu(void **state)
{
	(void)state;
	tfsim_device_add(NULL);
	uint32_t st = tfsim_stream_create(0);
	for (int c = 0; c < 20; c++) {
		assert_int_equal(tfprof_start(logdir, NULL), 0);
		for (int i = 0; i <= c; i++)
			tfsim_launch_kernel(st, "_Z1kv", G, B, 1000);
		XSpace *s = tt_stop_and_read();
		assert_int_equal(tt_count_events(gpu_plane(s, 0), "k()"), (size_t)c + 1);
		assert_int_equal(tt_count_events(tt_host(s), "k()"), (size_t)c + 1);
		tt_xspace_free(s);
	}
}

/* The merge itself, on a device whose work ran in two contexts: device_id still goes to the
 * names' metadata once, but context_id stays on each event (it differs between them), and each
 * event's is its own. Events of a device with one context carry none (test_train_loop_timeline). */
static void test_two_contexts_keep_context_per_event(void **state)
{
	(void)state;
	struct tfprof__timebase tb;
	tfprof__anchor_take(&tb.begin);
	tb.end = tb.begin;
	tb.end.ticks += 1000000;
	tb.end.mono_ns += 1000000;
	tb.end.real_ns += 1000000;
	enum { N = 6 };
	struct tfprof__dev_chunk *c = calloc(1, sizeof *c + N * sizeof c->ev[0]);
	assert_non_null(c);
	c->n = c->cap = N;
	for (int i = 0; i < N; i++)
		c->ev[i] = (struct tfprof__dev_event){ .kind = TFPROF_DEV_KERNEL, .start = 1000 + 100 * i,
						       .end = 1050 + 100 * i, .correlation_id = 0,
						       .device_id = 3, .context_id = i % 2 ? 7 : 5,
						       .stream_id = 1, .name = 1 };
	char *names[] = { "", "_Z1kv" };
	struct tfprof__gpu_result g = { .active = 1, .events = c, .nevents = N, .names = names, .nnames = 2 };
	g.begin = (struct tfprof__clock_pair){ .collector_ns = 1000, .anchor = tb.begin };
	g.end = (struct tfprof__clock_pair){ .collector_ns = 2000, .anchor = tb.end };
	struct tfprof__profile p;
	struct tfprof__launch_map launches = { 0 };
	assert_int_equal(tfprof__profile_init(&p), 0);
	uint64_t align;
	assert_int_equal(tfprof__merge_device(&p, &tb, &g, &launches, &align), 0);
	uint8_t *buf;
	size_t len;
	assert_int_equal(tfprof__xspace_encode(&p, &buf, &len), 0);
	XSpace *s = tensorflow__profiler__xspace__unpack(NULL, len, buf);
	assert_non_null(s);
	const XPlane *pl = tt_plane(s, "/device:GPU:3");
	assert_non_null(pl);
	const XLine *l = tt_line(pl, 1);
	assert_non_null(l);
	assert_int_equal(l->n_events, N);
	for (size_t i = 0; i < l->n_events; i++) {
		const XEvent *e = l->events[i];
		assert_string_equal(tt_event_name(pl, e), "k()");
		const XStat *ctx = tt_event_stat(pl, e, "context_id");
		assert_non_null(ctx);
		assert_int_equal(ctx->uint64_value, i % 2 ? 7u : 5u);
		assert_null(tt_event_metadata_stat(pl, e, "context_id"));
		assert_null(tt_event_stat(pl, e, "device_id"));
		assert_int_equal(tt_event_metadata_stat(pl, e, "device_id")->uint64_value, 3);
	}
	tensorflow__profiler__xspace__free_unpacked(s, NULL);
	free(buf);
	tfprof__profile_free(&p);
	tfprof__launch_map_free(&launches);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_train_loop_timeline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_devices_three_streams_two_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kernel_occupancy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlapping_waits_get_their_own_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_gpu_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_insufficient_privileges_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_subscriber_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_libcupti_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropped_records_are_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_cycles_with_gpu, setup, teardown),
		cmocka_unit_test(test_two_contexts_keep_context_per_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
