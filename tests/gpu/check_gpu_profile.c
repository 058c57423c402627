/* SPDX-License-Identifier: Apache-2.0 */
/* Checks a profile of a GPU training loop (cuda_train_loop on a real GPU, sim_train_loop on the
 * simulator): per step the expected number of kernels, memcpys and memsets on the device planes,
 * each correlated to exactly one host launch on the launching thread's line, inside that launch's
 * step scope, and with --window, each device activity inside its step's host time window within
 * the clock alignment error the profile states, and each kernel's kernel_details with a
 * theoretical occupancy (occ_pct) in (0, 100]. With --allocs-per-step A --frees-per-step F, each
 * step also made exactly A CUDA allocations and F releases, as the "GPU memory" line on /host:CPU
 * records them (MemoryAllocation / MemoryDeallocation with tfprof_step_num), and the bytes in use
 * it reports never go negative. Prints what it found; exits 0 when all holds.
 *
 *   usage: check_gpu_profile PROFILE --steps N --kernels K --memcpys M --memsets S [--window]
 *                            [--allocs-per-step A --frees-per-step F] */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xspace_read.h"

static const char *path;
static long steps, kernels, memcpys, memsets, allocs = -1, frees = -1;
static int window;

struct launch {
	const XLine *line;
	const XEvent *ev;
};

static size_t find_launches(const XPlane *h, uint64_t corr, struct launch *out)
{
	size_t n = 0;
	for (size_t i = 0; i < h->n_lines; i++)
		for (size_t j = 0; j < h->lines[i]->n_events; j++) {
			const XStat *c = tt_event_stat(h, h->lines[i]->events[j], "correlation_id");
			if (c && c->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_UINT64_VALUE &&
			    c->uint64_value == corr) {
				out->line = h->lines[i];
				out->ev = h->lines[i]->events[j];
				n++;
			}
		}
	return n;
}

/* The step scope (an event with step_num) on the launch's line that contains the launch. */
static const XEvent *step_of(const XPlane *h, const struct launch *l)
{
	const XEvent *best = NULL;
	int64_t s = tt_event_start_ps(l->line, l->ev), e = tt_event_end_ps(l->line, l->ev);
	for (size_t i = 0; i < l->line->n_events; i++) {
		const XEvent *c = l->line->events[i];
		if (c != l->ev && tt_event_stat(h, c, "step_num") && tt_event_start_ps(l->line, c) <= s &&
		    tt_event_end_ps(l->line, c) >= e && !tt_event_stat(h, c, "correlation_id"))
			best = c;
	}
	return best;
}

