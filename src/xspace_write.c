/* SPDX-License-Identifier: Apache-2.0 */
/* Encodes the merged profile as an XSpace. Metadata ids are per plane and start at 1; event names
 * and stat keys are deduplicated through the profile's string table; string stat values are
 * written as ref_value (the id of a stat metadata named by the string), which is how TensorFlow
 * interns them.
 *
 * Two encoders, one output. tfprof__xspace_encode writes the lines, events and stats (nearly all
 * of a profile) by hand, straight into one buffer sized exactly in a first pass, and leaves the
 * rest of each plane (metadata maps, plane stats) and of the space (errors, warnings, host names)
 * to protobuf-c: no message tree per event, so it is several times faster and needs only the
 * output's bytes. tfprof__xspace_encode_pbc builds the whole protobuf-c tree and packs it: the
 * reference the hand-written part must match byte for byte (tests/test_xspace_write.c over random
 * profiles; every profile the suite writes when TFPROF_VERIFY_ENCODER=1). The hand-written part
 * follows protobuf-c's packing: fields in field-number order, proto3 scalars and strings left out
 * when zero or empty, a oneof member written when set even if zero, int64 as a 10-byte varint when
 * negative. Protobuf-c structs live in one arena freed after packing. */
#include "xspace_write.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xplane.pb-c.h"

typedef Tensorflow__Profiler__XSpace XSpace;
typedef Tensorflow__Profiler__XPlane XPlane;
typedef Tensorflow__Profiler__XLine XLine;
typedef Tensorflow__Profiler__XEvent XEvent;
typedef Tensorflow__Profiler__XStat XStat;
typedef Tensorflow__Profiler__XEventMetadata XEventMetadata;
typedef Tensorflow__Profiler__XStatMetadata XStatMetadata;
typedef Tensorflow__Profiler__XPlane__EventMetadataEntry EventMetadataEntry;
typedef Tensorflow__Profiler__XPlane__StatMetadataEntry StatMetadataEntry;

struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

struct arena {
	struct arena_block *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct arena_block *b = a->head;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > (1u << 20) ? n : (1u << 20);
		b = malloc(sizeof *b + cap);
		if (!b)
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_block *n = a->head->next;
		free(a->head);
		a->head = n;
	}
}

/* Per-plane maps from string id to metadata id (0 = not yet assigned). */
struct plane_maps {
	uint32_t *event_id;
	uint32_t *stat_id;
	uint32_t nevent, nstat;
	uint32_t *event_strs; /* metadata id - 1 -> string id */
	uint32_t *stat_strs;
};

static uint32_t stat_meta(struct plane_maps *m, uint32_t s)
{
	if (!m->stat_id[s]) {
		m->stat_strs[m->nstat] = s;
		m->stat_id[s] = ++m->nstat;
	}
	return m->stat_id[s];
}

static int encode_stats(struct arena *a, struct plane_maps *m, const struct tfprof__stat *src, size_t n,
			XStat ***out_ptrs)
{
	XStat *stats = arena_alloc(a, n * sizeof *stats);
	XStat **ptrs = arena_alloc(a, n * sizeof *ptrs);
	if (n && (!stats || !ptrs))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		XStat *s = &stats[i];
		tensorflow__profiler__xstat__init(s);
		s->metadata_id = stat_meta(m, src[i].key);
		switch (src[i].type) {
		case TFPROF_STAT_I64:
			s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE;
			s->int64_value = src[i].v.i64;
			break;
		case TFPROF_STAT_U64:
			s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE;
			s->uint64_value = src[i].v.u64;
			break;
		case TFPROF_STAT_F64:
			s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_DOUBLE_VALUE;
			s->double_value = src[i].v.f64;
			break;
		default:
			s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE;
			s->ref_value = stat_meta(m, src[i].v.str);
			break;
		}
		ptrs[i] = s;
	}
	*out_ptrs = ptrs;
	return 0;
}

