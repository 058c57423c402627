/* SPDX-License-Identifier: Apache-2.0 */
/* Checks that a profile written by the install consumer (consumer.c) holds exactly the workload of
 * workload.h: the /host:CPU plane has one line per worker named as the worker named itself, each
 * line has exactly the expected scopes, properly nested, each with exactly its typed arguments.
 * It reads the file with protobuf-c only, the way an independent reader would, and looks stats up
 * by metadata name (xprof gives names, not ids, their meaning).
 *
 *   usage: check_xspace PROFILE.xplane.pb      exit status 0 when everything matches */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"
#include "xplane.pb-c.h"

typedef Tensorflow__Profiler__XSpace XSpace;
typedef Tensorflow__Profiler__XPlane XPlane;
typedef Tensorflow__Profiler__XLine XLine;
typedef Tensorflow__Profiler__XEvent XEvent;
typedef Tensorflow__Profiler__XStat XStat;

/* ---- What the file must hold ------------------------------------------------------------- */

enum exp_kind { EXP_I64, EXP_U64, EXP_F64, EXP_REF };

struct exp_stat {
	const char *key;
	enum exp_kind kind;
	int64_t i64;
	uint64_t u64;
	double f64;
	char str[32];
};

#define MAX_STATS 4

struct exp_event {
	char name[32];
	int parent; /* index of the enclosing scope in the thread's list, or -1 */
	int nstats;
	struct exp_stat stats[MAX_STATS];
};

static struct exp_event *add_event(struct exp_event *ev, int *n, const char *name, int parent)
{
	struct exp_event *e = &ev[(*n)++];
	memset(e, 0, sizeof *e);
	snprintf(e->name, sizeof e->name, "%s", name);
	e->parent = parent;
	return e;
}

static struct exp_stat *add_stat(struct exp_event *e, const char *key, enum exp_kind kind)
{
	struct exp_stat *s = &e->stats[e->nstats++];
	s->key = key;
	s->kind = kind;
	return s;
}

static void add_i64(struct exp_event *e, const char *key, int64_t v)
{
	add_stat(e, key, EXP_I64)->i64 = v;
}

/* Mirrors the worker in consumer.c, scope by scope, in the order they begin. */
static int expected_events(int t, struct exp_event *ev)
{
	int n = 0;
	for (int step = 0; step < WL_STEPS; step++) {
		int train = n;
		struct exp_event *e = add_event(ev, &n, "train_step", -1);
		add_i64(e, "step_num", step);
		snprintf(add_stat(e, "phase", EXP_REF)->str, sizeof e->stats[0].str, "train");
		add_i64(e, "_r", 1); /* tfprof adds it to every step marker */

		e = add_event(ev, &n, "load", train);
		add_stat(e, "bytes", EXP_U64)->u64 = wl_bytes(t, step);
		add_i64(e, "cache_hit", wl_cache_hit(t, step) ? 1 : 0);

		int forward = n;
		e = add_event(ev, &n, "forward", train);
		add_stat(e, "lr", EXP_F64)->f64 = wl_lr(t);
		add_i64(e, "delta", wl_delta(t, step));

		e = add_event(ev, &n, "matmul", forward);
		wl_device(add_stat(e, "device", EXP_REF)->str, sizeof e->stats[0].str, t);
		add_i64(e, "fused", 0);
	}
	char name[32];
	wl_flush_name(name, sizeof name, t);
	struct exp_event *e = add_event(ev, &n, name, -1);
	add_stat(e, "max", EXP_U64)->u64 = UINT64_MAX;
	snprintf(add_stat(e, "note", EXP_REF)->str, sizeof e->stats[0].str, "bye");

	e = add_event(ev, &n, "eval", -1);
	add_i64(e, "step_num", wl_eval_step(t));
	add_i64(e, "_r", 2); /* the caller's own _r wins */
	return n;
}

/* ---- Reporting ---------------------------------------------------------------------------- */

