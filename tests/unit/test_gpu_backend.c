/* test_gpu_backend.c - every operation of the backend table on the CUDA
 * backend against its textbook definition (the loops below, the same
 * definitions test_backend.c holds the CPU backend to), with a tolerance per
 * operation; then the device path of a lasso (statistics accumulated on the
 * GPU, FISTA resident there) against plain loops: G, Bt, c, the objective
 * and the optimality conditions of the returned W.  Nothing here calls the
 * CPU backend, so no OpenBLAS is needed at run time and
 * tests/gpu/device-check.sh can build it on a GPU machine that has only a C
 * compiler and nvcc.  Skips (exit 77) when vvd is built without CUDA or the
 * machine has no usable GPU. */
#include "tap.h"
#include "vv/array.h"
#include "vv/backend.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef VV_HAVE_CUDA
int main(void)
{
    tap_skip_all("built without CUDA (meson -Dcuda=enabled needs nvcc)");
}
#else
#include "vv/backend_cuda.h"

static vv_backend *gpu;

/* ---- The definitions ------------------------------------------------------------- */

static void ref_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
                     int64_t lda, const double *b, int64_t ldb, double beta, double *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            long double acc = 0;
            for (int64_t q = 0; q < k; q++)
                acc += (long double)(ta ? a[q * lda + i] : a[i * lda + q]) *
                       (tb ? b[j * ldb + q] : b[q * ldb + j]);
            c[i * ldc + j] = (double)(alpha * acc + beta * (long double)c[i * ldc + j]);
        }
}

static void ref_shrink(int64_t rows, int64_t cols, double *x, double thr, int64_t *active)
{
    *active = 0;
    for (int64_t i = 0; i < rows; i++) {
        double s = 0;
        for (int64_t j = 0; j < cols; j++)
            s += x[i * cols + j] * x[i * cols + j];
        double a = 1 - thr / sqrt(s);
        for (int64_t j = 0; j < cols; j++)
            x[i * cols + j] = a > 0 ? x[i * cols + j] * a : 0;
        *active += a > 0;
    }
}

static double *rnd(int64_t n, unsigned seed)
{
    double *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (double)(seed >> 8) / (double)(1u << 24) - 0.5;
    }
    return p;
}

/* Copies n doubles to the device. */
static double *up(const double *h, int64_t n)
{
    double *d = gpu->ops->alloc(gpu, (size_t)n * sizeof *d);
    gpu->ops->upload(gpu, d, h, (size_t)n * sizeof *d);
    return d;
}

static double *down(const double *d, int64_t n)
{
    double *h = malloc((size_t)n * sizeof *h);
    gpu->ops->download(gpu, h, d, (size_t)n * sizeof *h);
    return h;
}

static double rel(const double *a, const double *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    return d / (s > 0 ? s : 1);
}

/* A lasso through the device path: statistics on the GPU (chunks of 300
 * rows) against the textbook sums, then FISTA resident on the GPU to
 * rel_gap 1e-10, its W graded by plain loops over the rows: the objective
 * it reports, and the optimality conditions M_k = lambda w_k / ||w_k|| on
 * the support and ||M_k|| <= lambda off it (M = Phi^T (Psi - Phi W) / N). */
