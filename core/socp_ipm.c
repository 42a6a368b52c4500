/* socp_ipm.c - the primal-dual interior-point method of vv/socp.h on the
 * reduced problem  min sum_k ||w_k||  s.t.  Q^T W = B  (socp_internal.h).
 *
 * The cone program.  Variables x_k = (t_k, w_k) in the second-order cone
 * Q^{D+1}; primal  min sum t_k  s.t.  A x = b, x in K;  dual
 * max <b, y>  s.t.  A^T y + s = c, s in K, with c_k = (1, 0),
 * A x = Q^T W and (A^T y)_k = (0, Y^T q_k), q_k = row k of Q.
 * Nesterov-Todd scaling G_k = beta_k (2 w_k w_k^T - J) (w_k^T J w_k = 1)
 * with G^{-1} x = G s = lambda, kept in factored form and updated from the
 * scaled steps (the well-conditioned scaled iterates never go near the cone
 * boundary, so the scaling stays accurate down to tiny gaps; the update
 * formulas are those of Vandenberghe's cvxopt documentation).  Mehrotra
 * predictor-corrector with sigma = (mu_affine / mu)^3; equal primal and
 * dual steps of 0.99 of the way to the boundary.
 *
 * Normal equations.  With the Newton system
 *     A dx = r_p,  A^T dy + ds = r_d,  G^{-1} dx + G ds = r_c,
 * dy solves M dy = r_p - A G (r_c - G r_d), M = A G^2 A^T.  Only the
 * w-block of G_k^2 enters M, and it is a_k I + z_k z_k^T with
 * a_k = beta_k^2 and z_k = sqrt(8) beta_k w_k0 w_k1, so
 *     M = (Q^T diag(a) Q) (x) I_D + sum_k (q_k (x) z_k)(q_k (x) z_k)^T,
 * one r x r product and one (rD) x (rD) symmetric rank-K update, then a
 * Cholesky factorisation shared by the predictor and the corrector, with
 * iterative refinement against the operator A G^2 A^T.
 */
#include "socp_internal.h"
#include "vv/blas.h"
#include "vv/err.h"
#include "vv/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Cones per block of rows of Z in the normal matrix: bounds Z to
 * ZBLOCK x m doubles. */
#define ZBLOCK 256

/* ---- Second-order cone algebra (one cone: n = D + 1 entries) -------------- */

static double dot(int64_t n, const double *a, const double *b)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* sqrt(u0^2 - ||u1||^2) for u in the interior, factored against cancellation;
 * 0 when u is not in the interior. */
static double jnorm(int64_t n, const double *u)
{
    double r = sqrt(dot(n - 1, u + 1, u + 1));
    double p = (u[0] - r) * (u[0] + r);
    return u[0] > r && p > 0 ? sqrt(p) : 0;
}

/* out = G u = beta (2 w (w^T u) - J u). */
static void g_apply(int64_t n, const double *w, double beta, const double *u, double *out)
{
    double wu = 2 * dot(n, w, u);
    out[0] = beta * (wu * w[0] - u[0]);
    for (int64_t i = 1; i < n; i++)
        out[i] = beta * (wu * w[i] + u[i]);
}

/* out = G^{-1} u = (2 J w (w^T J u) - J u) / beta. */
static void ginv_apply(int64_t n, const double *w, double beta, const double *u, double *out)
{
    double wju = 2 * (w[0] * u[0] - dot(n - 1, w + 1, u + 1));
    out[0] = (wju * w[0] - u[0]) / beta;
    for (int64_t i = 1; i < n; i++)
        out[i] = (u[i] - wju * w[i]) / beta;
}

/* out = a o b (Jordan product). */
static void jprod(int64_t n, const double *a, const double *b, double *out)
{
    double d0 = dot(n, a, b);
    for (int64_t i = 1; i < n; i++)
        out[i] = a[0] * b[i] + b[0] * a[i];
    out[0] = d0;
}

