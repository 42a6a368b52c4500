/* spec.c - the lasso job spec parser (schema/lasso.schema.json). */
#include "spec.h"
#include "device.h"

#include "vv/err.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set while a spec for another machine is parsed (spec_parse_job_remote):
 * a device is checked by name, not against this process's devices. */
_Thread_local int spec_for_worker;

const char *const spec_lasso_fields[] = {
    "kind",   "name",          "phi",          "psi",    "bias",          "generate",
    "lambda", "lambda_paper",  "lambda_ratio", "path",   "target_active", "solver",
    "tol",    "max_iter",      "max_seconds",  "mu",     "init",          "seed",
    "refit",  "metrics_every", "chunk_rows",   "device", "save_stats",    NULL};

typedef struct pctx {
    char *field;
    size_t fieldsz;
} pctx;

static int bad(pctx *c, int err, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(pctx *c, int err, const char *ptr, const char *fmt, ...)
{
    snprintf(c->field, c->fieldsz, "%s", ptr);
    va_list ap;
    va_start(ap, fmt);
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vv_fail(err, "%s: %s", ptr[0] ? ptr : "spec", msg);
}

static const char *type_name(const cJSON *j)
{
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsNull(j))
        return "null";
    if (cJSON_IsArray(j))
        return "an array";
    if (cJSON_IsObject(j))
        return "an object";
    return "invalid";
}

static int get_number(pctx *c, const cJSON *j, const char *ptr, double *out)
{
    if (!cJSON_IsNumber(j))
        return bad(c, VV_ETYPE, ptr, "must be a number, got %s", type_name(j));
    if (!isfinite(j->valuedouble))
        return bad(c, VV_EINVAL, ptr, "must be finite");
    *out = j->valuedouble;
    return 0;
}

static int get_positive(pctx *c, const cJSON *j, const char *ptr, double *out)
{
    int rc = get_number(c, j, ptr, out);
    if (rc < 0)
        return rc;
    if (!(*out > 0))
        return bad(c, VV_EINVAL, ptr, "must be > 0, got %g", *out);
    return 0;
}

/* An integer in [lo, hi] (JSON numbers with no fractional part). */
static int get_int(pctx *c, const cJSON *j, const char *ptr, int64_t lo, int64_t hi, int64_t *out)
{
    double v = 0;
    int rc = get_number(c, j, ptr, &v);
    if (rc < 0)
        return rc;
    if (v != floor(v))
        return bad(c, VV_ETYPE, ptr, "must be an integer, got %g", v);
    if (v < (double)lo || v > (double)hi)
        return bad(c, VV_EINVAL, ptr, "must be between %lld and %lld, got %g", (long long)lo,
                   (long long)hi, v);
    *out = (int64_t)v;
    return 0;
}

static int get_string(pctx *c, const cJSON *j, const char *ptr, char **out)
{
    if (!cJSON_IsString(j))
        return bad(c, VV_ETYPE, ptr, "must be a string, got %s", type_name(j));
    if (!j->valuestring[0])
        return bad(c, VV_EINVAL, ptr, "must not be empty");
    if (strlen(j->valuestring) > 4096)
        return bad(c, VV_EINVAL, ptr, "is longer than 4096 characters");
    *out = strdup(j->valuestring);
    return *out ? 0 : vv_fail(VV_ENOMEM, "out of memory");
}

