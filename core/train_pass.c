/* train_pass.c - the training-mode forward and backward passes of a
 * sequential model (vv_trainer, train.c), each layer's work split over the
 * cores: convolutions, linear layers, pools, ReLUs and dropout's backward
 * by samples (each thread on its share with scratch of its own, BLAS
 * single-threaded; the weight gradients summed from the threads' parts, in
 * part order), batch norm by channels; dropout's masks are drawn in order
 * from one random stream.  A layer's split depends only on the batch size
 * and the number of cores, so a run is repeatable on one machine.  The
 * layers' kernels are in model_forward.c and train_backward.c. */
#include "parts.h"
#include "train_internal.h"
#include "vv/blas.h"
#include "vv/model.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Below this many floats of a layer's input or output, one thread (the
 * threads' start would cost more than they save). */
#define MIN_SPLIT (1 << 15)

int vv__train_parts(int64_t *min_split)
{
    const char *e = getenv("VV_TRAIN_THREADS");
    long n = e && *e ? atol(e) : 0;
    *min_split = n > 0 ? 0 : MIN_SPLIT; /* asked for: split whatever the size */
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > VV_TRAIN_PARTS ? VV_TRAIN_PARTS : (int)n;
}

/* One layer's work: samples (or channels) [lo(p), lo(p + 1)) go to part p
 * (vv__run_parts). */
typedef struct job {
    vv_trainer *t;
    int i;              /* the layer */
    int64_t n;          /* samples */
    const float *x, *y; /* the layer's input and output (forward: y written) */
    const float *dy;    /* backward: the output gradient */
    float *dx;          /* backward: the input gradient, or NULL */
    int parts;
} job;

static int64_t lo(int64_t n, int p, int parts)
{
    return n * p / parts;
}

/* A pass whose layers are split over threads runs BLAS single-threaded
 * throughout (OpenBLAS's own threads would otherwise spin between the
 * calls, on the cores the parts need); returns the count to restore. */
static int blas_single(const vv_trainer *t)
{
    int blas = vv_blas_threads();
    if (t->parts > 1)
        vv_blas_set_threads(1);
    return blas;
}

/* The parts of a layer's work over `items` (samples or channels) when its
 * tensors hold `floats` floats. */
static int parts_for(const vv_trainer *t, int64_t items, int64_t floats)
{
    int p = t->parts;
    if (floats < t->min_split)
        return 1;
    return items < p ? (int)items : p;
}

/* Batch norm on the batch's statistics for channels [c0, c1); keeps the
 * mean, 1/std and biased variance per channel. */
static void bn_train(const vv_layer *l, const float *x, int64_t nb, float *y, float *mean,
                     float *invstd, double *var, int c0, int c1)
{
    int64_t hw = (int64_t)l->h * l->w;
    double cnt = (double)(nb * hw);
    for (int c = c0; c < c1; c++) {
        double s = 0, q = 0;
        for (int64_t t = 0; t < nb; t++) {
            const float *src = x + (t * l->c + c) * hw;
            for (int64_t p = 0; p < hw; p++)
                s += src[p];
        }
        double mu = s / cnt;
        for (int64_t t = 0; t < nb; t++) {
            const float *src = x + (t * l->c + c) * hw;
            for (int64_t p = 0; p < hw; p++)
                q += (src[p] - mu) * (src[p] - mu);
        }
        var[c] = q / cnt;
        mean[c] = (float)mu;
        invstd[c] = (float)(1.0 / sqrt(var[c] + (double)l->eps));
        float a = invstd[c] * l->weight[c], b = l->bias_v[c] - mean[c] * a;
        for (int64_t t = 0; t < nb; t++) {
            const float *src = x + (t * l->c + c) * hw;
            float *dst = y + (t * l->c + c) * hw;
            for (int64_t p = 0; p < hw; p++)
                dst[p] = src[p] * a + b;
        }
    }
}

/* Max pooling that also records where each maximum came from (the first
 * maximum of its window, like the eval-mode pass and PyTorch). */
