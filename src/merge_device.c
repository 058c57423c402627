/* Turns what GPU tracing collected into /device:GPU:<ordinal> planes: device properties as plane
 * stats, a line per stream (plus one for synchronization and one for CUPTI's own overhead), and
 * per event the stats xprof reads (correlation_id, kernel_details, memcpy_details...) together
 * with the scope and step of the host call that launched it. Device timestamps are mapped onto
 * tfprof's time base through the clock pairs taken at start and stop. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demangle.h"
#include "merge.h"

#define SYNC_LINE_BASE ((int64_t)1 << 32)
#define OVERHEAD_LINE_ID ((int64_t)2 << 32)

/* The line an event goes to, and its start, for sorting. */
struct placed {
	uint32_t device;
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
};

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
	if (id == SYNC_LINE_BASE + TFPROF_DEV_NONE) {
		snprintf(buf, cap, "Context synchronization");
		return;
	}
	if (id >= SYNC_LINE_BASE) {
		snprintf(buf, cap, "Stream #%" PRId64 " synchronization", id - SYNC_LINE_BASE);
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

static int put_u64(struct tfprof__line *l, uint32_t key, uint64_t v)
{
	struct tfprof__stat *s = tfprof__line_add_stat(l, key, TFPROF_STAT_U64);
	if (!s)
		return -1;
	s->v.u64 = v;
	return 0;
}

static int put_i64(struct tfprof__line *l, uint32_t key, int64_t v)
{
	struct tfprof__stat *s = tfprof__line_add_stat(l, key, TFPROF_STAT_I64);
	if (!s)
		return -1;
	s->v.i64 = v;
	return 0;
}

static int put_str(struct tfprof__profile *p, struct tfprof__line *l, uint32_t key, const char *v)
{
	uint32_t id = tfprof__strtab_intern(&p->strs, v);
	struct tfprof__stat *s;
	if (id == UINT32_MAX || !(s = tfprof__line_add_stat(l, key, TFPROF_STAT_STR)))
		return -1;
	s->v.str = id;
	return 0;
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

static int add_event(struct dev_ctx *d, struct tfprof__plane *pl, struct tfprof__line *l,
		     const struct placed *pe)
{
	const struct tfprof__dev_event *e = pe->ev;
	struct tfprof__profile *p = d->p;
	char buf[256];
	uint32_t name;
	bool first;
	switch (e->kind) {
	case TFPROF_DEV_KERNEL:
		name = kernel_name(d, pl, e->name, &first);
		break;
	case TFPROF_DEV_MEMCPY:
		name = tfprof__strtab_intern(&p->strs, memcpy_name(e->u.memcpy.copy_kind));
		break;
	case TFPROF_DEV_MEMSET:
		name = tfprof__strtab_intern(&p->strs, "Memset");
		break;
	case TFPROF_DEV_SYNC:
		name = tfprof__strtab_intern(&p->strs, sync_name(e->u.sync.type));
		break;
	default:
		name = tfprof__strtab_intern(&p->strs, "CUPTI overhead");
		break;
	}
	if (name == UINT32_MAX || !tfprof__line_add_event(l, pe->start, pe->end - pe->start, name))
		return -1;
	if (e->kind == TFPROF_DEV_OVERHEAD)
		return put_u64(l, d->k_ovh, e->u.overhead.overhead_kind);
	if (e->correlation_id && put_u64(l, d->k_corr, e->correlation_id))
		return -1;
	if (put_u64(l, d->k_ctx, e->context_id) || put_u64(l, d->k_dev, e->device_id))
		return -1;
	switch (e->kind) {
	case TFPROF_DEV_KERNEL:
		snprintf(buf, sizeof buf,
			 "regs:%u static_shared:%d dynamic_shared:%d grid:%u,%u,%u block:%u,%u,%u",
			 e->u.kernel.registers_per_thread, e->u.kernel.static_shared,
			 e->u.kernel.dynamic_shared, e->u.kernel.grid[0], e->u.kernel.grid[1],
			 e->u.kernel.grid[2], e->u.kernel.block[0], e->u.kernel.block[1], e->u.kernel.block[2]);
		if (put_str(p, l, d->k_kernel, buf))
			return -1;
		break;
	case TFPROF_DEV_MEMCPY: {
		uint32_t dest = e->u.memcpy.copy_kind == TFPROF_COPY_PTOP ? e->u.memcpy.dst_device : e->device_id;
		snprintf(buf, sizeof buf, "kind_src:%s kind_dst:%s size:%" PRIu64 " dest:%u async:%u",
			 mem_kind(e->u.memcpy.src_kind), mem_kind(e->u.memcpy.dst_kind), e->u.memcpy.bytes,
			 dest, e->u.memcpy.async ? 1u : 0u);
		if (put_str(p, l, d->k_memcpy, buf))
			return -1;
		break;
	}
	case TFPROF_DEV_MEMSET:
		snprintf(buf, sizeof buf, "kind:%s num_bytes:%" PRIu64 " async:%u",
			 mem_kind(e->u.memset.memory_kind), e->u.memset.bytes, e->u.memset.async ? 1u : 0u);
		if (put_str(p, l, d->k_memset, buf))
			return -1;
		break;
	case TFPROF_DEV_SYNC:
		if (put_u64(l, d->k_sync, e->u.sync.type))
			return -1;
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
		const char *sc = tfprof__strtab_get(&p->strs, ln->scope_name);
		/* xprof attributes device time to framework ops through tf_op, "<op name>:<op type>"
		 * (framework_op_stats, the op column of kernel_stats); the scope is both. */
		char op[512];
		snprintf(op, sizeof op, "%s:%s", sc, sc);
		if (put_str(p, l, d->k_scope, sc) || put_str(p, l, d->k_tf_op, op))
			return -1;
	}
	if (ln->has_step && put_i64(l, d->k_step, ln->step_num))
		return -1;
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
			return -1;
		s->v.str = v;
	}
	for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
		uint32_t k = tfprof__strtab_intern(&p->strs, ints[i].key);
		struct tfprof__stat *s;
		if (k == UINT32_MAX || !(s = tfprof__plane_add_stat(pl, k, TFPROF_STAT_I64)))
			return -1;
		s->v.i64 = (int64_t)ints[i].v;
	}
	return 0;
}

