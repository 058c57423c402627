/* SPDX-License-Identifier: Apache-2.0 */
/* The steps table of tfprof-report. A step is one occurrence of a step marker: a host event on
 * /host:CPU with a step_num stat (when some of them also carry _r, only those, as xprof's grouping
 * roots). Steps are kept in time order and every occurrence is its own step, because training
 * loops commonly restart step_num every epoch; merging equal numbers would make one "step" from
 * the first epoch's begin to the last epoch's end. Markers with the same step_num whose windows
 * overlap (the same step scope on several threads) are one step. A step marker nested inside
 * another on the same thread (gradient-accumulation micro-steps) is part of the outer step and
 * not a step of its own: the outer scope is the unit the loop repeats. Each step also carries its
 * occurrence: how many earlier steps had the same step_num (the epoch, when epochs restart them).
 *
 * Device work is attributed to a step, in this order:
 *   1. correlation_id -> the host launch event with that id -> the step scope enclosing it on the
 *      launching thread's line (what xprof does). This names the exact occurrence, so it comes
 *      first: a step_num alone repeats across epochs, and tfprof writes the innermost step scope's
 *      number, which inside nested step scopes is the micro-step's, not the step's;
 *   2. the device event's own step_num stat (tfprof writes it), resolved to the occurrence of that
 *      number that had begun when the work was launched (or, with no launch in the profile, when
 *      the work started);
 *   3. the launch event's start time inside a step's host window (TensorFlow launches from
 *      executor threads that have no step scope of their own).
 * Device work whose launch is not in the profile belongs to no step and is counted as such. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report.h"

const char *const rp_verdict_names[] = { "no steps", "host only", "device-bound", "input-bound",
					 "host/launch-bound" };

/* One step scope instance on one line. */
struct marker {
	int64_t step_num, start, end, input;
	int32_t step;
};

/* One host event with a correlation id. */
struct launch {
	uint64_t corr;
	int64_t start, end;
	int32_t marker; /* enclosing step scope, -1 for none */
	bool outer;     /* not inside another event with a correlation id (no double counting) */
};

struct frame {
	int64_t end;
	int32_t marker;
	bool in_corr, in_input;
};

struct ctx {
	struct marker *m;
	size_t nm, capm;
	struct launch *l;
	size_t nl, capl;
	struct frame *f;
	size_t capf;
	bool use_r;
};

