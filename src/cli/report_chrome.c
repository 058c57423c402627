/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof-report --chrome-trace: writes a profile in the Chrome trace event format (JSON) that
 * Perfetto UI (ui.perfetto.dev) and chrome://tracing open, gzip-compressed when the output name
 * ends in ".gz". It follows xprof's own conversion where it can: one process per /host:CPU and
 * /device:GPU:<n> plane (pid 701 for the host, 1 + n for GPU n), one thread per line (host
 * thread, GPU stream), complete events with the event's stats as args, and a flow arrow from each
 * host launch to the device event with the same correlation_id.
 *
 * Times: every timestamp is relative to the earliest event of all hosts (its absolute value in
 * ns is in metadata.tfprof_time_base_ns), because microseconds since the epoch as a JSON double
 * would lose the nanoseconds that short kernels need. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "report.h"

/* Several hosts get pid ranges this far apart, so that their planes stay separate processes. */
#define HOST_PID_STRIDE 1000
#define HOST_PID 701

static bool is_gpu_plane(const XPlane *p)
{
	return p->name && strncmp(p->name, "/device:GPU:", 12) == 0;
}

static bool is_host_plane(const XPlane *p)
{
	return p->name && strcmp(p->name, "/host:CPU") == 0;
}

/* ---- correlation ids: which launches have a device event ------------------------------------ */

enum { CORR_HOST = 1, CORR_DEV = 2, CORR_HOST_DONE = 4, CORR_DEV_DONE = 8 };

/* An open-addressing set of correlation ids (never 0) with the flags above. */
struct corr_set {
	uint64_t *key;
	uint8_t *flags;
	size_t n, nslots;
};

static uint8_t *corr_slot(struct corr_set *c, uint64_t id)
{
	if ((c->n + 1) * 2 > c->nslots) {
		size_t ns = c->nslots ? c->nslots * 2 : 256;
		uint64_t *k = rp_xcalloc(ns, sizeof *k);
		uint8_t *f = rp_xcalloc(ns, 1);
		for (size_t i = 0; i < c->nslots; i++) {
			if (!c->key[i])
				continue;
			size_t j = (c->key[i] * 0x9e3779b97f4a7c15ull) >> 7 & (ns - 1);
			while (k[j])
				j = (j + 1) & (ns - 1);
			k[j] = c->key[i];
			f[j] = c->flags[i];
		}
		free(c->key);
		free(c->flags);
		c->key = k;
		c->flags = f;
		c->nslots = ns;
	}
	size_t j = (id * 0x9e3779b97f4a7c15ull) >> 7 & (c->nslots - 1);
	while (c->key[j] && c->key[j] != id)
		j = (j + 1) & (c->nslots - 1);
	if (!c->key[j]) {
		c->key[j] = id;
		c->n++;
	}
	return &c->flags[j];
}

static void corr_free(struct corr_set *c)
{
	free(c->key);
	free(c->flags);
	memset(c, 0, sizeof *c);
}

/* The event's correlation_id, or 0. */
static uint64_t event_corr(const struct rp_plane_index *ix, int64_t corr_stat, const XEvent *e)
{
	if (corr_stat == INT64_MIN)
		return 0;
	for (size_t i = 0; i < e->n_stats; i++) {
		int64_t v;
		if (e->stats[i] && e->stats[i]->metadata_id == corr_stat && rp_stat_int(ix, e->stats[i], &v))
			return v > 0 ? (uint64_t)v : 0;
	}
	return 0;
}

/* ---- writing ------------------------------------------------------------------------------- */

struct writer {
	FILE *f;
	const struct rp_inputs *in;
	int64_t base;        /* ps */
	bool progress;
	uint64_t done, total; /* events, for the progress line */
	int shown_pct;
	struct timespec started; /* when writing began */
	struct rp_chrome_stats *st;
	bool first;
};

/* A time in ps as whole ns since the base, rounded down (saturating on corrupt times). Start and
 * end are both rounded this way, so events that nest in the profile still nest in the trace. */
static int64_t rel_ns(int64_t ps, int64_t base)
{
	int64_t d;
	if (__builtin_sub_overflow(ps, base, &d))
		d = ps < base ? INT64_MIN : INT64_MAX;
	return d / 1000 - (d % 1000 < 0);
}

