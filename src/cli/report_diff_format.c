/* SPDX-License-Identifier: Apache-2.0 */
/* Prints tfprof-report --diff's comparison (report_diff.c) as aligned text, CSV (one table per
 * section after a "# name" line) or one JSON object (times as integer nanoseconds, like the
 * report itself, so that scripts compare them exactly). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

/* Text lists this many changed rows unless --top says otherwise. */
#define TEXT_ROWS 10

static double ms(int64_t ps)
{
	return (double)ps / 1e9;
}

static int64_t ns(int64_t ps)
{
	return ps / 1000;
}

/* The change from a to b in percent, NAN when a is not positive (nothing to compare with). */
static double change_pct(int64_t a, int64_t b)
{
	return a > 0 ? 100.0 * ((double)b / (double)a - 1.0) : NAN;
}

static const char *verdict(const struct rp_diff *d)
{
	if (!d->ci_valid)
		return "too few steps to tell a change from noise";
	return d->direction > 0 ? "slower, beyond the noise"
	       : d->direction < 0 ? "faster, beyond the noise"
				  : "no change beyond the noise";
}

static const char *input_name(const struct rp_inputs *in)
{
	return in->run_dir ? in->run_dir : in->n ? in->v[0].path : "";
}

static size_t rows_shown(const struct rp_format_opts *o, const struct rp_diff *d, bool text)
{
	size_t top = o->top ? o->top : text ? TEXT_ROWS : d->nrows;
	return top < d->nrows ? top : d->nrows;
}

/* ---- text ----------------------------------------------------------------------------------- */

static void text_pct(FILE *f, int64_t a, int64_t b)
{
	double p = change_pct(a, b);
	if (isnan(p))
		fprintf(f, "%9s\n", "-");
	else
		fprintf(f, "%+8.1f%%\n", p);
}

static void text_metric(FILE *f, const char *what, int64_t a, int64_t b)
{
	fprintf(f, "  %-20s %10.3f %10.3f ", what, ms(a), ms(b));
	text_pct(f, a, b);
}

static void format_text(FILE *f, const struct rp_format_opts *o, const struct rp_inputs *base,
			const struct rp_inputs *new, const struct rp_diff *d, double fail_pct)
{
	char buf[512];
	const struct rp_diff_side *a = &d->side[0], *b = &d->side[1];
	int namew = o->width - 12;
	fprintf(f, "tfprof-report --diff\n");
	fprintf(f, "  BASE %s\n", rp_fit(buf, sizeof buf, input_name(base), namew));
	fprintf(f, "       %zu host%s, %zu steps\n", a->nhosts, a->nhosts == 1 ? "" : "s", a->nsteps);
	fprintf(f, "  NEW  %s\n", rp_fit(buf, sizeof buf, input_name(new), namew));
	fprintf(f, "       %zu host%s, %zu steps\n", b->nhosts, b->nhosts == 1 ? "" : "s", b->nsteps);
	if (!d->common_steps)
		fprintf(f, "  note: the runs share no step_num; their step times are compared as samples\n");
	fprintf(f, "\nStep time (ms)              BASE        NEW    change\n");
	text_metric(f, "mean", a->mean, b->mean);
	text_metric(f, "median", a->median, b->median);
	text_metric(f, "p90", a->p90, b->p90);
	fprintf(f, "  verdict: %s\n", verdict(d));
	if (d->ci_valid)
		fprintf(f, "  median %+.1f%%, 95%% interval %+.1f%% to %+.1f%% (bootstrap, %u resamples)\n",
			d->median_change_pct, d->ci_low_pct, d->ci_high_pct, d->resamples);
	else
		fprintf(f, "  (the interval needs at least %d steps in each run)\n", RP_DIFF_MIN_STEPS);
	if (fail_pct >= 0 && d->ci_valid)
		fprintf(f, "  --fail-if-slower %g: %s\n", fail_pct,
			d->ci_low_pct > fail_pct ? "FAIL, slower by more than that beyond the noise (exit 3)"
						 : "pass");
	fprintf(f, "\nPer step (ms)               BASE        NEW    change\n");
	text_metric(f, "device busy", a->busy, b->busy);
	text_metric(f, "device idle", a->idle, b->idle);
	text_metric(f, "CUDA launch calls", a->launch, b->launch);
	/* Only runs with memory events get the memory rows, so other diffs read as before. */
	if (a->memory || b->memory) {
		fprintf(f, "\nGPU memory (MiB)            BASE        NEW    change\n");
		fprintf(f, "  %-20s %10.3f %10.3f ", "median step peak", (double)a->mem_peak_median / 1048576.0,
			(double)b->mem_peak_median / 1048576.0);
		text_pct(f, a->mem_peak_median, b->mem_peak_median);
		fprintf(f, "  %-20s %10.3f %10.3f %+9.3f MiB\n", "growth per step", a->mem_growth / 1048576.0,
			b->mem_growth / 1048576.0, (b->mem_growth - a->mem_growth) / 1048576.0);
		fprintf(f, "  (peak: median over the steps of each step's peak device memory; growth: least-squares "
			   "slope of in use at step end, the largest among the hosts)\n");
	}

	size_t changed = 0;
	for (size_t i = 0; i < d->nrows; i++)
		changed += d->rows[i].status != RP_DIFF_SAME;
	if (!changed) {
		fprintf(f, "\nNo kernel or host scope changed its time per step.\n");
		return;
	}
	size_t top = rows_shown(o, d, true);
	if (top > changed)
		top = changed;
	fprintf(f, "\nKernels and host scopes whose time per step moved most (%zu of %zu changed; ms per step)\n",
		top, changed);
	fprintf(f, "%10s %10s %10s  %-7s %-6s  %s\n", "change", "BASE", "NEW", "status", "kind", "name");
	for (size_t i = 0; i < top; i++) {
		const struct rp_diff_row *r = &d->rows[i];
		fprintf(f, "%+10.3f %10.3f %10.3f  %-7s %-6s  %s\n", ms(r->change), ms(r->per_step[0]),
			ms(r->per_step[1]), rp_diff_status_names[r->status], r->scope ? "scope" : "kernel",
			rp_fit(buf, sizeof buf, r->name, o->width - 56));
	}
}

