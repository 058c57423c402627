/* SPDX-License-Identifier: Apache-2.0 */
/* End-to-end tests of the GPU memory timeline through the CUPTI simulator: a session records a
 * training loop that allocates with cudaMalloc, cudaMallocAsync, cudaMallocHost and
 * cudaMallocManaged; the written profile must hold, on /host:CPU, the MemoryAllocation and
 * MemoryDeallocation events xprof's Memory Profile reads, with running totals and peaks per
 * allocator equal to the pattern's truth and the scope and step of each call, and on the GPU plane
 * a counter line of bytes in use. Bad input: releases of unknown memory, dropped records, memory
 * tracing switched off, and a million small allocations under a small memory bound. */
#include "cupti_sim.h"
#include "tt.h"

#define MiB (1ll << 20)

static const XLine *memory_line(const XPlane *h)
{
	for (size_t i = 0; i < h->n_lines; i++)
		if (strcmp(h->lines[i]->name, "GPU memory") == 0)
			return h->lines[i];
	return NULL;
}

static int64_t i64_stat(const XPlane *p, const XEvent *e, const char *key)
{
	const XStat *st = tt_event_stat(p, e, key);
	if (!st)
		fail_msg("event %s has no stat %s", tt_event_name(p, e), key);
	assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE);
	return st->int64_value;
}

static const char *str_stat(const XPlane *p, const XEvent *e, const char *key)
{
	const XStat *st = tt_event_stat(p, e, key);
	if (!st)
		fail_msg("event %s has no stat %s", tt_event_name(p, e), key);
	assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE);
	return tt_stat_meta_name(p, st->ref_value);
}

/* xprof skips its own step grouping when any plane has a group_id stat. */
static void assert_no_group_id(const XSpace *s)
{
	for (size_t i = 0; i < s->n_planes; i++)
		for (size_t j = 0; j < s->planes[i]->n_stat_metadata; j++)
			assert_string_not_equal(s->planes[i]->stat_metadata[j]->value->name, "group_id");
}

/* One expected event of the pattern. */
struct want {
	const char *name, *allocator, *scope, *region;
	int64_t bytes, in_use, peak, step;
};

