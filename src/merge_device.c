/* SPDX-License-Identifier: Apache-2.0 */
/* Turns what GPU tracing collected into /device:GPU:<ordinal> planes: device properties as plane
 * stats, a line per stream (plus one for synchronization and one for CUPTI's own overhead), and
 * per event the stats xprof reads (correlation_id, kernel_details, memcpy_details...) together
 * with the scope and step of the host call that launched it. Device timestamps are mapped onto
 * tfprof's time base through the clock pairs taken at start and stop. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demangle.h"
#include "merge.h"
#include "occupancy.h"

#define SYNC_LINE_BASE ((int64_t)1 << 32)
/* A synchronization line's id: SYNC_LINE_BASE + stream + (lane << SYNC_LANE_SHIFT), which never
 * equals OVERHEAD_LINE_ID (lane 0 ends below it, lane 1 starts above). */
#define SYNC_LANE_SHIFT 33
#define OVERHEAD_LINE_ID ((int64_t)2 << 32)

/* The line an event goes to, and its start, for sorting. */
struct placed {
	uint32_t device;
	uint32_t kind_bit; /* kind_bit() of ev, taken while the events are read in order */
	int64_t line;
	int64_t start, end;
	const struct tfprof__dev_event *ev;
};

static int cmp_placed(const void *a, const void *b)
{
	const struct placed *x = a, *y = b;
	if (x->device != y->device)
		return x->device < y->device ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	/* At equal starts the longer event encloses the shorter one, so it goes first. */
	if (x->end != y->end)
		return x->end > y->end ? -1 : 1;
	return 0;
}

/* The details strings of device events repeat (a kernel runs with the same shape again and
 * again), so each distinct set of values is formatted and interned once: a map from the values
 * to the string id. A kernel's key holds everything its string depends on, the device and the
 * shared memory configured for it included (they decide occ_pct). */
struct detail_key {
	uint32_t v[12];
};

struct detail_slot {
	struct detail_key key;
	uint32_t id; /* string id + 1; 0 = empty */
};

struct detail_map {
	struct detail_slot *slots;
	size_t cap, n;
};

/* Sorts placed events by device, line and time. CUPTI hands a stream's work over mostly in
 * time order, so the events are first split by line, stably, in one counting pass, and only
 * the lines that are not already in order are sorted. *pe may be replaced by a new array.
 * Returns 0 or -1 when out of memory. */
struct line_group {
	uint32_t device;
	int64_t line;
	size_t count, at;
};

