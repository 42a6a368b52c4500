/* test_train_grad.c - the trainer's gradients: every layer type's weight,
 * bias and input gradients against central finite differences of a float64
 * training-mode forward pass written here from the definitions, and the
 * tie rule of max pooling. */
#include "train_util.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"

#include <math.h>
#include <string.h>

/* The kernels vvd chooses for this CPU (OpenBLAS's own choice can be generic
 * on recent CPUs): set before OpenBLAS starts (vv/blas.h). */
VV_BLAS_PREINIT;

/* ---- A float64 training-mode forward pass, written from the definitions ---------- */

typedef struct {
    double *w[32], *b[32];
} dparams;

static void dparams_from(dparams *P, const vv_model *m)
{
    memset(P, 0, sizeof *P);
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        int64_t nw = weight_numel(l);
        if (!nw)
            continue;
        P->w[i] = malloc((size_t)nw * sizeof(double));
        for (int64_t j = 0; j < nw; j++)
            P->w[i][j] = l->weight[j];
        if (l->bias_v) {
            P->b[i] = malloc((size_t)l->out_ch * sizeof(double));
            for (int j = 0; j < l->out_ch; j++)
                P->b[i][j] = l->bias_v[j];
        }
    }
}

static void dparams_free(dparams *P)
{
    for (int i = 0; i < 32; i++) {
        free(P->w[i]);
        free(P->b[i]);
    }
}

/* The mean loss of model m's architecture with parameters P on x, in
 * training mode: batch statistics, and dropout masks drawn from a copy of
 * *rng0 (one uniform per element, kept when >= p) unless rng0 is NULL. */
