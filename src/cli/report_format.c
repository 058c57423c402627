/* SPDX-License-Identifier: Apache-2.0 */
/* Prints tfprof-report's tables: aligned text that fits the requested width (100 columns by
 * default; long names are shortened, long sentences wrapped), CSV (one section per table,
 * separated by a blank line and a "# section" line unless only one section was asked for) and
 * JSON (one object; times as integer nanoseconds so that scripts can compare them exactly). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

struct out {
	FILE *f;
	const struct rp_format_opts *o;
};

static double ms(int64_t ps)
{
	return (double)ps / 1e9;
}

static double us(int64_t ps)
{
	return (double)ps / 1e6;
}

static int64_t ns(int64_t ps)
{
	return ps / 1000;
}

/* Memory in MiB (2^20 bytes): allocators hand out power-of-two sizes, so MiB shows them whole. */
static double mib(double bytes)
{
	return bytes / 1048576.0;
}

static double pct(int64_t part, int64_t whole)
{
	return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

/* ---- text -------------------------------------------------------------------------------- */

/* Copies s into buf shortened to at most w columns ("..." marks the cut). Counts bytes, which
 * equals columns for the ASCII names kernels and hosts have; a cut never splits a UTF-8
 * sequence. */
static const char *fit(char *buf, size_t cap, const char *s, int w)
{
	size_t n = strlen(s);
	if (w < 4)
		w = 4;
	if (n <= (size_t)w && n < cap) {
		memcpy(buf, s, n + 1);
		return buf;
	}
	size_t keep = (size_t)w - 3 < cap - 4 ? (size_t)w - 3 : cap - 4;
	while (keep && ((unsigned char)s[keep] & 0xc0) == 0x80)
		keep--;
	memcpy(buf, s, keep);
	memcpy(buf + keep, "...", 4);
	return buf;
}

/* Prints text wrapped at the width, continuation lines indented by indent spaces. */
static void wrap(struct out *o, int indent, const char *fmt, ...)
{
	char text[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	int width = o->o->width, col = 0;
	const char *p = text;
	bool first = true;
	/* Leading spaces are the first line's indentation. */
	while (*p == ' ') {
		fputc(' ', o->f);
		col++;
		p++;
	}
	while (*p) {
		size_t wl = strcspn(p, " ");
		if (!first && col + 1 + (int)wl > width) {
			fprintf(o->f, "\n%*s", indent, "");
			col = indent;
			first = true;
		}
		if (!first) {
			fputc(' ', o->f);
			col++;
		}
		if (col + (int)wl > width && wl > 3) {
			/* A single word longer than the line (a path): shorten it. */
			char buf[4096], word[4096];
			size_t k = wl < sizeof word - 1 ? wl : sizeof word - 1;
			memcpy(word, p, k);
			word[k] = '\0';
			fputs(fit(buf, sizeof buf, word, width - col), o->f);
			col = width;
		} else {
			fwrite(p, 1, wl, o->f);
			col += (int)wl;
		}
		first = false;
		p += wl;
		while (*p == ' ')
			p++;
	}
	fputc('\n', o->f);
}

static void text_messages(struct out *o, const XSpace *s)
{
	for (size_t i = 0; i < s->n_errors; i++)
		wrap(o, 4, "  error in profile: %s", s->errors[i]);
	for (size_t i = 0; i < s->n_warnings; i++)
		wrap(o, 4, "  warning in profile: %s", s->warnings[i]);
}

/* A step's name in the text tables: its step_num, or occ:step when step numbers repeat. */
static const char *step_label(char *buf, size_t cap, int64_t step_num, int32_t occurrence, bool repeats)
{
	if (repeats)
		snprintf(buf, cap, "%" PRId32 ":%" PRId64, occurrence, step_num);
	else
		snprintf(buf, cap, "%" PRId64, step_num);
	return buf;
}

static void text_steps(struct out *o, const struct rp_host_report *h)
{
	const struct rp_steps *st = &h->steps;
	if (!st->n) {
		wrap(o, 2, "No steps: no host event on /host:CPU has a step_num stat. Mark each step, e.g. "
			   "TFPROF_SCOPE(\"train\", TFPROF_I64(\"step_num\", i)) in C or "
			   "tf.profiler.experimental.Trace(\"train\", step_num=i, _r=1) in TensorFlow.");
		return;
	}
	fprintf(o->f, "Steps in time order (ms; busy = union of the step's kernels, copies and memsets on all "
		      "GPUs)\n");
	/* Repeated step numbers (epochs that restart them) are shown as occ:step, so that no row is
	 * ambiguous; runs without repeats keep the table as it was. */
	if (st->repeats)
		wrap(o, 2, "Step numbers repeat: occ:step, where occ = how many earlier steps had the same "
			   "step_num (the epoch, counted from 0, when each epoch restarts them).");
	fprintf(o->f, "%8s %9s %9s %6s %9s %7s %8s %8s %8s %8s %8s", st->repeats ? "occ:step" : "step", "wall", "dev busy", "busy%",
		"dev idle", "kernels", "H2D MB", "H2D ms", "D2H MB", "D2H ms", "launch");
	fputc('\n', o->f);
	for (size_t i = 0; i < st->n; i++) {
		const struct rp_step *s = &st->v[i];
		int64_t wall = s->end - s->start;
		char label[48];
		fprintf(o->f, "%8s %9.3f %9.3f %6.1f %9.3f %7" PRIu64 " %8.3f %8.3f %8.3f %8.3f %8.3f",
			step_label(label, sizeof label, s->step_num, s->occurrence, st->repeats), ms(wall), ms(s->device_busy), pct(s->device_busy, wall), ms(s->device_idle),
			s->kernels, (double)s->h2d_bytes / 1e6, ms(s->h2d_time), (double)s->d2h_bytes / 1e6,
			ms(s->d2h_time), ms(s->launch_time));
		fputc('\n', o->f);
	}
	/* The memory columns continue the step table in a second block with the same step labels:
	 * beside the others they would not fit the default 100 columns. It appears only for
	 * profiles with memory events, so that every other report stays as it was. */
	const struct rp_memory *m = &h->mem;
	if (!m->nevents || m->nsteps != st->n)
		return;
	fprintf(o->f, "GPU memory per step (MiB = 2^20 bytes; device memory, all GPUs)\n");
	fprintf(o->f, "%8s %10s %10s %10s %10s\n", st->repeats ? "occ:step" : "step", "peak", "allocated", "freed",
		"at end");
	for (size_t i = 0; i < st->n; i++) {
		const struct rp_step *s = &st->v[i];
		const struct rp_mem_step *ms = &m->steps[i];
		char label[48];
		fprintf(o->f, "%8s %10.3f %10.3f %10.3f %10.3f\n",
			step_label(label, sizeof label, s->step_num, s->occurrence, st->repeats), mib((double)ms->peak),
			mib((double)ms->allocated), mib((double)ms->freed), mib((double)ms->end_in_use));
	}
}

static void text_summary(struct out *o, const struct rp_host_report *h)
{
	const struct rp_summary *s = &h->steps.sum;
	if (!s->nsteps)
		return;
	fprintf(o->f, "Summary over %zu step%s\n", s->nsteps, s->nsteps == 1 ? "" : "s");
	wrap(o, 4, "  step time: mean %.3f ms, median %.3f ms, p90 %.3f ms (min %.3f, max %.3f)", ms(s->mean),
	     ms(s->median), ms(s->p90), ms(s->min), ms(s->max));
	wrap(o, 4, "  of step time: device busy %.1f%%, device idle %.1f%%, CUDA launch calls %.1f%%, "
		   "input %.1f%%",
	     pct(s->busy, s->wall), pct(s->idle, s->wall), pct(s->launch, s->wall), pct(s->input, s->wall));
	wrap(o, 4, "  verdict: %s", rp_verdict_names[s->verdict]);
	wrap(o, 4, "  rule: %s", RP_VERDICT_RULE "; " RP_INPUT_RULE ".");
	const struct rp_attribution *a = &h->steps.attr;
	if (h->dev.n)
		wrap(o, 4, "  device work per step found by: step_num stat %" PRIu64 ", launch in step scope %" PRIu64
			   ", launch time %" PRIu64 ", not attributed %" PRIu64,
		     a->by_stat, a->by_launch_scope, a->by_launch_time, a->none);
}

static void text_mem_rows(struct out *o, const struct rp_memory *m, const struct rp_mem_row *v, size_t n)
{
	size_t top = o->o->top ? o->o->top : 10;
	if (top > n)
		top = n;
	int scopew = o->o->width - 76;
	fprintf(o->f, "    %10s %-16s %-21s %18s  %s\n", "MiB", "allocator", "region", "address", "scope");
	for (size_t i = 0; i < top; i++) {
		char a[64], r[64], sc[512];
		const char *scope = rp_memory_str(m, v[i].scope);
		fprintf(o->f, "    %10.3f %-16s %-21s %#18" PRIx64 "  %s\n", mib((double)v[i].bytes),
			fit(a, sizeof a, rp_memory_str(m, v[i].allocator), 16),
			fit(r, sizeof r, rp_memory_str(m, v[i].region), 21), v[i].addr,
			fit(sc, sizeof sc, *scope ? scope : "(no scope)", scopew));
	}
}

static void text_memory(struct out *o, const struct rp_host_report *h)
{
	const struct rp_memory *m = &h->mem;
	if (!m->nevents)
		return;
	size_t top = o->o->top ? o->o->top : 10;
	fprintf(o->f, "GPU memory (MiB = 2^20 bytes)\n");
	wrap(o, 4, "  %" PRIu64 " allocations, %" PRIu64 " releases; peak device memory in use %.3f MiB at %.3f ms",
	     m->allocations, m->releases, mib((double)m->peak), ms(m->peak_time));
	if (m->has_growth)
		wrap(o, 4, "  in use at step end grows by %.3f MiB per step (least-squares slope over %zu steps)",
		     mib(m->growth_per_step), m->nsteps);
	if (m->unmatched)
		wrap(o, 4, "  %" PRIu64 " release%s without an allocation in the profile (allocated before it "
			   "began): counted, no total changed",
		     m->unmatched, m->unmatched == 1 ? "" : "s");
	if (m->corrupt)
		wrap(o, 4, "  %" PRIu64 " unusable memory stat value%s (negative or not a number) ignored", m->corrupt,
		     m->corrupt == 1 ? "" : "s");
	wrap(o, 4, "  rule: %s.", RP_MEMORY_RULE);
	wrap(o, 4, "  Largest device allocations live at the peak (%zu of %zu, %.3f MiB of the %.3f MiB in use):",
	     top < m->n_at_peak ? top : m->n_at_peak, m->n_at_peak, mib((double)m->peak_live_bytes),
	     mib((double)m->peak));
	text_mem_rows(o, m, m->at_peak, m->n_at_peak);
	wrap(o, 4, "  Live at stop: %zu allocation%s, %.3f MiB (largest %zu, every kind):", m->n_at_stop,
	     m->n_at_stop == 1 ? "" : "s", mib((double)m->stop_bytes), top < m->n_at_stop ? top : m->n_at_stop);
	text_mem_rows(o, m, m->at_stop, m->n_at_stop);
}

static void text_kernels(struct out *o, const struct rp_host_report *h)
{
	const struct rp_kernels *k = &h->kernels;
	if (!k->n) {
		fprintf(o->f, "Kernels: none in this profile\n");
		return;
	}
	size_t top = o->o->top ? o->o->top : 20;
	if (top > k->n)
		top = k->n;
	fprintf(o->f, "Top kernels (%zu of %zu, by total time; %.3f ms of kernel time in all)\n", top, k->n,
		ms(k->total));
	int namew = o->o->width - 58;
	fprintf(o->f, "%6s %10s %8s %9s %9s %9s  %s\n", "time%", "total ms", "count", "mean us", "min us",
		"max us", "name");
	for (size_t i = 0; i < top; i++) {
		const struct rp_kernel_row *r = &k->v[i];
		char buf[512];
		fprintf(o->f, "%6.1f %10.3f %8" PRIu64 " %9.3f %9.3f %9.3f  %s\n", pct(r->total, k->total),
			ms(r->total), r->count, us(r->total) / (double)r->count, us(r->min), us(r->max),
			fit(buf, sizeof buf, r->name, namew));
	}
}

static void text_copies(struct out *o, const struct rp_host_report *h)
{
	const struct rp_kernels *k = &h->kernels;
	bool any = false;
	for (int i = 0; i < RP_NCOPY; i++)
		any |= k->copies[i].count > 0;
	if (!any) {
		fprintf(o->f, "Copies and memsets: none in this profile\n");
		return;
	}
	fprintf(o->f, "Copies and memsets\n");
	fprintf(o->f, "%-10s %8s %10s %10s %9s %9s %9s %8s\n", "kind", "count", "total MB", "total ms",
		"mean us", "min us", "max us", "GB/s");
	for (int i = 0; i < RP_NCOPY; i++) {
		const struct rp_copy_row *c = &k->copies[i];
		if (!c->count)
			continue;
		fprintf(o->f, "%-10s %8" PRIu64 " %10.3f %10.3f %9.3f %9.3f %9.3f %8.2f\n", rp_copy_kind_names[i],
			c->count, (double)c->bytes / 1e6, ms(c->total), us(c->total) / (double)c->count,
			us(c->min), us(c->max), c->total > 0 ? (double)c->bytes / ((double)c->total / 1e3) : 0.0);
	}
}

static void text_cross(struct out *o, const struct rp_host_report *h, size_t n, const struct rp_cross *c)
{
	char buf[512];
	fprintf(o->f, "\n== Across %zu hosts ==\n", n);
	if (!c->n) {
		fprintf(o->f, "No step ran on two or more hosts, so there is nothing to compare.\n");
		return;
	}
	fprintf(o->f, "Step time per host (ms; spread = slowest - fastest)\n");
	int hostw = o->o->width - 54;
	if (c->repeats)
		wrap(o, 2, "Hosts are matched by step_num and occurrence (occ:step; occ = earlier steps with that "
			   "step_num).");
	/* With memory events the step's device memory peak on its lowest and highest host comes
	 * before the host name, which stays last because it is the one column of any width. */
	if (c->memory) {
		hostw -= 22;
		wrap(o, 2, "peak lo / hi: the step's peak device memory (MiB) on the host with the least and "
			   "the most; a host without memory events counts as 0.");
	}
	fprintf(o->f, "%8s %5s %9s %9s %9s %7s", c->repeats ? "occ:step" : "step", "hosts", "fastest", "slowest", "spread",
		"spread%");
	if (c->memory)
		fprintf(o->f, " %10s %10s", "peak lo", "peak hi");
	fprintf(o->f, "  %s\n", "slowest host");
	for (size_t i = 0; i < c->n; i++) {
		const struct rp_cross_step *s = &c->v[i];
		char label[48];
		fprintf(o->f, "%8s %5zu %9.3f %9.3f %9.3f %7.1f",
			step_label(label, sizeof label, s->step_num, s->occurrence, c->repeats), s->nhosts,
			ms(s->fastest_time), ms(s->slowest_time), ms(s->slowest_time - s->fastest_time),
			pct(s->slowest_time - s->fastest_time, s->fastest_time));
		if (c->memory)
			fprintf(o->f, " %10.3f %10.3f", mib((double)s->peak_min), mib((double)s->peak_max));
		fprintf(o->f, "  %s\n", fit(buf, sizeof buf, h[s->slowest].in->host, hostw));
	}
	wrap(o, 2, "Slowest most often: %s (%" PRIu64 " of %zu steps)", h[c->most_often_slowest].in->host,
	     c->slowest_count_max, c->n);
}

static void format_text(struct out *o, const struct rp_inputs *in, const struct rp_host_report *h, size_t n,
			const struct rp_cross *c)
{
	unsigned sec = o->o->sections;
	wrap(o, 2, "tfprof-report: %s%s%s", in->run_dir ? in->run_dir : in->v[0].path,
	     in->note ? " - " : "", in->note ? in->note : "");
	for (size_t i = 0; i < n; i++) {
		const struct rp_host_report *r = &h[i];
		fprintf(o->f, "\n");
		wrap(o, 2, "== Host %s: %zu GPU plane%s, %zu device event%s, %zu step%s ==", r->in->host,
		     r->dev.nplanes, r->dev.nplanes == 1 ? "" : "s", r->dev.n, r->dev.n == 1 ? "" : "s",
		     r->steps.n, r->steps.n == 1 ? "" : "s");
		if (n > 1 || !in->run_dir)
			wrap(o, 2, "file: %s", r->in->path);
		text_messages(o, r->in->space->hdr);
		if (!r->steps.has_host_plane)
			wrap(o, 2, "No /host:CPU plane: this profile has no host events, so it has no steps.");
		if (sec & RP_SEC_STEPS)
			text_steps(o, r);
		if (sec & RP_SEC_SUMMARY) {
			text_summary(o, r);
			text_memory(o, r);
		}
		if (sec & RP_SEC_KERNELS)
			text_kernels(o, r);
		if (sec & RP_SEC_COPIES)
			text_copies(o, r);
	}
	if ((sec & RP_SEC_HOSTS) && n > 1)
		text_cross(o, h, n, c);
}

/* ---- CSV --------------------------------------------------------------------------------- */

static void csv_str(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\n\r")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static bool one_section(unsigned s)
{
	return s && !(s & (s - 1));
}

static void csv_header(struct out *o, bool *first, const char *name, const char *cols)
{
	if (!*first)
		fputc('\n', o->f);
	*first = false;
	if (!one_section(o->o->sections))
		fprintf(o->f, "# %s\n", name);
	fprintf(o->f, "%s\n", cols);
}

/* The memory rows of one host in the CSV "memory" section: live at the peak (device memory) and
 * live at stop (every kind), o->top of each unless it is 0. */
static void csv_mem_rows(struct out *o, const struct rp_host_report *h, const char *when, const struct rp_mem_row *v,
			 size_t n)
{
	size_t top = o->o->top && o->o->top < n ? o->o->top : n;
	for (size_t i = 0; i < top; i++) {
		csv_str(o->f, h->in->host);
		fprintf(o->f, ",%s,%" PRIu64 ",", when, v[i].bytes);
		csv_str(o->f, rp_memory_str(&h->mem, v[i].allocator));
		fputc(',', o->f);
		csv_str(o->f, rp_memory_str(&h->mem, v[i].region));
		fprintf(o->f, ",%#" PRIx64 ",%" PRId64 ",", v[i].addr, ns(v[i].time));
		csv_str(o->f, rp_memory_str(&h->mem, v[i].scope));
		fputc('\n', o->f);
	}
}

static void format_csv(struct out *o, const struct rp_host_report *h, size_t n, const struct rp_cross *c)
{
	unsigned sec = o->o->sections;
	bool first = true;
	/* Memory columns only when some host has memory events, so that other profiles' CSV keeps
	 * its columns; a host without them then gets empty fields. */
	bool any_mem = false;
	for (size_t i = 0; i < n; i++)
		any_mem |= h[i].mem.nevents > 0;
	if (sec & RP_SEC_STEPS) {
		csv_header(o, &first, "steps",
			   any_mem ? "host,step,occurrence,wall_ns,device_busy_ns,device_busy_pct,device_idle_ns,kernels,memcpys,"
				     "memsets,h2d_bytes,h2d_ns,d2h_bytes,d2h_ns,launches,launch_ns,input_ns,"
				     "mem_peak_bytes,mem_allocated_bytes,mem_freed_bytes,mem_end_in_use_bytes"
				   : "host,step,occurrence,wall_ns,device_busy_ns,device_busy_pct,device_idle_ns,kernels,memcpys,"
				     "memsets,h2d_bytes,h2d_ns,d2h_bytes,d2h_ns,launches,launch_ns,input_ns");
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < h[i].steps.n; j++) {
				const struct rp_step *s = &h[i].steps.v[j];
				csv_str(o->f, h[i].in->host);
				fprintf(o->f,
					",%" PRId64 ",%" PRId32 ",%" PRId64 ",%" PRId64 ",%.2f,%" PRId64 ",%" PRIu64
					",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%" PRIu64 ",%" PRId64
					",%" PRIu64 ",%" PRId64 ",%" PRId64,
					s->step_num, s->occurrence, ns(s->end - s->start), ns(s->device_busy),
					pct(s->device_busy, s->end - s->start), ns(s->device_idle), s->kernels,
					s->memcpys, s->memsets, s->h2d_bytes, ns(s->h2d_time), s->d2h_bytes,
					ns(s->d2h_time), s->launches, ns(s->launch_time), ns(s->input_time));
				const struct rp_memory *m = &h[i].mem;
				if (any_mem && m->nevents && m->nsteps == h[i].steps.n)
					fprintf(o->f, ",%" PRId64 ",%" PRIu64 ",%" PRIu64 ",%" PRId64, m->steps[j].peak,
						m->steps[j].allocated, m->steps[j].freed, m->steps[j].end_in_use);
				else if (any_mem)
					fputs(",,,,", o->f);
				fputc('\n', o->f);
			}
	}
	if (sec & RP_SEC_SUMMARY) {
		csv_header(o, &first, "summary",
			   "host,steps,mean_ns,median_ns,p90_ns,min_ns,max_ns,device_busy_pct,device_idle_pct,"
			   "launch_pct,input_pct,verdict,rule");
		for (size_t i = 0; i < n; i++) {
			const struct rp_summary *s = &h[i].steps.sum;
			csv_str(o->f, h[i].in->host);
			fprintf(o->f,
				",%zu,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
				",%.2f,%.2f,%.2f,%.2f,",
				s->nsteps, ns(s->mean), ns(s->median), ns(s->p90), ns(s->min), ns(s->max),
				pct(s->busy, s->wall), pct(s->idle, s->wall), pct(s->launch, s->wall),
				pct(s->input, s->wall));
			csv_str(o->f, rp_verdict_names[s->verdict]);
			fputc(',', o->f);
			csv_str(o->f, RP_VERDICT_RULE);
			fputc('\n', o->f);
		}
	}
	if ((sec & RP_SEC_SUMMARY) && any_mem) {
		csv_header(o, &first, "memory",
			   "host,allocations,releases,unmatched_releases,corrupt_values,peak_bytes,peak_ns,"
			   "growth_bytes_per_step,live_at_stop,live_at_stop_bytes");
		for (size_t i = 0; i < n; i++) {
			const struct rp_memory *m = &h[i].mem;
			if (!m->nevents)
				continue;
			csv_str(o->f, h[i].in->host);
			fprintf(o->f, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%" PRId64 ",",
				m->allocations, m->releases, m->unmatched, m->corrupt, m->peak, ns(m->peak_time));
			if (m->has_growth)
				fprintf(o->f, "%.1f", m->growth_per_step);
			fprintf(o->f, ",%zu,%" PRIu64 "\n", m->n_at_stop, m->stop_bytes);
		}
		csv_header(o, &first, "memory_live", "host,when,bytes,allocator,region,address,allocated_ns,scope");
		for (size_t i = 0; i < n; i++) {
			csv_mem_rows(o, &h[i], "at_peak", h[i].mem.at_peak, h[i].mem.n_at_peak);
			csv_mem_rows(o, &h[i], "at_stop", h[i].mem.at_stop, h[i].mem.n_at_stop);
		}
	}
	if (sec & RP_SEC_KERNELS) {
		csv_header(o, &first, "kernels", "host,name,count,total_ns,mean_ns,min_ns,max_ns,time_pct");
		for (size_t i = 0; i < n; i++) {
			const struct rp_kernels *k = &h[i].kernels;
			size_t top = o->o->top && o->o->top < k->n ? o->o->top : k->n;
			for (size_t j = 0; j < top; j++) {
				const struct rp_kernel_row *r = &k->v[j];
				csv_str(o->f, h[i].in->host);
				fputc(',', o->f);
				csv_str(o->f, r->name);
				fprintf(o->f, ",%" PRIu64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%.2f\n",
					r->count, ns(r->total), ns(r->total) / (int64_t)r->count, ns(r->min),
					ns(r->max), pct(r->total, k->total));
			}
		}
	}
	if (sec & RP_SEC_COPIES) {
		csv_header(o, &first, "copies", "host,kind,count,bytes,total_ns,mean_ns,min_ns,max_ns");
		for (size_t i = 0; i < n; i++)
			for (int j = 0; j < RP_NCOPY; j++) {
				const struct rp_copy_row *r = &h[i].kernels.copies[j];
				if (!r->count)
					continue;
				csv_str(o->f, h[i].in->host);
				fprintf(o->f, ",%s,%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "\n",
					rp_copy_kind_names[j], r->count, r->bytes, ns(r->total),
					ns(r->total) / (int64_t)r->count, ns(r->min), ns(r->max));
			}
	}
	if (sec & RP_SEC_HOSTS) {
		csv_header(o, &first, "hosts",
			   c->memory ? "step,occurrence,hosts,fastest_ns,slowest_ns,spread_ns,slowest_host,mem_peak_min_bytes,"
				       "mem_peak_max_bytes,mem_peak_max_host"
				     : "step,occurrence,hosts,fastest_ns,slowest_ns,spread_ns,slowest_host");
		for (size_t i = 0; i < c->n; i++) {
			const struct rp_cross_step *s = &c->v[i];
			fprintf(o->f, "%" PRId64 ",%" PRId32 ",%zu,%" PRId64 ",%" PRId64 ",%" PRId64 ",", s->step_num,
				s->occurrence, s->nhosts,
				ns(s->fastest_time), ns(s->slowest_time), ns(s->slowest_time - s->fastest_time));
			csv_str(o->f, h[s->slowest].in->host);
			if (c->memory) {
				fprintf(o->f, ",%" PRId64 ",%" PRId64 ",", s->peak_min, s->peak_max);
				csv_str(o->f, h[s->peak_host].in->host);
			}
			fputc('\n', o->f);
		}
	}
}

/* ---- JSON -------------------------------------------------------------------------------- */

/* A JSON string; bytes that are not UTF-8 (a profile's strings are not checked by the reader)
 * become U+FFFD so that the output always parses. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		/* Plain ASCII goes out in runs: one write per character costs a stream lock each, and
		 * names are most of a Chrome trace's bytes. */
		const unsigned char *run = p;
		while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			fwrite(run, 1, (size_t)(p - run), f);
		if (!*p)
			break;
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p++);
		} else {
			size_t n = rp_utf8_len(p);
			if (!n) {
				fputs("\\ufffd", f);
				p++;
			} else {
				fwrite(p, 1, n, f);
				p += n;
			}
		}
	}
	fputc('"', f);
}

