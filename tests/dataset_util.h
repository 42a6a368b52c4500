/* tests/dataset_util.h - helpers of the data-set tests (test_dataset.c,
 * test_preprocess.c): temporary paths, error checks, whole-set pixels and
 * hand-written .npy files. */
#ifndef VV_TEST_DATASET_UTIL_H
#define VV_TEST_DATASET_UTIL_H

#include "file_util.h"
#include "tap.h"
#include "vv/dataset.h"
#include "vv/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void tp(char *buf, size_t cap, const char *name)
{
    tmp_path(buf, cap, "ds", name);
}

/* Checks that rc is code and that the detail contains a and b (b may be
 * NULL). */
static void expect(int rc, int code, const char *a, const char *b, const char *what)
{
    const char *d = vv_err_detail();
    CHECKF(rc == code, "%s: %s (want %s)", what, vv_err_name(rc), vv_err_name(code));
    CHECKF(strstr(d, a) && (!b || strstr(d, b)), "%s: detail names '%s'%s%s: %s", what, a,
           b ? " and " : "", b ? b : "", d);
}

/* The detail of a failure, for a check's description; "ok" on success. */
static const char *why(int rc)
{
    return rc ? vv_err_detail() : "ok";
}

/* The whole data set preprocessed with pp = NULL (scale only), malloc'd. */
static float *all_pixels(const vv_dataset *ds)
{
    int64_t n = vv_dataset_count(ds);
    size_t per = (size_t)vv_dataset_channels(ds) * (size_t)vv_dataset_height(ds) *
                 (size_t)vv_dataset_width(ds);
    float *x = malloc((size_t)n * per * sizeof(float));
    if (x && vv_dataset_batch(ds, NULL, NULL, 0, n, NULL, x, NULL) != 0) {
        free(x);
        x = NULL;
    }
    return x;
}

/* ---- .npy files built by hand -------------------------------------------- */

/* Writes a version 1.0 .npy file with the given descr, shape and raw data. */
static int write_npy(const char *path, const char *descr, int fortran, int ndim,
                     const int64_t *shape, const void *data, size_t nbytes)
{
    char dict[256], dims[128] = "";
    size_t o = 0;
    for (int i = 0; i < ndim; i++)
        o += (size_t)snprintf(dims + o, sizeof dims - o, "%lld%s", (long long)shape[i],
                              ndim == 1 || i < ndim - 1 ? ", " : "");
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }",
                     descr, fortran ? "True" : "False", dims);
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64, hlen = total - 10;
    unsigned char *buf = malloc(total + nbytes);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', hlen - (size_t)n - 1);
    buf[total - 1] = '\n';
    if (nbytes)
        memcpy(buf + total, data, nbytes);
    int rc = write_bytes(path, buf, total + nbytes);
    free(buf);
    return rc;
}

#endif
