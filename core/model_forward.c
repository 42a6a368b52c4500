/* model_forward.c - the eval-mode forward pass: convolutions as im2col +
 * one sgemm per group of samples, the other layers as plain loops. */
#include "model_internal.h"
#include "vv/blas.h"
#include "vv/model.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Scratch budget per forward call, in floats (about 64 MiB). */
#define SCRATCH_FLOATS (16l << 20)

void vv__im2col(const float *x, int c, int h, int w, int k, int stride, int pad, int oh, int ow,
                float *col, int64_t ldc)
{
    for (int ci = 0; ci < c; ci++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = col + ((int64_t)(ci * k + ki) * k + kj) * ldc;
                const float *xc = x + (int64_t)ci * h * w;
                for (int i = 0; i < oh; i++) {
                    int y = i * stride - pad + ki;
                    float *dst = row + (int64_t)i * ow;
                    if (y < 0 || y >= h) {
                        memset(dst, 0, (size_t)ow * sizeof(float));
                        continue;
                    }
                    const float *src = xc + (int64_t)y * w;
                    for (int j = 0; j < ow; j++) {
                        int xx = j * stride - pad + kj;
                        dst[j] = xx >= 0 && xx < w ? src[xx] : 0.0f;
                    }
                }
            }
}

/* Convolution of nb samples: x (nb x c x h x w) -> y (nb x oc x oh x ow).
 * col holds ckk x (nb * oh * ow) floats and tmp oc x (nb * oh * ow). */
static void conv(const vv_layer *l, const float *x, int64_t nb, float *y, float *col, float *tmp)
{
    int64_t ohw = (int64_t)l->oh * l->ow, ncol = nb * ohw;
    int64_t ckk = (int64_t)l->in_ch * l->kernel * l->kernel;
    int64_t in_sz = (int64_t)l->c * l->h * l->w;
    for (int64_t s = 0; s < nb; s++)
        vv__im2col(x + s * in_sz, l->c, l->h, l->w, l->kernel, l->stride, l->pad, l->oh, l->ow,
                   col + s * ohw, ncol);
    vv_sgemm(0, 0, l->oc, ncol, ckk, 1.0f, l->weight, ckk, col, ncol, 0.0f, tmp, ncol);
    for (int64_t s = 0; s < nb; s++)
        for (int o = 0; o < l->oc; o++) {
            float b = l->bias_v ? l->bias_v[o] : 0.0f;
            const float *src = tmp + (int64_t)o * ncol + s * ohw;
            float *dst = y + (s * l->oc + o) * ohw;
            for (int64_t p = 0; p < ohw; p++)
                dst[p] = src[p] + b;
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

static void pool(const vv_layer *l, const float *x, int64_t nb, float *y)
{
    int is_max = l->type == VV_LAYER_MAXPOOL2D;
    float inv = 1.0f / (float)(l->kernel * l->kernel);
    for (int64_t sc = 0; sc < nb * l->c; sc++) {
        const float *src = x + sc * l->h * l->w;
        float *dst = y + sc * l->oh * l->ow;
        for (int i = 0; i < l->oh; i++)
            for (int j = 0; j < l->ow; j++) {
                int y0 = i * l->stride - l->pad, x0 = j * l->stride - l->pad;
                float acc = is_max ? -FLT_MAX : 0.0f;
                for (int a = y0; a < y0 + l->kernel; a++) {
                    if (a < 0 || a >= l->h)
                        continue;
                    for (int b = x0; b < x0 + l->kernel; b++) {
                        if (b < 0 || b >= l->w)
                            continue;
                        float v = src[a * l->w + b];
                        if (is_max)
                            acc = v > acc || isnan(v) ? v : acc;
                        else
                            acc += v;
                    }
                }
                dst[i * l->ow + j] = is_max ? acc : acc * inv;
            }
    }
}

static void adaptive_avg(const vv_layer *l, const float *x, int64_t nb, float *y)
{
    for (int64_t sc = 0; sc < nb * l->c; sc++) {
        const float *src = x + sc * l->h * l->w;
        float *dst = y + sc * l->oh * l->ow;
        for (int i = 0; i < l->oh; i++) {
            int h0 = i * l->h / l->oh, h1 = ((i + 1) * l->h + l->oh - 1) / l->oh;
            for (int j = 0; j < l->ow; j++) {
                int w0 = j * l->w / l->ow, w1 = ((j + 1) * l->w + l->ow - 1) / l->ow;
                float acc = 0;
                for (int a = h0; a < h1; a++)
                    for (int b = w0; b < w1; b++)
                        acc += src[a * l->w + b];
                dst[i * l->ow + j] = acc / (float)((h1 - h0) * (w1 - w0));
            }
        }
    }
}

static void linear(const vv_layer *l, const float *x, int64_t nb, float *y)
{
    if (l->bias_v)
        for (int64_t s = 0; s < nb; s++)
            memcpy(y + s * l->out_ch, l->bias_v, (size_t)l->out_ch * sizeof(float));
    vv_sgemm(0, 1, nb, l->out_ch, l->in_ch, 1.0f, x, l->in_ch, l->weight, l->in_ch,
             l->bias_v ? 1.0f : 0.0f, y, l->out_ch);
}

void vv__layer_forward(const vv_layer *l, const float *x, int64_t nb, float *y, float *col,
                       float *tmp)
{
    int64_t in_sz = (int64_t)l->c * l->h * l->w;
    switch (l->type) {
    case VV_LAYER_CONV2D:
        conv(l, x, nb, y, col, tmp);
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
        *tmp = (int64_t)l->oc * ncol;
    }
}

int vv_model_forward(const vv_model *m, int from, int to, const float *x, int64_t n, float *y)
{
    if (!m->finished || from < 0 || to > m->n || from >= to || n < 0)
        return vv_fail(VV_EINVAL, "forward: bad layer range [%d, %d) of %d layers", from, to,
                       m->n);
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
    float *buf = malloc((size_t)(2 * act + scr) * (size_t)g * sizeof(float));
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
            int64_t cs, ts;
            vv__scratch_sizes(l, nb, &cs, &ts);
            float *dst = i == to - 1 ? y + s0 * out_sz : (cur == a ? b : a);
            vv__layer_forward(l, cur, nb, dst, col, col + cs);
            cur = dst;
        }
    }
    free(buf);
    return 0;
}
