/* stats.c - sufficient statistics G, Bt, c in one streaming pass. */
#include "parts.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/lasso.h"
#include "vv/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vv_stats_free(vv_stats *s)
{
    if (!s)
        return;
    free(s->G);
    free(s->Bt);
    memset(s, 0, sizeof *s);
}

int64_t vv_stats_chunk(int64_t chunk_rows, int64_t k)
{
    if (chunk_rows > 0)
        return chunk_rows;
    /* Each chunk updates the whole K x K accumulator, so its arithmetic
     * intensity is about rows/16 flop per byte of G traffic: 1024 rows (2048
     * for wide layers) keep the update compute-bound, and at K = 512 the
     * chunk still fits in cache between conversion and use (measured best
     * on the VGG-like problem). */
    return k <= 2048 ? 1024 : 2048;
}

int64_t vv_stats_batch(int np, const vv_stats_src *src, int64_t chunk_rows)
{
    int64_t batch = INT64_MAX;
    for (int j = 0; j < np; j++) {
        int64_t b = vv_stats_chunk(chunk_rows, vv_rows_cols(src[j].phi)) / src[j].per_unit;
        batch = b < 1 ? 1 : b < batch ? b : batch;
    }
    return batch;
}

void vv_stats_share(int64_t n, int part, int parts, int64_t *begin, int64_t *end)
{
    int64_t q = n / parts, r = n % parts;
    *begin = (int64_t)part * q + (part < r ? part : r);
    *end = *begin + q + (part < r);
}

/* The pass is split over workers: each takes the next batch of units, reads
 * and converts its rows of every problem (in parallel when all sources
 * allow it, under the lock otherwise) into the problem's chunk buffer, and
 * once a buffer is full adds its Gram and cross products into its own
 * accumulators with a single-threaded BLAS call while the other workers
 * read or compute.  The accumulators are summed at the end.  This keeps
 * both cores busy in BLAS-3 instead of leaving BLAS threads spinning while
 * one thread converts. */
typedef struct pass {
    int np;
    const vv_stats_src *src;
    const vv_stats_opts *o;
    vv_backend *be;
    int64_t *k, *d, *cap;     /* each problem's widths and rows per chunk */
    int64_t batch, next, end; /* units per batch; units [next, end) are left */
    pthread_mutex_t lock;
    int parallel_reads; /* every source may be read concurrently */
    int rc;             /* first failure */
    char detail[1024];  /* its detail (details are thread-local) */
} pass;

/* A worker's accumulators and chunk buffer for one problem. */
typedef struct acc {
    double *G, *Bt, *X, *Y;
    double *dG, *dBt, *dX, *dY; /* on a device backend: its copies (G, Bt accumulate there) */
    int64_t fill;               /* rows in X, Y */
    double c;
} acc;

typedef struct worker {
    pass *p;
    acc *a; /* one per problem */
} worker;

static void fail(pass *p, int rc)
{
    pthread_mutex_lock(&p->lock);
    if (p->rc == 0) {
        p->rc = rc;
        snprintf(p->detail, sizeof p->detail, "%s", vv_err_detail());
    }
    pthread_mutex_unlock(&p->lock);
}

/* Adds the rows buffered for problem j to its sums and empties the buffer. */
static int flush(pass *p, acc *a, int j)
{
    int64_t m = a->fill, k = p->k[j], d = p->d[j];
    const double *bias = p->src[j].bias;
    a->fill = 0;
    if (m == 0)
        return 0;
    if (bias)
        for (int64_t i = 0; i < m; i++)
            for (int64_t t = 0; t < d; t++)
                a->Y[i * d + t] -= bias[t];
    double c = 0;
    for (int64_t i = 0; i < m * d; i++)
        c += a->Y[i] * a->Y[i];
    a->c += c;
    double *X = a->X, *Y = a->Y, *G = a->G, *Bt = a->Bt;
    int rc = 0;
    if (a->dX) {
        /* A device: the chunk goes up, the products accumulate there. */
        X = a->dX;
        Y = a->dY;
        G = a->dG;
        Bt = a->dBt;
        if ((rc = p->be->ops->upload(p->be, X, a->X, (size_t)(m * k) * sizeof *X)) == 0)
            rc = p->be->ops->upload(p->be, Y, a->Y, (size_t)(m * d) * sizeof *Y);
    }
    if (rc == 0 && (rc = p->be->ops->syrk_t(p->be, k, m, 1.0, X, k, G)) == 0)
        rc = p->be->ops->gemm(p->be, 1, 0, k, d, m, 1.0, X, k, Y, d, 1.0, Bt, d);
    return rc;
}