void rp_json_str(FILE *f, const char *s)
{
	json_str(f, s);
}

void rp_csv_str(FILE *f, const char *s)
{
	csv_str(f, s);
}

const char *rp_fit(char *buf, size_t cap, const char *s, int w)
{
	return fit(buf, cap, s, w);
}

static void json_strs(FILE *f, char **v, size_t n)
{
	fputc('[', f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		json_str(f, v[i]);
	}
	fputc(']', f);
}

static void json_mem_rows(struct out *o, const struct rp_memory *m, const struct rp_mem_row *v, size_t n)
{
	FILE *f = o->f;
	size_t top = o->o->top && o->o->top < n ? o->o->top : n;
	fputc('[', f);
	for (size_t i = 0; i < top; i++) {
		fputs(i ? ",{\"scope\":" : "{\"scope\":", f);
		json_str(f, rp_memory_str(m, v[i].scope));
		fprintf(f, ",\"bytes\":%" PRIu64 ",\"allocator\":", v[i].bytes);
		json_str(f, rp_memory_str(m, v[i].allocator));
		fputs(",\"region\":", f);
		json_str(f, rp_memory_str(m, v[i].region));
		fprintf(f, ",\"address\":\"%#" PRIx64 "\",\"allocated_ns\":%" PRId64 "}", v[i].addr, ns(v[i].time));
	}
	fputc(']', f);
}

