/* SPDX-License-Identifier: Apache-2.0 */
/* Turns the records every thread left in its buffers into the /host:CPU plane of the merged
 * profile: one line per thread, one event per scope with its arguments as typed stats, and the
 * counts of what could not be recorded as warnings. */
#include "merge.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demangle.h"
#include "tracer.h"

/* Per-key bookkeeping so that, within one event, a later value for a key replaces the earlier
 * one (set_metadata overrides begin args) in O(1). */
struct key_slots {
	uint64_t *stamp; /* event stamp that last used the key */
	size_t *pos;     /* index of that stat in the line's stat array */
	size_t cap;
};

static int key_slots_reserve(struct key_slots *k, size_t n)
{
	if (n <= k->cap)
		return 0;
	size_t ncap = k->cap ? k->cap : 256;
	while (ncap < n)
		ncap *= 2;
	uint64_t *s = realloc(k->stamp, ncap * sizeof *s);
	if (!s)
		return -ENOMEM;
	k->stamp = s;
	size_t *p = realloc(k->pos, ncap * sizeof *p);
	if (!p)
		return -ENOMEM;
	k->pos = p;
	memset(k->stamp + k->cap, 0, (ncap - k->cap) * sizeof *s);
	k->cap = ncap;
	return 0;
}

/* An enclosing event while a thread's events are walked in begin order. */
struct frame {
	int64_t end;
	uint32_t name;
	bool api, has_step;
	int64_t step;
};

struct merge_ctx {
	struct tfprof__profile *p;
	struct tfprof__plane *plane;
	struct key_slots keys;
	uint64_t stamp;
	uint32_t k_step_num, k_r, k_open, k_closed, k_truncated, k_corr, k_nested, k_mangled;
	uint64_t ignored_args;
	struct tfprof__launch_map *launches;
	uint32_t *demangled; /* string id -> demangled string id + 1 (0 = not looked up) */
	size_t demangled_cap;
	struct frame *frames;
	size_t nframes, cap_frames;
};

/* The name a CUDA API event shows: a launch's kernel demangled (the mangled form stays on the
 * event metadata as mangled_name), anything else as recorded. */
static uint32_t api_event_name(struct merge_ctx *m, uint32_t raw)
{
	if (raw >= m->demangled_cap) {
		size_t ncap = m->demangled_cap ? m->demangled_cap : 256;
		while (ncap <= raw)
			ncap *= 2;
		uint32_t *d = realloc(m->demangled, ncap * sizeof *d);
		if (!d)
			return UINT32_MAX;
		memset(d + m->demangled_cap, 0, (ncap - m->demangled_cap) * sizeof *d);
		m->demangled = d;
		m->demangled_cap = ncap;
	}
	if (m->demangled[raw])
		return m->demangled[raw] - 1;
	uint32_t out = raw;
	char *d = tfprof__demangle(tfprof__strtab_get(&m->p->strs, raw));
	if (d) {
		out = tfprof__strtab_intern(&m->p->strs, d);
		free(d);
		struct tfprof__stat *st;
		if (out == UINT32_MAX ||
		    !(st = tfprof__plane_add_meta_stat(m->plane, out, m->k_mangled, TFPROF_STAT_STR)))
			return UINT32_MAX;
		st->v.str = raw;
	}
	m->demangled[raw] = out + 1;
	return out;
}

/* Notes which scope and step a CUDA API event ran in, by its correlation id. */
static int note_launch_id(struct merge_ctx *m, const struct tfprof__line *l, uint32_t key)
{
	if (m->keys.stamp[key] != m->stamp)
		return 0;
	const struct tfprof__stat *c = &l->stats[m->keys.pos[key]];
	if (c->type != TFPROF_STAT_U64 || c->v.u64 == 0)
		return 0;
	struct tfprof__launch *ln = tfprof__launch_map_put(m->launches, c->v.u64);
	if (!ln)
		return -ENOMEM;
	ln->count++;
	for (size_t i = m->nframes; i-- > 0;) {
		const struct frame *f = &m->frames[i];
		if (!f->api && !ln->has_scope) {
			ln->has_scope = true;
			ln->scope_name = f->name;
		}
		if (f->has_step && !ln->has_step) {
			ln->has_step = true;
			ln->step_num = f->step;
		}
	}
	return 0;
}

