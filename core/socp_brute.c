/* socp_brute.c - the paper's Fig. 5 brute force (sparsest optimal solution
 * by enumerating supports) and the instance generators of Figs. 3-5
 * (vv/socp.h). */
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/lasso.h"
#include "vv/socp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Generators ---------------------------------------------------------- */

int vv_socp_gen_gaussian(int64_t n, int64_t k, int64_t d, uint64_t seed, double *phi, double *psi)
{
    if (n < 1 || k < 1 || d < 1)
        return vv_fail(VV_EINVAL, "socp gen: sizes must be >= 1, got N=%lld K=%lld D=%lld",
                       (long long)n, (long long)k, (long long)d);
    if (!phi || !psi)
        return vv_fail(VV_EINVAL, "socp gen: phi and psi must not be NULL");
    vv_rng r;
    vv_rng_seed(&r, seed);
    /* X = randn(K, N) row by row: X[c][i] = Phi[i][c]. */
    for (int64_t c = 0; c < k; c++)
        for (int64_t i = 0; i < n; i++)
            phi[i * k + c] = vv_rng_normal(&r);
    /* Y = randn(D, N) row by row: Y[j][i] = Psi[i][j]. */
    for (int64_t j = 0; j < d; j++)
        for (int64_t i = 0; i < n; i++)
            psi[i * d + j] = vv_rng_normal(&r);
    return 0;
}

int vv_socp_gen_lowrank(int64_t n, int64_t k, int64_t r, uint64_t seed, double *phi, double *psi)
{
    if (n < 1 || k < 1 || r < 1)
        return vv_fail(VV_EINVAL, "socp gen: sizes must be >= 1, got N=%lld K=%lld r=%lld",
                       (long long)n, (long long)k, (long long)r);
    if (r > n || r > k)
        return vv_fail(VV_EINVAL, "socp gen: rank r=%lld exceeds min(N=%lld, K=%lld)", (long long)r,
                       (long long)n, (long long)k);
    if (!phi || !psi)
        return vv_fail(VV_EINVAL, "socp gen: phi and psi must not be NULL");
    double *U = malloc((size_t)(k * r) * sizeof *U);   /* K x r */
    double *Bm = malloc((size_t)(n * r) * sizeof *Bm); /* N x r: row i = b_i */
    double *G = malloc((size_t)(r * k) * sizeof *G);   /* r x K */
    if (!U || !Bm || !G) {
        free(U);
        free(Bm);
        free(G);
        return vv_fail(VV_ENOMEM, "socp gen: out of memory");
    }
    vv_rng g;
    vv_rng_seed(&g, seed);
    for (int64_t i = 0; i < k * r; i++)
        U[i] = vv_rng_normal(&g);
    for (int64_t i = 0; i < n * r; i++)
        Bm[i] = vv_rng_normal(&g);
    for (int64_t i = 0; i < r * k; i++)
        G[i] = vv_rng_normal(&g);
    /* Phi = X^T = B U^T (N x K); Psi = Y^T = X^T G^T = Phi G^T (N x r). */
    vv_dgemm(0, 1, n, k, r, 1.0, Bm, r, U, r, 0.0, phi, k);
    vv_dgemm(0, 1, n, r, k, 1.0, phi, k, G, k, 0.0, psi, r);
    free(U);
    free(Bm);
    free(G);
    return 0;
}

/* ---- Brute force -------------------------------------------------------- */

int64_t vv_socp_brute_count(int64_t n, int64_t k)
{
    if (n < 1 || k < 1 || n > k)
        return 0;
    /* sum_{m=n}^{k} C(k, m), each C by the exact multiplicative recurrence. */
    __int128 total = 0, c = 1; /* c = C(k, m) */
    for (int64_t m = 0; m <= k; m++) {
        if (m > 0)
            c = c * (k - m + 1) / m;
        if (m >= n)
            total += c;
        if (c > (__int128)INT64_MAX || total > (__int128)INT64_MAX)
            return INT64_MAX;
    }
    return (int64_t)total;
}

void vv_socp_brute_opts_default(vv_socp_brute_opts *o)
{
    memset(o, 0, sizeof *o);
    vv_socp_opts_default(&o->socp);
    o->budget = 1000000;
    o->opt_tol = 1e-6;
}

/* Solves A X = B for the n x n row-major A (destroyed) and n x d B
 * (overwritten by X) by LU with partial pivoting.  Returns -1 when a pivot
 * is <= 1e-12 times the largest entry of A (numerically singular). */