static void test_training_loop_pattern(void **state)
{
	(void)state;
	struct tfsim_device_desc d = { .name = "Sim GPU", .global_memory_bytes = 1ll << 30 };
	int dev = tfsim_device_add(&d);
	uint32_t stream = tfsim_stream_create(dev);
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	struct want w[64];
	size_t nw = 0;
	int64_t dev_use = 0, dev_peak = 0;
	uint64_t weights, staging, managed;
	{
		TFPROF_SCOPE("init");
		weights = tfsim_malloc(dev, 64 * MiB);
		dev_use = dev_peak = 64 * MiB;
		w[nw++] = (struct want){ "MemoryAllocation", "GPU_0_device", "init", "device", 64 * MiB, dev_use, dev_peak, -1 };
		staging = tfsim_malloc_ex(&(struct tfsim_alloc){ .device = dev, .kind = TFSIM_MEM_PINNED, .bytes = 8 * MiB }, NULL);
		w[nw++] = (struct want){ "MemoryAllocation", "GPU_0_pinned", "init", "pinned", 8 * MiB, 8 * MiB, 8 * MiB, -1 };
		managed = tfsim_malloc_managed(dev, 16 * MiB);
		w[nw++] = (struct want){ "MemoryAllocation", "GPU_0_managed", "init", "managed", 16 * MiB, 16 * MiB, 16 * MiB, -1 };
	}
	assert_true(weights && staging && managed);
	for (int step = 0; step < 3; step++) {
		TFPROF_SCOPE("Train", TFPROF_I64("step_num", step));
		uint64_t act, grad;
		{
			TFPROF_SCOPE("forward");
			act = tfsim_malloc_async(stream, 256 * MiB);
			dev_use += 256 * MiB;
			dev_peak = dev_use > dev_peak ? dev_use : dev_peak;
			w[nw++] = (struct want){ "MemoryAllocation", "GPU_0_device", "forward", "device/stream-ordered",
						 256 * MiB, dev_use, dev_peak, step };
		}
		{
			TFPROF_SCOPE("backward");
			grad = tfsim_malloc(dev, 64 * MiB);
			dev_use += 64 * MiB;
			dev_peak = dev_use > dev_peak ? dev_use : dev_peak;
			w[nw++] = (struct want){ "MemoryAllocation", "GPU_0_device", "backward", "device", 64 * MiB,
						 dev_use, dev_peak, step };
			assert_int_not_equal(tfsim_free_async(stream, act), 0);
			dev_use -= 256 * MiB;
			w[nw++] = (struct want){ "MemoryDeallocation", "GPU_0_device", "backward",
						 "device/stream-ordered", 256 * MiB, dev_use, dev_peak, step };
		}
		{
			TFPROF_SCOPE("optimizer");
			assert_int_not_equal(tfsim_free(grad), 0);
			dev_use -= 64 * MiB;
			w[nw++] = (struct want){ "MemoryDeallocation", "GPU_0_device", "optimizer", "device", 64 * MiB,
						 dev_use, dev_peak, step };
			assert_int_not_equal(tfsim_malloc(dev, 1 * MiB), 0); /* the leak */
			dev_use += 1 * MiB;
			w[nw++] = (struct want){ "MemoryAllocation", "GPU_0_device", "optimizer", "device", 1 * MiB,
						 dev_use, dev_peak, step };
		}
	}
	XSpace *s = tt_stop_and_read();
	assert_int_equal(s->n_errors, 0);
	assert_int_equal(s->n_warnings, 0);
	assert_no_group_id(s);
	const XPlane *h = tt_host(s);
	const XLine *l = memory_line(h);
	assert_non_null(l);
	assert_int_equal(l->n_events, nw);
	int64_t last = INT64_MIN;
	for (size_t i = 0; i < nw; i++) {
		const XEvent *e = l->events[i];
		assert_string_equal(tt_event_name(h, e), w[i].name);
		assert_true(tt_event_start_ps(l, e) >= last);
		last = tt_event_start_ps(l, e);
		assert_int_equal(e->duration_ps, 0);
		assert_string_equal(str_stat(h, e, "allocator_name"), w[i].allocator);
		assert_string_equal(str_stat(h, e, "tf_op"), w[i].scope);
		assert_string_equal(str_stat(h, e, "region_type"), w[i].region);
		assert_int_equal(i64_stat(h, e, "allocation_bytes"), w[i].bytes);
		assert_int_equal(i64_stat(h, e, "requested_bytes"), w[i].bytes);
		assert_int_equal(i64_stat(h, e, "bytes_allocated"), w[i].in_use);
		assert_int_equal(i64_stat(h, e, "peak_bytes_in_use"), w[i].peak);
		assert_true(i64_stat(h, e, "addr") != 0);
		if (w[i].step >= 0)
			assert_int_equal(i64_stat(h, e, "tfprof_step_num"), w[i].step);
		else
			assert_null(tt_event_stat(h, e, "tfprof_step_num"));
		/* The Memory Profile takes an allocator's id from the last of these it sees. */
		assert_null(tt_event_stat(h, e, "device_ordinal"));
		assert_null(tt_event_stat(h, e, "index_on_host"));
		/* No correlation_id: on a host event it would make xprof take it for a launch. */
		assert_null(tt_event_stat(h, e, "correlation_id"));
		if (strcmp(w[i].allocator, "GPU_0_device") == 0)
			assert_int_equal(i64_stat(h, e, "bytes_available"), (1ll << 30) - w[i].in_use);
	}
	/* The counter the trace viewer draws: one event per change, the last at the state at stop. */
	const XLine *c = NULL;
	for (size_t i = 0; i < h->n_lines; i++)
		if (strcmp(h->lines[i]->name, "_counters_") == 0)
			c = h->lines[i];
	assert_non_null(c);
	assert_int_equal(tt_count_events(h, "GPU:0 memory in use (bytes)"), nw);
	assert_int_equal(tt_count_events(h, "GPU:0 memory pool size (bytes)"), 1);
	const XEvent *end = NULL;
	for (size_t i = 0; i < c->n_events; i++)
		if (strcmp(tt_event_name(h, c->events[i]), "GPU:0 memory in use (bytes)") == 0)
			end = c->events[i];
	assert_int_equal(i64_stat(h, end, "device"), 64 * MiB + 3 * MiB);
	assert_int_equal(i64_stat(h, end, "pinned"), 8 * MiB);
	assert_int_equal(i64_stat(h, end, "managed"), 16 * MiB);
	const XPlane *g = tt_plane(s, "/device:GPU:0");
	assert_non_null(g);
	/* Memory events stay off the stream lines. */
	assert_int_equal(tt_count_events(g, "CUPTI overhead"), 0);
	/* The allocation calls are host events carrying the records' correlation ids. */
	assert_int_equal(tt_count_events(h, "cudaMallocAsync"), 3);
	assert_int_equal(tt_count_events(h, "cudaFreeAsync"), 3);
	tt_check_well_formed(s);
	tt_xspace_free(s);
}