static double ref_loss(const vv_model *m, const dparams *P, const double *x, const int32_t *lab,
                       int64_t n, vv_loss loss, const vv_rng *rng0)
{
    vv_rng rng;
    if (rng0)
        rng = *rng0;
    int64_t sz = vv_model_size(m, -1);
    double *cur = malloc((size_t)(n * sz) * sizeof(double));
    memcpy(cur, x, (size_t)(n * sz) * sizeof(double));
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        int C = l->c, H = l->h, W = l->w, O = l->oc, OH = l->oh, OW = l->ow;
        int64_t isz = (int64_t)C * H * W, osz = (int64_t)O * OH * OW;
        double *y = calloc((size_t)(n * osz), sizeof(double));
        const double *w = P->w[i], *b = P->b[i];
        for (int64_t s = 0; s < n; s++) {
            const double *xs = cur + s * isz;
            double *ys = y + s * osz;
            switch (l->type) {
            case VV_LAYER_CONV2D:
                for (int o = 0; o < O; o++)
                    for (int r = 0; r < OH; r++)
                        for (int q = 0; q < OW; q++) {
                            double acc = b ? b[o] : 0;
                            for (int c = 0; c < C; c++)
                                for (int ki = 0; ki < l->kernel; ki++)
                                    for (int kj = 0; kj < l->kernel; kj++) {
                                        int yy = r * l->stride - l->pad + ki;
                                        int xx = q * l->stride - l->pad + kj;
                                        if (yy < 0 || yy >= H || xx < 0 || xx >= W)
                                            continue;
                                        acc += w[((o * C + c) * l->kernel + ki) * l->kernel + kj] *
                                               xs[(c * H + yy) * W + xx];
                                    }
                            ys[(o * OH + r) * OW + q] = acc;
                        }
                break;
            case VV_LAYER_MAXPOOL2D:
            case VV_LAYER_AVGPOOL2D:
                for (int c = 0; c < C; c++)
                    for (int r = 0; r < OH; r++)
                        for (int q = 0; q < OW; q++) {
                            double mx = -INFINITY, sum = 0;
                            for (int ki = 0; ki < l->kernel; ki++)
                                for (int kj = 0; kj < l->kernel; kj++) {
                                    int yy = r * l->stride - l->pad + ki;
                                    int xx = q * l->stride - l->pad + kj;
                                    if (yy < 0 || yy >= H || xx < 0 || xx >= W)
                                        continue;
                                    double v = xs[(c * H + yy) * W + xx];
                                    mx = v > mx ? v : mx;
                                    sum += v;
                                }
                            ys[(c * OH + r) * OW + q] =
                                l->type == VV_LAYER_MAXPOOL2D ? mx : sum / (l->kernel * l->kernel);
                        }
                break;
            case VV_LAYER_ADAPTIVE_AVGPOOL2D:
                for (int c = 0; c < C; c++)
                    for (int r = 0; r < OH; r++)
                        for (int q = 0; q < OW; q++) {
                            int h0 = (int)floor((double)r * H / OH);
                            int h1 = (int)ceil((double)(r + 1) * H / OH);
                            int w0 = (int)floor((double)q * W / OW);
                            int w1 = (int)ceil((double)(q + 1) * W / OW);
                            double sum = 0;
                            for (int a = h0; a < h1; a++)
                                for (int bb = w0; bb < w1; bb++)
                                    sum += xs[(c * H + a) * W + bb];
                            ys[(c * OH + r) * OW + q] = sum / ((h1 - h0) * (w1 - w0));
                        }
                break;
            case VV_LAYER_LINEAR:
                for (int o = 0; o < O; o++) {
                    double acc = b ? b[o] : 0;
                    for (int k = 0; k < C; k++)
                        acc += w[(int64_t)o * C + k] * xs[k];
                    ys[o] = acc;
                }
                break;
            case VV_LAYER_RELU:
                for (int64_t e = 0; e < isz; e++)
                    ys[e] = xs[e] > 0 ? xs[e] : 0;
                break;
            case VV_LAYER_DROPOUT:
                for (int64_t e = 0; e < isz; e++) {
                    int keep = !rng0 || l->p == 0 || vv_rng_uniform(&rng) >= (double)l->p;
                    double scale = rng0 && l->p > 0 ? 1.0 / (1.0 - (double)l->p) : 1.0;
                    ys[e] = keep && l->p < 1 ? xs[e] * scale : 0;
                }
                break;
            default: /* flatten; batch norm below */
                memcpy(ys, xs, (size_t)isz * sizeof(double));
                break;
            }
        }
        if (l->type == VV_LAYER_BATCHNORM2D)
            for (int c = 0; c < C; c++) {
                double s1 = 0, s2 = 0, cnt = (double)n * H * W;
                for (int64_t s = 0; s < n; s++)
                    for (int p = 0; p < H * W; p++)
                        s1 += cur[(s * C + c) * H * W + p];
                double mu = s1 / cnt;
                for (int64_t s = 0; s < n; s++)
                    for (int p = 0; p < H * W; p++) {
                        double d = cur[(s * C + c) * H * W + p] - mu;
                        s2 += d * d;
                    }
                double inv = 1 / sqrt(s2 / cnt + (double)l->eps);
                for (int64_t s = 0; s < n; s++)
                    for (int p = 0; p < H * W; p++) {
                        int64_t e = (s * C + c) * H * W + p;
                        y[e] = (cur[e] - mu) * inv * w[c] + b[c];
                    }
            }
        free(cur);
        cur = y;
    }
    int k = (int)vv_model_size(m, m->n - 1);
    double total = 0;
    for (int64_t s = 0; s < n; s++) {
        const double *z = cur + s * k;
        if (loss == VV_LOSS_CE) {
            double mx = z[0], sum = 0;
            for (int j = 1; j < k; j++)
                mx = z[j] > mx ? z[j] : mx;
            for (int j = 0; j < k; j++)
                sum += exp(z[j] - mx);
            total += mx + log(sum) - z[lab[s]];
        } else {
            for (int j = 0; j < k; j++)
                total += (z[j] - (j == lab[s])) * (z[j] - (j == lab[s]));
        }
    }
    free(cur);
    return loss == VV_LOSS_CE ? total / (double)n : total / ((double)n * k);
}

