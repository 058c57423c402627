/* SPDX-License-Identifier: Apache-2.0 */
/* Open-addressing hash map from correlation id to launch facts (see launch_map.h). */
#include "launch_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t slot_of(uint64_t id, size_t cap)
{
	/* Correlation ids are dense counters, so their low bits already spread them; keeping their
	 * order keeps the lookups of the device merge, which walks each stream in time order, in
	 * neighbouring slots instead of a cache miss each. */
	return (size_t)(id ^ (id >> 32)) & (cap - 1);
}

void tfprof__launch_map_free(struct tfprof__launch_map *m)
{
	free(m->slots);
	memset(m, 0, sizeof *m);
}

static int grow(struct tfprof__launch_map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 1024;
	struct tfprof__launch *s = calloc(ncap, sizeof *s);
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].correlation_id)
			continue;
		size_t j = slot_of(m->slots[i].correlation_id, ncap);
		while (s[j].correlation_id)
			j = (j + 1) & (ncap - 1);
		s[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = s;
	m->cap = ncap;
	return 0;
}

struct tfprof__launch *tfprof__launch_map_put(struct tfprof__launch_map *m, uint64_t id)
{
	if ((m->n + 1) * 2 > m->cap && grow(m))
		return NULL;
	size_t j = slot_of(id, m->cap);
	while (m->slots[j].correlation_id && m->slots[j].correlation_id != id)
		j = (j + 1) & (m->cap - 1);
	if (!m->slots[j].correlation_id) {
		m->slots[j].correlation_id = id;
		m->n++;
	}
	return &m->slots[j];
}

const struct tfprof__launch *tfprof__launch_map_get(const struct tfprof__launch_map *m, uint64_t id)
{
	if (!m->cap || !id)
		return NULL;
	size_t j = slot_of(id, m->cap);
	while (m->slots[j].correlation_id) {
		if (m->slots[j].correlation_id == id)
			return &m->slots[j];
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}
