/* compress_feats.c - the features of the layers a compress job compresses,
 * streamed into their sufficient statistics: one pass over the training
 * images (or the trunk's rows) for any number of layers of one network.
 *
 * A pass reads the data in batches of images (vv_stats_compute_set): the
 * first layer's source to ask for a batch runs the network from the trunk
 * (or the images) up to each layer in turn, keeping every layer's input;
 * the others take theirs from there.  A layer's rows are then:
 * - a linear layer: one per image, Phi its input and Psi its output;
 * - a conv layer: u.positions output positions of each image (image-major),
 *   Phi the unfolded input patch there (in_ch x k x k, zeros outside the
 *   map, the order of the weight's columns) and Psi the layer's output
 *   there, computed from the patch in float64 (patch . W^T + bias: exactly
 *   what the conv computes, without running it everywhere). */
#include "compress_internal.h"
#include "mpi_run.h"

#include "vv/blas.h"
#include "vv/dataset.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The inputs of layers li[0] < li[1] < ... for the images held. */
typedef struct walk {
    const vv_model *m;
    vv_model_dev *md; /* m's weights on the job's device; NULL: the CPU */
    const trunk *tr;  /* NULL: from the images */
    const vv_dataset *ds;
    const vv_preprocess *pp;
    int nl;
    const int *li;
    vv_forward_plan **plan; /* plan[j]: from li[j - 1] (or the trunk, or 0) to li[j]; may be NULL */
    int64_t cols;           /* floats of an image or a trunk row */
    int64_t *size;          /* size[j]: floats of li[j]'s input */
    float *x;               /* the images or trunk rows */
    float **in;             /* in[j]: li[j]'s input */
    int64_t i0, n, cap;     /* images held, and room */
} walk;

/* Makes sure images [i0, i0 + n) are held (computing them unless they are). */
static int walk_to(walk *w, int64_t i0, int64_t n)
{
    if (i0 >= w->i0 && i0 + n <= w->i0 + w->n)
        return 0;
    w->n = 0;
    if (n > w->cap) {
        free(w->x);
        w->x = malloc((size_t)(n * w->cols) * sizeof(float));
        int ok = w->x != NULL;
        for (int j = 0; j < w->nl; j++) {
            free(w->in[j]);
            w->in[j] = malloc((size_t)(n * w->size[j]) * sizeof(float));
            ok &= w->in[j] != NULL;
        }
        w->cap = ok ? n : 0;
        if (!ok)
            return vv_fail(VV_ENOMEM, "features: out of memory for %lld images", (long long)n);
    }
    /* A pass of one worker leaves BLAS its threads, and the forward passes
     * may then have every core (split by images); with several workers
     * (single-threaded BLAS) the others are busy adding up their chunks. */
    int threads = vv_blas_threads() > 1 ? 0 : 1;
    int rc = w->tr ? compress_trunk_run(w->tr, w->md, w->plan[0], w->li[0], i0, n, w->x, w->in[0],
                                        threads)
                   : vv_dataset_batch(w->ds, w->pp, NULL, i0, n, NULL, w->x, NULL);
    for (int j = w->tr ? 1 : 0; rc == 0 && j < w->nl; j++) {
        const float *from = j ? w->in[j - 1] : w->x;
        if (w->plan[j])
            rc = vv_forward_plan_run(w->plan[j], from, n, w->in[j], threads);
        else
            memcpy(w->in[j], from, (size_t)(n * w->size[j]) * sizeof(float));
    }
    if (rc == 0) {
        w->i0 = i0;
        w->n = n;
    }
    return rc;
}

/* Layer li[j]'s input for image i (held). */
static const float *walk_input(const walk *w, int j, int64_t i)
{
    return w->in[j] + (i - w->i0) * w->size[j];
}

/* One layer's rows, as the sources of its pass. */
typedef struct feats {
    walk *w;
    int j; /* its index in the walk */
    const vv_layer *L;
    int li;
    int64_t k, d;
    int64_t r0, n; /* a conv's rows held in rows */
    /* Room for cap rows: a conv's patches (double, cap x k), a linear
     * layer's outputs (float, cap x d). */
    void *rows;
    int64_t cap;
    /* conv layers */
    int conv;
    int64_t pos, map; /* positions per image, of map = oh x ow */
    uint64_t seed;
    int32_t *perm; /* map entries of scratch */
    double *wd;    /* the weight (d x k) */
} feats;

/* The output positions sampled from image img: all of them in order when
 * pos = map, else pos distinct ones drawn by a partial Fisher-Yates shuffle
 * seeded by (seed, img), so that every pass (and every process) draws the
 * same rows. */
