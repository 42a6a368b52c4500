/* vv/backend_cuda.h - the CUDA implementation of core's backend table
 * (vv/backend.h), built when meson finds CUDA (-Dcuda=auto|enabled).
 *
 * The CUDA driver (libcuda.so.1) and cuBLAS are loaded with dlopen when a
 * backend is opened, so a vvd built with CUDA still starts on a machine with
 * no GPU or driver: opening then fails with VV_EDEVICE and a detail saying
 * what is missing.  The kernels are compiled by nvcc into a fatbin (sm_80,
 * sm_90 and PTX) embedded in the binary.
 *
 * Buffers passed to the operations must come from the backend's alloc;
 * dot's result and group_shrink's count are host memory.  Every CUDA and
 * cuBLAS call is checked: out-of-memory is VV_ENOMEM, anything else
 * VV_EDEVICE naming the call and CUDA's message.  After an error CUDA
 * reports as sticky (the context is lost), vv_backend_cuda_lost() is 1 and
 * every later operation fails.  A backend is used by one thread at a time.
 */
#ifndef VV_BACKEND_CUDA_H
#define VV_BACKEND_CUDA_H

#include "vv/backend.h"

#include <stddef.h>
#include <stdint.h>

/* Opens device `device` (0-based).  On success *out is a backend owned by
 * the caller (vv_backend_cuda_close). */
int vv_backend_cuda_open(int device, vv_backend **out);
void vv_backend_cuda_close(vv_backend *be);

/* The device's name, and its free and total memory in bytes. */
int vv_backend_cuda_info(vv_backend *be, char *name, size_t namesz, size_t *free_bytes,
                         size_t *total_bytes);

/* 1 when a sticky CUDA error has made the device unusable. */
int vv_backend_cuda_lost(const vv_backend *be);

/* The number of CUDA devices, 0 when there is no driver or no device. */
int vv_backend_cuda_count(void);

#endif
