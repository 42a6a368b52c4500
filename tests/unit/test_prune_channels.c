/* test_prune_channels.c - deleting conv channels (vv_model_feeding_conv,
 * vv_model_prune_channels) on a small VGG-like model against the brute-force
 * equivalent (the original model with the consumer's inputs of the deleted
 * channels zeroed), parameter and MAC counts from the new shapes, saving
 * and reloading a pruned model, and the fmnist_cnn architecture's shapes
 * and counts. */
#include "file_util.h"
#include "tap.h"
#include "vv/err.h"
#include "vv/lasso.h"
#include "vv/model.h"

#include <math.h>
#include <string.h>

static vv_layer L(vv_layer_type t, const char *name, int in, int out, int k, int s, int p, int bias)
{
    vv_layer l = {.type = t,
                  .in_ch = in,
                  .out_ch = out,
                  .kernel = k,
                  .stride = s,
                  .pad = p,
                  .bias = bias,
                  .eps = 1e-5f,
                  .p = 0.5f};
    if (name)
        snprintf(l.name, sizeof l.name, "%s", name);
    return l;
}

/* The VGG-like test model with channel widths c[0..2] and hidden size h on
 * 3 x 12 x 12 inputs:
 *  0 conv(3->c0, bias) 1 bn 2 relu 3 conv(c0->c1, no bias) 4 bn 5 relu
 *  6 maxpool 2 (6x6) 7 conv(c1->c2, bias) 8 relu 9 adaptive_avgpool 3x3
 *  10 flatten (c2*9) 11 linear(c2*9 -> h) 12 relu 13 linear(h -> 5). */
static int build(vv_model *m, const int *c, int h)
{
    vv_model_init(m, 3, 12, 12);
    vv_layer ls[] = {
        L(VV_LAYER_CONV2D, "features.0", 3, c[0], 3, 1, 1, 1),
        L(VV_LAYER_BATCHNORM2D, "features.1", c[0], c[0], 0, 0, 0, 1),
        L(VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0),
        L(VV_LAYER_CONV2D, "features.3", c[0], c[1], 3, 1, 1, 0),
        L(VV_LAYER_BATCHNORM2D, "features.4", c[1], c[1], 0, 0, 0, 1),
        L(VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0),
        L(VV_LAYER_MAXPOOL2D, NULL, 0, 0, 2, 2, 0, 0),
        L(VV_LAYER_CONV2D, "features.7", c[1], c[2], 3, 1, 1, 1),
        L(VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0),
        {.type = VV_LAYER_ADAPTIVE_AVGPOOL2D, .out_h = 3, .out_w = 3},
        L(VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0),
        L(VV_LAYER_LINEAR, "classifier.0", c[2] * 9, h, 0, 0, 0, 1),
        L(VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0),
        L(VV_LAYER_LINEAR, "classifier.2", h, 5, 0, 0, 0, 1),
    };
    int rc = 0;
    for (unsigned i = 0; i < sizeof ls / sizeof *ls && rc == 0; i++)
        rc = vv_model_add(m, &ls[i]);
    return rc ? rc : vv_model_finish(m);
}

/* Random weights and non-trivial batch-norm statistics. */
static void randomize(vv_model *m, uint64_t seed)
{
    vv_rng r;
    vv_model_init_params(m, seed);
    vv_rng_seed(&r, seed + 1);
    for (int i = 0; i < m->n; i++) {
        vv_layer *l = &m->layers[i];
        if (l->type != VV_LAYER_BATCHNORM2D)
            continue;
        for (int k = 0; k < l->out_ch; k++) {
            l->weight[k] = (float)(0.5 + vv_rng_uniform(&r));
            l->bias_v[k] = (float)(0.4 * vv_rng_normal(&r));
            l->running_mean[k] = (float)(0.3 * vv_rng_normal(&r));
            l->running_var[k] = (float)(0.2 + vv_rng_uniform(&r));
        }
    }
}

