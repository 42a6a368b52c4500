/* spec_compress.c - the "compress" job spec (schema/compress.schema.json). */
#include "spec.h"

#include "vv/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The compress-only fields; the rest are the lasso solver options. */
static const char *const own_fields[] = {"kind",       "name",       "model",  "data", "layers",
                                         "sequential", "batch_size", "export", NULL};

const char *const spec_compress_fields[] = {"kind",
                                            "name",
                                            "model",
                                            "data",
                                            "layers",
                                            "sequential",
                                            "batch_size",
                                            "export",
                                            "lambda",
                                            "lambda_paper",
                                            "lambda_ratio",
                                            "path",
                                            "target_active",
                                            "solver",
                                            "tol",
                                            "max_iter",
                                            "max_seconds",
                                            "mu",
                                            "init",
                                            "seed",
                                            "refit",
                                            "metrics_every",
                                            "chunk_rows",
                                            "device",
                                            NULL};

static int fail(char *field, size_t fsz, int err, const char *ptr, const char *msg)
{
    if (field && fsz)
        snprintf(field, fsz, "%s", ptr);
    return vv_fail(err, "%s: %s", ptr, msg);
}

int spec_parse_compress(const cJSON *root, compress_spec *s, char *field, size_t fsz)
{
    memset(s, 0, sizeof *s);
    s->batch_size = 256;
    s->export_model = 1;
    if (field && fsz)
        field[0] = 0;
    if (!cJSON_IsObject(root))
        return fail(field, fsz, VV_ETYPE, "", "a job spec must be a JSON object");
    int rc = spec_parse_lasso_options(root, own_fields, &s->lasso, field, fsz);
    if (rc < 0)
        return rc;
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
            if (cJSON_IsString(m) && !strcmp(m->valuestring, "all_linear")) {
                s->all_linear = 1;
                continue;
            }
            int n = cJSON_GetArraySize(m);
            if (!cJSON_IsArray(m) || n < 1 || n > 256)
                return fail(field, fsz, VV_ETYPE, ptr,
                            "must be \"all_linear\" or an array of 1 to 256 linear layer names "
                            "(e.g. [\"classifier.6\"])");
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
        } else if (!strcmp(k, "sequential") || !strcmp(k, "export")) {
            if (!cJSON_IsBool(m))
                return fail(field, fsz, VV_ETYPE, ptr, "must be a boolean");
            *(!strcmp(k, "sequential") ? &s->sequential : &s->export_model) = cJSON_IsTrue(m);
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
     * is known (a resident model is checked when the run starts). */
    if (s->model.arch && s->nlayers) {
        vv_model mm;
        char f2[64];
        if (model_build(s->model.arch, "/model", &mm, NULL, f2, sizeof f2) == 0) {
            for (int i = 0; i < s->nlayers && rc == 0; i++) {
                int at = vv_model_find(&mm, s->layers[i]);
                char p[64];
                snprintf(p, sizeof p, "/layers/%d", i);
                if (at < 0)
                    rc = fail(field, fsz, VV_EINVAL, p, "no layer of the model has this name");
                else if (mm.layers[at].type != VV_LAYER_LINEAR)
                    rc = fail(field, fsz, VV_EINVAL, p,
                              "names a layer that is not linear; only linear layers can be "
                              "compressed");
            }
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
