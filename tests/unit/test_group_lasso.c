/* test_group_lasso.c - the group lasso (groups of rows of W, penalty
 * lambda sum_g ||W_g||_F; doc/group-lasso.md): agreement of every solver
 * with cvxopt on committed fixtures, the certificate recomputed from the
 * rows, Gap Safe screening never removing a group nonzero at the optimum,
 * groups of one row being exactly the neuron-wise problem, the per-group
 * constants, group support and refit, and the errors of bad groups. */
#include "tap.h"
#include "util.h"
#include "vv/err.h"

#include <cjson/cJSON.h>
#include <string.h>

/* ---- Helpers ---------------------------------------------------------------- */

static int stats_of(int64_t n, int64_t k, int64_t d, const double *phi, const double *psi,
                    const double *bias, vv_stats *st)
{
    vv_rows *a, *b;
    vv_rows_from_memory("phi", n, k, phi, &a);
    vv_rows_from_memory("psi", n, d, psi, &b);
    vv_stats_opts o = {.bias = bias};
    int rc = vv_stats_compute(a, b, &o, st);
    vv_rows_free(a);
    vv_rows_free(b);
    return rc;
}

/* A copy of st with the given groups (the cached statistics stay const). */
static vv_stats with_groups(const vv_stats *st, const int64_t *off, int64_t ng)
{
    vv_stats g = *st;
    g.group_off = off;
    g.ngroups = ng;
    return g;
}

/* Solver variants: bcd, fista, fista resident on the CPU backend, fista on
 * the simulated device. */
enum { V_BCD, V_FISTA, V_RESIDENT, V_SIM, NVAR };
static const char *var_name[NVAR] = {"bcd", "fista", "fista resident", "fista sim device"};

static int solve_var_opts(const vv_stats *st, int var, double lambda, double tol, int64_t max_iter,
                          double *W, vv_lasso_result *res)
{
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.solver = var == V_BCD ? VV_SOLVER_BCD : VV_SOLVER_FISTA;
    o.resident = var == V_RESIDENT;
    o.be = var == V_SIM ? sim_dev() : NULL;
    o.lambda = lambda;
    o.tol = tol;
    o.max_iter = max_iter;
    o.max_seconds = 60;
    memset(W, 0, (size_t)(st->k * st->d) * sizeof *W);
    return vv_lasso_solve(st, &o, W, res);
}

static int solve_var(const vv_stats *st, int var, double lambda, double tol, double *W,
                     vv_lasso_result *res)
{
    return solve_var_opts(st, var, lambda, tol, 2000000, W, res);
}

