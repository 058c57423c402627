/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for src/cli/report_wire.c, tfprof-report's lazy XSpace reader: what it decodes must be
 * what protobuf-c decodes from the same bytes (random spaces with every stat kind, unknown fields,
 * every truncation of a file), and malformed framing must be refused, never half read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* ---- building spaces with protobuf-c ------------------------------------------------------ */

static XStat *random_stat(void)
{
	XStat *s = calloc(1, sizeof *s);
	tensorflow__profiler__xstat__init(s);
	s->metadata_id = (int64_t)(rnd() % 40);
	switch (rnd() % 7) {
	case 0:
		s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_DOUBLE_VALUE;
		s->double_value = (double)(int64_t)rnd() / 1e6;
		break;
	case 1:
		s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE;
		s->uint64_value = rnd();
		break;
	case 2:
		s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE;
		s->int64_value = -(int64_t)(rnd() >> 1);
		break;
	case 3: {
		s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_STR_VALUE;
		size_t n = rnd() % 300; /* over 127 bytes: a two-byte length */
		char *v = malloc(n + 1);
		for (size_t i = 0; i < n; i++)
			v[i] = (char)(' ' + rnd() % 90);
		v[n] = '\0';
		s->str_value = v;
		break;
	}
	case 4: {
		s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_BYTES_VALUE;
		size_t n = rnd() % 20;
		uint8_t *v = malloc(n + 1);
		for (size_t i = 0; i < n; i++)
			v[i] = (uint8_t)rnd();
		s->bytes_value = (ProtobufCBinaryData){ n, v };
		break;
	}
	case 5:
		s->value_case = TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE;
		s->ref_value = rnd() % 1000;
		break;
	default:
		break; /* no value at all */
	}
	return s;
}

static XSpace *random_space(size_t nplanes, size_t nlines, size_t nevents)
{
	XSpace *sp = calloc(1, sizeof *sp);
	tensorflow__profiler__xspace__init(sp);
	sp->n_planes = nplanes;
	sp->planes = calloc(nplanes, sizeof *sp->planes);
	static char *hostnames[] = { "host-a" };
	sp->hostnames = hostnames;
	sp->n_hostnames = 1;
	for (size_t p = 0; p < nplanes; p++) {
		XPlane *pl = sp->planes[p] = calloc(1, sizeof *pl);
		tensorflow__profiler__xplane__init(pl);
		pl->id = (int64_t)p;
		pl->name = p ? "/device:GPU:0" : "/host:CPU";
		pl->n_lines = nlines;
		pl->lines = calloc(nlines, sizeof *pl->lines);
		for (size_t l = 0; l < nlines; l++) {
			XLine *ln = pl->lines[l] = calloc(1, sizeof *ln);
			tensorflow__profiler__xline__init(ln);
			ln->id = (int64_t)(l + 7);
			ln->display_id = (int64_t)l;
			ln->name = "Stream #7(Compute)";
			ln->display_name = "";
			ln->timestamp_ns = (int64_t)(rnd() % 1000000000000ull);
			ln->duration_ps = (int64_t)(rnd() % 1000000);
			ln->n_events = nevents;
			ln->events = calloc(nevents, sizeof *ln->events);
			for (size_t e = 0; e < nevents; e++) {
				XEvent *ev = ln->events[e] = calloc(1, sizeof *ev);
				tensorflow__profiler__xevent__init(ev);
				ev->metadata_id = (int64_t)(rnd() % 100);
				if (rnd() % 5) {
					ev->data_case = TENSORFLOW__PROFILER__XEVENT__DATA_OFFSET_PS;
					ev->offset_ps = (int64_t)(rnd() % 100000000000ull);
				} else {
					ev->data_case = TENSORFLOW__PROFILER__XEVENT__DATA_NUM_OCCURRENCES;
					ev->num_occurrences = (int64_t)(rnd() % 50);
				}
				ev->duration_ps = (int64_t)(rnd() % 10000000);
				ev->n_stats = rnd() % 6;
				ev->stats = calloc(ev->n_stats + 1, sizeof *ev->stats);
				for (size_t s = 0; s < ev->n_stats; s++)
					ev->stats[s] = random_stat();
			}
		}
	}
	return sp;
}

