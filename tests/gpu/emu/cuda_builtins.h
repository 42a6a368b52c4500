/* cuda_builtins.h - the CUDA C++ that gpu/kernels.cu uses, for compiling it
 * as host C++ in the emulator (emu_driver.cc includes it before kernels.cu).
 * A thread's indices are those of the emulated thread running now; the
 * threads of a block that synchronise run as fibers (emu_driver.cc). */
#ifndef VV_CUDA_BUILTINS_H
#define VV_CUDA_BUILTINS_H

#include <math.h>

struct emu_uint3 {
    unsigned x, y, z;
};

extern emu_uint3 emu_thread_idx, emu_block_idx, emu_block_dim, emu_grid_dim;
void emu_syncthreads(void);

#define __global__
#define __device__
#define __shared__ static /* one block runs at a time */
#define threadIdx emu_thread_idx
#define blockIdx emu_block_idx
#define blockDim emu_block_dim
#define gridDim emu_grid_dim
#define __syncthreads() emu_syncthreads()

static inline unsigned long long atomicAdd(unsigned long long *a, unsigned long long v)
{
    unsigned long long old = *a;
    *a = old + v;
    return old;
}

#endif
