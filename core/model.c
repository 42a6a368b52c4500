/* model.c - sequential models: building, shapes, parameters, state_dict
 * files, pruning.  The forward pass is in model_forward.c. */
#include "vv/model.h"
#include "model_internal.h"
#include "vv/array.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    [VV_LAYER_CONV2D] = "conv2d",       [VV_LAYER_BATCHNORM2D] = "batchnorm2d",
    [VV_LAYER_RELU] = "relu",           [VV_LAYER_MAXPOOL2D] = "maxpool2d",
    [VV_LAYER_AVGPOOL2D] = "avgpool2d", [VV_LAYER_ADAPTIVE_AVGPOOL2D] = "adaptive_avgpool2d",
    [VV_LAYER_FLATTEN] = "flatten",     [VV_LAYER_LINEAR] = "linear",
    [VV_LAYER_DROPOUT] = "dropout",
};
#define NTYPES ((int)(sizeof type_names / sizeof *type_names))

const char *vv_layer_type_name(vv_layer_type t)
{
    return (int)t > 0 && (int)t < NTYPES ? type_names[t] : NULL;
}

vv_layer_type vv_layer_type_from_name(const char *name)
{
    for (int t = 1; t < NTYPES; t++)
        if (name && !strcmp(name, type_names[t]))
            return (vv_layer_type)t;
    return 0;
}

void vv_model_init(vv_model *m, int c, int h, int w)
{
    memset(m, 0, sizeof *m);
    m->in_c = c;
    m->in_h = h;
    m->in_w = w;
}

int vv_model_add(vv_model *m, const vv_layer *l)
{
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 16;
        vv_layer *p = realloc(m->layers, (size_t)cap * sizeof *p);
        if (!p)
            return vv_fail(VV_ENOMEM, "model: out of memory");
        m->layers = p;
        m->cap = cap;
    }
    vv_layer *d = &m->layers[m->n++];
    *d = *l;
    d->weight = d->bias_v = d->running_mean = d->running_var = NULL;
    m->finished = 0;
    return 0;
}

static void free_params(vv_layer *l)
{
    free(l->weight);
    free(l->bias_v);
    free(l->running_mean);
    free(l->running_var);
    l->weight = l->bias_v = l->running_mean = l->running_var = NULL;
}

void vv_model_free(vv_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++)
        free_params(&m->layers[i]);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

const char *vv__layer_who(const vv_model *m, int i, char *buf, size_t cap)
{
    const vv_layer *l = &m->layers[i];
    if (l->name[0])
        snprintf(buf, cap, "layer %d (%s '%s')", i, vv_layer_type_name(l->type), l->name);
    else
        snprintf(buf, cap, "layer %d (%s)", i, vv_layer_type_name(l->type));
    return buf;
}

int64_t vv__weight_count(const vv_layer *l)
{
    switch (l->type) {
    case VV_LAYER_CONV2D:
        return (int64_t)l->out_ch * l->in_ch * l->kernel * l->kernel;
    case VV_LAYER_LINEAR:
        return (int64_t)l->out_ch * l->in_ch;
    case VV_LAYER_BATCHNORM2D:
        return l->out_ch;
    default:
        return 0;
    }
}

static int has_bias(const vv_layer *l)
{
    return l->type == VV_LAYER_BATCHNORM2D ||
           ((l->type == VV_LAYER_CONV2D || l->type == VV_LAYER_LINEAR) && l->bias);
}

static int pool_out(int in, int k, int s, int p)
{
    return (in + 2 * p - k) / s + 1;
}

/* The output size of a sliding k x k window (conv or pool) on layer i's
 * padded input; VV_ESHAPE when the window does not fit. */
static int window_out(vv_model *m, int i)
{
    vv_layer *l = &m->layers[i];
    char b[128];
    if (l->h + 2 * l->pad < l->kernel || l->w + 2 * l->pad < l->kernel)
        return vv_fail(VV_ESHAPE, "%s: kernel %d is larger than its padded %dx%d input",
                       vv__layer_who(m, i, b, sizeof b), l->kernel, l->h + 2 * l->pad,
                       l->w + 2 * l->pad);
    l->oh = pool_out(l->h, l->kernel, l->stride, l->pad);
    l->ow = pool_out(l->w, l->kernel, l->stride, l->pad);
    return 0;
}

