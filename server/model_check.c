/* model_check.c - a compress spec's layers and weights checked against its
 * model before the run (model_check.h). */
#include "model_check.h"

#include "model_spec.h"
#include "models.h"
#include "vv/array.h"
#include "vv/err.h"

#include <stdio.h>
#include <string.h>

int model_layer_compressible(const vv_model *m, int i)
{
    if (i < 0 || i >= m->n || m->layers[i].type != VV_LAYER_LINEAR)
        return 0;
    for (int j = 0; j < i; j++)
        if (m->layers[j].type == VV_LAYER_LINEAR || m->layers[j].type == VV_LAYER_CONV2D)
            return 1;
    return 0;
}

/* "the layers that can be compressed are a, b, c" (shortened with "..." to
 * fit cap), or why there are none. */
static void list_compressible(const vv_model *m, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "the layers that can be compressed are ");
    int any = 0;
    for (int i = 0; i < m->n && k < cap; i++) {
        if (!model_layer_compressible(m, i))
            continue;
        size_t need = strlen(m->layers[i].name) + 2;
        if (k + need + 4 >= cap) {
            snprintf(buf + k, cap - k, "...");
            return;
        }
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", any ? ", " : "", m->layers[i].name);
        any = 1;
    }
    if (!any)
        snprintf(buf, cap,
                 "the model has no layer that can be compressed (a linear layer with a conv2d "
                 "or linear layer before it)");
}

static int bad(char *field, size_t fsz, const char *ptr)
{
    if (field && fsz)
        snprintf(field, fsz, "%s", ptr);
    return VV_EINVAL;
}

int model_check_layers(const vv_model *m, const compress_spec *s, char *field, size_t fsz)
{
    char valid[768];
    if (s->all_linear) {
        for (int i = 0; i < m->n; i++)
            if (m->layers[i].type == VV_LAYER_LINEAR && vv_model_feeding_linear(m, i) >= 0)
                return 0;
        list_compressible(m, valid, sizeof valid);
        vv_fail(VV_EINVAL,
                "/layers: the model has no linear layer fed by hidden neurons (all_linear needs "
                "linear -> relu -> linear); name the layers instead: %s",
                valid);
        return bad(field, fsz, "/layers");
    }
    for (int t = 0; t < s->nlayers; t++) {
        int i = vv_model_find(m, s->layers[t]);
        if (model_layer_compressible(m, i))
            continue;
        char p[32];
        snprintf(p, sizeof p, "/layers/%d", t);
        list_compressible(m, valid, sizeof valid);
        if (i < 0)
            vv_fail(VV_EINVAL, "%s: '%.64s': no layer of the model has this name; %s", p,
                    s->layers[t], valid);
        else if (m->layers[i].type != VV_LAYER_LINEAR)
            vv_fail(VV_EINVAL, "%s: '%.64s' is a %s layer, not linear; %s", p, s->layers[t],
                    vv_layer_type_name(m->layers[i].type), valid);
        else
            vv_fail(VV_EINVAL,
                    "%s: '%.64s' is fed by the input: it has no hidden neurons to delete; %s", p,
                    s->layers[t], valid);
        return bad(field, fsz, p);
    }
    return 0;
}

/* The architecture of the default model's train preset, built. */
static int default_arch(vv_model *m)
{
    static const char text[] = "{\"kind\": \"train\", \"preset\": \"" MODELS_DEFAULT "\"}";
    job_spec js;
    char f[64];
    int rc = spec_parse_job_text(text, sizeof text - 1, &js, f, sizeof f);
    if (rc == 0)
        rc = js.train.model.arch ? model_build(js.train.model.arch, "/model", m, NULL, f, sizeof f)
                                 : VV_EINTERNAL;
    spec_free_job(&js);
    return rc;
}

int model_check_compress(const compress_spec *s, char *field, size_t fsz)
{
    int rc = 0;
    const model_ref *r = &s->model;
    if (r->resident) {
        resident *res = models_acquire_default(r->resident);
        if (res) {
            rc = model_check_layers(&res->m, s, field, fsz);
            models_release(res);
        } else if (!strcmp(r->resident, MODELS_DEFAULT)) {
            /* Not trained yet (its training is queued): its architecture is
             * the preset's. */
            vv_model m = {0};
            if (default_arch(&m) == 0)
                rc = model_check_layers(&m, s, field, fsz);
            vv_model_free(&m);
        }
        /* A name no model has is api_check_model_files's to report. */
        return rc;
    }
    if (r->arch) {
        vv_model m = {0};
        char f2[256] = "";
        if ((rc = model_build(r->arch, r->spec_path ? r->spec_ptr : "/model", &m, NULL, f2,
                              sizeof f2)) < 0) {
            if (field && fsz)
                snprintf(field, fsz, "%s", f2);
            return rc;
        }
        rc = model_check_layers(&m, s, field, fsz);
        vv_model_free(&m);
    }
    if (rc == 0 && r->weights) {
        char **names = NULL;
        int n = 0;
        if ((rc = vv_safetensors_names(r->weights, &names, &n)) < 0) {
            if (field && fsz)
                snprintf(field, fsz, "/model/weights");
        }
        vv_safetensors_names_free(names, n);
    }
    return rc;
}
