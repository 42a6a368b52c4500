/* model_prune.c - deleting conv channels: the conv feeding a layer through
 * channel-wise layers, and removing output channels of that conv together
 * with the batch norms between and the consumer's matching inputs.  (Neuron
 * pruning of linear layers, vv_model_prune, is in model.c.) */
#include "model_internal.h"
#include "vv/model.h"

#include <string.h>

int vv_model_feeding_conv(const vv_model *m, int i, int64_t *group)
{
    if (group)
        *group = 0;
    if (!m || i < 1 || i >= m->n)
        return -1;
    const vv_layer *b = &m->layers[i];
    if (b->type != VV_LAYER_CONV2D && b->type != VV_LAYER_LINEAR)
        return -1;
    int j = i - 1;
    for (; j >= 0 && m->layers[j].type != VV_LAYER_CONV2D; j--) {
        vv_layer_type t = m->layers[j].type;
        if (t != VV_LAYER_BATCHNORM2D && t != VV_LAYER_RELU && t != VV_LAYER_MAXPOOL2D &&
            t != VV_LAYER_AVGPOOL2D && t != VV_LAYER_ADAPTIVE_AVGPOOL2D && t != VV_LAYER_DROPOUT &&
            t != VV_LAYER_FLATTEN)
            return -1;
    }
    if (j < 0)
        return -1;
    const vv_layer *a = &m->layers[j];
    int ch = a->out_ch;
    /* Every spatial layer between (batch norm, pools, flatten) must see j's
     * channels as its channels: past a flatten of a map larger than 1x1 the
     * channels are C*H*W values and a per-channel layer there no longer is
     * channel-wise in j's sense. */
    for (int t = j + 1; t < i; t++) {
        const vv_layer *l = &m->layers[t];
        if (l->type != VV_LAYER_RELU && l->type != VV_LAYER_DROPOUT && l->c != ch)
            return -1;
        if (l->type == VV_LAYER_BATCHNORM2D && l->out_ch != ch)
            return -1;
    }
    int64_t g;
    if (b->type == VV_LAYER_CONV2D) {
        if (b->in_ch != ch || b->c != ch)
            return -1;
        g = (int64_t)b->kernel * b->kernel;
    } else {
        if (b->in_ch % ch || (int64_t)b->c * b->h * b->w != b->in_ch)
            return -1;
        g = b->in_ch / ch;
    }
    if (group)
        *group = g;
    return j;
}

/* Keeps the entries keep[0..nkeep) of an array of n floats (in place). */
static void keep_floats(float *v, const int64_t *keep, int64_t nkeep)
{
    if (!v)
        return;
    for (int64_t t = 0; t < nkeep; t++)
        v[t] = v[keep[t]];
}

int vv_model_prune_channels(vv_model *m, int j, int i, const int64_t *keep, int64_t nkeep)
{
    int64_t g = 0;
    if (!m || !m->finished || i < 0 || i >= m->n || j < 0 || vv_model_feeding_conv(m, i, &g) != j)
        return vv_fail(VV_EINVAL, "prune: layer %d is not the conv feeding layer %d", j, i);
    vv_layer *a = &m->layers[j], *b = &m->layers[i];
    int k = a->out_ch;
    if (!keep || nkeep < 1 || nkeep > k)
        return vv_fail(VV_EINVAL, "prune: keeping %lld of %d channels", (long long)nkeep, k);
    for (int64_t t = 0; t < nkeep; t++)
        if (keep[t] < 0 || keep[t] >= k || (t && keep[t] <= keep[t - 1]))
            return vv_fail(VV_EINVAL, "prune: kept channels must be ascending and in [0, %d)", k);
    /* Conv j: output rows (out x in k k) and bias; kept rows move up. */
    int64_t row = (int64_t)a->in_ch * a->kernel * a->kernel;
    for (int64_t t = 0; t < nkeep; t++)
        memmove(a->weight + t * row, a->weight + keep[t] * row, (size_t)row * sizeof(float));
    keep_floats(a->bias_v, keep, nkeep);
    a->out_ch = (int)nkeep;
    /* Batch norms between: the same channels. */
    for (int t = j + 1; t < i; t++) {
        vv_layer *l = &m->layers[t];
        if (l->type != VV_LAYER_BATCHNORM2D)
            continue;
        keep_floats(l->weight, keep, nkeep);
        keep_floats(l->bias_v, keep, nkeep);
        keep_floats(l->running_mean, keep, nkeep);
        keep_floats(l->running_var, keep, nkeep);
        l->in_ch = l->out_ch = (int)nkeep;
    }
    /* Layer i: in each output row the column blocks of g (a conv's k x k
     * slice of an input channel, a linear layer's inputs of one channel
     * after flatten).  Writing front to back never overwrites a block not
     * yet read: the destination of block t of row r is at most its source. */
    int64_t old_in = (int64_t)k * g, new_in = nkeep * g;
    for (int64_t r = 0; r < b->out_ch; r++)
        for (int64_t t = 0; t < nkeep; t++)
            memmove(b->weight + r * new_in + t * g, b->weight + r * old_in + keep[t] * g,
                    (size_t)g * sizeof(float));
    b->in_ch = (int)(b->type == VV_LAYER_CONV2D ? nkeep : new_in);
    return vv_model_check(m);
}