/* Central differences of ref_loss with respect to v[0..len), written to g. */
static void fd(const vv_model *m, dparams *P, const double *x, const int32_t *lab, int64_t n,
               vv_loss loss, const vv_rng *rng, double *v, int64_t len, double *g)
{
    const double h = 1e-5;
    for (int64_t j = 0; j < len; j++) {
        double save = v[j];
        v[j] = save + h;
        double lp = ref_loss(m, P, x, lab, n, loss, rng);
        v[j] = save - h;
        double lm = ref_loss(m, P, x, lab, n, loss, rng);
        v[j] = save;
        g[j] = (lp - lm) / (2 * h);
    }
}

/* Checks every parameter gradient and the input gradient of the trainer
 * against finite differences.
 *
 * Tolerance: the reference loss is float64 and the difference step is
 * 1e-5, so the finite differences are exact to ~1e-9 of the gradients
 * (O(h^2) truncation plus 1e-16 / h rounding).  The trainer's gradients are
 * float32 products and sums of at most a few hundred terms, good to ~1e-6
 * of each tensor's largest entry.  GRAD_TOL = 1e-4 of the largest entry
 * leaves two orders of magnitude of margin and still catches any wrong
 * index, missing term or factor. */
#define GRAD_TOL 1e-4
static void grad_check(const char *what, vv_model *m, vv_loss loss, int64_t n, int use_rng,
                       uint64_t seed)
{
    vv_model_init_params(m, seed);
    /* Non-trivial batch-norm affine parameters. */
    vv_rng r;
    vv_rng_seed(&r, seed + 1);
    for (int i = 0; i < m->n; i++)
        if (m->layers[i].type == VV_LAYER_BATCHNORM2D)
            for (int c = 0; c < m->layers[i].c; c++) {
                m->layers[i].weight[c] = (float)(0.5 + vv_rng_uniform(&r));
                m->layers[i].bias_v[c] = (float)(vv_rng_uniform(&r) - 0.5);
            }
    int64_t isz = vv_model_size(m, -1);
    int k = (int)vv_model_size(m, m->n - 1);
    float *x = malloc((size_t)(n * isz) * sizeof(float));
    double *xd = malloc((size_t)(n * isz) * sizeof(double));
    int32_t *lab = malloc((size_t)n * sizeof(int32_t));
    fill_normal(x, n * isz, 1.0, seed + 2);
    for (int64_t j = 0; j < n * isz; j++)
        xd[j] = x[j];
    for (int64_t s = 0; s < n; s++)
        lab[s] = (int32_t)((s * 7 + 3) % k);

    vv_train_opts o;
    vv_train_opts_default(&o);
    o.loss = loss;
    vv_trainer *t;
    int rc = vv_trainer_init(&t, m, &o);
    CHECKF(rc == 0, "%s: trainer created (%s)", what, rc ? vv_err_detail() : "");
    vv_rng rng, rng0;
    vv_rng_seed(&rng, seed + 3);
    rng0 = rng;
    double lf;
    rc = vv_trainer_grad(t, x, lab, n, use_rng ? &rng : NULL, &lf);
    CHECKF(rc == 0, "%s: vv_trainer_grad runs (%s)", what, rc ? vv_err_detail() : "");
    dparams P;
    dparams_from(&P, m);
    const vv_rng *pr = use_rng ? &rng0 : NULL;
    double lr = ref_loss(m, &P, xd, lab, n, loss, pr);
    CHECKF(fabs(lf - lr) <= 1e-5 * fabs(lr), "%s: loss %.8f equals the float64 reference %.8f",
           what, lf, lr);
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        const float *dw, *db;
        vv_trainer_grads(t, i, &dw, &db);
        if (!weight_numel(l)) {
            CHECKF(!dw && !db, "%s: layer %d (%s) has no parameter gradients", what, i,
                   vv_layer_type_name(l->type));
            continue;
        }
        for (int b = 0; b < 2; b++) {
            double *v = b ? P.b[i] : P.w[i];
            const float *a = b ? db : dw;
            int64_t len = b ? l->out_ch : weight_numel(l);
            if (!v) {
                CHECKF(!a, "%s: %s has no bias gradient", what, l->name);
                continue;
            }
            double *g = malloc((size_t)len * sizeof(double));
            fd(m, &P, xd, lab, n, loss, pr, v, len, g);
            double e = rel_err_fd(a, g, len);
            CHECKF(a && e < GRAD_TOL,
                   "%s: d loss / d %s.%s (%s) equals finite differences "
                   "(rel err %.1e < %.0e)",
                   what, l->name, b ? "bias" : "weight", vv_layer_type_name(l->type), e, GRAD_TOL);
            free(g);
        }
    }
    const float *dx = vv_trainer_input_grad(t);
    double *g = malloc((size_t)(n * isz) * sizeof(double));
    fd(m, &P, xd, lab, n, loss, pr, xd, n * isz, g);
    double e = dx ? rel_err_fd(dx, g, n * isz) : 1;
    CHECKF(e < GRAD_TOL, "%s: d loss / d input equals finite differences (rel err %.1e)", what, e);
    free(g);
    dparams_free(&P);
    vv_trainer_free(t);
    free(x);
    free(xd);
    free(lab);
}

