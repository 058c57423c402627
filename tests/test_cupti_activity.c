/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of GPU tracing (cupti/) against the CUPTI simulator: decoding of every record kind,
 * devices, shuffled delivery across devices and streams, every injected failure, a missing or
 * unusable libcupti, the buffer pool and the memory bound, start/stop cycles, and the host
 * events the API callbacks write (one per launch, for each launch entry point, and the
 * runtime-to-driver nesting rule).
 *
 * tfprof loads the simulator through TFPROF_CUPTI_LIBRARY (set here to TFSIM_LIBRARY_PATH, the
 * same file this test links for the tfsim_ API), so both see one simulated GPU. Host recording
 * runs with .disable_gpu so the session does not start GPU tracing itself; the tests drive
 * tfprof__gpu_start/stop directly. The CUPTI headers are used only for constants and for
 * playing callback sequences the simulator does not produce. */
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cupti.h>

#include "activity.h"
#include "callbacks.h"
#include "cupti_sim.h"
#include "gpu.h"
#include "tt.h"

static char *logdir;

static int setup(void **state)
{
	(void)state;
	tfsim_reset();
	setenv("TFPROF_CUPTI_LIBRARY", TFSIM_LIBRARY_PATH, 1);
	unsetenv("TFPROF_CUPTI_BUFFERS");
	unsetenv("TFPROF_CUPTI_BUFFER_KB");
	logdir = tt_scratch_dir("cupti");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (tfprof_enabled())
		tfprof_stop();
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	tfprof__gpu_result_free(&r);
	tfsim_reset();
	tt_rm_rf(logdir);
	free(logdir);
	return 0;
}

/* ---- Helpers -------------------------------------------------------------------------------- */

static void host_start(void)
{
	TFPROF_OPTIONS(o, .disable_gpu = true, .disable_nvtx = true);
	assert_int_equal(tfprof_start(logdir, &o), 0);
}

static void gpu_start_ok(const struct tfprof__gpu_config *cfg)
{
	struct tfprof__gpu_config none = { 0 };
	int rc = tfprof__gpu_start(cfg ? cfg : &none);
	if (rc) {
		struct tfprof__gpu_result r;
		tfprof__gpu_stop(&r);
		fail_msg("tfprof__gpu_start: %d: %s", rc, r.nerrors ? r.errors[0] : "(no message)");
	}
}

/* Host recording off first, then GPU tracing, the order the session uses. */
static void stop_all(struct tfprof__gpu_result *r)
{
	if (tfprof_enabled())
		assert_int_equal(tfprof_stop(), 0);
	tfprof__gpu_stop(r);
}

static size_t count_kind(const struct tfprof__gpu_result *r, uint32_t kind)
{
	size_t n = 0;
	for (const struct tfprof__dev_chunk *c = r->events; c; c = c->next)
		for (size_t i = 0; i < c->n; i++)
			n += c->ev[i].kind == kind;
	return n;
}

static size_t total_events(const struct tfprof__gpu_result *r)
{
	size_t n = 0;
	for (const struct tfprof__dev_chunk *c = r->events; c; c = c->next)
		n += c->n;
	return n;
}

/* The single event of a kind with this correlation id; fails the test when there is not
 * exactly one. */
static const struct tfprof__dev_event *find_one(const struct tfprof__gpu_result *r, uint32_t kind,
						 uint64_t corr)
{
	const struct tfprof__dev_event *found = NULL;
	size_t n = 0;
	for (const struct tfprof__dev_chunk *c = r->events; c; c = c->next)
		for (size_t i = 0; i < c->n; i++)
			if (c->ev[i].kind == kind && c->ev[i].correlation_id == corr) {
				found = &c->ev[i];
				n++;
			}
	if (n != 1)
		fail_msg("%zu events of kind %u with correlation id %llu, expected 1", n, kind,
			 (unsigned long long)corr);
	return found;
}

static const struct tfprof__dev_device *find_device(const struct tfprof__gpu_result *r, uint32_t id)
{
	for (size_t i = 0; i < r->ndevices; i++)
		if (r->devices[i].id == id)
			return &r->devices[i];
	return NULL;
}

static const char *kernel_name(const struct tfprof__gpu_result *r, const struct tfprof__dev_event *e)
{
	assert_true(e->name < r->nnames);
	return r->names[e->name];
}

static bool has_msg(char **msgs, size_t n, const char *needle)
{
	return tt_find_msg(msgs, n, needle) != NULL;
}

static void assert_msg(char **msgs, size_t n, const char *needle)
{
	if (!has_msg(msgs, n, needle)) {
		for (size_t i = 0; i < n; i++)
			print_message("  message: %s\n", msgs[i]);
		fail_msg("no message contains \"%s\"", needle);
	}
}

/* The first number in the message that contains needle, or -1. */
static long long msg_count(char **msgs, size_t n, const char *needle)
{
	const char *m = tt_find_msg(msgs, n, needle);
	if (!m)
		return -1;
	while (*m && (*m < '0' || *m > '9'))
		m++;
	return *m ? atoll(m) : -1;
}

/* Host events (any thread) whose correlation_id stat equals corr. */
static size_t host_events_with_corr(const XSpace *s, uint64_t corr, const XPlane **pl,
				    const XEvent **ev)
{
	const XPlane *p = tt_host(s);
	size_t n = 0;
	for (size_t l = 0; l < p->n_lines; l++)
		for (size_t i = 0; i < p->lines[l]->n_events; i++) {
			const XEvent *e = p->lines[l]->events[i];
			const XStat *st = tt_event_stat(p, e, "correlation_id");
			if (st && st->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE &&
			    st->uint64_value == corr) {
				*ev = e;
				n++;
			}
		}
	*pl = p;
	return n;
}

static const char *stat_str(const XPlane *p, const XEvent *e, const char *key)
{
	const XStat *st = tt_event_stat(p, e, key);
	if (!st)
		return NULL;
	if (st->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_STR_VALUE)
		return st->str_value;
	assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE);
	return tt_stat_meta_name(p, st->ref_value);
}

static uint64_t stat_u64(const XPlane *p, const XEvent *e, const char *key)
{
	const XStat *st = tt_event_stat(p, e, key);
	assert_non_null(st);
	assert_int_equal(st->value_case, TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE);
	return st->uint64_value;
}

