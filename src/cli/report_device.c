/* SPDX-License-Identifier: Apache-2.0 */
/* Finds the device work in a profile: kernels, copies and memsets on the /device:GPU:<n> planes,
 * each with its correlation id, bytes and step_num when it has them. Only stream lines count
 * ("Stream #..."), plus any event that carries kernel_details, memcpy_details or Memset_details;
 * the lines TensorFlow and xprof derive (XLA Ops, Steps, Launch Stats...) and tfprof's
 * synchronization and CUPTI-overhead lines are not device work and would count time twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../demangle.h"
#include "report.h"

const char *const rp_copy_kind_names[RP_NCOPY] = { "H2D", "D2H", "D2D", "P2P", "H2H", "other copy", "memset" };

static bool starts_with_ci(const char *s, const char *p)
{
	return strncasecmp(s, p, strlen(p)) == 0;
}

/* Case-sensitive on purpose: direction tags are spelled in capitals. */
static bool contains(const char *s, const char *p)
{
	return strstr(s, p) != NULL;
}

static bool is_host_memory(const char *k, size_t n)
{
	return (n == 8 && strncmp(k, "pageable", 8) == 0) || (n == 6 && strncmp(k, "pinned", 6) == 0);
}

/* The value after "key:" in a details string ("kind_src:pinned kind_dst:device size:4096"). */
static const char *detail(const char *s, const char *key, size_t *len)
{
	size_t kl = strlen(key);
	for (const char *p = s; (p = strstr(p, key)); p += kl) {
		if ((p == s || p[-1] == ' ') && p[kl] == ':') {
			const char *v = p + kl + 1;
			*len = strcspn(v, " ");
			return v;
		}
	}
	return NULL;
}

static uint64_t detail_u64(const char *s, const char *key)
{
	size_t n;
	const char *v = s ? detail(s, key, &n) : NULL;
	return v ? strtoull(v, NULL, 10) : 0;
}

static enum rp_copy_kind copy_kind(const char *name, const char *details)
{
	if (contains(name, "H2D") || contains(name, "HtoD"))
		return RP_H2D;
	if (contains(name, "D2H") || contains(name, "DtoH"))
		return RP_D2H;
	if (contains(name, "D2D") || contains(name, "DtoD"))
		return RP_D2D;
	if (contains(name, "P2P") || contains(name, "PtoP"))
		return RP_P2P;
	if (contains(name, "H2H") || contains(name, "HtoH"))
		return RP_H2H;
	/* No direction in the name: derive it from where the bytes live. */
	size_t ns = 0, nd = 0;
	const char *src = details ? detail(details, "kind_src", &ns) : NULL;
	const char *dst = details ? detail(details, "kind_dst", &nd) : NULL;
	if (!src || !dst)
		return RP_COPY_OTHER;
	bool hs = is_host_memory(src, ns), hd = is_host_memory(dst, nd);
	return hs && hd ? RP_H2H : hs ? RP_H2D : hd ? RP_D2H : RP_D2D;
}

struct roles {
	int64_t corr, step, kernel, memcpy, memset;
};

static uint32_t kernel_name_id(struct rp_device *out, const char *name, const char *display)
{
	char *d = tfprof__demangle(name);
	const char *use = d ? d : name[0] ? name : display[0] ? display : "(unnamed kernel)";
	uint32_t id = rp_intern(&out->names, use);
	free(d);
	return id;
}

