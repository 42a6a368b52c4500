/* dataset_resize.c - preprocessing of data-set batches (contract in
 * vv/dataset.h): scale to [0, 1], antialiased bilinear resize, center or
 * random crop, horizontal flip and per-channel normalisation.
 *
 * The resize is torch.nn.functional.interpolate(mode="bilinear",
 * align_corners=False, antialias=True), the resize torchvision applies to
 * tensors.  It is separable: each output column (row) is a weighted sum of
 * a few input columns (rows) under a triangle filter centred on the output
 * pixel's centre mapped into the input.  When shrinking, the triangle is
 * widened by the scale factor, so that every input pixel contributes (the
 * antialiasing); when enlarging it keeps unit width, which is plain
 * bilinear interpolation.  Weights are normalised over the input pixels
 * that exist, so borders need no padding.  Per axis the weights depend
 * only on the sizes, so one table per axis serves a whole batch; the
 * arithmetic (float32, the same operation order) follows PyTorch's CPU
 * kernel, so results agree to float32 rounding.
 *
 * Only the part of the resized image that the crop window keeps is
 * computed: the horizontal pass (done first, as PyTorch does) produces the
 * window's columns for the input rows the window's rows need, and the
 * vertical pass produces the window's rows from those. */
#include "dataset_internal.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest side of a resized or cropped image, and the largest padding. */
#define PP_MAX_SIDE 65536

/* ---- Sizes and checks -------------------------------------------------------- */

/* The size of an h x w image after pp's resize, by torchvision's rule: the
 * shorter side becomes resize, the longer int(resize * long / short). */
static void resized_size(const vv_preprocess *pp, int h, int w, int64_t *rh, int64_t *rw)
{
    *rh = h;
    *rw = w;
    if (pp->resize <= 0)
        return;
    /* resize * long is exact in a double; the division then rounds once,
     * as Python's true division does. */
    if (w <= h) {
        *rw = pp->resize;
        *rh = (int64_t)((double)pp->resize * h / w);
    } else {
        *rh = pp->resize;
        *rw = (int64_t)((double)pp->resize * w / h);
    }
}

void vv_preprocess_shape(const vv_dataset *ds, const vv_preprocess *pp, int *c, int *h, int *w)
{
    static const vv_preprocess none;
    int64_t rh = 0, rw = 0;
    if (!pp)
        pp = &none;
    if (ds)
        resized_size(pp, ds->h, ds->w, &rh, &rw);
    if (pp->crop > 0)
        rh = rw = pp->crop;
    if (c)
        *c = ds ? ds->c : 0;
    if (h)
        *h = rh > PP_MAX_SIDE ? PP_MAX_SIDE : (int)rh;
    if (w)
        *w = rw > PP_MAX_SIDE ? PP_MAX_SIDE : (int)rw;
}

vv_err vv_preprocess_check(const vv_dataset *ds, const vv_preprocess *pp)
{
    int64_t rh, rw;

    if (!ds)
        return vv_fail(VV_EINVAL, "vv_preprocess_check: the data set is NULL");
    if (!pp)
        return VV_OK;
    if (pp->resize < 0 || pp->resize > PP_MAX_SIDE)
        return vv_fail(VV_EINVAL, "resize = %d: must lie in [0, %d]", pp->resize, PP_MAX_SIDE);
    if (pp->crop < 0 || pp->crop > PP_MAX_SIDE)
        return vv_fail(VV_EINVAL, "crop = %d: must lie in [0, %d]", pp->crop, PP_MAX_SIDE);
    if (pp->pad < 0 || pp->pad > PP_MAX_SIDE)
        return vv_fail(VV_EINVAL, "pad = %d: must lie in [0, %d]", pp->pad, PP_MAX_SIDE);
    if (pp->nnorm < 0 || pp->nnorm > 4)
        return vv_fail(VV_EINVAL, "nnorm = %d: must lie in [0, 4]", pp->nnorm);
    resized_size(pp, ds->h, ds->w, &rh, &rw);
    if (rh > PP_MAX_SIDE || rw > PP_MAX_SIDE)
        return vv_fail(VV_EINVAL,
                       "resize = %d: turns the %d x %d images into %" PRId64 " x %" PRId64
                       ", beyond %d pixels a side",
                       pp->resize, ds->h, ds->w, rh, rw, PP_MAX_SIDE);
    if (pp->random_crop && pp->crop == 0)
        return vv_fail(VV_EINVAL, "random_crop: needs a crop size (crop = 0)");
    if (pp->pad > 0 && !pp->random_crop)
        return vv_fail(VV_EINVAL, "pad = %d: padding applies only to a random crop", pp->pad);
    if (pp->crop > 0) {
        int64_t ah = rh + (pp->random_crop ? 2 * (int64_t)pp->pad : 0);
        int64_t aw = rw + (pp->random_crop ? 2 * (int64_t)pp->pad : 0);
        int padded = pp->random_crop && pp->pad > 0, resized = pp->resize > 0;
        if (pp->crop > ah || pp->crop > aw)
            return vv_fail(
                VV_EINVAL, "crop = %d: larger than the %" PRId64 " x %" PRId64 " image%s%s%s",
                pp->crop, ah, aw, resized || padded ? " after " : "",
                resized ? (padded ? "resizing and " : "resizing") : "", padded ? "padding" : "");
    }
    if (pp->nnorm > 0 && pp->nnorm != ds->c)
        return vv_fail(VV_EINVAL, "nnorm = %d: the images have %d channel%s", pp->nnorm, ds->c,
                       ds->c == 1 ? "" : "s");
    for (int c = 0; c < pp->nnorm; c++) {
        if (!isfinite(pp->mean[c]))
            return vv_fail(VV_EINVAL, "mean[%d] = %g: must be finite", c, (double)pp->mean[c]);
        if (!isfinite(pp->std[c]) || pp->std[c] == 0)
            return vv_fail(VV_EINVAL, "std[%d] = %g: must be finite and non-zero", c,
                           (double)pp->std[c]);
    }
    return VV_OK;
}

