/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof-report --svg: draws, per step, the host step time next to the device busy time as a
 * self-contained SVG bar chart, one panel per host on a shared y scale, so that a GPU left idle
 * by its host, or a straggler host in a multi-rank run, is visible at a glance.
 *
 * Layout: every panel has the same x slots (step i of every host in the same column) and the
 * same ms scale. Runs with more steps than MAX_SLOTS are drawn in buckets of consecutive steps
 * (bars are bucket means, a thin line reaches the bucket's slowest step), which keeps the bars
 * wide enough to see and the file small; the caption says so. Every string from the profile is
 * escaped, and bytes that are not UTF-8 (or not allowed in XML) become U+FFFD, so the file is
 * well-formed XML whatever the host names hold. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* Geometry in SVG user units (px). */
#define WIDTH 1000.0
#define PLOT_X0 72.0              /* left edge of the plot: room for "1234.5 ms" tick labels */
#define PLOT_X1 (WIDTH - 112.0)   /* right edge: room for the mean labels */
#define HEADER_H 84.0             /* title, subtitle and legend */
#define PANEL_TITLE_H 38.0        /* panel title and its statistics line */
#define PANEL_AXIS_H 40.0         /* step labels and the x axis title below the plot */
#define MAX_SLOTS 200             /* at most this many bar pairs per panel: about 4 px per pair */
#define MAX_BAR_W 28.0            /* few steps get bars this wide, not a slab across the plot */
#define HOST_TITLE_CHARS 70       /* longer host names are shortened in titles (full in tooltip) */

#define WALL_COLOR "#4e79a7"
#define BUSY_COLOR "#f28e2b"

/* One bar pair: a step, or a bucket of consecutive steps. Values in ms. */
struct slot {
	int64_t first_step, last_step;
	int32_t first_occ, last_occ; /* their occurrences (report.h: struct rp_step) */
	size_t nsteps;
	double wall, busy;    /* means over the slot's steps */
	double wall_max;      /* the slowest step's wall time */
};

static double ps_to_ms(int64_t ps)
{
	/* Negative durations come only from corrupt files; a bar cannot be shorter than nothing. */
	return ps > 0 ? (double)ps / 1e9 : 0.0;
}

/* ---- XML text ------------------------------------------------------------------------------ */

/* Writes s as XML character data (also safe inside attribute values): markup characters become
 * entities; bytes that are not UTF-8 and characters XML 1.0 forbids even as references (C0
 * controls other than tab and newline, U+FFFE, U+FFFF) become U+FFFD. At most max_chars
 * characters are written (0 = all), then an ellipsis. */
static void xml_text(FILE *f, const char *s, size_t max_chars)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	for (size_t chars = 0; *p; chars++) {
		if (max_chars && chars == max_chars) {
			fputs("\xe2\x80\xa6", f);
			return;
		}
		switch (*p) {
		case '&': fputs("&amp;", f); p++; continue;
		case '<': fputs("&lt;", f); p++; continue;
		case '>': fputs("&gt;", f); p++; continue;
		case '"': fputs("&quot;", f); p++; continue;
		case '\'': fputs("&apos;", f); p++; continue;
		case '\t': fputs("&#9;", f); p++; continue;
		case '\n': fputs("&#10;", f); p++; continue;
		}
		size_t n = rp_utf8_len(p);
		if (!n || *p < 0x20 || (n == 3 && p[0] == 0xef && p[1] == 0xbf && p[2] >= 0xbe)) {
			fputs("\xef\xbf\xbd", f);
			p += n ? n : 1;
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
}

/* Text from the tool itself (ASCII, no markup) at a position. */
static void text_at(FILE *f, double x, double y, const char *attrs, const char *s)
{
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\"%s%s>", x, y, *attrs ? " " : "", attrs);
	xml_text(f, s, 0);
	fputs("</text>\n", f);
}

/* Writes s in lines of at most width characters, broken at spaces; returns the lines used. */
static int wrapped(FILE *f, double x, double y, double line_h, size_t width, const char *attrs, const char *s)
{
	int lines = 0;
	char buf[512];
	while (*s) {
		size_t n = strlen(s);
		if (n > width) {
			n = width;
			while (n > 0 && s[n] != ' ')
				n--;
			if (!n)
				n = width;
		}
		if (n >= sizeof buf)
			n = sizeof buf - 1;
		memcpy(buf, s, n);
		buf[n] = '\0';
		text_at(f, x, y + line_h * lines++, attrs, buf);
		s += n;
		while (*s == ' ')
			s++;
	}
	return lines;
}

/* ---- scale --------------------------------------------------------------------------------- */

/* The tick interval: 1, 2 or 5 times a power of ten, giving about five intervals up to max. */
static double nice_step(double max)
{
	double raw = max / 5.0;
	double p = pow(10.0, floor(log10(raw)));
	double m = raw / p;
	return p * (m <= 1.0 ? 1.0 : m <= 2.0 ? 2.0 : m <= 5.0 ? 5.0 : 10.0);
}

/* Decimals that a tick interval needs: 0 for 1 and above, 1 for 0.2, 2 for 0.05... */
static int tick_decimals(double step)
{
	int d = (int)-floor(log10(step) + 1e-9);
	return d < 0 ? 0 : d > 9 ? 9 : d;
}

/* The same for step-number labels: 1, 2, 5, 10, 20... slots between labels, about ten labels. */
static size_t label_every(size_t nslots)
{
	for (size_t m = 1; m <= SIZE_MAX / 100; m *= 10) {
		if (nslots <= 10 * m)
			return m;
		if (nslots <= 20 * m)
			return 2 * m;
		if (nslots <= 50 * m)
			return 5 * m;
	}
	return nslots;
}

/* The host's steps in slots of `per` consecutive steps. Returns the slot count. */
static size_t make_slots(const struct rp_steps *st, size_t per, struct slot *out)
{
	size_t n = 0;
	for (size_t i = 0; i < st->n; i += per, n++) {
		size_t end = i + per < st->n ? i + per : st->n;
		struct slot *s = &out[n];
		memset(s, 0, sizeof *s);
		s->first_step = st->v[i].step_num;
		s->last_step = st->v[end - 1].step_num;
		s->first_occ = st->v[i].occurrence;
		s->last_occ = st->v[end - 1].occurrence;
		s->nsteps = end - i;
		for (size_t j = i; j < end; j++) {
			double w = ps_to_ms(st->v[j].end - st->v[j].start);
			s->wall += w;
			s->busy += ps_to_ms(st->v[j].device_busy);
			if (w > s->wall_max)
				s->wall_max = w;
		}
		s->wall /= (double)s->nsteps;
		s->busy /= (double)s->nsteps;
	}
	return n;
}

/* ---- drawing ------------------------------------------------------------------------------- */

struct chart {
	FILE *f;
	size_t per;            /* steps per slot */
	size_t nslots;         /* the most slots of any host: the x scale */
	double ymax, ystep;    /* ms */
	int decimals;
	double plot_h;
	struct slot *slots;    /* scratch, nslots long */
};

static double bar_h(const struct chart *c, double ms)
{
	double h = ms / c->ymax * c->plot_h;
	return isfinite(h) && h > 0 ? h : 0.0;
}

static void slot_tooltip(const struct chart *c, const struct slot *s)
{
	FILE *f = c->f;
	double pct = s->wall > 0 ? 100.0 * s->busy / s->wall : 0.0;
	if (s->nsteps == 1)
		fprintf(f, "<title>step %" PRId64 " (occurrence %" PRId32 "): host %.3f ms, device busy %.3f ms "
			"(%.1f%%)</title>", s->first_step, s->first_occ, s->wall, s->busy, pct);
	else
		fprintf(f,
			"<title>steps %" PRId64 " (occurrence %" PRId32 ") to %" PRId64 " (occurrence %" PRId32
			"), %zu in all: host mean %.3f ms (slowest %.3f ms), device busy mean %.3f ms "
			"(%.1f%%)</title>",
			s->first_step, s->first_occ, s->last_step, s->last_occ, s->nsteps, s->wall, s->wall_max,
			s->busy, pct);
}

/* A horizontal mean line across the plot with its label on the right. */
static void mean_line(const struct chart *c, double base, double ms, const char *cls, const char *color,
		      const char *what, double label_dy)
{
	double y = base - bar_h(c, ms);
	fprintf(c->f,
		"<line class=\"%s\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
		"stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n",
		cls, PLOT_X0, PLOT_X1, y, y, color);
	/* Three significant digits at least: a mean is read as a number, not against the grid. */
	int decimals = ms > 0 ? 2 - (int)floor(log10(ms)) : 0;
	decimals = decimals < 0 ? 0 : decimals > 9 ? 9 : decimals;
	fprintf(c->f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">%s %.*f ms</text>\n", PLOT_X1 + 6, y + 4 + label_dy,
		color, what, decimals, ms);
}

static void panel(struct chart *c, const struct rp_host_report *h, double top)
{
	FILE *f = c->f;
	const struct rp_steps *st = &h->steps;
	const struct rp_summary *sum = &st->sum;
	double base = top + PANEL_TITLE_H + c->plot_h; /* y of the 0 ms line */

	fputs("<g class=\"panel\" data-host=\"", f);
	xml_text(f, h->in->host, 0);
	fprintf(f, "\" data-steps=\"%zu\">\n<title>", st->n);
	xml_text(f, h->in->host, 0);
	fputs("</title>\n", f);

	/* Title: host and verdict; below it the numbers the verdict rests on. */
	fprintf(f, "<text class=\"panel-title\" x=\"%.1f\" y=\"%.1f\" font-size=\"13\" font-weight=\"bold\">",
		PLOT_X0, top + 14);
	xml_text(f, h->in->host, HOST_TITLE_CHARS);
	fputs(": ", f);
	xml_text(f, rp_verdict_names[sum->verdict], 0);
	fputs("</text>\n", f);
	char line[256];
	if (st->n) {
		double wall = ps_to_ms(sum->wall), busy = ps_to_ms(sum->busy);
		snprintf(line, sizeof line,
			 "%zu step%s; host step time mean %.3f ms, median %.3f ms, p90 %.3f ms; "
			 "device busy %.1f%% of host time",
			 st->n, st->n == 1 ? "" : "s", ps_to_ms(sum->mean), ps_to_ms(sum->median), ps_to_ms(sum->p90),
			 wall > 0 ? 100.0 * busy / wall : 0.0);
	} else {
		snprintf(line, sizeof line, "no steps on this host%s",
			 st->has_host_plane ? " (no host event with a step_num stat)" : " (no /host:CPU plane)");
	}
	text_at(f, PLOT_X0, top + 30, "class=\"panel-stats\" fill=\"#444\"", line);

	/* Y axis: grid lines with their ms labels, then the axis itself. */
	for (int i = 0;; i++) {
		double v = i * c->ystep;
		if (v > c->ymax * (1 + 1e-9))
			break;
		double y = base - bar_h(c, v);
		fprintf(f,
			"<g class=\"ytick\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.2f\" y2=\"%.2f\" stroke=\"%s\"/>"
			"<text x=\"%.1f\" y=\"%.2f\" text-anchor=\"end\">%.*f ms</text></g>\n",
			PLOT_X0, PLOT_X1, y, y, i ? "#e4e4e4" : "#888", PLOT_X0 - 6, y + 4, c->decimals, v);
	}
	fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.2f\" y2=\"%.2f\" stroke=\"#888\"/>\n", PLOT_X0, PLOT_X0,
		base - c->plot_h, base);

	size_t ns = make_slots(st, c->per, c->slots);
	double slot_w = (PLOT_X1 - PLOT_X0) / (double)c->nslots;
	double bw = slot_w * 0.4 < MAX_BAR_W ? slot_w * 0.4 : MAX_BAR_W;
	double pad = (slot_w - 2 * bw) / 2; /* centres the pair in its slot */

	/* Bars: host wall time, then device busy time to its right. Each bar group has its colour
	 * once (presentation attributes, which every SVG reader applies, unlike CSS). */
	static const struct {
		const char *cls, *color;
		int off;
	} series[] = { { "wall", WALL_COLOR, 0 }, { "busy", BUSY_COLOR, 1 } };
	for (size_t k = 0; k < 2; k++) {
		fprintf(f, "<g class=\"%ss\" fill=\"%s\">\n", series[k].cls, series[k].color);
		for (size_t i = 0; i < ns; i++) {
			const struct slot *s = &c->slots[i];
			double v = k ? s->busy : s->wall, hh = bar_h(c, v);
			fprintf(f,
				"<rect class=\"%s\" data-step=\"%" PRId64 "\" data-occurrence=\"%" PRId32
				"\" data-ms=\"%.6f\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\">",
				series[k].cls, s->first_step, s->first_occ, v, PLOT_X0 + i * slot_w + pad + series[k].off * bw,
				base - hh, bw, hh);
			slot_tooltip(c, s);
			fputs("</rect>\n", f);
		}
		fputs("</g>\n", f);
	}
	/* Buckets: a thin line from the mean up to the bucket's slowest step, where stragglers show. */
	if (c->per > 1) {
		fprintf(f, "<g class=\"wall-maxes\" stroke=\"%s\" stroke-width=\"1\">\n", WALL_COLOR);
		for (size_t i = 0; i < ns; i++) {
			const struct slot *s = &c->slots[i];
			double x = PLOT_X0 + i * slot_w + pad + bw / 2;
			fprintf(f, "<line class=\"wall-max\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%.2f\" y2=\"%.2f\"/>\n", x, x,
				base - bar_h(c, s->wall), base - bar_h(c, s->wall_max));
		}
		fputs("</g>\n", f);
	}

	if (st->n) {
		/* Mean lines, the busy label moved clear of the wall label when they would overlap. */
		double mw = ps_to_ms(sum->mean), mb = ps_to_ms(sum->busy) / (double)st->n;
		double gap = bar_h(c, mw) - bar_h(c, mb), dy = 0;
		if (fabs(gap) < 13)
			dy = gap >= 0 ? 13 - gap : -(13 + gap);
		mean_line(c, base, mw, "mean-wall", WALL_COLOR, "mean", 0);
		mean_line(c, base, mb, "mean-busy", BUSY_COLOR, "mean", dy);
	}

	/* X axis: the step number of every label_every-th slot (its first step for a bucket), as
	 * "occurrence:step" when step numbers repeat, so that epoch 1's step 3 is not read as epoch
	 * 0's. */
	size_t every = label_every(c->nslots);
	for (size_t i = 0; i < ns; i += every) {
		double x = PLOT_X0 + (i + 0.5) * slot_w;
		char tick[48];
		if (st->repeats)
			snprintf(tick, sizeof tick, "%" PRId32 ":%" PRId64, c->slots[i].first_occ, c->slots[i].first_step);
		else
			snprintf(tick, sizeof tick, "%" PRId64, c->slots[i].first_step);
		fprintf(f,
			"<line x1=\"%.2f\" x2=\"%.2f\" y1=\"%.2f\" y2=\"%.2f\" stroke=\"#888\"/>"
			"<text class=\"xtick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n",
			x, x, base, base + 4, x, base + 16, tick);
	}
	const char *what = st->repeats ? "occurrence:step, in time order" : "step";
	if (c->per > 1)
		snprintf(line, sizeof line, "%s (each bar: the mean of %zu consecutive steps)", what, c->per);
	else
		snprintf(line, sizeof line, "%s", what);
	text_at(f, (PLOT_X0 + PLOT_X1) / 2, base + 32, "text-anchor=\"middle\" fill=\"#444\"", line);
	fputs("</g>\n", f);
}

