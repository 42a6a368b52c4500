/* nccl_check.c - the statistics of `mpirun -np P` ranks on their GPUs
 * summed between the devices (server/mpi_run.c's path: par_stats_share on
 * the CUDA backend, G and Bt summed with NCCL before they come back), against
 * one process's on the CPU (tests/gpu/device-check.sh).
 *
 * Each rank takes the GPU of its local rank (modulo the GPUs there are);
 * ranks sharing a GPU keep the sums on the host, and the log says which
 * path was taken (device-check.sh reads it).  The rows: N x K features and
 * N x D outputs from a seeded generator, the same on every rank.
 *
 *   mpirun -np P nccl_check [--n N --k K --d D]
 * Exit status: 0 when rank 0's summed G, Bt and c equal the CPU's to 1e-12
 * relative, 1 otherwise, 77 without a usable GPU. */
#include "mpi_run.h"
#include "vv/array.h"
#include "vv/backend_cuda.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double max_rel(const double *a, const double *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    return s > 0 ? d / s : d;
}

int main(int argc, char **argv)
{
    int64_t n = 20000, k = 256, d = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--k"))
            k = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--d"))
            d = atoll(argv[i + 1]);
    }
    if (par_init() < 0) {
        fprintf(stderr, "nccl_check: %s\n", vv_err_detail());
        return 1;
    }
    int count = vv_backend_cuda_count(), rank = par_rank();
    vv_backend *be = NULL;
    int rc = count > 0 ? vv_backend_cuda_open(par_local_rank() % count, &be)
                       : vv_fail(VV_EDEVICE, "no CUDA device");
    if ((rc = par_agree(rc, NULL, 0)) < 0) {
        fprintf(stderr, "nccl_check: no usable GPU: %s\n", vv_err_detail());
        par_finalize();
        return 77;
    }
    double *phi = malloc((size_t)(n * k) * sizeof *phi),
           *psi = malloc((size_t)(n * d) * sizeof *psi);
    if (!phi || !psi)
        return 1;
    vv_rng r;
    vv_rng_seed(&r, 11);
    for (int64_t i = 0; i < n * k; i++)
        phi[i] = fmax(0, vv_rng_normal(&r));
    for (int64_t i = 0; i < n * d; i++)
        psi[i] = phi[(i / d) * k + i % k] + 0.1 * vv_rng_normal(&r);
    vv_rows *a = NULL, *b = NULL;
    vv_rows_from_memory("phi", n, k, phi, &a);
    vv_rows_from_memory("psi", n, d, psi, &b);
    vv_stats st = {0}, one = {0};
    vv_stats_opts so = {.chunk_rows = 2048, .be = be};
    vv_stats_src src = {a, b, 1, NULL};
    rc = par_stats_share(1, &src, &so, 1, &st);
    if ((rc = par_agree(rc, NULL, 0)) == 0)
        rc = par_sum_stats(&st, 1);
    par_end();
    int status = rc < 0;
    if (rc < 0)
        fprintf(stderr, "nccl_check: rank %d: %s\n", rank, vv_err_detail());
    if (rc == 0 && rank == 0) {
        vv_stats_opts co = {.chunk_rows = 2048};
        if ((rc = vv_stats_compute(a, b, &co, &one)) < 0)
            return 1;
        double dg = max_rel(st.G, one.G, k * k), db = max_rel(st.Bt, one.Bt, k * d),
               dc = fabs(st.c - one.c) / fabs(one.c);
        status = !(st.n == n && dg <= 1e-12 && db <= 1e-12 && dc <= 1e-12);
        printf("%s - %d ranks against one process: G %.1e, Bt %.1e, c %.1e relative (n %lld)\n",
               status ? "not ok" : "ok", par_size(), dg, db, dc, (long long)st.n);
    }
    vv_stats_free(&st);
    vv_stats_free(&one);
    vv_rows_free(a);
    vv_rows_free(b);
    free(phi);
    free(psi);
    be->ops->close(be);
    par_finalize();
    return status;
}