static void conv_positions(feats *f, int64_t img)
{
    for (int64_t p = 0; p < f->map; p++)
        f->perm[p] = (int32_t)p;
    if (f->pos == f->map)
        return;
    vv_rng r;
    vv_rng_seed(&r, f->seed * 0x9E3779B97F4A7C15ull + (uint64_t)img * 0xD1B54A32D192ED03ull + 1);
    for (int64_t p = 0; p < f->pos; p++) {
        int64_t q = p + (int64_t)(vv_rng_next(&r) % (uint64_t)(f->map - p));
        int32_t t = f->perm[p];
        f->perm[p] = f->perm[q];
        f->perm[q] = t;
    }
}

/* f's row buffer *buf with room for n rows of `row` bytes: reallocated
 * when short. */
static int room(feats *f, void **buf, int64_t n, size_t row)
{
    if (n <= f->cap && *buf)
        return 0;
    free(*buf);
    *buf = malloc((size_t)n * row);
    f->cap = *buf ? n : 0;
    return *buf ? 0 : vv_fail(VV_ENOMEM, "features: out of memory for %lld rows", (long long)n);
}

/* Rows [r0, r0 + n) of a conv layer: the images they come from, run up to
 * the layer and unfolded at the sampled positions into f->rows. */
static int conv_fill(feats *f, int64_t r0, int64_t n)
{
    const vv_layer *L = f->L;
    int64_t i0 = r0 / f->pos, i1 = (r0 + n - 1) / f->pos;
    f->r0 = -1;
    int rc = room(f, &f->rows, n, (size_t)f->k * sizeof(double));
    if (rc == 0)
        rc = walk_to(f->w, i0, i1 - i0 + 1);
    if (rc < 0)
        return rc;
    int kk = L->kernel, ow = L->ow;
    int64_t last = -1;
    for (int64_t r = r0; r < r0 + n; r++) {
        int64_t img = r / f->pos;
        if (img != last) {
            conv_positions(f, img);
            last = img;
        }
        int p = f->perm[r % f->pos], oy = p / ow, ox = p % ow;
        const float *mp = walk_input(f->w, f->j, img);
        double *row = (double *)f->rows + (r - r0) * f->k;
        for (int c = 0; c < L->c; c++)
            for (int ky = 0; ky < kk; ky++) {
                int y = oy * L->stride - L->pad + ky;
                for (int kx = 0; kx < kk; kx++) {
                    int xx = ox * L->stride - L->pad + kx;
                    *row++ = y >= 0 && y < L->h && xx >= 0 && xx < L->w
                                 ? (double)mp[((int64_t)c * L->h + y) * L->w + xx]
                                 : 0.0;
                }
            }
    }
    f->r0 = r0;
    f->n = n;
    return 0;
}

static int read_phi(void *ctx, int64_t r0, int64_t n, double *dst)
{
    feats *f = ctx;
    if (f->conv) {
        int rc = conv_fill(f, r0, n);
        if (rc == 0)
            memcpy(dst, f->rows, (size_t)(n * f->k) * sizeof *dst);
        return rc;
    }
    int rc = walk_to(f->w, r0, n);
    const float *x = rc == 0 ? walk_input(f->w, f->j, r0) : NULL;
    for (int64_t t = 0; rc == 0 && t < n * f->k; t++)
        dst[t] = x[t];
    return rc;
}

static int read_psi(void *ctx, int64_t r0, int64_t n, double *dst)
{
    feats *f = ctx;
    if (f->conv) {
        int rc = f->r0 == r0 && f->n == n ? 0 : conv_fill(f, r0, n);
        if (rc < 0)
            return rc;
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < f->d; j++)
                dst[r * f->d + j] = f->L->bias_v ? f->L->bias_v[j] : 0;
        vv_dgemm(0, 1, n, f->d, f->k, 1.0, f->rows, f->k, f->wd, f->k, 1.0, dst, f->d);
        return 0;
    }
    walk *w = f->w;
    int rc = room(f, &f->rows, n, (size_t)f->d * sizeof(float));
    if (rc == 0)
        rc = walk_to(w, r0, n);
    const float *x = rc == 0 ? walk_input(w, f->j, r0) : NULL;
    float *psi = f->rows;
    if (rc == 0)
        rc = w->md ? vv_model_forward_dev(w->md, f->li, f->li + 1, x, n, psi)
                   : vv_model_forward(w->m, f->li, f->li + 1, x, n, psi);
    for (int64_t t = 0; rc == 0 && t < n * f->d; t++)
        dst[t] = psi[t];
    return rc;
}