static int failures;

static void fail(const char *fmt, ...)
{
	/* Past a screenful the rest is usually the same mistake repeated. */
	if (++failures > 40)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("check_xspace: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- Lookups by name, the way xprof reads the file ---------------------------------------- */

static const char *event_name(const XPlane *p, int64_t id)
{
	for (size_t i = 0; i < p->n_event_metadata; i++)
		if (p->event_metadata[i]->key == id && p->event_metadata[i]->value)
			return p->event_metadata[i]->value->name;
	return NULL;
}

static const char *stat_name(const XPlane *p, int64_t id)
{
	for (size_t i = 0; i < p->n_stat_metadata; i++)
		if (p->stat_metadata[i]->key == id && p->stat_metadata[i]->value)
			return p->stat_metadata[i]->value->name;
	return NULL;
}

/* Metadata map keys must equal the ids inside the values, and ids must be unique: readers index
 * by either. */
static void check_metadata(const XPlane *p)
{
	for (size_t i = 0; i < p->n_event_metadata; i++) {
		const Tensorflow__Profiler__XPlane__EventMetadataEntry *a = p->event_metadata[i];
		if (!a->value || a->value->id != a->key)
			fail("%s: event metadata key %" PRId64 " does not match its id", p->name, a->key);
		for (size_t j = 0; j < i; j++)
			if (p->event_metadata[j]->key == a->key)
				fail("%s: event metadata id %" PRId64 " defined twice", p->name, a->key);
	}
	for (size_t i = 0; i < p->n_stat_metadata; i++) {
		const Tensorflow__Profiler__XPlane__StatMetadataEntry *a = p->stat_metadata[i];
		if (!a->value || a->value->id != a->key)
			fail("%s: stat metadata key %" PRId64 " does not match its id", p->name, a->key);
		for (size_t j = 0; j < i; j++)
			if (p->stat_metadata[j]->key == a->key)
				fail("%s: stat metadata id %" PRId64 " defined twice", p->name, a->key);
	}
}

/* ---- Events ------------------------------------------------------------------------------- */

struct ev_view {
	const XEvent *e;
	size_t index; /* position in the line, to keep the sort stable */
	int64_t start_ps, end_ps;
};

/* Orders events as they began: by start, an enclosing scope before the scopes it contains. */
static int ev_cmp(const void *a, const void *b)
{
	const struct ev_view *x = a, *y = b;
	if (x->start_ps != y->start_ps)
		return x->start_ps < y->start_ps ? -1 : 1;
	if (x->end_ps != y->end_ps)
		return x->end_ps > y->end_ps ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static void check_stat(const XPlane *p, const char *where, const struct exp_stat *want,
		       const XStat *got)
{
	switch (want->kind) {
	case EXP_I64:
		if (got->value_case != TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE)
			fail("%s: stat %s: want int64, got value case %d", where, want->key, got->value_case);
		else if (got->int64_value != want->i64)
			fail("%s: stat %s: want %" PRId64 ", got %" PRId64, where, want->key, want->i64,
			     got->int64_value);
		break;
	case EXP_U64:
		if (got->value_case != TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE)
			fail("%s: stat %s: want uint64, got value case %d", where, want->key, got->value_case);
		else if (got->uint64_value != want->u64)
			fail("%s: stat %s: want %" PRIu64 ", got %" PRIu64, where, want->key, want->u64,
			     got->uint64_value);
		break;
	case EXP_F64:
		/* The same double goes in and comes out: exact comparison is right here. */
		if (got->value_case != TENSORFLOW__PROFILER__XSTAT__VALUE_DOUBLE_VALUE)
			fail("%s: stat %s: want double, got value case %d", where, want->key, got->value_case);
		else if (got->double_value != want->f64)
			fail("%s: stat %s: want %.17g, got %.17g", where, want->key, want->f64,
			     got->double_value);
		break;
	case EXP_REF: {
		if (got->value_case != TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE) {
			fail("%s: stat %s: want ref_value (interned string), got value case %d", where,
			     want->key, got->value_case);
			break;
		}
		const char *s = got->ref_value <= INT64_MAX ? stat_name(p, (int64_t)got->ref_value) : NULL;
		if (!s)
			fail("%s: stat %s: ref_value %" PRIu64 " names no stat metadata", where, want->key,
			     got->ref_value);
		else if (strcmp(s, want->str) != 0)
			fail("%s: stat %s: want \"%s\", got \"%s\"", where, want->key, want->str, s);
		break;
	}
	}
}

static void check_event(const XPlane *p, const char *line, size_t i, const struct exp_event *want,
			const struct ev_view *got)
{
	char where[160];
	const char *name = event_name(p, got->e->metadata_id);
	snprintf(where, sizeof where, "line %.64s, event #%zu (%.31s)", line, i, want->name);
	if (!name) {
		fail("%s: metadata id %" PRId64 " names no event metadata", where, got->e->metadata_id);
		return;
	}
	if (strcmp(name, want->name) != 0) {
		fail("%s: got an event named \"%s\"", where, name);
		return;
	}
	if (got->e->data_case != TENSORFLOW__PROFILER__XEVENT__DATA_OFFSET_PS)
		fail("%s: no offset_ps", where);
	if (got->e->duration_ps <= 0)
		fail("%s: duration %" PRId64 " ps; the consumer made every scope last", where,
		     got->e->duration_ps);

	/* Exactly the expected stats: each expected key once, nothing else. */
	bool seen[MAX_STATS] = { false };
	for (size_t k = 0; k < got->e->n_stats; k++) {
		const XStat *st = got->e->stats[k];
		const char *key = stat_name(p, st->metadata_id);
		if (!key) {
			fail("%s: stat metadata id %" PRId64 " is not defined", where, st->metadata_id);
			continue;
		}
		int w = -1;
		for (int j = 0; j < want->nstats; j++)
			if (strcmp(want->stats[j].key, key) == 0)
				w = j;
		if (w < 0) {
			fail("%s: unexpected stat %s", where, key);
			continue;
		}
		if (seen[w])
			fail("%s: stat %s appears twice", where, key);
		seen[w] = true;
		check_stat(p, where, &want->stats[w], st);
	}
	for (int j = 0; j < want->nstats; j++)
		if (!seen[j])
			fail("%s: stat %s is missing", where, want->stats[j].key);
}

static void check_line(const XPlane *p, const XLine *l, int t)
{
	struct exp_event want[WL_EVENTS_PER_THREAD + 1];
	int nwant = expected_events(t, want);
	if (l->n_events != (size_t)nwant) {
		fail("line %s: %zu events, want %d", l->name, l->n_events, nwant);
		return;
	}
	struct ev_view got[WL_EVENTS_PER_THREAD + 1];
	for (size_t i = 0; i < l->n_events; i++) {
		const XEvent *e = l->events[i];
		got[i].e = e;
		got[i].index = i;
		got[i].start_ps = l->timestamp_ns * 1000 + e->offset_ps;
		got[i].end_ps = got[i].start_ps + e->duration_ps;
	}
	qsort(got, l->n_events, sizeof got[0], ev_cmp);

	int last_child[WL_EVENTS_PER_THREAD + 2]; /* per parent (+1, so -1 is slot 0) */
	for (int i = 0; i <= nwant; i++)
		last_child[i] = -1;
	for (int i = 0; i < nwant; i++) {
		check_event(p, l->name, (size_t)i, &want[i], &got[i]);
		int par = want[i].parent;
		if (par >= 0 && (got[i].start_ps < got[par].start_ps || got[i].end_ps > got[par].end_ps))
			fail("line %s: %s #%d [%" PRId64 ", %" PRId64 "] ps is not within %s #%d [%" PRId64
			     ", %" PRId64 "]",
			     l->name, want[i].name, i, got[i].start_ps, got[i].end_ps, want[par].name, par,
			     got[par].start_ps, got[par].end_ps);
		int prev = last_child[par + 1];
		if (prev >= 0 && got[prev].end_ps > got[i].start_ps)
			fail("line %s: %s #%d overlaps its earlier sibling %s #%d", l->name, want[i].name, i,
			     want[prev].name, prev);
		last_child[par + 1] = i;
	}
}

/* ---- The file ----------------------------------------------------------------------------- */

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0, r;
	uint8_t *buf = malloc(cap);
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb)
				free(buf);
			buf = nb;
			cap *= 2;
		}
	}
	if (buf && ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: check_xspace PROFILE.xplane.pb\n");
		return 2;
	}
	const char *path = argv[1];
	const char *suffix = "/plugins/profile/" WL_RUN_NAME "/" WL_HOST_NAME ".xplane.pb";
	if (!ends_with(path, suffix))
		fail("the profile went to %s; want a path ending in %s", path, suffix);

	size_t len = 0;
	uint8_t *data = read_all(path, &len);
	if (!data) {
		fprintf(stderr, "check_xspace: cannot read %s\n", path);
		return 1;
	}
	XSpace *s = tensorflow__profiler__xspace__unpack(NULL, len, data);
	free(data);
	if (!s) {
		fprintf(stderr, "check_xspace: %s (%zu bytes) is not an XSpace\n", path, len);
		return 1;
	}

	if (s->n_hostnames < 1 || strcmp(s->hostnames[0], WL_HOST_NAME) != 0)
		fail("hostnames[0] is \"%s\", want \"%s\"", s->n_hostnames ? s->hostnames[0] : "(none)",
		     WL_HOST_NAME);
	/* The consumer stays within every limit, so anything in warnings is a bug. */
	for (size_t i = 0; i < s->n_warnings; i++)
		fail("unexpected warning: %s", s->warnings[i]);

	const XPlane *host = NULL;
	for (size_t i = 0; i < s->n_planes; i++) {
		check_metadata(s->planes[i]);
		if (strcmp(s->planes[i]->name, "/host:CPU") == 0) {
			if (host)
				fail("two /host:CPU planes");
			host = s->planes[i];
		}
	}
	size_t nevents = 0;
	if (!host) {
		fail("no /host:CPU plane");
	} else {
		if (host->n_lines != WL_THREADS)
			fail("/host:CPU has %zu lines, want %d (one per worker)", host->n_lines, WL_THREADS);
		bool found[WL_THREADS] = { false };
		for (size_t i = 0; i < host->n_lines; i++) {
			const XLine *l = host->lines[i];
			nevents += l->n_events;
			for (size_t j = 0; j < i; j++)
				if (host->lines[j]->id == l->id)
					fail("lines %s and %s share the id %" PRId64, host->lines[j]->name, l->name,
					     l->id);
			int t = -1;
			for (int k = 0; k < WL_THREADS; k++) {
				char name[32];
				wl_thread_name(name, sizeof name, k);
				if (strcmp(l->name, name) == 0)
					t = k;
			}
			if (t < 0) {
				fail("unexpected line \"%s\" (id %" PRId64 ", %zu events)", l->name, l->id,
				     l->n_events);
				continue;
			}
			if (found[t])
				fail("two lines named %s", l->name);
			found[t] = true;
			check_line(host, l, t);
		}
		for (int k = 0; k < WL_THREADS; k++)
			if (!found[k])
				fail("no line named worker-%d", k);
	}
	tensorflow__profiler__xspace__free_unpacked(s, NULL);

	if (failures) {
		fprintf(stderr, "check_xspace: %s: %d mismatches\n", path, failures);
		return 1;
	}
	printf("check_xspace: ok: %s: %d lines, %zu events, all arguments as recorded\n", path,
	       WL_THREADS, nevents);
	return 0;
}
