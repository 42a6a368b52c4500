/* test_gram.c - the Gram-form objective, gap and constants equal the ones
 * computed directly from Phi and Psi. */
#include "tap.h"
#include "util.h"

#include "vv/blas.h"

int main(void)
{
    tprob p;
    tprob_make(&p, 211, 17, 3, 3, 1);
    vv_stats st;
    CHECK(tprob_stats(&p, 50, &st) == 0, "statistics");
    int64_t n = p.n, k = p.k, d = p.d;
    double *W = malloc((size_t)(k * d) * sizeof *W), *GW = malloc((size_t)(k * d) * sizeof *GW);
    double *R = malloc((size_t)(n * d) * sizeof *R), *mn = malloc((size_t)k * sizeof *mn);
    vv_rng r;
    vv_rng_seed(&r, 99);
    double lmax = vv_lambda_max(&st);
    for (int trial = 0; trial < 6; trial++) {
        /* Random iterates, some sparse. */
        for (int64_t i = 0; i < k * d; i++)
            W[i] = (trial % 2 && (i / d) % 3) ? 0 : 0.3 * vv_rng_normal(&r);
        double lambda = lmax * (0.02 + 0.3 * trial);
        vv_gram_apply(&st, vv_backend_cpu(), W, GW);
        vv_eval e;
        vv_gram_eval(&st, W, GW, lambda, mn, &e);
        /* Direct: residual, primal, the rescaled dual point theta = s R / N. */
        double r2 = 0, gn = 0, active = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++) {
                double a = p.psi[i * d + j] - p.bias[j];
                for (int64_t c = 0; c < k; c++)
                    a -= p.phi[i * k + c] * W[c * d + j];
                R[i * d + j] = a;
                r2 += a * a;
            }
        for (int64_t c = 0; c < k; c++) {
            double q = 0;
            for (int64_t j = 0; j < d; j++)
                q += W[c * d + j] * W[c * d + j];
            gn += sqrt(q);
            active += sqrt(q) > 1e-7;
        }
        double primal = r2 / (2.0 * n) + lambda * gn;
        double mmax = 0;
        int mn_ok = 1;
        for (int64_t c = 0; c < k; c++) {
            double q = 0;
            for (int64_t j = 0; j < d; j++) {
                double a = 0;
                for (int64_t i = 0; i < n; i++)
                    a += p.phi[i * k + c] * R[i * d + j];
                q += a * a;
            }
            double m = sqrt(q) / n;
            mn_ok &= fabs(m - mn[c]) <= 1e-10 * fmax(1, m);
            mmax = fmax(mmax, m);
        }
        double s = fmin(1.0, lambda / mmax);
        /* D(theta) = 1/(2N) ||Y||^2 - N/2 ||Y/N - theta||^2 with theta = s R / N. */
        double yy = 0, dd = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++) {
                double y = p.psi[i * d + j] - p.bias[j];
                yy += y * y;
                double t = y / n - s * R[i * d + j] / n;
                dd += t * t;
            }
        double dual = yy / (2.0 * n) - n / 2.0 * dd;
        CHECKF(tap_close(e.objective, primal, 1e-11), "trial %d: objective %.12g = direct %.12g",
               trial, e.objective, primal);
        CHECKF(fabs(e.gap - (primal - dual)) <= 1e-10 * fmax(1, primal),
               "trial %d: gap %.6g = direct %.6g", trial, e.gap, primal - dual);
        CHECKF(e.gap >= -1e-12, "trial %d: gap is non-negative", trial);
        CHECKF(tap_close(e.mse, r2 / (n * d), 1e-11), "trial %d: mse is the mean over N*D",
               trial);
        CHECKF(e.active == (int64_t)active && tap_close(e.group_norm, gn, 1e-12),
               "trial %d: active and group norm", trial);
        CHECKF(mn_ok, "trial %d: ||M_k|| = ||Phi_k^T R|| / N for every k", trial);
        CHECKF(tap_close(e.dual_scale, s, 1e-12), "trial %d: dual scaling", trial);
    }

    /* lambda_max: at and above it V = 0 is optimal (zero gap), below it is not. */
    memset(W, 0, (size_t)(k * d) * sizeof *W);
    memset(GW, 0, (size_t)(k * d) * sizeof *GW);
    vv_eval e;
    vv_gram_eval(&st, W, GW, lmax * 1.000001, NULL, &e);
    CHECK(fabs(e.gap) < 1e-12 * e.objective, "V = 0 has zero gap at lambda_max");
    vv_gram_eval(&st, W, GW, lmax * 0.9, NULL, &e);
    CHECK(e.gap > 1e-6 * e.objective, "V = 0 has a positive gap below lambda_max");

    /* Lipschitz constant vs the largest eigenvalue from LAPACK. */
    double *A = malloc((size_t)(k * k) * sizeof *A), *ev = malloc((size_t)k * sizeof *ev);
    memcpy(A, st.G, (size_t)(k * k) * sizeof *A);
    int info = vv_dsyev((int)k, A, ev);
    double L = vv_lipschitz(&st), top = ev[k - 1] / n;
    CHECKF(info == 0 && L >= top && L <= 1.02 * top, "L = %.8g bounds lambda_max(G)/N = %.8g by <= 2%%",
           L, top);
    free(A);
    free(ev);
    free(W);
    free(GW);
    free(R);
    free(mn);
    vv_stats_free(&st);
    tprob_free(&p);
    return tap_done();
}
