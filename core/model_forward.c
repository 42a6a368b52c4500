/* model_forward.c - the eval-mode forward pass: 3x3 convolutions by
 * Winograd (model_winograd.c), the others as im2col + one sgemm per chunk
 * of samples, with batch norm and ReLU (and after Winograd a 2x2 max pool)
 * fused into their output pass; the convolutional head split over threads
 * by samples, the fully connected tail on every sample at once with BLAS's
 * threads.  A plan (vv_forward_plan_new) keeps what does not change
 * between calls: the Winograd weights, a folded pool's weights, the
 * threads' scratch. */
#include "model_internal.h"
#include "parts.h"
#include "vv/backend.h"
#include "vv/blas.h"
#include "vv/model.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Budgets per thread, in floats: the two activation buffers of a group of
 * samples (32 MiB: late layers then multiply large enough matrices) and a
 * convolution's scratch (32 MiB, in chunks of samples that fit: Winograd's
 * 36 sgemms per chunk then have enough tiles; 4 MiB ran VGG-19 at 0.8 times
 * the speed). */
#define ACT_FLOATS (8l << 20)
#define CONV_FLOATS (8l << 20)
/* An im2col convolution's chunk of columns and output, in floats (4 MiB:
 * 1, 2 and 8 MiB were within noise of it on AlexNet, 32 MiB 1.35x slower). */
#define IM2COL_FLOATS (1l << 20)
/* Samples per pass through the fully connected tail at least (its weights
 * are read once per pass: AlexNet's first is 151 MB). */
#define DENSE_GROUP 1024
/* Winograd weights of one call at most (256 MiB); past it they are
 * transformed per chunk of samples. */
#define WINO_FLOATS (64l << 20)
/* Threads a forward pass splits its samples over at most. */
#define MAX_THREADS 8

void vv__conv_affine(const vv_layer *l, const vv_layer *bn, float *scale, float *shift)
{
    for (int o = 0; o < l->oc; o++) {
        /* y = (conv + b - mean) * scale + beta = conv * scale + shift */
        float b = l->bias_v ? l->bias_v[o] : 0.0f;
        scale[o] = 1.0f;
        shift[o] = b;
        if (bn) {
            scale[o] = bn->weight[o] / sqrtf(bn->running_var[o] + bn->eps);
            shift[o] = (b - bn->running_mean[o]) * scale[o] + bn->bias_v[o];
        }
    }
}

/* im2col of ns samples into col, (c k k) rows of ldc floats, sample s at
 * column s oh ow.  The backend's im2col copies rows with memcpy, a call per
 * output row: at AlexNet's 3x3 maps that cost more than the sgemm.  Here
 * the rows are plain loops the compiler vectorises. */
static void im2col(const vv_layer *l, const float *x, int64_t ns, float *col, int64_t ldc)
{
    int c = l->c, h = l->h, w = l->w, k = l->kernel, st = l->stride, pad = l->pad;
    int oh = l->oh, ow = l->ow;
    int64_t ohw = (int64_t)oh * ow, in_sz = (int64_t)c * h * w;
    for (int ci = 0; ci < c; ci++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = col + ((int64_t)(ci * k + ki) * k + kj) * ldc;
                /* Output columns whose input column is inside: [j0, j1). */
                int j0 = 0, j1 = ow;
                while (j0 < ow && j0 * st - pad + kj < 0)
                    j0++;
                while (j1 > j0 && (j1 - 1) * st - pad + kj >= w)
                    j1--;
                for (int64_t s = 0; s < ns; s++) {
                    const float *xc = x + s * in_sz + (int64_t)ci * h * w;
                    for (int i = 0; i < oh; i++) {
                        int y = i * st - pad + ki;
                        float *dst = row + s * ohw + (int64_t)i * ow;
                        if (y < 0 || y >= h) {
                            for (int j = 0; j < ow; j++)
                                dst[j] = 0.0f;
                            continue;
                        }
                        const float *src = xc + (int64_t)y * w - pad + kj;
                        for (int j = 0; j < j0; j++)
                            dst[j] = 0.0f;
                        if (st == 1)
                            for (int j = j0; j < j1; j++)
                                dst[j] = src[j];
                        else
                            for (int j = j0; j < j1; j++)
                                dst[j] = src[(int64_t)j * st];
                        for (int j = j1; j < ow; j++)
                            dst[j] = 0.0f;
                    }
                }
            }
}

