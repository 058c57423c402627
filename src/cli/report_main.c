/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof-report: how long each training step took on the host, how much of it the GPU was busy,
 * which kernels and copies took the time, and (for a run with several hosts) which host was
 * slowest. Reads what tfprof, TensorFlow or JAX wrote. This file parses the command line, runs
 * the analysis per host and hands the results to the formatter or the SVG chart (report_svg.c),
 * the profiles to the Chrome trace writer (report_chrome.c), or two runs' analyses to the
 * comparison (report_diff.c); exit codes in report.h. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#define USAGE_LINE "usage: tfprof-report [--csv|--json] [--top N] [--only SECTIONS] [--run NAME] [--width N] PATH\n" \
		   "       tfprof-report --chrome-trace OUT.json[.gz] [--run NAME] PATH\n" \
		   "       tfprof-report --svg OUT.svg [--run NAME] PATH\n" \
		   "       tfprof-report --diff BASE NEW [--csv|--json] [--top N] [--fail-if-slower PCT]"

static void help(void)
{
	fputs(USAGE_LINE "\n"
	      "\n"
	      "Summarizes a profile written by tfprof, TensorFlow or JAX (TensorBoard's XSpace format).\n"
	      "\n"
	      "PATH   a .xplane.pb file; a run directory (<logdir>/plugins/profile/<run>) with one\n"
	      "       <host>.xplane.pb per host; a logdir or its plugins/profile folder (the newest\n"
	      "       run is read, or the one --run names).\n"
	      "\n"
	      "Options\n"
	      "  --csv            CSV instead of text: one table per section, each after a '# name'\n"
	      "                   line and a blank line (no '# name' line when --only names one section)\n"
	      "  --json           one JSON object; times are integer nanoseconds\n"
	      "  --top N          list the N kernels with the most time (text default 20; CSV and JSON\n"
	      "                   list all unless --top is given; 0 = all)\n"
	      "  --only SECTIONS  comma-separated subset of: steps, summary, kernels, copies, hosts\n"
	      "  --run NAME       with a logdir: the run to read instead of the newest\n"
	      "  --width N        text width in columns (default 100, at least 60)\n"
	      "  --chrome-trace OUT.json[.gz]\n"
	      "                   instead of the report, write the profile as a Chrome trace (JSON,\n"
	      "                   gzip-compressed when OUT ends in .gz) that ui.perfetto.dev and\n"
	      "                   chrome://tracing open: a process per host and GPU plane, a thread\n"
	      "                   per host thread and GPU stream, each event with its stats as args,\n"
	      "                   and an arrow from each kernel launch to its kernel. Times are\n"
	      "                   relative to the earliest event (metadata.tfprof_time_base_ns)\n"
	      "  --svg OUT.svg    instead of the report, draw a chart (SVG): per step, the host step\n"
	      "                   time (wall) as a bar beside the device busy time, with their means,\n"
	      "                   one panel per host on the same ms scale, titled with the host and its\n"
	      "                   verdict. More than 200 steps are drawn as buckets of consecutive steps\n"
	      "                   (bar = mean, a thin line up to the slowest step). Needs step scopes\n"
	      "                   (a step_num stat); prints the file's name on stderr\n"
	      "  --diff BASE NEW  instead of the report, compare two runs of the same job (each a\n"
	      "                   logdir, run directory or file; the same number of hosts, whose steps\n"
	      "                   are pooled): step time mean, median and p90 with their change and\n"
	      "                   whether the median's change is beyond the noise; device busy, device\n"
	      "                   idle and CUDA launch time per step; the kernels and host scopes (not\n"
	      "                   the step scopes) whose time per step moved most: added, removed,\n"
	      "                   slower, faster, or same when it moved by under 1 us or 1% (text lists\n"
	      "                   the 10 that moved most unless --top says; CSV and JSON all).\n"
	      "                   With memory events: the median over the steps of each step's peak\n"
	      "                   device memory and the growth per step (the host that grows most).\n"
	      "                   Noise: a 95% percentile bootstrap interval of the relative change of\n"
	      "                   the median step time (both runs' steps resampled with replacement,\n"
	      "                   2000 times, fewer down to 200 past 20000 steps; fixed seed, so a rerun\n"
	      "                   gives the same answer). The change is beyond the noise when the\n"
	      "                   interval excludes 0. A bootstrap rather than a rank test because a CI\n"
	      "                   gate asks a question of size (slower by more than 5%?), which an\n"
	      "                   interval of the change answers and a p-value does not; the median\n"
	      "                   because stragglers (checkpoints, GC) would move a mean. Needs >= 5\n"
	      "                   steps per run\n"
	      "  --fail-if-slower PCT\n"
	      "                   with --diff: exit 3 when NEW's median step time is slower than BASE's\n"
	      "                   by more than PCT percent beyond the noise (the interval's low end is\n"
	      "                   above PCT), for a CI job to gate on\n"
	      "  -h, --help       this help\n"
	      "\n"
	      "Sections\n"
	      "  steps    per step, in time order: every occurrence of a step marker (a host event on\n"
	      "           /host:CPU with a step_num stat; with _r on some, only those) is a step of its\n"
	      "           own, so epochs that restart step_num give one row per epoch and step. Markers\n"
	      "           with the same step_num whose windows overlap (several threads) are one step.\n"
	      "           A step marker inside another on the same thread (gradient-accumulation\n"
	      "           micro-steps) belongs to the outer step. When step numbers repeat, each row\n"
	      "           also shows its occurrence (occ: earlier steps with that step_num, i.e. the\n"
	      "           epoch counted from 0); CSV and JSON always have it. Per step: host wall time;\n"
	      "           device busy time = union of the kernel, memcpy and memset intervals launched\n"
	      "           in the step, over all streams and GPUs; busy%; device idle = the part of the\n"
	      "           step's host window in which no device work ran; kernel count; H2D and D2H\n"
	      "           bytes and summed copy time;\n"
	      "           launch = host time in CUDA API calls (events with correlation_id) in the step.\n"
	      "           Device work is given to a step through its correlation_id to the host launch\n"
	      "           and the step scope around that, else by its own step_num stat (the\n"
	      "           occurrence that had begun at its launch), else by the launch's time inside a\n"
	      "           step's window.\n"
	      "           With GPU memory events (MemoryAllocation/MemoryDeallocation on /host:CPU),\n"
	      "           a block under the table: per step the peak device memory in use, the bytes\n"
	      "           allocated and freed, and what was in use at the step's end.\n"
	      "  summary  mean, median and p90 step time and a verdict, printed with its rule:\n"
	      "           device-bound if device busy >= 80% of step time; else input-bound if input\n"
	      "           scopes take >= 20% of step time; else host/launch-bound. Input scopes: host\n"
	      "           events in a step whose name starts with input, load, data, iterator, prefetch\n"
	      "           or infeed, or contains GetNext (any case). Busy% above 100 means the step's\n"
	      "           device work outlasts its host window: the host runs ahead of the GPU.\n"
	      "           With GPU memory events also: the run's peak device memory, the largest\n"
	      "           allocations live at it (scope, size, allocator, address), the allocations\n"
	      "           still live at stop, releases without an allocation, and the growth per step\n"
	      "           (least-squares slope of device memory in use at step end). Device memory is\n"
	      "           every allocator but host memory (names with host, cpu, pinned or pageable),\n"
	      "           summed over the host's GPUs and memory kinds; --top N limits the rows.\n"
	      "  kernels  per demangled kernel name: count, total, mean, min, max, share of kernel time\n"
	      "  copies   memcpys by direction (H2D, D2H, D2D, P2P, H2H) and memsets: count, bytes, times\n"
	      "  hosts    with several hosts in one run: per step the fastest and slowest host wall\n"
	      "           time, the spread between them and the slowest host. Hosts are matched by\n"
	      "           step_num and occurrence (the second step 0 with the second step 0). With\n"
	      "           memory events, also the step's lowest and highest memory peak over the hosts\n"
	      "\n"
	      "Exit status: 0 success; 2 bad usage, input that is not a readable profile or an output\n"
	      "path that cannot be written, or a --diff that cannot be made (a run without steps,\n"
	      "different host counts, too few steps for --fail-if-slower; one line on stderr says what\n"
	      "to do); 3 --fail-if-slower: NEW is slower by more than PCT beyond the noise; 1 the tool\n"
	      "itself failed (out of memory, a write failed half way, e.g. a full disk).\n",
	      stdout);
}