/* ---- Resize weights ---------------------------------------------------------- */

/* One axis of a resize from n_in to n_out pixels: output o is the sum of
 * w[o * taps + j] * in[first[o] + j] for j < count[o]. */
typedef struct {
    int taps;
    int *first;
    int *count;
    float *w;
} axis;

static void axis_free(axis *a)
{
    free(a->first);
    free(a->count);
    free(a->w);
    memset(a, 0, sizeof *a);
}

/* PyTorch's antialiasing bilinear filter: a triangle of half-width 1. */
static float triangle(float x)
{
    if (x < 0)
        x = -x;
    return x < 1 ? 1 - x : 0;
}

/* Builds the table of an axis; 0 or VV_ENOMEM.  Equal sizes give the
 * identity (one tap of weight 1), which leaves the pixels bit-exact. */
static int axis_init(axis *a, int n_in, int n_out)
{
    /* The scale and support in float32 and the mixed float/double
     * expressions below mirror PyTorch's _compute_weights_aa, so that the
     * windows (first, count) are the same and the weights agree to float32
     * rounding. */
    float scale = (float)n_in / (float)n_out;
    float support = scale >= 1.0f ? scale : 1.0f;
    float invscale = scale >= 1.0f ? (float)(1.0 / scale) : 1.0f;
    a->taps = n_in == n_out ? 1 : (int)ceilf(support) * 2 + 1;
    a->first = malloc((size_t)n_out * sizeof(int));
    a->count = malloc((size_t)n_out * sizeof(int));
    a->w = calloc((size_t)n_out * (size_t)a->taps, sizeof(float));
    if (!a->first || !a->count || !a->w) {
        axis_free(a);
        return vv_fail(VV_ENOMEM, "out of memory for resize weights (%d -> %d)", n_in, n_out);
    }
    for (int o = 0; o < n_out; o++) {
        float *w = a->w + (size_t)o * (size_t)a->taps;
        if (n_in == n_out) {
            a->first[o] = o;
            a->count[o] = 1;
            w[0] = 1;
            continue;
        }
        float center = (float)(scale * (o + 0.5));
        int64_t lo = (int64_t)(center - support + 0.5);
        int64_t hi = (int64_t)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > n_in)
            hi = n_in;
        int n = (int)(hi - lo);
        if (n > a->taps) /* cannot happen: the window spans 2 * support + 1 */
            n = a->taps;
        float total = 0;
        for (int j = 0; j < n; j++) {
            w[j] = triangle((float)(((float)(j + lo) - center + 0.5) * invscale));
            total += w[j];
        }
        if (total != 0)
            for (int j = 0; j < n; j++)
                w[j] /= total;
        a->first[o] = (int)lo;
        a->count[o] = n;
    }
    return 0;
}

/* ---- Batches ----------------------------------------------------------------- */

/* What a batch needs besides the images: sizes, weight tables, the uint8
 * scale table and scratch buffers for one image. */
