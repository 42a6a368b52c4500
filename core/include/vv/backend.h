/* vv/backend.h - the compute backend interface (after ggml-backend).
 *
 * A backend is a table of operations on buffers it allocated.  The CPU
 * backend (OpenBLAS) is always present and is the reference; a CUDA
 * backend in gpu/ implements the same table.  Matrices are row-major
 * float64 unless the name says otherwise.  Operations return 0 or a
 * negative vv_err (a device backend can fail; the CPU one fails only on
 * allocation).  A backend object is used by one thread at a time.
 */
#ifndef VV_BACKEND_H
#define VV_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct vv_backend vv_backend;

typedef struct vv_backend_ops {
    const char *name;
    /* Device memory.  alloc returns NULL on failure; free accepts NULL. */
    void *(*alloc)(vv_backend *be, size_t bytes);
    void (*free)(vv_backend *be, void *p);
    int (*upload)(vv_backend *be, void *dst, const void *host_src, size_t bytes);
    int (*download)(vv_backend *be, void *host_dst, const void *src, size_t bytes);
    /* C = alpha * op(A) op(B) + beta * C, row-major; op = transpose when ta/tb. */
    int (*gemm)(vv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                const double *a, int64_t lda, const double *b, int64_t ldb, double beta, double *c,
                int64_t ldc);
    /* C(n x n) += alpha * A^T A for A (k x n, row-major, leading dim lda); only the upper
     * triangle of C (row-major: j >= i) is updated. */
    int (*syrk_t)(vv_backend *be, int64_t n, int64_t k, double alpha, const double *a,
                  int64_t lda, double *c);
    /* norms[i] = ||row i of X||_2 for X (rows x cols). */
    int (*row_norms)(vv_backend *be, int64_t rows, int64_t cols, const double *x, double *norms);
    /* Group soft-threshold of the rows of X in place:
     * x_i <- max(0, 1 - thr / (||x_i|| + eps)) x_i; returns the number of nonzero rows in
     * *active (may be NULL).  eps = 0 gives the exact prox. */
    int (*group_shrink)(vv_backend *be, int64_t rows, int64_t cols, double *x, double thr,
                        double eps, int64_t *active);
    /* *out = <x, y> over n entries. */
    int (*dot)(vv_backend *be, int64_t n, const double *x, const double *y, double *out);
    /* y = a x + b y over n entries; when b == 0, y is not read (as BLAS's beta),
     * so axpby(n, 1, x, 0, y) copies x into y whatever y held. */
    int (*axpby)(vv_backend *be, int64_t n, double a, const double *x, double b, double *y);
    /* dst (n x cols) = the rows idx[0], ..., idx[n-1] of src (row-major, cols
     * per row); idx is host memory. */
    int (*gather_rows)(vv_backend *be, const double *src, int64_t cols, const int64_t *idx,
                       int64_t n, double *dst);
    /* The model runtime (float32): C = alpha op(A) op(B) + beta C, row-major. */
    int (*sgemm)(vv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc);
    /* Unfolds nb images x (each c x h x w, one after another) for a k x k
     * convolution with stride and zero padding into col: (c k k) rows of
     * nb oh ow values, leading dimension ldc; row (ci k + ki) k + kj, column
     * s oh ow + i ow + j holds image s's x[ci][i stride - pad + ki][j stride -
     * pad + kj] (0 outside the image). */
    int (*im2col)(vv_backend *be, const float *x, int64_t nb, int c, int h, int w, int k,
                  int stride, int pad, int oh, int ow, float *col, int64_t ldc);
    /* The rest of the forward pass (float32).  affine_act: for s < nb, o < ch,
     * p < hw, y[(s ch + o) hw + p] = f(x[o xo + s xs + p] scale[o] + shift[o])
     * with scale, shift NULL meaning 1, 0 and f = ReLU when relu, else the
     * identity (a conv's output from the sgemm layout with its bias, batch
     * norm and ReLU; a batch norm; a ReLU; a linear layer's bias); y may be x
     * when xo = hw and xs = ch hw. */
    int (*affine_act)(vv_backend *be, const float *x, int64_t xo, int64_t xs, int64_t nb,
                      int64_t ch, int64_t hw, const float *scale, const float *shift, int relu,
                      float *y);
    /* Pooling of planes x (planes x h x w) into y (planes x oh x ow): k x k
     * windows at stride, zero padding pad; max (PyTorch's: padding never
     * wins) or average (padding counted, PyTorch's count_include_pad). */
    int (*pool2d)(vv_backend *be, const float *x, int64_t planes, int h, int w, int k, int stride,
                  int pad, int oh, int ow, int is_max, float *y);
    /* PyTorch's adaptive average pooling of planes to oh x ow. */
    int (*adaptive_avg)(vv_backend *be, const float *x, int64_t planes, int h, int w, int oh,
                        int ow, float *y);
    /* A device's state; NULL in the CPU backend.  info: its name and its
     * free and total memory in bytes.  lost: 1 once a sticky error (a
     * context CUDA cannot recover) has made it unusable; every operation
     * fails from then on.  close: releases the backend. */
    int (*info)(vv_backend *be, char *name, size_t namesz, size_t *free_bytes,
                size_t *total_bytes);
    int (*lost)(const vv_backend *be);
    void (*close)(vv_backend *be);
    /* Sums across the processes of one job on their devices (NCCL on
     * CUDA); NULL where the backend has none (the CPU and simulated ones),
     * and the caller then sums on the host.  The caller (server/mpi_run.c)
     * carries ids between the processes.  group_key: a string naming the
     * physical device (its PCI bus id), so that the caller can see two
     * processes sharing one, which the library refuses; fails (VV_EDEVICE)
     * when the library cannot be loaded.  group_id: on one process, the id
     * of a new group (at most VV_GROUP_ID_BYTES bytes written to id).
     * group_join: joins group id as member rank of size; every member calls
     * it (collective: it returns once all have joined); the group lives
     * until close.  group_sum: x (n doubles of this backend's memory)
     * becomes the sum of every member's x, in place; collective, called in
     * the same order by every member.  Each returns 0 or a negative
     * vv_err. */
    int (*group_key)(vv_backend *be, char *key, size_t keysz);
    int (*group_id)(vv_backend *be, void *id, size_t idsz);
    int (*group_join)(vv_backend *be, const void *id, int rank, int size);
    int (*group_sum)(vv_backend *be, double *x, int64_t n);
} vv_backend_ops;

