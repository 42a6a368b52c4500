/* dataset.c - the data-set readers (contract in vv/dataset.h): CIFAR-10
 * binary batches, IDX files (MNIST, Fashion-MNIST), plain or gzipped, and
 * .npy image arrays with label vectors.  Preprocessing lives in
 * dataset_resize.c.
 *
 * Every reader checks the whole file before it hands out a data set: sizes
 * against headers, labels against their range, counts of images against
 * counts of labels.  A failure leaves a detail naming the file, and the
 * record or row when one is at fault. */
#include "array_internal.h"
#include "dataset_internal.h"
#include "vv/array.h"
#include "vv/err.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* Bounds on an image's shape, so that sizes computed in int never
 * overflow and a corrupt header cannot ask for absurd allocations. */
#define DS_MAX_SIDE 65536
#define DS_MAX_CHANNELS 4096

#define CIFAR_PIXELS (3 * 32 * 32)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
/* Records read per pread while loading CIFAR-10 (about 3 MB). */
#define CIFAR_CHUNK 1024

/* Deflate cannot compress better than about 1032:1, so a gzip file of s
 * bytes holds at most this much data; a header asking for more describes a
 * truncated file. */
#define GZ_MAX_RATIO 1032u

/* ---- The data set ---------------------------------------------------------- */

/* A data set of n images of c x h x w pixels, uint8 or float32, and n
 * labels, all zero; NULL when out of memory. */
static vv_dataset *ds_new(int64_t n, int c, int h, int w, int is_float)
{
    vv_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return NULL;
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    size_t npix = (size_t)n * (size_t)c * (size_t)h * (size_t)w;
    if (is_float)
        ds->f32 = malloc(npix ? npix * sizeof(float) : 1);
    else
        ds->u8 = malloc(npix ? npix : 1);
    ds->labels = malloc(n ? (size_t)n * sizeof(int32_t) : 1);
    if ((is_float ? !ds->f32 : !ds->u8) || !ds->labels) {
        vv_dataset_free(ds);
        return NULL;
    }
    return ds;
}

/* Checks that n images of c x h x w pixels fit in memory arithmetic;
 * VV_ETOOLARGE naming path otherwise. */
static int ds_size_ok(const char *path, int64_t n, int64_t c, int64_t h, int64_t w)
{
    uint64_t b;
    if (__builtin_mul_overflow((uint64_t)n, (uint64_t)(c * h * w), &b) ||
        __builtin_mul_overflow(b, (uint64_t)sizeof(float), &b) || b > (uint64_t)SIZE_MAX / 2)
        return vv_fail(VV_ETOOLARGE,
                       "%s: %" PRId64 " images of %" PRId64 " x %" PRId64 " x %" PRId64
                       " pixels do not fit in memory",
                       path, n, c, h, w);
    return 0;
}

/* Sets classes to 1 + the largest label. */
static void ds_finish(vv_dataset *ds)
{
    int32_t m = -1;
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->labels[i] > m)
            m = ds->labels[i];
    ds->classes = m + 1;
}

void vv_dataset_free(vv_dataset *ds)
{
    if (!ds)
        return;
    free(ds->u8);
    free(ds->f32);
    free(ds->labels);
    free(ds);
}

int64_t vv_dataset_count(const vv_dataset *ds)
{
    return ds ? ds->n : 0;
}

int vv_dataset_channels(const vv_dataset *ds)
{
    return ds ? ds->c : 0;
}

int vv_dataset_height(const vv_dataset *ds)
{
    return ds ? ds->h : 0;
}

int vv_dataset_width(const vv_dataset *ds)
{
    return ds ? ds->w : 0;
}

int vv_dataset_classes(const vv_dataset *ds)
{
    return ds ? ds->classes : 0;
}

const int32_t *vv_dataset_labels(const vv_dataset *ds)
{
    return ds ? ds->labels : NULL;
}

/* ---- CIFAR-10 -------------------------------------------------------------- */

/* Copies the records of one open file into ds from image row on and
 * checks their labels. */
