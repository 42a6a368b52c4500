/* test_solvers.c - every solver satisfies the KKT conditions and agrees
 * with scikit-learn's MultiTaskLasso (committed fixtures); stopping rules,
 * metrics, warm starts and the refit behave as documented. */
#include "tap.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>

static cJSON *load_manifest(void)
{
    FILE *f = fopen(fixture("lasso/manifest.json"), "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return cJSON_Parse(buf);
}

/* Worst violation of the optimality conditions, relative to lambda:
 * M_k = lambda w_k / ||w_k|| on the support, ||M_k|| <= lambda elsewhere. */
static double kkt_violation(const vv_stats *st, const double *W, double lambda)
{
    int64_t k = st->k, d = st->d;
    double *GW = malloc((size_t)(k * d) * sizeof *GW);
    vv_gram_apply(st, vv_backend_cpu(), W, GW);
    double worst = 0;
    for (int64_t c = 0; c < k; c++) {
        double wn = 0, mn = 0, diff = 0;
        for (int64_t j = 0; j < d; j++)
            wn += W[c * d + j] * W[c * d + j];
        wn = sqrt(wn);
        for (int64_t j = 0; j < d; j++) {
            double m = (st->Bt[c * d + j] - GW[c * d + j]) / (double)st->n;
            mn += m * m;
            if (wn > 0) {
                double t = m - lambda * W[c * d + j] / wn;
                diff += t * t;
            }
        }
        double v = wn > 0 ? sqrt(diff) : fmax(0, sqrt(mn) - lambda);
        worst = fmax(worst, v / lambda);
    }
    free(GW);
    return worst;
}

typedef struct mlog {
    int64_t last_step, count;
    int increasing;
    double last_rel_gap;
} mlog;

static int on_metric(void *ctx, const vv_metrics *m)
{
    mlog *l = ctx;
    if (l->count && m->step <= l->last_step)
        l->increasing = 0;
    l->last_step = m->step;
    l->last_rel_gap = m->e.rel_gap;
    l->count++;
    return 0;
}

static void fixture_cases(cJSON *man)
{
    cJSON *cases = cJSON_GetObjectItem(man, "sklearn"), *c;
    cJSON_ArrayForEach(c, cases)
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        tprob p = {0};
        int64_t r;
        char rel[256];
        snprintf(rel, sizeof rel, "lasso/%s", cJSON_GetObjectItem(c, "phi")->valuestring);
        p.phi = load_npy(fixture(rel), &p.n, &p.k);
        snprintf(rel, sizeof rel, "lasso/%s", cJSON_GetObjectItem(c, "psi")->valuestring);
        p.psi = load_npy(fixture(rel), &r, &p.d);
        cJSON *bj = cJSON_GetObjectItem(c, "bias");
        if (cJSON_IsString(bj)) {
            snprintf(rel, sizeof rel, "lasso/%s", bj->valuestring);
            int64_t one;
            p.bias = load_npy(fixture(rel), &r, &one);
        }
        CHECKF(p.phi && p.psi, "%s: fixture arrays load", name);
        if (!p.phi || !p.psi)
            continue;
        vv_stats st;
        tprob_stats(&p, 64, &st);
        CHECKF(tap_close(vv_lambda_max(&st), cJSON_GetObjectItem(c, "lambda_max")->valuedouble,
                         1e-12),
               "%s: lambda_max agrees with numpy", name);
        cJSON *pt;
        int i = 0;
        cJSON_ArrayForEach(pt, cJSON_GetObjectItem(c, "points"))
        {
            double lambda = cJSON_GetObjectItem(pt, "lambda")->valuedouble;
            double skobj = cJSON_GetObjectItem(pt, "objective")->valuedouble;
            int skact = cJSON_GetObjectItem(pt, "active")->valueint;
            /* The fourth is FISTA resident in a backend's memory (the device
             * solver, here on the CPU backend). */
            vv_solver solvers[] = {VV_SOLVER_FISTA, VV_SOLVER_BCD, VV_SOLVER_AUTO, VV_SOLVER_FISTA};
            for (unsigned s = 0; s < 4; s++) {
                vv_lasso_result res;
                mlog ml = {.increasing = 1};
                double *W = calloc((size_t)(st.k * st.d), sizeof *W);
                vv_lasso_opts o;
                vv_lasso_opts_default(&o);
                o.solver = solvers[s];
                o.lambda = lambda;
                o.tol = 1e-10;
                o.max_iter = 5000000;
                o.max_seconds = 60;
                o.on_metric = on_metric;
                o.ctx = &ml;
                o.resident = s == 3;
                int rc = vv_lasso_solve(&st, &o, W, &res);
                const char *sn = s == 3 ? "fista resident" : vv_solver_name(solvers[s]);
                CHECKF(rc == 0 && res.stop_reason == VV_STOP_CONVERGED,
                       "%s point %d %s: converged to rel_gap %.2g in %lld iterations", name, i, sn,
                       res.e.rel_gap, (long long)res.iterations);
                double direct = tprob_objective(&p, W, lambda);
                CHECKF(fabs(direct - skobj) <= 1e-6 * skobj,
                       "%s point %d %s: objective %.12g vs scikit-learn %.12g", name, i, sn,
                       direct, skobj);
                CHECKF(direct <= skobj * (1 + 1e-9),
                       "%s point %d %s: no worse than scikit-learn", name, i, sn);
                double kkt = kkt_violation(&st, W, lambda);
                CHECKF(kkt < 1e-3, "%s point %d %s: KKT conditions hold (violation %.2g lambda)",
                       name, i, sn, kkt);
                CHECKF(res.e.active == skact || strcmp(name, "wide") == 0,
                       "%s point %d %s: %lld active neurons, scikit-learn %d", name, i, sn,
                       (long long)res.e.active, skact);
                CHECKF(ml.count > 0 && ml.increasing && ml.last_rel_gap <= 1e-10,
                       "%s point %d %s: metrics steps increase, last report is converged", name,
                       i, sn);
                free(W);
            }
            i++;
        }
        vv_stats_free(&st);
        tprob_free(&p);
    }
}