static bool is_input_name(const char *n)
{
	static const char *const prefixes[] = { "input", "load", "data", "iterator", "prefetch", "infeed" };
	for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
		if (strncasecmp(n, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return strcasestr(n, "getnext") != NULL;
}

/* What the walk needs of one host event, decoded once: the events themselves are not kept. */
struct host_ev {
	int64_t start, end, step, corr, meta;
	bool has_step, has_r, has_corr;
};

static int cmp_host_ev(const void *a, const void *b)
{
	const struct host_ev *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	/* At equal starts the longer event encloses the shorter one, so it comes first. */
	return x->end > y->end ? -1 : x->end < y->end;
}

struct host_roles {
	int64_t step, r, corr;
};

static size_t meta_pos(const struct rp_plane_index *ix, int64_t id)
{
	size_t lo = 0, hi = ix->nev;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->ev_ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ix->nev && ix->ev_ids[lo] == id ? lo : SIZE_MAX;
}

static void decode_host_ev(const struct rp_plane_index *ix, const struct host_roles *r, const XLine *l,
			   const XEvent *e, struct host_ev *h)
{
	*h = (struct host_ev){ .start = rp_event_start(l, e), .end = rp_event_end(l, e), .meta = e->metadata_id };
	for (size_t si = 0; si < e->n_stats; si++) {
		const XStat *s = e->stats[si];
		if (s->metadata_id == r->step) {
			h->has_step = rp_stat_int(ix, s, &h->step);
		} else if (s->metadata_id == r->r) {
			h->has_r = true;
		} else if (s->metadata_id == r->corr) {
			h->has_corr = rp_stat_int(ix, s, &h->corr) ||
				      s->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE;
			if (h->has_corr && !h->corr && s->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE)
				h->corr = (int64_t)s->uint64_value;
		}
	}
}

/* Walks one line's events in begin order with a stack of enclosing events. */
static void walk_line(struct ctx *c, const struct rp_plane_index *ix, const struct host_roles *r,
		      const bool *input_meta, const struct rp_line *rl, struct rp_events *it,
		      bool markers_allowed)
{
	size_t n = rl->n_events;
	if (!n)
		return;
	struct host_ev *v = rp_xmalloc(n * sizeof *v);
	size_t k = 0;
	rp_events_line(it, rl);
	for (const XEvent *e; k < n && (e = rp_events_next(it));)
		decode_host_ev(ix, r, rl->hdr, e, &v[k++]);
	n = k;
	/* tfprof writes lines in begin order; glibc's qsort would still copy and merge them all. */
	bool sorted = true;
	for (size_t i = 1; i < n && sorted; i++)
		sorted = cmp_host_ev(&v[i - 1], &v[i]) <= 0;
	if (!sorted)
		qsort(v, n, sizeof *v, cmp_host_ev);
	size_t depth = 0;
	for (size_t i = 0; i < n; i++) {
		const struct host_ev *e = &v[i];
		while (depth && c->f[depth - 1].end <= e->start)
			depth--;
		struct frame top = depth ? c->f[depth - 1] : (struct frame){ .marker = -1 };
		struct frame f = top;
		f.end = e->end;
		if (markers_allowed && e->has_step && (!c->use_r || e->has_r) && top.marker < 0) {
			rp_grow((void **)&c->m, &c->capm, c->nm + 1, sizeof *c->m);
			c->m[c->nm] = (struct marker){ .step_num = e->step, .start = e->start, .end = e->end };
			f.marker = (int32_t)c->nm++;
		}
		if (e->has_corr && e->corr) {
			rp_grow((void **)&c->l, &c->capl, c->nl + 1, sizeof *c->l);
			c->l[c->nl++] = (struct launch){ .corr = (uint64_t)e->corr, .start = e->start, .end = e->end,
							 .marker = top.marker, .outer = !top.in_corr };
			f.in_corr = true;
		}
		if (top.marker >= 0 && !top.in_input) {
			size_t mp = meta_pos(ix, e->meta);
			if (mp != SIZE_MAX && input_meta[mp]) {
				struct marker *m = &c->m[top.marker];
				int64_t end = e->end < m->end ? e->end : m->end;
				if (end > e->start)
					m->input = rp_sat_add(m->input, end - e->start);
				f.in_input = true;
			}
		}
		rp_grow((void **)&c->f, &c->capf, depth + 1, sizeof *c->f);
		c->f[depth++] = f;
	}
	free(v);
}

static void walk_plane(struct ctx *c, const struct rp_plane *rp, bool markers_allowed)
{
	struct rp_plane_index ix;
	rp_plane_index_init(&ix, rp->hdr);
	struct host_roles r = { rp_stat_id(&ix, "step_num"), rp_stat_id(&ix, "_r"),
				rp_stat_id(&ix, "correlation_id") };
	struct rp_events it;
	rp_events_init(&it);
	/* _r marks xprof's grouping roots; when a profile has any step event with it, the others
	 * (step_num on nested or unrelated events) are not steps. */
	if (markers_allowed && r.step != INT64_MIN && r.r != INT64_MIN)
		for (size_t li = 0; li < rp->n_lines && !c->use_r; li++) {
			rp_events_line(&it, &rp->lines[li]);
			for (const XEvent *e; !c->use_r && (e = rp_events_next(&it));) {
				bool s = false, rr = false;
				for (size_t si = 0; si < e->n_stats; si++) {
					s |= e->stats[si]->metadata_id == r.step;
					rr |= e->stats[si]->metadata_id == r.r;
				}
				c->use_r = s && rr;
			}
		}
	bool *input_meta = rp_xcalloc(ix.nev, sizeof *input_meta);
	for (size_t i = 0; i < ix.nev; i++)
		input_meta[i] = is_input_name(ix.ev_names[i][0] ? ix.ev_names[i] : ix.ev_display[i]);
	for (size_t li = 0; li < rp->n_lines; li++)
		walk_line(c, &ix, &r, input_meta, &rp->lines[li], &it, markers_allowed);
	rp_events_free(&it);
	free(input_meta);
	rp_plane_index_free(&ix);
}

static int cmp_marker(const void *a, const void *b)
{
	const struct marker *x = *(struct marker *const *)a, *y = *(struct marker *const *)b;
	if (x->step_num != y->step_num)
		return x->step_num < y->step_num ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_launch(const void *a, const void *b)
{
	const struct launch *x = a, *y = b;
	if (x->corr != y->corr)
		return x->corr < y->corr ? -1 : 1;
	/* Launches inside a step scope first: they are the better attribution. */
	return (x->marker < 0) - (y->marker < 0);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int64_t rp_median(int64_t *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof *v, cmp_i64);
	int64_t a = v[(n - 1) / 2], b = v[n / 2];
	return a + (b - a) / 2;
}

int32_t rp_step_at(const struct rp_steps *st, int64_t t)
{
	const struct rp_step *w = st->v;
	size_t lo = 0, hi = st->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w[mid].start <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Windows may overlap (steps on several threads): look back a little for one that holds t. */
	for (size_t k = lo, tries = 0; k-- > 0 && tries < 8; tries++)
		if (t < w[k].end)
			return (int32_t)k;
	return -1;
}

/* The occurrence of step_num num that had begun at time t (the latest one starting at or before
 * t, else the first): by_num holds the step indices sorted by step_num, then start. */
static int32_t step_by_num(const struct rp_step *s, const int32_t *by_num, size_t n, int64_t num, int64_t t)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s[by_num[mid]].step_num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == n || s[by_num[lo]].step_num != num)
		return -1;
	size_t first = lo;
	hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s[by_num[mid]].step_num == num && s[by_num[mid]].start <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return by_num[lo > first ? lo - 1 : first];
}

static const struct launch *find_launch(const struct launch *l, size_t n, uint64_t corr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l[mid].corr < corr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && l[lo].corr == corr ? &l[lo] : NULL;
}

struct interval {
	int64_t start, end;
	int32_t step;
};

static int cmp_interval(const void *a, const void *b)
{
	const struct interval *x = a, *y = b;
	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Merges sorted intervals of one step in place; returns how many remain. */
static size_t merge_intervals(struct interval *v, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k && v[k - 1].step == v[i].step && v[i].start <= v[k - 1].end) {
			if (v[i].end > v[k - 1].end)
				v[k - 1].end = v[i].end;
		} else {
			v[k++] = v[i];
		}
	}
	return k;
}

