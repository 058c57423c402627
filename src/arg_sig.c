/* SPDX-License-Identifier: Apache-2.0 */
/* The process-wide table of argument signatures (arg_sig.h): open addressing on the call site's
 * address, read without a lock, written under sig_mu. */
#include "arg_sig.h"

#include <pthread.h>
#include <stdlib.h>

/* Probes past the home slot before a shape is given up on (its records keep whole args). */
#define MAX_PROBES 16u
/* Three quarters full at most, so that probes stay short. */
#define MAX_SIGS (TFPROF__SIG_SLOTS / 4u * 3u)

const struct tfprof__sig *tfprof__sig_table[TFPROF__SIG_SLOTS];
static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t nsigs;
/* Set once no signature will be added any more: the table is full, or malloc failed. */
static bool sig_full;
/* How often sig_mu was taken (tests: the hot path must not take it once the table is full). */
static size_t sig_locks;

static bool packable(const struct tfprof_arg *args, size_t nargs)
{
	if (nargs == 0 || nargs > TFPROF__SIG_MAX_ARGS)
		return false;
	for (size_t i = 0; i < nargs; i++) {
		uint32_t t = args[i].type;
		if (!(t & TFPROF_ARG_STATIC_KEY) || !args[i].key)
			return false;
		switch (t & ~TFPROF_ARG_STATIC_KEY) {
		case TFPROF_ARG_I64:
		case TFPROF_ARG_U64:
		case TFPROF_ARG_F64:
		case TFPROF_ARG_BOOL:
			break;
		default: /* strings are copied; unknown types are counted at merge */
			return false;
		}
	}
	return true;
}

/* Looks for the shape from the home slot on; *free_slot gets the first empty slot seen, or
 * SIZE_MAX when the probe found none. */
static const struct tfprof__sig *probe(const struct tfprof_site *site, const struct tfprof_arg *args,
				       size_t nargs, size_t *free_slot)
{
	size_t h = tfprof__sig_home(site);
	*free_slot = SIZE_MAX;
	for (unsigned k = 0; k < MAX_PROBES; k++, h = (h + 1) & (TFPROF__SIG_SLOTS - 1)) {
		const struct tfprof__sig *s = __atomic_load_n(&tfprof__sig_table[h], __ATOMIC_ACQUIRE);
		if (!s) {
			*free_slot = h;
			return NULL;
		}
		if (tfprof__sig_matches(s, site, args, nargs))
			return s;
	}
	return NULL;
}

const struct tfprof__sig *tfprof__sig_find_slow(const struct tfprof_site *site, const struct tfprof_arg *args,
					       size_t nargs)
{
	/* A shape with a string or a copied key is never in the table: no probe for it. */
	if (!packable(args, nargs))
		return NULL;
	size_t slot;
	const struct tfprof__sig *s = probe(site, args, nargs, &slot);
	/* Once the table is full (or malloc failed), new shapes keep whole args without taking the
	 * lock: the begins of a program with more sites than signatures never meet sig_mu. */
	if (s || slot == SIZE_MAX || __atomic_load_n(&sig_full, __ATOMIC_RELAXED))
		return s;
	pthread_mutex_lock(&sig_mu);
	__atomic_fetch_add(&sig_locks, 1, __ATOMIC_RELAXED);
	/* Another thread may have added it, or taken the slot, since the look without the lock. */
	s = probe(site, args, nargs, &slot);
	if (!s && slot != SIZE_MAX && nsigs < MAX_SIGS) {
		struct tfprof__sig *n = malloc(sizeof *n + nargs * sizeof n->args[0]);
		if (n) {
			n->site = site;
			n->nargs = (uint32_t)nargs;
			for (size_t i = 0; i < nargs; i++)
				n->args[i] = (struct tfprof__sig_arg){ args[i].key, args[i].type };
			__atomic_store_n(&tfprof__sig_table[slot], n, __ATOMIC_RELEASE);
			nsigs++;
			s = n;
		}
	}
	if (!s && (nsigs >= MAX_SIGS || slot != SIZE_MAX))
		__atomic_store_n(&sig_full, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&sig_mu);
	return s;
}

size_t tfprof__sig_lock_count(void)
{
	return __atomic_load_n(&sig_locks, __ATOMIC_RELAXED);
}

void tfprof__sig_fork_prepare(void)
{
	pthread_mutex_lock(&sig_mu);
}

void tfprof__sig_fork_release(void)
{
	pthread_mutex_unlock(&sig_mu);
}
