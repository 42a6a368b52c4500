/* test_dataset.c - the data-set readers: CIFAR-10, IDX (plain and gzipped)
 * and .npy files written here and read back pixel for pixel, every
 * malformed case with its error code and detail, and the real
 * Fashion-MNIST files.  The preprocessing is tested in test_preprocess.c. */
#include "dataset_util.h"
#include "vv/array.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION "/usr/share/datasets/fashion-mnist"

/* ---- CIFAR-10 -------------------------------------------------------------- */

static unsigned char cifar_pixel(int64_t r, int k)
{
    return (unsigned char)(r * 31 + k * 7 + k / 97);
}

/* Writes n CIFAR-10 records, record r (counted from r0) labelled
 * (r + 3) % 10 with pixels cifar_pixel(r, k). */
static void write_cifar(const char *path, int64_t r0, int64_t n, size_t chop)
{
    size_t sz = (size_t)n * 3073;
    unsigned char *b = malloc(sz ? sz : 1);
    for (int64_t r = 0; r < n; r++) {
        b[r * 3073] = (unsigned char)((r0 + r + 3) % 10);
        for (int k = 0; k < 3072; k++)
            b[r * 3073 + 1 + k] = cifar_pixel(r0 + r, k);
    }
    write_bytes(path, b, sz - chop);
    free(b);
}

static void test_cifar(void)
{
    char f1[512], f2[512], bad[512], miss[512];
    tp(f1, sizeof f1, "data_batch_1.bin");
    tp(f2, sizeof f2, "data_batch_2.bin");
    write_cifar(f1, 0, 3, 0);
    write_cifar(f2, 3, 2, 0);
    const char *files[2] = {f1, f2};
    vv_dataset *ds = NULL;
    int rc = vv_dataset_open_cifar10(files, 2, &ds);
    CHECKF(rc == 0 && ds, "cifar: two batches open (%s)", why(rc));
    if (!ds)
        return;
    CHECK(vv_dataset_count(ds) == 5 && vv_dataset_channels(ds) == 3 &&
              vv_dataset_height(ds) == 32 && vv_dataset_width(ds) == 32,
          "cifar: 5 images of 3 x 32 x 32, concatenated in order");
    const int32_t *lab = vv_dataset_labels(ds);
    int ok = lab != NULL;
    for (int r = 0; ok && r < 5; r++)
        ok = lab[r] == (r + 3) % 10;
    CHECK(ok, "cifar: labels of both files in order");
    CHECK(vv_dataset_classes(ds) == 8, "cifar: classes = 1 + the largest label (7)");
    float *x = all_pixels(ds);
    ok = x != NULL;
    for (int r = 0; ok && r < 5; r++)
        for (int k = 0; ok && k < 3072; k++)
            ok = x[r * 3072 + k] == (float)cifar_pixel(r, k) / 255.0f;
    CHECK(ok, "cifar: every pixel is x / 255, channel-major as stored");
    free(x);
    vv_dataset_free(ds);

    /* Malformed files. */
    tp(bad, sizeof bad, "bad.bin");
    write_cifar(bad, 0, 2, 1);
    const char *one[1] = {bad};
    ds = (vv_dataset *)1;
    rc = vv_dataset_open_cifar10(one, 1, &ds);
    expect(rc, VV_EFORMAT, bad, "6145 bytes", "cifar: size not a multiple of 3073");
    CHECK(ds == NULL, "cifar: *out is NULL on failure");

    write_cifar(bad, 0, 4, 0);
    {
        size_t n;
        unsigned char *b = slurp(bad, &n);
        b[2 * 3073] = 10;
        write_bytes(bad, b, n);
        free(b);
    }
    const char *two[2] = {f1, bad};
    rc = vv_dataset_open_cifar10(two, 2, &ds);
    expect(rc, VV_EFORMAT, bad, "record 2", "cifar: label 10 in the second file's record 2");

    write_bytes(bad, "", 0);
    rc = vv_dataset_open_cifar10(one, 1, &ds);
    expect(rc, VV_EFORMAT, bad, "no CIFAR-10 records", "cifar: an empty file");

    tp(miss, sizeof miss, "missing.bin");
    const char *m[2] = {f1, miss};
    rc = vv_dataset_open_cifar10(m, 2, &ds);
    expect(rc, VV_ENOFILE, miss, NULL, "cifar: a missing file");
    rc = vv_dataset_open_cifar10(m, 0, &ds);
    expect(rc, VV_EINVAL, "no files", NULL, "cifar: nfiles = 0");
    CHECK(vv_dataset_open_cifar10(files, 2, NULL) == VV_EINVAL, "cifar: out = NULL is EINVAL");
    unlink(f1);
    unlink(f2);
    unlink(bad);
}