/* The host's "memory" object: present only when the profile has memory events. */
static void json_memory(struct out *o, const struct rp_host_report *h)
{
	FILE *f = o->f;
	const struct rp_memory *m = &h->mem;
	fprintf(f,
		",\"memory\":{\"events\":%zu,\"allocations\":%" PRIu64 ",\"releases\":%" PRIu64
		",\"unmatched_releases\":%" PRIu64 ",\"corrupt_values\":%" PRIu64 ",\"peak_bytes\":%" PRId64
		",\"peak_ns\":%" PRId64 ",\"growth_bytes_per_step\":",
		m->nevents, m->allocations, m->releases, m->unmatched, m->corrupt, m->peak, ns(m->peak_time));
	if (m->has_growth)
		fprintf(f, "%.1f", m->growth_per_step);
	else
		fputs("null", f);
	fputs(",\"growth_method\":\"least-squares slope of device memory in use at step end over the steps\""
	      ",\"rule\":", f);
	json_str(f, RP_MEMORY_RULE);
	fprintf(f, ",\"live_at_peak\":{\"count\":%zu,\"bytes\":%" PRIu64 ",\"rows\":", m->n_at_peak,
		m->peak_live_bytes);
	json_mem_rows(o, m, m->at_peak, m->n_at_peak);
	fprintf(f, "},\"live_at_stop\":{\"count\":%zu,\"bytes\":%" PRIu64 ",\"rows\":", m->n_at_stop, m->stop_bytes);
	json_mem_rows(o, m, m->at_stop, m->n_at_stop);
	fputs("}}", f);
}

