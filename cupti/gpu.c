/* SPDX-License-Identifier: Apache-2.0 */
/* GPU tracing for one session (the interface in gpu.h): loads libcupti, sets up activity
 * collection and API callbacks, pairs CUPTI's clock with tfprof's, and at stop hands the
 * decoded device events to the session. Every failure falls back to host-only tracing; the
 * reason and its fix are reported in the result's errors.
 *
 * Threads: tfprof__gpu_start and tfprof__gpu_stop run on the thread that starts or stops the
 * session, under the session lock, never concurrently with each other. The state below is only
 * touched there; the callbacks that run on other threads live in activity.c and callbacks.c. */
#include "gpu.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activity.h"
#include "callbacks.h"
#include "clock.h"
#include "env.h"
#include "loader.h"
#include "profile.h"

/* Buffer sizing. NVIDIA suggests 1 to 10 MB per activity buffer. A 4 MiB buffer holds about
 * 19,000 kernel records (216 bytes each), so a thread launching at 100,000 kernels/s fills
 * one every 0.2 s. CUDA 13 gives each thread that produces records its own buffer, so the pool
 * must cover the launching threads plus the buffers waiting to be decoded: 16 covers 8 busy
 * threads with one full buffer each in flight. 64 MiB of address space is committed only as
 * CUPTI writes it, and is small next to the 256 MiB default bound on decoded events. */
#define DEFAULT_BUFFER_KB 4096u
#define DEFAULT_BUFFERS 16u
#define MIN_BUFFER_KB 64u              /* far above the largest record; keeps drops sane */
#define MAX_BUFFER_KB (256u * 1024u)
#define MAX_BUFFERS 4096u
#define DEFAULT_MAX_MEMORY ((size_t)256 << 20)

static struct {
	bool started; /* tfprof__gpu_start ran since the last stop */
	bool active;  /* and GPU tracing runs */
	const struct tfprof__cupti_fns *f;
	struct tfprof__activity_config cfg;
	char **errors, **warnings;
	size_t nerrors, nwarnings;
	struct tfprof__clock_pair begin;
} G;

/* Set in a fork child whose parent had GPU tracing active at the fork (tfprof__gpu_fork_child):
 * kept apart from G, which every start clears, since it holds for the life of the process. */
static bool forked_from_active;

/* GPU tracing's messages, each a line starting "tfprof: " (the first argument is always a
 * format literal). Out of memory drops the message. */
#define GPU_ERROR(fmt, ...) tfprof__msg_add(&G.errors, &G.nerrors, "tfprof: " fmt, ##__VA_ARGS__)
#define GPU_WARN(fmt, ...) tfprof__msg_add(&G.warnings, &G.nwarnings, "tfprof: " fmt, ##__VA_ARGS__)

/* A positive integer from the environment, or fallback (with a warning when it was set but is
 * not a number in [lo, hi]). */
static size_t env_size(const char *name, size_t fallback, size_t lo, size_t hi)
{
	const char *e = tfprof__getenv(name);
	if (!e || !*e)
		return fallback;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(e, &end, 10);
	if (errno || *end || v < lo || v > hi) {
		GPU_WARN("%s=%s is not a whole number from %zu to %zu; using %zu", name, e, lo, hi, fallback);
		return fallback;
	}
	return (size_t)v;
}

