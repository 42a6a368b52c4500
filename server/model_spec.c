/* model_spec.c - architecture specs, model references and data sets in
 * job specs (model_spec.h). */
#include "model_spec.h"

#include "json_check.h"

#include "vv/err.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int spec_bad(char *field, size_t fsz, int err, const char *ptr, const char *fmt, ...)
{
    if (field && fsz)
        snprintf(field, fsz, "%s", ptr);
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vv_fail(err, "%s: %s", ptr, msg);
}

int spec_opt_i64(const cJSON *o, const char *key, const char *ptr, int64_t lo, int64_t hi,
                 int64_t *out, char *field, size_t fsz)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return 0;
    char p[256];
    snprintf(p, sizeof p, "%.200s/%s", ptr, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return spec_bad(field, fsz, VV_ETYPE, p, "must be an integer");
    if (v->valuedouble < lo || v->valuedouble > hi)
        return spec_bad(field, fsz, VV_EINVAL, p, "must be in [%lld, %lld], got %g", (long long)lo,
                        (long long)hi, v->valuedouble);
    *out = (int64_t)v->valuedouble;
    return 0;
}

int spec_opt_int(const cJSON *o, const char *key, const char *ptr, int lo, int hi, int *out,
                 char *field, size_t fsz)
{
    int64_t v = *out;
    int rc = spec_opt_i64(o, key, ptr, lo, hi, &v, field, fsz);
    *out = (int)v;
    return rc;
}

