/* npy.c - NumPy .npy files: a strict header parser, a whole-array reader
 * and an atomic writer.
 *
 * A .npy file is the magic "\x93NUMPY", a major and minor version byte, a
 * little-endian header length (2 bytes in version 1.0, 4 bytes in 2.0 and
 * 3.0), a header that is a Python dict literal
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ended by '\n', and then the raw elements.
 */
#include "array_internal.h"
#include "vv/err.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* numpy itself refuses headers above 10000 bytes by default; we allow more
 * but keep a bound so that a corrupt length cannot make us allocate
 * gigabytes. */
#define NPY_MAX_HEADER (1u << 20)
#define NPY_MAX_DIMS 32

/* A cursor over the header text; path is for messages. */
typedef struct {
    const char *path;
    const char *p;
    const char *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int at(const cursor *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

/* Column of the cursor in the header, for messages. */
static long col(const cursor *c, const char *start)
{
    return (long)(c->p - start);
}

/* Parses a quoted string without escapes into out (NUL-terminated). */
static int parse_str(cursor *c, const char *start, char *out, size_t cap)
{
    if (!at(c, '\'') && !at(c, '"'))
        return vv_fail(VV_EFORMAT, "%s: malformed .npy header: expected a string at offset %ld",
                       c->path, col(c, start));
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '\\' || ch == '\n' || ch < 0x20)
            return vv_fail(VV_EFORMAT,
                           "%s: malformed .npy header: unsupported character in string at "
                           "offset %ld",
                           c->path, col(c, start));
        if (n + 1 >= cap)
            return vv_fail(VV_EFORMAT, "%s: malformed .npy header: string too long at offset %ld",
                           c->path, col(c, start));
        out[n++] = (char)ch;
        c->p++;
    }
    if (c->p >= c->end)
        return vv_fail(VV_EFORMAT, "%s: malformed .npy header: unterminated string", c->path);
    c->p++;
    out[n] = 0;
    return 0;
}

/* Parses True or False. */
static int parse_bool(cursor *c, const char *start, int *v)
{
    static const char *words[2] = {"False", "True"};
    for (int i = 0; i < 2; i++) {
        size_t len = strlen(words[i]);
        if ((size_t)(c->end - c->p) >= len && !memcmp(c->p, words[i], len) &&
            ((size_t)(c->end - c->p) == len || !isalnum((unsigned char)c->p[len]))) {
            c->p += len;
            *v = i;
            return 0;
        }
    }
    return vv_fail(VV_EFORMAT,
                   "%s: malformed .npy header: 'fortran_order' must be True or False (offset %ld)",
                   c->path, col(c, start));
}

/* Parses a shape tuple "()", "(3,)", "(3, 4)" or "(3, 4,)". */
static int parse_shape(cursor *c, const char *start, int *ndim, int64_t *dims)
{
    if (!at(c, '('))
        return vv_fail(VV_EFORMAT,
                       "%s: malformed .npy header: 'shape' must be a tuple (offset %ld)", c->path,
                       col(c, start));
    c->p++;
    int n = 0, comma = 0;
    skip_ws(c);
    while (!at(c, ')')) {
        if (at(c, '-'))
            return vv_fail(VV_EFORMAT, "%s: malformed .npy header: negative dimension in 'shape'",
                           c->path);
        if (c->p >= c->end || !isdigit((unsigned char)*c->p))
            return vv_fail(VV_EFORMAT,
                           "%s: malformed .npy header: expected a dimension in 'shape' at "
                           "offset %ld",
                           c->path, col(c, start));
        uint64_t v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            unsigned d = (unsigned)(*c->p - '0');
            if (v > ((uint64_t)INT64_MAX - d) / 10)
                return vv_fail(VV_EFORMAT,
                               "%s: malformed .npy header: dimension in 'shape' overflows int64",
                               c->path);
            v = v * 10 + d;
            c->p++;
        }
        if (at(c, 'L')) /* Python 2 long literals, as old numpy wrote them. */
            c->p++;
        if (n == NPY_MAX_DIMS)
            return vv_fail(VV_ESHAPE, "%s: .npy array has more than %d dimensions", c->path,
                           NPY_MAX_DIMS);
        dims[n++] = (int64_t)v;
        skip_ws(c);
        comma = 0;
        if (at(c, ',')) {
            c->p++;
            comma = 1;
            skip_ws(c);
        } else if (!at(c, ')')) {
            return vv_fail(VV_EFORMAT,
                           "%s: malformed .npy header: expected ',' or ')' in 'shape' at "
                           "offset %ld",
                           c->path, col(c, start));
        }
    }
    c->p++;
    if (n == 1 && !comma)
        return vv_fail(VV_EFORMAT,
                       "%s: malformed .npy header: 'shape' (%" PRId64 ") is not a tuple "
                       "(a 1-D shape is written (%" PRId64 ",))",
                       c->path, dims[0], dims[0]);
    *ndim = n;
    return 0;
}