/* A line's time span: its earliest start and latest end, in ns. */
static void line_span(const struct tfprof__line *src, int64_t *t0_out, int64_t *t1_out)
{
	int64_t t0 = src->nevents ? src->events[0].start_ns : 0, t1 = t0;
	for (size_t i = 0; i < src->nevents; i++) {
		if (src->events[i].start_ns < t0)
			t0 = src->events[i].start_ns;
		if (src->events[i].start_ns + src->events[i].dur_ns > t1)
			t1 = src->events[i].start_ns + src->events[i].dur_ns;
	}
	*t0_out = t0;
	*t1_out = t1;
}

static uint32_t event_meta(struct plane_maps *m, uint32_t name)
{
	if (!m->event_id[name]) {
		m->event_strs[m->nevent] = name;
		m->event_id[name] = ++m->nevent;
	}
	return m->event_id[name];
}

static int encode_line(struct arena *a, struct plane_maps *m, const struct tfprof__line *src, XLine *l)
{
	tensorflow__profiler__xline__init(l);
	l->id = src->id;
	l->display_id = src->id;
	int64_t t0, t1;
	line_span(src, &t0, &t1);
	l->timestamp_ns = t0;
	l->duration_ps = (t1 - t0) * 1000;
	XStat **stat_ptrs;
	if (encode_stats(a, m, src->stats, src->nstats, &stat_ptrs))
		return -ENOMEM;
	XEvent *ev = arena_alloc(a, src->nevents * sizeof *ev);
	XEvent **evp = arena_alloc(a, src->nevents * sizeof *evp);
	if (src->nevents && (!ev || !evp))
		return -ENOMEM;
	for (size_t i = 0; i < src->nevents; i++) {
		const struct tfprof__event *e = &src->events[i];
		XEvent *x = &ev[i];
		tensorflow__profiler__xevent__init(x);
		x->metadata_id = event_meta(m, e->name);
		/* A zero offset must still be written: the viewer ignores an unset oneof. */
		x->data_case = TENSORFLOW__PROFILER__XEVENT__DATA_OFFSET_PS;
		x->offset_ps = (e->start_ns - t0) * 1000;
		x->duration_ps = e->dur_ns * 1000;
		x->n_stats = e->nstats;
		x->stats = stat_ptrs + e->stats;
		evp[i] = x;
	}
	l->n_events = src->nevents;
	l->events = evp;
	return 0;
}

/* Maps for a profile of nstr strings; false (and nothing to free) without memory. */
static bool maps_init(struct plane_maps *m, size_t nstr)
{
	*m = (struct plane_maps){
		.event_id = malloc(nstr * sizeof(uint32_t)),
		.stat_id = malloc(nstr * sizeof(uint32_t)),
		.event_strs = malloc(nstr * sizeof(uint32_t)),
		.stat_strs = malloc(nstr * sizeof(uint32_t)),
	};
	return m->event_id && m->stat_id && m->event_strs && m->stat_strs;
}

static void maps_free(struct plane_maps *m)
{
	free(m->event_id);
	free(m->stat_id);
	free(m->event_strs);
	free(m->stat_strs);
}

static void maps_reset(struct plane_maps *m, size_t nstr)
{
	memset(m->event_id, 0, nstr * sizeof *m->event_id);
	memset(m->stat_id, 0, nstr * sizeof *m->stat_id);
	m->nevent = m->nstat = 0;
}

/* The plane's fields after its lines (plane stats, event and stat metadata), into x, once the
 * lines have assigned their metadata ids. */