static void free_space(XSpace *sp)
{
	for (size_t p = 0; p < sp->n_planes; p++) {
		XPlane *pl = sp->planes[p];
		for (size_t l = 0; l < pl->n_lines; l++) {
			XLine *ln = pl->lines[l];
			for (size_t e = 0; e < ln->n_events; e++) {
				XEvent *ev = ln->events[e];
				for (size_t s = 0; s < ev->n_stats; s++) {
					XStat *st = ev->stats[s];
					if (st->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_STR_VALUE)
						free(st->str_value);
					if (st->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_BYTES_VALUE)
						free(st->bytes_value.data);
					free(st);
				}
				free(ev->stats);
				free(ev);
			}
			free(ln->events);
			free(ln);
		}
		free(pl->lines);
		free(pl);
	}
	free(sp->planes);
	free(sp);
}

static uint8_t *pack(const XSpace *sp, size_t *n)
{
	*n = tensorflow__profiler__xspace__get_packed_size(sp);
	uint8_t *b = malloc(*n ? *n : 1);
	tensorflow__profiler__xspace__pack(sp, b);
	return b;
}

static struct rp_space *parse_copy(const uint8_t *b, size_t n, int *why)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, b, n);
	struct rp_wire_fault f;
	struct rp_space *s = rp_space_parse(c, n, RP_BUF_MALLOC, &f);
	*why = s ? 0 : f.why;
	return s;
}

/* ---- comparing with protobuf-c ------------------------------------------------------------ */

static void assert_same_stat(const XStat *a, const XStat *b)
{
	assert_int_equal(a->metadata_id, b->metadata_id);
	assert_int_equal(a->value_case, b->value_case);
	switch (a->value_case) {
	case TENSORFLOW__PROFILER__XSTAT__VALUE_DOUBLE_VALUE:
		assert_memory_equal(&a->double_value, &b->double_value, sizeof a->double_value);
		break;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE:
		assert_true(a->uint64_value == b->uint64_value);
		break;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE:
		assert_true(a->int64_value == b->int64_value);
		break;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_STR_VALUE:
		assert_string_equal(a->str_value, b->str_value);
		break;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_BYTES_VALUE:
		assert_int_equal(a->bytes_value.len, b->bytes_value.len);
		if (a->bytes_value.len)
			assert_memory_equal(a->bytes_value.data, b->bytes_value.data, a->bytes_value.len);
		break;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE:
		assert_true(a->ref_value == b->ref_value);
		break;
	default:
		break;
	}
}

/* Every line header, event and stat of the lazy reading equals protobuf-c's whole unpack. */
static void assert_same_as_protobuf_c(const uint8_t *b, size_t n)
{
	XSpace *want = tensorflow__profiler__xspace__unpack(NULL, n, b);
	assert_non_null(want);
	int why = 0;
	struct rp_space *got = parse_copy(b, n, &why);
	assert_non_null(got);
	assert_int_equal(got->n_planes, want->n_planes);
	assert_int_equal(got->hdr->n_hostnames, want->n_hostnames);
	struct rp_events it;
	rp_events_init(&it);
	for (size_t p = 0; p < want->n_planes; p++) {
		const XPlane *wp = want->planes[p];
		const struct rp_plane *gp = &got->planes[p];
		assert_string_equal(gp->hdr->name, wp->name);
		assert_int_equal(gp->hdr->id, wp->id);
		assert_int_equal(gp->n_lines, wp->n_lines);
		for (size_t l = 0; l < wp->n_lines; l++) {
			const XLine *wl = wp->lines[l];
			const struct rp_line *gl = &gp->lines[l];
			assert_int_equal(gl->hdr->id, wl->id);
			assert_int_equal(gl->hdr->display_id, wl->display_id);
			assert_string_equal(gl->hdr->name, wl->name);
			assert_int_equal(gl->hdr->timestamp_ns, wl->timestamp_ns);
			assert_int_equal(gl->hdr->duration_ps, wl->duration_ps);
			assert_int_equal(gl->n_events, wl->n_events);
			rp_events_line(&it, gl);
			size_t e = 0;
			for (const XEvent *ge; (ge = rp_events_next(&it)); e++) {
				assert_true(e < wl->n_events);
				const XEvent *we = wl->events[e];
				assert_int_equal(ge->metadata_id, we->metadata_id);
				assert_int_equal(ge->data_case, we->data_case);
				if (we->data_case == TENSORFLOW__PROFILER__XEVENT__DATA_OFFSET_PS)
					assert_int_equal(ge->offset_ps, we->offset_ps);
				else if (we->data_case == TENSORFLOW__PROFILER__XEVENT__DATA_NUM_OCCURRENCES)
					assert_int_equal(ge->num_occurrences, we->num_occurrences);
				assert_int_equal(ge->duration_ps, we->duration_ps);
				assert_int_equal(ge->n_stats, we->n_stats);
				for (size_t s = 0; s < we->n_stats; s++)
					assert_same_stat(ge->stats[s], we->stats[s]);
			}
			assert_false(it.bad);
			assert_int_equal(e, wl->n_events);
		}
	}
	rp_events_free(&it);
	rp_space_free(got);
	tensorflow__profiler__xspace__free_unpacked(want, NULL);
}