int spec_opt_bool(const cJSON *o, const char *key, const char *ptr, int *out, char *field,
                  size_t fsz)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return 0;
    char p[256];
    snprintf(p, sizeof p, "%.200s/%s", ptr, key);
    if (!cJSON_IsBool(v))
        return spec_bad(field, fsz, VV_ETYPE, p, "must be a boolean");
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Every member of o must be one of allowed (NULL-ended). */
int spec_only(const cJSON *o, const char *ptr, const char *const *allowed, char *field, size_t fsz)
{
    for (const cJSON *m = o->child; m; m = m->next) {
        int ok = 0;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(m->string, allowed[i]);
        if (!ok) {
            char p[256], list[512] = "";
            snprintf(p, sizeof p, "%.200s/%s", ptr, m->string);
            for (int i = 0; allowed[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         allowed[i]);
            return spec_bad(field, fsz, VV_EUNKNOWN, p, "unknown field (allowed: %s)", list);
        }
        for (const cJSON *o2 = o->child; o2 != m; o2 = o2->next)
            if (!strcmp(o2->string, m->string)) {
                char p[256];
                snprintf(p, sizeof p, "%.200s/%s", ptr, m->string);
                return spec_bad(field, fsz, VV_EINVAL, p, "appears twice");
            }
    }
    return 0;
}

/* ---- Architectures ------------------------------------------------------------------ */

static int parse_layer(const cJSON *j, const char *ptr, vv_layer *l, char *field, size_t fsz)
{
    memset(l, 0, sizeof *l);
    if (!cJSON_IsObject(j))
        return spec_bad(field, fsz, VV_ETYPE, ptr, "a layer must be an object with a \"type\"");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    char p[256];
    snprintf(p, sizeof p, "%.200s/type", ptr);
    if (!cJSON_IsString(t))
        return spec_bad(field, fsz, t ? VV_ETYPE : VV_EMISSING, p,
                        "a layer type string is required");
    l->type = vv_layer_type_from_name(t->valuestring);
    if (!l->type)
        return spec_bad(
            field, fsz, VV_EINVAL, p,
            "unknown layer type '%.64s' (conv2d, batchnorm2d, relu, maxpool2d, avgpool2d, "
            "adaptive_avgpool2d, flatten, linear, dropout)",
            t->valuestring);
    static const char *const conv[] = {"type",         "name",        "in_channels",
                                       "out_channels", "kernel_size", "stride",
                                       "padding",      "bias",        NULL};
    static const char *const bn[] = {"type", "name", "num_features", "eps", NULL};
    static const char *const pool[] = {"type", "kernel_size", "stride", "padding", NULL};
    static const char *const apool[] = {"type", "output_size", NULL};
    static const char *const lin[] = {"type", "name", "in_features", "out_features", "bias", NULL};
    static const char *const drop[] = {"type", "p", NULL};
    static const char *const bare[] = {"type", NULL};
    const char *const *allowed = bare;
    int rc = 0, big = 1 << 20;
    l->bias = 1;
    switch (l->type) {
    case VV_LAYER_CONV2D:
        allowed = conv;
        l->stride = 1;
        rc |= spec_opt_int(j, "in_channels", ptr, 1, big, &l->in_ch, field, fsz);
        if (rc == 0)
            rc = spec_opt_int(j, "out_channels", ptr, 1, big, &l->out_ch, field, fsz);
        if (rc == 0)
            rc = spec_opt_int(j, "kernel_size", ptr, 1, 1024, &l->kernel, field, fsz);
        if (rc == 0)
            rc = spec_opt_int(j, "stride", ptr, 1, 1024, &l->stride, field, fsz);
        if (rc == 0)
            rc = spec_opt_int(j, "padding", ptr, 0, 1024, &l->pad, field, fsz);
        if (rc == 0)
            rc = spec_opt_bool(j, "bias", ptr, &l->bias, field, fsz);
        break;
    case VV_LAYER_BATCHNORM2D:
        allowed = bn;
        l->eps = 1e-5f;
        rc = spec_opt_int(j, "num_features", ptr, 1, big, &l->in_ch, field, fsz);
        l->out_ch = l->in_ch;
        if (rc == 0 && cJSON_GetObjectItemCaseSensitive(j, "eps")) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eps");
            snprintf(p, sizeof p, "%.200s/eps", ptr);
            if (!cJSON_IsNumber(e) || !(e->valuedouble > 0))
                rc = spec_bad(field, fsz, VV_EINVAL, p, "must be a number > 0");
            else
                l->eps = (float)e->valuedouble;
        }
        break;
    case VV_LAYER_MAXPOOL2D:
    case VV_LAYER_AVGPOOL2D:
        allowed = pool;
        rc = spec_opt_int(j, "kernel_size", ptr, 1, 1024, &l->kernel, field, fsz);
        if (rc == 0)
            rc = spec_opt_int(j, "stride", ptr, 1, 1024, &l->stride, field, fsz);
        if (rc == 0)
            rc = spec_opt_int(j, "padding", ptr, 0, 512, &l->pad, field, fsz);
        break;
    case VV_LAYER_ADAPTIVE_AVGPOOL2D: {
        allowed = apool;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "output_size");
        snprintf(p, sizeof p, "%.200s/output_size", ptr);
        if (cJSON_IsNumber(o))
            l->out_h = l->out_w = (int)o->valuedouble;
        else if (cJSON_IsArray(o) && cJSON_GetArraySize(o) == 2 &&
                 cJSON_IsNumber(cJSON_GetArrayItem(o, 0)) &&
                 cJSON_IsNumber(cJSON_GetArrayItem(o, 1))) {
            l->out_h = (int)cJSON_GetArrayItem(o, 0)->valuedouble;
            l->out_w = (int)cJSON_GetArrayItem(o, 1)->valuedouble;
        } else
            rc = spec_bad(field, fsz, o ? VV_ETYPE : VV_EMISSING, p,
                          "must be an integer or [height, width]");
        if (rc == 0 && (l->out_h < 1 || l->out_w < 1 || l->out_h > 4096 || l->out_w > 4096))
            rc = spec_bad(field, fsz, VV_EINVAL, p, "sizes must be in [1, 4096]");
        break;
    }
    case VV_LAYER_LINEAR:
        allowed = lin;
        rc = spec_opt_int(j, "in_features", ptr, 1, big, &l->in_ch, field, fsz);
        if (rc == 0)
            rc = spec_opt_int(j, "out_features", ptr, 1, big, &l->out_ch, field, fsz);
        if (rc == 0)
            rc = spec_opt_bool(j, "bias", ptr, &l->bias, field, fsz);
        break;
    case VV_LAYER_DROPOUT: {
        allowed = drop;
        l->p = 0.5f;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "p");
        snprintf(p, sizeof p, "%.200s/p", ptr);
        if (o && (!cJSON_IsNumber(o) || o->valuedouble < 0 || o->valuedouble >= 1))
            rc = spec_bad(field, fsz, VV_EINVAL, p, "must be a number in [0, 1)");
        else if (o)
            l->p = (float)o->valuedouble;
        break;
    }
    default:
        break;
    }
    if (rc < 0)
        return rc;
    if ((rc = spec_only(j, ptr, allowed, field, fsz)) < 0)
        return rc;
    static const char *const req_conv[] = {"name", "in_channels", "out_channels", "kernel_size",
                                           NULL};
    static const char *const req_bn[] = {"name", "num_features", NULL};
    static const char *const req_pool[] = {"kernel_size", NULL};
    static const char *const req_lin[] = {"name", "in_features", "out_features", NULL};
    const char *const *req = l->type == VV_LAYER_CONV2D        ? req_conv
                             : l->type == VV_LAYER_BATCHNORM2D ? req_bn
                             : l->type == VV_LAYER_LINEAR      ? req_lin
                             : (l->type == VV_LAYER_MAXPOOL2D || l->type == VV_LAYER_AVGPOOL2D)
                                 ? req_pool
                                 : NULL;
    for (int i = 0; req && req[i]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(j, req[i])) {
            snprintf(p, sizeof p, "%.200s/%s", ptr, req[i]);
            return spec_bad(field, fsz, VV_EMISSING, p, "is required for a %s layer",
                            vv_layer_type_name(l->type));
        }
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (nm) {
        snprintf(p, sizeof p, "%.200s/name", ptr);
        if (!cJSON_IsString(nm) || !nm->valuestring[0] || strlen(nm->valuestring) >= sizeof l->name)
            return spec_bad(field, fsz, VV_ETYPE, p,
                            "must be a non-empty string of at most %d bytes",
                            (int)sizeof l->name - 1);
        snprintf(l->name, sizeof l->name, "%s", nm->valuestring);
    }
    return 0;
}