/* The one host event for a CUDA call: named name, with its correlation id, device and API. */
static void assert_api_event(const XSpace *s, uint64_t corr, const char *name, const char *api,
			     int64_t device)
{
	const XPlane *p;
	const XEvent *e = NULL;
	size_t n = host_events_with_corr(s, corr, &p, &e);
	if (n != 1)
		fail_msg("%zu host events with correlation_id %llu (%s), expected 1", n,
			 (unsigned long long)corr, name);
	assert_string_equal(tt_event_name(p, e), name);
	assert_string_equal(stat_str(p, e, "cuda_api"), api);
	if (device >= 0)
		assert_int_equal(stat_u64(p, e, "device_id"), (uint64_t)device);
}

/* ---- Record decoding ------------------------------------------------------------------------ */

static void test_kernel_fields(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	assert_int_not_equal(s, 0);
	gpu_start_ok(NULL);
	struct tfsim_launch l = {
		.stream = s,
		.name = "_Z6matmulPKfS0_Pfi",
		.grid = { 64, 8, 2 },
		.block = { 256, 2, 1 },
		.duration_ns = 12345,
		.registers_per_thread = 72,
		.static_shared_bytes = 4096,
		.dynamic_shared_bytes = 16384,
		.shared_memory_executed = 100u * 1024u,
	};
	uint32_t c = tfsim_launch_kernel_ex(&l);
	/* A graph: its launch carries the correlation id of every kernel in it. */
	struct tfsim_launch g = {
		.stream = s,
		.name = "_Z4nodev",
		.duration_ns = 100,
		.domain = TFSIM_DOMAIN_RUNTIME,
		.cbid = CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000,
		.graph_id = 7,
		.graph_node_id = 70,
	};
	uint32_t gc = tfsim_launch_kernel_ex(&g);
	g.correlation_id = gc;
	g.graph_node_id = 71;
	g.name = "_Z5node2v";
	tfsim_launch_kernel_ex(&g);

	struct tfprof__gpu_result r;
	stop_all(&r);
	assert_int_equal(r.active, 1);
	assert_int_equal(r.nerrors, 0);
	const struct tfprof__dev_event *e = find_one(&r, TFPROF_DEV_KERNEL, c);
	assert_string_equal(kernel_name(&r, e), "_Z6matmulPKfS0_Pfi");
	assert_int_equal(e->end - e->start, 12345);
	assert_int_equal(e->u.kernel.grid[0], 64);
	assert_int_equal(e->u.kernel.grid[1], 8);
	assert_int_equal(e->u.kernel.grid[2], 2);
	assert_int_equal(e->u.kernel.block[0], 256);
	assert_int_equal(e->u.kernel.block[1], 2);
	assert_int_equal(e->u.kernel.block[2], 1);
	assert_int_equal(e->u.kernel.registers_per_thread, 72);
	assert_int_equal(e->u.kernel.static_shared, 4096);
	assert_int_equal(e->u.kernel.dynamic_shared, 16384);
	assert_int_equal(e->u.kernel.graph_id, 0);
	assert_int_equal(e->shared_config, 100u * 1024u); /* sharedMemoryExecuted */
	assert_int_equal(e->device_id, 0);
	assert_int_equal(e->context_id, 1); /* the simulator numbers contexts ordinal + 1 */
	assert_int_equal(e->stream_id, s);

	size_t in_graph = 0;
	for (const struct tfprof__dev_chunk *ch = r.events; ch; ch = ch->next)
		for (size_t i = 0; i < ch->n; i++)
			if (ch->ev[i].kind == TFPROF_DEV_KERNEL && ch->ev[i].correlation_id == gc) {
				assert_int_equal(ch->ev[i].u.kernel.graph_id, 7);
				/* The simulator's default carveout: the whole 228 KiB of an H100 SM. */
				assert_int_equal(ch->ev[i].shared_config, 228u * 1024u);
				in_graph++;
			}
	assert_int_equal(in_graph, 2);
	/* Names are interned: index 0 is the empty name, each kernel name appears once. */
	assert_string_equal(r.names[0], "");
	assert_int_equal(r.nnames, 4);
	tfprof__gpu_result_free(&r);
}

static void test_memcpy_kinds(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	assert_int_equal(tfsim_device_add(NULL), 1);
	uint32_t s0 = tfsim_stream_create(0), s1 = tfsim_stream_create(1);
	gpu_start_ok(NULL);
	uint32_t htod = tfsim_memcpy(s0, TFSIM_COPY_HTOD, 1 << 20, 3000, 0);
	uint32_t dtoh = tfsim_memcpy(s0, TFSIM_COPY_DTOH, 4096, 2000, 1);
	uint32_t dtod = tfsim_memcpy(s1, TFSIM_COPY_DTOD, 8192, 1000, 1);
	uint32_t htoh = tfsim_memcpy(s1, TFSIM_COPY_HTOH, 512, 700, 0);
	struct tfsim_memcpy p = { .stream = s0, .kind = TFSIM_COPY_PTOP, .bytes = 65536,
				  .duration_ns = 4000, .async = 1, .peer_device = 1 };
	uint32_t ptop = tfsim_memcpy_ex(&p);
	p.stream = s1;
	p.peer_device = 0;
	uint32_t ptop_back = tfsim_memcpy_ex(&p);

	struct tfprof__gpu_result r;
	stop_all(&r);
	assert_int_equal(count_kind(&r, TFPROF_DEV_MEMCPY), 6);
	const struct tfprof__dev_event *e = find_one(&r, TFPROF_DEV_MEMCPY, htod);
	assert_int_equal(e->u.memcpy.copy_kind, TFPROF_COPY_HTOD);
	assert_int_equal(e->u.memcpy.bytes, 1 << 20);
	assert_int_equal(e->u.memcpy.src_kind, CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE);
	assert_int_equal(e->u.memcpy.dst_kind, CUPTI_ACTIVITY_MEMORY_KIND_DEVICE);
	assert_int_equal(e->u.memcpy.async, 0);
	assert_int_equal(e->end - e->start, 3000);
	assert_int_equal(e->device_id, 0);
	assert_int_equal(e->stream_id, s0);

	e = find_one(&r, TFPROF_DEV_MEMCPY, dtoh);
	assert_int_equal(e->u.memcpy.copy_kind, TFPROF_COPY_DTOH);
	assert_int_equal(e->u.memcpy.src_kind, CUPTI_ACTIVITY_MEMORY_KIND_DEVICE);
	assert_int_equal(e->u.memcpy.dst_kind, CUPTI_ACTIVITY_MEMORY_KIND_PINNED);
	assert_int_equal(e->u.memcpy.async, 1);

	e = find_one(&r, TFPROF_DEV_MEMCPY, dtod);
	assert_int_equal(e->u.memcpy.copy_kind, TFPROF_COPY_DTOD);
	assert_int_equal(e->device_id, 1);
	assert_int_equal(e->context_id, 2);
	assert_int_equal(e->u.memcpy.src_device, 1);
	assert_int_equal(e->u.memcpy.dst_device, 1);

	e = find_one(&r, TFPROF_DEV_MEMCPY, htoh);
	assert_int_equal(e->u.memcpy.copy_kind, TFPROF_COPY_HTOH);
	assert_int_equal(e->u.memcpy.bytes, 512);

	/* Peer copies come as MEMCPY2 records, which name both devices. */
	e = find_one(&r, TFPROF_DEV_MEMCPY, ptop);
	assert_int_equal(e->u.memcpy.copy_kind, TFPROF_COPY_PTOP);
	assert_int_equal(e->u.memcpy.src_device, 0);
	assert_int_equal(e->u.memcpy.dst_device, 1);
	assert_int_equal(e->u.memcpy.bytes, 65536);
	assert_int_equal(e->end - e->start, 4000);
	e = find_one(&r, TFPROF_DEV_MEMCPY, ptop_back);
	assert_int_equal(e->u.memcpy.src_device, 1);
	assert_int_equal(e->u.memcpy.dst_device, 0);
	assert_int_equal(e->device_id, 1);
	tfprof__gpu_result_free(&r);
}