/* Parameters and MACs of the test model counted from its layer widths. */
static void count(const int *c, int h, int64_t *params, int64_t *macs)
{
    int64_t p = 0, q = 0;
    p += 3 * c[0] * 9 + c[0] + 2 * c[0];      /* conv 0 (bias), bn 1 */
    q += (int64_t)144 * c[0] * 3 * 9;         /* 12x12 outputs */
    p += (int64_t)c[0] * c[1] * 9 + 2 * c[1]; /* conv 3, bn 4 */
    q += (int64_t)144 * c[1] * c[0] * 9;
    p += (int64_t)c[1] * c[2] * 9 + c[2]; /* conv 7 (bias) on 6x6 */
    q += (int64_t)36 * c[2] * c[1] * 9;
    p += (int64_t)c[2] * 9 * h + h + (int64_t)h * 5 + 5; /* linears */
    q += (int64_t)c[2] * 9 * h + (int64_t)h * 5;
    *params = p;
    *macs = q;
}

/* A random ascending subset of [0, n) of size k (1 <= k <= n). */
static void subset(vv_rng *r, int n, int k, int64_t *keep)
{
    int64_t t = 0;
    for (int i = 0; i < n; i++)
        if ((double)(k - t) / (n - i) > vv_rng_uniform(r))
            keep[t++] = i;
}

/* Zeroes, in layer i of m, the inputs of the channels of conv j not in
 * keep (blocks of g inputs per channel, nch channels). */
static void zero_dropped(vv_model *m, int i, int nch, int64_t g, const int64_t *keep, int64_t nkeep)
{
    vv_layer *b = &m->layers[i];
    int64_t in = (int64_t)nch * g;
    for (int ch = 0, t = 0; ch < nch; ch++) {
        if (t < nkeep && keep[t] == ch) {
            t++;
            continue;
        }
        for (int64_t r = 0; r < b->out_ch; r++)
            memset(b->weight + r * in + ch * g, 0, (size_t)g * sizeof(float));
    }
}

static void test_feeding(const vv_model *m)
{
    int64_t g = -7;
    CHECK(vv_model_feeding_conv(m, 0, &g) == -1 && g == 0, "first conv (fed by the input): -1");
    CHECK(vv_model_feeding_conv(m, 3, &g) == 0 && g == 9, "conv 3 is fed by conv 0, group 3x3");
    CHECK(vv_model_feeding_conv(m, 7, &g) == 3 && g == 9,
          "conv 7 is fed by conv 3 through bn, relu, maxpool; group 9");
    CHECK(vv_model_feeding_conv(m, 11, &g) == 7 && g == 9,
          "linear 11 is fed by conv 7 through adaptive avgpool 3x3 + flatten; group 9");
    CHECK(vv_model_feeding_conv(m, 13, &g) == -1, "linear fed by a linear: -1");
    CHECK(vv_model_feeding_conv(m, 11, NULL) == 7, "group may be NULL");
    CHECK(vv_model_feeding_conv(m, 1, &g) == -1 && vv_model_feeding_conv(m, 12, &g) == -1 &&
              vv_model_feeding_conv(m, 14, &g) == -1 && vv_model_feeding_conv(m, -1, &g) == -1,
          "a batch norm, a relu and out-of-range indices: -1");
}