static int cifar_load(const char *path, int fd, uint64_t size, vv_dataset *ds, int64_t row,
                      unsigned char *buf)
{
    int64_t nrec = (int64_t)(size / CIFAR_RECORD);
    for (int64_t r0 = 0; r0 < nrec; r0 += CIFAR_CHUNK) {
        int64_t m = nrec - r0 < CIFAR_CHUNK ? nrec - r0 : CIFAR_CHUNK;
        int rc =
            vv__pread_full(path, fd, buf, (size_t)m * CIFAR_RECORD, (uint64_t)r0 * CIFAR_RECORD);
        if (rc < 0)
            return rc;
        for (int64_t k = 0; k < m; k++) {
            const unsigned char *rec = buf + (size_t)k * CIFAR_RECORD;
            if (rec[0] > 9)
                return vv_fail(VV_EFORMAT,
                               "%s: record %" PRId64 " has label %d; CIFAR-10 labels are 0..9",
                               path, r0 + k, rec[0]);
            ds->labels[row + r0 + k] = rec[0];
            memcpy(ds->u8 + (size_t)(row + r0 + k) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
    }
    return 0;
}

vv_err vv_dataset_open_cifar10(const char *const *files, int nfiles, vv_dataset **out)
{
    int fd, rc;
    uint64_t size;
    int64_t total = 0;

    if (!out)
        return vv_fail(VV_EINVAL, "vv_dataset_open_cifar10: out is NULL");
    *out = NULL;
    if (!files || nfiles < 1)
        return vv_fail(VV_EINVAL, "vv_dataset_open_cifar10: no files given");
    /* First the sizes, so that one allocation holds every file. */
    for (int i = 0; i < nfiles; i++) {
        if (!files[i])
            return vv_fail(VV_EINVAL, "vv_dataset_open_cifar10: files[%d] is NULL", i);
        if ((rc = vv__open_ro(files[i], &fd, &size)) < 0)
            return rc;
        close(fd);
        if (size % CIFAR_RECORD)
            return vv_fail(VV_EFORMAT,
                           "%s: %" PRIu64 " bytes is not a whole number of %d-byte CIFAR-10 "
                           "records (1 label byte + 3 x 32 x 32 pixels)",
                           files[i], size, CIFAR_RECORD);
        total += (int64_t)(size / CIFAR_RECORD);
    }
    if (total == 0)
        return vv_fail(VV_EFORMAT, "%s: no CIFAR-10 records", files[0]);
    if ((rc = ds_size_ok(files[0], total, 3, 32, 32)) < 0)
        return rc;

    vv_dataset *ds = ds_new(total, 3, 32, 32, 0);
    unsigned char *buf = malloc((size_t)CIFAR_CHUNK * CIFAR_RECORD);
    if (!ds || !buf) {
        rc = vv_fail(VV_ENOMEM, "%s: out of memory for %" PRId64 " CIFAR-10 images", files[0],
                     total);
        goto fail;
    }
    int64_t row = 0;
    for (int i = 0; i < nfiles; i++) {
        uint64_t size2;
        if ((rc = vv__open_ro(files[i], &fd, &size2)) < 0)
            goto fail;
        /* The first pass measured the file; it must not have grown into a
         * different record count since. */
        if (size2 % CIFAR_RECORD || row + (int64_t)(size2 / CIFAR_RECORD) > total) {
            close(fd);
            rc = vv_fail(VV_EIO, "%s: the file changed while it was being read", files[i]);
            goto fail;
        }
        rc = cifar_load(files[i], fd, size2, ds, row, buf);
        close(fd);
        if (rc < 0)
            goto fail;
        row += (int64_t)(size2 / CIFAR_RECORD);
    }
    if (row != total) {
        rc = vv_fail(VV_EIO, "%s: a file changed while it was being read", files[0]);
        goto fail;
    }
    free(buf);
    ds_finish(ds);
    *out = ds;
    return VV_OK;
fail:
    free(buf);
    vv_dataset_free(ds);
    return rc;
}

/* ---- IDX ------------------------------------------------------------------- */

/* Reads up to n bytes; the count read (short at the end of the data) or -1
 * on a zlib error. */
static int64_t gz_read_full(gzFile g, void *buf, uint64_t n)
{
    unsigned char *p = buf;
    uint64_t got = 0;
    while (got < n) {
        unsigned want = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int r = gzread(g, p + got, want);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (uint64_t)r;
    }
    return (int64_t)got;
}

/* After a short or failed read: the zlib error, if there is one, as a
 * vv_err naming path; 0 when the data simply ended. */
static int gz_error(const char *path, gzFile g)
{
    int err = Z_OK;
    const char *msg = gzerror(g, &err);
    if (err == Z_OK || err == Z_STREAM_END)
        return 0;
    if (err == Z_ERRNO)
        return vv_fail(VV_EIO, "%s: read failed: %s", path, strerror(errno));
    if (err == Z_BUF_ERROR)
        return vv_fail(VV_EFORMAT, "%s: truncated: the gzip stream ends early", path);
    if (err == Z_MEM_ERROR)
        return vv_fail(VV_ENOMEM, "%s: out of memory while decompressing", path);
    return vv_fail(VV_EFORMAT, "%s: corrupt gzip data: %s", path, msg ? msg : "unknown error");
}

/* Reads an IDX file of unsigned bytes with ndim dimensions (magic
 * 0x0000080<ndim>), plain or gzipped, into dims and *data (malloc'd).
 * what names the kind of file for messages.  zlib tells a gzip stream from
 * plain data by its magic bytes 1f 8b and reads plain data as it is. */
static int idx_read(const char *path, int ndim, const char *what, int64_t *dims, uint8_t **data)
{
    int fd, rc;
    uint64_t fsize;
    unsigned char hdr[4 + 4 * 3];
    size_t hlen = 4 + 4 * (size_t)ndim;
    uint8_t *p = NULL;

    *data = NULL;
    if ((rc = vv__open_ro(path, &fd, &fsize)) < 0)
        return rc;
    gzFile g = gzdopen(fd, "rb");
    if (!g) {
        close(fd);
        return vv_fail(VV_ENOMEM, "%s: out of memory for a gzip reader", path);
    }
    gzbuffer(g, 1u << 16);
    int64_t got = gz_read_full(g, hdr, hlen);
    if (got < (int64_t)hlen && (rc = gz_error(path, g)) < 0)
        goto done;
    if (got < 4) {
        rc = vv_fail(VV_EFORMAT, "%s: truncated: %" PRId64 " bytes, no IDX magic", path, got);
        goto done;
    }
    uint32_t magic =
        (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    uint32_t want = 0x800u | (uint32_t)ndim;
    if (magic != want) {
        rc = vv_fail(VV_EFORMAT, "%s: not an IDX %s file: magic 0x%08" PRIx32 ", want 0x%08" PRIx32,
                     path, what, magic, want);
        goto done;
    }
    if (got < (int64_t)hlen) {
        rc =
            vv_fail(VV_EFORMAT, "%s: truncated: the IDX header ends after %" PRId64 " of %zu bytes",
                    path, got, hlen);
        goto done;
    }
    uint64_t nbytes = 1;
    for (int i = 0; i < ndim; i++) {
        const unsigned char *d = hdr + 4 + 4 * i;
        dims[i] =
            (int64_t)((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]);
        /* dims[0] < 2^32 and every later dimension is checked to be at
         * most 2^16 before the next product, so nbytes stays below 2^64. */
        nbytes *= (uint64_t)dims[i];
        if (i > 0 && (dims[i] < 1 || dims[i] > DS_MAX_SIDE)) {
            rc = vv_fail(VV_EFORMAT, "%s: IDX dimension %d is %" PRId64 "; need 1..%d", path, i,
                         dims[i], DS_MAX_SIDE);
            goto done;
        }
    }
    if (gzdirect(g) && nbytes != fsize - hlen) {
        rc = vv_fail(
            VV_EFORMAT,
            "%s: %s: the IDX header describes %" PRIu64 " bytes of data but %" PRIu64 " follow",
            path, nbytes > fsize - hlen ? "truncated" : "trailing data", nbytes, fsize - hlen);
        goto done;
    }
    if (!gzdirect(g) && nbytes / GZ_MAX_RATIO > fsize) {
        rc = vv_fail(VV_EFORMAT,
                     "%s: truncated: the IDX header describes %" PRIu64 " bytes of data, more "
                     "than %" PRIu64 " gzipped bytes can hold",
                     path, nbytes, fsize);
        goto done;
    }
    if (!(p = malloc(nbytes ? nbytes : 1))) {
        rc = vv_fail(VV_ENOMEM, "%s: out of memory for %" PRIu64 " bytes", path, nbytes);
        goto done;
    }
    got = gz_read_full(g, p, nbytes);
    if (got < (int64_t)nbytes) {
        if ((rc = gz_error(path, g)) == 0)
            rc = vv_fail(VV_EFORMAT,
                         "%s: truncated: the IDX header describes %" PRIu64
                         " bytes of data but only %" PRId64 " follow",
                         path, nbytes, got < 0 ? 0 : got);
        goto done;
    }
    unsigned char extra;
    got = gz_read_full(g, &extra, 1);
    if (got < 0) {
        if ((rc = gz_error(path, g)) == 0)
            rc = vv_fail(VV_EFORMAT, "%s: unreadable data after the IDX data", path);
        goto done;
    }
    if (got > 0) {
        rc = vv_fail(VV_EFORMAT,
                     "%s: trailing data after the %" PRIu64 " bytes the IDX header describes", path,
                     nbytes);
        goto done;
    }
    if ((rc = gz_error(path, g)) < 0)
        goto done;
    *data = p;
    p = NULL;
    rc = 0;
done:
    free(p);
    gzclose(g);
    return rc;
}

vv_err vv_dataset_open_idx(const char *images, const char *labels, vv_dataset **out)
{
    int64_t idim[3], ldim[1];
    uint8_t *pix = NULL, *lab = NULL;
    int rc;

    if (!out)
        return vv_fail(VV_EINVAL, "vv_dataset_open_idx: out is NULL");
    *out = NULL;
    if (!images || !labels)
        return vv_fail(VV_EINVAL, "vv_dataset_open_idx: %s path is NULL",
                       images ? "labels" : "images");
    if ((rc = idx_read(images, 3, "images", idim, &pix)) < 0)
        return rc;
    if ((rc = idx_read(labels, 1, "labels", ldim, &lab)) < 0)
        goto done;
    if (ldim[0] != idim[0]) {
        rc = vv_fail(VV_EFORMAT, "%s: %" PRId64 " labels but %s holds %" PRId64 " images", labels,
                     ldim[0], images, idim[0]);
        goto done;
    }
    if (idim[0] == 0) {
        rc = vv_fail(VV_EFORMAT, "%s: no images", images);
        goto done;
    }
    if ((rc = ds_size_ok(images, idim[0], 1, idim[1], idim[2])) < 0)
        goto done;
    vv_dataset *ds = calloc(1, sizeof *ds);
    int32_t *l32 = malloc((size_t)idim[0] * sizeof(int32_t));
    if (!ds || !l32) {
        free(ds);
        free(l32);
        rc = vv_fail(VV_ENOMEM, "%s: out of memory for %" PRId64 " labels", labels, ldim[0]);
        goto done;
    }
    for (int64_t i = 0; i < idim[0]; i++)
        l32[i] = lab[i];
    ds->n = idim[0];
    ds->c = 1;
    ds->h = (int)idim[1];
    ds->w = (int)idim[2];
    ds->u8 = pix;
    ds->labels = l32;
    pix = NULL;
    ds_finish(ds);
    *out = ds;
    rc = VV_OK;
done:
    free(pix);
    free(lab);
    return rc;
}

/* ---- .npy ------------------------------------------------------------------ */

/* Element i of an integer array of the given kind and size, as int64;
 * *big is set for an unsigned 64-bit value above INT64_MAX. */
static int64_t raw_int(const vv_npy_raw *a, int64_t i, int *big)
{
    const unsigned char *p = (const unsigned char *)a->data + (size_t)i * (size_t)a->itemsize;
    int s = a->kind == 'i';
    *big = 0;
    switch (a->itemsize) {
    case 1:
        return s ? (int64_t)(int8_t)p[0] : (int64_t)p[0];
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return s ? (int64_t)(int16_t)v : (int64_t)v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return s ? (int64_t)(int32_t)v : (int64_t)v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (!s && v > (uint64_t)INT64_MAX)
            *big = 1;
        return (int64_t)v;
    }
    }
}

/* Checks the image array of a .npy data set and its shape. */
static int npy_images_shape(const char *path, const vv_npy_raw *a, int64_t *c, int64_t *h,
                            int64_t *w)
{
    if (a->ndim != 3 && a->ndim != 4)
        return vv_fail(VV_ESHAPE,
                       "%s: images must be N x H x W or N x C x H x W; the array is %d-D", path,
                       a->ndim);
    if (!((a->kind == 'u' && a->itemsize == 1) ||
          (a->kind == 'f' && (a->itemsize == 4 || a->itemsize == 8))))
        return vv_fail(VV_EDTYPE,
                       "%s: image dtype '%s' is not supported; need uint8, float32 or float64",
                       path, a->descr);
    *c = a->ndim == 4 ? a->shape[1] : 1;
    *h = a->shape[a->ndim - 2];
    *w = a->shape[a->ndim - 1];
    if (a->shape[0] == 0)
        return vv_fail(VV_ESHAPE, "%s: no images (the first dimension is 0)", path);
    if (*c < 1 || *c > DS_MAX_CHANNELS || *h < 1 || *h > DS_MAX_SIDE || *w < 1 || *w > DS_MAX_SIDE)
        return vv_fail(VV_ESHAPE,
                       "%s: images of %" PRId64 " x %" PRId64 " x %" PRId64
                       " pixels; need 1..%d channels and sides of 1..%d",
                       path, *c, *h, *w, DS_MAX_CHANNELS, DS_MAX_SIDE);
    return ds_size_ok(path, a->shape[0], *c, *h, *w);
}

/* Copies the pixels of a checked image array into ds, converting float64
 * to float32 and rejecting NaN and Inf. */
static int npy_images_copy(const char *path, const vv_npy_raw *a, vv_dataset *ds)
{
    size_t per = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    size_t npix = (size_t)ds->n * per;
    if (ds->u8) {
        memcpy(ds->u8, a->data, npix);
        return 0;
    }
    if (a->itemsize == 4) {
        memcpy(ds->f32, a->data, npix * sizeof(float));
    } else {
        const unsigned char *p = a->data;
        for (size_t i = 0; i < npix; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            ds->f32[i] = (float)v;
        }
    }
    for (size_t i = 0; i < npix; i++)
        if (!isfinite(ds->f32[i]))
            return vv_fail(VV_ENONFINITE,
                           "%s: image %zu holds a NaN or Inf (or a float64 beyond float32's "
                           "range) at pixel %zu",
                           path, i / per, i % per);
    return 0;
}

/* Opens images with labels, or without them (labels NULL: every label 0). */
static vv_err open_npy(const char *images, const char *labels, vv_dataset **out)
{
    vv_npy_raw im, lb;
    vv_dataset *ds = NULL;
    int64_t c = 0, h = 0, w = 0;
    int rc;

    memset(&im, 0, sizeof im);
    memset(&lb, 0, sizeof lb);
    if ((rc = vv_npy_read_raw(images, &im)) < 0)
        return rc;
    if ((rc = npy_images_shape(images, &im, &c, &h, &w)) < 0)
        goto done;
    if (!labels) {
        if (!(ds = ds_new(im.shape[0], (int)c, (int)h, (int)w, im.kind == 'f'))) {
            rc =
                vv_fail(VV_ENOMEM, "%s: out of memory for %" PRId64 " images", images, im.shape[0]);
            goto done;
        }
        memset(ds->labels, 0, (size_t)ds->n * sizeof *ds->labels);
        goto pixels;
    }
    if ((rc = vv_npy_read_raw(labels, &lb)) < 0)
        goto done;
    if (lb.ndim != 1) {
        rc = vv_fail(VV_ESHAPE, "%s: labels must be a 1-D array; it is %d-D", labels, lb.ndim);
        goto done;
    }
    if (lb.kind != 'i' && lb.kind != 'u') {
        rc = vv_fail(VV_EDTYPE, "%s: label dtype '%s' is not an integer type", labels, lb.descr);
        goto done;
    }
    if (lb.shape[0] != im.shape[0]) {
        rc = vv_fail(VV_ESHAPE, "%s: %" PRId64 " labels but %s holds %" PRId64 " images", labels,
                     lb.shape[0], images, im.shape[0]);
        goto done;
    }
    if (!(ds = ds_new(im.shape[0], (int)c, (int)h, (int)w, im.kind == 'f'))) {
        rc = vv_fail(VV_ENOMEM, "%s: out of memory for %" PRId64 " images", images, im.shape[0]);
        goto done;
    }
    for (int64_t i = 0; i < ds->n; i++) {
        int big;
        int64_t v = raw_int(&lb, i, &big);
        if (v < 0 && !big) {
            rc = vv_fail(VV_EINVAL, "%s: row %" PRId64 " has the negative label %" PRId64, labels,
                         i, v);
            goto done;
        }
        if (big || v > INT32_MAX) {
            rc = vv_fail(VV_EINVAL, "%s: row %" PRId64 " has the label %" PRIu64 ", above %d",
                         labels, i, (uint64_t)v, INT32_MAX);
            goto done;
        }
        ds->labels[i] = (int32_t)v;
    }
pixels:
    if ((rc = npy_images_copy(images, &im, ds)) < 0)
        goto done;
    ds_finish(ds);
    *out = ds;
    ds = NULL;
    rc = VV_OK;
done:
    vv_dataset_free(ds);
    vv_npy_raw_free(&im);
    vv_npy_raw_free(&lb);
    return rc;
}

vv_err vv_dataset_open_npy(const char *images, const char *labels, vv_dataset **out)
{
    if (!out)
        return vv_fail(VV_EINVAL, "vv_dataset_open_npy: out is NULL");
    *out = NULL;
    if (!images || !labels)
        return vv_fail(VV_EINVAL, "vv_dataset_open_npy: %s path is NULL",
                       images ? "labels" : "images");
    return open_npy(images, labels, out);
}

vv_err vv_dataset_open_npy_images(const char *images, vv_dataset **out)
{
    if (!out)
        return vv_fail(VV_EINVAL, "vv_dataset_open_npy_images: out is NULL");
    *out = NULL;
    if (!images)
        return vv_fail(VV_EINVAL, "vv_dataset_open_npy_images: images path is NULL");
    return open_npy(images, NULL, out);
}
