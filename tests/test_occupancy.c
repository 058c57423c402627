/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of theoretical occupancy (src/occupancy.c): each limit (blocks, warps, registers with
 * their allocation rounding and sub-partitions, shared memory with its allocation unit, the
 * driver's reserved memory and the launch's carveout) on hand-computed cases, the cases where
 * occupancy cannot be known, and the locale-independent occ_pct text. Every expected value is
 * worked out in the comment above it. */
#include <locale.h>

#include "occupancy.h"
#include "tt.h"

/* Limits as the DEVICE record gives them (CUDA C++ Programming Guide, technical
 * specifications per compute capability). */
static const struct tfprof__dev_device H100 = {
	.cc_major = 9, .cc_minor = 0, .warp_size = 32, .max_warps_per_sm = 64, .max_blocks_per_sm = 32,
	.regs_per_sm = 65536, .smem_per_sm = 233472, /* 228 KiB */
};
static const struct tfprof__dev_device SM86 = {
	.cc_major = 8, .cc_minor = 6, .warp_size = 32, .max_warps_per_sm = 48, .max_blocks_per_sm = 16,
	.regs_per_sm = 65536, .smem_per_sm = 102400, /* 100 KiB */
};
static const struct tfprof__dev_device V100 = {
	.cc_major = 7, .cc_minor = 0, .warp_size = 32, .max_warps_per_sm = 64, .max_blocks_per_sm = 32,
	.regs_per_sm = 65536, .smem_per_sm = 98304, /* 96 KiB */
};
static const struct tfprof__dev_device P100 = {
	.cc_major = 6, .cc_minor = 0, .warp_size = 32, .max_warps_per_sm = 64, .max_blocks_per_sm = 32,
	.regs_per_sm = 65536, .smem_per_sm = 65536,
};

static double occ(const struct tfprof__dev_device *d, uint64_t threads, uint32_t regs, int64_t shared,
		  uint32_t config)
{
	struct tfprof__occ_launch l = { .threads_per_block = threads, .regs_per_thread = regs,
					.shared_per_block = shared, .shared_config = config };
	return tfprof__occupancy_pct(d, &l);
}

/* A launch on a device and the occupancy it must get. */
struct known {
	const struct tfprof__dev_device *dev;
	uint64_t threads;
	uint32_t regs;
	int64_t shared;
	uint32_t config;
	double want;
};

/* Each case with its hand computation; H100: 64 warps, 32 blocks, 65536 registers, 233472 B. */
static const struct known cases[] = {
	/* ---- Warps and blocks. */
	/* 256 threads = 8 warps, 32 registers: warps allow 64/8 = 8 blocks; registers 32*32 = 1024
	 * per warp, 16384 per sub-partition hold 16 warps, 4 sub-partitions 64 warps = 8 blocks;
	 * shared memory only the 1 KiB reserve: 233472/1024 = 228 blocks; blocks 32.
	 * min = 8 blocks = 64 warps of 64: 100. */
	{ &H100, 256, 32, 0, 0, 100.0 },
	/* 96 threads = 3 warps: warps allow 64/3 = 21 blocks (registers as above: 64/3 = 21);
	 * 21 * 3 = 63 warps of 64 = 98.4375. */
	{ &H100, 96, 32, 0, 0, 98.4375 },
	/* 32 threads = 1 warp, 32 registers: the block limit binds, 32 blocks = 32 warps of 64 = 50. */
	{ &H100, 32, 32, 0, 0, 50.0 },
	/* No registers reported (0): that limit is left out; 256 threads = 8 blocks of 8 warps = 100. */
	{ &H100, 256, 0, 0, 0, 100.0 },
	/* ---- A partial warp takes a whole warp slot. */
	/* 33 threads = 2 warps. H100: warps allow 64/2 = 32 blocks, blocks 32, registers 64 warps /
	 * 2 = 32: 32 blocks * 2 warps = 64 of 64 = 100 (counting 1 warp would give 32 of 64 = 50). */
	{ &H100, 33, 32, 0, 0, 100.0 },
	/* cc 8.6: blocks 16, warps 48/2 = 24, registers 64/2 = 32, shared 102400/1024 = 100:
	 * 16 blocks * 2 warps = 32 of 48 = 66.6666...%. */
	{ &SM86, 33, 32, 0, 0, 200.0 / 3.0 },
	/* ---- Registers. */
	/* 128 registers: 128*32 = 4096 per warp; 16384 per sub-partition hold 4 warps, 16 per SM;
	 * 256 threads = 8 warps: 2 blocks = 16 warps of 64 = 25 (65536/(128*256) = 2 blocks). */
	{ &H100, 256, 128, 0, 0, 25.0 },
	/* 40 registers: 40*32 = 1280 per warp (a multiple of 256); 16384/1280 = 12 warps per
	 * sub-partition, 48 per SM; 64 threads = 2 warps: 24 blocks = 48 warps of 64 = 75
	 * (without sub-partitions 65536/1280 = 51 warps would give 25 blocks, 78.125). */
	{ &H100, 64, 40, 0, 0, 75.0 },
	/* 33 registers: 33*32 = 1056, allocated in units of 256: 1280, as for 40: 75. */
	{ &H100, 64, 33, 0, 0, 75.0 },
	/* GP100 (cc 6.0) has 2 sub-partitions: 32768/1280 = 25 warps each, 50 per SM; 2 warps per
	 * block: 25 blocks = 50 warps of 64 = 78.125 (no reserve, no shared memory: no limit). */
	{ &P100, 64, 40, 0, 0, 78.125 },
	/* ---- Shared memory. */
	/* 100 KiB dynamic: 102400 + 1024 reserved = 103424, a multiple of 128; the SM's
	 * 233472 / 103424 = 2 blocks; 256 threads = 8 warps: 16 warps of 64 = 25. */
	{ &H100, 256, 32, 102400, 0, 25.0 },
	/* The same launch with the driver's carveout at 132 KiB (135168): 135168 / 103424 = 1 block
	 * = 8 warps of 64 = 12.5. */
	{ &H100, 256, 32, 102400, 135168, 12.5 },
	/* 3226 bytes static + 1024 reserved = 4250, rounded up to 128: 4352; carveout 100 KiB:
	 * 102400 / 4352 = 23 blocks of 1 warp = 23 of 64 = 35.9375 (unrounded, 4250 would fit 24;
	 * without the reserve, 3328 would fit 30). */
	{ &H100, 32, 32, 3226, 102400, 35.9375 },
	/* 5000 bytes static + 1024 = 6024 -> 6144 per block. A carveout too small for even one
	 * block (4096, as some records say) is not believed: the SM's whole 233472 / 6144 = 38
	 * blocks, so the 32-block limit binds: 32 warps of 64 = 50. One larger than the SM is not
	 * believed either. */
	{ &H100, 32, 32, 5000, 4096, 50.0 },
	{ &H100, 32, 32, 5000, 300000, 50.0 },
	/* cc 7.0 allocates in units of 256 and reserves nothing: 4200 -> 4352; 98304 / 4352 = 22
	 * blocks of 1 warp = 22 of 64 = 34.375 (units of 128 would give 4224 and 23 blocks; the
	 * 1 KiB reserve 5376 and 18). */
	{ &V100, 32, 32, 4200, 0, 34.375 },
};