/* ---- IDX ------------------------------------------------------------------- */

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX file in memory: magic, dims, then bytes v(i) = i * 5 + 1. */
static unsigned char *idx_bytes(uint32_t magic, int ndim, const uint32_t *dims, size_t *n)
{
    size_t data = 1;
    for (int i = 0; i < ndim; i++)
        data *= dims[i];
    *n = 4 + 4 * (size_t)ndim + data;
    unsigned char *b = malloc(*n);
    be32(b, magic);
    for (int i = 0; i < ndim; i++)
        be32(b + 4 + 4 * i, dims[i]);
    for (size_t i = 0; i < data; i++)
        b[4 + 4 * ndim + i] = (unsigned char)(magic == 0x801 ? i % 7 : i * 5 + 1);
    return b;
}

static void write_gz(const char *path, const void *p, size_t n)
{
    gzFile g = gzopen(path, "wb");
    gzwrite(g, p, (unsigned)n);
    gzclose(g);
}

static void test_idx(void)
{
    char im[512], lb[512], imgz[512], lbgz[512], bad[512];
    tp(im, sizeof im, "images-idx3-ubyte");
    tp(lb, sizeof lb, "labels-idx1-ubyte");
    tp(imgz, sizeof imgz, "images.gz");
    tp(lbgz, sizeof lbgz, "labels"); /* gzipped, without the name saying so */
    tp(bad, sizeof bad, "bad-idx");
    uint32_t idims[3] = {4, 5, 3}, ldims[1] = {4};
    size_t ni, nl;
    unsigned char *bi = idx_bytes(0x803, 3, idims, &ni), *bl = idx_bytes(0x801, 1, ldims, &nl);
    write_bytes(im, bi, ni);
    write_bytes(lb, bl, nl);
    write_gz(imgz, bi, ni);
    write_gz(lbgz, bl, nl);

    const char *combos[4][2] = {{im, lb}, {imgz, lbgz}, {imgz, lb}, {im, lbgz}};
    const char *names[4] = {"plain", "gzipped", "gzipped images", "gzipped labels"};
    for (int c = 0; c < 4; c++) {
        vv_dataset *ds = NULL;
        int rc = vv_dataset_open_idx(combos[c][0], combos[c][1], &ds);
        CHECKF(rc == 0 && ds, "idx %s: opens (%s)", names[c], why(rc));
        if (!ds)
            continue;
        CHECKF(vv_dataset_count(ds) == 4 && vv_dataset_channels(ds) == 1 &&
                   vv_dataset_height(ds) == 5 && vv_dataset_width(ds) == 3 &&
                   vv_dataset_classes(ds) == 4,
               "idx %s: 4 images of 1 x 5 x 3, 4 classes", names[c]);
        float *x = all_pixels(ds);
        const int32_t *l = vv_dataset_labels(ds);
        int ok = x != NULL;
        for (int i = 0; ok && i < 60; i++)
            ok = x[i] == (float)(unsigned char)(i * 5 + 1) / 255.0f;
        for (int i = 0; ok && i < 4; i++)
            ok = l[i] == i % 7;
        CHECKF(ok, "idx %s: pixels and labels exact", names[c]);
        free(x);
        vv_dataset_free(ds);
    }

    vv_dataset *ds = (vv_dataset *)1;
    int rc = vv_dataset_open_idx(im, im, &ds);
    expect(rc, VV_EFORMAT, im, "magic 0x00000803", "idx: an images file as labels (wrong magic)");
    CHECK(ds == NULL, "idx: *out is NULL on failure");
    rc = vv_dataset_open_idx(lbgz, lb, &ds);
    expect(rc, VV_EFORMAT, lbgz, "not an IDX images file", "idx: gzipped labels as images");

    write_bytes(bad, bi, ni - 1);
    rc = vv_dataset_open_idx(bad, lb, &ds);
    expect(rc, VV_EFORMAT, bad, "truncated", "idx: images one byte short");
    write_bytes(bad, bi, 10);
    rc = vv_dataset_open_idx(bad, lb, &ds);
    expect(rc, VV_EFORMAT, bad, "truncated", "idx: header cut after 10 bytes");
    write_bytes(bad, bi, 2);
    rc = vv_dataset_open_idx(bad, lb, &ds);
    expect(rc, VV_EFORMAT, bad, "truncated", "idx: 2 bytes, no magic");
    write_gz(bad, bi, ni - 7);
    rc = vv_dataset_open_idx(bad, lb, &ds);
    expect(rc, VV_EFORMAT, bad, "truncated", "idx: gzipped data 7 bytes short");
    {
        size_t n;
        unsigned char *g = slurp(imgz, &n);
        write_bytes(bad, g, n / 2);
        rc = vv_dataset_open_idx(bad, lb, &ds);
        expect(rc, VV_EFORMAT, bad, "truncated", "idx: gzip stream cut in half");
        g[n - 6] ^= 0x5a; /* the CRC-32 */
        write_bytes(bad, g, n);
        rc = vv_dataset_open_idx(bad, lb, &ds);
        expect(rc, VV_EFORMAT, bad, "gzip", "idx: gzip CRC mismatch");
        free(g);
    }
    {
        unsigned char *t = malloc(ni + 3);
        memcpy(t, bi, ni);
        memset(t + ni, 9, 3);
        write_bytes(bad, t, ni + 3);
        rc = vv_dataset_open_idx(bad, lb, &ds);
        expect(rc, VV_EFORMAT, bad, "trailing data", "idx: 3 bytes after the data");
        write_gz(bad, t, ni + 3);
        rc = vv_dataset_open_idx(bad, lb, &ds);
        expect(rc, VV_EFORMAT, bad, "trailing data", "idx: gzipped, 3 bytes after the data");
        free(t);
    }
    {
        uint32_t d3[1] = {3};
        size_t n;
        unsigned char *b = idx_bytes(0x801, 1, d3, &n);
        write_bytes(bad, b, n);
        free(b);
        rc = vv_dataset_open_idx(im, bad, &ds);
        expect(rc, VV_EFORMAT, bad, "3 labels", "idx: 3 labels for 4 images");
        uint32_t z[3] = {4, 0, 3};
        b = idx_bytes(0x803, 3, z, &n);
        write_bytes(bad, b, n);
        free(b);
        rc = vv_dataset_open_idx(bad, lb, &ds);
        expect(rc, VV_EFORMAT, bad, "dimension 1", "idx: a zero height");
        unsigned char h[16];
        be32(h, 0x803);
        be32(h + 4, 0xffffffffu);
        be32(h + 8, 1000);
        be32(h + 12, 1000);
        write_gz(bad, h, 16);
        rc = vv_dataset_open_idx(bad, lb, &ds);
        expect(rc, VV_EFORMAT, bad, "truncated", "idx: gzipped header claiming 4e15 bytes");
    }
    char miss[512];
    tp(miss, sizeof miss, "no-such-idx");
    rc = vv_dataset_open_idx(im, miss, &ds);
    expect(rc, VV_ENOFILE, miss, NULL, "idx: a missing labels file");
    free(bi);
    free(bl);
    unlink(im);
    unlink(lb);
    unlink(imgz);
    unlink(lbgz);
    unlink(bad);
}

