/* vv/array.h - arrays in files: .npy and .safetensors, whole or by rows.
 *
 * Arrays follow PyTorch / NumPy conventions: 2-D arrays are (rows, cols),
 * samples are rows.  Every reader validates strictly (magic, header,
 * dtype, shape, file size) and fails with VV_EFORMAT, VV_EDTYPE, VV_ESHAPE,
 * VV_ENOFILE or VV_EIO, leaving a detail that names the file and the
 * problem (see vv/err.h).  No function here aborts on bad input.
 * All functions are thread-safe on distinct objects.
 */
#ifndef VV_ARRAY_H
#define VV_ARRAY_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    VV_F32 = 1,  /* IEEE float32, little endian */
    VV_F64 = 2,  /* IEEE float64, little endian */
    VV_F16 = 3,  /* IEEE half (safetensors "F16"), read only */
    VV_BF16 = 4, /* bfloat16 (safetensors "BF16"), read only */
    VV_I64 = 5,  /* int64, little endian (kept-index arrays) */
} vv_dtype;

/* Size in bytes of one element; 0 for an unknown dtype. */
size_t vv_dtype_size(vv_dtype t);
/* "float32", "float64", "float16", "bfloat16", "int64". */
const char *vv_dtype_name(vv_dtype t);

/* An array held in memory, C (row-major) order.  ndim is 1 or 2; for
 * ndim == 1 shape[1] is 1.  data is owned by the array (malloc). */
typedef struct vv_array {
    vv_dtype dtype;
    int ndim;
    int64_t shape[2];
    void *data;
} vv_array;

/* Frees data and zeroes the struct; accepts NULL. */
void vv_array_free(vv_array *a);

/* Reads a whole .npy file (float32, float64 or int64; 1-D or 2-D; C or
 * Fortran order; versions 1.0, 2.0, 3.0) into *out, converted to C order
 * with its dtype kept.  On failure *out is zeroed. */
int vv_npy_read(const char *path, vv_array *out);

/* Writes a C-order array as .npy version 1.0 (float32, float64 or int64;
 * ndim 1 or 2).  Writes to a temporary file and renames it into place, so a
 * reader never sees a half-written file. */
int vv_npy_write(const char *path, vv_dtype dtype, int ndim, const int64_t *shape,
                 const void *data);

/* A .npy array of any plain numeric dtype and rank, as stored: what the
 * data-set readers need (uint8 images of 3 or 4 dimensions, integer labels
 * of any width), which vv_npy_read does not take. */
#define VV_NPY_MAX_DIMS 8
typedef struct vv_npy_raw {
    char descr[8]; /* the dtype as numpy writes it: "|u1", "<f4", "<i8", ... */
    char kind;     /* 'b' (bool), 'i' (signed), 'u' (unsigned) or 'f' (float) */
    int itemsize;  /* 1, 2, 4 or 8 bytes */
    int ndim;      /* 0 .. VV_NPY_MAX_DIMS */
    int64_t shape[VV_NPY_MAX_DIMS];
    void *data; /* C order, little-endian elements; owned (malloc) */
} vv_npy_raw;

/* Reads a whole .npy file of a little-endian bool, integer or float dtype
 * and up to VV_NPY_MAX_DIMS dimensions (C order, or Fortran order when
 * 1-D) into *out, with the same header and size checks as vv_npy_read.
 * On failure *out is zeroed. */
int vv_npy_read_raw(const char *path, vv_npy_raw *out);
/* Frees data and zeroes the struct; accepts NULL. */
void vv_npy_raw_free(vv_npy_raw *r);

/* Reads one tensor of a .safetensors file.  name may be NULL when the file
 * holds exactly one tensor.  F32 and F64 keep their dtype, F16 and BF16
 * are converted to F32.  ndim must be 1 or 2 (a 0-d or >2-d tensor is a
 * VV_ESHAPE error).  On failure *out is zeroed. */
int vv_safetensors_read(const char *path, const char *name, vv_array *out);

/* Every tensor of a .safetensors file, of any rank up to VV_ST_MAXDIM,
 * converted to float32 (from F32, F64, F16, BF16 or I64), in data-offset
 * order.  *out is an array of *count tensors owned by the caller
 * (vv_st_f32_free).  Fails like vv_safetensors_read, and with VV_ESHAPE for
 * a tensor of more dimensions. */
