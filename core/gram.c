/* gram.c - objective, duality gap, screening and constants on (G, Bt, c, N),
 * over groups of rows (groups.c; one row a group without them). */
#include "solve_internal.h"
#include "vv/backend.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double vv_lambda_max(const vv_stats *s)
{
    /* max_g ||Bt_g||_F / N: W = 0 is optimal iff every group's gradient block
     * Bt_g / N lies in the lambda-ball of the Frobenius norm. */
    double best = 0;
    int64_t ng = vv_groups_count(s);
    for (int64_t g = 0; g < ng; g++) {
        const double *b = s->Bt + vv__goff(s, g) * s->d;
        int64_t len = (vv__goff(s, g + 1) - vv__goff(s, g)) * s->d;
        double q = 0;
        for (int64_t j = 0; j < len; j++)
            q += b[j] * b[j];
        if (q > best)
            best = q;
    }
    return sqrt(best) / (double)s->n;
}

int vv__power_lipschitz(vv_backend *be, const double *G, int64_t k, int64_t n, double *x,
                        double *y, double *L)
{
    const vv_backend_ops *op = be->ops;
    /* A start with positive entries: G of post-ReLU features is entrywise
     * non-negative, so this has a large component on the top eigenvector. */
    double *h = malloc((size_t)k * sizeof *h);
    if (!h)
        return vv_fail(VV_ENOMEM, "power iteration: out of memory");
    for (int64_t i = 0; i < k; i++)
        h[i] = 1.0 + 1e-3 * (double)(i % 7);
    int rc = op->upload(be, x, h, (size_t)k * sizeof *h);
    free(h);
    double lam = 0, prev = -1;
    for (int it = 0; rc == 0 && it < 1000; it++) {
        double nx, ray;
        if ((rc = op->dot(be, k, x, x, &nx)))
            break;
        nx = sqrt(nx);
        if (nx == 0)
            break;
        if ((rc = op->axpby(be, k, 1.0 / nx, x, 0.0, x)) ||
            (rc = op->gemm(be, 0, 0, k, 1, k, 1.0, G, k, x, 1, 0.0, y, 1)) ||
            (rc = op->dot(be, k, x, y, &ray)))
            break;
        lam = ray;
        double *t = x;
        x = y;
        y = t;
        if (it > 5 && fabs(lam - prev) <= 1e-7 * fabs(lam))
            break;
        prev = lam;
    }
    if (rc == 0)
        *L = 1.01 * lam / (double)n;
    return rc;
}

double vv_lipschitz(const vv_stats *s)
{
    int64_t k = s->k;
    double *x = malloc((size_t)k * sizeof *x), *y = malloc((size_t)k * sizeof *y), L = 0;
    int rc = x && y ? vv__power_lipschitz(vv_backend_cpu(), s->G, k, s->n, x, y, &L) : -1;
    free(x);
    free(y);
    if (rc == 0)
        return L;
    /* Out of memory: the Gershgorin bound, max row sum of |G|, always safe. */
    double best = 0;
    for (int64_t i = 0; i < k; i++) {
        double r = 0;
        for (int64_t j = 0; j < k; j++)
            r += fabs(s->G[i * k + j]);
        best = r > best ? r : best;
    }
    return best / (double)s->n;
}

void vv_gram_eval(const vv_stats *s, const double *W, const double *GW, double lambda,
                  double *mnorm, vv_eval *e)
{
    int64_t d = s->d, ng = vv_groups_count(s);
    double n = (double)s->n;
    double wb = 0, wgw = 0, gn = 0, mmax = 0;
    int64_t active = 0;
    /* A group's rows are one contiguous block of W, GW and Bt, so the sums
     * run in the same order as row by row; for groups of one row this is
     * the row-wise computation exactly. */
    for (int64_t g = 0; g < ng; g++) {
        int64_t r0 = vv__goff(s, g), len = (vv__goff(s, g + 1) - r0) * d;
        const double *w = W + r0 * d, *gw = GW + r0 * d, *b = s->Bt + r0 * d;
        double ww = 0, mm = 0;
        for (int64_t j = 0; j < len; j++) {
            wb += w[j] * b[j];
            wgw += w[j] * gw[j];
            ww += w[j] * w[j];
            double m = b[j] - gw[j];
            mm += m * m;
        }
        double wn = sqrt(ww), mn = sqrt(mm) / n;
        gn += wn;
        active += wn > VV_ACTIVE_TOL;
        if (mnorm)
            mnorm[g] = mn;
        if (mn > mmax)
            mmax = mn;
    }
    vv_gram_eval_sums(s, lambda, wb, wgw, gn, mmax, active, e);
}