int compress_layer_stats(cctx *c, const vv_model *m, int nl, const int *li, const layer_unit *u,
                         const trunk *tr, const vv_dataset *train, const vv_preprocess *pp,
                         int64_t ntrain, int share, vv_stats *st)
{
    memset(st, 0, (size_t)nl * sizeof *st);
    /* Under mpirun the ranks share the rows: from the trunk when every rank
     * holds it, else each from the images. */
    if (tr && (tr->n != ntrain || tr->at > li[0] || (share && !c->trunk_everywhere)))
        tr = NULL;
    c->trunk_stats += tr != NULL;
    int from = tr ? tr->at : 0;
    walk w = {.m = m,
              .tr = tr,
              .ds = train,
              .pp = pp,
              .nl = nl,
              .li = li,
              .cols = tr ? tr->cols : vv_model_size(m, -1)};
    w.plan = calloc((size_t)nl, sizeof *w.plan);
    w.size = calloc((size_t)nl, sizeof *w.size);
    w.in = calloc((size_t)nl, sizeof *w.in);
    feats *fs = calloc((size_t)nl, sizeof *fs);
    vv_stats_src *src = calloc((size_t)nl, sizeof *src);
    double *bias = NULL;
    int64_t nb = 0;
    for (int j = 0; j < nl; j++)
        nb += u[j].d;
    int own_md = 0, rc = 0, held = w.plan && w.size && w.in && fs && src;
    if (!held || !(bias = malloc((size_t)nb * sizeof *bias)))
        rc = vv_fail(VV_ENOMEM, "out of memory for the features of %d layers", nl);
    if (rc == 0)
        rc = compress_dev_for(c, m, &w.md, &own_md);
    for (int j = 0, b = 0; rc == 0 && j < nl; b += (int)u[j].d, j++) {
        const vv_layer *L = &m->layers[li[j]];
        feats *f = &fs[j];
        *f = (feats){.w = &w,
                     .j = j,
                     .L = L,
                     .li = li[j],
                     .k = u[j].k,
                     .d = u[j].d,
                     .r0 = -1,
                     .conv = u[j].conv,
                     .pos = u[j].positions,
                     .map = (int64_t)L->oh * L->ow,
                     .seed = c->spec->lasso.seed};
        w.size[j] = vv_model_size(m, li[j] - 1);
        int prev = j ? li[j - 1] : from;
        if (li[j] > prev)
            rc = vv_forward_plan_on(m, w.md, prev, li[j], &w.plan[j]);
        if (rc == 0 && f->conv) {
            f->perm = malloc((size_t)f->map * sizeof *f->perm);
            f->wd = malloc((size_t)(f->k * f->d) * sizeof *f->wd);
            if (!f->perm || !f->wd)
                rc = vv_fail(VV_ENOMEM, "out of memory for layer %s", L->name);
            for (int64_t t = 0; rc == 0 && t < f->k * f->d; t++)
                f->wd[t] = L->weight[t];
        }
        char name[160];
        snprintf(name, sizeof name, "input of %s", L->name);
        if (rc == 0)
            rc = vv_rows_from_callback(name, ntrain * f->pos, f->k, read_phi, f, NULL, &src[j].phi);
        snprintf(name, sizeof name, "output of %s", L->name);
        if (rc == 0)
            rc = vv_rows_from_callback(name, ntrain * f->pos, f->d, read_psi, f, NULL, &src[j].psi);
        /* Psi's bias is subtracted: the statistics see the pre-bias output. */
        for (int64_t t = 0; rc == 0 && t < f->d; t++)
            bias[b + t] = L->bias_v ? L->bias_v[t] : 0;
        src[j].per_unit = f->pos;
        src[j].bias = bias + b;
    }
    vv_stats_opts so = {.chunk_rows = c->spec->lasso.chunk_rows, .stop = c->stop, .be = c->be};
    if (rc == 0)
        rc = share ? par_stats_share(nl, src, &so, 1, st) : vv_stats_compute_set(nl, src, &so, st);
    for (int j = 0; held && j < nl; j++) {
        vv_rows_free(src[j].phi);
        vv_rows_free(src[j].psi);
        free(fs[j].rows);
        free(fs[j].perm);
        free(fs[j].wd);
        vv_forward_plan_free(w.plan[j]);
        free(w.in[j]);
    }
    if (own_md)
        vv_model_dev_close(w.md);
    free(w.x);
    free(w.plan);
    free(w.size);
    free(w.in);
    free(fs);
    free(src);
    free(bias);
    if (share && ((rc = par_agree(rc, NULL, 0)) < 0 || (rc = par_sum_stats(st, nl)) < 0))
        for (int j = 0; j < nl; j++)
            vv_stats_free(&st[j]);
    return rc;
}
