/* emu_nccl.cc - the NCCL calls of gpu/backend_cuda.c between processes of
 * the CUDA emulator (see emu.h), loaded in place of libnccl.so.2 (VVD_NCCL).
 *
 * The members of a communicator are the MPI processes of one mpirun (vvd
 * has started MPI before it calls NCCL); ncclAllReduce is MPI_Allreduce on
 * the emulator's host-backed device memory.  Every call first checks what
 * NCCL refuses or what breaks it on a GPU: an id made by ncclGetUniqueId,
 * the same id and member count on every process, each rank once, one GPU
 * per member (their bus ids differ: cuDeviceGetPCIBusId), a current
 * context, a live communicator, send and receive buffers that lie inside
 * one live device allocation (NCCL: "invalid argument"), and every member
 * summing the same count of the same type (NCCL would hang or corrupt
 * memory; here the call fails).  Only double sums are emulated.  The
 * emulated members are every process of MPI_COMM_WORLD, as vvd's are.
 *
 * The CUDA driver calls go to the emulator's driver library
 * (VVD_CUDA_DRIVER, already loaded by the backend), as NCCL's go to the
 * CUDA runtime. */
#include <cuda.h>
#include <mpi.h>
#include <nccl.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT extern "C" __attribute__((visibility("default")))

enum { MAGIC = 0x6e63636c, BUS = 64 };

struct ncclComm {
    int magic; /* MAGIC while live */
    int rank, nranks;
    MPI_Comm mpi; /* the members, ordered by rank */
};

/* What ncclGetLastError says: the last failure's reason. */
static char last[512];

static ncclResult_t fail(ncclResult_t r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static ncclResult_t fail(ncclResult_t r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last, sizeof last, fmt, ap);
    va_end(ap);
    fprintf(stderr, "nccl emulator: %s\n", last);
    return r;
}

static struct {
    __typeof__(cuCtxGetCurrent) *CtxGetCurrent;
    __typeof__(cuCtxSynchronize) *CtxSynchronize;
    __typeof__(cuMemGetAddressRange_v2) *MemGetAddressRange;
    __typeof__(cuDeviceGetPCIBusId) *DeviceGetPCIBusId;
} cu;

/* The driver emulator the backend loaded, and a current context on it. */
static ncclResult_t driver(void)
{
    if (!cu.CtxGetCurrent) {
        const char *path = getenv("VVD_CUDA_DRIVER");
        void *h = path && *path ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : NULL;
        if (!h)
            return fail(ncclSystemError, "the CUDA emulator (VVD_CUDA_DRIVER) is not loaded");
        *(void **)&cu.CtxSynchronize = dlsym(h, "cuCtxSynchronize");
        *(void **)&cu.MemGetAddressRange = dlsym(h, "cuMemGetAddressRange_v2");
        *(void **)&cu.DeviceGetPCIBusId = dlsym(h, "cuDeviceGetPCIBusId");
        *(void **)&cu.CtxGetCurrent = dlsym(h, "cuCtxGetCurrent");
        if (!cu.CtxGetCurrent || !cu.CtxSynchronize || !cu.MemGetAddressRange ||
            !cu.DeviceGetPCIBusId)
            return fail(ncclSystemError, "%s is not the CUDA emulator", path);
    }
    CUcontext ctx = NULL;
    if (cu.CtxGetCurrent(&ctx) != CUDA_SUCCESS || !ctx)
        return fail(ncclInvalidUsage, "no current CUDA context (no device selected)");
    return ncclSuccess;
}

static ncclResult_t mpi_ready(void)
{
    int on = 0, off = 0;
    MPI_Initialized(&on);
    MPI_Finalized(&off);
    return on && !off ? ncclSuccess
                      : fail(ncclInvalidUsage, "the emulated NCCL runs between MPI processes: "
                                               "MPI is not running");
}

static int live(ncclComm_t c)
{
    return c && c->magic == MAGIC;
}

EXPORT const char *ncclGetErrorString(ncclResult_t r)
{
    switch (r) {
    case ncclSuccess:
        return "no error";
    case ncclUnhandledCudaError:
        return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError:
        return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError:
        return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument:
        return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage:
        return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError:
        return "remote process exited or there was a network error";
    case ncclInProgress:
        return "NCCL operation in progress";
    default:
        return "unknown result code";
    }
}

EXPORT const char *ncclGetLastError(ncclComm_t comm)
{
    (void)comm;
    return last;
}

EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    if (!id)
        return fail(ncclInvalidArgument, "ncclGetUniqueId: id is NULL");
    memset(id, 0, sizeof *id);
    uint32_t v[4] = {MAGIC, (uint32_t)getpid(), (uint32_t)rand(), (uint32_t)(uintptr_t)id};
    memcpy(id->internal, v, sizeof v);
    return ncclSuccess;
}

/* What each member brings to the communicator, compared across them. */
struct joining {
    ncclUniqueId id;
    int rank, nranks;
    char bus[BUS];
};