static void check_profile(void **state)
{
	(void)state;
	XSpace *s = tt_read_xspace(path);
	tt_check_well_formed(s);
	for (size_t i = 0; i < s->n_errors; i++)
		printf("profile error: %s\n", s->errors[i]);
	for (size_t i = 0; i < s->n_warnings; i++)
		printf("profile warning: %s\n", s->warnings[i]);
	const XPlane *h = tt_plane(s, "/host:CPU");
	const XPlane *g = tt_plane(s, "/device:GPU:0");
	assert_non_null(h);
	if (!g)
		fail_msg("no /device:GPU:0 plane: GPU tracing did not run (see the errors above)");
	const XStat *align = tt_plane_stat(g, "tfprof_clock_error_ns");
	assert_non_null(align);
	/* The pairing bound, plus CUPTI's own timestamping granularity. */
	int64_t tol_ps = (align->int64_value + 1000) * 1000;
	long *nk = calloc((size_t)steps, sizeof *nk), *nm = calloc((size_t)steps, sizeof *nm),
	     *ns = calloc((size_t)steps, sizeof *ns);
	int64_t worst_early = 0, worst_late = 0;
	double occ_min = 101, occ_max = 0;
	for (size_t li = 0; li < g->n_lines; li++) {
		const XLine *l = g->lines[li];
		for (size_t i = 0; i < l->n_events; i++) {
			const XEvent *e = l->events[i];
			const char *name = tt_event_name(g, e);
			const XStat *c = tt_event_stat(g, e, "correlation_id");
			bool is_kernel = tt_event_stat(g, e, "kernel_details") != NULL;
			bool is_copy = strncmp(name, "Memcpy", 6) == 0, is_set = strcmp(name, "Memset") == 0;
			if (!is_kernel && !is_copy && !is_set)
				continue;
			if (!c)
				fail_msg("%s has no correlation_id", name);
			struct launch ln = { 0 };
			size_t found = find_launches(h, c->uint64_value, &ln);
			if (found != 1)
				fail_msg("%s (correlation %llu) matches %zu host launches, not 1", name,
					 (unsigned long long)c->uint64_value, found);
			const XEvent *step = step_of(h, &ln);
			if (!step)
				fail_msg("the launch of %s is not inside a step scope", name);
			long k = (long)tt_event_stat(h, step, "step_num")->int64_value;
			assert_true(k >= 0 && k < steps);
			const XStat *dk = tt_event_stat(g, e, "step_num");
			if (!dk || dk->int64_value != k)
				fail_msg("%s does not carry its launch's step_num %ld", name, k);
			if (is_kernel) {
				const XStat *det = tt_event_stat(g, e, "kernel_details");
				const char *d = det->value_case == TENSORFLOW__PROFILER__XSTAT__VALUE_REF_VALUE
							? tt_stat_meta_name(g, det->ref_value)
							: det->str_value;
				const char *o = d ? strstr(d, " occ_pct:") : NULL;
				double occ = o ? strtod(o + 9, NULL) : -1;
				if (!(occ > 0 && occ <= 100))
					fail_msg("%s: kernel_details \"%s\" has no occupancy in (0, 100]", name, d ? d : "");
				if (occ < occ_min)
					occ_min = occ;
				if (occ > occ_max)
					occ_max = occ;
				nk[k]++;
			}
			else if (is_copy)
				nm[k]++;
			else
				ns[k]++;
			int64_t early = tt_event_start_ps(ln.line, ln.ev) - tt_event_start_ps(l, e);
			int64_t late = tt_event_end_ps(l, e) - tt_event_end_ps(ln.line, step);
			if (early > worst_early)
				worst_early = early;
			if (late > worst_late)
				worst_late = late;
			if (window && (early > tol_ps || late > tol_ps))
				fail_msg("%s of step %ld lies outside its step (%lld ps before its launch, %lld ps after "
					 "the step) beyond the alignment error %lld ps",
					 name, k, (long long)early, (long long)late, (long long)tol_ps);
		}
	}
	long peak = 0;
	if (allocs >= 0) {
		long *na = calloc((size_t)steps, sizeof *na), *nf = calloc((size_t)steps, sizeof *nf);
		const XLine *mem = NULL;
		for (size_t li = 0; li < h->n_lines; li++)
			if (h->lines[li]->name && !strcmp(h->lines[li]->name, "GPU memory"))
				mem = h->lines[li];
		if (!mem)
			fail_msg("no \"GPU memory\" line on /host:CPU: GPU memory tracing did not record");
		for (size_t i = 0; i < mem->n_events; i++) {
			const XEvent *e = mem->events[i];
			const char *name = tt_event_name(h, e);
			const XStat *st = tt_event_stat(h, e, "tfprof_step_num");
			const XStat *in_use = tt_event_stat(h, e, "bytes_allocated");
			if (in_use && in_use->int64_value < 0)
				fail_msg("%s reports %lld bytes in use", name, (long long)in_use->int64_value);
			if (in_use && in_use->int64_value > peak)
				peak = (long)in_use->int64_value;
			if (!st || st->int64_value < 0 || st->int64_value >= steps)
				continue; /* made outside the steps */
			if (!strcmp(name, "MemoryAllocation"))
				na[st->int64_value]++;
			else if (!strcmp(name, "MemoryDeallocation"))
				nf[st->int64_value]++;
		}
		for (long k = 0; k < steps; k++)
			if (na[k] != allocs || nf[k] != frees)
				fail_msg("step %ld: %ld allocations, %ld releases; expected %ld, %ld", k, na[k], nf[k],
					 allocs, frees);
		free(na);
		free(nf);
	}
	for (long k = 0; k < steps; k++)
		if (nk[k] != kernels || nm[k] != memcpys || ns[k] != memsets)
			fail_msg("step %ld: %ld kernels, %ld memcpys, %ld memsets; expected %ld, %ld, %ld", k, nk[k],
				 nm[k], ns[k], kernels, memcpys, memsets);
	printf("{\"check\":\"gpu_profile\",\"steps\":%ld,\"clock_error_bound_ns\":%lld,"
	       "\"max_device_before_launch_ns\":%.3f,\"max_device_after_step_ns\":%.3f,"
	       "\"occ_pct_min\":%g,\"occ_pct_max\":%g,\"peak_bytes_in_use\":%ld}\n",
	       steps, (long long)align->int64_value, worst_early / 1000.0, worst_late / 1000.0, occ_min, occ_max,
	       peak);
	free(nk);
	free(nm);
	free(ns);
	tt_xspace_free(s);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--steps") && i + 1 < argc)
			steps = atol(argv[++i]);
		else if (!strcmp(argv[i], "--kernels") && i + 1 < argc)
			kernels = atol(argv[++i]);
		else if (!strcmp(argv[i], "--memcpys") && i + 1 < argc)
			memcpys = atol(argv[++i]);
		else if (!strcmp(argv[i], "--memsets") && i + 1 < argc)
			memsets = atol(argv[++i]);
		else if (!strcmp(argv[i], "--allocs-per-step") && i + 1 < argc)
			allocs = atol(argv[++i]);
		else if (!strcmp(argv[i], "--frees-per-step") && i + 1 < argc)
			frees = atol(argv[++i]);
		else if (!strcmp(argv[i], "--window"))
			window = 1;
		else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else {
			fprintf(stderr, "check_gpu_profile: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (allocs >= 0 && frees < 0)
		frees = 0;
	if (!path || steps <= 0) {
		fprintf(stderr, "usage: check_gpu_profile PROFILE --steps N --kernels K --memcpys M --memsets S [--window]\n");
		return 2;
	}
	const struct CMUnitTest tests[] = { cmocka_unit_test(check_profile) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
