/* test_socp.c - the exact multi-task lasso interpolation solver (vv/socp.h):
 * agreement with cvxopt on committed fixtures, KKT conditions checked
 * independently of the solver, the closed form of |support| = N solutions,
 * rank-deficient and infeasible data, the paper's Fig. 3 / Fig. 4 counts on
 * small runs, the Fig. 5 brute force and its budget guard, options and
 * argument errors. */
#include "tap.h"
#include "util.h"
#include "vv/err.h"
#include "vv/socp.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <string.h>

/* ---- Independent checks ---------------------------------------------------- */

typedef struct kkt {
    double primal;          /* sum_k ||v_k|| */
    double dual;            /* <Psi, Y> */
    double pres;            /* ||Phi V^T - Psi||_F / ||Psi||_F */
    double ymax;            /* max_k ||Phi_k^T Y|| */
    double complementarity; /* sum_k (||v_k|| - <v_k, Phi_k^T Y>) / primal */
    double worst_c;         /* max_k |(||v_k|| - <v_k, Phi_k^T Y>)| / primal */
    int64_t active;
} kkt;

/* Recomputes every optimality measure from phi, psi, V (d x k), Y (n x d)
 * with plain loops. */
static kkt kkt_check(int64_t n, int64_t k, int64_t d, const double *phi, const double *psi,
                     const double *V, const double *Y)
{
    kkt r = {0};
    double r2 = 0, p2 = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double a = -psi[i * d + j];
            for (int64_t c = 0; c < k; c++)
                a += phi[i * k + c] * V[j * k + c];
            r2 += a * a;
            p2 += psi[i * d + j] * psi[i * d + j];
            r.dual += psi[i * d + j] * Y[i * d + j];
        }
    r.pres = sqrt(r2 / p2);
    double *py = malloc((size_t)d * sizeof *py);
    for (int64_t c = 0; c < k; c++) {
        double nv = 0, ny = 0, iv = 0;
        for (int64_t j = 0; j < d; j++) {
            py[j] = 0;
            for (int64_t i = 0; i < n; i++)
                py[j] += phi[i * k + c] * Y[i * d + j];
            nv += V[j * k + c] * V[j * k + c];
            ny += py[j] * py[j];
            iv += V[j * k + c] * py[j];
        }
        nv = sqrt(nv);
        r.primal += nv;
        r.ymax = fmax(r.ymax, sqrt(ny));
        r.complementarity += nv - iv;
        r.worst_c = fmax(r.worst_c, fabs(nv - iv));
        r.active += nv > VV_ACTIVE_TOL;
    }
    r.complementarity /= r.primal;
    r.worst_c /= r.primal;
    free(py);
    return r;
}

/* The KKT conditions to 1e-8, relative: primal feasibility, dual
 * feasibility, complementarity, gap. */
static int kkt_ok(const kkt *c, const vv_socp_result *res)
{
    return c->pres <= 1e-8 && c->ymax <= 1 + 1e-8 && fabs(c->complementarity) <= 1e-8 &&
           c->worst_c <= 1e-8 && (c->primal - c->dual) / c->primal <= 1e-8 &&
           (c->primal - c->dual) / c->primal >= -1e-8 &&
           fabs(res->primal - c->primal) <= 1e-12 * c->primal;
}

static double rel(double a, double b)
{
    return fabs(a - b) / fmax(fabs(b), 1e-300);
}

/* ---- Fixtures (cvxopt) ------------------------------------------------------- */

static cJSON *load_manifest(void)
{
    FILE *f = fopen(fixture("socp/manifest.json"), "rb");
    if (!f)
        return NULL;
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return cJSON_Parse(buf);
}

static double *load_case(cJSON *c, const char *field, int64_t *rows, int64_t *cols)
{
    char rel_path[256];
    snprintf(rel_path, sizeof rel_path, "socp/%s", cJSON_GetObjectItem(c, field)->valuestring);
    return load_npy(fixture(rel_path), rows, cols);
}