static double max_abs_diff(const double *a, const double *b, int64_t n, double *scale)
{
    double m = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        m = fmax(m, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    if (scale)
        *scale = s;
    return m;
}

static double group_fro(const double *W, int64_t d, const int64_t *off, int64_t g)
{
    double q = 0;
    for (int64_t i = off[g] * d; i < off[g + 1] * d; i++)
        q += W[i] * W[i];
    return sqrt(q);
}

/* ---- 1. cvxopt fixtures --------------------------------------------------- */

static cJSON *load_manifest(void)
{
    FILE *f = fopen(fixture("group/manifest.json"), "rb");
    if (!f)
        return NULL;
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return cJSON_Parse(buf);
}

static double *load_group_npy(const char *file, int64_t *rows, int64_t *cols)
{
    char rel_path[256];
    snprintf(rel_path, sizeof rel_path, "group/%s", file);
    return load_npy(fixture(rel_path), rows, cols);
}

static void fixture_cases(void)
{
    cJSON *man = load_manifest();
    if (!CHECK(man, "fixture manifest group/manifest.json loads"))
        return;
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(man, "cases"))
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        int64_t n, k, n2, d;
        double *phi = load_group_npy(cJSON_GetObjectItem(c, "phi")->valuestring, &n, &k);
        double *psi = load_group_npy(cJSON_GetObjectItem(c, "psi")->valuestring, &n2, &d);
        cJSON *jo = cJSON_GetObjectItem(c, "group_off");
        int64_t ng = cJSON_GetArraySize(jo) - 1, off[64];
        for (int64_t g = 0; g <= ng && g < 64; g++)
            off[g] = (int64_t)cJSON_GetArrayItem(jo, (int)g)->valuedouble;
        vv_stats st0;
        int ok = phi && psi && n == n2 && ng < 64 && stats_of(n, k, d, phi, psi, NULL, &st0) == 0;
        CHECKF(ok, "%s: data and statistics", name);
        if (!ok) {
            free(phi);
            free(psi);
            continue;
        }
        vv_stats st = with_groups(&st0, off, ng);
        int uniform = vv_groups_size(&st) > 0;
        CHECKF(vv_groups_check(&st) == 0 && vv_groups_count(&st) == ng, "%s: %lld groups check out",
               name, (long long)ng);
        double lmax = cJSON_GetObjectItem(c, "lambda_max")->valuedouble;
        CHECKF(fabs(vv_lambda_max(&st) - lmax) <= 1e-12 * lmax,
               "%s: lambda_max = max_g ||Bt_g||_F / N = %.12g (numpy %.12g)", name,
               vv_lambda_max(&st), lmax);
        double *W = malloc((size_t)(k * d) * sizeof *W);
        cJSON *sol;
        cJSON_ArrayForEach(sol, cJSON_GetObjectItem(c, "solutions"))
        {
            double lambda = cJSON_GetObjectItem(sol, "lambda")->valuedouble;
            double ratio = cJSON_GetObjectItem(sol, "ratio")->valuedouble;
            double obj = cJSON_GetObjectItem(sol, "objective")->valuedouble;
            int64_t act = (int64_t)cJSON_GetObjectItem(sol, "active_groups")->valuedouble;
            int64_t wr, wc;
            double *Wref = load_group_npy(cJSON_GetObjectItem(sol, "w")->valuestring, &wr, &wc);
            int wok = Wref && wr == k && wc == d;
            CHECKF(wok, "%s %g: reference W loads", name, ratio);
            if (!wok) {
                free(Wref);
                continue;
            }
            for (int var = 0; var < NVAR; var++) {
                vv_lasso_result res;
                int64_t up0 = sim_uploads();
                /* A gap bounds the objective, and W only through its square
                 * root over the curvature: a gap of 1e-12 leaves W uncertain
                 * near 1e-6, and even the gap's rounding floor (the computed
                 * gap reaching 0, about eps of the objective) near sqrt(eps),
                 * 1.5e-8 of max|W|.  So each solve runs to that floor
                 * (tol 1e-30: it stops when the computed gap is <= 0, or after
                 * 3000 iterations), must pass rel_gap 1e-12 on the way, and W
                 * is compared at 3e-8: twice sqrt(eps).  (Where the last
                 * steps overshoot the floor, as in most cases, W agrees to
                 * 1e-13.) */
                int rc = solve_var_opts(&st, var, lambda, 1e-30, 3000, W, &res);
                int64_t ups = sim_uploads() - up0;
                double scale, dw = max_abs_diff(W, Wref, k * d, &scale);
                CHECKF(rc == 0 && res.e.rel_gap <= 1e-12 &&
                           (res.stop_reason == VV_STOP_CONVERGED ||
                            res.stop_reason == VV_STOP_MAX_ITER) &&
                           dw <= 3e-8 * scale && fabs(res.e.objective - obj) <= 1e-10 * obj &&
                           res.e.active == act,
                       "%s lambda %.1f lmax, %s: W to cvxopt's %.2g (max|W| %.3g), objective "
                       "%.15g vs %.15g, %lld active groups (%lld), rel_gap %.2g after %lld "
                       "iterations (%s)",
                       name, ratio, var_name[var], dw, scale, res.e.objective, obj,
                       (long long)res.e.active, (long long)act, res.e.rel_gap,
                       (long long)res.iterations, vv_stop_reason_name(res.stop_reason));
                if (var == V_SIM)
                    /* Groups of several sizes run on the host (no uploads). */
                    CHECKF((ups > 0) == uniform,
                           "%s lambda %.1f lmax: sim device %s (%lld uploads)", name, ratio,
                           uniform ? "resident" : "falls back to the host", (long long)ups);
            }
            free(Wref);
        }
        free(W);
        free(phi);
        free(psi);
        vv_stats_free(&st0);
    }
    cJSON_Delete(man);
}