/* Notes a launch by its correlation id and, when the collector saw a nested driver call with
 * its own id (nested_correlation_id), by that one too: the device work may carry either. */
static int note_launch(struct merge_ctx *m, const struct tfprof__line *l)
{
	if (!m->launches || key_slots_reserve(&m->keys, (size_t)(m->k_nested > m->k_corr ? m->k_nested : m->k_corr) + 1))
		return m->launches ? -1 : 0;
	return note_launch_id(m, l, m->k_corr) || note_launch_id(m, l, m->k_nested) ? -1 : 0;
}

static int push_frame(struct merge_ctx *m, struct frame f)
{
	if (tfprof__array_grow((void **)&m->frames, m->nframes, &m->cap_frames, sizeof *m->frames))
		return -ENOMEM;
	m->frames[m->nframes++] = f;
	return 0;
}

/* Adds (or, for a key already on this event, replaces) one stat. */
static int put_stat(struct merge_ctx *m, struct tfprof__line *l, uint32_t key, uint32_t type,
		    struct tfprof__stat val)
{
	if (key_slots_reserve(&m->keys, (size_t)key + 1))
		return -ENOMEM;
	struct tfprof__stat *s;
	if (m->keys.stamp[key] == m->stamp) {
		s = &l->stats[m->keys.pos[key]];
		s->type = type;
	} else {
		s = tfprof__line_add_stat(l, key, type);
		if (!s)
			return -ENOMEM;
		m->keys.stamp[key] = m->stamp;
		m->keys.pos[key] = l->nstats - 1;
	}
	s->v = val.v;
	return 0;
}

static int put_i64(struct merge_ctx *m, struct tfprof__line *l, uint32_t key, int64_t v)
{
	struct tfprof__stat s = { .v.i64 = v };
	return put_stat(m, l, key, TFPROF_STAT_I64, s);
}

/* One argument as a typed stat of the current event; keys that are NULL or empty and unknown
 * types are counted, not written. */
static int put_arg(struct merge_ctx *m, struct tfprof__line *l, const char *k, uint32_t t, const uint64_t *raw)
{
	if (!k || !k[0]) {
		m->ignored_args++;
		return 0;
	}
	struct tfprof_arg a;
	memcpy(&a.v, raw, sizeof a.v);
	struct tfprof__stat s = { 0 };
	uint32_t type;
	switch (t & ~TFPROF_ARG_STATIC_KEY) {
	case TFPROF_ARG_I64:
		type = TFPROF_STAT_I64;
		s.v.i64 = a.v.i64;
		break;
	case TFPROF_ARG_U64:
		type = TFPROF_STAT_U64;
		s.v.u64 = a.v.u64;
		break;
	case TFPROF_ARG_F64:
		type = TFPROF_STAT_F64;
		s.v.f64 = a.v.f64;
		break;
	case TFPROF_ARG_BOOL:
		type = TFPROF_STAT_I64;
		s.v.i64 = a.v.b ? 1 : 0;
		break;
	case TFPROF_ARG_STR:
		type = TFPROF_STAT_STR;
		s.v.str = tfprof__strtab_intern(&m->p->strs, a.v.str ? a.v.str : "(null)");
		if (s.v.str == UINT32_MAX)
			return -ENOMEM;
		break;
	default:
		m->ignored_args++;
		return 0;
	}
	uint32_t key = tfprof__strtab_intern(&m->p->strs, k);
	if (key == UINT32_MAX || put_stat(m, l, key, type, s))
		return -ENOMEM;
	return 0;
}

static int put_args(struct merge_ctx *m, struct tfprof__line *l, const struct tfprof_arg *a, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t raw;
		memcpy(&raw, &a[i].v, sizeof raw);
		if (put_arg(m, l, a[i].key, a[i].type, &raw))
			return -ENOMEM;
	}
	return 0;
}

