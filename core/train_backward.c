/* train_backward.c - the backward pass of every layer type: convolutions
 * as one gemm for the weight gradient and one for the column gradient
 * (folded back with col2im) per group of samples, linear layers as two
 * gemms, the other layers as plain loops.  Sums over the batch (biases,
 * batch-norm statistics) are accumulated in double.  Then the optimizers'
 * update rules. */
#include "model_internal.h"
#include "vv/blas.h"
#include "vv/model.h"

#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <immintrin.h>
#endif

/* dst[j * stride] += src[j] for j < n (stride 1 vectorises). */
static void add_strided(float *restrict dst, const float *restrict src, int n, int stride)
{
    if (stride == 1)
        for (int j = 0; j < n; j++)
            dst[j] += src[j];
    else
        for (int j = 0; j < n; j++)
            dst[(int64_t)j * stride] += src[j];
}

/* The adjoint of vv__im2col: adds the columns col (c k k) x (oh ow), with
 * leading dimension ldc, back into one sample x (c x h x w). */
static void col2im(const float *col, int c, int h, int w, int k, int stride, int pad, int oh,
                   int ow, int64_t ldc, float *x)
{
    for (int ci = 0; ci < c; ci++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                const float *row = col + ((int64_t)(ci * k + ki) * k + kj) * ldc;
                float *xc = x + (int64_t)ci * h * w;
                /* Output columns j whose input column j stride - pad + kj is
                 * inside the image: [j0, j1). */
                int j0 = pad > kj ? (pad - kj + stride - 1) / stride : 0;
                int j1 = w + pad - kj > 0 ? (w + pad - kj - 1) / stride + 1 : 0;
                if (j1 > ow)
                    j1 = ow;
                if (j0 >= j1)
                    continue;
                for (int i = 0; i < oh; i++) {
                    int y = i * stride - pad + ki;
                    if (y < 0 || y >= h)
                        continue;
                    add_strided(xc + (int64_t)y * w + j0 * stride - pad + kj,
                                row + (int64_t)i * ow + j0, j1 - j0, stride);
                }
            }
}

int64_t vv__backward_scratch(const vv_layer *l)
{
    if (l->type != VV_LAYER_CONV2D)
        return 0;
    return ((int64_t)l->in_ch * l->kernel * l->kernel + l->oc) * l->oh * l->ow;
}

static void conv_backward(const vv_layer *l, const vv__saved *s, int64_t nb, const float *dy,
                          float *dx, float *dw, float *db, float *scratch, int64_t nscratch)
{
    int64_t ohw = (int64_t)l->oh * l->ow, ckk = (int64_t)l->in_ch * l->kernel * l->kernel;
    int64_t in_sz = (int64_t)l->c * l->h * l->w, out_sz = (int64_t)l->oc * ohw;
    int64_t g = nscratch / vv__backward_scratch(l);
    if (g > nb)
        g = nb;
    if (db)
        for (int o = 0; o < l->oc; o++) {
            double acc = 0;
            for (int64_t t = 0; t < nb; t++) {
                const float *d = dy + t * out_sz + (int64_t)o * ohw;
                for (int64_t p = 0; p < ohw; p++)
                    acc += d[p];
            }
            db[o] = (float)acc;
        }
    for (int64_t s0 = 0; s0 < nb; s0 += g) {
        int64_t gb = nb - s0 < g ? nb - s0 : g, ncol = gb * ohw;
        float *col = scratch, *tmp = scratch + ckk * ncol;
        for (int64_t t = 0; t < gb; t++) {
            vv__im2col(s->x + (s0 + t) * in_sz, l->c, l->h, l->w, l->kernel, l->stride, l->pad,
                       l->oh, l->ow, col + t * ohw, ncol);
            for (int o = 0; o < l->oc; o++)
                memcpy(tmp + o * ncol + t * ohw, dy + (s0 + t) * out_sz + o * ohw,
                       (size_t)ohw * sizeof(float));
        }
        /* dW (oc x ckk) += dY (oc x ncol) col^T */
        vv_sgemm(0, 1, l->oc, ckk, ncol, 1.0f, tmp, ncol, col, ncol, s0 ? 1.0f : 0.0f, dw, ckk);
        if (!dx)
            continue;
        /* dcol (ckk x ncol) = W^T dY, folded back into the inputs. */
        vv_sgemm(1, 0, ckk, ncol, l->oc, 1.0f, l->weight, ckk, tmp, ncol, 0.0f, col, ncol);
        memset(dx + s0 * in_sz, 0, (size_t)(gb * in_sz) * sizeof(float));
        for (int64_t t = 0; t < gb; t++)
            col2im(col + t * ohw, l->c, l->h, l->w, l->kernel, l->stride, l->pad, l->oh, l->ow,
                   ncol, dx + (s0 + t) * in_sz);
    }
}