static int usage_error(const char *fmt, const char *arg)
{
	fputs("tfprof-report: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("; see tfprof-report --help\n", stderr);
	return RP_EXIT_BAD_INPUT;
}

static bool parse_size(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_sections(const char *s, unsigned *out)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = { { "steps", RP_SEC_STEPS },     { "summary", RP_SEC_SUMMARY }, { "kernels", RP_SEC_KERNELS },
		      { "copies", RP_SEC_COPIES }, { "hosts", RP_SEC_HOSTS } };
	*out = 0;
	while (*s) {
		size_t n = strcspn(s, ",");
		bool found = false;
		for (size_t i = 0; i < sizeof names / sizeof *names; i++)
			if (strlen(names[i].name) == n && strncmp(s, names[i].name, n) == 0) {
				*out |= names[i].bit;
				found = true;
			}
		if (!found)
			return false;
		s += n;
		if (*s == ',')
			s++;
	}
	return *out != 0;
}

static bool parse_pct(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0 && v <= 1e6))
		return false;
	*out = v;
	return true;
}

/* tfprof-report --diff: loads and analyses both runs, prints the comparison and applies the gate. */
static int diff(const char *base_path, const char *new_path, const struct rp_format_opts *fo, double fail_pct)
{
	struct rp_inputs in[2];
	const char *path[2] = { base_path, new_path };
	char err[1024];
	for (int s = 0; s < 2; s++)
		if (rp_load(path[s], NULL, &in[s], err, sizeof err)) {
			fprintf(stderr, "tfprof-report: %s: %s\n", s ? "NEW" : "BASE", err);
			if (s)
				rp_inputs_free(&in[0]);
			return RP_EXIT_BAD_INPUT;
		}
	struct rp_cross cross[2];
	struct rp_host_report *h[2] = { rp_analyze(&in[0], &cross[0]), rp_analyze(&in[1], &cross[1]) };
	struct rp_diff d;
	int rc = RP_EXIT_OK;
	if (rp_diff_compute(h[0], in[0].n, h[1], in[1].n, &d, err, sizeof err)) {
		fprintf(stderr, "tfprof-report: --diff: %s\n", err);
		rc = RP_EXIT_BAD_INPUT;
	} else {
		int gate = rp_diff_gate(&d, fail_pct, err, sizeof err);
		if (gate == RP_EXIT_BAD_INPUT) {
			fprintf(stderr, "tfprof-report: %s\n", err);
			rc = gate;
		} else if (rp_diff_format(fo, &in[0], &in[1], &d, fail_pct)) {
			fprintf(stderr, "tfprof-report: cannot write the comparison to stdout: %s; check the disk or pipe\n",
				strerror(errno));
			rc = RP_EXIT_FAIL;
		} else {
			rc = gate;
		}
		rp_diff_free(&d);
	}
	for (int s = 0; s < 2; s++) {
		rp_analysis_free(h[s], in[s].n, &cross[s]);
		rp_inputs_free(&in[s]);
	}
	return rc;
}