/* Derives layer i's output shape from its input shape (l->c, h, w). */
static int derive(vv_model *m, int i)
{
    vv_layer *l = &m->layers[i];
    char b[128];
    if (!vv_layer_type_name(l->type))
        return vv_fail(VV_EINVAL, "layer %d: unknown layer type %d", i, (int)l->type);
    l->oc = l->c;
    l->oh = l->h;
    l->ow = l->w;
    switch (l->type) {
    case VV_LAYER_CONV2D:
        if (l->in_ch != l->c)
            return vv_fail(VV_ESHAPE, "%s: in_channels is %d but its input has %d channels",
                           vv__layer_who(m, i, b, sizeof b), l->in_ch, l->c);
        if (l->out_ch < 1 || l->kernel < 1 || l->stride < 1 || l->pad < 0)
            return vv_fail(VV_EINVAL,
                           "%s: out_channels, kernel and stride must be >= 1, padding >= 0",
                           vv__layer_who(m, i, b, sizeof b));
        l->oc = l->out_ch;
        return window_out(m, i);
    case VV_LAYER_BATCHNORM2D:
        if (l->in_ch != l->c)
            return vv_fail(VV_ESHAPE, "%s: num_features is %d but its input has %d channels",
                           vv__layer_who(m, i, b, sizeof b), l->in_ch, l->c);
        l->out_ch = l->in_ch;
        if (!(l->eps > 0))
            l->eps = 1e-5f;
        return 0;
    case VV_LAYER_MAXPOOL2D:
    case VV_LAYER_AVGPOOL2D:
        if (l->stride == 0)
            l->stride = l->kernel;
        if (l->kernel < 1 || l->stride < 1 || l->pad < 0 || 2 * l->pad > l->kernel)
            return vv_fail(VV_EINVAL,
                           "%s: kernel and stride must be >= 1 and padding at most half the kernel",
                           vv__layer_who(m, i, b, sizeof b));
        return window_out(m, i);
    case VV_LAYER_ADAPTIVE_AVGPOOL2D:
        if (l->out_h < 1 || l->out_w < 1)
            return vv_fail(VV_EINVAL, "%s: output size must be >= 1",
                           vv__layer_who(m, i, b, sizeof b));
        l->oh = l->out_h;
        l->ow = l->out_w;
        return 0;
    case VV_LAYER_FLATTEN:
        l->oc = l->c * l->h * l->w;
        l->oh = l->ow = 1;
        return 0;
    case VV_LAYER_LINEAR:
        if ((int64_t)l->c * l->h * l->w != l->in_ch)
            return vv_fail(
                VV_ESHAPE, "%s: in_features is %d but its input has %lld values (%dx%dx%d)%s",
                vv__layer_who(m, i, b, sizeof b), l->in_ch, (long long)l->c * l->h * l->w, l->c,
                l->h, l->w, l->h * l->w > 1 ? "; add a flatten layer before it" : "");
        if (l->h * l->w != 1)
            return vv_fail(VV_ESHAPE, "%s: its input is %dx%dx%d; add a flatten layer before it",
                           vv__layer_who(m, i, b, sizeof b), l->c, l->h, l->w);
        if (l->out_ch < 1)
            return vv_fail(VV_EINVAL, "%s: out_features must be >= 1",
                           vv__layer_who(m, i, b, sizeof b));
        l->oc = l->out_ch;
        return 0;
    case VV_LAYER_RELU:
    case VV_LAYER_DROPOUT:
        return 0;
    }
    return 0;
}

