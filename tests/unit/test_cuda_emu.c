/* test_cuda_emu.c - the CUDA emulator (tests/gpu/emu) catches the mistakes
 * a GPU would punish.  Each check makes one on purpose, through the CUDA
 * backend or the driver API, and expects CUDA's error (or the emulator's
 * fault, where a GPU would fault or misbehave).  A mistake that faults the
 * device for good runs in a child process.  meson runs it with
 * VVD_CUDA_DRIVER and VVD_CUBLAS naming the emulator (VV_TEST_CUDA_EMULATOR
 * too, for the direct calls). */
#include "tap.h"
#include "vv/backend.h"
#include "vv/err.h"

#ifndef VV_HAVE_CUDA
int main(void)
{
    tap_skip_all("built without CUDA");
}
#else
#include "vv/backend_cuda.h"

#include <cuda.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern const unsigned char vv_cuda_fatbin[];

static void *emu;

static void *sym(const char *name)
{
    void *f = dlsym(emu, name);
    if (!f) {
        fprintf(stderr, "the emulator lacks %s\n", name);
        exit(1);
    }
    return f;
}

/* Runs fn in a child process; returns its wait status, and what it wrote to
 * stderr in err. */
static int in_child(int (*fn)(void), char *err, size_t errsz)
{
    int fd[2];
    if (pipe(fd) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        _exit(fn());
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < errsz && (r = read(fd[0], err + n, errsz - 1 - n)) > 0)
        n += (size_t)r;
    err[n] = 0;
    for (char *c = err; *c; c++)
        if (*c == '\n')
            *c = ' '; /* one line in the TAP description */
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static int exited(int st, int code)
{
    return WIFEXITED(st) && WEXITSTATUS(st) == code;
}

/* ---- The children: each exits 0 when the device ended lost, with why ------------ */

static int leak(void)
{
    vv_backend *be;
    if (vv_backend_cuda_open(0, &be) < 0)
        return 3;
    be->ops->alloc(be, 1000); /* never freed */
    vv_backend_cuda_close(be);
    return 0; /* the emulator should have aborted */
}

static int lost_with(int rc, vv_backend *be, const char *want)
{
    int ok = rc < 0 && vv_backend_cuda_lost(be) && strstr(vv_err_detail(), want);
    fprintf(stderr, "detail: %s\n", vv_err_detail());
    return ok ? 0 : 1;
}

static int host_pointer_to_kernel(void)
{
    vv_backend *be;
    if (vv_backend_cuda_open(0, &be) < 0)
        return 3;
    double x[16] = {0}, *norms = be->ops->alloc(be, 4 * sizeof(double));
    int rc = be->ops->row_norms(be, 4, 4, x, norms); /* x is host memory */
    return lost_with(rc, be, "illegal memory access");
}

static int operand_past_its_end(void)
{
    vv_backend *be;
    if (vv_backend_cuda_open(0, &be) < 0)
        return 3;
    double *a = be->ops->alloc(be, 8 * sizeof(double)); /* 8, used as 4 x 4 */
    double *b = be->ops->alloc(be, 16 * sizeof(double)),
           *c = be->ops->alloc(be, 16 * sizeof(double));
    int rc = be->ops->gemm(be, 0, 0, 4, 4, 4, 1.0, a, 4, b, 4, 0.0, c, 4);
    double h[16];
    if (rc == 0) /* cuBLAS runs asynchronously: the fault shows at the next call */
        rc = be->ops->download(be, h, c, sizeof h);
    return lost_with(rc, be, "illegal memory access");
}

static int divergent_barrier(void)
{
    vv_backend *be;
    if (vv_backend_cuda_open(0, &be) < 0)
        return 3;
    CUmodule mod;
    CUfunction f;
    CUresult (*load)(CUmodule *, const void *) = sym("cuModuleLoadData");
    CUresult (*get)(CUfunction *, CUmodule, const char *) = sym("cuModuleGetFunction");
    CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                       unsigned, CUstream, void **, void **) = sym("cuLaunchKernel");
    CUresult (*sync)(void) = sym("cuCtxSynchronize");
    void *none[1] = {NULL};
    if (load(&mod, vv_cuda_fatbin) || get(&f, mod, "vv_emu_diverge") ||
        launch(f, 1, 1, 1, 32, 1, 1, 0, NULL, none, NULL))
        return 4;
    return sync() == CUDA_ERROR_ILLEGAL_ADDRESS ? 0 : 1;
}

/* ---- Direct driver calls -------------------------------------------------------- */

static CUresult alloc_result;

static void *alloc_without_context(void *arg)
{
    CUresult (*alloc)(CUdeviceptr *, size_t) = sym("cuMemAlloc_v2");
    CUdeviceptr p;
    alloc_result = alloc(&p, 64);
    return arg;
}

