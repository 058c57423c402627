/* SPDX-License-Identifier: Apache-2.0 */
/* Measures how fast tfprof takes in GPU activity and what it costs in the file; prints one JSON
 * object per line.
 *
 *   usage: cupti_ingest [--quick] [--reps N] [--buffers N] [--buffer-kb KB] [--events N]
 *                       [--steps N]
 *
 * 1. decode: synthetic CUPTI activity buffers with the CUDA 13 record layouts (80% CONCURRENT_KERNEL
 *    CUpti_ActivityKernel10 with a few kernel names, 15% MEMCPY CUpti_ActivityMemcpy6, 5% MEMSET
 *    CUpti_ActivityMemset4) are decoded by tfprof__activity_decode_buffers, which runs the code
 *    of the completion callback, into tfprof's event chunks. Each repetition also copies the same
 *    bytes with memcpy, so the ratio is taken under the same conditions. Iteration goes through
 *    cuptiActivityGetNextRecord of the libcupti that tfprof's loader finds (as in production;
 *    the target is judged on it) and, for comparison, through a trivial iterator written here
 *    (the cost of tfprof's own decoding alone). Event chunks are measured resident (the heap
 *    reuses them, the steady state of a process that profiles repeatedly) and fresh (new pages,
 *    as in a first session).
 * 2. merge_write: a synthetic GPU result of --events device events (4 streams of one device,
 *    each with a host launch in the launch map, as a real session has) goes through
 *    tfprof__merge_device, tfprof__xspace_encode and tfprof__write_profile.
 *    session: a host + device profile through the public API on the CUPTI simulator (steps of
 *    scopes with kernel launches, copies and a memset): tfprof_stop() time per event and bytes
 *    per event of the file.
 * 3. event_bytes: both files are read back and every event's bytes are attributed to its
 *    fields and stats, per class of event (host scope, host CUDA API call, device kernel,
 *    memcpy, memset).
 *
 * The machine is shared and noisy: repetitions of the decode cases are interleaved and medians
 * reported. --quick runs tiny sizes once, to prove the program works; its numbers mean nothing.
 * The exit status is 0 whether or not the targets are met. */
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
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

#include <cupti.h>

#include <tfprof/tfprof.h>

/* Internal headers: the decoder, the loader, the merger and the writer are measured directly. */
#include "bench_util.h"
#include "activity.h"
#include "clock.h"
#include "device_events.h"
#include "files.h"
#include "gpu.h"
#include "launch_map.h"
#include "loader.h"
#include "merge.h"
#include "profile.h"
#include "xplane.pb-c.h"
#include "xspace_write.h"

#if defined(TFPROF_BENCH_HAVE_SIM) && TFPROF_BENCH_HAVE_SIM
#include "cupti_sim.h"
#define HAVE_SIM 1
#else
#define HAVE_SIM 0
#endif

#define BENCH "\"bench\":\"cupti_ingest\""
#define MAX_REPS 101

#define TARGET_RECORDS_PER_S 30e6
#define TARGET_RATIO_TO_MEMCPY 4.0
#define TARGET_MERGE_EVENTS_PER_S 5e6
/* Issue 12's target for the simulated session's average (TensorFlow writes about 79). */
#define TARGET_BYTES_PER_EVENT 32.0
/* What merge + encode + write may add at stop, as a multiple of the recorded events' bytes. */
#define TARGET_STOP_MEMORY_RATIO 3.0

static char logdir[] = "/tmp/tfprof-cupti-ingest-XXXXXX";

/* A string made safe to print inside JSON quotes: quotes, backslashes and control characters
 * become spaces. Returns a static buffer, overwritten by the next call. */
static const char *json_safe(const char *s)
{
	static char buf[1024];
	size_t i = 0;
	for (; s && s[i] && i + 1 < sizeof buf; i++)
		buf[i] = s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20 ? ' ' : s[i];
	buf[i] = '\0';
	return buf;
}

static const char *b2s(bool b)
{
	return b ? "true" : "false";
}

/* A small deterministic generator (xorshift64*), so that every run decodes the same records. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)(((rng_state * 2685821657736338717ull) >> 32) % n);
}

/* Kernel names as CUPTI gives them: mangled, of realistic lengths. CUPTI shares one string per
 * kernel across all its records, so each record points at one of these. */
static const char *const kernel_names[] = {
	"_ZN7cutlass6KernelINS_4gemm6kernel4GemmINS1_11threadblock12MmaPipelinedINS1_9GemmShapeILi128ELi128ELi8EEENS_"
	"9transform11threadblock22PredicatedTileIteratorINS_11MatrixShapeILi128ELi8EEEfNS_6layout8RowMajorELi1EEEEEEvNT_6ParamsE",
	"_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIfEESt5arrayIPcLm1EEEEviT0_T1_",
	"_ZN2at6native13reduce_kernelILi512ELi1ENS0_8ReduceOpIfNS0_7MeanOpsIffEEjfLi4EEEEEvT1_",
	"ampere_sgemm_128x64_nn",
	"_Z10gemm_tileILi128EEvPKfS1_Pfiii",
	"_Z4reluPfi",
	"_Z13softmax_crossPKfPKiPfi",
	"_Z11adam_updatePfPKffffi",
};
#define NKERNELS (sizeof kernel_names / sizeof kernel_names[0])

/* Streams of the simulated device: ids as CUDA hands them out (not 0..3). */
static const uint32_t stream_ids[4] = { 7, 13, 14, 15 };

/* ---- 1. Decoding ---------------------------------------------------------------------------- */

struct synth {
	uint8_t **bufs;
	size_t *valid;
	size_t nbufs, buf_size;
	uint64_t records, kernels, memcpys, memsets;
	size_t bytes; /* valid bytes in all buffers */
	uint8_t *dst; /* the memcpy destination, as large as all valid bytes together */
};

