/* SPDX-License-Identifier: Apache-2.0 */
/* Turns the CUDA allocations and releases GPU tracing collected into what xprof's Memory Profile
 * tool reads and what its trace viewer draws: a "GPU memory" line on /host:CPU with a
 * MemoryAllocation or MemoryDeallocation event per record, carrying the running totals of its
 * allocator (one per device and memory kind, "GPU_0_device"), and beside it a "_counters_" line
 * whose events are each GPU's bytes in use over time (a stat per memory kind).
 *
 * What xprof reads (openxla/xprof xprof/convert/xplane_to_memory_profile.cc, names from
 * openxla/xla xla/tsl/profiler/utils/xplane_schema.cc): only the /host:CPU plane; events whose
 * name is the host event type MemoryAllocation or MemoryDeallocation; of their stats
 * allocator_name (the allocator's id; device_ordinal and index_on_host would replace it, so they
 * are never written), bytes_allocated (heap bytes in use after the event), peak_bytes_in_use,
 * bytes_available, requested_bytes, allocation_bytes, addr, tf_op, region_type, all read with
 * IntValue (so integers are int64). It orders an allocator's events by the event's offset on its
 * line, so every allocator lives on the one line. group_id would give each event a step, but it
 * also switches off xprof's own step grouping, so it is not written: xprof then puts everything
 * in step 0, which makes its peak and table cover the whole profile. The trace viewer hides these
 * events (IsInternalEvent); the counter line is what it draws (xprof/convert/
 * xplane_to_trace_container.cc: a line named _counters_ becomes counter events, one series per
 * event name, the values from the event's stats).
 *
 * Totals: a release subtracts the bytes its allocation added, found by device and address. A
 * release of memory this session never saw allocated (made before the session started) changes
 * no total and is counted; the totals never go below zero. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"

/* The host line of memory events. Host line ids are thread ids (below 2^22 on Linux), and the
 * trace viewer takes a line id as a 32-bit resource id, so the id is large but below 2^31. */
#define MEMORY_LINE_ID ((int64_t)0x7fffff00)
/* The counter line, beside it on /host:CPU. It is there and not on the device planes because
 * xprof 2.24's step analysis counts a device plane's counter events as device activity of a step,
 * which would make every step look longer (measured with tests/interop/check.py). */
#define COUNTER_LINE_ID ((int64_t)0x7fffff01)

/* CUPTI's memory kinds 0..7; "device" is 3. */
#define NKINDS 8
static const char *const kind_names[NKINDS] = { "unknown", "pageable", "pinned", "device",
						"array", "managed", "device_static", "managed_static" };

struct mem_ev {
	int64_t t; /* ns since the session began */
	const struct tfprof__dev_event *ev;
};

struct allocator {
	uint32_t device, kind;
	int64_t in_use, peak;
	uint32_t name; /* string id of "GPU_<device>_<kind>" */
};

/* A live allocation, by device and address. */
struct live {
	uint64_t address; /* 0 = empty slot (CUDA never returns address 0 for a success) */
	uint32_t device, allocator;
	uint64_t bytes;
};

struct live_map {
	struct live *slots;
	size_t cap, n;
};

struct mem_ctx {
	struct tfprof__profile *p;
	const struct tfprof__gpu_result *g;
	const struct tfprof__launch_map *launches;
	struct allocator *alloc;
	size_t nalloc, cap_alloc;
	struct live_map live;
	uint32_t k_allocator, k_in_use, k_peak, k_avail, k_requested, k_alloc_bytes, k_addr, k_tf_op,
		k_region, k_step, k_unmatched, n_alloc, n_dealloc;
	uint64_t unmatched, unmatched_bytes;
};

static int cmp_mem(const void *a, const void *b)
{
	const struct mem_ev *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	/* At one time, the calls' order: correlation ids grow with every CUDA call. */
	if (x->ev->correlation_id != y->ev->correlation_id)
		return x->ev->correlation_id < y->ev->correlation_id ? -1 : 1;
	return 0;
}

