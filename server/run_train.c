/* run_train.c - the "train" job: mini-batch training of a model on a data
 * set (vv/train.h), with per-step loss and per-epoch accuracy metrics,
 * checkpoints at every epoch and exact resumption from them.
 *
 * Randomness is derived from the seed and the epoch alone (the shuffle, the
 * augmentations and the dropout masks of epoch e use generators seeded with
 * (seed, e)), so a run resumed from the checkpoint of epoch e continues
 * exactly as the uninterrupted run would have. */
#include "models.h"
#include "run.h"
#include "state.h"

#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void set_field(char *field, size_t fsz, const char *ptr)
{
    if (field && fsz)
        snprintf(field, fsz, "%s", ptr);
}

static double lr_at(const train_spec *s, int64_t epoch)
{
    double lr = s->opts.lr;
    if (s->schedule == SCHED_STEP) {
        for (int i = 0; i < s->nmilestones; i++)
            if (epoch >= s->milestones[i])
                lr *= s->gamma;
    } else if (s->schedule == SCHED_COSINE) {
        lr *= 0.5 * (1 + cos(M_PI * (double)epoch / (double)s->epochs));
    }
    return lr;
}

static uint64_t mix(uint64_t seed, int64_t epoch, uint64_t stream)
{
    return seed * 0x9E3779B97F4A7C15ull + (uint64_t)epoch * 0xBF58476D1CE4E5B9ull + stream;
}

