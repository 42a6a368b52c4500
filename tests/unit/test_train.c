/* test_train.c - training the model runtime: a few optimizer steps against
 * PyTorch (tests/fixtures/gen_train.py), a short run that must learn a
 * separable problem, bit-identical resumption from checkpoints, bad input,
 * memory, and the step time of a 784-1024-1024-10 MLP.  The gradients are
 * checked in test_train_grad.c. */
#include "train_util.h"
#include "vv/array.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"

#include <math.h>
#include <string.h>
#include <time.h>

/* The kernels vvd chooses for this CPU (OpenBLAS's own choice can be generic
 * on recent CPUs): set before OpenBLAS starts (vv/blas.h). */
VV_BLAS_PREINIT;

/* ---- Against PyTorch ------------------------------------------------------------- */

/* The net of gen_train.py: conv1 (no bias) + bn1 + relu + maxpool 2 +
 * conv2 + relu + avgpool 3/2/1 + flatten + dropout(p) + fc. */
static int torch_net(vv_model *m, float p)
{
    vv_model_init(m, 3, 10, 10);
    add(m, VV_LAYER_CONV2D, "conv1", 3, 6, 3, 1, 1, 0);
    add(m, VV_LAYER_BATCHNORM2D, "bn1", 6, 6, 0, 0, 0, 0);
    add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    add(m, VV_LAYER_MAXPOOL2D, NULL, 0, 0, 2, 0, 0, 0);
    add(m, VV_LAYER_CONV2D, "conv2", 6, 8, 3, 1, 1, 1);
    add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    add(m, VV_LAYER_AVGPOOL2D, NULL, 0, 0, 3, 2, 1, 0);
    add(m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    add_dropout(m, p);
    add(m, VV_LAYER_LINEAR, "fc", 72, 5, 0, 0, 0, 1);
    return vv_model_finish(m);
}

/* The fixture's data: x (48 x 300) and labels. */
typedef struct {
    float *x;
    int32_t y[48];
} tdata;

static int load_data(tdata *d)
{
    vv_st_f32 *ts;
    int nt;
    if (vv_safetensors_load_f32(fixture("data.safetensors"), &ts, &nt) < 0)
        return -1;
    d->x = NULL;
    for (int j = 0; j < nt; j++) {
        if (!strcmp(ts[j].name, "x") && ts[j].numel == 48 * 300) {
            d->x = ts[j].data;
            ts[j].data = NULL;
        } else if (!strcmp(ts[j].name, "y") && ts[j].numel == 48) {
            for (int s = 0; s < 48; s++)
                d->y[s] = (int32_t)ts[j].data[s];
        }
    }
    vv_st_f32_free(ts, nt);
    return d->x ? 0 : -1;
}

/* Largest relative difference (per tensor, to its largest entry) between
 * the parameters and running statistics of two models. */
static double model_diff(const vv_model *a, const vv_model *b)
{
    double e = 0;
    for (int i = 0; i < a->n; i++) {
        const vv_layer *la = &a->layers[i], *lb = &b->layers[i];
        int64_t nw = weight_numel(la);
        if (!nw)
            continue;
        double d = rel_err(la->weight, lb->weight, nw);
        e = d > e ? d : e;
        if (la->bias_v && (d = rel_err(la->bias_v, lb->bias_v, la->out_ch)) > e)
            e = d;
        if (la->running_mean) {
            if ((d = rel_err(la->running_mean, lb->running_mean, la->out_ch)) > e)
                e = d;
            if ((d = rel_err(la->running_var, lb->running_var, la->out_ch)) > e)
                e = d;
        }
    }
    return e;
}

static void against_torch(void)
{
    tdata d;
    if (!CHECK(load_data(&d) == 0, "PyTorch fixture data loads"))
        return;
    static const struct {
        const char *name;
        vv_optimizer opt;
        vv_loss loss;
        double momentum, wd, bn_momentum;
        int decoupled, no_decay;
    } cases[] = {
        {"sgd", VV_OPT_SGD, VV_LOSS_CE, 0.9, 5e-4, 0.1, 0, 0},
        {"sgd_nodecay", VV_OPT_SGD, VV_LOSS_CE, 0.5, 1e-2, 0.1, 0, 1},
        {"sgdw", VV_OPT_SGD, VV_LOSS_MSE, 0.9, 0.05, 0.1, 1, 0},
        {"adam", VV_OPT_ADAM, VV_LOSS_CE, 0, 1e-3, 0.2, 0, 0},
        {"adamw_mse", VV_OPT_ADAM, VV_LOSS_MSE, 0, 0.05, 0.1, 1, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        vv_model m, ref;
        torch_net(&m, 0.0f);
        torch_net(&ref, 0.0f);
        char key[64], file[64];
        snprintf(file, sizeof file, "%s.safetensors", cases[c].name);
        int rc = vv_model_load(&m, fixture("init.safetensors"));
        if (rc == 0)
            rc = vv_model_load(&ref, fixture(file));
        CHECKF(rc == 0, "%s: initial and final state_dicts load (%s)", cases[c].name,
               rc ? vv_err_detail() : "");
        vv_array lrs = {0}, losses = {0};
        snprintf(key, sizeof key, "lr.%s", cases[c].name);
        vv_safetensors_read(fixture("data.safetensors"), key, &lrs);
        snprintf(key, sizeof key, "loss.%s", cases[c].name);
        vv_safetensors_read(fixture("data.safetensors"), key, &losses);
        vv_train_opts o;
        vv_train_opts_default(&o);
        o.optimizer = cases[c].opt;
        o.loss = cases[c].loss;
        o.momentum = cases[c].momentum;
        o.weight_decay = cases[c].wd;
        o.bn_momentum = cases[c].bn_momentum;
        o.decoupled = cases[c].decoupled;
        o.no_decay_bias_bn = cases[c].no_decay;
        vv_trainer *t;
        vv_trainer_init(&t, &m, &o);
        double lerr = 0;
        int steps = (int)lrs.shape[0];
        for (int s = 0; s < steps && lrs.dtype == VV_F64; s++) {
            vv_step_stats st;
            int b = s % 3;
            rc = vv_trainer_step(t, d.x + b * 16 * 300, d.y + b * 16, 16, ((double *)lrs.data)[s],
                                 NULL, &st);
            double want = ((double *)losses.data)[s], e = fabs(st.loss - want) / fabs(want);
            lerr = rc || e > lerr ? (rc ? 1 : e) : lerr;
        }
        CHECKF(steps == 6 && lerr < 1e-5,
               "%s: the losses of %d steps equal PyTorch's (max rel err %.1e < 1e-5)",
               cases[c].name, steps, lerr);
        double e = model_diff(&m, &ref);
        CHECKF(e < 1e-4,
               "%s: weights and running statistics after %d steps equal PyTorch's (max rel err "
               "%.1e < 1e-4)",
               cases[c].name, steps, e);
        CHECKF(vv_trainer_steps(t) == steps, "%s: the trainer counted %lld steps", cases[c].name,
               (long long)vv_trainer_steps(t));
        vv_trainer_free(t);
        vv_array_free(&lrs);
        vv_array_free(&losses);
        vv_model_free(&m);
        vv_model_free(&ref);
    }
    free(d.x);
}

/* ---- Learning a separable problem ------------------------------------------------ */

/* 1 x 6 x 6 images of four classes: a bright 3x3 block in the class's
 * quadrant, plus N(0, 0.5^2) noise everywhere. */
static void blobs(float *x, int32_t *y, int n, uint64_t seed)
{
    vv_rng r;
    vv_rng_seed(&r, seed);
    for (int s = 0; s < n; s++) {
        int c = s % 4;
        y[s] = c;
        for (int p = 0; p < 36; p++) {
            int i = p / 6, j = p % 6;
            int in = i / 3 == c / 2 && j / 3 == c % 2;
            x[s * 36 + p] = (float)(in + 0.5 * vv_rng_normal(&r));
        }
    }
}

static void learns(void)
{
    enum { N = 256, B = 32, EPOCHS = 10 };
    vv_model m;
    vv_model_init(&m, 1, 6, 6);
    add(&m, VV_LAYER_CONV2D, "conv", 1, 4, 3, 1, 1, 1);
    add(&m, VV_LAYER_BATCHNORM2D, "bn", 4, 4, 0, 0, 0, 0);
    add(&m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    add(&m, VV_LAYER_MAXPOOL2D, NULL, 0, 0, 2, 0, 0, 0);
    add(&m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    add_dropout(&m, 0.2f);
    add(&m, VV_LAYER_LINEAR, "fc", 36, 4, 0, 0, 0, 1);
    vv_model_finish(&m);
    vv_model_init_params(&m, 5);
    float *x = malloc(N * 36 * sizeof(float)), *xb = malloc(B * 36 * sizeof(float));
    int32_t y[N], yb[B], perm[N];
    blobs(x, y, N, 6);
    vv_train_opts o;
    vv_train_opts_default(&o);
    o.momentum = 0.9;
    o.weight_decay = 1e-4;
    vv_trainer *t;
    vv_trainer_init(&t, &m, &o);
    vv_rng rng;
    vv_rng_seed(&rng, 7);
    double first = 0, last = 0;
    int ok = 1;
    for (int ep = 0; ep < EPOCHS; ep++) {
        for (int s = 0; s < N; s++)
            perm[s] = s;
        for (int s = N - 1; s > 0; s--) {
            int j = (int)(vv_rng_uniform(&rng) * (s + 1)), tmp = perm[s];
            perm[s] = perm[j];
            perm[j] = tmp;
        }
        double sum = 0;
        for (int b0 = 0; b0 < N; b0 += B) {
            for (int s = 0; s < B; s++) {
                memcpy(xb + s * 36, x + perm[b0 + s] * 36, 36 * sizeof(float));
                yb[s] = y[perm[b0 + s]];
            }
            vv_step_stats st;
            ok &= vv_trainer_step(t, xb, yb, B, 0.05, &rng, &st) == 0;
            sum += st.loss;
        }
        if (ep == 0)
            first = sum / (N / B);
        last = sum / (N / B);
    }
    CHECKF(ok && first > 0.5 && last < 0.15,
           "blobs: the mean training loss drops from %.3f (> 0.5) in epoch 1 to %.4f (< 0.15) "
           "in epoch %d",
           first, last, EPOCHS);
    /* Eval mode (running statistics, no dropout) on fresh samples. */
    float *xt = malloc(N * 36 * sizeof(float)), logits[N * 4];
    int32_t yt[N];
    blobs(xt, yt, N, 8);
    vv_model_forward(&m, 0, m.n, xt, N, logits);
    int right = 0;
    for (int s = 0; s < N; s++) {
        int best = 0;
        for (int j = 1; j < 4; j++)
            best = logits[s * 4 + j] > logits[s * 4 + best] ? j : best;
        right += best == yt[s];
    }
    CHECKF(right >= N * 97 / 100,
           "blobs: eval-mode accuracy on new samples is %d/%d (>= 97%%, running statistics "
           "work)",
           right, N);
    vv_trainer_free(t);
    vv_model_free(&m);
    free(x);
    free(xb);
    free(xt);
}

/* ---- Checkpoints ----------------------------------------------------------------- */

/* Runs steps [from, to) of a fixed schedule over the fixture data. */
static int run_steps(vv_trainer *t, const tdata *d, int from, int to, vv_rng *rng, double *losses)
{
    for (int s = from; s < to; s++) {
        int b = s % 3;
        vv_step_stats st;
        int rc = vv_trainer_step(t, d->x + b * 16 * 300, d->y + b * 16, 16, 0.02 * (1 - s / 20.0),
                                 rng, &st);
        if (rc < 0)
            return rc;
        losses[s] = st.loss;
    }
    return 0;
}

static int same_model(const vv_model *a, const vv_model *b)
{
    for (int i = 0; i < a->n; i++) {
        const vv_layer *la = &a->layers[i], *lb = &b->layers[i];
        size_t nw = (size_t)weight_numel(la) * sizeof(float), nc = (size_t)la->out_ch * 4;
        if (nw && memcmp(la->weight, lb->weight, nw))
            return 0;
        if (la->bias_v && memcmp(la->bias_v, lb->bias_v, nc))
            return 0;
        if (la->running_mean && (memcmp(la->running_mean, lb->running_mean, nc) ||
                                 memcmp(la->running_var, lb->running_var, nc)))
            return 0;
    }
    return 1;
}

static void resume(vv_optimizer opt, double momentum)
{
    enum { K = 3, STEPS = 8 };
    const char *name = opt == VV_OPT_ADAM ? "Adam" : momentum > 0 ? "SGD momentum" : "SGD";
    tdata d;
    if (load_data(&d) < 0)
        return;
    vv_train_opts o;
    vv_train_opts_default(&o);
    o.optimizer = opt;
    o.momentum = momentum;
    o.weight_decay = 1e-3;
    vv_model a, b;
    torch_net(&a, 0.25f);
    vv_model_load(&a, fixture("init.safetensors"));
    vv_model_copy(&a, &b);

    /* Uninterrupted. */
    vv_trainer *t;
    vv_rng rng;
    vv_rng_seed(&rng, 99);
    double la[STEPS], lb[STEPS];
    vv_trainer_init(&t, &a, &o);
    int rc = run_steps(t, &d, 0, STEPS, &rng, la);
    vv_trainer_free(t);

    /* K steps, checkpoint, everything freed, then resumed. */
    vv_rng_seed(&rng, 99);
    vv_trainer_init(&t, &b, &o);
    rc |= run_steps(t, &d, 0, K, &rng, lb);
    char wpath[512], opath[512];
    tmp_path(wpath, sizeof wpath, "train", "weights.safetensors");
    tmp_path(opath, sizeof opath, "train", "optim.safetensors");
    int s1 = vv_model_save(&b, wpath), s2 = vv_trainer_save(t, opath);
    CHECKF(s1 == 0 && s2 == 0, "%s: weights and optimizer state saved after %d steps", name, K);
    vv_rng saved_rng = rng;
    vv_trainer_free(t);
    vv_model_free(&b);

    vv_model c;
    torch_net(&c, 0.25f);
    vv_model_init_params(&c, 1234); /* anything: overwritten by the load */
    rc |= vv_model_load(&c, wpath);
    vv_trainer_init(&t, &c, &o);
    int lrc = vv_trainer_load(t, opath);
    CHECKF(lrc == 0 && vv_trainer_steps(t) == K, "%s: optimizer state loads, at step %lld (%s)",
           name, (long long)vv_trainer_steps(t), lrc ? vv_err_detail() : "");
    rng = saved_rng;
    rc |= run_steps(t, &d, K, STEPS, &rng, lb);
    CHECK(rc == 0, "the runs complete");
    CHECKF(same_model(&a, &c) && !memcmp(la, lb, sizeof la),
           "%s: stopped after %d steps and resumed, %d steps give bit-identical weights, "
           "running statistics and losses",
           name, K, STEPS);
    /* The optimizer state matters: resuming with fresh state differs. */
    vv_trainer_free(t);
    vv_model_free(&c);
    torch_net(&c, 0.25f);
    vv_model_load(&c, wpath);
    vv_trainer_init(&t, &c, &o);
    rng = saved_rng;
    run_steps(t, &d, K, STEPS, &rng, lb);
    if (opt == VV_OPT_ADAM || momentum > 0)
        CHECKF(!same_model(&a, &c), "%s: resuming without the optimizer state differs", name);
    vv_trainer_free(t);
    vv_model_free(&c);
    vv_model_free(&a);
    remove(wpath);
    remove(opath);
    free(d.x);
}

/* ---- Bad input ------------------------------------------------------------------- */

static void bad_input(void)
{
    vv_train_opts o;
    vv_train_opts_default(&o);
    vv_trainer *t = (vv_trainer *)&o;
    vv_model m;
    vv_model_init(&m, 1, 2, 2);
    add(&m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    add(&m, VV_LAYER_LINEAR, "fc", 4, 3, 0, 0, 0, 1);
    int rc = vv_trainer_init(&t, &m, &o);
    CHECKF(rc == VV_EINVAL && !t && strstr(vv_err_detail(), "not finished"),
           "an unfinished model is refused: %s", vv_err_detail());
    vv_model_finish(&m);
    vv_model_init_params(&m, 3);
    o.lr = 0;
    rc = vv_trainer_init(&t, &m, &o);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "lr"), "lr 0 is refused: %s",
           vv_err_detail());
    vv_train_opts_default(&o);
    o.momentum = 1;
    rc = vv_trainer_init(&t, &m, &o);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "momentum"), "momentum 1 is refused: %s",
           vv_err_detail());
    vv_train_opts_default(&o);
    o.optimizer = 7;
    CHECK(vv_trainer_init(&t, &m, &o) == VV_EINVAL, "an unknown optimizer is refused");
    vv_train_opts_default(&o);
    o.loss = 0;
    CHECK(vv_trainer_init(&t, &m, &o) == VV_EINVAL, "an unknown loss is refused");
    vv_train_opts_default(&o);
    o.momentum = 0.9;
    rc = vv_trainer_init(&t, &m, &o);
    CHECK(rc == 0, "a valid trainer is created");

    float x[5 * 4] = {1, 2, 3, 4, 0, 1, 0, 1, -1, 2, 0, 0, 3, 3, 1, 0, 2, 2, 2, 2};
    int32_t y[5] = {0, 1, 2, 1, 0};
    float w0[12];
    memcpy(w0, m.layers[1].weight, sizeof w0);
    rc = vv_trainer_step(t, x, y, 0, 0.1, NULL, NULL);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "at least 1 sample"),
           "an empty batch is refused: %s", vv_err_detail());
    CHECK(vv_trainer_step(t, x, y, -3, 0.1, NULL, NULL) == VV_EINVAL, "n < 0 is refused");
    y[3] = 7;
    rc = vv_trainer_step(t, x, y, 5, 0.1, NULL, NULL);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "sample 3") &&
               strstr(vv_err_detail(), "label 7"),
           "a label out of range names the sample and label: %s", vv_err_detail());
    y[3] = -1;
    rc = vv_trainer_grad(t, x, y, 5, NULL, NULL);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "label -1"),
           "a negative label is refused by vv_trainer_grad too: %s", vv_err_detail());
    y[3] = 1;
    rc = vv_trainer_step(t, x, y, 5, 0, NULL, NULL);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "lr"), "lr 0 is refused by a step: %s",
           vv_err_detail());
    CHECK(vv_trainer_step(t, x, y, 5, -0.1, NULL, NULL) == VV_EINVAL, "lr < 0 is refused");
    CHECK(vv_trainer_step(t, x, y, 5, NAN, NULL, NULL) == VV_EINVAL, "lr NaN is refused");
    CHECK(!memcmp(w0, m.layers[1].weight, sizeof w0) && vv_trainer_steps(t) == 0,
          "refused steps change nothing");
    float xnan[5 * 4];
    memcpy(xnan, x, sizeof x);
    xnan[6] = NAN;
    rc = vv_trainer_step(t, xnan, y, 5, 0.1, NULL, NULL);
    CHECKF(rc == VV_ENUMERIC && !memcmp(w0, m.layers[1].weight, sizeof w0),
           "a NaN loss is VV_ENUMERIC and leaves the weights alone: %s", vv_err_detail());
    vv_step_stats st;
    CHECK(vv_trainer_step(t, x, y, 5, 0.1, NULL, &st) == 0 && vv_trainer_steps(t) == 1 &&
              memcmp(w0, m.layers[1].weight, sizeof w0),
          "then a good step runs and moves the weights");
    const float *dw, *db;
    CHECK(vv_trainer_grads(t, 5, &dw, &db) == VV_EINVAL && !dw && !db,
          "vv_trainer_grads refuses a bad layer index");
    CHECK(vv_trainer_input_grad(t) == NULL, "a step leaves no input gradient");

    /* Checkpoint errors. */
    char path[512];
    tmp_path(path, sizeof path, "train", "bad.safetensors");
    CHECK(vv_trainer_load(t, path) == VV_ENOFILE, "a missing optimizer file is VV_ENOFILE");
    vv_trainer *ta;
    o.optimizer = VV_OPT_ADAM;
    vv_trainer_init(&ta, &m, &o);
    vv_trainer_save(ta, path);
    rc = vv_trainer_load(t, path);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "fc.weight.momentum_buffer"),
           "Adam's state does not load into SGD, naming the missing tensor: %s", vv_err_detail());
    CHECK(vv_trainer_steps(t) == 1, "the failed load changed nothing");
    vv_trainer_save(t, path);
    rc = vv_trainer_load(ta, path);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "exp_avg"),
           "SGD's state does not load into Adam: %s", vv_err_detail());
    vv_trainer_free(ta);
    vv_model m2;
    int sizes[] = {4, 2, 3};
    vv_model_mlp(&m2, 1, 2, 2, sizes, 3);
    o.optimizer = VV_OPT_SGD;
    vv_trainer_init(&ta, &m2, &o);
    rc = vv_trainer_load(ta, path);
    CHECKF(rc < 0, "another architecture's state is refused: %s", vv_err_detail());
    vv_trainer_free(ta);
    vv_model_free(&m2);
    remove(path);
    vv_trainer_free(t);
    vv_trainer_free(NULL);
    vv_model_free(&m);

    /* Batch norm needs more than one value per channel. */
    vv_model_init(&m, 2, 1, 1);
    add(&m, VV_LAYER_BATCHNORM2D, "bn", 2, 2, 0, 0, 0, 0);
    add(&m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    vv_model_finish(&m);
    vv_trainer_init(&t, &m, &o);
    rc = vv_trainer_step(t, x, y, 1, 0.1, NULL, NULL);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "'bn'"),
           "batch norm on one value per channel is refused: %s", vv_err_detail());
    CHECK(vv_trainer_step(t, x, y, 2, 0.1, NULL, NULL) == 0, "two samples are fine");
    vv_trainer_free(t);
    vv_model_free(&m);

    /* Dropout p outside [0, 1]. */
    vv_model_init(&m, 1, 2, 2);
    add(&m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    add_dropout(&m, 1.5f);
    add(&m, VV_LAYER_LINEAR, "fc", 4, 3, 0, 0, 0, 1);
    vv_model_finish(&m);
    rc = vv_trainer_init(&t, &m, &o);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "p must be"),
           "dropout p = 1.5 is refused: %s", vv_err_detail());
    vv_model_free(&m);
}