/* out = l \ d: the solution of l o out = d (l in the interior). */
static void jdiv(int64_t n, const double *l, const double *d, double *out)
{
    double r2 = dot(n - 1, l + 1, l + 1);
    double det = l[0] * l[0] - r2;
    double x0 = (l[0] * d[0] - dot(n - 1, l + 1, d + 1)) / det;
    for (int64_t i = 1; i < n; i++)
        out[i] = (d[i] - x0 * l[i]) / l[0];
    out[0] = x0;
}

/* Largest a with z + a d in the cone (z in the interior); HUGE_VAL when
 * unbounded.  Maps z to e by the Lorentz boost P of z / jnorm(z) and reads
 * the smallest eigenvalue of P d / jnorm(z). */
static double cone_step(int64_t n, const double *z, const double *d)
{
    double nz = jnorm(n, z);
    if (!(nz > 0))
        return 0;
    double zb0 = z[0] / nz;
    double a = (z[0] * d[0] - dot(n - 1, z + 1, d + 1)) / nz; /* zbar^T J d */
    double kap = (a + d[0]) / (zb0 + 1) / nz;
    double r2 = 0;
    for (int64_t i = 1; i < n; i++) {
        double t = d[i] - kap * z[i];
        r2 += t * t;
    }
    double t = (sqrt(r2) - a) / nz;
    return t > 0 ? 1.0 / t : HUGE_VAL;
}

/* Nesterov-Todd scaling of the pair (x, s), both in the interior: w, beta
 * and lambda = G^{-1} x = G s.  Returns -1 when either is not interior. */
static int nt_scaling(int64_t n, const double *x, const double *s, double *w, double *beta,
                      double *lam)
{
    double aa = jnorm(n, x), bb = jnorm(n, s);
    if (!(aa > 0) || !(bb > 0))
        return -1;
    *beta = sqrt(aa / bb);
    double cc = sqrt((dot(n, x, s) / (aa * bb) + 1) / 2);
    w[0] = (x[0] / aa + s[0] / bb) / (2 * cc);
    for (int64_t i = 1; i < n; i++)
        w[i] = (x[i] / aa - s[i] / bb) / (2 * cc);
    /* The square root of the scaling point: (w + e) / sqrt(2 (w0 + 1)). */
    w[0] += 1;
    double sc = 1.0 / sqrt(2 * w[0]);
    for (int64_t i = 0; i < n; i++)
        w[i] *= sc;
    double dd = 2 * cc + x[0] / aa + s[0] / bb;
    double fx = (cc + s[0] / bb) / dd / aa, fs = (cc + x[0] / aa) / dd / bb;
    double g = sqrt(aa * bb);
    lam[0] = cc * g;
    for (int64_t i = 1; i < n; i++)
        lam[i] = g * (fx * x[i] + fs * s[i]);
    return 0;
}

/* Updates (w, beta, lambda) after a step, given the new iterates in the
 * current scaling, xt = G^{-1} x+ and st = G s+ (overwritten).  The new
 * scaling point is G applied to the scaling point of (xt, st); everything is
 * computed from the scaled vectors, which stay well inside the cone. */
static int nt_update(int64_t n, double *w, double *beta, double *lam, double *xt, double *st)
{
    double aa = jnorm(n, xt), bb = jnorm(n, st);
    if (!(aa > 0) || !(bb > 0))
        return -1;
    for (int64_t i = 0; i < n; i++) {
        xt[i] /= aa;
        st[i] /= bb;
    }
    double cc = sqrt((1 + dot(n, xt, st)) / 2);
    double vs = dot(n, w, xt);
    double vz = w[0] * st[0] - dot(n - 1, w + 1, st + 1);
    double vq = (vs + vz) / (2 * cc), vu = vs - vz;
    double w0 = 2 * w[0] * vq - (xt[0] + st[0]) / (2 * cc);
    double dd = (w[0] * vu - xt[0] / 2 + st[0] / 2) / (w0 + 1);
    double g = sqrt(aa * bb);
    lam[0] = cc * g;
    double f = 2 * (-dd * vq + 0.5 * vu);
    double fx = 0.5 * (1 - dd / cc), fs = 0.5 * (1 + dd / cc);
    for (int64_t i = 1; i < n; i++)
        lam[i] = g * (f * w[i] + fx * xt[i] + fs * st[i]);
    /* w := (2 w w^T - J) q with q = (xt + J st) / (2 c), then its square root. */
    double nw0 = 2 * vq * w[0] - (xt[0] + st[0]) / (2 * cc);
    for (int64_t i = 1; i < n; i++)
        w[i] = 2 * vq * w[i] + (xt[i] - st[i]) / (2 * cc);
    w[0] = nw0 + 1;
    double sc = 1.0 / sqrt(2 * w[0]);
    for (int64_t i = 0; i < n; i++)
        w[i] *= sc;
    *beta *= sqrt(aa / bb);
    return isfinite(*beta) && isfinite(w[0]) ? 0 : -1;
}