/* ---- 2. The certificate, recomputed from the rows ----------------------- */

typedef struct direct {
    double primal, dual, gap;
} direct;

/* P(W), D(theta) and the gap from Phi and Psi: R = Psi - b - Phi W,
 * theta = s R / N with s = min(1, lambda / max_g ||Phi_g^T R / N||_F),
 * D(theta) = ||Y||^2 / 2N - N/2 ||theta - Y / N||^2, Y = Psi - b. */
static direct direct_gap(const tprob *p, const int64_t *off, int64_t ng, const double *W,
                         double lambda)
{
    int64_t n = p->n, k = p->k, d = p->d;
    double *R = malloc((size_t)(n * d) * sizeof *R), *Y = malloc((size_t)(n * d) * sizeof *Y);
    double r2 = 0, gn = 0, mmax = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double y = p->psi[i * d + j] - (p->bias ? p->bias[j] : 0), a = y;
            for (int64_t c = 0; c < k; c++)
                a -= p->phi[i * k + c] * W[c * d + j];
            Y[i * d + j] = y;
            R[i * d + j] = a;
            r2 += a * a;
        }
    for (int64_t g = 0; g < ng; g++) {
        gn += group_fro(W, d, off, g);
        double q = 0;
        for (int64_t c = off[g]; c < off[g + 1]; c++)
            for (int64_t j = 0; j < d; j++) {
                double a = 0;
                for (int64_t i = 0; i < n; i++)
                    a += p->phi[i * k + c] * R[i * d + j];
                q += (a / (double)n) * (a / (double)n);
            }
        mmax = fmax(mmax, sqrt(q));
    }
    double s = mmax > lambda ? lambda / mmax : 1.0, yy = 0, dist = 0;
    for (int64_t i = 0; i < n * d; i++) {
        double theta = s * R[i] / (double)n, t = theta - Y[i] / (double)n;
        yy += Y[i] * Y[i];
        dist += t * t;
    }
    direct out;
    out.primal = r2 / (2.0 * (double)n) + lambda * gn;
    out.dual = yy / (2.0 * (double)n) - (double)n / 2.0 * dist;
    out.gap = out.primal - out.dual;
    free(R);
    free(Y);
    return out;
}

static void certificate(void)
{
    tprob p;
    tprob_make(&p, 300, 30, 4, 11, 1);
    vv_stats st0;
    tprob_stats(&p, 0, &st0);
    int64_t k = st0.k, d = st0.d;
    int64_t mixed[] = {0, 2, 3, 8, 12, 13, 20, 24, 30}, *u3, ng3;
    vv_groups_uniform(k, 3, &u3, &ng3);
    struct {
        const int64_t *off;
        int64_t ng;
        const char *what;
    } gs[] = {{u3, ng3, "groups of 3"}, {mixed, 8, "groups of sizes 2..7"}};
    double *W = malloc((size_t)(k * d) * sizeof *W), *GW = malloc((size_t)(k * d) * sizeof *GW);
    vv_rng r;
    vv_rng_seed(&r, 5);
    for (int t = 0; t < 2; t++) {
        vv_stats st = with_groups(&st0, gs[t].off, gs[t].ng);
        double lambda = 0.2 * vv_lambda_max(&st);
        vv_lasso_result res;
        double *Ws = solve_tight(&st, VV_SOLVER_BCD, lambda, 1e-12, 0, &res);
        for (int v = 0; v < 4; v++) {
            const char *at[] = {"zero", "random", "solution", "perturbed solution"};
            for (int64_t i = 0; i < k * d; i++)
                W[i] = v == 0   ? 0
                       : v == 1 ? 0.3 * vv_rng_normal(&r)
                       : v == 2 ? Ws[i]
                                : Ws[i] + 1e-3 * vv_rng_normal(&r);
            vv_gram_apply(&st, vv_backend_cpu(), W, GW);
            vv_eval e;
            vv_gram_eval(&st, W, GW, lambda, NULL, &e);
            direct x = direct_gap(&p, gs[t].off, gs[t].ng, W, lambda);
            double sc = fmax(fabs(x.primal), 1e-300);
            CHECKF(fabs(e.gap - x.gap) <= 1e-9 * sc && fabs(e.objective - x.primal) <= 1e-9 * sc,
                   "%s, W %s: gap %.10g vs %.10g from the rows, objective %.10g vs %.10g",
                   gs[t].what, at[v], e.gap, x.gap, e.objective, x.primal);
        }
        free(Ws);
    }
    free(W);
    free(GW);
    free(u3);
    vv_stats_free(&st0);
    tprob_free(&p);
}

