/* solve_fista_dev.c - FISTA with G, Bt and the iterates resident in a
 * backend's memory (the device solver).
 *
 * The same iteration as solve_fista.c (step 1/L, group soft-threshold,
 * O'Donoghue-Candes restart), written only in the backend table's
 * operations, so that on a GPU nothing of size K x D crosses the bus: each
 * iteration is one product G Wn, a few passes of axpby and dot over K x D,
 * and two vectors of group norms brought back for the certificate
 * (sum_g ||W_g||_F and max_g ||Bt_g - (G W)_g||_F).  Groups must have one
 * size gs: then they are the rows of the ngroups x (gs D) view of the
 * row-major K x D matrices, and the backend's row_norms and group_shrink
 * serve them unchanged (no kernel of its own; gs = 1 is the neuron-wise
 * solver exactly).  The product uses only the rows of the nonzero groups
 * of Wn (G is symmetric, so G[:, S] is rows S of G, gathered into blocks):
 * 2 K |S| D flops instead of 2 K^2 D, which is most of the time saved once
 * the iterates are sparse.  Every sum of the certificate is
 * float64.  With the CPU backend it is the reference the tests compare with
 * the host solvers.
 */
#include "solve_internal.h"
#include "vv/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NBUF = 8, BLK = 1024 };

typedef struct dev {
    vv_backend *be;
    const vv_backend_ops *op;
    int64_t k, d;
    int64_t gs, ng;        /* the groups' size and count (1 and k without groups) */
    double *G, *Bt;
    double *buf[NBUF - 2]; /* W, GW, Wn, GWn, Y, GY */
    double *T;             /* scratch, K x D */
    double *nrm;           /* ng group norms, backend memory */
    double *h_nrm;         /* the same, host */
    double *w_nrm;         /* host: the group norms of the last X given to apply */
    int64_t *idx;          /* host: the rows of its nonzero groups */
    double *Gp, *Xp;       /* BLK rows of G and of X, gathered */
} dev;

static void dev_free(dev *v)
{
    if (!v->be)
        return;
    v->op->free(v->be, v->G);
    v->op->free(v->be, v->Bt);
    for (int i = 0; i < NBUF - 2; i++)
        v->op->free(v->be, v->buf[i]);
    v->op->free(v->be, v->T);
    v->op->free(v->be, v->nrm);
    v->op->free(v->be, v->Gp);
    v->op->free(v->be, v->Xp);
    free(v->h_nrm);
    free(v->w_nrm);
    free(v->idx);
}

static int dev_alloc(dev *v, vv_backend *be, const vv_stats *s)
{
    memset(v, 0, sizeof *v);
    v->be = be;
    v->op = be->ops;
    v->k = s->k;
    v->d = s->d;
    v->gs = vv_groups_size(s);
    v->ng = v->gs > 0 ? s->k / v->gs : 0;
    size_t kd = (size_t)(s->k * s->d) * sizeof(double), kk = (size_t)(s->k * s->k) * sizeof(double);
    int64_t blk = s->k < BLK ? s->k : BLK;
    int ok = (v->G = v->op->alloc(be, kk)) && (v->Bt = v->op->alloc(be, kd)) &&
             (v->T = v->op->alloc(be, kd)) &&
             (v->nrm = v->op->alloc(be, (size_t)s->k * sizeof(double))) &&
             (v->Gp = v->op->alloc(be, (size_t)(blk * s->k) * sizeof(double))) &&
             (v->Xp = v->op->alloc(be, (size_t)(blk * s->d) * sizeof(double))) &&
             (v->h_nrm = malloc((size_t)s->k * sizeof(double))) &&
             (v->w_nrm = malloc((size_t)s->k * sizeof(double))) &&
             (v->idx = malloc((size_t)s->k * sizeof(int64_t)));
    for (int i = 0; ok && i < NBUF - 2; i++)
        ok = (v->buf[i] = v->op->alloc(be, kd)) != NULL;
    if (!ok)
        return vv_fail(VV_ENOMEM,
                       "fista on %s: cannot hold G and the iterates (K %lld, D %lld: %.1f MiB)",
                       v->op->name, (long long)s->k, (long long)s->d,
                       (double)(kk + (size_t)NBUF * kd +
                                (size_t)(blk * (s->k + s->d)) * sizeof(double)) /
                           1048576.0);
    int rc = v->op->upload(be, v->G, s->G, kk);
    return rc ? rc : v->op->upload(be, v->Bt, s->Bt, kd);
}

