/* Encodes the merged profile as an XSpace with protobuf-c. Metadata ids are per plane and start
 * at 1; event names and stat keys are deduplicated through the profile's string table; string
 * stat values are written as ref_value (the id of a stat metadata named by the string), which is
 * how TensorFlow interns them. All protobuf-c structs live in one arena freed after packing. */
#include "xspace_write.h"

#include <errno.h>
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

static int encode_line(struct arena *a, struct plane_maps *m, const struct tfprof__line *src, XLine *l)
{
	tensorflow__profiler__xline__init(l);
	l->id = src->id;
	l->display_id = src->id;
	int64_t t0 = src->nevents ? src->events[0].start_ns : 0, t1 = t0;
	for (size_t i = 0; i < src->nevents; i++) {
		if (src->events[i].start_ns < t0)
			t0 = src->events[i].start_ns;
		if (src->events[i].start_ns + src->events[i].dur_ns > t1)
			t1 = src->events[i].start_ns + src->events[i].dur_ns;
	}
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
		if (!m->event_id[e->name]) {
			m->event_strs[m->nevent] = e->name;
			m->event_id[e->name] = ++m->nevent;
		}
		x->metadata_id = m->event_id[e->name];
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

static int encode_plane(struct arena *a, const struct tfprof__profile *p, const struct tfprof__plane *src,
			XPlane *x, struct plane_maps *m)
{
	size_t nstr = p->strs.count;
	memset(m->event_id, 0, nstr * sizeof *m->event_id);
	memset(m->stat_id, 0, nstr * sizeof *m->stat_id);
	m->nevent = m->nstat = 0;
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

int tfprof__xspace_encode(const struct tfprof__profile *p, uint8_t **out, size_t *len)
{
	struct arena a = { 0 };
	int rc = -ENOMEM;
	size_t nstr = p->strs.count;
	struct plane_maps m = {
		.event_id = malloc(nstr * sizeof(uint32_t)),
		.stat_id = malloc(nstr * sizeof(uint32_t)),
		.event_strs = malloc(nstr * sizeof(uint32_t)),
		.stat_strs = malloc(nstr * sizeof(uint32_t)),
	};
	XSpace space;
	tensorflow__profiler__xspace__init(&space);
	XPlane *planes = arena_alloc(&a, p->nplanes * sizeof *planes);
	XPlane **pp = arena_alloc(&a, p->nplanes * sizeof *pp);
	if (!m.event_id || !m.stat_id || !m.event_strs || !m.stat_strs || (p->nplanes && (!planes || !pp)))
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
	free(m.event_id);
	free(m.stat_id);
	free(m.event_strs);
	free(m.stat_strs);
	arena_free(&a);
	return rc;
}
