/* socp.c - exact multi-task lasso interpolation (vv/socp.h): argument
 * checks, the reduction to the row space of Phi, and the map back.
 *
 * A Householder QR with column pivoting of Phi^T (K x N) gives Q (K x r,
 * orthonormal columns) with Phi = L Q^T, L = Phi Q (N x r), r = rank(Phi).
 * A QR of L = Q2 R2 gives the least-squares right-hand side
 * B = R2^{-1} Q2^T Psi and the part of Psi no V can fit, (I - Q2 Q2^T) Psi.
 * The reduced problem
 *
 *     min sum_k ||v_k||  s.t.  Q^T W = B    (W = V^T, K x D)
 *
 * has the same solutions as the original when Psi is consistent; its
 * equality matrix Q^T (x) I_D has orthonormal rows, and its dual solution
 * Y' maps back to Y = Q2 R2^{-T} Y' (so that L^T Y = Y', Phi^T Y = Q Y').
 * B is scaled to unit Frobenius norm, which makes the optimum >= 1.  The
 * interior-point method itself is in socp_ipm.c.
 */
#include "vv/socp.h"
#include "socp_internal.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* At most this many equalities r D: the normal matrix takes 512 MiB. */
#define MAX_EQUALITIES 8192

const char *vv_socp_status_name(int status)
{
    switch (status) {
    case VV_SOCP_OPTIMAL:
        return "optimal";
    case VV_SOCP_INFEASIBLE:
        return "infeasible";
    case VV_SOCP_MAX_ITER:
        return "max_iter";
    case VV_SOCP_NUMERICAL:
        return "numerical";
    default:
        return "unknown";
    }
}

void vv_socp_opts_default(vv_socp_opts *o)
{
    memset(o, 0, sizeof *o);
    o->tol = 1e-9;
    o->max_iter = 100;
    o->rank_tol = 1e-10;
    o->feas_tol = 1e-8;
}

/* ---- Small dense linear algebra (column-major) ------------------------------ */

/* Householder QR of the m x n column-major matrix a (leading dimension
 * lda) by LAPACK, with column pivoting when pivot (dgeqp3) or without
 * (dgeqrf): R on and above the diagonal, the reflectors below, their
 * factors in tau.  Returns the numerical rank, the number of leading
 * diagonal entries of R above rtol times the first (and above zero), or -1
 * when out of memory.  (A hand-written QR that stopped at the rank took 6
 * to 8 times as long at 512 x 64 to 4096 x 512.) */
static int64_t qr_house(int64_t m, int64_t n, double *a, int64_t lda, double *tau, int pivot,
                        double rtol)
{
    int info;
    if (pivot) {
        int *jpvt = calloc((size_t)(n > 0 ? n : 1), sizeof *jpvt);
        if (!jpvt)
            return -1;
        info = vv_dgeqp3((int)m, (int)n, a, (int)lda, jpvt, tau);
        free(jpvt);
    } else {
        info = vv_dgeqrf((int)m, (int)n, a, (int)lda, tau);
    }
    if (info < 0)
        return -1;
    int64_t steps = m < n ? m : n;
    double first = steps > 0 ? fabs(a[0]) : 0;
    for (int64_t j = 0; j < steps; j++) {
        double d = fabs(a[j * lda + j]);
        if (d == 0 || d <= rtol * first)
            return j;
    }
    return steps;
}

/* The first r columns of Q = H_0 ... H_{r-1} (m x r, column-major, ld m)
 * from the reflectors left in a (ld m) by qr_house; -1 when out of
 * memory. */
static int qr_form_q(int64_t m, int64_t r, const double *a, const double *tau, double *q)
{
    memcpy(q, a, (size_t)(m * r) * sizeof *q);
    return vv_dorgqr((int)m, (int)r, (int)r, q, (int)m, tau) < 0 ? -1 : 0;
}

static double dot(int64_t n, const double *a, const double *b)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* ---- The public solver ------------------------------------------------------ */