static void maxpool_train(const vv_layer *l, const float *x, int64_t nb, float *y, int32_t *arg)
{
    for (int64_t sc = 0; sc < nb * l->c; sc++) {
        const float *src = x + sc * l->h * l->w;
        float *dst = y + sc * l->oh * l->ow;
        int32_t *ai = arg + sc * l->oh * l->ow;
        for (int i = 0; i < l->oh; i++)
            for (int j = 0; j < l->ow; j++) {
                int y0 = i * l->stride - l->pad, x0 = j * l->stride - l->pad;
                int a0 = y0 < 0 ? 0 : y0, b0 = x0 < 0 ? 0 : x0;
                float acc = -FLT_MAX;
                int32_t idx = a0 * l->w + b0;
                for (int a = a0; a < y0 + l->kernel && a < l->h; a++)
                    for (int b = b0; b < x0 + l->kernel && b < l->w; b++) {
                        float v = src[a * l->w + b];
                        if (v > acc || isnan(v)) {
                            acc = v;
                            idx = a * l->w + b;
                        }
                    }
                dst[i * l->ow + j] = acc;
                ai[i * l->ow + j] = idx;
            }
    }
}

/* Forward, samples [lo, hi) of part p: convolutions in groups that fit the
 * part's scratch, pools, ReLUs and the rest of the per-sample layers. */
static void forward_part(void *ctx, int p)
{
    job *j = ctx;
    vv_trainer *t = j->t;
    const vv_layer *l = &t->m->layers[j->i];
    int64_t s0 = lo(j->n, p, j->parts), s1 = lo(j->n, p + 1, j->parts);
    int64_t in_sz = vv_model_size(t->m, j->i - 1), out_sz = vv_model_size(t->m, j->i);
    const float *x = j->x + s0 * in_sz;
    float *y = (float *)j->y + s0 * out_sz;
    int64_t nb = s1 - s0;
    switch (l->type) {
    case VV_LAYER_CONV2D: {
        float *scr = t->scratch + p * t->nscratch;
        for (int64_t g0 = 0; g0 < nb; g0 += t->group[j->i]) {
            int64_t gb = nb - g0 < t->group[j->i] ? nb - g0 : t->group[j->i], cs, ts;
            vv__scratch_sizes(l, gb, &cs, &ts);
            vv__layer_forward(l, x + g0 * in_sz, gb, y + g0 * out_sz, scr, scr + cs);
        }
        break;
    }
    case VV_LAYER_BATCHNORM2D: /* by channels */
        bn_train(l, j->x, j->n, (float *)j->y, t->mean[j->i], t->invstd[j->i], t->var[j->i],
                 (int)lo(l->c, p, j->parts), (int)lo(l->c, p + 1, j->parts));
        break;
    case VV_LAYER_MAXPOOL2D:
        maxpool_train(l, x, nb, y, t->argmax[j->i] + s0 * out_sz);
        break;
    case VV_LAYER_RELU:
        if (x == y) { /* in place */
            for (int64_t e = 0; e < nb * in_sz; e++)
                y[e] = y[e] > 0 ? y[e] : 0.0f;
            break;
        }
        /* fall through */
    default:
        vv__layer_forward(l, x, nb, y, NULL, NULL);
        break;
    }
}

void vv__train_forward(vv_trainer *t, const float *x, int64_t n, vv_rng *rng)
{
    vv_model *m = t->m;
    const float *cur = x;
    int blas = blas_single(t);
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        float *y = t->buf[i];
        int64_t in_sz = vv_model_size(m, i - 1), out_sz = vv_model_size(m, i);
        t->mask[i] = NULL;
        job j = {.t = t, .i = i, .n = n, .x = cur, .y = y, .parts = 1};
        switch (l->type) {
        case VV_LAYER_FLATTEN:
            y = (float *)cur;
            break;
        case VV_LAYER_DROPOUT: /* one random stream, in order */
            if (!rng || l->p == 0) {
                y = (float *)cur;
                break;
            }
            {
                float scale = l->p < 1 ? 1.0f / (float)(1.0 - (double)l->p) : 0.0f;
                uint8_t *k = t->keep[i];
                for (int64_t e = 0; e < n * in_sz; e++) {
                    k[e] = vv_rng_uniform(rng) >= (double)l->p;
                    y[e] = k[e] ? cur[e] * scale : 0.0f;
                }
                t->mask[i] = k;
            }
            break;
        default:
            if (!y) /* an in-place relu */
                j.y = y = (float *)cur;
            j.parts = parts_for(t, l->type == VV_LAYER_BATCHNORM2D ? l->c : n,
                                n * (in_sz > out_sz ? in_sz : out_sz));
            vv__run_parts(j.parts, forward_part, &j);
            break;
        }
        t->out[i] = y;
        cur = y;
    }
    vv_blas_set_threads(blas);
}

