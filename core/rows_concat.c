/* rows_concat.c - one row source over the shards of a matrix: the rows of
 * each part in turn, read through vv_rows_from_callback. */
#include "vv/array.h"
#include "vv/err.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct concat {
    vv_rows **parts;
    int64_t *start; /* start[i]: the first row of part i; start[nparts] = rows in all */
    int nparts;
} concat;

static void concat_free(void *ctx)
{
    concat *c = ctx;
    for (int i = 0; i < c->nparts; i++)
        vv_rows_free(c->parts[i]);
    free(c->parts);
    free(c->start);
    free(c);
}

static int concat_read(void *ctx, int64_t r0, int64_t nrows, double *dst)
{
    concat *c = ctx;
    int i = 0;
    while (i + 1 < c->nparts && c->start[i + 1] <= r0)
        i++;
    int64_t cols = vv_rows_cols(c->parts[0]);
    while (nrows > 0 && i < c->nparts) {
        int64_t at = r0 - c->start[i], left = c->start[i + 1] - r0;
        int64_t m = nrows < left ? nrows : left;
        int rc = m > 0 ? vv_rows_read(c->parts[i], at, m, dst) : 0;
        if (rc < 0)
            return rc;
        dst += m * cols;
        r0 += m;
        nrows -= m;
        i++;
    }
    return 0;
}

int vv_rows_concat(const char *name, vv_rows **parts, int nparts, vv_rows **out)
{
    *out = NULL;
    concat *c = calloc(1, sizeof *c);
    int rc = 0;
    if (c) {
        c->parts = calloc((size_t)(nparts > 0 ? nparts : 1), sizeof *c->parts);
        c->start = calloc((size_t)nparts + 1, sizeof *c->start);
    }
    if (!c || !c->parts || !c->start) {
        for (int i = 0; i < nparts; i++)
            vv_rows_free(parts[i]);
        if (c) {
            free(c->parts);
            free(c->start);
            free(c);
        }
        return vv_fail(VV_ENOMEM, "%s: out of memory", name);
    }
    for (int i = 0; i < nparts; i++)
        c->parts[i] = parts[i];
    c->nparts = nparts;
    if (nparts < 1)
        rc = vv_fail(VV_EINVAL, "%s: no shards", name);
    for (int i = 0; rc == 0 && i < nparts; i++) {
        if (vv_rows_cols(parts[i]) != vv_rows_cols(parts[0]))
            rc = vv_fail(VV_ESHAPE, "%s: shard %s has %lld columns but %s has %lld", name,
                         vv_rows_name(parts[i]), (long long)vv_rows_cols(parts[i]),
                         vv_rows_name(parts[0]), (long long)vv_rows_cols(parts[0]));
        c->start[i + 1] = c->start[i] + vv_rows_n(parts[i]);
    }
    if (rc == 0)
        rc = vv_rows_from_callback(name, c->start[nparts], vv_rows_cols(parts[0]), concat_read, c,
                                   concat_free, out);
    if (rc < 0)
        concat_free(c);
    return rc;
}