/* The real Fashion-MNIST (Debian's dataset-fashion-mnist); its absence is a
 * failure, not a skip. */
static void test_fashion_mnist(void)
{
    static const struct {
        const char *img, *lab;
        int64_t n;
        int first[5];
        long sum0; /* pixel sum of the first image */
    } sets[2] = {
        {FASHION "/train-images-idx3-ubyte.gz",
         FASHION "/train-labels-idx1-ubyte.gz",
         60000,
         {9, 0, 0, 3, 0},
         76247},
        {FASHION "/t10k-images-idx3-ubyte.gz",
         FASHION "/t10k-labels-idx1-ubyte.gz",
         10000,
         {9, 2, 1, 1, 6},
         33456},
    };
    int present = access(sets[0].img, R_OK) == 0;
    CHECKF(present, "Fashion-MNIST is installed in " FASHION " (package dataset-fashion-mnist)");
    if (!present)
        return;
    for (int s = 0; s < 2; s++) {
        vv_dataset *ds = NULL;
        int rc = vv_dataset_open_idx(sets[s].img, sets[s].lab, &ds);
        CHECKF(rc == 0 && ds, "%s opens (%s)", sets[s].img, why(rc));
        if (!ds)
            continue;
        CHECKF(vv_dataset_count(ds) == sets[s].n && vv_dataset_channels(ds) == 1 &&
                   vv_dataset_height(ds) == 28 && vv_dataset_width(ds) == 28 &&
                   vv_dataset_classes(ds) == 10,
               "Fashion-MNIST %s: %lld images of 28 x 28, 10 classes", s ? "test" : "train",
               (long long)sets[s].n);
        const int32_t *l = vv_dataset_labels(ds);
        int64_t hist[10] = {0};
        int ok = 1;
        for (int64_t i = 0; i < sets[s].n; i++)
            if (l[i] >= 0 && l[i] < 10)
                hist[l[i]]++;
        for (int k = 0; k < 10; k++)
            ok = ok && hist[k] == sets[s].n / 10;
        for (int k = 0; k < 5; k++)
            ok = ok && l[k] == sets[s].first[k];
        CHECKF(ok, "Fashion-MNIST %s: first labels as numpy reads them, %lld per class",
               s ? "test" : "train", (long long)sets[s].n / 10);
        float x[784];
        long sum = 0;
        rc = vv_dataset_batch(ds, NULL, NULL, 0, 1, NULL, x, NULL);
        for (int k = 0; k < 784; k++)
            sum += lrintf(x[k] * 255);
        CHECKF(rc == 0 && sum == sets[s].sum0, "Fashion-MNIST %s: first image's pixel sum %ld",
               s ? "test" : "train", sum);
        vv_dataset_free(ds);
    }
}

