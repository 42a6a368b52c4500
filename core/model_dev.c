/* model_dev.c - a model's weights resident on a device, and the eval-mode
 * forward pass there (vv/model.h).
 *
 * The same schedule as model_forward.c: a convolution is im2col (the whole
 * batch into one matrix) and one sgemm, with its bias, a
 * following batch norm and ReLU applied by one affine_act pass that also
 * reorders the sgemm's (channel x sample) layout into (sample x channel);
 * a batch norm alone or a ReLU alone is an affine_act in place; pools and
 * linear layers are one operation each.  Batch norms are folded into
 * per-channel scale and shift once, at upload. */
#include "model_internal.h"
#include "vv/backend.h"
#include "vv/err.h"
#include "vv/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct dev_layer {
    float *weight;        /* conv: oc x (ic k k); linear: out x in */
    float *bias;          /* conv: its bias (shift alone); linear: its bias; NULL if none */
    float *scale, *shift; /* conv followed by a batch norm: the folded pair; batch norm: its own */
} dev_layer;

struct vv_model_dev {
    const vv_model *m;
    vv_backend *be;
    dev_layer *l;
    size_t bytes;
    /* Batch buffers, grown as needed: two activations and the conv scratch. */
    float *a, *b, *col;
    int64_t cap_act, cap_col; /* floats */
};

static float *up(vv_model_dev *md, const float *h, int64_t n, int *rc)
{
    if (*rc || !h || n <= 0)
        return NULL;
    float *d = md->be->ops->alloc(md->be, (size_t)n * sizeof(float));
    if (!d) {
        *rc = vv_fail(VV_ENOMEM, "model on %s: out of memory for its weights", md->be->ops->name);
        return NULL;
    }
    md->bytes += (size_t)n * sizeof(float);
    *rc = md->be->ops->upload(md->be, d, h, (size_t)n * sizeof(float));
    return d;
}

void vv_model_dev_close(vv_model_dev *md)
{
    if (!md)
        return;
    const vv_backend_ops *op = md->be->ops;
    for (int i = 0; md->l && i < md->m->n; i++) {
        op->free(md->be, md->l[i].weight);
        op->free(md->be, md->l[i].bias);
        op->free(md->be, md->l[i].scale);
        op->free(md->be, md->l[i].shift);
    }
    op->free(md->be, md->a);
    op->free(md->be, md->b);
    op->free(md->be, md->col);
    free(md->l);
    free(md);
}

int vv_model_dev_open(const vv_model *m, vv_backend *be, vv_model_dev **out)
{
    *out = NULL;
    if (!m->finished)
        return vv_fail(VV_EINVAL, "model on a device: the model is not finished");
    vv_model_dev *md = calloc(1, sizeof *md);
    if (!md || !(md->l = calloc((size_t)(m->n > 0 ? m->n : 1), sizeof *md->l))) {
        free(md);
        return vv_fail(VV_ENOMEM, "out of memory");
    }
    md->m = m;
    md->be = be;
    int rc = 0;
    float *sc = NULL, *sh = NULL;
    for (int i = 0; i < m->n && rc == 0; i++) {
        const vv_layer *l = &m->layers[i];
        dev_layer *d = &md->l[i];
        if (l->type == VV_LAYER_CONV2D) {
            int64_t ckk = (int64_t)l->in_ch * l->kernel * l->kernel;
            d->weight = up(md, l->weight, (int64_t)l->oc * ckk, &rc);
            d->bias = up(md, l->bias_v, l->oc, &rc);
            if (i + 1 < m->n && m->layers[i + 1].type == VV_LAYER_BATCHNORM2D) {
                /* As model_forward.c's conv: y = conv * scale + shift. */
                sc = malloc((size_t)l->oc * sizeof *sc);
                sh = malloc((size_t)l->oc * sizeof *sh);
                if (!sc || !sh) {
                    rc = vv_fail(VV_ENOMEM, "out of memory");
                    break;
                }
                vv__conv_affine(l, &m->layers[i + 1], sc, sh);
                d->scale = up(md, sc, l->oc, &rc);
                d->shift = up(md, sh, l->oc, &rc);
                free(sc);
                free(sh);
                sc = sh = NULL;
            }
        } else if (l->type == VV_LAYER_BATCHNORM2D) {
            sc = malloc((size_t)l->c * sizeof *sc);
            sh = malloc((size_t)l->c * sizeof *sh);
            if (!sc || !sh) {
                rc = vv_fail(VV_ENOMEM, "out of memory");
                break;
            }
            for (int c = 0; c < l->c; c++) {
                sc[c] = l->weight[c] / sqrtf(l->running_var[c] + l->eps);
                sh[c] = l->bias_v[c] - l->running_mean[c] * sc[c];
            }
            d->scale = up(md, sc, l->c, &rc);
            d->shift = up(md, sh, l->c, &rc);
            free(sc);
            free(sh);
            sc = sh = NULL;
        } else if (l->type == VV_LAYER_LINEAR) {
            d->weight = up(md, l->weight, (int64_t)l->out_ch * l->in_ch, &rc);
            d->bias = up(md, l->bias_v, l->out_ch, &rc);
        }
    }
    free(sc);
    free(sh);
    if (rc < 0) {
        vv_model_dev_close(md);
        return rc;
    }
    *out = md;
    return 0;
}

