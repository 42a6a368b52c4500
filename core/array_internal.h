/* array_internal.h - private helpers shared by array.c, npy.c and
 * safetensors.c.  Nothing here is part of libvv's public interface. */
#ifndef VV_ARRAY_INTERNAL_H
#define VV_ARRAY_INTERNAL_H

#include "vv/array.h"

#include <stdint.h>
#include <string.h>

/* Where one 1-D or 2-D array lies in a file, as a header describes it.
 * For ndim == 1, shape[1] is 1.  fortran is set for column-major .npy
 * data.  offset is the absolute file offset of the first element and
 * nbytes the size of the data (shape[0] * shape[1] * itemsize). */
typedef struct vv__tinfo {
    vv_dtype dtype;
    int ndim;
    int64_t shape[2];
    int fortran;
    uint64_t offset;
    uint64_t nbytes;
} vv__tinfo;

/* Opens path read-only and checks that it is a regular file; *size is its
 * length.  Fails with VV_ENOFILE when it does not exist and VV_EIO for any
 * other reason (a directory, no permission), naming the path. */
int vv__open_ro(const char *path, int *fd, uint64_t *size);

/* Reads exactly n bytes at off; VV_EIO (or VV_EFORMAT when the file ends
 * early) naming path on failure. */
int vv__pread_full(const char *path, int fd, void *buf, size_t n, uint64_t off);

/* Writes the concatenation of n pieces to "path.tmp.<pid>", syncs it and
 * renames it to path.  On failure the temporary file is removed and a
 * VV_EIO naming path is returned. */
typedef struct vv__piece {
    const void *data;
    size_t len;
} vv__piece;
int vv__write_atomic(const char *path, const vv__piece *pieces, int n);

/* Formats the leading bytes of a file as hex ("93 4e 55 ...") into buf for
 * "unknown magic" messages. */
void vv__magic_hex(const unsigned char *p, size_t n, char *buf, size_t cap);

/* Parses and validates a .npy header of the open file fd (size fsize).
 * Accepts float32, float64 and int64, 1-D or 2-D, C or Fortran order. */
int vv__npy_probe(const char *path, int fd, uint64_t fsize, vv__tinfo *ti);

/* Parses and validates a .safetensors header of fd and locates tensor name
 * (NULL: the only tensor), which must be F32, F64, F16, BF16 or I64 and
 * 1-D or 2-D. */
int vv__st_probe(const char *path, int fd, uint64_t fsize, const char *name, vv__tinfo *ti);

/* Fails with VV_EFORMAT when the file fd (of fsize bytes) at path is a
 * PyTorch torch.save file rather than a .safetensors one: a zip archive
 * (PK\3\4) whose first entry is ".../data.pkl", or a pickle (0x80 then a
 * protocol byte 2..5, without the '{' that starts a safetensors header at
 * byte 8); the detail names the file, what it is and how to export the
 * weights as .safetensors.  Another zip archive (an .npz) fails with
 * VV_EFORMAT saying so.  Returns 0 for anything else. */
int vv__torch_check(const char *path, int fd, uint64_t fsize);

/* "3x4" or "7", for messages. */
void vv__shape_str(const vv__tinfo *ti, char *buf, size_t cap);

/* Half precision and bfloat16 to float32, exactly (subnormals, Inf and NaN
 * included). */
static inline float vv__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    float f;
    if (exp == 0) {
        /* Zero or subnormal: mant * 2^-24 is exact in float32. */
        f = (float)mant * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    memcpy(&f, &bits, 4);
    return f;
}

static inline float vv__bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

#endif