static void resolve_config(const struct tfprof__gpu_config *in)
{
	struct tfprof__gpu_config c = in ? *in : (struct tfprof__gpu_config){ 0 };
	size_t kb;
	if (c.buffer_size) {
		kb = (c.buffer_size + 1023) >> 10;
		if (kb < MIN_BUFFER_KB)
			kb = MIN_BUFFER_KB;
		if (kb > MAX_BUFFER_KB)
			kb = MAX_BUFFER_KB;
	} else {
		kb = env_size("TFPROF_CUPTI_BUFFER_KB", DEFAULT_BUFFER_KB, MIN_BUFFER_KB, MAX_BUFFER_KB);
	}
	/* Whole pages: CUPTI needs 8-byte alignment, pages make every buffer start on one. */
	G.cfg.buffer_size = ((kb << 10) + 4095) & ~(size_t)4095;
	size_t count = c.buffer_count;
	if (count)
		count = count > MAX_BUFFERS ? MAX_BUFFERS : count;
	else
		count = env_size("TFPROF_CUPTI_BUFFERS", DEFAULT_BUFFERS, 1, MAX_BUFFERS);
	G.cfg.buffer_count = count;
	G.cfg.max_memory = c.max_memory ? c.max_memory : DEFAULT_MAX_MEMORY;
	/* Memory tracing is on with GPU tracing: bench/cupti_ingest.c measures what each
	 * allocation costs, and the README states it. */
	const char *m = tfprof__getenv("TFPROF_GPU_MEMORY");
	G.cfg.memory = !c.no_memory && !(m && strcmp(m, "0") == 0);
}

/* One reading of CUPTI's clock between two tfprof anchors; the tightest of a few tries wins. The
 * anchor recorded is the midpoint of the bracket, and width_ns the whole bracket: the CUPTI
 * reading was taken somewhere inside it, so the pairing is off by at most width_ns / 2. */
static void take_pair(struct tfprof__clock_pair *p)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 5; i++) {
		struct tfprof__anchor a, b;
		uint64_t c = 0;
		tfprof__anchor_take(&a);
		bool ok = G.f->GetTimestamp(&c) == CUPTI_SUCCESS && c != 0;
		tfprof__anchor_take(&b);
		if (!ok)
			c = a.real_ns + (b.real_ns - a.real_ns) / 2; /* CUPTI's default clock on Linux */
		uint64_t w = b.mono_ns - a.mono_ns;
		if (w < best) {
			best = w;
			p->collector_ns = c;
			p->anchor.ticks = a.ticks + (b.ticks - a.ticks) / 2;
			p->anchor.mono_ns = a.mono_ns + w / 2;
			p->anchor.real_ns = a.real_ns + (b.real_ns - a.real_ns) / 2;
			p->width_ns = w;
		}
	}
}

/* The reason and the fix for a CUPTI call that made GPU tracing impossible. */
static void report_failure(const char *what, CUptiResult rc, const char *holder)
{
	const char *name = tfprof__cupti_result_name(G.f, rc);
	switch (rc) {
	case CUPTI_ERROR_UNKNOWN:
		GPU_ERROR("GPU tracing is off: %s returned %s, which CUPTI reports when no NVIDIA GPU or "
		      "driver can be used; check that nvidia-smi lists a GPU and that the driver "
		      "supports CUDA 13, or set TFPROF_GPU=0 to trace the host only",
		      what, name);
		break;
	case CUPTI_ERROR_INSUFFICIENT_PRIVILEGES:
	case CUPTI_ERROR_VIRTUALIZED_DEVICE_INSUFFICIENT_PRIVILEGES:
		GPU_ERROR("GPU tracing is off: %s returned %s because the NVIDIA driver lets only "
		      "administrators profile the GPU; run as root or with CAP_SYS_ADMIN, or load the "
		      "driver with NVreg_RestrictProfilingToAdminUsers=0 (see "
		      "https://developer.nvidia.com/ERR_NVGPUCTRPERM)",
		      what, name);
		break;
	case CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED:
		GPU_ERROR("GPU tracing is off: %s returned %s because another CUPTI tool (%s) holds the "
		      "only CUPTI subscription, as Nsight Systems, Nsight Compute and cuda-gdb do; run "
		      "without that tool, or set TFPROF_GPU=0 to keep it and trace the host only",
		      what, name, holder && *holder ? holder : "for example Nsight Systems");
		break;
	default:
		GPU_ERROR("GPU tracing is off: %s failed with %s (libcupti %s, CUPTI API version %u); set "
		      "TFPROF_GPU=0 to trace the host only, and report this with the versions of the "
		      "NVIDIA driver and the CUDA toolkit",
		      what, name, G.f->path, G.f->version);
		break;
	}
}