static void attribute(struct ctx *c, struct rp_device *dev, struct rp_steps *out, const int32_t *by_num)
{
	for (size_t i = 0; i < dev->n; i++) {
		struct rp_dev_event *d = &dev->ev[i];
		d->step = -1;
		const struct launch *l = d->correlation_id ? find_launch(c->l, c->nl, d->correlation_id) : NULL;
		if (l && l->marker >= 0) {
			d->step = c->m[l->marker].step;
			out->attr.by_launch_scope++;
		} else if (d->has_step &&
			   (d->step = step_by_num(out->v, by_num, out->n, d->step_num, l ? l->start : d->start)) >= 0) {
			out->attr.by_stat++;
		} else if (l && (d->step = rp_step_at(out, l->start)) >= 0) {
			out->attr.by_launch_time++;
		} else {
			out->attr.none++;
		}
	}
}

static void device_metrics(struct rp_device *dev, struct rp_steps *out)
{
	struct interval *v = rp_xmalloc(dev->n * sizeof *v);
	size_t n = 0;
	for (size_t i = 0; i < dev->n; i++) {
		const struct rp_dev_event *d = &dev->ev[i];
		if (d->step < 0)
			continue;
		struct rp_step *s = &out->v[d->step];
		v[n++] = (struct interval){ d->start, d->end, d->step };
		if (d->kind == RP_KERNEL)
			s->kernels++;
		else if (d->kind == RP_MEMSET)
			s->memsets++;
		else
			s->memcpys++;
		if (d->kind == RP_MEMCPY && d->copy_kind == RP_H2D) {
			s->h2d_bytes += d->bytes;
			s->h2d_time = rp_sat_add(s->h2d_time, d->end - d->start);
		} else if (d->kind == RP_MEMCPY && d->copy_kind == RP_D2H) {
			s->d2h_bytes += d->bytes;
			s->d2h_time = rp_sat_add(s->d2h_time, d->end - d->start);
		}
	}
	qsort(v, n, sizeof *v, cmp_interval);
	n = merge_intervals(v, n);
	for (size_t i = 0; i < n; i++) {
		struct rp_step *s = &out->v[v[i].step];
		s->device_busy = rp_sat_add(s->device_busy, v[i].end - v[i].start);
	}

	/* Idle time: the window minus the union of all device work, whichever step it belongs to. */
	n = 0;
	for (size_t i = 0; i < dev->n; i++)
		v[n++] = (struct interval){ dev->ev[i].start, dev->ev[i].end, 0 };
	qsort(v, n, sizeof *v, cmp_interval);
	n = merge_intervals(v, n);
	for (size_t si = 0; si < out->n; si++) {
		struct rp_step *s = &out->v[si];
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (v[mid].end <= s->start)
				lo = mid + 1;
			else
				hi = mid;
		}
		int64_t covered = 0;
		for (size_t k = lo; k < n && v[k].start < s->end; k++) {
			int64_t a = v[k].start > s->start ? v[k].start : s->start;
			int64_t b = v[k].end < s->end ? v[k].end : s->end;
			if (b > a)
				covered = rp_sat_add(covered, b - a);
		}
		s->device_idle = (s->end - s->start) - covered;
	}
	free(v);
}