static void test_bad(void)
{
    const int c[3] = {6, 5, 4};
    vv_model m;
    CHECK(build(&m, c, 7) == 0, "test model builds");
    randomize(&m, 3);
    int64_t p0 = vv_model_params(&m);
    int64_t asc[] = {0, 2, 1}, range[] = {0, 6}, neg[] = {-1, 2}, dup[] = {1, 1}, ok[] = {0, 1};
    CHECK(vv_model_prune_channels(&m, 0, 3, asc, 3) == VV_EINVAL, "not ascending: VV_EINVAL");
    CHECK(vv_model_prune_channels(&m, 0, 3, range, 2) == VV_EINVAL, "out of range: VV_EINVAL");
    CHECK(vv_model_prune_channels(&m, 0, 3, neg, 2) == VV_EINVAL, "negative: VV_EINVAL");
    CHECK(vv_model_prune_channels(&m, 0, 3, dup, 2) == VV_EINVAL, "repeated: VV_EINVAL");
    CHECK(vv_model_prune_channels(&m, 0, 3, ok, 0) == VV_EINVAL, "empty: VV_EINVAL");
    CHECK(vv_model_prune_channels(&m, 0, 3, ok, 7) == VV_EINVAL, "more than out_ch: VV_EINVAL");
    CHECK(vv_model_prune_channels(&m, 3, 11, ok, 2) == VV_EINVAL &&
              vv_model_prune_channels(&m, 0, 7, ok, 2) == VV_EINVAL &&
              vv_model_prune_channels(&m, 11, 13, ok, 2) == VV_EINVAL &&
              vv_model_prune_channels(&m, 0, 0, ok, 2) == VV_EINVAL,
          "a pair that is not (feeding conv, consumer): VV_EINVAL");
    CHECK(vv_model_params(&m) == p0 && m.layers[0].out_ch == 6 && m.layers[3].in_ch == 6,
          "failed calls leave the model unchanged");
    vv_model_free(&m);
}

static void test_prune(uint64_t seed)
{
    const int c[3] = {8, 7, 6}, h = 10;
    vv_model orig, pr;
    vv_rng r;
    vv_rng_seed(&r, seed * 7919 + 1);
    CHECK(build(&orig, c, h) == 0, "test model builds");
    randomize(&orig, seed);
    int64_t p0, q0;
    count(c, h, &p0, &q0);
    CHECKF(vv_model_params(&orig) == p0 && vv_model_macs(&orig) == q0,
           "unpruned: params %lld and MACs %lld as counted by hand", (long long)p0, (long long)q0);
    test_feeding(&orig);
    vv_model orig0;
    CHECK(vv_model_copy(&orig, &pr) == 0 && vv_model_copy(&orig, &orig0) == 0, "copies");
    /* Delete random channels at each (conv, consumer) pair; in the original
     * zero the consumer's inputs of the deleted channels instead. */
    static const int pairs[3][2] = {{0, 3}, {3, 7}, {7, 11}};
    int nc[3];
    for (int q = 0; q < 3; q++) {
        int j = pairs[q][0], i = pairs[q][1], n = c[q];
        int k = 1 + (int)(vv_rng_uniform(&r) * (n - 1)); /* 1 .. n-1 kept */
        int64_t keep[16], g;
        subset(&r, n, k, keep);
        CHECK(vv_model_feeding_conv(&pr, i, &g) == j, "pair is (feeding conv, consumer)");
        int rc = vv_model_prune_channels(&pr, j, i, keep, k);
        CHECKF(rc == 0,
               "seed %llu: keep %d of %d channels of layer %d (consumer %d, group %lld)%s%s",
               (unsigned long long)seed, k, n, j, i, (long long)g, rc ? ": " : "",
               rc ? vv_err_detail() : "");
        zero_dropped(&orig, i, n, g, keep, k);
        nc[q] = k;
    }
    CHECK(pr.layers[0].out_ch == nc[0] && pr.layers[1].out_ch == nc[0] &&
              pr.layers[3].in_ch == nc[0] && pr.layers[3].out_ch == nc[1] &&
              pr.layers[4].in_ch == nc[1] && pr.layers[7].in_ch == nc[1] &&
              pr.layers[7].out_ch == nc[2] && pr.layers[11].in_ch == nc[2] * 9 &&
              pr.layers[10].oc == nc[2] * 9,
          "pruned shapes re-derived");
    int64_t p1, q1;
    count(nc, h, &p1, &q1);
    CHECKF(vv_model_params(&pr) == p1 && vv_model_macs(&pr) == q1,
           "pruned: params %lld (want %lld) and MACs %lld (want %lld) from the new shapes",
           (long long)vv_model_params(&pr), (long long)p1, (long long)vv_model_macs(&pr),
           (long long)q1);
    /* Logits: pruned == original with the dropped inputs zeroed. */
    enum { N = 9 };
    int64_t din = vv_model_size(&orig, -1);
    float *x = malloc((size_t)(N * din) * sizeof(float)), ya[N * 5], yb[N * 5], yc[N * 5];
    for (int64_t t = 0; t < N * din; t++)
        x[t] = (float)vv_rng_normal(&r);
    CHECK(vv_model_forward(&orig, 0, orig.n, x, N, ya) == 0 &&
              vv_model_forward(&pr, 0, pr.n, x, N, yb) == 0,
          "forward passes run");
    CHECK(vv_model_forward(&orig0, 0, orig0.n, x, N, yc) == 0 && rel_err(yc, ya, N * 5) > 1e-3,
          "the deleted channels mattered (the unpruned logits differ)");
    double e = rel_err(yb, ya, N * 5);
    CHECKF(e < 1e-5, "seed %llu: pruned logits equal the zeroed original's (rel err %.2e)",
           (unsigned long long)seed, e);
    /* Save, load into a model built with the pruned shapes. */
    char path[512];
    tmp_path(path, sizeof path, "prune_channels", "pruned.safetensors");
    vv_model fresh;
    CHECK(vv_model_save(&pr, path) == 0, "pruned model saves");
    CHECK(build(&fresh, nc, h) == 0, "a fresh model of the pruned shapes builds");
    int rc = vv_model_load(&fresh, path);
    CHECKF(rc == 0, "the pruned weights load into it%s%s", rc ? ": " : "",
           rc ? vv_err_detail() : "");
    CHECK(vv_model_forward(&fresh, 0, fresh.n, x, N, yc) == 0 && !memcmp(yc, yb, sizeof yb),
          "reloaded logits equal the pruned model's exactly");
    unlink(path);
    free(x);
    vv_model_free(&fresh);
    vv_model_free(&pr);
    vv_model_free(&orig);
    vv_model_free(&orig0);
}