/* Maps a collector timestamp onto the session's time base through the clock pairs taken at
 * start and stop, as merge_device.c does for the device events, so both line up. */
static int64_t map_time(const struct tfprof__gpu_result *g, int64_t r0, int64_t r1, uint64_t t)
{
	uint64_t c0 = g->begin.collector_ns, c1 = g->end.collector_ns;
	if (c1 <= c0)
		return r0 + (int64_t)(t - c0);
	return r0 + (int64_t)((__int128)(int64_t)(t - c0) * (r1 - r0) / (__int128)(c1 - c0));
}

static uint64_t live_hash(uint64_t address, uint32_t device)
{
	uint64_t h = (address ^ ((uint64_t)device << 56)) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 31);
}

static struct live *live_find(struct live_map *m, uint64_t address, uint32_t device)
{
	if (!m->cap)
		return NULL;
	size_t j = live_hash(address, device) & (m->cap - 1);
	while (m->slots[j].address) {
		if (m->slots[j].address == address && m->slots[j].device == device)
			return &m->slots[j];
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}

static int live_put(struct live_map *m, const struct live *v)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 1024;
		struct live *ns = calloc(nc, sizeof *ns);
		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->slots[i].address)
				continue;
			size_t j = live_hash(m->slots[i].address, m->slots[i].device) & (nc - 1);
			while (ns[j].address)
				j = (j + 1) & (nc - 1);
			ns[j] = m->slots[i];
		}
		free(m->slots);
		m->slots = ns;
		m->cap = nc;
	}
	size_t j = live_hash(v->address, v->device) & (m->cap - 1);
	while (m->slots[j].address)
		j = (j + 1) & (m->cap - 1);
	m->slots[j] = *v;
	m->n++;
	return 0;
}

/* Removes an entry with backward-shift deletion, so lookups never need tombstones. */
static void live_remove(struct live_map *m, struct live *e)
{
	size_t i = (size_t)(e - m->slots), mask = m->cap - 1;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!m->slots[j].address)
			break;
		size_t home = live_hash(m->slots[j].address, m->slots[j].device) & mask;
		/* Move j into the hole at i unless its home lies cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].address = 0;
	m->n--;
}

/* The allocator of a device and kind, created on first use. Returns its index or -1. */
static long allocator_of(struct mem_ctx *c, uint32_t device, uint32_t kind)
{
	if (kind >= NKINDS)
		kind = 0;
	for (size_t i = 0; i < c->nalloc; i++)
		if (c->alloc[i].device == device && c->alloc[i].kind == kind)
			return (long)i;
	if (c->nalloc == c->cap_alloc) {
		size_t nc = c->cap_alloc ? c->cap_alloc * 2 : 8;
		struct allocator *n = realloc(c->alloc, nc * sizeof *n);
		if (!n)
			return -1;
		c->alloc = n;
		c->cap_alloc = nc;
	}
	/* TensorFlow names its GPU allocators GPU_<n>_bfc; the kind takes the allocator's place. */
	char name[64];
	snprintf(name, sizeof name, "GPU_%" PRIu32 "_%s", device, kind_names[kind]);
	uint32_t id = tfprof__strtab_intern(&c->p->strs, name);
	if (id == UINT32_MAX)
		return -1;
	c->alloc[c->nalloc] = (struct allocator){ .device = device, .kind = kind, .name = id };
	return (long)c->nalloc++;
}

static uint64_t device_memory_size(const struct tfprof__gpu_result *g, uint32_t device)
{
	for (size_t i = 0; i < g->ndevices; i++)
		if (g->devices[i].id == device)
			return g->devices[i].memory_size;
	return 0;
}

/* One MemoryAllocation / MemoryDeallocation event on the host memory line, after the totals
 * were updated. bytes is what the allocation holds; unmatched marks a release with no
 * allocation in this profile. */