/* ---- The interior-point method on the reduced problem ---------------------- */

typedef struct ipm {
    int64_t K, D, nc, r, m;      /* cones, D, cone size D+1, rank, equalities r*D */
    const double *Q;             /* K x r row-major: q_k = row k */
    const double *b;             /* r x D, unit Frobenius norm */
    double *x, *s, *y;           /* K x nc, K x nc, r x D */
    double *w, *beta, *lam;      /* scaling: K x nc, K, K x nc */
    double *rp, *rd;             /* r x D, K x nc */
    double *M, *P, *Z, *Qa;      /* m x m, r x r, min(K, ZBLOCK) x m, K x r */
    double *rhs;                 /* m */
    double *rc;                  /* K x nc: complementarity right-hand side */
    double *rhs0;                /* m: the normal equations' right-hand side */
    double *bx, *by;             /* best iterate so far: K x nc, r x D */
    double *h, *g, *tmp, *tmp2;  /* K x nc each */
    double *dx, *ds, *dxt, *dst; /* K x nc each */
    double *dy;                  /* r x D */
    double *dxta, *dsta;         /* predictor's scaled directions */
} ipm;

static void ipm_free(ipm *p)
{
    double *bufs[] = {p->x,  p->s,    p->y,    p->w,  p->beta, p->lam, p->rp,
                      p->rd, p->M,    p->P,    p->Z,  p->Qa,   p->rhs, p->h,
                      p->g,  p->tmp,  p->tmp2, p->dx, p->ds,   p->dxt, p->dst,
                      p->dy, p->dxta, p->dsta, p->rc, p->rhs0, p->bx,  p->by};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
}

static int ipm_alloc(ipm *p)
{
    size_t kc = (size_t)(p->K * p->nc), rd = (size_t)(p->r * p->D), m = (size_t)p->m;
    size_t K = (size_t)p->K, r = (size_t)p->r;
#define ALLOC(f, cnt)                                                                              \
    do {                                                                                           \
        p->f = malloc((cnt) * sizeof(double));                                                     \
        if (!p->f)                                                                                 \
            return vv_fail(VV_ENOMEM, "socp: out of memory (%zu doubles)", (size_t)(cnt));         \
    } while (0)
    ALLOC(x, kc);
    ALLOC(s, kc);
    ALLOC(y, rd);
    ALLOC(w, kc);
    ALLOC(beta, K);
    ALLOC(lam, kc);
    ALLOC(rp, rd);
    ALLOC(rd, kc);
    ALLOC(M, m * m);
    ALLOC(P, r * r);
    ALLOC(Z, (K < ZBLOCK ? K : ZBLOCK) * m);
    ALLOC(Qa, K * r);
    ALLOC(rhs, m);
    ALLOC(h, kc);
    ALLOC(g, kc);
    ALLOC(tmp, kc);
    ALLOC(tmp2, kc);
    ALLOC(dx, kc);
    ALLOC(ds, kc);
    ALLOC(dxt, kc);
    ALLOC(dst, kc);
    ALLOC(dy, rd);
    ALLOC(dxta, kc);
    ALLOC(dsta, kc);
    ALLOC(rc, kc);
    ALLOC(rhs0, m);
    ALLOC(bx, kc);
    ALLOC(by, rd);
#undef ALLOC
    return 0;
}

