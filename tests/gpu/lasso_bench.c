/* lasso_bench.c - an AlexNet-first-layer-sized multi-task lasso on the GPU,
 * from features to a certified solution, through vvd's own code paths
 * (tests/gpu/device-check.sh).
 *
 * N = 50000 samples of K = 9216 synthetic post-ReLU features (about 60%
 * zeros, values rounded to float32 as a network's would be) and D = 4096
 * outputs.  Phases, each timed:
 *   1. statistics: the rows are generated on the host, uploaded in chunks,
 *      and G = Phi^T Phi, Bt = Phi^T Psi accumulated in float64 on the
 *      device (vv_stats_compute on the CUDA backend), then brought back;
 *   2. the solve: FISTA resident on the device (vv_lasso_solve), lambda =
 *      RATIO lambda_max, until the duality-gap certificate says rel_gap <=
 *      TOL (or MAX_S seconds pass);
 *   3. a check of the certificate on the host: the primal objective of the
 *      returned W recomputed from the rows in float64 on a sample of output
 *      columns, against the device's numbers.
 * With --write DIR the float32 rows are also written (DIR/phi.f32, N x K,
 * and DIR/psi.f32, N x D, row-major) with DIR/problem.json, for the
 * PyTorch Adam-prox comparison (adam_prox_torch.py).
 *
 *   lasso_bench [--n N --k K --d D] [--ratio R] [--tol T] [--max-seconds S]
 *               [--write DIR] [--sim]
 * --sim runs on the simulated device (host memory), to try the bench on a
 * machine without a GPU at a small size.
 * Exit status: 0 certified to TOL, 1 not (or an error), 77 no usable GPU. */
#include "vv/array.h"
#include "vv/backend_cuda.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feature j of sample i: a hash, shifted and cut at 0 like a ReLU's output;
 * columns K.. are the outputs.  Rounded to float32. */
static double feature(int64_t i, int64_t j)
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ (uint64_t)(j + 1) * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    double u = (double)(x >> 11) / 9007199254740992.0 - 0.4;
    return (double)(float)(u > 0 ? u : 0);
}

/* The outputs: each a linear function of the same S planted features
 * (with its own weights) plus noise, so that the lasso has structure to
 * find.  wt is D x S. */
enum { S = 32 };
static double *wt;

static void planted(int64_t i, int64_t k, double *f)
{
    for (int64_t s = 0; s < S; s++)
        f[s] = feature(i, (s * 283 + 7) % k);
}

static double output(int64_t i, int64_t t, int64_t k, const double *f)
{
    double y = 0;
    for (int64_t s = 0; s < S; s++)
        y += wt[t * S + s] * f[s];
    return (double)(float)(y + feature(i, k + t) - 0.15);
}

typedef struct src {
    int64_t k, d;
    int psi; /* 0: features, 1: outputs */
    FILE *out;
    double seconds; /* spent generating */
} src;

static int read_rows(void *ctx, int64_t r0, int64_t nrows, double *dst)
{
    src *s = ctx;
    double t0 = vv_now();
    int64_t cols = s->psi ? s->d : s->k;
    for (int64_t i = 0; i < nrows; i++) {
        double f[S];
        if (s->psi)
            planted(r0 + i, s->k, f);
        for (int64_t j = 0; j < cols; j++)
            dst[i * cols + j] = s->psi ? output(r0 + i, j, s->k, f) : feature(r0 + i, j);
    }
    s->seconds += vv_now() - t0;
    if (s->out) {
        float *f = malloc((size_t)(nrows * cols) * sizeof *f);
        if (!f)
            return vv_fail(VV_ENOMEM, "out of memory");
        for (int64_t t = 0; t < nrows * cols; t++)
            f[t] = (float)dst[t];
        size_t w = fwrite(f, sizeof *f, (size_t)(nrows * cols), s->out);
        free(f);
        if (w != (size_t)(nrows * cols))
            return vv_fail(VV_EIO, "writing the rows failed");
    }
    return 0;
}

typedef struct progress {
    double last;
} progress;