EXPORT ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
    ncclResult_t r;
    if (!comm)
        return fail(ncclInvalidArgument, "ncclCommInitRank: comm is NULL");
    *comm = NULL;
    if ((r = mpi_ready()) != ncclSuccess || (r = driver()) != ncclSuccess)
        return r;
    uint32_t magic;
    memcpy(&magic, id.internal, sizeof magic);
    if (magic != MAGIC)
        return fail(ncclInvalidArgument, "ncclCommInitRank: the id was not made by "
                                         "ncclGetUniqueId");
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return fail(ncclInvalidArgument, "ncclCommInitRank: rank %d of %d", rank, nranks);
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (nranks != size)
        return fail(ncclInvalidUsage,
                    "ncclCommInitRank: %d members, but the emulator's are the "
                    "%d MPI processes",
                    nranks, size);
    joining me = {id, rank, nranks, ""}, *all = (joining *)calloc((size_t)size, sizeof me);
    if (!all)
        return fail(ncclSystemError, "out of memory");
    CUcontext ctx = NULL;
    cu.CtxGetCurrent(&ctx);
    cu.DeviceGetPCIBusId(me.bus, BUS, 0);
    MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, MPI_COMM_WORLD);
    r = ncclSuccess;
    for (int i = 0; i < size && r == ncclSuccess; i++) {
        if (memcmp(&all[i].id, &id, sizeof id) || all[i].nranks != nranks)
            r = fail(ncclInvalidUsage, "ncclCommInitRank: the members disagree on the id or "
                                       "the member count");
        for (int j = 0; j < i && r == ncclSuccess; j++) {
            if (all[i].rank == all[j].rank)
                r = fail(ncclInvalidUsage, "ncclCommInitRank: rank %d joined twice", all[i].rank);
            else if (!strcmp(all[i].bus, all[j].bus))
                r = fail(ncclInvalidUsage,
                         "Duplicate GPU detected : rank %d and rank %d both on "
                         "CUDA device %s",
                         all[j].rank, all[i].rank, all[i].bus);
        }
    }
    free(all);
    if (r != ncclSuccess)
        return r;
    ncclComm *c = (ncclComm *)calloc(1, sizeof *c);
    if (!c)
        return fail(ncclSystemError, "out of memory");
    c->magic = MAGIC;
    c->rank = rank;
    c->nranks = nranks;
    MPI_Comm_split(MPI_COMM_WORLD, 0, rank, &c->mpi);
    *comm = c;
    return ncclSuccess;
}

EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    if (!comm)
        return ncclSuccess;
    if (!live(comm))
        return fail(ncclInvalidArgument, "ncclCommDestroy: not a live communicator");
    int off = 0;
    MPI_Finalized(&off);
    if (!off)
        MPI_Comm_free(&comm->mpi);
    comm->magic = 0;
    free(comm);
    return ncclSuccess;
}

/* 1 when [p, p + bytes) lies inside one live device allocation. */
static int in_device(const void *p, size_t bytes)
{
    CUdeviceptr base = 0;
    size_t size = 0;
    if (!p || cu.MemGetAddressRange(&base, &size, (CUdeviceptr)(uintptr_t)p) != CUDA_SUCCESS)
        return 0;
    return bytes <= size - ((uintptr_t)p - (uintptr_t)base);
}

EXPORT ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type,
                                  ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream)
{
    ncclResult_t r;
    if (!live(comm))
        return fail(ncclInvalidArgument, "ncclAllReduce: comm is not a live communicator");
    if ((r = mpi_ready()) != ncclSuccess || (r = driver()) != ncclSuccess)
        return r;
    if (stream)
        return fail(ncclInvalidUsage, "ncclAllReduce: the emulator has only the default stream");
    if (type != ncclDouble || op != ncclSum)
        return fail(ncclInvalidArgument, "ncclAllReduce: the emulator sums doubles only");
    size_t bytes = count * sizeof(double);
    if (!in_device(send, bytes))
        return fail(ncclInvalidArgument,
                    "ncclAllReduce: sendbuff %p (%zu bytes) is not inside "
                    "device memory",
                    send, bytes);
    if (!in_device(recv, bytes))
        return fail(ncclInvalidArgument,
                    "ncclAllReduce: recvbuff %p (%zu bytes) is not inside "
                    "device memory",
                    recv, bytes);
    unsigned long long mine = count, lo = 0, hi = 0;
    MPI_Allreduce(&mine, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, comm->mpi);
    MPI_Allreduce(&mine, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm->mpi);
    if (lo != hi)
        return fail(ncclInvalidUsage,
                    "ncclAllReduce: the members sum %llu to %llu values "
                    "(rank %d: %zu)",
                    lo, hi, comm->rank, count);
    /* Earlier work on the stream first, as on a GPU. */
    if (cu.CtxSynchronize() != CUDA_SUCCESS)
        return fail(ncclUnhandledCudaError, "ncclAllReduce: the device has faulted");
    const size_t piece = (size_t)1 << 26;
    for (size_t i = 0; i < count; i += piece) {
        int m = (int)(count - i < piece ? count - i : piece);
        const double *s = (const double *)send + i;
        double *d = (double *)recv + i;
        if (MPI_Allreduce(s == d ? MPI_IN_PLACE : s, d, m, MPI_DOUBLE, MPI_SUM, comm->mpi) !=
            MPI_SUCCESS)
            return fail(ncclRemoteError, "ncclAllReduce: MPI_Allreduce failed");
    }
    return ncclSuccess;
}
