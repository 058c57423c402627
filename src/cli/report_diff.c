/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof-report --diff BASE NEW: what changed between two runs of the same job. It compares the
 * step time (mean, median, p90) and says whether the median's change is beyond the noise, the
 * device busy, device idle and launch time per step, and the kernels and host scopes whose time
 * per step moved most, in text, CSV and JSON. --fail-if-slower turns the verdict into an exit
 * code for CI.
 *
 * Noise: a percentile bootstrap confidence interval (95%) of the relative change of the median
 * step time. Each resample draws both runs' steps with replacement and takes the ratio of their
 * medians; the 2.5th and 97.5th percentiles of those ratios are the interval. A bootstrap was
 * chosen over a rank test (Mann-Whitney) because the question a CI gate asks is one of size ("is
 * NEW slower by more than 5%?"), which an interval of the change answers directly and a rank
 * test's p-value does not; because the median, unlike the mean, is not pulled by the few
 * stragglers (checkpoints, GC pauses) every training run has; and because it assumes nothing
 * about the shape of the step time distribution. The seed is fixed, so the same two runs always
 * give the same interval and the same exit code. Steps of all hosts of a run are pooled. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* Every resample costs O(steps); fewer resamples for very long runs bound the time. */
#define RESAMPLES_MAX 2000
#define RESAMPLES_MIN 200
#define RESAMPLE_WORK 40000000.0
/* A kernel or scope whose time per step moved by less than 1 us, or 1% of BASE's, is the same:
 * clock mapping and timer jitter move every row by a little. */
#define SAME_ABS 1000000
#define SAME_REL 0.01

const char *const rp_diff_status_names[] = { "same", "slower", "faster", "added", "removed" };

/* ---- statistics ----------------------------------------------------------------------------- */

static uint64_t next_rand(uint64_t *s)
{
	/* splitmix64: fast, and good enough to draw indices. */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The median of a resample (with replacement) of the sorted v[0..n): counts how often each
 * position is drawn and walks the counts to the middle ranks, which is O(n) without sorting. */
static double resample_median(const int64_t *v, size_t n, uint32_t *count, uint64_t *seed)
{
	memset(count, 0, n * sizeof *count);
	for (size_t i = 0; i < n; i++)
		count[next_rand(seed) % n]++;
	size_t lo_rank = (n - 1) / 2, hi_rank = n / 2, seen = 0;
	double lo = 0, hi = 0;
	bool have_lo = false;
	for (size_t i = 0; i < n; i++) {
		seen += count[i];
		if (!have_lo && seen > lo_rank) {
			lo = (double)v[i];
			have_lo = true;
		}
		if (seen > hi_rank) {
			hi = (double)v[i];
			break;
		}
	}
	return (lo + hi) / 2;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The 95% interval of 100 (median(b*) / median(a*) - 1) over resamples; a and b sorted. */
static void bootstrap(const int64_t *a, size_t na, const int64_t *b, size_t nb, struct rp_diff *d)
{
	double work = (double)(na + nb);
	unsigned r = work * RESAMPLES_MAX <= RESAMPLE_WORK ? RESAMPLES_MAX : (unsigned)(RESAMPLE_WORK / work);
	if (r < RESAMPLES_MIN)
		r = RESAMPLES_MIN;
	uint32_t *count = rp_xmalloc((na > nb ? na : nb) * sizeof *count);
	double *rel = rp_xmalloc(r * sizeof *rel);
	uint64_t seed = 0x7466707266646966ull; /* fixed: the same runs give the same interval */
	size_t k = 0;
	for (unsigned i = 0; i < r; i++) {
		double ma = resample_median(a, na, count, &seed), mb = resample_median(b, nb, count, &seed);
		if (ma > 0)
			rel[k++] = 100.0 * (mb / ma - 1.0);
	}
	free(count);
	d->resamples = r;
	if (k) {
		qsort(rel, k, sizeof *rel, cmp_double);
		d->ci_low_pct = rel[(size_t)floor(0.025 * (double)(k - 1))];
		d->ci_high_pct = rel[(size_t)ceil(0.975 * (double)(k - 1))];
		d->ci_valid = true;
	}
	free(rel);
}

/* ---- the two runs --------------------------------------------------------------------------- */

/* Per-name totals of one kind of row (kernels or host scopes) for both runs. */
struct totals {
	struct rp_strtab names;
	int64_t *sum[2];
	uint64_t *count[2];
	size_t cap;
};

static void totals_add(struct totals *t, int side, const char *name, int64_t dur)
{
	uint32_t id = rp_intern(&t->names, name);
	if (id >= t->cap) {
		size_t old = t->cap;
		for (int s = 0; s < 2; s++) {
			size_t cap = old;
			rp_grow((void **)&t->sum[s], &cap, (size_t)id + 1, sizeof *t->sum[s]);
			cap = old;
			rp_grow((void **)&t->count[s], &cap, (size_t)id + 1, sizeof *t->count[s]);
			t->cap = cap;
		}
		for (int s = 0; s < 2; s++) {
			memset(t->sum[s] + old, 0, (t->cap - old) * sizeof *t->sum[s]);
			memset(t->count[s] + old, 0, (t->cap - old) * sizeof *t->count[s]);
		}
	}
	t->sum[side][id] = rp_sat_add(t->sum[side][id], dur > 0 ? dur : 0);
	t->count[side][id]++;
}

static void totals_free(struct totals *t)
{
	rp_strtab_free(&t->names);
	for (int s = 0; s < 2; s++) {
		free(t->sum[s]);
		free(t->count[s]);
	}
}

/* Host events that start inside a step, by name. The step scopes themselves (events with a
 * step_num stat) are left out: their time is the step time, compared above. */
static void host_scopes(const struct rp_host_report *h, int side, struct totals *t)
{
	const struct rp_space *sp = h->in->space;
	struct rp_events it;
	rp_events_init(&it);
	for (size_t pi = 0; pi < sp->n_planes; pi++) {
		const struct rp_plane *p = &sp->planes[pi];
		if (!p->hdr->name || strcmp(p->hdr->name, "/host:CPU") != 0)
			continue;
		struct rp_plane_index ix;
		rp_plane_index_init(&ix, p->hdr);
		int64_t step_stat = rp_stat_id(&ix, "step_num");
		for (size_t li = 0; li < p->n_lines; li++) {
			const struct rp_line *l = &p->lines[li];
			rp_events_line(&it, l);
			for (const XEvent *e; (e = rp_events_next(&it));) {
				bool marker = false;
				for (size_t si = 0; si < e->n_stats && !marker; si++)
					marker = e->stats[si]->metadata_id == step_stat;
				int64_t start = rp_event_start(l->hdr, e);
				if (marker || rp_step_at(&h->steps, start) < 0)
					continue;
				const char *display = NULL, *name = rp_event_name(&ix, e->metadata_id, &display);
				if (!name || !*name)
					name = display && *display ? display : "(unnamed)";
				totals_add(t, side, name, rp_event_end(l->hdr, e) - start);
			}
		}
		rp_plane_index_free(&ix);
	}
	rp_events_free(&it);
}

static void kernels(const struct rp_host_report *h, int side, struct totals *t)
{
	for (size_t i = 0; i < h->dev.n; i++) {
		const struct rp_dev_event *d = &h->dev.ev[i];
		if (d->kind == RP_KERNEL && d->step >= 0)
			totals_add(t, side, h->dev.names.s[d->name], d->end - d->start);
	}
}

static void add_rows(struct rp_diff *d, const struct totals *t, bool scope)
{
	for (size_t i = 0; i < t->names.n; i++) {
		rp_grow((void **)&d->rows, &d->rows_cap, d->nrows + 1, sizeof *d->rows);
		struct rp_diff_row *r = &d->rows[d->nrows++];
		*r = (struct rp_diff_row){ .name = rp_xstrdup(t->names.s[i]), .scope = scope };
		for (int s = 0; s < 2; s++)
			r->per_step[s] = t->sum[s][i] / (int64_t)d->side[s].nsteps;
		r->change = r->per_step[1] - r->per_step[0];
		if (!t->count[0][i])
			r->status = RP_DIFF_ADDED;
		else if (!t->count[1][i])
			r->status = RP_DIFF_REMOVED;
		else if (llabs(r->change) < SAME_ABS || (double)llabs(r->change) < SAME_REL * (double)r->per_step[0])
			r->status = RP_DIFF_SAME;
		else
			r->status = r->change > 0 ? RP_DIFF_SLOWER : RP_DIFF_FASTER;
	}
}

static int cmp_row(const void *a, const void *b)
{
	const struct rp_diff_row *x = a, *y = b;
	int64_t ax = x->change < 0 ? -x->change : x->change, ay = y->change < 0 ? -y->change : y->change;
	if (ax != ay)
		return ax > ay ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Pools the step times of every host of one run (sorted into *out) and the per-step means. */
static size_t pool(const struct rp_host_report *h, size_t n, struct rp_diff_side *s, int64_t **out)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += h[i].steps.n;
	int64_t *t = rp_xmalloc((total ? total : 1) * sizeof *t);
	size_t k = 0;
	int64_t wall = 0, busy = 0, idle = 0, launch = 0;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < h[i].steps.n; j++)
			t[k++] = h[i].steps.v[j].end - h[i].steps.v[j].start;
		wall = rp_sat_add(wall, h[i].steps.sum.wall);
		busy = rp_sat_add(busy, h[i].steps.sum.busy);
		idle = rp_sat_add(idle, h[i].steps.sum.idle);
		launch = rp_sat_add(launch, h[i].steps.sum.launch);
	}
	s->nhosts = n;
	s->nsteps = total;
	*out = t;
	if (!total)
		return 0;
	qsort(t, total, sizeof *t, cmp_i64);
	s->mean = wall / (int64_t)total;
	s->median = t[(total - 1) / 2] + (t[total / 2] - t[(total - 1) / 2]) / 2;
	s->p90 = t[(total * 9 + 9) / 10 - 1];
	s->busy = busy / (int64_t)total;
	s->idle = idle / (int64_t)total;
	s->launch = launch / (int64_t)total;
	/* Memory: the median of the per-step peaks, pooled like the step times; the growth of the
	 * host that grows most, since a leak on one host is what runs it out of memory. Hosts
	 * without memory events add no peaks. */
	int64_t *pk = rp_xmalloc(total * sizeof *pk);
	size_t np = 0;
	for (size_t i = 0; i < n; i++) {
		const struct rp_memory *m = &h[i].mem;
		if (!m->nevents || m->nsteps != h[i].steps.n)
			continue;
		s->memory = true;
		for (size_t j = 0; j < m->nsteps; j++)
			pk[np++] = m->steps[j].peak;
		if (m->has_growth && (!s->has_growth || m->growth_per_step > s->mem_growth)) {
			s->mem_growth = m->growth_per_step;
			s->has_growth = true;
		}
	}
	if (np) {
		qsort(pk, np, sizeof *pk, cmp_i64);
		s->mem_peak_median = pk[(np - 1) / 2] + (pk[np / 2] - pk[(np - 1) / 2]) / 2;
	}
	free(pk);
	return total;
}

/* Whether the runs share a step_num (they need not: the step times are compared as samples). */
static bool common_step(const struct rp_host_report *a, size_t na, const struct rp_host_report *b, size_t nb)
{
	size_t n = 0;
	for (size_t i = 0; i < na; i++)
		n += a[i].steps.n;
	int64_t *v = rp_xmalloc((n ? n : 1) * sizeof *v);
	n = 0;
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < a[i].steps.n; j++)
			v[n++] = a[i].steps.v[j].step_num;
	qsort(v, n, sizeof *v, cmp_i64);
	bool found = false;
	for (size_t i = 0; i < nb && !found; i++)
		for (size_t j = 0; j < b[i].steps.n && !found; j++)
			found = bsearch(&b[i].steps.v[j].step_num, v, n, sizeof *v, cmp_i64) != NULL;
	free(v);
	return found;
}

