/* SPDX-License-Identifier: Apache-2.0 */
/* The hand-written XSpace encoder (src/xspace_write.c) against protobuf-c's own packing of the
 * same profile: byte for byte over random profiles with every stat kind, empty and huge values,
 * negative ids and times, empty names, planes without lines and lines without events. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "profile.h"
#include "xplane.pb-c.h"
#include "xspace_write.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t pick(uint64_t n)
{
	return n ? next() % n : 0;
}

/* A value from the edges as often as from the middle. */
static int64_t any_i64(void)
{
	static const int64_t edge[] = { 0, 1, -1, 127, 128, INT64_MAX, INT64_MIN, 1ll << 35, -(1ll << 35) };
	return pick(2) ? edge[pick(sizeof edge / sizeof edge[0])] : (int64_t)next() >> pick(64);
}

static const char *any_name(char *buf, size_t cap)
{
	static const char *const fixed[] = { "", "Train", "cudaLaunchKernel", "_Z6kernelPfi", "Stream #7(Compute)",
					     "ünïcödé ✓", "/device:GPU:0", "step_num", "correlation_id" };
	if (pick(4))
		return fixed[pick(sizeof fixed / sizeof fixed[0])];
	size_t n = pick(3) ? pick(12) : 200 + pick(cap - 201);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + pick(26));
	buf[n] = '\0';
	return buf;
}

static void add_stat(struct tfprof__profile *p, struct tfprof__stat *s)
{
	char buf[512];
	switch (s->type) {
	case TFPROF_STAT_I64:
		s->v.i64 = any_i64();
		break;
	case TFPROF_STAT_U64:
		s->v.u64 = pick(4) ? (uint64_t)any_i64() : UINT64_MAX;
		break;
	case TFPROF_STAT_F64: {
		static const double edge[] = { 0.0, -0.0, 1.5, -2.25e300, 1e-320 };
		s->v.f64 = pick(5) ? edge[pick(5)] : pick(2) ? INFINITY : NAN;
		break;
	}
	default:
		s->v.str = tfprof__strtab_intern(&p->strs, any_name(buf, sizeof buf));
		break;
	}
}

static uint32_t any_type(void)
{
	return (uint32_t)(1 + pick(4));
}

static void random_profile(struct tfprof__profile *p)
{
	char buf[512];
	assert_int_equal(tfprof__profile_init(p), 0);
	size_t nplanes = pick(5);
	for (size_t i = 0; i < nplanes; i++) {
		struct tfprof__plane *pl = tfprof__profile_add_plane(p, pick(3) ? (int64_t)i : any_i64(),
								     any_name(buf, sizeof buf));
		assert_non_null(pl);
		size_t nlines = pick(6);
		for (size_t j = 0; j < nlines; j++) {
			struct tfprof__line *l = tfprof__plane_add_line(p, pl, pick(2) ? (int64_t)j : any_i64(),
									any_name(buf, sizeof buf));
			assert_non_null(l);
			size_t nev = pick(4) ? pick(40) : 0;
			int64_t base = pick(3) ? (int64_t)pick(1000000) : -(int64_t)pick(1ll << 40);
			for (size_t k = 0; k < nev; k++) {
				uint32_t name = tfprof__strtab_intern(&p->strs, any_name(buf, sizeof buf));
				int64_t start = base + (int64_t)pick(1ll << (pick(2) ? 20 : 44));
				int64_t dur = pick(3) ? (int64_t)pick(100000) : pick(2) ? 0 : (int64_t)pick(1ll << 44);
				assert_non_null(tfprof__line_add_event(l, start, dur, name));
				size_t ns = pick(9);
				for (size_t q = 0; q < ns; q++) {
					uint32_t key = tfprof__strtab_intern(&p->strs, any_name(buf, sizeof buf));
					struct tfprof__stat *s = tfprof__line_add_stat(l, key, any_type());
					assert_non_null(s);
					add_stat(p, s);
				}
			}
		}
		for (size_t q = pick(4); q > 0; q--) {
			uint32_t key = tfprof__strtab_intern(&p->strs, any_name(buf, sizeof buf));
			struct tfprof__stat *s = tfprof__plane_add_stat(pl, key, any_type());
			assert_non_null(s);
			add_stat(p, s);
		}
		for (size_t q = pick(4); q > 0; q--) {
			uint32_t ev = tfprof__strtab_intern(&p->strs, any_name(buf, sizeof buf));
			uint32_t key = tfprof__strtab_intern(&p->strs, any_name(buf, sizeof buf));
			struct tfprof__stat *s = tfprof__plane_add_meta_stat(pl, ev, key, any_type());
			assert_non_null(s);
			add_stat(p, s);
		}
	}
	for (size_t q = pick(3); q > 0; q--)
		assert_int_equal(tfprof__profile_add_error(p, "error %s", any_name(buf, sizeof buf)), 0);
	for (size_t q = pick(3); q > 0; q--)
		assert_int_equal(tfprof__profile_add_warning(p, "warning %s", any_name(buf, sizeof buf)), 0);
	p->hostname = pick(4) ? strdup(any_name(buf, sizeof buf)) : NULL;
}

static void assert_same_bytes(const struct tfprof__profile *p, int round)
{
	uint8_t *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	assert_int_equal(tfprof__xspace_encode(p, &a, &na), 0);
	assert_int_equal(tfprof__xspace_encode_pbc(p, &b, &nb), 0);
	if (na != nb || memcmp(a, b, na)) {
		size_t i = 0;
		while (i < na && i < nb && a[i] == b[i])
			i++;
		fail_msg("round %d: hand-written encoder differs from protobuf-c: %zu vs %zu bytes, first "
			 "difference at byte %zu", round, na, nb, i);
	}
	/* And it is a valid XSpace. */
	Tensorflow__Profiler__XSpace *s = tensorflow__profiler__xspace__unpack(NULL, na, a);
	assert_non_null(s);
	assert_int_equal(s->n_planes, p->nplanes);
	tensorflow__profiler__xspace__free_unpacked(s, NULL);
	free(a);
	free(b);
}

static void random_profiles_encode_as_protobuf_c_does(void **state)
{
	(void)state;
	for (int round = 0; round < 400; round++) {
		struct tfprof__profile p = { 0 };
		random_profile(&p);
		assert_same_bytes(&p, round);
		tfprof__profile_free(&p);
	}
}

static void empty_profile(void **state)
{
	(void)state;
	struct tfprof__profile p = { 0 };
	assert_int_equal(tfprof__profile_init(&p), 0);
	assert_same_bytes(&p, -1);
	tfprof__profile_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_profile),
		cmocka_unit_test(random_profiles_encode_as_protobuf_c_does),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
