/* SPDX-License-Identifier: Apache-2.0 */
/* The merged profile: an in-memory model of one host's XSpace (planes of lines of events with
 * typed stats, names as string-table ids) that the merger fills and the XSpace writer encodes.
 * Everything is owned by the profile and freed by tfprof__profile_free(). Not thread-safe. */
#ifndef TFPROF_PROFILE_H
#define TFPROF_PROFILE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "strtab.h"

enum tfprof__stat_type {
	TFPROF_STAT_I64 = 1,
	TFPROF_STAT_U64 = 2,
	TFPROF_STAT_F64 = 3,
	TFPROF_STAT_STR = 4, /* written as ref_value: an interned string */
};

struct tfprof__stat {
	uint32_t key; /* string id */
	uint32_t type;
	union {
		int64_t i64;
		uint64_t u64;
		double f64;
		uint32_t str; /* string id */
	} v;
};

struct tfprof__event {
	int64_t start_ns; /* since the session began */
	int64_t dur_ns;
	uint32_t name;    /* string id */
	uint32_t nstats;
	size_t stats;     /* index of the first stat in the line's stat array */
};

struct tfprof__line {
	int64_t id;
	uint32_t name; /* string id */
	struct tfprof__event *events;
	size_t nevents, cap_events;
	struct tfprof__stat *stats;
	size_t nstats, cap_stats;
};

/* A stat attached to an event name's metadata rather than to each event (e.g. the mangled
 * name of a kernel): written once per plane. */
struct tfprof__meta_stat {
	uint32_t event_name; /* string id */
	struct tfprof__stat stat;
};

struct tfprof__plane {
	int64_t id;
	uint32_t name;
	struct tfprof__line *lines;
	size_t nlines, cap_lines;
	struct tfprof__stat *stats; /* plane-level stats */
	size_t nstats, cap_stats;
	struct tfprof__meta_stat *meta_stats;
	size_t nmeta_stats, cap_meta_stats;
};

struct tfprof__profile {
	struct tfprof__strtab strs;
	struct tfprof__plane *planes;
	size_t nplanes, cap_planes;
	char **errors, **warnings;
	size_t nerrors, nwarnings;
	char *hostname;
	uint64_t start_walltime_ns, stop_walltime_ns;
};

int tfprof__profile_init(struct tfprof__profile *p);
/* Makes room for one more element in *arr (n used of *cap, each sz bytes), doubling from 16.
 * Returns 0 or -ENOMEM (the array is then unchanged). */
int tfprof__array_grow(void **arr, size_t n, size_t *cap, size_t sz);
/* Asks for transparent huge pages in a large block not yet written (a merge's line arrays, the
 * encoded file): one page fault per 2 MiB instead of per 4 KiB, where a fault costs microseconds
 * in a VM. Harmless where the kernel has THP off. */
void tfprof__advise_huge(void *p, size_t bytes);
void tfprof__profile_free(struct tfprof__profile *p);
/* Each returns NULL (or a negative value) when out of memory. Pointers into arrays stay valid
 * only until the next add to the same array. */
struct tfprof__plane *tfprof__profile_add_plane(struct tfprof__profile *p, int64_t id, const char *name);
struct tfprof__line *tfprof__plane_add_line(struct tfprof__profile *p, struct tfprof__plane *pl,
					    int64_t id, const char *name);
struct tfprof__event *tfprof__line_add_event(struct tfprof__line *l, int64_t start_ns, int64_t dur_ns,
					     uint32_t name);
/* Makes room for nevents more events and nstats more stats on the line, so that a merge that
 * knows its counts does not copy growing arrays. Returns 0 or -ENOMEM. */
int tfprof__line_reserve(struct tfprof__line *l, size_t nevents, size_t nstats);
/* tfprof__line_add_stat() when the stat array is full (or the line has no event yet). */
struct tfprof__stat *tfprof__line_add_stat_grow(struct tfprof__line *l, uint32_t key, uint32_t type);

/* Appends a stat (value zero) to the line's stat array and charges it to the line's last event,
 * so that each event's stats are a run of the array, in event order: the XSpace encoder assigns
 * metadata ids relying on it (the reference encoder walks the array itself). Returns the stat,
 * or NULL when out of memory or the line has no event. Inline: a merge adds several stats to each
 * of millions of events, mostly into room tfprof__line_reserve() made. */
static inline struct tfprof__stat *tfprof__line_add_stat(struct tfprof__line *l, uint32_t key, uint32_t type)
{
	if (__builtin_expect(l->nevents == 0 || l->nstats >= l->cap_stats, 0))
		return tfprof__line_add_stat_grow(l, key, type);
	struct tfprof__stat *s = &l->stats[l->nstats++];
	s->key = key;
	s->type = type;
	s->v.u64 = 0;
	l->events[l->nevents - 1].nstats++;
	return s;
}

/* tfprof__line_add_stat with its value: 0, or -ENOMEM. */
#define TFPROF__LINE_PUT(fn, ctype, stat_type, field)                                              \
	static inline int fn(struct tfprof__line *l, uint32_t key, ctype v)                          \
	{                                                                                            \
		struct tfprof__stat *s = tfprof__line_add_stat(l, key, stat_type);                   \
		if (!s)                                                                              \
			return -ENOMEM;                                                              \
		s->v.field = v;                                                                      \
		return 0;                                                                            \
	}
TFPROF__LINE_PUT(tfprof__line_put_u64, uint64_t, TFPROF_STAT_U64, u64)
TFPROF__LINE_PUT(tfprof__line_put_i64, int64_t, TFPROF_STAT_I64, i64)
TFPROF__LINE_PUT(tfprof__line_put_str, uint32_t, TFPROF_STAT_STR, str)
#undef TFPROF__LINE_PUT
struct tfprof__stat *tfprof__plane_add_stat(struct tfprof__plane *pl, uint32_t key, uint32_t type);
struct tfprof__stat *tfprof__plane_add_meta_stat(struct tfprof__plane *pl, uint32_t event_name, uint32_t key,
						 uint32_t type);
/* A list of one-line messages (errors, warnings): appends a printf-style message, with line
 * breaks made spaces and invalid UTF-8 repaired (messages quote paths and names). Returns 0, or
 * -ENOMEM (the message is then dropped). */
int tfprof__msg_add(char ***list, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tfprof__msgs_free(char **list, size_t n);
/* The singular or plural form for a count in a message: "1 scope end was", "3 scope ends were". */
#define TFPROF_PL(n, one, many) ((n) == 1 ? (one) : (many))

/* printf-style; the message is copied. */
int tfprof__profile_add_error(struct tfprof__profile *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int tfprof__profile_add_warning(struct tfprof__profile *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
