/* spec_train.c - the "train" job spec (schema/train.schema.json).
 *
 * A preset fills in the recipe (and the model, and for fmnist-mlp and
 * fmnist-cnn the data set); any field given explicitly overrides it. */
#include "spec.h"

#include "vv/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const spec_train_fields[] = {
    "kind",        "name",        "preset",       "model",      "data", "optimizer",
    "lr",          "momentum",    "weight_decay", "decoupled",  "loss", "schedule",
    "milestones",  "gamma",       "epochs",       "batch_size", "seed", "augment",
    "resume_from", "max_seconds", "log_every",    "device",     NULL};

static int fail(char *field, size_t fsz, int err, const char *ptr, const char *msg)
{
    if (field && fsz)
        snprintf(field, fsz, "%s", ptr);
    return vv_fail(err, "%s: %s", ptr, msg);
}

static int get_int(const cJSON *m, const char *ptr, double lo, double hi, int64_t *out, char *field,
                   size_t fsz)
{
    if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble))
        return fail(field, fsz, VV_ETYPE, ptr, "must be an integer");
    if (m->valuedouble < lo || m->valuedouble > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "must be in [%.0f, %.0f]", lo, hi);
        return fail(field, fsz, VV_EINVAL, ptr, msg);
    }
    *out = (int64_t)m->valuedouble;
    return 0;
}

static int get_num(const cJSON *m, const char *ptr, double lo, double hi, int open_lo, double *out,
                   char *field, size_t fsz)
{
    if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble))
        return fail(field, fsz, VV_ETYPE, ptr, "must be a finite number");
    double v = m->valuedouble;
    if (v < lo || v > hi || (open_lo && v == lo)) {
        char msg[128];
        snprintf(msg, sizeof msg, "must be in %s%g, %g]", open_lo ? "(" : "[", lo, hi);
        return fail(field, fsz, VV_EINVAL, ptr, msg);
    }
    *out = v;
    return 0;
}

/* The recipes (reference/paper.md section 4.2, and the embedded default). */
static int apply_preset(train_spec *s, const char *name, char *field, size_t fsz)
{
    vv_train_opts_default(&s->opts);
    if (!strcmp(name, "fmnist-mlp")) {
        /* vvd's embedded default: 784-1024-1024-10 on Fashion-MNIST, Adam with
         * decoupled weight decay. */
        s->opts.optimizer = VV_OPT_ADAM;
        s->opts.lr = 1e-3;
        s->opts.weight_decay = 1e-4;
        s->opts.decoupled = 1;
        s->epochs = 6;
        s->batch_size = 128;
        s->schedule = SCHED_COSINE;
        s->install_default = 1;
    } else if (!strcmp(name, "fmnist-cnn")) {
        /* A small VGG-style CNN (vv_model_fmnist_cnn) on Fashion-MNIST with
         * fmnist-mlp's recipe; not installed as the default model.  Measured
         * on a shared 2-core machine: 2.5-4 min an epoch, 91.4% test
         * accuracy after the 4 epochs (88.0% after 1). */
        s->opts.optimizer = VV_OPT_ADAM;
        s->opts.lr = 1e-3;
        s->opts.weight_decay = 1e-4;
        s->opts.decoupled = 1;
        s->epochs = 4;
        s->batch_size = 128;
        s->schedule = SCHED_COSINE;
        s->install_default = 0;
    } else if (!strcmp(name, "alexnet_cifar64")) {
        /* train_alexnet.ipynb: Adam lr 1e-4, weight decay 1e-4 (coupled), 40
         * epochs, batch 256, Resize(70) + RandomCrop(64). */
        s->opts.optimizer = VV_OPT_ADAM;
        s->opts.lr = 1e-4;
        s->opts.weight_decay = 1e-4;
        s->epochs = 40;
        s->batch_size = 256;
        s->aug_crop = 64;
    } else if (!strcmp(name, "vgg19_cifar")) {
        /* Pufferfish's vanilla VGG-19: SGD momentum 0.9, weight decay 1e-4, lr
         * 0.1 stepped by 0.1 at epochs 150 and 250 of 300, batch 128, pad 4 +
         * random crop 32 + horizontal flip. */
        s->opts.optimizer = VV_OPT_SGD;
        s->opts.lr = 0.1;
        s->opts.momentum = 0.9;
        s->opts.weight_decay = 1e-4;
        s->epochs = 300;
        s->batch_size = 128;
        s->schedule = SCHED_STEP;
        s->milestones[0] = 150;
        s->milestones[1] = 250;
        s->nmilestones = 2;
        s->gamma = 0.1;
        s->aug_crop = 32;
        s->aug_pad = 4;
        s->aug_hflip = 1;
    } else {
        return fail(field, fsz, VV_EINVAL, "/preset",
                    "unknown preset (fmnist-mlp, fmnist-cnn, alexnet_cifar64, vgg19_cifar)");
    }
    if (!(s->preset = strdup(name)))
        return vv_fail(VV_ENOMEM, "out of memory");
    return 0;
}