static int encode_plane_tail(struct arena *a, const struct tfprof__profile *p,
			     const struct tfprof__plane *src, XPlane *x, struct plane_maps *m)
{
	if (encode_stats(a, m, src->stats, src->nstats, &x->stats))
		return -ENOMEM;
	x->n_stats = src->nstats;

	/* Stats on event metadata, grouped by the metadata they belong to; names no event uses are
	 * left out. */
	size_t *meta_n = arena_alloc(a, (m->nevent + 1) * sizeof *meta_n);
	XStat ***meta_stats = arena_alloc(a, (m->nevent + 1) * sizeof *meta_stats);
	if (!meta_n || !meta_stats)
		return -ENOMEM;
	for (size_t i = 0; i < src->nmeta_stats; i++)
		meta_n[m->event_id[src->meta_stats[i].event_name]]++;
	for (uint32_t id = 1; id <= m->nevent; id++)
		if (meta_n[id] && !(meta_stats[id] = arena_alloc(a, meta_n[id] * sizeof(XStat *))))
			return -ENOMEM;
	memset(meta_n, 0, (m->nevent + 1) * sizeof *meta_n);
	for (size_t i = 0; i < src->nmeta_stats; i++) {
		uint32_t id = m->event_id[src->meta_stats[i].event_name];
		XStat **one;
		if (!id)
			continue;
		if (encode_stats(a, m, &src->meta_stats[i].stat, 1, &one))
			return -ENOMEM;
		meta_stats[id][meta_n[id]++] = one[0];
	}

	EventMetadataEntry *ee = arena_alloc(a, m->nevent * sizeof *ee);
	EventMetadataEntry **eep = arena_alloc(a, m->nevent * sizeof *eep);
	XEventMetadata *em = arena_alloc(a, m->nevent * sizeof *em);
	StatMetadataEntry *se = arena_alloc(a, m->nstat * sizeof *se);
	StatMetadataEntry **sep = arena_alloc(a, m->nstat * sizeof *sep);
	XStatMetadata *sm = arena_alloc(a, m->nstat * sizeof *sm);
	if ((m->nevent && (!ee || !eep || !em)) || (m->nstat && (!se || !sep || !sm)))
		return -ENOMEM;
	for (uint32_t i = 0; i < m->nevent; i++) {
		tensorflow__profiler__xplane__event_metadata_entry__init(&ee[i]);
		tensorflow__profiler__xevent_metadata__init(&em[i]);
		em[i].id = i + 1;
		em[i].name = p->strs.strs[m->event_strs[i]];
		em[i].n_stats = meta_n[i + 1];
		em[i].stats = meta_stats[i + 1];
		ee[i].key = i + 1;
		ee[i].value = &em[i];
		eep[i] = &ee[i];
	}
	for (uint32_t i = 0; i < m->nstat; i++) {
		tensorflow__profiler__xplane__stat_metadata_entry__init(&se[i]);
		tensorflow__profiler__xstat_metadata__init(&sm[i]);
		sm[i].id = i + 1;
		sm[i].name = p->strs.strs[m->stat_strs[i]];
		se[i].key = i + 1;
		se[i].value = &sm[i];
		sep[i] = &se[i];
	}
	x->n_event_metadata = m->nevent;
	x->event_metadata = eep;
	x->n_stat_metadata = m->nstat;
	x->stat_metadata = sep;
	return 0;
}

static int encode_plane(struct arena *a, const struct tfprof__profile *p, const struct tfprof__plane *src,
			XPlane *x, struct plane_maps *m)
{
	maps_reset(m, p->strs.count);
	tensorflow__profiler__xplane__init(x);
	x->id = src->id;
	x->name = p->strs.strs[src->name];
	XLine *lines = arena_alloc(a, src->nlines * sizeof *lines);
	XLine **lp = arena_alloc(a, src->nlines * sizeof *lp);
	if (src->nlines && (!lines || !lp))
		return -ENOMEM;
	for (size_t i = 0; i < src->nlines; i++) {
		if (encode_line(a, m, &src->lines[i], &lines[i]))
			return -ENOMEM;
		lines[i].name = p->strs.strs[src->lines[i].name];
		lp[i] = &lines[i];
	}
	x->n_lines = src->nlines;
	x->lines = lp;
	return encode_plane_tail(a, p, src, x, m);
}

int tfprof__xspace_encode_pbc(const struct tfprof__profile *p, uint8_t **out, size_t *len)
{
	struct arena a = { 0 };
	int rc = -ENOMEM;
	size_t nstr = p->strs.count;
	struct plane_maps m;
	bool maps_ok = maps_init(&m, nstr);
	XSpace space;
	tensorflow__profiler__xspace__init(&space);
	XPlane *planes = arena_alloc(&a, p->nplanes * sizeof *planes);
	XPlane **pp = arena_alloc(&a, p->nplanes * sizeof *pp);
	if (!maps_ok || (p->nplanes && (!planes || !pp)))
		goto out;
	for (size_t i = 0; i < p->nplanes; i++) {
		if (encode_plane(&a, p, &p->planes[i], &planes[i], &m))
			goto out;
		pp[i] = &planes[i];
	}
	space.n_planes = p->nplanes;
	space.planes = pp;
	space.n_errors = p->nerrors;
	space.errors = p->errors;
	space.n_warnings = p->nwarnings;
	space.warnings = p->warnings;
	char *host = p->hostname ? p->hostname : "localhost";
	space.n_hostnames = 1;
	space.hostnames = &host;
	size_t n = tensorflow__profiler__xspace__get_packed_size(&space);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		goto out;
	*len = tensorflow__profiler__xspace__pack(&space, buf);
	*out = buf;
	rc = 0;
out:
	maps_free(&m);
	arena_free(&a);
	return rc;
}

