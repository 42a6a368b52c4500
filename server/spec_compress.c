/* spec_compress.c - the "compress" job spec (schema/compress.schema.json). */
#include "spec.h"

#include "model_check.h"
#include "vv/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The compress-only fields; the rest are the lasso solver options. */
static const char *const own_fields[] = {
    "kind",   "name",     "model",    "data",
    "layers", "sequential", "batch_size", "export",
    "finetune", "baseline", "positions_per_image", NULL};

const char *const spec_compress_fields[] = {"kind",         "name",   "model",
                                            "data",         "layers", "sequential",
                                            "batch_size",   "export", "finetune",
                                            "baseline",     "lambda", "lambda_paper",
                                            "lambda_ratio", "path",   "target_active",
                                            "solver",       "tol",    "max_iter",
                                            "max_seconds",  "mu",     "init",
                                            "seed",         "refit",  "metrics_every",
                                            "chunk_rows",   "device", "positions_per_image",
                                            NULL};

static int fail(char *field, size_t fsz, int err, const char *ptr, const char *msg)
{
    if (field && fsz)
        snprintf(field, fsz, "%s", ptr);
    return vv_fail(err, "%s: %s", ptr, msg);
}

/* The defaults of the fine-tuning stage (measured on fmnist-mlp, README
 * "Compressing"): 3 epochs of Adam at lr 1e-3, cosine, batch 128. */
static void finetune_default(finetune_spec *f)
{
    memset(f, 0, sizeof *f);
    f->enabled = 1;
    f->epochs = 3;
    f->batch_size = 128;
    vv_train_opts_default(&f->opts);
    f->opts.optimizer = VV_OPT_ADAM;
    f->opts.lr = 1e-3;
    f->cosine = 1;
}

static int num_in(const cJSON *m, const char *ptr, double lo, double hi, double *out, char *field,
                  size_t fsz)
{
    if (!cJSON_IsNumber(m) || !(m->valuedouble >= lo && m->valuedouble <= hi)) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be a number in [%g, %g]", lo, hi);
        return fail(field, fsz, VV_EINVAL, ptr, msg);
    }
    *out = m->valuedouble;
    return 0;
}

/* "finetune": false, true (the defaults) or {epochs, optimizer, lr,
 * momentum, weight_decay, schedule, batch_size, seed}. */