/* The model and data a preset implies when the spec gives none. */
static int preset_model_data(train_spec *s, int have_model, int have_data, char *field, size_t fsz)
{
    int rc = 0;
    if (!have_model && s->preset) {
        cJSON *m = cJSON_CreateObject();
        if (!strcmp(s->preset, "fmnist-mlp")) {
            cJSON_AddStringToObject(m, "arch", "mlp");
            cJSON *in = cJSON_AddArrayToObject(m, "input");
            int dims[] = {1, 28, 28}, sizes[] = {784, 1024, 1024, 10};
            for (int i = 0; i < 3; i++)
                cJSON_AddItemToArray(in, cJSON_CreateNumber(dims[i]));
            cJSON *sz = cJSON_AddArrayToObject(m, "sizes");
            for (int i = 0; i < 4; i++)
                cJSON_AddItemToArray(sz, cJSON_CreateNumber(sizes[i]));
            cJSON *pp = cJSON_AddObjectToObject(m, "preprocess");
            cJSON_AddItemToObject(pp, "mean", cJSON_CreateDoubleArray((double[]){0.2860}, 1));
            cJSON_AddItemToObject(pp, "std", cJSON_CreateDoubleArray((double[]){0.3530}, 1));
        } else if (!strcmp(s->preset, "fmnist-cnn")) {
            cJSON_AddStringToObject(m, "arch", "fmnist_cnn");
            cJSON *pp = cJSON_AddObjectToObject(m, "preprocess");
            cJSON_AddItemToObject(pp, "mean", cJSON_CreateDoubleArray((double[]){0.2860}, 1));
            cJSON_AddItemToObject(pp, "std", cJSON_CreateDoubleArray((double[]){0.3530}, 1));
        } else if (!strcmp(s->preset, "alexnet_cifar64")) {
            cJSON_AddStringToObject(m, "arch", "alexnet_cifar64");
            cJSON *pp = cJSON_AddObjectToObject(m, "preprocess");
            cJSON_AddNumberToObject(pp, "resize", 70);
            cJSON_AddNumberToObject(pp, "crop", 64);
        } else {
            cJSON_AddStringToObject(m, "arch", "vgg19_cifar");
            cJSON *pp = cJSON_AddObjectToObject(m, "preprocess");
            double mean[] = {125.3 / 255, 123.0 / 255, 113.9 / 255},
                   std[] = {63.0 / 255, 62.1 / 255, 66.7 / 255};
            cJSON_AddItemToObject(pp, "mean", cJSON_CreateDoubleArray(mean, 3));
            cJSON_AddItemToObject(pp, "std", cJSON_CreateDoubleArray(std, 3));
        }
        cJSON_AddNumberToObject(m, "seed", (double)s->seed);
        rc = model_ref_parse(m, "/model", &s->model, field, fsz);
        cJSON_Delete(m);
    }
    if (rc == 0 && !have_data && s->preset) {
        if (strcmp(s->preset, "fmnist-mlp") && strcmp(s->preset, "fmnist-cnn"))
            return fail(field, fsz, VV_EMISSING, "/data",
                        "is required for this preset (CIFAR-10: {\"format\": \"cifar10\", "
                        "\"dir\": ...})");
        cJSON *d = cJSON_CreateString("fashion-mnist");
        rc = data_spec_parse(d, "/data", &s->data, field, fsz);
        cJSON_Delete(d);
    }
    return rc;
}