static void test_memset_and_sync(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	assert_int_equal(tfsim_device_add(NULL), 1);
	uint32_t s = tfsim_stream_create(1);
	gpu_start_ok(NULL);
	uint32_t ms = tfsim_memset(s, 1 << 16, 0xab, 900);
	uint32_t k = tfsim_launch_kernel(s, "_Z4workv", (struct tfsim_dim3){ 1, 1, 1 },
					 (struct tfsim_dim3){ 32, 1, 1 }, 50000);
	uint32_t ss = tfsim_stream_synchronize(s);
	uint32_t ds = tfsim_device_synchronize(1);

	struct tfprof__gpu_result r;
	stop_all(&r);
	const struct tfprof__dev_event *e = find_one(&r, TFPROF_DEV_MEMSET, ms);
	assert_int_equal(e->u.memset.value, 0xab);
	assert_int_equal(e->u.memset.bytes, 1 << 16);
	assert_int_equal(e->u.memset.memory_kind, CUPTI_ACTIVITY_MEMORY_KIND_DEVICE);
	assert_int_equal(e->u.memset.async, 1);
	assert_int_equal(e->end - e->start, 900);
	assert_int_equal(e->device_id, 1);
	assert_int_equal(e->stream_id, s);

	/* Synchronization records name a context only; the device comes from CONTEXT records. */
	e = find_one(&r, TFPROF_DEV_SYNC, ss);
	assert_int_equal(e->u.sync.type, CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE);
	assert_int_equal(e->stream_id, s);
	assert_int_equal(e->context_id, 2);
	assert_int_equal(e->device_id, 1);
	/* The wait lasts until the stream has drained, the 50 us kernel included (or not at all
	 * when the kernel was over before the call). */
	uint64_t drained = find_one(&r, TFPROF_DEV_KERNEL, k)->end;
	assert_int_equal(e->end, drained > e->start ? drained : e->start);
	e = find_one(&r, TFPROF_DEV_SYNC, ds);
	assert_int_equal(e->u.sync.type, CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE);
	assert_int_equal(e->stream_id, TFPROF_DEV_NONE);
	assert_int_equal(e->device_id, 1);
	tfprof__gpu_result_free(&r);
}

/* When a context's CONTEXT record is lost, a synchronization's device comes from what the API
 * callbacks learned about the context. */
static void test_sync_device_from_callbacks(void **state)
{
	(void)state;
	host_start();
	gpu_start_ok(NULL);
	assert_int_equal(tfsim_device_add(NULL), 0);
	/* The second GPU's DEVICE and CONTEXT records are the next two: drop them. */
	assert_int_equal(tfsim_inject(TFSIM_FAULT_DROP_RECORDS, 2), 0);
	assert_int_equal(tfsim_device_add(NULL), 1);
	uint32_t s = tfsim_stream_create(1);
	uint32_t ss = tfsim_stream_synchronize(s);
	struct tfprof__gpu_result r;
	stop_all(&r);
	assert_int_equal(r.dropped_by_cupti, 2);
	assert_null(find_device(&r, 1));
	assert_int_equal(find_one(&r, TFPROF_DEV_SYNC, ss)->device_id, 1);
	tfprof__gpu_result_free(&r);
}

static void test_overhead(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	gpu_start_ok(NULL);
	tfsim_launch_kernel(tfsim_null_stream(0), "_Z1kv", (struct tfsim_dim3){ 1, 1, 1 },
			    (struct tfsim_dim3){ 1, 1, 1 }, 10);
	struct tfprof__gpu_result r;
	stop_all(&r);
	/* The simulator, like CUPTI, accounts each buffer request as overhead of the thread. */
	size_t n = 0;
	for (const struct tfprof__dev_chunk *c = r.events; c; c = c->next)
		for (size_t i = 0; i < c->n; i++) {
			const struct tfprof__dev_event *e = &c->ev[i];
			if (e->kind != TFPROF_DEV_OVERHEAD)
				continue;
			assert_int_equal(e->u.overhead.overhead_kind,
					 CUPTI_ACTIVITY_OVERHEAD_ACTIVITY_BUFFER_REQUEST);
			assert_int_equal(e->device_id, TFPROF_DEV_NONE);
			assert_true(e->end >= e->start);
			n++;
		}
	assert_true(n >= 1);
	tfprof__gpu_result_free(&r);
}