/* The resident solver's product from the support of the iterate, in blocks
 * of 1024 gathered rows: from a warm start with 1200 nonzero rows of 2600
 * (two blocks), three iterations equal the host solver's. */
static void resident_blocks(void)
{
    tprob p;
    tprob_make(&p, 2700, 2600, 4, 31, 0);
    vv_stats st;
    tprob_stats(&p, 0, &st);
    int64_t kd = st.k * st.d;
    double *W0 = calloc((size_t)kd, sizeof *W0), *Wh = malloc((size_t)kd * sizeof *Wh),
           *Wr = malloc((size_t)kd * sizeof *Wr);
    vv_rng r;
    vv_rng_seed(&r, 9);
    for (int64_t i = 0; i < 1200; i++)
        for (int64_t j = 0; j < st.d; j++)
            W0[(i * 2 + 1) * st.d + j] = 0.01 * ((double)(vv_rng_next(&r) >> 11) / 9007199254740992.0 - 0.5);
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.solver = VV_SOLVER_FISTA;
    o.lambda = 1e-3 * vv_lambda_max(&st);
    o.tol = 0;
    o.max_iter = 3;
    vv_lasso_result rh, rr;
    memcpy(Wh, W0, (size_t)kd * sizeof *Wh);
    memcpy(Wr, W0, (size_t)kd * sizeof *Wr);
    int rc = vv_lasso_solve(&st, &o, Wh, &rh);
    o.resident = 1;
    rc |= vv_lasso_solve(&st, &o, Wr, &rr);
    double diff = max_rel_diff(Wr, Wh, kd);
    CHECKF(rc == 0 && rr.iterations == 3 && diff < 1e-10 &&
               fabs(rr.e.objective - rh.e.objective) <= 1e-12 * fabs(rh.e.objective),
           "fista resident, product from 1200 of 2600 rows in blocks: 3 iterations equal the "
           "host's (rel diff %.1e)",
           diff);
    free(W0);
    free(Wh);
    free(Wr);
    vv_stats_free(&st);
    tprob_free(&p);
}