static int input_shape(const cJSON *j, const char *ptr, int *c, int *h, int *w, char *field,
                       size_t fsz)
{
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 3)
        return spec_bad(field, fsz, j ? VV_ETYPE : VV_EMISSING, ptr,
                        "must be [channels, height, width]");
    int v[3];
    for (int i = 0; i < 3; i++) {
        const cJSON *x = cJSON_GetArrayItem(j, i);
        if (!cJSON_IsNumber(x) || x->valuedouble < 1 || x->valuedouble > 16384 ||
            x->valuedouble != floor(x->valuedouble))
            return spec_bad(field, fsz, VV_EINVAL, ptr, "sizes must be integers in [1, 16384]");
        v[i] = (int)x->valuedouble;
    }
    *c = v[0];
    *h = v[1];
    *w = v[2];
    return 0;
}

/* Builds the model; finish = 0 only checks shapes (no parameters). */
static int build(const cJSON *a, const char *ptr, vv_model *m, vv_preprocess *pp, int finish,
                 char *field, size_t fsz)
{
    char p[256];
    memset(m, 0, sizeof *m);
    if (pp)
        memset(pp, 0, sizeof *pp);
    if (!cJSON_IsObject(a))
        return spec_bad(
            field, fsz, VV_ETYPE, ptr,
            "an architecture must be an object: {\"arch\": ...} or {\"input\", \"layers\"}");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(a, "preprocess");
    int rc = 0;
    if (pre) {
        vv_preprocess tmp;
        snprintf(p, sizeof p, "%.200s/preprocess", ptr);
        if ((rc = preprocess_parse(pre, p, pp ? pp : &tmp, field, fsz)) < 0)
            return rc;
    }
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(a, "arch");
    if (arch) {
        static const char *const allowed[] = {"arch",  "width_div",  "classes", "input",
                                              "sizes", "preprocess", NULL};
        if ((rc = spec_only(a, ptr, allowed, field, fsz)) < 0)
            return rc;
        snprintf(p, sizeof p, "%.200s/arch", ptr);
        if (!cJSON_IsString(arch))
            return spec_bad(field, fsz, VV_ETYPE, p, "must be a string");
        int div = 1, classes = 10;
        if ((rc = spec_opt_int(a, "width_div", ptr, 1, 64, &div, field, fsz)) < 0 ||
            (rc = spec_opt_int(a, "classes", ptr, 2, 100000, &classes, field, fsz)) < 0)
            return rc;
        const char *name = arch->valuestring;
        int is_mlp = !strcmp(name, "mlp");
        if (!is_mlp && (cJSON_GetObjectItemCaseSensitive(a, "sizes") ||
                        cJSON_GetObjectItemCaseSensitive(a, "input"))) {
            snprintf(p, sizeof p, "%.200s/%s", ptr,
                     cJSON_GetObjectItemCaseSensitive(a, "sizes") ? "sizes" : "input");
            return spec_bad(field, fsz, VV_EINVAL, p, "only applies to arch mlp");
        }
        if (!strcmp(name, "vgg19_cifar") || !strcmp(name, "alexnet_cifar64")) {
            if (64 % div) {
                snprintf(p, sizeof p, "%.200s/width_div", ptr);
                return spec_bad(field, fsz, VV_EINVAL, p, "must divide 64, got %d", div);
            }
            rc = name[0] == 'v' ? vv_model_vgg19_cifar(m, div, classes)
                                : vv_model_alexnet_cifar64(m, div, classes);
        } else if (!strcmp(name, "fmnist_cnn")) {
            if (16 % div) {
                snprintf(p, sizeof p, "%.200s/width_div", ptr);
                return spec_bad(field, fsz, VV_EINVAL, p, "must divide 16, got %d", div);
            }
            rc = vv_model_fmnist_cnn(m, div, classes);
        } else if (is_mlp) {
            if (cJSON_GetObjectItemCaseSensitive(a, "width_div") ||
                cJSON_GetObjectItemCaseSensitive(a, "classes")) {
                snprintf(p, sizeof p, "%.200s/%s", ptr,
                         cJSON_GetObjectItemCaseSensitive(a, "classes") ? "classes" : "width_div");
                return spec_bad(
                    field, fsz, VV_EINVAL, p,
                    "does not apply to arch mlp (give sizes: [in, hidden..., classes])");
            }
            const cJSON *sz = cJSON_GetObjectItemCaseSensitive(a, "sizes");
            snprintf(p, sizeof p, "%.200s/sizes", ptr);
            int n = cJSON_GetArraySize(sz), sizes[64];
            if (!cJSON_IsArray(sz) || n < 2 || n > 64)
                return spec_bad(
                    field, fsz, sz ? VV_ETYPE : VV_EMISSING, p,
                    "must be an array of 2 to 64 layer widths [in, hidden..., classes]");
            for (int i = 0; i < n; i++) {
                const cJSON *x = cJSON_GetArrayItem(sz, i);
                if (!cJSON_IsNumber(x) || x->valuedouble < 1 || x->valuedouble > (1 << 20) ||
                    x->valuedouble != floor(x->valuedouble))
                    return spec_bad(field, fsz, VV_EINVAL, p,
                                    "widths must be integers in [1, 2^20]");
                sizes[i] = (int)x->valuedouble;
            }
            int c = 1, h = 1, w = sizes[0];
            const cJSON *in = cJSON_GetObjectItemCaseSensitive(a, "input");
            snprintf(p, sizeof p, "%.200s/input", ptr);
            if (in && (rc = input_shape(in, p, &c, &h, &w, field, fsz)) < 0)
                return rc;
            if ((int64_t)c * h * w != sizes[0])
                return spec_bad(field, fsz, VV_ESHAPE, p,
                                "%dx%dx%d = %lld values but sizes[0] is %d", c, h, w,
                                (long long)c * h * w, sizes[0]);
            rc = vv_model_mlp(m, c, h, w, sizes, n);
        } else {
            return spec_bad(field, fsz, VV_EINVAL, p,
                            "unknown architecture '%.64s' (vgg19_cifar, alexnet_cifar64, "
                            "fmnist_cnn, mlp)",
                            name);
        }
        if (rc < 0)
            return spec_bad(field, fsz, rc, ptr, "%s", vv_err_detail());
        return 0; /* the zoo returns finished models */
    }
    static const char *const allowed[] = {"input", "layers", "preprocess", NULL};
    if ((rc = spec_only(a, ptr, allowed, field, fsz)) < 0)
        return rc;
    int c, h, w;
    snprintf(p, sizeof p, "%.200s/input", ptr);
    if ((rc = input_shape(cJSON_GetObjectItemCaseSensitive(a, "input"), p, &c, &h, &w, field,
                          fsz)) < 0)
        return rc;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(a, "layers");
    snprintf(p, sizeof p, "%.200s/layers", ptr);
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) < 1)
        return spec_bad(field, fsz, layers ? VV_ETYPE : VV_EMISSING, p,
                        "must be a non-empty array of layers");
    vv_model_init(m, c, h, w);
    int i = 0;
    for (const cJSON *l = layers->child; l; l = l->next, i++) {
        vv_layer layer;
        snprintf(p, sizeof p, "%.200s/layers/%d", ptr, i);
        if ((rc = parse_layer(l, p, &layer, field, fsz)) < 0 ||
            (rc = vv_model_add(m, &layer)) < 0) {
            vv_model_free(m);
            return rc;
        }
    }
    rc = finish ? vv_model_finish(m) : vv_model_check(m);
    if (rc < 0) {
        /* Point at the layer the detail names ("layer 3 (...)"). */
        int at = -1;
        const char *d = vv_err_detail();
        if (!strncmp(d, "layer ", 6))
            at = atoi(d + 6);
        else if (!strncmp(d, "layers ", 7) && strstr(d, " and "))
            at = atoi(strstr(d, " and ") + 5);
        if (at >= 0)
            snprintf(p, sizeof p, "%.200s/layers/%d", ptr, at);
        else
            snprintf(p, sizeof p, "%.200s/layers", ptr);
        rc = spec_bad(field, fsz, rc, p, "%s", d);
        vv_model_free(m);
    }
    return rc;
}