/* ---- The hand-written encoder of lines, events and stats ---- */

/* Tags (field number << 3 | wire type) of the fields written by hand. */
enum {
	TAG_SPACE_PLANES = 1 << 3 | 2,
	TAG_PLANE_ID = 1 << 3 | 0,
	TAG_PLANE_NAME = 2 << 3 | 2,
	TAG_PLANE_LINES = 3 << 3 | 2,
	TAG_LINE_ID = 1 << 3 | 0,
	TAG_LINE_NAME = 2 << 3 | 2,
	TAG_LINE_TIMESTAMP = 3 << 3 | 0,
	TAG_LINE_EVENTS = 4 << 3 | 2,
	TAG_LINE_DURATION = 9 << 3 | 0,
	TAG_LINE_DISPLAY_ID = 10 << 3 | 0,
	TAG_EVENT_METADATA = 1 << 3 | 0,
	TAG_EVENT_OFFSET = 2 << 3 | 0,
	TAG_EVENT_DURATION = 3 << 3 | 0,
	TAG_EVENT_STATS = 4 << 3 | 2,
	TAG_STAT_METADATA = 1 << 3 | 0,
	TAG_STAT_DOUBLE = 2 << 3 | 1,
	TAG_STAT_UINT64 = 3 << 3 | 0,
	TAG_STAT_INT64 = 4 << 3 | 0,
	TAG_STAT_REF = 7 << 3 | 0,
};

