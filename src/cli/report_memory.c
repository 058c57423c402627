/* SPDX-License-Identifier: Apache-2.0 */
/* GPU memory in tfprof-report: from the MemoryAllocation / MemoryDeallocation events on /host:CPU
 * (what tfprof's src/merge_memory.c and TensorFlow's allocators write, the events xprof's Memory
 * Profile reads), the device memory in use per step, the largest allocations live at the run's
 * peak, the allocations still live when the profile stopped, and the growth per step a leak makes.
 *
 * Definitions, printed with the report so that readers can judge them:
 *   - device memory is what every allocator holds except host memory: an allocator whose name
 *     says host, cpu, pinned or pageable (GPU_0_pinned, gpu_host_bfc) is host memory. Device
 *     memory in use is summed over all of the host's GPUs and memory kinds (device, managed,
 *     stream-ordered pools), so that a step's peak is one number per host;
 *   - an allocator's bytes in use after an event are its bytes_allocated stat (the allocator's
 *     own running total, which also knows memory allocated before the profile began); an event
 *     without a usable one (missing, negative) adds or subtracts its allocation_bytes instead;
 *   - a step's peak is the most device memory in use at any moment of its host window, counting
 *     what was in use when it began; its allocated and freed bytes are those of the device
 *     memory events inside the window (a release's bytes are its allocation's);
 *   - the leak is the least-squares slope of the device memory in use at each step's end over
 *     the steps in time order (bytes per step), which one unusual step moves less than the
 *     difference of the first and last.
 * A release of an address no allocation in the profile holds (the allocation was made before
 * the profile began), or one that carries tfprof_unmatched_release, is counted and changes no
 * total; totals never go below zero and saturate instead of overflowing. */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report.h"

struct mem_ev {
	int64_t t;
	size_t seq;          /* position in the walk, to keep line order among equal times */
	uint32_t allocator;  /* id in rp_memory.strs */
	uint32_t scope;      /* id in rp_memory.strs ("" when the event has no tf_op) */
	uint32_t region;
	bool alloc;
	bool has_in_use;     /* bytes_allocated was usable */
	bool unmatched;      /* carries tfprof_unmatched_release */
	int64_t in_use;
	uint64_t bytes;      /* allocation_bytes, else requested_bytes; 0 when neither is usable */
	uint64_t addr;
};

struct mem_roles {
	int64_t allocator, in_use, alloc_bytes, requested, addr, tf_op, region, unmatched;
	int64_t n_alloc, n_dealloc; /* event metadata ids are looked up per event by name */
};

/* A live allocation, keyed by allocator and address (open addressing; addr 0 with used false =
 * empty, since address 0 is legal in a corrupt or hand-built file). */
struct live_slot {
	bool used;
	uint32_t allocator, scope, region;
	uint64_t addr, bytes;
	int64_t t;
};

struct live_map {
	struct live_slot *s;
	size_t cap, n;
};

static uint64_t live_hash(uint32_t allocator, uint64_t addr)
{
	uint64_t h = addr ^ ((uint64_t)allocator * 0x9e3779b97f4a7c15ull);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

static struct live_slot *live_find(struct live_map *m, uint32_t allocator, uint64_t addr)
{
	if (!m->cap)
		return NULL;
	for (size_t i = live_hash(allocator, addr) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->s[i].used)
			return NULL;
		if (m->s[i].allocator == allocator && m->s[i].addr == addr)
			return &m->s[i];
	}
}

static void live_put(struct live_map *m, const struct live_slot *v)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct live_map g = { rp_xcalloc(m->cap ? m->cap * 2 : 64, sizeof *g.s), m->cap ? m->cap * 2 : 64, 0 };
		for (size_t i = 0; i < m->cap; i++)
			if (m->s[i].used)
				live_put(&g, &m->s[i]);
		free(m->s);
		*m = g;
	}
	size_t i = live_hash(v->allocator, v->addr) & (m->cap - 1);
	while (m->s[i].used && !(m->s[i].allocator == v->allocator && m->s[i].addr == v->addr))
		i = (i + 1) & (m->cap - 1);
	if (!m->s[i].used)
		m->n++;
	m->s[i] = *v;
	m->s[i].used = true;
}