/* The parsed header dict. */
typedef struct {
    char descr[64];
    int fortran;
    int ndim;
    int64_t dims[NPY_MAX_DIMS];
} npy_header;

static int parse_dict(const char *path, const char *text, size_t len, npy_header *h)
{
    cursor c = {path, text, text + len};
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
    int rc;

    if (len == 0 || text[len - 1] != '\n')
        return vv_fail(VV_EFORMAT, "%s: malformed .npy header: it does not end with a newline",
                       path);
    skip_ws(&c);
    if (!at(&c, '{'))
        return vv_fail(VV_EFORMAT, "%s: malformed .npy header: it does not start with '{'", path);
    c.p++;
    for (;;) {
        skip_ws(&c);
        if (at(&c, '}'))
            break;
        char key[32];
        if ((rc = parse_str(&c, text, key, sizeof key)) < 0)
            return rc;
        skip_ws(&c);
        if (!at(&c, ':'))
            return vv_fail(VV_EFORMAT, "%s: malformed .npy header: expected ':' after '%s'", path,
                           key);
        c.p++;
        skip_ws(&c);
        int *seen;
        if (!strcmp(key, "descr")) {
            seen = &seen_descr;
            if (at(&c, '['))
                return vv_fail(VV_EDTYPE,
                               "%s: structured (record) dtype is not supported; need '<f4', "
                               "'<f8' or '<i8'",
                               path);
            rc = parse_str(&c, text, h->descr, sizeof h->descr);
        } else if (!strcmp(key, "fortran_order")) {
            seen = &seen_fortran;
            rc = parse_bool(&c, text, &h->fortran);
        } else if (!strcmp(key, "shape")) {
            seen = &seen_shape;
            rc = parse_shape(&c, text, &h->ndim, h->dims);
        } else {
            return vv_fail(VV_EFORMAT, "%s: malformed .npy header: unexpected key '%s'", path, key);
        }
        if (rc < 0)
            return rc;
        if (*seen)
            return vv_fail(VV_EFORMAT, "%s: malformed .npy header: duplicate key '%s'", path, key);
        *seen = 1;
        skip_ws(&c);
        if (at(&c, ','))
            c.p++;
        else if (!at(&c, '}'))
            return vv_fail(VV_EFORMAT,
                           "%s: malformed .npy header: expected ',' or '}' at offset %ld", path,
                           col(&c, text));
    }
    c.p++;
    /* Only padding may follow the dict, up to the final newline. */
    while (c.p < c.end - 1 && (*c.p == ' ' || *c.p == '\t'))
        c.p++;
    if (c.p != c.end - 1)
        return vv_fail(VV_EFORMAT, "%s: malformed .npy header: unexpected text after the dict",
                       path);
    if (!seen_descr || !seen_fortran || !seen_shape)
        return vv_fail(VV_EFORMAT, "%s: malformed .npy header: missing key '%s'", path,
                       !seen_descr     ? "descr"
                       : !seen_fortran ? "fortran_order"
                                       : "shape");
    return 0;
}