static void reset_state(void)
{
	tfprof__msgs_free(G.errors, G.nerrors);
	tfprof__msgs_free(G.warnings, G.nwarnings);
	memset(&G, 0, sizeof G);
}

int tfprof__gpu_start(const struct tfprof__gpu_config *cfg)
{
	if (G.started) {
		/* A start without a stop: end the previous session's tracing first, as the session
		 * layer would have, so that nothing stays subscribed or enabled twice. */
		struct tfprof__gpu_result stale;
		tfprof__gpu_stop(&stale);
		tfprof__gpu_result_free(&stale);
	}
	reset_state();
	G.started = true;
	tfprof__clock_init();
	resolve_config(cfg);
	if (forked_from_active) {
		GPU_ERROR("GPU tracing is off: this process was forked (without exec) from one whose GPU "
			  "tracing was active, and CUPTI's state here is a copy of the parent's, whose "
			  "threads do not exist in this process; CUDA does not support a child forked after "
			  "it initialized either. Exec a new program in the child (or use the spawn start "
			  "method) to trace its GPU work");
		return -EBUSY;
	}

	char err[4096];
	int rc = tfprof__cupti_load(&G.f, err, sizeof err);
	if (rc) {
		GPU_ERROR("%s", err);
		return rc;
	}
	rc = tfprof__activity_start(G.f, &G.cfg, err, sizeof err);
	if (rc) {
		GPU_ERROR("%s", err);
		return rc;
	}

	/* Subscribing first: when another tool holds CUPTI, nothing gets enabled at all. */
	const char *what = NULL;
	char holder[256];
	CUptiResult crc = tfprof__callbacks_start(G.f, G.cfg.memory, &what, holder, sizeof holder);
	if (crc != CUPTI_SUCCESS) {
		report_failure(what, crc, holder);
		tfprof__activity_abort();
		return -EIO;
	}

	take_pair(&G.begin);
	char warn[1024];
	crc = tfprof__activity_enable(&what, warn, sizeof warn);
	if (crc != CUPTI_SUCCESS) {
		report_failure(what, crc, NULL);
		tfprof__callbacks_stop();
		tfprof__activity_abort();
		return -EIO;
	}
	if (warn[0])
		GPU_WARN("%s", warn);
	G.active = true;
	return 0;
}