int main(int argc, char **argv)
{
	enum { OPT_CSV = 256, OPT_JSON, OPT_TOP, OPT_ONLY, OPT_RUN, OPT_WIDTH, OPT_CHROME, OPT_SVG, OPT_DIFF,
	       OPT_FAIL };
	static const struct option longopts[] = {
		{ "csv", no_argument, NULL, OPT_CSV },	     { "json", no_argument, NULL, OPT_JSON },
		{ "top", required_argument, NULL, OPT_TOP }, { "only", required_argument, NULL, OPT_ONLY },
		{ "run", required_argument, NULL, OPT_RUN }, { "width", required_argument, NULL, OPT_WIDTH },
		{ "chrome-trace", required_argument, NULL, OPT_CHROME },
		{ "svg", required_argument, NULL, OPT_SVG },
		{ "diff", required_argument, NULL, OPT_DIFF },
		{ "fail-if-slower", required_argument, NULL, OPT_FAIL },
		{ "help", no_argument, NULL, 'h' },	     { NULL, 0, NULL, 0 },
	};
	struct rp_format_opts fo = { .format = RP_TEXT, .sections = RP_SEC_ALL, .width = 100 };
	const char *run = NULL, *chrome = NULL, *svg = NULL, *diff_base = NULL;
	bool csv = false, json = false, report_opts = false, only = false;
	double fail_pct = -1;
	long v;
	opterr = 0; /* getopt's own messages would not say what to do; ours do */
	int c;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			help();
			return fflush(stdout) ? RP_EXIT_FAIL : RP_EXIT_OK;
		case OPT_CSV:
			report_opts = true;
			csv = true;
			fo.format = RP_CSV;
			break;
		case OPT_JSON:
			report_opts = true;
			json = true;
			fo.format = RP_JSON;
			break;
		case OPT_TOP:
			report_opts = true;
			if (!parse_size(optarg, 0, 1000000000L, &v))
				return usage_error("--top wants a count (0 = all), not '%s'", optarg);
			fo.top = (size_t)v;
			break;
		case OPT_ONLY:
			report_opts = true;
			only = true;
			if (!parse_sections(optarg, &fo.sections))
				return usage_error("--only wants steps, summary, kernels, copies or hosts, "
						   "comma-separated, not '%s'", optarg);
			break;
		case OPT_RUN:
			run = optarg;
			break;
		case OPT_CHROME:
			if (!*optarg)
				return usage_error("%s", "--chrome-trace wants an output file name (OUT.json or OUT.json.gz)");
			chrome = optarg;
			break;
		case OPT_SVG:
			if (!*optarg)
				return usage_error("%s", "--svg wants an output file name (OUT.svg)");
			svg = optarg;
			break;
		case OPT_DIFF:
			if (!*optarg)
				return usage_error("%s", "--diff wants two runs: --diff BASE NEW");
			diff_base = optarg;
			break;
		case OPT_FAIL:
			if (!parse_pct(optarg, &fail_pct))
				return usage_error("--fail-if-slower wants a percentage >= 0 (5 = 5%% slower), not '%s'",
						   optarg);
			break;
		case OPT_WIDTH:
			report_opts = true;
			if (!parse_size(optarg, 60, 100000, &v))
				return usage_error("--width wants a number of columns >= 60, not '%s'", optarg);
			fo.width = (int)v;
			break;
		case ':':
			return usage_error("%s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (csv && json)
		return usage_error("%s", "--csv and --json exclude each other: pick one");
	if (chrome && report_opts)
		return usage_error("%s", "--chrome-trace writes a trace instead of the report: drop --csv, "
				   "--json, --top, --only and --width");
	if (svg && report_opts)
		return usage_error("%s", "--svg draws a chart instead of the report: drop --csv, --json, --top, "
				   "--only and --width");
	if (svg && chrome)
		return usage_error("%s", "--svg and --chrome-trace write one file each: run tfprof-report "
				   "once per file");
	if (fail_pct >= 0 && !diff_base)
		return usage_error("%s", "--fail-if-slower gates a comparison: use it with --diff BASE NEW");
	if (diff_base) {
		if (chrome || svg || only || run)
			return usage_error("%s", "--diff compares two runs: drop --chrome-trace, --svg, --only and "
					   "--run (name run directories instead)");
		if (argc - optind != 1)
			return usage_error("%s", "--diff wants two runs: --diff BASE NEW (each a logdir, run "
					   "directory or .xplane.pb file)");
		return diff(diff_base, argv[optind], &fo, fail_pct);
	}
	if (optind >= argc)
		return usage_error("%s", "missing PATH (a logdir, a run directory or a .xplane.pb file)");
	if (argc - optind > 1)
		return usage_error("one PATH only, got also '%s'", argv[optind + 1]);

	struct rp_inputs in;
	char err[1024];
	if (rp_load(argv[optind], run, &in, err, sizeof err)) {
		fprintf(stderr, "tfprof-report: %s\n", err);
		return RP_EXIT_BAD_INPUT;
	}
	if (chrome) {
		struct rp_chrome_stats st;
		/* Progress only for a person watching: logs and pipes get no carriage returns. */
		int rc = rp_chrome_trace(&in, chrome, isatty(STDERR_FILENO), &st, err, sizeof err);
		if (rc)
			fprintf(stderr, "tfprof-report: %s\n", err);
		rp_inputs_free(&in);
		return rc;
	}
	struct rp_cross cross;
	struct rp_host_report *h = rp_analyze(&in, &cross);
	int rc = RP_EXIT_OK;
	if (svg) {
		rc = rp_svg(&in, h, in.n, svg, err, sizeof err);
		if (rc)
			fprintf(stderr, "tfprof-report: %s\n", err);
		else
			fprintf(stderr, "tfprof-report: wrote %s\n", svg);
	} else if (rp_format(&fo, &in, h, in.n, &cross)) {
		fprintf(stderr, "tfprof-report: cannot write the report to stdout: %s; check the disk or pipe\n",
			strerror(errno));
		rc = RP_EXIT_FAIL;
	}
	rp_analysis_free(h, in.n, &cross);
	rp_inputs_free(&in);
	return rc;
}