static void test_known_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct known *c = &cases[i];
		double got = occ(c->dev, c->threads, c->regs, c->shared, c->config);
		/* The values are exact in binary (n/64 times 100) but for n/48: compared to 1e-9. */
		if (!(got > c->want - 1e-9 && got < c->want + 1e-9))
			fail_msg("case %zu: occupancy %.9f, expected %.9f", i, got, c->want);
	}
}

static void test_unknown_is_negative(void **state)
{
	(void)state;
	assert_true(occ(NULL, 256, 32, 0, 0) < 0);
	/* Any limit not reported (0). */
	for (size_t f = 0; f < 5; f++) {
		struct tfprof__dev_device d = H100;
		uint32_t *field[] = { &d.warp_size, &d.max_warps_per_sm, &d.max_blocks_per_sm, &d.regs_per_sm,
				      &d.smem_per_sm };
		*field[f] = 0;
		assert_true(occ(&d, 256, 32, 0, 0) < 0);
	}
	/* Compute capabilities whose allocation rules are not known here. */
	int majors[] = { 0, 3, 4, 13 };
	for (size_t i = 0; i < sizeof majors / sizeof *majors; i++) {
		struct tfprof__dev_device d = H100;
		d.cc_major = majors[i];
		assert_true(occ(&d, 256, 32, 0, 0) < 0);
	}
	/* Launches that could not have run as described. */
	assert_true(occ(&H100, 0, 32, 0, 0) < 0);          /* no threads */
	assert_true(occ(&H100, 4096, 32, 0, 0) < 0);       /* 128 warps > 64 */
	assert_true(occ(&H100, 256, 32, -1, 0) < 0);       /* negative shared memory */
	assert_true(occ(&H100, 256, 32, 300 * 1024, 0) < 0); /* more than the SM has */
	/* 255 registers: 8160 per warp, allocated 8192; 2 warps per sub-partition, 8 per SM, fewer
	 * than one block of 1024 threads (32 warps). */
	assert_true(occ(&H100, 1024, 255, 0, 0) < 0);
}

static void check_format(double pct, const char *want)
{
	char buf[32];
	assert_string_equal(tfprof__occupancy_format(pct, buf, sizeof buf), want);
}

static void test_format(void **state)
{
	(void)state;
	check_format(100.0, "100");
	check_format(25.0, "25");
	check_format(12.5, "12.5");
	check_format(98.4375, "98.4375");
	check_format(1.5625, "1.5625");
	check_format(200.0 / 3.0, "66.6667");
	check_format(0.0, "0");
	check_format(-1.0, "0");
	/* A locale with a decimal comma must not change the text xprof parses. */
	if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8"))
		check_format(29.6875, "29.6875");
	setlocale(LC_NUMERIC, "C");
	/* A short buffer is cut, never overrun. */
	char small[3];
	tfprof__occupancy_format(98.4375, small, sizeof small);
	assert_string_equal(small, "98");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_cases),
		cmocka_unit_test(test_unknown_is_negative),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