/* ---- .npy ------------------------------------------------------------------ */

static void test_npy_sets(void)
{
    char im[512], lb[512], bad[512];
    tp(im, sizeof im, "images.npy");
    tp(lb, sizeof lb, "labels.npy");
    tp(bad, sizeof bad, "bad.npy");
    vv_dataset *ds = NULL;
    int rc;

    /* uint8, N x C x H x W, int64 labels. */
    unsigned char u8[2 * 2 * 3 * 4];
    for (int i = 0; i < 48; i++)
        u8[i] = (unsigned char)(i * 11);
    int64_t s4[4] = {2, 2, 3, 4}, s1[1] = {2};
    int64_t l64[2] = {4, 1};
    write_npy(im, "|u1", 0, 4, s4, u8, sizeof u8);
    write_npy(lb, "<i8", 0, 1, s1, l64, sizeof l64);
    rc = vv_dataset_open_npy(im, lb, &ds);
    CHECKF(rc == 0 && ds, "npy: uint8 4-D images open (%s)", why(rc));
    if (ds) {
        CHECK(vv_dataset_count(ds) == 2 && vv_dataset_channels(ds) == 2 &&
                  vv_dataset_height(ds) == 3 && vv_dataset_width(ds) == 4 &&
                  vv_dataset_classes(ds) == 5 && vv_dataset_labels(ds)[0] == 4 &&
                  vv_dataset_labels(ds)[1] == 1,
              "npy: shape 2 x 2 x 3 x 4, labels 4 and 1, 5 classes");
        float *x = all_pixels(ds);
        int ok = x != NULL;
        for (int i = 0; ok && i < 48; i++)
            ok = x[i] == (float)u8[i] / 255.0f;
        CHECK(ok, "npy: uint8 pixels / 255");
        free(x);
        vv_dataset_free(ds);
    }

    /* uint8 N x H x W -> one channel; uint8 labels. */
    int64_t s3[3] = {4, 3, 4}, s1b[1] = {4};
    unsigned char l8[4] = {0, 2, 2, 1};
    write_npy(im, "|u1", 0, 3, s3, u8, sizeof u8);
    write_npy(lb, "|u1", 0, 1, s1b, l8, sizeof l8);
    rc = vv_dataset_open_npy(im, lb, &ds);
    CHECKF(rc == 0 && ds && vv_dataset_channels(ds) == 1 && vv_dataset_count(ds) == 4 &&
               vv_dataset_classes(ds) == 3,
           "npy: N x H x W is one channel; uint8 labels (%s)", why(rc));
    vv_dataset_free(ds);

    /* float32 taken as is, or / 255 with scale255; int16 and uint64 labels. */
    float f4[2 * 1 * 2 * 2] = {0.5f, -1.25f, 3e5f, 7.0f, 0, 1, 2, 255};
    int64_t sf[4] = {2, 1, 2, 2};
    int16_t l16[2] = {0, 300};
    write_npy(im, "<f4", 0, 4, sf, f4, sizeof f4);
    write_npy(lb, "<i2", 0, 1, s1, l16, sizeof l16);
    rc = vv_dataset_open_npy(im, lb, &ds);
    CHECKF(rc == 0 && ds && vv_dataset_classes(ds) == 301, "npy: float32 images, int16 labels (%s)",
           why(rc));
    if (ds) {
        float x[8];
        vv_preprocess pp = {0};
        rc = vv_dataset_batch(ds, &pp, NULL, 0, 2, NULL, x, NULL);
        CHECK(rc == 0 && !memcmp(x, f4, sizeof x), "npy: float32 pixels taken as is");
        pp.scale255 = 1;
        rc = vv_dataset_batch(ds, &pp, NULL, 0, 2, NULL, x, NULL);
        int ok = rc == 0;
        for (int i = 0; ok && i < 8; i++)
            ok = x[i] == f4[i] / 255.0f;
        CHECK(ok, "npy: float32 pixels / 255 with scale255");
        vv_dataset_free(ds);
    }
    double f8[8] = {0.1, 0.2, 0.3, 1e-3, 1, 2, 3, 4};
    uint64_t lu64[2] = {7, 0};
    write_npy(im, "<f8", 0, 4, sf, f8, sizeof f8);
    write_npy(lb, "<u8", 0, 1, s1, lu64, sizeof lu64);
    rc = vv_dataset_open_npy(im, lb, &ds);
    CHECKF(rc == 0 && ds, "npy: float64 images, uint64 labels (%s)", why(rc));
    if (ds) {
        float x[8];
        int ok = vv_dataset_batch(ds, NULL, NULL, 0, 2, NULL, x, NULL) == 0;
        for (int i = 0; ok && i < 8; i++)
            ok = x[i] == (float)f8[i];
        CHECK(ok && vv_dataset_labels(ds)[0] == 7, "npy: float64 converted to float32");
        vv_dataset_free(ds);
    }

    /* Malformed. */
    int32_t l32[4] = {1, 0, -1, 2};
    write_npy(im, "|u1", 0, 3, s3, u8, sizeof u8);
    write_npy(bad, "<i4", 0, 1, s1b, l32, sizeof l32);
    ds = (vv_dataset *)1;
    rc = vv_dataset_open_npy(im, bad, &ds);
    expect(rc, VV_EINVAL, bad, "row 2", "npy: a negative label");
    CHECK(ds == NULL, "npy: *out is NULL on failure");
    uint64_t lbig[2] = {1, (uint64_t)1 << 63};
    write_npy(bad, "<u8", 0, 1, s1, lbig, sizeof lbig);
    write_npy(im, "|u1", 0, 4, s4, u8, sizeof u8);
    rc = vv_dataset_open_npy(im, bad, &ds);
    expect(rc, VV_EINVAL, bad, "row 1", "npy: a label beyond int32");
    write_npy(bad, "<i4", 0, 1, s1b, l32, sizeof l32);
    rc = vv_dataset_open_npy(im, bad, &ds);
    expect(rc, VV_ESHAPE, bad, "4 labels", "npy: 4 labels for 2 images");
    int64_t s2[2] = {2, 2};
    write_npy(bad, "<i4", 0, 2, s2, l32, sizeof l32);
    rc = vv_dataset_open_npy(im, bad, &ds);
    expect(rc, VV_ESHAPE, bad, "1-D", "npy: 2-D labels");
    write_npy(bad, "<f4", 0, 1, s1, f4, 8);
    rc = vv_dataset_open_npy(im, bad, &ds);
    expect(rc, VV_EDTYPE, bad, "'<f4'", "npy: float labels");
    int64_t s2i[2] = {2, 24};
    write_npy(bad, "|u1", 0, 2, s2i, u8, sizeof u8);
    rc = vv_dataset_open_npy(bad, lb, &ds);
    expect(rc, VV_ESHAPE, bad, "2-D", "npy: 2-D images");
    int64_t s5[5] = {2, 2, 3, 2, 2};
    write_npy(bad, "|u1", 0, 5, s5, u8, sizeof u8);
    rc = vv_dataset_open_npy(bad, lb, &ds);
    expect(rc, VV_ESHAPE, bad, "5-D", "npy: 5-D images");
    int64_t s0[4] = {2, 0, 3, 4};
    write_npy(bad, "|u1", 0, 4, s0, u8, 0);
    rc = vv_dataset_open_npy(bad, lb, &ds);
    expect(rc, VV_ESHAPE, bad, "need 1..", "npy: zero channels");
    write_npy(bad, "<i4", 0, 3, (int64_t[3]){1, 3, 4}, u8, 48);
    rc = vv_dataset_open_npy(bad, lb, &ds);
    expect(rc, VV_EDTYPE, bad, "'<i4'", "npy: int32 images");
    write_npy(bad, ">f4", 0, 4, sf, f4, sizeof f4);
    rc = vv_dataset_open_npy(bad, lb, &ds);
    expect(rc, VV_EDTYPE, bad, "big-endian", "npy: big-endian images");
    float fnan[8] = {0, 1, 2, 3, 4, NAN, 6, 7};
    write_npy(bad, "<f4", 0, 4, sf, fnan, sizeof fnan);
    write_npy(lb, "<i8", 0, 1, s1, l64, sizeof l64);
    rc = vv_dataset_open_npy(bad, lb, &ds);
    expect(rc, VV_ENONFINITE, bad, "image 1", "npy: NaN in image 1");
    write_npy(bad, "|u1", 0, 4, s4, u8, sizeof u8 - 1);
    rc = vv_dataset_open_npy(bad, lb, &ds);
    expect(rc, VV_EFORMAT, bad, "truncated", "npy: images one byte short");
    write_npy(bad, "|u1", 1, 4, s4, u8, sizeof u8);
    rc = vv_dataset_open_npy(bad, lb, &ds);
    expect(rc, VV_EFORMAT, bad, "Fortran", "npy: Fortran-order images");
    write_npy(bad, "<i8", 1, 1, s1, l64, sizeof l64);
    rc = vv_dataset_open_npy(im, bad, &ds);
    CHECKF(rc == 0, "npy: Fortran-order 1-D labels are fine (%s)", why(rc));
    vv_dataset_free(ds);
    write_bytes(bad, "\x93NUMPX", 6);
    rc = vv_dataset_open_npy(bad, lb, &ds);
    expect(rc, VV_EFORMAT, bad, "not a .npy file", "npy: wrong magic");
    char miss[512];
    tp(miss, sizeof miss, "missing.npy");
    rc = vv_dataset_open_npy(im, miss, &ds);
    expect(rc, VV_ENOFILE, miss, NULL, "npy: a missing labels file");

    /* vv_npy_read_raw itself: dtype and shape as stored, zeroed on failure. */
    vv_npy_raw r;
    rc = vv_npy_read_raw(im, &r);
    CHECK(rc == 0 && r.kind == 'u' && r.itemsize == 1 && !strcmp(r.descr, "|u1") && r.ndim == 4 &&
              r.shape[0] == 2 && r.shape[3] == 4 && !memcmp(r.data, u8, sizeof u8),
          "vv_npy_read_raw: uint8 4-D as stored");
    vv_npy_raw_free(&r);
    vv_npy_raw_free(NULL);

    /* Images alone (vvd forward): every label 0, the same pixels. */
    rc = vv_dataset_open_npy_images(im, &ds);
    CHECKF(rc == 0 && ds && vv_dataset_count(ds) == 2 && vv_dataset_channels(ds) == 2 &&
               vv_dataset_classes(ds) == 1 && vv_dataset_labels(ds)[0] == 0 &&
               vv_dataset_labels(ds)[1] == 0,
           "npy images alone: 2 x 2 x 3 x 4, every label 0 (%s)", why(rc));
    if (ds) {
        float *x = all_pixels(ds);
        int ok = x != NULL;
        for (int i = 0; ok && i < 48; i++)
            ok = x[i] == (float)u8[i] / 255.0f;
        CHECK(ok, "npy images alone: the pixels");
        free(x);
        vv_dataset_free(ds);
    }
    rc = vv_dataset_open_npy_images(miss, &ds);
    CHECK(rc == VV_ENOFILE && !ds, "npy images alone: a missing file is ENOFILE");
    write_npy(bad, "<c8", 0, 1, s1, f8, 16);
    rc = vv_npy_read_raw(bad, &r);
    CHECK(rc == VV_EDTYPE && r.data == NULL && r.ndim == 0, "vv_npy_read_raw: complex is EDTYPE");
    unlink(im);
    unlink(lb);
    unlink(bad);
}

int main(void)
{
    const char *t = getenv("VV_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", t && *t ? t : "/tmp");
    test_cifar();
    test_idx();
    test_fashion_mnist();
    test_npy_sets();
    return tap_done();
}
