/* test_winograd.c - the Winograd F(4x4, 3x3) convolution (core/
 * model_winograd.c) against a direct convolution summed in double, on
 * random weights and inputs of even and odd sizes, with the fused affine
 * and ReLU, in chunks of samples; the forward pass of a model whose
 * convolutions take it against the same direct convolution, with and
 * without a max pool fused into it; and the forward pass's other
 * rewrites: an enlarging adaptive average pool folded into the linear
 * layer after it, against the two layers one at a time, and its max pool
 * without padding against the backend's. */
#include "../../core/model_internal.h"
#include "tap.h"
#include "vv/array.h"
#include "vv/backend.h"
#include "vv/lasso.h"
#include "vv/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* F(4x4, 3x3)'s transforms (fifths, sixths, twenty-fourths, outputs summed
 * with weights up to 8) round to a few 1e-6 of the largest output in
 * float32: measured 1.4e-6 to 4.5e-6 here, up to 512 channels (F(2x2, 3x3)
 * had 1e-7 to 3e-7).  A sign or coefficient wrong in any transform gives
 * errors of order 1. */
#define WINO_TOL 1e-5

/* y = relu?(scale * conv(x) + shift) in double, PyTorch's cross-correlation
 * with zero padding 1. */
static void direct(const vv_layer *l, const float *x, int64_t nb, const float *scale,
                   const float *shift, int relu, float *y)
{
    int c = l->c, h = l->h, w = l->w, oc = l->oc;
    for (int64_t s = 0; s < nb; s++)
        for (int o = 0; o < oc; o++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++) {
                    double acc = 0;
                    for (int ci = 0; ci < c; ci++)
                        for (int a = 0; a < 3; a++)
                            for (int b = 0; b < 3; b++) {
                                int yy = i - 1 + a, xx = j - 1 + b;
                                if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                                    continue;
                                acc += (double)l->weight[((o * c + ci) * 3 + a) * 3 + b] *
                                       x[((s * c + ci) * h + yy) * w + xx];
                            }
                    double v = acc * scale[o] + shift[o];
                    y[((s * oc + o) * h + i) * w + j] = (float)(relu && v < 0 ? 0 : v);
                }
}

/* A 3x3, stride 1, pad 1 convolution c -> oc with a bias. */
static vv_layer conv3x3(int c, int oc)
{
    return (vv_layer){.type = VV_LAYER_CONV2D,
                      .in_ch = c,
                      .out_ch = oc,
                      .kernel = 3,
                      .stride = 1,
                      .pad = 1,
                      .bias = 1,
                      .name = "conv"};
}

static int conv_model(vv_model *m, int c, int h, int w, int oc)
{
    vv_model_init(m, c, h, w);
    vv_layer l = conv3x3(c, oc);
    int rc = vv_model_add(m, &l);
    if (rc == 0)
        rc = vv_model_finish(m);
    return rc;
}

/* conv (c -> oc, 3x3) -> batch norm with random statistics and affine
 * (negative scales too: the affine must come before a max) -> relu, and a
 * 2x2 max pool when pool, on c x h x w inputs. */
static int conv_bn_relu(vv_model *m, int c, int h, int w, int oc, int pool, vv_rng *r)
{
    vv_model_init(m, c, h, w);
    vv_layer cv = conv3x3(c, oc);
    vv_layer bn = {
        .type = VV_LAYER_BATCHNORM2D, .in_ch = oc, .out_ch = oc, .eps = 1e-5f, .name = "bn"};
    vv_layer re = {.type = VV_LAYER_RELU};
    vv_layer mp = {.type = VV_LAYER_MAXPOOL2D, .kernel = 2, .stride = 2};
    int rc = vv_model_add(m, &cv);
    rc = rc ? rc : vv_model_add(m, &bn);
    rc = rc ? rc : vv_model_add(m, &re);
    rc = rc || !pool ? rc : vv_model_add(m, &mp);
    rc = rc ? rc : vv_model_finish(m);
    if (rc < 0)
        return rc;
    vv_model_init_params(m, 5);
    vv_layer *b = &m->layers[1];
    for (int o = 0; o < oc; o++) {
        b->running_mean[o] = (float)(vv_rng_uniform(r) - 0.5);
        b->running_var[o] = (float)(0.5 + vv_rng_uniform(r));
        b->weight[o] = (float)(vv_rng_uniform(r) - 0.3);
        b->bias_v[o] = (float)(vv_rng_uniform(r) - 0.5);
    }
    return 0;
}

