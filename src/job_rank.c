/* SPDX-License-Identifier: Apache-2.0 */
/* Job ranks from launcher variables (see job_rank.h). The order is most specific first: a job
 * under Slurm's srun with Open MPI sets both, and the MPI rank is the one users see. */
#include "job_rank.h"

#include <errno.h>
#include <stdlib.h>

long tfprof__job_rank(const char *(*get)(const char *name))
{
	static const char *const vars[] = { "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK",
					    "SLURM_PROCID", "RANK", "LOCAL_RANK" };
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *e = get(vars[i]);
		if (!e || !*e)
			continue;
		char *end;
		errno = 0;
		long r = strtol(e, &end, 10);
		if (!errno && !*end && r >= 0)
			return r;
	}
	return -1;
}