/* A conv consumer directly after a conv (no layers between), and a linear
 * straight after a 1x1 conv output (no flatten, group 1). */
static void test_edges(void)
{
    vv_model m;
    vv_model_init(&m, 2, 3, 3);
    vv_layer a = L(VV_LAYER_CONV2D, "a", 2, 4, 3, 1, 1, 1),
             b = L(VV_LAYER_CONV2D, "b", 4, 3, 3, 1, 0, 0),
             c = L(VV_LAYER_LINEAR, "c", 3, 2, 0, 0, 0, 1);
    vv_model_add(&m, &a);
    vv_model_add(&m, &b);
    vv_model_add(&m, &c);
    CHECK(vv_model_finish(&m) == 0, "conv-conv-linear model builds");
    vv_model_init_params(&m, 5);
    int64_t g;
    CHECK(vv_model_feeding_conv(&m, 1, &g) == 0 && g == 9, "adjacent convs: group 9");
    CHECK(vv_model_feeding_conv(&m, 2, &g) == 1 && g == 1, "linear on a 1x1 conv output: group 1");
    vv_model z;
    CHECK(vv_model_copy(&m, &z) == 0, "copy");
    int64_t k1[] = {1, 3}, k2[] = {2};
    zero_dropped(&z, 1, 4, 9, k1, 2);
    zero_dropped(&z, 2, 3, 1, k2, 1);
    CHECK(vv_model_prune_channels(&m, 0, 1, k1, 2) == 0 &&
              vv_model_prune_channels(&m, 1, 2, k2, 1) == 0,
          "prunes both pairs");
    float x[3 * 18], y1[6], y2[6];
    vv_rng r;
    vv_rng_seed(&r, 9);
    for (int t = 0; t < 3 * 18; t++)
        x[t] = (float)vv_rng_normal(&r);
    vv_model_forward(&m, 0, m.n, x, 3, y1);
    vv_model_forward(&z, 0, z.n, x, 3, y2);
    CHECKF(rel_err(y1, y2, 6) < 1e-5, "edge model: pruned == zeroed (rel err %.2e)",
           rel_err(y1, y2, 6));
    vv_model_free(&m);
    vv_model_free(&z);
}

