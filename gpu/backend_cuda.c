/* backend_cuda.c - core's backend table on a CUDA device: cuBLAS for the
 * matrix products, the kernels of kernels.cu for the rest (vv/backend_cuda.h).
 *
 * Row-major products map onto column-major cuBLAS through the transposes:
 * C = op(A) op(B) (row-major) is C^T = op(B)^T op(A)^T (column-major), and
 * the upper triangle of a row-major symmetric matrix is the lower triangle
 * of the same memory read column-major. */
#include "vv/backend_cuda.h"
#include "vv/err.h"

#include <cublas_v2.h>
#include <cuda.h>
#include <dlfcn.h>
#ifdef VV_HAVE_NCCL
#include <nccl.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The embedded fatbin of kernels.cu (generated at build time). */
extern const unsigned char vv_cuda_fatbin[];
extern const size_t vv_cuda_fatbin_size;

#define BLOCK 256

/* ---- The driver API and cuBLAS, loaded at run time ----------------------------- */

static struct {
    __typeof__(cuInit) *Init;
    __typeof__(cuDeviceGetCount) *DeviceGetCount;
    __typeof__(cuDeviceGet) *DeviceGet;
    __typeof__(cuDeviceGetName) *DeviceGetName;
    __typeof__(cuDevicePrimaryCtxRetain) *PrimaryCtxRetain;
    __typeof__(cuDevicePrimaryCtxRelease) *PrimaryCtxRelease;
    __typeof__(cuCtxSetCurrent) *CtxSetCurrent;
    __typeof__(cuCtxSynchronize) *CtxSynchronize;
    __typeof__(cuMemAlloc) *MemAlloc;
    __typeof__(cuMemFree) *MemFree;
    __typeof__(cuMemcpyHtoD) *MemcpyHtoD;
    __typeof__(cuMemcpyDtoH) *MemcpyDtoH;
    __typeof__(cuMemsetD8) *MemsetD8;
    __typeof__(cuMemGetInfo) *MemGetInfo;
    __typeof__(cuModuleLoadData) *ModuleLoadData;
    __typeof__(cuModuleUnload) *ModuleUnload;
    __typeof__(cuModuleGetFunction) *ModuleGetFunction;
    __typeof__(cuLaunchKernel) *LaunchKernel;
    __typeof__(cuGetErrorString) *GetErrorString;
    __typeof__(cuDeviceGetPCIBusId) *DeviceGetPCIBusId; /* optional: the groups' keys */
    __typeof__(cublasCreate_v2) *blasCreate;
    __typeof__(cublasDestroy_v2) *blasDestroy;
    __typeof__(cublasDgemm_v2) *Dgemm;
    __typeof__(cublasSgemm_v2) *Sgemm;
    __typeof__(cublasDsyrk_v2) *Dsyrk;
    __typeof__(cublasDdot_v2) *Ddot;
    __typeof__(cublasSetPointerMode_v2) *SetPointerMode;
    __typeof__(cublasSetMathMode) *SetMathMode;
} cu;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_rc;
static char load_msg[512];

