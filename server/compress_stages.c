/* compress_stages.c - the stages of a compress job around the lasso: the
 * evaluation of a network, the magnitude baseline at the lasso's widths, and
 * fine-tuning with the train job's machinery. */
#include "compress_internal.h"

#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* m's weights on the job's device (*md NULL on the CPU): the resident copy
 * when m is the resident model's network, else a fresh upload, *own set:
 * close it after use. */
int compress_dev_for(cctx *c, const vv_model *m, vv_model_dev **md, int *own)
{
    *md = NULL;
    *own = 0;
    if (!c->be)
        return 0;
    if (m == c->res_m && c->res_md) {
        *md = c->res_md;
        return 0;
    }
    *own = 1;
    return vv_model_dev_open(m, c->be, md);
}

/* ---- Evaluation --------------------------------------------------------------------- */

int compress_eval_all(cctx *c, const vv_model *m, vv_dataset *train, vv_dataset *test,
                      const vv_preprocess *pp, int64_t ntrain, int64_t ntest, evals *e)
{
    memset(e, 0, sizeof *e);
    int64_t b = c->spec->batch_size;
    vv_model_dev *md;
    int own;
    int rc = compress_dev_for(c, m, &md, &own);
    if (rc == 0)
        rc = vv_model_evaluate_dev(m, md, train, pp, ntrain, b, c->stop, &e->train_acc,
                                   &e->train_loss);
    if (rc == 0 && test) {
        rc = vv_model_evaluate_dev(m, md, test, pp, ntest, b, c->stop, &e->test_acc, &e->test_loss);
        e->have_test = 1;
    }
    e->params = vv_model_params(m);
    e->macs = vv_model_macs(m);
    if (rc == 0)
        e->latency_ms = compress_latency_ms(m, md, &e->latency_batch);
    if (own)
        vv_model_dev_close(md);
    return rc;
}

cJSON *compress_evals_json(const evals *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "train_acc", e->train_acc);
    cJSON_AddNumberToObject(o, "train_loss", e->train_loss);
    if (e->have_test) {
        cJSON_AddNumberToObject(o, "test_acc", e->test_acc);
        cJSON_AddNumberToObject(o, "test_loss", e->test_loss);
    }
    cJSON_AddNumberToObject(o, "params", (double)e->params);
    cJSON_AddNumberToObject(o, "macs", (double)e->macs);
    cJSON_AddNumberToObject(o, "latency_ms", e->latency_ms);
    cJSON_AddNumberToObject(o, "latency_batch", (double)e->latency_batch);
    return o;
}

void compress_emit_evals(cctx *c, const evals *e, const char *phase)
{
    run_metric rm = {.step = c->step++, .time = vv_now() - c->t0};
    run_metric_set(&rm, RM_train_acc, e->train_acc);
    run_metric_set(&rm, RM_train_loss, e->train_loss);
    if (e->have_test) {
        run_metric_set(&rm, RM_test_acc, e->test_acc);
        run_metric_set(&rm, RM_test_loss, e->test_loss);
    }
    run_metric_set(&rm, RM_params, (double)e->params);
    run_metric_set(&rm, RM_macs, (double)e->macs);
    run_metric_set(&rm, RM_latency_ms, e->latency_ms);
    snprintf(rm.phase, sizeof rm.phase, "%s", phase);
    run_emit_metric(c->sink, &rm);
}

/* The baseline of layer lo->li at lo's width: the lo->kept units of the
 * largest norms (neurons: the L2 norm of their outgoing weights, the
 * columns of the layer's weight in m; channels: the L1 norm of their
 * filters in the producing conv, Li et al.'s filter pruning), with the
 * layer's weights as trained on their features (Wbp) and refitted on the
 * statistics bst (Wb) when the run refits. */