static int cmp_group(const void *a, const void *b)
{
	const struct line_group *x = a, *y = b;
	if (x->device != y->device)
		return x->device < y->device ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int sort_placed(struct placed **pe_io, size_t n)
{
	struct placed *pe = *pe_io;
	struct line_group *g = NULL;
	size_t ng = 0, cap = 0, last = 0;
	uint32_t *gi = malloc((n ? n : 1) * sizeof *gi);
	struct placed *out = malloc((n ? n : 1) * sizeof *out);
	if (!gi || !out)
		goto fail;
	/* Groups are few (streams), so a linear search behind a one-entry cache finds them. */
	for (size_t i = 0; i < n; i++) {
		if (!(ng && g[last].device == pe[i].device && g[last].line == pe[i].line)) {
			for (last = 0; last < ng; last++)
				if (g[last].device == pe[i].device && g[last].line == pe[i].line)
					break;
			if (last == ng) {
				if (ng == cap) {
					size_t nc = cap ? cap * 2 : 16;
					struct line_group *ngp = realloc(g, nc * sizeof *ngp);
					if (!ngp)
						goto fail;
					g = ngp;
					cap = nc;
				}
				g[ng++] = (struct line_group){ .device = pe[i].device, .line = pe[i].line };
			}
		}
		g[last].count++;
		gi[i] = (uint32_t)last;
	}
	/* Order the groups, then give each its place in out. */
	struct line_group *sorted = malloc((ng ? ng : 1) * sizeof *sorted);
	if (!sorted)
		goto fail;
	/* No group at all when every event is a memory event (merge_memory.c writes those). */
	if (ng)
		memcpy(sorted, g, ng * sizeof *g);
	for (size_t k = 0; k < ng; k++)
		sorted[k].at = k; /* the group's index before sorting */
	qsort(sorted, ng, sizeof *sorted, cmp_group);
	size_t at = 0;
	for (size_t k = 0; k < ng; k++) {
		g[sorted[k].at].at = at;
		at += sorted[k].count;
	}
	for (size_t i = 0; i < n; i++)
		out[g[gi[i]].at++] = pe[i];
	/* Each group is a run of out now; sort the ones out of order. */
	at = 0;
	for (size_t k = 0; k < ng; k++) {
		struct placed *run = out + at;
		size_t cnt = sorted[k].count;
		for (size_t i = 1; i < cnt; i++)
			if (cmp_placed(&run[i - 1], &run[i]) > 0) {
				qsort(run, cnt, sizeof *run, cmp_placed);
				break;
			}
		at += cnt;
	}
	free(sorted);
	free(g);
	free(gi);
	free(pe);
	*pe_io = out;
	return 0;
fail:
	free(g);
	free(gi);
	free(out);
	return -ENOMEM;
}

struct dev_ctx {
	struct tfprof__profile *p;
	const struct tfprof__gpu_result *g;
	const struct tfprof__launch_map *launches;
	int64_t r0, r1;
	uint64_t c0, c1;
	uint32_t *kernel_names; /* names index -> demangled string id + 1 */
	uint32_t k_corr, k_ctx, k_dev, k_kernel, k_memcpy, k_memset, k_scope, k_tf_op, k_step, k_mangled,
		k_ovh, k_sync;
	uint64_t uncorrelated, multi_launch;
	uint64_t align_ns;
	struct detail_map details;
	const struct tfprof__dev_device *dev; /* of the plane being merged; NULL when not reported */
	uint32_t *tf_ops; /* scope string id -> tf_op string id + 1 */
	size_t cap_tf_ops;
	uint32_t fixed_names[16]; /* string id + 1 of the constant event names, by fixed_name() index */
	/* The plane's device and, when all its work ran in one context, that context: written once
	 * per event name as event metadata stats instead of on every event (plane_constants). */
	bool one_context;
	uint32_t context_id;
	uint8_t *meta_done; /* by string id: the name's metadata stats are on this plane already */
	size_t cap_meta_done;
	/* Per device, from the placing pass: its first context and whether it saw another. */
	struct dev_contexts {
		uint32_t device, context;
		bool several;
	} *contexts;
	size_t ncontexts, cap_contexts;
};

static uint64_t detail_hash(const struct detail_key *k)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < 12; i++)
		h = (h ^ k->v[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

/* The slot of key: its entry, or the empty slot where it goes. NULL when out of memory. */
static struct detail_slot *detail_find(struct detail_map *m, const struct detail_key *k)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 256;
		struct detail_slot *ns = calloc(nc, sizeof *ns);
		if (!ns)
			return NULL;
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->slots[i].id)
				continue;
			size_t j = detail_hash(&m->slots[i].key) & (nc - 1);
			while (ns[j].id)
				j = (j + 1) & (nc - 1);
			ns[j] = m->slots[i];
		}
		free(m->slots);
		m->slots = ns;
		m->cap = nc;
	}
	size_t j = detail_hash(k) & (m->cap - 1);
	while (m->slots[j].id && memcmp(&m->slots[j].key, k, sizeof *k))
		j = (j + 1) & (m->cap - 1);
	return &m->slots[j];
}

static int64_t map_time(const struct dev_ctx *d, uint64_t t)
{
	if (d->c1 <= d->c0)
		return d->r0 + (int64_t)(t - d->c0);
	__int128 num = (__int128)((int64_t)(t - d->c0)) * (d->r1 - d->r0);
	return d->r0 + (int64_t)(num / (__int128)(d->c1 - d->c0));
}

static const char *mem_kind(uint32_t k)
{
	static const char *const names[] = { "unknown", "pageable", "pinned",       "device",
					     "array",   "managed",  "device_static", "managed_static" };
	return k < sizeof names / sizeof *names ? names[k] : "unknown";
}

static const char *memcpy_name(uint32_t kind)
{
	switch (kind) {
	case TFPROF_COPY_HTOD:
		return "MemcpyH2D";
	case TFPROF_COPY_DTOH:
		return "MemcpyD2H";
	case TFPROF_COPY_DTOD:
		return "MemcpyD2D";
	case TFPROF_COPY_PTOP:
		return "MemcpyP2P";
	case TFPROF_COPY_HTOH:
		return "MemcpyH2H";
	default:
		return "Memcpy";
	}
}

static const char *sync_name(uint32_t type)
{
	switch (type) {
	case 1:
		return "cudaEventSynchronize";
	case 2:
		return "cudaStreamWaitEvent";
	case 3:
		return "cudaStreamSynchronize";
	case 4:
		return "cudaDeviceSynchronize";
	default:
		return "Synchronize";
	}
}

