/* SPDX-License-Identifier: Apache-2.0 */
/* Writes the Chrome trace of a written profile by running tfprof-report (chrome_convert.c). */
#ifndef TFPROF_CHROME_CONVERT_H
#define TFPROF_CHROME_CONVERT_H

/* Runs report_bin (NULL: tfprof-report from PATH) to convert the profile at xplane into
 * <stem>.trace.json.gz beside it and waits for it. Prints one line on stderr either way: where
 * the trace went, or why there is none and how to convert by hand. Never from a signal handler:
 * it allocates, forks and waits. */
void tfprof__chrome_convert(const char *xplane, const char *report_bin);

#endif