typedef struct {
    const vv_dataset *ds;
    const vv_preprocess *pp;
    int rh, rw; /* resized size */
    int oh, ow; /* output size */
    axis ax, ay;
    float lut[256];
    float *src; /* c x h x w, scaled */
    float *tmp; /* c x h x ow: the horizontal pass */
    float *row; /* ow: one row of the vertical pass */
} plan;

static void plan_free(plan *p)
{
    axis_free(&p->ax);
    axis_free(&p->ay);
    free(p->src);
    free(p->tmp);
    free(p->row);
}

static int plan_init(plan *p, const vv_dataset *ds, const vv_preprocess *pp)
{
    int64_t rh, rw;
    int c;
    memset(p, 0, sizeof *p);
    p->ds = ds;
    p->pp = pp;
    resized_size(pp, ds->h, ds->w, &rh, &rw);
    p->rh = (int)rh;
    p->rw = (int)rw;
    vv_preprocess_shape(ds, pp, &c, &p->oh, &p->ow);
    for (int i = 0; i < 256; i++)
        p->lut[i] = (float)i / 255.0f;
    size_t plane = (size_t)ds->h * (size_t)ds->w;
    p->src = malloc((size_t)ds->c * plane * sizeof(float));
    p->tmp = malloc((size_t)ds->c * (size_t)ds->h * (size_t)p->ow * sizeof(float));
    p->row = malloc((size_t)p->ow * sizeof(float));
    if (!p->src || !p->tmp || !p->row) {
        plan_free(p);
        return vv_fail(VV_ENOMEM, "out of memory for a batch of %d x %d images", p->oh, p->ow);
    }
    int rc = axis_init(&p->ax, ds->w, p->rw);
    if (rc == 0)
        rc = axis_init(&p->ay, ds->h, p->rh);
    if (rc < 0)
        plan_free(p);
    return rc;
}

/* A uniform integer in [0, k). */
static int draw(vv_rng *rng, int k)
{
    int v = (int)(vv_rng_uniform(rng) * k);
    return v < k ? v : k - 1;
}

/* Preprocesses image i into out (c x oh x ow).  The crop window's top-left
 * corner lies at (ty, tx) in the resized image (negative inside the
 * padding); flip mirrors the window. */
static void one_image(plan *p, int64_t i, int ty, int tx, int flip, float *out)
{
    const vv_dataset *ds = p->ds;
    const vv_preprocess *pp = p->pp;
    int C = ds->c, H = ds->h, W = ds->w, oh = p->oh, ow = p->ow;
    size_t plane = (size_t)H * (size_t)W, per = (size_t)C * plane;

    /* 1. Scale. */
    if (ds->u8) {
        const uint8_t *s = ds->u8 + (size_t)i * per;
        for (size_t k = 0; k < per; k++)
            p->src[k] = p->lut[s[k]];
    } else {
        const float *s = ds->f32 + (size_t)i * per;
        if (pp->scale255)
            for (size_t k = 0; k < per; k++)
                p->src[k] = s[k] / 255.0f;
        else
            memcpy(p->src, s, per * sizeof(float));
    }

    /* The window's part inside the resized image: rows [y0, y1), columns
     * [x0, x1); the rest of the window is padding. */
    int y0 = ty > 0 ? ty : 0, y1 = ty + oh < p->rh ? ty + oh : p->rh;
    int x0 = tx > 0 ? tx : 0, x1 = tx + ow < p->rw ? tx + ow : p->rw;
    if (ty < 0 || tx < 0 || ty + oh > p->rh || tx + ow > p->rw)
        memset(out, 0, (size_t)C * (size_t)oh * (size_t)ow * sizeof(float));

    if (y1 > y0 && x1 > x0) {
        const axis *ax = &p->ax, *ay = &p->ay;
        int nx = x1 - x0;
        /* Input rows the window's rows draw on; windows only move forward. */
        int r0 = ay->first[y0], r1 = ay->first[y1 - 1] + ay->count[y1 - 1];
        for (int c = 0; c < C; c++) {
            const float *s = p->src + (size_t)c * plane;
            float *t = p->tmp + (size_t)c * (size_t)H * (size_t)ow;
            /* 2a. Resize along the rows (horizontal pass). */
            for (int y = r0; y < r1; y++) {
                const float *sr = s + (size_t)y * (size_t)W;
                float *tr = t + (size_t)y * (size_t)ow;
                for (int k = 0; k < nx; k++) {
                    int x = x0 + k;
                    const float *w = ax->w + (size_t)x * (size_t)ax->taps;
                    const float *v = sr + ax->first[x];
                    float acc = v[0] * w[0];
                    for (int j = 1; j < ax->count[x]; j++)
                        acc += v[j] * w[j];
                    tr[k] = acc;
                }
            }
            /* 2b. Resize along the columns (vertical pass), then 3-4 place
             * the row in the window, mirrored when flipping. */
            float *o = out + (size_t)c * (size_t)oh * (size_t)ow;
            for (int y = y0; y < y1; y++) {
                const float *w = ay->w + (size_t)y * (size_t)ay->taps;
                const float *v = t + (size_t)ay->first[y] * (size_t)ow;
                for (int k = 0; k < nx; k++)
                    p->row[k] = v[k] * w[0];
                for (int j = 1; j < ay->count[y]; j++) {
                    const float *vj = v + (size_t)j * (size_t)ow;
                    for (int k = 0; k < nx; k++)
                        p->row[k] += vj[k] * w[j];
                }
                float *orow = o + (size_t)(y - ty) * (size_t)ow;
                if (flip)
                    for (int k = 0; k < nx; k++)
                        orow[ow - 1 - (x0 - tx + k)] = p->row[k];
                else
                    memcpy(orow + (x0 - tx), p->row, (size_t)nx * sizeof(float));
            }
        }
    }

    /* 5. Normalise, padding included (it is black before normalising). */
    for (int c = 0; c < pp->nnorm; c++) {
        float m = pp->mean[c], sd = pp->std[c];
        float *o = out + (size_t)c * (size_t)oh * (size_t)ow;
        for (size_t k = 0; k < (size_t)oh * (size_t)ow; k++)
            o[k] = (o[k] - m) / sd;
    }
}