static int descr_dtype(const char *path, const char *descr, vv_dtype *t)
{
    if (!strcmp(descr, "<f4"))
        *t = VV_F32;
    else if (!strcmp(descr, "<f8"))
        *t = VV_F64;
    else if (!strcmp(descr, "<i8"))
        *t = VV_I64;
    else if (descr[0] == '>')
        return vv_fail(VV_EDTYPE,
                       "%s: big-endian dtype '%s' is not supported; save it little-endian "
                       "(e.g. a.astype('<%s'))",
                       path, descr, descr + 1);
    else
        return vv_fail(VV_EDTYPE, "%s: unsupported dtype '%s'; need '<f4', '<f8' or '<i8'", path,
                       descr);
    return 0;
}

/* Reads and parses the header of the open .npy file fd (size fsize) into *h
 * and sets *data_off_out to the offset of the first element; the dtype and the
 * rank are left to the caller to check. */
static int read_header(const char *path, int fd, uint64_t fsize, npy_header *h,
                       uint64_t *data_off_out)
{
    unsigned char pre[12];
    size_t npre = fsize < sizeof pre ? (size_t)fsize : sizeof pre;
    int rc;

    if ((rc = vv__pread_full(path, fd, pre, npre, 0)) < 0)
        return rc;
    if (npre < 6 || memcmp(pre, npy_magic, 6) != 0) {
        char hex[64];
        vv__magic_hex(pre, npre, hex, sizeof hex);
        return vv_fail(VV_EFORMAT, "%s: not a .npy file (magic %s)", path, hex);
    }
    if (npre < 8)
        return vv_fail(VV_EFORMAT, "%s: truncated .npy file: %" PRIu64 " bytes, no version", path,
                       fsize);
    int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0)
        return vv_fail(VV_EFORMAT, "%s: unsupported .npy version %d.%d (need 1.0, 2.0 or 3.0)",
                       path, major, minor);
    size_t lenbytes = major == 1 ? 2 : 4;
    if (npre < 8 + lenbytes)
        return vv_fail(VV_EFORMAT, "%s: truncated .npy file: %" PRIu64 " bytes, no header length",
                       path, fsize);
    uint64_t hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
    if (lenbytes == 4)
        hlen |= (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    uint64_t data_off = 8 + lenbytes + hlen;
    if (hlen > NPY_MAX_HEADER)
        return vv_fail(VV_EFORMAT, "%s: .npy header length %" PRIu64 " is too large (max %u)", path,
                       hlen, NPY_MAX_HEADER);
    if (data_off > fsize)
        return vv_fail(VV_EFORMAT,
                       "%s: truncated .npy file: header needs %" PRIu64 " bytes but the file "
                       "has %" PRIu64,
                       path, data_off, fsize);

    char *text = malloc(hlen ? hlen : 1);
    if (!text)
        return vv_fail(VV_ENOMEM, "%s: out of memory for a %" PRIu64 "-byte header", path, hlen);
    rc = vv__pread_full(path, fd, text, hlen, 8 + lenbytes);
    memset(h, 0, sizeof *h);
    if (rc == 0)
        rc = parse_dict(path, text, hlen, h);
    free(text);
    if (rc < 0)
        return rc;
    *data_off_out = data_off;
    return 0;
}