/* ns as microseconds with three decimals, the trace format's unit at full precision. */
static void put_us(FILE *f, int64_t ns)
{
	uint64_t a = ns < 0 ? -(uint64_t)ns : (uint64_t)ns;
	fprintf(f, "%s%" PRIu64 ".%03" PRIu64, ns < 0 ? "-" : "", a / 1000, a % 1000);
}

static void sep(struct writer *w)
{
	fputs(w->first ? "\n" : ",\n", w->f);
	w->first = false;
}

static void meta(struct writer *w, const char *what, int64_t pid, const int64_t *tid, const char *name,
		 int64_t sort)
{
	sep(w);
	fprintf(w->f, "{\"ph\":\"M\",\"pid\":%" PRId64 ",", pid);
	if (tid)
		fprintf(w->f, "\"tid\":%" PRId64 ",", *tid);
	fprintf(w->f, "\"name\":\"%s\",\"args\":{\"name\":", what);
	rp_json_str(w->f, name);
	fputs("}}", w->f);
	if (sort != INT64_MIN) {
		sep(w);
		fprintf(w->f, "{\"ph\":\"M\",\"pid\":%" PRId64 ",", pid);
		if (tid)
			fprintf(w->f, "\"tid\":%" PRId64 ",", *tid);
		fprintf(w->f, "\"name\":\"%s_sort_index\",\"args\":{\"sort_index\":%" PRId64 "}}",
			tid ? "thread" : "process", sort);
	}
}

/* One stat as "name":value. Doubles that JSON cannot hold (NaN, infinities) become strings. */
static void put_stat(struct writer *w, const struct rp_plane_index *ix, const XStat *s, bool *first)
{
	const char *name = rp_stat_name(ix, s->metadata_id);
	char fallback[40];
	if (!name || !*name) {
		snprintf(fallback, sizeof fallback, "stat #%" PRId64, s->metadata_id);
		name = fallback;
	}
	FILE *f = w->f;
	if (!*first)
		fputc(',', f);
	*first = false;
	rp_json_str(f, name);
	fputc(':', f);
	switch (s->value_case) {
	case TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE:
		fprintf(f, "%" PRId64, s->int64_value);
		break;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE:
		fprintf(f, "%" PRIu64, s->uint64_value);
		break;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_DOUBLE_VALUE:
		if (isfinite(s->double_value))
			fprintf(f, "%.17g", s->double_value);
		else
			fprintf(f, "\"%s\"", isnan(s->double_value) ? "NaN" : s->double_value > 0 ? "Infinity" : "-Infinity");
		break;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_STR_VALUE:
		rp_json_str(f, s->str_value);
		break;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_BYTES_VALUE:
		fprintf(f, "\"<%zu bytes>\"", s->bytes_value.len);
		break;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE: {
		const char *str = rp_stat_str(ix, s);
		if (str)
			rp_json_str(f, str);
		else
			fprintf(f, "%" PRIu64, s->ref_value);
		break;
	}
	default:
		fputs("null", f);
		break;
	}
}

static bool has_stat(const XEvent *e, int64_t id)
{
	for (size_t i = 0; i < e->n_stats; i++)
		if (e->stats[i] && e->stats[i]->metadata_id == id)
			return true;
	return false;
}

static void progress(struct writer *w)
{
	if (!w->progress || !w->total || (++w->done & 0x3fff))
		return;
	/* Conversions that end within a second print nothing: a flashing line would only distract. */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - w->started.tv_sec < 1 && w->shown_pct < 0)
		return;
	int pct = (int)(100 * w->done / w->total);
	if (pct != w->shown_pct) {
		fprintf(stderr, "\rtfprof-report: writing the trace: %d%%", pct);
		w->shown_pct = pct;
	}
}

/* The flow arrow's name: per host, so that equal correlation ids of two hosts never join. */
static void flow(struct writer *w, const char *ph, uint64_t id, int64_t pid, int64_t tid, int64_t ts,
		 size_t host)
{
	FILE *f = w->f;
	sep(w);
	fprintf(f, "{\"ph\":\"%s\",\"cat\":\"launch\",\"name\":", ph);
	if (w->in->n > 1) {
		const char *hn = w->in->v[host].host;
		char *name = rp_xmalloc(strlen(hn) + 8);
		strcpy(name, "launch ");
		strcat(name, hn);
		rp_json_str(f, name);
		free(name);
	} else {
		fputs("\"launch\"", f);
	}
	fprintf(f, ",\"id\":%" PRIu64 ",\"pid\":%" PRId64 ",\"tid\":%" PRId64 ",\"ts\":", id, pid, tid);
	put_us(f, rel_ns(ts, w->base));
	/* bp "e": the arrow binds to the slice around ts, which is why ts is the slice's middle. */
	if (ph[0] == 'f')
		fputs(",\"bp\":\"e\"", f);
	fputc('}', f);
}