/* ---- 3. Gap Safe screening is safe -------------------------------------- */

static void screening(void)
{
    tprob p;
    tprob_make(&p, 400, 48, 3, 21, 1);
    vv_stats st0;
    tprob_stats(&p, 0, &st0);
    int64_t k = st0.k, d = st0.d;
    int64_t mixed[] = {0, 1, 5, 9, 10, 16, 18, 24, 30, 31, 36, 40, 44, 48}, *u4, ng4;
    vv_groups_uniform(k, 4, &u4, &ng4);
    struct {
        const int64_t *off;
        int64_t ng;
        const char *what;
    } gs[] = {{u4, ng4, "groups of 4"}, {mixed, 13, "groups of sizes 1..6"}};
    double *GW = malloc((size_t)(k * d) * sizeof *GW), *mn = malloc((size_t)k * sizeof *mn);
    double *Lg = malloc((size_t)k * sizeof *Lg);
    double ratios[] = {0.5, 0.2, 0.05};
    for (int t = 0; t < 2; t++) {
        vv_stats st = with_groups(&st0, gs[t].off, gs[t].ng);
        vv_group_lmax(&st, Lg);
        for (unsigned q = 0; q < sizeof ratios / sizeof *ratios; q++) {
            double lambda = ratios[q] * vv_lambda_max(&st);
            vv_lasso_result ref;
            double *Ws = solve_tight(&st, VV_SOLVER_BCD, lambda, 1e-12, 1, &ref);
            int64_t wrong = 0, screened = 0, zeros = 0, agree = 1;
            /* W = 0, early iterates of both solvers, the optimum. */
            for (int v = 0; v < 10; v++) {
                vv_lasso_result rr;
                double *W;
                if (v == 0)
                    W = calloc((size_t)(k * d), sizeof *W);
                else if (v < 9)
                    W = solve_tight(&st, v % 2 ? VV_SOLVER_FISTA : VV_SOLVER_BCD, lambda,
                                    pow(10.0, -(v + 1) / 2 - 1), 1, &rr);
                else {
                    W = malloc((size_t)(k * d) * sizeof *W);
                    memcpy(W, Ws, (size_t)(k * d) * sizeof *W);
                }
                vv_gram_apply(&st, vv_backend_cpu(), W, GW);
                vv_eval e;
                vv_gram_eval(&st, W, GW, lambda, mn, &e);
                for (int64_t g = 0; g < gs[t].ng; g++) {
                    int s1 = vv_gap_safe_screened(&st, &e, lambda, mn[g], g);
                    int s2 = vv_gap_safe_screened_lg(&st, &e, lambda, mn[g], Lg[g]);
                    agree &= s1 == s2;
                    int nonzero = group_fro(Ws, d, gs[t].off, g) > 0;
                    zeros += !nonzero;
                    screened += s1;
                    wrong += s1 && nonzero;
                }
                free(W);
            }
            CHECKF(ref.e.rel_gap <= 1e-12 && wrong == 0 && screened > 0 && agree,
                   "%s, lambda %.2f lmax: %lld screenings of %lld zero groups, none of a "
                   "nonzero group (%lld wrong)",
                   gs[t].what, ratios[q], (long long)screened, (long long)zeros, (long long)wrong);
            free(Ws);
        }
    }
    free(GW);
    free(mn);
    free(Lg);
    free(u4);
    vv_stats_free(&st0);
    tprob_free(&p);
}

