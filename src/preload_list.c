/* SPDX-License-Identifier: Apache-2.0 */
/* Removing libtfprof from an LD_PRELOAD list: tfprof-start does it for --deactivate and to put its
 * library first, the library for the Chrome converter it runs, which must not be profiled. Compiled
 * into both, which decide differently what counts as libtfprof. */
#include "preload_list.h"

#include <stdlib.h>
#include <string.h>

char *tfprof__preload_without(const char *list, bool (*drop)(const char *entry, const void *ctx),
			      const void *ctx)
{
	char *out = calloc(1, strlen(list ? list : "") + 1);
	char *copy = strdup(list ? list : "");
	if (!out || !copy) {
		free(out);
		free(copy);
		return NULL;
	}
	char *save = NULL;
	for (char *t = strtok_r(copy, ": ", &save); t; t = strtok_r(NULL, ": ", &save)) {
		if (drop(t, ctx))
			continue;
		if (*out)
			strcat(out, ":");
		strcat(out, t);
	}
	free(copy);
	return out;
}
