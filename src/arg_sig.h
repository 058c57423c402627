/* SPDX-License-Identifier: Apache-2.0 */
/* Argument signatures: the keys and types that a call site's scopes pass, interned once per
 * process, so that a scope record holds only the argument values (8 bytes each instead of a
 * 24-byte struct tfprof_arg) and the keys come from the call site, not from every record.
 *
 * Signatures are never freed: records of any session point at them until that session's merge,
 * and a static call site outlives every session. Lookups take no lock (a fixed table of pointers
 * published with release stores); adding one takes sig_mu, once per site and shape. */
#ifndef TFPROF_ARG_SIG_H
#define TFPROF_ARG_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tfprof/tfprof.h"

/* Scopes with more arguments than this keep whole struct tfprof_arg in their records. */
#define TFPROF__SIG_MAX_ARGS 8u
#define TFPROF__SIG_SLOTS 4096u

struct tfprof__sig_arg {
	const char *key; /* a string literal (TFPROF_ARG_STATIC_KEY) */
	uint32_t type;   /* the argument's type word, TFPROF_ARG_STATIC_KEY included */
};

struct tfprof__sig {
	const struct tfprof_site *site;
	uint32_t nargs;
	struct tfprof__sig_arg args[];
};

extern const struct tfprof__sig *tfprof__sig_table[TFPROF__SIG_SLOTS];

static inline size_t tfprof__sig_home(const struct tfprof_site *site)
{
	return (size_t)(((uintptr_t)site * 0x9e3779b97f4a7c15ull) >> 52); /* 12 bits: 4096 slots */
}

static inline bool tfprof__sig_matches(const struct tfprof__sig *s, const struct tfprof_site *site,
				       const struct tfprof_arg *args, size_t nargs)
{
	if (s->site != site || s->nargs != nargs)
		return false;
	uint64_t diff = 0;
	for (size_t i = 0; i < nargs; i++)
		diff |= ((uintptr_t)args[i].key ^ (uintptr_t)s->args[i].key) | (args[i].type ^ s->args[i].type);
	return diff == 0;
}

/* The slow part of tfprof__sig_find(): probes past the home slot, and adds the signature when
 * the arguments can be packed (literal keys, numeric or bool values, at most
 * TFPROF__SIG_MAX_ARGS) and the table has room. NULL when the record must keep whole args. */
const struct tfprof__sig *tfprof__sig_find_slow(const struct tfprof_site *site, const struct tfprof_arg *args,
					       size_t nargs);

/* The signature in the site's home slot when it is this shape's, else NULL: one load and the
 * comparison of keys and types, the usual case of a site with one shape. */
static inline const struct tfprof__sig *tfprof__sig_at_home(const struct tfprof_site *site,
							    const struct tfprof_arg *args, size_t nargs)
{
	const struct tfprof__sig *s = __atomic_load_n(&tfprof__sig_table[tfprof__sig_home(site)], __ATOMIC_ACQUIRE);
	return s && tfprof__sig_matches(s, site, args, nargs) ? s : NULL;
}

/* The signature of a site's arguments, added when new and packable, or NULL. */
static inline const struct tfprof__sig *tfprof__sig_find(const struct tfprof_site *site,
							 const struct tfprof_arg *args, size_t nargs)
{
	const struct tfprof__sig *s = tfprof__sig_at_home(site, args, nargs);
	if (__builtin_expect(s != NULL, 1))
		return s;
	return tfprof__sig_find_slow(site, args, nargs);
}

/* How often a signature was looked for under the table's lock (tests). */
size_t tfprof__sig_lock_count(void);

/* fork() support, called by the tracer's fork hooks: the child must not inherit a held lock. */
void tfprof__sig_fork_prepare(void);
void tfprof__sig_fork_release(void);

#endif