int spec_parse_train(const cJSON *root, train_spec *s, char *field, size_t fsz)
{
    memset(s, 0, sizeof *s);
    vv_train_opts_default(&s->opts);
    s->epochs = 10;
    s->batch_size = 128;
    s->gamma = 0.1;
    s->log_every = 20;
    if (field && fsz)
        field[0] = 0;
    if (!cJSON_IsObject(root))
        return fail(field, fsz, VV_ETYPE, "", "a job spec must be a JSON object");
    int rc = 0;
    const cJSON *preset = cJSON_GetObjectItemCaseSensitive(root, "preset");
    if (preset) {
        if (!cJSON_IsString(preset))
            return fail(field, fsz, VV_ETYPE, "/preset", "must be a string");
        if ((rc = apply_preset(s, preset->valuestring, field, fsz)) < 0)
            return rc;
    }
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
    if (seed) {
        int64_t v;
        if ((rc = get_int(seed, "/seed", 0, 9007199254740992.0, &v, field, fsz)) < 0)
            return rc;
        s->seed = (uint64_t)v;
    }
    int have_model = 0, have_data = 0;
    for (const cJSON *m = root->child; m; m = m->next) {
        char ptr[160];
        snprintf(ptr, sizeof ptr, "/%s", m->string);
        const char *k = m->string;
        for (const cJSON *o = root->child; o != m; o = o->next)
            if (!strcmp(o->string, k))
                return fail(field, fsz, VV_EINVAL, ptr, "appears twice");
        if (!strcmp(k, "kind") || !strcmp(k, "preset") || !strcmp(k, "seed")) {
            continue;
        } else if (!strcmp(k, "name")) {
            if (!cJSON_IsString(m))
                return fail(field, fsz, VV_ETYPE, ptr, "must be a string");
            if (!(s->name = strdup(m->valuestring)))
                return vv_fail(VV_ENOMEM, "out of memory");
        } else if (!strcmp(k, "model")) {
            have_model = 1;
            rc = model_ref_parse(m, ptr, &s->model, field, fsz);
            if (rc == 0 && s->model.resident)
                rc = fail(field, fsz, VV_EINVAL, ptr,
                          "train takes an architecture ({\"arch\" | \"spec\", optional "
                          "\"weights\" to start from}), not a resident model");
        } else if (!strcmp(k, "data")) {
            have_data = 1;
            rc = data_spec_parse(m, ptr, &s->data, field, fsz);
        } else if (!strcmp(k, "optimizer")) {
            if (!cJSON_IsString(m))
                return fail(field, fsz, VV_ETYPE, ptr, "must be \"sgd\" or \"adam\"");
            if (!strcmp(m->valuestring, "sgd"))
                s->opts.optimizer = VV_OPT_SGD;
            else if (!strcmp(m->valuestring, "adam"))
                s->opts.optimizer = VV_OPT_ADAM;
            else
                return fail(field, fsz, VV_EINVAL, ptr, "must be \"sgd\" or \"adam\"");
        } else if (!strcmp(k, "loss")) {
            if (!cJSON_IsString(m) ||
                (strcmp(m->valuestring, "cross_entropy") && strcmp(m->valuestring, "mse")))
                return fail(field, fsz, cJSON_IsString(m) ? VV_EINVAL : VV_ETYPE, ptr,
                            "must be \"cross_entropy\" or \"mse\"");
            s->opts.loss = !strcmp(m->valuestring, "mse") ? VV_LOSS_MSE : VV_LOSS_CE;
        } else if (!strcmp(k, "lr")) {
            rc = get_num(m, ptr, 0, 1e3, 1, &s->opts.lr, field, fsz);
        } else if (!strcmp(k, "momentum")) {
            rc = get_num(m, ptr, 0, 0.999999, 0, &s->opts.momentum, field, fsz);
        } else if (!strcmp(k, "weight_decay")) {
            rc = get_num(m, ptr, 0, 10, 0, &s->opts.weight_decay, field, fsz);
        } else if (!strcmp(k, "gamma")) {
            rc = get_num(m, ptr, 0, 1, 1, &s->gamma, field, fsz);
        } else if (!strcmp(k, "max_seconds")) {
            rc = get_num(m, ptr, 0, 1e9, 1, &s->max_seconds, field, fsz);
        } else if (!strcmp(k, "decoupled")) {
            if (!cJSON_IsBool(m))
                return fail(field, fsz, VV_ETYPE, ptr, "must be a boolean");
            s->opts.decoupled = cJSON_IsTrue(m);
        } else if (!strcmp(k, "schedule")) {
            if (!cJSON_IsString(m))
                return fail(field, fsz, VV_ETYPE, ptr,
                            "must be \"constant\", \"step\" or \"cosine\"");
            if (!strcmp(m->valuestring, "constant"))
                s->schedule = SCHED_CONSTANT;
            else if (!strcmp(m->valuestring, "step"))
                s->schedule = SCHED_STEP;
            else if (!strcmp(m->valuestring, "cosine"))
                s->schedule = SCHED_COSINE;
            else
                return fail(field, fsz, VV_EINVAL, ptr,
                            "must be \"constant\", \"step\" or \"cosine\"");
        } else if (!strcmp(k, "milestones")) {
            int n = cJSON_GetArraySize(m), i = 0;
            if (!cJSON_IsArray(m) || n > 16)
                return fail(field, fsz, VV_ETYPE, ptr, "must be an array of at most 16 epochs");
            for (const cJSON *x = m->child; x && rc == 0; x = x->next, i++) {
                char p[192];
                snprintf(p, sizeof p, "%s/%d", ptr, i);
                rc = get_int(x, p, 1, 1e9, &s->milestones[i], field, fsz);
                if (rc == 0 && i && s->milestones[i] <= s->milestones[i - 1])
                    rc = fail(field, fsz, VV_EINVAL, p, "milestones must increase");
            }
            s->nmilestones = n;
        } else if (!strcmp(k, "epochs")) {
            rc = get_int(m, ptr, 1, 100000, &s->epochs, field, fsz);
        } else if (!strcmp(k, "batch_size")) {
            rc = get_int(m, ptr, 1, 65536, &s->batch_size, field, fsz);
        } else if (!strcmp(k, "log_every")) {
            rc = get_int(m, ptr, 1, 1e9, &s->log_every, field, fsz);
        } else if (!strcmp(k, "augment")) {
            if (!cJSON_IsObject(m))
                return fail(field, fsz, VV_ETYPE, ptr, "must be an object {crop, pad, hflip}");
            s->aug_crop = s->aug_pad = s->aug_hflip = 0;
            for (const cJSON *a = m->child; a && rc == 0; a = a->next) {
                char p[192];
                snprintf(p, sizeof p, "%s/%s", ptr, a->string);
                int64_t v = 0;
                if (!strcmp(a->string, "crop"))
                    rc = get_int(a, p, 1, 4096, &v, field, fsz), s->aug_crop = (int)v;
                else if (!strcmp(a->string, "pad"))
                    rc = get_int(a, p, 0, 512, &v, field, fsz), s->aug_pad = (int)v;
                else if (!strcmp(a->string, "hflip")) {
                    if (!cJSON_IsBool(a))
                        return fail(field, fsz, VV_ETYPE, p, "must be a boolean");
                    s->aug_hflip = cJSON_IsTrue(a);
                } else
                    return fail(field, fsz, VV_EUNKNOWN, p,
                                "unknown field (allowed: crop, pad, hflip)");
            }
        } else if (!strcmp(k, "resume_from")) {
            if (!cJSON_IsString(m) || !m->valuestring[0])
                return fail(field, fsz, VV_ETYPE, ptr,
                            "must be the directory of an earlier train run");
            if (!(s->resume_from = strdup(m->valuestring)))
                return vv_fail(VV_ENOMEM, "out of memory");
        } else if (!strcmp(k, "device")) {
            if (!cJSON_IsString(m) ||
                (strcmp(m->valuestring, "cpu") && strcmp(m->valuestring, "auto")))
                return fail(field, fsz, VV_EINVAL, ptr, "device must be cpu or auto in this build");
        } else {
            return fail(field, fsz, VV_EUNKNOWN, ptr, "unknown field");
        }
        if (rc < 0)
            return rc;
    }
    if ((rc = preset_model_data(s, have_model, have_data, field, fsz)) < 0)
        return rc;
    if (!have_model && !s->preset)
        return fail(field, fsz, VV_EMISSING, "/model", "is required (or a preset)");
    if (!have_data && !s->preset)
        return fail(field, fsz, VV_EMISSING, "/data", "is required (or a preset)");
    if (s->opts.momentum > 0 && s->opts.optimizer != VV_OPT_SGD)
        return fail(field, fsz, VV_EINVAL, "/momentum", "only applies to optimizer sgd");
    if (s->nmilestones && s->schedule != SCHED_STEP)
        return fail(field, fsz, VV_EINVAL, "/milestones", "only applies to schedule step");
    if (s->schedule == SCHED_STEP && !s->nmilestones)
        return fail(field, fsz, VV_EMISSING, "/milestones", "schedule step needs milestones");
    /* A changed recipe is not the embedded default. */
    static const char *const neutral[] = {"kind",        "name",   "preset",      "log_every",
                                          "resume_from", "device", "max_seconds", NULL};
    for (const cJSON *m = root->child; m && s->install_default; m = m->next) {
        int ok = 0;
        for (int i = 0; neutral[i] && !ok; i++)
            ok = !strcmp(m->string, neutral[i]);
        s->install_default = ok;
    }
    return 0;
}

void spec_free_train(train_spec *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->preset);
    model_ref_free(&s->model);
    data_spec_free(&s->data);
    free(s->resume_from);
    memset(s, 0, sizeof *s);
}
