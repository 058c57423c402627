/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers of tfprof-report: allocation that exits on exhaustion, interned strings, name
 * lookups in a plane's metadata maps, typed reads of XStat values, UTF-8 checks and output files
 * that appear whole or not at all. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"

static void oom(void)
{
	fputs("tfprof-report: out of memory; what this profile decodes to does not fit in this "
	      "machine's memory, try a machine with more memory\n",
	      stderr);
	exit(RP_EXIT_FAIL);
}

void *rp_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *rp_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *rp_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *rp_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(rp_xmalloc(n), s, n);
}

void rp_grow(void **v, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / sz)
			oom();
		ncap *= 2;
	}
	*v = rp_xrealloc(*v, ncap * sz);
	*cap = ncap;
}

/* FNV-1a: short names, no adversary worth a keyed hash in a local report tool. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void rehash(struct rp_strtab *t, size_t nslots)
{
	free(t->slots);
	t->slots = rp_xcalloc(nslots, sizeof *t->slots);
	t->nslots = nslots;
	for (size_t i = 0; i < t->n; i++) {
		size_t j = hash_str(t->s[i]) & (nslots - 1);
		while (t->slots[j])
			j = (j + 1) & (nslots - 1);
		t->slots[j] = (uint32_t)i + 1;
	}
}

uint32_t rp_intern(struct rp_strtab *t, const char *s)
{
	if ((t->n + 1) * 2 > t->nslots)
		rehash(t, t->nslots ? t->nslots * 2 : 64);
	size_t j = hash_str(s) & (t->nslots - 1);
	while (t->slots[j]) {
		uint32_t id = t->slots[j] - 1;
		if (strcmp(t->s[id], s) == 0)
			return id;
		j = (j + 1) & (t->nslots - 1);
	}
	rp_grow((void **)&t->s, &t->cap, t->n + 1, sizeof *t->s);
	t->s[t->n] = rp_xstrdup(s);
	t->slots[j] = (uint32_t)t->n + 1;
	return (uint32_t)t->n++;
}

void rp_strtab_free(struct rp_strtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->s[i]);
	free(t->s);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

/* Sorting (id, position) pairs so that lookups are binary searches. */
struct id_pos {
	int64_t id;
	size_t pos;
};

