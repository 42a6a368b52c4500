/* mpi_run.c - the ranks of one job under mpirun (see mpi_run.h); with
 * VV_HAVE_MPI undefined, a single process of rank 0. */
#include "mpi_run.h"

#include "vv/blas.h"
#include "vv/err.h"
#include "vv/log.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef VV_HAVE_MPI
#include <mpi.h>
#endif

static struct {
    int on;         /* MPI was started */
    int rank, size; /* 0 and 1 without MPI */
    int local;      /* ranks on this node */
    int local_rank; /* this rank among them */
    int done;       /* past the last collective, or a failure was agreed on */
} g = {0, 0, 1, 1, 0, 0};

/* Installs the sums between the devices in o when they apply (mpi_run.h). */
static void device_sums_hook(vv_stats_opts *o);

/* Whether mpirun (OpenMPI, or a PMI launcher: MPICH, Slurm) started us, and
 * how many ranks it started (0: not started by it). */
static int launched_size(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v || !v[0])
        v = getenv("PMI_SIZE");
    return v && v[0] ? atoi(v) : 0;
}

int par_built(void)
{
#ifdef VV_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int par_rank(void)
{
    return g.rank;
}
int par_size(void)
{
    return g.size;
}

int par_local_rank(void)
{
    return g.local_rank;
}

void par_share_batches(int64_t n, int64_t batch, int rank, int64_t *begin, int64_t *end)
{
    vv_stats_share((n + batch - 1) / batch, rank, g.size, begin, end);
    *begin *= batch;
    *end = *end * batch < n ? *end * batch : n;
}

int par_workers(void)
{
    if (!g.on)
        return 0;
    /* Under a binding (mpirun binds each of a few ranks to a core by
     * default) the mask is this rank's share already; unbound, the node's
     * cores are shared by its ranks. */
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
    int w = mine < online ? mine : (int)(online / (g.local > 0 ? g.local : 1));
    return w < 1 ? 1 : w;
}

void par_end(void)
{
    g.done = 1;
}

int par_stats_share(int np, const vv_stats_src *src, const vv_stats_opts *opts, int split,
                    vv_stats *out)
{
    vv_stats_opts o = *opts;
    if (!o.workers)
        o.workers = par_workers();
    device_sums_hook(&o);
    if (!split || g.size == 1 || np < 1 || src[0].per_unit < 1)
        return vv_stats_compute_set(np, src, &o, out);
    /* (Shapes that do not agree fail in the pass, on every rank.) */
    int64_t n = vv_rows_n(src[0].phi) / src[0].per_unit;
    /* Whole batches, so that each is read (and, for compress, computed by
     * the forward passes, whose float32 results depend on the batch) as in
     * one process: the sums then differ only in their order. */
    int64_t b, e;
    par_share_batches(n, vv_stats_batch(np, src, o.chunk_rows), g.rank, &b, &e);
    if (e > b) {
        o.row0 = b;
        o.nrows = e - b;
        /* One BLAS thread per worker, as a pass of several workers has (and
         * as the rank's cores allow): the forward passes' float32 results
         * depend on how BLAS splits them. */
        int threads = vv_blas_threads();
        vv_blas_set_threads(1);
        int rc = vv_stats_compute_set(np, src, &o, out);
        vv_blas_set_threads(threads);
        return rc;
    }
    /* Fewer batches than ranks: nothing to add here. */
    memset(out, 0, (size_t)np * sizeof *out);
    int rc = 0;
    for (int j = 0; j < np; j++) {
        int64_t k = vv_rows_cols(src[j].phi), d = vv_rows_cols(src[j].psi);
        out[j].k = k;
        out[j].d = d;
        out[j].G = calloc((size_t)(k * k), sizeof *out[j].G);
        out[j].Bt = calloc((size_t)(k * d), sizeof *out[j].Bt);
        if (!out[j].G || !out[j].Bt)
            rc = vv_fail(VV_ENOMEM, "sufficient statistics: out of memory");
        if (!o.device_sums && rc < 0)
            break;
        if (!o.device_sums)
            continue;
        /* The others sum on their devices: this rank brings its zeros there
         * (every rank calls device_sums once a problem, failed or not). */
        vv_backend *be = o.be;
        size_t kk = (size_t)(k * k) * sizeof(double), kd = (size_t)(k * d) * sizeof(double);
        double *dG = rc == 0 ? be->ops->alloc(be, kk) : NULL;
        double *dBt = rc == 0 ? be->ops->alloc(be, kd) : NULL;
        if (rc == 0 && (!dG || !dBt))
            rc = vv_fail(VV_ENOMEM, "sufficient statistics on %s: out of memory", be->ops->name);
        if (rc == 0 && (rc = be->ops->upload(be, dG, out[j].G, kk)) == 0)
            rc = be->ops->upload(be, dBt, out[j].Bt, kd);
        rc = o.device_sums(o.device_sums_ctx, be, rc, dG, dBt, k, d);
        if (rc == 0 && (rc = be->ops->download(be, out[j].G, dG, kk)) == 0)
            rc = be->ops->download(be, out[j].Bt, dBt, kd);
        be->ops->free(be, dG);
        be->ops->free(be, dBt);
        for (int64_t i = 0; rc == 0 && i < k; i++)
            for (int64_t t = 0; t < i; t++)
                out[j].G[i * k + t] = out[j].G[t * k + i];
        if (rc < 0) /* as the others stop at the agreed failure */
            break;
    }
    if (rc < 0)
        for (int j = 0; j < np; j++)
            vv_stats_free(&out[j]);
    return rc;
}

#ifdef VV_HAVE_MPI

int par_init(void)
{
    int n = launched_size();
    if (n == 0)
        return 0;
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return vv_fail(VV_EINTERNAL, "MPI_Init_thread failed");
    g.on = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g.size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &g.local);
        MPI_Comm_rank(node, &g.local_rank);
        MPI_Comm_free(&node);
    }
    VV_INFO("mpi", NULL, "rank %d of %d (%d on this node, %d statistics workers)", g.rank, g.size,
            g.local, par_workers());
    return 0;
}