static void test_random_spaces_read_like_protobuf_c(void **state)
{
	(void)state;
	for (int round = 0; round < 20; round++) {
		XSpace *sp = random_space(1 + (size_t)round % 3, 1 + (size_t)round % 4, (size_t)round * 7);
		size_t n;
		uint8_t *b = pack(sp, &n);
		assert_same_as_protobuf_c(b, n);
		free(b);
		free_space(sp);
	}
}

/* ---- hand-made bytes ---------------------------------------------------------------------- */

struct buf {
	uint8_t b[4096];
	size_t n;
};

static void put_varint(struct buf *w, uint64_t v)
{
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		w->b[w->n++] = (uint8_t)(c | (v ? 0x80 : 0));
	} while (v);
}

static void put_tag(struct buf *w, uint32_t num, unsigned wt)
{
	put_varint(w, (uint64_t)num << 3 | wt);
}

static void put_len(struct buf *w, uint32_t num, const struct buf *inner)
{
	put_tag(w, num, 2);
	put_varint(w, inner->n);
	memcpy(w->b + w->n, inner->b, inner->n);
	w->n += inner->n;
}

/* A space of one plane and one line holding the given event bytes. */
static void wrap_event(const struct buf *event, struct buf *space)
{
	struct buf line = { .n = 0 }, plane = { .n = 0 };
	put_tag(&line, 1, 0);
	put_varint(&line, 3);
	put_len(&line, 4, event);
	put_tag(&plane, 2, 2);
	put_varint(&plane, 9);
	memcpy(plane.b + plane.n, "/host:CPU", 9);
	plane.n += 9;
	put_len(&plane, 3, &line);
	space->n = 0;
	put_len(space, 1, &plane);
}

static void test_unknown_fields_are_skipped(void **state)
{
	(void)state;
	struct buf stat = { .n = 0 }, ev = { .n = 0 }, sp;
	put_tag(&stat, 1, 0);
	put_varint(&stat, 4);
	put_tag(&stat, 15, 0); /* unknown varint inside the stat */
	put_varint(&stat, 300);
	put_tag(&stat, 4, 0);
	put_varint(&stat, 42);
	put_tag(&ev, 1, 0);
	put_varint(&ev, 9);
	put_tag(&ev, 14, 1); /* unknown fixed64 */
	for (int i = 0; i < 8; i++)
		ev.b[ev.n++] = 0xff;
	put_len(&ev, 4, &stat);
	struct buf unknown = { .b = "xyz", .n = 3 };
	put_len(&ev, 13, &unknown); /* unknown length-delimited */
	put_tag(&ev, 12, 5);        /* unknown fixed32 */
	for (int i = 0; i < 4; i++)
		ev.b[ev.n++] = 0;
	put_tag(&ev, 3, 0);
	put_varint(&ev, 1000);
	wrap_event(&ev, &sp);
	assert_same_as_protobuf_c(sp.b, sp.n);
	int why;
	struct rp_space *s = parse_copy(sp.b, sp.n, &why);
	struct rp_events it;
	rp_events_init(&it);
	rp_events_line(&it, &s->planes[0].lines[0]);
	const XEvent *e = rp_events_next(&it);
	assert_non_null(e);
	assert_int_equal(e->metadata_id, 9);
	assert_int_equal(e->duration_ps, 1000);
	assert_int_equal(e->n_stats, 1);
	assert_int_equal(e->stats[0]->int64_value, 42);
	assert_null(rp_events_next(&it));
	rp_events_free(&it);
	rp_space_free(s);
}

static void assert_refused(const struct buf *ev, int want_why)
{
	struct buf sp;
	wrap_event(ev, &sp);
	int why = 0;
	assert_null(parse_copy(sp.b, sp.n, &why));
	assert_int_equal(why, want_why);
}