vv_err vv_dataset_batch(const vv_dataset *ds, const vv_preprocess *pp, const int64_t *idx,
                        int64_t start, int64_t count, vv_rng *rng, float *x, int32_t *y)
{
    static const vv_preprocess none;
    plan p;
    int rc;

    if (!ds)
        return vv_fail(VV_EINVAL, "vv_dataset_batch: the data set is NULL");
    if (count < 0)
        return vv_fail(VV_EINVAL, "count = %" PRId64 ": must be >= 0", count);
    if (!pp)
        pp = &none;
    if ((rc = vv_preprocess_check(ds, pp)) < 0)
        return rc;
    if ((pp->random_crop || pp->hflip) && !rng)
        return vv_fail(VV_EINVAL, "rng: random_crop and hflip need a random generator");
    if (count == 0)
        return VV_OK;
    if (!x)
        return vv_fail(VV_EINVAL, "vv_dataset_batch: x is NULL");
    if (idx) {
        for (int64_t k = 0; k < count; k++)
            if (idx[k] < 0 || idx[k] >= ds->n)
                return vv_fail(VV_EINVAL,
                               "idx[%" PRId64 "] = %" PRId64 ": outside the %" PRId64 " images", k,
                               idx[k], ds->n);
    } else if (start < 0 || start > ds->n || count > ds->n - start) {
        return vv_fail(VV_EINVAL,
                       "start = %" PRId64 ", count = %" PRId64 ": outside the %" PRId64 " images",
                       start, count, ds->n);
    }
    if ((rc = plan_init(&p, ds, pp)) < 0)
        return rc;
    size_t per = (size_t)ds->c * (size_t)p.oh * (size_t)p.ow;
    for (int64_t k = 0; k < count; k++) {
        int64_t i = idx ? idx[k] : start + k;
        int ty = 0, tx = 0, flip = 0;
        if (pp->random_crop) {
            ty = draw(rng, p.rh + 2 * pp->pad - p.oh + 1) - pp->pad;
            tx = draw(rng, p.rw + 2 * pp->pad - p.ow + 1) - pp->pad;
        } else if (pp->crop > 0) {
            /* torchvision's CenterCrop: int(round((h - crop) / 2.0)), and
             * Python rounds halves to even, as rint does. */
            ty = (int)rint((p.rh - p.oh) / 2.0);
            tx = (int)rint((p.rw - p.ow) / 2.0);
        }
        if (pp->hflip)
            flip = vv_rng_uniform(rng) < 0.5;
        one_image(&p, i, ty, tx, flip, x + (size_t)k * per);
        if (y)
            y[k] = ds->labels[i];
    }
    plan_free(&p);
    return VV_OK;
}