/* Scratch floats a conv needs for one sample by im2col: its output affine
 * (2 oc), the columns and the gemm output. */
static int64_t im2col_floats(const vv_layer *l, int64_t nb)
{
    int64_t ohw = (int64_t)l->oh * l->ow;
    return 2 * (int64_t)l->oc + nb * ((int64_t)l->in_ch * l->kernel * l->kernel + l->oc) * ohw;
}

/* A convolution of nb samples, x (nb x c x h x w) -> y (nb x oc x oh x ow),
 * with a following batch norm bn (may be NULL) and ReLU fused into its
 * output pass.  scr holds nscr >= im2col_floats(l, 1) floats; u is the
 * layer's Winograd weights (vv__wino_weights) or NULL.  Winograd when the
 * layer allows it (its weights transformed here when u is NULL and they
 * fit), im2col and one sgemm per chunk of samples otherwise. */
static void conv(const vv_layer *l, const float *u, const float *x, int64_t nb, float *y,
                 float *scr, int64_t nscr, const vv_layer *bn, int relu, int pool)
{
    int64_t oc = l->oc, ohw = (int64_t)l->oh * l->ow,
            ckk = (int64_t)l->in_ch * l->kernel * l->kernel;
    float *sc = scr;
    vv__conv_affine(l, bn, sc, sc + oc);
    scr += 2 * oc;
    nscr -= 2 * oc;
    if (vv__wino_ok(l)) {
        int64_t wf = vv__wino_weight_floats(l);
        if (!u && nscr - wf >= 2 * vv__wino_sample_floats(l)) {
            vv__wino_weights(l, scr);
            u = scr;
            scr += wf;
            nscr -= wf;
        }
        if (u && vv__wino_conv(l, u, x, nb, y, scr, nscr, sc, sc + oc, relu, pool) == nb)
            return;
    }
    /* A pool is fused only where Winograd runs (run_seg). */
    assert(!pool);
    /* Chunks of about IM2COL_FLOATS: the columns are read back by the
     * sgemm while they are still in cache. */
    int64_t per = (ckk + oc) * ohw, g = (nscr < IM2COL_FLOATS ? nscr : IM2COL_FLOATS) / per;
    g = g < 1 ? 1 : g > nb ? nb : g;
    int64_t in_sz = (int64_t)l->c * l->h * l->w, out_sz = oc * ohw;
    vv_backend *be = vv_backend_cpu();
    for (int64_t s0 = 0; s0 < nb; s0 += g) {
        int64_t ns = nb - s0 < g ? nb - s0 : g, ncol = ns * ohw;
        float *col = scr, *tmp = scr + ckk * ncol;
        im2col(l, x + s0 * in_sz, ns, col, ncol);
        be->ops->sgemm(be, 0, 0, oc, ncol, ckk, 1.0f, l->weight, ckk, col, ncol, 0.0f, tmp, ncol);
        be->ops->affine_act(be, tmp, ncol, ohw, ns, oc, ohw, sc, sc + oc, relu, y + s0 * out_sz);
    }
}

static void batchnorm(const vv_layer *l, const float *x, int64_t nb, float *y)
{
    int64_t hw = (int64_t)l->h * l->w;
    for (int c = 0; c < l->c; c++) {
        float inv = 1.0f / sqrtf(l->running_var[c] + l->eps);
        float scale = l->weight[c] * inv, mean = l->running_mean[c], beta = l->bias_v[c];
        for (int64_t s = 0; s < nb; s++) {
            const float *src = x + (s * l->c + c) * hw;
            float *dst = y + (s * l->c + c) * hw;
            for (int64_t p = 0; p < hw; p++)
                dst[p] = (src[p] - mean) * scale + beta;
        }
    }
}

/* A max pool without padding (AlexNet's 3x3 stride 2, VGG's unfused 2x2):
 * no window leaves the map, so each window row is a strided loop over the
 * output row without bounds tests.  NaNs propagate, as PyTorch's do. */