static void lasso_on_device(void)
{
    int64_t n = 1500, k = 120, d = 70;
    double *phi = rnd(n * k, 31), *psi = rnd(n * d, 32);
    for (int64_t i = 0; i < n * k; i++)
        phi[i] = phi[i] > 0 ? phi[i] : 0; /* post-ReLU */
    for (int64_t i = 0; i < n; i++)
        for (int64_t t = 0; t < d; t++)
            psi[i * d + t] += 2 * phi[i * k + t % 9] - phi[i * k + 40 + t % 5];
    vv_rows *a, *b;
    vv_rows_from_memory("phi", n, k, phi, &a);
    vv_rows_from_memory("psi", n, d, psi, &b);
    vv_stats_opts so = {.chunk_rows = 300, .be = gpu};
    vv_stats st;
    int rc = vv_stats_compute(a, b, &so, &st);
    CHECKF(rc == 0, "statistics on the GPU: %s", rc ? vv_err_detail() : "computed");
    if (rc) {
        vv_rows_free(a);
        vv_rows_free(b);
        free(phi);
        free(psi);
        return;
    }
    double eg = 0, sg = 0, eb = 0, sb = 0, c = 0;
    for (int64_t p = 0; p < k; p++)
        for (int64_t q = 0; q < k; q++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++)
                s += phi[i * k + p] * phi[i * k + q];
            eg = fmax(eg, fabs(st.G[p * k + q] - s));
            sg = fmax(sg, fabs(s));
        }
    for (int64_t p = 0; p < k; p++)
        for (int64_t t = 0; t < d; t++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++)
                s += phi[i * k + p] * psi[i * d + t];
            eb = fmax(eb, fabs(st.Bt[p * d + t] - s));
            sb = fmax(sb, fabs(s));
        }
    for (int64_t i = 0; i < n * d; i++)
        c += psi[i] * psi[i];
    CHECKF(eg <= 1e-13 * sg && eb <= 1e-13 * sb && fabs(st.c - c) <= 1e-13 * c,
           "statistics on the GPU = the textbook sums (G %.1e, Bt %.1e relative)", eg / sg,
           eb / sb);

    double lambda = 0.05 * vv_lambda_max(&st);
    double *W = calloc((size_t)(k * d), sizeof *W);
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.solver = VV_SOLVER_FISTA;
    o.lambda = lambda;
    o.tol = 1e-10;
    o.max_iter = 200000;
    o.max_seconds = 60;
    o.be = gpu;
    vv_lasso_result res;
    rc = vv_lasso_solve(&st, &o, W, &res);
    CHECKF(rc == 0 && res.stop_reason == VV_STOP_CONVERGED,
           "FISTA resident on the GPU: %s, rel_gap %.1e in %lld iterations, %lld active",
           rc ? vv_err_detail() : vv_stop_reason_name(res.stop_reason), res.e.rel_gap,
           (long long)res.iterations, (long long)res.e.active);
    /* The residual R = Psi - Phi W and M = Phi^T R / N, by loops. */
    double *R = malloc((size_t)(n * d) * sizeof *R), r2 = 0, gn = 0, worst = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t t = 0; t < d; t++) {
            double y = psi[i * d + t];
            for (int64_t p = 0; p < k; p++)
                y -= phi[i * k + p] * W[p * d + t];
            R[i * d + t] = y;
            r2 += y * y;
        }
    for (int64_t p = 0; p < k; p++) {
        double wn = 0, mn = 0, dev = 0;
        for (int64_t t = 0; t < d; t++)
            wn += W[p * d + t] * W[p * d + t];
        wn = sqrt(wn);
        gn += wn;
        for (int64_t t = 0; t < d; t++) {
            double m = 0;
            for (int64_t i = 0; i < n; i++)
                m += phi[i * k + p] * R[i * d + t];
            m /= (double)n;
            mn += m * m;
            if (wn > 0)
                dev += (m - lambda * W[p * d + t] / wn) * (m - lambda * W[p * d + t] / wn);
        }
        worst = fmax(worst, wn > 0 ? sqrt(dev) / lambda : fmax(0, sqrt(mn) / lambda - 1));
    }
    double obj = r2 / (2.0 * (double)n) + lambda * gn;
    CHECKF(fabs(obj - res.e.objective) <= 1e-10 * obj,
           "its objective from the rows %.12g = the device's %.12g", obj, res.e.objective);
    CHECKF(worst < 1e-3 && res.e.active > 0 && res.e.active < k,
           "its W satisfies the optimality conditions (violation %.1e lambda; %lld of %lld "
           "neurons active)",
           worst, (long long)res.e.active, (long long)k);
    free(R);
    free(W);
    vv_stats_free(&st);
    vv_rows_free(a);
    vv_rows_free(b);
    free(phi);
    free(psi);
}

