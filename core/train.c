/* train.c - mini-batch training of a sequential model: the training-mode
 * forward pass (batch norm on batch statistics, dropout masks, max-pool
 * argmaxes), the losses, the optimizers and their checkpoints.  The layers'
 * backward passes and the optimizers' update rules are in
 * train_backward.c. */
#include "vv/train.h"
#include "model_internal.h"
#include "train_internal.h"
#include "vv/array.h"
#include "vv/model.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Conv scratch budget (im2col columns and gemm output) per layer, in
 * floats (about 64 MiB, shared by the threads a layer is split over): a
 * conv layer runs in groups of samples that fit. */
#define SCRATCH_FLOATS (16l << 20)

/* Scratch floats of a group of g samples through conv layer l: its im2col
 * columns and gemm output (forward and backward), then the forward's 2 oc
 * of output affine (vv__scratch_sizes). */
static int64_t group_scratch(const vv_layer *l, int64_t g)
{
    return l->type == VV_LAYER_CONV2D ? g * vv__backward_scratch(l) + 2 * (int64_t)l->oc : 0;
}

void vv_train_opts_default(vv_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->optimizer = VV_OPT_SGD;
    o->lr = 0.01;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->loss = VV_LOSS_CE;
    o->bn_momentum = 0.1;
}

static int check_opts(const vv_train_opts *o)
{
    if (o->optimizer != VV_OPT_SGD && o->optimizer != VV_OPT_ADAM)
        return vv_fail(VV_EINVAL, "train: unknown optimizer %d", (int)o->optimizer);
    if (o->loss != VV_LOSS_CE && o->loss != VV_LOSS_MSE)
        return vv_fail(VV_EINVAL, "train: unknown loss %d", (int)o->loss);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return vv_fail(VV_EINVAL, "train: lr must be > 0 (got %g)", o->lr);
    if (!(o->momentum >= 0 && o->momentum < 1))
        return vv_fail(VV_EINVAL, "train: momentum must be in [0, 1) (got %g)", o->momentum);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        return vv_fail(VV_EINVAL, "train: weight_decay must be >= 0 (got %g)", o->weight_decay);
    if (o->optimizer == VV_OPT_ADAM &&
        (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1)))
        return vv_fail(VV_EINVAL, "train: Adam's betas must be in [0, 1) (got %g, %g)", o->beta1,
                       o->beta2);
    if (o->optimizer == VV_OPT_ADAM && (!(o->eps > 0) || !isfinite(o->eps)))
        return vv_fail(VV_EINVAL, "train: Adam's eps must be > 0 (got %g)", o->eps);
    if (!(o->bn_momentum >= 0 && o->bn_momentum <= 1))
        return vv_fail(VV_EINVAL, "train: bn_momentum must be in [0, 1] (got %g)", o->bn_momentum);
    return 0;
}

static void free_batch(vv_trainer *t)
{
    for (int i = 0; i < t->m->n; i++) {
        free(t->buf[i]);
        free(t->argmax[i]);
        free(t->keep[i]);
        t->buf[i] = NULL;
        t->argmax[i] = NULL;
        t->keep[i] = NULL;
    }
    free(t->ga);
    free(t->gb);
    free(t->scratch);
    t->ga = t->gb = t->scratch = NULL;
    t->cap = t->nscratch = 0;
    t->input_grad = NULL;
}

void vv_trainer_free(vv_trainer *t)
{
    if (!t)
        return;
    if (t->buf)
        free_batch(t);
    for (int i = 0; i < t->np; i++) {
        free(t->p[i].grad);
        free(t->p[i].m1);
        free(t->p[i].m2);
    }
    for (int i = 0; t->mean && i < t->m->n; i++) {
        free(t->mean[i]);
        free(t->invstd[i]);
        free(t->var[i]);
    }
    free(t->p);
    free(t->dwp);
    free(t->dw);
    free(t->db);
    free(t->group);
    free(t->mean);
    free(t->invstd);
    free(t->var);
    free(t->buf);
    free(t->out);
    free(t->argmax);
    free(t->keep);
    free(t->mask);
    free(t);
}