/* Fills one record at p with the next activity of the mix; returns its size. */
static size_t fill_record(uint8_t *p, uint64_t *t, uint32_t *corr, struct synth *s)
{
	uint32_t r = rnd(100);
	uint32_t stream = stream_ids[rnd(4)];
	uint64_t start = *t, dur = 2000 + rnd(40000);
	*t += 500 + rnd(5000);
	if (r < 80) {
		CUpti_ActivityKernel10 *k = (CUpti_ActivityKernel10 *)(void *)p;
		memset(k, 0, sizeof *k);
		k->kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
		k->start = start;
		k->end = start + dur;
		k->completed = k->end;
		k->deviceId = 0;
		k->contextId = 1;
		k->streamId = stream;
		k->correlationId = ++*corr;
		k->name = kernel_names[rnd(NKERNELS)];
		k->gridX = 1024 >> rnd(4);
		k->gridY = 1;
		k->gridZ = 1;
		k->blockX = 256;
		k->blockY = 1;
		k->blockZ = 1;
		k->registersPerThread = 32 + (uint16_t)(8 * rnd(4));
		k->staticSharedMemory = 0;
		k->dynamicSharedMemory = (int32_t)(rnd(2) * 16384);
		k->gridId = (int64_t)*corr;
		s->kernels++;
		return sizeof *k;
	}
	if (r < 95) {
		CUpti_ActivityMemcpy6 *m = (CUpti_ActivityMemcpy6 *)(void *)p;
		memset(m, 0, sizeof *m);
		m->kind = CUPTI_ACTIVITY_KIND_MEMCPY;
		m->copyKind = rnd(2) ? CUPTI_ACTIVITY_MEMCPY_KIND_HTOD : CUPTI_ACTIVITY_MEMCPY_KIND_DTOH;
		m->srcKind = m->copyKind == CUPTI_ACTIVITY_MEMCPY_KIND_HTOD ? CUPTI_ACTIVITY_MEMORY_KIND_PINNED
									     : CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
		m->dstKind = m->copyKind == CUPTI_ACTIVITY_MEMCPY_KIND_HTOD ? CUPTI_ACTIVITY_MEMORY_KIND_DEVICE
									     : CUPTI_ACTIVITY_MEMORY_KIND_PINNED;
		m->flags = CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC;
		m->bytes = 4096u << rnd(12);
		m->start = start;
		m->end = start + dur;
		m->deviceId = 0;
		m->contextId = 1;
		m->streamId = stream;
		m->correlationId = ++*corr;
		s->memcpys++;
		return sizeof *m;
	}
	CUpti_ActivityMemset4 *m = (CUpti_ActivityMemset4 *)(void *)p;
	memset(m, 0, sizeof *m);
	m->kind = CUPTI_ACTIVITY_KIND_MEMSET;
	m->value = 0;
	m->bytes = 4096u << rnd(12);
	m->start = start;
	m->end = start + dur;
	m->deviceId = 0;
	m->contextId = 1;
	m->streamId = stream;
	m->correlationId = ++*corr;
	m->flags = CUPTI_ACTIVITY_FLAG_MEMSET_ASYNC;
	m->memoryKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
	s->memsets++;
	return sizeof *m;
}

/* Fills nbufs page-aligned buffers of buf_size bytes as CUPTI would: records back to back at
 * 8-byte aligned offsets until the next one does not fit. */
static int synth_build(struct synth *s, size_t nbufs, size_t buf_size)
{
	memset(s, 0, sizeof *s);
	s->nbufs = nbufs;
	s->buf_size = buf_size;
	s->bufs = calloc(nbufs, sizeof *s->bufs);
	s->valid = calloc(nbufs, sizeof *s->valid);
	if (!s->bufs || !s->valid)
		return -1;
	uint64_t t = 1700000000000000000ull; /* CUPTI's clock is CLOCK_REALTIME */
	uint32_t corr = 0;
	for (size_t b = 0; b < nbufs; b++) {
		void *mem;
		if (posix_memalign(&mem, 4096, buf_size))
			return -1;
		s->bufs[b] = mem;
		size_t off = 0;
		/* The largest record of the mix must fit, so that no record is cut short. */
		while (off + sizeof(CUpti_ActivityKernel10) <= buf_size) {
			off += (fill_record(s->bufs[b] + off, &t, &corr, s) + 7) & ~(size_t)7;
			s->records++;
		}
		s->valid[b] = off;
		s->bytes += off;
	}
	s->dst = malloc(s->bytes);
	if (!s->dst)
		return -1;
	memset(s->dst, 1, s->bytes); /* resident before it is timed */
	return 0;
}

static void synth_free(struct synth *s)
{
	for (size_t b = 0; b < s->nbufs && s->bufs; b++)
		free(s->bufs[b]);
	free(s->bufs);
	free(s->valid);
	free(s->dst);
}

/* The iteration of libcupti 13.0 for the kinds of the mix, with no library call: what decoding
 * costs when walking the buffer is free. Same contract as cuptiActivityGetNextRecord. */
static size_t record_size(uint32_t kind)
{
	switch (kind) {
	case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
	case CUPTI_ACTIVITY_KIND_KERNEL:
		return sizeof(CUpti_ActivityKernel10);
	case CUPTI_ACTIVITY_KIND_MEMCPY:
		return sizeof(CUpti_ActivityMemcpy6);
	case CUPTI_ACTIVITY_KIND_MEMSET:
		return sizeof(CUpti_ActivityMemset4);
	default:
		return 0;
	}
}

static CUptiResult CUPTIAPI trivial_next_record(uint8_t *buffer, size_t valid, CUpti_Activity **record)
{
	if (!buffer || !record)
		return CUPTI_ERROR_INVALID_PARAMETER;
	size_t off = 0;
	if (*record) {
		size_t prev = record_size((*record)->kind);
		if (!prev)
			return CUPTI_ERROR_INVALID_KIND;
		off = (size_t)((uint8_t *)*record - buffer) + ((prev + 7) & ~(size_t)7);
	}
	if (off + sizeof(CUpti_ActivityKind) > valid)
		return CUPTI_ERROR_MAX_LIMIT_REACHED;
	size_t size = record_size(((CUpti_Activity *)(void *)(buffer + off))->kind);
	if (!size)
		return CUPTI_ERROR_INVALID_KIND;
	if (off + size > valid)
		return CUPTI_ERROR_MAX_LIMIT_REACHED;
	*record = (CUpti_Activity *)(void *)(buffer + off);
	return CUPTI_SUCCESS;
}