/* Bits of a stream line's kinds, in the order xprof lists them in the line name. */
enum { K_COMPUTE = 1, K_H2D = 2, K_D2H = 4, K_D2D = 8, K_P2P = 16, K_MEMSET = 32, K_OTHER_COPY = 64 };

static unsigned kind_bit(const struct tfprof__dev_event *e)
{
	switch (e->kind) {
	case TFPROF_DEV_KERNEL:
		return K_COMPUTE;
	case TFPROF_DEV_MEMSET:
		return K_MEMSET;
	case TFPROF_DEV_MEMCPY:
		switch (e->u.memcpy.copy_kind) {
		case TFPROF_COPY_HTOD:
			return K_H2D;
		case TFPROF_COPY_DTOH:
			return K_D2H;
		case TFPROF_COPY_DTOD:
			return K_D2D;
		case TFPROF_COPY_PTOP:
			return K_P2P;
		default:
			return K_OTHER_COPY;
		}
	default:
		return 0;
	}
}

static void line_name(char *buf, size_t cap, int64_t id, unsigned kinds)
{
	static const char *const names[] = { "Compute",   "MemcpyH2D", "MemcpyD2H", "MemcpyD2D",
					     "MemcpyP2P", "Memset",    "Memcpy" };
	if (id == OVERHEAD_LINE_ID) {
		snprintf(buf, cap, "CUPTI overhead");
		return;
	}
	if (id >= SYNC_LINE_BASE) {
		/* Extra lines of overlapping waits (sync_lanes) are numbered from 2. */
		int64_t lane = (id - SYNC_LINE_BASE) >> SYNC_LANE_SHIFT;
		uint32_t stream = (uint32_t)(id - SYNC_LINE_BASE);
		char suffix[32] = "";
		if (lane)
			snprintf(suffix, sizeof suffix, " (%" PRId64 ")", lane + 1);
		if (stream == TFPROF_DEV_NONE)
			snprintf(buf, cap, "Context synchronization%s", suffix);
		else
			snprintf(buf, cap, "Stream #%" PRIu32 " synchronization%s", stream, suffix);
		return;
	}
	size_t n = (size_t)snprintf(buf, cap, "Stream #%" PRId64 "(", id);
	bool first = true;
	for (unsigned b = 0; b < 7 && n < cap; b++)
		if (kinds & (1u << b)) {
			n += (size_t)snprintf(buf + n, cap - n, "%s%s", first ? "" : ",", names[b]);
			first = false;
		}
	if (n < cap)
		snprintf(buf + n, cap - n, ")");
}

static uint32_t kernel_name(struct dev_ctx *d, struct tfprof__plane *pl, uint32_t idx, bool *first_use)
{
	*first_use = false;
	if (idx >= d->g->nnames)
		idx = 0;
	if (d->kernel_names[idx])
		return d->kernel_names[idx] - 1;
	const char *raw = d->g->names[idx] && d->g->names[idx][0] ? d->g->names[idx] : "(unnamed kernel)";
	char *dem = tfprof__demangle(raw);
	uint32_t id = tfprof__strtab_intern(&d->p->strs, dem ? dem : raw);
	free(dem);
	if (id == UINT32_MAX)
		return id;
	if (dem) {
		/* The mangled form stays available on the event metadata. */
		uint32_t m = tfprof__strtab_intern(&d->p->strs, raw);
		struct tfprof__stat *s;
		if (m == UINT32_MAX || !(s = tfprof__plane_add_meta_stat(pl, id, d->k_mangled, TFPROF_STAT_STR)))
			return UINT32_MAX;
		s->v.str = m;
	}
	*first_use = true;
	d->kernel_names[idx] = id + 1;
	return id;
}

/* The string id of a constant event name, interned once per merge. */
static uint32_t fixed_name(struct dev_ctx *d, unsigned slot, const char *name)
{
	if (!d->fixed_names[slot]) {
		uint32_t id = tfprof__strtab_intern(&d->p->strs, name);
		if (id == UINT32_MAX)
			return id;
		d->fixed_names[slot] = id + 1;
	}
	return d->fixed_names[slot] - 1;
}

/* Grows a zero-filled array indexed by string id (capacity *cap elements of sz bytes) until it
 * has element idx; the new elements are zero. Returns 0 or -ENOMEM. */
static int cover_index(void **arr, size_t *cap, size_t idx, size_t sz)
{
	if (idx < *cap)
		return 0;
	size_t nc = *cap ? *cap : 64;
	while (nc <= idx)
		nc *= 2;
	unsigned char *n = realloc(*arr, nc * sz);
	if (!n)
		return -ENOMEM;
	memset(n + *cap * sz, 0, (nc - *cap) * sz);
	*arr = n;
	*cap = nc;
	return 0;
}