/* Samples per gemm group of a conv layer (0 for other layers) when split
 * over `parts` threads: as many as fit in their share of SCRATCH_FLOATS,
 * at least 1.  It depends on the layer and the machine only, so a layer's
 * results do not depend on the batch sizes seen before. */
static int64_t conv_group(const vv_layer *l, int parts)
{
    int64_t per = vv__backward_scratch(l), budget = SCRATCH_FLOATS / parts;
    if (!per)
        return 0;
    return budget / per > 1 ? budget / per : 1;
}

/* Floats of a conv's or linear layer's weight and bias gradients (the
 * largest layer's): the other threads' parts of them. */
static int64_t part_grad_floats(const vv_model *m)
{
    int64_t most = 0;
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        if ((l->type == VV_LAYER_CONV2D || l->type == VV_LAYER_LINEAR) &&
            vv__weight_count(l) + l->out_ch > most)
            most = vv__weight_count(l) + l->out_ch;
    }
    return most;
}

/* Whether relu layer i runs in place, over its input: when a layer before
 * it always writes a buffer of its own (not the caller's input).  No
 * backward pass reads its own layer's output except relu's, which the
 * in-place relu leaves unchanged, so the overwritten values are dead. */
static int in_place(const vv_model *m, int i)
{
    if (m->layers[i].type != VV_LAYER_RELU)
        return 0;
    for (int j = 0; j < i; j++)
        if (m->layers[j].type != VV_LAYER_FLATTEN && m->layers[j].type != VV_LAYER_DROPOUT)
            return 1;
    return 0;
}

int64_t vv_trainer_bytes(const vv_model *m, const vv_train_opts *o, int64_t n)
{
    if (!m->finished || n < 1)
        return 0;
    int nbuf = o->optimizer == VV_OPT_ADAM ? 2 : o->momentum > 0 ? 1 : 0;
    int64_t min_split;
    int parts = vv__train_parts(&min_split);
    int64_t floats = vv_model_params(m) * (1 + nbuf), bytes = 0, widest = vv_model_size(m, -1);
    int64_t ns = 0;
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        int64_t sz = vv_model_size(m, i), g = conv_group(l, parts);
        widest = sz > widest ? sz : widest;
        if (l->type != VV_LAYER_FLATTEN && !in_place(m, i))
            floats += n * sz;
        if (l->type == VV_LAYER_MAXPOOL2D)
            bytes += n * sz * (int64_t)sizeof(int32_t);
        if (l->type == VV_LAYER_DROPOUT)
            bytes += n * sz;
        if (l->type == VV_LAYER_BATCHNORM2D)
            bytes += l->c * (int64_t)(2 * sizeof(float) + sizeof(double));
        if (g && group_scratch(l, g < n ? g : n) > ns)
            ns = group_scratch(l, g < n ? g : n);
    }
    floats += 2 * n * widest + parts * ns + (parts - 1) * part_grad_floats(m);
    return bytes + floats * (int64_t)sizeof(float);
}