int run_train(train_spec *s, const char *out_dir, const run_sink *sink, const atomic_int *stop,
              cJSON **result, char *field, size_t fsz)
{
    *result = NULL;
    set_field(field, fsz, "");
    double t0 = vv_now();
    vv_model m = {0};
    vv_preprocess pp = {0};
    run_data dat = {0};
    vv_dataset *train = NULL, *test = NULL; /* dat's */
    vv_trainer *tr = NULL;
    float *x = NULL;
    int32_t *lab = NULL;
    int64_t *perm = NULL;
    cJSON *hist = cJSON_CreateArray(), *r = NULL;
    int rc;

    if ((rc = model_ref_load(&s->model, "/model", &m, &pp, field, fsz)) < 0)
        goto done;
    if ((rc = run_data_open(&s->data, &pp, &m, &dat, field, fsz)) < 0)
        goto done;
    train = dat.train;
    test = dat.test;
    pp = dat.pp;
    int64_t ntrain = dat.ntrain, ntest = dat.ntest;
    /* Training preprocessing: the eval one plus the augmentations. */
    vv_preprocess tpp = pp;
    if (s->aug_crop) {
        tpp.crop = s->aug_crop;
        tpp.random_crop = 1;
        tpp.pad = s->aug_pad;
    }
    tpp.hflip = s->aug_hflip;
    int c, h, w, tc, th, tw;
    vv_preprocess_shape(train, &pp, &c, &h, &w);
    if ((rc = vv_preprocess_check(train, &tpp)) < 0) {
        set_field(field, fsz, "/augment");
        goto done;
    }
    vv_preprocess_shape(train, &tpp, &tc, &th, &tw);
    if (tc != c || th != h || tw != w) {
        set_field(field, fsz, "/data");
        rc = vv_fail(VV_ESHAPE,
                     "/data: images are %dx%dx%d after preprocessing (%dx%dx%d with the training "
                     "augmentation) but the model takes %dx%dx%d",
                     c, h, w, tc, th, tw, m.in_c, m.in_h, m.in_w);
        goto done;
    }
    int64_t bs = s->batch_size < ntrain ? s->batch_size : ntrain;
    if ((rc = vv_trainer_init(&tr, &m, &s->opts)) < 0)
        goto done;

    /* Resume from the last checkpoint of an earlier run. */
    int64_t epoch0 = 0, step = 0;
    if (s->resume_from) {
        char p[4300];
        snprintf(p, sizeof p, "%s/checkpoint/state.json", s->resume_from);
        FILE *f = fopen(p, "r");
        char buf[4096];
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        cJSON *st = f ? cJSON_Parse(buf) : NULL;
        const cJSON *e = cJSON_GetObjectItem(st, "epoch"), *sp = cJSON_GetObjectItem(st, "step");
        if (!cJSON_IsNumber(e) || !cJSON_IsNumber(sp)) {
            cJSON_Delete(st);
            set_field(field, fsz, "/resume_from");
            rc = vv_fail(f ? VV_EFORMAT : VV_ENOFILE, "/resume_from: %s: no checkpoint there", p);
            goto done;
        }
        epoch0 = (int64_t)e->valuedouble;
        step = (int64_t)sp->valuedouble;
        const cJSON *hh = cJSON_GetObjectItem(st, "history");
        if (cJSON_IsArray(hh)) {
            cJSON_Delete(hist);
            hist = cJSON_Duplicate(hh, 1);
        }
        cJSON_Delete(st);
        snprintf(p, sizeof p, "%s/checkpoint/model-%05lld.safetensors", s->resume_from,
                 (long long)epoch0);
        if ((rc = vv_model_load(&m, p)) == 0) {
            snprintf(p, sizeof p, "%s/checkpoint/optimizer-%05lld.safetensors", s->resume_from,
                     (long long)epoch0);
            rc = vv_trainer_load(tr, p);
        }
        if (rc < 0) {
            set_field(field, fsz, "/resume_from");
            goto done;
        }
    }
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/checkpoint", out_dir);
    if ((rc = run_mkdir_p(dir)) < 0)
        goto done;

    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "start");
    cJSON_AddStringToObject(ev, "kind", "train");
    if (s->preset)
        cJSON_AddStringToObject(ev, "preset", s->preset);
    cJSON_AddNumberToObject(ev, "params", (double)vv_model_params(&m));
    cJSON_AddNumberToObject(ev, "n_train", (double)ntrain);
    cJSON_AddNumberToObject(ev, "n_test", (double)ntest);
    cJSON_AddNumberToObject(ev, "epochs", (double)s->epochs);
    cJSON_AddNumberToObject(ev, "first_epoch", (double)epoch0);
    cJSON_AddStringToObject(ev, "blas", vv_blas_corename());
    run_emit_log(sink, ev);

    int64_t in = (int64_t)c * h * w;
    x = malloc((size_t)(bs * in) * sizeof *x);
    lab = malloc((size_t)bs * sizeof *lab);
    perm = malloc((size_t)ntrain * sizeof *perm);
    if (!x || !lab || !perm) {
        rc = vv_fail(VV_ENOMEM, "train: out of memory for a batch of %lld", (long long)bs);
        goto done;
    }
    int stopped = 0, timed_out = 0;
    int64_t epoch = epoch0;
    double train_acc = 0, train_loss = 0, test_acc = 0, test_loss = 0;
    for (; epoch < s->epochs && !stopped && !timed_out; epoch++) {
        vv_rng shuf, aug, drop;
        vv_rng_seed(&shuf, mix(s->seed, epoch, 1));
        vv_rng_seed(&aug, mix(s->seed, epoch, 2));
        vv_rng_seed(&drop, mix(s->seed, epoch, 3));
        for (int64_t i = 0; i < ntrain; i++)
            perm[i] = i;
        for (int64_t i = ntrain - 1; i > 0; i--) {
            int64_t j = (int64_t)(vv_rng_next(&shuf) % (uint64_t)(i + 1));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        double lr = lr_at(s, epoch), sum_loss = 0;
        int64_t correct = 0, seen = 0;
        /* The last partial batch is dropped (as drop_last=True), so every
         * step sees a full batch. */
        for (int64_t b0 = 0; b0 + bs <= ntrain; b0 += bs) {
            if (stop && atomic_load_explicit(stop, memory_order_relaxed)) {
                stopped = 1;
                break;
            }
            if (s->max_seconds > 0 && vv_now() - t0 > s->max_seconds) {
                timed_out = 1;
                break;
            }
            vv_step_stats st;
            if ((rc = vv_dataset_batch(train, &tpp, perm + b0, 0, bs, &aug, x, lab)) < 0 ||
                (rc = vv_trainer_step(tr, x, lab, bs, lr, &drop, &st)) < 0)
                goto done;
            sum_loss += st.loss * (double)bs;
            correct += st.correct;
            seen += bs;
            step++;
            if (step % s->log_every == 0) {
                run_metric rm = {.step = step, .time = vv_now() - t0};
                run_metric_set(&rm, RM_loss, st.loss);
                run_metric_set(&rm, RM_lr, lr);
                run_metric_set(&rm, RM_epoch, (double)epoch + (double)(b0 + bs) / (double)ntrain);
                run_emit_metric(sink, &rm);
            }
        }
        if (stopped || timed_out)
            break;
        /* End of an epoch: accuracy on the epoch's batches (train mode, as
         * seen) and on the test set (eval mode), then a checkpoint. */
        train_acc = seen ? (double)correct / (double)seen : 0;
        train_loss = seen ? sum_loss / (double)seen : 0;
        if (test &&
            (rc = vv_model_evaluate(&m, test, &pp, ntest, 512, NULL, &test_acc, &test_loss)) < 0)
            goto done;
        run_metric em = {.step = step, .time = vv_now() - t0};
        run_metric_set(&em, RM_epoch, (double)(epoch + 1));
        run_metric_set(&em, RM_train_acc, train_acc);
        run_metric_set(&em, RM_train_loss, train_loss);
        if (test) {
            run_metric_set(&em, RM_test_acc, test_acc);
            run_metric_set(&em, RM_test_loss, test_loss);
        }
        /* The history keeps the epoch's metric event as JSON (state.json and
         * result.json carry it). */
        if (!(ev = run_metric_json(&em))) {
            rc = vv_fail(VV_ENOMEM, "train: out of memory");
            goto done;
        }
        cJSON_AddItemToArray(hist, ev);
        /* The checkpoint survives a crash at any point: the epoch's files
         * first (each written to a temporary name and renamed), then
         * state.json (likewise) naming that epoch, then the older files. */
        char p[4400];
        long long e1 = (long long)(epoch + 1);
        snprintf(p, sizeof p, "%s/model-%05lld.safetensors", dir, e1);
        if ((rc = vv_model_save(&m, p)) < 0)
            goto done;
        snprintf(p, sizeof p, "%s/optimizer-%05lld.safetensors", dir, e1);
        if ((rc = vv_trainer_save(tr, p)) < 0)
            goto done;
        cJSON *st = cJSON_CreateObject();
        cJSON_AddNumberToObject(st, "epoch", (double)e1);
        cJSON_AddNumberToObject(st, "step", (double)step);
        snprintf(p, sizeof p, "model-%05lld.safetensors", e1);
        cJSON_AddStringToObject(st, "model", p);
        snprintf(p, sizeof p, "optimizer-%05lld.safetensors", e1);
        cJSON_AddStringToObject(st, "optimizer", p);
        cJSON_AddItemToObject(st, "history", cJSON_Duplicate(hist, 1));
        snprintf(p, sizeof p, "%s/state.json", dir);
        rc = run_write_json(p, st);
        cJSON_Delete(st);
        if (rc < 0)
            goto done;
        for (long long old = e1 - 1; old >= 1 && old >= e1 - 2; old--) {
            snprintf(p, sizeof p, "%s/model-%05lld.safetensors", dir, old);
            unlink(p);
            snprintf(p, sizeof p, "%s/optimizer-%05lld.safetensors", dir, old);
            unlink(p);
        }
        /* The epoch's metrics go out once its checkpoint is on disk, so a
         * client that saw them can count on resuming from that epoch. */
        run_emit_metric(sink, &em);
    }

    /* The model as it is now (a stopped run keeps its partial epoch). */
    char p[4400];
    snprintf(p, sizeof p, "%s/model.safetensors", out_dir);
    if ((rc = vv_model_save(&m, p)) < 0)
        goto done;
    cJSON *spec = model_spec_export(&m, &pp);
    snprintf(p, sizeof p, "%s/model.json", out_dir);
    rc = run_write_json(p, spec);
    cJSON_Delete(spec);
    if (rc < 0)
        goto done;
    r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "event", "result");
    cJSON_AddStringToObject(r, "state", stopped ? run_state_name(RUN_STOPPED) : run_state_name(RUN_FINISHED));
    cJSON_AddStringToObject(r, "stop_reason",
                            stopped     ? "user"
                            : timed_out ? "max_seconds"
                                        : "max_iter");
    if (s->name)
        cJSON_AddStringToObject(r, "name", s->name);
    cJSON_AddStringToObject(r, "kind", "train");
    if (s->preset)
        cJSON_AddStringToObject(r, "preset", s->preset);
    cJSON_AddNumberToObject(r, "epochs", (double)epoch);
    cJSON_AddNumberToObject(r, "steps", (double)step);
    cJSON_AddNumberToObject(r, "first_epoch", (double)epoch0);
    cJSON_AddNumberToObject(r, "params", (double)vv_model_params(&m));
    cJSON_AddNumberToObject(r, "train_acc", train_acc);
    cJSON_AddNumberToObject(r, "train_loss", train_loss);
    if (test) {
        cJSON_AddNumberToObject(r, "test_acc", test_acc);
        cJSON_AddNumberToObject(r, "test_loss", test_loss);
    }
    cJSON_AddNumberToObject(r, "seconds", vv_now() - t0);
    cJSON_AddNumberToObject(r, "n_train", (double)ntrain);
    cJSON_AddStringToObject(r, "blas", vv_blas_corename());
    cJSON_AddItemToObject(r, "history", hist);
    hist = NULL;
    cJSON *outs = cJSON_AddObjectToObject(r, "outputs");
    snprintf(p, sizeof p, "%s/model.safetensors", out_dir);
    cJSON_AddStringToObject(outs, "weights", p);
    snprintf(p, sizeof p, "%s/model.json", out_dir);
    cJSON_AddStringToObject(outs, "spec", p);
    snprintf(p, sizeof p, "%s/checkpoint", out_dir);
    cJSON_AddStringToObject(outs, "checkpoint", p);
    snprintf(p, sizeof p, "%s/result.json", out_dir);
    cJSON_AddStringToObject(outs, "result", p);
    if ((rc = run_write_json(p, r)) < 0)
        goto done;
    if (s->install_default && !stopped && !timed_out) {
        if ((rc = models_install_default(out_dir)) < 0)
            goto done;
        cJSON_AddStringToObject(r, "installed_as", MODELS_DEFAULT);
    }
    *result = r;
    r = NULL;
done:
    cJSON_Delete(r);
    cJSON_Delete(hist);
    free(x);
    free(lab);
    free(perm);
    vv_trainer_free(tr);
    vv_model_free(&m);
    run_data_close(&dat);
    return rc;
}