static void maxpool_nopad(const vv_layer *l, const float *x, int64_t planes, float *y)
{
    int h = l->h, w = l->w, k = l->kernel, st = l->stride, oh = l->oh, ow = l->ow;
    for (int64_t p = 0; p < planes; p++) {
        const float *src = x + p * h * w;
        float *dst = y + p * oh * ow;
        for (int i = 0; i < oh; i++) {
            float *d = dst + (int64_t)i * ow;
            const float *r0 = src + (int64_t)i * st * w;
            for (int j = 0; j < ow; j++)
                d[j] = r0[(int64_t)j * st];
            for (int a = 0; a < k; a++)
                for (int b = a == 0; b < k; b++) {
                    const float *r = r0 + (int64_t)a * w + b;
                    for (int j = 0; j < ow; j++) {
                        float v = r[(int64_t)j * st];
                        d[j] = v > d[j] || v != v ? v : d[j];
                    }
                }
        }
    }
}

static void pool(const vv_layer *l, const float *x, int64_t nb, float *y)
{
    if (l->type == VV_LAYER_MAXPOOL2D && l->pad == 0 &&
        (l->oh - 1) * l->stride + l->kernel <= l->h &&
        (l->ow - 1) * l->stride + l->kernel <= l->w) {
        maxpool_nopad(l, x, nb * l->c, y);
        return;
    }
    vv_backend *be = vv_backend_cpu();
    be->ops->pool2d(be, x, nb * l->c, l->h, l->w, l->kernel, l->stride, l->pad, l->oh, l->ow,
                    l->type == VV_LAYER_MAXPOOL2D, y);
}

static void adaptive_avg(const vv_layer *l, const float *x, int64_t nb, float *y)
{
    vv_backend *be = vv_backend_cpu();
    be->ops->adaptive_avg(be, x, nb * l->c, l->h, l->w, l->oh, l->ow, y);
}

static void linear(const vv_layer *l, const float *x, int64_t nb, float *y)
{
    if (l->bias_v)
        for (int64_t s = 0; s < nb; s++)
            memcpy(y + s * l->out_ch, l->bias_v, (size_t)l->out_ch * sizeof(float));
    vv_backend *be = vv_backend_cpu();
    be->ops->sgemm(be, 0, 1, nb, l->out_ch, l->in_ch, 1.0f, x, l->in_ch, l->weight, l->in_ch,
                   l->bias_v ? 1.0f : 0.0f, y, l->out_ch);
}

void vv__layer_forward(const vv_layer *l, const float *x, int64_t nb, float *y, float *col,
                       float *tmp)
{
    int64_t in_sz = (int64_t)l->c * l->h * l->w;
    switch (l->type) {
    case VV_LAYER_CONV2D: {
        /* col and tmp are one buffer (model_internal.h). */
        int64_t cs, ts;
        vv__scratch_sizes(l, nb, &cs, &ts);
        assert(tmp == col + cs);
        (void)tmp;
        conv(l, NULL, x, nb, y, col, cs + ts, NULL, 0, 0);
        break;
    }
    case VV_LAYER_BATCHNORM2D:
        batchnorm(l, x, nb, y);
        break;
    case VV_LAYER_RELU:
        for (int64_t t = 0; t < nb * in_sz; t++)
            y[t] = x[t] > 0 ? x[t] : 0.0f;
        break;
    case VV_LAYER_MAXPOOL2D:
    case VV_LAYER_AVGPOOL2D:
        pool(l, x, nb, y);
        break;
    case VV_LAYER_ADAPTIVE_AVGPOOL2D:
        adaptive_avg(l, x, nb, y);
        break;
    case VV_LAYER_LINEAR:
        linear(l, x, nb, y);
        break;
    case VV_LAYER_FLATTEN:
    case VV_LAYER_DROPOUT:
        memcpy(y, x, (size_t)(nb * in_sz) * sizeof(float));
        break;
    }
}

void vv__scratch_sizes(const vv_layer *l, int64_t nb, int64_t *col, int64_t *tmp)
{
    *col = *tmp = 0;
    if (l->type == VV_LAYER_CONV2D) {
        int64_t ncol = nb * l->oh * l->ow;
        *col = (int64_t)l->in_ch * l->kernel * l->kernel * ncol;
        *tmp = (int64_t)l->oc * ncol + 2 * (int64_t)l->oc;
    }
}

