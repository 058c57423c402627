/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for tfprof-report's profile reader: each input is taken as the bytes of a
 * .xplane.pb file and goes through the path the CLI takes for a file (unpack and validate, every
 * analysis (the GPU memory analysis of MemoryAllocation events and their size stats included), the
 * text, CSV and JSON reports, the Chrome trace, the SVG chart and the --diff
 * comparison with its three formats and its gate), so that a
 * corrupt or hostile profile can only ever give a one-line error or a report, never a crash.
 * Built and run by scripts/fuzz with clang's -fsanitize=fuzzer,address,undefined; the outputs go
 * to /dev/null. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "report.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The reports are written to stdout; libFuzzer's own messages go to stderr. */
	if (!freopen("/dev/null", "w", stdout) || !(devnull = fopen("/dev/null", "w"))) {
		perror("fuzz_report: /dev/null");
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rp_inputs in;
	char err[1024];
	if (rp_load_buffer(data, size, "fuzz.xplane.pb", &in, err, sizeof err))
		return 0;
	/* Half the inputs are read as two hosts of one run (the same bytes twice), so that the
	 * cross-host comparison and the multi-host trace naming are fuzzed too. */
	struct rp_inputs second;
	if ((data[0] & 1) && rp_load_buffer(data, size, "other.xplane.pb", &second, err, sizeof err) == 0) {
		in.v = rp_xrealloc(in.v, 2 * sizeof *in.v);
		in.v[1] = second.v[0];
		in.n = 2;
		free(second.v);
	}
	struct rp_cross cross;
	struct rp_host_report *h = rp_analyze(&in, &cross);
	static const enum rp_format formats[] = { RP_TEXT, RP_CSV, RP_JSON };
	for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
		/* Text at the narrowest width exercises the shortening and wrapping code hardest. */
		struct rp_format_opts fo = { .format = formats[i], .sections = RP_SEC_ALL, .top = i == 0 ? 5 : 0,
					     .width = 60 };
		rp_format(&fo, &in, h, in.n, &cross);
	}
	struct rp_chrome_stats st;
	rp_chrome_write(&in, devnull, false, &st);
	rp_svg_write(&in, h, in.n, devnull);
	/* --diff: the run against itself, and (with two hosts) against its first host alone, which
	 * must be refused as different host counts. */
	for (size_t nnew = in.n; nnew >= 1; nnew--) {
		struct rp_diff d;
		if (rp_diff_compute(h, in.n, h, nnew, &d, err, sizeof err) == 0) {
			rp_diff_gate(&d, 5.0, err, sizeof err);
			for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
				struct rp_format_opts fo = { .format = formats[i], .top = i == 0 ? 3 : 0, .width = 60 };
				rp_diff_format(&fo, &in, &in, &d, i == 0 ? 5.0 : -1);
			}
			rp_diff_free(&d);
		}
	}
	rp_analysis_free(h, in.n, &cross);
	rp_inputs_free(&in);
	return 0;
}