/* out (r x D) = A u = Q^T U, U the v-parts of u (K x nc). */
static void apply_a(const ipm *p, const double *u, double *out)
{
    vv_dgemm(1, 0, p->r, p->D, p->K, 1.0, p->Q, p->r, u + 1, p->nc, 0.0, out, p->D);
}

/* out (K x nc) = A^T y: t-parts zero, v-parts Q Y. */
static void apply_at(const ipm *p, const double *y, double *out)
{
    vv_dgemm(0, 0, p->K, p->D, p->r, 1.0, p->Q, p->r, y, p->D, 0.0, out + 1, p->nc);
    for (int64_t k = 0; k < p->K; k++)
        out[k * p->nc] = 0;
}

/* M = A G^2 A^T + ridge I (upper triangle, row-major): the Kronecker part
 * (Q^T diag(a) Q) (x) I_D, then the rank-one parts block by block. */
static void assemble_schur(ipm *p, double ridge)
{
    int64_t K = p->K, D = p->D, nc = p->nc, r = p->r, m = p->m;
    const double s8 = sqrt(8.0);
    for (int64_t k = 0; k < K; k++) {
        const double *qk = p->Q + k * r;
        for (int64_t i = 0; i < r; i++)
            p->Qa[k * r + i] = p->beta[k] * qk[i]; /* sqrt(a_k) = beta_k */
    }
    memset(p->P, 0, (size_t)(r * r) * sizeof *p->P);
    vv_dsyrk_t(r, K, 1.0, p->Qa, r, p->P);
    memset(p->M, 0, (size_t)(m * m) * sizeof *p->M);
    for (int64_t i = 0; i < r; i++)
        for (int64_t i2 = i; i2 < r; i2++) {
            double v = p->P[i * r + i2];
            for (int64_t j = 0; j < D; j++)
                p->M[(i * D + j) * m + i2 * D + j] = v;
        }
    for (int64_t k0 = 0; k0 < K; k0 += ZBLOCK) {
        int64_t k1 = k0 + ZBLOCK < K ? k0 + ZBLOCK : K;
        for (int64_t k = k0; k < k1; k++) {
            const double *wk = p->w + k * nc, *qk = p->Q + k * r;
            double f = s8 * p->beta[k] * wk[0];
            double *zr = p->Z + (k - k0) * m;
            for (int64_t i = 0; i < r; i++) {
                double qi = qk[i] * f;
                for (int64_t j = 0; j < D; j++)
                    zr[i * D + j] = qi * wk[1 + j];
            }
        }
        vv_dsyrk_t(m, k1 - k0, 1.0, p->Z, m, p->M);
    }
    if (ridge > 0) {
        double dmax = 0;
        for (int64_t i = 0; i < m; i++)
            dmax = fmax(dmax, p->M[i * m + i]);
        for (int64_t i = 0; i < m; i++)
            p->M[i * m + i] += ridge * dmax;
    }
}

/* Forms M and factors it (Cholesky, in place).  When the factorisation
 * fails (only at the limit of double precision), a ridge of 1e-14, 1e-12,
 * 1e-10 times the largest diagonal entry is tried; returns -1 when none
 * helps. */
static int form_schur(ipm *p)
{
    assemble_schur(p, 0);
    if (vv_dpotrf((int)p->m, p->M) == 0)
        return 0;
    for (double ridge = 1e-14; ridge <= 1e-10; ridge *= 100) {
        assemble_schur(p, ridge);
        if (vv_dpotrf((int)p->m, p->M) == 0)
            return 0;
    }
    return -1;
}

/* Solves the Newton system for the complementarity right-hand side rc
 * (K x nc, read only; it must not alias the scratch buffers h, g, tmp,
 * tmp2) with the residuals in p->rp, p->rd.  Leaves the
 * scaled directions in dxt, dst and the unscaled ones in dx, dy, ds. */
