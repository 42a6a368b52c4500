/* backend_sim.c - a simulated device (vv/backend.h): host memory and the CPU
 * backend's operations behind a device backend object, with a memory budget
 * and an optional sticky fault, so the device code paths run and fail the
 * way they would on a GPU, on any machine. */
#include "vv/backend.h"
#include "vv/err.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sim {
    size_t memory;
    int64_t fail_after;
    _Atomic size_t used;
    _Atomic int64_t ops, uploads;
    atomic_int lost;
} sim;

/* Each allocation carries its size in a 64-byte header (keeps alignment). */
enum { HDR = 64 };

static sim *S(const vv_backend *be) { return be->impl; }

static const vv_backend_ops *cpu(void) { return vv_backend_cpu()->ops; }

/* Counts an operation; fails once the device is lost or the fault is due. */
static int op(vv_backend *be, const char *what)
{
    sim *s = S(be);
    if (s->lost)
        return vv_fail(VV_EDEVICE, "sim: %s: the device was lost after an earlier error", what);
    int64_t n = ++s->ops;
    if (s->fail_after > 0 && n >= s->fail_after) {
        s->lost = 1;
        return vv_fail(VV_EDEVICE, "sim: %s: an illegal memory access was encountered "
                                   "(simulated sticky fault after %lld operations)",
                       what, (long long)n);
    }
    return 0;
}

static void *sim_alloc(vv_backend *be, size_t bytes)
{
    sim *s = S(be);
    if (op(be, "alloc"))
        return NULL;
    size_t used = s->used;
    if (bytes > s->memory || used + bytes > s->memory) {
        vv_fail(VV_ENOMEM, "sim: out of memory: %zu bytes asked, %zu of %zu free", bytes,
                s->memory - used, s->memory);
        return NULL;
    }
    unsigned char *p = cpu()->alloc(vv_backend_cpu(), bytes + HDR);
    if (!p) {
        vv_fail(VV_ENOMEM, "sim: host out of memory (%zu bytes)", bytes);
        return NULL;
    }
    memcpy(p, &bytes, sizeof bytes);
    s->used += bytes;
    return p + HDR;
}

static void sim_free(vv_backend *be, void *ptr)
{
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - HDR;
    size_t bytes;
    memcpy(&bytes, p, sizeof bytes);
    S(be)->used -= bytes;
    cpu()->free(vv_backend_cpu(), p);
}

static int sim_upload(vv_backend *be, void *dst, const void *src, size_t bytes)
{
    int rc = op(be, "upload");
    if (rc == 0)
        S(be)->uploads++;
    return rc ? rc : cpu()->upload(vv_backend_cpu(), dst, src, bytes);
}

static int sim_download(vv_backend *be, void *dst, const void *src, size_t bytes)
{
    int rc = op(be, "download");
    return rc ? rc : cpu()->download(vv_backend_cpu(), dst, src, bytes);
}

static int sim_gemm(vv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                    const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                    double *c, int64_t ldc)
{
    int rc = op(be, "gemm");
    return rc ? rc
              : cpu()->gemm(vv_backend_cpu(), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
                            ldc);
}

static int sim_syrk_t(vv_backend *be, int64_t n, int64_t k, double alpha, const double *a,
                      int64_t lda, double *c)
{
    int rc = op(be, "syrk");
    return rc ? rc : cpu()->syrk_t(vv_backend_cpu(), n, k, alpha, a, lda, c);
}

static int sim_row_norms(vv_backend *be, int64_t rows, int64_t cols, const double *x,
                         double *norms)
{
    int rc = op(be, "row_norms");
    return rc ? rc : cpu()->row_norms(vv_backend_cpu(), rows, cols, x, norms);
}

static int sim_group_shrink(vv_backend *be, int64_t rows, int64_t cols, double *x, double thr,
                            double eps, int64_t *active)
{
    int rc = op(be, "group_shrink");
    return rc ? rc : cpu()->group_shrink(vv_backend_cpu(), rows, cols, x, thr, eps, active);
}

static int sim_dot(vv_backend *be, int64_t n, const double *x, const double *y, double *out)
{
    int rc = op(be, "dot");
    return rc ? rc : cpu()->dot(vv_backend_cpu(), n, x, y, out);
}

static int sim_axpby(vv_backend *be, int64_t n, double a, const double *x, double b, double *y)
{
    int rc = op(be, "axpby");
    return rc ? rc : cpu()->axpby(vv_backend_cpu(), n, a, x, b, y);
}