/* AlexNet's classifier.1 after adaptive_avgpool 6x6 + flatten: 36 columns
 * per channel of features.10 (here a 3x3 map averaged up to 6x6). */
static void test_alexnet(void)
{
    vv_model m, z;
    CHECK(vv_model_alexnet_cifar64(&m, 16, 10) == 0, "alexnet_cifar64 / 16 builds");
    vv_model_init_params(&m, 11);
    int j = vv_model_find(&m, "features.10"), i = vv_model_find(&m, "classifier.1");
    int64_t g;
    int fj = vv_model_feeding_conv(&m, i, &g);
    CHECKF(fj == j && g == 36 && m.layers[i].in_ch == 16 * 36,
           "alexnet: classifier.1 is fed by features.10 with group 36 (got %lld)", (long long)g);
    CHECK(vv_model_copy(&m, &z) == 0, "copy");
    int64_t keep[] = {0, 3, 4, 9, 10, 15};
    zero_dropped(&z, i, 16, 36, keep, 6);
    int rc = vv_model_prune_channels(&m, j, i, keep, 6);
    CHECK(rc == 0 && m.layers[i].in_ch == 6 * 36 && m.layers[j].out_ch == 6,
          "alexnet: keeps 6 of 16 channels (216 columns)");
    int64_t din = vv_model_size(&m, -1);
    float *x = malloc((size_t)(2 * din) * sizeof(float)), y1[20], y2[20];
    vv_rng r;
    vv_rng_seed(&r, 12);
    for (int64_t t = 0; t < 2 * din; t++)
        x[t] = (float)vv_rng_uniform(&r);
    vv_model_forward(&m, 0, m.n, x, 2, y1);
    vv_model_forward(&z, 0, z.n, x, 2, y2);
    CHECKF(rel_err(y1, y2, 20) < 1e-5, "alexnet: pruned == zeroed (rel err %.2e)",
           rel_err(y1, y2, 20));
    free(x);
    vv_model_free(&m);
    vv_model_free(&z);
}

