/* SPDX-License-Identifier: Apache-2.0 */
/* TFPROF_FORMAT: "xplane" (the default), "chrome" or "xplane,chrome". The XSpace is written in
 * every case, since the Chrome trace is converted from it (chrome_convert.c). */
#ifndef TFPROF_FORMAT_H
#define TFPROF_FORMAT_H

#include <stdbool.h>

/* A comma-separated list of "xplane" and "chrome"; *chrome tells whether a Chrome trace is
 * wanted. Returns false (leaving *chrome) for anything else, the empty string included. */
bool tfprof__parse_format(const char *s, bool *chrome);

#endif
