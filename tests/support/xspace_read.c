/* SPDX-License-Identifier: Apache-2.0 */
/* Reads profiles back for the tests (see xspace_read.h). */
#include "xspace_read.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

XSpace *tt_read_xspace(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open profile %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(n ? (size_t)n : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	XSpace *s = tensorflow__profiler__xspace__unpack(NULL, (size_t)n, buf);
	free(buf);
	if (!s)
		fail_msg("profile %s does not parse as an XSpace", path);
	return s;
}

void tt_xspace_free(XSpace *s)
{
	if (s)
		tensorflow__profiler__xspace__free_unpacked(s, NULL);
}

const XPlane *tt_plane(const XSpace *s, const char *name)
{
	for (size_t i = 0; i < s->n_planes; i++)
		if (strcmp(s->planes[i]->name, name) == 0)
			return s->planes[i];
	return NULL;
}

const XLine *tt_line(const XPlane *p, int64_t id)
{
	for (size_t i = 0; i < p->n_lines; i++)
		if (p->lines[i]->id == id)
			return p->lines[i];
	return NULL;
}

const char *tt_event_name(const XPlane *p, const XEvent *e)
{
	for (size_t i = 0; i < p->n_event_metadata; i++)
		if (p->event_metadata[i]->key == e->metadata_id)
			return p->event_metadata[i]->value->name;
	fail_msg("event metadata id %lld is not defined", (long long)e->metadata_id);
	return NULL;
}

const char *tt_stat_meta_name(const XPlane *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_stat_metadata; i++)
		if ((uint64_t)p->stat_metadata[i]->key == id)
			return p->stat_metadata[i]->value->name;
	fail_msg("stat metadata id %llu is not defined", (unsigned long long)id);
	return NULL;
}

static const XStat *find_stat(const XPlane *p, XStat *const *stats, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tt_stat_meta_name(p, (uint64_t)stats[i]->metadata_id), key) == 0)
			return stats[i];
	return NULL;
}

const XStat *tt_event_stat(const XPlane *p, const XEvent *e, const char *key)
{
	return find_stat(p, e->stats, e->n_stats, key);
}

const XStat *tt_event_metadata_stat(const XPlane *p, const XEvent *e, const char *key)
{
	for (size_t i = 0; i < p->n_event_metadata; i++)
		if (p->event_metadata[i]->key == e->metadata_id)
			return find_stat(p, p->event_metadata[i]->value->stats, p->event_metadata[i]->value->n_stats,
					 key);
	return NULL;
}

const XStat *tt_plane_stat(const XPlane *p, const char *key)
{
	return find_stat(p, p->stats, p->n_stats, key);
}

int64_t tt_event_start_ps(const XLine *l, const XEvent *e)
{
	assert_int_equal(e->data_case, TENSORFLOW__PROFILER__XEVENT__DATA_OFFSET_PS);
	return l->timestamp_ns * 1000 + e->offset_ps;
}

int64_t tt_event_end_ps(const XLine *l, const XEvent *e)
{
	return tt_event_start_ps(l, e) + e->duration_ps;
}

size_t tt_count_events(const XPlane *p, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n_lines; i++)
		for (size_t j = 0; j < p->lines[i]->n_events; j++)
			if (strcmp(tt_event_name(p, p->lines[i]->events[j]), name) == 0)
				n++;
	return n;
}

void tt_check_well_formed(const XSpace *s)
{
	for (size_t pi = 0; pi < s->n_planes; pi++) {
		const XPlane *p = s->planes[pi];
		for (size_t i = 0; i < p->n_event_metadata; i++) {
			assert_int_equal(p->event_metadata[i]->key, p->event_metadata[i]->value->id);
			assert_true(p->event_metadata[i]->key >= 1);
			for (size_t j = 0; j < i; j++) {
				assert_int_not_equal(p->event_metadata[i]->key, p->event_metadata[j]->key);
				assert_string_not_equal(p->event_metadata[i]->value->name,
							p->event_metadata[j]->value->name);
			}
		}
		for (size_t i = 0; i < p->n_stat_metadata; i++) {
			assert_int_equal(p->stat_metadata[i]->key, p->stat_metadata[i]->value->id);
			for (size_t j = 0; j < i; j++) {
				assert_int_not_equal(p->stat_metadata[i]->key, p->stat_metadata[j]->key);
				assert_string_not_equal(p->stat_metadata[i]->value->name,
							p->stat_metadata[j]->value->name);
			}
		}
		for (size_t li = 0; li < p->n_lines; li++) {
			const XLine *l = p->lines[li];
			/* A stack of open end times checks that events nest. */
			int64_t stack[512];
			size_t depth = 0;
			int64_t prev_start = INT64_MIN;
			for (size_t ei = 0; ei < l->n_events; ei++) {
				const XEvent *e = l->events[ei];
				(void)tt_event_name(p, e);
				for (size_t k = 0; k < e->n_stats; k++) {
					(void)tt_stat_meta_name(p, (uint64_t)e->stats[k]->metadata_id);
					if (e->stats[k]->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE)
						(void)tt_stat_meta_name(p, e->stats[k]->ref_value);
					assert_int_not_equal(e->stats[k]->value_case,
							     TENSORFLOW__PROFILER__XSTAT__VALUE__NOT_SET);
				}
				int64_t st = tt_event_start_ps(l, e), en = tt_event_end_ps(l, e);
				assert_true(e->duration_ps >= 0);
				assert_true(st >= prev_start);
				prev_start = st;
				while (depth && stack[depth - 1] <= st)
					depth--;
				if (depth)
					assert_true(en <= stack[depth - 1]);
				assert_true(depth < 512);
				stack[depth++] = en;
			}
		}
	}
}