static int derive_all(vv_model *m)
{
    char b[128];
    if (m->in_c < 1 || m->in_h < 1 || m->in_w < 1)
        return vv_fail(VV_EINVAL, "model: input shape %dx%dx%d must be positive", m->in_c, m->in_h,
                       m->in_w);
    if (m->n == 0)
        return vv_fail(VV_EINVAL, "model: no layers");
    int c = m->in_c, h = m->in_h, w = m->in_w, rc;
    for (int i = 0; i < m->n; i++) {
        vv_layer *l = &m->layers[i];
        l->c = c;
        l->h = h;
        l->w = w;
        if ((rc = derive(m, i)) < 0)
            return rc;
        c = l->oc;
        h = l->oh;
        w = l->ow;
        if (c < 1 || h < 1 || w < 1)
            return vv_fail(VV_ESHAPE, "%s: its output %dx%dx%d is empty",
                           vv__layer_who(m, i, b, sizeof b), c, h, w);
        int needs_name = l->type == VV_LAYER_CONV2D || l->type == VV_LAYER_LINEAR ||
                         l->type == VV_LAYER_BATCHNORM2D;
        if (needs_name && !l->name[0])
            return vv_fail(VV_EINVAL, "%s: a layer with parameters needs a name",
                           vv__layer_who(m, i, b, sizeof b));
        for (int j = 0; j < i && l->name[0]; j++)
            if (!strcmp(m->layers[j].name, l->name))
                return vv_fail(VV_EINVAL, "layers %d and %d are both named '%s'", j, i, l->name);
    }
    return 0;
}

int vv_model_check(vv_model *m)
{
    return derive_all(m);
}

int vv_model_finish(vv_model *m)
{
    int rc = derive_all(m);
    if (rc < 0)
        return rc;
    for (int i = 0; i < m->n; i++) {
        vv_layer *l = &m->layers[i];
        int64_t nw = vv__weight_count(l);
        free_params(l);
        if (!nw)
            continue;
        l->weight = calloc((size_t)nw, sizeof(float));
        if (has_bias(l) && !(l->bias_v = calloc((size_t)l->out_ch, sizeof(float))))
            goto nomem;
        if (l->type == VV_LAYER_BATCHNORM2D) {
            l->running_mean = calloc((size_t)l->out_ch, sizeof(float));
            l->running_var = malloc((size_t)l->out_ch * sizeof(float));
            if (!l->running_mean || !l->running_var || !l->weight)
                goto nomem;
            for (int k = 0; k < l->out_ch; k++)
                l->weight[k] = l->running_var[k] = 1;
        }
        if (!l->weight)
            goto nomem;
    }
    m->finished = 1;
    return 0;
nomem:
    return vv_fail(VV_ENOMEM, "model: out of memory for parameters");
}

int vv_model_find(const vv_model *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (m->layers[i].name[0] && !strcmp(m->layers[i].name, name))
            return i;
    return -1;
}

int64_t vv_model_size(const vv_model *m, int i)
{
    if (i < 0)
        return (int64_t)m->in_c * m->in_h * m->in_w;
    const vv_layer *l = &m->layers[i];
    return (int64_t)l->oc * l->oh * l->ow;
}

int64_t vv_model_params(const vv_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        n += vv__weight_count(l) + (has_bias(l) ? l->out_ch : 0);
    }
    return n;
}

int64_t vv_model_bytes(const vv_model *m)
{
    int64_t n = vv_model_params(m);
    for (int i = 0; i < m->n; i++)
        if (m->layers[i].type == VV_LAYER_BATCHNORM2D)
            n += 2 * m->layers[i].out_ch;
    return n * (int64_t)sizeof(float);
}

int64_t vv_model_macs(const vv_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        if (l->type == VV_LAYER_CONV2D)
            n += (int64_t)l->oc * l->oh * l->ow * l->in_ch * l->kernel * l->kernel;
        else if (l->type == VV_LAYER_LINEAR)
            n += (int64_t)l->out_ch * l->in_ch;
    }
    return n;
}

void vv_model_init_params(vv_model *m, uint64_t seed)
{
    vv_rng r;
    vv_rng_seed(&r, seed);
    for (int i = 0; i < m->n; i++) {
        vv_layer *l = &m->layers[i];
        if (l->type == VV_LAYER_BATCHNORM2D) {
            for (int k = 0; k < l->out_ch; k++) {
                l->weight[k] = l->running_var[k] = 1;
                l->bias_v[k] = l->running_mean[k] = 0;
            }
            continue;
        }
        if (l->type != VV_LAYER_CONV2D && l->type != VV_LAYER_LINEAR)
            continue;
        int64_t fan_in = (int64_t)l->in_ch * l->kernel * l->kernel;
        if (l->type == VV_LAYER_LINEAR)
            fan_in = l->in_ch;
        double bound = 1.0 / sqrt((double)fan_in);
        int64_t nw = vv__weight_count(l);
        for (int64_t k = 0; k < nw; k++)
            l->weight[k] = (float)((2 * vv_rng_uniform(&r) - 1) * bound);
        if (l->bias_v)
            for (int k = 0; k < l->out_ch; k++)
                l->bias_v[k] = (float)((2 * vv_rng_uniform(&r) - 1) * bound);
    }
}

