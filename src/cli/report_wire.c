/* Reads an XSpace without unpacking its events: protobuf-c unpacks the small parts (the space's
 * messages, each plane's metadata, each line's header) and the events, nearly all of a profile,
 * stay as bytes in the file buffer until an analysis walks them with rp_events_next(), which
 * decodes one at a time into reused storage. protobuf-c's whole-file unpack needs ~12x the file
 * in memory and ~1.3 us per event in malloc; this keeps tfprof-report within a few times the
 * file and a fraction of the time (bench/report_read.c measures both).
 *
 * Hand decoding is limited to the two messages the events are made of (XEvent, XStat); it follows
 * the protobuf wire format: unknown fields are skipped, a known field with the wrong wire type or
 * any framing that runs past its message makes the file corrupt. rp_space_parse() checks every
 * event's framing once, so a later walk cannot meet a malformed event. */
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include "report.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static inline __attribute__((always_inline)) bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	/* Tags and most small values fit in one byte. */
	if (*p < end && !(**p & 0x80)) {
		*v = *(*p)++;
		return true;
	}
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

/* A field's number and wire type; for WT_LEN also its payload span (p then points past it). */
struct field {
	uint32_t num;
	unsigned wt;
	uint64_t v;            /* WT_VARINT, WT_I64 and WT_I32 values */
	const uint8_t *data;   /* WT_LEN payload */
	size_t len;
	const uint8_t *begin;  /* the field's first byte (its tag) */
};