/* Puts device_id (and context_id, when the plane has one context) on the metadata of event
 * name nm, once per plane: they are the same for every event of the plane, and on each event they
 * took 12 of a kernel's ~61 bytes in the file. The trace viewer shows metadata stats with the
 * event's own; xprof's analyses read neither from device events (tests/interop checks them). */
static int plane_constants(struct dev_ctx *d, struct tfprof__plane *pl, uint32_t nm, uint32_t dev_id)
{
	if (cover_index((void **)&d->meta_done, &d->cap_meta_done, nm, sizeof *d->meta_done))
		return -ENOMEM;
	if (d->meta_done[nm])
		return 0;
	d->meta_done[nm] = 1;
	struct tfprof__stat *st = tfprof__plane_add_meta_stat(pl, nm, d->k_dev, TFPROF_STAT_U64);
	if (!st)
		return -ENOMEM;
	st->v.u64 = dev_id;
	if (d->one_context) {
		if (!(st = tfprof__plane_add_meta_stat(pl, nm, d->k_ctx, TFPROF_STAT_U64)))
			return -ENOMEM;
		st->v.u64 = d->context_id;
	}
	return 0;
}

/* Notes event e's context for its device (the placing pass). */
static int note_context(struct dev_ctx *d, const struct tfprof__dev_event *e)
{
	for (size_t i = 0; i < d->ncontexts; i++)
		if (d->contexts[i].device == e->device_id) {
			d->contexts[i].several |= d->contexts[i].context != e->context_id;
			return 0;
		}
	if (tfprof__array_grow((void **)&d->contexts, d->ncontexts, &d->cap_contexts, sizeof *d->contexts))
		return -ENOMEM;
	d->contexts[d->ncontexts++] = (struct dev_contexts){ e->device_id, e->context_id, false };
	return 0;
}

/* Adds a details stat (kernel_details, memcpy_details, Memset_details) whose text fmt formats
 * from the values in k, formatting it only the first time those values occur. */
static int put_details(struct dev_ctx *d, struct tfprof__line *l, uint32_t key, const struct detail_key *k,
		       const struct tfprof__dev_event *e)
{
	struct detail_slot *slot = detail_find(&d->details, k);
	if (!slot)
		return -ENOMEM;
	if (!slot->id) {
		char buf[256];
		if (e->kind == TFPROF_DEV_KERNEL) {
			int n = snprintf(buf, sizeof buf,
					 "regs:%u static_shared:%d dynamic_shared:%d grid:%u,%u,%u block:%u,%u,%u",
					 e->u.kernel.registers_per_thread, e->u.kernel.static_shared,
					 e->u.kernel.dynamic_shared, e->u.kernel.grid[0], e->u.kernel.grid[1],
					 e->u.kernel.grid[2], e->u.kernel.block[0], e->u.kernel.block[1],
					 e->u.kernel.block[2]);
			/* Theoretical occupancy as TensorFlow writes it, left out when unknown. */
			struct tfprof__occ_launch ol = {
				.threads_per_block = (uint64_t)e->u.kernel.block[0] * e->u.kernel.block[1] *
						     e->u.kernel.block[2],
				.regs_per_thread = e->u.kernel.registers_per_thread,
				.shared_per_block = (int64_t)e->u.kernel.static_shared + e->u.kernel.dynamic_shared,
				.shared_config = e->shared_config,
			};
			double occ = tfprof__occupancy_pct(d->dev, &ol);
			char pct[32];
			if (occ >= 0 && n > 0 && (size_t)n < sizeof buf)
				snprintf(buf + n, sizeof buf - (size_t)n, " occ_pct:%s",
					 tfprof__occupancy_format(occ, pct, sizeof pct));
		} else if (e->kind == TFPROF_DEV_MEMCPY)
			snprintf(buf, sizeof buf, "kind_src:%s kind_dst:%s size:%" PRIu64 " dest:%u async:%u",
				 mem_kind(e->u.memcpy.src_kind), mem_kind(e->u.memcpy.dst_kind),
				 e->u.memcpy.bytes, k->v[4], e->u.memcpy.async ? 1u : 0u);
		else
			snprintf(buf, sizeof buf, "kind:%s num_bytes:%" PRIu64 " async:%u",
				 mem_kind(e->u.memset.memory_kind), e->u.memset.bytes, e->u.memset.async ? 1u : 0u);
		uint32_t id = tfprof__strtab_intern(&d->p->strs, buf);
		if (id == UINT32_MAX)
			return -ENOMEM;
		slot->key = *k;
		slot->id = id + 1;
		d->details.n++;
	}
	return tfprof__line_put_str(l, key, slot->id - 1);
}

