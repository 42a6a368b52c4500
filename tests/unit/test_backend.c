/* test_backend.c - every backend operation against a textbook loop.
 * (The CUDA backend, when built and a GPU is present, is compared with the
 * CPU one by tests/gpu; here the CPU backend is checked against loops.) */
#include "tap.h"
#include "util.h"
#include "vv/backend.h"
#include "vv/err.h"

static double maxdiff(const double *a, const double *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* The simulated device: its memory budget, its sticky fault, and the
 * resident solver failing cleanly on both. */
static void simulated_device(void)
{
    vv_backend *be;
    vv_sim_opts so = {.memory = 1 << 20};
    CHECK(vv_backend_sim_open(&so, &be) == 0 && vv_backend_is_device(be) &&
              !vv_backend_is_device(vv_backend_cpu()),
          "sim: opens, and is a device (the CPU backend is not)");
    void *a = be->ops->alloc(be, 600 << 10), *b = be->ops->alloc(be, 600 << 10);
    CHECK(a && !b && strstr(vv_err_detail(), "sim: out of memory"),
          "sim: an allocation past the budget fails, saying out of memory");
    size_t fr = 0, tot = 0;
    char name[64];
    CHECK(be->ops->info(be, name, sizeof name, &fr, &tot) == 0 && tot == 1 << 20 &&
              fr == (1 << 20) - (600 << 10),
          "sim: info reports total and free memory");
    be->ops->free(be, a);

    /* A lasso whose G and iterates do not fit: the solve fails with a clear
     * message and frees what it took. */
    tprob p;
    tprob_make(&p, 500, 400, 8, 3, 0); /* G alone is 1.25 MiB */
    vv_stats st;
    tprob_stats(&p, 0, &st);
    double *W = calloc((size_t)(st.k * st.d), sizeof *W);
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.solver = VV_SOLVER_FISTA;
    o.lambda = 0.1 * vv_lambda_max(&st);
    o.be = be;
    vv_lasso_result res;
    int rc = vv_lasso_solve(&st, &o, W, &res);
    size_t used = 1;
    vv_backend_sim_counts(be, NULL, &used);
    CHECKF(rc == VV_ENOMEM && strstr(vv_err_detail(), "cannot hold G") && used == 0,
           "sim: fista with G past the budget fails (%s), nothing left allocated",
           vv_err_detail());
    be->ops->close(be);

    /* A sticky fault in the middle of a solve: VV_EDEVICE, the device is lost
     * and every later operation fails. */
    so = (vv_sim_opts){.memory = 1 << 30, .fail_after = 200};
    vv_backend_sim_open(&so, &be);
    o.be = be;
    memset(W, 0, (size_t)(st.k * st.d) * sizeof *W);
    rc = vv_lasso_solve(&st, &o, W, &res);
    vv_backend_sim_counts(be, NULL, &used);
    CHECKF(rc == VV_EDEVICE && be->ops->lost(be) && strstr(vv_err_detail(), "illegal") &&
               used == 0,
           "sim: a fault mid-solve fails it with VV_EDEVICE (%s); lost; nothing left allocated",
           vv_err_detail());
    CHECK(be->ops->alloc(be, 8) == NULL && be->ops->info(be, NULL, 0, NULL, NULL) < 0,
          "sim: after the fault every operation fails");
    be->ops->close(be);
    free(W);
    vv_stats_free(&st);
    tprob_free(&p);
}

int main(void)
{
    simulated_device();
    vv_backend *be = vv_backend_cpu();
    CHECK(be && be->ops && !strcmp(be->ops->name, "cpu"), "the CPU backend exists");
    vv_rng r;
    vv_rng_seed(&r, 5);
    int64_t m = 13, n = 9, k = 17;
    double *A = be->ops->alloc(be, (size_t)(m * k) * sizeof(double) + 64);
    double *B = be->ops->alloc(be, (size_t)(m * k + k * n) * sizeof(double));
    double *C = be->ops->alloc(be, (size_t)(m * n) * sizeof(double));
    double *R = malloc((size_t)(m * n) * sizeof(double));
    CHECK(A && B && C && R, "alloc");
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        for (int64_t i = 0; i < m * k; i++)
            A[i] = vv_rng_normal(&r);
        for (int64_t i = 0; i < m * k + k * n; i++)
            B[i] = vv_rng_normal(&r);
        for (int64_t i = 0; i < m * n; i++)
            C[i] = R[i] = vv_rng_normal(&r);
        int64_t lda = ta ? m : k, ldb = tb ? k : n;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t l = 0; l < k; l++)
                    s += (ta ? A[l * lda + i] : A[i * lda + l]) * (tb ? B[j * ldb + l] : B[l * ldb + j]);
                R[i * n + j] = 0.7 * s - 0.3 * R[i * n + j];
            }
        be->ops->gemm(be, ta, tb, m, n, k, 0.7, A, lda, B, ldb, -0.3, C, n);
        CHECKF(maxdiff(C, R, m * n) < 1e-12, "gemm ta=%d tb=%d", ta, tb);
    }
    /* syrk_t: C += alpha A^T A on the upper triangle. */
    double *S = calloc((size_t)(k * k), sizeof *S), *SR = calloc((size_t)(k * k), sizeof *SR);
    be->ops->syrk_t(be, k, m, 2.0, A, k, S);
    int lower_untouched = 1;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t l = 0; l < m; l++)
                s += A[l * k + i] * A[l * k + j];
            SR[i * k + j] = j >= i ? 2 * s : 0;
            if (j < i)
                lower_untouched &= S[i * k + j] == 0;
        }
    double sd = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = i; j < k; j++)
            sd = fmax(sd, fabs(S[i * k + j] - SR[i * k + j]));
    CHECK(sd < 1e-12 && lower_untouched, "syrk_t updates the upper triangle with A^T A");
    /* row norms, group shrink, dot, axpby */
    double norms[13], ref[13];
    be->ops->row_norms(be, m, k, A, norms);
    for (int64_t i = 0; i < m; i++) {
        double s = 0;
        for (int64_t j = 0; j < k; j++)
            s += A[i * k + j] * A[i * k + j];
        ref[i] = sqrt(s);
    }
    CHECK(maxdiff(norms, ref, m) < 1e-12, "row_norms");
    double thr = ref[0] * 0.9 + ref[1] * 0.1;
    double *X = malloc((size_t)(m * k) * sizeof *X);
    memcpy(X, A, (size_t)(m * k) * sizeof *X);
    int64_t act = -1;
    be->ops->group_shrink(be, m, k, X, thr, 0.0, &act);
    int64_t ract = 0;
    int ok = 1;
    for (int64_t i = 0; i < m; i++) {
        double f = ref[i] > thr ? 1 - thr / ref[i] : 0;
        ract += f > 0;
        for (int64_t j = 0; j < k; j++)
            ok &= fabs(X[i * k + j] - f * A[i * k + j]) < 1e-12;
    }
    CHECKF(ok && act == ract, "group_shrink is the block soft-threshold (%lld rows kept)",
           (long long)act);
    memcpy(X, A, (size_t)(m * k) * sizeof *X);
    be->ops->group_shrink(be, m, k, X, 0.5, 1e-8, NULL);
    ok = 1;
    for (int64_t i = 0; i < m; i++) {
        double f = fmax(0, 1 - 0.5 / (ref[i] + 1e-8));
        for (int64_t j = 0; j < k; j++)
            ok &= fabs(X[i * k + j] - f * A[i * k + j]) < 1e-12;
    }
    CHECK(ok, "group_shrink with the paper's eps");
    double dt, dref = 0;
    be->ops->dot(be, m * k, A, X, &dt);
    for (int64_t i = 0; i < m * k; i++)
        dref += A[i] * X[i];
    CHECK(fabs(dt - dref) < 1e-10, "dot");
    memcpy(X, A, (size_t)(m * k) * sizeof *X);
    be->ops->axpby(be, m * k, 2.0, B, -1.0, X);
    ok = 1;
    for (int64_t i = 0; i < m * k; i++)
        ok &= X[i] == 2.0 * B[i] - A[i];
    CHECK(ok, "axpby");
    for (int64_t i = 0; i < m * k; i++)
        X[i] = NAN;
    be->ops->axpby(be, m * k, -3.0, B, 0.0, X);
    ok = 1;
    for (int64_t i = 0; i < m * k; i++)
        ok &= X[i] == -3.0 * B[i];
    CHECK(ok, "axpby with b = 0 does not read y (NaN there): y = a x exactly");
    {
        int64_t idx[4] = {3, 0, 3, 12};
        double *G4 = malloc((size_t)(4 * k) * sizeof *G4);
        be->ops->gather_rows(be, A, k, idx, 4, G4);
        ok = 1;
        for (int64_t i = 0; i < 4; i++)
            for (int64_t j = 0; j < k; j++)
                ok &= G4[i * k + j] == A[idx[i] * k + j];
        CHECK(ok, "gather_rows: rows 3, 0, 3, 12 in that order");
        free(G4);
    }
    /* sgemm against the triple loop, every transpose. */
    {
        int64_t M = 7, N = 5, K = 9;
        float fa[63], fb[45], fc[35], fr[35];
        for (int i = 0; i < 63; i++)
            fa[i] = (float)((i * 37) % 11) / 7.0f - 0.5f;
        for (int i = 0; i < 45; i++)
            fb[i] = (float)((i * 17) % 13) / 5.0f - 1.0f;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                for (int i = 0; i < 35; i++)
                    fc[i] = fr[i] = (float)i / 10.0f;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double acc = 0;
                        for (int64_t q = 0; q < K; q++)
                            acc += (double)(ta ? fa[q * M + i] : fa[i * K + q]) *
                                   (tb ? fb[j * K + q] : fb[q * N + j]);
                        fr[i * N + j] = (float)(0.5 * acc - 2.0 * fr[i * N + j]);
                    }
                be->ops->sgemm(be, ta, tb, M, N, K, 0.5f, fa, ta ? M : K, fb, tb ? K : N, -2.0f,
                               fc, N);
                double md = 0;
                for (int i = 0; i < 35; i++)
                    md = fabs(fc[i] - fr[i]) > md ? fabs(fc[i] - fr[i]) : md;
                CHECKF(md < 1e-5, "sgemm ta=%d tb=%d (max diff %.1e)", ta, tb, md);
            }
    }
    /* im2col against its definition, with stride and padding. */
    {
        enum { CC = 2, H = 5, W = 6, KK = 3, ST = 2, P = 1 };
        int oh = (H + 2 * P - KK) / ST + 1, ow = (W + 2 * P - KK) / ST + 1;
        float img[CC * H * W], col[CC * KK * KK * 12];
        for (int i = 0; i < CC * H * W; i++)
            img[i] = (float)i + 1;
        be->ops->im2col(be, img, 1, CC, H, W, KK, ST, P, oh, ow, col, oh * ow);
        int same = 1;
        for (int ci = 0; ci < CC; ci++)
            for (int ki = 0; ki < KK; ki++)
                for (int kj = 0; kj < KK; kj++)
                    for (int i = 0; i < oh; i++)
                        for (int j = 0; j < ow; j++) {
                            int y = i * ST - P + ki, x = j * ST - P + kj;
                            float want = y >= 0 && y < H && x >= 0 && x < W
                                             ? img[(ci * H + y) * W + x]
                                             : 0.0f;
                            same &= col[((ci * KK + ki) * KK + kj) * oh * ow + i * ow + j] == want;
                        }
        CHECKF(same, "im2col of a %dx%dx%d image, kernel %d, stride %d, padding %d", CC, H, W, KK,
               ST, P);
    }
    double h[4] = {1, 2, 3, 4}, back[4];
    double *dev = be->ops->alloc(be, sizeof h);
    be->ops->upload(be, dev, h, sizeof h);
    be->ops->download(be, back, dev, sizeof h);
    CHECK(!memcmp(h, back, sizeof h), "upload / download round trip");
    be->ops->free(be, dev);
    be->ops->free(be, NULL);
    be->ops->free(be, A);
    be->ops->free(be, B);
    be->ops->free(be, C);
    free(R);
    free(S);
    free(SR);
    free(X);
    return tap_done();
}