static void summarize(const struct rp_device *dev, struct rp_steps *out)
{
	struct rp_summary *sum = &out->sum;
	sum->nsteps = out->n;
	if (!out->n) {
		sum->verdict = RP_NO_STEPS;
		return;
	}
	int64_t *t = rp_xmalloc(out->n * sizeof *t);
	for (size_t i = 0; i < out->n; i++) {
		const struct rp_step *s = &out->v[i];
		t[i] = s->end - s->start;
		sum->wall = rp_sat_add(sum->wall, t[i]);
		sum->busy = rp_sat_add(sum->busy, s->device_busy);
		sum->idle = rp_sat_add(sum->idle, s->device_idle);
		sum->launch = rp_sat_add(sum->launch, s->launch_time);
		sum->input = rp_sat_add(sum->input, s->input_time);
	}
	sum->mean = sum->wall / (int64_t)out->n;
	sum->median = rp_median(t, out->n);
	/* Nearest-rank p90: the smallest time that at least 90% of the steps do not exceed. */
	size_t rank = (out->n * 9 + 9) / 10;
	sum->p90 = t[rank - 1];
	sum->min = t[0];
	sum->max = t[out->n - 1];
	free(t);
	double wall = (double)sum->wall;
	if (dev->nplanes == 0 || dev->n == 0)
		sum->verdict = RP_HOST_ONLY;
	else if (wall > 0 && 100.0 * (double)sum->busy >= RP_DEVICE_BOUND_PCT * wall)
		sum->verdict = RP_DEVICE_BOUND;
	else if (wall > 0 && 100.0 * (double)sum->input >= RP_INPUT_BOUND_PCT * wall)
		sum->verdict = RP_INPUT_BOUND;
	else
		sum->verdict = RP_LAUNCH_BOUND;
}

/* The steps a qsort comparator of step indices looks at (the tool is single-threaded). */
static const struct rp_step *sort_steps;

static int cmp_by_num(const void *a, const void *b)
{
	const struct rp_step *x = &sort_steps[*(const int32_t *)a], *y = &sort_steps[*(const int32_t *)b];
	if (x->step_num != y->step_num)
		return x->step_num < y->step_num ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_by_time(const void *a, const void *b)
{
	const struct rp_step *x = &sort_steps[*(const int32_t *)a], *y = &sort_steps[*(const int32_t *)b];
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->step_num != y->step_num)
		return x->step_num < y->step_num ? -1 : 1;
	return x->occurrence < y->occurrence ? -1 : x->occurrence > y->occurrence;
}

/* Makes the steps from the step scopes: scopes with the same step_num make one step while their
 * windows overlap (one step on several threads); a later scope with that number starts its next
 * occurrence. The steps end up in time order and every marker knows its step. */