static int cmp_id_pos(const void *a, const void *b)
{
	const struct id_pos *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

void rp_plane_index_init(struct rp_plane_index *ix, const XPlane *p)
{
	memset(ix, 0, sizeof *ix);
	ix->plane = p;
	size_t n = p->n_event_metadata;
	struct id_pos *tmp = rp_xmalloc((n > p->n_stat_metadata ? n : p->n_stat_metadata) * sizeof *tmp + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (p->event_metadata[i]) /* the map key is the id; the value may be absent */
			tmp[k++] = (struct id_pos){ p->event_metadata[i]->key, i };
	qsort(tmp, k, sizeof *tmp, cmp_id_pos);
	ix->ev_ids = rp_xmalloc(k * sizeof *ix->ev_ids);
	ix->ev_names = rp_xmalloc(k * sizeof *ix->ev_names);
	ix->ev_display = rp_xmalloc(k * sizeof *ix->ev_display);
	ix->ev_meta = rp_xmalloc(k * sizeof *ix->ev_meta);
	for (size_t i = 0; i < k; i++) {
		const Tensorflow__Profiler__XEventMetadata *m = p->event_metadata[tmp[i].pos]->value;
		ix->ev_ids[i] = tmp[i].id;
		ix->ev_names[i] = m && m->name ? m->name : "";
		ix->ev_display[i] = m && m->display_name ? m->display_name : "";
		ix->ev_meta[i] = m;
	}
	ix->nev = k;
	k = 0;
	for (size_t i = 0; i < p->n_stat_metadata; i++)
		if (p->stat_metadata[i])
			tmp[k++] = (struct id_pos){ p->stat_metadata[i]->key, i };
	qsort(tmp, k, sizeof *tmp, cmp_id_pos);
	ix->st_ids = rp_xmalloc(k * sizeof *ix->st_ids);
	ix->st_names = rp_xmalloc(k * sizeof *ix->st_names);
	for (size_t i = 0; i < k; i++) {
		const Tensorflow__Profiler__XStatMetadata *m = p->stat_metadata[tmp[i].pos]->value;
		ix->st_ids[i] = tmp[i].id;
		ix->st_names[i] = m && m->name ? m->name : "";
	}
	ix->nst = k;
	free(tmp);
}

void rp_plane_index_free(struct rp_plane_index *ix)
{
	free(ix->ev_ids);
	free(ix->ev_names);
	free(ix->ev_display);
	free(ix->ev_meta);
	free(ix->st_ids);
	free(ix->st_names);
	memset(ix, 0, sizeof *ix);
}

static ptrdiff_t find_id(const int64_t *ids, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && ids[lo] == id ? (ptrdiff_t)lo : -1;
}

const char *rp_event_name(const struct rp_plane_index *ix, int64_t id, const char **display)
{
	ptrdiff_t i = find_id(ix->ev_ids, ix->nev, id);
	if (display)
		*display = i < 0 ? "" : ix->ev_display[i];
	return i < 0 ? NULL : ix->ev_names[i];
}

const Tensorflow__Profiler__XEventMetadata *rp_event_meta(const struct rp_plane_index *ix, int64_t id)
{
	ptrdiff_t i = find_id(ix->ev_ids, ix->nev, id);
	return i < 0 ? NULL : ix->ev_meta[i];
}

const char *rp_stat_name(const struct rp_plane_index *ix, int64_t id)
{
	ptrdiff_t i = find_id(ix->st_ids, ix->nst, id);
	return i < 0 ? NULL : ix->st_names[i];
}

int64_t rp_stat_id(const struct rp_plane_index *ix, const char *name)
{
	for (size_t i = 0; i < ix->nst; i++)
		if (strcasecmp(ix->st_names[i], name) == 0)
			return ix->st_ids[i];
	return INT64_MIN;
}

const char *rp_stat_str(const struct rp_plane_index *ix, const XStat *s)
{
	switch (s->value_case) {
	case TENSORFLOW__PROFILER__XSTAT__VALUE_STR_VALUE:
		return s->str_value ? s->str_value : "";
	case TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE:
		return s->ref_value <= INT64_MAX ? rp_stat_name(ix, (int64_t)s->ref_value) : NULL;
	default:
		return NULL;
	}
}

bool rp_stat_int(const struct rp_plane_index *ix, const XStat *s, int64_t *out)
{
	switch (s->value_case) {
	case TENSORFLOW__PROFILER__XSTAT__VALUE_INT64_VALUE:
		*out = s->int64_value;
		return true;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE:
		if (s->uint64_value > INT64_MAX)
			return false;
		*out = (int64_t)s->uint64_value;
		return true;
	case TENSORFLOW__PROFILER__XSTAT__VALUE_DOUBLE_VALUE:
		if (!isfinite(s->double_value) || s->double_value != floor(s->double_value) ||
		    fabs(s->double_value) > 9e18)
			return false;
		*out = (int64_t)s->double_value;
		return true;
	default: {
		const char *str = rp_stat_str(ix, s);
		if (!str || !*str)
			return false;
		char *end;
		errno = 0;
		long long v = strtoll(str, &end, 10);
		if (errno || *end)
			return false;
		*out = v;
		return true;
	}
	}
}

/* Saturating arithmetic: a corrupt timestamp must give a wrong number, never undefined
 * behaviour. */
int64_t rp_sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t clamp_time(int64_t t)
{
	return t > RP_TIME_LIMIT ? RP_TIME_LIMIT : t < -RP_TIME_LIMIT ? -RP_TIME_LIMIT : t;
}

int64_t rp_event_start(const XLine *l, const XEvent *e)
{
	int64_t base;
	if (__builtin_mul_overflow(l->timestamp_ns, (int64_t)1000, &base))
		base = l->timestamp_ns > 0 ? INT64_MAX : INT64_MIN;
	int64_t off = e->data_case == TENSORFLOW__PROFILER__XEVENT__DATA_OFFSET_PS ? e->offset_ps : 0;
	return clamp_time(rp_sat_add(base, off));
}

int64_t rp_event_end(const XLine *l, const XEvent *e)
{
	return clamp_time(rp_sat_add(rp_event_start(l, e), e->duration_ps > 0 ? e->duration_ps : 0));
}

size_t rp_utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	size_t n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (!n || (n == 2 && s[0] < 0xc2) || (n == 4 && s[0] > 0xf4))
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
	    (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}