static void fixture_cases(void)
{
    cJSON *man = load_manifest();
    if (!CHECK(man, "fixture manifest socp/manifest.json loads"))
        return;
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(man, "cases"))
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        int64_t n, k, n2, d;
        double *phi = load_case(c, "phi", &n, &k), *psi = load_case(c, "psi", &n2, &d);
        if (!CHECK(phi && psi && n == n2, name)) {
            free(phi);
            free(psi);
            continue;
        }
        double *V = malloc((size_t)(d * k) * sizeof *V), *Y = malloc((size_t)(n * d) * sizeof *Y);
        vv_socp_result res;
        int rc = vv_socp_solve(n, k, d, phi, psi, NULL, V, Y, &res);
        const char *want = cJSON_GetObjectItem(c, "status")->valuestring;
        int64_t want_rank = (int64_t)cJSON_GetObjectItem(c, "rank")->valuedouble;
        if (!strcmp(want, "infeasible")) {
            CHECKF(rc == 0 && res.status == VV_SOCP_INFEASIBLE,
                   "%s: reported infeasible (status %s, inconsistency %.2e)", name,
                   vv_socp_status_name(res.status), res.inconsistency);
            CHECKF(res.rank == want_rank, "%s: rank %lld detected (want %lld)", name,
                   (long long)res.rank, (long long)want_rank);
            /* Y is a ray: Phi^T Y = 0 and <Psi, Y> > 0. */
            double zero = 0, vmax = 0;
            for (int64_t i = 0; i < d * k; i++)
                vmax = fmax(vmax, fabs(V[i]));
            kkt kc = kkt_check(n, k, d, phi, psi, V, Y);
            zero = kc.ymax;
            CHECKF(
                zero <= 1e-10 && kc.dual > 0.1 && vmax == 0,
                "%s: infeasibility certificate: max ||Phi_k^T Y|| = %.2e, <Psi, Y> = %.3f, V = 0",
                name, zero, kc.dual);
        } else {
            int64_t vr, vc;
            double *Vref = load_case(c, "v", &vr, &vc);
            double ref = cJSON_GetObjectItem(c, "primal")->valuedouble;
            CHECKF(rc == 0 && res.status == VV_SOCP_OPTIMAL, "%s: optimal (%d iterations)", name,
                   res.iterations);
            CHECKF(res.rank == want_rank, "%s: rank %lld (want %lld)", name, (long long)res.rank,
                   (long long)want_rank);
            CHECKF(rel(res.primal, ref) <= 1e-7, "%s: objective %.12f vs cvxopt %.12f (rel %.1e)",
                   name, res.primal, ref, rel(res.primal, ref));
            kkt kc = kkt_check(n, k, d, phi, psi, V, Y);
            CHECKF(kkt_ok(&kc, &res),
                   "%s: KKT: pres %.1e, max||Phi_k^T Y|| - 1 = %.1e, compl %.1e (worst %.1e), "
                   "gap %.1e",
                   name, kc.pres, kc.ymax - 1, kc.complementarity, kc.worst_c,
                   (kc.primal - kc.dual) / kc.primal);
            /* V itself is pinned down only to about sqrt(gap) along nearly
             * flat directions of the objective (the "small" case moves two
             * columns by 2e-5 for a 1e-10 change of the objective), so the
             * solutions are compared to 1e-4. */
            double dv = 0, nv = 0;
            for (int64_t i = 0; i < d * k; i++) {
                dv += (V[i] - Vref[i]) * (V[i] - Vref[i]);
                nv += Vref[i] * Vref[i];
            }
            CHECKF(Vref && vr == d && vc == k && sqrt(dv / nv) <= 1e-4,
                   "%s: V agrees with the reference (rel %.1e); %lld active (reference %d)", name,
                   sqrt(dv / nv), (long long)res.active,
                   cJSON_GetObjectItem(c, "active")->valueint);
            CHECKF(res.active == kc.active && res.active >= want_rank &&
                       res.active <= want_rank * d,
                   "%s: %lld active columns within [rank, rank * D] = [%lld, %lld]", name,
                   (long long)res.active, (long long)want_rank, (long long)(want_rank * d));
            free(Vref);
        }
        free(phi);
        free(psi);
        free(V);
        free(Y);
    }
    cJSON_Delete(man);
}

/* ---- |support| = N: the closed form -------------------------------------------- */

/* Solves Phi_S X = Psi (n x n, n x d) by Gaussian elimination with partial
 * pivoting; X returned in psi's layout. */