/* A scope's own args: whole structs, or values whose keys and types are its signature's. */
static int put_scope_args(struct merge_ctx *m, struct tfprof__line *l, struct tfprof__rec_scope *r)
{
	if (!(r->h.flags & TFPROF_REC_NAME_SIG))
		return put_args(m, l, tfprof__rec_args(&r->h), r->h.nargs);
	const struct tfprof__sig *sig = r->name;
	const uint64_t *v = tfprof__rec_values(r);
	for (uint32_t i = 0; i < r->h.nargs; i++)
		if (put_arg(m, l, sig->args[i].key, sig->args[i].type, &v[i]))
			return -ENOMEM;
	return 0;
}

/* Records of one thread, indexed for the merge. */
struct thread_recs {
	struct tfprof__rec_scope **scopes; /* by serial - 1 */
	size_t nscopes;
	struct tfprof__rec_meta **metas; /* in record order */
	size_t nmetas;
	size_t *meta_next;  /* next meta for the same scope, or SIZE_MAX */
	size_t *meta_first; /* per scope: first meta, or SIZE_MAX */
	size_t *meta_last;
};

static void thread_recs_free(struct thread_recs *t)
{
	free(t->scopes);
	free(t->metas);
	free(t->meta_next);
	free(t->meta_first);
	free(t->meta_last);
}

static int index_records(const struct tfprof__thread_harvest *h, struct thread_recs *t)
{
	memset(t, 0, sizeof *t);
	size_t nmeta = 0, nscope = 0;
	for (const struct tfprof__chunk *c = h->chunks; c; c = c->next)
		for (size_t off = 0; off < c->used;) {
			const struct tfprof__rec *r = (const void *)(c->data + off);
			if (r->kind == TFPROF_REC_SCOPE)
				nscope++;
			else
				nmeta++;
			off += r->size;
		}
	t->scopes = calloc(nscope + 1, sizeof *t->scopes);
	t->metas = calloc(nmeta + 1, sizeof *t->metas);
	t->meta_next = calloc(nmeta + 1, sizeof *t->meta_next);
	t->meta_first = malloc((nscope + 1) * sizeof *t->meta_first);
	t->meta_last = malloc((nscope + 1) * sizeof *t->meta_last);
	if (!t->scopes || !t->metas || !t->meta_next || !t->meta_first || !t->meta_last)
		return -ENOMEM;
	memset(t->meta_first, 0xff, (nscope + 1) * sizeof *t->meta_first);
	for (const struct tfprof__chunk *c = h->chunks; c; c = c->next)
		for (size_t off = 0; off < c->used;) {
			struct tfprof__rec *r = (void *)(c->data + off);
			off += r->size;
			if (r->kind == TFPROF_REC_SCOPE) {
				t->scopes[t->nscopes++] = (struct tfprof__rec_scope *)r;
				continue;
			}
			/* Serials are dense from first_serial, so a meta finds its scope by index. */
			struct tfprof__rec_meta *mr = (struct tfprof__rec_meta *)r;
			size_t si = (size_t)(mr->serial - h->first_serial);
			if (si >= nscope)
				continue;
			size_t mi = t->nmetas++;
			t->metas[mi] = mr;
			t->meta_next[mi] = SIZE_MAX;
			if (t->meta_first[si] == SIZE_MAX)
				t->meta_first[si] = mi;
			else
				t->meta_next[t->meta_last[si]] = mi;
			t->meta_last[si] = mi;
		}
	return 0;
}

static void add_counts(struct tfprof__host_counts *counts, const struct tfprof__thread_harvest *h)
{
#define ADD_COUNT(f) counts->f += h->f;
	TFPROF__THREAD_COUNTERS(ADD_COUNT)
#undef ADD_COUNT
	counts->recorded += h->recorded;
}