static void test_unknown_release(void **state)
{
	(void)state;
	int dev = tfsim_device_add(NULL);
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	uint64_t a = tfsim_malloc(dev, 4 * MiB);
	/* Allocated before the session: its release must not take the total below zero. */
	assert_int_not_equal(tfsim_free_unknown(dev, 0x7000000000ull, 100 * MiB), 0);
	tfsim_free(a);
	XSpace *s = tt_stop_and_read();
	assert_int_equal(tt_warning_count(s, "GPU memory release"), 1);
	const XPlane *h = tt_host(s);
	const XLine *l = memory_line(h);
	assert_non_null(l);
	assert_int_equal(l->n_events, 3);
	assert_int_equal(i64_stat(h, l->events[1], "tfprof_unmatched_release"), 1);
	assert_int_equal(i64_stat(h, l->events[1], "bytes_allocated"), 4 * MiB);
	assert_int_equal(i64_stat(h, l->events[2], "bytes_allocated"), 0);
	assert_int_equal(i64_stat(h, l->events[2], "peak_bytes_in_use"), 4 * MiB);
	assert_null(tt_event_stat(h, l->events[2], "tfprof_unmatched_release"));
	tt_xspace_free(s);
}

static void test_dropped_records_warn(void **state)
{
	(void)state;
	int dev = tfsim_device_add(NULL);
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	uint64_t a = tfsim_malloc(dev, MiB);
	tfsim_inject(TFSIM_FAULT_DROP_RECORDS, 1);
	uint64_t b = tfsim_malloc(dev, MiB); /* its record is lost */
	tfsim_free(a);
	tfsim_free(b); /* a release of memory the profile never saw allocated */
	XSpace *s = tt_stop_and_read();
	assert_non_null(tt_find_msg(s->warnings, s->n_warnings, "GPU memory totals may miss"));
	assert_int_equal(tt_warning_count(s, "GPU memory release"), 1);
	const XPlane *h = tt_host(s);
	const XLine *l = memory_line(h);
	assert_int_equal(l->n_events, 3);
	for (size_t i = 0; i < l->n_events; i++)
		assert_true(i64_stat(h, l->events[i], "bytes_allocated") >= 0);
	tt_xspace_free(s);
}

static void test_memory_off(void **state)
{
	(void)state;
	int dev = tfsim_device_add(NULL);
	setenv("TFPROF_GPU_MEMORY", "0", 1);
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	tfsim_free(tfsim_malloc(dev, MiB));
	tfsim_launch_kernel(tfsim_null_stream(dev), "_Z1kv", (struct tfsim_dim3){ 1, 1, 1 },
			    (struct tfsim_dim3){ 1, 1, 1 }, 1000);
	XSpace *s = tt_stop_and_read();
	unsetenv("TFPROF_GPU_MEMORY");
	const XPlane *h = tt_host(s);
	assert_null(memory_line(h));
	assert_int_equal(tt_count_events(h, "MemoryAllocation"), 0);
	/* Not even the calls are traced, and the kernels still are. */
	assert_int_equal(tt_count_events(h, "cudaMalloc"), 0);
	assert_int_equal(tt_count_events(tt_plane(s, "/device:GPU:0"), "k()"), 1);
	tt_xspace_free(s);

	/* The session option does the same. */
	TFPROF_OPTIONS(o, .disable_gpu_memory = true);
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	tfsim_free(tfsim_malloc(dev, MiB));
	s = tt_stop_and_read();
	assert_null(memory_line(tt_host(s)));
	tt_xspace_free(s);
}

/* A million small allocations and releases under a 16 MiB bound: what does not fit is dropped
 * and counted, the profile is still written and its totals never go negative. */
static void test_million_small_allocations(void **state)
{
	(void)state;
	int dev = tfsim_device_add(NULL);
	TFPROF_OPTIONS(o, .max_memory = 16u << 20);
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	for (int i = 0; i < 1000000; i++)
		tfsim_free(tfsim_malloc(dev, 64));
	XSpace *s = tt_stop_and_read();
	assert_true(tt_warning_count(s, "dropped because decoded device events") > 0);
	assert_non_null(tt_find_msg(s->warnings, s->n_warnings, "GPU memory totals may miss"));
	const XPlane *h = tt_host(s);
	const XLine *l = memory_line(h);
	assert_non_null(l);
	assert_true(l->n_events > 0 && l->n_events < 2000000);
	long long dropped = tt_warning_count(s, "dropped because decoded device events");
	/* Every record is either in the file or counted as dropped. */
	assert_true((long long)l->n_events + dropped >= 2000000);
	for (size_t i = 0; i < l->n_events; i++) {
		/* A lost release leaves its bytes counted; a lost allocation changes nothing. */
		int64_t v = i64_stat(h, l->events[i], "bytes_allocated");
		assert_true(v >= 0 && v % 64 == 0);
	}
	tt_xspace_free(s);
}

static int setup(void **state)
{
	tfsim_reset();
	return tt_setup(state);
}

static int teardown(void **state)
{
	int rc = tt_teardown(state);
	tfsim_reset();
	return rc;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_training_loop_pattern, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropped_records_warn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_million_small_allocations, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
