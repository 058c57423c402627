/* SPDX-License-Identifier: Apache-2.0 */
/* The profile's string table (see strtab.h): FNV-1a hashing, open addressing, UTF-8 repair. */
#include "strtab.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), or 0 when it is not valid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and code points past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = utf8_seq(p + i, len - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

char *tfprof__utf8_sanitize(const char *src, size_t len, size_t *out_len)
{
	/* Each bad byte becomes 3 bytes at most. */
	char *dst = malloc(len * 3 + 1);
	if (!dst)
		return NULL;
	const unsigned char *p = (const unsigned char *)src;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t k = p[i] == 0 ? 0 : utf8_seq(p + i, len - i);
		if (k) {
			memcpy(dst + o, p + i, k);
			o += k;
			i += k;
		} else {
			memcpy(dst + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	dst[o] = 0;
	*out_len = o;
	return dst;
}

int tfprof__strtab_init(struct tfprof__strtab *t)
{
	memset(t, 0, sizeof *t);
	t->nslots = 1024;
	t->slots = calloc(t->nslots, sizeof *t->slots);
	if (!t->slots)
		return -ENOMEM;
	return tfprof__strtab_intern(t, "") == 0 ? 0 : -1;
}

void tfprof__strtab_free(struct tfprof__strtab *t)
{
	for (uint32_t i = 0; i < t->count; i++)
		free(t->strs[i]);
	free(t->strs);
	free(t->lens);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

static bool grow_slots(struct tfprof__strtab *t)
{
	uint32_t n = t->nslots * 2;
	uint32_t *s = calloc(n, sizeof *s);
	if (!s)
		return false;
	for (uint32_t id = 0; id < t->count; id++) {
		uint64_t h = hash_bytes(t->strs[id], t->lens[id]);
		uint32_t i = (uint32_t)h & (n - 1);
		while (s[i])
			i = (i + 1) & (n - 1);
		s[i] = id + 1;
	}
	free(t->slots);
	t->slots = s;
	t->nslots = n;
	return true;
}

static uint32_t lookup(const struct tfprof__strtab *t, const char *s, size_t len, uint32_t *slot)
{
	uint32_t i = (uint32_t)hash_bytes(s, len) & (t->nslots - 1);
	while (t->slots[i]) {
		uint32_t id = t->slots[i] - 1;
		if (t->lens[id] == len && memcmp(t->strs[id], s, len) == 0)
			return id;
		i = (i + 1) & (t->nslots - 1);
	}
	*slot = i;
	return UINT32_MAX;
}

uint32_t tfprof__strtab_intern_n(struct tfprof__strtab *t, const char *s, size_t len)
{
	uint32_t slot;
	uint32_t id = lookup(t, s, len, &slot);
	if (id != UINT32_MAX)
		return id;
	char *copy;
	size_t clen = len;
	if (utf8_valid(s, len) && !memchr(s, 0, len)) {
		copy = malloc(len + 1);
		if (!copy)
			return UINT32_MAX;
		memcpy(copy, s, len);
		copy[len] = 0;
	} else {
		copy = tfprof__utf8_sanitize(s, len, &clen);
		if (!copy)
			return UINT32_MAX;
		/* The repaired text may already be in the table. */
		uint32_t dup = lookup(t, copy, clen, &slot);
		if (dup != UINT32_MAX) {
			free(copy);
			return dup;
		}
	}
	if (t->count == t->cap) {
		uint32_t ncap = t->cap ? t->cap * 2 : 256;
		char **ns = realloc(t->strs, ncap * sizeof *ns);
		if (!ns) {
			free(copy);
			return UINT32_MAX;
		}
		t->strs = ns;
		size_t *nl = realloc(t->lens, ncap * sizeof *nl);
		if (!nl) {
			free(copy);
			return UINT32_MAX;
		}
		t->lens = nl;
		t->cap = ncap;
	}
	id = t->count++;
	t->strs[id] = copy;
	t->lens[id] = clen;
	if ((uint64_t)t->count * 2 > t->nslots) {
		if (!grow_slots(t))
			return UINT32_MAX;
	} else {
		t->slots[slot] = id + 1;
	}
	return id;
}

uint32_t tfprof__strtab_intern(struct tfprof__strtab *t, const char *s)
{
	return tfprof__strtab_intern_n(t, s, strlen(s));
}

uint32_t tfprof__strtab_find(const struct tfprof__strtab *t, const char *s)
{
	uint32_t slot;
	return lookup(t, s, strlen(s), &slot);
}