struct decode_run {
	double ns;
	uint64_t events, dropped, bad, other;
	long faults;
};

/* One decode of every buffer through f. The timed part ends with the hand-over of the events
 * (what stop does once); freeing them is left out, as the decoder itself never frees. */
static struct decode_run decode_once(const struct tfprof__cupti_fns *f, const struct synth *s)
{
	struct decode_run r = { 0 };
	struct tfprof__gpu_result g;
	struct tfprof__activity_summary sum;
	long f0 = minor_faults();
	uint64_t t0 = now_ns();
	int rc = tfprof__activity_decode_buffers(f, s->bufs, s->valid, s->nbufs, (size_t)4 << 30, &g, &sum);
	r.ns = (double)(now_ns() - t0);
	r.faults = minor_faults() - f0;
	if (rc) {
		fprintf(stderr, "cupti_ingest: tfprof__activity_decode_buffers: %s\n", strerror(-rc));
		exit(1);
	}
	r.events = g.nevents;
	r.dropped = g.dropped_by_bound + g.zero_timestamps;
	r.bad = sum.buffers_bad;
	r.other = sum.records_other;
	sink = g.events ? g.events->ev[0].end : 0;
	tfprof__gpu_result_free(&g);
	return r;
}

static double memcpy_once(const struct synth *s)
{
	uint64_t t0 = now_ns();
	size_t off = 0;
	for (size_t b = 0; b < s->nbufs; b++) {
		memcpy(s->dst + off, s->bufs[b], s->valid[b]);
		off += s->valid[b];
	}
	/* The copy must not be optimized away. */
	__asm__ __volatile__("" : : "r"(s->dst) : "memory");
	double ns = (double)(now_ns() - t0);
	sink = s->dst[off / 2];
	return ns;
}

struct decode_case {
	const char *iterator; /* "libcupti" or "trivial" */
	bool fresh;           /* decoded events land on pages never touched before */
	const struct tfprof__cupti_fns *f;
	double ns[MAX_REPS], ratio[MAX_REPS];
	struct decode_run last;
	long faults;
};

static bool run_decode(const struct synth *s, int reps, bool quick, bool *pass_out)
{
	struct tfprof__cupti_fns trivial = { .path = "(trivial iterator in bench/cupti_ingest.c)" };
	trivial.ActivityGetNextRecord = trivial_next_record;
	const struct tfprof__cupti_fns *real = NULL;
	char err[4096];
	int lrc = tfprof__cupti_load(&real, err, sizeof err);
	struct decode_case cases[3] = { { .iterator = "libcupti", .f = real },
					{ .iterator = "trivial", .f = &trivial },
					{ .iterator = "libcupti", .fresh = true, .f = real } };
	size_t ncases = 3;
	if (lrc) {
		/* No libcupti here: only the trivial iterator can be measured. */
		cases[0] = cases[1];
		cases[1] = cases[0];
		cases[1].fresh = true;
		ncases = 2;
	}
	double memcpy_ns[MAX_REPS];
	/* Warm-up: the decoder's chunks come from the heap after this (see main's mallopt), and
	 * libcupti's first call does its lazy setup. */
	for (size_t c = 0; c < ncases; c++)
		(void)decode_once(cases[c].f, s);
	(void)memcpy_once(s);
	for (int r = 0; r < reps; r++) {
		memcpy_ns[r] = memcpy_once(s);
		for (size_t c = 0; c < ncases; c++) {
			/* Handing the heap's free pages back makes the decoder's chunks new memory, as
			 * in a process's first session. */
			if (cases[c].fresh)
				malloc_trim(0);
			struct decode_run d = decode_once(cases[c].f, s);
			cases[c].ns[r] = d.ns;
			cases[c].ratio[r] = d.ns / memcpy_ns[r];
			cases[c].last = d;
			cases[c].faults += d.faults;
		}
	}
	const char *q = quick ? ",\"quick\":true" : "";
	double mc = median(memcpy_ns, reps);
	printf("{" BENCH ",\"case\":\"memcpy\",\"bytes\":%zu,\"ns\":%.0f,\"gb_per_s\":%.2f,"
	       "\"records\":%" PRIu64 ",\"buffers\":%zu,\"buffer_kb\":%zu,\"reps\":%d%s}\n",
	       s->bytes, mc, (double)s->bytes / mc, s->records, s->nbufs, s->buf_size >> 10, reps, q);
	if (lrc)
		printf("{" BENCH ",\"case\":\"decode\",\"iterator\":\"libcupti\",\"available\":false,"
		       "\"note\":\"only the trivial iterator was measured\",\"reason\":\"%s\"%s}\n",
		       json_safe(err), q);
	bool pass = false;
	for (size_t c = 0; c < ncases; c++) {
		struct decode_case *k = &cases[c];
		double ns = median(k->ns, reps), ratio = median(k->ratio, reps);
		double rps = (double)s->records / ns * 1e9;
		bool ok = rps >= TARGET_RECORDS_PER_S && ratio <= TARGET_RATIO_TO_MEMCPY;
		bool complete = k->last.events == s->records && !k->last.dropped && !k->last.bad && !k->last.other;
		/* The target is judged on the production path: the real libcupti when there is one. */
		if (c == 0)
			pass = ok && complete;
		printf("{" BENCH ",\"case\":\"decode\",\"iterator\":\"%s\",\"chunks\":\"%s\",\"library\":\"%s\","
		       "\"records_per_s\":%.0f,\"ns_per_record\":%.2f,\"bytes_per_s\":%.0f,"
		       "\"ratio_to_memcpy\":%.3f,\"target_records_per_s\":%.0f,"
		       "\"target_ratio_to_memcpy\":%.1f,\"pass\":%s,\"judged\":%s,\"records\":%" PRIu64 ","
		       "\"kernels\":%" PRIu64 ",\"memcpys\":%" PRIu64 ",\"memsets\":%" PRIu64 ","
		       "\"events_stored\":%" PRIu64 ",\"complete\":%s,\"minflt_per_rep\":%.0f,"
		       "\"stored_bytes_per_record\":%zu,\"reps\":%d%s}\n",
		       k->iterator, k->fresh ? "fresh" : "resident", json_safe(k->f->path), rps,
		       ns / (double)s->records, (double)s->bytes / ns * 1e9, ratio, TARGET_RECORDS_PER_S, TARGET_RATIO_TO_MEMCPY, b2s(ok), b2s(c == 0),
		       s->records, s->kernels, s->memcpys, s->memsets, k->last.events, b2s(complete),
		       (double)k->faults / reps, sizeof(struct tfprof__dev_event), reps, q);
	}
	*pass_out = pass;
	return !lrc;
}