/* ---- State dicts ----------------------------------------------------------------- */

typedef struct {
    const char *suffix;
    float **slot;
    int ndim;
    int64_t shape[4];
} param_ref;

/* The tensors layer l expects; returns how many (at most 4). */
static int layer_params(vv_layer *l, param_ref *p)
{
    int n = 0;
    if (l->type == VV_LAYER_CONV2D) {
        p[n++] = (param_ref){"weight", &l->weight, 4, {l->out_ch, l->in_ch, l->kernel, l->kernel}};
        if (l->bias)
            p[n++] = (param_ref){"bias", &l->bias_v, 1, {l->out_ch}};
    } else if (l->type == VV_LAYER_LINEAR) {
        p[n++] = (param_ref){"weight", &l->weight, 2, {l->out_ch, l->in_ch}};
        if (l->bias)
            p[n++] = (param_ref){"bias", &l->bias_v, 1, {l->out_ch}};
    } else if (l->type == VV_LAYER_BATCHNORM2D) {
        p[n++] = (param_ref){"weight", &l->weight, 1, {l->out_ch}};
        p[n++] = (param_ref){"bias", &l->bias_v, 1, {l->out_ch}};
        p[n++] = (param_ref){"running_mean", &l->running_mean, 1, {l->out_ch}};
        p[n++] = (param_ref){"running_var", &l->running_var, 1, {l->out_ch}};
    }
    return n;
}

static void shape_str(int ndim, const int64_t *s, char *buf, size_t cap)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)s[d]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