void vv_gram_eval_sums(const vv_stats *s, double lambda, double wb, double wgw, double gn,
                       double mmax, int64_t active, vv_eval *e)
{
    double n = (double)s->n;
    double c = s->c;
    double r2 = c - 2 * wb + wgw;
    if (r2 < 0)
        r2 = 0;
    double primal = r2 / (2 * n) + lambda * gn;
    double sc = mmax > lambda ? lambda / mmax : 1.0;
    double dual = (2 * sc * (c - wb) - sc * sc * r2) / (2 * n);
    double gap = primal - dual;
    e->objective = primal;
    e->gap = gap;
    e->rel_gap = c > 0 ? gap / (c / (2 * n)) : (gap > 0 ? gap : 0);
    e->mse = r2 / (n * (double)s->d);
    e->group_norm = gn;
    e->r2 = r2;
    e->dual_scale = sc;
    e->active = active;
}

int vv_gram_apply(const vv_stats *s, vv_backend *be, const double *W, double *GW)
{
    int64_t k = s->k, d = s->d;
    memset(GW, 0, (size_t)(k * d) * sizeof *GW);
    int64_t nnz = 0;
    for (int64_t i = 0; i < k; i++) {
        const double *w = W + i * d;
        for (int64_t j = 0; j < d; j++)
            if (w[j] != 0) {
                nnz++;
                break;
            }
    }
    if (nnz == 0)
        return 0;
    if (nnz * 2 > k)
        return be->ops->gemm(be, 0, 0, k, d, k, 1.0, s->G, k, W, d, 0.0, GW, d);
    /* GW = sum over the support of G[:, i] w_i^T.  G is symmetric, so G[:, i] is
     * row i: pack blocks of support rows of G and W and let gemm add them up. */
    enum { BLK = 128 };
    double *gp = malloc((size_t)(BLK * k) * sizeof *gp);
    double *wp = malloc((size_t)(BLK * d) * sizeof *wp);
    int rc = 0;
    if (!gp || !wp) {
        rc = vv_fail(VV_ENOMEM, "Gram product: out of memory");
        goto done;
    }
    int64_t nb = 0;
    for (int64_t i = 0; i <= k; i++) {
        int nz = 0;
        if (i < k)
            for (int64_t j = 0; j < d; j++)
                nz |= W[i * d + j] != 0;
        if (nz) {
            memcpy(gp + nb * k, s->G + i * k, (size_t)k * sizeof *gp);
            memcpy(wp + nb * d, W + i * d, (size_t)d * sizeof *wp);
            nb++;
        }
        if (nb == BLK || (i == k && nb > 0)) {
            if ((rc = be->ops->gemm(be, 1, 0, k, d, nb, 1.0, gp, k, wp, d, 1.0, GW, d)) < 0)
                goto done;
            nb = 0;
        }
    }
done:
    free(gp);
    free(wp);
    return rc;
}

int vv_gap_safe_screened_lg(const vv_stats *s, const vv_eval *e, double lambda, double mnorm_g,
                            double L_g)
{
    /* The dual objective is N-strongly concave, so the dual optimum lies within
     * sqrt(2 gap / N) of the feasible point theta = s R / N; rounding can make the
     * computed gap slightly negative, so the radius never drops below that noise.
     * Over that ball ||Phi_g^T theta||_F moves by at most ||Phi_g||_2 times the
     * radius, and ||Phi_g||_2 = sqrt(lambda_max(G_gg)) = sqrt(L_g). */
    double gap = e->gap;
    double floor_gap = 1e-13 * (e->objective > 0 ? e->objective : 0);
    if (gap < floor_gap)
        gap = floor_gap;
    double r = sqrt(2 * gap / (double)s->n);
    return e->dual_scale * mnorm_g + r * sqrt(L_g > 0 ? L_g : 0) < lambda;
}

int vv_gap_safe_screened(const vv_stats *s, const vv_eval *e, double lambda, double mnorm_g,
                         int64_t g)
{
    int64_t r0 = vv__goff(s, g), sz = vv__goff(s, g + 1) - r0;
    if (sz == 1)
        return vv_gap_safe_screened_lg(s, e, lambda, mnorm_g, s->G[r0 * s->k + r0]);
    /* A block of several rows: L_g from its own eigenvalue problem (the
     * solvers compute every L_g once with vv_group_lmax instead). */
    vv_stats one = *s;
    int64_t off[2] = {0, sz};
    one.k = sz;
    one.group_off = off;
    one.ngroups = 1;
    double *blk = malloc((size_t)(sz * sz) * sizeof *blk), L = 0;
    if (!blk)
        return 0;
    for (int64_t i = 0; i < sz; i++)
        memcpy(blk + i * sz, s->G + (r0 + i) * s->k + r0, (size_t)sz * sizeof *blk);
    one.G = blk;
    int rc = vv_group_lmax(&one, &L);
    free(blk);
    return rc == 0 && vv_gap_safe_screened_lg(s, e, lambda, mnorm_g, L);
}
