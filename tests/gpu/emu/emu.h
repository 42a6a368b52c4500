/* emu.h - what the two halves of the CUDA emulator share (emu_driver.cc:
 * the driver API, device memory and kernel launches; emu_cublas.cc: cuBLAS).
 *
 * The emulator is a shared library that gpu/backend_cuda.c loads in place of
 * libcuda.so.1 and libcublas (VVD_CUDA_DRIVER, VVD_CUBLAS).  Device memory is
 * host memory that it tracks, every call checks its arguments as CUDA does,
 * the kernels of gpu/kernels.cu run on the host, and a fault can be injected;
 * so the real backend code, its argument passing and its kernels run on a
 * machine without a GPU (and under AddressSanitizer, which then checks every
 * device access the kernels make). */
#ifndef VV_EMU_H
#define VV_EMU_H

#include <stddef.h>
#include <stdint.h>

/* 1 when [p, p + bytes) lies inside one live device allocation (bytes 0:
 * p inside or one past the end of one). */
int emu_span_ok(const void *p, size_t bytes);

/* The extent of a column-major rows x cols matrix with leading dim ld. */
size_t emu_matrix_bytes(int64_t rows, int64_t cols, int64_t ld, size_t elem);

/* Before one unit of device work (a launch or a cuBLAS call): 1 when the
 * device has faulted, now (an injected fault) or before. */
int emu_work(void);

/* 1 once the device has faulted. */
int emu_faulted(void);

/* Faults the device now (sticky), saying why on stderr. */
void emu_fault(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