/* A scratch buffer per thread, kept between calls (fresh large buffers
 * cost a page fault per 4 KiB on every call) and freed when the thread
 * exits. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

typedef struct scratch {
    float *p;
    size_t cap;
} scratch;

static void scratch_free(void *p)
{
    scratch *s = p;
    free(s->p);
    free(s);
}

static void scratch_init(void)
{
    pthread_key_create(&scratch_key, scratch_free);
}

/* own's buffer when own is not NULL (a plan's, per thread), else the
 * calling thread's. */
static float *scratch_get(scratch *own, size_t floats)
{
    scratch *s = own;
    if (!s) {
        pthread_once(&scratch_once, scratch_init);
        s = pthread_getspecific(scratch_key);
    }
    if (!s) {
        if (!(s = calloc(1, sizeof *s)))
            return NULL;
        pthread_setspecific(scratch_key, s);
    }
    if (floats > s->cap) {
        free(s->p);
        s->p = malloc(floats * sizeof(float));
        s->cap = s->p ? floats : 0;
    }
    return s->p;
}

/* Where the fully connected tail of [from, to) starts: its first linear
 * layer after from, or to. */
static int dense_start(const vv_model *m, int from, int to)
{
    for (int i = from + 1; i < to; i++)
        if (m->layers[i].type == VV_LAYER_LINEAR)
            return i;
    return to;
}

/* Layers [from, to) on n samples, in groups whose activations fit in
 * ACT_FLOATS (at least DENSE_GROUP when dense), on own's scratch (the
 * calling thread's when own is NULL); u[i] is conv
 * layer i's Winograd weights or NULL (u may be NULL). */
static int run_seg(const vv_model *m, int from, int to, const float *x, int64_t n, float *y,
                   float *const *u, int dense, scratch *own)
{
    int64_t act = vv_model_size(m, from - 1), cscr = 0;
    for (int i = from; i < to; i++) {
        const vv_layer *l = &m->layers[i];
        if (vv_model_size(m, i) > act)
            act = vv_model_size(m, i);
        if (l->type == VV_LAYER_CONV2D && im2col_floats(l, 1) > cscr)
            cscr = im2col_floats(l, 1);
        /* Room for one sample by Winograd too (its 2.25 (c + oc) floats
         * per pixel, and rows, can pass im2col's 9 c + oc on small maps). */
        int64_t wino = 2 * (int64_t)l->oc + vv__wino_sample_floats(l) + vv__wino_row_floats(l);
        if (vv__wino_ok(l) && wino > cscr)
            cscr = wino;
    }
    if (cscr && cscr < CONV_FLOATS)
        cscr = CONV_FLOATS;
    int64_t g = ACT_FLOATS / (2 * act);
    if (dense && g < DENSE_GROUP)
        g = DENSE_GROUP;
    g = g < 1 ? 1 : g > n ? n : g;
    float *buf = scratch_get(own, (size_t)(2 * act * g + cscr));
    if (!buf)
        return vv_fail(VV_ENOMEM, "forward: out of memory for a group of %lld samples",
                       (long long)g);
    float *a = buf, *b = buf + act * g, *scr = buf + 2 * act * g;
    int64_t in_sz = vv_model_size(m, from - 1), out_sz = vv_model_size(m, to - 1);
    for (int64_t s0 = 0; s0 < n; s0 += g) {
        int64_t nb = n - s0 < g ? n - s0 : g;
        const float *cur = x + s0 * in_sz;
        for (int i = from; i < to; i++) {
            const vv_layer *l = &m->layers[i];
            int last = i == to - 1;
            /* Flatten and dropout (eval) change nothing in memory. */
            if (!last && (l->type == VV_LAYER_FLATTEN || l->type == VV_LAYER_DROPOUT))
                continue;
            /* conv -> batch norm -> relu -> 2x2 max pool in one pass when the
             * range holds them (the pool when the layer's Winograd weights
             * are prepared: scr has room for a sample by Winograd). */
            const vv_layer *bn = NULL;
            int relu = 0, pool = 0, skip = 0;
            if (l->type == VV_LAYER_CONV2D) {
                if (i + 1 < to && m->layers[i + 1].type == VV_LAYER_BATCHNORM2D)
                    bn = &m->layers[i + 1], skip = 1;
                if (i + 1 + skip < to && m->layers[i + 1 + skip].type == VV_LAYER_RELU)
                    relu = 1, skip++;
                if (u && u[i] && i + 1 + skip < to && vv__wino_pool_ok(l, &m->layers[i + 1 + skip]))
                    pool = 1, skip++;
                last = i + skip == to - 1;
            }
            float *dst = last ? y + s0 * out_sz : (cur == a ? b : a);
            if (l->type == VV_LAYER_CONV2D)
                conv(l, u ? u[i] : NULL, cur, nb, dst, scr, cscr, bn, relu, pool);
            else
                vv__layer_forward(l, cur, nb, dst, NULL, NULL);
            cur = dst;
            i += skip;
        }
    }
    return 0;
}