int model_build(const cJSON *arch, const char *ptr, vv_model *m, vv_preprocess *pp, char *field,
                size_t fsz)
{
    return build(arch, ptr, m, pp, 1, field, fsz);
}

cJSON *model_spec_export(const vv_model *m, const vv_preprocess *pp)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *in = cJSON_AddArrayToObject(o, "input");
    cJSON_AddItemToArray(in, cJSON_CreateNumber(m->in_c));
    cJSON_AddItemToArray(in, cJSON_CreateNumber(m->in_h));
    cJSON_AddItemToArray(in, cJSON_CreateNumber(m->in_w));
    cJSON *ls = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < m->n; i++) {
        const vv_layer *l = &m->layers[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "type", vv_layer_type_name(l->type));
        if (l->name[0])
            cJSON_AddStringToObject(j, "name", l->name);
        switch (l->type) {
        case VV_LAYER_CONV2D:
            cJSON_AddNumberToObject(j, "in_channels", l->in_ch);
            cJSON_AddNumberToObject(j, "out_channels", l->out_ch);
            cJSON_AddNumberToObject(j, "kernel_size", l->kernel);
            cJSON_AddNumberToObject(j, "stride", l->stride);
            cJSON_AddNumberToObject(j, "padding", l->pad);
            cJSON_AddBoolToObject(j, "bias", l->bias);
            break;
        case VV_LAYER_BATCHNORM2D:
            cJSON_AddNumberToObject(j, "num_features", l->in_ch);
            cJSON_AddNumberToObject(j, "eps", l->eps);
            break;
        case VV_LAYER_MAXPOOL2D:
        case VV_LAYER_AVGPOOL2D:
            cJSON_AddNumberToObject(j, "kernel_size", l->kernel);
            cJSON_AddNumberToObject(j, "stride", l->stride);
            cJSON_AddNumberToObject(j, "padding", l->pad);
            break;
        case VV_LAYER_ADAPTIVE_AVGPOOL2D: {
            cJSON *s = cJSON_AddArrayToObject(j, "output_size");
            cJSON_AddItemToArray(s, cJSON_CreateNumber(l->out_h));
            cJSON_AddItemToArray(s, cJSON_CreateNumber(l->out_w));
            break;
        }
        case VV_LAYER_LINEAR:
            cJSON_AddNumberToObject(j, "in_features", l->in_ch);
            cJSON_AddNumberToObject(j, "out_features", l->out_ch);
            cJSON_AddBoolToObject(j, "bias", l->bias);
            break;
        case VV_LAYER_DROPOUT:
            cJSON_AddNumberToObject(j, "p", l->p);
            break;
        default:
            break;
        }
        cJSON_AddItemToArray(ls, j);
    }
    if (pp && (pp->resize || pp->crop || pp->nnorm || pp->scale255))
        cJSON_AddItemToObject(o, "preprocess", preprocess_json(pp));
    return o;
}