static void dense_solve(int64_t n, int64_t d, const double *A0, const double *B0, double *X)
{
    double *A = malloc((size_t)(n * n) * sizeof *A);
    memcpy(A, A0, (size_t)(n * n) * sizeof *A);
    memcpy(X, B0, (size_t)(n * d) * sizeof *X);
    for (int64_t j = 0; j < n; j++) {
        int64_t p = j;
        for (int64_t i = j + 1; i < n; i++)
            if (fabs(A[i * n + j]) > fabs(A[p * n + j]))
                p = i;
        for (int64_t c = 0; c < n; c++) {
            double t = A[j * n + c];
            A[j * n + c] = A[p * n + c];
            A[p * n + c] = t;
        }
        for (int64_t c = 0; c < d; c++) {
            double t = X[j * d + c];
            X[j * d + c] = X[p * d + c];
            X[p * d + c] = t;
        }
        for (int64_t i = j + 1; i < n; i++) {
            double f = A[i * n + j] / A[j * n + j];
            for (int64_t c = j; c < n; c++)
                A[i * n + c] -= f * A[j * n + c];
            for (int64_t c = 0; c < d; c++)
                X[i * d + c] -= f * X[j * d + c];
        }
    }
    for (int64_t i = n - 1; i >= 0; i--)
        for (int64_t c = 0; c < d; c++) {
            double a = X[i * d + c];
            for (int64_t j = i + 1; j < n; j++)
                a -= A[i * n + j] * X[j * d + c];
            X[i * d + c] = a / A[i * n + i];
        }
    free(A);
}

/* max |V - (Phi_S^{-1} Psi)^T| / max |V| over the support S (|S| = n). */
static double closed_form_error(int64_t n, int64_t k, int64_t d, const double *phi,
                                const double *psi, const double *V, const int64_t *S)
{
    double *A = malloc((size_t)(n * n) * sizeof *A), *X = malloc((size_t)(n * d) * sizeof *X);
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < n; c++)
            A[i * n + c] = phi[i * k + S[c]];
    dense_solve(n, d, A, psi, X);
    double err = 0, vmax = 0;
    for (int64_t c = 0; c < n; c++)
        for (int64_t j = 0; j < d; j++) {
            err = fmax(err, fabs(V[j * k + S[c]] - X[c * d + j]));
            vmax = fmax(vmax, fabs(X[c * d + j]));
        }
    free(A);
    free(X);
    return err / vmax;
}

static void closed_form(void)
{
    /* K = N: the support is all of it and V = (Phi^{-1} Psi)^T. */
    int64_t n = 12, d = 5, k = 12;
    double *phi = malloc((size_t)(n * k) * sizeof *phi), *psi = malloc((size_t)(n * d) * 8);
    double *V = malloc((size_t)(d * k) * sizeof *V), *Y = malloc((size_t)(n * d) * 8);
    int64_t S[12];
    for (int64_t c = 0; c < k; c++)
        S[c] = c;
    vv_socp_gen_gaussian(n, k, d, 77, phi, psi);
    vv_socp_result res;
    int rc = vv_socp_solve(n, k, d, phi, psi, NULL, V, Y, &res);
    double err = closed_form_error(n, k, d, phi, psi, V, S);
    kkt kc = kkt_check(n, k, d, phi, psi, V, Y);
    CHECKF(rc == 0 && res.status == VV_SOCP_OPTIMAL && res.active == n && err <= 1e-9,
           "K = N = 12: all %lld columns active, V = (Phi^-1 Psi)^T to %.1e", (long long)res.active,
           err);
    CHECKF(kkt_ok(&kc, &res), "K = N = 12: KKT (gap %.1e, pres %.1e, compl %.1e)",
           (kc.primal - kc.dual) / kc.primal, kc.pres, kc.complementarity);
    free(phi);
    free(psi);
    free(V);
    free(Y);
}

/* ---- Paper instances ---------------------------------------------------------- */