/* The string id of the tf_op of a scope ("<scope>:<scope>"), formatted once per scope. */
static uint32_t tf_op_of(struct dev_ctx *d, uint32_t scope)
{
	if (cover_index((void **)&d->tf_ops, &d->cap_tf_ops, scope, sizeof *d->tf_ops))
		return UINT32_MAX;
	if (!d->tf_ops[scope]) {
		const char *sc = tfprof__strtab_get(&d->p->strs, scope);
		char op[512];
		snprintf(op, sizeof op, "%s:%s", sc, sc);
		uint32_t id = tfprof__strtab_intern(&d->p->strs, op);
		if (id == UINT32_MAX)
			return id;
		d->tf_ops[scope] = id + 1;
	}
	return d->tf_ops[scope] - 1;
}

static int add_event(struct dev_ctx *d, struct tfprof__plane *pl, struct tfprof__line *l,
		     const struct placed *pe)
{
	const struct tfprof__dev_event *e = pe->ev;
	uint32_t name;
	bool first;
	switch (e->kind) {
	case TFPROF_DEV_KERNEL:
		name = kernel_name(d, pl, e->name, &first);
		break;
	case TFPROF_DEV_MEMCPY:
		name = fixed_name(d, e->u.memcpy.copy_kind < 11 ? e->u.memcpy.copy_kind : 0,
				  memcpy_name(e->u.memcpy.copy_kind));
		break;
	case TFPROF_DEV_MEMSET:
		name = fixed_name(d, 11, "Memset");
		break;
	case TFPROF_DEV_SYNC:
		name = tfprof__strtab_intern(&d->p->strs, sync_name(e->u.sync.type));
		break;
	default:
		name = fixed_name(d, 12, "CUPTI overhead");
		break;
	}
	if (name == UINT32_MAX || !tfprof__line_add_event(l, pe->start, pe->end - pe->start, name))
		return -ENOMEM;
	if (e->kind == TFPROF_DEV_OVERHEAD)
		return tfprof__line_put_u64(l, d->k_ovh, e->u.overhead.overhead_kind);
	if (plane_constants(d, pl, name, e->device_id))
		return -ENOMEM;
	if (e->correlation_id && tfprof__line_put_u64(l, d->k_corr, e->correlation_id))
		return -ENOMEM;
	if (!d->one_context && tfprof__line_put_u64(l, d->k_ctx, e->context_id))
		return -ENOMEM;
	struct detail_key k = { { e->kind } };
	switch (e->kind) {
	case TFPROF_DEV_KERNEL:
		k.v[1] = e->u.kernel.registers_per_thread;
		k.v[2] = (uint32_t)e->u.kernel.static_shared;
		k.v[3] = (uint32_t)e->u.kernel.dynamic_shared;
		memcpy(&k.v[4], e->u.kernel.grid, sizeof e->u.kernel.grid);
		memcpy(&k.v[7], e->u.kernel.block, sizeof e->u.kernel.block);
		k.v[10] = e->device_id;
		k.v[11] = e->shared_config;
		if (put_details(d, l, d->k_kernel, &k, e))
			return -ENOMEM;
		break;
	case TFPROF_DEV_MEMCPY:
		k.v[1] = e->u.memcpy.src_kind;
		k.v[2] = e->u.memcpy.dst_kind;
		k.v[3] = e->u.memcpy.async ? 1u : 0u;
		k.v[4] = e->u.memcpy.copy_kind == TFPROF_COPY_PTOP ? e->u.memcpy.dst_device : e->device_id;
		memcpy(&k.v[5], &e->u.memcpy.bytes, sizeof e->u.memcpy.bytes);
		if (put_details(d, l, d->k_memcpy, &k, e))
			return -ENOMEM;
		break;
	case TFPROF_DEV_MEMSET:
		k.v[1] = e->u.memset.memory_kind;
		k.v[2] = e->u.memset.async ? 1u : 0u;
		memcpy(&k.v[3], &e->u.memset.bytes, sizeof e->u.memset.bytes);
		if (put_details(d, l, d->k_memset, &k, e))
			return -ENOMEM;
		break;
	case TFPROF_DEV_SYNC:
		if (tfprof__line_put_u64(l, d->k_sync, e->u.sync.type))
			return -ENOMEM;
		break;
	default:
		break;
	}
	/* The scope and step that launched it, from the host launch with the same correlation id. */
	const struct tfprof__launch *ln = tfprof__launch_map_get(d->launches, e->correlation_id);
	if (!ln) {
		d->uncorrelated++;
		return 0;
	}
	if (ln->count > 1)
		d->multi_launch++;
	if (ln->has_scope) {
		/* xprof attributes device time to framework ops through tf_op, "<op name>:<op type>"
		 * (framework_op_stats, the op column of kernel_stats); the scope is both. The launch
		 * map holds the scope's id in this profile's string table already. */
		uint32_t op = tf_op_of(d, ln->scope_name);
		if (op == UINT32_MAX || tfprof__line_put_str(l, d->k_scope, ln->scope_name) ||
		    tfprof__line_put_str(l, d->k_tf_op, op))
			return -ENOMEM;
	}
	if (ln->has_step && tfprof__line_put_i64(l, d->k_step, ln->step_num))
		return -ENOMEM;
	return 0;
}