/* Allocates the per-layer tables, the gradients and the optimizer state. */
static int alloc_state(vv_trainer *t)
{
    vv_model *m = t->m;
    int L = m->n;
    size_t pl = (size_t)L * sizeof(void *);
    t->dw = calloc(1, pl);
    t->db = calloc(1, pl);
    t->group = calloc((size_t)L, sizeof(int64_t));
    t->mean = calloc(1, pl);
    t->invstd = calloc(1, pl);
    t->var = calloc(1, pl);
    t->buf = calloc(1, pl);
    t->out = calloc(1, pl);
    t->argmax = calloc(1, pl);
    t->keep = calloc(1, pl);
    t->mask = calloc(1, pl);
    t->p = calloc((size_t)(2 * L), sizeof(tparam));
    if (!t->dw || !t->db || !t->group || !t->mean || !t->invstd || !t->var || !t->buf || !t->out ||
        !t->argmax || !t->keep || !t->mask || !t->p)
        return VV_ENOMEM;
    const vv_train_opts *o = &t->o;
    int nbuf = o->optimizer == VV_OPT_ADAM ? 2 : o->momentum > 0 ? 1 : 0;
    t->parts = vv__train_parts(&t->min_split);
    t->ndwp = part_grad_floats(m);
    if (t->parts > 1 && t->ndwp &&
        !(t->dwp = malloc((size_t)((t->parts - 1) * t->ndwp) * sizeof(float))))
        return VV_ENOMEM;
    for (int i = 0; i < L; i++) {
        vv_layer *l = &m->layers[i];
        t->group[i] = conv_group(l, t->parts);
        if (l->type == VV_LAYER_BATCHNORM2D) {
            t->mean[i] = malloc((size_t)l->c * sizeof(float));
            t->invstd[i] = malloc((size_t)l->c * sizeof(float));
            t->var[i] = malloc((size_t)l->c * sizeof(double));
            if (!t->mean[i] || !t->invstd[i] || !t->var[i])
                return VV_ENOMEM;
        }
        int64_t nw = vv__weight_count(l);
        if (!nw)
            continue;
        for (int b = 0; b < 2; b++) {
            if (b && !l->bias_v)
                continue;
            tparam *p = &t->p[t->np++];
            p->layer = i;
            p->is_bias = b;
            p->numel = b ? l->out_ch : nw;
            p->decay = o->weight_decay > 0 &&
                       !(o->no_decay_bias_bn && (b || l->type == VV_LAYER_BATCHNORM2D));
            p->grad = calloc((size_t)p->numel, sizeof(float));
            if (nbuf >= 1)
                p->m1 = calloc((size_t)p->numel, sizeof(float));
            if (nbuf >= 2)
                p->m2 = calloc((size_t)p->numel, sizeof(float));
            if (!p->grad || (nbuf >= 1 && !p->m1) || (nbuf >= 2 && !p->m2))
                return VV_ENOMEM;
            (b ? t->db : t->dw)[i] = p->grad;
        }
    }
    return 0;
}

int vv_trainer_init(vv_trainer **out, vv_model *m, const vv_train_opts *o)
{
    *out = NULL;
    if (!m || !m->finished)
        return vv_fail(VV_EINVAL, "train: the model is not finished (call vv_model_finish)");
    int rc = check_opts(o);
    if (rc < 0)
        return rc;
    char b[128];
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        if (l->type == VV_LAYER_DROPOUT && !(l->p >= 0 && l->p <= 1))
            return vv_fail(VV_EINVAL, "train: %s: p must be in [0, 1] (got %g)",
                           vv__layer_who(m, i, b, sizeof b), (double)l->p);
    }
    vv_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return vv_fail(VV_ENOMEM, "train: out of memory");
    t->m = m;
    t->o = *o;
    if (alloc_state(t) < 0) {
        vv_trainer_free(t);
        return vv_fail(VV_ENOMEM, "train: out of memory for gradients and optimizer state");
    }
    *out = t;
    return 0;
}

/* Makes the batch buffers hold n samples. */
static int grow(vv_trainer *t, int64_t n)
{
    if (n <= t->cap)
        return 0;
    free_batch(t);
    vv_model *m = t->m;
    int64_t widest = vv_model_size(m, -1), ns = 0;
    int ok = 1;
    for (int i = 0; i < m->n && ok; i++) {
        const vv_layer *l = &m->layers[i];
        size_t sz = (size_t)(n * vv_model_size(m, i));
        if (vv_model_size(m, i) > widest)
            widest = vv_model_size(m, i);
        if (l->type != VV_LAYER_FLATTEN && !in_place(m, i))
            ok &= (t->buf[i] = malloc(sz * sizeof(float))) != NULL;
        if (l->type == VV_LAYER_MAXPOOL2D)
            ok &= (t->argmax[i] = malloc(sz * sizeof(int32_t))) != NULL;
        if (l->type == VV_LAYER_DROPOUT)
            ok &= (t->keep[i] = malloc(sz)) != NULL;
        if (t->group[i]) {
            int64_t g = t->group[i] < n ? t->group[i] : n;
            if (group_scratch(l, g) > ns)
                ns = group_scratch(l, g);
        }
    }
    if (ok) {
        t->ga = malloc((size_t)(n * widest) * sizeof(float));
        t->gb = malloc((size_t)(n * widest) * sizeof(float));
        t->scratch = ns ? malloc((size_t)(t->parts * ns) * sizeof(float)) : NULL;
        ok = t->ga && t->gb && (!ns || t->scratch);
    }
    if (!ok) {
        free_batch(t);
        return vv_fail(VV_ENOMEM, "train: out of memory for a batch of %lld samples", (long long)n);
    }
    t->cap = n;
    t->nscratch = ns;
    return 0;
}