static void fig3(int64_t n, int count, uint64_t seed0)
{
    int64_t d = 10, k = 500;
    double *phi = malloc((size_t)(n * k) * sizeof *phi), *psi = malloc((size_t)(n * d) * 8);
    double *V = malloc((size_t)(d * k) * sizeof *V), *Y = malloc((size_t)(n * d) * 8);
    char counts[1024] = "";
    int in_range = 1, all_kkt = 1, all_opt = 1;
    double secs = 0, worst_gap = 0;
    int64_t mn = INT64_MAX, mx = 0;
    double mean = 0;
    for (int i = 0; i < count; i++) {
        vv_socp_gen_gaussian(n, k, d, seed0 + (uint64_t)i, phi, psi);
        vv_socp_result res;
        int rc = vv_socp_solve(n, k, d, phi, psi, NULL, V, Y, &res);
        all_opt &= rc == 0 && res.status == VV_SOCP_OPTIMAL;
        kkt kc = kkt_check(n, k, d, phi, psi, V, Y);
        all_kkt &= kkt_ok(&kc, &res);
        worst_gap = fmax(worst_gap, (kc.primal - kc.dual) / kc.primal);
        in_range &= res.active >= n && res.active <= n * d;
        mn = res.active < mn ? res.active : mn;
        mx = res.active > mx ? res.active : mx;
        mean += (double)res.active / count;
        secs += res.seconds;
        snprintf(counts + strlen(counts), sizeof counts - strlen(counts), "%s%lld", i ? " " : "",
                 (long long)res.active);
    }
    printf("# Fig. 3, N=%lld D=10 K=500, %d instances: counts %s (mean %.1f, min %lld, max %lld), "
           "%.2f s\n",
           (long long)n, count, counts, mean, (long long)mn, (long long)mx, secs);
    CHECKF(all_opt, "Fig. 3 N=%lld: all %d instances optimal", (long long)n, count);
    CHECKF(all_kkt, "Fig. 3 N=%lld: KKT to 1e-8 on all (worst gap %.1e)", (long long)n, worst_gap);
    CHECKF(in_range, "Fig. 3 N=%lld: every count in [N, N D] = [%lld, %lld]", (long long)n,
           (long long)n, (long long)(n * d));
    free(phi);
    free(psi);
    free(V);
    free(Y);
}

static void fig4(void)
{
    /* Rank-r data: rank detected, consistent, counts in [r, r^2] (D_eff = r). */
    int64_t n = 20, k = 200, r = 5;
    double *phi = malloc((size_t)(n * k) * sizeof *phi), *psi = malloc((size_t)(n * r) * 8);
    double *V = malloc((size_t)(r * k) * sizeof *V), *Y = malloc((size_t)(n * r) * 8);
    for (int i = 0; i < 3; i++) {
        vv_socp_gen_lowrank(n, k, r, 100 + (uint64_t)i, phi, psi);
        vv_socp_result res;
        int rc = vv_socp_solve(n, k, r, phi, psi, NULL, V, Y, &res);
        kkt kc = kkt_check(n, k, r, phi, psi, V, Y);
        CHECKF(rc == 0 && res.status == VV_SOCP_OPTIMAL && res.rank == r && kkt_ok(&kc, &res),
               "Fig. 4 rank-%lld instance %d: optimal, rank %lld detected, KKT (gap %.1e, pres "
               "%.1e, inconsistency %.1e)",
               (long long)r, i, (long long)res.rank, (kc.primal - kc.dual) / kc.primal, kc.pres,
               res.inconsistency);
        CHECKF(res.active >= r && res.active <= r * r,
               "Fig. 4 rank-%lld instance %d: %lld active "
               "in [r, r^2] = [%lld, %lld]",
               (long long)r, i, (long long)res.active, (long long)r, (long long)(r * r));
    }
    /* Same Phi, Psi not in its column space: infeasible. */
    vv_rng g;
    vv_rng_seed(&g, 5);
    for (int64_t i = 0; i < n * r; i++)
        psi[i] = vv_rng_normal(&g);
    vv_socp_result res;
    int rc = vv_socp_solve(n, k, r, phi, psi, NULL, V, Y, &res);
    kkt kc = kkt_check(n, k, r, phi, psi, V, Y);
    CHECKF(rc == 0 && res.status == VV_SOCP_INFEASIBLE && kc.ymax <= 1e-10 && kc.dual > 0,
           "rank-5 Phi with random Psi: infeasible (inconsistency %.2f), certificate "
           "||Phi^T Y|| = %.1e, <Psi, Y> = %.2f",
           res.inconsistency, kc.ymax, kc.dual);
    CHECK(isnan(res.primal) && isnan(res.dual), "infeasible: objectives are NaN");
    free(phi);
    free(psi);
    free(V);
    free(Y);
}

