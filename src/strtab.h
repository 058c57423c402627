/* SPDX-License-Identifier: Apache-2.0 */
/* An interning string table: every name, key and string value in a profile is stored once and
 * referred to by a small id. Strings are made valid UTF-8 on the way in, because the protobuf
 * parsers that read the profile reject a `string` field that is not. Not thread-safe: one table
 * belongs to one merge. */
#ifndef TFPROF_STRTAB_H
#define TFPROF_STRTAB_H

#include <stddef.h>
#include <stdint.h>

struct tfprof__strtab {
	char **strs;     /* id -> string (NUL-terminated, owned); id 0 is "" */
	size_t *lens;
	uint32_t count, cap;
	uint32_t *slots; /* open addressing: id + 1, 0 = empty */
	uint32_t nslots; /* a power of two */
};

int tfprof__strtab_init(struct tfprof__strtab *t);
void tfprof__strtab_free(struct tfprof__strtab *t);
/* Returns the id of s (len bytes), adding it if new; UINT32_MAX when out of memory. */
uint32_t tfprof__strtab_intern_n(struct tfprof__strtab *t, const char *s, size_t len);
uint32_t tfprof__strtab_intern(struct tfprof__strtab *t, const char *s);
/* Returns the id of s if present, else UINT32_MAX. */
uint32_t tfprof__strtab_find(const struct tfprof__strtab *t, const char *s);

static inline const char *tfprof__strtab_get(const struct tfprof__strtab *t, uint32_t id)
{
	return t->strs[id];
}

/* Copies src into a new malloc'd string in which every invalid UTF-8 sequence is replaced by
 * U+FFFD. *out_len receives the length. Returns NULL when out of memory. */
char *tfprof__utf8_sanitize(const char *src, size_t len, size_t *out_len);

#endif