static void group_steps(struct ctx *c, struct rp_steps *out)
{
	struct marker **order = rp_xmalloc((c->nm ? c->nm : 1) * sizeof *order);
	for (size_t i = 0; i < c->nm; i++)
		order[i] = &c->m[i];
	qsort(order, c->nm, sizeof *order, cmp_marker);
	struct rp_step *v = rp_xcalloc(c->nm ? c->nm : 1, sizeof *v);
	size_t n = 0;
	for (size_t i = 0; i < c->nm; i++) {
		struct marker *m = order[i];
		struct rp_step *st = n ? &v[n - 1] : NULL;
		if (!st || st->step_num != m->step_num || m->start >= st->end) {
			int32_t occ = st && st->step_num == m->step_num ? st->occurrence + 1 : 0;
			v[n++] = (struct rp_step){ .step_num = m->step_num, .occurrence = occ, .start = m->start,
						   .end = m->end };
			st = &v[n - 1];
		} else {
			if (m->end > st->end)
				st->end = m->end;
		}
		m->step = (int32_t)n - 1;
		st->input_time = rp_sat_add(st->input_time, m->input);
		out->repeats |= st->occurrence > 0;
	}
	free(order);
	int32_t *by_time = rp_xmalloc((n ? n : 1) * sizeof *by_time), *rank = rp_xmalloc((n ? n : 1) * sizeof *rank);
	for (size_t i = 0; i < n; i++)
		by_time[i] = (int32_t)i;
	sort_steps = v;
	qsort(by_time, n, sizeof *by_time, cmp_by_time);
	out->v = rp_xmalloc((n ? n : 1) * sizeof *out->v);
	for (size_t i = 0; i < n; i++) {
		out->v[i] = v[by_time[i]];
		rank[by_time[i]] = (int32_t)i;
	}
	out->n = n;
	for (size_t i = 0; i < c->nm; i++)
		c->m[i].step = rank[c->m[i].step];
	free(rank);
	free(by_time);
	free(v);
}

void rp_steps_analyze(const struct rp_space *s, struct rp_device *dev, struct rp_steps *out)
{
	memset(out, 0, sizeof *out);
	struct ctx c = { 0 };
	for (size_t i = 0; i < s->n_planes; i++) {
		const char *name = s->planes[i].hdr->name;
		if (name && strcmp(name, "/host:CPU") == 0) {
			out->has_host_plane = true;
			walk_plane(&c, &s->planes[i], true);
		}
	}
	/* TensorFlow may keep CUDA API callbacks on a plane of their own; its launches have no step
	 * scope around them and are placed by time. */
	for (size_t i = 0; i < s->n_planes; i++)
		if (s->planes[i].hdr->name && strcmp(s->planes[i].hdr->name, "/host:CUPTI") == 0)
			walk_plane(&c, &s->planes[i], false);

	group_steps(&c, out);
	int32_t *by_num = rp_xmalloc((out->n ? out->n : 1) * sizeof *by_num);
	for (size_t i = 0; i < out->n; i++)
		by_num[i] = (int32_t)i;
	sort_steps = out->v;
	qsort(by_num, out->n, sizeof *by_num, cmp_by_num);

	/* Host time in CUDA API calls, counted once per outermost call. */
	for (size_t i = 0; i < c.nl; i++) {
		const struct launch *l = &c.l[i];
		if (!l->outer)
			continue;
		int32_t st = l->marker >= 0 ? c.m[l->marker].step : rp_step_at(out, l->start);
		if (st < 0)
			continue;
		out->v[st].launches++;
		out->v[st].launch_time = rp_sat_add(out->v[st].launch_time, l->end - l->start);
	}
	if (c.nl)
		qsort(c.l, c.nl, sizeof *c.l, cmp_launch);
	attribute(&c, dev, out, by_num);
	device_metrics(dev, out);
	summarize(dev, out);
	free(by_num);
	free(c.m);
	free(c.l);
	free(c.f);
}

void rp_steps_free(struct rp_steps *st)
{
	free(st->v);
	memset(st, 0, sizeof *st);
}
