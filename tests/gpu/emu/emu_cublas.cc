/* emu_cublas.cc - the cuBLAS calls of gpu/backend_cuda.c on the host (see
 * emu.h), computed by OpenBLAS's column-major CBLAS after the argument
 * checks cuBLAS makes (CUBLAS_STATUS_INVALID_VALUE) and a check that every
 * operand lies in device memory and every scalar where the pointer mode
 * says (a bad operand faults the device as an illegal address would). */
#include <cublas_v2.h>

#include "emu.h"

#include <cblas.h>
#include <stdlib.h>

#define EXPORT extern "C" __attribute__((visibility("default")))

struct cublasContext {
    cublasPointerMode_t pointer_mode;
    cublasMath_t math_mode;
};

static int max1(int v)
{
    return v > 1 ? v : 1;
}

/* Scalars live where the pointer mode says. */
static int scalar_ok(cublasHandle_t h, const void *p)
{
    return p && (h->pointer_mode == CUBLAS_POINTER_MODE_DEVICE) == (emu_span_ok(p, 1) != 0);
}

/* Whether the call may run: 0 to compute, else the status to return. */
static int start(const char *what, int operands_ok, cublasStatus_t *st)
{
    if (emu_faulted()) {
        *st = CUBLAS_STATUS_EXECUTION_FAILED;
        return 1;
    }
    if (emu_work()) { /* the injected fault: shows at the next synchronisation */
        *st = CUBLAS_STATUS_SUCCESS;
        return 1;
    }
    if (!operands_ok) {
        emu_fault("%s: an operand is not inside device memory", what);
        *st = CUBLAS_STATUS_SUCCESS;
        return 1;
    }
    return 0;
}

EXPORT cublasStatus_t cublasCreate_v2(cublasHandle_t *h)
{
    if (!h)
        return CUBLAS_STATUS_INVALID_VALUE;
    *h = (cublasHandle_t)calloc(1, sizeof **h);
    if (!*h)
        return CUBLAS_STATUS_ALLOC_FAILED;
    (*h)->pointer_mode = CUBLAS_POINTER_MODE_HOST;
    (*h)->math_mode = CUBLAS_DEFAULT_MATH;
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT cublasStatus_t cublasDestroy_v2(cublasHandle_t h)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t h, cublasPointerMode_t mode)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE)
        return CUBLAS_STATUS_INVALID_VALUE;
    h->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

static int op_ok(cublasOperation_t t)
{
    return t == CUBLAS_OP_N || t == CUBLAS_OP_T;
}

template <typename T, typename F>
static cublasStatus_t gemm(const char *what, F f, cublasHandle_t h, cublasOperation_t ta,
                           cublasOperation_t tb, int m, int n, int k, const T *alpha, const T *a,
                           int lda, const T *b, int ldb, const T *beta, T *c, int ldc)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (!op_ok(ta) || !op_ok(tb) || m < 0 || n < 0 || k < 0 || lda < max1(ar) || ldb < max1(br) ||
        ldc < max1(m) || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS;
    int ok = scalar_ok(h, alpha) && scalar_ok(h, beta) &&
             emu_span_ok(c, emu_matrix_bytes(m, n, ldc, sizeof(T))) &&
             (k == 0 || (emu_span_ok(a, emu_matrix_bytes(ar, ac, lda, sizeof(T))) &&
                         emu_span_ok(b, emu_matrix_bytes(br, bc, ldb, sizeof(T)))));
    cublasStatus_t st;
    if (start(what, ok, &st))
        return st;
    f(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
      tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, *alpha, a, lda, b, ldb, *beta, c,
      ldc);
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT cublasStatus_t cublasDgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                     int m, int n, int k, const double *alpha, const double *a,
                                     int lda, const double *b, int ldb, const double *beta,
                                     double *c, int ldc)
{
    return gemm<double>("cublasDgemm", cblas_dgemm, h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta,
                        c, ldc);
}

EXPORT cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                     int m, int n, int k, const float *alpha, const float *a,
                                     int lda, const float *b, int ldb, const float *beta, float *c,
                                     int ldc)
{
    return gemm<float>("cublasSgemm", cblas_sgemm, h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta,
                       c, ldc);
}

EXPORT cublasStatus_t cublasDsyrk_v2(cublasHandle_t h, cublasFillMode_t uplo,
                                     cublasOperation_t trans, int n, int k, const double *alpha,
                                     const double *a, int lda, const double *beta, double *c,
                                     int ldc)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    int ar = trans == CUBLAS_OP_N ? n : k, ac = trans == CUBLAS_OP_N ? k : n;
    if ((uplo != CUBLAS_FILL_MODE_LOWER && uplo != CUBLAS_FILL_MODE_UPPER) || !op_ok(trans) ||
        n < 0 || k < 0 || lda < max1(ar) || ldc < max1(n) || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (n == 0)
        return CUBLAS_STATUS_SUCCESS;
    int ok = scalar_ok(h, alpha) && scalar_ok(h, beta) &&
             emu_span_ok(c, emu_matrix_bytes(n, n, ldc, sizeof(double))) &&
             (k == 0 || emu_span_ok(a, emu_matrix_bytes(ar, ac, lda, sizeof(double))));
    cublasStatus_t st;
    if (start("cublasDsyrk", ok, &st))
        return st;
    cblas_dsyrk(CblasColMajor, uplo == CUBLAS_FILL_MODE_LOWER ? CblasLower : CblasUpper,
                trans == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, n, k, *alpha, a, lda, *beta, c,
                ldc);
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT cublasStatus_t cublasDdot_v2(cublasHandle_t h, int n, const double *x, int incx,
                                    const double *y, int incy, double *result)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!result)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!scalar_ok(h, result)) {
        emu_fault("cublasDdot: the result pointer is not where the pointer mode says");
        return CUBLAS_STATUS_SUCCESS;
    }
    if (n <= 0) {
        *result = 0;
        return CUBLAS_STATUS_SUCCESS;
    }
    int ax = incx < 0 ? -incx : incx, ay = incy < 0 ? -incy : incy;
    int ok = emu_span_ok(x, ((size_t)(n - 1) * ax + 1) * sizeof(double)) &&
             emu_span_ok(y, ((size_t)(n - 1) * ay + 1) * sizeof(double));
    cublasStatus_t st;
    if (start("cublasDdot", ok, &st))
        return st;
    *result = cblas_ddot(n, x, incx, y, incy);
    return CUBLAS_STATUS_SUCCESS;
}