int compress_baseline_layer(const compress_spec *s, const vv_model *m, const vv_stats *bst,
                            layer_out *lo)
{
    const vv_layer *L = &m->layers[lo->li];
    int64_t k = lo->k, d = lo->d, g = lo->u.group, units = lo->u.units;
    int chan = lo->u.kind == UNIT_CHANNELS;
    double *norm = malloc((size_t)units * sizeof *norm);
    char *take = calloc((size_t)units, 1);
    lo->bkeep = malloc((size_t)units * sizeof *lo->bkeep);
    lo->Wbp = calloc((size_t)(k * d), sizeof *lo->Wbp);
    lo->Wb = calloc((size_t)(k * d), sizeof *lo->Wb);
    if (!norm || !take || !lo->bkeep || !lo->Wbp || !lo->Wb) {
        free(norm);
        free(take);
        return vv_fail(VV_ENOMEM, "out of memory for the baseline of %s", L->name);
    }
    for (int64_t q = 0; q < units; q++) {
        double a = 0;
        if (chan) {
            const vv_layer *P = &m->layers[lo->u.producer];
            int64_t fan = (int64_t)P->in_ch * P->kernel * P->kernel;
            for (int64_t t = 0; t < fan; t++)
                a += fabs((double)P->weight[q * fan + t]);
        } else {
            for (int64_t i = 0; i < d; i++)
                a += (double)L->weight[i * k + q] * L->weight[i * k + q];
        }
        norm[q] = a;
    }
    /* The kept largest norms (ties: the lower index), then ascending. */
    for (int64_t t = 0; t < lo->kept && t < units; t++) {
        int64_t best = -1;
        for (int64_t q = 0; q < units; q++)
            if (!take[q] && (best < 0 || norm[q] > norm[best]))
                best = q;
        if (best >= 0)
            take[best] = 1;
    }
    int64_t n = 0;
    for (int64_t q = 0; q < units; q++)
        if (take[q]) {
            lo->bkeep[n++] = q;
            for (int64_t r = q * g; r < (q + 1) * g; r++)
                for (int64_t i = 0; i < d; i++)
                    lo->Wbp[r * d + i] = L->weight[i * k + r];
        }
    free(take);
    free(norm);
    int rc = 0;
    if (s->lasso.refit)
        rc = vv_lasso_refit(bst, lo->Wbp, lo->Wb);
    if (!s->lasso.refit || rc == VV_ENUMERIC) {
        /* No refit, or one no ridge helps (a dead neuron kept by magnitude):
         * the weights as trained. */
        lo->brefit_failed = s->lasso.refit;
        memcpy(lo->Wb, lo->Wbp, (size_t)(k * d) * sizeof *lo->Wb);
        rc = 0;
    }
    /* Units the refit zeroed stay kept, with zero weights (the same width). */
    return rc;
}

/* ---- Fine-tuning ----------------------------------------------------------------- */

/* Trains m in place for the spec's fine-tuning epochs on the training set
 * (the run's eval preprocessing, no augmentation), with a metric per epoch
 * tagged phase.  *stopped is set when the stop flag ended it early. */
int compress_finetune(cctx *c, vv_model *m, const vv_dataset *train, const vv_preprocess *pp,
                      int64_t ntrain, const char *phase, double *seconds, int *stopped)
{
    const finetune_spec *f = &c->spec->finetune;
    double t0 = vv_now();
    int64_t bs = f->batch_size < ntrain ? f->batch_size : ntrain;
    int64_t in = vv_model_size(m, -1);
    float *x = malloc((size_t)(bs * in) * sizeof *x);
    int32_t *lab = malloc((size_t)bs * sizeof *lab);
    int64_t *perm = malloc((size_t)ntrain * sizeof *perm);
    vv_trainer *tr = NULL;
    int rc = !x || !lab || !perm ? vv_fail(VV_ENOMEM, "out of memory for fine-tuning")
                                 : vv_trainer_init(&tr, m, &f->opts);
    for (int64_t e = 0; rc == 0 && e < f->epochs && !*stopped; e++) {
        vv_rng shuf, aug, drop;
        uint64_t base = f->seed * 0x9E3779B97F4A7C15ull + (uint64_t)e * 0xBF58476D1CE4E5B9ull;
        vv_rng_seed(&shuf, base + 1);
        vv_rng_seed(&aug, base + 2);
        vv_rng_seed(&drop, base + 3);
        for (int64_t i = 0; i < ntrain; i++)
            perm[i] = i;
        for (int64_t i = ntrain - 1; i > 0; i--) {
            int64_t j = (int64_t)(vv_rng_next(&shuf) % (uint64_t)(i + 1));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        double lr = f->opts.lr;
        if (f->cosine)
            lr *= 0.5 * (1 + cos(M_PI * (double)e / (double)f->epochs));
        double sum = 0;
        int64_t seen = 0, correct = 0;
        for (int64_t b0 = 0; rc == 0 && b0 + bs <= ntrain; b0 += bs) {
            if (c->stop && atomic_load_explicit(c->stop, memory_order_relaxed)) {
                *stopped = 1;
                break;
            }
            vv_step_stats st;
            if ((rc = vv_dataset_batch(train, pp, perm + b0, 0, bs, &aug, x, lab)) == 0 &&
                (rc = vv_trainer_step(tr, x, lab, bs, lr, &drop, &st)) == 0) {
                sum += st.loss * (double)bs;
                correct += st.correct;
                seen += bs;
            }
        }
        if (rc == 0 && seen) {
            run_metric rm = {.step = c->step++, .time = vv_now() - c->t0};
            snprintf(rm.phase, sizeof rm.phase, "%s", phase);
            run_metric_set(&rm, RM_epoch, (double)(e + 1));
            run_metric_set(&rm, RM_loss, sum / (double)seen);
            run_metric_set(&rm, RM_train_acc, (double)correct / (double)seen);
            run_metric_set(&rm, RM_lr, lr);
            run_emit_metric(c->sink, &rm);
        }
    }
    vv_trainer_free(tr);
    free(x);
    free(lab);
    free(perm);
    *seconds = vv_now() - t0;
    return rc;
}