static void json_host(struct out *o, const struct rp_host_report *h)
{
	FILE *f = o->f;
	unsigned sec = o->o->sections;
	const XSpace *sp = h->in->space->hdr;
	fputs("{\"host\":", f);
	json_str(f, h->in->host);
	fputs(",\"file\":", f);
	json_str(f, h->in->path);
	fputs(",\"hostnames\":", f);
	json_strs(f, sp->hostnames, sp->n_hostnames);
	fputs(",\"errors\":", f);
	json_strs(f, sp->errors, sp->n_errors);
	fputs(",\"warnings\":", f);
	json_strs(f, sp->warnings, sp->n_warnings);
	const struct rp_attribution *a = &h->steps.attr;
	fprintf(f,
		",\"has_host_plane\":%s,\"step_nums_repeat\":%s,\"gpu_planes\":%zu,\"device_events\":%zu,"
		"\"attribution\":{\"by_step_num_stat\":%" PRIu64 ",\"by_launch_scope\":%" PRIu64
		",\"by_launch_time\":%" PRIu64 ",\"unattributed\":%" PRIu64 "}",
		h->steps.has_host_plane ? "true" : "false", h->steps.repeats ? "true" : "false", h->dev.nplanes, h->dev.n, a->by_stat,
		a->by_launch_scope, a->by_launch_time, a->none);
	if (sec & RP_SEC_STEPS) {
		fputs(",\"steps\":[", f);
		for (size_t i = 0; i < h->steps.n; i++) {
			const struct rp_step *s = &h->steps.v[i];
			fprintf(f,
				"%s{\"step\":%" PRId64 ",\"occurrence\":%" PRId32 ",\"start_ns\":%" PRId64
				",\"wall_ns\":%" PRId64
				",\"device_busy_ns\":%" PRId64 ",\"device_busy_pct\":%.3f,\"device_idle_ns\":%" PRId64
				",\"kernels\":%" PRIu64 ",\"memcpys\":%" PRIu64 ",\"memsets\":%" PRIu64
				",\"h2d_bytes\":%" PRIu64 ",\"h2d_ns\":%" PRId64 ",\"d2h_bytes\":%" PRIu64
				",\"d2h_ns\":%" PRId64 ",\"launches\":%" PRIu64 ",\"launch_ns\":%" PRId64
				",\"input_ns\":%" PRId64,
				i ? "," : "", s->step_num, s->occurrence, ns(s->start), ns(s->end - s->start), ns(s->device_busy),
				pct(s->device_busy, s->end - s->start), ns(s->device_idle), s->kernels, s->memcpys,
				s->memsets, s->h2d_bytes, ns(s->h2d_time), s->d2h_bytes, ns(s->d2h_time),
				s->launches, ns(s->launch_time), ns(s->input_time));
			const struct rp_memory *m = &h->mem;
			if (m->nevents && m->nsteps == h->steps.n)
				fprintf(f,
					",\"mem_peak_bytes\":%" PRId64 ",\"mem_allocated_bytes\":%" PRIu64
					",\"mem_freed_bytes\":%" PRIu64 ",\"mem_end_in_use_bytes\":%" PRId64,
					m->steps[i].peak, m->steps[i].allocated, m->steps[i].freed, m->steps[i].end_in_use);
			fputc('}', f);
		}
		fputc(']', f);
	}
	if (sec & RP_SEC_SUMMARY) {
		const struct rp_summary *s = &h->steps.sum;
		fputs(",\"summary\":", f);
		if (!s->nsteps) {
			fputs("null", f);
		} else {
			fprintf(f,
				"{\"steps\":%zu,\"mean_ns\":%" PRId64 ",\"median_ns\":%" PRId64 ",\"p90_ns\":%" PRId64
				",\"min_ns\":%" PRId64 ",\"max_ns\":%" PRId64 ",\"wall_ns\":%" PRId64
				",\"device_busy_ns\":%" PRId64 ",\"device_idle_ns\":%" PRId64 ",\"launch_ns\":%" PRId64
				",\"input_ns\":%" PRId64 ",\"device_busy_pct\":%.3f,\"verdict\":",
				s->nsteps, ns(s->mean), ns(s->median), ns(s->p90), ns(s->min), ns(s->max), ns(s->wall),
				ns(s->busy), ns(s->idle), ns(s->launch), ns(s->input), pct(s->busy, s->wall));
			json_str(f, rp_verdict_names[s->verdict]);
			fputc('}', f);
		}
	}
	if ((sec & RP_SEC_SUMMARY) && h->mem.nevents)
		json_memory(o, h);
	if (sec & RP_SEC_KERNELS) {
		const struct rp_kernels *k = &h->kernels;
		size_t top = o->o->top && o->o->top < k->n ? o->o->top : k->n;
		fprintf(f, ",\"kernels\":{\"total_ns\":%" PRId64 ",\"distinct\":%zu,\"rows\":[", ns(k->total), k->n);
		for (size_t i = 0; i < top; i++) {
			const struct rp_kernel_row *r = &k->v[i];
			fputs(i ? ",{\"name\":" : "{\"name\":", f);
			json_str(f, r->name);
			fprintf(f,
				",\"count\":%" PRIu64 ",\"total_ns\":%" PRId64 ",\"mean_ns\":%" PRId64
				",\"min_ns\":%" PRId64 ",\"max_ns\":%" PRId64 ",\"time_pct\":%.3f}",
				r->count, ns(r->total), ns(r->total) / (int64_t)r->count, ns(r->min), ns(r->max),
				pct(r->total, k->total));
		}
		fputs("]}", f);
	}
	if (sec & RP_SEC_COPIES) {
		fputs(",\"copies\":[", f);
		bool first = true;
		for (int i = 0; i < RP_NCOPY; i++) {
			const struct rp_copy_row *r = &h->kernels.copies[i];
			if (!r->count)
				continue;
			fprintf(f,
				"%s{\"kind\":\"%s\",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"total_ns\":%" PRId64
				",\"mean_ns\":%" PRId64 ",\"min_ns\":%" PRId64 ",\"max_ns\":%" PRId64 "}",
				first ? "" : ",", rp_copy_kind_names[i], r->count, r->bytes, ns(r->total),
				ns(r->total) / (int64_t)r->count, ns(r->min), ns(r->max));
			first = false;
		}
		fputc(']', f);
	}
	fputc('}', f);
}

