/* SPDX-License-Identifier: Apache-2.0 */
/* Reads an XSpace without unpacking its events: protobuf-c unpacks the small parts (the space's
 * messages, each plane's metadata, each line's header) and the events, nearly all of a profile,
 * stay as bytes in the file until an analysis walks them with rp_events_next(), which decodes
 * one at a time into reused storage. protobuf-c's whole-file unpack needs ~12x the file in
 * memory and ~1.3 us per event in malloc; this takes a fraction of the time, and when the file is
 * mapped (report_load.c) each walk hands the pages it has passed back, so memory is what the
 * analyses keep, not the file (bench/report_read.c measures both).
 *
 * The top of the file is read field by field: XSpace has only length-delimited fields 1-4 there,
 * so a file is refused at its first byte that cannot be one, and a field that runs past the end
 * says the file was cut short, and where.
 *
 * Hand decoding is limited to the two messages the events are made of (XEvent, XStat); it follows
 * the protobuf wire format: unknown fields are skipped, a known field with the wrong wire type or
 * any framing that runs past its message makes the file corrupt. rp_space_parse() checks every
 * event's framing once, so a later walk cannot meet a malformed event. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* Appends k bytes to a growing buffer (*b, of *cap bytes, *n used). */
static void put_bytes(uint8_t **b, size_t *cap, size_t *n, const uint8_t *src, size_t k)
{
	rp_grow((void **)b, cap, *n + k, 1);
	memcpy(*b + *n, src, k);
	*n += k;
}

/* The message's bytes without every occurrence of field num (which must be WT_LEN), into a new
 * buffer; spans receives each occurrence's payload. Returns false on malformed framing. The
 * buffer grows with what is copied into it: a message's length is what the file claims, and a
 * corrupt file can claim more than the machine has. */
static bool split(const uint8_t *b, size_t n, uint32_t num, uint8_t **rest, size_t *nrest,
		  struct field **spans, size_t *nspans)
{
	size_t rest_cap = 64;
	*rest = rp_xmalloc(rest_cap);
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
			put_bytes(rest, &rest_cap, nrest, f.begin, (size_t)(p - f.begin));
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

/* How far a walk over a mapped file goes before it hands the pages behind it back. */
#define RELEASE_STEP ((size_t)8 << 20)

/* Drops the pages of a mapped file that hold [from, to) from this process's memory, once a walk
 * has passed them: they stay in the page cache and are mapped again (a minor fault per page) if a
 * later walk touches them, so a walk costs memory for where it is, not for all it has read. The
 * page that holds to is kept, since the walk goes on in it. Correct for any span: the mapping is
 * private and never written, so a dropped page reads back as it was. */
static void release(const uint8_t *from, const uint8_t *to)
{
	static uintptr_t page;
	if (!page)
		page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)from & ~(page - 1), b = (uintptr_t)to & ~(page - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ---- events ----------------------------------------------------------------------------- */

void rp_events_init(struct rp_events *it)
{
	memset(it, 0, sizeof *it);
}

void rp_events_line(struct rp_events *it, const struct rp_line *l)
{
	it->p = it->mark = l->body;
	it->end = l->body + l->len;
	it->bad = false;
	it->mapped = l->mapped;
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
		if (it->mapped && (size_t)(it->p - it->mark) >= RELEASE_STEP) {
			release(it->mark, it->p);
			it->mark = it->p;
		}
		return &it->ev;
	}
	if (it->mapped && it->p)
		release(it->mark, it->p);
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

/* One pass over the line: its events are checked where they lie and its other fields are copied
 * out for protobuf-c, so that the line's pages are walked once and released behind the walk. */
static bool parse_line(const uint8_t *b, size_t n, bool mapped, struct rp_line *l)
{
	size_t rest_cap = 64, nrest = 0, nev = 0;
	uint8_t *rest = rp_xmalloc(rest_cap);
	const uint8_t *p = b, *end = b + n, *mark = b;
	bool ok = true;
	while (ok && p < end) {
		struct field f;
		if (!next_field(&p, end, &f)) {
			ok = false;
		} else if (f.num == 4) {
			ok = f.wt == WT_LEN && check_message(f.data, f.data + f.len, true);
			nev++;
		} else {
			put_bytes(&rest, &rest_cap, &nrest, f.begin, (size_t)(p - f.begin));
		}
		if (mapped && (size_t)(p - mark) >= RELEASE_STEP) {
			release(mark, p);
			mark = p;
		}
	}
	if (mapped)
		release(mark, p);
	l->hdr = ok ? tensorflow__profiler__xline__unpack(NULL, nrest, rest) : NULL;
	free(rest);
	l->body = b;
	l->len = n;
	l->n_events = nev;
	l->mapped = mapped;
	return l->hdr != NULL;
}

static bool parse_plane(const uint8_t *b, size_t n, bool mapped, struct rp_plane *pl)
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
		ok = parse_line(lines[i].data, lines[i].len, mapped, &pl->lines[i]);
		pl->n_lines = i + 1; /* so that rp_space_free() frees a line that failed half way */
		pl->n_events += pl->lines[i].n_events;
	}
	free(lines);
	return ok;
}