static void gradients(void)
{
    /* Conv with stride, padding and bias; relu; an overlapping max pool
     * with padding; batch norm; conv without bias; average pool with padding;
     * adaptive pool 3x3 -> 2x2 (overlapping windows); flatten; dropout;
     * linear with and without bias. */
    vv_model m;
    vv_model_init(&m, 2, 11, 11);
    add(&m, VV_LAYER_CONV2D, "c1", 2, 3, 3, 2, 1, 1);
    add(&m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    add(&m, VV_LAYER_MAXPOOL2D, NULL, 0, 0, 3, 1, 1, 0);
    add(&m, VV_LAYER_BATCHNORM2D, "bn1", 3, 3, 0, 0, 0, 0);
    add(&m, VV_LAYER_CONV2D, "c2", 3, 4, 2, 1, 0, 0);
    add(&m, VV_LAYER_AVGPOOL2D, NULL, 0, 0, 3, 2, 1, 0);
    add_adaptive(&m, 2, 2);
    add(&m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    add_dropout(&m, 0.3f);
    add(&m, VV_LAYER_LINEAR, "fc1", 16, 6, 0, 0, 0, 1);
    add(&m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    add(&m, VV_LAYER_LINEAR, "fc2", 6, 3, 0, 0, 0, 0);
    int rc = vv_model_finish(&m);
    CHECKF(rc == 0, "gradient-check conv net builds (%s)", rc ? vv_err_detail() : "");
    CHECK(m.layers[2].oh == 6 && m.layers[4].oh == 5 && m.layers[5].oh == 3,
          "its maps are 6x6 -> 6x6 -> 5x5 -> 3x3 -> 2x2");
    grad_check("conv net, CE, dropout", &m, VV_LOSS_CE, 4, 1, 11);
    grad_check("conv net, MSE, no dropout", &m, VV_LOSS_MSE, 3, 0, 12);
    vv_model_free(&m);

    /* Batch norm first (the input gradient goes through it), adaptive pool
     * 5x5 -> 3x2, heavy dropout, MSE. */
    vv_model_init(&m, 3, 5, 5);
    add(&m, VV_LAYER_BATCHNORM2D, "bn0", 3, 3, 0, 0, 0, 0);
    add_adaptive(&m, 3, 2);
    add(&m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    add_dropout(&m, 0.5f);
    add(&m, VV_LAYER_LINEAR, "fc", 18, 4, 0, 0, 0, 1);
    rc = vv_model_finish(&m);
    CHECKF(rc == 0, "batch-norm-first net builds (%s)", rc ? vv_err_detail() : "");
    grad_check("bn-first net, MSE, dropout", &m, VV_LOSS_MSE, 5, 1, 21);
    grad_check("bn-first net, CE", &m, VV_LOSS_CE, 5, 0, 22);
    vv_model_free(&m);

    /* A plain MLP (the trainer's sgemm-only path). */
    int sizes[] = {12, 7, 5, 4};
    vv_model_mlp(&m, 3, 2, 2, sizes, 4);
    grad_check("MLP, CE", &m, VV_LOSS_CE, 6, 0, 31);
    vv_model_free(&m);
}

/* Max pooling sends the gradient to the first maximum of a window (row
 * major), as PyTorch does; vv_trainer_grad changes neither the model nor
 * the optimizer state. */
static void ties(void)
{
    vv_model m;
    vv_model_init(&m, 1, 2, 4);
    add(&m, VV_LAYER_MAXPOOL2D, NULL, 0, 0, 2, 0, 0, 0);
    add(&m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    add(&m, VV_LAYER_LINEAR, "fc", 2, 2, 0, 0, 0, 1);
    vv_model_finish(&m);
    vv_model_init_params(&m, 4);
    /* Windows [1 3; 3 2] (maximum 3 twice) and [5 5; 5 5]. */
    float x[8] = {1, 3, 5, 5, 3, 2, 5, 5};
    int32_t y[1] = {1};
    vv_train_opts o;
    vv_train_opts_default(&o);
    vv_trainer *t;
    vv_trainer_init(&t, &m, &o);
    int rc = vv_trainer_grad(t, x, y, 1, NULL, NULL);
    const float *dx = vv_trainer_input_grad(t);
    int only_first = rc == 0 && dx && dx[1] != 0 && dx[2] != 0;
    for (int j = 0; j < 8 && dx; j++)
        only_first &= j == 1 || j == 2 || dx[j] == 0;
    CHECK(only_first, "max pool: the gradient goes to the first maximum of each tied window "
                      "(indices 1 and 2 of 8)");
    vv_trainer_free(t);
    vv_model_free(&m);

    /* vv_trainer_grad leaves a batch-norm model as it was; a step does not. */
    vv_model_init(&m, 1, 2, 4);
    add(&m, VV_LAYER_BATCHNORM2D, "bn", 1, 1, 0, 0, 0, 0);
    add(&m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    add(&m, VV_LAYER_LINEAR, "fc", 8, 2, 0, 0, 0, 1);
    vv_model_finish(&m);
    vv_model_init_params(&m, 5);
    vv_model before;
    vv_model_copy(&m, &before);
    vv_trainer_init(&t, &m, &o);
    float xb[16];
    fill_normal(xb, 16, 1.0, 9);
    int32_t yb[2] = {0, 1};
    rc = vv_trainer_grad(t, xb, yb, 2, NULL, NULL);
    CHECK(rc == 0 && vv_trainer_steps(t) == 0 &&
              !memcmp(before.layers[0].running_mean, m.layers[0].running_mean, 4) &&
              !memcmp(before.layers[0].running_var, m.layers[0].running_var, 4) &&
              !memcmp(before.layers[2].weight, m.layers[2].weight, 16 * 4),
          "vv_trainer_grad changes no weights, running statistics or step count");
    rc = vv_trainer_step(t, xb, yb, 2, 0.1, NULL, NULL);
    CHECK(rc == 0 && memcmp(before.layers[0].running_mean, m.layers[0].running_mean, 4) &&
              memcmp(before.layers[2].weight, m.layers[2].weight, 16 * 4) &&
              vv_trainer_steps(t) == 1,
          "vv_trainer_step updates the weights and running statistics");
    vv_trainer_free(t);
    vv_model_free(&before);
    vv_model_free(&m);
}

int main(void)
{
    const char *t = getenv("VV_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", t ? t : "/tmp");
    CHECKF(vv_blas_corename() != NULL, "OpenBLAS kernel %s (%s)", vv_blas_corename(),
           vv_blas_kernel_origin());
    gradients();
    ties();
    /* Every layer's work split over 3 threads (train_pass.c: samples 1, 1, 2
     * of a batch of 4 and 1, 1, 1 of a batch of 3; a batch norm's 3
     * channels one each; a conv's weight gradient summed from the parts):
     * the same gradients. */
    setenv("VV_TRAIN_THREADS", "3", 1);
    gradients();
    unsetenv("VV_TRAIN_THREADS");
    return tap_done();
}