/* A line's id, and whether another thread of the session had the same tid (line_ids). */
struct line_id {
	int64_t id;
	bool shared_tid;
};

static int merge_thread(struct merge_ctx *m, struct tfprof__plane *pl, const struct tfprof__thread_harvest *h,
			struct line_id line_id, const struct tfprof__timebase *tb, uint64_t stop_ticks,
			struct tfprof__host_counts *counts)
{
	if (h->no_line) {
		add_counts(counts, h);
		return 0;
	}
	char shown[sizeof h->name + 32];
	if (!h->name[0])
		snprintf(shown, sizeof shown, "Thread %" PRId64, h->tid);
	else if (line_id.shared_tid)
		snprintf(shown, sizeof shown, "%s (tid %" PRId64 ")", h->name, h->tid);
	else
		snprintf(shown, sizeof shown, "%s", h->name);
	struct tfprof__line *l = tfprof__plane_add_line(m->p, pl, line_id.id, shown);
	if (!l)
		return -ENOMEM;
	struct thread_recs t;
	int rc = -1;
	if (index_records(h, &t))
		goto out;
	int64_t stop_ns = tfprof__ticks_to_rel_ns(tb, stop_ticks);
	m->nframes = 0;
	for (size_t i = 0; i < t.nscopes; i++) {
		struct tfprof__rec_scope *r = t.scopes[i];
		bool api = r->h.flags & TFPROF_REC_API;
		uint32_t nm = tfprof__strtab_intern(&m->p->strs, tfprof__rec_name(r));
		if (nm != UINT32_MAX && api)
			nm = api_event_name(m, nm);
		if (nm == UINT32_MAX)
			goto out;
		int64_t start = tfprof__ticks_to_rel_ns(tb, r->t0);
		bool open = r->t1 == 0;
		int64_t end = open ? stop_ns : tfprof__ticks_to_rel_ns(tb, r->t1);
		if (start > stop_ns)
			start = stop_ns;
		if (end > stop_ns)
			end = stop_ns;
		if (end < start)
			end = start;
		if (!tfprof__line_add_event(l, start, end - start, nm))
			goto out;
		m->stamp++;
		if (put_scope_args(m, l, r))
			goto out;
		for (size_t mi = t.meta_first[i]; mi != SIZE_MAX; mi = t.meta_next[mi])
			if (put_args(m, l, tfprof__rec_args(&t.metas[mi]->h), t.metas[mi]->h.nargs))
				goto out;
		/* A step marker needs _r for xprof's step grouping; the caller's own _r wins. */
		if (key_slots_reserve(&m->keys, (size_t)(m->k_r > m->k_step_num ? m->k_r : m->k_step_num) + 1))
			goto out;
		if (m->keys.stamp[m->k_step_num] == m->stamp && m->keys.stamp[m->k_r] != m->stamp &&
		    put_i64(m, l, m->k_r, 1))
			goto out;
		if (open) {
			counts->open_at_stop++;
			if (put_i64(m, l, m->k_open, 1))
				goto out;
		}
		if ((r->h.flags & TFPROF_REC_CLOSED_BY_PARENT) && put_i64(m, l, m->k_closed, 1))
			goto out;
		if ((r->h.flags & TFPROF_REC_ARGS_TRUNCATED) && put_i64(m, l, m->k_truncated, 1))
			goto out;
		/* Events come in begin order, so the frames still open at this start enclose it. */
		while (m->nframes && m->frames[m->nframes - 1].end <= start &&
		       !(m->frames[m->nframes - 1].end == start && end == start))
			m->nframes--;
		if (api && note_launch(m, l))
			goto out;
		struct frame f = { .end = end, .name = nm, .api = api };
		if (m->keys.stamp[m->k_step_num] == m->stamp) {
			const struct tfprof__stat *sn = &l->stats[m->keys.pos[m->k_step_num]];
			/* Only an integer step number names a step. */
			f.has_step = sn->type == TFPROF_STAT_I64 || sn->type == TFPROF_STAT_U64;
			f.step = sn->type == TFPROF_STAT_U64 ? (int64_t)sn->v.u64 : sn->v.i64;
		}
		if (push_frame(m, f))
			goto out;
	}
	add_counts(counts, h);
	rc = 0;
out:
	thread_recs_free(&t);
	return rc;
}