void par_finalize(void)
{
    if (g.on)
        MPI_Finalize();
    g.on = 0;
}

/* What the lowest failing rank tells the others. */
typedef struct failure {
    int err;
    char field[256];
    char detail[1024];
} failure;

int par_agree(int rc, char *field, size_t fieldsz)
{
    if (!g.on || g.done)
        return rc;
    int mine = rc < 0 ? g.rank : g.size, first = g.size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == g.size)
        return 0;
    failure f = {0};
    if (g.rank == first) {
        f.err = rc;
        snprintf(f.field, sizeof f.field, "%s", field && fieldsz ? field : "");
        snprintf(f.detail, sizeof f.detail, "%s", vv_err_detail());
    }
    MPI_Bcast(&f, (int)sizeof f, MPI_BYTE, first, MPI_COMM_WORLD);
    g.done = 1;
    if (field && fieldsz)
        snprintf(field, fieldsz, "%s", f.field);
    return vv_fail(f.err, "rank %d: %s", first, f.detail);
}

int par_leave(int rc, char *field, size_t fieldsz)
{
    if (!g.on || g.done || rc >= 0)
        return rc;
    return par_agree(rc, field, fieldsz);
}

/* MPI counts are ints: large arrays go in pieces. */
#define PIECE ((int64_t)1 << 26)

static void sum_doubles(double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i += PIECE) {
        int m = (int)(n - i < PIECE ? n - i : PIECE);
        MPI_Allreduce(MPI_IN_PLACE, x + i, m, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
}

/* ---- Sums between the devices ------------------------------------------------------ */

static struct {
    vv_backend *be; /* the device decided on */
    int on;         /* 1: sums between the devices; -1: on the host */
    int summed;     /* the last pass's G and Bt were summed there */
} dv;

/* Whether every rank can sum on its device: each brings the key of its GPU
 * (host name and PCI bus id), or why it has none; two ranks on one GPU keep
 * the sums on the host.  Then rank 0 makes the group and every rank joins
 * it.  Collective; every rank reaches the same answer: 1 or -1. */
static int dv_decide(vv_backend *be)
{
    enum { KEY = 256 };
    char bus[96] = "", host[128] = "", *keys = NULL;
    int ok = be->ops->group_key(be, bus, sizeof bus) == 0, all = 0;
    if (!ok)
        VV_INFO("mpi", NULL, "rank %d: no sums between the GPUs: %s", g.rank, vv_err_detail());
    if (ok && !(keys = calloc((size_t)g.size, KEY)))
        ok = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all) {
        free(keys);
        if (g.rank == 0)
            VV_INFO("mpi", NULL, "statistics summed on the host: a rank cannot use NCCL");
        return -1;
    }
    char mine[KEY];
    gethostname(host, sizeof host - 1);
    snprintf(mine, sizeof mine, "%s/%s", host, bus);
    MPI_Allgather(mine, KEY, MPI_CHAR, keys, KEY, MPI_CHAR, MPI_COMM_WORLD);
    for (int i = 0; i < g.size; i++)
        for (int j = i + 1; j < g.size; j++)
            if (!strncmp(keys + (size_t)i * KEY, keys + (size_t)j * KEY, KEY)) {
                if (g.rank == 0)
                    VV_INFO("mpi", NULL,
                            "statistics summed on the host: ranks %d and %d share the GPU %s "
                            "(NCCL takes one GPU per rank: --device auto gives a node's ranks "
                            "its GPUs in turn)",
                            i, j, keys + (size_t)j * KEY);
                free(keys);
                return -1;
            }
    free(keys);
    struct {
        int rc;
        char id[VV_GROUP_ID_BYTES];
    } m = {0};
    if (g.rank == 0 && (m.rc = be->ops->group_id(be, m.id, sizeof m.id)) < 0)
        VV_WARN("mpi", NULL, "statistics summed on the host: %s", vv_err_detail());
    MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (m.rc < 0)
        return -1;
    ok = be->ops->group_join(be, m.id, g.rank, g.size) == 0;
    if (!ok)
        VV_WARN("mpi", NULL, "rank %d: statistics summed on the host: %s", g.rank, vv_err_detail());
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all ? 1 : -1;
}