/* The mean loss of the logits z (n x k) and its gradient dz; counts the
 * samples whose first maximal logit is the label. */
static double loss_grad(vv_loss loss, const float *z, const int32_t *labels, int64_t n, int k,
                        float *dz, int64_t *correct)
{
    double total = 0;
    int64_t right = 0;
    for (int64_t s = 0; s < n; s++) {
        const float *zs = z + s * k;
        float *ds = dz + s * k;
        int y = labels[s], best = 0;
        for (int j = 1; j < k; j++)
            if (zs[j] > zs[best])
                best = j;
        right += best == y;
        if (loss == VV_LOSS_CE) {
            double mx = zs[best], sum = 0;
            for (int j = 0; j < k; j++)
                sum += exp((double)zs[j] - mx);
            double lse = mx + log(sum);
            total += lse - zs[y];
            for (int j = 0; j < k; j++)
                ds[j] = (float)((exp((double)zs[j] - lse) - (j == y)) / (double)n);
        } else {
            double scale = 2.0 / ((double)n * k);
            for (int j = 0; j < k; j++) {
                double d = (double)zs[j] - (j == y);
                total += d * d;
                ds[j] = (float)(d * scale);
            }
        }
    }
    if (correct)
        *correct = right;
    return loss == VV_LOSS_CE ? total / (double)n : total / ((double)n * k);
}

/* Checks a batch and sizes the buffers for it. */
static int check_batch(vv_trainer *t, const float *x, const int32_t *labels, int64_t n)
{
    vv_model *m = t->m;
    if (!m->finished)
        return vv_fail(VV_EINVAL, "train: the model is not finished");
    if (n < 1)
        return vv_fail(VV_EINVAL, "train: a batch needs at least 1 sample (got %lld)",
                       (long long)n);
    if (!x || !labels)
        return vv_fail(VV_EINVAL, "train: no inputs or labels");
    int k = (int)vv_model_size(m, m->n - 1);
    for (int64_t s = 0; s < n; s++)
        if (labels[s] < 0 || labels[s] >= k)
            return vv_fail(VV_EINVAL, "train: sample %lld has label %d; labels must be in [0, %d)",
                           (long long)s, (int)labels[s], k);
    char b[128];
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        if (l->type == VV_LAYER_BATCHNORM2D && n * l->h * l->w < 2)
            return vv_fail(VV_EINVAL,
                           "train: %s sees 1 value per channel (a batch of %lld of %dx%d); "
                           "training batch norm needs more",
                           vv__layer_who(m, i, b, sizeof b), (long long)n, l->h, l->w);
    }
    return grow(t, n);
}

/* Index of the first layer with parameters (m->n when none). */
static int first_param_layer(const vv_model *m)
{
    for (int i = 0; i < m->n; i++)
        if (vv__weight_count(&m->layers[i]))
            return i;
    return m->n;
}

int vv_trainer_grad(vv_trainer *t, const float *x, const int32_t *labels, int64_t n, vv_rng *rng,
                    double *loss)
{
    int rc = check_batch(t, x, labels, n);
    if (rc < 0)
        return rc;
    vv_model *m = t->m;
    vv__train_forward(t, x, n, rng);
    double v = loss_grad(t->o.loss, t->out[m->n - 1], labels, n, (int)vv_model_size(m, m->n - 1),
                         t->ga, NULL);
    vv__train_backward(t, x, n, 0, 1);
    if (loss)
        *loss = v;
    return 0;
}

/* ---- Optimizers ------------------------------------------------------------------ */

static float *param_data(vv_model *m, const tparam *p)
{
    vv_layer *l = &m->layers[p->layer];
    return p->is_bias ? l->bias_v : l->weight;
}