/* ---- CSV ------------------------------------------------------------------------------------ */

static void csv_pct(FILE *f, double p)
{
	if (!isnan(p))
		fprintf(f, "%.3f", p);
}

static void csv_metric(FILE *f, const char *what, int64_t a, int64_t b)
{
	fprintf(f, "%s,%" PRId64 ",%" PRId64 ",", what, ns(a), ns(b));
	csv_pct(f, change_pct(a, b));
	fputc('\n', f);
}

static void format_csv(FILE *f, const struct rp_format_opts *o, const struct rp_diff *d, double fail_pct)
{
	const struct rp_diff_side *a = &d->side[0], *b = &d->side[1];
	fprintf(f, "# runs\nrun,hosts,steps\nbase,%zu,%zu\nnew,%zu,%zu\n", a->nhosts, a->nsteps, b->nhosts,
		b->nsteps);
	fprintf(f, "\n# step_time\nmetric,base_ns,new_ns,change_pct\n");
	csv_metric(f, "mean", a->mean, b->mean);
	csv_metric(f, "median", a->median, b->median);
	csv_metric(f, "p90", a->p90, b->p90);
	fprintf(f, "\n# noise\nmedian_change_pct,ci_low_pct,ci_high_pct,resamples,verdict,fail_if_slower_pct,"
		   "gate,method\n");
	csv_pct(f, d->median_change_pct);
	fputc(',', f);
	if (d->ci_valid)
		fprintf(f, "%.3f,%.3f,%u", d->ci_low_pct, d->ci_high_pct, d->resamples);
	else
		fputs(",,", f);
	fputc(',', f);
	rp_csv_str(f, verdict(d));
	if (fail_pct >= 0)
		fprintf(f, ",%g,%s,", fail_pct,
			!d->ci_valid ? "unknown" : d->ci_low_pct > fail_pct ? "fail" : "pass");
	else
		fputs(",,,", f);
	rp_csv_str(f, RP_DIFF_METHOD);
	fprintf(f, "\n\n# per_step\nmetric,base_ns,new_ns,change_pct\n");
	csv_metric(f, "device_busy", a->busy, b->busy);
	csv_metric(f, "device_idle", a->idle, b->idle);
	csv_metric(f, "launch", a->launch, b->launch);
	if (a->memory || b->memory) {
		fprintf(f, "\n# memory\nmetric,base_bytes,new_bytes,change_bytes\n");
		fprintf(f, "median_step_peak,%" PRId64 ",%" PRId64 ",%" PRId64 "\n", a->mem_peak_median,
			b->mem_peak_median, b->mem_peak_median - a->mem_peak_median);
		fprintf(f, "growth_per_step,%.1f,%.1f,%.1f\n", a->mem_growth, b->mem_growth, b->mem_growth - a->mem_growth);
	}
	fprintf(f, "\n# changes\nkind,name,status,base_ns_per_step,new_ns_per_step,change_ns,change_pct\n");
	size_t top = rows_shown(o, d, false);
	for (size_t i = 0; i < top; i++) {
		const struct rp_diff_row *r = &d->rows[i];
		fputs(r->scope ? "scope," : "kernel,", f);
		rp_csv_str(f, r->name);
		fprintf(f, ",%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",", rp_diff_status_names[r->status],
			ns(r->per_step[0]), ns(r->per_step[1]), ns(r->change));
		csv_pct(f, change_pct(r->per_step[0], r->per_step[1]));
		fputc('\n', f);
	}
}

/* ---- JSON ----------------------------------------------------------------------------------- */

static void json_num(FILE *f, double p)
{
	if (isnan(p))
		fputs("null", f);
	else
		fprintf(f, "%.3f", p);
}