/* ---- Memory ---------------------------------------------------------------------- */

static void memory(void)
{
    int sizes[] = {784, 1024, 1024, 10};
    vv_model m;
    vv_model_mlp(&m, 1, 28, 28, sizes, 4);
    vv_train_opts o;
    vv_train_opts_default(&o);
    o.momentum = 0.9;
    int64_t p = 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10;
    /* weights' gradient and momentum; outputs of fc1, fc2 (relus in place)
     * and fc3; two gradient buffers of 1024 per sample; split over 2
     * threads, the second thread's part of the largest layer's weight and
     * bias gradients (fc2's) */
    setenv("VV_TRAIN_THREADS", "2", 1);
    int64_t want = 4 * (2 * p + 256 * (2 * 1024 + 10) + 2 * 256 * 1024 + 1024 * 1024 + 1024);
    int64_t got = vv_trainer_bytes(&m, &o, 256);
    CHECKF(got == want,
           "MLP 784-1024-1024-10 with SGD momentum at batch 256 on 2 threads needs %.1f MiB (%lld)",
           (double)got / (1 << 20), (long long)want);
    o.optimizer = VV_OPT_ADAM;
    CHECK(vv_trainer_bytes(&m, &o, 256) == want + 4 * p, "Adam adds a second buffer");
    unsetenv("VV_TRAIN_THREADS");
    CHECK(vv_trainer_bytes(&m, &o, 0) == 0, "no batch, no answer");
    vv_model_free(&m);
    vv_model_vgg19_cifar(&m, 1, 10);
    o.optimizer = VV_OPT_SGD;
    int64_t b128 = vv_trainer_bytes(&m, &o, 128), b256 = vv_trainer_bytes(&m, &o, 256);
    CHECKF(b128 > 0 && b256 < 2 * b128,
           "VGG-19 (CIFAR-10) needs %.0f MiB at batch 128 and %.0f MiB at 256 (conv scratch "
           "bounded)",
           (double)b128 / (1 << 20), (double)b256 / (1 << 20));
    vv_model_free(&m);
}

