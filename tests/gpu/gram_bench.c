/* gram_bench.c - the sufficient statistics of an AlexNet-first-layer-sized
 * problem accumulated on the GPU while the features stream through
 * (tests/gpu/device-check.sh): N = 50000 samples of K = 9216 synthetic
 * post-ReLU features and D = 4096 outputs, in chunks of 2048 rows; G = Phi^T
 * Phi (syrk) and Bt = Phi^T Psi (gemm) in float64 on the device.  Prints the
 * time of each phase and the achieved GFLOP/s, and checks one entry of G
 * and of Bt against the host.
 *
 *   gram_bench [N K D] */
#include "vv/backend_cuda.h"
#include "vv/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double feature(int64_t i, int64_t j)
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ (uint64_t)j * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    double u = (double)(x >> 11) / 9007199254740992.0 - 0.4;
    return u > 0 ? u : 0; /* post-ReLU: about 60% zeros */
}

int main(int argc, char **argv)
{
    int64_t n = argc > 3 ? atoll(argv[1]) : 50000, k = argc > 3 ? atoll(argv[2]) : 9216,
            d = argc > 3 ? atoll(argv[3]) : 4096, chunk = 2048;
    vv_backend *be;
    if (vv_backend_cuda_open(0, &be) < 0) {
        fprintf(stderr, "gram_bench: %s\n", vv_err_detail());
        return 77;
    }
    double *hx = malloc((size_t)(chunk * k) * sizeof *hx), *hy = malloc((size_t)(chunk * d) * 8);
    double *G = be->ops->alloc(be, (size_t)(k * k) * 8),
           *Bt = be->ops->alloc(be, (size_t)(k * d) * 8);
    double *X = be->ops->alloc(be, (size_t)(chunk * k) * 8),
           *Y = be->ops->alloc(be, (size_t)(chunk * d) * 8);
    if (!hx || !hy || !G || !Bt || !X || !Y) {
        fprintf(stderr, "gram_bench: out of memory: %s\n", vv_err_detail());
        return 1;
    }
    double *zero = calloc((size_t)(k > d ? k : d), 8);
    for (int64_t i = 0; i < k; i++)
        be->ops->upload(be, G + i * k, zero, (size_t)k * 8);
    for (int64_t i = 0; i < k; i++)
        be->ops->upload(be, Bt + i * d, zero, (size_t)d * 8);
    double t_gen = 0, t_up = 0, t_mm = 0, t0 = now();
    int rc = 0;
    for (int64_t r0 = 0; r0 < n && rc == 0; r0 += chunk) {
        int64_t m = n - r0 < chunk ? n - r0 : chunk;
        double a = now();
        for (int64_t i = 0; i < m; i++) {
            for (int64_t j = 0; j < k; j++)
                hx[i * k + j] = feature(r0 + i, j);
            for (int64_t j = 0; j < d; j++)
                hy[i * d + j] = feature(r0 + i, k + j) - 0.1;
        }
        double b = now();
        rc = be->ops->upload(be, X, hx, (size_t)(m * k) * 8);
        if (rc == 0)
            rc = be->ops->upload(be, Y, hy, (size_t)(m * d) * 8);
        double c = now();
        if (rc == 0)
            rc = be->ops->syrk_t(be, k, m, 1.0, X, k, G);
        if (rc == 0)
            rc = be->ops->gemm(be, 1, 0, k, d, m, 1.0, X, k, Y, d, 1.0, Bt, d);
        double g;
        if (rc == 0)
            rc = be->ops->dot(be, 1, G, G, &g); /* synchronises */
        t_gen += b - a;
        t_up += c - b;
        t_mm += now() - c;
    }
    if (rc < 0) {
        fprintf(stderr, "gram_bench: %s\n", vv_err_detail());
        return 1;
    }
    double total = now() - t0;
    /* Check G[1][2] and Bt[3][5] against the host. */
    double g12 = 0, b35 = 0, want_g = 0, want_b = 0;
    be->ops->download(be, &g12, G + 1 * k + 2, 8);
    be->ops->download(be, &b35, Bt + 3 * d + 5, 8);
    for (int64_t i = 0; i < n; i++) {
        want_g += feature(i, 1) * feature(i, 2);
        want_b += feature(i, 3) * (feature(i, k + 5) - 0.1);
    }
    double flops = (double)n * (double)k * (double)(k + 1) + 2.0 * (double)n * k * d;
    char name[256] = "";
    size_t fr = 0, tot = 0;
    vv_backend_cuda_info(be, name, sizeof name, &fr, &tot);
    printf("gram_bench on %s: N=%lld K=%lld D=%lld float64\n", name, (long long)n, (long long)k,
           (long long)d);
    printf(
        "  generate %.2f s (host)  upload %.2f s  syrk+gemm %.2f s (%.0f GFLOP/s)  total %.2f s\n",
        t_gen, t_up, t_mm, flops / t_mm * 1e-9, total);
    int ok = fabs(g12 - want_g) <= 1e-9 * fabs(want_g) &&
             fabs(b35 - want_b) <= 1e-9 * (fabs(want_b) + 1);
    printf("  G[1][2] %.12g (host %.12g), Bt[3][5] %.12g (host %.12g): %s\n", g12, want_g, b35,
           want_b, ok ? "ok" : "MISMATCH");
    vv_backend_cuda_close(be);
    return ok ? 0 : 1;
}