/* ---- 4. Groups of one row are the neuron-wise problem ------------------- */

static void singletons(void)
{
    tprob p;
    tprob_make(&p, 500, 80, 6, 31, 1);
    vv_stats st;
    tprob_stats(&p, 0, &st);
    int64_t k = st.k, d = st.d, *u1, ng1, *ex = malloc((size_t)(k + 1) * sizeof *ex);
    for (int64_t i = 0; i <= k; i++)
        ex[i] = i;
    vv_groups_uniform(k, 1, &u1, &ng1);
    vv_stats s_ex = with_groups(&st, ex, k), s_u1 = with_groups(&st, u1, ng1);
    double lambda = 0.05 * vv_lambda_max(&st);
    CHECK(vv_lambda_max(&s_ex) == vv_lambda_max(&st) && vv_lambda_max(&s_u1) == vv_lambda_max(&st),
          "one-row groups: lambda_max is the neuron-wise one exactly");
    for (int var = 0; var < V_SIM; var++) {
        double *W0 = malloc((size_t)(k * d) * sizeof *W0),
               *W1 = malloc((size_t)(k * d) * sizeof *W1),
               *W2 = malloc((size_t)(k * d) * sizeof *W2);
        vv_lasso_result r0, r1, r2;
        solve_var(&st, var, lambda, 1e-10, W0, &r0);
        solve_var(&s_ex, var, lambda, 1e-10, W1, &r1);
        solve_var(&s_u1, var, lambda, 1e-10, W2, &r2);
        double d1 = max_abs_diff(W1, W0, k * d, NULL), d2 = max_abs_diff(W2, W0, k * d, NULL);
        CHECKF(d1 <= 1e-12 && d2 <= 1e-12 && r1.e.objective == r0.e.objective &&
                   r2.e.objective == r0.e.objective && r1.iterations == r0.iterations &&
                   r1.e.active == r0.e.active,
               "%s: NULL offsets, explicit one-row offsets and vv_groups_uniform(k, 1) agree "
               "(W differs by %.2g, %.2g; objective %.15g; %lld iterations each)",
               var_name[var], d1, d2, r0.e.objective, (long long)r0.iterations);
        free(W0);
        free(W1);
        free(W2);
    }
    free(ex);
    free(u1);
    vv_stats_free(&st);
    tprob_free(&p);
}

/* ---- 5. Per-group constants --------------------------------------------- */

/* lambda_max of the symmetric m x m block A by power iteration: the Rayleigh
 * quotient, never above the true value (beyond rounding). */
static double power_brute(const double *A, int64_t m)
{
    double x[64], y[64], ray = 0;
    for (int64_t i = 0; i < m; i++)
        x[i] = 1.0 + 0.01 * (double)i;
    for (int it = 0; it < 100000; it++) {
        double nx = 0;
        for (int64_t i = 0; i < m; i++)
            nx += x[i] * x[i];
        nx = sqrt(nx);
        double r = 0;
        for (int64_t i = 0; i < m; i++) {
            y[i] = 0;
            for (int64_t j = 0; j < m; j++)
                y[i] += A[i * m + j] * x[j] / nx;
            r += x[i] / nx * y[i];
        }
        memcpy(x, y, (size_t)m * sizeof *x);
        if (it > 50 && fabs(r - ray) <= 1e-16 * r)
            break;
        ray = r;
    }
    return ray;
}