int main(void)
{
    int rc = vv_backend_cuda_open(0, &gpu);
    if (rc < 0) {
        char why[600];
        snprintf(why, sizeof why, "no usable CUDA device: %s", vv_err_detail());
        if (getenv("VV_TEST_REQUIRE_DEVICE")) { /* the emulated run must not skip */
            CHECK(0, why);
            return tap_done();
        }
        tap_skip_all(why);
    }
    char name[256];
    size_t fr = 0, tot = 0;
    CHECK(vv_backend_cuda_info(gpu, name, sizeof name, &fr, &tot) == 0 && tot > 0, "device info");
    printf("# %s: %.1f of %.1f GiB free\n", name, fr / 1073741824.0, tot / 1073741824.0);

    int64_t m = 300, n = 200, k = 500;
    double *A = rnd(m * k, 1), *B = rnd(k * n, 2), *C = rnd(m * n, 3);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            double *Cc = malloc((size_t)(m * n) * sizeof *Cc);
            memcpy(Cc, C, (size_t)(m * n) * sizeof *Cc);
            double *dA = up(A, m * k), *dB = up(B, k * n), *dC = up(C, m * n);
            int64_t lda = ta ? m : k, ldb = tb ? k : n;
            ref_gemm(ta, tb, m, n, k, 0.7, A, lda, B, ldb, -0.3, Cc, n);
            rc = gpu->ops->gemm(gpu, ta, tb, m, n, k, 0.7, dA, lda, dB, ldb, -0.3, dC, n);
            double *Cg = down(dC, m * n);
            double e = rel(Cg, Cc, m * n);
            CHECKF(rc == 0 && e < 1e-13, "gemm ta=%d tb=%d: rel err %.1e < 1e-13 (float64)", ta, tb,
                   e);
            gpu->ops->free(gpu, dA);
            gpu->ops->free(gpu, dB);
            gpu->ops->free(gpu, dC);
            free(Cc);
            free(Cg);
        }
    /* syrk_t: the upper triangle (row-major) only. */
    {
        double *G = calloc((size_t)(n * n), sizeof *G), *dX = up(B, k * n);
        double *dG = up(G, n * n);
        ref_gemm(1, 0, n, n, k, 1.0, B, n, B, n, 0.0, G, n);
        rc = gpu->ops->syrk_t(gpu, n, k, 1.0, dX, n, dG);
        double *Gg = down(dG, n * n), e = 0, s = 0;
        int lower_zero = 1;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                if (j >= i) {
                    e = fmax(e, fabs(Gg[i * n + j] - G[i * n + j]));
                    s = fmax(s, fabs(G[i * n + j]));
                } else
                    lower_zero &= Gg[i * n + j] == 0;
            }
        CHECKF(rc == 0 && e / s < 1e-13 && lower_zero,
               "syrk_t: upper triangle rel err %.1e, lower untouched", e / s);
        gpu->ops->free(gpu, dX);
        gpu->ops->free(gpu, dG);
        free(G);
        free(Gg);
    }
    /* row_norms, group_shrink, dot, axpby. */
    {
        double *X = rnd(m * k, 5), *nc = malloc((size_t)m * sizeof *nc);
        for (int64_t i = 0; i < m; i += 3)
            for (int64_t j = 0; j < k; j++)
                X[i * k + j] *= 1e-3; /* rows the shrink zeroes */
        double *dX = up(X, m * k), *dn = gpu->ops->alloc(gpu, (size_t)m * sizeof(double));
        for (int64_t i = 0; i < m; i++) {
            double q = 0;
            for (int64_t j = 0; j < k; j++)
                q += X[i * k + j] * X[i * k + j];
            nc[i] = sqrt(q);
        }
        rc = gpu->ops->row_norms(gpu, m, k, dX, dn);
        double *ng = down(dn, m);
        CHECKF(rc == 0 && rel(ng, nc, m) < 1e-13, "row_norms: rel err %.1e", rel(ng, nc, m));
        int64_t ac = -1, ag = -2;
        double thr = 0.5;
        ref_shrink(m, k, X, thr, &ac);
        rc = gpu->ops->group_shrink(gpu, m, k, dX, thr, 0, &ag);
        double *Xg = down(dX, m * k);
        CHECKF(rc == 0 && ac == ag && ac > 0 && ac < m && rel(Xg, X, m * k) < 1e-13,
               "group_shrink: %lld rows kept on both, rel err %.1e", (long long)ag,
               rel(Xg, X, m * k));
        double dc = 0, dg = 0, *Y = rnd(m * k, 6), *dY = up(Y, m * k);
        for (int64_t i = 0; i < m * k; i++)
            dc += X[i] * Y[i];
        rc = gpu->ops->dot(gpu, m * k, dX, dY, &dg);
        CHECKF(rc == 0 && fabs(dg - dc) <= 1e-12 * (fabs(dc) + 1), "dot: %.15g vs %.15g", dg, dc);
        for (int64_t i = 0; i < m * k; i++)
            Y[i] = 2.5 * X[i] + -0.5 * Y[i];
        rc = gpu->ops->axpby(gpu, m * k, 2.5, dX, -0.5, dY);
        double *Yg = down(dY, m * k);
        /* nvcc contracts a x + b y into one fma: the last bit may differ. */
        CHECKF(rc == 0 && rel(Yg, Y, m * k) < 1e-15, "axpby: rel err %.1e", rel(Yg, Y, m * k));
        /* b == 0 copies a x without reading y (NaN there must not leak). */
        double *Z = malloc((size_t)(m * k) * sizeof *Z);
        for (int64_t i = 0; i < m * k; i++)
            Z[i] = NAN;
        double *dZ = up(Z, m * k);
        rc = gpu->ops->axpby(gpu, m * k, -3.0, dX, 0.0, dZ);
        double *Zg = down(dZ, m * k);
        int zok = rc == 0;
        for (int64_t i = 0; i < m * k; i++)
            zok &= Zg[i] == -3.0 * Xg[i]; /* dX holds the device's shrink, Xg */
        CHECK(zok, "axpby with b = 0 over NaN: y = a x exactly");
        gpu->ops->free(gpu, dZ);
        free(Z);
        free(Zg);
        gpu->ops->free(gpu, dX);
        gpu->ops->free(gpu, dY);
        gpu->ops->free(gpu, dn);
        free(X);
        free(Y);
        free(Xg);
        free(Yg);
        free(nc);
        free(ng);
    }
    /* sgemm and im2col (the model runtime). */
    {
        int64_t M = 64, N = 1000, K = 27;
        float *a = malloc((size_t)(M * K) * 4), *b = malloc((size_t)(K * N) * 4),
              *c = calloc((size_t)(M * N), 4), *cg = malloc((size_t)(M * N) * 4);
        for (int64_t i = 0; i < M * K; i++)
            a[i] = (float)((i * 37) % 101) / 50.0f - 1;
        for (int64_t i = 0; i < K * N; i++)
            b[i] = (float)((i * 53) % 97) / 48.0f - 1;
        float *da = gpu->ops->alloc(gpu, (size_t)(M * K) * 4),
              *db = gpu->ops->alloc(gpu, (size_t)(K * N) * 4),
              *dc = gpu->ops->alloc(gpu, (size_t)(M * N) * 4);
        gpu->ops->upload(gpu, da, a, (size_t)(M * K) * 4);
        gpu->ops->upload(gpu, db, b, (size_t)(K * N) * 4);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0;
                for (int64_t q = 0; q < K; q++)
                    acc += (double)a[i * K + q] * b[q * N + j];
                c[i * N + j] = (float)acc;
            }
        rc = gpu->ops->sgemm(gpu, 0, 0, M, N, K, 1.0f, da, K, db, N, 0.0f, dc, N);
        gpu->ops->download(gpu, cg, dc, (size_t)(M * N) * 4);
        double e = 0, s = 0;
        for (int64_t i = 0; i < M * N; i++) {
            e = fmax(e, fabs(cg[i] - c[i]));
            s = fmax(s, fabs(c[i]));
        }
        CHECKF(rc == 0 && e / s < 1e-5, "sgemm: rel err %.1e < 1e-5 (float32, no TF32)", e / s);
        enum { CC = 3, H = 11, W = 13, KK = 3, ST = 2, P = 1 };
        int oh = (H + 2 * P - KK) / ST + 1, ow = (W + 2 * P - KK) / ST + 1;
        float img[CC * H * W];
        for (int i = 0; i < CC * H * W; i++)
            img[i] = (float)i;
        int64_t nc = (int64_t)CC * KK * KK * oh * ow;
        float *col = malloc((size_t)nc * 4), *colg = malloc((size_t)nc * 4);
        float *dimg = gpu->ops->alloc(gpu, sizeof img),
              *dcol = gpu->ops->alloc(gpu, (size_t)nc * 4);
        gpu->ops->upload(gpu, dimg, img, sizeof img);
        for (int ci = 0; ci < CC; ci++)
            for (int ki = 0; ki < KK; ki++)
                for (int kj = 0; kj < KK; kj++)
                    for (int i = 0; i < oh; i++)
                        for (int j = 0; j < ow; j++) {
                            int y = i * ST - P + ki, x = j * ST - P + kj;
                            col[((ci * KK + ki) * KK + kj) * oh * ow + i * ow + j] =
                                y >= 0 && y < H && x >= 0 && x < W ? img[(ci * H + y) * W + x] : 0;
                        }
        rc = gpu->ops->im2col(gpu, dimg, 1, CC, H, W, KK, ST, P, oh, ow, dcol, oh * ow);
        gpu->ops->download(gpu, colg, dcol, (size_t)nc * 4);
        CHECK(rc == 0 && !memcmp(col, colg, (size_t)nc * 4), "im2col: identical");
        /* Two images at once (the same one twice): each in its own columns. */
        {
            float *dimg2 = gpu->ops->alloc(gpu, 2 * sizeof img),
                  *dcol2 = gpu->ops->alloc(gpu, (size_t)(2 * nc) * 4),
                  *col2 = malloc((size_t)(2 * nc) * 4);
            gpu->ops->upload(gpu, dimg2, img, sizeof img);
            gpu->ops->upload(gpu, dimg2 + CC * H * W, img, sizeof img);
            int64_t ohw = (int64_t)oh * ow;
            int irc = gpu->ops->im2col(gpu, dimg2, 2, CC, H, W, KK, ST, P, oh, ow, dcol2, 2 * ohw);
            gpu->ops->download(gpu, col2, dcol2, (size_t)(2 * nc) * 4);
            int same = irc == 0;
            for (int64_t r = 0; r < CC * KK * KK; r++)
                for (int64_t p = 0; p < ohw; p++)
                    same &= col2[r * 2 * ohw + p] == col[r * ohw + p] &&
                            col2[r * 2 * ohw + ohw + p] == col[r * ohw + p];
            CHECK(same, "im2col of 2 images at once: each image's columns as alone");
            gpu->ops->free(gpu, dimg2);
            gpu->ops->free(gpu, dcol2);
            free(col2);
        }
        gpu->ops->free(gpu, da);
        gpu->ops->free(gpu, db);
        gpu->ops->free(gpu, dc);
        gpu->ops->free(gpu, dimg);
        gpu->ops->free(gpu, dcol);
        free(a);
        free(b);
        free(c);
        free(cg);
        free(col);
        free(colg);
    }
    /* affine_act, pool2d and adaptive_avg (the forward pass's other layers)
     * against their definitions. */
    {
        int64_t nb = 3, ch = 5, hw = 49, nx = nb * ch * hw;
        float *x = malloc((size_t)nx * 4), *ref = malloc((size_t)nx * 4), sc[5], sh[5];
        for (int64_t i = 0; i < nx; i++)
            x[i] = (float)((i * 37) % 101) / 50.0f - 1;
        for (int o = 0; o < 5; o++)
            sc[o] = 0.5f + 0.25f * (float)o, sh[o] = 0.1f * (float)o - 0.2f;
        float *dx = gpu->ops->alloc(gpu, (size_t)nx * 4), *dy = gpu->ops->alloc(gpu, (size_t)nx * 4),
              *dsc = gpu->ops->alloc(gpu, 20), *dsh = gpu->ops->alloc(gpu, 20);
        gpu->ops->upload(gpu, dx, x, (size_t)nx * 4);
        gpu->ops->upload(gpu, dsc, sc, 20);
        gpu->ops->upload(gpu, dsh, sh, 20);
        /* x read in the sgemm's layout: channel o, sample s at o (nb hw) + s hw. */
        for (int64_t s = 0; s < nb; s++)
            for (int64_t o = 0; o < ch; o++)
                for (int64_t p = 0; p < hw; p++) {
                    float v = x[o * nb * hw + s * hw + p] * sc[o] + sh[o];
                    ref[(s * ch + o) * hw + p] = v > 0 ? v : 0;
                }
        int frc = gpu->ops->affine_act(gpu, dx, nb * hw, hw, nb, ch, hw, dsc, dsh, 1, dy);
        float *got = malloc((size_t)nx * 4);
        gpu->ops->download(gpu, got, dy, (size_t)nx * 4);
        double e = 0;
        for (int64_t i = 0; i < nx; i++)
            e = fmax(e, fabs(got[i] - ref[i]));
        CHECKF(frc == 0 && e <= 1e-6, "affine_act (conv layout, scale, shift, ReLU): max err %.1e",
               e);
        /* Pools of 5 x 5 planes (h = w = 7 here: planes of 49), 3 x 3 windows,
         * stride 2, padding 1. */
        int64_t planes = nb * ch;
        int h = 7, w = 7, kw = 3, st = 2, pad = 1, oh = 4, ow = 4;
        for (int is_max = 0; is_max < 2; is_max++) {
            float *pr = malloc((size_t)(planes * oh * ow) * 4), *pg = malloc((size_t)(planes * oh * ow) * 4);
            for (int64_t q = 0; q < planes; q++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++) {
                        float acc = is_max ? -INFINITY : 0;
                        for (int a = 0; a < kw; a++)
                            for (int b = 0; b < kw; b++) {
                                int yy = i * st - pad + a, xx = j * st - pad + b;
                                if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                                    continue;
                                float v = x[q * h * w + yy * w + xx];
                                acc = is_max ? fmaxf(acc, v) : acc + v;
                            }
                        pr[(q * oh + i) * ow + j] = is_max ? acc : acc / (float)(kw * kw);
                    }
            frc = gpu->ops->pool2d(gpu, dx, planes, h, w, kw, st, pad, oh, ow, is_max, dy);
            gpu->ops->download(gpu, pg, dy, (size_t)(planes * oh * ow) * 4);
            e = 0;
            for (int64_t i = 0; i < planes * oh * ow; i++)
                e = fmax(e, fabs(pg[i] - pr[i]));
            CHECKF(frc == 0 && e <= 1e-6, "pool2d %s (3x3, stride 2, pad 1): max err %.1e",
                   is_max ? "max" : "avg", e);
            free(pr);
            free(pg);
        }
        /* Adaptive average pooling 7 x 7 -> 3 x 3 (overlapping windows). */
        {
            float pr[15 * 9], pg[15 * 9];
            for (int64_t q = 0; q < planes; q++)
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) {
                        int h0 = (i * 7) / 3, h1 = ((i + 1) * 7 + 2) / 3;
                        int w0 = (j * 7) / 3, w1 = ((j + 1) * 7 + 2) / 3;
                        double acc = 0;
                        for (int a = h0; a < h1; a++)
                            for (int b = w0; b < w1; b++)
                                acc += x[q * 49 + a * 7 + b];
                        pr[(q * 3 + i) * 3 + j] = (float)(acc / ((h1 - h0) * (w1 - w0)));
                    }
            frc = gpu->ops->adaptive_avg(gpu, dx, planes, 7, 7, 3, 3, dy);
            gpu->ops->download(gpu, pg, dy, sizeof pg);
            e = 0;
            for (int i = 0; i < 15 * 9; i++)
                e = fmax(e, fabs(pg[i] - pr[i]));
            CHECKF(frc == 0 && e <= 1e-6, "adaptive_avg 7x7 -> 3x3: max err %.1e", e);
        }
        gpu->ops->free(gpu, dx);
        gpu->ops->free(gpu, dy);
        gpu->ops->free(gpu, dsc);
        gpu->ops->free(gpu, dsh);
        free(x);
        free(ref);
        free(got);
    }
    /* gather_rows: exact. */
    {
        int64_t rows = 50, cols = 77, idx[5] = {49, 0, 7, 7, 20};
        double *X = rnd(rows * cols, 21), *dX = up(X, rows * cols);
        double *dG = gpu->ops->alloc(gpu, (size_t)(5 * cols) * sizeof(double));
        int grc = gpu->ops->gather_rows(gpu, dX, cols, idx, 5, dG);
        double *g = down(dG, 5 * cols);
        int ok = grc == 0;
        for (int64_t i = 0; i < 5; i++)
            for (int64_t j = 0; j < cols; j++)
                ok &= g[i * cols + j] == X[idx[i] * cols + j];
        CHECK(ok, "gather_rows: rows 49, 0, 7, 7, 20 exactly");
        gpu->ops->free(gpu, dX);
        gpu->ops->free(gpu, dG);
        free(X);
        free(g);
    }
    lasso_on_device();
    /* Out of memory is VV_ENOMEM, and the device stays usable. */
    void *huge = gpu->ops->alloc(gpu, (size_t)1 << 50);
    CHECK(!huge && !vv_backend_cuda_lost(gpu),
          "a 1 PiB allocation fails without losing the device");
    double h[4] = {1, 2, 3, 4}, back[4] = {0};
    double *dh = up(h, 4);
    gpu->ops->download(gpu, back, dh, sizeof back);
    CHECK(!memcmp(h, back, sizeof h), "upload / download round trip after it");
    gpu->ops->free(gpu, dh);
    free(A);
    free(B);
    free(C);
    vv_backend_cuda_close(gpu);
    return tap_done();
}
#endif
