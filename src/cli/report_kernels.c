/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel summary of tfprof-report (like `nsys stats`' cuda_gpu_kern_sum): per demangled
 * kernel name its count, total, mean, min and max time and its share of all kernel time; and the
 * copy summary: memcpys by direction and memsets, with bytes and times. */
#include <stdlib.h>
#include <string.h>

#include "report.h"

static int cmp_row(const void *a, const void *b)
{
	const struct rp_kernel_row *x = a, *y = b;
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	/* Equal totals: by name, so that the order does not depend on the file's. */
	return strcmp(x->name, y->name);
}

static void add_time(int64_t d, uint64_t *count, int64_t *total, int64_t *min, int64_t *max)
{
	if (!*count || d < *min)
		*min = d;
	if (!*count || d > *max)
		*max = d;
	(*count)++;
	*total = rp_sat_add(*total, d);
}

void rp_kernels_summarize(const struct rp_device *dev, struct rp_kernels *out)
{
	memset(out, 0, sizeof *out);
	/* Kernel name ids are dense, so rows are indexed by them and compacted afterwards. */
	struct rp_kernel_row *rows = rp_xcalloc(dev->names.n, sizeof *rows);
	for (size_t i = 0; i < dev->n; i++) {
		const struct rp_dev_event *d = &dev->ev[i];
		int64_t dur = d->end - d->start;
		if (d->kind == RP_KERNEL) {
			struct rp_kernel_row *r = &rows[d->name];
			add_time(dur, &r->count, &r->total, &r->min, &r->max);
			out->total = rp_sat_add(out->total, dur);
		} else {
			struct rp_copy_row *c = &out->copies[d->copy_kind];
			add_time(dur, &c->count, &c->total, &c->min, &c->max);
			c->bytes += d->bytes;
		}
	}
	size_t n = 0;
	for (size_t i = 0; i < dev->names.n; i++)
		if (rows[i].count) {
			rows[i].name = dev->names.s[i];
			rows[n++] = rows[i];
		}
	qsort(rows, n, sizeof *rows, cmp_row);
	out->v = rows;
	out->n = n;
}

void rp_kernels_free(struct rp_kernels *k)
{
	free(k->v);
	memset(k, 0, sizeof *k);
}