static void update(vv_trainer *t, double lr)
{
    const vv_train_opts *o = &t->o;
    t->step++;
    /* Adam's bias corrections, in double like PyTorch's Python scalars. */
    double bc1 = 1 - pow(o->beta1, (double)t->step), bc2 = 1 - pow(o->beta2, (double)t->step);
    float shrink = (float)(1 - lr * o->weight_decay);
    for (int q = 0; q < t->np; q++) {
        tparam *p = &t->p[q];
        float *w = param_data(t->m, p);
        float wd = p->decay && !o->decoupled ? (float)o->weight_decay : 0.0f;
        if (p->decay && o->decoupled)
            for (int64_t j = 0; j < p->numel; j++)
                w[j] *= shrink;
        if (o->optimizer == VV_OPT_SGD)
            vv__sgd_update(w, p->grad, p->m1, p->numel, (float)lr, wd, (float)o->momentum);
        else
            vv__adam_update(w, p->grad, p->m1, p->m2, p->numel, (float)(lr / bc1), (float)sqrt(bc2),
                            wd, (float)o->beta1, (float)o->beta2, (float)o->eps);
    }
}

int vv_trainer_step(vv_trainer *t, const float *x, const int32_t *labels, int64_t n, double lr,
                    vv_rng *rng, vv_step_stats *st)
{
    if (!(lr > 0) || !isfinite(lr))
        return vv_fail(VV_EINVAL, "train: lr must be > 0 (got %g)", lr);
    int rc = check_batch(t, x, labels, n);
    if (rc < 0)
        return rc;
    vv_model *m = t->m;
    vv__train_forward(t, x, n, rng);
    int64_t correct;
    double loss = loss_grad(t->o.loss, t->out[m->n - 1], labels, n, (int)vv_model_size(m, m->n - 1),
                            t->ga, &correct);
    if (!isfinite(loss))
        return vv_fail(VV_ENUMERIC, "train: the loss is %g at step %lld (lr %g too large?)", loss,
                       (long long)t->step + 1, lr);
    int lo = first_param_layer(m);
    if (lo < m->n)
        vv__train_backward(t, x, n, lo, 0);
    t->input_grad = NULL;
    update(t, lr);
    /* Batch norm's running statistics, from this batch's (unbiased) ones. */
    double mo = t->o.bn_momentum;
    for (int i = 0; i < m->n; i++) {
        vv_layer *l = &m->layers[i];
        if (l->type != VV_LAYER_BATCHNORM2D)
            continue;
        double cnt = (double)(n * l->h * l->w);
        for (int c = 0; c < l->c; c++) {
            l->running_mean[c] = (float)((1 - mo) * l->running_mean[c] + mo * t->mean[i][c]);
            l->running_var[c] =
                (float)((1 - mo) * l->running_var[c] + mo * t->var[i][c] * cnt / (cnt - 1));
        }
    }
    if (st) {
        st->loss = loss;
        st->correct = correct;
    }
    return 0;
}

int vv_trainer_grads(const vv_trainer *t, int i, const float **dweight, const float **dbias)
{
    if (dweight)
        *dweight = NULL;
    if (dbias)
        *dbias = NULL;
    if (i < 0 || i >= t->m->n)
        return vv_fail(VV_EINVAL, "train: no layer %d (the model has %d)", i, t->m->n);
    if (dweight)
        *dweight = t->dw[i];
    if (dbias)
        *dbias = t->db[i];
    return 0;
}

const float *vv_trainer_input_grad(const vv_trainer *t)
{
    return t->input_grad;
}

int64_t vv_trainer_steps(const vv_trainer *t)
{
    return t->step;
}

/* ---- Checkpoints ----------------------------------------------------------------- */

/* The names of parameter p's optimizer buffers; returns how many (0-2). */
static int buffer_names(const vv_trainer *t, const tparam *p, char names[2][160])
{
    const char *base = t->m->layers[p->layer].name, *what = p->is_bias ? "bias" : "weight";
    if (t->o.optimizer == VV_OPT_ADAM) {
        snprintf(names[0], 160, "%s.%s.exp_avg", base, what);
        snprintf(names[1], 160, "%s.%s.exp_avg_sq", base, what);
        return 2;
    }
    if (!p->m1)
        return 0;
    snprintf(names[0], 160, "%s.%s.momentum_buffer", base, what);
    return 1;
}

