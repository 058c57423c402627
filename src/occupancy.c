/* SPDX-License-Identifier: Apache-2.0 */
/* Theoretical occupancy (see occupancy.h), computed the way the CUDA occupancy calculator does.
 *
 * Formula, per multiprocessor (SM), for a block of T threads using R registers per thread and S
 * bytes of shared memory (static + dynamic):
 *   warps per block     W = ceil(T / warp_size)                      (a partial warp takes a slot)
 *   limit by blocks     Lb = max_blocks_per_sm
 *   limit by warps      Lw = floor(max_warps_per_sm / W)
 *   limit by registers  (R > 0) registers are allocated per warp, rounded up to 256:
 *                       Rw = roundup(R * warp_size, 256); the register file is split among P
 *                       sub-partitions that each hold whole warps:
 *                       Lr = floor(floor(regs_per_sm / P) / Rw) * P / W       (floor of the whole)
 *   limit by shared mem a block takes S plus what the driver reserves per block, rounded up to
 *                       the allocation unit: Sb = roundup(S + reserved, unit);
 *                       Ls = floor(C / Sb) where C is the shared memory configured on the SM
 *   active blocks       B = min(Lb, Lw, Lr, Ls)
 *   occupancy           100 * B * W / max_warps_per_sm
 * Per compute capability major (cc):
 *   - register allocation unit 256 for every cc from 3 on; P = 4 sub-partitions, except 2 on
 *     cc 6.0 (GP100);
 *   - shared memory allocation unit 256 bytes up to cc 7.x, 128 bytes from cc 8.0 on;
 *   - reserved shared memory per block: 1 KiB from cc 8.0 on, none before.
 *   C is the carveout the driver chose for the launch (the kernel record's sharedMemoryExecuted)
 *   on cc >= 7, where shared memory and L1 share one array; when it is unknown (0), or could
 *   not hold even one block (such records exist), the SM's whole shared memory is used, as
 *   TensorFlow does (its default carveout preference). Before cc 7 C is the SM's shared memory.
 *   Limits that only decide whether a launch is legal (threads, registers and shared memory per
 *   block, registers per thread) are not checked: the kernel ran, so it met them.
 *
 * Sources (facts only; no code copied):
 *   - CUDA 13.0's cuda_occupancy.h, the calculator behind cudaOccupancyMaxActiveBlocksPerMultiprocessor
 *     that TensorFlow's CUPTI collector calls (openxla/xla xla/backends/profiler/gpu/
 *     cupti_collector.cc, GetOccupancy): cudaOccRegAllocationGranularity (256),
 *     cudaOccSubPartitionsPerMultiprocessor (4; 2 on cc 6.0), cudaOccSMemAllocationGranularity
 *     (256 up to cc 7, 128 from cc 8), cudaOccMaxBlocksPerSMRegsLimit (per-warp rounding and
 *     whole warps per sub-partition), cudaOccMaxBlocksPerSMSmemLimit (reserved memory added to
 *     the block's, the configured size divided by the rounded block size), cudaOccSMemPerBlock
 *     ("Starting Ampere, CUDA driver reserves additional shared memory per block").
 *   - CUDA C++ Programming Guide, compute capabilities 8.x and 9.0, shared memory: the 1 KB of
 *     an SM's shared memory not available to a block is reserved for system use
 *     (cudaDeviceProp::reservedSharedMemPerBlock); Nsight Compute shows it as "Driver Shared
 *     Memory Per Block", 1.02 KB. That the block limit divides the configured size (Nsight
 *     Compute's "Shared Memory Configuration Size", which Nsight Systems shows from
 *     sharedMemoryExecuted): https://forums.developer.nvidia.com/t/
 *     how-the-shared-memory-configuration-size-is-calcuated/320732
 *   - Occupancy is "the ratio of the number of active warps per multiprocessor to the maximum
 *     number of possible active warps" (CUDA C++ Best Practices Guide, Occupancy; Nsight
 *     Compute's theoretical occupancy is the same ratio from the limits above).
 * TensorFlow divides active threads (B * T) by the SM's maximum threads instead of warps, and
 * leaves the driver's reserved memory out; both agree with this when T is a multiple of the warp
 * size and shared memory does not limit. */
#include "occupancy.h"

#include <stdbool.h>
#include <stdio.h>

#define REG_ALLOC_UNIT 256u

static uint64_t round_up(uint64_t x, uint64_t unit)
{
	return (x + unit - 1) / unit * unit;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

double tfprof__occupancy_pct(const struct tfprof__dev_device *dev, const struct tfprof__occ_launch *l)
{
	/* Allocation rules are known for cc 5.x to 12.x (the calculator's table); anything else
	 * would be a guess. */
	if (!dev || !l || dev->cc_major < 5 || dev->cc_major > 12)
		return -1;
	if (!dev->warp_size || !dev->max_warps_per_sm || !dev->max_blocks_per_sm || !dev->regs_per_sm ||
	    !dev->smem_per_sm)
		return -1;
	if (l->threads_per_block == 0 || l->shared_per_block < 0)
		return -1;
	uint64_t warps = (l->threads_per_block + dev->warp_size - 1) / dev->warp_size;
	if (warps > dev->max_warps_per_sm)
		return -1;
	uint64_t blocks = min_u64(dev->max_blocks_per_sm, dev->max_warps_per_sm / warps);
	if (l->regs_per_thread) {
		uint64_t per_warp = round_up((uint64_t)l->regs_per_thread * dev->warp_size, REG_ALLOC_UNIT);
		uint64_t parts = dev->cc_major == 6 && dev->cc_minor == 0 ? 2 : 4;
		uint64_t warps_fit = (dev->regs_per_sm / parts) / per_warp * parts;
		blocks = min_u64(blocks, warps_fit / warps);
	}
	uint64_t unit = dev->cc_major >= 8 ? 128 : 256;
	uint64_t reserved = dev->cc_major >= 8 ? 1024 : 0;
	uint64_t need = (uint64_t)l->shared_per_block + reserved;
	if (need) {
		uint64_t per_block = round_up(need, unit);
		uint64_t avail = dev->smem_per_sm;
		if (dev->cc_major >= 7 && l->shared_config >= per_block && l->shared_config <= dev->smem_per_sm)
			avail = l->shared_config;
		blocks = min_u64(blocks, avail / per_block);
	}
	/* Not even one block fits: the launch ran, so what describes it is wrong. */
	if (blocks == 0)
		return -1;
	return 100.0 * (double)(blocks * warps) / (double)dev->max_warps_per_sm;
}

char *tfprof__occupancy_format(double pct, char *buf, size_t cap)
{
	if (!(pct >= 0))
		pct = 0;
	if (pct > 1e6)
		pct = 1e6;
	/* Integer arithmetic only: printf's %g would write a decimal comma in some locales, which
	 * xprof's parser does not read. */
	uint64_t scaled = (uint64_t)(pct * 10000.0 + 0.5);
	unsigned frac = (unsigned)(scaled % 10000);
	int n = snprintf(buf, cap, "%llu", (unsigned long long)(scaled / 10000));
	if (frac && n > 0 && (size_t)n < cap) {
		char f[6];
		snprintf(f, sizeof f, ".%04u", frac);
		size_t len = 5;
		while (f[len - 1] == '0')
			len--;
		f[len] = '\0';
		snprintf(buf + n, cap - (size_t)n, "%s", f);
	}
	return buf;
}