/* ---- Speed ----------------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The 784-1024-1024-10 MLP on Fashion-MNIST-sized batches of 256: reports
 * the step time (a diagnostic, not a check: timings depend on the host). */
static void speed(void)
{
    enum { B = 256 };
    int sizes[] = {784, 1024, 1024, 10};
    vv_model m;
    vv_model_mlp(&m, 1, 28, 28, sizes, 4);
    vv_model_init_params(&m, 1);
    float *x = malloc((size_t)B * 784 * sizeof(float));
    int32_t y[B];
    fill_normal(x, (int64_t)B * 784, 1.0, 2);
    for (int s = 0; s < B; s++)
        y[s] = s % 10;
    int steps = getenv("VV_TEST_QUICK") ? 3 : 20;
    for (int opt = VV_OPT_SGD; opt <= VV_OPT_ADAM; opt++) {
        vv_train_opts o;
        vv_train_opts_default(&o);
        o.optimizer = opt;
        o.momentum = opt == VV_OPT_SGD ? 0.9 : 0;
        o.weight_decay = 5e-4;
        o.lr = 1e-3;
        vv_trainer *t;
        vv_trainer_init(&t, &m, &o);
        int ok = vv_trainer_step(t, x, y, B, 1e-3, NULL, NULL) == 0; /* warm-up */
        double t0 = now();
        for (int s = 0; s < steps; s++)
            ok &= vv_trainer_step(t, x, y, B, 1e-3, NULL, NULL) == 0;
        double dt = (now() - t0) / steps;
        CHECKF(ok, "MLP 784-1024-1024-10 trains at batch %d with %s", B,
               opt == VV_OPT_SGD ? "SGD momentum" : "Adam");
        printf("# %s: %.1f ms per step of %d, %.2f s per 60000-image epoch (OpenBLAS %s, %d "
               "threads)\n",
               opt == VV_OPT_SGD ? "SGD" : "Adam", 1e3 * dt, B, dt * 60000.0 / B,
               vv_blas_corename(), vv_blas_threads());
        vv_trainer_free(t);
    }
    vv_model_free(&m);
    free(x);
}

int main(void)
{
    const char *t = getenv("VV_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", t ? t : "/tmp");
    CHECKF(vv_blas_corename() != NULL, "OpenBLAS kernel %s (%s)", vv_blas_corename(),
           vv_blas_kernel_origin());
    against_torch();
    learns();
    resume(VV_OPT_SGD, 0.9);
    resume(VV_OPT_ADAM, 0);
    bad_input();
    memory();
    speed();
    return tap_done();
}