static int sim_gather_rows(vv_backend *be, const double *src, int64_t cols, const int64_t *idx,
                           int64_t n, double *dst)
{
    int rc = op(be, "gather_rows");
    return rc ? rc : cpu()->gather_rows(vv_backend_cpu(), src, cols, idx, n, dst);
}

static int sim_sgemm(vv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc)
{
    int rc = op(be, "sgemm");
    return rc ? rc
              : cpu()->sgemm(vv_backend_cpu(), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
                             ldc);
}

static int sim_im2col(vv_backend *be, const float *x, int64_t nb, int c, int h, int w, int k,
                      int stride, int pad, int oh, int ow, float *col, int64_t ldc)
{
    int rc = op(be, "im2col");
    return rc ? rc
              : cpu()->im2col(vv_backend_cpu(), x, nb, c, h, w, k, stride, pad, oh, ow, col, ldc);
}

static int sim_affine_act(vv_backend *be, const float *x, int64_t xo, int64_t xs, int64_t nb,
                          int64_t ch, int64_t hw, const float *scale, const float *shift, int relu,
                          float *y)
{
    int rc = op(be, "affine_act");
    return rc ? rc
              : cpu()->affine_act(vv_backend_cpu(), x, xo, xs, nb, ch, hw, scale, shift, relu, y);
}

static int sim_pool2d(vv_backend *be, const float *x, int64_t planes, int h, int w, int k,
                      int stride, int pad, int oh, int ow, int is_max, float *y)
{
    int rc = op(be, "pool2d");
    return rc ? rc
              : cpu()->pool2d(vv_backend_cpu(), x, planes, h, w, k, stride, pad, oh, ow, is_max,
                              y);
}

static int sim_adaptive_avg(vv_backend *be, const float *x, int64_t planes, int h, int w, int oh,
                            int ow, float *y)
{
    int rc = op(be, "adaptive_avg");
    return rc ? rc : cpu()->adaptive_avg(vv_backend_cpu(), x, planes, h, w, oh, ow, y);
}

static int sim_info(vv_backend *be, char *name, size_t namesz, size_t *free_bytes,
                    size_t *total_bytes)
{
    sim *s = S(be);
    if (name && namesz)
        snprintf(name, namesz, "simulated device (host memory)");
    if (free_bytes)
        *free_bytes = s->memory - s->used;
    if (total_bytes)
        *total_bytes = s->memory;
    return s->lost ? vv_fail(VV_EDEVICE, "sim: the device was lost") : 0;
}

static int sim_lost(const vv_backend *be) { return S(be)->lost; }

static void sim_close(vv_backend *be)
{
    if (!be)
        return;
    free(be->impl);
    free(be);
}

static const vv_backend_ops sim_ops = {
    .name = "sim",
    .alloc = sim_alloc,
    .free = sim_free,
    .upload = sim_upload,
    .download = sim_download,
    .gemm = sim_gemm,
    .syrk_t = sim_syrk_t,
    .row_norms = sim_row_norms,
    .group_shrink = sim_group_shrink,
    .dot = sim_dot,
    .axpby = sim_axpby,
    .gather_rows = sim_gather_rows,
    .sgemm = sim_sgemm,
    .im2col = sim_im2col,
    .affine_act = sim_affine_act,
    .pool2d = sim_pool2d,
    .adaptive_avg = sim_adaptive_avg,
    .info = sim_info,
    .lost = sim_lost,
    .close = sim_close,
};

int vv_backend_sim_open(const vv_sim_opts *o, vv_backend **out)
{
    *out = NULL;
    vv_backend *be = calloc(1, sizeof *be);
    sim *s = calloc(1, sizeof *s);
    if (!be || !s) {
        free(be);
        free(s);
        return vv_fail(VV_ENOMEM, "out of memory");
    }
    s->memory = o && o->memory ? o->memory : (size_t)1 << 30;
    s->fail_after = o ? o->fail_after : 0;
    be->ops = &sim_ops;
    be->impl = s;
    *out = be;
    return 0;
}

void vv_backend_sim_fail_after(vv_backend *be, int64_t ops)
{
    S(be)->fail_after = ops > 0 ? S(be)->ops + ops : 0;
}

void vv_backend_sim_counts(const vv_backend *be, int64_t *uploads, size_t *bytes_in_use)
{
    if (uploads)
        *uploads = S(be)->uploads;
    if (bytes_in_use)
        *bytes_in_use = S(be)->used;
}