void vv__bn_backward(const vv_layer *l, const vv__saved *s, int64_t nb, const float *dy, float *dx,
                     float *dw, float *db, int c0, int c1)
{
    int64_t hw = (int64_t)l->h * l->w;
    double m = (double)(nb * hw);
    for (int c = c0; c < c1; c++) {
        float mean = s->mean[c], inv = s->invstd[c];
        double sdy = 0, sdot = 0;
        for (int64_t t = 0; t < nb; t++) {
            const float *x = s->x + (t * l->c + c) * hw, *d = dy + (t * l->c + c) * hw;
            for (int64_t p = 0; p < hw; p++) {
                sdy += d[p];
                sdot += (double)d[p] * (x[p] - mean);
            }
        }
        db[c] = (float)sdy;
        dw[c] = (float)(sdot * inv);
        if (!dx)
            continue;
        /* dx = w inv (dy - mean(dy) - xhat mean(dy xhat)) */
        float gm = (float)(sdy / m), proj = (float)(sdot * inv * inv / m);
        float a = inv * l->weight[c];
        for (int64_t t = 0; t < nb; t++) {
            const float *x = s->x + (t * l->c + c) * hw, *d = dy + (t * l->c + c) * hw;
            float *o = dx + (t * l->c + c) * hw;
            for (int64_t p = 0; p < hw; p++)
                o[p] = (d[p] - gm - (x[p] - mean) * proj) * a;
        }
    }
}

static void pool_backward(const vv_layer *l, const vv__saved *s, int64_t nb, const float *dy,
                          float *dx)
{
    int64_t hw = (int64_t)l->h * l->w, ohw = (int64_t)l->oh * l->ow;
    memset(dx, 0, (size_t)(nb * l->c * hw) * sizeof(float));
    if (l->type == VV_LAYER_MAXPOOL2D) {
        for (int64_t sc = 0; sc < nb * l->c; sc++)
            for (int64_t o = 0; o < ohw; o++)
                dx[sc * hw + s->argmax[sc * ohw + o]] += dy[sc * ohw + o];
        return;
    }
    float inv = 1.0f / (float)(l->kernel * l->kernel);
    for (int64_t sc = 0; sc < nb * l->c; sc++) {
        float *dst = dx + sc * hw;
        const float *src = dy + sc * ohw;
        for (int i = 0; i < l->oh; i++)
            for (int j = 0; j < l->ow; j++) {
                int y0 = i * l->stride - l->pad, x0 = j * l->stride - l->pad;
                float d = src[i * l->ow + j] * inv;
                for (int a = y0 < 0 ? 0 : y0; a < y0 + l->kernel && a < l->h; a++)
                    for (int b = x0 < 0 ? 0 : x0; b < x0 + l->kernel && b < l->w; b++)
                        dst[a * l->w + b] += d;
            }
    }
}

static void adaptive_backward(const vv_layer *l, int64_t nb, const float *dy, float *dx)
{
    int64_t hw = (int64_t)l->h * l->w, ohw = (int64_t)l->oh * l->ow;
    memset(dx, 0, (size_t)(nb * l->c * hw) * sizeof(float));
    for (int64_t sc = 0; sc < nb * l->c; sc++) {
        float *dst = dx + sc * hw;
        const float *src = dy + sc * ohw;
        for (int i = 0; i < l->oh; i++) {
            int h0 = i * l->h / l->oh, h1 = ((i + 1) * l->h + l->oh - 1) / l->oh;
            for (int j = 0; j < l->ow; j++) {
                int w0 = j * l->w / l->ow, w1 = ((j + 1) * l->w + l->ow - 1) / l->ow;
                float d = src[i * l->ow + j] / (float)((h1 - h0) * (w1 - w0));
                for (int a = h0; a < h1; a++)
                    for (int b = w0; b < w1; b++)
                        dst[a * l->w + b] += d;
            }
        }
    }
}

static void linear_backward(const vv_layer *l, const vv__saved *s, int64_t nb, const float *dy,
                            float *dx, float *dw, float *db)
{
    int in = l->in_ch, out = l->out_ch;
    /* dW (out x in) = dY^T X; dX (nb x in) = dY W */
    vv_sgemm(1, 0, out, in, nb, 1.0f, dy, out, s->x, in, 0.0f, dw, in);
    if (db) /* column sums, 16 columns at a time (rows stay in cache) */
        for (int o0 = 0; o0 < out; o0 += 16) {
            int w = out - o0 < 16 ? out - o0 : 16;
            double acc[16] = {0};
            for (int64_t t = 0; t < nb; t++) {
                const float *d = dy + t * out + o0;
                for (int q = 0; q < w; q++)
                    acc[q] += d[q];
            }
            for (int q = 0; q < w; q++)
                db[o0 + q] = (float)acc[q];
        }
    if (dx)
        vv_sgemm(0, 0, nb, in, out, 1.0f, dy, out, l->weight, in, 0.0f, dx, in);
}

