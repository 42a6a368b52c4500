/* backend_cpu.c - the reference backend: host memory and OpenBLAS. */
#include "model_internal.h"
#include "vv/backend.h"
#include "vv/blas.h"
#include "vv/err.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(vv_backend *be, size_t bytes)
{
    (void)be;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64))
        return NULL;
    return p;
}

static void cpu_free(vv_backend *be, void *p)
{
    (void)be;
    free(p);
}

static int cpu_copy(vv_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (bytes)
        memmove(dst, src, bytes);
    return 0;
}

static int cpu_gemm(vv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                    const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                    double *c, int64_t ldc)
{
    (void)be;
    if (m == 0 || n == 0)
        return 0;
    vv_dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return 0;
}

static int cpu_syrk_t(vv_backend *be, int64_t n, int64_t k, double alpha, const double *a,
                      int64_t lda, double *c)
{
    (void)be;
    if (n == 0 || k == 0)
        return 0;
    vv_dsyrk_t(n, k, alpha, a, lda, c);
    return 0;
}

static int cpu_row_norms(vv_backend *be, int64_t rows, int64_t cols, const double *x,
                         double *norms)
{
    (void)be;
    for (int64_t i = 0; i < rows; i++) {
        const double *r = x + i * cols;
        double s = 0;
        for (int64_t j = 0; j < cols; j++)
            s += r[j] * r[j];
        norms[i] = sqrt(s);
    }
    return 0;
}

static int cpu_group_shrink(vv_backend *be, int64_t rows, int64_t cols, double *x, double thr,
                            double eps, int64_t *active)
{
    (void)be;
    int64_t nact = 0;
    for (int64_t i = 0; i < rows; i++) {
        double *r = x + i * cols;
        double s = 0;
        for (int64_t j = 0; j < cols; j++)
            s += r[j] * r[j];
        double nrm = sqrt(s);
        double a = nrm + eps > 0 ? 1.0 - thr / (nrm + eps) : 0.0;
        if (a <= 0) {
            memset(r, 0, (size_t)cols * sizeof *r);
        } else {
            for (int64_t j = 0; j < cols; j++)
                r[j] *= a;
            nact++;
        }
    }
    if (active)
        *active = nact;
    return 0;
}

static int cpu_dot(vv_backend *be, int64_t n, const double *x, const double *y, double *out)
{
    (void)be;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i] * y[i];
    *out = s;
    return 0;
}

static int cpu_axpby(vv_backend *be, int64_t n, double a, const double *x, double b, double *y)
{
    (void)be;
    if (b == 0)
        for (int64_t i = 0; i < n; i++)
            y[i] = a * x[i];
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = a * x[i] + b * y[i];
    return 0;
}

static int cpu_gather_rows(vv_backend *be, const double *src, int64_t cols, const int64_t *idx,
                           int64_t n, double *dst)
{
    (void)be;
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + i * cols, src + idx[i] * cols, (size_t)cols * sizeof *dst);
    return 0;
}

static int cpu_sgemm(vv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc)
{
    (void)be;
    if (m > 0 && n > 0)
        vv_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return 0;
}

/* The CPU's im2col (vv/backend.h), also called directly by the model
 * runtime (model_internal.h). */
void vv__im2col(const float *x, int c, int h, int w, int k, int stride, int pad, int oh, int ow,
                float *col, int64_t ldc)
{
    for (int ci = 0; ci < c; ci++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = col + ((int64_t)(ci * k + ki) * k + kj) * ldc;
                const float *xc = x + (int64_t)ci * h * w;
                /* Output columns j whose input column j*stride - pad + kj is
                 * inside the image: [j0, j1). */
                int j0 = 0, j1 = ow;
                while (j0 < ow && j0 * stride - pad + kj < 0)
                    j0++;
                while (j1 > j0 && (j1 - 1) * stride - pad + kj >= w)
                    j1--;
                for (int i = 0; i < oh; i++) {
                    int y = i * stride - pad + ki;
                    float *dst = row + (int64_t)i * ow;
                    if (y < 0 || y >= h) {
                        memset(dst, 0, (size_t)ow * sizeof(float));
                        continue;
                    }
                    const float *src = xc + (int64_t)y * w - pad + kj;
                    for (int j = 0; j < j0; j++)
                        dst[j] = 0.0f;
                    if (stride == 1)
                        memcpy(dst + j0, src + j0, (size_t)(j1 - j0) * sizeof(float));
                    else
                        for (int j = j0; j < j1; j++)
                            dst[j] = src[j * stride];
                    for (int j = j1; j < ow; j++)
                        dst[j] = 0.0f;
                }
            }
}