static void test_malformed_events_are_refused(void **state)
{
	(void)state;
	struct buf ev = { .n = 0 };
	put_len(&ev, 1, &(struct buf){ .b = "ab", .n = 2 }); /* metadata_id as bytes */
	assert_refused(&ev, RP_WIRE_CORRUPT);

	ev.n = 0;
	put_tag(&ev, 4, 2); /* a stat whose length runs past the event */
	put_varint(&ev, 50);
	put_tag(&ev, 1, 0);
	assert_refused(&ev, RP_WIRE_CORRUPT);

	ev.n = 0;
	put_tag(&ev, 5, 3); /* a group: not in this schema */
	assert_refused(&ev, RP_WIRE_CORRUPT);

	ev.n = 0;
	put_tag(&ev, 1, 0); /* a varint that never ends */
	for (int i = 0; i < 11; i++)
		ev.b[ev.n++] = 0x80;
	assert_refused(&ev, RP_WIRE_CORRUPT);

	struct buf stat = { .n = 0 };
	put_tag(&stat, 2, 0); /* double_value as a varint */
	put_varint(&stat, 1);
	ev.n = 0;
	put_len(&ev, 4, &stat);
	assert_refused(&ev, RP_WIRE_CORRUPT);
}

static void test_space_without_planes_says_so(void **state)
{
	(void)state;
	struct buf sp = { .n = 0 };
	put_len(&sp, 4, &(struct buf){ .b = "host", .n = 4 }); /* only a hostname */
	int why = 0;
	assert_null(parse_copy(sp.b, sp.n, &why));
	assert_int_equal(why, RP_WIRE_NO_PLANES);
	sp.n = 0;
	put_tag(&sp, 9, 0); /* a field XSpace does not have: not an XSpace */
	put_varint(&sp, 1);
	assert_null(parse_copy(sp.b, sp.n, &why));
	assert_int_equal(why, RP_WIRE_CORRUPT);
}

/* Every prefix of a file: the lazy reader accepts exactly the prefixes that protobuf-c unpacks
 * into a space with planes and no unknown top-level fields, and then reads them alike. */
static void test_every_truncation_agrees_with_protobuf_c(void **state)
{
	(void)state;
	XSpace *sp = random_space(2, 2, 6);
	size_t n;
	uint8_t *b = pack(sp, &n);
	size_t accepted = 0;
	for (size_t k = 0; k <= n; k++) {
		XSpace *w = tensorflow__profiler__xspace__unpack(NULL, k, b);
		bool want = w && w->n_planes && !w->base.n_unknown_fields;
		if (w)
			tensorflow__profiler__xspace__free_unpacked(w, NULL);
		int why;
		struct rp_space *g = parse_copy(b, k, &why);
		if (want != (g != NULL))
			fail_msg("prefix of %zu of %zu bytes: protobuf-c %s it, the lazy reader %s it", k, n,
				 want ? "reads" : "refuses", g ? "reads" : "refuses");
		rp_space_free(g);
		if (want) {
			assert_same_as_protobuf_c(b, k);
			accepted++;
		}
	}
	assert_true(accepted >= 2); /* at least the whole file and the first plane alone */
	free(b);
	free_space(sp);
}

/* The fault of a refused buffer, from rp_space_parse() on a copy. */
static struct rp_wire_fault fault_of(const uint8_t *b, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, b, n);
	struct rp_wire_fault f;
	struct rp_space *s = rp_space_parse(c, n, RP_BUF_MALLOC, &f);
	assert_null(s);
	return f;
}

/* The top-level fields of a packed space: where each starts and ends. */
static size_t top_fields(const uint8_t *b, size_t n, size_t *start, size_t *stop, size_t max)
{
	size_t k = 0, i = 0;
	while (i < n && k < max) {
		start[k] = i;
		uint64_t v = 0;
		unsigned shift = 0;
		i++; /* every tag of XSpace (fields 1-4) is one byte */
		do
			v |= (uint64_t)(b[i] & 0x7f) << shift, shift += 7;
		while (b[i++] & 0x80);
		i += v;
		stop[k++] = i;
	}
	return k;
}

/* A file cut anywhere inside a top-level field is TRUNCATED at that field's offset, with the
 * exact count of missing bytes once its tag and length are whole; a cut at a field boundary is a
 * readable profile (or one without planes yet). rp_space_check_head() on the first 16 bytes of
 * every prefix agrees with the whole parse about the first field. */
static void test_truncation_says_where_and_how_much(void **state)
{
	(void)state;
	XSpace *sp = random_space(3, 2, 4);
	size_t n;
	uint8_t *b = pack(sp, &n);
	size_t start[64], stop[64];
	size_t nf = top_fields(b, n, start, stop, 64);
	assert_true(nf >= 3 && stop[nf - 1] == n);
	for (size_t k = 1; k < n; k++) {
		size_t j = 0;
		while (stop[j] < k)
			j++;
		int why;
		struct rp_space *g = parse_copy(b, k, &why);
		struct rp_wire_fault h;
		int head = rp_space_check_head(b, k < 16 ? k : 16, k, &h);
		if (stop[j] == k) {
			/* A boundary: random_space() packs the planes first, so there is one. */
			assert_non_null(g);
			rp_space_free(g);
			assert_int_equal(head, 0);
			continue;
		}
		assert_null(g);
		struct rp_wire_fault f = fault_of(b, k);
		assert_int_equal(f.why, RP_WIRE_TRUNCATED);
		assert_int_equal(f.at, start[j]);
		if (f.need)
			assert_int_equal(f.need, stop[j] - k);
		else
			assert_true(k - start[j] <= 3); /* cut inside the tag or the length */
		if (j == 0) {
			assert_int_equal(head, -1);
			assert_int_equal(h.why, f.why);
			assert_int_equal(h.need, f.need);
		} else {
			assert_int_equal(head, 0);
		}
	}
	free(b);
	free_space(sp);
}