static int lu_solve(int64_t n, int64_t d, double *A, double *B)
{
    double amax = 0;
    for (int64_t i = 0; i < n * n; i++)
        amax = fmax(amax, fabs(A[i]));
    if (amax == 0)
        return -1;
    for (int64_t j = 0; j < n; j++) {
        int64_t p = j;
        for (int64_t i = j + 1; i < n; i++)
            if (fabs(A[i * n + j]) > fabs(A[p * n + j]))
                p = i;
        if (fabs(A[p * n + j]) <= 1e-12 * amax)
            return -1;
        if (p != j) {
            for (int64_t c = 0; c < n; c++) {
                double t = A[j * n + c];
                A[j * n + c] = A[p * n + c];
                A[p * n + c] = t;
            }
            for (int64_t c = 0; c < d; c++) {
                double t = B[j * d + c];
                B[j * d + c] = B[p * d + c];
                B[p * d + c] = t;
            }
        }
        for (int64_t i = j + 1; i < n; i++) {
            double f = A[i * n + j] / A[j * n + j];
            if (f == 0)
                continue;
            for (int64_t c = j + 1; c < n; c++)
                A[i * n + c] -= f * A[j * n + c];
            for (int64_t c = 0; c < d; c++)
                B[i * d + c] -= f * B[j * d + c];
        }
    }
    for (int64_t i = n - 1; i >= 0; i--)
        for (int64_t c = 0; c < d; c++) {
            double a = B[i * d + c];
            for (int64_t j = i + 1; j < n; j++)
                a -= A[i * n + j] * B[j * d + c];
            B[i * d + c] = a / A[i * n + i];
        }
    return 0;
}

/* Next m-subset of {0..k-1} in lexicographic order; 0 after the last. */
static int next_combination(int64_t *idx, int64_t m, int64_t k)
{
    int64_t i = m - 1;
    while (i >= 0 && idx[i] == k - m + i)
        i--;
    if (i < 0)
        return 0;
    idx[i]++;
    for (int64_t j = i + 1; j < m; j++)
        idx[j] = idx[j - 1] + 1;
    return 1;
}

typedef struct sub {
    double obj;     /* restricted optimum; +Inf when infeasible */
    int64_t active; /* columns with norm > VV_ACTIVE_TOL */
    int ok;         /* solved to tolerance (or in closed form) */
} sub;

/* The problem restricted to the m columns idx. */
static int solve_restricted(int64_t n, int64_t k, int64_t d, const double *phi, const double *psi,
                            const int64_t *idx, int64_t m, const vv_socp_opts *so, double *phis,
                            double *work, int *closed, sub *out)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < m; c++)
            phis[i * m + c] = phi[i * k + idx[c]];
    *closed = 0;
    if (m == n) {
        /* V_S^T = Phi_S^{-1} Psi when Phi_S is invertible. */
        double *A = work, *X = work + n * n;
        memcpy(A, phis, (size_t)(n * n) * sizeof *A);
        memcpy(X, psi, (size_t)(n * d) * sizeof *X);
        if (lu_solve(n, d, A, X) == 0) {
            double obj = 0;
            int64_t act = 0;
            for (int64_t c = 0; c < n; c++) {
                double s = 0;
                for (int64_t j = 0; j < d; j++)
                    s += X[c * d + j] * X[c * d + j];
                s = sqrt(s);
                obj += s;
                act += s > VV_ACTIVE_TOL;
            }
            *closed = 1;
            out->obj = obj;
            out->active = act;
            out->ok = 1;
            return 0;
        }
    }
    vv_socp_result r;
    int rc = vv_socp_solve(n, m, d, phis, psi, so, NULL, NULL, &r);
    if (rc < 0)
        return rc;
    out->ok = r.status == VV_SOCP_OPTIMAL;
    out->obj = r.status == VV_SOCP_INFEASIBLE ? HUGE_VAL : r.primal;
    out->active = r.status == VV_SOCP_INFEASIBLE ? 0 : r.active;
    if (r.status == VV_SOCP_INFEASIBLE)
        out->ok = 1;
    return 0;
}