/* Warnings for what the session lost, each with how to avoid it. */
static void report_losses(const struct tfprof__gpu_result *r, const struct tfprof__activity_summary *s)
{
	if (r->dropped_by_cupti)
		GPU_WARN("%" PRIu64 " GPU activity %s dropped by CUPTI for lack of buffer space; "
		     "raise TFPROF_CUPTI_BUFFERS (now %zu) or TFPROF_CUPTI_BUFFER_KB (now %zu)",
		     r->dropped_by_cupti, TFPROF_PL(r->dropped_by_cupti, "record was", "records were"),
		     G.cfg.buffer_count, G.cfg.buffer_size >> 10);
	if (r->dropped_no_buffer)
		GPU_WARN("%" PRIu64 " CUPTI buffer %s refused because no buffer of the pool (%zu of %zu KiB) "
		     "was free (CUDA gives every launching thread its own buffer); raise "
		     "TFPROF_CUPTI_BUFFERS or TFPROF_CUPTI_BUFFER_KB",
		     r->dropped_no_buffer, TFPROF_PL(r->dropped_no_buffer, "request was", "requests were"),
		     G.cfg.buffer_count, G.cfg.buffer_size >> 10);
	if (r->dropped_by_bound)
		GPU_WARN("%" PRIu64 " GPU activity %s dropped because decoded device events "
		     "reached their limit of %zu MiB; raise it with TFPROF_MAX_MEMORY_MB or "
		     "tfprof_options.max_memory",
		     r->dropped_by_bound, TFPROF_PL(r->dropped_by_bound, "record was", "records were"),
		     G.cfg.max_memory >> 20);
	if (r->zero_timestamps)
		GPU_WARN("%" PRIu64 " GPU activity %s left out (CUPTI "
		     "could not time them, for example for lack of device memory or because the work "
		     "was still running at stop)",
		     r->zero_timestamps, TFPROF_PL(r->zero_timestamps, "record had no timestamps and was",
						   "records had no timestamps and were"));
	if (s->buffers_unreturned)
		GPU_WARN("%" PRIu64 " CUPTI activity %s not come back %.1f s after the final flush; "
		     "the records in them are lost and their memory stays allocated",
		     s->buffers_unreturned, TFPROF_PL(s->buffers_unreturned, "buffer had", "buffers had"),
		     (double)s->wait_ns / 1e9);
	if (s->buffers_bad)
		GPU_WARN("%" PRIu64 " CUPTI activity %s in a record libcupti could not walk; the "
		     "rest of each was skipped (check that %s matches the CUDA 13 headers tfprof was "
		     "built with)",
		     s->buffers_bad, TFPROF_PL(s->buffers_bad, "buffer ended", "buffers ended"), G.f->path);
	if (s->buffers_late + s->buffers_foreign)
		GPU_WARN("%" PRIu64 " CUPTI activity %s after their session had ended and %s ignored",
		     s->buffers_late + s->buffers_foreign,
		     TFPROF_PL(s->buffers_late + s->buffers_foreign, "buffer arrived", "buffers arrived"),
		     TFPROF_PL(s->buffers_late + s->buffers_foreign, "was", "were"));
	if (s->flush_rc != CUPTI_SUCCESS)
		GPU_WARN("cuptiActivityFlushAll failed with %s at stop; GPU work of the last moments may "
		     "be missing",
		     tfprof__cupti_result_name(G.f, s->flush_rc));
	if (s->decoder_stuck)
		GPU_WARN("a CUPTI buffer completion did not finish within 5 s of stop; this session's GPU "
		     "events were dropped to stay safe");
}

void tfprof__gpu_stop(struct tfprof__gpu_result *out)
{
	memset(out, 0, sizeof *out);
	if (G.active) {
		/* Callbacks first, so no new host API event starts; then the kinds, so no new record
		 * (and no new buffer request) is made; then the flush collects what is left. This is
		 * the order TensorFlow's and Kineto's CUPTI tracers use. */
		tfprof__callbacks_stop();
		tfprof__activity_disable();
		struct tfprof__activity_summary sum;
		tfprof__activity_finish(out, &sum, tfprof__callbacks_context_device);
		take_pair(&out->end);
		out->begin = G.begin;
		out->active = 1;
		report_losses(out, &sum);
	}
	out->errors = G.errors;
	out->nerrors = G.nerrors;
	out->warnings = G.warnings;
	out->nwarnings = G.nwarnings;
	G.errors = G.warnings = NULL;
	G.nerrors = G.nwarnings = 0;
	reset_state();
}

void tfprof__gpu_fork_child(void)
{
	/* No CUPTI call here or later: unsubscribing, disabling or flushing the parent's state is
	 * exactly what hangs. The callback subscription (callbacks.c) is left as it is; its callback
	 * records nothing unless a session of the child records, and then only host API events. */
	if (G.active)
		forked_from_active = true;
	tfprof__activity_fork_child();
	/* The messages are the parent's; malloc works in a child of a threaded glibc process. */
	tfprof__msgs_free(G.errors, G.nerrors);
	tfprof__msgs_free(G.warnings, G.nwarnings);
	memset(&G, 0, sizeof G);
}
