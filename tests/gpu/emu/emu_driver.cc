/* emu_driver.cc - the CUDA driver API that gpu/backend_cuda.c uses, on the
 * host (see emu.h).
 *
 * Device memory: host allocations the emulator tracks, filled with NaN
 * bytes when allocated (a GPU's memory holds whatever was there), with a
 * budget (VV_EMU_MEMORY bytes, default 2 GiB) past which cuMemAlloc fails
 * with CUDA_ERROR_OUT_OF_MEMORY.  Copies, memsets, kernel pointer
 * arguments and cuBLAS operands must lie inside one live allocation, and
 * host pointers must not; the context must be current on the calling
 * thread; launches are checked against the hardware's limits.
 *
 * Kernels: gpu/kernels.cu compiled as host C++ (cuda_builtins.h).  A launch
 * unpacks kernelParams by the kernel's own parameter types, as the driver
 * does, and runs every thread of every block; the threads of a block that
 * calls __syncthreads run as fibers that all reach each barrier before any
 * passes it.
 *
 * Faults: with VV_EMU_FAULT_SIGNAL=1, a SIGUSR2 makes the next unit of
 * device work (a launch or a cuBLAS call) fault as an illegal address does:
 * the launch returns success, the next synchronisation
 * CUDA_ERROR_ILLEGAL_ADDRESS, and every call after it the same error
 * (sticky).  A bad pointer argument or a divergent barrier faults the same
 * way and says why on stderr.
 *
 * Releasing the primary context with device memory still allocated (and no
 * fault) is reported on stderr and aborts: a leak of device memory. */
#include <cuda.h>

#include "emu.h"

#include <map>
#include <mutex>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <tuple>
#include <type_traits>
#include <unistd.h>
#include <utility>

#include "cuda_builtins.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#endif

#define EXPORT extern "C" __attribute__((visibility("default")))
/* The fiber machinery runs for every thread at every barrier: left out of
 * the sanitizers' instrumentation (the kernels keep it). */
#define NOSAN __attribute__((no_sanitize("address", "undefined")))

/* ---- The kernels -------------------------------------------------------------- */

emu_uint3 emu_thread_idx, emu_block_idx, emu_block_dim, emu_grid_dim;

#include "kernels.cu"

/* ---- State -------------------------------------------------------------------- */

struct CUctx_st {
    int refs;
};
struct CUmod_st {
    int loaded;
};

static std::mutex mem_lock;                  /* allocs, used */
static std::map<uintptr_t, size_t> allocs;   /* base -> bytes */
static size_t used, total = (size_t)2 << 30; /* VV_EMU_MEMORY */
static std::recursive_mutex launch_lock;     /* one launch at a time */
static int initialised;
enum { ndevices = 1 };
static int fault;
static CUctx_st primary;
static CUmod_st module;
/* Initial-exec TLS: with the dynamic TLS of a dlopened library,
 * LeakSanitizer's tracer (GCC 12) crashed at exit. */
static __thread CUcontext current __attribute__((tls_model("initial-exec")));

