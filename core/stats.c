/* stats.c - sufficient statistics G, Bt, c in one streaming pass. */
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

void vv_stats_share(int64_t n, int part, int parts, int64_t *begin, int64_t *end)
{
    int64_t q = n / parts, r = n % parts;
    *begin = (int64_t)part * q + (part < r ? part : r);
    *end = *begin + q + (part < r);
}

/* The pass is split over workers: each takes the next chunk of rows, reads
 * and converts it (in parallel when both sources allow it, under the lock
 * otherwise), and adds its Gram and cross products into its own accumulators with
 * a single-threaded BLAS call while the other workers read or compute.  The
 * accumulators are summed at the end.  This keeps both cores busy in BLAS-3
 * instead of leaving BLAS threads spinning while one thread converts. */
typedef struct pass {
    vv_rows *phi, *psi;
    const vv_stats_opts *o;
    vv_backend *be;
    int64_t n, k, d, chunk, next, end; /* rows [next, end) are left */
    pthread_mutex_t lock;
    int parallel_reads; /* both sources may be read concurrently */
    int rc;             /* first failure */
    char detail[1024];  /* its detail (details are thread-local) */
} pass;

typedef struct worker {
    pass *p;
    double *G, *Bt, *X, *Y;
    double *dG, *dBt, *dX, *dY; /* on a device backend: its copies (G, Bt accumulate there) */
    double c;
    pthread_t tid;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    pass *p = w->p;
    int64_t k = p->k, d = p->d;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int64_t r0 = p->next;
        int rc = p->rc;
        if (rc == 0 && r0 < p->end && p->o->stop &&
            atomic_load_explicit(p->o->stop, memory_order_relaxed)) {
            rc = p->rc = VV_ESTATE;
            snprintf(p->detail, sizeof p->detail, "stopped during the statistics pass");
        }
        if (rc < 0 || r0 >= p->end) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        int64_t m = p->end - r0 < p->chunk ? p->end - r0 : p->chunk;
        p->next = r0 + m;
        /* Thread-safe sources are read outside the lock, in parallel. */
        if (p->parallel_reads)
            pthread_mutex_unlock(&p->lock);
        if ((rc = vv_rows_read(p->phi, r0, m, w->X)) == 0)
            rc = vv_rows_read(p->psi, r0, m, w->Y);
        if (p->parallel_reads && rc < 0)
            pthread_mutex_lock(&p->lock);
        if (rc < 0) {
            if (p->rc == 0) {
                p->rc = rc;
                snprintf(p->detail, sizeof p->detail, "%s", vv_err_detail());
            }
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        if (!p->parallel_reads)
            pthread_mutex_unlock(&p->lock);
        if (p->o->bias)
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < d; j++)
                    w->Y[i * d + j] -= p->o->bias[j];
        double c = 0;
        for (int64_t i = 0; i < m * d; i++)
            c += w->Y[i] * w->Y[i];
        w->c += c;
        double *X = w->X, *Y = w->Y, *G = w->G, *Bt = w->Bt;
        if (w->dX) {
            /* A device: the chunk goes up, the products accumulate there. */
            X = w->dX;
            Y = w->dY;
            G = w->dG;
            Bt = w->dBt;
            if ((rc = p->be->ops->upload(p->be, X, w->X, (size_t)(m * k) * sizeof *X)) == 0)
                rc = p->be->ops->upload(p->be, Y, w->Y, (size_t)(m * d) * sizeof *Y);
        }
        if (rc == 0 && (rc = p->be->ops->syrk_t(p->be, k, m, 1.0, X, k, G)) == 0)
            rc = p->be->ops->gemm(p->be, 1, 0, k, d, m, 1.0, X, k, Y, d, 1.0, Bt, d);
        if (rc < 0) {
            pthread_mutex_lock(&p->lock);
            if (p->rc == 0) {
                p->rc = rc;
                snprintf(p->detail, sizeof p->detail, "%s", vv_err_detail());
            }
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
    }
}

