/* synth.c - seeded random numbers and synthetic last-layer problems. */
#include "vv/blas.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void vv_rng_seed(vv_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
uint64_t vv_rng_next(vv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double vv_rng_uniform(vv_rng *r) { return (double)(vv_rng_next(r) >> 11) * 0x1.0p-53; }

double vv_rng_normal(vv_rng *r)
{
    /* Box-Muller; one of the pair is discarded so the stream stays stateless. */
    double u = vv_rng_uniform(r), v = vv_rng_uniform(r);
    return sqrt(-2.0 * log1p(-u)) * cos(6.283185307179586 * v);
}

/* ---- The synthetic problem --------------------------------------------- */

enum { IN_DIM = 64, HIDDEN = 256 };
#define RHO 0.8
#define NOISE 0.1

typedef struct synth {
    int64_t n, k, d;
    uint64_t seed;
    double *w1, *b1; /* HIDDEN x IN_DIM, HIDDEN */
    double *w2, *b2; /* K x HIDDEN, K */
    double *v0, *c0; /* D x K, D */
    /* The last chunk of features, kept for the psi read of the same rows. */
    int64_t r0, rows, cap;
    double *x, *h, *phi;
    int refs;
} synth;

static void synth_unref(void *p)
{
    synth *s = p;
    if (--s->refs > 0)
        return;
    free(s->w1);
    free(s->b1);
    free(s->w2);
    free(s->b2);
    free(s->v0);
    free(s->c0);
    free(s->x);
    free(s->h);
    free(s->phi);
    free(s);
}

static int synth_features(synth *s, int64_t r0, int64_t rows)
{
    if (s->r0 == r0 && s->rows == rows && s->phi)
        return 0;
    if (rows > s->cap) {
        free(s->x);
        free(s->h);
        free(s->phi);
        s->x = malloc((size_t)(rows * IN_DIM) * sizeof(double));
        s->h = malloc((size_t)(rows * HIDDEN) * sizeof(double));
        s->phi = malloc((size_t)(rows * s->k) * sizeof(double));
        if (!s->x || !s->h || !s->phi) {
            s->cap = 0;
            return vv_fail(VV_ENOMEM, "synthetic problem: out of memory");
        }
        s->cap = rows;
    }
    for (int64_t i = 0; i < rows; i++) {
        vv_rng r;
        vv_rng_seed(&r, s->seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL * (uint64_t)(r0 + i));
        double *x = s->x + i * IN_DIM, prev = vv_rng_normal(&r);
        x[0] = prev;
        for (int j = 1; j < IN_DIM; j++) {
            prev = RHO * prev + sqrt(1 - RHO * RHO) * vv_rng_normal(&r);
            x[j] = prev;
        }
    }
    vv_dgemm(0, 1, rows, HIDDEN, IN_DIM, 1.0, s->x, IN_DIM, s->w1, IN_DIM, 0.0, s->h, HIDDEN);
    for (int64_t i = 0; i < rows; i++)
        for (int j = 0; j < HIDDEN; j++) {
            double v = s->h[i * HIDDEN + j] + s->b1[j];
            s->h[i * HIDDEN + j] = v > 0 ? v : 0;
        }
    vv_dgemm(0, 1, rows, s->k, HIDDEN, 1.0, s->h, HIDDEN, s->w2, HIDDEN, 0.0, s->phi, s->k);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < s->k; j++) {
            double v = s->phi[i * s->k + j] + s->b2[j];
            /* Round through float32: the features are what a float32 file would hold. */
            s->phi[i * s->k + j] = v > 0 ? (double)(float)v : 0;
        }
    s->r0 = r0;
    s->rows = rows;
    return 0;
}

static int synth_read_phi(void *ctx, int64_t r0, int64_t rows, double *dst)
{
    synth *s = ctx;
    int rc = synth_features(s, r0, rows);
    if (rc < 0)
        return rc;
    memcpy(dst, s->phi, (size_t)(rows * s->k) * sizeof *dst);
    return 0;
}

