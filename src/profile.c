/* SPDX-License-Identifier: Apache-2.0 */
/* Growable arrays behind the merged profile model (see profile.h). */
#include "profile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void tfprof__advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
	/* Only the whole 2 MiB pages inside the block; smaller blocks are not worth a call. */
	const uintptr_t huge = (uintptr_t)2 << 20;
	if (bytes < 2 * huge)
		return;
	uintptr_t from = ((uintptr_t)p + huge - 1) & ~(huge - 1), to = ((uintptr_t)p + bytes) & ~(huge - 1);
	if (to > from)
		(void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
	(void)p;
	(void)bytes;
#endif
}

int tfprof__array_grow(void **arr, size_t n, size_t *cap, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *a = realloc(*arr, ncap * sz);
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = ncap;
	return 0;
}

int tfprof__profile_init(struct tfprof__profile *p)
{
	memset(p, 0, sizeof *p);
	return tfprof__strtab_init(&p->strs);
}

void tfprof__msgs_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void tfprof__profile_free(struct tfprof__profile *p)
{
	for (size_t i = 0; i < p->nplanes; i++) {
		struct tfprof__plane *pl = &p->planes[i];
		for (size_t j = 0; j < pl->nlines; j++) {
			free(pl->lines[j].events);
			free(pl->lines[j].stats);
		}
		free(pl->lines);
		free(pl->stats);
		free(pl->meta_stats);
	}
	free(p->planes);
	tfprof__msgs_free(p->errors, p->nerrors);
	tfprof__msgs_free(p->warnings, p->nwarnings);
	free(p->hostname);
	tfprof__strtab_free(&p->strs);
	memset(p, 0, sizeof *p);
}

struct tfprof__plane *tfprof__profile_add_plane(struct tfprof__profile *p, int64_t id, const char *name)
{
	uint32_t n = tfprof__strtab_intern(&p->strs, name);
	if (n == UINT32_MAX || tfprof__array_grow((void **)&p->planes, p->nplanes, &p->cap_planes, sizeof *p->planes))
		return NULL;
	struct tfprof__plane *pl = &p->planes[p->nplanes++];
	memset(pl, 0, sizeof *pl);
	pl->id = id;
	pl->name = n;
	return pl;
}

struct tfprof__line *tfprof__plane_add_line(struct tfprof__profile *p, struct tfprof__plane *pl,
					    int64_t id, const char *name)
{
	uint32_t n = tfprof__strtab_intern(&p->strs, name);
	if (n == UINT32_MAX || tfprof__array_grow((void **)&pl->lines, pl->nlines, &pl->cap_lines, sizeof *pl->lines))
		return NULL;
	struct tfprof__line *l = &pl->lines[pl->nlines++];
	memset(l, 0, sizeof *l);
	l->id = id;
	l->name = n;
	return l;
}

struct tfprof__event *tfprof__line_add_event(struct tfprof__line *l, int64_t start_ns, int64_t dur_ns,
					     uint32_t name)
{
	if (tfprof__array_grow((void **)&l->events, l->nevents, &l->cap_events, sizeof *l->events))
		return NULL;
	struct tfprof__event *e = &l->events[l->nevents++];
	e->start_ns = start_ns;
	e->dur_ns = dur_ns;
	e->name = name;
	e->nstats = 0;
	e->stats = l->nstats;
	return e;
}

/* Grows *arr (count n, capacity *cap) to hold at least n + more elements of size sz. */
static int reserve(void **arr, size_t n, size_t *cap, size_t more, size_t sz)
{
	if (n + more <= *cap)
		return 0;
	void *a = realloc(*arr, (n + more) * sz);
	if (!a)
		return -ENOMEM;
	tfprof__advise_huge(a, (n + more) * sz);
	*arr = a;
	*cap = n + more;
	return 0;
}

int tfprof__line_reserve(struct tfprof__line *l, size_t nevents, size_t nstats)
{
	if (reserve((void **)&l->events, l->nevents, &l->cap_events, nevents, sizeof *l->events))
		return -ENOMEM;
	return reserve((void **)&l->stats, l->nstats, &l->cap_stats, nstats, sizeof *l->stats);
}

struct tfprof__stat *tfprof__line_add_stat_grow(struct tfprof__line *l, uint32_t key, uint32_t type)
{
	if (l->nevents == 0 || tfprof__array_grow((void **)&l->stats, l->nstats, &l->cap_stats, sizeof *l->stats))
		return NULL;
	return tfprof__line_add_stat(l, key, type);
}

struct tfprof__stat *tfprof__plane_add_stat(struct tfprof__plane *pl, uint32_t key, uint32_t type)
{
	if (tfprof__array_grow((void **)&pl->stats, pl->nstats, &pl->cap_stats, sizeof *pl->stats))
		return NULL;
	struct tfprof__stat *s = &pl->stats[pl->nstats++];
	memset(s, 0, sizeof *s);
	s->key = key;
	s->type = type;
	return s;
}

struct tfprof__stat *tfprof__plane_add_meta_stat(struct tfprof__plane *pl, uint32_t event_name, uint32_t key,
						 uint32_t type)
{
	if (tfprof__array_grow((void **)&pl->meta_stats, pl->nmeta_stats, &pl->cap_meta_stats, sizeof *pl->meta_stats))
		return NULL;
	struct tfprof__meta_stat *m = &pl->meta_stats[pl->nmeta_stats++];
	memset(m, 0, sizeof *m);
	m->event_name = event_name;
	m->stat.key = key;
	m->stat.type = type;
	return &m->stat;
}

static int add_msg(char ***arr, size_t *n, const char *fmt, va_list ap)
{
	char *raw, *msg;
	if (vasprintf(&raw, fmt, ap) < 0)
		return -ENOMEM;
	for (char *c = raw; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	/* Messages may quote paths and names, which need not be UTF-8. */
	size_t len;
	msg = tfprof__utf8_sanitize(raw, strlen(raw), &len);
	free(raw);
	if (!msg)
		return -ENOMEM;
	char **a = realloc(*arr, (*n + 1) * sizeof *a);
	if (!a) {
		free(msg);
		return -ENOMEM;
	}
	a[(*n)++] = msg;
	*arr = a;
	return 0;
}

int tfprof__msg_add(char ***list, size_t *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = add_msg(list, n, fmt, ap);
	va_end(ap);
	return r;
}

int tfprof__profile_add_error(struct tfprof__profile *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = add_msg(&p->errors, &p->nerrors, fmt, ap);
	va_end(ap);
	return r;
}

int tfprof__profile_add_warning(struct tfprof__profile *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = add_msg(&p->warnings, &p->nwarnings, fmt, ap);
	va_end(ap);
	return r;
}