/* The largest id group_id writes. */
#define VV_GROUP_ID_BYTES 128

struct vv_backend {
    const vv_backend_ops *ops;
    void *impl;
};

/* The process-wide CPU backend (stateless; never NULL). */
vv_backend *vv_backend_cpu(void);

/* 1 when be is a device backend (anything but the CPU one). */
int vv_backend_is_device(const vv_backend *be);

/* A simulated device: host memory and the CPU's operations behind a device
 * backend, with a memory budget (an allocation past it fails, as on a full
 * GPU) and an optional sticky fault after a number of operations (every
 * operation fails from then on and lost() is 1, as after CUDA's illegal
 * address).  It runs the device code paths (uploads, resident statistics
 * and solver, out-of-memory and lost-device handling) on any machine.
 * fail_after: operations before the fault, 0 for none. */
typedef struct vv_sim_opts {
    size_t memory;
    int64_t fail_after;
} vv_sim_opts;
int vv_backend_sim_open(const vv_sim_opts *o, vv_backend **out);

/* Arms a simulated device's sticky fault: it fails for good after ops more
 * operations from now (0 disarms it). */
void vv_backend_sim_fail_after(vv_backend *be, int64_t ops);

/* A simulated device's counters: uploads so far, bytes allocated now. */
void vv_backend_sim_counts(const vv_backend *be, int64_t *uploads, size_t *bytes_in_use);

#endif