static void *open_first(const char *const *names, int n)
{
    void *h = NULL;
    for (int i = 0; i < n && !h; i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    return h;
}

static void load(void)
{
    static const char *const drv[] = {"libcuda.so.1", "libcuda.so"};
    static const char *const blas[] = {
#ifdef VV_CUDA_LIBDIR
        VV_CUDA_LIBDIR "/libcublas.so.13", VV_CUDA_LIBDIR "/libcublas.so.12",
#endif
        "libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    /* VVD_CUDA_DRIVER and VVD_CUBLAS name the libraries to load instead
     * (another toolkit's cuBLAS; tests/gpu/emu's emulator). */
    const char *env_drv = getenv("VVD_CUDA_DRIVER"), *env_blas = getenv("VVD_CUBLAS");
    void *hd = env_drv && *env_drv ? open_first(&env_drv, 1) : open_first(drv, 2);
    if (!hd) {
        snprintf(load_msg, sizeof load_msg, "no CUDA driver (%s): %s",
                 env_drv && *env_drv ? env_drv : "libcuda.so.1", dlerror());
        load_rc = VV_EDEVICE;
        return;
    }
    void *hb = env_blas && *env_blas ? open_first(&env_blas, 1)
                                     : open_first(blas, (int)(sizeof blas / sizeof *blas));
    if (!hb) {
        snprintf(load_msg, sizeof load_msg, "no cuBLAS (%s): %s",
                 env_blas && *env_blas ? env_blas : "libcublas.so.13", dlerror());
        load_rc = VV_EDEVICE;
        return;
    }
#define SYM(h, field, name)                                                                        \
    do {                                                                                           \
        *(void **)&cu.field = dlsym(h, name);                                                      \
        if (!cu.field) {                                                                           \
            snprintf(load_msg, sizeof load_msg, "%s lacks %s", h == hd ? "libcuda" : "cuBLAS",     \
                     name);                                                                        \
            load_rc = VV_EDEVICE;                                                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)
    SYM(hd, Init, "cuInit");
    SYM(hd, DeviceGetCount, "cuDeviceGetCount");
    SYM(hd, DeviceGet, "cuDeviceGet");
    SYM(hd, DeviceGetName, "cuDeviceGetName");
    SYM(hd, PrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    SYM(hd, PrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    SYM(hd, CtxSetCurrent, "cuCtxSetCurrent");
    SYM(hd, CtxSynchronize, "cuCtxSynchronize");
    SYM(hd, MemAlloc, "cuMemAlloc_v2");
    SYM(hd, MemFree, "cuMemFree_v2");
    SYM(hd, MemcpyHtoD, "cuMemcpyHtoD_v2");
    SYM(hd, MemcpyDtoH, "cuMemcpyDtoH_v2");
    SYM(hd, MemsetD8, "cuMemsetD8_v2");
    SYM(hd, MemGetInfo, "cuMemGetInfo_v2");
    SYM(hd, ModuleLoadData, "cuModuleLoadData");
    SYM(hd, ModuleUnload, "cuModuleUnload");
    SYM(hd, ModuleGetFunction, "cuModuleGetFunction");
    SYM(hd, LaunchKernel, "cuLaunchKernel");
    SYM(hd, GetErrorString, "cuGetErrorString");
    SYM(hb, blasCreate, "cublasCreate_v2");
    SYM(hb, blasDestroy, "cublasDestroy_v2");
    SYM(hb, Dgemm, "cublasDgemm_v2");
    SYM(hb, Sgemm, "cublasSgemm_v2");
    SYM(hb, Dsyrk, "cublasDsyrk_v2");
    SYM(hb, Ddot, "cublasDdot_v2");
    SYM(hb, SetPointerMode, "cublasSetPointerMode_v2");
    SYM(hb, SetMathMode, "cublasSetMathMode");
#undef SYM
    *(void **)&cu.DeviceGetPCIBusId = dlsym(hd, "cuDeviceGetPCIBusId");
    CUresult r = cu.Init(0);
    if (r != CUDA_SUCCESS) {
        const char *m = NULL;
        cu.GetErrorString(r, &m);
        snprintf(load_msg, sizeof load_msg, "cuInit: %s", m ? m : "unknown error");
        load_rc = VV_EDEVICE;
    }
}

static int loaded(void)
{
    pthread_once(&load_once, load);
    return load_rc ? vv_fail(load_rc, "%s", load_msg) : 0;
}

/* ---- The backend ------------------------------------------------------------------ */

typedef struct cuda_impl {
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction f_row_norms, f_group_shrink, f_axpby, f_im2col, f_gather, f_affine, f_pool,
        f_adaptive;
    cublasHandle_t blas;
    CUdeviceptr count; /* group_shrink's counter */
    CUdeviceptr idx;   /* gather_rows' indices, grown as needed */
    int64_t idx_cap;
    void *comm; /* the NCCL communicator of group_join */
    int lost;
    char lost_why[256]; /* the error that lost it */
} cuda_impl;

static cuda_impl *impl(vv_backend *be)
{
    return be->impl;
}

/* Checks a driver result; a sticky error marks the device lost. */
static int check(vv_backend *be, CUresult r, const char *what)
{
    if (r == CUDA_SUCCESS)
        return 0;
    const char *m = NULL;
    cu.GetErrorString(r, &m);
    if (r == CUDA_ERROR_OUT_OF_MEMORY)
        return vv_fail(VV_ENOMEM, "cuda: %s: %s", what, m ? m : "out of memory");
    int rc = vv_fail(VV_EDEVICE, "cuda: %s: %s (%d)", what, m ? m : "error", (int)r);
    if (be && !impl(be)->lost &&
        (r == CUDA_ERROR_ILLEGAL_ADDRESS || r == CUDA_ERROR_LAUNCH_FAILED ||
         r == CUDA_ERROR_ECC_UNCORRECTABLE || r == CUDA_ERROR_HARDWARE_STACK_ERROR ||
         r == CUDA_ERROR_ILLEGAL_INSTRUCTION || r == CUDA_ERROR_MISALIGNED_ADDRESS ||
         r == CUDA_ERROR_INVALID_PC || r == CUDA_ERROR_CONTEXT_IS_DESTROYED)) {
        impl(be)->lost = 1;
        snprintf(impl(be)->lost_why, sizeof impl(be)->lost_why, "%s", vv_err_detail());
    }
    return rc;
}

static int check_blas(vv_backend *be, cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return 0;
    if (s == CUBLAS_STATUS_ALLOC_FAILED)
        return vv_fail(VV_ENOMEM, "cublas: %s: out of memory", what);
    int rc = vv_fail(VV_EDEVICE, "cublas: %s failed (status %d)", what, (int)s);
    if (!impl(be)->lost &&
        (s == CUBLAS_STATUS_EXECUTION_FAILED || s == CUBLAS_STATUS_INTERNAL_ERROR)) {
        impl(be)->lost = 1;
        snprintf(impl(be)->lost_why, sizeof impl(be)->lost_why, "%s", vv_err_detail());
    }
    return rc;
}

static int ready(vv_backend *be)
{
    if (impl(be)->lost)
        return vv_fail(VV_EDEVICE, "the device was lost after an earlier error (%s)",
                       impl(be)->lost_why);
    return check(be, cu.CtxSetCurrent(impl(be)->ctx), "cuCtxSetCurrent");
}

static int launch(vv_backend *be, CUfunction f, int64_t blocks, void **args, const char *name)
{
    if (blocks < 1)
        return 0;
    if (blocks > 65535 * 16)
        blocks = 65535 * 16; /* grid-stride loops cover the rest */
    int rc = check(be, cu.LaunchKernel(f, (unsigned)blocks, 1, 1, BLOCK, 1, 1, 0, NULL, args, NULL),
                   name);
    return rc ? rc : check(be, cu.CtxSynchronize(), name);
}

static void *cuda_alloc(vv_backend *be, size_t bytes)
{
    CUdeviceptr p = 0;
    if (ready(be) || check(be, cu.MemAlloc(&p, bytes ? bytes : 64), "cuMemAlloc"))
        return NULL;
    return (void *)(uintptr_t)p;
}

static void cuda_free(vv_backend *be, void *p)
{
    if (p && !ready(be))
        check(be, cu.MemFree((CUdeviceptr)(uintptr_t)p), "cuMemFree");
}

static int cuda_upload(vv_backend *be, void *dst, const void *src, size_t bytes)
{
    int rc = ready(be);
    return rc || !bytes
               ? rc
               : check(be, cu.MemcpyHtoD((CUdeviceptr)(uintptr_t)dst, src, bytes), "cuMemcpyHtoD");
}

static int cuda_download(vv_backend *be, void *dst, const void *src, size_t bytes)
{
    int rc = ready(be);
    return rc || !bytes
               ? rc
               : check(be, cu.MemcpyDtoH(dst, (CUdeviceptr)(uintptr_t)src, bytes), "cuMemcpyDtoH");
}

static int cuda_gemm(vv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                     const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                     double *c, int64_t ldc)
{
    int rc = ready(be);
    if (rc || m == 0 || n == 0)
        return rc;
    return check_blas(be,
                      cu.Dgemm(impl(be)->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                               ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &alpha, b,
                               (int)ldb, a, (int)lda, &beta, c, (int)ldc),
                      "cublasDgemm");
}

static int cuda_sgemm(vv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc)
{
    int rc = ready(be);
    if (rc || m == 0 || n == 0)
        return rc;
    return check_blas(be,
                      cu.Sgemm(impl(be)->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                               ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &alpha, b,
                               (int)ldb, a, (int)lda, &beta, c, (int)ldc),
                      "cublasSgemm");
}

static int cuda_syrk_t(vv_backend *be, int64_t n, int64_t k, double alpha, const double *a,
                       int64_t lda, double *c)
{
    int rc = ready(be);
    double one = 1.0;
    if (rc || n == 0)
        return rc;
    return check_blas(be,
                      cu.Dsyrk(impl(be)->blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, (int)n, (int)k,
                               &alpha, a, (int)lda, &one, c, (int)n),
                      "cublasDsyrk");
}

static int cuda_row_norms(vv_backend *be, int64_t rows, int64_t cols, const double *x,
                          double *norms)
{
    int rc = ready(be);
    void *args[] = {&rows, &cols, &x, &norms};
    return rc ? rc : launch(be, impl(be)->f_row_norms, rows, args, "vv_row_norms");
}

static int cuda_group_shrink(vv_backend *be, int64_t rows, int64_t cols, double *x, double thr,
                             double eps, int64_t *active)
{
    cuda_impl *im = impl(be);
    int rc = ready(be);
    if (!rc)
        rc = check(be, cu.MemsetD8(im->count, 0, sizeof(unsigned long long)), "cuMemsetD8");
    void *args[] = {&rows, &cols, &x, &thr, &eps, &im->count};
    if (!rc)
        rc = launch(be, im->f_group_shrink, rows, args, "vv_group_shrink");
    unsigned long long n = 0;
    if (!rc && active)
        rc = check(be, cu.MemcpyDtoH(&n, im->count, sizeof n), "cuMemcpyDtoH");
    if (!rc && active)
        *active = (int64_t)n;
    return rc;
}

static int cuda_dot(vv_backend *be, int64_t n, const double *x, const double *y, double *out)
{
    int rc = ready(be);
    *out = 0;
    if (rc || n == 0)
        return rc;
    rc = check_blas(be, cu.Ddot(impl(be)->blas, (int)n, x, 1, y, 1, out), "cublasDdot");
    return rc ? rc : check(be, cu.CtxSynchronize(), "cublasDdot");
}

static int cuda_axpby(vv_backend *be, int64_t n, double a, const double *x, double b, double *y)
{
    int rc = ready(be);
    void *args[] = {&n, &a, &x, &b, &y};
    return rc ? rc : launch(be, impl(be)->f_axpby, (n + BLOCK - 1) / BLOCK, args, "vv_axpby");
}

static int cuda_gather_rows(vv_backend *be, const double *src, int64_t cols, const int64_t *idx,
                            int64_t n, double *dst)
{
    cuda_impl *im = impl(be);
    int rc = ready(be);
    if (rc || n == 0 || cols == 0)
        return rc;
    if (n > im->idx_cap) {
        if (im->idx)
            cu.MemFree(im->idx);
        im->idx = 0;
        im->idx_cap = 0;
        if ((rc = check(be, cu.MemAlloc(&im->idx, (size_t)n * sizeof *idx), "cuMemAlloc")) < 0)
            return rc;
        im->idx_cap = n;
    }
    if ((rc = check(be, cu.MemcpyHtoD(im->idx, idx, (size_t)n * sizeof *idx), "cuMemcpyHtoD")) < 0)
        return rc;
    void *args[] = {&src, &cols, &im->idx, &n, &dst};
    return launch(be, im->f_gather, (n * cols + BLOCK - 1) / BLOCK, args, "vv_gather_rows");
}

static int cuda_im2col(vv_backend *be, const float *x, int64_t nb, int c, int h, int w, int k,
                       int stride, int pad, int oh, int ow, float *col, int64_t ldc)
{
    int rc = ready(be);
    int64_t total = nb * c * k * k * oh * ow;
    void *args[] = {&x, &nb, &c, &h, &w, &k, &stride, &pad, &oh, &ow, &col, &ldc};
    return rc ? rc : launch(be, impl(be)->f_im2col, (total + BLOCK - 1) / BLOCK, args, "vv_im2col");
}

static int cuda_affine_act(vv_backend *be, const float *x, int64_t xo, int64_t xs, int64_t nb,
                           int64_t ch, int64_t hw, const float *scale, const float *shift,
                           int relu, float *y)
{
    int rc = ready(be);
    int64_t total = nb * ch * hw;
    void *args[] = {&x, &xo, &xs, &nb, &ch, &hw, &scale, &shift, &relu, &y};
    return rc ? rc
              : launch(be, impl(be)->f_affine, (total + BLOCK - 1) / BLOCK, args,
                       "vv_affine_act");
}

static int cuda_pool2d(vv_backend *be, const float *x, int64_t planes, int h, int w, int k,
                       int stride, int pad, int oh, int ow, int is_max, float *y)
{
    int rc = ready(be);
    int64_t total = planes * oh * ow;
    void *args[] = {&x, &planes, &h, &w, &k, &stride, &pad, &oh, &ow, &is_max, &y};
    return rc ? rc : launch(be, impl(be)->f_pool, (total + BLOCK - 1) / BLOCK, args, "vv_pool2d");
}

static int cuda_adaptive_avg(vv_backend *be, const float *x, int64_t planes, int h, int w, int oh,
                             int ow, float *y)
{
    int rc = ready(be);
    int64_t total = planes * oh * ow;
    void *args[] = {&x, &planes, &h, &w, &oh, &ow, &y};
    return rc ? rc
              : launch(be, impl(be)->f_adaptive, (total + BLOCK - 1) / BLOCK, args,
                       "vv_adaptive_avg");
}

/* ---- Sums across processes: NCCL, loaded at run time ------------------------------ */

#ifdef VV_HAVE_NCCL

static struct {
    __typeof__(ncclGetUniqueId) *GetUniqueId;
    __typeof__(ncclCommInitRank) *CommInitRank;
    __typeof__(ncclAllReduce) *AllReduce;
    __typeof__(ncclCommDestroy) *CommDestroy;
    __typeof__(ncclGetErrorString) *GetErrorString;
    __typeof__(ncclGetLastError) *GetLastError; /* optional (NCCL >= 2.13) */
} nc;

static pthread_once_t nccl_once = PTHREAD_ONCE_INIT;
static char nccl_msg[512]; /* why NCCL cannot be used; empty once loaded */

static void load_nccl(void)
{
    static const char *const names[] = {
#ifdef VV_CUDA_LIBDIR
        VV_CUDA_LIBDIR "/libnccl.so.2",
#endif
        "libnccl.so.2", "libnccl.so"};
    /* VVD_NCCL names another library (tests/gpu/emu's emulated NCCL). */
    const char *env = getenv("VVD_NCCL");
    void *h =
        env && *env ? open_first(&env, 1) : open_first(names, (int)(sizeof names / sizeof *names));
    if (!h) {
        snprintf(nccl_msg, sizeof nccl_msg, "no NCCL (%s): %s", env && *env ? env : "libnccl.so.2",
                 dlerror());
        return;
    }
    struct {
        void **f;
        const char *name;
    } syms[] = {{(void **)&nc.GetUniqueId, "ncclGetUniqueId"},
                {(void **)&nc.CommInitRank, "ncclCommInitRank"},
                {(void **)&nc.AllReduce, "ncclAllReduce"},
                {(void **)&nc.CommDestroy, "ncclCommDestroy"},
                {(void **)&nc.GetErrorString, "ncclGetErrorString"}};
    for (unsigned i = 0; i < sizeof syms / sizeof *syms; i++)
        if (!(*syms[i].f = dlsym(h, syms[i].name))) {
            snprintf(nccl_msg, sizeof nccl_msg, "NCCL lacks %s", syms[i].name);
            return;
        }
    *(void **)&nc.GetLastError = dlsym(h, "ncclGetLastError");
    if (!cu.DeviceGetPCIBusId)
        snprintf(nccl_msg, sizeof nccl_msg, "the CUDA driver lacks cuDeviceGetPCIBusId");
}

static int nccl_loaded(void)
{
    pthread_once(&nccl_once, load_nccl);
    return nccl_msg[0] ? vv_fail(VV_EDEVICE, "%s", nccl_msg) : 0;
}

static int check_nccl(vv_backend *be, ncclResult_t r, const char *what)
{
    if (r == ncclSuccess)
        return 0;
    const char *last = nc.GetLastError ? nc.GetLastError((ncclComm_t)impl(be)->comm) : NULL;
    return vv_fail(VV_EDEVICE, "nccl: %s: %s%s%s", what, nc.GetErrorString(r),
                   last && *last ? ": " : "", last && *last ? last : "");
}

static int cuda_group_key(vv_backend *be, char *key, size_t keysz)
{
    int rc = ready(be);
    if (rc == 0 && (rc = nccl_loaded()) == 0)
        rc = check(be, cu.DeviceGetPCIBusId(key, (int)keysz, impl(be)->dev), "cuDeviceGetPCIBusId");
    return rc;
}

static int cuda_group_id(vv_backend *be, void *id, size_t idsz)
{
    ncclUniqueId u;
    int rc = nccl_loaded();
    if (rc == 0 && idsz < sizeof u)
        rc = vv_fail(VV_EINVAL, "nccl: a group id takes %zu bytes", sizeof u);
    if (rc == 0 && (rc = check_nccl(be, nc.GetUniqueId(&u), "ncclGetUniqueId")) == 0)
        memcpy(id, &u, sizeof u);
    return rc;
}

static int cuda_group_join(vv_backend *be, const void *id, int rank, int size)
{
    cuda_impl *im = impl(be);
    ncclUniqueId u;
    ncclComm_t comm = NULL;
    int rc = ready(be);
    if (rc == 0)
        rc = nccl_loaded();
    if (rc == 0 && im->comm)
        rc = vv_fail(VV_ESTATE, "nccl: this device is in a group already");
    if (rc < 0)
        return rc;
    memcpy(&u, id, sizeof u);
    /* NCCL takes the device of the current context (ready made it ours). */
    if ((rc = check_nccl(be, nc.CommInitRank(&comm, size, u, rank), "ncclCommInitRank")) == 0)
        im->comm = comm;
    return rc;
}

static int cuda_group_sum(vv_backend *be, double *x, int64_t n)
{
    cuda_impl *im = impl(be);
    int rc = ready(be);
    if (rc == 0 && !im->comm)
        rc = vv_fail(VV_ESTATE, "nccl: this device is in no group");
    if (rc < 0 || n == 0)
        return rc;
    /* On the context's default stream, which the synchronisation waits for. */
    rc = check_nccl(be,
                    nc.AllReduce(x, x, (size_t)n, ncclDouble, ncclSum, (ncclComm_t)im->comm, NULL),
                    "ncclAllReduce");
    return rc ? rc : check(be, cu.CtxSynchronize(), "ncclAllReduce");
}

#endif /* VV_HAVE_NCCL */

static int cuda_info_op(vv_backend *be, char *name, size_t namesz, size_t *free_bytes,
                        size_t *total_bytes);
static int cuda_lost_op(const vv_backend *be);

static const vv_backend_ops cuda_ops = {
    .name = "cuda",
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .gemm = cuda_gemm,
    .syrk_t = cuda_syrk_t,
    .row_norms = cuda_row_norms,
    .group_shrink = cuda_group_shrink,
    .dot = cuda_dot,
    .axpby = cuda_axpby,
    .gather_rows = cuda_gather_rows,
    .sgemm = cuda_sgemm,
    .im2col = cuda_im2col,
    .affine_act = cuda_affine_act,
    .pool2d = cuda_pool2d,
    .adaptive_avg = cuda_adaptive_avg,
    .info = cuda_info_op,
    .lost = cuda_lost_op,
    .close = vv_backend_cuda_close,
#ifdef VV_HAVE_NCCL
    .group_key = cuda_group_key,
    .group_id = cuda_group_id,
    .group_join = cuda_group_join,
    .group_sum = cuda_group_sum,
#endif
};

int vv_backend_cuda_count(void)
{
    int n = 0;
    if (loaded() < 0 || cu.DeviceGetCount(&n) != CUDA_SUCCESS)
        return 0;
    return n;
}

int vv_backend_cuda_open(int device, vv_backend **out)
{
    *out = NULL;
    int rc = loaded();
    if (rc < 0)
        return rc;
    int n = vv_backend_cuda_count();
    if (device < 0 || device >= n)
        return vv_fail(VV_EDEVICE, "cuda:%d: no such device (%d found)", device, n);
    vv_backend *be = calloc(1, sizeof *be);
    cuda_impl *im = calloc(1, sizeof *im);
    if (!be || !im) {
        free(be);
        free(im);
        return vv_fail(VV_ENOMEM, "out of memory");
    }
    be->ops = &cuda_ops;
    be->impl = im;
    if ((rc = check(be, cu.DeviceGet(&im->dev, device), "cuDeviceGet")) < 0 ||
        (rc = check(be, cu.PrimaryCtxRetain(&im->ctx, im->dev), "cuDevicePrimaryCtxRetain")) < 0) {
        free(im);
        free(be);
        return rc;
    }
    if ((rc = check(be, cu.CtxSetCurrent(im->ctx), "cuCtxSetCurrent")) == 0)
        rc = check(be, cu.ModuleLoadData(&im->mod, vv_cuda_fatbin), "cuModuleLoadData");
    struct {
        CUfunction *f;
        const char *name;
    } fns[] = {{&im->f_row_norms, "vv_row_norms"},
               {&im->f_group_shrink, "vv_group_shrink"},
               {&im->f_axpby, "vv_axpby"},
               {&im->f_im2col, "vv_im2col"},
               {&im->f_gather, "vv_gather_rows"},
               {&im->f_affine, "vv_affine_act"},
               {&im->f_pool, "vv_pool2d"},
               {&im->f_adaptive, "vv_adaptive_avg"}};
    for (unsigned i = 0; rc == 0 && i < sizeof fns / sizeof *fns; i++)
        rc = check(be, cu.ModuleGetFunction(fns[i].f, im->mod, fns[i].name), fns[i].name);
    if (rc == 0)
        rc = check(be, cu.MemAlloc(&im->count, sizeof(unsigned long long)), "cuMemAlloc");
    /* gather_rows' indices: room for the blocks of 1024 rows that the
     * resident FISTA gathers, so that a job leaves the device's free memory
     * as it found it. */
    if (rc == 0 &&
        (rc = check(be, cu.MemAlloc(&im->idx, 1024 * sizeof(int64_t)), "cuMemAlloc")) == 0)
        im->idx_cap = 1024;
    if (rc == 0)
        rc = check_blas(be, cu.blasCreate(&im->blas), "cublasCreate");
    /* Results of dot come back to host memory; no TF32 anywhere: every
     * product of the certificate is float64, and the forward pass keeps
     * float32 accuracy. */
    if (rc == 0)
        rc = check_blas(be, cu.SetPointerMode(im->blas, CUBLAS_POINTER_MODE_HOST),
                        "cublasSetPointerMode");
    if (rc == 0)
        rc = check_blas(be, cu.SetMathMode(im->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    if (rc < 0) {
        vv_backend_cuda_close(be);
        return rc;
    }
    *out = be;
    return 0;
}

void vv_backend_cuda_close(vv_backend *be)
{
    if (!be)
        return;
    cuda_impl *im = impl(be);
    if (im->ctx)
        cu.CtxSetCurrent(im->ctx);
#ifdef VV_HAVE_NCCL
    if (im->comm)
        nc.CommDestroy((ncclComm_t)im->comm);
#endif
    if (im->blas)
        cu.blasDestroy(im->blas);
    if (im->count)
        cu.MemFree(im->count);
    if (im->idx)
        cu.MemFree(im->idx);
    if (im->mod)
        cu.ModuleUnload(im->mod);
    if (im->ctx)
        cu.PrimaryCtxRelease(im->dev);
    free(im);
    free(be);
}

int vv_backend_cuda_info(vv_backend *be, char *name, size_t namesz, size_t *free_bytes,
                         size_t *total_bytes)
{
    int rc = ready(be);
    if (rc == 0 && name && namesz)
        rc = check(be, cu.DeviceGetName(name, (int)namesz, impl(be)->dev), "cuDeviceGetName");
    size_t f = 0, t = 0;
    if (rc == 0)
        rc = check(be, cu.MemGetInfo(&f, &t), "cuMemGetInfo");
    if (free_bytes)
        *free_bytes = f;
    if (total_bytes)
        *total_bytes = t;
    return rc;
}

int vv_backend_cuda_lost(const vv_backend *be)
{
    return ((const cuda_impl *)be->impl)->lost;
}

static int cuda_info_op(vv_backend *be, char *name, size_t namesz, size_t *free_bytes,
                        size_t *total_bytes)
{
    return vv_backend_cuda_info(be, name, namesz, free_bytes, total_bytes);
}

static int cuda_lost_op(const vv_backend *be) { return vv_backend_cuda_lost(be); }
