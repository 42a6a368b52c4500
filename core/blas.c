/* blas.c - OpenBLAS loaded with dlopen, so its kernels can be chosen first. */
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CBLAS enums' values (fixed by the CBLAS standard). */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112, UPPER = 121 };

static struct {
    void (*dgemm)(int, int, int, int, int, int, double, const double *, int, const double *, int,
                  double, double *, int);
    void (*sgemm)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                  float, float *, int);
    void (*dsyrk)(int, int, int, int, int, double, const double *, int, double, double *, int);
    void (*dpotrf)(const char *, const int *, double *, const int *, int *);
    void (*dpotrs)(const char *, const int *, const int *, const double *, const int *, double *,
                   const int *, int *);
    void (*dsyev)(const char *, const char *, const int *, double *, const int *, double *,
                  double *, const int *, int *);
    char *(*corename)(void);
    char *(*config)(void);
    int (*get_threads)(void);
    void (*set_threads)(int);
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *want_core;
static int load_rc;
static char load_msg[512];

static void load(void)
{
    if (want_core && !getenv("OPENBLAS_CORETYPE"))
        setenv("OPENBLAS_CORETYPE", want_core, 1);
    static const char *names[] = {
#ifdef VV_OPENBLAS_PATH
        VV_OPENBLAS_PATH,
#endif
        "libopenblas.so.0", "libopenblas.so"};
    void *h = NULL;
    for (unsigned i = 0; i < sizeof names / sizeof *names && !h; i++)
        h = dlopen(names[i], RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        snprintf(load_msg, sizeof load_msg, "cannot load OpenBLAS: %s", dlerror());
        load_rc = VV_EINTERNAL;
        return;
    }
#define SYM(field, name)                                                                           \
    do {                                                                                           \
        *(void **)&fn.field = dlsym(h, name);                                                      \
        if (!fn.field) {                                                                           \
            snprintf(load_msg, sizeof load_msg, "OpenBLAS lacks %s", name);                        \
            load_rc = VV_EINTERNAL;                                                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)
    SYM(dgemm, "cblas_dgemm");
    SYM(sgemm, "cblas_sgemm");
    SYM(dsyrk, "cblas_dsyrk");
    SYM(dpotrf, "dpotrf_");
    SYM(dpotrs, "dpotrs_");
    SYM(dsyev, "dsyev_");
    SYM(corename, "openblas_get_corename");
    SYM(config, "openblas_get_config");
    SYM(get_threads, "openblas_get_num_threads");
    SYM(set_threads, "openblas_set_num_threads");
#undef SYM
}

int vv_blas_load(const char *coretype)
{
    want_core = coretype;
    pthread_once(&once, load);
    return load_rc ? vv_fail(load_rc, "%s", load_msg) : 0;
}

static void need(void)
{
    pthread_once(&once, load);
    if (load_rc) {
        fprintf(stderr, "vvd: %s\n", load_msg);
        abort();
    }
}

void vv_dgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
              int64_t lda, const double *b, int64_t ldb, double beta, double *c, int64_t ldc)
{
    need();
    fn.dgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, (int)m, (int)n, (int)k,
             alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void vv_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    need();
    fn.sgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, (int)m, (int)n, (int)k,
             alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void vv_dsyrk_t(int64_t n, int64_t k, double alpha, const double *a, int64_t lda, double *c)
{
    need();
    fn.dsyrk(ROW_MAJOR, UPPER, TRANS, (int)n, (int)k, alpha, a, (int)lda, 1.0, c, (int)n);
}

int vv_dpotrf(int n, double *a)
{
    need();
    int info = 0;
    fn.dpotrf("L", &n, a, &n, &info);
    return info;
}

int vv_dpotrs(int n, int nrhs, const double *a, double *b)
{
    need();
    int info = 0;
    fn.dpotrs("L", &n, &nrhs, a, &n, b, &n, &info);
    return info;
}

int vv_dsyev(int n, double *a, double *w)
{
    need();
    int info = 0, lwork = -1;
    double q;
    fn.dsyev("N", "U", &n, a, &n, w, &q, &lwork, &info);
    lwork = (int)q;
    double *work = malloc((size_t)lwork * sizeof *work);
    if (!work)
        return -1;
    fn.dsyev("N", "U", &n, a, &n, w, work, &lwork, &info);
    free(work);
    return info;
}

int vv_blas_threads(void)
{
    need();
    return fn.get_threads();
}

void vv_blas_set_threads(int n)
{
    need();
    fn.set_threads(n);
}

const char *vv_blas_corename(void)
{
    need();
    return fn.corename();
}

const char *vv_blas_config(void)
{
    need();
    return fn.config();
}