static void fig5(void)
{
    int64_t n = 3, d = 2, k = 7;
    CHECKF(vv_socp_brute_count(3, 7) == 99, "brute count N=3 K=7 is 99 (got %lld)",
           (long long)vv_socp_brute_count(3, 7));
    CHECK(vv_socp_brute_count(3, 11) == 2048 - 1 - 11 - 55, "brute count N=3 K=11 is 1981");
    CHECK(vv_socp_brute_count(1, 200) == INT64_MAX, "brute count saturates");
    CHECK(vv_socp_brute_count(5, 4) == 0, "brute count is 0 for N > K");
    double phi[3 * 7], psi[3 * 2], V[2 * 7], Y[3 * 2];
    int hist[8] = {0};
    int ok_range = 1, ok_opt = 1, ok_support = 1, ok_closed = 1, ok_gl = 1;
    for (int i = 0; i < 8; i++) {
        vv_socp_gen_gaussian(n, k, d, 500 + (uint64_t)i, phi, psi);
        vv_socp_brute_opts o;
        vv_socp_brute_opts_default(&o);
        o.budget = 1000;
        vv_socp_brute_result br;
        int64_t sup[7];
        double best[8];
        int rc = vv_socp_brute(n, k, d, phi, psi, &o, sup, best, &br);
        vv_socp_result res;
        vv_socp_solve(n, k, d, phi, psi, NULL, V, Y, &res);
        ok_opt &= rc == 0 && br.failed == 0;
        ok_range &= br.sparsest >= n && br.sparsest <= n * d;
        ok_gl &= rel(br.gl_star, res.primal) <= 1e-8 && br.sparsest_obj <= br.gl_star * (1 + 1e-6);
        for (int64_t c = 1; c < br.sparsest; c++)
            ok_support &= sup[c] > sup[c - 1];
        for (int64_t m = n; m < br.sparsest; m++)
            ok_support &= best[m] > br.gl_star * (1 + 1e-6);
        if (br.sparsest >= 0 && br.sparsest < 8)
            hist[br.sparsest]++;
        /* When the full solution has exactly N active columns it is the
         * closed form on its support. */
        if (res.active == n) {
            int64_t S[3], m = 0;
            for (int64_t c = 0; c < k; c++) {
                double s = hypot(V[c], V[k + c]);
                if (s > VV_ACTIVE_TOL && m < 3)
                    S[m++] = c;
            }
            double err = closed_form_error(n, k, d, phi, psi, V, S);
            ok_closed &= err <= 1e-7 && br.sparsest == n;
        }
        if (i == 0) {
            o.exhaustive = 1;
            vv_socp_brute_result be;
            rc = vv_socp_brute(n, k, d, phi, psi, &o, NULL, NULL, &be);
            CHECKF(rc == 0 && be.sparsest == br.sparsest && be.subproblems == 99 &&
                       rel(be.gl_star, br.gl_star) <= 1e-8,
                   "exhaustive brute force: same sparsest (%lld), %lld subproblems (%lld closed "
                   "form, %lld infeasible)",
                   (long long)be.sparsest, (long long)be.subproblems, (long long)be.closed_form,
                   (long long)be.infeasible);
        }
    }
    printf("# Fig. 5, N=3 D=2 K=7, 8 instances: sparsest optimal counts 3:%d 4:%d 5:%d 6:%d "
           "7:%d\n",
           hist[3], hist[4], hist[5], hist[6], hist[7]);
    CHECK(ok_opt, "Fig. 5 brute force: every subproblem solved");
    CHECK(ok_range, "Fig. 5 brute force: sparsest optimal count in [N, N D] = [3, 6]");
    CHECK(ok_gl,
          "Fig. 5 brute force: GL* equals the full optimum, the sparsest support attains it");
    CHECK(ok_support, "Fig. 5 brute force: support ascending, smaller sizes not optimal");
    CHECK(ok_closed, "Fig. 5: N-column optima equal (Phi_S^-1 Psi)^T and are the sparsest");

    /* The budget guard. */
    double *bphi = calloc(3 * 40, sizeof *bphi);
    vv_socp_gen_gaussian(3, 40, 2, 1, bphi, psi);
    vv_socp_brute_opts o;
    vv_socp_brute_opts_default(&o);
    o.budget = 1000000;
    vv_socp_brute_result br;
    int rc = vv_socp_brute(3, 40, 2, bphi, psi, &o, NULL, NULL, &br);
    char want[64];
    snprintf(want, sizeof want, "%lld", (long long)vv_socp_brute_count(3, 40));
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), want) && strstr(vv_err_detail(), "1000000"),
           "brute force with K=40 refused: %s", vv_err_detail());
    free(bphi);
}