static const struct tfprof__dev_device *find_device(const struct tfprof__gpu_result *g, uint32_t id)
{
	for (size_t i = 0; i < g->ndevices; i++)
		if (g->devices[i].id == id)
			return &g->devices[i];
	return NULL;
}

static int add_device_plane_stats(struct tfprof__profile *p, struct tfprof__plane *pl,
				  const struct tfprof__dev_device *dev)
{
	struct {
		const char *key;
		uint64_t v;
	} ints[] = {
		{ "clock_rate", dev->clock_khz },
		{ "core_count", dev->sm_count },
		{ "memory_bandwidth", dev->memory_bandwidth },
		{ "memory_size", dev->memory_size },
		{ "compute_cap_major", (uint64_t)dev->cc_major },
		{ "compute_cap_minor", (uint64_t)dev->cc_minor },
	};
	const char *strs[][2] = { { "device_vendor", "Nvidia" }, { "gpu_device_name", dev->name } };
	for (size_t i = 0; i < 2; i++) {
		uint32_t k = tfprof__strtab_intern(&p->strs, strs[i][0]);
		uint32_t v = tfprof__strtab_intern(&p->strs, strs[i][1]);
		struct tfprof__stat *s;
		if (k == UINT32_MAX || v == UINT32_MAX || !(s = tfprof__plane_add_stat(pl, k, TFPROF_STAT_STR)))
			return -ENOMEM;
		s->v.str = v;
	}
	for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
		uint32_t k = tfprof__strtab_intern(&p->strs, ints[i].key);
		struct tfprof__stat *s;
		if (k == UINT32_MAX || !(s = tfprof__plane_add_stat(pl, k, TFPROF_STAT_I64)))
			return -ENOMEM;
		s->v.i64 = (int64_t)ints[i].v;
	}
	return 0;
}

static int add_messages(struct tfprof__profile *p, const struct tfprof__gpu_result *g)
{
	for (size_t i = 0; i < g->nerrors; i++)
		if (tfprof__profile_add_error(p, "%s", g->errors[i]))
			return -ENOMEM;
	for (size_t i = 0; i < g->nwarnings; i++)
		if (tfprof__profile_add_warning(p, "%s", g->warnings[i]))
			return -ENOMEM;
	return 0;
}

/* Threads that wait for one stream at once make synchronization events that overlap in part
 * (one began first, the other ends later), which a trace viewer cannot draw on one line: each
 * such wait moves to the first extra line of its stream where it overlaps nothing in part (it may
 * nest in a wait there), "Stream #7 synchronization (2)". pe is sorted (sort_placed) and stays
 * so. Returns 0 or -1 when out of memory. */
struct sync_lane {
	int64_t *open; /* ends of the events still open at the current start, innermost last */
	size_t n, cap;
};

