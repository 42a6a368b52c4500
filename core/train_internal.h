/* train_internal.h - what train.c (the trainer, its buffers, the
 * optimizers) shares with train_pass.c (the training-mode forward and
 * backward passes, split over threads). */
#ifndef VV_TRAIN_INTERNAL_H
#define VV_TRAIN_INTERNAL_H

#include "model_internal.h"
#include "vv/lasso.h"
#include "vv/train.h"

/* One trainable tensor: a layer's weight or bias. */
typedef struct {
    int layer, is_bias, decay;
    int64_t numel;
    float *grad;
    float *m1, *m2; /* momentum buffer, or Adam's exp_avg and exp_avg_sq */
} tparam;

struct vv_trainer {
    vv_model *m;
    vv_train_opts o;
    int64_t step;
    int np;
    tparam *p;
    float **dw, **db;       /* per layer: views of the tparams' gradients */
    int64_t *group;         /* per conv layer: samples per gemm group */
    float **mean, **invstd; /* per batch-norm layer: the batch statistics */
    double **var;           /* per batch-norm layer: the biased batch variance */
    /* Batch buffers, for up to cap samples. */
    int64_t cap;
    float **buf;          /* per layer: its output (NULL for flatten, in-place relu) */
    const float **out;    /* per layer: its output in the last pass (may alias) */
    int32_t **argmax;     /* per max-pool layer */
    uint8_t **keep;       /* per dropout layer */
    const uint8_t **mask; /* per dropout layer: keep, or NULL when inactive */
    float *ga, *gb;       /* activation gradients, ping-pong */
    /* Each layer's work is split over parts threads (train_pass.c), each
     * with nscratch floats of scratch (part p's at scratch + p nscratch)
     * and, for p > 0, a conv's or linear layer's weight and bias gradients
     * of its samples
     * at dwp + (p - 1) ndwp. */
    int parts;
    int64_t min_split;
    float *scratch;
    int64_t nscratch;
    float *dwp;
    int64_t ndwp;
    const float *input_grad;
};

/* The training-mode forward pass of x (n samples) through every layer:
 * outputs in t->out, batch statistics, dropout masks (drawn from rng;
 * NULL: dropout off) and max-pool argmaxes kept. */
void vv__train_forward(vv_trainer *t, const float *x, int64_t n, vv_rng *rng);
/* Back-propagates dz (in t->ga) down to layer lo; with want_dx, through
 * layer lo to the input as well (t->input_grad). */
void vv__train_backward(vv_trainer *t, const float *x, int64_t n, int lo, int want_dx);
/* The threads a layer's work is split over: VV_TRAIN_THREADS when set
 * (then *min_split is 0: every layer is split), else the cores, at most
 * VV_TRAIN_PARTS (*min_split: the floats below which a layer runs on one
 * thread). */
int vv__train_parts(int64_t *min_split);
#define VV_TRAIN_PARTS 8

#endif
