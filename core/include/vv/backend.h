/* vv/backend.h - the compute backend interface (after ggml-backend).
 *
 * A backend is a table of operations on buffers it allocated.  The CPU
 * backend (OpenBLAS) is always present and is the reference; a CUDA
 * backend in gpu/ implements the same table.  Matrices are row-major
 * float64 unless the name says otherwise.  Operations return 0 or a
 * negative vv_err (a device backend can fail; the CPU one fails only on
 * allocation).  A backend object is used by one thread at a time.
 */
#ifndef VV_BACKEND_H
#define VV_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct vv_backend vv_backend;

typedef struct vv_backend_ops {
    const char *name;
    /* Device memory.  alloc returns NULL on failure; free accepts NULL. */
    void *(*alloc)(vv_backend *be, size_t bytes);
    void (*free)(vv_backend *be, void *p);
    int (*upload)(vv_backend *be, void *dst, const void *host_src, size_t bytes);
    int (*download)(vv_backend *be, void *host_dst, const void *src, size_t bytes);
    /* C = alpha * op(A) op(B) + beta * C, row-major; op = transpose when ta/tb. */
    int (*gemm)(vv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                const double *a, int64_t lda, const double *b, int64_t ldb, double beta, double *c,
                int64_t ldc);
    /* C(n x n) += alpha * A^T A for A (k x n, row-major, leading dim lda); only the upper
     * triangle of C (row-major: j >= i) is updated. */
    int (*syrk_t)(vv_backend *be, int64_t n, int64_t k, double alpha, const double *a,
                  int64_t lda, double *c);
    /* norms[i] = ||row i of X||_2 for X (rows x cols). */
    int (*row_norms)(vv_backend *be, int64_t rows, int64_t cols, const double *x, double *norms);
    /* Group soft-threshold of the rows of X in place:
     * x_i <- max(0, 1 - thr / (||x_i|| + eps)) x_i; returns the number of nonzero rows in
     * *active (may be NULL).  eps = 0 gives the exact prox. */
    int (*group_shrink)(vv_backend *be, int64_t rows, int64_t cols, double *x, double thr,
                        double eps, int64_t *active);
    /* *out = <x, y> over n entries. */
    int (*dot)(vv_backend *be, int64_t n, const double *x, const double *y, double *out);
    /* y = a x + b y over n entries; when b == 0, y is not read (as BLAS's beta),
     * so axpby(n, 1, x, 0, y) copies x into y whatever y held. */
    int (*axpby)(vv_backend *be, int64_t n, double a, const double *x, double b, double *y);
    /* The model runtime (float32): C = alpha op(A) op(B) + beta C, row-major. */
    int (*sgemm)(vv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc);
    /* Unfolds one image x (c x h x w) for a k x k convolution with stride and
     * zero padding into col: (c k k) rows of oh ow values, leading dimension
     * ldc; row (ci k + ki) k + kj, column i ow + j holds
     * x[ci][i stride - pad + ki][j stride - pad + kj] (0 outside the image). */
    int (*im2col)(vv_backend *be, const float *x, int c, int h, int w, int k, int stride, int pad,
                  int oh, int ow, float *col, int64_t ldc);
} vv_backend_ops;

struct vv_backend {
    const vv_backend_ops *ops;
    void *impl;
};

/* The process-wide CPU backend (stateless; never NULL). */
vv_backend *vv_backend_cpu(void);

#endif