/* A file reference: "path" or {"path": ..., "tensor": ...}. */
static int get_file(pctx *c, const cJSON *j, const char *ptr, spec_file *out)
{
    char sub[128];
    if (cJSON_IsString(j))
        return get_string(c, j, ptr, &out->path);
    if (!cJSON_IsObject(j))
        return bad(c, VV_ETYPE, ptr, "must be a path or {\"path\", \"tensor\"}, got %s",
                   type_name(j));
    for (const cJSON *m = j->child; m; m = m->next) {
        snprintf(sub, sizeof sub, "%s/%s", ptr, m->string);
        int rc;
        if (!strcmp(m->string, "path"))
            rc = get_string(c, m, sub, &out->path);
        else if (!strcmp(m->string, "tensor"))
            rc = get_string(c, m, sub, &out->tensor);
        else
            rc = bad(c, VV_EUNKNOWN, sub, "unknown field (allowed: path, tensor)");
        if (rc < 0)
            return rc;
    }
    if (!out->path) {
        snprintf(sub, sizeof sub, "%s/path", ptr);
        return bad(c, VV_EMISSING, sub, "is required");
    }
    return 0;
}

/* A list of 1..SPEC_MAX_SHARDS file references (phi or psi as shards). */
static int get_shards(pctx *c, const cJSON *j, const char *ptr, spec_file **out, int *n)
{
    int len = cJSON_GetArraySize(j);
    if (len < 1 || len > SPEC_MAX_SHARDS)
        return bad(c, VV_EINVAL, ptr, "a list of shards must name 1 to %d files, got %d",
                   SPEC_MAX_SHARDS, len);
    if (!(*out = calloc((size_t)len, sizeof **out)))
        return vv_fail(VV_ENOMEM, "out of memory");
    *n = len;
    int i = 0;
    for (const cJSON *m = j->child; m; m = m->next, i++) {
        char sub[160];
        snprintf(sub, sizeof sub, "%s/%d", ptr, i);
        int rc = get_file(c, m, sub, &(*out)[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int spec_parse_file(const cJSON *j, const char *ptr, spec_file *out, char *field, size_t fieldsz)
{
    pctx c = {field, fieldsz};
    return get_file(&c, j, ptr, out);
}

/* A non-empty array of finite numbers, each > 0 when positive. */
static int get_numbers(pctx *c, const cJSON *j, const char *ptr, int positive, double **out,
                       int64_t *n)
{
    if (!cJSON_IsArray(j))
        return bad(c, VV_ETYPE, ptr, "must be an array of numbers, got %s", type_name(j));
    int64_t len = cJSON_GetArraySize(j);
    if (len < 1)
        return bad(c, VV_EINVAL, ptr, "must not be empty");
    if (len > 1000000)
        return bad(c, VV_EINVAL, ptr, "has more than 1000000 entries");
    double *v = malloc((size_t)len * sizeof *v);
    if (!v)
        return vv_fail(VV_ENOMEM, "out of memory");
    int64_t i = 0;
    char sub[128];
    for (const cJSON *m = j->child; m; m = m->next, i++) {
        snprintf(sub, sizeof sub, "%s/%lld", ptr, (long long)i);
        int rc = positive ? get_positive(c, m, sub, &v[i]) : get_number(c, m, sub, &v[i]);
        if (rc < 0) {
            free(v);
            return rc;
        }
    }
    *out = v;
    *n = len;
    return 0;
}

static int parse_generate(pctx *c, const cJSON *j, lasso_spec *s)
{
    if (!cJSON_IsObject(j))
        return bad(c, VV_ETYPE, "/generate", "must be an object {n, k, d, seed}, got %s",
                   type_name(j));
    int have = 0;
    int64_t seed = 0;
    for (const cJSON *m = j->child; m; m = m->next) {
        char sub[128];
        snprintf(sub, sizeof sub, "/generate/%s", m->string);
        int rc;
        if (!strcmp(m->string, "n"))
            rc = get_int(c, m, sub, 1, INT64_C(1) << 40, &s->gen_n), have |= 1;
        else if (!strcmp(m->string, "k"))
            rc = get_int(c, m, sub, 1, 1 << 17, &s->gen_k), have |= 2;
        else if (!strcmp(m->string, "d"))
            rc = get_int(c, m, sub, 1, 1 << 17, &s->gen_d), have |= 4;
        else if (!strcmp(m->string, "seed"))
            rc = get_int(c, m, sub, 0, INT64_C(1) << 53, &seed);
        else
            rc = bad(c, VV_EUNKNOWN, sub, "unknown field (allowed: n, k, d, seed)");
        if (rc < 0)
            return rc;
    }
    static const char *req[] = {"n", "k", "d"};
    for (int i = 0; i < 3; i++)
        if (!(have & (1 << i))) {
            char sub[64];
            snprintf(sub, sizeof sub, "/generate/%s", req[i]);
            return bad(c, VV_EMISSING, sub, "is required");
        }
    s->generate = 1;
    s->gen_seed = (uint64_t)seed;
    return 0;
}

static int parse_path(pctx *c, const cJSON *j, lasso_spec *s)
{
    if (!cJSON_IsObject(j))
        return bad(c, VV_ETYPE, "/path",
                   "must be an object: {\"lambdas\": [...]}, {\"lambda_ratios\": [...]} or "
                   "{\"n\": 20, \"min_ratio\": 0.01}, got %s",
                   type_name(j));
    int rc = 0;
    int have_ratio = 0;
    for (const cJSON *m = j->child; m && rc == 0; m = m->next) {
        char sub[128];
        snprintf(sub, sizeof sub, "/path/%s", m->string);
        int kind = !strcmp(m->string, "lambdas")         ? PATH_LAMBDAS
                   : !strcmp(m->string, "lambda_ratios") ? PATH_RATIOS
                   : !strcmp(m->string, "n")             ? PATH_GRID
                                                         : 0;
        if (!strcmp(m->string, "min_ratio")) {
            rc = get_positive(c, m, sub, &s->path_min_ratio);
            if (rc == 0 && s->path_min_ratio >= 1)
                rc = bad(c, VV_EINVAL, sub, "must be < 1, got %g", s->path_min_ratio);
            have_ratio = 1;
            continue;
        }
        if (!kind) {
            rc = bad(c, VV_EUNKNOWN, sub,
                     "unknown field (allowed: lambdas, lambda_ratios, n, min_ratio)");
            break;
        }
        if (s->path_kind)
            return bad(c, VV_EINVAL, sub, "give only one of lambdas, lambda_ratios, n");
        s->path_kind = kind;
        if (kind == PATH_GRID)
            rc = get_int(c, m, sub, 1, 10000, &s->path_n);
        else
            rc = get_numbers(c, m, sub, 1, &s->path_values, &s->path_n);
        if (rc == 0 && kind == PATH_RATIOS)
            for (int64_t i = 0; i < s->path_n; i++)
                if (s->path_values[i] > 1) {
                    char sub2[160];
                    snprintf(sub2, sizeof sub2, "%s/%lld", sub, (long long)i);
                    return bad(c, VV_EINVAL, sub2, "a ratio of lambda_max must be <= 1, got %g",
                               s->path_values[i]);
                }
    }
    if (rc < 0)
        return rc;
    if (!s->path_kind)
        return bad(c, VV_EMISSING, "/path", "needs one of lambdas, lambda_ratios, n");
    if (have_ratio && s->path_kind != PATH_GRID)
        return bad(c, VV_EINVAL, "/path/min_ratio", "only applies with n");
    if (s->path_kind == PATH_GRID && !have_ratio)
        s->path_min_ratio = 1e-2;
    return 0;
}

static int parse_lasso(const cJSON *root, lasso_spec *s, const char *const *foreign,
                       char *field, size_t fieldsz);

int spec_parse_lasso(const cJSON *root, lasso_spec *s, char *field, size_t fieldsz)
{
    return parse_lasso(root, s, NULL, field, fieldsz);
}

int spec_parse_lasso_options(const cJSON *root, const char *const *foreign, lasso_spec *s,
                             char *field, size_t fieldsz)
{
    return parse_lasso(root, s, foreign, field, fieldsz);
}

static int is_foreign(const char *const *foreign, const char *k)
{
    for (int i = 0; foreign && foreign[i]; i++)
        if (!strcmp(foreign[i], k))
            return 1;
    return 0;
}

/* With foreign (another kind's fields, NULL-ended), only the solver options
 * are parsed: the foreign fields are skipped, and the data fields (phi, psi,
 * bias, generate, an init file) are unknown. */
static int parse_lasso(const cJSON *root, lasso_spec *s, const char *const *foreign,
                       char *field, size_t fieldsz)
{
    pctx c = {field, fieldsz};
    memset(s, 0, sizeof *s);
    s->solver = VV_SOLVER_AUTO;
    s->tol = 1e-6;
    s->max_iter = 100000;
    s->mu = 1e-3;
    s->metrics_every = 0; /* auto */
    if (field && fieldsz)
        field[0] = 0;
    if (!cJSON_IsObject(root))
        return bad(&c, VV_ETYPE, "", "a job spec must be a JSON object, got %s", type_name(root));
    int have_mu = 0, have_init = 0, have_seed = 0, have_bias = 0;
    int rc = 0;
    for (const cJSON *m = root->child; m && rc == 0; m = m->next) {
        char ptr[160];
        snprintf(ptr, sizeof ptr, "/%s", m->string);
        const char *k = m->string;
        for (const cJSON *o = root->child; o != m; o = o->next)
            if (!strcmp(o->string, k))
                return bad(&c, VV_EINVAL, ptr, "appears twice");
        if (foreign && is_foreign(foreign, k))
            continue;
        if (foreign &&
            (!strcmp(k, "phi") || !strcmp(k, "psi") || !strcmp(k, "bias") ||
             !strcmp(k, "generate") || !strcmp(k, "save_stats") ||
             (!strcmp(k, "init") && !(cJSON_IsString(m) && (!strcmp(m->valuestring, "zeros") ||
                                                            !strcmp(m->valuestring, "random")))))) {
            rc = bad(&c, VV_EUNKNOWN, ptr,
                     !strcmp(k, "init") ? "must be \"zeros\" or \"random\" here"
                                        : "unknown field (the features come from the model)");
            break;
        }
        if (!strcmp(k, "kind")) {
            if (!cJSON_IsString(m))
                rc = bad(&c, VV_ETYPE, ptr, "must be a string, got %s", type_name(m));
            else if (strcmp(m->valuestring, "lasso"))
                rc = bad(&c, VV_EINVAL, ptr, "unsupported kind '%.64s' (supported: lasso)",
                         m->valuestring);
        } else if (!strcmp(k, "name")) {
            rc = get_string(&c, m, ptr, &s->name);
        } else if (!strcmp(k, "phi")) {
            rc = cJSON_IsArray(m) ? get_shards(&c, m, ptr, &s->phi_shards, &s->nphi_shards)
                                  : get_file(&c, m, ptr, &s->phi);
        } else if (!strcmp(k, "psi")) {
            rc = cJSON_IsArray(m) ? get_shards(&c, m, ptr, &s->psi_shards, &s->npsi_shards)
                                  : get_file(&c, m, ptr, &s->psi);
        } else if (!strcmp(k, "save_stats")) {
            if (!cJSON_IsBool(m))
                rc = bad(&c, VV_ETYPE, ptr, "must be a boolean, got %s", type_name(m));
            else
                s->save_stats = cJSON_IsTrue(m);
        } else if (!strcmp(k, "bias")) {
            have_bias = 1;
            if (cJSON_IsArray(m))
                rc = get_numbers(&c, m, ptr, 0, &s->bias, &s->nbias);
            else if (cJSON_IsString(m) || cJSON_IsObject(m))
                rc = get_file(&c, m, ptr, &s->bias_file);
            else
                rc = bad(&c, VV_ETYPE, ptr, "must be an array of numbers or a file, got %s",
                         type_name(m));
        } else if (!strcmp(k, "generate")) {
            rc = parse_generate(&c, m, s);
        } else if (!strcmp(k, "lambda") || !strcmp(k, "lambda_paper") ||
                   !strcmp(k, "lambda_ratio")) {
            if (s->lam_kind)
                return bad(&c, VV_EINVAL, ptr,
                           "give only one of lambda, lambda_paper, lambda_ratio");
            s->lam_kind = !strcmp(k, "lambda")         ? LAM_CANONICAL
                          : !strcmp(k, "lambda_paper") ? LAM_PAPER
                                                       : LAM_RATIO;
            rc = get_positive(&c, m, ptr, &s->lam_value);
            if (rc == 0 && s->lam_kind == LAM_RATIO && s->lam_value > 1)
                rc = bad(&c, VV_EINVAL, ptr, "a ratio of lambda_max must be <= 1, got %g",
                         s->lam_value);
        } else if (!strcmp(k, "path")) {
            rc = parse_path(&c, m, s);
        } else if (!strcmp(k, "target_active")) {
            rc = get_int(&c, m, ptr, 1, INT64_C(1) << 40, &s->target_active);
        } else if (!strcmp(k, "solver")) {
            int v = cJSON_IsString(m) ? vv_solver_from_name(m->valuestring) : -2;
            if (v == -2)
                rc = bad(&c, VV_ETYPE, ptr, "must be a string, got %s", type_name(m));
            else if (v < 0)
                rc = bad(&c, VV_EINVAL, ptr,
                         "unknown solver '%.64s' (one of auto, fista, bcd, adam_prox)",
                         m->valuestring);
            else
                s->solver = (vv_solver)v;
        } else if (!strcmp(k, "tol")) {
            rc = get_number(&c, m, ptr, &s->tol);
            if (rc == 0 && (s->tol < 0 || s->tol >= 1))
                rc = bad(&c, VV_EINVAL, ptr, "must be in [0, 1), got %g", s->tol);
        } else if (!strcmp(k, "max_iter")) {
            rc = get_int(&c, m, ptr, 1, INT64_C(1) << 40, &s->max_iter);
        } else if (!strcmp(k, "max_seconds")) {
            rc = get_positive(&c, m, ptr, &s->max_seconds);
        } else if (!strcmp(k, "mu")) {
            have_mu = 1;
            rc = get_positive(&c, m, ptr, &s->mu);
        } else if (!strcmp(k, "init")) {
            have_init = 1;
            if (cJSON_IsString(m) && !strcmp(m->valuestring, "zeros"))
                s->init = VV_INIT_ZEROS;
            else if (cJSON_IsString(m) && !strcmp(m->valuestring, "random"))
                s->init = VV_INIT_RANDOM;
            else if (cJSON_IsString(m) || cJSON_IsObject(m)) {
                s->init = VV_INIT_GIVEN;
                rc = get_file(&c, m, ptr, &s->init_file);
            } else
                rc = bad(&c, VV_ETYPE, ptr,
                         "must be \"zeros\", \"random\" or a D x K weight file, got %s",
                         type_name(m));
        } else if (!strcmp(k, "seed")) {
            int64_t v = 0;
            have_seed = 1;
            rc = get_int(&c, m, ptr, 0, INT64_C(1) << 53, &v);
            if (rc < 0)
                break;
            s->seed = (uint64_t)v;
        } else if (!strcmp(k, "refit")) {
            if (!cJSON_IsBool(m))
                rc = bad(&c, VV_ETYPE, ptr, "must be a boolean, got %s", type_name(m));
            else
                s->refit = cJSON_IsTrue(m);
        } else if (!strcmp(k, "metrics_every")) {
            rc = get_int(&c, m, ptr, 1, INT64_C(1) << 40, &s->metrics_every);
        } else if (!strcmp(k, "chunk_rows")) {
            rc = get_int(&c, m, ptr, 1, 1 << 24, &s->chunk_rows);
        } else if (!strcmp(k, "device")) {
            vv_backend *be;
            if (!cJSON_IsString(m))
                rc = bad(&c, VV_ETYPE, ptr, "must be a string, got %s", type_name(m));
            else if (!device_name_ok(m->valuestring))
                rc = bad(&c, VV_EINVAL, ptr, "unknown device '%.64s' (one of %s)",
                         m->valuestring, device_names());
            else if (!spec_for_worker && devices_get(m->valuestring, &be) < 0) {
                char why[256];
                snprintf(why, sizeof why, "%s", vv_err_detail());
                rc = bad(&c, VV_EINVAL, ptr, "%s", why);
            } else if (strcmp(m->valuestring, "auto"))
                snprintf(s->device, sizeof s->device, "%s", m->valuestring);
        } else {
            rc = bad(&c, VV_EUNKNOWN, ptr, "unknown field");
        }
    }
    if (rc < 0)
        return rc;

    if (!foreign && !cJSON_GetObjectItemCaseSensitive(root, "kind"))
        return bad(&c, VV_EMISSING, "/kind", "is required (\"lasso\")");
    if (foreign) {
        /* the caller checks the data fields */
    } else if (s->generate) {
        if (s->phi.path || s->nphi_shards)
            return bad(&c, VV_EINVAL, "/phi", "give either phi/psi or generate, not both");
        if (s->psi.path || s->npsi_shards)
            return bad(&c, VV_EINVAL, "/psi", "give either phi/psi or generate, not both");
    } else if (s->nphi_shards || s->npsi_shards) {
        if (!s->nphi_shards || !s->npsi_shards)
            return bad(&c, VV_EINVAL, s->nphi_shards ? "/psi" : "/phi",
                       "phi and psi must both be lists of shards, or both files");
        if (s->nphi_shards != s->npsi_shards)
            return bad(&c, VV_EINVAL, "/psi",
                       "lists %d shards but phi lists %d: shard i of each must hold the same rows",
                       s->npsi_shards, s->nphi_shards);
    } else {
        if (!s->phi.path)
            return bad(&c, VV_EMISSING, "/phi", "is required (or generate)");
        if (!s->psi.path)
            return bad(&c, VV_EMISSING, "/psi", "is required (or generate)");
    }
    int nsel = (s->lam_kind != LAM_NONE) + (s->path_kind != PATH_NONE) + (s->target_active > 0);
    if (nsel == 0)
        return bad(&c, VV_EMISSING, "/lambda",
                   "one of lambda, lambda_paper, lambda_ratio, path, target_active is required");
    if (nsel > 1)
        return bad(&c, VV_EINVAL, s->path_kind ? "/path" : "/target_active",
                   "give only one of a lambda, a path or target_active");
    if (s->generate && s->target_active > s->gen_k)
        return bad(&c, VV_EINVAL, "/target_active", "exceeds the number of neurons k=%lld",
                   (long long)s->gen_k);
    if (have_mu && s->solver != VV_SOLVER_ADAM_PROX)
        return bad(&c, VV_EINVAL, "/mu", "only applies to solver adam_prox");
    if (have_seed && s->init != VV_INIT_RANDOM)
        return bad(&c, VV_EINVAL, "/seed", "only applies with init \"random\"");
    s->init_given = have_init;
    (void)have_bias;
    return 0;
}

static void free_file(spec_file *f)
{
    free(f->path);
    free(f->tensor);
}

void spec_free_lasso(lasso_spec *s)
{
    if (!s)
        return;
    free(s->name);
    free_file(&s->phi);
    free_file(&s->psi);
    for (int i = 0; i < s->nphi_shards; i++)
        free_file(&s->phi_shards[i]);
    for (int i = 0; i < s->npsi_shards; i++)
        free_file(&s->psi_shards[i]);
    free(s->phi_shards);
    free(s->psi_shards);
    free(s->bias);
    free_file(&s->bias_file);
    free(s->path_values);
    free_file(&s->init_file);
    memset(s, 0, sizeof *s);
}