static void collect_plane(const struct rp_plane *rp, struct rp_events *it, struct rp_device *out)
{
	const XPlane *p = rp->hdr;
	struct rp_plane_index ix;
	rp_plane_index_init(&ix, p);
	struct roles r = {
		.corr = rp_stat_id(&ix, "correlation_id"),
		.step = rp_stat_id(&ix, "step_num"),
		.kernel = rp_stat_id(&ix, "kernel_details"),
		.memcpy = rp_stat_id(&ix, "memcpy_details"),
		.memset = rp_stat_id(&ix, "Memset_details"),
	};
	/* Kernel names repeat; demangle each event metadata once. */
	uint32_t *name_cache = rp_xcalloc(ix.nev, sizeof *name_cache);
	for (size_t li = 0; li < rp->n_lines; li++) {
		const XLine *l = rp->lines[li].hdr;
		const char *lname = l->name && l->name[0] ? l->name : l->display_name ? l->display_name : "";
		bool stream = starts_with_ci(lname, "Stream #") && !strstr(lname, "synchronization");
		size_t taken = 0;
		rp_events_line(it, &rp->lines[li]);
		for (const XEvent *e; (e = rp_events_next(it));) {
			const char *cdet = NULL, *sdet = NULL;
			bool has_k = false, has_c = false, has_s = false;
			struct rp_dev_event d = { .step = -1 };
			for (size_t si = 0; si < e->n_stats; si++) {
				const XStat *s = e->stats[si];
				int64_t v;
				if (s->metadata_id == r.corr && rp_stat_int(&ix, s, &v))
					d.correlation_id = (uint64_t)v;
				else if (s->metadata_id == r.corr &&
					 s->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE)
					d.correlation_id = s->uint64_value;
				else if (s->metadata_id == r.step && rp_stat_int(&ix, s, &v)) {
					d.has_step = true;
					d.step_num = v;
				} else if (s->metadata_id == r.kernel) {
					has_k = true;
				} else if (s->metadata_id == r.memcpy) {
					has_c = true;
					cdet = rp_stat_str(&ix, s);
				} else if (s->metadata_id == r.memset) {
					has_s = true;
					sdet = rp_stat_str(&ix, s);
				}
			}
			if (!stream && !has_k && !has_c && !has_s)
				continue;
			const char *display = "";
			const char *name = rp_event_name(&ix, e->metadata_id, &display);
			if (!name)
				name = "";
			if (has_c || (!has_k && !has_s && starts_with_ci(name, "Memcpy"))) {
				d.kind = RP_MEMCPY;
				d.copy_kind = (uint8_t)copy_kind(name, cdet);
				d.bytes = detail_u64(cdet, "size");
			} else if (has_s || (!has_k && starts_with_ci(name, "Memset"))) {
				d.kind = RP_MEMSET;
				d.copy_kind = RP_MEMSET_ROW;
				d.bytes = detail_u64(sdet, "num_bytes");
			} else {
				d.kind = RP_KERNEL;
				/* Position of the metadata in the index, to reuse its demangled name. */
				size_t lo = 0, hi = ix.nev;
				while (lo < hi) {
					size_t mid = lo + (hi - lo) / 2;
					if (ix.ev_ids[mid] < e->metadata_id)
						lo = mid + 1;
					else
						hi = mid;
				}
				if (lo < ix.nev && ix.ev_ids[lo] == e->metadata_id) {
					if (!name_cache[lo])
						name_cache[lo] = kernel_name_id(out, name, display) + 1;
					d.name = name_cache[lo] - 1;
				} else {
					d.name = kernel_name_id(out, "", "");
				}
			}
			d.start = rp_event_start(l, e);
			d.end = rp_event_end(l, e);
			rp_grow((void **)&out->ev, &out->cap, out->n + 1, sizeof *out->ev);
			out->ev[out->n++] = d;
			taken++;
		}
		if (!taken && !stream)
			out->skipped_lines++;
	}
	free(name_cache);
	rp_plane_index_free(&ix);
}

static bool is_gpu(const struct rp_plane *p)
{
	return p->hdr->name && strncmp(p->hdr->name, "/device:GPU:", 12) == 0;
}

void rp_device_collect(const struct rp_space *s, struct rp_device *out)
{
	memset(out, 0, sizeof *out);
	/* Sized once for every event on the GPU planes: growing by doubling could hold twice that. */
	uint64_t most = 0;
	for (size_t i = 0; i < s->n_planes; i++)
		most += is_gpu(&s->planes[i]) ? s->planes[i].n_events : 0;
	if (most) {
		out->ev = rp_xcalloc((size_t)most, sizeof *out->ev);
		out->cap = (size_t)most;
	}
	struct rp_events it;
	rp_events_init(&it);
	for (size_t i = 0; i < s->n_planes; i++) {
		if (!is_gpu(&s->planes[i]))
			continue;
		out->nplanes++;
		collect_plane(&s->planes[i], &it, out);
	}
	rp_events_free(&it);
}

void rp_device_free(struct rp_device *d)
{
	free(d->ev);
	rp_strtab_free(&d->names);
	memset(d, 0, sizeof *d);
}
