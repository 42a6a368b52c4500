/* blas.c - OpenBLAS, linked, with its kernels chosen before it starts. */
#include "vv/blas.h"
#include "vv/cpu.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The CBLAS enums' values (fixed by the CBLAS standard). */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112, UPPER = 121 };

/* OpenBLAS's entry points (libopenblas.so.0), declared here so that the
 * build does not depend on which cblas.h the system's alternatives pick. */
extern void cblas_dgemm(int, int, int, int, int, int, double, const double *, int, const double *,
                        int, double, double *, int);
extern void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *,
                        int, float, float *, int);
extern void cblas_dsyrk(int, int, int, int, int, double, const double *, int, double, double *,
                        int);
extern void dpotrf_(const char *, const int *, double *, const int *, int *);
extern void dpotrs_(const char *, const int *, const int *, const double *, const int *, double *,
                    const int *, int *);
extern void dgeqp3_(const int *, const int *, double *, const int *, int *, double *, double *,
                    const int *, int *);
extern void dgeqrf_(const int *, const int *, double *, const int *, double *, double *,
                    const int *, int *);
extern void dorgqr_(const int *, const int *, const int *, double *, const int *, const double *,
                    double *, const int *, int *);
extern void dsyev_(const char *, const char *, const int *, double *, const int *, double *,
                   double *, const int *, int *);
extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);
extern int openblas_get_num_threads(void);
extern void openblas_set_num_threads(int);

/* Why the kernels are what they are; set once by vv_blas_preinit, before
 * main and before any thread exists, and only read afterwards. */
static const char *origin = "OpenBLAS's own choice (no VV_BLAS_PREINIT)";

/* The value of NAME= in envp, or NULL. */
static const char *env_value(char **envp, const char *name_eq)
{
    size_t n = strlen(name_eq);
    for (char **e = envp; e && *e; e++)
        if (!strncmp(*e, name_eq, n))
            return *e + n;
    return NULL;
}

/* dst = a b, in a buffer of size sz; returns 0, or -1 when it does not fit
 * (no stdio: this runs before libc's own initialisation). */
static int join(char *dst, size_t sz, const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na + nb + 1 > sz)
        return -1;
    memcpy(dst, a, na);
    memcpy(dst + na, b, nb + 1);
    return 0;
}

#define CORETYPE "OPENBLAS_CORETYPE="
#define MARK "VV_OPENBLAS_CORETYPE="

void vv_blas_preinit(int argc, char **argv, char **envp)
{
    (void)argc;
    /* environ is not set up yet (libc sets it after the .preinit_array, from
     * envp again, so a setenv here would be lost): read envp. */
    const char *have = env_value(envp, CORETYPE), *mark = env_value(envp, MARK);
    if (have && have[0]) {
        origin = mark && !strcmp(mark, have) ? "chosen by vvd" : "set by the user";
        return;
    }
    const char *want = vv_blas_wanted_coretype();
    if (!want) {
        origin = "OpenBLAS's own choice";
        return;
    }
    /* Run this program again with OPENBLAS_CORETYPE (and MARK, which says
     * that vvd chose it) added to its environment. */
    static char *env2[4096];
    static char v1[64], v2[64];
    size_t n = 0;
    for (char **e = envp; e && *e; e++) {
        if (n + 3 > sizeof env2 / sizeof *env2) {
            origin = "OpenBLAS's own choice (the environment is too large to add "
                     "OPENBLAS_CORETYPE)";
            return;
        }
        if (strncmp(*e, CORETYPE, strlen(CORETYPE)) && strncmp(*e, MARK, strlen(MARK)))
            env2[n++] = *e;
    }
    if (join(v1, sizeof v1, CORETYPE, want) < 0 || join(v2, sizeof v2, MARK, want) < 0)
        return;
    env2[n++] = v1;
    env2[n++] = v2;
    env2[n] = NULL;
    execve("/proc/self/exe", argv, env2);
    origin = "OpenBLAS's own choice (vvd could not re-execute itself with OPENBLAS_CORETYPE)";
}

const char *vv_blas_kernel_origin(void) { return origin; }

void vv_dgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
              int64_t lda, const double *b, int64_t ldb, double beta, double *c, int64_t ldc)
{
    cblas_dgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void vv_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    cblas_sgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void vv_dsyrk_t(int64_t n, int64_t k, double alpha, const double *a, int64_t lda, double *c)
{
    cblas_dsyrk(ROW_MAJOR, UPPER, TRANS, (int)n, (int)k, alpha, a, (int)lda, 1.0, c, (int)n);
}

int vv_dpotrf(int n, double *a)
{
    int info = 0;
    dpotrf_("L", &n, a, &n, &info);
    return info;
}

int vv_dpotrs(int n, int nrhs, const double *a, double *b)
{
    int info = 0;
    dpotrs_("L", &n, &nrhs, a, &n, b, &n, &info);
    return info;
}

/* LAPACK's workspace query, then the call with the workspace it asked
 * for; -1 when out of memory. */
#define WITH_WORK(call_query, call)                                                                \
    do {                                                                                           \
        int info = 0, lwork = -1;                                                                  \
        double q;                                                                                  \
        double *work = &q;                                                                         \
        call_query;                                                                                \
        lwork = (int)q > 1 ? (int)q : 1;                                                           \
        if (!(work = malloc((size_t)lwork * sizeof *work)))                                        \
            return -1;                                                                             \
        call;                                                                                      \
        free(work);                                                                                \
        return info;                                                                               \
    } while (0)

int vv_dgeqp3(int m, int n, double *a, int lda, int *jpvt, double *tau)
{
    WITH_WORK(dgeqp3_(&m, &n, a, &lda, jpvt, tau, work, &lwork, &info),
              dgeqp3_(&m, &n, a, &lda, jpvt, tau, work, &lwork, &info));
}

int vv_dgeqrf(int m, int n, double *a, int lda, double *tau)
{
    WITH_WORK(dgeqrf_(&m, &n, a, &lda, tau, work, &lwork, &info),
              dgeqrf_(&m, &n, a, &lda, tau, work, &lwork, &info));
}

int vv_dorgqr(int m, int n, int k, double *a, int lda, const double *tau)
{
    WITH_WORK(dorgqr_(&m, &n, &k, a, &lda, tau, work, &lwork, &info),
              dorgqr_(&m, &n, &k, a, &lda, tau, work, &lwork, &info));
}

int vv_dsyev(int n, double *a, double *w)
{
    int info = 0, lwork = -1;
    double q;
    dsyev_("N", "U", &n, a, &n, w, &q, &lwork, &info);
    lwork = (int)q;
    double *work = malloc((size_t)lwork * sizeof *work);
    if (!work)
        return -1;
    dsyev_("N", "U", &n, a, &n, w, work, &lwork, &info);
    free(work);
    return info;
}

int vv_blas_threads(void) { return openblas_get_num_threads(); }

void vv_blas_set_threads(int n) { openblas_set_num_threads(n); }

const char *vv_blas_corename(void) { return openblas_get_corename(); }

const char *vv_blas_config(void) { return openblas_get_config(); }