/* Group norms of X (the row norms of its ngroups x (gs D) view) into the
 * host array out. */
static int norms(dev *v, const double *X, double *out)
{
    int rc = v->op->row_norms(v->be, v->ng, v->gs * v->d, X, v->nrm);
    return rc ? rc : v->op->download(v->be, out, v->nrm, (size_t)v->ng * sizeof(double));
}

/* GX = G X, from the rows of the nonzero groups of X when they are under
 * half (a zero row of a nonzero group adds zeros); leaves X's group norms
 * in w_nrm for eval. */
static int apply(dev *v, const double *X, double *GX)
{
    int64_t k = v->k, d = v->d, nnz = 0;
    int rc = norms(v, X, v->w_nrm);
    if (rc)
        return rc;
    for (int64_t g = 0; g < v->ng; g++)
        if (v->w_nrm[g] > 0)
            for (int64_t i = g * v->gs; i < (g + 1) * v->gs; i++)
                v->idx[nnz++] = i;
    if (nnz * 2 > k)
        return v->op->gemm(v->be, 0, 0, k, d, k, 1.0, v->G, k, X, d, 0.0, GX, d);
    if (nnz == 0) /* GX = 0 (0 X, X being all zeros) */
        return v->op->axpby(v->be, k * d, 0.0, X, 0.0, GX);
    for (int64_t b = 0; b < nnz; b += BLK) {
        int64_t m = nnz - b < BLK ? nnz - b : BLK;
        if ((rc = v->op->gather_rows(v->be, v->G, k, v->idx + b, m, v->Gp)) ||
            (rc = v->op->gather_rows(v->be, X, d, v->idx + b, m, v->Xp)) ||
            (rc = v->op->gemm(v->be, 1, 0, k, d, m, 1.0, v->Gp, k, v->Xp, d, b ? 1.0 : 0.0, GX,
                              d)))
            return rc;
    }
    return 0;
}

/* The certificate of W given GW = apply(W) (vv_gram_eval, on the backend;
 * W's row norms are apply's). */
static int eval(dev *v, const vv_stats *s, const double *W, const double *GW, double lambda,
                vv_eval *e)
{
    int64_t kd = v->k * v->d;
    double wb, wgw, gn = 0, mmax = 0;
    int64_t active = 0;
    int rc;
    if ((rc = v->op->dot(v->be, kd, W, v->Bt, &wb)) || (rc = v->op->dot(v->be, kd, W, GW, &wgw)))
        return rc;
    for (int64_t g = 0; g < v->ng; g++) {
        gn += v->w_nrm[g];
        active += v->w_nrm[g] > VV_ACTIVE_TOL;
    }
    /* T = Bt - G W, the scaled dual point's numerator. */
    if ((rc = v->op->axpby(v->be, kd, 1.0, v->Bt, 0.0, v->T)) ||
        (rc = v->op->axpby(v->be, kd, -1.0, GW, 1.0, v->T)) || (rc = norms(v, v->T, v->h_nrm)))
        return rc;
    for (int64_t g = 0; g < v->ng; g++)
        mmax = fmax(mmax, v->h_nrm[g] / (double)s->n);
    vv_gram_eval_sums(s, lambda, wb, wgw, gn, mmax, active, e);
    return 0;
}

/* lambda_max(G) / N: vv_lipschitz's power iteration on the device. */
static int lipschitz(dev *v, const vv_stats *s, double *L)
{
    int64_t k = v->k;
    double *x = v->T, *y = v->T + k; /* T holds K x D >= 2 K values when D >= 2 */
    double *extra = NULL;
    if (v->d < 2) {
        if (!(extra = v->op->alloc(v->be, (size_t)(2 * k) * sizeof(double))))
            return vv_fail(VV_ENOMEM, "fista on %s: out of memory", v->op->name);
        x = extra;
        y = extra + k;
    }
    int rc = vv__power_lipschitz(v->be, v->G, k, s->n, x, y, L);
    v->op->free(v->be, extra);
    return rc;
}