static void test_device_properties(void **state)
{
	(void)state;
	/* One GPU before start (replayed by cuptiActivityEnableAndDump), one after (reported when
	 * CUDA creates it). */
	struct tfsim_device_desc a = { .name = "Test A100-SXM4-40GB", .cc_major = 8, .cc_minor = 0,
				       .sm_count = 108, .global_memory_bytes = 40ull << 30,
				       .memory_bandwidth = 1555000000000ull, .core_clock_khz = 1410000 };
	struct tfsim_device_desc b = { .name = "Test RTX", .cc_major = 8, .cc_minor = 6, .sm_count = 84,
				       .global_memory_bytes = 24ull << 30,
				       .memory_bandwidth = 936000000000ull, .core_clock_khz = 1695000 };
	assert_int_equal(tfsim_device_add(&a), 0);
	gpu_start_ok(NULL);
	assert_int_equal(tfsim_device_add(&b), 1);
	struct tfprof__gpu_result r;
	stop_all(&r);
	assert_int_equal(r.ndevices, 2);
	const struct tfprof__dev_device *d = find_device(&r, 0);
	assert_non_null(d);
	assert_string_equal(d->name, "Test A100-SXM4-40GB");
	assert_int_equal(d->cc_major, 8);
	assert_int_equal(d->cc_minor, 0);
	assert_int_equal(d->sm_count, 108);
	assert_int_equal(d->memory_size, 40ull << 30);
	assert_int_equal(d->memory_bandwidth, 1555000000000ull); /* CUPTI's kB/s made bytes/s */
	assert_int_equal(d->clock_khz, 1410000);
	/* The occupancy limits of an A100 (cc 8.0). */
	assert_int_equal(d->warp_size, 32);
	assert_int_equal(d->max_warps_per_sm, 64);
	assert_int_equal(d->max_blocks_per_sm, 32);
	assert_int_equal(d->regs_per_sm, 65536);
	assert_int_equal(d->smem_per_sm, 164u * 1024u);
	d = find_device(&r, 1);
	assert_non_null(d);
	assert_string_equal(d->name, "Test RTX");
	assert_int_equal(d->cc_minor, 6);
	assert_int_equal(d->sm_count, 84);
	assert_int_equal(d->memory_bandwidth, 936000000000ull);
	assert_int_equal(d->clock_khz, 1695000);
	/* cc 8.6: fewer warps, blocks and shared memory per SM. */
	assert_int_equal(d->warp_size, 32);
	assert_int_equal(d->max_warps_per_sm, 48);
	assert_int_equal(d->max_blocks_per_sm, 16);
	assert_int_equal(d->regs_per_sm, 65536);
	assert_int_equal(d->smem_per_sm, 100u * 1024u);
	tfprof__gpu_result_free(&r);
}

/* ---- Delivery order, devices and streams ---------------------------------------------------- */

#define NDEV 2
#define NSTREAM 3
#define PER_STREAM 100

