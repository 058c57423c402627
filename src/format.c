/* SPDX-License-Identifier: Apache-2.0 */
/* TFPROF_FORMAT / tfprof-start --format: which files a profile is written as. Compiled into the
 * library and into tfprof-start, so that both accept exactly the same values. */
#include "format.h"

#include <string.h>

/* TFPROF_FORMAT: a comma-separated list of "xplane" and "chrome". The XSpace is written either
 * way (the converter reads it). Returns false for anything else. */
bool tfprof__parse_format(const char *e, bool *chrome)
{
	bool c = false;
	for (const char *p = e;; p++) {
		size_t n = strcspn(p, ",");
		if (n == 6 && strncmp(p, "chrome", 6) == 0)
			c = true;
		else if (n != 6 || strncmp(p, "xplane", 6) != 0)
			return false;
		p += n;
		if (!*p)
			break;
	}
	*chrome = c;
	return true;
}
