/* vv/blas.h - OpenBLAS, loaded at run time.
 *
 * OpenBLAS chooses its kernels when it is loaded, from OPENBLAS_CORETYPE.
 * libvv does not link it: it loads it with dlopen on first use, so that a
 * program can set the kernel first (vv_blas_load) without re-executing
 * itself.  Every BLAS/LAPACK call of libvv goes through the wrappers below.
 * All functions are thread-safe; the wrappers load OpenBLAS with its own
 * kernel choice if vv_blas_load was not called, and abort with a message
 * if it cannot be loaded (an installation error, not bad input).
 */
#ifndef VV_BLAS_H
#define VV_BLAS_H

#include <stdint.h>

/* Loads OpenBLAS once.  If coretype is not NULL and OPENBLAS_CORETYPE is
 * not set, sets it to coretype first (the user's setting always wins).
 * Returns 0, or VV_EINTERNAL with a detail when the library cannot be
 * loaded; later calls return the first call's result and change nothing. */
int vv_blas_load(const char *coretype);

/* C = alpha op(A) op(B) + beta C, row-major (cblas_dgemm). */
void vv_dgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
              int64_t lda, const double *b, int64_t ldb, double beta, double *c, int64_t ldc);

/* The same in float32 (the model runtime's forward pass). */
void vv_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* C (n x n, row-major, upper triangle) += alpha A^T A, A k x n (cblas_dsyrk). */
void vv_dsyrk_t(int64_t n, int64_t k, double alpha, const double *a, int64_t lda, double *c);

/* LAPACK Cholesky of a symmetric n x n matrix (either layout) and solve
 * with nrhs right-hand sides stored as columns (column-major, ld n).
 * Return LAPACK's info (0 on success). */
int vv_dpotrf(int n, double *a);
int vv_dpotrs(int n, int nrhs, const double *a, double *b);

/* Eigenvalues of a symmetric n x n matrix (destroyed), ascending. Returns info. */
int vv_dsyev(int n, double *a, double *w);

/* OpenBLAS's thread count for subsequent calls (process-wide). */
int vv_blas_threads(void);
void vv_blas_set_threads(int n);

#endif