static void relu_backward(const float *restrict y, const float *restrict dy, int64_t n,
                          float *restrict dx)
{
    for (int64_t t = 0; t < n; t++) {
        float d = dy[t]; /* loaded unconditionally, so the loop vectorises */
        dx[t] = y[t] > 0 ? d : 0.0f;
    }
}

void vv__layer_backward(const vv_layer *l, const vv__saved *s, int64_t nb, const float *dy,
                        float *dx, float *dw, float *db, float *scratch, int64_t nscratch)
{
    int64_t in_sz = (int64_t)l->c * l->h * l->w, n_in = nb * in_sz;
    switch (l->type) {
    case VV_LAYER_CONV2D:
        conv_backward(l, s, nb, dy, dx, dw, db, scratch, nscratch);
        break;
    case VV_LAYER_BATCHNORM2D:
        vv__bn_backward(l, s, nb, dy, dx, dw, db, 0, l->c);
        break;
    case VV_LAYER_RELU:
        if (dx)
            relu_backward(s->y, dy, n_in, dx);
        break;
    case VV_LAYER_MAXPOOL2D:
    case VV_LAYER_AVGPOOL2D:
        if (dx)
            pool_backward(l, s, nb, dy, dx);
        break;
    case VV_LAYER_ADAPTIVE_AVGPOOL2D:
        if (dx)
            adaptive_backward(l, nb, dy, dx);
        break;
    case VV_LAYER_LINEAR:
        linear_backward(l, s, nb, dy, dx, dw, db);
        break;
    case VV_LAYER_DROPOUT:
    case VV_LAYER_FLATTEN:
        if (dx && s->keep) /* a dropout mask; without one, the identity */
            for (int64_t t = 0; t < n_in; t++)
                dx[t] = s->keep[t] ? dy[t] * s->scale : 0.0f;
        else if (dx && dx != dy)
            memmove(dx, dy, (size_t)n_in * sizeof(float));
        break;
    }
}

/* ---- Optimizer updates ----------------------------------------------------------- */

void vv__sgd_update(float *restrict w, const float *restrict g, float *restrict buf, int64_t n,
                    float lr, float wd, float mom)
{
    if (buf)
        for (int64_t j = 0; j < n; j++) {
            buf[j] = buf[j] * mom + (g[j] + wd * w[j]);
            w[j] -= lr * buf[j];
        }
    else
        for (int64_t j = 0; j < n; j++)
            w[j] -= lr * (g[j] + wd * w[j]);
}

/* GCC does not vectorise sqrtf (its errno path), so on x86 the loop runs
 * four lanes at a time with SSE; both paths do the same IEEE operations in
 * the same order and give the same bits. */
void vv__adam_update(float *restrict w, const float *restrict g, float *restrict m1,
                     float *restrict m2, int64_t n, float step_size, float bc2_sqrt, float wd,
                     float b1, float b2, float eps)
{
    float c1 = 1 - b1, c2 = 1 - b2;
    int64_t j = 0;
#ifdef __SSE2__
    __m128 vwd = _mm_set1_ps(wd), vb1 = _mm_set1_ps(b1), vb2 = _mm_set1_ps(b2);
    __m128 vc1 = _mm_set1_ps(c1), vc2 = _mm_set1_ps(c2), vs = _mm_set1_ps(step_size);
    __m128 vbc = _mm_set1_ps(bc2_sqrt), veps = _mm_set1_ps(eps);
    for (; j + 4 <= n; j += 4) {
        __m128 vw = _mm_loadu_ps(w + j);
        __m128 d = _mm_add_ps(_mm_loadu_ps(g + j), _mm_mul_ps(vwd, vw));
        __m128 a = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(m1 + j), vb1), _mm_mul_ps(d, vc1));
        __m128 v =
            _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(m2 + j), vb2), _mm_mul_ps(_mm_mul_ps(d, d), vc2));
        _mm_storeu_ps(m1 + j, a);
        _mm_storeu_ps(m2 + j, v);
        __m128 den = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(v), vbc), veps);
        _mm_storeu_ps(w + j, _mm_sub_ps(vw, _mm_div_ps(_mm_mul_ps(vs, a), den)));
    }
#endif
    for (; j < n; j++) {
        float d = g[j] + wd * w[j];
        m1[j] = m1[j] * b1 + d * c1;
        m2[j] = m2[j] * b2 + d * d * c2;
        float denom = sqrtf(m2[j]) / bc2_sqrt + eps;
        w[j] -= step_size * m1[j] / denom;
    }
}