static int span_in(const void *p, size_t bytes)
{
    uintptr_t a = (uintptr_t)p;
    auto it = allocs.upper_bound(a);
    if (it == allocs.begin())
        return 0;
    --it;
    return a >= it->first && a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

int emu_span_ok(const void *p, size_t bytes)
{
    std::lock_guard<std::mutex> g(mem_lock);
    return p && span_in(p, bytes);
}

size_t emu_matrix_bytes(int64_t rows, int64_t cols, int64_t ld, size_t elem)
{
    return rows <= 0 || cols <= 0 ? 0 : (size_t)((cols - 1) * ld + rows) * elem;
}

int emu_faulted(void)
{
    std::lock_guard<std::recursive_mutex> g(launch_lock);
    return fault;
}

static volatile sig_atomic_t fault_signalled;

static void on_fault_signal(int sig)
{
    (void)sig;
    fault_signalled = 1;
}

int emu_work(void)
{
    std::lock_guard<std::recursive_mutex> g(launch_lock);
    if (fault_signalled)
        fault = 1;
    return fault;
}

void emu_fault(const char *fmt, ...)
{
    std::lock_guard<std::recursive_mutex> g(launch_lock);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda emulator: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fault = 1;
}

/* The common checks of a call: cuInit, no fault, a current context. */
static CUresult usable(int need_ctx)
{
    if (!initialised)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (emu_faulted())
        return CUDA_ERROR_ILLEGAL_ADDRESS;
    if (need_ctx && current != &primary)
        return CUDA_ERROR_INVALID_CONTEXT;
    return CUDA_SUCCESS;
}

/* ---- Fibers: the threads of a block that synchronise ---------------------------- */

/* A pass runs every live thread of the block, in order, up to its next
 * barrier (or its end): the scheduler switches to the first, each switches
 * to the next, the last back to the scheduler, which then checks that all
 * reached the same barrier. */

#if defined(__x86_64__)
/* vv_emu_switch(&save, to): saves the callee-saved registers and the stack
 * pointer in *save and resumes the context whose stack pointer is to. */
asm(".text\n"
    ".globl vv_emu_switch\n"
    ".hidden vv_emu_switch\n"
    ".type vv_emu_switch,@function\n"
    "vv_emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size vv_emu_switch,.-vv_emu_switch\n");
extern "C" void vv_emu_switch(void **save, void *to);
#else
#error "the CUDA emulator's fibers need x86-64"
#endif

#ifdef EMU_ASAN
enum { STACK = 128 << 10, MAX_THREADS = 1024 }; /* room for ASan's reports */
#else
enum { STACK = 16 << 10, MAX_THREADS = 1024 };
#endif

struct fiber {
    void *sp;
    int done;
    long long barriers;
#ifdef EMU_ASAN
    void *fake_stack;
#endif
};

static char *stacks; /* MAX_THREADS stacks of STACK bytes */
static fiber fibers[MAX_THREADS];
static void *sched_sp;
static int cur, nthreads, in_fiber;
static void (*body)(void);
#ifdef EMU_ASAN
static void *sched_fake;
static const void *sched_bottom;
static size_t sched_size;
static int from_scheduler, stacks_dirty;
#endif

NOSAN static void set_thread(int t)
{
    cur = t;
    emu_thread_idx.x = (unsigned)t % emu_block_dim.x;
    emu_thread_idx.y = (unsigned)t / emu_block_dim.x % emu_block_dim.y;
    emu_thread_idx.z = (unsigned)t / (emu_block_dim.x * emu_block_dim.y);
}

/* Just resumed on a fiber's stack.  Not inlined: under ASan its locals'
 * redzones must go with its own frame, which always returns. */
__attribute__((noinline)) static void arrived(void *fake_stack)
{
#ifdef EMU_ASAN
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(fake_stack, &bottom, &size);
    if (from_scheduler) {
        sched_bottom = bottom;
        sched_size = size;
        from_scheduler = 0;
    }
#endif
    (void)fake_stack;
}

/* From the fiber running now to the next live one of this pass, or back to
 * the scheduler after the last.  A finished fiber's last frames stay on its
 * stack, so this one has no locals ASan would poison. */
NOSAN static void switch_away(int finished)
{
    fiber *f = &fibers[cur];
    int next = cur + 1;
    while (next < nthreads && fibers[next].done)
        next++;
    void *to = sched_sp;
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(finished ? NULL : &f->fake_stack,
                                   next < nthreads ? stacks + (size_t)next * STACK : sched_bottom,
                                   next < nthreads ? (size_t)STACK : sched_size);
#endif
    (void)finished;
    if (next < nthreads) {
        to = fibers[next].sp;
        set_thread(next);
    }
    vv_emu_switch(&f->sp, to);
}

NOSAN static void fiber_entry(void)
{
    arrived(NULL);
    body();
    fibers[cur].done = 1;
    switch_away(1);
    abort(); /* never resumed */
}

NOSAN void emu_syncthreads(void)
{
    if (!in_fiber) {
        fprintf(stderr, "cuda emulator: a kernel not marked SYNC in emu_driver.cc's table "
                        "calls __syncthreads\n");
        abort();
    }
    fiber *f = &fibers[cur];
    f->barriers++;
    switch_away(0);
#ifdef EMU_ASAN
    arrived(f->fake_stack);
#endif
}

/* Runs one block's n threads as fibers; 0, or -1 on a divergent barrier. */
NOSAN static int run_block_fibers(int n)
{
    if (!stacks) {
        stacks = (char *)mmap(NULL, (size_t)STACK * MAX_THREADS, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (stacks == MAP_FAILED) {
            perror("cuda emulator: mmap");
            abort();
        }
    }
#ifdef EMU_ASAN
    /* Fibers that ended left no poisoned frames; those abandoned at a
     * divergent barrier did. */
    if (stacks_dirty)
        __asan_unpoison_memory_region(stacks, (size_t)STACK * MAX_THREADS);
    stacks_dirty = 0;
#endif
    for (int t = 0; t < n; t++) {
        char *stack = stacks + (size_t)t * STACK;
        void **top = (void **)(stack + STACK); /* 16-aligned */
        top[-1] = NULL;                        /* fiber_entry's return address */
        top[-2] = (void *)fiber_entry;         /* where the first switch returns */
        for (int r = 3; r <= 8; r++)
            top[-r] = NULL; /* rbp rbx r12-r15 */
        fibers[t].sp = top - 8;
        fibers[t].done = 0;
        fibers[t].barriers = 0;
    }
    nthreads = n;
    in_fiber = 1;
    int live = n, rc = 0, first = 0;
    while (live > 0) {
        set_thread(first);
#ifdef EMU_ASAN
        from_scheduler = 1;
        __sanitizer_start_switch_fiber(&sched_fake, stacks + (size_t)first * STACK, STACK);
#endif
        vv_emu_switch(&sched_sp, fibers[first].sp);
#ifdef EMU_ASAN
        __sanitizer_finish_switch_fiber(sched_fake, NULL, NULL);
#endif
        /* Every live thread is now at the same barrier, or all have ended. */
        int now = 0;
        long long bar = -1;
        for (int t = n - 1; t >= 0; t--) {
            if (fibers[t].done)
                continue;
            first = t;
            if (now++ == 0)
                bar = fibers[t].barriers;
            else if (fibers[t].barriers != bar)
                rc = -1;
        }
        if (now > 0 && now < live)
            rc = -1;
        if (rc < 0) {
#ifdef EMU_ASAN
            stacks_dirty = 1;
#endif
            break; /* the fibers left waiting are abandoned with their stacks */
        }
        live = now;
    }
    in_fiber = 0;
    return rc;
}

/* ---- The kernel table ----------------------------------------------------------- */

struct CUfunc_st {
    const char *name;
    int sync;                              /* calls __syncthreads */
    const char *(*prepare)(void **params); /* NULL, or what is wrong */
    void (*thread)(void);
};

template <typename T> static const char *check_arg(const T &v, int i)
{
    if constexpr (std::is_pointer_v<T>) {
        static char why[64];
        if (v && !emu_span_ok((const void *)v, 0)) {
            snprintf(why, sizeof why, "parameter %d is not device memory", i);
            return why;
        }
    }
    (void)v;
    (void)i;
    return NULL;
}

template <typename F, F f> struct kernel;
template <typename... A, void (*f)(A...)> struct kernel<void (*)(A...), f> {
    static std::tuple<A...> args;

    template <size_t... I> static const char *unpack(void **p, std::index_sequence<I...>)
    {
        args = std::tuple<A...>(*(const A *)p[I]...);
        const char *why = NULL;
        ((why = why ? why : check_arg(std::get<I>(args), (int)I)), ...);
        return why;
    }
    static const char *prepare(void **p) { return unpack(p, std::index_sequence_for<A...>{}); }
    static void thread(void) { std::apply(f, args); }
};
template <typename... A, void (*f)(A...)> std::tuple<A...> kernel<void (*)(A...), f>::args;

/* The emulator's own: thread 0 leaves before the barrier the others wait
 * at (undefined on a GPU; the emulator's check must catch it). */
extern "C" __global__ void vv_emu_diverge(void)
{
    if (threadIdx.x == 0)
        return;
    __syncthreads();
}

/* sync: the kernel calls __syncthreads, so its blocks run as fibers. */
// clang-format off
#define KERNEL_OF(k) kernel<decltype(&k), &k>
#define KERNEL(k, sync) {#k, sync, KERNEL_OF(k)::prepare, KERNEL_OF(k)::thread}
static CUfunc_st kernels[] = {
    KERNEL(vv_row_norms, 1),
    KERNEL(vv_group_shrink, 1),
    KERNEL(vv_axpby, 0),
    KERNEL(vv_gather_rows, 0),
    KERNEL(vv_im2col, 0),
    KERNEL(vv_affine_act, 0),
    KERNEL(vv_pool2d, 0),
    KERNEL(vv_adaptive_avg, 0),
    KERNEL(vv_emu_diverge, 1),
};
// clang-format on

/* ---- The driver API ------------------------------------------------------------- */

EXPORT CUresult cuInit(unsigned flags)
{
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> g(launch_lock);
    const char *s;
    if ((s = getenv("VV_EMU_MEMORY")) && *s)
        total = strtoull(s, NULL, 10);
    if ((s = getenv("VV_EMU_FAULT_SIGNAL")) && *s == '1')
        signal(SIGUSR2, on_fault_signal);
    initialised = 1;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetCount(int *count)
{
    if (!initialised)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = ndevices;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
    if (!initialised)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!dev)
        return CUDA_ERROR_INVALID_VALUE;
    if (ordinal < 0 || ordinal >= ndevices)
        return CUDA_ERROR_INVALID_DEVICE;
    *dev = ordinal;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    CUresult r = usable(0);
    if (r != CUDA_SUCCESS)
        return r;
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev < 0 || dev >= ndevices)
        return CUDA_ERROR_INVALID_DEVICE;
    snprintf(name, (size_t)len, "vvd CUDA emulator (host memory)");
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev)
{
    CUresult r = usable(0);
    if (r != CUDA_SUCCESS)
        return r;
    if (!ctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) /* one context for the process: device 0's */
        return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard<std::recursive_mutex> g(launch_lock);
    primary.refs++;
    *ctx = &primary;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    if (!initialised)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard<std::recursive_mutex> g(launch_lock);
    if (primary.refs <= 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (--primary.refs == 0) {
        std::lock_guard<std::mutex> m(mem_lock);
        if (!fault && !allocs.empty()) {
            fprintf(stderr,
                    "cuda emulator: the context was released with %zu device allocations "
                    "(%zu bytes) never freed\n",
                    allocs.size(), used);
            abort();
        }
        for (auto &a : allocs)
            free((void *)a.first);
        allocs.clear();
        used = 0;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSetCurrent(CUcontext ctx)
{
    CUresult r = usable(0);
    if (r != CUDA_SUCCESS)
        return r;
    if (ctx && (ctx != &primary || primary.refs <= 0))
        return CUDA_ERROR_INVALID_CONTEXT;
    current = ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSynchronize(void)
{
    return usable(1);
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    if (!p || bytes == 0)
        return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::mutex> g(mem_lock);
    if (bytes > total - used)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *m = NULL;
    if (posix_memalign(&m, 256, bytes) != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memset(m, 0xff, bytes); /* NaN in float32 and float64 */
    allocs[(uintptr_t)m] = bytes;
    used += bytes;
    *p = (CUdeviceptr)(uintptr_t)m;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr p)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    if (!p)
        return CUDA_SUCCESS;
    std::lock_guard<std::mutex> g(mem_lock);
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end())
        return CUDA_ERROR_INVALID_VALUE;
    used -= it->second;
    allocs.erase(it);
    free((void *)(uintptr_t)p);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    if (bytes == 0)
        return CUDA_SUCCESS;
    if (!src || !emu_span_ok((void *)(uintptr_t)dst, bytes) || emu_span_ok(src, 1))
        return CUDA_ERROR_INVALID_VALUE;
    memcpy((void *)(uintptr_t)dst, src, bytes);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    if (bytes == 0)
        return CUDA_SUCCESS;
    if (!dst || !emu_span_ok((void *)(uintptr_t)src, bytes) || emu_span_ok(dst, 1))
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(dst, (const void *)(uintptr_t)src, bytes);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char v, size_t n)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    if (n == 0)
        return CUDA_SUCCESS;
    if (!emu_span_ok((void *)(uintptr_t)dst, n))
        return CUDA_ERROR_INVALID_VALUE;
    memset((void *)(uintptr_t)dst, v, n);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    if (!free_bytes || !total_bytes)
        return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::mutex> g(mem_lock);
    *free_bytes = total - used;
    *total_bytes = total;
    return CUDA_SUCCESS;
}

/* The allocation holding p (emu_nccl.cc checks its buffers with it, as
 * NCCL asks the runtime). */
EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr *base, size_t *size, CUdeviceptr p)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    std::lock_guard<std::mutex> g(mem_lock);
    auto it = allocs.upper_bound((uintptr_t)p);
    if (it == allocs.begin() || (uintptr_t)p - (--it)->first >= it->second)
        return CUDA_ERROR_NOT_FOUND;
    if (base)
        *base = (CUdeviceptr)it->first;
    if (size)
        *size = it->second;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetCurrent(CUcontext *ctx)
{
    if (!initialised)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!ctx)
        return CUDA_ERROR_INVALID_VALUE;
    *ctx = current;
    return CUDA_SUCCESS;
}

/* Each process's emulated GPU is its own device (its own host memory), so
 * its bus id names the process; VV_EMU_PCI_BUS_ID gives every process the
 * same, as ranks sharing one GPU have. */
EXPORT CUresult cuDeviceGetPCIBusId(char *bus, int len, CUdevice dev)
{
    CUresult r = usable(0);
    if (r != CUDA_SUCCESS)
        return r;
    if (!bus || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev < 0 || dev >= ndevices)
        return CUDA_ERROR_INVALID_DEVICE;
    const char *s = getenv("VV_EMU_PCI_BUS_ID");
    unsigned pid = (unsigned)getpid();
    if (s && *s)
        snprintf(bus, (size_t)len, "%s", s);
    else
        snprintf(bus, (size_t)len, "%04x:%02x:00.0", (pid >> 8) & 0xffff, pid & 0xff);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleLoadData(CUmodule *mod, const void *image)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    if (!mod || !image)
        return CUDA_ERROR_INVALID_VALUE;
    uint32_t magic;
    memcpy(&magic, image, sizeof magic);
    if (magic != 0xBA55ED50u) /* a fatbin */
        return CUDA_ERROR_INVALID_IMAGE;
    module.loaded = 1;
    *mod = &module;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleUnload(CUmodule mod)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    if (mod != &module || !module.loaded)
        return CUDA_ERROR_INVALID_HANDLE;
    module.loaded = 0;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleGetFunction(CUfunction *f, CUmodule mod, const char *name)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    if (!f || !name)
        return CUDA_ERROR_INVALID_VALUE;
    if (mod != &module || !module.loaded)
        return CUDA_ERROR_INVALID_HANDLE;
    for (auto &k : kernels)
        if (!strcmp(k.name, name)) {
            *f = &k;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_NOT_FOUND;
}

EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                               unsigned by, unsigned bz, unsigned shmem, CUstream stream,
                               void **params, void **extra)
{
    CUresult r = usable(1);
    if (r != CUDA_SUCCESS)
        return r;
    if (!f || f < kernels || f >= kernels + sizeof kernels / sizeof *kernels || !module.loaded)
        return CUDA_ERROR_INVALID_HANDLE;
    /* The limits of sm_80 / sm_90 (and of every GPU since sm_30). */
    if (gx == 0 || gy == 0 || gz == 0 || gx > 2147483647u || gy > 65535 || gz > 65535 || bx == 0 ||
        by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 ||
        (unsigned long long)bx * by * bz > 1024 || shmem > 48 << 10 || stream != NULL ||
        (params && extra) || (!params && !extra))
        return CUDA_ERROR_INVALID_VALUE;
    if (extra)
        return CUDA_ERROR_NOT_SUPPORTED; /* the backend passes kernelParams */
    std::lock_guard<std::recursive_mutex> g(launch_lock);
    if (emu_work())
        return CUDA_SUCCESS; /* the fault shows at the next synchronisation */
    const char *why = f->prepare(params);
    if (why) {
        emu_fault("%s: %s", f->name, why);
        return CUDA_SUCCESS;
    }
    emu_grid_dim = {gx, gy, gz};
    emu_block_dim = {bx, by, bz};
    int n = (int)(bx * by * bz);
    body = f->thread;
    for (unsigned z = 0; z < gz; z++)
        for (unsigned y = 0; y < gy; y++)
            for (unsigned x = 0; x < gx; x++) {
                emu_block_idx = {x, y, z};
                if (f->sync) {
                    if (run_block_fibers(n) < 0) {
                        emu_fault("%s: block %u: the threads of a block reached different "
                                  "__syncthreads",
                                  f->name, x);
                        return CUDA_SUCCESS;
                    }
                } else {
                    for (int t = 0; t < n; t++) {
                        set_thread(t);
                        body();
                    }
                }
            }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGetErrorString(CUresult e, const char **s)
{
    if (!s)
        return CUDA_ERROR_INVALID_VALUE;
    switch (e) {
    case CUDA_SUCCESS:
        *s = "no error";
        break;
    case CUDA_ERROR_INVALID_VALUE:
        *s = "invalid argument";
        break;
    case CUDA_ERROR_OUT_OF_MEMORY:
        *s = "out of memory";
        break;
    case CUDA_ERROR_NOT_INITIALIZED:
        *s = "initialization error";
        break;
    case CUDA_ERROR_INVALID_DEVICE:
        *s = "invalid device ordinal";
        break;
    case CUDA_ERROR_INVALID_IMAGE:
        *s = "device kernel image is invalid";
        break;
    case CUDA_ERROR_INVALID_CONTEXT:
        *s = "invalid device context";
        break;
    case CUDA_ERROR_INVALID_HANDLE:
        *s = "invalid resource handle";
        break;
    case CUDA_ERROR_NOT_FOUND:
        *s = "named symbol not found";
        break;
    case CUDA_ERROR_NOT_SUPPORTED:
        *s = "operation not supported";
        break;
    case CUDA_ERROR_ILLEGAL_ADDRESS:
        *s = "an illegal memory access was encountered";
        break;
    default:
        *s = NULL;
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}
