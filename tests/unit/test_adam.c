/* test_adam.c - adam_prox follows the paper's method as PyTorch runs it
 * (committed float64 trajectory, tests/fixtures/gen_lasso_fixtures.py). */
#include "tap.h"
#include "util.h"

#include <cjson/cJSON.h>

typedef struct traj {
    double mse[64], gn[64];
    int n;
} traj;

static int on_metric(void *ctx, const vv_metrics *m)
{
    traj *t = ctx;
    if (m->step < 64) {
        t->mse[m->step] = m->e.mse;
        t->gn[m->step] = m->e.group_norm;
        if (m->step + 1 > t->n)
            t->n = (int)m->step + 1;
    }
    return 0;
}

int main(void)
{
    FILE *f = fopen(fixture("lasso/manifest.json"), "rb");
    static char buf[1 << 20];
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[len] = 0;
    cJSON *man = cJSON_Parse(buf), *a = cJSON_GetObjectItem(man, "adam");
    CHECK(a != NULL, "adam fixture present");
    if (!a)
        return tap_done();
    char rel[256];
    tprob p = {0};
    int64_t r, c1;
#define LOAD(key, dst, rows, cols)                                                                 \
    snprintf(rel, sizeof rel, "lasso/%s", cJSON_GetObjectItem(a, key)->valuestring);               \
    dst = load_npy(fixture(rel), rows, cols)
    LOAD("phi", p.phi, &p.n, &p.k);
    LOAD("psi", p.psi, &r, &p.d);
    LOAD("bias", p.bias, &r, &c1);
    double *V0, *V50;
    int64_t vd, vk;
    LOAD("V0", V0, &vd, &vk);
    LOAD("V_final", V50, &vd, &vk);
    CHECK(p.phi && p.psi && p.bias && V0 && V50 && vd == p.d && vk == p.k, "fixture arrays load");
    vv_stats st;
    tprob_stats(&p, 0, &st);
    int64_t k = st.k, d = st.d;
    double mu = cJSON_GetObjectItem(a, "mu")->valuedouble;
    double lam_paper = cJSON_GetObjectItem(a, "lambda_paper")->valuedouble;
    int steps = cJSON_GetObjectItem(a, "steps")->valueint;
    double *W = malloc((size_t)(k * d) * sizeof *W);
    for (int64_t i = 0; i < d; i++)
        for (int64_t c = 0; c < k; c++)
            W[c * d + i] = V0[i * k + c];
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.solver = VV_SOLVER_ADAM_PROX;
    o.mu = mu;
    o.lambda = lam_paper * (double)d / 2; /* the canonical lambda of the paper's lam */
    o.tol = 0;
    o.max_iter = steps;
    traj t = {0};
    o.on_metric = on_metric;
    o.ctx = &t;
    vv_lasso_result res;
    CHECK(vv_lasso_solve(&st, &o, W, &res) == 0 && res.iterations == steps, "50 iterations run");
    CHECK(t.n == steps + 1, "one report per iterate, the start included");
    cJSON *jm = cJSON_GetObjectItem(a, "mse"), *jg = cJSON_GetObjectItem(a, "group_norm");
    double worst_m = 0, worst_g = 0;
    for (int i = 0; i <= steps && i < t.n; i++) {
        double em = cJSON_GetArrayItem(jm, i)->valuedouble, eg = cJSON_GetArrayItem(jg, i)->valuedouble;
        worst_m = fmax(worst_m, fabs(t.mse[i] - em) / fabs(em));
        worst_g = fmax(worst_g, fabs(t.gn[i] - eg) / fabs(eg));
    }
    CHECKF(worst_m <= 1e-5, "MSE trajectory matches PyTorch (worst relative difference %.2g)",
           worst_m);
    CHECKF(worst_g <= 1e-5, "group-norm trajectory matches PyTorch (worst %.2g)", worst_g);
    double worst_v = 0, vmax = 0;
    for (int64_t i = 0; i < d; i++)
        for (int64_t c = 0; c < k; c++) {
            worst_v = fmax(worst_v, fabs(W[c * d + i] - V50[i * k + c]));
            vmax = fmax(vmax, fabs(V50[i * k + c]));
        }
    CHECKF(worst_v <= 1e-5 * vmax, "V after 50 steps matches PyTorch (max diff %.2g of %.2g)",
           worst_v, vmax);
    int zeros_match = 1;
    for (int64_t c = 0; c < k; c++) {
        double a1 = 0, a2 = 0;
        for (int64_t i = 0; i < d; i++) {
            a1 += fabs(W[c * d + i]);
            a2 += fabs(V50[i * k + c]);
        }
        zeros_match &= (a1 == 0) == (a2 == 0);
    }
    CHECK(zeros_match, "the same neurons are zeroed as in PyTorch");
    CHECK(res.e.gap > 0 && isfinite(res.e.rel_gap), "the gap is reported for adam_prox");
    free(W);
    free(V0);
    free(V50);
    vv_stats_free(&st);
    tprob_free(&p);
    cJSON_Delete(man);
    return tap_done();
}
