/* SPDX-License-Identifier: Apache-2.0 */
/* The rank of a process in an MPI or launcher job, from the variables the launchers set. Shared
 * by the library (which names profiles <host>.rank<r>) and tfprof-start (which marks the rank's
 * first process before it execs the program). */
#ifndef TFPROF_JOB_RANK_H
#define TFPROF_JOB_RANK_H

/* The first of OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK, SLURM_PROCID, RANK, LOCAL_RANK that
 * holds a whole number >= 0, read with get; -1 when none does. */
long tfprof__job_rank(const char *(*get)(const char *name));

#endif