/* ---- Model references ------------------------------------------------------------- */

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n < (16l << 20) && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = 0;
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

int model_ref_parse(const cJSON *j, const char *ptr, model_ref *r, char *field, size_t fsz)
{
    memset(r, 0, sizeof *r);
    char p[256];
    if (cJSON_IsString(j)) {
        if (!j->valuestring[0] || strlen(j->valuestring) > 64)
            return spec_bad(field, fsz, VV_EINVAL, ptr, "a model name has 1 to 64 characters");
        r->resident = strdup(j->valuestring);
        return r->resident ? 0 : vv_fail(VV_ENOMEM, "out of memory");
    }
    if (!cJSON_IsObject(j))
        return spec_bad(field, fsz, j ? VV_ETYPE : VV_EMISSING, ptr,
                        "must be a resident model's name or an object {\"arch\" | \"spec\", "
                        "\"weights\"}");
    static const char *const allowed[] = {"arch", "width_div", "classes", "input",      "sizes",
                                          "spec", "weights",   "seed",    "preprocess", NULL};
    int rc = spec_only(j, ptr, allowed, field, fsz);
    if (rc < 0)
        return rc;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(j, "spec");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(j, "arch");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "weights");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(j, "seed");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "preprocess");
    if (!spec == !arch)
        return spec_bad(field, fsz, spec ? VV_EINVAL : VV_EMISSING, ptr,
                        "give exactly one of arch (a built-in architecture) or spec");
    if (w) {
        snprintf(p, sizeof p, "%.200s/weights", ptr);
        if (!cJSON_IsString(w) || !w->valuestring[0])
            return spec_bad(field, fsz, VV_ETYPE, p, "must be the path of a .safetensors file");
        if (!(r->weights = strdup(w->valuestring)))
            return vv_fail(VV_ENOMEM, "out of memory");
    }
    if (seed) {
        snprintf(p, sizeof p, "%.200s/seed", ptr);
        if (!cJSON_IsNumber(seed) || seed->valuedouble < 0 ||
            seed->valuedouble != floor(seed->valuedouble) || seed->valuedouble > 9007199254740992.0)
            return spec_bad(field, fsz, VV_EINVAL, p, "must be a non-negative integer");
        r->seed = (uint64_t)seed->valuedouble;
    }
    if (arch) {
        r->arch = cJSON_Duplicate(j, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(r->arch, "weights");
        cJSON_DeleteItemFromObjectCaseSensitive(r->arch, "seed");
    } else {
        static const char *const spec_fields_only[] = {"spec", "weights", "seed", "preprocess", NULL};
        if ((rc = spec_only(j, ptr, spec_fields_only, field, fsz)) < 0)
            return rc;
        snprintf(p, sizeof p, "%.200s/spec", ptr);
        if (cJSON_IsString(spec)) {
            /* Read by model_ref_resolve, once the path has been checked. */
            if (!spec->valuestring[0])
                return spec_bad(field, fsz, VV_EINVAL, p, "must be a .json path");
            if (!(r->spec_path = strdup(spec->valuestring)) ||
                (pre && !(r->spec_pre = cJSON_Duplicate(pre, 1))))
                return vv_fail(VV_ENOMEM, "out of memory");
            snprintf(r->spec_ptr, sizeof r->spec_ptr, "%s", p);
            return 0;
        } else if (cJSON_IsObject(spec)) {
            r->arch = cJSON_Duplicate(spec, 1);
        } else {
            return spec_bad(field, fsz, VV_ETYPE, p,
                            "must be an architecture object or a .json path");
        }
        if (pre) {
            cJSON_DeleteItemFromObjectCaseSensitive(r->arch, "preprocess");
            cJSON_AddItemToObject(r->arch, "preprocess", cJSON_Duplicate(pre, 1));
        }
        ptr = p;
    }
    if (!r->arch)
        return vv_fail(VV_ENOMEM, "out of memory");
    vv_model m;
    rc = build(r->arch, ptr, &m, NULL, 0, field, fsz);
    vv_model_free(&m);
    return rc;
}

