/* model_forward.c - the eval-mode forward pass: convolutions as im2col +
 * one sgemm per group of samples, the other layers as plain loops. */
#include "model_internal.h"
#include "vv/backend.h"
#include "vv/blas.h"
#include "vv/model.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Scratch budget per forward call, in floats (about 16 MiB): groups of
 * samples small enough to stay in the caches between layers. */
#define SCRATCH_FLOATS (4l << 20)

/* Convolution of nb samples: x (nb x c x h x w) -> y (nb x oc x oh x ow).
 * col holds ckk x (nb * oh * ow) floats and tmp oc x (nb * oh * ow), then
 * the 2 oc of the output affine (vv__scratch_sizes counts them). */
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

/* bn (may be NULL) and relu are a following batch norm and ReLU fused into
 * the conv's output pass (affine_act, which also reorders the sgemm's
 * channel-major output into sample-major). */
static void conv(const vv_layer *l, const float *x, int64_t nb, float *y, float *col, float *tmp,
                 const vv_layer *bn, int relu)
{
    int64_t ohw = (int64_t)l->oh * l->ow, ncol = nb * ohw;
    int64_t ckk = (int64_t)l->in_ch * l->kernel * l->kernel;
    float *sc = tmp + (int64_t)l->oc * ncol;
    vv__conv_affine(l, bn, sc, sc + l->oc);
    vv_backend *be = vv_backend_cpu();
    be->ops->im2col(be, x, nb, l->c, l->h, l->w, l->kernel, l->stride, l->pad, l->oh, l->ow, col,
                    ncol);
    be->ops->sgemm(be, 0, 0, l->oc, ncol, ckk, 1.0f, l->weight, ckk, col, ncol, 0.0f, tmp, ncol);
    be->ops->affine_act(be, tmp, ncol, ohw, nb, l->oc, ohw, sc, sc + l->oc, relu, y);
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

static void pool(const vv_layer *l, const float *x, int64_t nb, float *y)
{
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
    case VV_LAYER_CONV2D:
        conv(l, x, nb, y, col, tmp, NULL, 0);
        break;
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

static float *scratch_get(size_t floats)
{
    pthread_once(&scratch_once, scratch_init);
    scratch *s = pthread_getspecific(scratch_key);
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

void vv__scratch_release(void)
{
    pthread_once(&scratch_once, scratch_init);
    scratch *s = pthread_getspecific(scratch_key);
    if (s) {
        pthread_setspecific(scratch_key, NULL);
        scratch_free(s);
    }
}

int vv_model_forward(const vv_model *m, int from, int to, const float *x, int64_t n, float *y)
{
    if (!m->finished || from < 0 || to > m->n || from >= to || n < 0)
        return vv_fail(VV_EINVAL, "forward: bad layer range [%d, %d) of %d layers", from, to, m->n);
    if (n == 0)
        return 0;
    /* Per-sample floats of the widest activation and of the conv scratch. */
    int64_t act = vv_model_size(m, from - 1), scr = 0;
    for (int i = from; i < to; i++) {
        int64_t c, t;
        vv__scratch_sizes(&m->layers[i], 1, &c, &t);
        if (vv_model_size(m, i) > act)
            act = vv_model_size(m, i);
        if (c + t > scr)
            scr = c + t;
    }
    int64_t g = SCRATCH_FLOATS / (2 * act + scr);
    if (g < 1)
        g = 1;
    if (g > n)
        g = n;
    float *buf = scratch_get((size_t)(2 * act + scr) * (size_t)g);
    if (!buf)
        return vv_fail(VV_ENOMEM, "forward: out of memory for a group of %lld samples",
                       (long long)g);
    float *a = buf, *b = buf + act * g, *col = buf + 2 * act * g;
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
            int64_t cs, ts;
            vv__scratch_sizes(l, nb, &cs, &ts);
            /* conv -> batch norm -> relu in one pass when the range holds all
             * three (and does not end inside them). */
            const vv_layer *bn = NULL;
            int relu = 0, skip = 0;
            if (l->type == VV_LAYER_CONV2D) {
                if (i + 1 < to && m->layers[i + 1].type == VV_LAYER_BATCHNORM2D)
                    bn = &m->layers[i + 1], skip = 1;
                if (i + 1 + skip < to && m->layers[i + 1 + skip].type == VV_LAYER_RELU)
                    relu = 1, skip++;
                last = i + skip == to - 1;
            }
            float *dst = last ? y + s0 * out_sz : (cur == a ? b : a);
            if (l->type == VV_LAYER_CONV2D)
                conv(l, cur, nb, dst, col, col + cs, bn, relu);
            else
                vv__layer_forward(l, cur, nb, dst, col, col + cs);
            cur = dst;
            i += skip;
        }
    }
    return 0;
}

typedef struct fwd_part {
    const vv_model *m;
    int from, to;
    const float *x;
    int64_t n;
    float *y;
    int rc;
    char detail[512];
    pthread_t tid;
} fwd_part;

static void *fwd_thread(void *arg)
{
    fwd_part *p = arg;
    p->rc = vv_model_forward(p->m, p->from, p->to, p->x, p->n, p->y);
    if (p->rc < 0)
        snprintf(p->detail, sizeof p->detail, "%s", vv_err_detail());
    vv__scratch_release();
    return NULL;
}

int vv_model_forward_parallel(const vv_model *m, int from, int to, const float *x, int64_t n,
                              float *y, int threads)
{
    if (threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc < 1 ? 1 : nc > 8 ? 8 : (int)nc;
    }
    if (threads > n / 8)
        threads = (int)(n / 8);
    if (threads <= 1 || !m->finished || from < 0 || to > m->n || from >= to)
        return vv_model_forward(m, from, to, x, n, y);
    int64_t in = vv_model_size(m, from - 1), out = vv_model_size(m, to - 1);
    fwd_part parts[8];
    int blas = vv_blas_threads();
    vv_blas_set_threads(1);
    int started = 0;
    for (int t = 0; t < threads; t++) {
        int64_t s0 = n * t / threads, s1 = n * (t + 1) / threads;
        parts[t] = (fwd_part){
            .m = m, .from = from, .to = to, .x = x + s0 * in, .n = s1 - s0, .y = y + s0 * out};
    }
    for (int t = 1; t < threads; t++, started++)
        if (pthread_create(&parts[t].tid, NULL, fwd_thread, &parts[t]))
            break;
    fwd_thread(&parts[0]);
    /* Parts whose thread did not start run here. */
    for (int t = started + 1; t < threads; t++)
        fwd_thread(&parts[t]);
    for (int t = 1; t <= started; t++)
        pthread_join(parts[t].tid, NULL);
    vv_blas_set_threads(blas);
    for (int t = 0; t < threads; t++)
        if (parts[t].rc < 0)
            return vv_fail(parts[t].rc, "%s", parts[t].detail);
    return 0;
}