#define VV_ST_MAXDIM 8
typedef struct vv_st_f32 {
    char *name;
    int ndim;
    int64_t shape[VV_ST_MAXDIM];
    int64_t numel;
    float *data;
} vv_st_f32;
int vv_safetensors_load_f32(const char *path, vv_st_f32 **out, int *count);
void vv_st_f32_free(vv_st_f32 *t, int count);

/* Lists the tensor names of a .safetensors file (sorted by data offset).
 * *names is an array of *count malloc'd strings; free with
 * vv_safetensors_names_free. */
int vv_safetensors_names(const char *path, char ***names, int *count);
void vv_safetensors_names_free(char **names, int count);

/* One tensor to write: C-order data of dtype F32, F64 or I64, ndim 1..4. */
typedef struct vv_st_tensor {
    const char *name;
    vv_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
} vv_st_tensor;

/* Writes tensors as a .safetensors file (header padded to 8 bytes, data
 * in the given order), via a temporary file renamed into place. */
int vv_safetensors_write(const char *path, const vv_st_tensor *tensors, int n);

/* ---- Streaming by rows --------------------------------------------------
 *
 * A vv_rows is a read-only 2-D matrix (a 1-D array is n x 1) read in chunks
 * of rows, converted to float64.  File-backed sources memory-map the file,
 * so the matrix may be larger than RAM; only the chunk being read is
 * touched, and consumed pages are released.  Callback-backed sources
 * generate rows on demand (synthetic problems, in-memory test data). */
typedef struct vv_rows vv_rows;

/* Opens a .npy or .safetensors file (chosen by its magic, not its name).
 * tensor names the safetensors tensor (NULL: the only one) and must be
 * NULL for .npy.  Only the header is read and checked here. */
int vv_rows_open(const char *path, const char *tensor, vv_rows **out);

/* A source that calls read(ctx, r0, nrows, dst) to fill nrows x cols
 * float64 values (row-major) starting at row r0; read returns 0 or a
 * negative vv_err.  free_ctx (may be NULL) is called on vv_rows_free.
 * name is copied and used in error messages. */
typedef int (*vv_rows_read_fn)(void *ctx, int64_t r0, int64_t nrows, double *dst);
int vv_rows_from_callback(const char *name, int64_t n, int64_t cols, vv_rows_read_fn read,
                          void *ctx, void (*free_ctx)(void *), vv_rows **out);

/* A source over a caller-owned row-major float64 matrix that must outlive
 * the vv_rows. */
int vv_rows_from_memory(const char *name, int64_t n, int64_t cols, const double *data,
                        vv_rows **out);

int64_t vv_rows_n(const vv_rows *r);
int64_t vv_rows_cols(const vv_rows *r);
/* Storage dtype of a file source (VV_F64 for callback sources). */
vv_dtype vv_rows_dtype(const vv_rows *r);
/* The path or name given at creation. */
const char *vv_rows_name(const vv_rows *r);

/* Reads rows [r0, r0 + nrows) as float64 into dst (nrows x cols,
 * row-major).  Fails with VV_ENONFINITE naming the file, row and column of
 * the first NaN or Inf, VV_EINVAL on a range outside the matrix, VV_EIO if
 * the file shrank under us.  Concurrent calls on one vv_rows are safe when
 * vv_rows_thread_safe() says so, and must be serialised otherwise. */
int vv_rows_read(vv_rows *r, int64_t r0, int64_t nrows, double *dst);

/* 1 when vv_rows_read may run concurrently on r: memory sources and
 * C-order files (read with pread); 0 for Fortran-order files (one mapping
 * with release bookkeeping) and callback sources. */
int vv_rows_thread_safe(const vv_rows *r);

/* Closes the source; accepts NULL. */
void vv_rows_free(vv_rows *r);

/* A source whose rows are those of parts[0], then parts[1], ... (shards of
 * one matrix; rows_concat.c).  Every part must have the same number of
 * columns (VV_ESHAPE naming the first that differs).  Takes ownership of the
 * nparts sources, also on failure; parts itself stays the caller's.  Reads
 * are serialised (vv_rows_thread_safe() is 0); errors name the part. */
int vv_rows_concat(const char *name, vv_rows **parts, int nparts, vv_rows **out);

#endif