int model_ref_resolve(model_ref *r, char *field, size_t fsz)
{
    if (r->arch || !r->spec_path)
        return 0;
    size_t len = 0;
    char *txt = read_text(r->spec_path, &len);
    if (!txt)
        return spec_bad(field, fsz, VV_ENOFILE, r->spec_ptr, "cannot read the spec file %s",
                        r->spec_path);
    r->arch = cJSON_ParseWithLength(txt, len);
    free(txt);
    if (!r->arch)
        return spec_bad(field, fsz, VV_EJSON, r->spec_ptr, "%s is not valid JSON", r->spec_path);
    char sub[256];
    if (json_check_tree(r->arch, sub, sizeof sub) < 0) {
        /* Its text would be echoed by GET /v1/models: only valid UTF-8. */
        char detail[512];
        snprintf(detail, sizeof detail, "%s", vv_err_detail());
        return spec_bad(field, fsz, VV_EJSON, r->spec_ptr, "%s: %s", r->spec_path, detail);
    }
    if (r->spec_pre) {
        cJSON_DeleteItemFromObjectCaseSensitive(r->arch, "preprocess");
        cJSON_AddItemToObject(r->arch, "preprocess", cJSON_Duplicate(r->spec_pre, 1));
    }
    vv_model m;
    int rc = build(r->arch, r->spec_ptr, &m, NULL, 0, field, fsz);
    vv_model_free(&m);
    return rc;
}

void model_ref_free(model_ref *r)
{
    if (!r)
        return;
    free(r->spec_path);
    cJSON_Delete(r->spec_pre);
    free(r->resident);
    cJSON_Delete(r->arch);
    free(r->weights);
    memset(r, 0, sizeof *r);
}

int model_ref_load(model_ref *r, const char *ptr, vv_model *m, vv_preprocess *pp, char *field,
                   size_t fsz)
{
    int rc = model_ref_resolve(r, field, fsz);
    if (rc < 0)
        return rc;
    rc = model_build(r->arch, r->spec_path ? r->spec_ptr : ptr, m, pp, field, fsz);
    if (rc < 0)
        return rc;
    if (r->weights) {
        if ((rc = vv_model_load(m, r->weights)) < 0) {
            char p[256];
            snprintf(p, sizeof p, "%.200s/weights", ptr);
            if (field && fsz)
                snprintf(field, fsz, "%s", p);
            vv_model_free(m);
        }
    } else {
        vv_model_init_params(m, r->seed);
    }
    return rc;
}
