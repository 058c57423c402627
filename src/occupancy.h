/* SPDX-License-Identifier: Apache-2.0 */
/* Theoretical occupancy of a kernel launch: the share of a multiprocessor's warp slots that the
 * launch could keep busy, given its block size, registers and shared memory and the device's
 * limits. xprof reads it as occ_pct in kernel_details (its kernel stats' occupancy column). The
 * formula and its sources are in occupancy.c. */
#ifndef TFPROF_OCCUPANCY_H
#define TFPROF_OCCUPANCY_H

#include <stddef.h>
#include <stdint.h>

#include "device_events.h"

/* What a launch asks of a multiprocessor. */
struct tfprof__occ_launch {
	uint64_t threads_per_block; /* block x * y * z */
	uint32_t regs_per_thread;
	int64_t shared_per_block;   /* static + dynamic shared memory, bytes, as the launch asked */
	uint32_t shared_config;     /* shared memory configured per SM for the launch, bytes; 0 = unknown */
};

/* Theoretical occupancy in percent (0 < pct <= 100): active warps per SM over the SM's maximum,
 * times 100. Returns a negative value when it cannot be known: a limit of dev is 0 (not
 * reported), the compute capability is one whose allocation rules are not known here, or the
 * launch as described could not run on dev at all (its data must then be wrong). dev may be
 * NULL (unknown). Pure: no state, thread-safe. */
double tfprof__occupancy_pct(const struct tfprof__dev_device *dev, const struct tfprof__occ_launch *l);

/* Writes pct (0..100, as returned above) as xprof's occ_pct value reads it: a plain decimal
 * with at most 4 decimals and no trailing zeros ("100", "25", "66.6667"), the same in every
 * locale. Returns buf. */
char *tfprof__occupancy_format(double pct, char *buf, size_t cap);

#endif