/* The parameter's shape as PyTorch has it. */
static int param_shape(const vv_layer *l, int is_bias, int64_t *shape)
{
    shape[0] = l->out_ch;
    if (is_bias || l->type == VV_LAYER_BATCHNORM2D)
        return 1;
    shape[1] = l->in_ch;
    if (l->type == VV_LAYER_LINEAR)
        return 2;
    shape[2] = shape[3] = l->kernel;
    return 4;
}

int vv_trainer_save(const vv_trainer *t, const char *path)
{
    int cap = 2 * t->np + 1, n = 0;
    vv_st_tensor *ts = calloc((size_t)cap, sizeof *ts);
    char(*names)[160] = calloc((size_t)cap, sizeof *names);
    if (!ts || !names) {
        free(ts);
        free(names);
        return vv_fail(VV_ENOMEM, "%s: out of memory", path);
    }
    int64_t step = t->step;
    ts[n++] =
        (vv_st_tensor){.name = "step", .dtype = VV_I64, .ndim = 1, .shape = {1}, .data = &step};
    for (int q = 0; q < t->np; q++) {
        const tparam *p = &t->p[q];
        int nb = buffer_names(t, p, names + n);
        for (int b = 0; b < nb; b++, n++) {
            ts[n] = (vv_st_tensor){.name = names[n], .dtype = VV_F32, .data = b ? p->m2 : p->m1};
            ts[n].ndim = param_shape(&t->m->layers[p->layer], p->is_bias, ts[n].shape);
        }
    }
    int rc = vv_safetensors_write(path, ts, n);
    free(ts);
    free(names);
    return rc;
}

int vv_trainer_load(vv_trainer *t, const char *path)
{
    vv_st_f32 *ts;
    int nt, rc;
    if ((rc = vv_safetensors_load_f32(path, &ts, &nt)) < 0)
        return rc;
    vv_array step = {0};
    int *src = calloc((size_t)(2 * t->np + 1), sizeof(int));
    char *used = calloc((size_t)nt + 1, 1);
    if (!src || !used)
        rc = vv_fail(VV_ENOMEM, "%s: out of memory", path);
    if (rc == 0 && (rc = vv_safetensors_read(path, "step", &step)) == 0 &&
        (step.dtype != VV_I64 || step.shape[0] * step.shape[1] != 1 || *(int64_t *)step.data < 0))
        rc = vv_fail(VV_EFORMAT, "%s: 'step' must be one non-negative I64", path);
    /* Match every buffer to a tensor of the file before changing anything. */
    int k = 0;
    for (int q = 0; q < t->np && rc == 0; q++) {
        const tparam *p = &t->p[q];
        char names[2][160];
        int nb = buffer_names(t, p, names);
        for (int b = 0; b < nb && rc == 0; b++, k++) {
            int f = -1;
            for (int j = 0; j < nt && f < 0; j++)
                if (!strcmp(ts[j].name, names[b]))
                    f = j;
            if (f < 0)
                rc = vv_fail(VV_EINVAL, "%s: missing tensor '%s' (another optimizer?)", path,
                             names[b]);
            else if (ts[f].numel != p->numel)
                rc = vv_fail(VV_ESHAPE, "%s: tensor '%s' has %lld values but the model needs %lld",
                             path, names[b], (long long)ts[f].numel, (long long)p->numel);
            else
                src[k] = f;
            if (f >= 0)
                used[f] = 1;
        }
    }
    for (int j = 0; j < nt && rc == 0; j++)
        if (!used[j] && strcmp(ts[j].name, "step"))
            rc = vv_fail(VV_EINVAL,
                         "%s: tensor '%s' has no place in this trainer (another optimizer or "
                         "architecture?)",
                         path, ts[j].name);
    if (rc == 0) {
        k = 0;
        for (int q = 0; q < t->np; q++) {
            tparam *p = &t->p[q];
            char names[2][160];
            int nb = buffer_names(t, p, names);
            for (int b = 0; b < nb; b++, k++)
                memcpy(b ? p->m2 : p->m1, ts[src[k]].data, (size_t)p->numel * sizeof(float));
        }
        t->step = *(int64_t *)step.data;
    }
    vv_array_free(&step);
    free(src);
    free(used);
    vv_st_f32_free(ts, nt);
    return rc;
}