/* The Winograd weights of the conv layers of [from, to) that take them, in
 * one block (*block, freed by the caller) that u[i] points into; *u and
 * *block stay NULL when there are none or they would pass WINO_FLOATS. */
static int wino_prepare(const vv_model *m, int from, int to, float ***u, float **block)
{
    int64_t total = 0;
    *u = NULL;
    *block = NULL;
    for (int i = from; i < to; i++)
        if (vv__wino_ok(&m->layers[i]))
            total += vv__wino_weight_floats(&m->layers[i]);
    if (total == 0 || total > WINO_FLOATS)
        return 0;
    *u = calloc((size_t)m->n, sizeof **u);
    *block = malloc((size_t)total * sizeof **block);
    if (!*u || !*block) {
        free(*u);
        free(*block);
        *u = NULL;
        *block = NULL;
        return vv_fail(VV_ENOMEM, "forward: out of memory for %lld Winograd weights",
                       (long long)total);
    }
    float *p = *block;
    for (int i = from; i < to; i++)
        if (vv__wino_ok(&m->layers[i])) {
            vv__wino_weights(&m->layers[i], p);
            (*u)[i] = p;
            p += vv__wino_weight_floats(&m->layers[i]);
        }
    return 0;
}

typedef struct fwd_part {
    const vv_model *m;
    int from, to;
    const float *x;
    int64_t n;
    float *y;
    float *const *u;
    scratch *own; /* the part's scratch, kept by the plan */
    int rc;
    char detail[512];
} fwd_part;

static void fwd_run(void *ctx, int t)
{
    fwd_part *p = (fwd_part *)ctx + t;
    p->rc = p->n > 0 ? run_seg(p->m, p->from, p->to, p->x, p->n, p->y, p->u, 0, p->own) : 0;
    if (p->rc < 0)
        snprintf(p->detail, sizeof p->detail, "%s", vv_err_detail());
}

/* Layers [from, to) (no fully connected tail) split by samples over
 * threads, each with a single-threaded BLAS and the scratch own[t]. */
static int run_parallel(const vv_model *m, int from, int to, const float *x, int64_t n, float *y,
                        float *const *u, int threads, scratch *own)
{
    if (threads <= 1)
        return run_seg(m, from, to, x, n, y, u, 0, NULL);
    int64_t in = vv_model_size(m, from - 1), out = vv_model_size(m, to - 1);
    fwd_part parts[MAX_THREADS];
    int blas = vv_blas_threads();
    vv_blas_set_threads(1);
    for (int t = 0; t < threads; t++) {
        int64_t s0 = n * t / threads, s1 = n * (t + 1) / threads;
        parts[t] = (fwd_part){.m = m,
                              .from = from,
                              .to = to,
                              .x = x + s0 * in,
                              .n = s1 - s0,
                              .y = y + s0 * out,
                              .u = u,
                              .own = &own[t]};
    }
    vv__run_parts(threads, fwd_run, parts);
    vv_blas_set_threads(blas);
    for (int t = 0; t < threads; t++)
        if (parts[t].rc < 0)
            return vv_fail(parts[t].rc, "%s", parts[t].detail);
    return 0;
}

