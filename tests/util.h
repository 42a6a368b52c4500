/* tests/util.h - helpers shared by the C tests: random problems, brute-force
 * references, fixture loading. */
#ifndef VV_TEST_UTIL_H
#define VV_TEST_UTIL_H

#include "vv/array.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A small dense problem held in memory (row-major). */
typedef struct tprob {
    int64_t n, k, d;
    double *phi, *psi, *bias; /* N x K, N x D, D (bias may be NULL) */
} tprob;

/* Post-ReLU features of correlated Gaussian inputs and a noisy linear
 * response: the kind of problem vvd solves. */
static inline void tprob_make(tprob *p, int64_t n, int64_t k, int64_t d, uint64_t seed, int bias)
{
    vv_rng r;
    vv_rng_seed(&r, seed);
    p->n = n;
    p->k = k;
    p->d = d;
    p->phi = malloc((size_t)(n * k) * sizeof(double));
    p->psi = malloc((size_t)(n * d) * sizeof(double));
    p->bias = bias ? malloc((size_t)d * sizeof(double)) : NULL;
    int pin = 6;
    double *w = malloc((size_t)(k * pin) * sizeof(double)), *v = malloc((size_t)(d * k) * sizeof(double));
    for (int64_t i = 0; i < k * pin; i++)
        w[i] = vv_rng_normal(&r);
    for (int64_t i = 0; i < d * k; i++)
        v[i] = vv_rng_normal(&r) / sqrt((double)k);
    if (p->bias)
        for (int64_t j = 0; j < d; j++)
            p->bias[j] = vv_rng_normal(&r);
    for (int64_t i = 0; i < n; i++) {
        double x[6], prev = vv_rng_normal(&r);
        for (int j = 0; j < pin; j++) {
            x[j] = prev;
            prev = 0.8 * prev + 0.6 * vv_rng_normal(&r);
        }
        for (int64_t c = 0; c < k; c++) {
            double a = 0.1;
            for (int j = 0; j < pin; j++)
                a += w[c * pin + j] * x[j];
            p->phi[i * k + c] = a > 0 ? a : 0;
        }
        for (int64_t j = 0; j < d; j++) {
            double a = p->bias ? p->bias[j] : 0;
            for (int64_t c = 0; c < k; c++)
                a += v[j * k + c] * p->phi[i * k + c];
            p->psi[i * d + j] = a + 0.1 * vv_rng_normal(&r);
        }
    }
    free(w);
    free(v);
}

static inline void tprob_free(tprob *p)
{
    free(p->phi);
    free(p->psi);
    free(p->bias);
}

static inline int tprob_stats(const tprob *p, int64_t chunk, vv_stats *st)
{
    vv_rows *a, *b;
    vv_rows_from_memory("phi", p->n, p->k, p->phi, &a);
    vv_rows_from_memory("psi", p->n, p->d, p->psi, &b);
    vv_stats_opts o = {.chunk_rows = chunk, .bias = p->bias};
    int rc = vv_stats_compute(a, b, &o, st);
    vv_rows_free(a);
    vv_rows_free(b);
    return rc;
}

/* Direct (N-sized) objective of W (K x D): 1/(2N)||Psi - b - Phi W||^2 + lambda sum ||w_k||. */
static inline double tprob_objective(const tprob *p, const double *W, double lambda)
{
    double r2 = 0;
    for (int64_t i = 0; i < p->n; i++)
        for (int64_t j = 0; j < p->d; j++) {
            double a = p->psi[i * p->d + j] - (p->bias ? p->bias[j] : 0);
            for (int64_t c = 0; c < p->k; c++)
                a -= p->phi[i * p->k + c] * W[c * p->d + j];
            r2 += a * a;
        }
    double gn = 0;
    for (int64_t c = 0; c < p->k; c++) {
        double q = 0;
        for (int64_t j = 0; j < p->d; j++)
            q += W[c * p->d + j] * W[c * p->d + j];
        gn += sqrt(q);
    }
    return r2 / (2.0 * (double)p->n) + lambda * gn;
}

/* Path of a committed fixture file. */
static inline const char *fixture(const char *rel)
{
    static char buf[4][4096];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", VV_FIXTURES, rel);
    return buf[i];
}

/* Loads a float64/float32 .npy as a double matrix (rows x cols). */
static inline double *load_npy(const char *path, int64_t *rows, int64_t *cols)
{
    vv_rows *r;
    if (vv_rows_open(path, NULL, &r) < 0)
        return NULL;
    *rows = vv_rows_n(r);
    *cols = vv_rows_cols(r);
    double *x = malloc((size_t)(*rows * *cols) * sizeof *x);
    if (vv_rows_read(r, 0, *rows, x) < 0) {
        free(x);
        x = NULL;
    }
    vv_rows_free(r);
    return x;
}

/* Solves with the given solver to a tight tolerance from zeros; returns W (K x D). */
static inline double *solve_tight(const vv_stats *st, vv_solver solver, double lambda, double tol,
                                  int no_screening, vv_lasso_result *res)
{
    double *W = calloc((size_t)(st->k * st->d), sizeof *W);
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.solver = solver;
    o.lambda = lambda;
    o.tol = tol;
    o.max_iter = 2000000;
    o.max_seconds = 60;
    o.no_screening = no_screening;
    vv_lasso_result r;
    if (vv_lasso_solve(st, &o, W, res ? res : &r) < 0) {
        free(W);
        return NULL;
    }
    return W;
}

/* max |a - b| / max |b| over n values (max |a - b| when b is all zeros). */
static inline double max_rel_diff(const double *a, const double *b, int64_t n)
{
    double m = 0, s = 0;
    for (int64_t i = 0; i < n; i++)
        s = fmax(s, fabs(b[i]));
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i] - b[i]));
    return s > 0 ? m / s : m;
}

/* A simulated device (vv_backend_sim_open) with 1 GiB, opened once per
 * test binary; sim_uploads() counts its uploads so far. */
static inline vv_backend *sim_dev(void)
{
    static vv_backend *be;
    if (!be)
        vv_backend_sim_open(NULL, &be);
    return be;
}

static inline int64_t sim_uploads(void)
{
    int64_t n = 0;
    vv_backend_sim_counts(sim_dev(), &n, NULL);
    return n;
}

#endif