static void write_plane(struct writer *w, size_t host, const struct rp_plane *rp, int64_t pid,
			struct corr_set *corr, struct rp_events *it)
{
	const XPlane *p = rp->hdr;
	struct rp_plane_index ix;
	rp_plane_index_init(&ix, p);
	int64_t corr_stat = rp_stat_id(&ix, "correlation_id");
	bool gpu = is_gpu_plane(p);
	char pname[512];
	if (w->in->n > 1)
		snprintf(pname, sizeof pname, "%s %s", w->in->v[host].host, p->name);
	else
		snprintf(pname, sizeof pname, "%s", p->name);
	meta(w, "process_name", pid, NULL, pname, pid);
	for (size_t li = 0; li < rp->n_lines; li++) {
		const XLine *l = rp->lines[li].hdr;
		int64_t tid = l->display_id ? l->display_id : l->id;
		const char *tname = l->display_name && *l->display_name ? l->display_name : l->name;
		char fallback[40];
		if (!tname || !*tname) {
			snprintf(fallback, sizeof fallback, "line %" PRId64, l->id);
			tname = fallback;
		}
		meta(w, "thread_name", pid, &tid, tname, (int64_t)li);
		rp_events_line(it, &rp->lines[li]);
		for (const XEvent *e; (e = rp_events_next(it));) {
			progress(w);
			const char *display = "";
			const char *name = rp_event_name(&ix, e->metadata_id, &display);
			char unnamed[40];
			if (display && *display)
				name = display;
			if (!name || !*name) {
				snprintf(unnamed, sizeof unnamed, "event #%" PRId64, e->metadata_id);
				name = unnamed;
			}
			int64_t start = rp_event_start(l, e), end = rp_event_end(l, e);
			FILE *f = w->f;
			sep(w);
			fputs("{\"ph\":\"X\",\"name\":", f);
			rp_json_str(f, name);
			fprintf(f, ",\"pid\":%" PRId64 ",\"tid\":%" PRId64 ",\"ts\":", pid, tid);
			int64_t ts = rel_ns(start, w->base), te = rel_ns(end, w->base);
			put_us(f, ts);
			fputs(",\"dur\":", f);
			/* Both are whole ns of a saturated ps value, so te - ts cannot overflow. */
			put_us(f, te > ts ? te - ts : 0);
			fputs(",\"args\":{", f);
			bool first = true;
			for (size_t si = 0; si < e->n_stats; si++)
				if (e->stats[si])
					put_stat(w, &ix, e->stats[si], &first);
			/* Stats on the metadata (TensorFlow puts kernel_details there) apply to every event
			 * of that name; the event's own stat of the same name wins. */
			const Tensorflow__Profiler__XEventMetadata *m = rp_event_meta(&ix, e->metadata_id);
			for (size_t si = 0; m && si < m->n_stats; si++)
				if (m->stats[si] && !has_stat(e, m->stats[si]->metadata_id))
					put_stat(w, &ix, m->stats[si], &first);
			fputs("}}", f);
			w->st->slices++;
			uint64_t c = event_corr(&ix, corr_stat, e);
			if (!c)
				continue;
			/* One arrow per correlation id: from its first launch to its first device event. */
			uint8_t *fl = corr_slot(corr, c);
			int64_t mid = start + (end - start) / 2;
			if (!gpu && (*fl & CORR_DEV) && !(*fl & CORR_HOST_DONE)) {
				*fl |= CORR_HOST_DONE;
				flow(w, "s", c, pid, tid, mid, host);
				w->st->flows++;
			} else if (gpu && (*fl & CORR_HOST) && !(*fl & CORR_DEV_DONE)) {
				*fl |= CORR_DEV_DONE;
				flow(w, "f", c, pid, tid, mid, host);
			}
		}
	}
	rp_plane_index_free(&ix);
}

/* First pass over one host: the earliest event, the event count and which correlation ids have
 * both a host launch and a device event. */