static int cmp_tid_index(const void *a, const void *b, void *ctx)
{
	const struct tfprof__thread_harvest *h = ctx;
	size_t i = *(const size_t *)a, k = *(const size_t *)b;
	if (h[i].tid != h[k].tid)
		return h[i].tid < h[k].tid ? -1 : 1;
	return i < k ? -1 : i > k;
}

/* Each thread's line id: its tid, which is what a user matches with top or gdb. Where the kernel
 * gave several threads of the session the same tid (ids wrap at pid_max), the first of them in
 * the harvest (live threads come before exited ones) keeps it and the others get 2^22, 2^22 + 1,
 * ...: above any tid (pid_max is at most 2^22) and below 2^31, since xprof keeps only 32 bits of
 * a line id to tell threads apart. Lines that share a tid show it in their names. */
static int line_ids(const struct tfprof__thread_harvest *h, size_t n, struct line_id **out)
{
	struct line_id *ids = malloc((n ? n : 1) * sizeof *ids);
	size_t *order = malloc((n ? n : 1) * sizeof *order);
	if (!ids || !order) {
		free(ids);
		free(order);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof *order, cmp_tid_index, (void *)h);
	int64_t next_free = (int64_t)1 << 22;
	for (size_t j = 0; j < n; j++) {
		size_t i = order[j];
		bool same_as_before = j && h[order[j - 1]].tid == h[i].tid;
		bool same_as_next = j + 1 < n && h[order[j + 1]].tid == h[i].tid;
		ids[i].id = same_as_before ? next_free++ : h[i].tid;
		ids[i].shared_tid = same_as_before || same_as_next;
	}
	free(order);
	*out = ids;
	return 0;
}

int tfprof__merge_host(struct tfprof__profile *p, const struct tfprof__timebase *tb, uint64_t stop_ticks,
		       const struct tfprof__thread_harvest *h, size_t n, struct tfprof__host_counts *counts,
		       struct tfprof__launch_map *launches)
{
	memset(counts, 0, sizeof *counts);
	struct merge_ctx m = { .p = p, .launches = launches };
	m.k_corr = tfprof__strtab_intern(&p->strs, "correlation_id");
	m.k_nested = tfprof__strtab_intern(&p->strs, "nested_correlation_id");
	m.k_mangled = tfprof__strtab_intern(&p->strs, "mangled_name");
	m.k_step_num = tfprof__strtab_intern(&p->strs, "step_num");
	m.k_r = tfprof__strtab_intern(&p->strs, "_r");
	m.k_open = tfprof__strtab_intern(&p->strs, "tfprof_open_at_stop");
	m.k_closed = tfprof__strtab_intern(&p->strs, "tfprof_closed_by_parent");
	m.k_truncated = tfprof__strtab_intern(&p->strs, "tfprof_args_truncated");
	int rc = -1;
	struct line_id *ids = NULL;
	struct tfprof__plane *pl = tfprof__profile_add_plane(p, (int64_t)p->nplanes, "/host:CPU");
	if (!pl)
		goto out;
	m.plane = pl;
	if (line_ids(h, n, &ids))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (merge_thread(&m, pl, &h[i], ids[i], tb, stop_ticks, counts))
			goto out;
	counts->ignored_args = m.ignored_args;
	rc = 0;
out:
	free(m.keys.stamp);
	free(m.keys.pos);
	free(m.demangled);
	free(m.frames);
	free(ids);
	return rc;
}