/* Backward, part p: batch norm's channels, else samples [lo, hi) (a conv's
 * or linear layer's weight and bias gradients of part p > 0 into its own
 * buffer). */
static void backward_part(void *ctx, int p)
{
    job *j = ctx;
    vv_trainer *t = j->t;
    const vv_layer *l = &t->m->layers[j->i];
    int i = j->i;
    vv__saved s = {.x = j->x,
                   .y = j->y,
                   .argmax = t->argmax[i],
                   .keep = t->mask[i],
                   .mean = t->mean[i],
                   .invstd = t->invstd[i]};
    if (l->type == VV_LAYER_DROPOUT)
        s.scale = l->p < 1 ? 1.0f / (float)(1.0 - (double)l->p) : 0.0f;
    if (l->type == VV_LAYER_BATCHNORM2D) {
        vv__bn_backward(l, &s, j->n, j->dy, j->dx, t->dw[i], t->db[i], (int)lo(l->c, p, j->parts),
                        (int)lo(l->c, p + 1, j->parts));
        return;
    }
    int64_t s0 = lo(j->n, p, j->parts), s1 = lo(j->n, p + 1, j->parts);
    int64_t in_sz = vv_model_size(t->m, i - 1), out_sz = vv_model_size(t->m, i);
    s.x += s0 * in_sz;
    s.y += s0 * out_sz;
    if (s.argmax)
        s.argmax += s0 * out_sz;
    if (s.keep)
        s.keep += s0 * in_sz;
    float *dw = t->dw[i], *db = t->db[i];
    if (p > 0 && dw) {
        dw = t->dwp + (p - 1) * t->ndwp;
        db = db ? dw + vv__weight_count(l) : NULL;
    }
    vv__layer_backward(l, &s, s1 - s0, j->dy + s0 * out_sz, j->dx ? j->dx + s0 * in_sz : NULL, dw,
                       db, t->scratch + p * t->nscratch, t->nscratch);
}

void vv__train_backward(vv_trainer *t, const float *x, int64_t n, int lo_layer, int want_dx)
{
    vv_model *m = t->m;
    float *g = t->ga;
    int blas = blas_single(t);
    for (int i = m->n - 1; i >= lo_layer; i--) {
        const vv_layer *l = &m->layers[i];
        int need_dx = i > lo_layer || want_dx;
        if (l->type == VV_LAYER_FLATTEN || (l->type == VV_LAYER_DROPOUT && !t->mask[i]))
            continue; /* the identity: the gradient passes unchanged */
        float *dx = g == t->ga ? t->gb : t->ga;
        int64_t in_sz = vv_model_size(m, i - 1), out_sz = vv_model_size(m, i);
        job j = {.t = t,
                 .i = i,
                 .n = n,
                 .x = i ? t->out[i - 1] : x,
                 .y = t->out[i],
                 .dy = g,
                 .dx = need_dx ? dx : NULL,
                 .parts = parts_for(t, l->type == VV_LAYER_BATCHNORM2D ? l->c : n,
                                    n * (in_sz > out_sz ? in_sz : out_sz))};
        vv__run_parts(j.parts, backward_part, &j);
        /* A conv's or linear layer's weight and bias gradients: part 0's
         * plus the others'. */
        int64_t nw = t->dw[i] && l->type != VV_LAYER_BATCHNORM2D ? vv__weight_count(l) : 0;
        for (int p = 1; p < j.parts && nw; p++) {
            const float *dwp = t->dwp + (p - 1) * t->ndwp;
            for (int64_t e = 0; e < nw; e++)
                t->dw[i][e] += dwp[e];
            for (int64_t e = 0; t->db[i] && e < l->out_ch; e++)
                t->db[i][e] += dwp[nw + e];
        }
        g = dx;
    }
    t->input_grad = want_dx ? g : NULL;
    vv_blas_set_threads(blas);
}