/* ---- Options, errors, edge cases --------------------------------------------- */

static atomic_int stop_flag;

static void options_and_errors(void)
{
    int64_t n = 10, d = 10, k = 500;
    double *phi = malloc((size_t)(n * k) * sizeof *phi), *psi = malloc((size_t)(n * d) * 8);
    double *V = malloc((size_t)(d * k) * sizeof *V), *Y = malloc((size_t)(n * d) * 8);
    vv_socp_gen_gaussian(n, k, d, 3, phi, psi);
    vv_socp_result res, full;
    vv_socp_solve(n, k, d, phi, psi, NULL, V, Y, &full);

    /* max_iter. */
    vv_socp_opts o;
    vv_socp_opts_default(&o);
    o.max_iter = 3;
    int rc = vv_socp_solve(n, k, d, phi, psi, &o, V, Y, &res);
    kkt kc = kkt_check(n, k, d, phi, psi, V, Y);
    CHECKF(rc == 0 && res.status == VV_SOCP_MAX_ITER && res.iterations == 3,
           "max_iter = 3 honoured (status %s, %d iterations)", vv_socp_status_name(res.status),
           res.iterations);
    CHECKF(kc.ymax <= 1 + 1e-12 && kc.dual <= full.primal && kc.primal >= full.primal,
           "after 3 iterations: Y dual feasible, dual %.4f <= optimum %.4f <= primal %.4f", kc.dual,
           full.primal, kc.primal);

    /* A looser tol takes fewer iterations. */
    vv_socp_opts_default(&o);
    o.tol = 1e-4;
    rc = vv_socp_solve(n, k, d, phi, psi, &o, V, Y, &res);
    CHECKF(rc == 0 && res.status == VV_SOCP_OPTIMAL && res.iterations < full.iterations &&
               res.rel_gap <= 1e-4,
           "tol 1e-4: %d iterations (vs %d), rel_gap %.1e", res.iterations, full.iterations,
           res.rel_gap);

    /* Scaling Psi scales V and both objectives.  (The paper's absolute
     * 1e-7 rule keeps the same count only while the inactive columns, at
     * about 1e-10 ||Psi||, stay below it: Psi * 1e4 would count them.) */
    double *psi2 = malloc((size_t)(n * d) * sizeof *psi2), *V2 = malloc((size_t)(d * k) * 8);
    vv_socp_solve(n, k, d, phi, psi, NULL, V, NULL, &full);
    for (double f = 1e-2; f <= 1e2; f *= 1e4) {
        for (int64_t i = 0; i < n * d; i++)
            psi2[i] = f * psi[i];
        rc = vv_socp_solve(n, k, d, phi, psi2, NULL, V2, NULL, &res);
        double dv = 0, nv = 0;
        for (int64_t i = 0; i < d * k; i++) {
            dv = fmax(dv, fabs(V2[i] - f * V[i]));
            nv = fmax(nv, fabs(f * V[i]));
        }
        CHECKF(rc == 0 && res.status == VV_SOCP_OPTIMAL &&
                   rel(res.primal, f * full.primal) <= 1e-9 && res.active == full.active &&
                   dv <= 1e-6 * nv,
               "Psi * %g: objective %.10g = %g * %.10g, V scaled (%.1e), same %lld active", f,
               res.primal, f, full.primal, dv / nv, (long long)res.active);
    }

    /* Psi = 0. */
    memset(psi2, 0, (size_t)(n * d) * sizeof *psi2);
    rc = vv_socp_solve(n, k, d, phi, psi2, NULL, V, Y, &res);
    double vmax = 0;
    for (int64_t i = 0; i < d * k; i++)
        vmax = fmax(vmax, fabs(V[i]));
    CHECK(rc == 0 && res.status == VV_SOCP_OPTIMAL && vmax == 0 && res.iterations == 0 &&
              res.primal == 0,
          "Psi = 0: V = 0, optimal, no iteration");

    /* NULL outputs are allowed. */
    rc = vv_socp_solve(n, k, d, phi, psi, NULL, NULL, NULL, &res);
    CHECK(rc == 0 && res.status == VV_SOCP_OPTIMAL && res.active == full.active,
          "V and Y may be NULL");

    /* The stop flag. */
    vv_socp_opts_default(&o);
    stop_flag = 1;
    o.stop = &stop_flag;
    rc = vv_socp_solve(n, k, d, phi, psi, &o, V, Y, &res);
    CHECKF(rc == VV_ESTATE, "stop flag: VV_ESTATE (%s)", vv_err_detail());

    /* Bad arguments. */
    rc = vv_socp_solve(n, k, d, NULL, psi, NULL, V, Y, &res);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "phi"), "NULL phi: %s", vv_err_detail());
    rc = vv_socp_solve(n, k, d, phi, psi, NULL, V, Y, NULL);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "res"), "NULL res: %s", vv_err_detail());
    rc = vv_socp_solve(0, k, d, phi, psi, NULL, V, Y, &res);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "N=0"), "N = 0: %s", vv_err_detail());
    rc = vv_socp_solve(n, k, -1, phi, psi, NULL, V, Y, &res);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "D=-1"), "D = -1: %s", vv_err_detail());
    vv_socp_opts_default(&o);
    o.tol = 2;
    rc = vv_socp_solve(n, k, d, phi, psi, &o, V, Y, &res);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "tol"), "tol = 2: %s", vv_err_detail());
    vv_socp_opts_default(&o);
    o.max_iter = -1;
    rc = vv_socp_solve(n, k, d, phi, psi, &o, V, Y, &res);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "max_iter"), "max_iter = -1: %s",
           vv_err_detail());
    vv_socp_opts_default(&o);
    o.rank_tol = 1.5;
    rc = vv_socp_solve(n, k, d, phi, psi, &o, V, Y, &res);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "rank_tol"), "rank_tol = 1.5: %s",
           vv_err_detail());
    vv_socp_opts_default(&o);
    o.feas_tol = -1;
    rc = vv_socp_solve(n, k, d, phi, psi, &o, V, Y, &res);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "feas_tol"), "feas_tol = -1: %s",
           vv_err_detail());
    double keep = phi[3 * k + 7];
    phi[3 * k + 7] = NAN;
    rc = vv_socp_solve(n, k, d, phi, psi, NULL, V, Y, &res);
    CHECKF(rc == VV_ENONFINITE && strstr(vv_err_detail(), "phi[3][7]"), "NaN in phi: %s",
           vv_err_detail());
    phi[3 * k + 7] = keep;
    psi[5] = INFINITY;
    rc = vv_socp_solve(n, k, d, phi, psi, NULL, V, Y, &res);
    CHECKF(rc == VV_ENONFINITE && strstr(vv_err_detail(), "psi[0][5]"), "Inf in psi: %s",
           vv_err_detail());
    double *big = calloc(200 * 200, sizeof *big), *bpsi = calloc(200 * 100, sizeof *bpsi);
    rc = vv_socp_solve(200, 200, 100, big, bpsi, NULL, NULL, NULL, &res);
    CHECKF(rc == VV_ETOOLARGE && strstr(vv_err_detail(), "20000"),
           "N = K = 200, D = 100: too large: %s", vv_err_detail());
    free(big);
    free(bpsi);

    /* Brute force and generators. */
    vv_socp_brute_result br;
    rc = vv_socp_brute(5, 4, 2, phi, psi, NULL, NULL, NULL, &br);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "K >= N"), "brute force N > K: %s",
           vv_err_detail());
    vv_socp_brute_opts bo;
    vv_socp_brute_opts_default(&bo);
    bo.budget = 0;
    rc = vv_socp_brute(3, 4, 2, phi, psi, &bo, NULL, NULL, &br);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "budget"), "brute budget 0: %s",
           vv_err_detail());
    rc = vv_socp_gen_lowrank(4, 10, 5, 1, phi, psi);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "r=5"), "lowrank r > N: %s", vv_err_detail());
    rc = vv_socp_gen_gaussian(4, 0, 2, 1, phi, psi);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "K=0"), "gaussian K = 0: %s",
           vv_err_detail());

    /* Generators are deterministic. */
    double *a = malloc((size_t)(n * k) * sizeof *a), *b = malloc((size_t)(n * d) * sizeof *b);
    vv_socp_gen_gaussian(n, k, d, 3, a, b);
    vv_socp_gen_gaussian(n, k, d, 3, phi, psi);
    CHECK(!memcmp(a, phi, (size_t)(n * k) * sizeof *a) && !memcmp(b, psi, (size_t)(n * d) * 8),
          "gaussian generator is a function of the seed");
    vv_socp_gen_gaussian(n, k, d, 4, a, b);
    CHECK(memcmp(a, phi, (size_t)(n * k) * sizeof *a), "another seed, other data");
    CHECK(!strcmp(vv_socp_status_name(VV_SOCP_INFEASIBLE), "infeasible") &&
              !strcmp(vv_socp_status_name(42), "unknown"),
          "status names");
    free(a);
    free(b);
    free(phi);
    free(psi);
    free(psi2);
    free(V);
    free(V2);
    free(Y);
}