static void newton_solve(ipm *p, double *rc, double *dxt, double *dst)
{
    int64_t K = p->K, nc = p->nc, m = p->m;
    /* h = G r_d, g = rc - h, tmp = G g. */
    for (int64_t k = 0; k < K; k++) {
        const double *wk = p->w + k * nc;
        double bk = p->beta[k];
        double *hk = p->h + k * nc, *gk = p->g + k * nc;
        g_apply(nc, wk, bk, p->rd + k * nc, hk);
        for (int64_t i = 0; i < nc; i++)
            gk[i] = rc[k * nc + i] - hk[i];
        g_apply(nc, wk, bk, gk, p->tmp + k * nc);
    }
    /* rhs = r_p - A G g. */
    apply_a(p, p->tmp, p->rhs);
    for (int64_t i = 0; i < m; i++)
        p->rhs[i] = p->rp[i] - p->rhs[i];
    memcpy(p->rhs0, p->rhs, (size_t)m * sizeof *p->rhs0);
    vv_dpotrs((int)m, 1, p->M, p->rhs);
    memcpy(p->dy, p->rhs, (size_t)m * sizeof *p->dy);
    /* Iterative refinement against the operator A G^2 A^T itself (not the
     * rounded, factored M): near the optimum M is ill-conditioned and one
     * or two corrections keep A dx = r_p to rounding accuracy. */
    double r0 = sqrt(dot(m, p->rhs0, p->rhs0));
    for (int pass = 0; pass < 2 && r0 > 0; pass++) {
        apply_at(p, p->dy, p->tmp);
        for (int64_t k = 0; k < K; k++) {
            g_apply(nc, p->w + k * nc, p->beta[k], p->tmp + k * nc, p->tmp2 + k * nc);
            g_apply(nc, p->w + k * nc, p->beta[k], p->tmp2 + k * nc, p->tmp + k * nc);
        }
        apply_a(p, p->tmp, p->rhs);
        for (int64_t i = 0; i < m; i++)
            p->rhs[i] = p->rhs0[i] - p->rhs[i];
        if (sqrt(dot(m, p->rhs, p->rhs)) <= 1e-15 * r0)
            break;
        vv_dpotrs((int)m, 1, p->M, p->rhs);
        for (int64_t i = 0; i < m; i++)
            p->dy[i] += p->rhs[i];
    }
    /* tmp = A^T dy; tmp2 = G tmp; dxt = g + tmp2; dst = h - tmp2. */
    apply_at(p, p->dy, p->tmp);
    for (int64_t k = 0; k < K; k++) {
        const double *wk = p->w + k * nc;
        double bk = p->beta[k];
        double *t2 = p->tmp2 + k * nc;
        g_apply(nc, wk, bk, p->tmp + k * nc, t2);
        for (int64_t i = 0; i < nc; i++) {
            dxt[k * nc + i] = p->g[k * nc + i] + t2[i];
            dst[k * nc + i] = p->h[k * nc + i] - t2[i];
        }
        g_apply(nc, wk, bk, dxt + k * nc, p->dx + k * nc);
        ginv_apply(nc, wk, bk, dst + k * nc, p->ds + k * nc);
    }
}

/* Largest step along (dxt, dst) from lambda, over all cones. */
static double max_step(const ipm *p, const double *dxt, const double *dst)
{
    double a = HUGE_VAL;
    for (int64_t k = 0; k < p->K; k++) {
        const double *l = p->lam + k * p->nc;
        a = fmin(a, cone_step(p->nc, l, dxt + k * p->nc));
        a = fmin(a, cone_step(p->nc, l, dst + k * p->nc));
    }
    return a;
}

typedef struct ipm_state {
    double pcost, dcost, gap, relgap, pres, dres;
} ipm_state;