/* A varint at b that get_varint() refused: cut off by the end of the file (fewer than its ten
 * bytes, all with the continuation bit, and nothing after them), or just malformed. */
static bool varint_cut(const uint8_t *b, size_t avail, uint64_t room)
{
	if (avail != room || avail >= 10)
		return false;
	for (size_t i = 0; i < avail; i++)
		if (!(b[i] & 0x80))
			return false;
	return true;
}

/* Reads the top-level field at b, of which avail bytes are in memory and room bytes are left in
 * the file. XSpace's fields (planes, errors, warnings, hostnames) are numbers 1-4, all
 * length-delimited, so anything else at the top of a file means it is not an XSpace (protobuf-c
 * would keep it as an unknown field, which is refused as well). Returns 0 and sets *num, *hdr
 * (the bytes of the tag and the length) and *len; or RP_WIRE_CORRUPT, or RP_WIRE_TRUNCATED with
 * *need when the field runs past the end of the file. */
static int top_field(const uint8_t *b, size_t avail, uint64_t room, uint32_t *num, size_t *hdr,
		     uint64_t *len, uint64_t *need)
{
	const uint8_t *p = b, *end = b + avail;
	uint64_t tag;
	if (!get_varint(&p, end, &tag)) {
		*need = 0;
		return varint_cut(b, avail, room) ? RP_WIRE_TRUNCATED : RP_WIRE_CORRUPT;
	}
	if ((tag & 7) != WT_LEN || (tag >> 3) < 1 || (tag >> 3) > 4)
		return RP_WIRE_CORRUPT;
	const uint8_t *lp = p;
	if (!get_varint(&p, end, len)) {
		*need = 0;
		return varint_cut(lp, (size_t)(end - lp), room - (uint64_t)(lp - b)) ? RP_WIRE_TRUNCATED
										  : RP_WIRE_CORRUPT;
	}
	*num = (uint32_t)(tag >> 3);
	*hdr = (size_t)(p - b);
	uint64_t left = room - *hdr;
	if (*len > left) {
		*need = *len - left;
		return RP_WIRE_TRUNCATED;
	}
	return 0;
}

int rp_space_check_head(const uint8_t *head, size_t nh, uint64_t n, struct rp_wire_fault *f)
{
	uint32_t num;
	size_t hdr;
	uint64_t len;
	*f = (struct rp_wire_fault){ .why = RP_WIRE_CORRUPT };
	if (!nh)
		return -1;
	f->why = top_field(head, nh, n, &num, &hdr, &len, &f->need);
	return f->why ? -1 : 0;
}

struct rp_space *rp_space_parse(uint8_t *buf, size_t n, enum rp_buf_kind kind, struct rp_wire_fault *f)
{
	struct rp_space *s = rp_xcalloc(1, sizeof *s);
	s->buf = buf;
	s->len = n;
	s->kind = kind;
	*f = (struct rp_wire_fault){ .why = RP_WIRE_CORRUPT };
	/* The planes are parsed where they lie; the other fields (a few strings) are copied out for
	 * protobuf-c. */
	uint8_t *rest = NULL;
	size_t nrest = 0, rest_cap = 0, nplanes = 0, cap = 0;
	struct field *planes = NULL;
	const uint8_t *p = buf, *end = buf + n;
	bool ok = true;
	while (ok && p < end) {
		uint32_t num;
		size_t hdr;
		uint64_t len;
		int why = top_field(p, (size_t)(end - p), (uint64_t)(end - p), &num, &hdr, &len, &f->need);
		if (why) {
			f->why = why;
			f->at = (uint64_t)(p - buf);
			ok = false;
			break;
		}
		if (num == 1) {
			rp_grow((void **)&planes, &cap, nplanes + 1, sizeof *planes);
			planes[nplanes++] = (struct field){ .num = 1, .wt = WT_LEN, .data = p + hdr, .len = (size_t)len,
							    .begin = p };
		} else {
			put_bytes(&rest, &rest_cap, &nrest, p, hdr + (size_t)len);
		}
		p += hdr + (size_t)len;
	}
	if (ok) {
		s->hdr = tensorflow__profiler__xspace__unpack(NULL, nrest, rest ? rest : (const uint8_t *)"");
		/* top_field() lets only XSpace's own fields through, so this holds unless protobuf-c
		 * learns to keep more; it is the check that made a non-XSpace refused before. */
		ok = s->hdr && !s->hdr->base.n_unknown_fields;
	}
	free(rest);
	if (ok && !nplanes) {
		f->why = RP_WIRE_NO_PLANES;
		ok = false;
	}
	s->planes = ok ? rp_xcalloc(nplanes, sizeof *s->planes) : NULL;
	for (size_t i = 0; ok && i < nplanes; i++) {
		ok = parse_plane(planes[i].data, planes[i].len, kind == RP_BUF_MAPPED, &s->planes[i]);
		s->n_planes = i + 1;
		if (!ok)
			f->at = (uint64_t)(planes[i].begin - buf);
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
	if (s->kind == RP_BUF_MAPPED)
		munmap(s->buf, s->len);
	else
		free(s->buf);
	free(s);
}