static void constants(void)
{
    tprob p;
    tprob_make(&p, 200, 40, 2, 41, 0);
    vv_stats st0;
    tprob_stats(&p, 0, &st0);
    int64_t k = st0.k, off[] = {0, 1, 4, 9, 10, 18, 19, 21, 33, 40};
    vv_stats st = with_groups(&st0, off, 9);
    double L[40], blk[64 * 64];
    int rc = vv_group_lmax(&st, L);
    int ok = rc == 0, exact1 = 1;
    double worst = 0;
    for (int64_t g = 0; g < 9; g++) {
        int64_t r0 = off[g], m = off[g + 1] - r0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < m; j++)
                blk[i * m + j] = st.G[(r0 + i) * k + r0 + j];
        double ref = power_brute(blk, m);
        if (m == 1)
            exact1 &= L[g] == st.G[r0 * k + r0];
        ok &= L[g] >= ref;
        worst = fmax(worst, (L[g] - ref) / ref);
    }
    CHECKF(ok && worst <= 1e-9 && exact1,
           "L_g = lambda_max(G_gg) of 9 groups of 1..12 rows: never under the power iteration's, "
           "within %.2g relative; G_kk exactly for one row",
           worst);
    vv_stats_free(&st0);
    tprob_free(&p);
}

/* ---- 6. Group support and refit ------------------------------------------ */

/* Solves A X = B (A m x m, B m x d, row-major) by Gaussian elimination with
 * partial pivoting, in place; X in B. */
static void gauss(int64_t m, int64_t d, double *A, double *B)
{
    for (int64_t c = 0; c < m; c++) {
        int64_t piv = c;
        for (int64_t r = c + 1; r < m; r++)
            if (fabs(A[r * m + c]) > fabs(A[piv * m + c]))
                piv = r;
        for (int64_t j = 0; j < m; j++) {
            double t = A[c * m + j];
            A[c * m + j] = A[piv * m + j];
            A[piv * m + j] = t;
        }
        for (int64_t j = 0; j < d; j++) {
            double t = B[c * d + j];
            B[c * d + j] = B[piv * d + j];
            B[piv * d + j] = t;
        }
        for (int64_t r = c + 1; r < m; r++) {
            double f = A[r * m + c] / A[c * m + c];
            for (int64_t j = c; j < m; j++)
                A[r * m + j] -= f * A[c * m + j];
            for (int64_t j = 0; j < d; j++)
                B[r * d + j] -= f * B[c * d + j];
        }
    }
    for (int64_t c = m - 1; c >= 0; c--)
        for (int64_t j = 0; j < d; j++) {
            double a = B[c * d + j];
            for (int64_t i = c + 1; i < m; i++)
                a -= A[c * m + i] * B[i * d + j];
            B[c * d + j] = a / A[c * m + c];
        }
}