static int sync_lanes(struct placed *pe, size_t n)
{
	struct sync_lane *lanes = NULL;
	size_t nlanes = 0, cap = 0;
	bool moved = false;
	int rc = 0;
	for (size_t i = 0; i < n && !rc;) {
		size_t j = i;
		while (j < n && pe[j].device == pe[i].device && pe[j].line == pe[i].line)
			j++;
		bool sync = pe[i].line >= SYNC_LINE_BASE && pe[i].line != OVERHEAD_LINE_ID;
		for (size_t k = 0; k < nlanes; k++)
			lanes[k].n = 0;
		for (size_t k = i; sync && k < j; k++) {
			size_t lane = 0;
			for (;; lane++) {
				if (lane == nlanes) {
					if (nlanes == cap) {
						size_t nc = cap ? 2 * cap : 4;
						struct sync_lane *g = realloc(lanes, nc * sizeof *g);
						if (!g) {
							rc = -1;
							break;
						}
						memset(g + cap, 0, (nc - cap) * sizeof *g);
						lanes = g;
						cap = nc;
					}
					nlanes++;
				}
				struct sync_lane *ln = &lanes[lane];
				/* Events are in start order: what ended by this start is closed for good. */
				while (ln->n && ln->open[ln->n - 1] <= pe[k].start)
					ln->n--;
				if (!ln->n || ln->open[ln->n - 1] >= pe[k].end)
					break;
			}
			if (rc)
				break;
			struct sync_lane *ln = &lanes[lane];
			if (ln->n == ln->cap) {
				size_t nc = ln->cap ? 2 * ln->cap : 8;
				int64_t *g = realloc(ln->open, nc * sizeof *g);
				if (!g) {
					rc = -1;
					break;
				}
				ln->open = g;
				ln->cap = nc;
			}
			ln->open[ln->n++] = pe[k].end;
			if (lane) {
				pe[k].line += (int64_t)lane << SYNC_LANE_SHIFT;
				moved = true;
			}
		}
		i = j;
	}
	for (size_t k = 0; k < nlanes; k++)
		free(lanes[k].open);
	free(lanes);
	/* Rare (two threads waiting at once), so a full sort is cheap enough. */
	if (!rc && moved)
		qsort(pe, n, sizeof *pe, cmp_placed);
	return rc;
}

/* Adds the plane of one device and the lines of its events, placed[0..n) all on that device. */
static int merge_one_device(struct dev_ctx *d, uint32_t dev_id, const struct placed *pe, size_t n)
{
	char name[64];
	snprintf(name, sizeof name, "/device:GPU:%u", dev_id);
	struct tfprof__plane *pl = tfprof__profile_add_plane(d->p, dev_id, name);
	if (!pl)
		return -ENOMEM;
	/* Kernel names (and their mangled_name metadata stat) are per plane, as are the metadata
	 * stats of plane_constants(). */
	memset(d->kernel_names, 0, (d->g->nnames + 1) * sizeof *d->kernel_names);
	if (d->meta_done)
		memset(d->meta_done, 0, d->cap_meta_done);
	d->one_context = false;
	for (size_t i = 0; i < d->ncontexts; i++)
		if (d->contexts[i].device == dev_id) {
			d->one_context = !d->contexts[i].several;
			d->context_id = d->contexts[i].context;
		}
	const struct tfprof__dev_device *dev = find_device(d->g, dev_id);
	d->dev = dev;
	if (dev && add_device_plane_stats(d->p, pl, dev))
		return -ENOMEM;
	/* How far device and host times may be apart: the clock pairing's error bound. */
	uint32_t k = tfprof__strtab_intern(&d->p->strs, "tfprof_clock_error_ns");
	struct tfprof__stat *st;
	if (k == UINT32_MAX || !(st = tfprof__plane_add_stat(pl, k, TFPROF_STAT_I64)))
		return -ENOMEM;
	st->v.i64 = (int64_t)d->align_ns;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		unsigned kinds = 0;
		while (j < n && pe[j].line == pe[i].line)
			kinds |= pe[j++].kind_bit;
		char lname[160];
		line_name(lname, sizeof lname, pe[i].line, kinds);
		struct tfprof__line *l = tfprof__plane_add_line(d->p, pl, pe[i].line, lname);
		/* Room for every event with the stats most carry; pages never written cost nothing. */
		if (!l || tfprof__line_reserve(l, j - i, (j - i) * 6))
			return -ENOMEM;
		for (size_t k = i; k < j; k++) {
			/* A line's events lie scattered over the chunks, among other streams' events:
			 * fetch ahead, or nearly every event is a cache miss. */
			if (k + 24 < j) {
				/* Both cache lines of the event: a kernel's fields reach past the first. */
				__builtin_prefetch(pe[k + 24].ev);
				__builtin_prefetch((const char *)pe[k + 24].ev + sizeof *pe[k + 24].ev - 1);
			}
			if (add_event(d, pl, l, &pe[k]))
				return -ENOMEM;
		}
		i = j;
	}
	return 0;
}