/* An adaptive average pool that enlarges its maps (AlexNet's at 64x64
 * inputs: 1x1 -> 6x6), then flatten and dropout, then the linear layer lin:
 * the pool is linear, so the pair is one linear layer on the pool's input
 * whose weights wf (out x c h w) sum lin's weights over the cells each
 * input pixel feeds, divided by the cells' sizes.  36 times fewer
 * multiplications for AlexNet's first classifier layer. */
static void fold_pool_linear(const vv_layer *ap, const vv_layer *lin, float *wf)
{
    int h = ap->h, w = ap->w, oh = ap->oh, ow = ap->ow;
    int64_t c = ap->c, in = c * h * w, pin = c * oh * ow;
    memset(wf, 0, (size_t)(lin->out_ch * in) * sizeof *wf);
    for (int64_t o = 0; o < lin->out_ch; o++)
        for (int64_t ci = 0; ci < c; ci++) {
            const float *src = lin->weight + o * pin + ci * oh * ow;
            float *dst = wf + o * in + ci * h * w;
            for (int i = 0; i < oh; i++) {
                int h0 = i * h / oh, h1 = ((i + 1) * h + oh - 1) / oh;
                for (int j = 0; j < ow; j++) {
                    int w0 = j * w / ow, w1 = ((j + 1) * w + ow - 1) / ow;
                    float v = src[i * ow + j] / (float)((h1 - h0) * (w1 - w0));
                    for (int a = h0; a < h1; a++)
                        for (int b = w0; b < w1; b++)
                            dst[a * w + b] += v;
                }
            }
        }
}

/* The layer before the fully connected tail d that fold_pool_linear takes
 * (skipping flatten and dropout), or -1. */
static int foldable_pool(const vv_model *m, int from, int d)
{
    int i = d - 1;
    while (i >= from &&
           (m->layers[i].type == VV_LAYER_FLATTEN || m->layers[i].type == VV_LAYER_DROPOUT))
        i--;
    if (i < from || m->layers[i].type != VV_LAYER_ADAPTIVE_AVGPOOL2D)
        return -1;
    const vv_layer *ap = &m->layers[i];
    return (int64_t)ap->h * ap->w < (int64_t)ap->oh * ap->ow ? i : -1;
}

/* The fully connected tail [d, to) on the head's outputs mid (n x in):
 * when pool >= 0, mid is that pool's input and layer d runs with the
 * folded weights wf (fold_pool_linear). */
static int run_tail(const vv_model *m, int pool, const float *wf, int d, int to, const float *mid,
                    int64_t n, float *y, float *const *u)
{
    if (pool < 0)
        return run_seg(m, d, to, mid, n, y, u, 1, NULL);
    const vv_layer *ap = &m->layers[pool], *lin = &m->layers[d];
    int64_t in = (int64_t)ap->c * ap->h * ap->w, out = lin->out_ch;
    float *y1 = d + 1 == to ? y : malloc((size_t)(n * out) * sizeof *y1);
    int rc = 0;
    if (!y1) {
        rc = vv_fail(VV_ENOMEM, "forward: out of memory for %lld x %lld outputs", (long long)n,
                     (long long)out);
    } else {
        if (lin->bias_v)
            for (int64_t s = 0; s < n; s++)
                memcpy(y1 + s * out, lin->bias_v, (size_t)out * sizeof(float));
        vv_sgemm(0, 1, n, out, in, 1.0f, mid, in, wf, in, lin->bias_v ? 1.0f : 0.0f, y1, out);
        if (d + 1 < to)
            rc = run_seg(m, d + 1, to, y1, n, y, u, 1, NULL);
    }
    if (y1 != y)
        free(y1);
    return rc;
}

struct vv_forward_plan {
    const vv_model *m;
    vv_model_dev *md; /* a device's weights (the rest unused), or NULL */
    int from, to;
    float **u;                /* u[i]: conv layer i's Winograd weights, or NULL */
    float *block;             /* all of them */
    int d, pool;              /* the fully connected tail's start; the pool folded into it, or -1 */
    float *wf;                /* the folded weights */
    scratch own[MAX_THREADS]; /* each thread's scratch, kept between runs */
};

