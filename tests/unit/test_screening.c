/* test_screening.c - Gap Safe screening never removes a neuron that is
 * nonzero in a solution solved to 1e-12 without screening. */
#include "tap.h"
#include "util.h"

int main(void)
{
    struct {
        int64_t n, k, d;
        uint64_t seed;
    } probs[] = {{400, 60, 4, 1}, {300, 120, 10, 2}, {500, 40, 1, 3}};
    double ratios[] = {0.5, 0.2, 0.05, 0.01};
    for (unsigned q = 0; q < sizeof probs / sizeof *probs; q++) {
        tprob p;
        tprob_make(&p, probs[q].n, probs[q].k, probs[q].d, probs[q].seed, 1);
        vv_stats st;
        tprob_stats(&p, 0, &st);
        int64_t k = st.k, d = st.d;
        double lmax = vv_lambda_max(&st);
        double *GW = malloc((size_t)(k * d) * sizeof *GW), *mn = malloc((size_t)k * sizeof *mn);
        double *Wp = malloc((size_t)(k * d) * sizeof *Wp);
        vv_rng r;
        vv_rng_seed(&r, 7 + q);
        for (unsigned t = 0; t < sizeof ratios / sizeof *ratios; t++) {
            double lambda = ratios[t] * lmax;
            vv_lasso_result ref;
            double *Ws = solve_tight(&st, VV_SOLVER_BCD, lambda, 1e-12, 1, &ref);
            CHECKF(Ws && ref.e.rel_gap <= 1e-12, "problem %u ratio %g: reference solved to %.2g",
                   q, ratios[t], Ws ? ref.e.rel_gap : -1.0);
            if (!Ws)
                continue;
            int64_t wrong = 0, screened = 0, zeros = 0;
            /* Iterates of every quality: exact, perturbed, early solves. */
            for (int v = 0; v < 24; v++) {
                double *W = Wp;
                if (v < 8) {
                    double scale = pow(10.0, -v);
                    for (int64_t i = 0; i < k * d; i++)
                        Wp[i] = Ws[i] + scale * 0.1 * vv_rng_normal(&r);
                } else if (v < 16) {
                    vv_lasso_result rr;
                    double *Wi = solve_tight(&st, v % 2 ? VV_SOLVER_FISTA : VV_SOLVER_BCD, lambda,
                                             pow(10.0, -(v - 8)), 1, &rr);
                    memcpy(Wp, Wi, (size_t)(k * d) * sizeof *Wp);
                    free(Wi);
                } else {
                    /* Sparse perturbations: the optimum with some columns zeroed. */
                    memcpy(Wp, Ws, (size_t)(k * d) * sizeof *Wp);
                    for (int64_t c = 0; c < k; c++)
                        if (vv_rng_uniform(&r) < 0.2)
                            memset(Wp + c * d, 0, (size_t)d * sizeof *Wp);
                }
                vv_gram_apply(&st, vv_backend_cpu(), W, GW);
                vv_eval e;
                vv_gram_eval(&st, W, GW, lambda, mn, &e);
                for (int64_t c = 0; c < k; c++) {
                    double q2 = 0;
                    for (int64_t j = 0; j < d; j++)
                        q2 += Ws[c * d + j] * Ws[c * d + j];
                    int nonzero = sqrt(q2) > 0;
                    zeros += !nonzero;
                    if (vv_gap_safe_screened(&st, &e, lambda, mn[c], c)) {
                        screened++;
                        wrong += nonzero;
                    }
                }
            }
            CHECKF(wrong == 0, "problem %u ratio %g: no nonzero neuron screened (%lld screened)",
                   q, ratios[t], (long long)screened);
            /* Not vacuous: at the solution itself most zero neurons are screened. */
            vv_gram_apply(&st, vv_backend_cpu(), Ws, GW);
            vv_eval es;
            vv_gram_eval(&st, Ws, GW, lambda, mn, &es);
            int64_t at_opt = 0, zero_opt = 0;
            for (int64_t c = 0; c < k; c++) {
                double q2 = 0;
                for (int64_t j = 0; j < d; j++)
                    q2 += Ws[c * d + j] * Ws[c * d + j];
                zero_opt += q2 == 0;
                at_opt += vv_gap_safe_screened(&st, &es, lambda, mn[c], c);
            }
            CHECKF(screened > 0 && 2 * at_opt >= zero_opt,
                   "problem %u ratio %g: the rule is not vacuous (%lld of %lld zero neurons "
                   "screened at the solution)",
                   q, ratios[t], (long long)at_opt, (long long)zero_opt);
            /* Screening changes nothing in the answer. */
            vv_lasso_result rs;
            double *Wsc = solve_tight(&st, VV_SOLVER_BCD, lambda, 1e-12, 0, &rs);
            CHECKF(fabs(rs.e.objective - ref.e.objective) <= 1e-11 * ref.e.objective,
                   "problem %u ratio %g: same objective with screening", q, ratios[t]);
            free(Wsc);
            free(Ws);
        }
        free(GW);
        free(mn);
        free(Wp);
        vv_stats_free(&st);
        tprob_free(&p);
    }
    return tap_done();
}