static int check_opts(const vv_socp_opts *in, vv_socp_opts *o)
{
    vv_socp_opts_default(o);
    if (!in)
        return 0;
    if (in->tol != 0) {
        if (!(in->tol >= 1e-14 && in->tol <= 1e-1))
            return vv_fail(VV_EINVAL, "socp: tol must lie in [1e-14, 0.1], got %g", in->tol);
        o->tol = in->tol;
    }
    if (in->max_iter < 0)
        return vv_fail(VV_EINVAL, "socp: max_iter must be >= 0, got %d", in->max_iter);
    if (in->max_iter > 0)
        o->max_iter = in->max_iter;
    if (in->rank_tol != 0) {
        if (!(in->rank_tol > 0 && in->rank_tol < 1))
            return vv_fail(VV_EINVAL, "socp: rank_tol must lie in [0, 1), got %g", in->rank_tol);
        o->rank_tol = in->rank_tol;
    }
    if (in->feas_tol != 0) {
        if (!(in->feas_tol > 0 && in->feas_tol < 1))
            return vv_fail(VV_EINVAL, "socp: feas_tol must lie in [0, 1), got %g", in->feas_tol);
        o->feas_tol = in->feas_tol;
    }
    o->stop = in->stop;
    return 0;
}

/* Final, independent metrics of V (d x k) and Y (n x d) on the original data;
 * scales Y into the dual feasible set. */
static int final_metrics(int64_t n, int64_t k, int64_t d, const double *phi, const double *psi,
                         const double *V, double *Y, vv_socp_result *res)
{
    double *R = malloc((size_t)(n * d) * sizeof *R), *PY = malloc((size_t)(k * d) * sizeof *PY);
    if (!R || !PY) {
        free(R);
        free(PY);
        return vv_fail(VV_ENOMEM, "socp: out of memory");
    }
    /* R = Phi V^T - Psi. */
    memcpy(R, psi, (size_t)(n * d) * sizeof *R);
    vv_dgemm(0, 1, n, d, k, 1.0, phi, k, V, k, -1.0, R, d);
    double r2 = 0, p2 = 0;
    for (int64_t i = 0; i < n * d; i++) {
        r2 += R[i] * R[i];
        p2 += psi[i] * psi[i];
    }
    /* PY = Phi^T Y (k x d). */
    vv_dgemm(1, 0, k, d, n, 1.0, phi, k, Y, d, 0.0, PY, d);
    double ymax = 0;
    for (int64_t c = 0; c < k; c++)
        ymax = fmax(ymax, sqrt(dot(d, PY + c * d, PY + c * d)));
    res->dres = fmax(0.0, ymax - 1);
    double sc = ymax > 1 ? 1.0 / ymax : 1.0;
    for (int64_t i = 0; i < n * d; i++)
        Y[i] *= sc;
    double primal = 0, cmp = 0;
    int64_t active = 0;
    for (int64_t c = 0; c < k; c++) {
        double nv = 0, iv = 0;
        for (int64_t j = 0; j < d; j++) {
            nv += V[j * k + c] * V[j * k + c];
            iv += V[j * k + c] * PY[c * d + j] * sc;
        }
        nv = sqrt(nv);
        primal += nv;
        cmp += nv - iv;
        active += nv > VV_ACTIVE_TOL;
    }
    res->primal = primal;
    res->dual = dot(n * d, psi, Y);
    res->gap = res->primal - res->dual;
    res->rel_gap = res->gap / fmax(res->primal, 1e-300);
    res->pres = sqrt(r2) / fmax(sqrt(p2), 1e-300);
    res->complementarity = cmp / fmax(primal, 1e-300);
    res->active = active;
    free(R);
    free(PY);
    return 0;
}