static inline __attribute__((always_inline)) bool next_field(const uint8_t **p, const uint8_t *end, struct field *f)
{
	f->begin = *p;
	f->data = NULL;
	f->len = 0;
	uint64_t tag;
	if (!get_varint(p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
		return false;
	f->num = (uint32_t)(tag >> 3);
	f->wt = (unsigned)(tag & 7);
	switch (f->wt) {
	case WT_VARINT:
		return get_varint(p, end, &f->v);
	case WT_I64:
		if (end - *p < 8)
			return false;
		memcpy(&f->v, *p, 8); /* little-endian on every machine tfprof builds for */
		*p += 8;
		return true;
	case WT_I32: {
		if (end - *p < 4)
			return false;
		uint32_t w;
		memcpy(&w, *p, 4);
		f->v = w;
		*p += 4;
		return true;
	}
	case WT_LEN:
		if (!get_varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
			return false;
		f->data = *p;
		f->len = (size_t)f->v;
		*p += f->len;
		return true;
	default: /* groups (3, 4) are not in this schema; 6 and 7 do not exist */
		return false;
	}
}

/* The message's bytes without every occurrence of field num (which must be WT_LEN), into a new
 * buffer; spans receives each occurrence's payload. Returns false on malformed framing. */
static bool split(const uint8_t *b, size_t n, uint32_t num, uint8_t **rest, size_t *nrest,
		  struct field **spans, size_t *nspans)
{
	*rest = rp_xmalloc(n ? n : 1);
	*nrest = 0;
	*spans = NULL;
	*nspans = 0;
	size_t cap = 0;
	const uint8_t *p = b, *end = b + n;
	while (p < end) {
		struct field f;
		if (!next_field(&p, end, &f))
			goto bad;
		if (f.num == num) {
			if (f.wt != WT_LEN)
				goto bad;
			rp_grow((void **)spans, &cap, *nspans + 1, sizeof **spans);
			(*spans)[(*nspans)++] = f;
		} else {
			memcpy(*rest + *nrest, f.begin, (size_t)(p - f.begin));
			*nrest += (size_t)(p - f.begin);
		}
	}
	return true;
bad:
	free(*rest);
	free(*spans);
	*rest = NULL;
	*spans = NULL;
	return false;
}

/* ---- events ----------------------------------------------------------------------------- */

void rp_events_init(struct rp_events *it)
{
	memset(it, 0, sizeof *it);
}

void rp_events_line(struct rp_events *it, const struct rp_line *l)
{
	it->p = l->body;
	it->end = l->body + l->len;
	it->bad = false;
}

void rp_events_free(struct rp_events *it)
{
	free(it->st);
	free(it->stp);
	free(it->spans);
	free(it->str);
	memset(it, 0, sizeof *it);
}

/* The wire type each known field must have, by field number (ANY: not in the schema, skipped).
 * The decoders and the parse-time check read the same tables, so they refuse the same bytes. */
#define ANY 0xff
static const uint8_t event_wt[] = { ANY, WT_VARINT, WT_VARINT, WT_VARINT, WT_LEN, WT_VARINT };
static const uint8_t stat_wt[] = { ANY, WT_VARINT, WT_I64, WT_VARINT, WT_VARINT, WT_LEN, WT_LEN, WT_VARINT };

/* The next field of an XEvent (event) or XStat, refused when a known field has the wrong type. */
static inline __attribute__((always_inline)) bool next_known(const uint8_t **p, const uint8_t *end,
							     struct field *f, bool event)
{
	const uint8_t *wt = event ? event_wt : stat_wt;
	size_t n = event ? sizeof event_wt : sizeof stat_wt;
	return next_field(p, end, f) && (f->num >= n || wt[f->num] == ANY || f->wt == wt[f->num]);
}

static bool decode_stat(const uint8_t *p, const uint8_t *end, XStat *s, struct rp_str_span *span)
{
	tensorflow__profiler__xstat__init(s);
	span->data = NULL;
	while (p < end) {
		struct field f;
		if (!next_known(&p, end, &f, false))
			return false;
		/* The oneof's members share storage; each case names its own member. */
		switch (f.num) {
		case 1:
			s->metadata_id = (int64_t)f.v;
			break;
		case 2:
			memcpy(&s->double_value, &f.v, sizeof s->double_value);
			s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_DOUBLE_VALUE;
			break;
		case 3:
			s->uint64_value = f.v;
			s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE;
			break;
		case 4:
			s->int64_value = (int64_t)f.v;
			s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE;
			break;
		case 5:
			span->data = f.data;
			span->len = f.len;
			s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_STR_VALUE;
			break;
		case 6:
			s->bytes_value.data = (uint8_t *)f.data;
			s->bytes_value.len = f.len;
			s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_BYTES_VALUE;
			break;
		case 7:
			s->ref_value = f.v;
			s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE;
			break;
		default:
			break; /* unknown: skipped, as protobuf-c would keep and ignore it */
		}
	}
	if (s->value_case != TENSORFLOW__PROFILER__XSTAT__VALUE_STR_VALUE)
		span->data = NULL;
	return true;
}

/* Decodes one XEvent into it->ev; strings are copied (NUL-terminated) into it->str. */
static bool decode_event(struct rp_events *it, const uint8_t *p, const uint8_t *end)
{
	XEvent *e = &it->ev;
	tensorflow__profiler__xevent__init(e);
	size_t ns = 0, strbytes = 0;
	while (p < end) {
		struct field f;
		if (!next_known(&p, end, &f, true))
			return false;
		switch (f.num) {
		case 1:
			e->metadata_id = (int64_t)f.v;
			break;
		case 2:
			e->offset_ps = (int64_t)f.v;
			e->data_case = TENSORFLOW__PROFILER__XEVENT__DATA_OFFSET_PS;
			break;
		case 3:
			e->duration_ps = (int64_t)f.v;
			break;
		case 5:
			e->num_occurrences = (int64_t)f.v;
			e->data_case = TENSORFLOW__PROFILER__XEVENT__DATA_NUM_OCCURRENCES;
			break;
		case 4:
			if (ns == it->cap) {
				/* Three arrays of one capacity; pointers into st are set once it is final. */
				size_t cap = it->cap ? 2 * it->cap : 16;
				it->st = rp_xrealloc(it->st, cap * sizeof *it->st);
				it->stp = rp_xrealloc(it->stp, cap * sizeof *it->stp);
				it->spans = rp_xrealloc(it->spans, cap * sizeof *it->spans);
				it->cap = cap;
			}
			if (!decode_stat(f.data, f.data + f.len, &it->st[ns], &it->spans[ns]))
				return false;
			if (it->spans[ns].data)
				strbytes += it->spans[ns].len + 1;
			ns++;
			break;
		default:
			break;
		}
	}
	rp_grow((void **)&it->str, &it->str_cap, strbytes + 1, 1);
	char *s = it->str;
	for (size_t i = 0; i < ns; i++) {
		it->stp[i] = &it->st[i];
		if (!it->spans[i].data)
			continue;
		memcpy(s, it->spans[i].data, it->spans[i].len);
		s[it->spans[i].len] = '\0';
		it->st[i].str_value = s;
		s += it->spans[i].len + 1;
	}
	e->n_stats = ns;
	e->stats = ns ? it->stp : NULL;
	return true;
}

const XEvent *rp_events_next(struct rp_events *it)
{
	while (it->p && it->p < it->end) {
		struct field f;
		if (!next_field(&it->p, it->end, &f)) {
			it->bad = true;
			break;
		}
		if (f.num != 4)
			continue; /* the line's own fields, read by protobuf-c at parse time */
		if (f.wt != WT_LEN || !decode_event(it, f.data, f.data + f.len)) {
			it->bad = true;
			break;
		}
		return &it->ev;
	}
	/* rp_space_parse() walked every event, so after it this only ends a line, never cuts one
	 * short. */
	it->p = it->end = NULL;
	return NULL;
}

/* ---- space, planes, lines ----------------------------------------------------------------- */

/* Checks an event's framing without decoding it: the parse-time check costs half a decode. */
static bool check_message(const uint8_t *p, const uint8_t *end, bool event)
{
	while (p < end) {
		struct field f;
		if (!next_known(&p, end, &f, event))
			return false;
		if (event && f.num == 4 && !check_message(f.data, f.data + f.len, false))
			return false;
	}
	return true;
}

static bool parse_line(const uint8_t *b, size_t n, struct rp_line *l)
{
	uint8_t *rest;
	size_t nrest, nev;
	struct field *ev;
	if (!split(b, n, 4, &rest, &nrest, &ev, &nev))
		return false;
	bool ok = true;
	for (size_t i = 0; ok && i < nev; i++)
		ok = check_message(ev[i].data, ev[i].data + ev[i].len, true);
	free(ev);
	l->hdr = ok ? tensorflow__profiler__xline__unpack(NULL, nrest, rest) : NULL;
	free(rest);
	l->body = b;
	l->len = n;
	l->n_events = nev;
	return l->hdr != NULL;
}

static bool parse_plane(const uint8_t *b, size_t n, struct rp_plane *pl)
{
	uint8_t *rest;
	size_t nrest, nlines;
	struct field *lines;
	if (!split(b, n, 3, &rest, &nrest, &lines, &nlines))
		return false;
	pl->hdr = tensorflow__profiler__xplane__unpack(NULL, nrest, rest);
	free(rest);
	pl->lines = nlines ? rp_xcalloc(nlines, sizeof *pl->lines) : NULL;
	bool ok = pl->hdr != NULL;
	for (size_t i = 0; ok && i < nlines; i++) {
		ok = parse_line(lines[i].data, lines[i].len, &pl->lines[i]);
		pl->n_lines = i + 1; /* so that rp_space_free() frees a line that failed half way */
		pl->n_events += pl->lines[i].n_events;
	}
	free(lines);
	return ok;
}

bool rp_space_plausible_start(const uint8_t *b, size_t n, uint64_t total)
{
	/* XSpace's fields: planes (1), errors (2), warnings (3), hostnames (4), all
	 * length-delimited, so the first byte is their one-byte tag. */
	if (n < 2 || (b[0] != 0x0a && b[0] != 0x12 && b[0] != 0x1a && b[0] != 0x22))
		return false;
	uint64_t len = 0;
	for (size_t i = 1; i < n && i <= 10; i++) {
		len |= (uint64_t)(b[i] & 0x7f) << (7 * (i - 1));
		if (!(b[i] & 0x80))
			return i + 1 <= total && len <= total - (i + 1);
	}
	return false;
}

struct rp_space *rp_space_parse(uint8_t *buf, size_t n, bool mapped, int *why)
{
	struct rp_space *s = rp_xcalloc(1, sizeof *s);
	s->buf = buf;
	s->len = n;
	s->mapped = mapped;
	uint8_t *rest;
	size_t nrest, nplanes;
	struct field *planes;
	*why = RP_WIRE_CORRUPT;
	if (!split(buf, n, 1, &rest, &nrest, &planes, &nplanes)) {
		rp_space_free(s);
		return NULL;
	}
	s->hdr = tensorflow__profiler__xspace__unpack(NULL, nrest, rest);
	free(rest);
	/* protobuf-c accepts many non-protobuf byte strings as messages made only of unknown fields,
	 * so an XSpace also has to have planes and nothing the schema does not define at its top. */
	bool ok = s->hdr && !s->hdr->base.n_unknown_fields;
	if (ok && !nplanes) {
		*why = RP_WIRE_NO_PLANES;
		ok = false;
	}
	s->planes = ok ? rp_xcalloc(nplanes, sizeof *s->planes) : NULL;
	for (size_t i = 0; ok && i < nplanes; i++) {
		ok = parse_plane(planes[i].data, planes[i].len, &s->planes[i]);
		s->n_planes = i + 1;
	}
	free(planes);
	if (!ok) {
		rp_space_free(s);
		return NULL;
	}
	return s;
}

void rp_space_free(struct rp_space *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_planes; i++) {
		struct rp_plane *p = &s->planes[i];
		for (size_t k = 0; k < p->n_lines; k++)
			if (p->lines[k].hdr)
				tensorflow__profiler__xline__free_unpacked(p->lines[k].hdr, NULL);
		free(p->lines);
		if (p->hdr)
			tensorflow__profiler__xplane__free_unpacked(p->hdr, NULL);
	}
	free(s->planes);
	if (s->hdr)
		tensorflow__profiler__xspace__free_unpacked(s->hdr, NULL);
	if (s->mapped)
		munmap(s->buf, s->len);
	else
		free(s->buf);
	free(s);
}