static void small_shapes(void)
{
    /* D = 1 (plain basis pursuit), K < N (rank K, consistent and not), N = 1. */
    double phi[4 * 3], psi[4 * 2], V[2 * 3], Y[4 * 2];
    vv_socp_result res;
    /* N = 1, K = 3, D = 2: min sum ||v_k|| with sum_k phi_k v_k = psi: the
     * column with the largest |phi_k| carries everything. */
    double p1[3] = {0.5, -2.0, 1.0}, s1[2] = {3.0, 4.0};
    int rc = vv_socp_solve(1, 3, 2, p1, s1, NULL, V, Y, &res);
    CHECKF(rc == 0 && res.status == VV_SOCP_OPTIMAL && fabs(res.primal - 2.5) <= 1e-8 &&
               res.active == 1 && fabs(V[1] + 1.5) <= 1e-8 && fabs(V[3 + 1] + 2.0) <= 1e-8,
           "N = 1: objective %.10f (want 2.5 = ||psi|| / max |phi_k|), %lld active", res.primal,
           (long long)res.active);
    /* K = 2 < N = 4: Psi = Phi G^T consistent. */
    vv_rng g;
    vv_rng_seed(&g, 9);
    for (int i = 0; i < 8; i++)
        phi[i] = vv_rng_normal(&g);
    double G[2 * 2] = {1, 2, -1, 0.5};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            psi[i * 2 + j] = phi[i * 2] * G[j * 2] + phi[i * 2 + 1] * G[j * 2 + 1];
    rc = vv_socp_solve(4, 2, 2, phi, psi, NULL, V, Y, &res);
    double err = fabs(V[0] - 1) + fabs(V[1] - 2) + fabs(V[2] + 1) + fabs(V[3] - 0.5);
    CHECKF(rc == 0 && res.status == VV_SOCP_OPTIMAL && res.rank == 2 && err <= 1e-8,
           "K = 2 < N = 4, consistent: V = G recovered (err %.1e)", err);
    psi[0] += 1;
    rc = vv_socp_solve(4, 2, 2, phi, psi, NULL, V, Y, &res);
    CHECKF(rc == 0 && res.status == VV_SOCP_INFEASIBLE,
           "K = 2 < N = 4, inconsistent: infeasible (%.2e)", res.inconsistency);
}

int main(void)
{
    fixture_cases();
    closed_form();
    small_shapes();
    fig3(10, 10, 1000);
    fig3(20, 3, 2000);
    fig4();
    fig5();
    options_and_errors();
    return tap_done();
}