int vv_socp_brute(int64_t n, int64_t k, int64_t d, const double *phi, const double *psi,
                  const vv_socp_brute_opts *opts, int64_t *support, double *size_best,
                  vv_socp_brute_result *res)
{
    double t0 = vv_now();
    if (!res)
        return vv_fail(VV_EINVAL, "socp brute: res must not be NULL");
    memset(res, 0, sizeof *res);
    vv_socp_brute_opts o;
    vv_socp_brute_opts_default(&o);
    if (opts) {
        o = *opts;
        if (o.opt_tol == 0)
            o.opt_tol = 1e-6;
    }
    if (!phi || !psi)
        return vv_fail(VV_EINVAL, "socp brute: phi and psi must not be NULL");
    if (n < 1 || k < 1 || d < 1)
        return vv_fail(VV_EINVAL, "socp brute: sizes must be >= 1, got N=%lld K=%lld D=%lld",
                       (long long)n, (long long)k, (long long)d);
    if (n > k)
        return vv_fail(VV_EINVAL,
                       "socp brute: needs K >= N (supports of size N..K), got N=%lld K=%lld",
                       (long long)n, (long long)k);
    if (o.budget < 1)
        return vv_fail(VV_EINVAL, "socp brute: budget must be >= 1, got %lld", (long long)o.budget);
    if (!(o.opt_tol > 0 && o.opt_tol < 1))
        return vv_fail(VV_EINVAL, "socp brute: opt_tol must lie in (0, 1), got %g", o.opt_tol);
    int64_t count = vv_socp_brute_count(n, k);
    if (count > o.budget)
        return vv_fail(VV_EINVAL,
                       "socp brute: K=%lld columns and N=%lld samples need %lld restricted "
                       "problems (sum of C(%lld, m) for m = %lld..%lld), above the budget of %lld",
                       (long long)k, (long long)n, (long long)count, (long long)k, (long long)n,
                       (long long)k, (long long)o.budget);

    int rc = 0;
    int64_t *idx = malloc((size_t)k * sizeof *idx);
    double *best = malloc((size_t)(k + 1) * sizeof *best);
    int64_t *best_act = malloc((size_t)(k + 1) * sizeof *best_act);
    int64_t **best_sup = calloc((size_t)(k + 1), sizeof *best_sup);
    double *phis = malloc((size_t)(n * k) * sizeof *phis);
    double *work = malloc((size_t)(n * n + n * d) * sizeof *work);
    if (!idx || !best || !best_act || !best_sup || !phis || !work) {
        rc = vv_fail(VV_ENOMEM, "socp brute: out of memory");
        goto done;
    }
    for (int64_t m = 0; m <= k; m++) {
        best[m] = HUGE_VAL;
        best_act[m] = 0;
    }
    /* The full problem first: GL*. */
    for (int64_t c = 0; c < k; c++)
        idx[c] = c;
    sub full;
    int closed;
    if ((rc = solve_restricted(n, k, d, phi, psi, idx, k, &o.socp, phis, work, &closed, &full)) < 0)
        goto done;
    res->subproblems = 1;
    res->closed_form += closed;
    if (!isfinite(full.obj)) {
        rc = vv_fail(VV_ENUMERIC, "socp brute: Psi is not in the column space of Phi "
                                  "(the full problem is infeasible)");
        goto done;
    }
    res->failed += !full.ok;
    double gl = full.obj;
    best[k] = full.obj;
    best_act[k] = full.active;
    if (!(best_sup[k] = malloc((size_t)k * sizeof **best_sup))) {
        rc = vv_fail(VV_ENOMEM, "socp brute: out of memory");
        goto done;
    }
    memcpy(best_sup[k], idx, (size_t)k * sizeof *idx);

    for (int64_t m = n; m < k; m++) {
        for (int64_t c = 0; c < m; c++)
            idx[c] = c;
        do {
            if (o.stop && atomic_load_explicit(o.stop, memory_order_relaxed)) {
                rc = vv_fail(VV_ESTATE, "socp brute: stopped after %lld subproblems",
                             (long long)res->subproblems);
                goto done;
            }
            sub sb;
            if ((rc = solve_restricted(n, k, d, phi, psi, idx, m, &o.socp, phis, work, &closed,
                                       &sb)) < 0)
                goto done;
            res->subproblems++;
            res->closed_form += closed;
            res->failed += !sb.ok;
            res->infeasible += !isfinite(sb.obj);
            if (sb.obj < best[m]) {
                best[m] = sb.obj;
                best_act[m] = sb.active;
                if (!best_sup[m] && !(best_sup[m] = malloc((size_t)k * sizeof **best_sup))) {
                    rc = vv_fail(VV_ENOMEM, "socp brute: out of memory");
                    goto done;
                }
                memcpy(best_sup[m], idx, (size_t)m * sizeof *idx);
            }
            if (sb.obj < gl)
                gl = sb.obj;
        } while (next_combination(idx, m, k));
        if (!o.exhaustive && best[m] <= gl * (1 + o.opt_tol))
            break;
    }
    res->gl_star = gl;
    for (int64_t m = n; m <= k; m++)
        if (best[m] <= gl * (1 + o.opt_tol)) {
            res->sparsest = m;
            res->sparsest_obj = best[m];
            res->sparsest_active = best_act[m];
            if (support)
                memcpy(support, best_sup[m], (size_t)m * sizeof *support);
            break;
        }
    if (size_best)
        for (int64_t m = 0; m <= k; m++)
            size_best[m] = best[m];
done:
    if (best_sup)
        for (int64_t m = 0; m <= k; m++)
            free(best_sup[m]);
    free(best_sup);
    free(idx);
    free(best);
    free(best_act);
    free(phis);
    free(work);
    res->seconds = vv_now() - t0;
    return rc;
}