static void support_refit(void)
{
    tprob p;
    tprob_make(&p, 300, 20, 3, 51, 1);
    vv_stats st0;
    tprob_stats(&p, 0, &st0);
    int64_t k = st0.k, d = st0.d, off[] = {0, 3, 4, 8, 10, 15, 20};
    vv_stats st = with_groups(&st0, off, 6);
    double W[60] = {0}, Wr[60];
    /* Active: group 1 (one row), group 3 (one of its rows zero), group 5;
     * group 4 nonzero but under VV_ACTIVE_TOL. */
    W[3 * d + 1] = 0.5;
    W[9 * d + 0] = -1.0;
    W[15 * d + 2] = 2.0;
    W[19 * d + 0] = 1e-3;
    W[10 * d + 0] = 1e-9;
    int64_t gidx[6];
    int64_t m = vv_lasso_group_support(&st, W, gidx);
    CHECKF(m == 3 && gidx[0] == 1 && gidx[1] == 3 && gidx[2] == 5 &&
               vv_lasso_group_support(&st, W, NULL) == 3,
           "group support: groups 1, 3, 5 (a group under VV_ACTIVE_TOL is not), %lld found",
           (long long)m);
    CHECK(vv_lasso_support(W, k, d, NULL) == 4, "vv_lasso_support stays per row (4 rows)");
    int rc = vv_lasso_refit(&st, W, Wr);
    /* Textbook normal equations on the rows S = 3, 8, 9, 15..19, from Phi. */
    int64_t S[] = {3, 8, 9, 15, 16, 17, 18, 19}, ns = 8, n = p.n;
    double A[64], B[24];
    for (int64_t a = 0; a < ns; a++) {
        for (int64_t b = 0; b < ns; b++) {
            double q = 0;
            for (int64_t i = 0; i < n; i++)
                q += p.phi[i * k + S[a]] * p.phi[i * k + S[b]];
            A[a * ns + b] = q;
        }
        for (int64_t j = 0; j < d; j++) {
            double q = 0;
            for (int64_t i = 0; i < n; i++)
                q += p.phi[i * k + S[a]] * (p.psi[i * d + j] - p.bias[j]);
            B[a * d + j] = q;
        }
    }
    gauss(ns, d, A, B);
    double err = 0, scale = 0, outside = 0;
    for (int64_t i = 0; i < k; i++) {
        int64_t a = -1;
        for (int64_t t = 0; t < ns; t++)
            if (S[t] == i)
                a = t;
        for (int64_t j = 0; j < d; j++) {
            if (a < 0)
                outside = fmax(outside, fabs(Wr[i * d + j]));
            else {
                err = fmax(err, fabs(Wr[i * d + j] - B[a * d + j]));
                scale = fmax(scale, fabs(B[a * d + j]));
            }
        }
    }
    CHECKF(rc == 0 && err <= 1e-9 * scale && outside == 0,
           "refit on the rows of the active groups (8 rows) equals the normal equations to %.2g "
           "(max %.3g), zero elsewhere",
           err, scale);
    vv_stats_free(&st0);
    tprob_free(&p);
}

/* ---- adam_prox on groups ------------------------------------------------- */

static void adam_groups(void)
{
    tprob p;
    tprob_make(&p, 200, 20, 3, 71, 1);
    vv_stats st0;
    tprob_stats(&p, 0, &st0);
    int64_t k = st0.k, d = st0.d, mixed[] = {0, 3, 4, 8, 10, 15, 20}, *u1, ng1, *u4, ng4;
    vv_groups_uniform(k, 1, &u1, &ng1);
    vv_groups_uniform(k, 2, &u4, &ng4);
    double W0[60], W1[60];
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.solver = VV_SOLVER_ADAM_PROX;
    o.mu = 1e-3;
    o.max_iter = 100;
    o.lambda = 0.3 * vv_lambda_max(&st0);
    vv_lasso_result r0, r1;
    memset(W0, 0, sizeof W0);
    memset(W1, 0, sizeof W1);
    vv_stats s1 = with_groups(&st0, u1, ng1);
    vv_lasso_solve(&st0, &o, W0, &r0);
    vv_lasso_solve(&s1, &o, W1, &r1);
    CHECK(!memcmp(W0, W1, sizeof W0) && r0.e.objective == r1.e.objective,
          "adam_prox: one-row groups are the neuron-wise run bit for bit");
    struct {
        const int64_t *off;
        int64_t ng;
        const char *what;
    } gs[] = {{u4, ng4, "groups of 2 (the backend's shrink on the reshaped view)"},
              {mixed, 6, "groups of sizes 1..5 (the host loop)"}};
    for (int t = 0; t < 2; t++) {
        vv_stats sg = with_groups(&st0, gs[t].off, gs[t].ng);
        o.lambda = 0.8 * vv_lambda_max(&sg);
        memset(W1, 0, sizeof W1);
        int rc = vv_lasso_solve(&sg, &o, W1, &r1);
        /* The shrink zeroes whole groups: no group is partly zero. */
        int bygroup = 1;
        for (int64_t g = 0; g < gs[t].ng; g++) {
            int64_t zr = 0, rows = gs[t].off[g + 1] - gs[t].off[g];
            for (int64_t i = gs[t].off[g]; i < gs[t].off[g + 1]; i++) {
                double q = 0;
                for (int64_t j = 0; j < d; j++)
                    q += W1[i * d + j] * W1[i * d + j];
                zr += q == 0;
            }
            bygroup &= zr == 0 || zr == rows;
        }
        /* Proximal Adam does not converge to the optimum (its steps are
         * normalised per entry; on this problem its objective even grows
         * with the iterations, with or without groups), so only the shape
         * of its iterates is checked: zeros by whole groups, and the
         * certificate counting active groups (Adam's steps, normalised per
         * entry, move all groups of one size alike: the groups of 2 are all
         * active or all zero, while the smaller of the mixed groups go). */
        int64_t act = vv_lasso_group_support(&sg, W1, NULL);
        CHECKF(rc == 0 && bygroup && r1.e.active == act && (t == 0 || (act > 0 && act < gs[t].ng)),
               "adam_prox, %s: zeros by whole groups, %lld of %lld groups active", gs[t].what,
               (long long)act, (long long)gs[t].ng);
    }
    free(u1);
    free(u4);
    vv_stats_free(&st0);
    tprob_free(&p);
}