static void one_shape(int c, int h, int w, int oc, int64_t nb, int relu, vv_rng *r)
{
    vv_model m;
    CHECKF(conv_model(&m, c, h, w, oc) == 0, "%dx%dx%d -> %d conv builds", c, h, w, oc);
    vv_model_init_params(&m, 3);
    const vv_layer *l = &m.layers[0];
    CHECKF(vv__wino_ok(l), "%dx%dx%d -> %d: Winograd takes it", c, h, w, oc);
    int64_t in = (int64_t)c * h * w, out = (int64_t)oc * h * w;
    float *x = malloc((size_t)(nb * in) * sizeof *x), *y = malloc((size_t)(nb * out) * sizeof *y),
          *ref = malloc((size_t)(nb * out) * sizeof *ref);
    float *sc = malloc(2 * (size_t)oc * sizeof *sc);
    for (int64_t i = 0; i < nb * in; i++)
        x[i] = (float)(2 * vv_rng_uniform(r) - 1);
    for (int o = 0; o < oc; o++) {
        sc[o] = (float)(0.5 + vv_rng_uniform(r));
        sc[oc + o] = (float)(vv_rng_uniform(r) - 0.5);
    }
    float *u = malloc((size_t)vv__wino_weight_floats(l) * sizeof *u);
    vv__wino_weights(l, u);
    /* Room for 2 samples at a time: the chunks must join up. */
    int64_t ns = 2 * vv__wino_sample_floats(l) + vv__wino_row_floats(l);
    float *scr = malloc((size_t)ns * sizeof *scr);
    direct(l, x, nb, sc, sc + oc, relu, ref);
    memset(y, 0xff, (size_t)(nb * out) * sizeof *y); /* NaNs: every output is written */
    int64_t done = vv__wino_conv(l, u, x, nb, y, scr, ns, sc, sc + oc, relu, 0);
    double e = rel_err(y, ref, nb * out);
    CHECKF(done == nb && e < WINO_TOL,
           "%dx%dx%d -> %d, %lld samples%s: Winograd equals the direct convolution "
           "(max rel err %.2e < %.0e)",
           c, h, w, oc, (long long)nb, relu ? ", relu" : "", e, WINO_TOL);
    if (relu) {
        int neg = 0;
        for (int64_t i = 0; i < nb * out; i++)
            neg |= y[i] < 0;
        CHECK(!neg, "the fused ReLU leaves no negative output");
    }
    CHECK(vv__wino_conv(l, u, x, nb, y, scr, vv__wino_sample_floats(l) - 1, sc, sc + oc, relu, 0) ==
              0,
          "too little scratch for one sample: it declines (returns 0)");
    free(x);
    free(y);
    free(ref);
    free(sc);
    free(u);
    free(scr);
    vv_model_free(&m);
}

/* The whole forward pass (conv, batch norm folded in, ReLU) of a model
 * whose convolution takes Winograd, against the direct convolution. */
static void through_forward(vv_rng *r)
{
    vv_model m;
    CHECK(conv_bn_relu(&m, 16, 12, 10, 24, 0, r) == 0, "conv -> batch norm -> relu builds");
    vv_layer *b = &m.layers[1];
    int64_t n = 40, in = 16 * 12 * 10, out = 24 * 12 * 10;
    float *x = malloc((size_t)(n * in) * sizeof *x), *y = malloc((size_t)(n * out) * sizeof *y),
          *ref = malloc((size_t)(n * out) * sizeof *ref), sc[48];
    for (int64_t i = 0; i < n * in; i++)
        x[i] = (float)(2 * vv_rng_uniform(r) - 1);
    vv__conv_affine(&m.layers[0], b, sc, sc + 24);
    direct(&m.layers[0], x, n, sc, sc + 24, 1, ref);
    CHECK(vv_model_forward(&m, 0, m.n, x, n, y) == 0, "forward runs");
    double e = rel_err(y, ref, n * out);
    CHECKF(e < WINO_TOL, "forward with Winograd equals conv + batch norm + relu (max rel err %.2e)",
           e);
    memset(y, 0, (size_t)(n * out) * sizeof *y);
    CHECK(vv_model_forward_parallel(&m, 0, m.n, x, n, y, 2) == 0, "forward on 2 threads runs");
    e = rel_err(y, ref, n * out);
    CHECKF(e < WINO_TOL, "... and equals it too (max rel err %.2e)", e);
    /* A plan keeps the transformed weights for many calls: the same
     * outputs, to the bit, as the calls that transform them each time. */
    vv_forward_plan *p;
    CHECK(vv_forward_plan_new(&m, 0, m.n, &p) == 0, "a plan for the whole model");
    float *yp = malloc((size_t)(n * out) * sizeof *yp);
    int same = 1;
    for (int rep = 0; rep < 2; rep++) {
        memset(yp, 0, (size_t)(n * out) * sizeof *yp);
        same &= vv_forward_plan_run(p, x, 17, yp, 1) == 0 &&
                vv_forward_plan_run(p, x + 17 * in, n - 17, yp + 17 * out, 2) == 0;
        same &= !memcmp(yp, y, (size_t)(n * out) * sizeof *yp);
    }
    CHECK(same, "two passes through the plan, in two calls each, give forward's outputs exactly");
    CHECK(vv_forward_plan_run(p, x, 0, yp, 1) == 0, "no samples: nothing to do");
    vv_forward_plan_free(p);
    CHECK(vv_forward_plan_new(&m, 1, 1, &p) < 0 && !p, "an empty range has no plan");
    free(yp);
    free(x);
    free(y);
    free(ref);
    vv_model_free(&m);
}

