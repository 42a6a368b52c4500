/* array.c - dtypes, in-memory arrays, file helpers shared by the .npy and
 * .safetensors code, and vv_rows: matrices streamed by rows as float64.
 *
 * File-backed vv_rows convert the rows a caller asks for and hold at most a
 * small staging buffer, so a file may be larger than RAM.  C-order rows
 * are one contiguous range each chunk and are read with pread through a
 * 64 KiB staging buffer on the stack.  Fortran-order files are mapped read-only
 * (MAP_PRIVATE, never written) and read column piece by column piece; the
 * pages a forward scan has consumed are dropped with MADV_DONTNEED, which
 * only costs a refault from the page cache if they are read again.
 */
#include "array_internal.h"
#include "vv/err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The finiteness check below relies on NaN and Inf propagating. */
#ifdef __FAST_MATH__
#error "array.c needs IEEE semantics for NaN and Inf; do not build it with -ffast-math"
#endif

/* ---- dtypes and arrays ------------------------------------------------- */

size_t vv_dtype_size(vv_dtype t)
{
    switch (t) {
    case VV_F32:
        return 4;
    case VV_F64:
        return 8;
    case VV_F16:
        return 2;
    case VV_BF16:
        return 2;
    case VV_I64:
        return 8;
    }
    return 0;
}

const char *vv_dtype_name(vv_dtype t)
{
    switch (t) {
    case VV_F32:
        return "float32";
    case VV_F64:
        return "float64";
    case VV_F16:
        return "float16";
    case VV_BF16:
        return "bfloat16";
    case VV_I64:
        return "int64";
    }
    return "unknown";
}