static int cmp_start(const void *a, const void *b)
{
	const struct tfprof__dev_event *x = *(const struct tfprof__dev_event *const *)a;
	const struct tfprof__dev_event *y = *(const struct tfprof__dev_event *const *)b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static void test_shuffled_devices_streams(void **state)
{
	(void)state;
	uint32_t streams[NDEV][NSTREAM];
	for (int d = 0; d < NDEV; d++) {
		assert_int_equal(tfsim_device_add(NULL), d);
		for (int s = 0; s < NSTREAM; s++)
			streams[d][s] = tfsim_stream_create(d);
	}
	gpu_start_ok(NULL);
	static uint32_t corr[NDEV][NSTREAM][PER_STREAM];
	char names[NDEV][NSTREAM][32];
	for (int d = 0; d < NDEV; d++)
		for (int s = 0; s < NSTREAM; s++)
			snprintf(names[d][s], sizeof names[d][s], "_Z6k_%d_%dv", d, s);
	for (int i = 0; i < PER_STREAM; i++)
		for (int d = 0; d < NDEV; d++)
			for (int s = 0; s < NSTREAM; s++)
				corr[d][s][i] = tfsim_launch_kernel(streams[d][s], names[d][s],
								    (struct tfsim_dim3){ 1, 1, 1 },
								    (struct tfsim_dim3){ 1, 1, 1 },
								    1000 + (uint32_t)i);
	struct tfprof__gpu_result r;
	stop_all(&r);
	assert_int_equal(count_kind(&r, TFPROF_DEV_KERNEL), NDEV * NSTREAM * PER_STREAM);

	size_t inversions = 0;
	for (int d = 0; d < NDEV; d++)
		for (int s = 0; s < NSTREAM; s++) {
			const struct tfprof__dev_event *evs[PER_STREAM];
			size_t n = 0;
			uint64_t last_corr = 0;
			for (const struct tfprof__dev_chunk *c = r.events; c; c = c->next)
				for (size_t i = 0; i < c->n; i++) {
					const struct tfprof__dev_event *e = &c->ev[i];
					if (e->kind != TFPROF_DEV_KERNEL || e->stream_id != streams[d][s])
						continue;
					assert_true(n < PER_STREAM);
					evs[n++] = e;
					/* Arrival order: launch order would have rising ids. */
					inversions += e->correlation_id < last_corr;
					last_corr = e->correlation_id;
				}
			assert_int_equal(n, PER_STREAM);
			for (int i = 0; i < PER_STREAM; i++)
				assert_int_equal(find_one(&r, TFPROF_DEV_KERNEL, corr[d][s][i])->stream_id,
						 streams[d][s]);
			qsort(evs, n, sizeof evs[0], cmp_start);
			for (size_t i = 0; i < n; i++) {
				assert_int_equal(evs[i]->device_id, d);
				assert_int_equal(evs[i]->context_id, d + 1);
				assert_string_equal(kernel_name(&r, evs[i]), names[d][s]);
				/* One stream runs its work in launch order, back to back. */
				assert_int_equal(evs[i]->correlation_id, corr[d][s][i]);
				if (i)
					assert_true(evs[i - 1]->end <= evs[i]->start);
			}
		}
	/* The simulator delivers records shuffled, as CUPTI does not promise any order. */
	assert_true(inversions > 0);
	tfprof__gpu_result_free(&r);
}

/* ---- Failures ------------------------------------------------------------------------------- */

/* Starts host tracing and GPU tracing with a fault injected; GPU tracing must fall back, host
 * tracing must go on and write its profile, and the error must name the cause and the fix. */
static void expect_fallback(enum tfsim_fault f, const char *const needles[])
{
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	assert_int_equal(tfsim_inject(f, 0), 0);
	host_start();
	assert_true(tfprof__gpu_start(&(struct tfprof__gpu_config){ 0 }) < 0);
	tfprof_scope h = tfprof_scope_begin("host_work", NULL, 0);
	tfsim_launch_kernel(s, "_Z2kav", (struct tfsim_dim3){ 1, 1, 1 }, (struct tfsim_dim3){ 1, 1, 1 },
			    10);
	tfprof_scope_end(h);
	/* Nothing stayed subscribed or enabled: the launch reached no callback, made no record. */
	struct tfsim_stats st;
	tfsim_stats(&st);
	assert_int_equal(st.api_callbacks, 0);
	assert_int_equal(st.records_produced, 0);

	XSpace *x = tt_stop_and_read();
	assert_int_equal(tt_count_events(tt_host(x), "host_work"), 1);
	tt_xspace_free(x);
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	assert_int_equal(r.active, 0);
	assert_int_equal(r.nevents, 0);
	assert_int_equal(r.nerrors, 1);
	assert_null(strchr(r.errors[0], '\n'));
	assert_non_null(strstr(r.errors[0], "GPU tracing is off"));
	for (size_t i = 0; needles[i]; i++)
		assert_msg(r.errors, r.nerrors, needles[i]);
	tfprof__gpu_result_free(&r);

	/* Once the cause is gone, the next session traces the GPU. */
	tfsim_fault_clear();
	gpu_start_ok(NULL);
	uint32_t c = tfsim_launch_kernel(s, "_Z2kbv", (struct tfsim_dim3){ 1, 1, 1 },
					 (struct tfsim_dim3){ 1, 1, 1 }, 10);
	tfprof__gpu_stop(&r);
	assert_int_equal(r.active, 1);
	find_one(&r, TFPROF_DEV_KERNEL, c);
	tfprof__gpu_result_free(&r);
}

static void test_fault_no_gpu(void **state)
{
	(void)state;
	expect_fallback(TFSIM_FAULT_NO_GPU,
			(const char *const[]){ "CUPTI_ERROR_UNKNOWN", "no NVIDIA GPU or driver",
					       "nvidia-smi", "TFPROF_GPU=0", NULL });
}

static void test_fault_privileges(void **state)
{
	(void)state;
	expect_fallback(TFSIM_FAULT_INSUFFICIENT_PRIVILEGES,
			(const char *const[]){ "CUPTI_ERROR_INSUFFICIENT_PRIVILEGES", "CAP_SYS_ADMIN",
					       "NVreg_RestrictProfilingToAdminUsers=0",
					       "https://developer.nvidia.com/ERR_NVGPUCTRPERM", NULL });
}

static void test_fault_multiple_subscribers(void **state)
{
	(void)state;
	/* The simulator names the holder through cuptiSubscribe_v2, as CUDA 13 does. */
	expect_fallback(TFSIM_FAULT_MULTIPLE_SUBSCRIBERS,
			(const char *const[]){ "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED",
					       "Nsight Systems", "run without that tool",
					       "TFPROF_GPU=0", NULL });
}

static uint32_t launch_n(uint32_t stream, const char *name, int n)
{
	uint32_t last = 0;
	for (int i = 0; i < n; i++)
		last = tfsim_launch_kernel(stream, name, (struct tfsim_dim3){ 1, 1, 1 },
					   (struct tfsim_dim3){ 1, 1, 1 }, 100);
	return last;
}

static void test_fault_drop_records(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	gpu_start_ok(NULL);
	assert_int_equal(tfsim_inject(TFSIM_FAULT_DROP_RECORDS, 5), 0);
	launch_n(s, "_Z4dropv", 20);
	struct tfprof__gpu_result r;
	stop_all(&r);
	assert_int_equal(r.dropped_by_cupti, 5);
	assert_int_equal(count_kind(&r, TFPROF_DEV_KERNEL), 15);
	assert_int_equal(msg_count(r.warnings, r.nwarnings, "dropped by CUPTI"), 5);
	assert_msg(r.warnings, r.nwarnings, "raise TFPROF_CUPTI_BUFFERS (now 16) or TFPROF_CUPTI_BUFFER_KB (now 4096)");
	tfprof__gpu_result_free(&r);
}

struct launcher {
	uint32_t stream;
	const char *name;
	int n;
	uint32_t last;
};

static void *launcher_main(void *arg)
{
	struct launcher *l = arg;
	l->last = launch_n(l->stream, l->name, l->n);
	return NULL;
}

static void launch_on_thread(struct launcher *l)
{
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, launcher_main, l), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static void test_fault_refuse_buffer(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	gpu_start_ok(NULL);
	/* A new thread needs its own buffer (per-thread buffers are CUDA 13's default); its first
	 * request is refused, so its first record is dropped. */
	assert_int_equal(tfsim_inject(TFSIM_FAULT_REFUSE_BUFFER, 1), 0);
	struct launcher l = { .stream = s, .name = "_Z6refusev", .n = 10 };
	launch_on_thread(&l);
	struct tfprof__gpu_result r;
	stop_all(&r);
	struct tfsim_stats st;
	tfsim_stats(&st);
	assert_int_equal(st.buffers_refused, 1);
	assert_int_equal(r.dropped_by_cupti, 1);
	assert_int_equal(r.dropped_no_buffer, 0); /* tfprof was never asked */
	assert_int_equal(count_kind(&r, TFPROF_DEV_KERNEL), 9);
	tfprof__gpu_result_free(&r);
}

static void test_fault_zero_timestamps(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	gpu_start_ok(NULL);
	assert_int_equal(tfsim_inject(TFSIM_FAULT_ZERO_TIMESTAMPS, 3), 0);
	launch_n(s, "_Z4zerov", 10);
	struct tfprof__gpu_result r;
	stop_all(&r);
	assert_int_equal(r.zero_timestamps, 3);
	assert_int_equal(count_kind(&r, TFPROF_DEV_KERNEL), 7);
	for (const struct tfprof__dev_chunk *c = r.events; c; c = c->next)
		for (size_t i = 0; i < c->n; i++)
			assert_true(c->ev[i].start != 0 && c->ev[i].end != 0);
	assert_msg(r.warnings, r.nwarnings, "3 GPU activity records had no timestamps");
	tfprof__gpu_result_free(&r);
}

static void test_library_not_found(void **state)
{
	(void)state;
	setenv("TFPROF_CUPTI_LIBRARY", "/nonexistent/libcupti.so.13", 1);
	host_start();
	assert_int_equal(tfprof__gpu_start(&(struct tfprof__gpu_config){ 0 }), -ENOENT);
	tfprof_scope h = tfprof_scope_begin("still_traced", NULL, 0);
	tfprof_scope_end(h);
	XSpace *x = tt_stop_and_read();
	assert_int_equal(tt_count_events(tt_host(x), "still_traced"), 1);
	tt_xspace_free(x);
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	assert_int_equal(r.active, 0);
	assert_int_equal(r.nerrors, 1);
	assert_msg(r.errors, r.nerrors, "TFPROF_CUPTI_LIBRARY=/nonexistent/libcupti.so.13");
	assert_msg(r.errors, r.nerrors, "unset it");
	tfprof__gpu_result_free(&r);

	/* A library that loads but is no CUPTI is refused with the reason. */
	setenv("TFPROF_CUPTI_LIBRARY", "libc.so.6", 1);
	assert_true(tfprof__gpu_start(&(struct tfprof__gpu_config){ 0 }) < 0);
	tfprof__gpu_stop(&r);
	assert_msg(r.errors, r.nerrors, "has no cuptiGetVersion");
	tfprof__gpu_result_free(&r);
}

/* ---- Buffers and the memory bound ----------------------------------------------------------- */

static void test_pool_exhaustion(void **state)
{
	(void)state;
	/* One buffer, sized through the environment. */
	setenv("TFPROF_CUPTI_BUFFERS", "1", 1);
	setenv("TFPROF_CUPTI_BUFFER_KB", "64", 1);
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	/* Buffers must not age out and come back while the test runs (the simulator's own
	 * cuptiActivityFlushPeriod; tfsim_reset restores the default). */
	assert_int_equal(cuptiActivityFlushPeriod(600000), CUPTI_SUCCESS);
	gpu_start_ok(NULL);
	/* This thread takes the only buffer (the DEVICE records replayed at start already did). */
	uint32_t mine = launch_n(s, "_Z4mainv", 1);
	/* Another thread finds the pool empty: its records are dropped and counted, twice. */
	struct launcher l = { .stream = s, .name = "_Z5otherv", .n = 1 };
	launch_on_thread(&l);
	struct tfprof__gpu_result r;
	stop_all(&r);
	assert_int_equal(r.dropped_no_buffer, 1);
	assert_int_equal(r.dropped_by_cupti, 1);
	find_one(&r, TFPROF_DEV_KERNEL, mine);
	assert_int_equal(count_kind(&r, TFPROF_DEV_KERNEL), 1);
	assert_msg(r.warnings, r.nwarnings, "1 CUPTI buffer request was refused because no buffer of the pool (1 of 64 KiB) was free");
	/* Every buffer handed out came back. */
	struct tfsim_stats st;
	tfsim_stats(&st);
	assert_int_equal(st.buffers_requested, st.buffers_refused + st.buffers_completed);
	tfprof__gpu_result_free(&r);
}

static void test_bad_env(void **state)
{
	(void)state;
	setenv("TFPROF_CUPTI_BUFFERS", "many", 1);
	gpu_start_ok(NULL);
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	assert_int_equal(r.active, 1);
	assert_msg(r.warnings, r.nwarnings, "TFPROF_CUPTI_BUFFERS=many is not a whole number");
	tfprof__gpu_result_free(&r);
}

static void test_memory_bound(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	/* Room for one chunk of events and the kernel's name, not for a second chunk. */
	struct tfprof__gpu_config cfg = { .max_memory = tfprof__activity_chunk_bytes() + 1024 };
	gpu_start_ok(&cfg);
	launch_n(s, "_Z5boundv", TFPROF_CUPTI_CHUNK_EVENTS + 100);
	struct tfprof__gpu_result r;
	stop_all(&r);
	struct tfsim_stats st;
	tfsim_stats(&st);
	assert_int_equal(total_events(&r), TFPROF_CUPTI_CHUNK_EVENTS);
	assert_int_equal(r.nevents, TFPROF_CUPTI_CHUNK_EVENTS);
	/* Every delivered record is an event, a drop, or one of the DEVICE and CONTEXT records. */
	assert_int_equal(r.nevents + r.dropped_by_bound + 2, st.records_delivered);
	assert_true(r.dropped_by_bound >= 100);
	assert_msg(r.warnings, r.nwarnings, "reached their limit");
	tfprof__gpu_result_free(&r);
}

/* ---- Lifecycle ------------------------------------------------------------------------------ */

static void test_start_stop_cycles(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	for (int cycle = 0; cycle < 6; cycle++) {
		char name[32];
		snprintf(name, sizeof name, "_Z7cycle_%dv", cycle);
		host_start();
		gpu_start_ok(NULL);
		launch_n(s, name, cycle + 1);
		struct tfprof__gpu_result r;
		stop_all(&r);
		assert_int_equal(r.active, 1);
		assert_int_equal(r.nerrors, 0);
		assert_int_equal(count_kind(&r, TFPROF_DEV_KERNEL), (size_t)cycle + 1);
		assert_int_equal(r.nnames, 2);
		assert_string_equal(r.names[1], name);
		/* Every cycle describes the GPU, replayed because CUDA set it up long before. */
		assert_non_null(find_device(&r, 0));
		assert_true(r.begin.collector_ns > 0 && r.end.collector_ns >= r.begin.collector_ns);
		tfprof__gpu_result_free(&r);
		struct tfsim_stats st;
		tfsim_stats(&st);
		assert_int_equal(st.buffers_requested, st.buffers_refused + st.buffers_completed);
	}
	/* Stop without start, twice: empty results. */
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	assert_int_equal(r.active, 0);
	assert_int_equal(r.nerrors, 0);
	tfprof__gpu_stop(&r);
	assert_int_equal(r.nevents, 0);
	/* Start twice: the second start ends the first session's tracing first. */
	gpu_start_ok(NULL);
	gpu_start_ok(NULL);
	uint32_t c = launch_n(s, "_Z5againv", 1);
	tfprof__gpu_stop(&r);
	assert_int_equal(r.active, 1);
	find_one(&r, TFPROF_DEV_KERNEL, c);
	tfprof__gpu_result_free(&r);
}

static void test_clock_pairs(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	host_start();
	gpu_start_ok(NULL);
	uint32_t c = launch_n(s, "_Z5clockv", 1);
	usleep(2000); /* the kernel (5 us latency + 100 ns) is over before the end pair */
	struct tfprof__gpu_result r;
	stop_all(&r);
	const struct tfprof__dev_event *e = find_one(&r, TFPROF_DEV_KERNEL, c);
	assert_true(r.begin.collector_ns <= e->start);
	assert_true(e->end <= r.end.collector_ns);
	assert_true(r.begin.anchor.mono_ns < r.end.anchor.mono_ns);
	assert_true(r.begin.anchor.ticks < r.end.anchor.ticks);
	/* The pairing is tight: both brackets well under a millisecond on an idle machine, and
	 * the simulator's clock is CLOCK_REALTIME, which the anchors also read. */
	assert_true(r.begin.width_ns < 1000000);
	assert_true(r.end.width_ns < 1000000);
	int64_t skew = (int64_t)(r.begin.collector_ns - r.begin.anchor.real_ns);
	assert_true(skew < 1000000 && skew > -1000000);
	tfprof__gpu_result_free(&r);
}

/* ---- Host events from the API callbacks ----------------------------------------------------- */

struct api_case {
	uint32_t domain, cbid;
	const char *api;
};

static const struct api_case launch_cases[] = {
	{ TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, "cudaLaunchKernel" },
	{ TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000, "cudaLaunchKernel_ptsz" },
	{ TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060, "cudaLaunchKernelExC" },
	{ TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060, "cudaLaunchKernelExC_ptsz" },
	{ TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000, "cudaLaunchCooperativeKernel" },
	{ TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000, "cudaLaunchCooperativeKernel_ptsz" },
	{ TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, "cudaGraphLaunch" },
	{ TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_ptsz_v10000, "cudaGraphLaunch_ptsz" },
	{ TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000, "__cudaLaunchKernel" },
	{ TFSIM_DOMAIN_RUNTIME, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_ptsz_v13000, "__cudaLaunchKernel_ptsz" },
	{ TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, "cuLaunchKernel" },
	{ TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz, "cuLaunchKernel_ptsz" },
	{ TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx, "cuLaunchKernelEx" },
	{ TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz, "cuLaunchKernelEx_ptsz" },
	{ TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel, "cuLaunchCooperativeKernel" },
	{ TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz, "cuLaunchCooperativeKernel_ptsz" },
	{ TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, "cuGraphLaunch" },
	{ TFSIM_DOMAIN_DRIVER, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz, "cuGraphLaunch_ptsz" },
};
#define NCASES (sizeof launch_cases / sizeof launch_cases[0])

static void test_api_events_per_launch_variant(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	assert_int_equal(tfsim_device_add(NULL), 1);
	uint32_t s = tfsim_stream_create(1);
	host_start();
	gpu_start_ok(NULL);
	uint32_t corr[NCASES];
	char names[NCASES][48];
	tfprof_scope outer = tfprof_scope_begin("train_step", NULL, 0);
	for (size_t i = 0; i < NCASES; i++) {
		snprintf(names[i], sizeof names[i], "launch_case_%zu", i);
		struct tfsim_launch l = { .stream = s, .name = names[i], .duration_ns = 10,
					  .domain = launch_cases[i].domain, .cbid = launch_cases[i].cbid };
		corr[i] = tfsim_launch_kernel_ex(&l);
		assert_int_not_equal(corr[i], 0);
	}
	tfprof_scope_end(outer);
	XSpace *x = tt_stop_and_read();
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	for (size_t i = 0; i < NCASES; i++) {
		/* One host event per launch, named after the kernel, on device 1. */
		assert_api_event(x, corr[i], names[i], launch_cases[i].api, 1);
		assert_int_equal(tt_count_events(tt_host(x), names[i]), 1);
		/* ... and the kernel it launched carries the same correlation id. */
		const struct tfprof__dev_event *e = find_one(&r, TFPROF_DEV_KERNEL, corr[i]);
		assert_string_equal(kernel_name(&r, e), names[i]);
	}
	/* The API events nest under the scope that was open, on this thread's line. */
	const XLine *line = tt_my_line(x);
	assert_non_null(line);
	assert_int_equal(line->n_events, NCASES + 1);
	tt_xspace_free(x);
	tfprof__gpu_result_free(&r);
}

static void test_api_events_copies_and_syncs(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	host_start();
	gpu_start_ok(NULL);
	uint32_t c1 = tfsim_memcpy(s, TFSIM_COPY_HTOD, 4096, 100, 0);
	uint32_t c2 = tfsim_memcpy(s, TFSIM_COPY_DTOH, 4096, 100, 1);
	struct tfsim_memcpy dm = { .stream = s, .kind = TFSIM_COPY_DTOD, .bytes = 64, .async = 1,
				   .peer_device = -1, .domain = TFSIM_DOMAIN_DRIVER };
	uint32_t c3 = tfsim_memcpy_ex(&dm);
	uint32_t c4 = tfsim_memset(s, 128, 0, 100);
	uint32_t c5 = tfsim_stream_synchronize(s);
	uint32_t c6 = tfsim_device_synchronize(0);
	XSpace *x = tt_stop_and_read();
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	assert_api_event(x, c1, "cudaMemcpy", "cudaMemcpy", 0);
	assert_api_event(x, c2, "cudaMemcpyAsync", "cudaMemcpyAsync", 0);
	assert_api_event(x, c3, "cuMemcpyAsync", "cuMemcpyAsync", 0);
	assert_api_event(x, c4, "cudaMemsetAsync", "cudaMemsetAsync", 0);
	assert_api_event(x, c5, "cudaStreamSynchronize", "cudaStreamSynchronize", 0);
	assert_api_event(x, c6, "cudaDeviceSynchronize", "cudaDeviceSynchronize", 0);
	find_one(&r, TFPROF_DEV_MEMCPY, c3);
	find_one(&r, TFPROF_DEV_MEMSET, c4);
	find_one(&r, TFPROF_DEV_SYNC, c6);
	tt_xspace_free(x);
	tfprof__gpu_result_free(&r);
}

/* Plays one call as CUPTI reports it: ENTER, then what runs inside, then EXIT. */
static void play(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, CUpti_CallbackData *d,
		 void (*inside)(void *), void *arg)
{
	d->callbackSite = CUPTI_API_ENTER;
	tfprof__callbacks_api(NULL, domain, cbid, d);
	if (inside)
		inside(arg);
	d->callbackSite = CUPTI_API_EXIT;
	tfprof__callbacks_api(NULL, domain, cbid, d);
}

static void driver_inside(void *arg)
{
	CUpti_CallbackData *d = arg;
	play(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, d, NULL, NULL);
}

static void test_runtime_driver_nesting(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	host_start();
	gpu_start_ok(NULL);
	void *ctx = tfsim_context_handle(0);
	uint64_t rt_slot = 0, drv_slot = 0;
	/* cudaLaunchKernel calls cuLaunchKernel; CUPTI reports both, here with one id. */
	CUpti_CallbackData rt = { .functionName = "cudaLaunchKernel", .symbolName = "nested_kernel",
				  .context = ctx, .contextUid = 1, .correlationData = &rt_slot,
				  .correlationId = 900001 };
	CUpti_CallbackData drv = { .functionName = "cuLaunchKernel", .symbolName = "nested_kernel",
				   .context = ctx, .contextUid = 1, .correlationData = &drv_slot,
				   .correlationId = 900001 };
	play(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &rt,
	     driver_inside, &drv);
	assert_int_not_equal(rt_slot, 0); /* the handle travelled in correlationData */
	assert_int_equal(drv_slot, 0);
	/* The same with a separate id for the driver call: it is kept on the outer event. */
	rt.correlationId = 900002;
	drv.correlationId = 900003;
	play(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &rt,
	     driver_inside, &drv);
	/* A driver launch made directly is recorded itself. */
	drv.correlationId = 900004;
	drv.symbolName = "direct_kernel";
	play(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &drv, NULL, NULL);
	/* An EXIT whose ENTER came before the subscription is ignored. */
	rt.callbackSite = CUPTI_API_EXIT;
	tfprof__callbacks_api(NULL, CUPTI_CB_DOMAIN_RUNTIME_API,
			      CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &rt);

	XSpace *x = tt_stop_and_read();
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	assert_int_equal(tt_count_events(tt_host(x), "nested_kernel"), 2);
	assert_int_equal(tt_count_events(tt_host(x), "direct_kernel"), 1);
	assert_api_event(x, 900001, "nested_kernel", "cudaLaunchKernel", 0);
	assert_api_event(x, 900002, "nested_kernel", "cudaLaunchKernel", 0);
	assert_api_event(x, 900004, "direct_kernel", "cuLaunchKernel", 0);
	const XPlane *p;
	const XEvent *e;
	host_events_with_corr(x, 900001, &p, &e);
	assert_null(tt_event_stat(p, e, "nested_correlation_id"));
	host_events_with_corr(x, 900002, &p, &e);
	assert_int_equal(stat_u64(p, e, "nested_correlation_id"), 900003);
	tt_xspace_free(x);
	tfprof__gpu_result_free(&r);
}

/* GPU tracing without host recording: device events still come, callbacks record nothing. */
static void test_gpu_without_host_session(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	uint32_t s = tfsim_stream_create(0);
	gpu_start_ok(NULL);
	uint32_t c = launch_n(s, "_Z6nohostv", 3);
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	find_one(&r, TFPROF_DEV_KERNEL, c);
	assert_int_equal(count_kind(&r, TFPROF_DEV_KERNEL), 3);
	tfprof__gpu_result_free(&r);
}

#define MT_THREADS 4
#define MT_LAUNCHES 500

struct mt_worker {
	uint32_t stream;
	uint32_t corr[MT_LAUNCHES];
	int64_t tid;
	pthread_barrier_t *go;
};

static void *mt_main(void *arg)
{
	struct mt_worker *w = arg;
	w->tid = (int64_t)syscall(SYS_gettid);
	pthread_barrier_wait(w->go);
	for (int i = 0; i < MT_LAUNCHES; i++)
		w->corr[i] = tfsim_launch_kernel(w->stream, "mt_kernel", (struct tfsim_dim3){ 1, 1, 1 },
						 (struct tfsim_dim3){ 1, 1, 1 }, 50);
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	assert_int_equal(tfsim_device_add(NULL), 0);
	host_start();
	gpu_start_ok(NULL);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, MT_THREADS);
	static struct mt_worker w[MT_THREADS];
	pthread_t t[MT_THREADS];
	for (int i = 0; i < MT_THREADS; i++) {
		w[i].stream = tfsim_stream_create(0);
		w[i].go = &go;
		assert_int_equal(pthread_create(&t[i], NULL, mt_main, &w[i]), 0);
	}
	for (int i = 0; i < MT_THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	XSpace *x = tt_stop_and_read();
	struct tfprof__gpu_result r;
	tfprof__gpu_stop(&r);
	assert_int_equal(r.dropped_by_cupti + r.dropped_no_buffer + r.dropped_by_bound, 0);
	assert_int_equal(count_kind(&r, TFPROF_DEV_KERNEL), MT_THREADS * MT_LAUNCHES);
	assert_int_equal(tt_count_events(tt_host(x), "mt_kernel"), MT_THREADS * MT_LAUNCHES);
	for (int i = 0; i < MT_THREADS; i++) {
		const XLine *l = tt_line(tt_host(x), w[i].tid);
		assert_non_null(l);
		assert_int_equal(l->n_events, MT_LAUNCHES);
		for (int k = 0; k < MT_LAUNCHES; k += 97) {
			assert_api_event(x, w[i].corr[k], "mt_kernel", "cudaLaunchKernel", 0);
			assert_int_equal(find_one(&r, TFPROF_DEV_KERNEL, w[i].corr[k])->stream_id,
					 w[i].stream);
		}
	}
	tt_xspace_free(x);
	tfprof__gpu_result_free(&r);
}

int main(void)
{
	/* Where libcupti is installed the simulator lets NVIDIA's own iterator walk its buffers,
	 * which checks the record layouts tfprof decodes; say which one runs. */
	print_message("record iteration: %s\n", tfsim_using_real_iterator()
							? tfsim_real_cupti_path()
							: "the simulator's own (no libcupti found)");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kernel_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memcpy_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memset_and_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_device_from_callbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overhead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_properties, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shuffled_devices_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_no_gpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_privileges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_multiple_subscribers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_drop_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_refuse_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_zero_timestamps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_library_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_exhaustion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_stop_cycles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clock_pairs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_events_per_launch_variant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_events_copies_and_syncs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_driver_nesting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpu_without_host_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