static void residuals(ipm *p, ipm_state *st)
{
    int64_t K = p->K, nc = p->nc, rdim = p->r * p->D;
    apply_a(p, p->x, p->rp);
    double pr = 0;
    for (int64_t i = 0; i < rdim; i++) {
        p->rp[i] = p->b[i] - p->rp[i];
        pr += p->rp[i] * p->rp[i];
    }
    apply_at(p, p->y, p->rd);
    double dr = 0, pc = 0, gap = 0;
    for (int64_t k = 0; k < K; k++) {
        double *rk = p->rd + k * nc;
        const double *sk = p->s + k * nc;
        rk[0] = 1 - sk[0];
        for (int64_t i = 1; i < nc; i++)
            rk[i] = -rk[i] - sk[i];
        dr = fmax(dr, dot(nc, rk, rk));
        pc += p->x[k * nc];
        gap += dot(nc, p->lam + k * nc, p->lam + k * nc);
    }
    st->pcost = pc;
    st->dcost = dot(rdim, p->b, p->y);
    st->gap = gap;
    st->pres = sqrt(pr);
    st->dres = sqrt(dr);
    st->relgap = fmax(gap, fabs(st->pcost - st->dcost)) / fmax(1.0, st->dcost);
}

/* Runs the method on the reduced problem held in p (Q, b set); leaves the
 * last (or best) iterate in p->x, p->y.  Returns a vv_socp_status or a
 * negative vv_err. */