static int add_host_event(struct mem_ctx *c, struct tfprof__line *l, const struct mem_ev *m,
			  const struct allocator *a, uint64_t bytes, bool unmatched)
{
	const struct tfprof__dev_event *e = m->ev;
	bool alloc = e->u.memory.op == TFPROF_MEM_ALLOC;
	if (!tfprof__line_add_event(l, m->t, 0, alloc ? c->n_alloc : c->n_dealloc))
		return -ENOMEM;
	char region[48];
	snprintf(region, sizeof region, "%s%s", kind_names[a->kind],
		 e->u.memory.stream_ordered ? "/stream-ordered" : "");
	uint32_t region_id = tfprof__strtab_intern(&c->p->strs, region);
	if (region_id == UINT32_MAX || tfprof__line_put_str(l, c->k_allocator, a->name) ||
	    tfprof__line_put_i64(l, c->k_in_use, a->in_use) || tfprof__line_put_i64(l, c->k_peak, a->peak) ||
	    tfprof__line_put_i64(l, c->k_requested, (int64_t)bytes) || tfprof__line_put_i64(l, c->k_alloc_bytes, (int64_t)bytes) ||
	    tfprof__line_put_i64(l, c->k_addr, (int64_t)e->u.memory.address) || tfprof__line_put_str(l, c->k_region, region_id))
		return -ENOMEM;
	/* The memory left on the device, as far as this profile knows: xprof shows the sum with
	 * the bytes in use as the allocator's capacity. */
	uint64_t size = a->kind == 3 ? device_memory_size(c->g, a->device) : 0;
	if (size && tfprof__line_put_i64(l, c->k_avail, size > (uint64_t)a->in_use ? (int64_t)(size - (uint64_t)a->in_use) : 0))
		return -ENOMEM;
	if (unmatched && tfprof__line_put_i64(l, c->k_unmatched, 1))
		return -ENOMEM;
	/* The scope and step of the CUDA call, from its host event with the same correlation id.
	 * The step goes under a name of tfprof's own: step_num on a host event is what xprof's
	 * step grouping looks at, and these events are no steps. */
	const struct tfprof__launch *ln = tfprof__launch_map_get(c->launches, e->correlation_id);
	if (ln && ln->has_scope && tfprof__line_put_str(l, c->k_tf_op, ln->scope_name))
		return -ENOMEM;
	if (ln && ln->has_step && tfprof__line_put_i64(l, c->k_step, ln->step_num))
		return -ENOMEM;
	return 0;
}

/* The bytes-in-use counter of one device: an event per change, with a stat per memory kind the
 * device has seen, so the trace viewer stacks them in one track. */
static int add_counter_event(struct mem_ctx *c, struct tfprof__line *l, int64_t t, uint32_t device,
			     uint32_t name)
{
	if (!tfprof__line_add_event(l, t, 0, name))
		return -ENOMEM;
	for (size_t i = 0; i < c->nalloc; i++) {
		if (c->alloc[i].device != device)
			continue;
		uint32_t k = tfprof__strtab_intern(&c->p->strs, kind_names[c->alloc[i].kind]);
		if (k == UINT32_MAX || tfprof__line_put_i64(l, k, c->alloc[i].in_use))
			return -ENOMEM;
	}
	return 0;
}

static struct tfprof__plane *find_plane(struct tfprof__profile *p, const char *name)
{
	for (size_t i = 0; i < p->nplanes; i++)
		if (strcmp(tfprof__strtab_get(&p->strs, p->planes[i].name), name) == 0)
			return &p->planes[i];
	return NULL;
}

/* The counter line: one pass over the events in time order, replaying the totals from the change
 * the host pass made to each allocator (delta[i] to allocator owner[i]; owner -1: no change), an
 * event for the device an allocation or pool event concerns. */