int vv_model_load(vv_model *m, const char *path)
{
    if (!m->finished)
        return vv_fail(VV_EINVAL, "model: load before vv_model_finish");
    vv_st_f32 *t;
    int nt, rc;
    if ((rc = vv_safetensors_load_f32(path, &t, &nt)) < 0)
        return rc;
    char *used = calloc((size_t)(nt ? nt : 1), 1);
    if (!used) {
        vv_st_f32_free(t, nt);
        return vv_fail(VV_ENOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < m->n && rc == 0; i++) {
        param_ref p[4];
        int np = layer_params(&m->layers[i], p);
        for (int q = 0; q < np && rc == 0; q++) {
            char key[128];
            snprintf(key, sizeof key, "%s.%s", m->layers[i].name, p[q].suffix);
            int f = -1;
            for (int j = 0; j < nt && f < 0; j++)
                if (!strcmp(t[j].name, key))
                    f = j;
            if (f < 0) {
                rc = vv_fail(VV_EINVAL, "%s: missing tensor '%s' (%s)", path, key,
                             vv_layer_type_name(m->layers[i].type));
                break;
            }
            used[f] = 1;
            int same = t[f].ndim == p[q].ndim;
            for (int d = 0; same && d < p[q].ndim; d++)
                same = t[f].shape[d] == p[q].shape[d];
            if (!same) {
                char a[96], b[96];
                shape_str(t[f].ndim, t[f].shape, a, sizeof a);
                shape_str(p[q].ndim, p[q].shape, b, sizeof b);
                rc = vv_fail(VV_ESHAPE, "%s: tensor '%s' has shape %s but the model needs %s", path,
                             key, a, b);
                break;
            }
            memcpy(*p[q].slot, t[f].data, (size_t)t[f].numel * sizeof(float));
        }
    }
    for (int j = 0; j < nt && rc == 0; j++) {
        size_t len = strlen(t[j].name);
        const char *nbt = ".num_batches_tracked";
        if (used[j] || (len > strlen(nbt) && !strcmp(t[j].name + len - strlen(nbt), nbt)))
            continue;
        rc = vv_fail(VV_EINVAL, "%s: tensor '%s' has no place in the model (wrong architecture?)",
                     path, t[j].name);
    }
    free(used);
    vv_st_f32_free(t, nt);
    return rc;
}

int vv_model_save(const vv_model *m, const char *path)
{
    int cap = 4 * m->n + 1, n = 0, rc;
    vv_st_tensor *ts = calloc((size_t)cap, sizeof *ts);
    char(*names)[128] = calloc((size_t)cap, sizeof *names);
    if (!ts || !names) {
        free(ts);
        free(names);
        return vv_fail(VV_ENOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < m->n; i++) {
        param_ref p[4];
        int np = layer_params(&m->layers[i], p);
        for (int q = 0; q < np; q++) {
            snprintf(names[n], sizeof names[n], "%s.%s", m->layers[i].name, p[q].suffix);
            ts[n] = (vv_st_tensor){
                .name = names[n], .dtype = VV_F32, .ndim = p[q].ndim, .data = *p[q].slot};
            memcpy(ts[n].shape, p[q].shape, sizeof p[q].shape);
            n++;
        }
    }
    rc = vv_safetensors_write(path, ts, n);
    free(ts);
    free(names);
    return rc;
}

/* ---- Structure ------------------------------------------------------------------- */

int vv_model_feeding_linear(const vv_model *m, int i)
{
    for (int j = i - 1; j >= 0; j--) {
        vv_layer_type t = m->layers[j].type;
        if (t == VV_LAYER_LINEAR)
            return j;
        if (t != VV_LAYER_RELU && t != VV_LAYER_DROPOUT)
            return -1;
    }
    return -1;
}

int vv_model_prune(vv_model *m, int j, int i, const int64_t *keep, int64_t nkeep)
{
    if (i < 0 || i >= m->n || m->layers[i].type != VV_LAYER_LINEAR ||
        vv_model_feeding_linear(m, i) != j)
        return vv_fail(VV_EINVAL, "prune: layer %d does not feed linear layer %d", j, i);
    vv_layer *a = &m->layers[j], *b = &m->layers[i];
    int k = a->out_ch;
    if (nkeep < 1 || nkeep > k)
        return vv_fail(VV_EINVAL, "prune: keeping %lld of %d neurons", (long long)nkeep, k);
    for (int64_t t = 0; t < nkeep; t++)
        if (keep[t] < 0 || keep[t] >= k || (t && keep[t] <= keep[t - 1]))
            return vv_fail(VV_EINVAL, "prune: kept indices must be ascending and in [0, %d)", k);
    /* Rows of a's weight and bias (in place: kept rows move up). */
    for (int64_t t = 0; t < nkeep; t++) {
        memmove(a->weight + t * a->in_ch, a->weight + keep[t] * a->in_ch,
                (size_t)a->in_ch * sizeof(float));
        if (a->bias_v)
            a->bias_v[t] = a->bias_v[keep[t]];
    }
    /* Columns of b's weight. */
    for (int r = 0; r < b->out_ch; r++) {
        const float *src = b->weight + (int64_t)r * b->in_ch;
        float *dst = b->weight + (int64_t)r * nkeep;
        for (int64_t t = 0; t < nkeep; t++)
            dst[t] = src[keep[t]];
    }
    a->out_ch = (int)nkeep;
    b->in_ch = (int)nkeep;
    return derive_all(m);
}

int vv_model_copy(const vv_model *src, vv_model *dst)
{
    vv_model_init(dst, src->in_c, src->in_h, src->in_w);
    int rc = 0;
    for (int i = 0; i < src->n && rc == 0; i++)
        rc = vv_model_add(dst, &src->layers[i]);
    if (rc == 0 && src->finished)
        rc = vv_model_finish(dst);
    for (int i = 0; i < src->n && rc == 0 && src->finished; i++) {
        const vv_layer *s = &src->layers[i];
        vv_layer *d = &dst->layers[i];
        int64_t nw = vv__weight_count(s);
        if (nw)
            memcpy(d->weight, s->weight, (size_t)nw * sizeof(float));
        if (s->bias_v)
            memcpy(d->bias_v, s->bias_v, (size_t)s->out_ch * sizeof(float));
        if (s->running_mean) {
            memcpy(d->running_mean, s->running_mean, (size_t)s->out_ch * sizeof(float));
            memcpy(d->running_var, s->running_var, (size_t)s->out_ch * sizeof(float));
        }
    }
    if (rc < 0)
        vv_model_free(dst);
    return rc;
}