int vv__npy_probe(const char *path, int fd, uint64_t fsize, vv__tinfo *ti)
{
    npy_header h;
    uint64_t data_off;
    int rc;

    memset(ti, 0, sizeof *ti);
    if ((rc = read_header(path, fd, fsize, &h, &data_off)) < 0)
        return rc;
    if ((rc = descr_dtype(path, h.descr, &ti->dtype)) < 0)
        return rc;
    if (h.ndim < 1 || h.ndim > 2)
        return vv_fail(VV_ESHAPE, "%s: .npy array is %d-D; need a 1-D or 2-D array", path, h.ndim);
    ti->ndim = h.ndim;
    ti->shape[0] = h.dims[0];
    ti->shape[1] = h.ndim == 2 ? h.dims[1] : 1;
    ti->fortran = h.fortran && h.ndim == 2;
    ti->offset = data_off;

    char shp[64];
    vv__shape_str(ti, shp, sizeof shp);
    uint64_t nelem, nbytes;
    if (__builtin_mul_overflow((uint64_t)ti->shape[0], (uint64_t)ti->shape[1], &nelem) ||
        __builtin_mul_overflow(nelem, (uint64_t)vv_dtype_size(ti->dtype), &nbytes) ||
        nbytes > (uint64_t)INT64_MAX)
        return vv_fail(VV_EFORMAT, "%s: .npy shape %s overflows", path, shp);
    ti->nbytes = nbytes;
    uint64_t avail = fsize - data_off;
    if (avail < nbytes)
        return vv_fail(VV_EFORMAT,
                       "%s: truncated: header says %s %s (%" PRIu64 " bytes) but only %" PRIu64
                       " bytes of data follow",
                       path, shp, vv_dtype_name(ti->dtype), nbytes, avail);
    if (avail > nbytes)
        return vv_fail(VV_EFORMAT,
                       "%s: trailing data: %" PRIu64 " bytes follow the %s %s data (%" PRIu64
                       " bytes) the header describes",
                       path, avail - nbytes, shp, vv_dtype_name(ti->dtype), nbytes);
    return 0;
}

/* Transposes a column-major r x c matrix of esz-byte elements into dst,
 * row-major, in cache-friendly tiles. */
static void transpose(const unsigned char *src, unsigned char *dst, int64_t r, int64_t c,
                      size_t esz)
{
    const int64_t T = 32;
    for (int64_t i0 = 0; i0 < r; i0 += T)
        for (int64_t j0 = 0; j0 < c; j0 += T) {
            int64_t i1 = i0 + T < r ? i0 + T : r, j1 = j0 + T < c ? j0 + T : c;
            for (int64_t j = j0; j < j1; j++)
                for (int64_t i = i0; i < i1; i++)
                    memcpy(dst + ((size_t)i * (size_t)c + (size_t)j) * esz,
                           src + ((size_t)j * (size_t)r + (size_t)i) * esz, esz);
        }
}

int vv_npy_read(const char *path, vv_array *out)
{
    int fd, rc;
    uint64_t fsize;
    vv__tinfo ti;
    void *data = NULL, *tmp = NULL;

    if (!out)
        return vv_fail(VV_EINVAL, "%s: vv_npy_read: out is NULL", path ? path : "(null)");
    memset(out, 0, sizeof *out);
    if (!path)
        return vv_fail(VV_EINVAL, "vv_npy_read: path is NULL");
    if ((rc = vv__open_ro(path, &fd, &fsize)) < 0)
        return rc;
    if ((rc = vv__npy_probe(path, fd, fsize, &ti)) < 0)
        goto done;
    if (ti.nbytes > SIZE_MAX - 1 || !(data = malloc(ti.nbytes ? ti.nbytes : 1))) {
        rc = vv_fail(VV_ENOMEM, "%s: out of memory for %" PRIu64 " bytes of data", path, ti.nbytes);
        goto done;
    }
    if (ti.fortran) {
        if (!(tmp = malloc(ti.nbytes ? ti.nbytes : 1))) {
            rc = vv_fail(VV_ENOMEM, "%s: out of memory for %" PRIu64 " bytes of data", path,
                         ti.nbytes);
            goto done;
        }
        if ((rc = vv__pread_full(path, fd, tmp, ti.nbytes, ti.offset)) < 0)
            goto done;
        transpose(tmp, data, ti.shape[0], ti.shape[1], vv_dtype_size(ti.dtype));
    } else if ((rc = vv__pread_full(path, fd, data, ti.nbytes, ti.offset)) < 0) {
        goto done;
    }
    out->dtype = ti.dtype;
    out->ndim = ti.ndim;
    out->shape[0] = ti.shape[0];
    out->shape[1] = ti.shape[1];
    out->data = data;
    data = NULL;
    rc = 0;
done:
    free(tmp);
    free(data);
    close(fd);
    return rc;
}