/* ---- 3. What the events cost in the file ----------------------------------------------------- */

static size_t varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* A field's bytes: a one-byte tag (every field number here is below 16) and the value. */
static size_t int_field(int64_t v)
{
	return 1 + varint_size((uint64_t)v);
}

enum ev_class { C_HOST_SCOPE, C_HOST_API, C_DEV_KERNEL, C_DEV_MEMCPY, C_DEV_MEMSET, C_DEV_OTHER, NCLASS };
static const char *const class_names[NCLASS] = { "host_scope",    "host_cuda_api", "device_kernel",
						 "device_memcpy", "device_memset", "device_other" };

#define MAX_STAT_NAMES 64

struct class_bytes {
	uint64_t events, total, framing, metadata_id, offset_ps, duration_ps, stats;
	uint64_t stat_bytes[MAX_STAT_NAMES];
	uint64_t stat_count[MAX_STAT_NAMES];
};

struct file_bytes {
	size_t file;
	uint64_t events, event_bytes;
	struct class_bytes c[NCLASS];
	char *stat_names[MAX_STAT_NAMES]; /* stat names seen, across planes */
	size_t nstat_names;
};

static size_t stat_slot(struct file_bytes *fb, const char *name)
{
	for (size_t i = 0; i < fb->nstat_names; i++)
		if (!strcmp(fb->stat_names[i], name))
			return i;
	if (fb->nstat_names == MAX_STAT_NAMES)
		return MAX_STAT_NAMES - 1; /* lumped together; never reached by tfprof's profiles */
	fb->stat_names[fb->nstat_names] = strdup(name);
	return fb->nstat_names++;
}

static void file_bytes_free(struct file_bytes *fb)
{
	for (size_t i = 0; i < fb->nstat_names; i++)
		free(fb->stat_names[i]);
}

/* Reads a profile back and attributes each event's bytes (its framing inside the line, each
 * field, each stat with its own framing) to its class. Returns 0, or -1 if it does not parse. */
static int analyze_file(const uint8_t *data, size_t len, struct file_bytes *fb)
{
	memset(fb, 0, sizeof *fb);
	fb->file = len;
	Tensorflow__Profiler__XSpace *xs = tensorflow__profiler__xspace__unpack(NULL, len, data);
	if (!xs)
		return -1;
	for (size_t pi = 0; pi < xs->n_planes; pi++) {
		const Tensorflow__Profiler__XPlane *pl = xs->planes[pi];
		bool host = pl->name && !strcmp(pl->name, "/host:CPU");
		bool dev = pl->name && !strncmp(pl->name, "/device:GPU:", 12);
		if (!host && !dev)
			continue;
		/* Stat metadata id -> name, and the ids of the stats that classify events. */
		int64_t max_id = 0;
		for (size_t i = 0; i < pl->n_stat_metadata; i++)
			if (pl->stat_metadata[i]->key > max_id)
				max_id = pl->stat_metadata[i]->key;
		const char **names = calloc((size_t)max_id + 1, sizeof *names);
		if (!names)
			return -1;
		int64_t id_corr = -1, id_kernel = -1, id_memcpy = -1, id_memset = -1;
		for (size_t i = 0; i < pl->n_stat_metadata; i++) {
			const Tensorflow__Profiler__XPlane__StatMetadataEntry *e = pl->stat_metadata[i];
			const char *n = e->value && e->value->name ? e->value->name : "";
			names[e->key] = n;
			if (!strcmp(n, "correlation_id"))
				id_corr = e->key;
			else if (!strcmp(n, "kernel_details"))
				id_kernel = e->key;
			else if (!strcmp(n, "memcpy_details"))
				id_memcpy = e->key;
			else if (!strcmp(n, "Memset_details"))
				id_memset = e->key;
		}
		for (size_t li = 0; li < pl->n_lines; li++) {
			const Tensorflow__Profiler__XLine *l = pl->lines[li];
			for (size_t ei = 0; ei < l->n_events; ei++) {
				const Tensorflow__Profiler__XEvent *ev = l->events[ei];
				enum ev_class cls = host ? C_HOST_SCOPE : C_DEV_OTHER;
				for (size_t si = 0; si < ev->n_stats; si++) {
					int64_t m = ev->stats[si]->metadata_id;
					if (host && m == id_corr)
						cls = C_HOST_API;
					else if (dev && m == id_kernel)
						cls = C_DEV_KERNEL;
					else if (dev && m == id_memcpy)
						cls = C_DEV_MEMCPY;
					else if (dev && m == id_memset)
						cls = C_DEV_MEMSET;
				}
				struct class_bytes *c = &fb->c[cls];
				size_t packed = tensorflow__profiler__xevent__get_packed_size(ev);
				size_t total = 1 + varint_size(packed) + packed;
				c->events++;
				c->total += total;
				c->framing += total - packed;
				c->metadata_id += ev->metadata_id ? int_field(ev->metadata_id) : 0;
				if (ev->data_case == TENSORFLOW__PROFILER__XEVENT__DATA_OFFSET_PS)
					c->offset_ps += int_field(ev->offset_ps);
				else if (ev->data_case == TENSORFLOW__PROFILER__XEVENT__DATA_NUM_OCCURRENCES)
					c->offset_ps += int_field(ev->num_occurrences);
				c->duration_ps += ev->duration_ps ? int_field(ev->duration_ps) : 0;
				for (size_t si = 0; si < ev->n_stats; si++) {
					const Tensorflow__Profiler__XStat *st = ev->stats[si];
					size_t sp = tensorflow__profiler__xstat__get_packed_size(st);
					size_t sb = 1 + varint_size(sp) + sp;
					int64_t m = st->metadata_id;
					size_t slot = stat_slot(fb, m >= 0 && m <= max_id && names[m] ? names[m] : "?");
					c->stats += sb;
					c->stat_bytes[slot] += sb;
					c->stat_count[slot]++;
				}
				fb->events++;
				fb->event_bytes += total;
			}
		}
		free(names);
	}
	tensorflow__profiler__xspace__free_unpacked(xs, NULL);
	return 0;
}