size_t vv_model_dev_bytes(const vv_model_dev *md)
{
    return md ? md->bytes : 0;
}

vv_backend *vv_model_dev_backend(const vv_model_dev *md)
{
    return md->be;
}

/* Grows the batch buffers for nb samples. */
static int reserve(vv_model_dev *md, int64_t act, int64_t col)
{
    const vv_backend_ops *op = md->be->ops;
    if (act > md->cap_act) {
        op->free(md->be, md->a);
        op->free(md->be, md->b);
        md->a = op->alloc(md->be, (size_t)act * sizeof(float));
        md->b = op->alloc(md->be, (size_t)act * sizeof(float));
        md->cap_act = md->a && md->b ? act : 0;
        if (!md->cap_act)
            return vv_fail(VV_ENOMEM, "forward on %s: out of memory for a batch (%.0f MiB)",
                           op->name, 2.0 * (double)act * 4 / 1048576.0);
    }
    if (col > md->cap_col) {
        op->free(md->be, md->col);
        md->col = op->alloc(md->be, (size_t)col * sizeof(float));
        md->cap_col = md->col ? col : 0;
        if (!md->cap_col)
            return vv_fail(VV_ENOMEM, "forward on %s: out of memory for a batch (%.0f MiB)",
                           op->name, (double)col * 4 / 1048576.0);
    }
    return 0;
}

/* One layer (with a fused batch norm and ReLU) on nb samples. */
static int layer(vv_model_dev *md, int i, const dev_layer *d, int fuse_bn, int relu, const float *x,
                 int64_t nb, float *y)
{
    const vv_layer *l = &md->m->layers[i];
    vv_backend *be = md->be;
    const vv_backend_ops *op = be->ops;
    int64_t in_sz = (int64_t)l->c * l->h * l->w;
    int rc = 0;
    switch (l->type) {
    case VV_LAYER_CONV2D: {
        int64_t ohw = (int64_t)l->oh * l->ow, ncol = nb * ohw;
        int64_t ckk = (int64_t)l->in_ch * l->kernel * l->kernel;
        float *col = md->col, *tmp = md->col + ckk * ncol;
        rc = op->im2col(be, x, nb, l->c, l->h, l->w, l->kernel, l->stride, l->pad, l->oh, l->ow,
                        col, ncol);
        if (rc == 0)
            rc = op->sgemm(be, 0, 0, l->oc, ncol, ckk, 1.0f, d->weight, ckk, col, ncol, 0.0f, tmp,
                           ncol);
        if (rc == 0)
            rc = op->affine_act(be, tmp, ncol, ohw, nb, l->oc, ohw, fuse_bn ? d->scale : NULL,
                                fuse_bn ? d->shift : d->bias, relu, y);
        return rc;
    }
    case VV_LAYER_BATCHNORM2D:
        return op->affine_act(be, x, (int64_t)l->h * l->w, in_sz, nb, l->c, (int64_t)l->h * l->w,
                              d->scale, d->shift, 0, y);
    case VV_LAYER_RELU:
        return op->affine_act(be, x, in_sz, in_sz, nb, 1, in_sz, NULL, NULL, 1, y);
    case VV_LAYER_MAXPOOL2D:
    case VV_LAYER_AVGPOOL2D:
        return op->pool2d(be, x, nb * l->c, l->h, l->w, l->kernel, l->stride, l->pad, l->oh, l->ow,
                          l->type == VV_LAYER_MAXPOOL2D, y);
    case VV_LAYER_ADAPTIVE_AVGPOOL2D:
        return op->adaptive_avg(be, x, nb * l->c, l->h, l->w, l->oh, l->ow, y);
    case VV_LAYER_LINEAR:
        rc = op->sgemm(be, 0, 1, nb, l->out_ch, l->in_ch, 1.0f, x, l->in_ch, d->weight, l->in_ch,
                       0.0f, y, l->out_ch);
        if (rc == 0 && d->bias)
            rc = op->affine_act(be, y, 1, l->out_ch, nb, l->out_ch, 1, NULL, d->bias, 0, y);
        return rc;
    case VV_LAYER_FLATTEN:
    case VV_LAYER_DROPOUT:
        break; /* nothing to do in eval mode; the caller skips them */
    }
    return 0;
}

