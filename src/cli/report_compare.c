/* SPDX-License-Identifier: Apache-2.0 */
/* The cross-host step comparison of tfprof-report: for every step that at least two hosts ran,
 * matched by step_num and occurrence (the second step 0 of one host is compared with the second
 * step 0 of the others, so epochs that restart step numbers line up), which host took longest (its host wall time) and how far apart the fastest and slowest
 * were. In synchronous data-parallel training every host waits for the slowest one, so a host
 * that is often slowest is the one to look at. It also holds rp_analyze, which runs every
 * analysis in order, so that the CLI and the fuzz target cannot drift apart. */
#include <stdlib.h>
#include <string.h>

#include "report.h"

struct entry {
	int64_t step_num, time, peak;
	int32_t occurrence;
	size_t host;
};

/* By occurrence first: with epochs that restart step numbers this is the order the steps ran. */
static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->occurrence != y->occurrence)
		return x->occurrence < y->occurrence ? -1 : 1;
	if (x->step_num != y->step_num)
		return x->step_num < y->step_num ? -1 : 1;
	return x->host < y->host ? -1 : x->host > y->host;
}

void rp_compare_hosts(const struct rp_host_report *h, size_t n, struct rp_cross *out)
{
	memset(out, 0, sizeof *out);
	if (n < 2)
		return;
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += h[i].steps.n;
	struct entry *e = rp_xmalloc(total * sizeof *e);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		/* The memory analysis has a row per step when the host has memory events. */
		bool mem = h[i].mem.nevents && h[i].mem.nsteps == h[i].steps.n;
		out->memory |= mem;
		for (size_t j = 0; j < h[i].steps.n; j++)
			e[k++] = (struct entry){ h[i].steps.v[j].step_num,
						 h[i].steps.v[j].end - h[i].steps.v[j].start,
						 mem ? h[i].mem.steps[j].peak : 0, h[i].steps.v[j].occurrence, i };
	}
	qsort(e, k, sizeof *e, cmp_entry);
	uint64_t *slowest_count = rp_xcalloc(n, sizeof *slowest_count);
	out->v = rp_xmalloc(k * sizeof *out->v);
	for (size_t i = 0; i < k;) {
		size_t j = i;
		struct rp_cross_step c = { .step_num = e[i].step_num, .occurrence = e[i].occurrence,
					   .slowest = e[i].host,
					   .fastest_time = e[i].time, .slowest_time = e[i].time,
					   .peak_min = e[i].peak, .peak_max = e[i].peak, .peak_host = e[i].host };
		for (; j < k && e[j].step_num == e[i].step_num && e[j].occurrence == e[i].occurrence; j++) {
			c.nhosts++;
			if (e[j].peak > c.peak_max) {
				c.peak_max = e[j].peak;
				c.peak_host = e[j].host;
			}
			if (e[j].peak < c.peak_min)
				c.peak_min = e[j].peak;
			if (e[j].time > c.slowest_time) {
				c.slowest_time = e[j].time;
				c.slowest = e[j].host;
			}
			if (e[j].time < c.fastest_time)
				c.fastest_time = e[j].time;
		}
		if (c.nhosts >= 2) {
			out->repeats |= c.occurrence > 0;
			out->v[out->n++] = c;
			slowest_count[c.slowest]++;
		}
		i = j;
	}
	for (size_t i = 0; i < n; i++)
		if (slowest_count[i] > out->slowest_count_max) {
			out->slowest_count_max = slowest_count[i];
			out->most_often_slowest = i;
		}
	free(slowest_count);
	free(e);
}

void rp_cross_free(struct rp_cross *c)
{
	free(c->v);
	memset(c, 0, sizeof *c);
}

struct rp_host_report *rp_analyze(const struct rp_inputs *in, struct rp_cross *cross)
{
	struct rp_host_report *h = rp_xcalloc(in->n ? in->n : 1, sizeof *h);
	for (size_t i = 0; i < in->n; i++) {
		h[i].in = &in->v[i];
		rp_device_collect(in->v[i].space, &h[i].dev);
		rp_steps_analyze(in->v[i].space, &h[i].dev, &h[i].steps);
		rp_kernels_summarize(&h[i].dev, &h[i].kernels);
		rp_memory_analyze(in->v[i].space, &h[i].steps, &h[i].mem);
	}
	rp_compare_hosts(h, in->n, cross);
	return h;
}

void rp_analysis_free(struct rp_host_report *h, size_t n, struct rp_cross *cross)
{
	rp_cross_free(cross);
	for (size_t i = 0; i < n; i++) {
		rp_memory_free(&h[i].mem);
		rp_kernels_free(&h[i].kernels);
		rp_steps_free(&h[i].steps);
		rp_device_free(&h[i].dev);
	}
	free(h);
}