static void scan_host(const struct rp_space *s, struct corr_set *corr, int64_t *base, uint64_t *total,
		      struct rp_events *it)
{
	for (size_t pi = 0; pi < s->n_planes; pi++) {
		const struct rp_plane *rp = &s->planes[pi];
		const XPlane *p = rp->hdr;
		if (!(is_host_plane(p) || is_gpu_plane(p)))
			continue;
		struct rp_plane_index ix;
		rp_plane_index_init(&ix, p);
		int64_t corr_stat = rp_stat_id(&ix, "correlation_id");
		uint8_t side = is_gpu_plane(p) ? CORR_DEV : CORR_HOST;
		for (size_t li = 0; li < rp->n_lines; li++) {
			const XLine *l = rp->lines[li].hdr;
			rp_events_line(it, &rp->lines[li]);
			for (const XEvent *e; (e = rp_events_next(it));) {
				int64_t t = rp_event_start(l, e);
				if (t < *base)
					*base = t;
				(*total)++;
				uint64_t c = event_corr(&ix, corr_stat, e);
				if (c)
					*corr_slot(corr, c) |= side;
			}
		}
		rp_plane_index_free(&ix);
	}
}

static int64_t plane_pid(size_t host, const XPlane *p)
{
	int64_t local = is_host_plane(p) ? HOST_PID : 1 + p->id;
	/* Device numbers outside xprof's range would collide with the host's pid or another host's. */
	if (!is_host_plane(p) && (p->id < 0 || p->id >= HOST_PID - 1))
		local = HOST_PID + 1 + (p->id < 0 ? 0 : p->id % (HOST_PID_STRIDE - HOST_PID - 1));
	return (int64_t)host * HOST_PID_STRIDE + local;
}

int rp_chrome_write(const struct rp_inputs *in, FILE *f, bool show_progress, struct rp_chrome_stats *st)
{
	memset(st, 0, sizeof *st);
	struct corr_set *corr = rp_xcalloc(in->n ? in->n : 1, sizeof *corr);
	struct writer w = { .f = f, .in = in, .base = INT64_MAX, .progress = show_progress, .st = st,
			    .first = true, .shown_pct = -1 };
	if (show_progress)
		clock_gettime(CLOCK_MONOTONIC, &w.started);
	struct rp_events it;
	rp_events_init(&it);
	for (size_t h = 0; h < in->n; h++)
		scan_host(in->v[h].space, &corr[h], &w.base, &w.total, &it);
	if (w.base == INT64_MAX)
		w.base = 0;
	/* Nanoseconds: a fractional base would shift every timestamp by the same sub-ns amount. */
	w.base -= w.base % 1000;
	fprintf(f, "{\"displayTimeUnit\":\"ns\",\"metadata\":{\"highres-ticks\":true,"
		   "\"tfprof_time_base_ns\":%" PRId64 "},\"traceEvents\":[",
		w.base / 1000);
	for (size_t h = 0; h < in->n; h++) {
		const struct rp_space *s = in->v[h].space;
		/* The host plane first: a launch's flow start then comes before its device end. */
		for (int pass = 0; pass < 2; pass++)
			for (size_t pi = 0; pi < s->n_planes; pi++) {
				const XPlane *p = s->planes[pi].hdr;
				if (pass == 0 ? is_host_plane(p) : is_gpu_plane(p))
					write_plane(&w, h, &s->planes[pi], plane_pid(h, p), &corr[h], &it);
			}
	}
	rp_events_free(&it);
	fputs("\n]}\n", f);
	if (w.progress && w.shown_pct >= 0)
		fputs("\r\033[K", stderr);
	for (size_t h = 0; h < in->n; h++)
		corr_free(&corr[h]);
	free(corr);
	return fflush(f) || ferror(f) ? -1 : 0;
}

int rp_chrome_trace(const struct rp_inputs *in, const char *path, bool show_progress,
		    struct rp_chrome_stats *st, char *err, size_t errlen)
{
	size_t n = strlen(path);
	struct rp_outfile o;
	if (rp_outfile_open(&o, path, "--chrome-trace", n > 3 && strcmp(path + n - 3, ".gz") == 0, err, errlen))
		return RP_EXIT_BAD_INPUT;
	static char buf[1 << 16];
	setvbuf(o.f, buf, _IOFBF, sizeof buf);
	rp_chrome_write(in, o.f, show_progress, st);
	/* A failed write leaves the stream's error flag set, which commit reports. */
	return rp_outfile_commit(&o, err, errlen) ? RP_EXIT_FAIL : RP_EXIT_OK;
}