/* ---- Errors and the struct's life ---------------------------------------- */

static void errors(void)
{
    tprob p;
    tprob_make(&p, 100, 12, 2, 61, 0);
    vv_stats st0;
    tprob_stats(&p, 0, &st0);
    CHECK(st0.group_off == NULL && st0.ngroups == 0, "vv_stats_compute leaves no groups");
    int64_t *off;
    int64_t ng;
    CHECK(vv_groups_uniform(12, 5, &off, &ng) == VV_EINVAL && off == NULL,
          "vv_groups_uniform: 12 rows in groups of 5 is VV_EINVAL");
    CHECK(vv_groups_uniform(12, 0, &off, &ng) == VV_EINVAL,
          "vv_groups_uniform: size 0 is VV_EINVAL");
    CHECK(vv_groups_uniform(12, 4, &off, &ng) == 0 && ng == 3 && off[0] == 0 && off[3] == 12,
          "vv_groups_uniform: 12 rows in groups of 4 are 3 groups");
    vv_stats good = with_groups(&st0, off, ng);
    CHECK(vv_groups_size(&good) == 4 && vv_groups_size(&st0) == 1, "vv_groups_size");
    struct {
        int64_t off[5], ng;
        const char *what;
    } bad[] = {
        {{1, 4, 8, 12}, 3, "group_off[0] = 1"},       {{0, 4, 4, 12}, 3, "an empty group"},
        {{0, 6, 4, 12}, 3, "descending offsets"},     {{0, 4, 8, 11}, 3, "group_off[ng] = 11 < k"},
        {{0, 4, 8, 13}, 3, "group_off[ng] = 13 > k"}, {{0}, 0, "no groups for 12 rows"}};
    double W[24] = {0};
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.lambda = 0.1 * vv_lambda_max(&st0);
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        vv_stats b = with_groups(&st0, bad[i].off, bad[i].ng);
        vv_lasso_result res;
        int rc = vv_groups_check(&b);
        CHECKF(rc == VV_EINVAL && vv_lasso_solve(&b, &o, W, &res) == VV_EINVAL &&
                   strstr(vv_err_detail(), "group"),
               "bad groups (%s): VV_EINVAL, \"%s\"", bad[i].what, vv_err_detail());
    }
    vv_stats nulln = st0;
    nulln.ngroups = 5;
    CHECK(vv_groups_check(&nulln) == VV_EINVAL, "NULL offsets with ngroups 5 of 12: VV_EINVAL");
    /* vv_stats_free leaves the offsets (not owned) and zeroes the fields. */
    vv_stats own = good;
    own.G = malloc(4 * sizeof(double));
    own.Bt = malloc(4 * sizeof(double));
    vv_stats_free(&own);
    CHECK(own.group_off == NULL && own.ngroups == 0 && off[3] == 12,
          "vv_stats_free zeroes group_off and ngroups and leaves the offsets");
    free(off);
    vv_stats_free(&st0);
    tprob_free(&p);
}

int main(void)
{
    fixture_cases();
    certificate();
    screening();
    singletons();
    constants();
    support_refit();
    adam_groups();
    errors();
    return tap_done();
}