static int parse_finetune(const cJSON *j, finetune_spec *f, char *field, size_t fsz)
{
    finetune_default(f);
    if (cJSON_IsBool(j)) {
        f->enabled = cJSON_IsTrue(j);
        return 0;
    }
    if (!cJSON_IsObject(j))
        return fail(field, fsz, VV_ETYPE, "/finetune",
                    "must be a boolean or an object {epochs, optimizer, lr, momentum, "
                    "weight_decay, schedule, batch_size, seed}");
    for (const cJSON *m = j->child; m; m = m->next) {
        char ptr[160];
        snprintf(ptr, sizeof ptr, "/finetune/%s", m->string);
        const char *k = m->string;
        double v = 0;
        int rc = 0;
        for (const cJSON *o = j->child; o != m; o = o->next)
            if (!strcmp(o->string, k))
                return fail(field, fsz, VV_EINVAL, ptr, "appears twice");
        if (!strcmp(k, "epochs")) {
            if ((rc = num_in(m, ptr, 0, 1000, &v, field, fsz)) == 0 && v != floor(v))
                rc = fail(field, fsz, VV_EINVAL, ptr, "must be an integer");
            f->epochs = (int64_t)v;
        } else if (!strcmp(k, "batch_size")) {
            if ((rc = num_in(m, ptr, 1, 65536, &v, field, fsz)) == 0 && v != floor(v))
                rc = fail(field, fsz, VV_EINVAL, ptr, "must be an integer");
            f->batch_size = (int64_t)v;
        } else if (!strcmp(k, "seed")) {
            if ((rc = num_in(m, ptr, 0, 9007199254740992.0, &v, field, fsz)) == 0 && v != floor(v))
                rc = fail(field, fsz, VV_EINVAL, ptr, "must be an integer");
            f->seed = (uint64_t)v;
        } else if (!strcmp(k, "lr")) {
            rc = num_in(m, ptr, 1e-12, 10, &f->opts.lr, field, fsz);
        } else if (!strcmp(k, "momentum")) {
            rc = num_in(m, ptr, 0, 0.999999, &f->opts.momentum, field, fsz);
        } else if (!strcmp(k, "weight_decay")) {
            rc = num_in(m, ptr, 0, 10, &f->opts.weight_decay, field, fsz);
        } else if (!strcmp(k, "optimizer")) {
            if (cJSON_IsString(m) && !strcmp(m->valuestring, "sgd"))
                f->opts.optimizer = VV_OPT_SGD;
            else if (cJSON_IsString(m) && !strcmp(m->valuestring, "adam"))
                f->opts.optimizer = VV_OPT_ADAM;
            else
                rc = fail(field, fsz, VV_EINVAL, ptr, "must be sgd or adam");
        } else if (!strcmp(k, "schedule")) {
            if (cJSON_IsString(m) && !strcmp(m->valuestring, "constant"))
                f->cosine = 0;
            else if (cJSON_IsString(m) && !strcmp(m->valuestring, "cosine"))
                f->cosine = 1;
            else
                rc = fail(field, fsz, VV_EINVAL, ptr, "must be constant or cosine");
        } else {
            rc = vv_fail(VV_EUNKNOWN,
                         "%s: unknown field (allowed: epochs, optimizer, lr, momentum, "
                         "weight_decay, schedule, batch_size, seed)",
                         ptr);
            if (field && fsz)
                snprintf(field, fsz, "%s", ptr);
        }
        if (rc < 0)
            return rc;
    }
    f->enabled = f->epochs > 0;
    return 0;
}

