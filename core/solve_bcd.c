/* solve_bcd.c - block coordinate descent over groups on the Gram form.
 *
 * Outer iterations (celer's scheme, Massias et al. 2018/2020): evaluate the
 * full duality gap, drop the groups the Gap Safe rule proves zero, and pick
 * a working set of the groups closest to violating their optimality
 * condition (all active ones included, size max(100, 2 |active|) groups).
 * Inner iterations: cyclic block soft-thresholding epochs on the working
 * set's groups (step 1/L_g, L_g = lambda_max(G_gg)), with G W kept up to
 * date by rank-|g| updates restricted to the working set, Anderson
 * extrapolation of the iterates every 6 epochs (kept only when it lowers
 * the objective), until the working-set problem's own gap is below 0.3
 * times the full gap.  One epoch costs O(|active| |ws| D) (in rows).
 * Without groups every row is one: the neuron-wise solver, step for step.
 */
#include "solve_internal.h"
#include "vv/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { WS_MIN = 100, AA_K = 5, INNER_RATIO_PCT = 30 };

typedef struct prio_idx {
    double prio;
    int64_t k;
} prio_idx;

static int cmp_prio(const void *a, const void *b)
{
    const prio_idx *x = a, *y = b;
    if (x->prio < y->prio)
        return -1;
    if (x->prio > y->prio)
        return 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Solves the m x m system A z = 1 by Gaussian elimination with partial
 * pivoting (m <= AA_K); returns 0 on success. */
static int solve_small(int m, double *A, double *z)
{
    for (int i = 0; i < m; i++)
        z[i] = 1.0;
    for (int c = 0; c < m; c++) {
        int piv = c;
        for (int r = c + 1; r < m; r++)
            if (fabs(A[r * m + c]) > fabs(A[piv * m + c]))
                piv = r;
        if (!(fabs(A[piv * m + c]) > 0))
            return -1;
        if (piv != c) {
            for (int j = 0; j < m; j++) {
                double t = A[c * m + j];
                A[c * m + j] = A[piv * m + j];
                A[piv * m + j] = t;
            }
            double t = z[c];
            z[c] = z[piv];
            z[piv] = t;
        }
        for (int r = c + 1; r < m; r++) {
            double f = A[r * m + c] / A[c * m + c];
            for (int j = c; j < m; j++)
                A[r * m + j] -= f * A[c * m + j];
            z[r] -= f * z[c];
        }
    }
    for (int c = m - 1; c >= 0; c--) {
        double acc = z[c];
        for (int j = c + 1; j < m; j++)
            acc -= A[c * m + j] * z[j];
        z[c] = acc / A[c * m + c];
        if (!isfinite(z[c]))
            return -1;
    }
    return 0;
}

/* The primal objective on the working set from W and G W. */
static double ws_objective(const vv_stats *ws, const double *W, const double *GW, double lambda)
{
    vv_eval e;
    vv_gram_eval(ws, W, GW, lambda, NULL, &e);
    return e.objective;
}

/* One cyclic epoch of block soft-thresholding over the working set's
 * groups: W_g <- max(0, 1 - N lambda / (L_g ||U||_F)) U with
 * U = W_g - (GW_g - Bt_g) / L_g, then GW += G[:, g] (W_g new - old).  Lg:
 * the groups' L_g; u: (largest group) x D scratch. */
static void bcd_epoch(const vv_stats *ws, const double *Lg, double lambda, double *W, double *GW,
                      double *u)
{
    int64_t m = ws->k, d = ws->d, ng = vv_groups_count(ws);
    double nl = (double)ws->n * lambda;
    for (int64_t a = 0; a < ng; a++) {
        double L = Lg[a];
        if (!(L > 0))
            continue;
        int64_t r0 = vv__goff(ws, a), r1 = vv__goff(ws, a + 1), len = (r1 - r0) * d;
        double *w = W + r0 * d;
        const double *gw = GW + r0 * d, *b = ws->Bt + r0 * d;
        double q = 0;
        for (int64_t j = 0; j < len; j++) {
            u[j] = w[j] - (gw[j] - b[j]) / L;
            q += u[j] * u[j];
        }
        double nrm = sqrt(q), thr = nl / L;
        double f = nrm > thr ? 1.0 - thr / nrm : 0.0;
        int changed = 0;
        for (int64_t j = 0; j < len; j++) {
            double nw = f * u[j];
            u[j] = nw - w[j];
            changed |= u[j] != 0;
            w[j] = nw;
        }
        if (!changed)
            continue;
        /* G symmetric: column i of G is row i.  A rank-|g| update, row by
         * row of GW, each adding the group's rows of G times their changes
         * (one row: the rank-one update of the neuron-wise solver). */
        const double *g = ws->G + r0 * m;
        if (r1 - r0 == 1) {
            for (int64_t r = 0; r < m; r++) {
                double gr = g[r];
                double *o = GW + r * d;
                for (int64_t j = 0; j < d; j++)
                    o[j] += gr * u[j];
            }
            continue;
        }
        for (int64_t r = 0; r < m; r++) {
            double *o = GW + r * d;
            for (int64_t i = 0; i < r1 - r0; i++) {
                double gr = g[i * m + r];
                const double *du = u + i * d;
                for (int64_t j = 0; j < d; j++)
                    o[j] += gr * du[j];
            }
        }
    }
}

int vv_solve_bcd(const vv_stats *s, const vv_lasso_opts *o, double *W, vv_lasso_result *res)
{
    vv_backend *be = o->be ? o->be : vv_backend_cpu();
    int64_t k = s->k, d = s->d, ng = vv_groups_count(s), gmax = 1;
    for (int64_t g = 0; g < ng; g++)
        if (vv__goff(s, g + 1) - vv__goff(s, g) > gmax)
            gmax = vv__goff(s, g + 1) - vv__goff(s, g);
    size_t kd = (size_t)(k * d);
    double *GW = malloc(kd * sizeof *GW), *mnorm = malloc((size_t)ng * sizeof *mnorm);
    double *Lg = malloc((size_t)ng * sizeof *Lg), *Lws = malloc((size_t)ng * sizeof *Lws);
    char *screened = calloc((size_t)ng, 1);
    prio_idx *pi = malloc((size_t)ng * sizeof *pi);
    int64_t *wsi = malloc((size_t)ng * sizeof *wsi),
            *wsoff = malloc((size_t)(ng + 1) * sizeof *wsoff);
    int64_t *rows = malloc((size_t)k * sizeof *rows);
    double *u = malloc((size_t)(gmax * d) * sizeof *u);
    double *Gws = NULL, *Bws = NULL, *Wws = NULL, *GWws = NULL, *hist = NULL, *acc = NULL,
           *gacc = NULL;
    int64_t cap = 0;
    int rc = 0;
    if (!GW || !mnorm || !Lg || !Lws || !screened || !pi || !wsi || !wsoff || !rows || !u) {
        rc = vv_fail(VV_ENOMEM, "bcd: out of memory");
        goto done;
    }
    /* The groups' constants, once: G_kk for a row, lambda_max(G_gg) for a
     * block (an eigenvalue problem per group). */
    if ((rc = vv_group_lmax(s, Lg)) < 0)
        goto done;
    vv_progress p;
    vv_progress_init(&p, s, o);
    int64_t it = 0;
    vv_eval e;
    vv_stop_reason why = VV_STOP_NONE;
    for (;;) {
        if ((rc = vv_gram_apply(s, be, W, GW)) < 0)
            goto done;
        vv_gram_eval(s, W, GW, o->lambda, mnorm, &e);
        if (why != VV_STOP_NONE) {
            /* An inner loop was interrupted: report the final iterate, which may
             * have converged all the same. */
            if (vv_progress_step(&p, it, &e, 1) == VV_STOP_CONVERGED)
                why = VV_STOP_CONVERGED;
            break;
        }
        why = vv_progress_step(&p, it, &e, 1);
        if (why != VV_STOP_NONE)
            break;

        /* Screening and working-set priorities, per group. */
        int64_t ncand = 0, nact = 0;
        for (int64_t g = 0; g < ng; g++) {
            const double *w = W + vv__goff(s, g) * d;
            int64_t len = (vv__goff(s, g + 1) - vv__goff(s, g)) * d;
            int nz = 0;
            for (int64_t j = 0; j < len; j++)
                nz |= w[j] != 0;
            double lg = Lg[g];
            if (nz) {
                pi[ncand++] = (prio_idx){-INFINITY, g};
                nact++;
                continue;
            }
            if (screened[g] || !(lg > 0))
                continue;
            if (!o->no_screening && vv_gap_safe_screened_lg(s, &e, o->lambda, mnorm[g], lg)) {
                screened[g] = 1;
                continue;
            }
            pi[ncand++] = (prio_idx){(o->lambda - e.dual_scale * mnorm[g]) / sqrt(lg), g};
        }
        int64_t m = 2 * nact > WS_MIN ? 2 * nact : WS_MIN;
        if (m > ncand)
            m = ncand;
        if (m == 0) {
            /* Every group is provably zero and W = 0: nothing is left to do. */
            why = VV_STOP_CONVERGED;
            break;
        }
        qsort(pi, (size_t)ncand, sizeof *pi, cmp_prio);
        for (int64_t a = 0; a < m; a++)
            wsi[a] = pi[a].k;
        qsort(wsi, (size_t)m, sizeof *wsi, cmp_i64);
        /* The working set's rows: its groups' rows, ascending, each group a
         * contiguous range again (wsoff). */
        int64_t mr = 0;
        for (int64_t a = 0; a < m; a++) {
            wsoff[a] = mr;
            Lws[a] = Lg[wsi[a]];
            for (int64_t i = vv__goff(s, wsi[a]); i < vv__goff(s, wsi[a] + 1); i++)
                rows[mr++] = i;
        }
        wsoff[m] = mr;

        if (mr > cap) {
            free(Gws);
            free(Bws);
            free(Wws);
            free(GWws);
            free(hist);
            free(acc);
            free(gacc);
            Gws = malloc((size_t)(mr * mr) * sizeof *Gws);
            Bws = malloc((size_t)(mr * d) * sizeof *Bws);
            Wws = malloc((size_t)(mr * d) * sizeof *Wws);
            GWws = malloc((size_t)(mr * d) * sizeof *GWws);
            hist = malloc((size_t)((AA_K + 1) * mr * d) * sizeof *hist);
            acc = malloc((size_t)(mr * d) * sizeof *acc);
            gacc = malloc((size_t)(mr * d) * sizeof *gacc);
            if (!Gws || !Bws || !Wws || !GWws || !hist || !acc || !gacc) {
                cap = 0;
                rc = vv_fail(VV_ENOMEM, "bcd: out of memory for a working set of %lld rows",
                             (long long)mr);
                goto done;
            }
            cap = mr;
        }
        for (int64_t a = 0; a < mr; a++) {
            const double *g = s->G + rows[a] * k;
            for (int64_t b = 0; b < mr; b++)
                Gws[a * mr + b] = g[rows[b]];
            memcpy(Bws + a * d, s->Bt + rows[a] * d, (size_t)d * sizeof *Bws);
            memcpy(Wws + a * d, W + rows[a] * d, (size_t)d * sizeof *Wws);
            memcpy(GWws + a * d, GW + rows[a] * d, (size_t)d * sizeof *GWws);
        }
        vv_stats ws = {.n = s->n,
                       .k = mr,
                       .d = d,
                       .G = Gws,
                       .Bt = Bws,
                       .c = s->c,
                       .group_off = s->group_off ? wsoff : NULL,
                       .ngroups = s->group_off ? m : 0};
        double inner_target = e.gap * INNER_RATIO_PCT / 100.0;
        size_t md = (size_t)(mr * d);
        int nh = 0;
        for (;;) {
            bcd_epoch(&ws, Lws, o->lambda, Wws, GWws, u);
            it++;
            /* Anderson extrapolation from the last AA_K + 1 iterates. */
            memcpy(hist + (size_t)nh * md, Wws, md * sizeof *hist);
            if (++nh == AA_K + 1) {
                double A[AA_K * AA_K], z[AA_K];
                for (int i = 0; i < AA_K; i++)
                    for (int j = 0; j <= i; j++) {
                        const double *ui1 = hist + (size_t)(i + 1) * md, *ui = hist + (size_t)i * md;
                        const double *uj1 = hist + (size_t)(j + 1) * md, *uj = hist + (size_t)j * md;
                        double q = 0;
                        for (size_t t = 0; t < md; t++)
                            q += (ui1[t] - ui[t]) * (uj1[t] - uj[t]);
                        A[i * AA_K + j] = A[j * AA_K + i] = q;
                    }
                double tr = 0;
                for (int i = 0; i < AA_K; i++)
                    tr += A[i * AA_K + i];
                for (int i = 0; i < AA_K; i++)
                    A[i * AA_K + i] += 1e-12 * tr;
                if (tr > 0 && solve_small(AA_K, A, z) == 0) {
                    double sz = 0;
                    for (int i = 0; i < AA_K; i++)
                        sz += z[i];
                    if (sz != 0 && isfinite(sz)) {
                        memset(acc, 0, md * sizeof *acc);
                        for (int i = 0; i < AA_K; i++) {
                            const double *x = hist + (size_t)(i + 1) * md;
                            double ci = z[i] / sz;
                            for (size_t t = 0; t < md; t++)
                                acc[t] += ci * x[t];
                        }
                        if ((rc = be->ops->gemm(be, 0, 0, mr, d, mr, 1.0, Gws, mr, acc, d, 0.0,
                                                gacc, d)) < 0)
                            goto done;
                        if (ws_objective(&ws, acc, gacc, o->lambda) <
                            ws_objective(&ws, Wws, GWws, o->lambda)) {
                            memcpy(Wws, acc, md * sizeof *Wws);
                            memcpy(GWws, gacc, md * sizeof *GWws);
                        }
                    }
                }
                nh = 0;
            }
            vv_eval ie;
            vv_gram_eval(&ws, Wws, GWws, o->lambda, NULL, &ie);
            if (ie.gap <= inner_target)
                break;
            if ((why = vv_progress_poll(&p, it)) != VV_STOP_NONE)
                break;
        }
        for (int64_t a = 0; a < mr; a++)
            memcpy(W + rows[a] * d, Wws + a * d, (size_t)d * sizeof *W);
    }
    res->stop_reason = why;
    res->iterations = it;
    res->e = e;
done:
    free(GW);
    free(mnorm);
    free(screened);
    free(pi);
    free(wsi);
    free(wsoff);
    free(rows);
    free(Lg);
    free(Lws);
    free(u);
    free(Gws);
    free(Bws);
    free(Wws);
    free(GWws);
    free(hist);
    free(acc);
    free(gacc);
    return rc;
}