static void legend(FILE *f, double y, bool buckets)
{
	double x = PLOT_X0;
	fprintf(f, "<g class=\"legend\">\n");
	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, y - 10, WALL_COLOR);
	text_at(f, x + 17, y, "", "host step time (wall time of the step scope)");
	x += 290;
	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, y - 10, BUSY_COLOR);
	text_at(f, x + 17, y, "", "device busy time (kernels, copies, memsets)");
	x += 280;
	fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#444\" stroke-dasharray=\"6 4\"/>",
		x, x + 22, y - 4, y - 4);
	text_at(f, x + 27, y, "", "mean");
	if (buckets) {
		x += 70;
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>", x + 4, x + 4, y - 12,
			y + 2, WALL_COLOR);
		text_at(f, x + 12, y, "", "slowest step");
	}
	fputs("</g>\n", f);
}

int rp_svg_write(const struct rp_inputs *in, const struct rp_host_report *h, size_t n, FILE *f)
{
	size_t most = 0, total = 0;
	double maxv = 0;
	for (size_t i = 0; i < n; i++) {
		most = h[i].steps.n > most ? h[i].steps.n : most;
		total += h[i].steps.n;
	}
	struct chart c = { .f = f };
	c.per = most > MAX_SLOTS ? (most + MAX_SLOTS - 1) / MAX_SLOTS : 1;
	c.nslots = most ? (most + c.per - 1) / c.per : 1;
	c.slots = rp_xcalloc(c.nslots, sizeof *c.slots);
	/* One y scale for all hosts: the tallest bar, bucket maximum or mean line of any of them. */
	for (size_t i = 0; i < n; i++) {
		size_t ns = make_slots(&h[i].steps, c.per, c.slots);
		for (size_t j = 0; j < ns; j++) {
			maxv = fmax(maxv, fmax(c.slots[j].wall_max, c.slots[j].busy));
			maxv = fmax(maxv, c.slots[j].wall);
		}
		if (h[i].steps.n)
			maxv = fmax(maxv, ps_to_ms(h[i].steps.sum.busy) / (double)h[i].steps.n);
	}
	if (!(maxv > 0) || !isfinite(maxv))
		maxv = 1.0; /* all steps empty: any scale shows zero-height bars */
	c.ystep = nice_step(maxv);
	c.ymax = ceil(maxv / c.ystep * (1 - 1e-12)) * c.ystep;
	if (c.ymax < maxv)
		c.ymax += c.ystep;
	c.decimals = tick_decimals(c.ystep);
	c.plot_h = n > 4 ? 130.0 : 200.0;

	double panel_h = PANEL_TITLE_H + c.plot_h + PANEL_AXIS_H + 16;
	double footer_top = HEADER_H + panel_h * (double)n;
	double height = footer_top + 64;
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
		"font-family=\"sans-serif\" font-size=\"11\" data-steps-per-bar=\"%zu\">\n",
		WIDTH, height, WIDTH, height, c.per);
	fputs("<title>Host step time and device busy time per step</title>\n", f);
	fputs("<desc>Written by tfprof-report --svg from ", f);
	xml_text(f, in->run_dir ? in->run_dir : in->v[0].path, 0);
	fputs("</desc>\n", f);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
	text_at(f, PLOT_X0, 24, "font-size=\"16\" font-weight=\"bold\"",
		"Host step time and device busy time per step");
	fprintf(f, "<text x=\"%.1f\" y=\"42\" fill=\"#444\">", PLOT_X0);
	xml_text(f, in->run_dir ? in->run_dir : in->v[0].path, 120);
	fprintf(f, " (%zu host%s, %zu step%s)</text>\n", n, n == 1 ? "" : "s", total, total == 1 ? "" : "s");
	legend(f, 66, c.per > 1);

	for (size_t i = 0; i < n; i++)
		panel(&c, &h[i], HEADER_H + panel_h * (double)i);

	char line[512];
	double y = footer_top + 10;
	if (c.per > 1) {
		snprintf(line, sizeof line,
			 "Each bar is the mean of %zu consecutive steps (up to %zu steps per host in %zu bars, so that "
			 "the bars stay readable); the thin line above a host bar reaches the slowest of those steps.",
			 c.per, most, c.nslots);
		y += 14 * wrapped(f, PLOT_X0, y, 14, 150, "class=\"caption\" fill=\"#444\"", line);
	}
	snprintf(line, sizeof line, "Verdict: %s.", RP_VERDICT_RULE);
	wrapped(f, PLOT_X0, y, 14, 150, "class=\"caption\" fill=\"#444\"", line);
	fputs("</svg>\n", f);
	free(c.slots);
	return fflush(f) || ferror(f) ? -1 : 0;
}