int tfprof__merge_device(struct tfprof__profile *p, const struct tfprof__timebase *tb,
			 const struct tfprof__gpu_result *g, const struct tfprof__launch_map *launches,
			 uint64_t *max_align_ns)
{
	*max_align_ns = 0;
	if (add_messages(p, g))
		return -ENOMEM;
	if (!g->active && g->nevents == 0)
		return 0;
	struct dev_ctx d = {
		.p = p,
		.g = g,
		.launches = launches,
		.c0 = g->begin.collector_ns,
		.c1 = g->end.collector_ns,
		.r0 = tfprof__ticks_to_rel_ns(tb, g->begin.anchor.ticks),
		.r1 = tfprof__ticks_to_rel_ns(tb, g->end.anchor.ticks),
	};
	/* A pair's reading lies within half its bracket of the truth, so the bound is the wider
	 * half-bracket of the two pairs. */
	*max_align_ns = ((g->begin.width_ns > g->end.width_ns ? g->begin.width_ns : g->end.width_ns) + 1) / 2;
	d.align_ns = *max_align_ns;
	struct tfprof__strtab *s = &p->strs;
	d.k_corr = tfprof__strtab_intern(s, "correlation_id");
	d.k_ctx = tfprof__strtab_intern(s, "context_id");
	d.k_dev = tfprof__strtab_intern(s, "device_id");
	d.k_kernel = tfprof__strtab_intern(s, "kernel_details");
	d.k_memcpy = tfprof__strtab_intern(s, "memcpy_details");
	d.k_memset = tfprof__strtab_intern(s, "Memset_details");
	d.k_scope = tfprof__strtab_intern(s, "scope_name");
	d.k_tf_op = tfprof__strtab_intern(s, "tf_op");
	d.k_step = tfprof__strtab_intern(s, "step_num");
	d.k_mangled = tfprof__strtab_intern(s, "mangled_name");
	d.k_ovh = tfprof__strtab_intern(s, "overhead_kind");
	d.k_sync = tfprof__strtab_intern(s, "sync_type");
	int rc = -1;
	struct placed *pe = malloc((g->nevents ? g->nevents : 1) * sizeof *pe);
	if (pe)
		tfprof__advise_huge(pe, g->nevents * sizeof *pe);
	d.kernel_names = calloc(g->nnames + 1, sizeof *d.kernel_names);
	if (!pe || !d.kernel_names)
		goto out;
	size_t n = 0;
	for (const struct tfprof__dev_chunk *c = g->events; c; c = c->next)
		for (size_t i = 0; i < c->n; i++) {
			const struct tfprof__dev_event *e = &c->ev[i];
			/* CUPTI's overhead charged to a thread and syncs of an unknown device belong to
			 * no GPU plane. */
			if (e->device_id == TFPROF_DEV_NONE)
				continue;
			/* Allocations and pools are merge_memory.c's. */
			if (e->kind == TFPROF_DEV_MEMORY || e->kind == TFPROF_DEV_MEMPOOL)
				continue;
			if (e->kind != TFPROF_DEV_OVERHEAD && note_context(&d, e))
				goto out;
			struct placed *x = &pe[n++];
			x->ev = e;
			x->kind_bit = kind_bit(e);
			x->device = e->device_id;
			x->start = map_time(&d, e->start);
			x->end = map_time(&d, e->end);
			if (x->end < x->start)
				x->end = x->start;
			if (e->kind == TFPROF_DEV_SYNC)
				x->line = SYNC_LINE_BASE + e->stream_id;
			else if (e->kind == TFPROF_DEV_OVERHEAD)
				x->line = OVERHEAD_LINE_ID;
			else
				x->line = e->stream_id;
		}
	if (sort_placed(&pe, n) || sync_lanes(pe, n))
		goto out;
	/* Devices known from their properties get a plane even when they ran nothing. */
	size_t i = 0;
	for (size_t k = 0; k < g->ndevices; k++) {
		bool has_events = false;
		for (size_t j = 0; j < n; j++)
			if (pe[j].device == g->devices[k].id) {
				has_events = true;
				break;
			}
		if (!has_events && merge_one_device(&d, g->devices[k].id, NULL, 0))
			goto out;
	}
	while (i < n) {
		size_t j = i;
		while (j < n && pe[j].device == pe[i].device)
			j++;
		if (merge_one_device(&d, pe[i].device, pe + i, j - i))
			goto out;
		i = j;
	}
	if (d.uncorrelated &&
	    tfprof__profile_add_warning(p,
					"tfprof: %" PRIu64 " GPU %s no host launch in this profile: "
					"launched before the session started or while it stopped, or "
					"its host event was dropped",
					d.uncorrelated,
					TFPROF_PL(d.uncorrelated, "activity has", "activities have")))
		goto out;
	if (d.multi_launch &&
	    tfprof__profile_add_warning(p, "tfprof: %" PRIu64 " GPU %s more than one host launch event",
					d.multi_launch,
					TFPROF_PL(d.multi_launch, "activity matches", "activities match")))
		goto out;
	rc = 0;
out:
	free(pe);
	free(d.kernel_names);
	free(d.details.slots);
	free(d.tf_ops);
	free(d.meta_done);
	free(d.contexts);
	return rc;
}
