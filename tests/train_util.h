/* tests/train_util.h - helpers of the training tests (test_train.c,
 * test_train_grad.c): fixtures, small models built layer by layer, random
 * data and error measures. */
#ifndef VV_TEST_TRAIN_UTIL_H
#define VV_TEST_TRAIN_UTIL_H

#include "file_util.h"
#include "tap.h"
#include "vv/lasso.h"
#include "vv/model.h"
#include "vv/train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static char fx[512]; /* fixture()'s buffer */

static inline const char *fixture(const char *name)
{
    snprintf(fx, sizeof fx, "%s/train/%s", VV_FIXTURES, name);
    return fx;
}

static inline int add(vv_model *m, vv_layer_type t, const char *name, int in, int out, int k, int s,
                      int p, int bias)
{
    vv_layer l = {.type = t,
                  .in_ch = in,
                  .out_ch = out,
                  .kernel = k,
                  .stride = s,
                  .pad = p,
                  .bias = bias,
                  .eps = 1e-5f};
    if (name)
        snprintf(l.name, sizeof l.name, "%s", name);
    return vv_model_add(m, &l);
}

static inline int add_dropout(vv_model *m, float p)
{
    vv_layer l = {.type = VV_LAYER_DROPOUT, .p = p};
    return vv_model_add(m, &l);
}

static inline int add_adaptive(vv_model *m, int oh, int ow)
{
    vv_layer l = {.type = VV_LAYER_ADAPTIVE_AVGPOOL2D, .out_h = oh, .out_w = ow};
    return vv_model_add(m, &l);
}

static inline void fill_normal(float *x, int64_t n, double sd, uint64_t seed)
{
    vv_rng r;
    vv_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(sd * vv_rng_normal(&r));
}

static inline int64_t weight_numel(const vv_layer *l)
{
    if (l->type == VV_LAYER_CONV2D)
        return (int64_t)l->out_ch * l->in_ch * l->kernel * l->kernel;
    if (l->type == VV_LAYER_LINEAR)
        return (int64_t)l->out_ch * l->in_ch;
    return l->type == VV_LAYER_BATCHNORM2D ? l->out_ch : 0;
}

/* max |a - b| / max |b| */
static inline double rel_err_fd(const float *a, const double *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]);
        d = e > d || isnan(e) ? e : d;
        s = fabs(b[i]) > s ? fabs(b[i]) : s;
    }
    return d / (s > 0 ? s : 1);
}


#endif
