/* SPDX-License-Identifier: Apache-2.0 */
/* LD_PRELOAD lists without some of their entries (preload_list.c). */
#ifndef TFPROF_PRELOAD_LIST_H
#define TFPROF_PRELOAD_LIST_H

#include <stdbool.h>

/* list (entries separated by ':' or spaces, as the dynamic loader reads them; NULL = empty)
 * without the entries for which drop(entry, ctx) holds, joined by ':'. Returns a malloc'd string,
 * "" when nothing is left, or NULL when out of memory. */
char *tfprof__preload_without(const char *list, bool (*drop)(const char *entry, const void *ctx),
			      const void *ctx);

#endif
