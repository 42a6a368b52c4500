/* test_stats.c - the streaming pass equals the brute-force sums. */
#include "tap.h"
#include "util.h"
#include "vv/err.h"

#include <stdatomic.h>

int main(void)
{
    tprob p;
    tprob_make(&p, 537, 23, 4, 11, 1);
    /* Brute force in the textbook form. */
    int64_t n = p.n, k = p.k, d = p.d;
    double *G = calloc((size_t)(k * k), sizeof *G), *Bt = calloc((size_t)(k * d), sizeof *Bt);
    double c = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t a = 0; a < k; a++)
            for (int64_t b = 0; b < k; b++)
                G[a * k + b] += p.phi[i * k + a] * p.phi[i * k + b];
        for (int64_t j = 0; j < d; j++) {
            double y = p.psi[i * d + j] - p.bias[j];
            c += y * y;
            for (int64_t a = 0; a < k; a++)
                Bt[a * d + j] += p.phi[i * k + a] * y;
        }
    }
    int64_t chunks[] = {1, 7, 64, 536, 537, 0};
    for (unsigned t = 0; t < sizeof chunks / sizeof *chunks; t++) {
        vv_stats st;
        int rc = tprob_stats(&p, chunks[t], &st);
        CHECKF(rc == 0, "chunk %lld: pass succeeds", (long long)chunks[t]);
        if (rc)
            continue;
        CHECKF(st.n == n && st.k == k && st.d == d, "chunk %lld: sizes", (long long)chunks[t]);
        CHECKF(max_rel_diff(st.G, G, k * k) < 1e-13, "chunk %lld: G = Phi^T Phi",
               (long long)chunks[t]);
        CHECKF(max_rel_diff(st.Bt, Bt, k * d) < 1e-13, "chunk %lld: Bt = Phi^T (Psi - b)",
               (long long)chunks[t]);
        CHECKF(fabs(st.c - c) <= 1e-13 * c, "chunk %lld: c = ||Psi - b||^2", (long long)chunks[t]);
        int sym = 1;
        for (int64_t a = 0; a < k; a++)
            for (int64_t b = 0; b < k; b++)
                sym &= st.G[a * k + b] == st.G[b * k + a];
        CHECKF(sym, "chunk %lld: G exactly symmetric", (long long)chunks[t]);
        vv_stats_free(&st);
    }

    /* On a device backend (the simulated one) the chunks go up and G, Bt
     * accumulate there: the same statistics, and nothing left allocated. */
    {
        vv_rows *a, *b;
        vv_rows_from_memory("phi", n, k, p.phi, &a);
        vv_rows_from_memory("psi", n, d, p.psi, &b);
        vv_stats_opts o = {.chunk_rows = 100, .bias = p.bias, .be = sim_dev()};
        vv_stats st;
        int64_t up0 = sim_uploads();
        int rc = vv_stats_compute(a, b, &o, &st);
        size_t used = 1;
        vv_backend_sim_counts(sim_dev(), NULL, &used);
        CHECKF(rc == 0 && sim_uploads() - up0 == 2 + 2 * 6 && used == 0,
               "device backend: G, Bt and 6 chunks of (Phi, Psi) uploaded (%lld uploads), "
               "%zu bytes left allocated", (long long)(sim_uploads() - up0), used);
        CHECK(rc == 0 && max_rel_diff(st.G, G, k * k) < 1e-13 &&
                  max_rel_diff(st.Bt, Bt, k * d) < 1e-13 && fabs(st.c - c) <= 1e-13 * c,
              "device backend: G, Bt, c as the textbook sums");
        vv_stats_free(&st);
        vv_rows_free(a);
        vv_rows_free(b);
    }

    /* Mismatched N. */
    vv_rows *a, *b;
    vv_rows_from_memory("phi-mem", n, k, p.phi, &a);
    vv_rows_from_memory("psi-mem", n - 1, d, p.psi, &b);
    vv_stats st;
    int rc = vv_stats_compute(a, b, NULL, &st);
    CHECK(rc == VV_ESHAPE, "different N in phi and psi is a shape error");
    CHECK(strstr(vv_err_detail(), "phi-mem") && strstr(vv_err_detail(), "psi-mem"),
          "the error names both sources");
    vv_rows_free(b);

    /* NaN in psi. */
    p.psi[300 * d + 2] = NAN;
    vv_rows_from_memory("psi-mem", n, d, p.psi, &b);
    rc = vv_stats_compute(a, b, NULL, &st);
    CHECK(rc == VV_ENONFINITE, "NaN in psi is reported");
    CHECK(strstr(vv_err_detail(), "psi-mem") != NULL, "the NaN error names the source");
    p.psi[300 * d + 2] = 0;

    /* Stop flag. */
    atomic_int stop = 1;
    vv_stats_opts o = {.stop = &stop};
    rc = vv_stats_compute(a, b, &o, &st);
    CHECK(rc == VV_ESTATE, "a set stop flag ends the pass");
    vv_rows_free(a);
    vv_rows_free(b);

    /* The synthetic problem is the same whatever the chunking. */
    vv_rows *sp, *sy;
    vv_stats s1, s2;
    vv_synth_open(1000, 16, 3, 5, &sp, &sy);
    vv_stats_opts o1 = {.chunk_rows = 1000}, o2 = {.chunk_rows = 97};
    int ok = vv_stats_compute(sp, sy, &o1, &s1) == 0;
    vv_rows_free(sp);
    vv_rows_free(sy);
    vv_synth_open(1000, 16, 3, 5, &sp, &sy);
    ok &= vv_stats_compute(sp, sy, &o2, &s2) == 0;
    CHECK(ok, "synthetic statistics computed");
    if (ok) {
        CHECK(max_rel_diff(s1.G, s2.G, 16 * 16) < 1e-13 && fabs(s1.c - s2.c) < 1e-12 * s1.c,
              "synthetic rows do not depend on the chunking");
        int relu = 1;
        for (int i = 0; i < 16; i++)
            relu &= s1.G[i * 16 + i] >= 0;
        CHECK(relu && vv_lambda_max(&s1) > 0, "synthetic features are a non-trivial problem");
    }
    vv_stats_free(&s1);
    vv_stats_free(&s2);
    vv_stats_free(NULL);
    vv_rows_free(sp);
    vv_rows_free(sy);

    free(G);
    free(Bt);
    tprob_free(&p);
    return tap_done();
}