static int synth_read_psi(void *ctx, int64_t r0, int64_t rows, double *dst)
{
    synth *s = ctx;
    int rc = synth_features(s, r0, rows);
    if (rc < 0)
        return rc;
    vv_dgemm(0, 1, rows, s->d, s->k, 1.0, s->phi, s->k, s->v0, s->k, 0.0, dst, s->d);
    for (int64_t i = 0; i < rows; i++) {
        vv_rng r;
        vv_rng_seed(&r, ~s->seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL * (uint64_t)(r0 + i));
        for (int64_t j = 0; j < s->d; j++) {
            double v = dst[i * s->d + j] + s->c0[j] + NOISE * vv_rng_normal(&r);
            dst[i * s->d + j] = (double)(float)v;
        }
    }
    return 0;
}

int vv_synth_open(int64_t n, int64_t k, int64_t d, uint64_t seed, vv_rows **phi, vv_rows **psi)
{
    *phi = *psi = NULL;
    if (n < 1 || k < 1 || d < 1 || k > (1 << 20) || d > (1 << 20))
        return vv_fail(VV_EINVAL, "synthetic problem: bad size N=%lld K=%lld D=%lld",
                       (long long)n, (long long)k, (long long)d);
    synth *s = calloc(1, sizeof *s);
    if (!s)
        return vv_fail(VV_ENOMEM, "synthetic problem: out of memory");
    s->n = n;
    s->k = k;
    s->d = d;
    s->seed = seed;
    s->r0 = -1;
    s->w1 = malloc(HIDDEN * IN_DIM * sizeof(double));
    s->b1 = malloc(HIDDEN * sizeof(double));
    s->w2 = malloc((size_t)(k * HIDDEN) * sizeof(double));
    s->b2 = malloc((size_t)k * sizeof(double));
    s->v0 = malloc((size_t)(d * k) * sizeof(double));
    s->c0 = malloc((size_t)d * sizeof(double));
    s->refs = 1;
    if (!s->w1 || !s->b1 || !s->w2 || !s->b2 || !s->v0 || !s->c0) {
        synth_unref(s);
        return vv_fail(VV_ENOMEM, "synthetic problem: out of memory");
    }
    vv_rng r;
    vv_rng_seed(&r, seed);
    for (int i = 0; i < HIDDEN * IN_DIM; i++)
        s->w1[i] = vv_rng_normal(&r) / sqrt((double)IN_DIM);
    for (int i = 0; i < HIDDEN; i++)
        s->b1[i] = 0.1 * vv_rng_normal(&r);
    for (int64_t i = 0; i < k * HIDDEN; i++)
        s->w2[i] = vv_rng_normal(&r) * sqrt(2.0 / HIDDEN);
    for (int64_t i = 0; i < k; i++)
        s->b2[i] = 0.1 * vv_rng_normal(&r);
    for (int64_t i = 0; i < d * k; i++)
        s->v0[i] = vv_rng_normal(&r) / sqrt((double)k);
    for (int64_t i = 0; i < d; i++)
        s->c0[i] = 0.1 * vv_rng_normal(&r);
    char name[128];
    snprintf(name, sizeof name, "synthetic phi (seed %llu)", (unsigned long long)seed);
    int rc = vv_rows_from_callback(name, n, k, synth_read_phi, s, synth_unref, phi);
    if (rc < 0) {
        synth_unref(s);
        return rc;
    }
    s->refs++;
    snprintf(name, sizeof name, "synthetic psi (seed %llu)", (unsigned long long)seed);
    rc = vv_rows_from_callback(name, n, d, synth_read_psi, s, synth_unref, psi);
    if (rc < 0) {
        s->refs--;
        vv_rows_free(*phi);
        *phi = NULL;
        return rc;
    }
    return 0;
}