/* Worker i of the array ws. */
static void work(void *ws, int i)
{
    worker *w = (worker *)ws + i;
    pass *p = w->p;
    int rc = 0;
    for (;;) {
        /* Full buffers first, outside the lock. */
        for (int j = 0; j < p->np && rc == 0; j++)
            if (w->a[j].fill + p->batch * p->src[j].per_unit > p->cap[j])
                rc = flush(p, &w->a[j], j);
        if (rc < 0) {
            fail(p, rc);
            return;
        }
        pthread_mutex_lock(&p->lock);
        int64_t u0 = p->next;
        rc = p->rc;
        if (rc == 0 && u0 < p->end && p->o->stop &&
            atomic_load_explicit(p->o->stop, memory_order_relaxed)) {
            rc = p->rc = VV_ESTATE;
            snprintf(p->detail, sizeof p->detail, "stopped during the statistics pass");
        }
        if (rc < 0 || u0 >= p->end) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        int64_t b = p->end - u0 < p->batch ? p->end - u0 : p->batch;
        p->next = u0 + b;
        /* Thread-safe sources are read outside the lock, in parallel. */
        if (p->parallel_reads)
            pthread_mutex_unlock(&p->lock);
        for (int j = 0; j < p->np && rc == 0; j++) {
            acc *a = &w->a[j];
            int64_t per = p->src[j].per_unit, m = b * per;
            if ((rc = vv_rows_read(p->src[j].phi, u0 * per, m, a->X + a->fill * p->k[j])) == 0)
                rc = vv_rows_read(p->src[j].psi, u0 * per, m, a->Y + a->fill * p->d[j]);
            a->fill += m;
        }
        if (!p->parallel_reads)
            pthread_mutex_unlock(&p->lock);
        if (rc < 0) {
            fail(p, rc);
            return;
        }
    }
    for (int j = 0; j < p->np && rc == 0; j++)
        rc = flush(p, &w->a[j], j);
    if (rc < 0)
        fail(p, rc);
}

int vv_stats_compute(vv_rows *phi, vv_rows *psi, const vv_stats_opts *opts, vv_stats *out)
{
    vv_stats_src src = {phi, psi, 1, opts ? opts->bias : NULL};
    return vv_stats_compute_set(1, &src, opts, out);
}

static void free_acc(vv_backend *be, acc *a)
{
    if (be) {
        be->ops->free(be, a->dG);
        be->ops->free(be, a->dBt);
        be->ops->free(be, a->dX);
        be->ops->free(be, a->dY);
    }
    free(a->G);
    free(a->Bt);
    free(a->X);
    free(a->Y);
}