int vv_model_forward_dev(vv_model_dev *md, int from, int to, const float *x, int64_t n, float *y)
{
    return vv_model_forward_dev_at(md, from, to, x, n, y, 0);
}

int vv_model_forward_dev_at(vv_model_dev *md, int from, int to, const float *x, int64_t n, float *y,
                            int where)
{
    const vv_model *m = md->m;
    if (from < 0 || to > m->n || from >= to || n < 0)
        return vv_fail(VV_EINVAL, "forward: bad layer range [%d, %d) of %d layers", from, to, m->n);
    if (n == 0)
        return 0;
    /* Per-sample floats of the widest activation and of the conv scratch. */
    int64_t act = vv_model_size(m, from - 1), scr = 0;
    for (int i = from; i < to; i++) {
        const vv_layer *l = &m->layers[i];
        if (vv_model_size(m, i) > act)
            act = vv_model_size(m, i);
        if (l->type == VV_LAYER_CONV2D) {
            int64_t c = ((int64_t)l->in_ch * l->kernel * l->kernel + l->oc) * l->oh * l->ow;
            scr = c > scr ? c : scr;
        }
    }
    /* Batches of up to 256 samples, fewer when they would pass 1 GiB. */
    int64_t g = ((int64_t)1 << 28) / (2 * act + scr);
    g = g < 1 ? 1 : g > 256 ? 256 : g;
    g = g > n ? n : g;
    int rc = reserve(md, act * g, scr * g > 0 ? scr * g : 1);
    if (rc)
        return rc;
    vv_backend *be = md->be;
    int64_t in_sz = vv_model_size(m, from - 1), out_sz = vv_model_size(m, to - 1);
    for (int64_t s0 = 0; s0 < n && rc == 0; s0 += g) {
        int64_t nb = n - s0 < g ? n - s0 : g;
        /* Input on the device: read in place (never written: the first
         * layer writes to a batch buffer). */
        float *cur = where & VV_DEV_IN ? (float *)(x + s0 * in_sz) : md->a;
        if (!(where & VV_DEV_IN) &&
            (rc = be->ops->upload(be, cur, x + s0 * in_sz, (size_t)(nb * in_sz) * sizeof(float))))
            break;
        for (int i = from; i < to && rc == 0; i++) {
            const vv_layer *l = &m->layers[i];
            /* Flatten and dropout (eval) change nothing in memory. */
            if (l->type == VV_LAYER_FLATTEN || l->type == VV_LAYER_DROPOUT)
                continue;
            int fuse_bn = 0, relu = 0, skip = 0;
            if (l->type == VV_LAYER_CONV2D) {
                if (i + 1 < to && m->layers[i + 1].type == VV_LAYER_BATCHNORM2D)
                    fuse_bn = 1, skip = 1;
                if (i + 1 + skip < to && m->layers[i + 1 + skip].type == VV_LAYER_RELU)
                    relu = 1, skip++;
            }
            /* Elementwise layers work in place in a batch buffer; the rest
             * swap buffers. */
            int own = cur == md->a || cur == md->b;
            int inplace = own && (l->type == VV_LAYER_RELU || l->type == VV_LAYER_BATCHNORM2D);
            float *dst = inplace ? cur : cur == md->a ? md->b : md->a;
            rc = layer(md, i, &md->l[i], fuse_bn, relu, cur, nb, dst);
            cur = dst;
            i += skip;
        }
        if (rc == 0 && where & VV_DEV_OUT) /* a device copy (an identity affine_act) */
            rc = be->ops->affine_act(be, cur, out_sz, out_sz, nb, 1, out_sz, NULL, NULL, 0,
                                     y + s0 * out_sz);
        else if (rc == 0)
            rc = be->ops->download(be, y + s0 * out_sz, cur, (size_t)(nb * out_sz) * sizeof(float));
    }
    return rc;
}