/* conv -> batch norm -> relu -> 2x2 max pool, the pool run inside the
 * convolution's output transform, against the direct convolution pooled
 * here, on maps whose last tile row and column are half empty (10 x 6:
 * tiles of 4 cover 12 x 8) and, through a plan, in two calls. */
static void fused_pool(vv_rng *r)
{
    int c = 16, oc = 20, h = 10, w = 6;
    vv_model m;
    CHECK(conv_bn_relu(&m, c, h, w, oc, 1, r) == 0,
          "conv -> batch norm -> relu -> max pool builds");
    vv_layer *b = &m.layers[1];
    CHECK(vv__wino_pool_ok(&m.layers[0], &m.layers[3]), "the pool can be fused");
    int64_t n = 21, in = (int64_t)c * h * w, mid = (int64_t)oc * h * w, out = mid / 4;
    float *x = malloc((size_t)(n * in) * sizeof *x), *full = malloc((size_t)(n * mid) * 4),
          *ref = malloc((size_t)(n * out) * sizeof *ref), *y = malloc((size_t)(n * out) * 4),
          sc[40];
    for (int64_t i = 0; i < n * in; i++)
        x[i] = (float)(2 * vv_rng_uniform(r) - 1);
    vv__conv_affine(&m.layers[0], b, sc, sc + oc);
    direct(&m.layers[0], x, n, sc, sc + oc, 1, full);
    for (int64_t p = 0; p < n * oc; p++)
        for (int i = 0; i < h / 2; i++)
            for (int j = 0; j < w / 2; j++) {
                const float *q = full + p * h * w + (2 * i) * w + 2 * j;
                float a = q[0] > q[1] ? q[0] : q[1], d = q[w] > q[w + 1] ? q[w] : q[w + 1];
                ref[p * (h / 2) * (w / 2) + i * (w / 2) + j] = a > d ? a : d;
            }
    vv_forward_plan *p;
    CHECK(vv_forward_plan_new(&m, 0, m.n, &p) == 0, "a plan for the four layers");
    memset(y, 0xff, (size_t)(n * out) * sizeof *y);
    CHECK(vv_forward_plan_run(p, x, 8, y, 1) == 0 &&
              vv_forward_plan_run(p, x + 8 * in, n - 8, y + 8 * out, 2) == 0,
          "the pooled forward runs, in two calls");
    double e = rel_err(y, ref, n * out);
    CHECKF(e < WINO_TOL,
           "conv, batch norm, relu and pool in one pass equal them one by one "
           "(max rel err %.2e)",
           e);
    memset(y, 0xff, (size_t)(n * out) * sizeof *y);
    CHECK(vv_model_forward(&m, 0, m.n, x, n, y) == 0, "forward without a plan runs");
    e = rel_err(y, ref, n * out);
    CHECKF(e < WINO_TOL, "... and equals them too (max rel err %.2e)", e);
    vv_forward_plan_free(p);
    vv_layer l3 = m.layers[3];
    l3.kernel = 3;
    CHECK(!vv__wino_pool_ok(&m.layers[0], &l3), "a 3x3 pool is not fused");
    l3 = m.layers[3];
    l3.stride = 1;
    CHECK(!vv__wino_pool_ok(&m.layers[0], &l3), "nor a stride-1 pool");
    vv_layer l0 = m.layers[0];
    l0.ow = 7;
    CHECK(!vv__wino_pool_ok(&l0, &m.layers[3]), "nor a pool of an odd-sized map");
    free(x);
    free(full);
    free(ref);
    free(y);
    vv_model_free(&m);
}