int vv_stats_compute_set(int np, const vv_stats_src *src, const vv_stats_opts *opts, vv_stats *out)
{
    if (np < 1)
        return vv_fail(VV_EINVAL, "sufficient statistics: no problem");
    memset(out, 0, (size_t)np * sizeof *out);
    vv_stats_opts o = {0};
    if (opts)
        o = *opts;
    vv_backend *be = o.be ? o.be : vv_backend_cpu();
    int device = be != vv_backend_cpu();
    int64_t units = 0;
    for (int j = 0; j < np; j++) {
        vv_rows *phi = src[j].phi, *psi = src[j].psi;
        int64_t n = vv_rows_n(phi), k = vv_rows_cols(phi), d = vv_rows_cols(psi),
                per = src[j].per_unit;
        if (vv_rows_n(psi) != n)
            return vv_fail(VV_ESHAPE, "phi (%s) has %lld rows but psi (%s) has %lld",
                           vv_rows_name(phi), (long long)n, vv_rows_name(psi),
                           (long long)vv_rows_n(psi));
        if (n < 1 || k < 1 || d < 1)
            return vv_fail(VV_ESHAPE, "empty problem: N=%lld K=%lld D=%lld", (long long)n,
                           (long long)k, (long long)d);
        if (per < 1 || n % per || (j > 0 && n / per != units))
            return vv_fail(VV_ESHAPE, "%s: %lld rows are not %lld units of %lld rows",
                           vv_rows_name(phi), (long long)n, (long long)units, (long long)per);
        units = n / per;
    }
    int64_t u0 = 0;
    if (o.nrows > 0) {
        if (o.row0 < 0 || o.row0 > units || o.nrows > units - o.row0)
            return vv_fail(VV_EINVAL, "%s: rows %lld..%lld are outside its %lld rows",
                           vv_rows_name(src[0].phi), (long long)o.row0,
                           (long long)(o.row0 + o.nrows), (long long)units);
        u0 = o.row0;
        units = o.nrows;
    }
    /* A problem's chunk is cut to its rows and holds at least a batch. */
    int64_t *dims = malloc((size_t)np * 3 * sizeof *dims),
            batch = vv_stats_batch(np, src, o.chunk_rows);
    if (!dims)
        return vv_fail(VV_ENOMEM, "sufficient statistics: out of memory");
    if (batch > units)
        batch = units;
    int64_t *K = dims, *D = dims + np, *cap = dims + 2 * np;
    double kk_all = 0;
    int parallel_reads = 1;
    for (int j = 0; j < np; j++) {
        int64_t rows = units * src[j].per_unit, bm = batch * src[j].per_unit;
        K[j] = vv_rows_cols(src[j].phi);
        D[j] = vv_rows_cols(src[j].psi);
        cap[j] = vv_stats_chunk(o.chunk_rows, K[j]);
        cap[j] = cap[j] < rows ? cap[j] : rows;
        cap[j] = cap[j] > bm ? cap[j] : bm;
        kk_all += (double)K[j] * (double)K[j];
        parallel_reads &= vv_rows_thread_safe(src[j].phi) && vv_rows_thread_safe(src[j].psi);
    }
    /* One worker per core (at most 4), while the per-worker Gram matrices
     * stay under 2 GiB in all; otherwise one worker with threaded BLAS. */
    long ncpu = o.workers > 0 ? o.workers : sysconf(_SC_NPROCESSORS_ONLN);
    int nw = ncpu < 1 ? 1 : ncpu > 4 ? 4 : (int)ncpu;
    if (device || (double)nw * kk_all * 8 > 2e9 || units < 2 * batch)
        nw = 1;

    double t0 = vv_now();
    pass p = {.np = np,
              .src = src,
              .o = &o,
              .be = be,
              .k = K,
              .d = D,
              .cap = cap,
              .batch = batch,
              .next = u0,
              .end = u0 + units,
              .lock = PTHREAD_MUTEX_INITIALIZER,
              .parallel_reads = parallel_reads};
    worker *ws = calloc((size_t)nw, sizeof *ws);
    acc *as = calloc((size_t)(nw * np), sizeof *as);
    int rc = 0;
    if (!ws || !as) {
        rc = vv_fail(VV_ENOMEM, "sufficient statistics: out of memory");
        goto done;
    }
    for (int i = 0; i < nw; i++) {
        ws[i].p = &p;
        ws[i].a = as + (size_t)i * np;
        for (int j = 0; j < np; j++) {
            acc *a = &ws[i].a[j];
            int64_t k = K[j], d = D[j];
            a->G = calloc((size_t)(k * k), sizeof(double));
            a->Bt = calloc((size_t)(k * d), sizeof(double));
            a->X = malloc((size_t)(cap[j] * k) * sizeof(double));
            a->Y = malloc((size_t)(cap[j] * d) * sizeof(double));
            if (!a->G || !a->Bt || !a->X || !a->Y) {
                rc = vv_fail(VV_ENOMEM,
                             "sufficient statistics: cannot allocate a %lld x %lld Gram matrix",
                             (long long)k, (long long)k);
                goto done;
            }
            if (!device)
                continue;
            /* One worker; G and Bt start as the host's zeros. */
            size_t kkb = (size_t)(k * k) * sizeof(double), kdb = (size_t)(k * d) * sizeof(double);
            if (!(a->dG = be->ops->alloc(be, kkb)) || !(a->dBt = be->ops->alloc(be, kdb)) ||
                !(a->dX = be->ops->alloc(be, (size_t)(cap[j] * k) * sizeof(double))) ||
                !(a->dY = be->ops->alloc(be, (size_t)(cap[j] * d) * sizeof(double)))) {
                rc = vv_fail(VV_ENOMEM,
                             "sufficient statistics on %s: cannot allocate a %lld x %lld Gram "
                             "matrix (%.1f MiB with Bt and a chunk)",
                             be->ops->name, (long long)k, (long long)k,
                             (double)(kkb + kdb + (size_t)(cap[j] * (k + d)) * 8) / 1048576.0);
                goto done;
            }
            if ((rc = be->ops->upload(be, a->dG, a->G, kkb)) < 0 ||
                (rc = be->ops->upload(be, a->dBt, a->Bt, kdb)) < 0)
                goto done;
        }
    }
    if (nw == 1) {
        work(&ws[0], 0);
    } else {
        int threads = vv_blas_threads();
        vv_blas_set_threads(1);
        vv__run_parts(nw, work, ws);
        vv_blas_set_threads(threads);
    }
    if (p.rc < 0)
        rc = vv_fail(p.rc, "%s", p.detail);
    double secs = vv_now() - t0;
    for (int j = 0; j < np; j++) {
        acc *a0 = &ws[0].a[j];
        int64_t k = K[j], d = D[j];
        if (device && o.device_sums)
            rc = o.device_sums(o.device_sums_ctx, be, rc, a0->dG, a0->dBt, k, d);
        if (rc < 0)
            goto done;
        if (device &&
            ((rc = be->ops->download(be, a0->G, a0->dG, (size_t)(k * k) * sizeof(double))) < 0 ||
             (rc = be->ops->download(be, a0->Bt, a0->dBt, (size_t)(k * d) * sizeof(double))) < 0))
            goto done;
        double c = 0;
        for (int i = 0; i < nw; i++) {
            acc *a = &ws[i].a[j];
            c += a->c;
            if (i == 0)
                continue;
            for (int64_t t = 0; t < k * k; t++)
                a0->G[t] += a->G[t];
            for (int64_t t = 0; t < k * d; t++)
                a0->Bt[t] += a->Bt[t];
        }
        double *G = a0->G;
        for (int64_t i = 0; i < k; i++)
            for (int64_t t = 0; t < i; t++)
                G[i * k + t] = G[t * k + i];
        int64_t n = units * src[j].per_unit;
        out[j] = (vv_stats){.n = n,
                            .k = k,
                            .d = d,
                            .G = G,
                            .Bt = a0->Bt,
                            .c = c,
                            .seconds = secs,
                            .flops = (double)n * (double)k * (double)(k + 1) +
                                     2.0 * (double)n * (double)k * (double)d};
        a0->G = a0->Bt = NULL;
        VV_DEBUG(
            "stats", NULL, "N=%lld K=%lld D=%lld in %.3f s (%.1f GFLOP/s, %d workers, %d problems)",
            (long long)n, (long long)k, (long long)d, secs, out[j].flops / secs * 1e-9, nw, np);
    }
done:
    if (rc < 0)
        for (int j = 0; j < np; j++)
            vv_stats_free(&out[j]);
    for (int i = 0; as && i < nw * np; i++)
        free_acc(device ? be : NULL, &as[i]);
    free(as);
    free(ws);
    free(dims);
    return rc;
}