int vv_solve_fista_dev(const vv_stats *s, const vv_lasso_opts *o, double *W, vv_lasso_result *res)
{
    vv_backend *be = o->be ? o->be : vv_backend_cpu();
    int64_t kd = s->k * s->d;
    double n = (double)s->n;
    if (vv_groups_size(s) == 0)
        return vv_fail(VV_EINVAL, "the device solver needs groups of one size "
                                  "(vv_lasso_solve runs fista on the host for others)");
    dev v;
    int rc = dev_alloc(&v, be, s);
    if (rc)
        goto done;
    const vv_backend_ops *op = v.op;
    double *Wc = v.buf[0], *GW = v.buf[1], *Wn = v.buf[2], *GWn = v.buf[3], *Y = v.buf[4],
           *GY = v.buf[5];
    double L = 0;
    if ((rc = lipschitz(&v, s, &L)))
        goto done;
    if (!(L > 0)) {
        /* G = 0: every feature is zero and W = 0 is the solution. */
        memset(W, 0, (size_t)kd * sizeof *W);
        L = 1;
    }
    if ((rc = op->upload(be, Wc, W, (size_t)kd * sizeof *W)) || (rc = apply(&v, Wc, GW)))
        goto done;
    vv_progress p;
    vv_progress_init(&p, s, o);
    vv_eval e;
    if ((rc = eval(&v, s, Wc, GW, o->lambda, &e)))
        goto done;
    int64_t it = 0;
    vv_stop_reason why = vv_progress_step(&p, it, &e, 1);
    if ((rc = op->axpby(be, kd, 1.0, Wc, 0.0, Y)) || (rc = op->axpby(be, kd, 1.0, GW, 0.0, GY)))
        goto done;
    double t = 1, step = 1.0 / (n * L);
    while (why == VV_STOP_NONE) {
        /* Wn = prox(Y - (GY - Bt) / (N L)). */
        if ((rc = op->axpby(be, kd, 1.0, Y, 0.0, Wn)) ||
            (rc = op->axpby(be, kd, -step, GY, 1.0, Wn)) ||
            (rc = op->axpby(be, kd, step, v.Bt, 1.0, Wn)) ||
            (rc = op->group_shrink(be, v.ng, v.gs * s->d, Wn, o->lambda / L, 0.0, NULL)) ||
            (rc = apply(&v, Wn, GWn)))
            goto done;
        it++;
        if ((rc = eval(&v, s, Wn, GWn, o->lambda, &e)))
            goto done;
        /* Restart when <Y - Wn, Wn - W> > 0: momentum carried us uphill. */
        double up_n, up_w;
        if ((rc = op->axpby(be, kd, 1.0, Y, 0.0, v.T)) ||
            (rc = op->axpby(be, kd, -1.0, Wn, 1.0, v.T)) ||
            (rc = op->dot(be, kd, v.T, Wn, &up_n)) || (rc = op->dot(be, kd, v.T, Wc, &up_w)))
            goto done;
        double up = up_n - up_w;
        double tn = up > 0 ? 1.0 : 0.5 * (1 + sqrt(1 + 4 * t * t));
        double beta = up > 0 ? 0.0 : (t - 1) / tn;
        /* Y = Wn + beta (Wn - W), and GY likewise by linearity. */
        if ((rc = op->axpby(be, kd, -beta, Wc, 0.0, Y)) ||
            (rc = op->axpby(be, kd, 1.0 + beta, Wn, 1.0, Y)) ||
            (rc = op->axpby(be, kd, -beta, GW, 0.0, GY)) ||
            (rc = op->axpby(be, kd, 1.0 + beta, GWn, 1.0, GY)))
            goto done;
        t = tn;
        double *sw = Wc;
        Wc = Wn;
        Wn = sw;
        sw = GW;
        GW = GWn;
        GWn = sw;
        why = vv_progress_step(&p, it, &e, 0);
    }
    if ((rc = op->download(be, W, Wc, (size_t)kd * sizeof *W)))
        goto done;
    res->stop_reason = why;
    res->iterations = it;
    res->e = e;
done:
    dev_free(&v);
    return rc;
}