static void test_fmnist_cnn(void)
{
    vv_model m;
    int rc = vv_model_fmnist_cnn(&m, 1, 10);
    CHECKF(rc == 0, "fmnist_cnn builds%s%s", rc ? ": " : "", rc ? vv_err_detail() : "");
    if (rc)
        return;
    static const struct {
        const char *name;
        vv_layer_type t;
        int in, out, oh;
    } want[] = {
        {"features.0", VV_LAYER_CONV2D, 1, 16, 28},
        {"features.1", VV_LAYER_BATCHNORM2D, 16, 16, 28},
        {"features.3", VV_LAYER_CONV2D, 16, 16, 28},
        {"features.4", VV_LAYER_BATCHNORM2D, 16, 16, 28},
        {"features.7", VV_LAYER_CONV2D, 16, 32, 14},
        {"features.8", VV_LAYER_BATCHNORM2D, 32, 32, 14},
        {"features.10", VV_LAYER_CONV2D, 32, 32, 14},
        {"features.11", VV_LAYER_BATCHNORM2D, 32, 32, 14},
        {"features.14", VV_LAYER_CONV2D, 32, 64, 7},
        {"features.15", VV_LAYER_BATCHNORM2D, 64, 64, 7},
        {"classifier.1", VV_LAYER_LINEAR, 576, 128, 1},
        {"classifier.3", VV_LAYER_LINEAR, 128, 10, 1},
    };
    int ok = m.in_c == 1 && m.in_h == 28 && m.in_w == 28 && m.n == 23;
    for (unsigned q = 0; q < sizeof want / sizeof *want; q++) {
        int i = vv_model_find(&m, want[q].name);
        ok &= i >= 0 && m.layers[i].type == want[q].t && m.layers[i].in_ch == want[q].in &&
              m.layers[i].out_ch == want[q].out && m.layers[i].oh == want[q].oh;
        if (i >= 0 && want[q].t == VV_LAYER_CONV2D)
            ok &= m.layers[i].kernel == 3 && m.layers[i].pad == 1 && m.layers[i].stride == 1 &&
                  !m.layers[i].bias;
    }
    CHECK(ok, "fmnist_cnn: the documented layers and shapes");
    int fl = vv_model_find(&m, "classifier.1") - 2;
    CHECK(fl > 0 && m.layers[fl].type == VV_LAYER_FLATTEN && m.layers[fl].c == 64 &&
              m.layers[fl].h == 3 && m.layers[fl].w == 3 &&
              m.layers[fl - 1].type == VV_LAYER_MAXPOOL2D &&
              m.layers[fl + 1].type == VV_LAYER_DROPOUT,
          "fmnist_cnn: maxpool to 64x3x3, flatten, dropout");
    CHECK(vv_model_size(&m, m.n - 1) == 10, "fmnist_cnn: 10 logits");
    /* By hand: convs 1*16*9 + 16*16*9 + 16*32*9 + 32*32*9 + 32*64*9, batch
     * norms 2*(16+16+32+32+64), linears 576*128+128 + 128*10+10. */
    int64_t params = 144 + 2304 + 4608 + 9216 + 18432 + 320 + 73856 + 1290;
    int64_t macs = 784LL * 16 * 9 + 784LL * 16 * 144 + 196LL * 32 * 144 + 196LL * 32 * 288 +
                   49LL * 64 * 288 + 576 * 128 + 128 * 10;
    CHECKF(vv_model_params(&m) == params && params == 110170, "fmnist_cnn: %lld params (want %lld)",
           (long long)vv_model_params(&m), (long long)params);
    CHECKF(vv_model_macs(&m) == macs && macs == 5606912, "fmnist_cnn: %lld MACs (want %lld)",
           (long long)vv_model_macs(&m), (long long)macs);
    int64_t g;
    CHECK(vv_model_feeding_conv(&m, vv_model_find(&m, "classifier.1"), &g) ==
                  vv_model_find(&m, "features.14") &&
              g == 9,
          "fmnist_cnn: classifier.1 is fed by features.14, 9 inputs per channel");
    vv_model_free(&m);
    CHECK(vv_model_fmnist_cnn(&m, 2, 10) == 0 && m.layers[0].out_ch == 8 &&
              m.layers[vv_model_find(&m, "classifier.1")].in_ch == 288 &&
              vv_model_params(&m) == 28018 && vv_model_macs(&m) == 1430272,
          "fmnist_cnn width_div 2 halves the widths (28,018 params, 1,430,272 MACs)");
    vv_model_free(&m);
    CHECK(vv_model_fmnist_cnn(&m, 3, 10) == VV_EINVAL,
          "width_div 3 (not a divisor of 16): VV_EINVAL");
    CHECK(vv_model_fmnist_cnn(&m, 1, 1) == VV_EINVAL, "classes 1: VV_EINVAL");
}

int main(void)
{
    const char *t = getenv("VV_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", t ? t : "/tmp");
    test_bad();
    for (uint64_t seed = 1; seed <= 4; seed++)
        test_prune(seed);
    test_edges();
    test_alexnet();
    test_fmnist_cnn();
    return tap_done();
}