int rp_svg(const struct rp_inputs *in, const struct rp_host_report *h, size_t n, const char *path,
	   char *err, size_t errlen)
{
	size_t steps = 0;
	for (size_t i = 0; i < n; i++)
		steps += h[i].steps.n;
	if (!steps) {
		snprintf(err, errlen,
			 "no steps to draw in %s: no host event has a step_num stat; mark each training step with "
			 "a scope that has one (TFPROF_SCOPE(\"train\", TFPROF_I64(\"step_num\", i)), or "
			 "tf.profiler.experimental.Trace(\"train\", step_num=i))",
			 in->run_dir ? in->run_dir : in->n ? in->v[0].path : "the profile");
		return RP_EXIT_BAD_INPUT;
	}
	struct rp_outfile o;
	if (rp_outfile_open(&o, path, "--svg", false, err, errlen))
		return RP_EXIT_BAD_INPUT;
	/* A chart is small (bars are bucketed), so a 64 KiB buffer writes it in a few calls. */
	static char buf[1 << 16];
	setvbuf(o.f, buf, _IOFBF, sizeof buf);
	/* A failed write leaves the stream's error flag set, which the commit reports. */
	(void)rp_svg_write(in, h, n, o.f);
	return rp_outfile_commit(&o, err, errlen) ? RP_EXIT_FAIL : RP_EXIT_OK;
}