/* vv_stats_opts.device_sums: the pass's checkpoint, then the sums. */
static int dv_sums(void *ctx, vv_backend *be, int rc, double *G, double *Bt, int64_t k, int64_t d)
{
    (void)ctx;
    dv.summed = 0;
    if ((rc = par_agree(rc, NULL, 0)) < 0)
        return rc;
    if (dv.be != be) {
        dv.be = be;
        dv.on = dv_decide(be);
    }
    if (dv.on < 0)
        return 0;
    double t0 = MPI_Wtime();
    if ((rc = be->ops->group_sum(be, G, k * k)) == 0)
        rc = be->ops->group_sum(be, Bt, k * d);
    dv.summed = rc == 0;
    if (dv.summed && g.rank == 0)
        VV_INFO("mpi", NULL, "G and Bt summed between the GPUs with NCCL (%d ranks, %.3f s)",
                g.size, MPI_Wtime() - t0);
    return rc;
}

static void device_sums_hook(vv_stats_opts *o)
{
    const char *off = getenv("VV_NO_NCCL");
    if (g.on && g.size > 1 && o->be && vv_backend_is_device(o->be) && o->be->ops->group_sum &&
        !(off && !strcmp(off, "1"))) {
        o->device_sums = dv_sums;
        o->device_sums_ctx = NULL;
    }
}

int par_sum_stats(vv_stats *st, int np)
{
    if (!g.on)
        return 0;
    double t0 = MPI_Wtime();
    for (int j = 0; j < np && !dv.summed; j++) {
        sum_doubles(st[j].G, st[j].k * st[j].k);
        sum_doubles(st[j].Bt, st[j].k * st[j].d);
    }
    if (!dv.summed && g.rank == 0)
        VV_INFO("mpi", NULL, "G and Bt summed on the host (MPI_Allreduce, %d ranks)", g.size);
    dv.summed = 0;
    for (int j = 0; j < np; j++) {
        double s[3] = {st[j].c, (double)st[j].n, st[j].flops};
        MPI_Allreduce(MPI_IN_PLACE, s, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        st[j].c = s[0];
        st[j].n = (int64_t)s[1];
        st[j].flops = s[2];
    }
    /* The pass took as long as its slowest rank, and the sums on top. */
    double secs = st[0].seconds + (MPI_Wtime() - t0);
    MPI_Allreduce(MPI_IN_PLACE, &secs, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    for (int j = 0; j < np; j++)
        st[j].seconds = secs;
    return 0;
}

int64_t par_sum_i64(int64_t v)
{
    int64_t sum = v;
    if (g.on)
        MPI_Allreduce(&v, &sum, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    return sum;
}

int par_bcast_from(int root, void *buf, size_t bytes)
{
    if (!g.on)
        return 0;
    for (size_t i = 0; i < bytes; i += (size_t)PIECE) {
        size_t m = bytes - i < (size_t)PIECE ? bytes - i : (size_t)PIECE;
        MPI_Bcast((char *)buf + i, (int)m, MPI_BYTE, root, MPI_COMM_WORLD);
    }
    return 0;
}

int par_bcast(void *buf, size_t bytes)
{
    return par_bcast_from(0, buf, bytes);
}

#else /* one process */

static void device_sums_hook(vv_stats_opts *o)
{
    (void)o;
}

int par_init(void)
{
    if (launched_size() > 1)
        return vv_fail(VV_EINVAL,
                       "started by mpirun as one of %d processes, but this vvd was built "
                       "without MPI (rebuild with libopenmpi-dev installed, -Dmpi=enabled)",
                       launched_size());
    return 0;
}

void par_finalize(void) {}

int par_agree(int rc, char *field, size_t fieldsz)
{
    (void)field;
    (void)fieldsz;
    return rc;
}

int par_leave(int rc, char *field, size_t fieldsz)
{
    (void)field;
    (void)fieldsz;
    return rc;
}

int par_sum_stats(vv_stats *st, int np)
{
    (void)st;
    (void)np;
    return 0;
}

int64_t par_sum_i64(int64_t v)
{
    return v;
}

int par_bcast_from(int root, void *buf, size_t bytes)
{
    (void)root;
    (void)buf;
    (void)bytes;
    return 0;
}

int par_bcast(void *buf, size_t bytes)
{
    return par_bcast_from(0, buf, bytes);
}

#endif