/* Bytes after a whole profile are refused at the offset where the profile ended: zeros (no field
 * has number 0), a field XSpace does not have, a known field of the wrong wire type, and a field
 * that claims more bytes than are left. */
static void test_garbage_after_a_profile_is_refused_where_it_starts(void **state)
{
	(void)state;
	XSpace *sp = random_space(2, 2, 3);
	size_t n;
	uint8_t *b = pack(sp, &n);
	static const struct {
		uint8_t bytes[4];
		size_t len;
		int why;
		uint64_t need;
	} tails[] = {
		{ { 0, 0, 0, 0 }, 4, RP_WIRE_CORRUPT, 0 },
		{ { 9 << 3 | 2, 1, 'x' }, 3, RP_WIRE_CORRUPT, 0 },
		{ { 1 << 3 | 0, 5 }, 2, RP_WIRE_CORRUPT, 0 },
		{ { 1 << 3 | 2, 9, 0 }, 3, RP_WIRE_TRUNCATED, 8 },
	};
	for (size_t t = 0; t < sizeof tails / sizeof *tails; t++) {
		uint8_t *c = malloc(n + tails[t].len);
		memcpy(c, b, n);
		memcpy(c + n, tails[t].bytes, tails[t].len);
		struct rp_wire_fault f = fault_of(c, n + tails[t].len);
		assert_int_equal(f.why, tails[t].why);
		assert_int_equal(f.at, n);
		assert_int_equal(f.need, tails[t].need);
		free(c);
	}
	free(b);
	free_space(sp);
}

/* The first-field check needs only the head of the file and its size: a file of zeros, a tag
 * XSpace does not have and a first field longer than the file are refused from 16 bytes, and the
 * head of a real profile is accepted whatever the size that follows. */
static void test_head_check_refuses_from_the_first_bytes(void **state)
{
	(void)state;
	uint8_t zeros[16] = { 0 };
	struct rp_wire_fault f;
	assert_int_equal(rp_space_check_head(zeros, 16, 64ull << 30, &f), -1);
	assert_int_equal(f.why, RP_WIRE_CORRUPT);
	uint8_t json[16] = "{\"traceEvents\":";
	assert_int_equal(rp_space_check_head(json, 16, 1 << 20, &f), -1);
	/* Field 1, 100 GiB long, in a 64 GiB file: 36 GiB are missing (0x0a, then the varint). */
	struct buf big = { .n = 0 };
	put_tag(&big, 1, 2);
	put_varint(&big, 100ull << 30);
	assert_int_equal(rp_space_check_head(big.b, big.n, 64ull << 30, &f), -1);
	assert_int_equal(f.why, RP_WIRE_TRUNCATED);
	assert_int_equal(f.need, (100ull << 30) - ((64ull << 30) - big.n));
	assert_int_equal(rp_space_check_head(big.b, big.n, (100ull << 30) + big.n, &f), 0);
	/* The same field with a length that never ends in the file: cut inside its header. */
	uint8_t cut[3] = { 0x0a, 0x80, 0x80 };
	assert_int_equal(rp_space_check_head(cut, 3, 3, &f), -1);
	assert_int_equal(f.why, RP_WIRE_TRUNCATED);
	assert_int_equal(f.need, 0);
	assert_int_equal(rp_space_check_head(cut, 0, 0, &f), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_spaces_read_like_protobuf_c),
		cmocka_unit_test(test_unknown_fields_are_skipped),
		cmocka_unit_test(test_malformed_events_are_refused),
		cmocka_unit_test(test_space_without_planes_says_so),
		cmocka_unit_test(test_every_truncation_agrees_with_protobuf_c),
		cmocka_unit_test(test_truncation_says_where_and_how_much),
		cmocka_unit_test(test_garbage_after_a_profile_is_refused_where_it_starts),
		cmocka_unit_test(test_head_check_refuses_from_the_first_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