int rp_diff_compute(const struct rp_host_report *base, size_t nbase, const struct rp_host_report *new,
		    size_t nnew, struct rp_diff *d, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	if (nbase != nnew) {
		snprintf(err, errlen,
			 "BASE has %zu host%s and NEW %zu: compare runs of the same job, or one host's "
			 "files (--diff BASE/HOST.xplane.pb NEW/HOST.xplane.pb)",
			 nbase, nbase == 1 ? "" : "s", nnew);
		return -1;
	}
	const struct rp_host_report *h[2] = { base, new };
	size_t n[2] = { nbase, nnew };
	int64_t *t[2];
	for (int s = 0; s < 2; s++)
		pool(h[s], n[s], &d->side[s], &t[s]);
	for (int s = 0; s < 2; s++)
		if (!d->side[s].nsteps) {
			snprintf(err, errlen,
				 "%s has no steps (no host event on /host:CPU with a step_num stat), so there is "
				 "no step time to compare: mark each step, e.g. Trace(\"train\", step_num=i, _r=1)",
				 s ? "NEW" : "BASE");
			free(t[0]);
			free(t[1]);
			return -1;
		}
	d->common_steps = common_step(base, nbase, new, nnew);
	d->median_change_pct = d->side[0].median > 0
				       ? 100.0 * ((double)d->side[1].median / (double)d->side[0].median - 1.0)
				       : 0.0;
	if (d->side[0].nsteps >= RP_DIFF_MIN_STEPS && d->side[1].nsteps >= RP_DIFF_MIN_STEPS)
		bootstrap(t[0], d->side[0].nsteps, t[1], d->side[1].nsteps, d);
	if (d->ci_valid)
		d->direction = d->ci_low_pct > 0 ? 1 : d->ci_high_pct < 0 ? -1 : 0;
	free(t[0]);
	free(t[1]);

	struct totals k = { 0 }, sc = { 0 };
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < n[s]; i++) {
			kernels(&h[s][i], s, &k);
			host_scopes(&h[s][i], s, &sc);
		}
	add_rows(d, &k, false);
	add_rows(d, &sc, true);
	totals_free(&k);
	totals_free(&sc);
	if (d->nrows)
		qsort(d->rows, d->nrows, sizeof *d->rows, cmp_row);
	return 0;
}

int rp_diff_gate(const struct rp_diff *d, double fail_pct, char *err, size_t errlen)
{
	if (fail_pct < 0)
		return RP_EXIT_OK;
	if (!d->ci_valid) {
		snprintf(err, errlen,
			 "--fail-if-slower needs at least %d steps in each run to tell a slowdown from noise "
			 "(BASE has %zu, NEW %zu): profile more steps",
			 RP_DIFF_MIN_STEPS, d->side[0].nsteps, d->side[1].nsteps);
		return RP_EXIT_BAD_INPUT;
	}
	return d->ci_low_pct > fail_pct ? RP_EXIT_SLOWER : RP_EXIT_OK;
}

void rp_diff_free(struct rp_diff *d)
{
	for (size_t i = 0; i < d->nrows; i++)
		free((char *)d->rows[i].name);
	free(d->rows);
	memset(d, 0, sizeof *d);
}
