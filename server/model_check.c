/* model_check.c - a compress spec's layers and weights checked against its
 * model before the run (model_check.h). */
#include "model_check.h"

#include "model_spec.h"
#include "models.h"
#include "vv/array.h"
#include "vv/err.h"

#include <stdio.h>
#include <string.h>

int model_layer_unit(const vv_model *m, int i, int64_t positions, layer_unit *u)
{
    memset(u, 0, sizeof *u);
    u->producer = -1;
    u->positions = 1;
    if (i < 0 || i >= m->n)
        return 0;
    const vv_layer *L = &m->layers[i];
    if (L->type != VV_LAYER_LINEAR && L->type != VV_LAYER_CONV2D)
        return 0;
    u->conv = L->type == VV_LAYER_CONV2D;
    u->k = (int64_t)L->in_ch * (u->conv ? (int64_t)L->kernel * L->kernel : 1);
    u->d = L->out_ch;
    int64_t g = 0;
    int j = vv_model_feeding_linear(m, i);
    if (j >= 0 && !u->conv) {
        u->kind = UNIT_NEURONS;
        u->producer = j;
        u->group = 1;
    } else if ((j = vv_model_feeding_conv(m, i, &g)) >= 0) {
        u->kind = UNIT_CHANNELS;
        u->producer = j;
        u->group = g;
    } else if (!u->conv && model_layer_compressible(m, i)) {
        /* A linear layer above hidden layers whose inputs are not one
         * layer's outputs: its columns can be zeroed, nothing deleted. */
        u->kind = UNIT_NONE;
        u->group = 1;
    } else {
        return 0;
    }
    u->units = u->k / u->group;
    if (u->conv) {
        int64_t map = (int64_t)L->oh * L->ow;
        int64_t p = positions < 0 ? map : positions == 0 ? COMPRESS_POSITIONS : positions;
        u->positions = p < map ? p : map;
    }
    return 1;
}

int model_layer_compressible(const vv_model *m, int i)
{
    if (i < 0 || i >= m->n)
        return 0;
    if (m->layers[i].type == VV_LAYER_CONV2D)
        return vv_model_feeding_conv(m, i, NULL) >= 0;
    if (m->layers[i].type != VV_LAYER_LINEAR)
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
                 "or linear layer before it, or a conv2d fed by the channels of another)");
}

static int bad(char *field, size_t fsz, const char *ptr)
{
    if (field && fsz)
        snprintf(field, fsz, "%s", ptr);
    return VV_EINVAL;
}

/* Whether layer i belongs to a named set of layers. */
static int in_set(const vv_model *m, int i, int set)
{
    layer_unit u;
    if (!model_layer_unit(m, i, 1, &u))
        return 0;
    switch (set) {
    case LAYERS_ALL_LINEAR:
        return u.kind == UNIT_NEURONS;
    case LAYERS_ALL_CONV:
        return u.conv;
    case LAYERS_ALL:
        return u.kind != UNIT_NONE;
    }
    return 0;
}

int model_compress_layers(const vv_model *m, const compress_spec *s, int *idx, char *field,
                          size_t fsz)
{
    char valid[768];
    int nl = 0;
    if (s->layer_set) {
        for (int i = 0; i < m->n; i++)
            if (in_set(m, i, s->layer_set)) {
                if (idx)
                    idx[nl] = i;
                nl++;
            }
        if (nl == 0) {
            list_compressible(m, valid, sizeof valid);
            vv_fail(VV_EINVAL, "/layers: the model has no %s; name the layers instead: %s",
                    s->layer_set == LAYERS_ALL_LINEAR
                        ? "linear layer fed by hidden neurons (all_linear needs linear -> relu "
                          "-> linear)"
                    : s->layer_set == LAYERS_ALL_CONV
                        ? "conv2d layer fed by the channels of another (all_conv needs conv2d "
                          "-> [batchnorm2d, relu, pool] -> conv2d)"
                        : "layer fed by hidden neurons or channels",
                    valid);
            return bad(field, fsz, "/layers");
        }
    }
    for (int t = 0; t < s->nlayers; t++) {
        int i = vv_model_find(m, s->layers[t]);
        char p[32];
        snprintf(p, sizeof p, "/layers/%d", t);
        if (!model_layer_compressible(m, i)) {
            list_compressible(m, valid, sizeof valid);
            if (i < 0)
                vv_fail(VV_EINVAL, "%s: '%.64s': no layer of the model has this name; %s", p,
                        s->layers[t], valid);
            else if (m->layers[i].type == VV_LAYER_CONV2D)
                vv_fail(VV_EINVAL,
                        "%s: '%.64s' is a conv2d layer with no channels to delete in front of "
                        "it (it is fed by the input, or by something that is not a conv2d "
                        "through batchnorm2d, relu, pools and dropout); %s",
                        p, s->layers[t], valid);
            else if (m->layers[i].type != VV_LAYER_LINEAR)
                vv_fail(VV_EINVAL, "%s: '%.64s' is a %s layer, not linear or conv2d; %s", p,
                        s->layers[t], vv_layer_type_name(m->layers[i].type), valid);
            else
                vv_fail(VV_EINVAL,
                        "%s: '%.64s' is fed by the input: it has no hidden neurons to delete; %s",
                        p, s->layers[t], valid);
            return bad(field, fsz, p);
        }
        /* Ascending layer order. */
        int at = nl;
        while (idx && at > 0 && idx[at - 1] > i) {
            idx[at] = idx[at - 1];
            at--;
        }
        if (idx)
            idx[at] = i;
        nl++;
    }
    /* A conv layer has as many positions per image as its output map. */
    for (int i = 0; s->positions > 0 && i < m->n; i++) {
        const vv_layer *L = &m->layers[i];
        int named = 0;
        for (int t = 0; t < s->nlayers; t++)
            named |= !strcmp(s->layers[t], L->name);
        if (L->type != VV_LAYER_CONV2D || !(named || in_set(m, i, s->layer_set)) ||
            s->positions <= (int64_t)L->oh * L->ow)
            continue;
        vv_fail(VV_EINVAL,
                "/positions_per_image: %lld positions exceed the %d x %d output map of "
                "layer %s (at most %d; or \"all\")",
                (long long)s->positions, L->oh, L->ow, L->name, L->oh * L->ow);
        return bad(field, fsz, "/positions_per_image");
    }
    return nl;
}

int model_check_layers(const vv_model *m, const compress_spec *s, char *field, size_t fsz)
{
    int rc = model_compress_layers(m, s, NULL, field, fsz);
    return rc < 0 ? rc : 0;
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
