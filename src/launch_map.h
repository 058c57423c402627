/* SPDX-License-Identifier: Apache-2.0 */
/* What the merger knows about each host launch, by correlation id: the scope that was open when
 * the CUDA call was made and the step it belonged to, so that the device event it started can
 * carry them. Filled by the host merge, read by the device merge. Not thread-safe. */
#ifndef TFPROF_LAUNCH_MAP_H
#define TFPROF_LAUNCH_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tfprof__launch {
	uint64_t correlation_id;
	int64_t step_num;
	uint32_t scope_name; /* string id of the innermost enclosing scope; valid if has_scope */
	bool has_scope, has_step;
	uint32_t count; /* host launch events seen with this id (1 unless something is off) */
};

struct tfprof__launch_map {
	struct tfprof__launch *slots; /* correlation_id 0 = empty */
	size_t cap, n;
};

void tfprof__launch_map_free(struct tfprof__launch_map *m);
/* Returns the entry for id, adding an empty one (count 0) if new; NULL when out of memory.
 * id must not be 0. */
struct tfprof__launch *tfprof__launch_map_put(struct tfprof__launch_map *m, uint64_t id);
const struct tfprof__launch *tfprof__launch_map_get(const struct tfprof__launch_map *m, uint64_t id);

#endif