static int ipm_run(ipm *p, const vv_socp_opts *o, int *iters)
{
    int64_t K = p->K, D = p->D, nc = p->nc, r = p->r;
    int rc = ipm_alloc(p);
    if (rc < 0)
        return rc;
    /* Start: the minimum-norm solution W0 = Q b (||W0||_F = 1), shifted into
     * the cone, t_k = 1 + max_j ||w0_j||; y = 0, s = c. */
    vv_dgemm(0, 0, K, D, r, 1.0, p->Q, r, p->b, D, 0.0, p->x + 1, nc);
    double vmax = 0;
    for (int64_t k = 0; k < K; k++)
        vmax = fmax(vmax, sqrt(dot(D, p->x + k * nc + 1, p->x + k * nc + 1)));
    for (int64_t k = 0; k < K; k++) {
        p->x[k * nc] = 1 + vmax;
        memset(p->s + k * nc, 0, (size_t)nc * sizeof(double));
        p->s[k * nc] = 1;
    }
    memset(p->y, 0, (size_t)(r * D) * sizeof(double));
    for (int64_t k = 0; k < K; k++)
        if (nt_scaling(nc, p->x + k * nc, p->s + k * nc, p->w + k * nc, p->beta + k,
                       p->lam + k * nc) < 0)
            return vv_fail(VV_EINTERNAL, "socp: starting point outside the cone");

    int status = VV_SOCP_MAX_ITER, it = 0, small_steps = 0, best_it = -1;
    double best = HUGE_VAL;
    size_t xbytes = (size_t)(K * nc) * sizeof(double), ybytes = (size_t)(r * D) * sizeof(double);
    ipm_state st;
    for (;;) {
        residuals(p, &st);
        double score = fmax(st.relgap, fmax(st.pres, st.dres));
        if (!isfinite(score)) {
            status = VV_SOCP_NUMERICAL;
            break;
        }
        VV_DEBUG("socp", NULL,
                 "it %2d pcost %.15e dcost %.15e gap %.2e rel_gap %.2e pres %.2e dres %.2e", it,
                 st.pcost, st.dcost, st.gap, st.relgap, st.pres, st.dres);
        if (score < best) {
            best = score;
            best_it = it;
            memcpy(p->bx, p->x, xbytes);
            memcpy(p->by, p->y, ybytes);
        }
        if (score <= o->tol) {
            status = VV_SOCP_OPTIMAL;
            break;
        }
        /* Below about 1e-12 rounding takes over: stop when five iterations
         * in a row have not improved on the best iterate. */
        if (it - best_it >= 5) {
            status = VV_SOCP_NUMERICAL;
            break;
        }
        if (it >= o->max_iter) {
            status = VV_SOCP_MAX_ITER;
            break;
        }
        if (o->stop && atomic_load_explicit(o->stop, memory_order_relaxed)) {
            rc = vv_fail(VV_ESTATE, "socp: stopped after %d iterations", it);
            break;
        }
        if (form_schur(p) < 0) {
            status = VV_SOCP_NUMERICAL;
            break;
        }
        double mu = st.gap / (double)K;
        /* Predictor (affine scaling): rc = lambda \ (-lambda o lambda) = -lambda. */
        for (int64_t i = 0; i < K * nc; i++)
            p->rc[i] = -p->lam[i];
        newton_solve(p, p->rc, p->dxta, p->dsta);
        double aa = fmin(1.0, max_step(p, p->dxta, p->dsta));
        double mua = 0;
        for (int64_t i = 0; i < K * nc; i++)
            mua += (p->lam[i] + aa * p->dxta[i]) * (p->lam[i] + aa * p->dsta[i]);
        mua /= (double)K;
        double sigma = fmin(1.0, fmax(0.0, mua / mu));
        sigma = sigma * sigma * sigma;
        /* Corrector: rc = lambda \ (sigma mu e - lambda o lambda - dxta o dsta). */
        double *cor = p->tmp;
        for (int64_t k = 0; k < K; k++) {
            double *ck = cor + k * nc, *lk = p->lam + k * nc;
            jprod(nc, p->dxta + k * nc, p->dsta + k * nc, ck);
            /* lambda o lambda = (||l||^2, 2 l0 l1). */
            double l2 = dot(nc, lk, lk);
            ck[0] = sigma * mu - l2 - ck[0];
            for (int64_t i = 1; i < nc; i++)
                ck[i] = -2 * lk[0] * lk[i] - ck[i];
            jdiv(nc, lk, ck, p->rc + k * nc);
        }
        newton_solve(p, p->rc, p->dxt, p->dst);
        double amax = max_step(p, p->dxt, p->dst);
        double alpha = fmin(1.0, 0.99 * amax);
        if (!(alpha > 0) || !isfinite(alpha)) {
            status = VV_SOCP_NUMERICAL;
            break;
        }
        small_steps = alpha < 1e-8 ? small_steps + 1 : 0;
        if (small_steps >= 3) {
            status = VV_SOCP_NUMERICAL;
            break;
        }
        for (int64_t i = 0; i < K * nc; i++) {
            p->x[i] += alpha * p->dx[i];
            p->s[i] += alpha * p->ds[i];
            p->dxt[i] = p->lam[i] + alpha * p->dxt[i];
            p->dst[i] = p->lam[i] + alpha * p->dst[i];
        }
        for (int64_t i = 0; i < r * D; i++)
            p->y[i] += alpha * p->dy[i];
        it++;
        int bad = 0;
        for (int64_t k = 0; k < K && !bad; k++)
            bad = nt_update(nc, p->w + k * nc, p->beta + k, p->lam + k * nc, p->dxt + k * nc,
                            p->dst + k * nc) < 0;
        if (bad) {
            status = VV_SOCP_NUMERICAL;
            break;
        }
    }
    *iters = it;
    if (rc < 0)
        return rc;
    if (status != VV_SOCP_OPTIMAL && best_it >= 0 && best_it < it) {
        /* Return the best iterate seen rather than the last. */
        memcpy(p->x, p->bx, xbytes);
        memcpy(p->y, p->by, ybytes);
    }
    return status;
}

int vv_socp_ipm(int64_t k, int64_t d, int64_t r, const double *Q, const double *B,
                const vv_socp_opts *o, double *W, double *Yr, int *iterations)
{
    ipm p = {0};
    p.K = k;
    p.D = d;
    p.nc = d + 1;
    p.r = r;
    p.m = r * d;
    p.Q = Q;
    p.b = B;
    *iterations = 0;
    int st = ipm_run(&p, o, iterations);
    if (st >= 0) {
        for (int64_t c = 0; c < k; c++)
            memcpy(W + c * d, p.x + c * p.nc + 1, (size_t)d * sizeof *W);
        memcpy(Yr, p.y, (size_t)(r * d) * sizeof *Yr);
    }
    ipm_free(&p);
    return st;
}