static int add_counter_line(struct mem_ctx *c, struct tfprof__plane *host, const struct mem_ev *ev, size_t n,
			    const int64_t *delta, const long *owner)
{
	uint32_t pool_key = tfprof__strtab_intern(&c->p->strs, "pool_size");
	if (pool_key == UINT32_MAX)
		return -ENOMEM;
	struct tfprof__line *l = tfprof__plane_add_line(c->p, host, COUNTER_LINE_ID, "_counters_");
	if (!l)
		return -ENOMEM;
	for (size_t k = 0; k < c->nalloc; k++)
		c->alloc[k].in_use = 0;
	for (size_t j = 0; j < n; j++) {
		const struct tfprof__dev_event *e = ev[j].ev;
		bool pool = e->kind == TFPROF_DEV_MEMPOOL;
		if (!pool && owner[j] < 0)
			continue;
		/* One series per device and quantity; the trace viewer draws each as a track. */
		char sname[64];
		snprintf(sname, sizeof sname, "GPU:%" PRIu32 " memory %s (bytes)", e->device_id,
			 pool ? "pool size" : "in use");
		uint32_t name = tfprof__strtab_intern(&c->p->strs, sname);
		if (name == UINT32_MAX)
			return -ENOMEM;
		if (pool) {
			/* Operation 2 is CUPTI_ACTIVITY_MEMORY_POOL_OPERATION_TYPE_DESTROYED. */
			if (!tfprof__line_add_event(l, ev[j].t, 0, name) ||
			    tfprof__line_put_i64(l, pool_key, e->u.mempool.op == 2 ? 0 : (int64_t)e->u.mempool.size))
				return -ENOMEM;
			continue;
		}
		c->alloc[owner[j]].in_use += delta[j];
		if (add_counter_event(c, l, ev[j].t, e->device_id, name))
			return -ENOMEM;
	}
	return 0;
}