void vv_array_free(vv_array *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- file helpers ------------------------------------------------------ */

int vv__open_ro(const char *path, int *fd, uint64_t *size)
{
    struct stat st;
    /* O_NONBLOCK keeps a FIFO from blocking the open; we reject it below. */
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (f < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return vv_fail(VV_ENOFILE, "%s: no such file", path);
        return vv_fail(VV_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (fstat(f, &st) < 0) {
        int e = errno;
        close(f);
        return vv_fail(VV_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(f);
        return vv_fail(VV_EIO, "%s: cannot read: %s", path, strerror(EISDIR));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return vv_fail(VV_EIO, "%s: cannot read: not a regular file", path);
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

int vv__pread_full(const char *path, int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;
    while (n > 0) {
        size_t want = n > (1u << 30) ? (1u << 30) : n;
        ssize_t r = pread(fd, p, want, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return vv_fail(VV_EIO, "%s: read failed at offset %" PRIu64 ": %s", path, off,
                           strerror(errno));
        }
        if (r == 0)
            return vv_fail(VV_EIO, "%s: file ended at offset %" PRIu64 " (did it shrink?)", path,
                           off);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        size_t want = n > (1u << 30) ? (1u << 30) : n;
        ssize_t w = write(fd, p, want);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int vv__write_atomic(const char *path, const vv__piece *pieces, int n)
{
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp)
        return vv_fail(VV_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = vv_fail(VV_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    const char *what = "write";
    int ok = 1;
    for (int i = 0; i < n && ok; i++)
        if (pieces[i].len && write_all(fd, pieces[i].data, pieces[i].len) < 0)
            ok = 0;
    if (ok && fsync(fd) < 0) {
        what = "fsync";
        ok = 0;
    }
    int e = errno;
    if (close(fd) < 0 && ok) {
        e = errno;
        what = "close";
        ok = 0;
    }
    if (ok && rename(tmp, path) < 0) {
        e = errno;
        what = "rename";
        ok = 0;
    }
    int rc = 0;
    if (!ok) {
        rc = vv_fail(e == ENOSPC || e == EDQUOT ? VV_ENOSPACE : VV_EIO, "%s: %s of %s failed: %s",
                     path, what, tmp, strerror(e));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

void vv__magic_hex(const unsigned char *p, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    if (n == 0) {
        snprintf(buf, cap, "none: the file is empty");
        return;
    }
    for (size_t i = 0; i < n && i < 8 && k + 4 < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? " %02x" : "%02x", p[i]);
}

void vv__shape_str(const vv__tinfo *ti, char *buf, size_t cap)
{
    if (ti->ndim == 1)
        snprintf(buf, cap, "%" PRId64, ti->shape[0]);
    else
        snprintf(buf, cap, "%" PRId64 "x%" PRId64, ti->shape[0], ti->shape[1]);
}

/* ---- vv_rows ------------------------------------------------------------ */

enum { SRC_FILE, SRC_CALLBACK, SRC_MEMORY };

struct vv_rows {
    int kind;
    char *name;
    int64_t n, cols;
    vv_dtype dtype;

    /* SRC_FILE */
    int fd;
    const unsigned char *map;
    size_t map_len;
    vv__tinfo ti;
    size_t page;
    int64_t released_row; /* Fortran order: rows below this dropped */

    /* SRC_CALLBACK */
    vv_rows_read_fn fn;
    void *ctx;
    void (*free_ctx)(void *);

    /* SRC_MEMORY */
    const double *mem;
};

/* The conversion kernels.  Each converts n elements to float64 and returns
 * the sum of x * 0.0 over them, which is NaN exactly when some x is NaN or
 * Inf.  Eight independent partial sums let gcc vectorise the loop without
 * reassociating floating-point additions. */
#define CONV_KERNEL(NAME, T, TO_DOUBLE)                                                            \
    static double NAME(const T *restrict s, double *restrict d, size_t n)                          \
    {                                                                                              \
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                  \
        size_t i = 0;                                                                              \
        for (; i + 8 <= n; i += 8)                                                                 \
            for (int k = 0; k < 8; k++) {                                                          \
                double v = TO_DOUBLE(s[i + k]);                                                    \
                d[i + k] = v;                                                                      \
                acc[k] += v * 0.0;                                                                 \
            }                                                                                      \
        double a = 0;                                                                              \
        for (; i < n; i++) {                                                                       \
            double v = TO_DOUBLE(s[i]);                                                            \
            d[i] = v;                                                                              \
            a += v * 0.0;                                                                          \
        }                                                                                          \
        for (int k = 0; k < 8; k++)                                                                \
            a += acc[k];                                                                           \
        return a;                                                                                  \
    }

#define PLAIN(x) ((double)(x))
#define HALF(x) ((double)vv__f16_to_f32(x))
#define BHALF(x) ((double)vv__bf16_to_f32(x))
CONV_KERNEL(conv_f32, float, PLAIN)
CONV_KERNEL(conv_f64, double, PLAIN)
CONV_KERNEL(conv_f16, uint16_t, HALF)
CONV_KERNEL(conv_bf16, uint16_t, BHALF)

/* Integers are always finite: no accumulator. */
static double conv_i64(const int64_t *restrict s, double *restrict d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (double)s[i];
    return 0;
}

static double conv_aligned(vv_dtype t, const void *s, double *d, size_t n)
{
    switch (t) {
    case VV_F32:
        return conv_f32(s, d, n);
    case VV_F64:
        return conv_f64(s, d, n);
    case VV_F16:
        return conv_f16(s, d, n);
    case VV_BF16:
        return conv_bf16(s, d, n);
    case VV_I64:
        return conv_i64(s, d, n);
    }
    return 0;
}

/* Converts n elements at s, which need not be aligned: misaligned data
 * (possible in a .safetensors file written without padding) goes through
 * an aligned bounce buffer. */
static double convert(vv_dtype t, const unsigned char *s, double *d, size_t n)
{
    size_t esz = vv_dtype_size(t);
    if ((uintptr_t)s % esz == 0)
        return conv_aligned(t, s, d, n);
    uint64_t bounce[1024];
    size_t per = sizeof bounce / esz;
    double acc = 0;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        memcpy(bounce, s + i * esz, k * esz);
        acc += conv_aligned(t, bounce, d + i, k);
    }
    return acc;
}

/* Finds the first NaN or Inf of a converted row-major chunk and reports
 * it with its row and column in the whole matrix. */
static int report_nonfinite(const vv_rows *r, int64_t r0, int64_t nrows, const double *dst)
{
    size_t total = (size_t)nrows * (size_t)r->cols;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(dst[i]))
            return vv_fail(VV_ENONFINITE, "%s: %s at row %" PRId64 ", column %" PRId64, r->name,
                           isnan(dst[i]) ? "NaN" : "Inf", r0 + (int64_t)(i / (size_t)r->cols),
                           (int64_t)(i % (size_t)r->cols));
    return vv_fail(VV_EINTERNAL,
                   "%s: non-finite sum but no NaN or Inf found in rows %" PRId64 "..%" PRId64,
                   r->name, r0, r0 + nrows);
}

static int rows_alloc(const char *name, int kind, int64_t n, int64_t cols, vv_rows **out)
{
    vv_rows *r = calloc(1, sizeof *r);
    char *nm = strdup(name);
    if (!r || !nm) {
        free(r);
        free(nm);
        return vv_fail(VV_ENOMEM, "%s: out of memory", name);
    }
    r->kind = kind;
    r->name = nm;
    r->n = n;
    r->cols = cols;
    r->dtype = VV_F64;
    r->fd = -1;
    *out = r;
    return 0;
}

int vv_rows_open(const char *path, const char *tensor, vv_rows **out)
{
    int fd, rc;
    uint64_t fsize;
    unsigned char pre[9];
    vv__tinfo ti;

    if (!out)
        return vv_fail(VV_EINVAL, "vv_rows_open: out is NULL");
    *out = NULL;
    if (!path)
        return vv_fail(VV_EINVAL, "vv_rows_open: path is NULL");
    if ((rc = vv__open_ro(path, &fd, &fsize)) < 0)
        return rc;
    size_t npre = fsize < sizeof pre ? (size_t)fsize : sizeof pre;
    if ((rc = vv__pread_full(path, fd, pre, npre, 0)) < 0)
        goto fail;
    if (npre >= 6 && !memcmp(pre, "\x93NUMPY", 6)) {
        if (tensor) {
            rc = vv_fail(VV_EINVAL,
                         "%s: a .npy file holds one array; tensor must not be given "
                         "(got '%s')",
                         path, tensor);
            goto fail;
        }
        rc = vv__npy_probe(path, fd, fsize, &ti);
    } else if (npre == 9 && pre[8] == '{') {
        rc = vv__st_probe(path, fd, fsize, tensor, &ti);
    } else if ((rc = vv__torch_check(path, fd, fsize)) == 0) {
        char hex[64];
        vv__magic_hex(pre, npre < 8 ? npre : 8, hex, sizeof hex);
        rc = vv_fail(VV_EFORMAT, "%s: not a .npy or .safetensors file (magic %s)", path, hex);
    }
    if (rc < 0)
        goto fail;

    void *map = mmap(NULL, (size_t)fsize, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = vv_fail(VV_EIO, "%s: cannot map %" PRIu64 " bytes: %s", path, fsize, strerror(errno));
        goto fail;
    }
    madvise(map, (size_t)fsize, MADV_SEQUENTIAL);
    vv_rows *r = NULL;
    if ((rc = rows_alloc(path, SRC_FILE, ti.shape[0], ti.shape[1], &r)) < 0) {
        munmap(map, (size_t)fsize);
        goto fail;
    }
    r->dtype = ti.dtype;
    r->fd = fd;
    r->map = map;
    r->map_len = (size_t)fsize;
    r->ti = ti;
    long pg = sysconf(_SC_PAGESIZE);
    r->page = pg > 0 ? (size_t)pg : 4096;
    *out = r;
    return 0;
fail:
    close(fd);
    return rc;
}

int vv_rows_from_callback(const char *name, int64_t n, int64_t cols, vv_rows_read_fn read,
                          void *ctx, void (*free_ctx)(void *), vv_rows **out)
{
    int64_t total;
    if (!out)
        return vv_fail(VV_EINVAL, "vv_rows_from_callback: out is NULL");
    *out = NULL;
    if (!name)
        name = "callback";
    if (!read)
        return vv_fail(VV_EINVAL, "%s: read callback is NULL", name);
    if (n < 0 || cols < 0 || __builtin_mul_overflow(n, cols, &total) ||
        total > (int64_t)(SIZE_MAX / sizeof(double)))
        return vv_fail(VV_EINVAL, "%s: invalid size %" PRId64 "x%" PRId64, name, n, cols);
    /* On failure nothing is taken over: the caller still owns ctx. */
    int rc = rows_alloc(name, SRC_CALLBACK, n, cols, out);
    if (rc < 0)
        return rc;
    (*out)->fn = read;
    (*out)->ctx = ctx;
    (*out)->free_ctx = free_ctx;
    return 0;
}

int vv_rows_from_memory(const char *name, int64_t n, int64_t cols, const double *data,
                        vv_rows **out)
{
    int64_t total;
    if (!out)
        return vv_fail(VV_EINVAL, "vv_rows_from_memory: out is NULL");
    *out = NULL;
    if (!name)
        name = "memory";
    if (n < 0 || cols < 0 || __builtin_mul_overflow(n, cols, &total) ||
        total > (int64_t)(SIZE_MAX / sizeof(double)))
        return vv_fail(VV_EINVAL, "%s: invalid size %" PRId64 "x%" PRId64, name, n, cols);
    if (!data && total > 0)
        return vv_fail(VV_EINVAL, "%s: data is NULL", name);
    int rc = rows_alloc(name, SRC_MEMORY, n, cols, out);
    if (rc < 0)
        return rc;
    (*out)->mem = data;
    return 0;
}

int vv_rows_thread_safe(const vv_rows *r)
{
    return r->kind == SRC_MEMORY || (r->kind == SRC_FILE && !r->ti.fortran);
}

int64_t vv_rows_n(const vv_rows *r)
{
    return r ? r->n : 0;
}
int64_t vv_rows_cols(const vv_rows *r)
{
    return r ? r->cols : 0;
}
vv_dtype vv_rows_dtype(const vv_rows *r)
{
    return r ? r->dtype : VV_F64;
}
const char *vv_rows_name(const vv_rows *r)
{
    return r ? r->name : "";
}

/* Fortran order reads through the mapping.  Consumed pages are dropped in
 * batches of at least RELEASE_MIN bytes, so that resident file pages stay
 * below about one batch plus one chunk.  The consumed rows are a piece of
 * every column; dropping those one by one would split the large
 * folios the kernel maps (costly, especially under virtualisation), so the
 * whole mapping is dropped at once instead and the few pages mapped ahead
 * of each column's read position are simply faulted in again.  Batches in
 * Fortran order give each column at least RELEASE_PER_COLUMN bytes so
 * that this refaulting stays a small fraction of the work. */
#define RELEASE_MIN ((size_t)16 << 20)
#define STAGE ((size_t)64 << 10)
#define RELEASE_MAX ((size_t)256 << 20)
#define RELEASE_PER_COLUMN ((size_t)256 << 10)

/* Drops the mapped pages a forward scan has finished with, up to row end_row
 * (Fortran order; C order reads with pread and maps nothing in). */
static void release_consumed(vv_rows *r, int64_t end_row)
{
    size_t esz = vv_dtype_size(r->dtype), pg = r->page, cols = (size_t)r->cols;
    unsigned char *base = (unsigned char *)r->map;
    (void)pg;
    if (end_row <= r->released_row)
        return;
    size_t batch = cols * RELEASE_PER_COLUMN;
    batch = batch < RELEASE_MIN ? RELEASE_MIN : batch > RELEASE_MAX ? RELEASE_MAX : batch;
    if ((size_t)(end_row - r->released_row) * cols * esz < batch)
        return;
    madvise(base, r->map_len, MADV_DONTNEED);
    r->released_row = end_row;
}

static int read_file_rows(vv_rows *r, int64_t r0, int64_t nrows, double *dst)
{
    struct stat st;
    if (fstat(r->fd, &st) < 0)
        return vv_fail(VV_EIO, "%s: cannot stat: %s", r->name, strerror(errno));
    if ((uint64_t)st.st_size < (uint64_t)r->map_len)
        return vv_fail(VV_EIO,
                       "%s: the file shrank from %zu to %" PRIu64 " bytes since it was opened",
                       r->name, r->map_len, (uint64_t)st.st_size);

    size_t esz = vv_dtype_size(r->dtype);
    size_t cols = (size_t)r->cols, n = (size_t)r->n, k = (size_t)nrows;
    const unsigned char *data = r->map + r->ti.offset;
    double acc = 0;
    if (!r->ti.fortran) {
        /* C order: the rows are one contiguous range, read with pread into a
         * small staging buffer that stays in cache while it is converted.  On
         * virtual machines first-touch faults of a mapping cost more than the
         * copy (measured here: 1.3-1.9 GB/s mapped vs 7-9 GB/s with pread), and
         * pread touches no pages of ours, so nothing needs releasing.  The
         * buffer is on the stack, so concurrent reads of one source are safe. */
        _Alignas(64) unsigned char stage[STAGE];
        size_t total = k * cols * esz, per = STAGE / esz * esz, done = 0;
        uint64_t off = (uint64_t)r->ti.offset + (uint64_t)r0 * cols * esz;
        while (done < total) {
            size_t len = total - done < per ? total - done : per;
            ssize_t got = pread(r->fd, stage, len, (off_t)(off + done));
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                return vv_fail(VV_EIO, "%s: read error: %s", r->name, strerror(errno));
            if ((size_t)got < len)
                return vv_fail(VV_EIO, "%s: the file shrank since it was opened", r->name);
            acc += convert(r->dtype, stage, dst + done / esz, len / esz);
            done += len;
        }
        if (isnan(acc))
            return report_nonfinite(r, r0, nrows, dst);
        return 0;
    } else {
        /* Column j of the chunk is the segment [r0, r0 + k) of stored
         * column j.  Work in tiles of TB rows by TG columns: convert TG
         * column pieces into tile, then write each row's TG values, so
         * that dst is written a cache line at a time. */
        enum { TB = 256, TG = 8 };
        double tile[TG][TB];
        for (size_t i0 = 0; i0 < k; i0 += TB) {
            size_t bi = k - i0 < TB ? k - i0 : TB;
            for (size_t j0 = 0; j0 < cols; j0 += TG) {
                size_t bj = cols - j0 < TG ? cols - j0 : TG;
                for (size_t g = 0; g < bj; g++)
                    acc += convert(r->dtype, data + ((j0 + g) * n + (size_t)r0 + i0) * esz, tile[g],
                                   bi);
                for (size_t i = 0; i < bi; i++) {
                    double *row = dst + (i0 + i) * cols + j0;
                    for (size_t g = 0; g < bj; g++)
                        row[g] = tile[g][i];
                }
            }
        }
    }
    release_consumed(r, r0 + nrows);
    if (isnan(acc))
        return report_nonfinite(r, r0, nrows, dst);
    return 0;
}

int vv_rows_read(vv_rows *r, int64_t r0, int64_t nrows, double *dst)
{
    if (!r)
        return vv_fail(VV_EINVAL, "vv_rows_read: rows is NULL");
    if (r0 < 0 || nrows < 0 || r0 > r->n || nrows > r->n - r0)
        return vv_fail(VV_EINVAL,
                       "%s: cannot read %" PRId64 " rows from row %" PRId64
                       ": out of range, the matrix has %" PRId64 " rows",
                       r->name, nrows, r0, r->n);
    if (nrows == 0 || r->cols == 0)
        return 0;
    if (!dst)
        return vv_fail(VV_EINVAL, "%s: vv_rows_read: dst is NULL", r->name);
    switch (r->kind) {
    case SRC_FILE:
        return read_file_rows(r, r0, nrows, dst);
    case SRC_CALLBACK: {
        int rc = r->fn(r->ctx, r0, nrows, dst);
        return rc < 0 ? rc : 0;
    }
    default: {
        double acc =
            conv_f64(r->mem + (size_t)r0 * (size_t)r->cols, dst, (size_t)nrows * (size_t)r->cols);
        return isnan(acc) ? report_nonfinite(r, r0, nrows, dst) : 0;
    }
    }
}

void vv_rows_free(vv_rows *r)
{
    if (!r)
        return;
    if (r->map)
        munmap((void *)r->map, r->map_len);
    if (r->fd >= 0)
        close(r->fd);
    if (r->free_ctx)
        r->free_ctx(r->ctx);
    free(r->name);
    free(r);
}