int spec_parse_compress(const cJSON *root, compress_spec *s, char *field, size_t fsz)
{
    memset(s, 0, sizeof *s);
    s->batch_size = 256;
    s->export_model = 1;
    s->sequential = 1;
    s->baseline = 1;
    finetune_default(&s->finetune);
    if (field && fsz)
        field[0] = 0;
    if (!cJSON_IsObject(root))
        return fail(field, fsz, VV_ETYPE, "", "a job spec must be a JSON object");
    int rc = spec_parse_lasso_options(root, own_fields, &s->lasso, field, fsz);
    if (rc < 0)
        return rc;
    /* A compress run refits the kept neurons unless told not to (measured:
     * README "Compressing"). */
    if (!cJSON_GetObjectItemCaseSensitive(root, "refit"))
        s->lasso.refit = 1;
    if (s->lasso.path_kind)
        return fail(field, fsz, VV_EINVAL, "/path",
                    "a compress run solves one lambda (lambda, lambda_paper, lambda_ratio or "
                    "target_active); sweep lambda with POST /v1/sweeps or `vvctl sweep`");
    const cJSON *m;
    for (m = root->child; m; m = m->next) {
        char ptr[160];
        snprintf(ptr, sizeof ptr, "/%s", m->string);
        const char *k = m->string;
        if (!strcmp(k, "name")) {
            if (!cJSON_IsString(m))
                return fail(field, fsz, VV_ETYPE, ptr, "must be a string");
            if (!(s->name = strdup(m->valuestring)))
                return vv_fail(VV_ENOMEM, "out of memory");
        } else if (!strcmp(k, "model")) {
            if ((rc = model_ref_parse(m, ptr, &s->model, field, fsz)) < 0)
                return rc;
        } else if (!strcmp(k, "data")) {
            if ((rc = data_spec_parse(m, ptr, &s->data, field, fsz)) < 0)
                return rc;
        } else if (!strcmp(k, "layers")) {
            static const char *const sets[] = {"all_linear", "all_conv", "all"};
            int set = 0;
            for (int q = 0; q < 3; q++)
                if (cJSON_IsString(m) && !strcmp(m->valuestring, sets[q]))
                    set = q + 1;
            if (set) {
                s->layer_set = set;
                continue;
            }
            int n = cJSON_GetArraySize(m);
            if (!cJSON_IsArray(m) || n < 1 || n > 256)
                return fail(field, fsz, VV_ETYPE, ptr,
                            "must be \"all_linear\", \"all_conv\", \"all\" or an array of 1 "
                            "to 256 layer names (e.g. [\"classifier.6\"], [\"features.40\"])");
            if (!(s->layers = calloc((size_t)n, sizeof *s->layers)))
                return vv_fail(VV_ENOMEM, "out of memory");
            int i = 0;
            for (const cJSON *x = m->child; x; x = x->next, i++) {
                char p[192];
                snprintf(p, sizeof p, "%s/%d", ptr, i);
                if (!cJSON_IsString(x) || !x->valuestring[0])
                    return fail(field, fsz, VV_ETYPE, p, "must be a layer name");
                for (int j = 0; j < i; j++)
                    if (!strcmp(s->layers[j], x->valuestring))
                        return fail(field, fsz, VV_EINVAL, p, "names a layer twice");
                if (!(s->layers[i] = strdup(x->valuestring)))
                    return vv_fail(VV_ENOMEM, "out of memory");
                s->nlayers = i + 1;
            }
        } else if (!strcmp(k, "sequential") || !strcmp(k, "export") || !strcmp(k, "baseline")) {
            if (!cJSON_IsBool(m))
                return fail(field, fsz, VV_ETYPE, ptr, "must be a boolean");
            *(!strcmp(k, "sequential") ? &s->sequential
              : !strcmp(k, "export")   ? &s->export_model
                                       : &s->baseline) = cJSON_IsTrue(m);
        } else if (!strcmp(k, "finetune")) {
            if ((rc = parse_finetune(m, &s->finetune, field, fsz)) < 0)
                return rc;
        } else if (!strcmp(k, "positions_per_image")) {
            if (cJSON_IsString(m) && !strcmp(m->valuestring, "all")) {
                s->positions = -1;
                continue;
            }
            if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble) ||
                m->valuedouble < 1 || m->valuedouble > 1e9)
                return fail(field, fsz, VV_EINVAL, ptr,
                            "must be \"all\" or an integer >= 1 (output positions of a conv "
                            "layer sampled per image; at most its map)");
            s->positions = (int64_t)m->valuedouble;
        } else if (!strcmp(k, "batch_size")) {
            if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble) ||
                m->valuedouble < 1 || m->valuedouble > 65536)
                return fail(field, fsz, VV_EINVAL, ptr, "must be an integer in [1, 65536]");
            s->batch_size = (int64_t)m->valuedouble;
        }
    }
    static const char *const req[] = {"model", "data", "layers"};
    for (int i = 0; i < 3; i++)
        if (!cJSON_GetObjectItemCaseSensitive(root, req[i])) {
            char p[32];
            snprintf(p, sizeof p, "/%s", req[i]);
            return fail(field, fsz, VV_EMISSING, p, "is required");
        }
    if (s->lasso.lam_kind == LAM_NONE && !s->lasso.target_active)
        return fail(field, fsz, VV_EMISSING, "/lambda",
                    "one of lambda, lambda_paper, lambda_ratio, target_active is required");
    /* Layer names are checked against the model here when its architecture
     * is inline (model_check.h; the daemon checks a spec file's or a
     * resident model's when the run is submitted). */
    if (s->model.arch) {
        vv_model mm;
        char f2[64];
        if (model_build(s->model.arch, "/model", &mm, NULL, f2, sizeof f2) == 0) {
            rc = model_check_layers(&mm, s, field, fsz);
            vv_model_free(&mm);
        }
    }
    return rc;
}

void spec_free_compress(compress_spec *s)
{
    if (!s)
        return;
    free(s->name);
    model_ref_free(&s->model);
    data_spec_free(&s->data);
    for (int i = 0; i < s->nlayers; i++)
        free(s->layers[i]);
    free(s->layers);
    spec_free_lasso(&s->lasso);
    memset(s, 0, sizeof *s);
}