int tfprof__merge_memory(struct tfprof__profile *p, const struct tfprof__timebase *tb,
			 const struct tfprof__gpu_result *g, const struct tfprof__launch_map *launches)
{
	size_t n = 0;
	for (const struct tfprof__dev_chunk *ch = g->events; ch; ch = ch->next)
		for (size_t i = 0; i < ch->n; i++)
			n += ch->ev[i].kind == TFPROF_DEV_MEMORY || ch->ev[i].kind == TFPROF_DEV_MEMPOOL;
	if (!n)
		return 0;
	struct mem_ctx c = { .p = p, .g = g, .launches = launches };
	int rc = -ENOMEM;
	struct mem_ev *ev = malloc(n * sizeof *ev);
	int64_t *delta = calloc(n, sizeof *delta);
	long *owner = malloc(n * sizeof *owner);
	if (!ev || !delta || !owner)
		goto out;
	int64_t r0 = tfprof__ticks_to_rel_ns(tb, g->begin.anchor.ticks);
	int64_t r1 = tfprof__ticks_to_rel_ns(tb, g->end.anchor.ticks);
	size_t k = 0;
	for (const struct tfprof__dev_chunk *ch = g->events; ch; ch = ch->next)
		for (size_t i = 0; i < ch->n; i++) {
			const struct tfprof__dev_event *e = &ch->ev[i];
			if (e->kind == TFPROF_DEV_MEMORY || e->kind == TFPROF_DEV_MEMPOOL)
				ev[k++] = (struct mem_ev){ map_time(g, r0, r1, e->start), e };
		}
	qsort(ev, n, sizeof *ev, cmp_mem);

	struct tfprof__strtab *s = &p->strs;
	c.k_allocator = tfprof__strtab_intern(s, "allocator_name");
	c.k_in_use = tfprof__strtab_intern(s, "bytes_allocated");
	c.k_peak = tfprof__strtab_intern(s, "peak_bytes_in_use");
	c.k_avail = tfprof__strtab_intern(s, "bytes_available");
	c.k_requested = tfprof__strtab_intern(s, "requested_bytes");
	c.k_alloc_bytes = tfprof__strtab_intern(s, "allocation_bytes");
	c.k_addr = tfprof__strtab_intern(s, "addr");
	c.k_tf_op = tfprof__strtab_intern(s, "tf_op");
	c.k_region = tfprof__strtab_intern(s, "region_type");
	c.k_step = tfprof__strtab_intern(s, "tfprof_step_num");
	c.k_unmatched = tfprof__strtab_intern(s, "tfprof_unmatched_release");
	c.n_alloc = tfprof__strtab_intern(s, "MemoryAllocation");
	c.n_dealloc = tfprof__strtab_intern(s, "MemoryDeallocation");
	if (c.n_dealloc == UINT32_MAX || c.k_allocator == UINT32_MAX || c.k_in_use == UINT32_MAX ||
	    c.k_peak == UINT32_MAX || c.k_avail == UINT32_MAX || c.k_requested == UINT32_MAX ||
	    c.k_alloc_bytes == UINT32_MAX || c.k_addr == UINT32_MAX || c.k_tf_op == UINT32_MAX ||
	    c.k_region == UINT32_MAX || c.k_step == UINT32_MAX || c.k_unmatched == UINT32_MAX ||
	    c.n_alloc == UINT32_MAX)
		goto out;

	struct tfprof__plane *host = find_plane(p, "/host:CPU");
	if (!host && !(host = tfprof__profile_add_plane(p, 0, "/host:CPU")))
		goto out;
	struct tfprof__line *l = tfprof__plane_add_line(p, host, MEMORY_LINE_ID, "GPU memory");
	if (!l || tfprof__line_reserve(l, n, n * 11))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct tfprof__dev_event *e = ev[i].ev;
		owner[i] = -1;
		if (e->kind != TFPROF_DEV_MEMORY)
			continue;
		long a = allocator_of(&c, e->device_id, e->u.memory.memory_kind);
		if (a < 0)
			goto out;
		struct allocator *al = &c.alloc[a];
		uint64_t bytes = e->u.memory.bytes;
		bool unmatched = false;
		if (e->u.memory.op == TFPROF_MEM_ALLOC) {
			/* An address allocated again without a release in between (a lost release
			 * record): the old entry's bytes are gone from the device, so they leave the
			 * total before the new ones come in. */
			struct live *old = live_find(&c.live, e->u.memory.address, e->device_id);
			if (old) {
				c.alloc[old->allocator].in_use -= (int64_t)old->bytes;
				if ((long)old->allocator == a)
					delta[i] -= (int64_t)old->bytes;
				live_remove(&c.live, old);
			}
			struct live v = { .address = e->u.memory.address, .device = e->device_id,
					  .allocator = (uint32_t)a, .bytes = bytes };
			if (v.address && live_put(&c.live, &v))
				goto out;
			al->in_use += (int64_t)bytes;
			if (al->in_use > al->peak)
				al->peak = al->in_use;
			delta[i] += (int64_t)bytes;
			owner[i] = a;
		} else {
			struct live *v = live_find(&c.live, e->u.memory.address, e->device_id);
			if (v) {
				bytes = v->bytes;
				owner[i] = v->allocator;
				delta[i] = -(int64_t)bytes;
				al = &c.alloc[v->allocator];
				al->in_use -= (int64_t)bytes;
				live_remove(&c.live, v);
			} else {
				unmatched = true;
				c.unmatched++;
				c.unmatched_bytes += bytes;
			}
		}
		if (add_host_event(&c, l, &ev[i], al, bytes, unmatched))
			goto out;
	}
	if (add_counter_line(&c, host, ev, n, delta, owner))
		goto out;
	if (c.unmatched &&
	    tfprof__profile_add_warning(p,
					"tfprof: %" PRIu64 " GPU memory %s (%" PRIu64 " bytes) had no "
					"allocation in this profile (allocated before the session "
					"started); they change no total",
					c.unmatched, TFPROF_PL(c.unmatched, "release", "releases"),
					c.unmatched_bytes))
		goto out;
	if ((g->dropped_by_cupti || g->dropped_by_bound || g->dropped_no_buffer) &&
	    tfprof__profile_add_warning(p, "tfprof: GPU activity records were dropped, so the GPU "
					   "memory totals may miss allocations or releases"))
		goto out;
	rc = 0;
out:
	free(ev);
	free(delta);
	free(owner);
	free(c.alloc);
	free(c.live.slots);
	return rc;
}