/* Parses a numpy dtype string of a plain number ("|u1", "<f4", "<i8", ...)
 * into its kind and item size. */
static int raw_descr(const char *path, const char *descr, char *kind, int *itemsize)
{
    char order = descr[0];
    const char *k = descr + 1;
    if (order != '<' && order != '|' && order != '=')
        return order == '>' ? vv_fail(VV_EDTYPE,
                                      "%s: big-endian dtype '%s' is not supported; save it "
                                      "little-endian (e.g. a.astype('<%s'))",
                                      path, descr, descr + 1)
                            : vv_fail(VV_EDTYPE, "%s: unsupported dtype '%s'", path, descr);
    int size = 0;
    if (k[0] && k[1] && !k[2])
        size = k[1] - '0';
    int ok = size == 1 || size == 2 || size == 4 || size == 8;
    if (k[0] == 'b')
        ok = size == 1;
    else if (k[0] == 'f')
        ok = size == 2 || size == 4 || size == 8;
    else if (k[0] != 'i' && k[0] != 'u')
        ok = 0;
    if (!ok || (order == '|' && size != 1))
        return vv_fail(VV_EDTYPE,
                       "%s: unsupported dtype '%s'; need a little-endian bool, integer or float",
                       path, descr);
    *kind = k[0];
    *itemsize = size;
    return 0;
}

void vv_npy_raw_free(vv_npy_raw *r)
{
    if (!r)
        return;
    free(r->data);
    memset(r, 0, sizeof *r);
}

int vv_npy_read_raw(const char *path, vv_npy_raw *out)
{
    int fd, rc;
    uint64_t fsize, data_off;
    npy_header h;
    void *data = NULL;

    if (!out)
        return vv_fail(VV_EINVAL, "%s: vv_npy_read_raw: out is NULL", path ? path : "(null)");
    memset(out, 0, sizeof *out);
    if (!path)
        return vv_fail(VV_EINVAL, "vv_npy_read_raw: path is NULL");
    if ((rc = vv__open_ro(path, &fd, &fsize)) < 0)
        return rc;
    if ((rc = read_header(path, fd, fsize, &h, &data_off)) < 0)
        goto done;
    if ((rc = raw_descr(path, h.descr, &out->kind, &out->itemsize)) < 0)
        goto done;
    if (h.ndim > VV_NPY_MAX_DIMS) {
        rc = vv_fail(VV_ESHAPE, "%s: .npy array is %d-D; at most %d dimensions are supported", path,
                     h.ndim, VV_NPY_MAX_DIMS);
        goto done;
    }
    if (h.fortran && h.ndim > 1) {
        rc = vv_fail(VV_EFORMAT,
                     "%s: Fortran-order %d-D arrays are not supported here; save it in C order "
                     "(np.ascontiguousarray)",
                     path, h.ndim);
        goto done;
    }
    uint64_t nbytes = (uint64_t)out->itemsize;
    for (int i = 0; i < h.ndim; i++)
        if (__builtin_mul_overflow(nbytes, (uint64_t)h.dims[i], &nbytes) ||
            nbytes > (uint64_t)INT64_MAX) {
            rc = vv_fail(VV_EFORMAT, "%s: .npy shape overflows", path);
            goto done;
        }
    uint64_t avail = fsize - data_off;
    if (avail != nbytes) {
        rc =
            vv_fail(VV_EFORMAT,
                    "%s: %s: the header describes %" PRIu64 " bytes of data but %" PRIu64 " follow",
                    path, avail < nbytes ? "truncated" : "trailing data", nbytes, avail);
        goto done;
    }
    if (nbytes > SIZE_MAX - 1 || !(data = malloc(nbytes ? nbytes : 1))) {
        rc = vv_fail(VV_ENOMEM, "%s: out of memory for %" PRIu64 " bytes of data", path, nbytes);
        goto done;
    }
    if ((rc = vv__pread_full(path, fd, data, nbytes, data_off)) < 0)
        goto done;
    /* raw_descr accepted at most three characters. */
    memcpy(out->descr, h.descr, sizeof out->descr - 1);
    out->descr[sizeof out->descr - 1] = 0;
    out->ndim = h.ndim;
    for (int i = 0; i < h.ndim; i++)
        out->shape[i] = h.dims[i];
    out->data = data;
    data = NULL;
    rc = 0;
done:
    if (rc < 0) {
        out->kind = 0;
        out->itemsize = 0;
    }
    free(data);
    close(fd);
    return rc;
}