int vv_socp_solve(int64_t n, int64_t k, int64_t d, const double *phi, const double *psi,
                  const vv_socp_opts *opts, double *v, double *y, vv_socp_result *res)
{
    double t0 = vv_now();
    if (!res)
        return vv_fail(VV_EINVAL, "socp: res must not be NULL");
    memset(res, 0, sizeof *res);
    if (!phi || !psi)
        return vv_fail(VV_EINVAL, "socp: phi and psi must not be NULL");
    if (n < 1 || k < 1 || d < 1)
        return vv_fail(VV_EINVAL, "socp: sizes must be >= 1, got N=%lld K=%lld D=%lld",
                       (long long)n, (long long)k, (long long)d);
    if ((n < k ? n : k) > MAX_EQUALITIES / d)
        return vv_fail(VV_ETOOLARGE, "socp: min(N, K) * D = %lld equalities, above the limit of %d",
                       (long long)((n < k ? n : k) * d), MAX_EQUALITIES);
    vv_socp_opts o;
    int rc = check_opts(opts, &o);
    if (rc < 0)
        return rc;
    for (int64_t i = 0; i < n * k; i++)
        if (!isfinite(phi[i]))
            return vv_fail(VV_ENONFINITE, "socp: phi[%lld][%lld] = %g", (long long)(i / k),
                           (long long)(i % k), phi[i]);
    for (int64_t i = 0; i < n * d; i++)
        if (!isfinite(psi[i]))
            return vv_fail(VV_ENONFINITE, "socp: psi[%lld][%lld] = %g", (long long)(i / d),
                           (long long)(i % d), psi[i]);

    int64_t mn = n < k ? n : k;
    double *A = malloc((size_t)(n * k) * sizeof *A); /* Phi^T, column-major k x n */
    double *tau = malloc((size_t)n * sizeof *tau);
    double *Qc = malloc((size_t)(k * mn) * sizeof *Qc); /* k x r column-major */
    double *Q = malloc((size_t)(k * mn) * sizeof *Q);   /* k x r row-major */
    double *Lc = malloc((size_t)(n * mn) * sizeof *Lc); /* n x r column-major */
    double *tau2 = malloc((size_t)mn * sizeof *tau2);
    double *Q2 = malloc((size_t)(n * mn) * sizeof *Q2); /* n x r column-major */
    double *B = malloc((size_t)(mn * d) * sizeof *B);   /* r x d */
    double *Rs = malloc((size_t)(n * d) * sizeof *Rs);  /* n x d */
    double *Wt = malloc((size_t)(k * d) * sizeof *Wt);  /* k x d */
    double *Yl = malloc((size_t)(n * d) * sizeof *Yl);  /* n x d */
    double *Yr = malloc((size_t)(mn * d) * sizeof *Yr); /* r x d */
    if (!A || !tau || !Qc || !Q || !Lc || !tau2 || !Q2 || !B || !Rs || !Wt || !Yl || !Yr) {
        rc = vv_fail(VV_ENOMEM, "socp: out of memory (N=%lld K=%lld D=%lld)", (long long)n,
                     (long long)k, (long long)d);
        goto done;
    }
    /* 1. Row space of Phi. */
    memcpy(A, phi, (size_t)(n * k) * sizeof *A);
    int64_t r = qr_house(k, n, A, k, tau, 1, o.rank_tol);
    if (r < 0) {
        rc = vv_fail(VV_ENOMEM, "socp: out of memory for the QR of Phi (N=%lld K=%lld)",
                     (long long)n, (long long)k);
        goto done;
    }
    res->rank = r;
    double p2 = dot(n * d, psi, psi);
    if (p2 == 0) {
        /* Psi = 0: V = 0 is the unique optimum, Y = 0 certifies it. */
        if (v)
            memset(v, 0, (size_t)(d * k) * sizeof *v);
        if (y)
            memset(y, 0, (size_t)(n * d) * sizeof *y);
        res->status = VV_SOCP_OPTIMAL;
        goto done;
    }
    if (r > 0) {
        if (qr_form_q(k, r, A, tau, Qc) < 0) {
            rc = vv_fail(VV_ENOMEM, "socp: out of memory forming Q (K=%lld)", (long long)k);
            goto done;
        }
        for (int64_t c = 0; c < k; c++)
            for (int64_t j = 0; j < r; j++)
                Q[c * r + j] = Qc[j * k + c];
        /* L = Phi Q, stored column-major n x r as (Q^T Phi^T) row-major r x n. */
        vv_dgemm(1, 1, r, n, k, 1.0, Q, r, phi, k, 0.0, Lc, n);
        int64_t r2 = qr_house(n, r, Lc, n, tau2, 0, 0.0);
        if (r2 < 0) {
            rc = vv_fail(VV_ENOMEM, "socp: out of memory for the QR of Phi Q");
            goto done;
        }
        if (r2 < r) {
            rc = vv_fail(VV_EINTERNAL, "socp: Phi Q lost rank (%lld of %lld)", (long long)r2,
                         (long long)r);
            goto done;
        }
        if (qr_form_q(n, r, Lc, tau2, Q2) < 0) {
            rc = vv_fail(VV_ENOMEM, "socp: out of memory forming Q2 (N=%lld)", (long long)n);
            goto done;
        }
        /* B = R2^{-1} Q2^T Psi: Q2 column-major n x r is row-major r x n. */
        vv_dgemm(0, 0, r, d, n, 1.0, Q2, n, psi, d, 0.0, B, d);
        memcpy(Rs, psi, (size_t)(n * d) * sizeof *Rs);
        vv_dgemm(1, 0, n, d, r, -1.0, Q2, n, B, d, 1.0, Rs, d);
        for (int64_t i = r - 1; i >= 0; i--)
            for (int64_t j = 0; j < d; j++) {
                double a = B[i * d + j];
                for (int64_t c = i + 1; c < r; c++)
                    a -= Lc[c * n + i] * B[c * d + j];
                B[i * d + j] = a / Lc[i * n + i];
            }
    } else {
        memcpy(Rs, psi, (size_t)(n * d) * sizeof *Rs);
    }
    double rs2 = dot(n * d, Rs, Rs);
    res->inconsistency = sqrt(rs2 / p2);
    if (r == 0 || res->inconsistency > o.feas_tol) {
        res->status = VV_SOCP_INFEASIBLE;
        if (v)
            memset(v, 0, (size_t)(d * k) * sizeof *v);
        if (y) {
            double sc = 1.0 / sqrt(rs2);
            for (int64_t i = 0; i < n * d; i++)
                y[i] = Rs[i] * sc;
        }
        res->primal = res->dual = res->gap = res->rel_gap = NAN;
        res->pres = 1;
        goto done;
    }
    /* 2. The interior-point method on the reduced problem with B / ||B||_F. */
    double bnorm = sqrt(dot(r * d, B, B));
    for (int64_t i = 0; i < r * d; i++)
        B[i] /= bnorm;
    int iters = 0;
    int st = vv_socp_ipm(k, d, r, Q, B, &o, Wt, Yr, &iters);
    res->iterations = iters;
    if (st < 0) {
        rc = st;
        goto done;
    }
    res->status = st;
    /* 3. Back to the original problem: V^T = bnorm * W, Y = Q2 R2^{-T} Y'. */
    for (int64_t i = 0; i < k * d; i++)
        Wt[i] *= bnorm;
    /* Forward substitution R2^T Z = Y' in place (r x d). */
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < d; j++) {
            double a = Yr[i * d + j];
            for (int64_t c = 0; c < i; c++)
                a -= Lc[i * n + c] * Yr[c * d + j];
            Yr[i * d + j] = a / Lc[i * n + i];
        }
    vv_dgemm(1, 0, n, d, r, 1.0, Q2, n, Yr, d, 0.0, Yl, d);
    double *V = v ? v : malloc((size_t)(d * k) * sizeof *V);
    if (!V) {
        rc = vv_fail(VV_ENOMEM, "socp: out of memory");
        goto done;
    }
    for (int64_t c = 0; c < k; c++)
        for (int64_t j = 0; j < d; j++)
            V[j * k + c] = Wt[c * d + j];
    rc = final_metrics(n, k, d, phi, psi, V, Yl, res);
    if (y)
        memcpy(y, Yl, (size_t)(n * d) * sizeof *y);
    if (!v)
        free(V);
done:
    free(Yr);
    free(A);
    free(tau);
    free(Qc);
    free(Q);
    free(Lc);
    free(tau2);
    free(Q2);
    free(B);
    free(Rs);
    free(Wt);
    free(Yl);
    res->seconds = vv_now() - t0;
    return rc;
}