/* The forward pass: the convolutional head split over threads by samples,
 * then the fully connected tail on all samples at once with BLAS's own
 * threads (its weights read once per DENSE_GROUP samples). */
int vv_forward_plan_run(vv_forward_plan *p, const float *x, int64_t n, float *y, int threads)
{
    const vv_model *m = p->m;
    int from = p->from, to = p->to, rc = 0;
    float *const *u = p->u;
    if (n < 0)
        return vv_fail(VV_EINVAL, "forward: %lld samples", (long long)n);
    if (p->md)
        return vv_model_forward_dev(p->md, from, to, x, n, y);
    if (n == 0)
        return 0;
    if (threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc < 1 ? 1 : (int)nc;
    }
    threads = threads > MAX_THREADS ? MAX_THREADS : threads;
    if (threads > n / 8)
        threads = (int)(n / 8);
    threads = threads < 1 ? 1 : threads;
    int d = p->d, pool = p->pool, head = pool >= 0 ? pool : d;
    if (d == to)
        return run_parallel(m, from, to, x, n, y, u, threads, p->own);
    float *mid =
        head == from ? (float *)x : malloc((size_t)(n * vv_model_size(m, head - 1)) * sizeof *mid);
    if (!mid)
        rc = vv_fail(VV_ENOMEM, "forward: out of memory for %lld samples' features", (long long)n);
    if (rc == 0 && head > from)
        rc = run_parallel(m, from, head, x, n, mid, u, threads, p->own);
    if (rc == 0)
        rc = run_tail(m, pool, p->wf, d, to, mid, n, y, u);
    if (mid != x)
        free(mid);
    return rc;
}

void vv_forward_plan_free(vv_forward_plan *p)
{
    if (p) {
        free(p->u);
        free(p->block);
        free(p->wf);
        for (int t = 0; t < MAX_THREADS; t++)
            free(p->own[t].p);
        free(p);
    }
}

int vv_forward_plan_on(const vv_model *m, vv_model_dev *md, int from, int to, vv_forward_plan **out)
{
    *out = NULL;
    if (!m->finished || from < 0 || to > m->n || from >= to)
        return vv_fail(VV_EINVAL, "forward: bad layer range [%d, %d) of %d layers", from, to, m->n);
    vv_forward_plan *p = calloc(1, sizeof *p);
    if (!p)
        return vv_fail(VV_ENOMEM, "forward: out of memory");
    *p = (vv_forward_plan){.m = m, .md = md, .from = from, .to = to};
    if (md) {
        *out = p;
        return 0;
    }
    p->d = dense_start(m, from, to);
    p->pool = p->d < to ? foldable_pool(m, from, p->d) : -1;
    int rc = wino_prepare(m, from, to, &p->u, &p->block);
    if (rc == 0 && p->pool >= 0) {
        const vv_layer *ap = &m->layers[p->pool], *lin = &m->layers[p->d];
        int64_t nw = (int64_t)lin->out_ch * ap->c * ap->h * ap->w;
        if ((p->wf = malloc((size_t)nw * sizeof *p->wf)) != NULL)
            fold_pool_linear(ap, lin, p->wf);
        else
            rc =
                vv_fail(VV_ENOMEM, "forward: out of memory for %lld folded weights", (long long)nw);
    }
    if (rc < 0) {
        vv_forward_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int vv_forward_plan_new(const vv_model *m, int from, int to, vv_forward_plan **out)
{
    return vv_forward_plan_on(m, NULL, from, to, out);
}

/* A plan for one call (its weights transformed for these n samples). */
static int forward_once(const vv_model *m, int from, int to, const float *x, int64_t n, float *y,
                        int threads)
{
    vv_forward_plan *p;
    int rc = vv_forward_plan_new(m, from, to, &p);
    if (rc == 0)
        rc = vv_forward_plan_run(p, x, n, y, threads);
    vv_forward_plan_free(p);
    return rc;
}

int vv_model_forward(const vv_model *m, int from, int to, const float *x, int64_t n, float *y)
{
    return forward_once(m, from, to, x, n, y, 1);
}

int vv_model_forward_parallel(const vv_model *m, int from, int to, const float *x, int64_t n,
                              float *y, int threads)
{
    return forward_once(m, from, to, x, n, y, threads);
}