static void stopping_rules(void)
{
    tprob p;
    tprob_make(&p, 2000, 200, 5, 21, 0);
    vv_stats st;
    tprob_stats(&p, 0, &st);
    double lambda = 0.01 * vv_lambda_max(&st);
    tprob pb;
    tprob_make(&pb, 3000, 1500, 10, 22, 0);
    vv_stats big;
    tprob_stats(&pb, 0, &big);
    tprob_free(&pb);
    /* The fourth is FISTA on a device backend (resident there). */
    vv_solver solvers[] = {VV_SOLVER_FISTA, VV_SOLVER_BCD, VV_SOLVER_ADAM_PROX, VV_SOLVER_FISTA};
    for (unsigned s = 0; s < 4; s++) {
        const char *sn = s == 3 ? "fista on a device" : vv_solver_name(solvers[s]);
        double *W = calloc((size_t)(st.k * st.d), sizeof *W);
        vv_lasso_opts o;
        vv_lasso_result res;
        vv_lasso_opts_default(&o);
        o.solver = solvers[s];
        o.be = s == 3 ? sim_dev() : NULL;
        o.lambda = lambda;
        o.tol = 1e-14;
        atomic_int stop = 1;
        o.stop = &stop;
        vv_lasso_solve(&st, &o, W, &res);
        CHECKF(res.stop_reason == VV_STOP_USER && res.iterations == 0,
               "%s: a set stop flag stops before the first iteration", sn);
        o.stop = NULL;
        o.max_iter = 7;
        vv_lasso_solve(&st, &o, W, &res);
        CHECKF(res.stop_reason == VV_STOP_MAX_ITER && res.iterations >= 7 && res.iterations <= 8,
               "%s: max_iter stops (%lld iterations)", sn, (long long)res.iterations);
        free(W);
        /* A problem that takes far longer than the limit to reach tol = 0. */
        double *Wb = calloc((size_t)(big.k * big.d), sizeof *Wb);
        o.lambda = 1e-4 * vv_lambda_max(&big);
        o.tol = 0;
        o.max_iter = 0;
        o.max_seconds = 0.05;
        vv_lasso_solve(&big, &o, Wb, &res);
        CHECKF(res.stop_reason == VV_STOP_MAX_SECONDS && res.seconds < 1.0,
               "%s: max_seconds stops (%.3f s)", sn, res.seconds);
        free(Wb);
    }
    /* On a device backend FISTA (and auto from D = 64 on) runs resident, G
     * and Bt uploaded; bcd, adam_prox and auto below D = 64 run on the host. */
    {
        vv_solver sv[] = {VV_SOLVER_FISTA, VV_SOLVER_AUTO, VV_SOLVER_BCD, VV_SOLVER_ADAM_PROX};
        int want_up[] = {1, 0, 0, 0};
        for (unsigned s = 0; s < 4; s++) {
            double *W = calloc((size_t)(st.k * st.d), sizeof *W);
            vv_lasso_opts o;
            vv_lasso_result res;
            vv_lasso_opts_default(&o);
            o.solver = sv[s];
            o.lambda = lambda;
            o.tol = 1e-8;
            o.max_iter = 300000;
            o.max_seconds = 30;
            o.be = sim_dev();
            int64_t up0 = sim_uploads();
            int rc = vv_lasso_solve(&st, &o, W, &res);
            int ups = (int)(sim_uploads() - up0);
            CHECKF(rc == 0 && (ups > 0) == want_up[s] &&
                       (sv[s] == VV_SOLVER_ADAM_PROX || res.stop_reason == VV_STOP_CONVERGED),
                   "device backend, %s (D = 5): %s (%d uploads), %s", vv_solver_name(sv[s]),
                   want_up[s] ? "resident" : "on the host", ups,
                   vv_stop_reason_name(res.stop_reason));
            free(W);
        }
    }
    /* Warm start from the solution: converged at once. */
    vv_lasso_result r1, r2;
    double *W = solve_tight(&st, VV_SOLVER_BCD, lambda, 1e-9, 0, &r1);
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.lambda = lambda;
    o.tol = 1e-9;
    vv_lasso_solve(&st, &o, W, &r2);
    CHECKF(r2.stop_reason == VV_STOP_CONVERGED && r2.iterations == 0,
           "a warm start at the solution converges with no iteration (%lld)",
           (long long)r2.iterations);

    /* adam_prox's gap is a true certificate: P(W) - P* <= gap. */
    double *Wa = calloc((size_t)(st.k * st.d), sizeof *Wa);
    vv_lasso_opts_default(&o);
    o.solver = VV_SOLVER_ADAM_PROX;
    o.lambda = lambda;
    o.mu = 1e-3;
    o.max_iter = 300;
    vv_lasso_result ra;
    vv_lasso_solve(&st, &o, Wa, &ra);
    CHECKF(ra.e.objective - r1.e.objective <= ra.e.gap * (1 + 1e-9) + 1e-15,
           "adam_prox: suboptimality %.3g is bounded by its gap %.3g",
           ra.e.objective - r1.e.objective, ra.e.gap);

    /* Refit: least squares on the support (normal equations hold there). */
    double *Wr = malloc((size_t)(st.k * st.d) * sizeof *Wr);
    CHECK(vv_lasso_refit(&st, W, Wr) == 0, "refit succeeds");
    double *GW = malloc((size_t)(st.k * st.d) * sizeof *GW);
    vv_gram_apply(&st, vv_backend_cpu(), Wr, GW);
    double worst = 0, scale = 0;
    int support_kept = 1;
    for (int64_t c = 0; c < st.k; c++) {
        double wn = 0, rn = 0;
        for (int64_t j = 0; j < st.d; j++) {
            wn += W[c * st.d + j] * W[c * st.d + j];
            rn += Wr[c * st.d + j] * Wr[c * st.d + j];
        }
        if (sqrt(wn) > VV_ACTIVE_TOL) {
            for (int64_t j = 0; j < st.d; j++) {
                worst = fmax(worst, fabs(GW[c * st.d + j] - st.Bt[c * st.d + j]));
                scale = fmax(scale, fabs(st.Bt[c * st.d + j]));
            }
        } else {
            support_kept &= rn == 0;
        }
    }
    CHECKF(worst <= 1e-8 * scale, "refit: G_SS W_S = Bt_S (residual %.2g of %.2g)", worst, scale);
    CHECK(support_kept, "refit: zero outside the support");
    vv_eval e1, e2;
    double *GW1 = malloc((size_t)(st.k * st.d) * sizeof *GW1);
    vv_gram_apply(&st, vv_backend_cpu(), W, GW1);
    vv_gram_eval(&st, W, GW1, lambda, NULL, &e1);
    vv_gram_eval(&st, Wr, GW, lambda, NULL, &e2);
    CHECKF(e2.mse < e1.mse, "refit lowers the mse (%.6g < %.6g)", e2.mse, e1.mse);
    free(GW1);
    free(GW);
    free(Wr);
    free(Wa);
    free(W);

    /* lambda <= 0 and nonsense options are refused. */
    vv_lasso_opts_default(&o);
    o.lambda = -1;
    W = calloc((size_t)(st.k * st.d), sizeof *W);
    CHECK(vv_lasso_solve(&st, &o, W, &r2) < 0, "a negative lambda is refused");
    o.lambda = NAN;
    CHECK(vv_lasso_solve(&st, &o, W, &r2) < 0, "a NaN lambda is refused");
    free(W);
    vv_stats_free(&big);
    vv_stats_free(&st);
    tprob_free(&p);
}

int main(void)
{
    cJSON *man = load_manifest();
    CHECK(man != NULL, "fixture manifest loads");
    if (man)
        fixture_cases(man);
    cJSON_Delete(man);
    stopping_rules();
    resident_blocks();
    return tap_done();
}