static inline size_t vlen(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline uint8_t *put_varint(uint8_t *o, uint64_t v)
{
	while (v >= 0x80) {
		*o++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*o++ = (uint8_t)v;
	return o;
}

/* A proto3 scalar: left out when zero. */
static inline size_t opt_size(uint64_t v)
{
	return v ? 1 + vlen(v) : 0;
}

static inline uint8_t *put_opt(uint8_t *o, uint8_t tag, uint64_t v)
{
	if (!v)
		return o;
	*o++ = tag;
	return put_varint(o, v);
}

/* A proto3 string: left out when empty. */
static inline size_t opt_str_size(const char *s)
{
	size_t n = strlen(s);
	return n ? 1 + vlen(n) + n : 0;
}

static inline uint8_t *put_opt_str(uint8_t *o, uint8_t tag, const char *s)
{
	size_t n = strlen(s);
	if (!n)
		return o;
	*o++ = tag;
	o = put_varint(o, n);
	memcpy(o, s, n);
	return o + n;
}

/* The stat's bytes without its tag and length; its metadata ids were assigned already. */
static size_t stat_size(const struct plane_maps *m, const struct tfprof__stat *s)
{
	size_t n = opt_size(m->stat_id[s->key]);
	switch (s->type) {
	case TFPROF_STAT_I64:
		return n + 1 + vlen((uint64_t)s->v.i64);
	case TFPROF_STAT_U64:
		return n + 1 + vlen(s->v.u64);
	case TFPROF_STAT_F64:
		return n + 1 + 8;
	default:
		return n + 1 + vlen(m->stat_id[s->v.str]);
	}
}

static uint8_t *put_stat(uint8_t *o, const struct plane_maps *m, const struct tfprof__stat *s)
{
	o = put_opt(o, TAG_STAT_METADATA, m->stat_id[s->key]);
	switch (s->type) {
	case TFPROF_STAT_I64:
		*o++ = TAG_STAT_INT64;
		return put_varint(o, (uint64_t)s->v.i64);
	case TFPROF_STAT_U64:
		*o++ = TAG_STAT_UINT64;
		return put_varint(o, s->v.u64);
	case TFPROF_STAT_F64:
		*o++ = TAG_STAT_DOUBLE;
		memcpy(o, &s->v.f64, 8); /* little-endian, as protobuf's fixed64 */
		return o + 8;
	default:
		*o++ = TAG_STAT_REF;
		return put_varint(o, m->stat_id[s->v.str]);
	}
}

/* An event's bytes before its stats: name id, offset (always written) and duration. */
static size_t event_head_size(const struct plane_maps *m, const struct tfprof__event *e, int64_t t0)
{
	return opt_size(m->event_id[e->name]) + 1 + vlen((uint64_t)((e->start_ns - t0) * 1000)) +
	       opt_size((uint64_t)(e->dur_ns * 1000));
}

static size_t event_size(const struct plane_maps *m, const struct tfprof__line *l,
			 const struct tfprof__event *e, int64_t t0)
{
	size_t n = event_head_size(m, e, t0);
	for (uint32_t i = 0; i < e->nstats; i++) {
		size_t s = stat_size(m, &l->stats[e->stats + i]);
		n += 1 + vlen(s) + s;
	}
	return n;
}

static uint8_t *put_event(uint8_t *o, const struct plane_maps *m, const struct tfprof__line *l,
			  const struct tfprof__event *e, int64_t t0)
{
	o = put_opt(o, TAG_EVENT_METADATA, m->event_id[e->name]);
	/* The offset is a oneof member: written even when zero (the viewer ignores an unset one). */
	*o++ = TAG_EVENT_OFFSET;
	o = put_varint(o, (uint64_t)((e->start_ns - t0) * 1000));
	o = put_opt(o, TAG_EVENT_DURATION, (uint64_t)(e->dur_ns * 1000));
	for (uint32_t i = 0; i < e->nstats; i++) {
		const struct tfprof__stat *s = &l->stats[e->stats + i];
		/* A stat's body is at most 17 bytes (a 5-byte id and a 10-byte value, with their
		 * tags), so its length is one byte, written once the body is. */
		*o++ = TAG_EVENT_STATS;
		uint8_t *len = o++;
		o = put_stat(o, m, s);
		*len = (uint8_t)(o - len - 1);
	}
	return o;
}

/* The line's encoded size, its metadata ids assigned in the order the reference encoder assigns
 * them (the line's stats first, key before value, then its events), in two walks: the stats (each
 * id, then each size, summed per event in ev_bytes, which has room for the line's events), then
 * the events (each name's id, then the event's size). An event's stats are a run of the line's
 * stat array, in event order, so the first walk meets the stats in the stat array's order. */
static size_t line_size(struct plane_maps *m, const struct tfprof__profile *p, const struct tfprof__line *l,
			uint32_t *ev_bytes)
{
	for (size_t i = 0; i < l->nevents; i++) {
		const struct tfprof__event *e = &l->events[i];
		uint32_t b = 0;
		for (uint32_t k = 0; k < e->nstats; k++) {
			const struct tfprof__stat *st = &l->stats[e->stats + k];
			stat_meta(m, st->key);
			if (st->type == TFPROF_STAT_STR)
				stat_meta(m, st->v.str);
			/* One byte of tag, one of length (a stat's body is at most 17 bytes). */
			b += (uint32_t)(2 + stat_size(m, st));
		}
		ev_bytes[i] = b;
	}
	int64_t t0, t1;
	line_span(l, &t0, &t1);
	size_t n = opt_size((uint64_t)l->id) + opt_size((uint64_t)t0) +
		   opt_size((uint64_t)((t1 - t0) * 1000)) + opt_size((uint64_t)l->id);
	n += opt_str_size(p->strs.strs[l->name]);
	for (size_t i = 0; i < l->nevents; i++) {
		const struct tfprof__event *e = &l->events[i];
		event_meta(m, e->name);
		size_t sz = event_head_size(m, e, t0) + ev_bytes[i];
		n += 1 + vlen(sz) + sz;
	}
	return n;
}

/* An event's body is written to scratch first, so that its length prefix needs no second pass
 * over its stats. */
struct scratch {
	uint8_t *p;
	size_t cap;
};

static uint8_t *put_line(uint8_t *o, const struct plane_maps *m, const struct tfprof__profile *p,
			 const struct tfprof__line *l, struct scratch *sc)
{
	int64_t t0, t1;
	line_span(l, &t0, &t1);
	o = put_opt(o, TAG_LINE_ID, (uint64_t)l->id);
	o = put_opt_str(o, TAG_LINE_NAME, p->strs.strs[l->name]);
	o = put_opt(o, TAG_LINE_TIMESTAMP, (uint64_t)t0);
	for (size_t i = 0; i < l->nevents; i++) {
		const struct tfprof__event *e = &l->events[i];
		/* Bounded: 3 fields and each stat at most 1 + 1 + 11 + 1 + 11 bytes. */
		size_t bound = 3 * 11 + (size_t)e->nstats * 25;
		uint8_t *body = sc->p, *end;
		if (bound > sc->cap) {
			size_t n = 0;
			*o++ = TAG_LINE_EVENTS;
			n = event_size(m, l, e, t0);
			o = put_varint(o, n);
			o = put_event(o, m, l, e, t0);
			continue;
		}
		end = put_event(body, m, l, e, t0);
		*o++ = TAG_LINE_EVENTS;
		o = put_varint(o, (uint64_t)(end - body));
		memcpy(o, body, (size_t)(end - body));
		o += end - body;
	}
	o = put_opt(o, TAG_LINE_DURATION, (uint64_t)((t1 - t0) * 1000));
	return put_opt(o, TAG_LINE_DISPLAY_ID, (uint64_t)l->id);
}

/* One plane, measured: its lines' sizes and the protobuf-c-encoded tail. The metadata ids live in
 * the maps, which are per plane: planes are measured and written one at a time. */
struct plane_plan {
	size_t *line_bytes;
	XPlane tail;
	size_t tail_bytes, bytes;
	/* The plane's metadata ids (the maps' ordered lists), so that the writing pass restores
	 * them instead of walking every stat again. */
	uint32_t *event_strs, *stat_strs;
	uint32_t nevent, nstat;
};

static int plan_plane(struct arena *a, const struct tfprof__profile *p, const struct tfprof__plane *src,
		      struct plane_maps *m, struct plane_plan *pp)
{
	maps_reset(m, p->strs.count);
	pp->line_bytes = arena_alloc(a, (src->nlines + 1) * sizeof *pp->line_bytes);
	if (!pp->line_bytes)
		return -ENOMEM;
	size_t most = 0;
	for (size_t i = 0; i < src->nlines; i++)
		if (src->lines[i].nevents > most)
			most = src->lines[i].nevents;
	uint32_t *ev_bytes = malloc((most ? most : 1) * sizeof *ev_bytes);
	if (!ev_bytes)
		return -ENOMEM;
	pp->bytes = opt_size((uint64_t)src->id) + opt_str_size(p->strs.strs[src->name]);
	for (size_t i = 0; i < src->nlines; i++) {
		pp->line_bytes[i] = line_size(m, p, &src->lines[i], ev_bytes);
		pp->bytes += 1 + vlen(pp->line_bytes[i]) + pp->line_bytes[i];
	}
	free(ev_bytes);
	/* The tail alone: no id, name or lines, which proto3 leaves out of the packing. */
	tensorflow__profiler__xplane__init(&pp->tail);
	if (encode_plane_tail(a, p, src, &pp->tail, m))
		return -ENOMEM;
	pp->tail_bytes = tensorflow__profiler__xplane__get_packed_size(&pp->tail);
	pp->bytes += pp->tail_bytes;
	pp->nevent = m->nevent;
	pp->nstat = m->nstat;
	pp->event_strs = arena_alloc(a, ((size_t)m->nevent + 1) * sizeof *pp->event_strs);
	pp->stat_strs = arena_alloc(a, ((size_t)m->nstat + 1) * sizeof *pp->stat_strs);
	if (!pp->event_strs || !pp->stat_strs)
		return -ENOMEM;
	memcpy(pp->event_strs, m->event_strs, m->nevent * sizeof *pp->event_strs);
	memcpy(pp->stat_strs, m->stat_strs, m->nstat * sizeof *pp->stat_strs);
	return 0;
}

/* The maps as plan_plane() left them for this plane. */
static void restore_ids(struct plane_maps *m, size_t nstr, const struct plane_plan *pp)
{
	maps_reset(m, nstr);
	for (uint32_t k = 0; k < pp->nevent; k++)
		m->event_id[pp->event_strs[k]] = k + 1;
	for (uint32_t k = 0; k < pp->nstat; k++)
		m->stat_id[pp->stat_strs[k]] = k + 1;
	m->nevent = pp->nevent;
	m->nstat = pp->nstat;
}

static uint8_t *put_plane(uint8_t *o, const struct tfprof__profile *p, const struct tfprof__plane *src,
			  const struct plane_maps *m, const struct plane_plan *pp, struct scratch *sc)
{
	*o++ = TAG_SPACE_PLANES;
	o = put_varint(o, pp->bytes);
	o = put_opt(o, TAG_PLANE_ID, (uint64_t)src->id);
	o = put_opt_str(o, TAG_PLANE_NAME, p->strs.strs[src->name]);
	for (size_t i = 0; i < src->nlines; i++) {
		*o++ = TAG_PLANE_LINES;
		o = put_varint(o, pp->line_bytes[i]);
		o = put_line(o, m, p, &src->lines[i], sc);
	}
	return o + tensorflow__profiler__xplane__pack(&pp->tail, o);
}

int tfprof__xspace_encode(const struct tfprof__profile *p, uint8_t **out, size_t *len)
{
	struct arena a = { 0 };
	int rc = -ENOMEM;
	size_t nstr = p->strs.count;
	struct plane_maps m;
	bool maps_ok = maps_init(&m, nstr);
	uint8_t *buf = NULL;
	uint8_t scratch_buf[4096];
	struct scratch sc = { scratch_buf, sizeof scratch_buf };
	struct plane_plan *plans = arena_alloc(&a, (p->nplanes + 1) * sizeof *plans);
	/* The space's own fields after its planes: errors, warnings, host names. */
	XSpace tail;
	tensorflow__profiler__xspace__init(&tail);
	tail.n_errors = p->nerrors;
	tail.errors = p->errors;
	tail.n_warnings = p->nwarnings;
	tail.warnings = p->warnings;
	char *host = p->hostname ? p->hostname : "localhost";
	tail.n_hostnames = 1;
	tail.hostnames = &host;
	if (!maps_ok || !plans)
		goto out;
	/* Pass 1 sizes everything, so that the output is one allocation of its exact size; pass 2
	 * assigns each plane's metadata ids again (the maps are per plane) and writes it. */
	size_t total = tensorflow__profiler__xspace__get_packed_size(&tail);
	for (size_t i = 0; i < p->nplanes; i++) {
		if (plan_plane(&a, p, &p->planes[i], &m, &plans[i]))
			goto out;
		total += 1 + vlen(plans[i].bytes) + plans[i].bytes;
	}
	buf = malloc(total ? total : 1);
	if (!buf)
		goto out;
	tfprof__advise_huge(buf, total);
	uint8_t *o = buf;
	for (size_t i = 0; i < p->nplanes; i++) {
		restore_ids(&m, nstr, &plans[i]);
		o = put_plane(o, p, &p->planes[i], &m, &plans[i], &sc);
	}
	o += tensorflow__profiler__xspace__pack(&tail, o);
	if ((size_t)(o - buf) != total) {
		/* A size pass that disagrees with the writing pass is a bug here, never the caller's. */
		rc = -EPROTO;
		goto out;
	}
	*out = buf;
	*len = total;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	maps_free(&m);
	arena_free(&a);
	return rc;
}

void tfprof__xspace_verify(const struct tfprof__profile *p, const uint8_t *data, size_t len)
{
	uint8_t *ref = NULL;
	size_t n = 0;
	if (tfprof__xspace_encode_pbc(p, &ref, &n))
		return; /* no memory for the reference: nothing to compare with */
	size_t i = 0;
	while (i < n && i < len && ref[i] == data[i])
		i++;
	if (n != len || i != n) {
		fprintf(stderr, "tfprof: TFPROF_VERIFY_ENCODER: the hand-written encoder wrote %zu bytes, "
				"protobuf-c %zu; first difference at byte %zu\n", len, n, i);
		abort();
	}
	free(ref);
}