/* Backward-shift deletion keeps every probe chain whole without tombstones. */
static void live_remove(struct live_map *m, struct live_slot *e)
{
	size_t i = (size_t)(e - m->s), mask = m->cap - 1;
	m->s[i].used = false;
	m->n--;
	for (size_t j = (i + 1) & mask; m->s[j].used; j = (j + 1) & mask) {
		size_t home = live_hash(m->s[j].allocator, m->s[j].addr) & mask;
		/* Move j back into the hole when its home is not in (i, j] cyclically. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->s[i] = m->s[j];
			m->s[j].used = false;
			i = j;
		}
	}
}

static bool is_host_allocator(const char *name)
{
	static const char *const words[] = { "host", "cpu", "pinned", "pageable" };
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		for (const char *p = name; *p; p++)
			if (strncasecmp(p, words[i], strlen(words[i])) == 0)
				return true;
	return false;
}

static int cmp_ev(const void *a, const void *b)
{
	const struct mem_ev *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_row(const void *a, const void *b)
{
	const struct rp_mem_row *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->time < y->time ? -1 : x->time > y->time;
}

/* A stat as a byte count: integers below zero are corrupt and not used. */
static bool stat_bytes(const struct rp_plane_index *ix, const XStat *s, uint64_t *out)
{
	int64_t v;
	if (s->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE) {
		*out = s->uint64_value;
		return true;
	}
	if (!rp_stat_int(ix, s, &v) || v < 0)
		return false;
	*out = (uint64_t)v;
	return true;
}

static void decode(struct rp_memory *m, const struct rp_plane_index *ix, const struct mem_roles *r,
		   const XLine *l, const XEvent *e, bool alloc, struct mem_ev *out)
{
	*out = (struct mem_ev){ .t = rp_event_start(l, e), .alloc = alloc, .allocator = rp_intern(&m->strs, "?"),
				.scope = rp_intern(&m->strs, ""), .region = rp_intern(&m->strs, "") };
	bool have_bytes = false;
	for (size_t i = 0; i < e->n_stats; i++) {
		const XStat *s = e->stats[i];
		int64_t id = s->metadata_id, v;
		uint64_t u;
		const char *str;
		if (id == r->allocator) {
			if ((str = rp_stat_str(ix, s)) && *str)
				out->allocator = rp_intern(&m->strs, str);
			else if (rp_stat_int(ix, s, &v)) {
				char buf[32];
				snprintf(buf, sizeof buf, "allocator %" PRId64, v);
				out->allocator = rp_intern(&m->strs, buf);
			}
		} else if (id == r->in_use) {
			if (stat_bytes(ix, s, &u) && u <= (uint64_t)INT64_MAX) {
				out->has_in_use = true;
				out->in_use = (int64_t)u;
			} else {
				m->corrupt++;
			}
		} else if (id == r->alloc_bytes) {
			if (stat_bytes(ix, s, &u)) {
				out->bytes = u;
				have_bytes = true;
			} else {
				m->corrupt++;
			}
		} else if (id == r->requested) {
			if (!have_bytes && stat_bytes(ix, s, &u))
				out->bytes = u;
		} else if (id == r->addr) {
			if (s->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE)
				out->addr = s->uint64_value;
			else if (rp_stat_int(ix, s, &v))
				out->addr = (uint64_t)v; /* merge_memory writes addresses as int64 bits */
		} else if (id == r->tf_op) {
			if ((str = rp_stat_str(ix, s)))
				out->scope = rp_intern(&m->strs, str);
		} else if (id == r->region) {
			if ((str = rp_stat_str(ix, s)))
				out->region = rp_intern(&m->strs, str);
		} else if (id == r->unmatched) {
			out->unmatched = true;
		}
	}
}

/* Collects the memory events of every line of a /host:CPU plane. */
static void walk_plane(struct rp_memory *m, const struct rp_plane *p, struct mem_ev **v, size_t *n, size_t *cap)
{
	struct rp_plane_index ix;
	rp_plane_index_init(&ix, p->hdr);
	struct mem_roles r = { rp_stat_id(&ix, "allocator_name"), rp_stat_id(&ix, "bytes_allocated"),
			       rp_stat_id(&ix, "allocation_bytes"), rp_stat_id(&ix, "requested_bytes"),
			       rp_stat_id(&ix, "addr"), rp_stat_id(&ix, "tf_op"), rp_stat_id(&ix, "region_type"),
			       rp_stat_id(&ix, "tfprof_unmatched_release"), 0, 0 };
	/* Without an allocation stat on the plane no event can be a memory event worth reading;
	 * the walk of the plane's events is skipped (most profiles). */
	bool any = false;
	for (size_t i = 0; i < ix.nev; i++)
		if (ix.ev_names[i] && (!strcmp(ix.ev_names[i], "MemoryAllocation") || !strcmp(ix.ev_names[i], "MemoryDeallocation")))
			any = true;
	if (any) {
		struct rp_events it;
		rp_events_init(&it);
		for (size_t li = 0; li < p->n_lines; li++) {
			rp_events_line(&it, &p->lines[li]);
			for (const XEvent *e; (e = rp_events_next(&it));) {
				const char *name = rp_event_name(&ix, e->metadata_id, NULL);
				if (!name)
					continue;
				bool alloc = !strcmp(name, "MemoryAllocation");
				if (!alloc && strcmp(name, "MemoryDeallocation"))
					continue;
				rp_grow((void **)v, cap, *n + 1, sizeof **v);
				decode(m, &ix, &r, p->lines[li].hdr, e, alloc, &(*v)[*n]);
				(*v)[*n].seq = *n;
				(*n)++;
			}
		}
		rp_events_free(&it);
	}
	rp_plane_index_free(&ix);
}

static struct rp_mem_row row_of(const struct live_slot *s)
{
	return (struct rp_mem_row){ .scope = s->scope, .allocator = s->allocator, .region = s->region,
				    .addr = s->addr, .bytes = s->bytes, .time = s->t };
}

static uint64_t sat_add_u(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* State of the replay: bytes in use per allocator and the device total. */
struct replay {
	int64_t *in_use; /* by allocator id */
	bool *host;      /* by allocator id */
	int64_t device;  /* sum of in_use over device allocators */
	struct live_map live;
};

/* Applies one event; returns the bytes it allocated or freed (0 for an unmatched release). */
static uint64_t apply(struct rp_memory *m, struct replay *r, const struct mem_ev *e, bool count)
{
	uint32_t a = e->allocator;
	int64_t before = r->in_use[a], after = before;
	uint64_t bytes = e->bytes;
	if (e->alloc) {
		live_put(&r->live, &(struct live_slot){ .allocator = a, .scope = e->scope, .region = e->region,
							.addr = e->addr, .bytes = e->bytes, .t = e->t });
		after = rp_sat_add(before, (int64_t)(bytes > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : bytes));
	} else {
		struct live_slot *s = live_find(&r->live, a, e->addr);
		if (!s || e->unmatched) {
			/* Allocated before the profile began: the allocator's own total (when given)
			 * already knows, so only that is taken; nothing is subtracted otherwise. */
			if (count)
				m->unmatched++;
			bytes = 0;
		} else {
			bytes = s->bytes;
			live_remove(&r->live, s);
			after = before - (int64_t)(bytes > (uint64_t)before ? (uint64_t)before : bytes);
		}
	}
	if (e->has_in_use)
		after = e->in_use;
	if (after < 0)
		after = 0;
	r->in_use[a] = after;
	if (!r->host[a]) {
		r->device = rp_sat_add(r->device, after - before);
		if (r->device < 0)
			r->device = 0;
	}
	return r->host[a] ? 0 : bytes;
}

static void replay_init(struct replay *r, const struct rp_memory *m)
{
	size_t na = m->strs.n ? m->strs.n : 1;
	r->in_use = rp_xcalloc(na, sizeof *r->in_use);
	r->host = rp_xcalloc(na, sizeof *r->host);
	for (size_t i = 0; i < m->strs.n; i++)
		r->host[i] = is_host_allocator(m->strs.s[i]);
	r->device = 0;
	r->live = (struct live_map){ 0 };
}

static void replay_free(struct replay *r)
{
	free(r->in_use);
	free(r->host);
	free(r->live.s);
}

/* The live allocations of the map as rows, largest first; device_only drops host memory. */
static void collect_rows(const struct replay *r, bool device_only, struct rp_mem_row **out, size_t *n, uint64_t *total)
{
	*out = rp_xmalloc((r->live.n ? r->live.n : 1) * sizeof **out);
	*n = 0;
	*total = 0;
	for (size_t i = 0; i < r->live.cap; i++) {
		const struct live_slot *s = &r->live.s[i];
		if (!s->used || (device_only && r->host[s->allocator]))
			continue;
		(*out)[(*n)++] = row_of(s);
		*total = sat_add_u(*total, s->bytes);
	}
	qsort(*out, *n, sizeof **out, cmp_row);
}

void rp_memory_analyze(const struct rp_space *s, const struct rp_steps *st, struct rp_memory *m)
{
	memset(m, 0, sizeof *m);
	struct mem_ev *v = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < s->n_planes; i++)
		if (s->planes[i].hdr->name && !strcmp(s->planes[i].hdr->name, "/host:CPU"))
			walk_plane(m, &s->planes[i], &v, &n, &cap);
	m->nevents = n;
	if (!n) {
		free(v);
		return;
	}
	qsort(v, n, sizeof *v, cmp_ev);

	/* First pass: the device total after each event, the run's peak and the per-event bytes. */
	struct replay r;
	replay_init(&r, m);
	int64_t *after = rp_xmalloc(n * sizeof *after);
	uint64_t *bytes = rp_xmalloc(n * sizeof *bytes);
	size_t peak_at = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		bytes[i] = apply(m, &r, &v[i], true);
		after[i] = r.device;
		if (v[i].alloc)
			m->allocations++;
		else
			m->releases++;
		if (peak_at == SIZE_MAX || r.device > m->peak) {
			m->peak = r.device;
			peak_at = i;
		}
	}
	m->peak_time = v[peak_at].t;
	collect_rows(&r, false, &m->at_stop, &m->n_at_stop, &m->stop_bytes);
	replay_free(&r);

	/* Second pass to the peak: what was live then. */
	replay_init(&r, m);
	for (size_t i = 0; i <= peak_at; i++)
		apply(m, &r, &v[i], false);
	collect_rows(&r, true, &m->at_peak, &m->n_at_peak, &m->peak_live_bytes);
	replay_free(&r);

	/* Per step: in use when the window opens, then every event inside it. */
	m->steps = rp_xcalloc(st->n ? st->n : 1, sizeof *m->steps);
	m->nsteps = st->n;
	for (size_t k = 0; k < st->n; k++) {
		struct rp_mem_step *ms = &m->steps[k];
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (v[mid].t < st->v[k].start)
				lo = mid + 1;
			else
				hi = mid;
		}
		int64_t cur = lo ? after[lo - 1] : 0;
		ms->peak = cur;
		for (size_t i = lo; i < n && v[i].t <= st->v[k].end; i++) {
			cur = after[i];
			if (cur > ms->peak)
				ms->peak = cur;
			if (v[i].alloc)
				ms->allocated = sat_add_u(ms->allocated, bytes[i]);
			else
				ms->freed = sat_add_u(ms->freed, bytes[i]);
		}
		ms->end_in_use = cur;
	}
	/* The leak: least-squares slope of in use at step end against the step's position. */
	if (st->n >= 2) {
		double sx = 0, sy = 0, sxx = 0, sxy = 0, nn = (double)st->n;
		for (size_t k = 0; k < st->n; k++) {
			double x = (double)k, y = (double)m->steps[k].end_in_use;
			sx += x;
			sy += y;
			sxx += x * x;
			sxy += x * y;
		}
		m->growth_per_step = (nn * sxy - sx * sy) / (nn * sxx - sx * sx);
		m->has_growth = true;
	}
	free(after);
	free(bytes);
	free(v);
}

void rp_memory_free(struct rp_memory *m)
{
	free(m->steps);
	free(m->at_peak);
	free(m->at_stop);
	rp_strtab_free(&m->strs);
	memset(m, 0, sizeof *m);
}

const char *rp_memory_str(const struct rp_memory *m, uint32_t id)
{
	return id < m->strs.n ? m->strs.s[id] : "";
}