int vv_stats_compute(vv_rows *phi, vv_rows *psi, const vv_stats_opts *opts, vv_stats *out)
{
    memset(out, 0, sizeof *out);
    vv_stats_opts o = {0};
    if (opts)
        o = *opts;
    vv_backend *be = o.be ? o.be : vv_backend_cpu();
    int64_t n = vv_rows_n(phi), k = vv_rows_cols(phi), d = vv_rows_cols(psi);
    if (vv_rows_n(psi) != n)
        return vv_fail(VV_ESHAPE, "phi (%s) has %lld rows but psi (%s) has %lld",
                       vv_rows_name(phi), (long long)n, vv_rows_name(psi),
                       (long long)vv_rows_n(psi));
    if (n < 1 || k < 1 || d < 1)
        return vv_fail(VV_ESHAPE, "empty problem: N=%lld K=%lld D=%lld", (long long)n,
                       (long long)k, (long long)d);
    int64_t row0 = 0;
    if (o.nrows > 0) {
        if (o.row0 < 0 || o.row0 > n || o.nrows > n - o.row0)
            return vv_fail(VV_EINVAL, "%s: rows %lld..%lld are outside its %lld rows",
                           vv_rows_name(phi), (long long)o.row0, (long long)(o.row0 + o.nrows),
                           (long long)n);
        row0 = o.row0;
        n = o.nrows;
    }
    int64_t chunk = vv_stats_chunk(o.chunk_rows, k);
    if (chunk > n)
        chunk = n;
    /* One worker per core (at most 4), while the per-worker Gram matrices
     * stay under 2 GiB in all; otherwise one worker with threaded BLAS. */
    long ncpu = o.workers > 0 ? o.workers : sysconf(_SC_NPROCESSORS_ONLN);
    int nw = ncpu < 1 ? 1 : ncpu > 4 ? 4 : (int)ncpu;
    int device = be != vv_backend_cpu();
    if (device || (double)nw * (double)k * (double)k * 8 > 2e9 || n < 2 * chunk)
        nw = 1;

    double t0 = vv_now();
    pass p = {.phi = phi,
              .psi = psi,
              .o = &o,
              .be = be,
              .n = n,
              .k = k,
              .d = d,
              .chunk = chunk,
              .next = row0,
              .end = row0 + n,
              .lock = PTHREAD_MUTEX_INITIALIZER,
              .parallel_reads = vv_rows_thread_safe(phi) && vv_rows_thread_safe(psi)};
    worker *ws = calloc((size_t)nw, sizeof *ws);
    int rc = 0;
    if (!ws)
        return vv_fail(VV_ENOMEM, "sufficient statistics: out of memory");
    for (int i = 0; i < nw; i++) {
        ws[i].p = &p;
        ws[i].G = calloc((size_t)(k * k), sizeof(double));
        ws[i].Bt = calloc((size_t)(k * d), sizeof(double));
        ws[i].X = malloc((size_t)(chunk * k) * sizeof(double));
        ws[i].Y = malloc((size_t)(chunk * d) * sizeof(double));
        if (!ws[i].G || !ws[i].Bt || !ws[i].X || !ws[i].Y) {
            rc = vv_fail(VV_ENOMEM,
                         "sufficient statistics: cannot allocate a %lld x %lld Gram matrix",
                         (long long)k, (long long)k);
            goto done;
        }
    }
    if (device) {
        /* One worker; G and Bt start as the host's zeros. */
        worker *w = &ws[0];
        size_t kk = (size_t)(k * k) * sizeof(double), kd = (size_t)(k * d) * sizeof(double);
        if (!(w->dG = be->ops->alloc(be, kk)) || !(w->dBt = be->ops->alloc(be, kd)) ||
            !(w->dX = be->ops->alloc(be, (size_t)(chunk * k) * sizeof(double))) ||
            !(w->dY = be->ops->alloc(be, (size_t)(chunk * d) * sizeof(double)))) {
            rc = vv_fail(VV_ENOMEM,
                         "sufficient statistics on %s: cannot allocate a %lld x %lld Gram matrix "
                         "(%.1f MiB with Bt and a chunk)",
                         be->ops->name, (long long)k, (long long)k,
                         (double)(kk + kd + (size_t)(chunk * (k + d)) * 8) / 1048576.0);
            goto done;
        }
        if ((rc = be->ops->upload(be, w->dG, w->G, kk)) < 0 ||
            (rc = be->ops->upload(be, w->dBt, w->Bt, kd)) < 0)
            goto done;
    }
    if (nw == 1) {
        work(&ws[0]);
    } else {
        int threads = vv_blas_threads();
        vv_blas_set_threads(1);
        int started = 0;
        for (; started < nw; started++)
            if (pthread_create(&ws[started].tid, NULL, work, &ws[started]))
                break;
        if (started == 0)
            work(&ws[0]);
        for (int i = 0; i < started; i++)
            pthread_join(ws[i].tid, NULL);
        vv_blas_set_threads(threads);
    }
    if (p.rc < 0)
        rc = vv_fail(p.rc, "%s", p.detail);
    if (device && o.device_sums)
        rc = o.device_sums(o.device_sums_ctx, be, rc, ws[0].dG, ws[0].dBt, k, d);
    if (rc < 0)
        goto done;
    if (device && ((rc = be->ops->download(be, ws[0].G, ws[0].dG,
                                           (size_t)(k * k) * sizeof(double))) < 0 ||
                   (rc = be->ops->download(be, ws[0].Bt, ws[0].dBt,
                                           (size_t)(k * d) * sizeof(double))) < 0))
        goto done;
    double c = 0;
    for (int i = 0; i < nw; i++) {
        c += ws[i].c;
        if (i == 0)
            continue;
        for (int64_t t = 0; t < k * k; t++)
            ws[0].G[t] += ws[i].G[t];
        for (int64_t t = 0; t < k * d; t++)
            ws[0].Bt[t] += ws[i].Bt[t];
    }
    double *G = ws[0].G;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < i; j++)
            G[i * k + j] = G[j * k + i];
    out->n = n;
    out->k = k;
    out->d = d;
    out->G = G;
    out->Bt = ws[0].Bt;
    ws[0].G = ws[0].Bt = NULL;
    out->c = c;
    out->seconds = vv_now() - t0;
    out->flops = (double)n * (double)k * (double)(k + 1) + 2.0 * (double)n * (double)k * (double)d;
    VV_DEBUG("stats", NULL, "N=%lld K=%lld D=%lld in %.3f s (%.1f GFLOP/s, %d workers)",
             (long long)n, (long long)k, (long long)d, out->seconds,
             out->flops / out->seconds * 1e-9, nw);
done:
    for (int i = 0; i < nw; i++) {
        if (device) {
            be->ops->free(be, ws[i].dG);
            be->ops->free(be, ws[i].dBt);
            be->ops->free(be, ws[i].dX);
            be->ops->free(be, ws[i].dY);
        }
        free(ws[i].G);
        free(ws[i].Bt);
        free(ws[i].X);
        free(ws[i].Y);
    }
    free(ws);
    return rc;
}
