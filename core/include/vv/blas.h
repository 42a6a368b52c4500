/* vv/blas.h - OpenBLAS, linked, with the kernels chosen before it starts.
 *
 * libvv links libopenblas.so.0 (so that linkers, packaging tools and ldd
 * see the dependency).  OpenBLAS chooses its kernels once, in its library
 * constructor, from OPENBLAS_CORETYPE; Debian's OpenBLAS 0.3.21 does not
 * recognise every recent CPU and falls back to slow generic kernels.  A
 * program that wants the right kernels puts VV_BLAS_PREINIT in one of its
 * source files: the dynamic loader runs vv_blas_preinit from the program's
 * .preinit_array, before the constructor of any library, and when
 * OPENBLAS_CORETYPE is unset and this CPU needs a value (vv/cpu.h) it
 * executes the program again with that value in its environment.  (A
 * setenv there would not do: libc resets environ from the original
 * environment after the .preinit_array has run.)  A value the user set is
 * always honoured.  Without VV_BLAS_PREINIT the program gets OpenBLAS's
 * own choice.
 *
 * Every BLAS/LAPACK call of libvv goes through the wrappers below; they are
 * thread-safe (OpenBLAS's own threads aside, they keep no state).
 */
#ifndef VV_BLAS_H
#define VV_BLAS_H

#include <stdint.h>

/* The .preinit_array function (argc, argv and envp as the loader passes
 * them): when envp has no OPENBLAS_CORETYPE (or an empty one) and
 * vv_blas_wanted_coretype() is not NULL, executes /proc/self/exe with argv
 * and envp plus OPENBLAS_CORETYPE and VV_OPENBLAS_CORETYPE (the same value,
 * which marks it as vvd's choice) and does not return; otherwise, or when
 * that fails, returns and OpenBLAS makes its own choice.  Only meaningful
 * before main, from VV_BLAS_PREINIT. */
void vv_blas_preinit(int argc, char **argv, char **envp);

/* Why the kernels in use are what they are, for the start-up log: "chosen
 * by vvd", "set by the user", "OpenBLAS's own choice" (with the reason
 * when vv_blas_preinit could not act).  A static string. */
const char *vv_blas_kernel_origin(void);

/* Puts vv_blas_preinit in the .preinit_array of the program (not a shared
 * library) that expands it.  Use it once, at file scope. */
#define VV_BLAS_PREINIT                                                                            \
    __attribute__((section(".preinit_array"), used)) static void (*const vv_blas_preinit_ptr_)(    \
        int, char **, char **) = vv_blas_preinit

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

/* LAPACK Householder QR of the m x n column-major a (leading dimension
 * lda): with column pivoting (dgeqp3; jpvt: n ints, 0 on entry for free
 * columns, the 1-based original column of each column on return) or
 * without (dgeqrf); R on and above the diagonal, the reflectors below with
 * their factors in tau (min(m, n) doubles).  vv_dorgqr overwrites the
 * first n columns of a (m x n, n <= m, holding k reflectors) with those of
 * Q.  Return LAPACK's info (0 on success), or -1 when out of memory for
 * the workspace. */
int vv_dgeqp3(int m, int n, double *a, int lda, int *jpvt, double *tau);
int vv_dgeqrf(int m, int n, double *a, int lda, double *tau);
int vv_dorgqr(int m, int n, int k, double *a, int lda, const double *tau);

/* Eigenvalues of a symmetric n x n matrix (destroyed), ascending. Returns
 * info, or -1 when out of memory. */
int vv_dsyev(int n, double *a, double *w);

/* OpenBLAS's thread count for subsequent calls (process-wide). */
int vv_blas_threads(void);
void vv_blas_set_threads(int n);

#endif