int vv_npy_write(const char *path, vv_dtype dtype, int ndim, const int64_t *shape, const void *data)
{
    const char *descr;
    char dict[160];
    unsigned char hdr[256];
    uint64_t nelem, nbytes;

    if (!path)
        return vv_fail(VV_EINVAL, "vv_npy_write: path is NULL");
    switch (dtype) {
    case VV_F32:
        descr = "<f4";
        break;
    case VV_F64:
        descr = "<f8";
        break;
    case VV_I64:
        descr = "<i8";
        break;
    default:
        return vv_fail(VV_EDTYPE,
                       "%s: cannot write dtype %s as .npy (need float32, float64 or "
                       "int64)",
                       path, vv_dtype_name(dtype));
    }
    if (ndim < 1 || ndim > 2 || !shape)
        return vv_fail(VV_ESHAPE, "%s: cannot write a %d-D array as .npy (need 1-D or 2-D)", path,
                       ndim);
    int64_t cols = ndim == 2 ? shape[1] : 1;
    if (shape[0] < 0 || cols < 0)
        return vv_fail(VV_ESHAPE, "%s: negative dimension in shape", path);
    if (__builtin_mul_overflow((uint64_t)shape[0], (uint64_t)cols, &nelem) ||
        __builtin_mul_overflow(nelem, (uint64_t)vv_dtype_size(dtype), &nbytes) ||
        nbytes > (uint64_t)SIZE_MAX)
        return vv_fail(VV_ETOOLARGE, "%s: array too large to write", path);
    if (!data && nbytes)
        return vv_fail(VV_EINVAL, "%s: vv_npy_write: data is NULL", path);

    int n;
    if (ndim == 1)
        n = snprintf(dict, sizeof dict,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (%" PRId64 ",), }", descr,
                     shape[0]);
    else
        n = snprintf(dict, sizeof dict,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (%" PRId64 ", %" PRId64
                     "), }",
                     descr, shape[0], shape[1]);
    /* Pad with spaces so that the data starts at a multiple of 64, as numpy
     * does; the header ends with '\n'. */
    size_t total = 10 + (size_t)n + 1;
    total = (total + 63) / 64 * 64;
    size_t hlen = total - 10;
    memcpy(hdr, npy_magic, 6);
    hdr[6] = 1;
    hdr[7] = 0;
    hdr[8] = (unsigned char)(hlen & 0xff);
    hdr[9] = (unsigned char)(hlen >> 8);
    memcpy(hdr + 10, dict, (size_t)n);
    memset(hdr + 10 + n, ' ', hlen - (size_t)n - 1);
    hdr[total - 1] = '\n';

    vv__piece pieces[2] = {{hdr, total}, {data, (size_t)nbytes}};
    return vv__write_atomic(path, pieces, 2);
}