static int cpu_im2col(vv_backend *be, const float *x, int64_t nb, int c, int h, int w, int k,
                      int stride, int pad, int oh, int ow, float *col, int64_t ldc)
{
    (void)be;
    int64_t in_sz = (int64_t)c * h * w, ohw = (int64_t)oh * ow;
    for (int64_t s = 0; s < nb; s++)
        vv__im2col(x + s * in_sz, c, h, w, k, stride, pad, oh, ow, col + s * ohw, ldc);
    return 0;
}

static int cpu_affine_act(vv_backend *be, const float *x, int64_t xo, int64_t xs, int64_t nb,
                          int64_t ch, int64_t hw, const float *scale, const float *shift, int relu,
                          float *y)
{
    (void)be;
    for (int64_t o = 0; o < ch; o++) {
        float a = scale ? scale[o] : 1.0f, b = shift ? shift[o] : 0.0f;
        for (int64_t s = 0; s < nb; s++) {
            const float *src = x + o * xo + s * xs;
            float *dst = y + (s * ch + o) * hw;
            if (relu)
                for (int64_t p = 0; p < hw; p++) {
                    float v = src[p] * a + b;
                    dst[p] = v > 0 ? v : 0.0f;
                }
            else
                for (int64_t p = 0; p < hw; p++)
                    dst[p] = src[p] * a + b;
        }
    }
    return 0;
}

static int cpu_pool2d(vv_backend *be, const float *x, int64_t planes, int h, int w, int k,
                      int stride, int pad, int oh, int ow, int is_max, float *y)
{
    (void)be;
    float inv = 1.0f / (float)(k * k);
    for (int64_t sc = 0; sc < planes; sc++) {
        const float *src = x + sc * h * w;
        float *dst = y + sc * oh * ow;
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int y0 = i * stride - pad, x0 = j * stride - pad;
                float acc = is_max ? -FLT_MAX : 0.0f;
                for (int a = y0; a < y0 + k; a++) {
                    if (a < 0 || a >= h)
                        continue;
                    for (int b = x0; b < x0 + k; b++) {
                        if (b < 0 || b >= w)
                            continue;
                        float v = src[a * w + b];
                        if (is_max)
                            acc = v > acc || isnan(v) ? v : acc;
                        else
                            acc += v;
                    }
                }
                dst[i * ow + j] = is_max ? acc : acc * inv;
            }
    }
    return 0;
}

static int cpu_adaptive_avg(vv_backend *be, const float *x, int64_t planes, int h, int w, int oh,
                            int ow, float *y)
{
    (void)be;
    for (int64_t sc = 0; sc < planes; sc++) {
        const float *src = x + sc * h * w;
        float *dst = y + sc * oh * ow;
        for (int i = 0; i < oh; i++) {
            int h0 = i * h / oh, h1 = ((i + 1) * h + oh - 1) / oh;
            for (int j = 0; j < ow; j++) {
                int w0 = j * w / ow, w1 = ((j + 1) * w + ow - 1) / ow;
                float acc = 0;
                for (int a = h0; a < h1; a++)
                    for (int b = w0; b < w1; b++)
                        acc += src[a * w + b];
                dst[i * ow + j] = acc / (float)((h1 - h0) * (w1 - w0));
            }
        }
    }
    return 0;
}

static const vv_backend_ops cpu_ops = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .gemm = cpu_gemm,
    .syrk_t = cpu_syrk_t,
    .row_norms = cpu_row_norms,
    .group_shrink = cpu_group_shrink,
    .dot = cpu_dot,
    .axpby = cpu_axpby,
    .gather_rows = cpu_gather_rows,
    .sgemm = cpu_sgemm,
    .im2col = cpu_im2col,
    .affine_act = cpu_affine_act,
    .pool2d = cpu_pool2d,
    .adaptive_avg = cpu_adaptive_avg,
};

static vv_backend cpu_backend = {.ops = &cpu_ops, .impl = NULL};

vv_backend *vv_backend_cpu(void) { return &cpu_backend; }

int vv_backend_is_device(const vv_backend *be) { return be && be != &cpu_backend; }