static int on_metric(void *ctx, const vv_metrics *m)
{
    progress *p = ctx;
    if (m->time - p->last >= 5.0) {
        printf("  %7.1f s  iteration %6lld  rel_gap %.3e  active %lld\n", m->time,
               (long long)m->step, m->e.rel_gap, (long long)m->e.active);
        fflush(stdout);
        p->last = m->time;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int64_t n = 50000, k = 9216, d = 4096;
    double ratio = 0.1, tol = 1e-6, max_s = 240;
    const char *dir = NULL;
    int sim = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--sim")) {
            sim = 1;
            i--;
        } else if (!strcmp(a, "--n"))
            n = atoll(v);
        else if (!strcmp(a, "--k"))
            k = atoll(v);
        else if (!strcmp(a, "--d"))
            d = atoll(v);
        else if (!strcmp(a, "--ratio"))
            ratio = atof(v);
        else if (!strcmp(a, "--tol"))
            tol = atof(v);
        else if (!strcmp(a, "--max-seconds"))
            max_s = atof(v);
        else if (!strcmp(a, "--write"))
            dir = v;
        else {
            fprintf(stderr, "lasso_bench: unknown option %s\n", a);
            return 2;
        }
    }
    wt = malloc((size_t)(d * S) * sizeof *wt);
    for (int64_t t = 0; wt && t < d; t++)
        for (int64_t s = 0; s < S; s++)
            wt[t * S + s] = sin((double)(t + 1) * (double)(s + 1) * 0.37);
    vv_backend *be;
    vv_sim_opts simo = {.memory = (size_t)16 << 30};
    if (!wt || (sim ? vv_backend_sim_open(&simo, &be) : vv_backend_cuda_open(0, &be)) < 0) {
        fprintf(stderr, "lasso_bench: %s\n", vv_err_detail());
        return 77;
    }
    char name[256] = "";
    size_t fr = 0, tot = 0;
    be->ops->info(be, name, sizeof name, &fr, &tot);
    printf("lasso_bench on %s (%.0f GiB): N=%lld K=%lld D=%lld, lambda = %g lambda_max, "
           "tol %g, float64 statistics and certificate\n",
           name, (double)tot / 1073741824.0, (long long)n, (long long)k, (long long)d, ratio, tol);
    double t0 = vv_now();

    /* 1. Statistics on the device. */
    src sp = {k, d, 0, NULL, 0}, ss = {k, d, 1, NULL, 0};
    char path[4096];
    if (dir) {
        snprintf(path, sizeof path, "%s/phi.f32", dir);
        sp.out = fopen(path, "wb");
        snprintf(path, sizeof path, "%s/psi.f32", dir);
        ss.out = fopen(path, "wb");
        if (!sp.out || !ss.out) {
            fprintf(stderr, "lasso_bench: cannot write into %s\n", dir);
            return 1;
        }
    }
    vv_rows *phi, *psi;
    vv_rows_from_callback("synthetic post-ReLU features", n, k, read_rows, &sp, NULL, &phi);
    vv_rows_from_callback("synthetic outputs", n, d, read_rows, &ss, NULL, &psi);
    vv_stats_opts so = {.chunk_rows = 2048, .be = be};
    vv_stats st;
    double ta = vv_now();
    int rc = vv_stats_compute(phi, psi, &so, &st);
    double t_stats = vv_now() - ta;
    if (sp.out)
        fclose(sp.out);
    if (ss.out)
        fclose(ss.out);
    if (rc < 0) {
        fprintf(stderr, "lasso_bench: statistics: %s\n", vv_err_detail());
        return 1;
    }
    printf("statistics: %.2f s, of which %.2f s generating the rows on the host%s; the rest "
           "uploads them and accumulates G, Bt on the device (%.0f GFLOP)\n",
           t_stats, sp.seconds + ss.seconds, dir ? " and writing them for PyTorch" : "",
           st.flops * 1e-9);

    /* 2. The solve, resident on the device. */
    double lmax = vv_lambda_max(&st), lambda = ratio * lmax;
    double *W = calloc((size_t)(k * d), sizeof *W);
    progress pg = {0};
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.solver = VV_SOLVER_FISTA;
    o.lambda = lambda;
    o.tol = tol;
    o.max_iter = 1000000;
    o.max_seconds = max_s;
    o.be = be;
    o.on_metric = on_metric;
    o.ctx = &pg;
    vv_lasso_result res;
    ta = vv_now();
    rc = W ? vv_lasso_solve(&st, &o, W, &res) : vv_fail(VV_ENOMEM, "out of memory");
    double t_solve = vv_now() - ta;
    if (rc < 0) {
        fprintf(stderr, "lasso_bench: solve: %s\n", vv_err_detail());
        return 1;
    }
    printf("solve: %.2f s, %lld FISTA iterations (%.1f ms each), %s: rel_gap %.3e, objective "
           "%.10g, %lld of %lld neurons active\n",
           t_solve, (long long)res.iterations,
           res.iterations ? 1e3 * t_solve / (double)res.iterations : 0.0,
           vv_stop_reason_name(res.stop_reason), res.e.rel_gap, res.e.objective,
           (long long)res.e.active, (long long)k);
    double total = vv_now() - t0;
    printf("from features to the certificate: %.2f s, %.2f s without generating the rows "
           "(target on an H200: < 60 s)\n",
           total, total - sp.seconds - ss.seconds);

    /* 3. The certificate's primal value, checked on the host from the rows
     * on 16 output columns: 1/(2N) sum_i (psi_it - phi_i w_t)^2 over those
     * columns against the same part of the device's G, Bt, c form. */
    int64_t cols[16], nc = d < 16 ? d : 16;
    for (int64_t t = 0; t < nc; t++)
        cols[t] = t * (d / nc);
    double direct = 0;
    double *row = malloc((size_t)k * sizeof *row);
    for (int64_t i = 0; i < n && row; i++) {
        double f[S];
        planted(i, k, f);
        for (int64_t j = 0; j < k; j++)
            row[j] = feature(i, j);
        for (int64_t t = 0; t < nc; t++) {
            double y = output(i, cols[t], k, f);
            for (int64_t j = 0; j < k; j++)
                if (row[j] != 0)
                    y -= row[j] * W[j * d + cols[t]];
            direct += y * y;
        }
    }
    free(row);
    /* The same columns from the statistics: c_t - 2 w_t.Bt_t + w_t^T G w_t. */
    double gram = 0;
    for (int64_t t = 0; t < nc; t++) {
        int64_t c = cols[t];
        double ct = 0, wb = 0, wgw = 0;
        for (int64_t i = 0; i < n; i++) {
            double f[S];
            planted(i, k, f);
            double y = output(i, c, k, f);
            ct += y * y;
        }
        for (int64_t j = 0; j < k; j++) {
            double wj = W[j * d + c];
            if (wj == 0)
                continue;
            wb += wj * st.Bt[j * d + c];
            double g = 0;
            for (int64_t l = 0; l < k; l++)
                g += st.G[j * k + l] * W[l * d + c];
            wgw += wj * g;
        }
        gram += ct - 2 * wb + wgw;
    }
    double relerr = fabs(direct - gram) / fmax(direct, 1e-300);
    int check_ok = relerr < 1e-8;
    printf("check: residual on %lld columns from the rows %.12g, from G, Bt, c %.12g (rel err "
           "%.1e): %s\n",
           (long long)nc, direct, gram, relerr, check_ok ? "ok" : "MISMATCH");
    if (dir) {
        snprintf(path, sizeof path, "%s/problem.json", dir);
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f,
                    "{\"n\": %lld, \"k\": %lld, \"d\": %lld, \"lambda\": %.17g, \"lambda_max\": "
                    "%.17g, \"c\": %.17g, \"vvd_seconds_total\": %.3f, \"vvd_seconds_solve\": "
                    "%.3f, \"vvd_iterations\": %lld, \"vvd_rel_gap\": %.6g, \"vvd_objective\": "
                    "%.17g, \"vvd_active\": %lld}\n",
                    (long long)n, (long long)k, (long long)d, lambda, lmax, st.c, total, t_solve,
                    (long long)res.iterations, res.e.rel_gap, res.e.objective,
                    (long long)res.e.active);
            fclose(f);
        }
    }
    vv_stats_free(&st);
    vv_rows_free(phi);
    vv_rows_free(psi);
    free(W);
    free(wt);
    be->ops->close(be);
    return res.stop_reason == VV_STOP_CONVERGED && check_ok ? 0 : 1;
}