static void print_event_bytes(const char *profile, const struct file_bytes *fb, bool quick)
{
	const char *q = quick ? ",\"quick\":true" : "";
	for (int k = 0; k < NCLASS; k++) {
		const struct class_bytes *c = &fb->c[k];
		if (!c->events)
			continue;
		double n = (double)c->events;
		printf("{" BENCH ",\"case\":\"event_bytes\",\"profile\":\"%s\",\"class\":\"%s\","
		       "\"events\":%" PRIu64 ",\"bytes_per_event\":%.2f,\"framing\":%.2f,"
		       "\"metadata_id\":%.2f,\"offset_ps\":%.2f,\"duration_ps\":%.2f,\"stats\":%.2f,"
		       "\"per_stat\":{",
		       profile, class_names[k], c->events, (double)c->total / n, (double)c->framing / n,
		       (double)c->metadata_id / n, (double)c->offset_ps / n, (double)c->duration_ps / n,
		       (double)c->stats / n);
		bool first = true;
		for (size_t i = 0; i < fb->nstat_names; i++) {
			if (!c->stat_count[i])
				continue;
			/* Bytes per event of the class, and how many events of it carry the stat. */
			printf("%s\"%s\":{\"bytes\":%.2f,\"share\":%.3f}", first ? "" : ",", fb->stat_names[i],
			       (double)c->stat_bytes[i] / n, (double)c->stat_count[i] / n);
			first = false;
		}
		printf("}%s}\n", q);
	}
}

/* ---- 2. Merge and write ------------------------------------------------------------------- */

/* A synthetic GPU result: n events of the decode mix on 4 streams of device 0, back to back per
 * stream, with the clock pairs that map the collector's clock 1:1 onto the session's. */
static int synth_result(struct tfprof__gpu_result *g, size_t n, const struct tfprof__timebase *tb, uint64_t *span_ns)
{
	memset(g, 0, sizeof *g);
	g->active = 1;
	g->nnames = NKERNELS + 1;
	g->names = calloc(g->nnames, sizeof *g->names);
	g->devices = calloc(1, sizeof *g->devices);
	if (!g->names || !g->devices || !(g->names[0] = strdup("")))
		return -1;
	for (size_t i = 0; i < NKERNELS; i++)
		if (!(g->names[i + 1] = strdup(kernel_names[i])))
			return -1;
	g->ndevices = 1;
	*g->devices = (struct tfprof__dev_device){ .id = 0, .name = "NVIDIA H100 80GB HBM3", .cc_major = 9,
						    .sm_count = 132, .memory_size = 80ull << 30,
						    .memory_bandwidth = 3350000000000ull, .clock_khz = 1980000 };
	const uint64_t c0 = 1700000000000000000ull;
	uint64_t tail[4] = { c0, c0, c0, c0 };
	struct tfprof__dev_chunk **link = &g->events;
	struct tfprof__dev_chunk *c = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!c || c->n == c->cap) {
			c = malloc(tfprof__activity_chunk_bytes());
			if (!c)
				return -1;
			c->next = NULL;
			c->n = 0;
			c->cap = TFPROF_CUPTI_CHUNK_EVENTS;
			*link = c;
			link = &c->next;
		}
		struct tfprof__dev_event *e = &c->ev[c->n++];
		memset(e, 0, sizeof *e);
		uint32_t s = rnd(4), r = rnd(100);
		e->start = tail[s] + 1000 + rnd(9000);
		e->end = e->start + 2000 + rnd(40000);
		tail[s] = e->end;
		e->correlation_id = i + 1;
		e->device_id = 0;
		e->context_id = 1;
		e->stream_id = stream_ids[s];
		if (r < 80) {
			e->kind = TFPROF_DEV_KERNEL;
			e->name = 1 + rnd(NKERNELS);
			e->u.kernel.grid[0] = 1024 >> rnd(4);
			e->u.kernel.grid[1] = e->u.kernel.grid[2] = 1;
			e->u.kernel.block[0] = 256;
			e->u.kernel.block[1] = e->u.kernel.block[2] = 1;
			e->u.kernel.registers_per_thread = 32 + 8 * rnd(4);
			e->u.kernel.dynamic_shared = (int32_t)(rnd(2) * 16384);
		} else if (r < 95) {
			e->kind = TFPROF_DEV_MEMCPY;
			bool h2d = rnd(2);
			e->u.memcpy.copy_kind = h2d ? TFPROF_COPY_HTOD : TFPROF_COPY_DTOH;
			e->u.memcpy.src_kind = h2d ? 2 : 3;
			e->u.memcpy.dst_kind = h2d ? 3 : 2;
			e->u.memcpy.bytes = 4096u << rnd(12);
			e->u.memcpy.async = 1;
		} else {
			e->kind = TFPROF_DEV_MEMSET;
			e->u.memset.bytes = 4096u << rnd(12);
			e->u.memset.memory_kind = 3;
			e->u.memset.async = 1;
		}
		g->nevents++;
	}
	uint64_t end = c0;
	for (int s = 0; s < 4; s++)
		if (tail[s] > end)
			end = tail[s];
	*span_ns = end - c0;
	g->begin = (struct tfprof__clock_pair){ .collector_ns = c0, .anchor = tb->begin };
	g->end = (struct tfprof__clock_pair){ .collector_ns = end, .anchor = tb->end };
	return 0;
}