static void format_json(struct out *o, const struct rp_inputs *in, const struct rp_host_report *h, size_t n,
			const struct rp_cross *c)
{
	FILE *f = o->f;
	fputs("{\"tool\":\"tfprof-report\",\"format_version\":1,\"run_dir\":", f);
	if (in->run_dir)
		json_str(f, in->run_dir);
	else
		fputs("null", f);
	fputs(",\"note\":", f);
	if (in->note)
		json_str(f, in->note);
	else
		fputs("null", f);
	fputs(",\"verdict_rule\":", f);
	json_str(f, RP_VERDICT_RULE);
	fputs(",\"input_rule\":", f);
	json_str(f, RP_INPUT_RULE);
	fputs(",\"hosts\":[", f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		json_host(o, &h[i]);
	}
	fputc(']', f);
	if (o->o->sections & RP_SEC_HOSTS) {
		fputs(",\"cross_host\":", f);
		if (n < 2) {
			fputs("null", f);
		} else {
			fputs("{\"steps\":[", f);
			for (size_t i = 0; i < c->n; i++) {
				const struct rp_cross_step *s = &c->v[i];
				fprintf(f,
					"%s{\"step\":%" PRId64 ",\"occurrence\":%" PRId32 ",\"hosts\":%zu,\"fastest_ns\":%" PRId64
					",\"slowest_ns\":%" PRId64 ",\"spread_ns\":%" PRId64 ",\"slowest_host\":",
					i ? "," : "", s->step_num, s->occurrence, s->nhosts, ns(s->fastest_time), ns(s->slowest_time),
					ns(s->slowest_time - s->fastest_time));
				json_str(f, h[s->slowest].in->host);
				if (c->memory) {
					fprintf(f, ",\"mem_peak_min_bytes\":%" PRId64 ",\"mem_peak_max_bytes\":%" PRId64
						   ",\"mem_peak_max_host\":",
						s->peak_min, s->peak_max);
					json_str(f, h[s->peak_host].in->host);
				}
				fputc('}', f);
			}
			fputs("],\"most_often_slowest\":", f);
			if (c->n) {
				fputs("{\"host\":", f);
				json_str(f, h[c->most_often_slowest].in->host);
				fprintf(f, ",\"steps\":%" PRIu64 "}", c->slowest_count_max);
			} else {
				fputs("null", f);
			}
			fputc('}', f);
		}
	}
	fputs("}\n", f);
}

int rp_format(const struct rp_format_opts *o, const struct rp_inputs *in, const struct rp_host_report *h,
	      size_t n, const struct rp_cross *cross)
{
	struct out out = { stdout, o };
	switch (o->format) {
	case RP_TEXT:
		format_text(&out, in, h, n, cross);
		break;
	case RP_CSV:
		format_csv(&out, h, n, cross);
		break;
	case RP_JSON:
		format_json(&out, in, h, n, cross);
		break;
	}
	return fflush(stdout) || ferror(stdout) ? -1 : 0;
}