int main(void)
{
    const char *path = getenv("VV_TEST_CUDA_EMULATOR");
    if (!path || !(emu = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        CHECK(0, "VV_TEST_CUDA_EMULATOR names the emulator");
        return tap_done();
    }
    char err[4096];
    /* First, before this process holds the context: a leak. */
    int st = in_child(leak, err, sizeof err);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(err, "never freed"),
           "device memory still allocated when the context is released aborts, saying so "
           "(%.80s)",
           err);

    vv_backend *be;
    int rc = vv_backend_cuda_open(0, &be);
    CHECKF(rc == 0, "the CUDA backend opens on the emulator (%s)", rc ? vv_err_detail() : "ok");
    if (rc)
        return tap_done();

    double *d = be->ops->alloc(be, 64 * sizeof(double)), h[64];
    rc = be->ops->download(be, h, d, sizeof h);
    int nan_all = rc == 0;
    for (int i = 0; i < 64; i++)
        nan_all &= isnan(h[i]);
    CHECK(nan_all, "fresh device memory reads as NaN, as uninitialised memory may");

    double big[128] = {0};
    rc = be->ops->upload(be, d, big, sizeof big);
    CHECK(rc < 0 && !vv_backend_cuda_lost(be),
          "an upload past the allocation's end fails (invalid argument); the device stays");
    rc = be->ops->download(be, h, big, sizeof h);
    CHECK(rc < 0 && !vv_backend_cuda_lost(be), "a download from host memory fails");
    rc = be->ops->gemm(be, 0, 0, 4, 4, 4, 1.0, d, 4, d + 16, 4, 0.0, d + 32, 2);
    CHECKF(rc < 0 && !vv_backend_cuda_lost(be) && strstr(vv_err_detail(), "cublasDgemm"),
           "gemm with ldc 2 < 4 columns: cuBLAS's invalid value (%s)", vv_err_detail());

    CUresult (*load)(CUmodule *, const void *) = sym("cuModuleLoadData");
    CUresult (*get)(CUfunction *, CUmodule, const char *) = sym("cuModuleGetFunction");
    CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                       unsigned, CUstream, void **, void **) = sym("cuLaunchKernel");
    CUresult (*mfree)(CUdeviceptr) = sym("cuMemFree_v2");
    CUmodule mod;
    CUfunction f;
    static const unsigned char not_fatbin[16] = "\x7f"
                                                "ELF";
    CHECK(load(&mod, not_fatbin) == CUDA_ERROR_INVALID_IMAGE, "an image that is no fatbin: "
                                                              "invalid image");
    CHECK(load(&mod, vv_cuda_fatbin) == CUDA_SUCCESS &&
              get(&f, mod, "vv_no_such_kernel") == CUDA_ERROR_NOT_FOUND &&
              get(&f, mod, "vv_axpby") == CUDA_SUCCESS,
          "kernels are found by name, and a missing one is not");
    int64_t n = 64;
    double a = 1, b = 0;
    void *args[] = {&n, &a, &d, &b, &d};
    CHECK(launch(f, 1, 1, 1, 2048, 1, 1, 0, NULL, args, NULL) == CUDA_ERROR_INVALID_VALUE &&
              launch(f, 0, 1, 1, 256, 1, 1, 0, NULL, args, NULL) == CUDA_ERROR_INVALID_VALUE &&
              launch(f, 1, 70000, 1, 256, 1, 1, 0, NULL, args, NULL) == CUDA_ERROR_INVALID_VALUE,
          "launches past the hardware's limits (2048 threads, an empty grid, 70000 blocks in "
          "y) are invalid");
    CHECK(mfree((CUdeviceptr)(uintptr_t)(d + 1)) == CUDA_ERROR_INVALID_VALUE,
          "freeing a pointer inside an allocation is invalid");
    pthread_t th;
    pthread_create(&th, NULL, alloc_without_context, NULL);
    pthread_join(th, NULL);
    CHECK(alloc_result == CUDA_ERROR_INVALID_CONTEXT,
          "a thread with no current context cannot allocate");
    CHECK(!vv_backend_cuda_lost(be), "after all these the device is not lost");
    be->ops->free(be, d);
    vv_backend_cuda_close(be);

    /* Mistakes that fault the device for good, each in a child. */
    st = in_child(host_pointer_to_kernel, err, sizeof err);
    CHECKF(exited(st, 0) && strstr(err, "vv_row_norms: parameter 2 is not device memory"),
           "a host pointer passed to a kernel faults the device: lost, with the illegal "
           "address (%.160s)",
           err);
    st = in_child(operand_past_its_end, err, sizeof err);
    CHECKF(exited(st, 0) && strstr(err, "cublasDgemm: an operand is not inside device memory"),
           "a cuBLAS operand past its allocation faults the device (%.160s)", err);
    st = in_child(divergent_barrier, err, sizeof err);
    CHECKF(exited(st, 0) && strstr(err, "reached different __syncthreads"),
           "threads of a block at different barriers fault the device (%.160s)", err);
    return tap_done();
}
#endif
