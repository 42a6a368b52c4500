/* mpi_run.h - one job over the processes that mpirun started (`mpirun -np P
 * vvd run SPEC.json`).
 *
 * Each rank streams its own share of the rows into partial, unnormalised
 * sums G, Bt, c, n (vv_stats_compute over a row range); par_sum_stats adds
 * them up across the ranks (MPI_Allreduce, float64), so every rank holds the
 * statistics of all the rows; rank 0 solves and writes, the others stop
 * after their last collective (par_end) and exit quietly.
 *
 * On a device backend with group operations (CUDA built with NCCL), G and
 * Bt are summed between the devices before they come back to the host
 * (ncclAllReduce over one communicator of every rank, each on its own GPU),
 * and par_sum_stats sums only c, n and the timings on the host.  The host
 * sums are kept when VV_NO_NCCL=1, when a rank cannot load NCCL, or when
 * two ranks of a node share a GPU (NCCL refuses that); the log says which.
 *
 * Errors: the ranks meet at checkpoints (par_agree), where each brings its
 * status; when one failed, every rank leaves with the error of the lowest
 * failing rank, its detail prefixed "rank R: ".  A rank that fails between
 * checkpoints returns from its job and joins the next checkpoint with its
 * error through par_leave, so no rank waits for it.  Collectives other
 * than checkpoints only follow a checkpoint that succeeded.
 *
 * Without MPI (built with -Dmpi=disabled, or not started by mpirun) there is
 * one process of rank 0 and every function returns at once: the rest of
 * vvd calls them unconditionally.  Only the main thread calls them.
 */
#ifndef VV_MPI_RUN_H
#define VV_MPI_RUN_H

#include "vv/lasso.h"

#include <stddef.h>
#include <stdint.h>

/* 1 when vvd was built with MPI. */
int par_built(void);

/* Starts MPI when this process was started by mpirun (OMPI_COMM_WORLD_SIZE
 * or PMI_SIZE in the environment).  Returns 0, or VV_EINVAL (with a detail
 * saying so) when mpirun started several processes of a vvd built without
 * MPI. */
int par_init(void);

/* Ends MPI (once every rank is done); a no-op without it. */
void par_finalize(void);

/* This process's rank (0 without MPI) and the number of ranks (1). */
int par_rank(void);
int par_size(void);

/* This process's rank among the ranks of its node (0 without MPI): a node's
 * ranks on "auto" take its GPUs in turn (server/device.c). */
int par_local_rank(void);

/* CPU workers a statistics pass of this rank should use: the cores it may
 * run on shared by the ranks of its node; 0 (choose) without MPI. */
int par_workers(void);

/* Rank `rank`'s share [*begin, *end) of items [0, n) in whole batches of
 * `batch` (vv_stats_share of the batches): each batch is processed as one
 * process would. */
void par_share_batches(int64_t n, int64_t batch, int rank, int64_t *begin, int64_t *end);

/* A checkpoint: every rank passes its status rc (0 or a negative vv_err) and
 * field (the JSON pointer at fault, may be NULL).  Returns 0 when every rank
 * succeeded; otherwise, on every rank, the error of the lowest failing rank,
 * with vv_err_detail() "rank R: its detail" and field set to its field. */
int par_agree(int rc, char *field, size_t fieldsz);

/* Sums the G, Bt, c and n of st[0..np) (one pass's problems) over the
 * ranks (in float64), in place on every rank; seconds becomes the slowest
 * rank's pass plus the sums.  Every rank must hold statistics of the same
 * K and D. */
int par_sum_stats(vv_stats *st, int np);

/* This rank's statistics pass over the np problems of src
 * (vv_stats_compute_set): with split, its share of their units in whole
 * batches of the pass (vv_stats_share of the batches, so that every batch
 * is read, and computed by a compress job's forward passes, as in one
 * process), else all of them (its own shards); a rank whose share is empty
 * gets zeros.  Under MPI the pass uses par_workers() workers unless opts
 * says.  The caller then meets the others at par_agree and sums with
 * par_sum_stats; when the sums go between the devices, the ranks meet once
 * the pass is over, inside this call, and a failure there returns the
 * agreed error (par_agree then returns it at once). */
int par_stats_share(int np, const vv_stats_src *src, const vv_stats_opts *opts, int split,
                    vv_stats *out);

/* The sum of v over the ranks (v without MPI). */
int64_t par_sum_i64(int64_t v);

/* Copies bytes of buf from rank 0 (root) to every rank. */
int par_bcast(void *buf, size_t bytes);
int par_bcast_from(int root, void *buf, size_t bytes);

/* This rank is past its last collective of the job: par_leave does nothing
 * more. */
void par_end(void);

/* Called with the job's status once it returned: when this rank failed and
 * has not yet told the others (no checkpoint saw its error, par_end not
 * called), joins the checkpoint they wait at with it.  Returns the error
 * the job ends with (rc, or that of a lower failing rank). */
int par_leave(int rc, char *field, size_t fieldsz);

#endif