static int add_messages(struct tfprof__profile *p, const struct tfprof__gpu_result *g)
{
	for (size_t i = 0; i < g->nerrors; i++)
		if (tfprof__profile_add_error(p, "%s", g->errors[i]))
			return -1;
	for (size_t i = 0; i < g->nwarnings; i++)
		if (tfprof__profile_add_warning(p, "%s", g->warnings[i]))
			return -1;
	return 0;
}

/* Adds the plane of one device and the lines of its events, placed[0..n) all on that device. */
static int merge_one_device(struct dev_ctx *d, uint32_t dev_id, const struct placed *pe, size_t n)
{
	char name[64];
	snprintf(name, sizeof name, "/device:GPU:%u", dev_id);
	struct tfprof__plane *pl = tfprof__profile_add_plane(d->p, dev_id, name);
	if (!pl)
		return -1;
	/* Kernel names (and their mangled_name metadata stat) are per plane. */
	memset(d->kernel_names, 0, (d->g->nnames + 1) * sizeof *d->kernel_names);
	const struct tfprof__dev_device *dev = find_device(d->g, dev_id);
	if (dev && add_device_plane_stats(d->p, pl, dev))
		return -1;
	/* How far device and host times may be apart: the clock pairing's error bound. */
	uint32_t k = tfprof__strtab_intern(&d->p->strs, "tfprof_clock_error_ns");
	struct tfprof__stat *st;
	if (k == UINT32_MAX || !(st = tfprof__plane_add_stat(pl, k, TFPROF_STAT_I64)))
		return -1;
	st->v.i64 = (int64_t)d->align_ns;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		unsigned kinds = 0;
		while (j < n && pe[j].line == pe[i].line)
			kinds |= kind_bit(pe[j++].ev);
		char lname[160];
		line_name(lname, sizeof lname, pe[i].line, kinds);
		struct tfprof__line *l = tfprof__plane_add_line(d->p, pl, pe[i].line, lname);
		if (!l)
			return -1;
		for (size_t k = i; k < j; k++)
			if (add_event(d, pl, l, &pe[k]))
				return -1;
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
		return -1;
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
			struct placed *x = &pe[n++];
			x->ev = e;
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
	qsort(pe, n, sizeof *pe, cmp_placed);
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
					"tfprof: %" PRIu64 " GPU activities have no host launch in this profile: "
					"they were launched before the session started or while it stopped, or "
					"their host event was dropped",
					d.uncorrelated))
		goto out;
	if (d.multi_launch &&
	    tfprof__profile_add_warning(p, "tfprof: %" PRIu64 " GPU activities match more than one host launch event",
					d.multi_launch))
		goto out;
	rc = 0;
out:
	free(pe);
	free(d.kernel_names);
	return rc;
}