static void folded_pool(vv_rng *r)
{
    vv_model m;
    vv_model_init(&m, 8, 2, 3);
    vv_layer ap = {.type = VV_LAYER_ADAPTIVE_AVGPOOL2D, .out_h = 5, .out_w = 4};
    vv_layer fl = {.type = VV_LAYER_FLATTEN};
    vv_layer li = {.type = VV_LAYER_LINEAR, .in_ch = 160, .out_ch = 7, .bias = 1, .name = "fc"};
    int rc = vv_model_add(&m, &ap);
    rc = rc ? rc : vv_model_add(&m, &fl);
    rc = rc ? rc : vv_model_add(&m, &li);
    rc = rc ? rc : vv_model_finish(&m);
    CHECK(rc == 0, "adaptive pool 2x3 -> 5x4, flatten, linear builds");
    vv_model_init_params(&m, 9);
    int64_t n = 33;
    float x[33 * 48], pooled[33 * 160], y[33 * 7], ref[33 * 7];
    for (int i = 0; i < 33 * 48; i++)
        x[i] = (float)(2 * vv_rng_uniform(r) - 1);
    CHECK(vv_model_forward(&m, 0, 1, x, n, pooled) == 0 &&
              vv_model_forward(&m, 2, 3, pooled, n, ref) == 0,
          "the pool alone, then the linear layer alone");
    CHECK(vv_model_forward(&m, 0, m.n, x, n, y) == 0, "all three at once (folded)");
    double e = rel_err(y, ref, n * 7);
    CHECKF(e < 1e-6, "the folded pool and linear equal the layers one at a time (max rel err %.2e)",
           e);
    vv_model_free(&m);
}

/* The forward pass's max pool without padding (its own loop) against the
 * backend's general one, AlexNet's 3x3 stride 2 with a NaN that must
 * propagate, and a 2x2 pool of an odd map (the last column left out). */
static void fast_maxpool(vv_rng *r)
{
    int shapes[2][4] = {{15, 15, 3, 2}, {9, 7, 2, 2}};
    for (int t = 0; t < 2; t++) {
        int h = shapes[t][0], w = shapes[t][1], k = shapes[t][2], st = shapes[t][3], c = 5;
        vv_model m;
        vv_model_init(&m, c, h, w);
        vv_layer mp = {.type = VV_LAYER_MAXPOOL2D, .kernel = k, .stride = st};
        CHECK(vv_model_add(&m, &mp) == 0 && vv_model_finish(&m) == 0, "a max pool builds");
        const vv_layer *l = &m.layers[0];
        int64_t n = 3, in = (int64_t)c * h * w, out = (int64_t)c * l->oh * l->ow;
        float *x = malloc((size_t)(n * in) * sizeof *x), *y = malloc((size_t)(n * out) * 4),
              *ref = malloc((size_t)(n * out) * sizeof *ref);
        for (int64_t i = 0; i < n * in; i++)
            x[i] = (float)(2 * vv_rng_uniform(r) - 1);
        x[in + 2 * w + 4] = NAN;
        vv_backend *be = vv_backend_cpu();
        be->ops->pool2d(be, x, n * c, h, w, k, st, 0, l->oh, l->ow, 1, ref);
        CHECK(vv_model_forward(&m, 0, 1, x, n, y) == 0, "forward runs the pool");
        int same = 1, nans = 0;
        for (int64_t i = 0; i < n * out; i++) {
            same &= isnan(y[i]) ? isnan(ref[i]) : y[i] == ref[i];
            nans += isnan(y[i]) != 0;
        }
        CHECKF(same && nans >= 1,
               "%dx%d, %dx%d stride %d: the same maxima as the backend's, "
               "the NaN propagated to %d outputs",
               h, w, k, k, st, nans);
        free(x);
        free(y);
        free(ref);
        vv_model_free(&m);
    }
}

int main(void)
{
    vv_rng r;
    vv_rng_seed(&r, 17);
    one_shape(8, 4, 4, 8, 1, 0, &r);
    one_shape(16, 8, 8, 32, 5, 1, &r);
    one_shape(12, 7, 5, 9, 3, 0, &r); /* odd sizes: half-empty edge tiles */
    one_shape(64, 32, 32, 16, 2, 1, &r);
    one_shape(9, 5, 12, 4, 4, 1, &r);
    one_shape(512, 4, 4, 24, 2, 1, &r); /* VGG's 4x4 layers: one tile, 512 channels */
    one_shape(10, 6, 9, 7, 2, 0, &r);   /* 2x3 tiles, the last row and column half-empty */
    vv_model m;
    vv_layer l;
    conv_model(&m, 16, 8, 8, 16);
    l = m.layers[0];
    l.stride = 2;
    CHECK(!vv__wino_ok(&l), "stride 2 is not Winograd's");
    l = m.layers[0];
    l.c = 3;
    CHECK(!vv__wino_ok(&l), "3 input channels are not");
    vv_model_free(&m);
    through_forward(&r);
    fused_pool(&r);
    folded_pool(&r);
    fast_maxpool(&r);
    return tap_done();
}