/* The launch map a host merge would leave: every device event's launch ran in one of three
 * scopes of a step of 100 launches. */
static int fill_launches(struct tfprof__profile *p, struct tfprof__launch_map *m, size_t n)
{
	static const char *const scopes[] = { "forward", "backward", "optimizer" };
	uint32_t ids[3];
	for (int i = 0; i < 3; i++)
		if ((ids[i] = tfprof__strtab_intern(&p->strs, scopes[i])) == UINT32_MAX)
			return -1;
	for (size_t i = 0; i < n; i++) {
		struct tfprof__launch *l = tfprof__launch_map_put(m, i + 1);
		if (!l)
			return -1;
		l->count = 1;
		l->has_scope = l->has_step = true;
		l->scope_name = ids[(i % 100) * 3 / 100];
		l->step_num = (int64_t)(i / 100);
	}
	return 0;
}

static void remove_profile(const char *path)
{
	char *dir = strdup(path);
	unlink(path);
	if (dir) {
		char *slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			rmdir(dir);
		}
		free(dir);
	}
}

struct merge_run {
	double merge_ns, encode_ns, write_ns;
	size_t bytes;
	uint64_t events_written;
};

static int merge_once(const struct tfprof__gpu_result *g, const struct tfprof__timebase *tb, size_t n,
		      struct merge_run *r, struct file_bytes *fb)
{
	struct tfprof__profile p;
	struct tfprof__launch_map launches = { 0 };
	uint8_t *data = NULL;
	size_t len = 0;
	char *path = NULL;
	int rc = -1;
	if (tfprof__profile_init(&p) || !(p.hostname = strdup("bench")) || fill_launches(&p, &launches, n))
		goto out;
	uint64_t align, t0 = now_ns();
	if (tfprof__merge_device(&p, tb, g, &launches, &align))
		goto out;
	uint64_t t1 = now_ns();
	if (tfprof__xspace_encode(&p, &data, &len))
		goto out;
	uint64_t t2 = now_ns();
	if (tfprof__write_profile(logdir, "merge_write", "bench", data, len, &path))
		goto out;
	uint64_t t3 = now_ns();
	r->merge_ns = (double)(t1 - t0);
	r->encode_ns = (double)(t2 - t1);
	r->write_ns = (double)(t3 - t2);
	r->bytes = len;
	if (fb && analyze_file(data, len, fb))
		goto out;
	rc = 0;
out:
	if (path)
		remove_profile(path);
	free(path);
	free(data);
	tfprof__launch_map_free(&launches);
	tfprof__profile_free(&p);
	return rc;
}

static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, n) && line[n] == ':')
			kb = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/* The memory stop adds: in a child forked before any repetition ran (their freed heap would be
 * resident already and hide it), the resident peak (VmHWM, reset through clear_refs) of one
 * merge + encode + write above the resident size before it. Returns bytes, or -1 when the kernel
 * cannot tell. */