static void json_metric(FILE *f, const char *what, int64_t a, int64_t b, bool comma)
{
	fprintf(f, "%s\"%s\":{\"base_ns\":%" PRId64 ",\"new_ns\":%" PRId64 ",\"change_pct\":", comma ? "," : "",
		what, ns(a), ns(b));
	json_num(f, change_pct(a, b));
	fputc('}', f);
}

static void json_side(FILE *f, const char *key, const struct rp_inputs *in, const struct rp_diff_side *s)
{
	fprintf(f, "\"%s\":{\"path\":", key);
	rp_json_str(f, input_name(in));
	fprintf(f, ",\"hosts\":%zu,\"steps\":%zu}", s->nhosts, s->nsteps);
}

static void format_json(FILE *f, const struct rp_format_opts *o, const struct rp_inputs *base,
			const struct rp_inputs *new, const struct rp_diff *d, double fail_pct)
{
	const struct rp_diff_side *a = &d->side[0], *b = &d->side[1];
	fputs("{\"tool\":\"tfprof-report\",\"mode\":\"diff\",\"format_version\":1,", f);
	json_side(f, "base", base, a);
	fputc(',', f);
	json_side(f, "new", new, b);
	fprintf(f, ",\"common_step_nums\":%s,\"step_time\":{", d->common_steps ? "true" : "false");
	json_metric(f, "mean", a->mean, b->mean, false);
	json_metric(f, "median", a->median, b->median, true);
	json_metric(f, "p90", a->p90, b->p90, true);
	fputs("},\"noise\":{\"median_change_pct\":", f);
	json_num(f, d->median_change_pct);
	fputs(",\"ci_low_pct\":", f);
	json_num(f, d->ci_valid ? d->ci_low_pct : NAN);
	fputs(",\"ci_high_pct\":", f);
	json_num(f, d->ci_valid ? d->ci_high_pct : NAN);
	fprintf(f, ",\"resamples\":%u,\"beyond_noise\":%s,\"direction\":\"%s\",\"verdict\":", d->resamples,
		d->direction ? "true" : "false", d->direction > 0 ? "slower" : d->direction < 0 ? "faster" : "none");
	rp_json_str(f, verdict(d));
	fputs(",\"method\":", f);
	rp_json_str(f, RP_DIFF_METHOD);
	fputs("},\"fail_if_slower\":", f);
	if (fail_pct >= 0) {
		fprintf(f, "{\"pct\":%g,\"failed\":%s}", fail_pct,
			d->ci_valid && d->ci_low_pct > fail_pct ? "true" : "false");
	} else {
		fputs("null", f);
	}
	fputs(",\"memory\":", f);
	if (a->memory || b->memory)
		fprintf(f,
			"{\"median_step_peak\":{\"base_bytes\":%" PRId64 ",\"new_bytes\":%" PRId64
			",\"change_bytes\":%" PRId64 "},\"growth_per_step\":{\"base_bytes\":%.1f,\"new_bytes\":%.1f"
			",\"change_bytes\":%.1f}}",
			a->mem_peak_median, b->mem_peak_median, b->mem_peak_median - a->mem_peak_median, a->mem_growth,
			b->mem_growth, b->mem_growth - a->mem_growth);
	else
		fputs("null", f);
	fputs(",\"per_step\":{", f);
	json_metric(f, "device_busy", a->busy, b->busy, false);
	json_metric(f, "device_idle", a->idle, b->idle, true);
	json_metric(f, "launch", a->launch, b->launch, true);
	fputs("},\"changes\":[", f);
	size_t top = rows_shown(o, d, false);
	for (size_t i = 0; i < top; i++) {
		const struct rp_diff_row *r = &d->rows[i];
		fprintf(f, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "", r->scope ? "scope" : "kernel");
		rp_json_str(f, r->name);
		fprintf(f,
			",\"status\":\"%s\",\"base_ns_per_step\":%" PRId64 ",\"new_ns_per_step\":%" PRId64
			",\"change_ns\":%" PRId64 ",\"change_pct\":",
			rp_diff_status_names[r->status], ns(r->per_step[0]), ns(r->per_step[1]), ns(r->change));
		json_num(f, change_pct(r->per_step[0], r->per_step[1]));
		fputc('}', f);
	}
	fputs("]}\n", f);
}

int rp_diff_format(const struct rp_format_opts *o, const struct rp_inputs *base, const struct rp_inputs *new,
		   const struct rp_diff *d, double fail_pct)
{
	switch (o->format) {
	case RP_TEXT:
		format_text(stdout, o, base, new, d, fail_pct);
		break;
	case RP_CSV:
		format_csv(stdout, o, d, fail_pct);
		break;
	case RP_JSON:
		format_json(stdout, o, base, new, d, fail_pct);
		break;
	}
	return fflush(stdout) || ferror(stdout) ? -1 : 0;
}