int tfprof__merge_host_warnings(struct tfprof__profile *p, const struct tfprof__host_counts *c,
				size_t max_memory)
{
	int rc = 0;
	if (c->dropped)
		rc |= tfprof__profile_add_warning(
			p,
			"tfprof: %" PRIu64 " of %" PRIu64 " host scopes %s dropped because the event "
			"buffers reached their limit of %zu MiB; raise it with TFPROF_MAX_MEMORY_MB or "
			"tfprof_options.max_memory",
			c->dropped, c->emitted, TFPROF_PL(c->dropped, "was", "were"), max_memory >> 20);
	if (c->too_deep)
		rc |= tfprof__profile_add_warning(
			p,
			"tfprof: %" PRIu64 " of %" PRIu64 " host scopes %s dropped because they nested "
			"deeper than 256 scopes on their thread",
			c->too_deep, c->emitted, TFPROF_PL(c->too_deep, "was", "were"));
	if (c->meta_dropped)
		rc |= tfprof__profile_add_warning(
			p, "tfprof: %" PRIu64 " %s dropped because the event buffers were full", c->meta_dropped,
			TFPROF_PL(c->meta_dropped, "set_metadata call was", "set_metadata calls were"));
	if (c->bad_ends)
		rc |= tfprof__profile_add_warning(
			p,
			"tfprof: %" PRIu64 " %s ignored: ended on another thread than the "
			"begin, ended twice, or from an earlier session",
			c->bad_ends, TFPROF_PL(c->bad_ends, "scope end was", "scope ends were"));
	if (c->bad_metadata)
		rc |= tfprof__profile_add_warning(
			p, "tfprof: %" PRIu64 " %s ignored: the scope was not open on the calling thread",
			c->bad_metadata, TFPROF_PL(c->bad_metadata, "set_metadata call was", "set_metadata calls were"));
	if (c->misnested)
		rc |= tfprof__profile_add_warning(
			p,
			"tfprof: %" PRIu64 " %s closed early because an enclosing scope ended "
			"first (stat tfprof_closed_by_parent)",
			c->misnested, TFPROF_PL(c->misnested, "scope was", "scopes were"));
	if (c->open_at_stop)
		rc |= tfprof__profile_add_warning(
			p,
			"tfprof: %" PRIu64 " %s still open at stop; %s at the stop time "
			"and %s the stat tfprof_open_at_stop",
			c->open_at_stop, TFPROF_PL(c->open_at_stop, "scope was", "scopes were"),
			TFPROF_PL(c->open_at_stop, "it ends", "they end"),
			TFPROF_PL(c->open_at_stop, "carries", "carry"));
	if (c->truncated_args)
		rc |= tfprof__profile_add_warning(
			p, "tfprof: %" PRIu64 " %s left out: a scope holds at most 65535",
			c->truncated_args, TFPROF_PL(c->truncated_args, "argument was", "arguments were"));
	if (c->ignored_args)
		rc |= tfprof__profile_add_warning(
			p, "tfprof: %" PRIu64 " %s ignored: empty key or unknown type", c->ignored_args,
			TFPROF_PL(c->ignored_args, "argument was", "arguments were"));
	return rc ? -1 : 0;
}

int tfprof__merge_task_env(struct tfprof__profile *p, uint64_t start_walltime_ns, uint64_t stop_walltime_ns)
{
	struct tfprof__plane *pl = tfprof__profile_add_plane(p, (int64_t)p->nplanes, "Task Environment");
	if (!pl)
		return -ENOMEM;
	uint32_t k0 = tfprof__strtab_intern(&p->strs, "profile_start_time");
	uint32_t k1 = tfprof__strtab_intern(&p->strs, "profile_stop_time");
	struct tfprof__stat *s;
	if (k0 == UINT32_MAX || k1 == UINT32_MAX || !(s = tfprof__plane_add_stat(pl, k0, TFPROF_STAT_U64)))
		return -ENOMEM;
	s->v.u64 = start_walltime_ns;
	if (!(s = tfprof__plane_add_stat(pl, k1, TFPROF_STAT_U64)))
		return -ENOMEM;
	s->v.u64 = stop_walltime_ns;
	p->start_walltime_ns = start_walltime_ns;
	p->stop_walltime_ns = stop_walltime_ns;
	return 0;
}