static long long stop_peak_growth(const struct tfprof__gpu_result *g, const struct tfprof__timebase *tb,
				  size_t n)
{
	int fd[2];
	if (pipe(fd))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(fd[0]);
		long long growth = -1;
		FILE *cr = fopen("/proc/self/clear_refs", "w");
		if (cr && fputs("5", cr) >= 0 && fclose(cr) == 0) {
			long before = status_kb("VmRSS");
			struct merge_run r;
			if (before >= 0 && merge_once(g, tb, n, &r, NULL) == 0)
				growth = (status_kb("VmHWM") - before) * 1024LL;
		}
		ssize_t w = write(fd[1], &growth, sizeof growth);
		_exit(w == (ssize_t)sizeof growth ? 0 : 1);
	}
	close(fd[1]);
	long long growth = -1;
	if (pid < 0 || read(fd[0], &growth, sizeof growth) != (ssize_t)sizeof growth)
		growth = -1;
	close(fd[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return growth;
}

static bool run_merge(size_t n, int reps, bool quick, bool *bytes_pass)
{
	/* A time base in which ticks are nanoseconds, spanning the synthetic events. */
	struct tfprof__timebase tb = { .begin = { .ticks = 1000000, .mono_ns = 1000000, .real_ns = 1700000000000000000ull } };
	struct tfprof__gpu_result g;
	uint64_t span;
	tb.end = tb.begin;
	rng_state = 0x243f6a8885a308d3ull;
	/* The span is known only once the events exist; the anchors follow it. */
	if (synth_result(&g, n, &tb, &span)) {
		fprintf(stderr, "cupti_ingest: out of memory building %zu device events\n", n);
		exit(1);
	}
	tb.end.ticks += span;
	tb.end.mono_ns += span;
	tb.end.real_ns += span;
	g.end.anchor = tb.end;
	/* Before any repetition, whose freed heap would already be resident. */
	long long growth = stop_peak_growth(&g, &tb, n);
	size_t recorded = n * sizeof(struct tfprof__dev_event);
	double merge_ns[MAX_REPS], encode_ns[MAX_REPS], write_ns[MAX_REPS], total_ns[MAX_REPS], mem_ns[MAX_REPS];
	struct merge_run r = { 0 };
	struct file_bytes fb;
	for (int i = 0; i < reps; i++) {
		if (merge_once(&g, &tb, n, &r, i == 0 ? &fb : NULL)) {
			fprintf(stderr, "cupti_ingest: merge/encode/write of %zu events failed\n", n);
			exit(1);
		}
		merge_ns[i] = r.merge_ns;
		encode_ns[i] = r.encode_ns;
		write_ns[i] = r.write_ns;
		total_ns[i] = r.merge_ns + r.encode_ns + r.write_ns;
		mem_ns[i] = r.merge_ns + r.encode_ns;
	}
	tfprof__gpu_result_free(&g);
	double total = median(total_ns, reps);
	double eps = (double)n / total * 1e9;
	double bpe = (double)r.bytes / (double)n;
	bool pass = eps >= TARGET_MERGE_EVENTS_PER_S;
	*bytes_pass = bpe <= TARGET_BYTES_PER_EVENT;
	const char *q = quick ? ",\"quick\":true" : "";
	/* write_ms includes the fsync that makes the profile crash-safe, so it measures the disk
	 * too; events_per_s_in_memory leaves it out. */
	printf("{" BENCH ",\"case\":\"merge_write\",\"profile\":\"device_synthetic\",\"events\":%zu,"
	       "\"events_in_file\":%" PRIu64 ",\"events_per_s\":%.0f,\"events_per_s_in_memory\":%.0f,"
	       "\"merge_ms\":%.2f,\"encode_ms\":%.2f,"
	       "\"write_ms\":%.2f,\"total_ms\":%.2f,\"target_events_per_s\":%.0f,\"pass\":%s,"
	       "\"file_bytes\":%zu,\"bytes_per_event\":%.2f,\"event_bytes_per_event\":%.2f,"
	       "\"target_bytes_per_event\":%.0f,\"bytes_pass\":%s,\"recorded_event_bytes\":%zu,"
	       "\"stop_peak_growth_bytes\":%lld,\"stop_memory_ratio\":%.2f,\"target_stop_memory_ratio\":%.1f,"
	       "\"stop_memory_pass\":%s,\"span_s\":%.2f,\"reps\":%d%s}\n",
	       n, fb.events, eps, (double)n / median(mem_ns, reps) * 1e9, median(merge_ns, reps) / 1e6, median(encode_ns, reps) / 1e6,
	       median(write_ns, reps) / 1e6, total / 1e6, TARGET_MERGE_EVENTS_PER_S, b2s(pass), r.bytes, bpe,
	       fb.events ? (double)fb.event_bytes / (double)fb.events : 0.0, TARGET_BYTES_PER_EVENT,
	       b2s(*bytes_pass), recorded, growth, growth >= 0 ? (double)growth / (double)recorded : -1.0,
	       TARGET_STOP_MEMORY_RATIO, b2s(growth >= 0 && (double)growth <= TARGET_STOP_MEMORY_RATIO * (double)recorded),
	       (double)span / 1e9, reps, q);
	print_event_bytes("device_synthetic", &fb, quick);
	file_bytes_free(&fb);
	return pass;
}

/* ---- 2b. A whole session on the CUPTI simulator ---------------------------------------------- */

#if HAVE_SIM
static const struct tfsim_dim3 grid = { 1024, 1, 1 }, block = { 256, 1, 1 };

/* One training step as a framework issues it: an input copy, forward and backward kernels on
 * the compute streams, an optimizer with a memset, and the loss copied back. */
static void sim_step(int step, const uint32_t *streams)
{
	TFPROF_SCOPE("Train", TFPROF_I64("step_num", step));
	{
		TFPROF_SCOPE("input");
		tfsim_memcpy(streams[3], TFSIM_COPY_HTOD, 8u << 20, 0, 1);
	}
	{
		TFPROF_SCOPE("forward");
		for (int i = 0; i < 10; i++)
			tfsim_launch_kernel(streams[i % 3], kernel_names[i % 4], grid, block, 5000 + 1000 * (uint32_t)i);
	}
	{
		TFPROF_SCOPE("backward");
		for (int i = 0; i < 10; i++)
			tfsim_launch_kernel(streams[i % 3], kernel_names[4 + i % 3], grid, block, 8000 + 1000 * (uint32_t)i);
	}
	{
		TFPROF_SCOPE("optimizer");
		tfsim_memset(streams[0], 1u << 20, 0, 0);
		for (int i = 0; i < 5; i++)
			tfsim_launch_kernel(streams[0], kernel_names[7], grid, block, 3000);
		tfsim_memcpy(streams[3], TFSIM_COPY_DTOH, 4, 0, 1);
	}
}

static int read_whole(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	struct stat st;
	if (fstat(fileno(f), &st) || !(*data = malloc((size_t)st.st_size + 1))) {
		fclose(f);
		return -1;
	}
	*len = fread(*data, 1, (size_t)st.st_size, f);
	fclose(f);
	return *len == (size_t)st.st_size ? 0 : -1;
}

static bool run_session(int steps, int reps, bool quick, bool *ran)
{
	Dl_info info;
	*ran = false;
	if (!dladdr((void *)tfsim_reset, &info) || !info.dli_fname) {
		printf("{" BENCH ",\"case\":\"session\",\"available\":false,\"note\":\"the CUPTI simulator's path is unknown\"}\n");
		return false;
	}
	setenv("TFPROF_CUPTI_LIBRARY", info.dli_fname, 1);
	double stop_ns[MAX_REPS], bpe[MAX_REPS];
	struct file_bytes fb = { 0 };
	uint64_t events = 0, dev_events = 0;
	size_t bytes = 0;
	bool gpu_ok = true;
	for (int r = 0; r < reps; r++) {
		tfsim_reset();
		int dev = tfsim_device_add(NULL);
		uint32_t streams[4];
		for (int i = 0; i < 4; i++)
			streams[i] = tfsim_stream_create(dev);
		TFPROF_OPTIONS(o, .run_name = "session", .host_name = "bench", .disable_nvtx = true);
		int rc = tfprof_start(logdir, &o);
		if (rc) {
			fprintf(stderr, "cupti_ingest: tfprof_start: %s\n", tfprof_strerror(rc));
			exit(1);
		}
		for (int s = 0; s < steps; s++)
			sim_step(s, streams);
		uint64_t t0 = now_ns();
		rc = tfprof_stop();
		stop_ns[r] = (double)(now_ns() - t0);
		const char *out = tfprof_last_output();
		uint8_t *data = NULL;
		size_t len = 0;
		if (rc || !out || read_whole(out, &data, &len) || analyze_file(data, len, &fb)) {
			fprintf(stderr, "cupti_ingest: the session's profile could not be written or read back\n");
			exit(1);
		}
		remove_profile(out);
		free(data);
		events = fb.events;
		dev_events = fb.c[C_DEV_KERNEL].events + fb.c[C_DEV_MEMCPY].events + fb.c[C_DEV_MEMSET].events +
			     fb.c[C_DEV_OTHER].events;
		gpu_ok = gpu_ok && dev_events > 0;
		bytes = len;
		bpe[r] = (double)len / (double)(events ? events : 1);
		stop_ns[r] /= (double)(events ? events : 1);
		if (r + 1 < reps)
			file_bytes_free(&fb);
	}
	double b = median(bpe, reps);
	bool pass = b <= TARGET_BYTES_PER_EVENT;
	const char *q = quick ? ",\"quick\":true" : "";
	printf("{" BENCH ",\"case\":\"session\",\"profile\":\"session_sim\",\"steps\":%d,\"events\":%" PRIu64 ","
	       "\"host_events\":%" PRIu64 ",\"device_events\":%" PRIu64 ",\"file_bytes\":%zu,"
	       "\"bytes_per_event\":%.2f,\"event_bytes_per_event\":%.2f,\"target_bytes_per_event\":%.0f,"
	       "\"bytes_pass\":%s,\"stop_ns_per_event\":%.1f,\"stop_events_per_s\":%.0f,\"gpu_traced\":%s,"
	       "\"iterator\":\"%s\",\"reps\":%d%s}\n",
	       steps, events, events - dev_events, dev_events, bytes, b,
	       events ? (double)fb.event_bytes / (double)events : 0.0, TARGET_BYTES_PER_EVENT, b2s(pass),
	       median(stop_ns, reps), 1e9 / median(stop_ns, reps), b2s(gpu_ok),
	       tfsim_using_real_iterator() ? "libcupti" : "simulator", reps, q);
	print_event_bytes("session_sim", &fb, quick);
	file_bytes_free(&fb);
	unsetenv("TFPROF_CUPTI_LIBRARY");
	*ran = gpu_ok;
	return pass && gpu_ok;
}
#endif

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

int main(int argc, char **argv)
{
	bool quick = false;
	int reps = 5;
	size_t nbufs = 16, buf_kb = 4096, nevents = 1000000;
	int steps = 2000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--buffers") && i + 1 < argc)
			nbufs = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--buffer-kb") && i + 1 < argc)
			buf_kb = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--events") && i + 1 < argc)
			nevents = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
			steps = atoi(argv[++i]);
		else {
			fprintf(stderr,
				"usage: %s [--quick] [--reps N] [--buffers N] [--buffer-kb KB] [--events N] [--steps N]\n",
				argv[0]);
			return 2;
		}
	}
	if (quick) {
		reps = 1;
		nbufs = 2;
		buf_kb = 256;
		nevents = 20000;
		steps = 20;
	}
	if (reps < 1 || reps > MAX_REPS || !nbufs || buf_kb < 4 || !nevents || steps < 1) {
		fprintf(stderr, "cupti_ingest: --reps must be 1..%d and the sizes positive\n", MAX_REPS);
		return 2;
	}
	if (!mkdtemp(logdir)) {
		fprintf(stderr, "cupti_ingest: mkdtemp(%s): %s\n", logdir, strerror(errno));
		return 1;
	}
	/* The measurements are of tfprof, not of the environment: no GPU switch-off, no NVTX tool. */
	unsetenv("TFPROF_GPU");
	unsetenv("NVTX_INJECTION64_PATH");
	/* Decoded chunks (352 KiB each) and merge arrays come back from the heap in every
	 * repetition instead of fresh mmap'd pages: the steady state of a process that profiles
	 * repeatedly. The page faults of a first session are counted in minflt_per_rep. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, INT_MAX);
	tfprof__clock_init();

	struct synth s;
	if (synth_build(&s, nbufs, buf_kb << 10)) {
		fprintf(stderr, "cupti_ingest: out of memory building %zu buffers of %zu KiB\n", nbufs, buf_kb);
		return 1;
	}
	bool decode_pass = false;
	bool have_libcupti = run_decode(&s, reps, quick, &decode_pass);
	synth_free(&s);

	int mreps = quick ? 1 : (reps < 3 ? reps : 3);
	bool merge_bytes_pass = false;
	bool merge_pass = run_merge(nevents, mreps, quick, &merge_bytes_pass);

	bool session_pass = false, session_ran = false;
#if HAVE_SIM
	session_pass = run_session(steps, mreps, quick, &session_ran);
#else
	printf("{" BENCH ",\"case\":\"session\",\"available\":false,\"note\":\"built without the CUPTI simulator\"}\n");
#endif
	/* Bytes per event are judged on both files: the synthetic device profile and the session's
	 * host + device profile (the latter only where the simulator was built). */
	bool bytes_pass = merge_bytes_pass && (session_pass || !HAVE_SIM);
	printf("{" BENCH ",\"summary\":true,\"decode_pass\":%s,\"decode_iterator\":\"%s\","
	       "\"merge_write_pass\":%s,\"bytes_per_event_pass\":%s,\"session_ran\":%s,\"all_pass\":%s,"
	       "\"cpus\":%ld%s}\n",
	       b2s(decode_pass), have_libcupti ? "libcupti" : "trivial", b2s(merge_pass), b2s(bytes_pass),
	       b2s(session_ran), b2s(decode_pass && merge_pass && bytes_pass), sysconf(_SC_NPROCESSORS_ONLN),
	       quick ? ",\"quick\":true" : "");
	nftw(logdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
