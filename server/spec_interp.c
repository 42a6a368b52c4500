/* spec_interp.c - the specs of the paper's experiments 1 and 2: kinds
 * "interpolate", "bounds_study" and "neuron_sharing" (schema/). */
#include "spec.h"

#include "vv/err.h"
#include "vv/shallow.h"
#include "vv/socp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const spec_interp_fields[] = {"kind",     "name",   "phi",      "psi",
                                          "generate", "tol",    "max_iter", "brute_force",
                                          "budget",   "device", NULL};

static int fail_at(char *field, size_t fsz, int err, const char *ptr, const char *fmt,
                   const char *a)
{
    snprintf(field, fsz, "%s", ptr);
    return vv_fail(err, "%s: %s%s", ptr, fmt, a ? a : "");
}

static int want_int(const cJSON *m, const char *ptr, int64_t lo, int64_t hi, int64_t *out,
                    char *field, size_t fsz)
{
    if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble))
        return fail_at(field, fsz, VV_ETYPE, ptr, "must be an integer", NULL);
    if (m->valuedouble < (double)lo || m->valuedouble > (double)hi) {
        snprintf(field, fsz, "%s", ptr);
        return vv_fail(VV_EINVAL, "%s: must be between %lld and %lld, got %g", ptr, (long long)lo,
                       (long long)hi, m->valuedouble);
    }
    *out = (int64_t)m->valuedouble;
    return 0;
}

/* The fields every experiment spec shares: refuses a key given twice, skips
 * "kind", checks "device" and takes "name".  Returns 1 when m was one of
 * them, 0 when the caller must handle it, or a negative vv_err. */
static int common_field(const cJSON *root, const cJSON *m, const char *ptr, char **name,
                        char *field, size_t fsz)
{
    for (const cJSON *o = root->child; o != m; o = o->next)
        if (!strcmp(o->string, m->string))
            return fail_at(field, fsz, VV_EINVAL, ptr, "appears twice", NULL);
    if (!strcmp(m->string, "kind"))
        return 1;
    if (!strcmp(m->string, "device")) {
        if (!cJSON_IsString(m) || (strcmp(m->valuestring, "cpu") && strcmp(m->valuestring, "auto")))
            return fail_at(field, fsz, VV_EINVAL, ptr,
                           "must be cpu or auto (no other device in this build)", NULL);
        return 1;
    }
    if (!strcmp(m->string, "name")) {
        if (!cJSON_IsString(m) || !m->valuestring[0])
            return fail_at(field, fsz, VV_ETYPE, ptr, "must be a non-empty string", NULL);
        free(*name);
        *name = strdup(m->valuestring);
        return *name ? 1 : vv_fail(VV_ENOMEM, "out of memory");
    }
    return 0;
}

static int parse_gen(const cJSON *g, interp_spec *s, char *field, size_t fsz)
{
    if (!cJSON_IsObject(g))
        return fail_at(field, fsz, VV_ETYPE, "/generate",
                       "must be an object {kind: gaussian|lowrank, n, k, d | rank, seed}", NULL);
    int have = 0;
    int64_t seed = 0;
    for (const cJSON *m = g->child; m; m = m->next) {
        char ptr[160];
        snprintf(ptr, sizeof ptr, "/generate/%s", m->string);
        int rc = 0;
        if (!strcmp(m->string, "kind")) {
            if (!cJSON_IsString(m))
                return fail_at(field, fsz, VV_ETYPE, ptr, "must be a string", NULL);
            if (!strcmp(m->valuestring, "gaussian"))
                s->gen_lowrank = 0;
            else if (!strcmp(m->valuestring, "lowrank"))
                s->gen_lowrank = 1;
            else
                return fail_at(field, fsz, VV_EINVAL, ptr, "must be gaussian or lowrank, got ",
                               m->valuestring);
        } else if (!strcmp(m->string, "n"))
            rc = want_int(m, ptr, 1, 100000, &s->gen_n, field, fsz), have |= 1;
        else if (!strcmp(m->string, "k"))
            rc = want_int(m, ptr, 1, 1000000, &s->gen_k, field, fsz), have |= 2;
        else if (!strcmp(m->string, "d"))
            rc = want_int(m, ptr, 1, 100000, &s->gen_d, field, fsz), have |= 4;
        else if (!strcmp(m->string, "rank"))
            rc = want_int(m, ptr, 1, 100000, &s->gen_rank, field, fsz), have |= 8;
        else if (!strcmp(m->string, "seed"))
            rc = want_int(m, ptr, 0, INT64_C(1) << 53, &seed, field, fsz);
        else
            return fail_at(field, fsz, VV_EUNKNOWN, ptr,
                           "unknown field (allowed: kind, n, k, d, rank, seed)", NULL);
        if (rc < 0)
            return rc;
    }
    if (!(have & 1))
        return fail_at(field, fsz, VV_EMISSING, "/generate/n", "is required", NULL);
    if (!(have & 2))
        return fail_at(field, fsz, VV_EMISSING, "/generate/k", "is required", NULL);
    if (s->gen_lowrank && !(have & 8))
        return fail_at(field, fsz, VV_EMISSING, "/generate/rank", "is required for lowrank", NULL);
    if (!s->gen_lowrank && !(have & 4))
        return fail_at(field, fsz, VV_EMISSING, "/generate/d", "is required for gaussian", NULL);
    if (s->gen_lowrank && (have & 4))
        return fail_at(field, fsz, VV_EINVAL, "/generate/d",
                       "does not apply to lowrank (the output dimension is the rank)", NULL);
    if (!s->gen_lowrank && (have & 8))
        return fail_at(field, fsz, VV_EINVAL, "/generate/rank", "only applies to lowrank", NULL);
    s->generate = 1;
    s->gen_seed = (uint64_t)seed;
    return 0;
}

int spec_parse_interp(const cJSON *root, interp_spec *s, char *field, size_t fsz)
{
    memset(s, 0, sizeof *s);
    s->tol = 1e-9;
    s->max_iter = 100;
    s->budget = 1000000;
    if (field && fsz)
        field[0] = 0;
    int have_budget = 0;
    for (const cJSON *m = root->child; m; m = m->next) {
        char ptr[160];
        snprintf(ptr, sizeof ptr, "/%s", m->string);
        int rc = common_field(root, m, ptr, &s->name, field, fsz);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        if (!strcmp(m->string, "phi"))
            rc = spec_parse_file(m, ptr, &s->phi, field, fsz);
        else if (!strcmp(m->string, "psi"))
            rc = spec_parse_file(m, ptr, &s->psi, field, fsz);
        else if (!strcmp(m->string, "generate"))
            rc = parse_gen(m, s, field, fsz);
        else if (!strcmp(m->string, "tol")) {
            if (!cJSON_IsNumber(m))
                return fail_at(field, fsz, VV_ETYPE, ptr, "must be a number", NULL);
            if (!(m->valuedouble >= 1e-14 && m->valuedouble < 1))
                return fail_at(field, fsz, VV_EINVAL, ptr, "must be in [1e-14, 1)", NULL);
            s->tol = m->valuedouble;
        } else if (!strcmp(m->string, "max_iter"))
            rc = want_int(m, ptr, 1, 10000, &s->max_iter, field, fsz);
        else if (!strcmp(m->string, "brute_force")) {
            if (!cJSON_IsBool(m))
                return fail_at(field, fsz, VV_ETYPE, ptr, "must be a boolean", NULL);
            s->brute_force = cJSON_IsTrue(m);
        } else if (!strcmp(m->string, "budget")) {
            have_budget = 1;
            rc = want_int(m, ptr, 1, INT64_C(1) << 40, &s->budget, field, fsz);
        } else
            return fail_at(field, fsz, VV_EUNKNOWN, ptr, "unknown field", NULL);
        if (rc < 0)
            return rc;
    }
    if (s->generate && (s->phi.path || s->psi.path))
        return fail_at(field, fsz, VV_EINVAL, s->phi.path ? "/phi" : "/psi",
                       "give either phi/psi or generate, not both", NULL);
    if (!s->generate && !s->phi.path)
        return fail_at(field, fsz, VV_EMISSING, "/phi", "is required (or generate)", NULL);
    if (!s->generate && !s->psi.path)
        return fail_at(field, fsz, VV_EMISSING, "/psi", "is required (or generate)", NULL);
    if (have_budget && !s->brute_force)
        return fail_at(field, fsz, VV_EINVAL, "/budget", "only applies with brute_force", NULL);
    if (s->generate && s->brute_force) {
        int64_t count = vv_socp_brute_count(s->gen_n, s->gen_k);
        if (count > s->budget) {
            snprintf(field, fsz, "/brute_force");
            return vv_fail(VV_EINVAL,
                           "/brute_force: K=%lld, N=%lld means %lld restricted problems, over "
                           "the budget of %lld (raise budget or lower K)",
                           (long long)s->gen_k, (long long)s->gen_n, (long long)count,
                           (long long)s->budget);
        }
    }
    return 0;
}

void spec_free_interp(interp_spec *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->phi.path);
    free(s->phi.tensor);
    free(s->psi.path);
    free(s->psi.tensor);
    memset(s, 0, sizeof *s);
}

/* ---- bounds_study ------------------------------------------------------------------ */

const char *const spec_bounds_fields[] = {"kind",   "name",   "figure",    "values", "n",
                                          "k",      "d",      "instances", "seed",   "tol",
                                          "budget", "device", NULL};

int spec_parse_bounds(const cJSON *root, bounds_spec *s, char *field, size_t fsz)
{
    memset(s, 0, sizeof *s);
    if (field && fsz)
        field[0] = 0;
    const cJSON *fig = cJSON_GetObjectItemCaseSensitive(root, "figure");
    if (!fig)
        return fail_at(field, fsz, VV_EMISSING, "/figure", "is required (fig3, fig4 or fig5)",
                       NULL);
    if (!cJSON_IsString(fig))
        return fail_at(field, fsz, VV_ETYPE, "/figure", "must be a string", NULL);
    if (!strcmp(fig->valuestring, "fig3")) {
        /* The paper's Fig. 3: D=10, K=500, N in 10..40, 100 instances each. */
        *s = (bounds_spec){
            .figure = FIG3, .values = {10, 20, 30, 40}, .nvalues = 4, .k = 500, .d = 10};
    } else if (!strcmp(fig->valuestring, "fig4")) {
        *s = (bounds_spec){
            .figure = FIG4, .values = {2, 5, 10, 20}, .nvalues = 4, .n = 20, .k = 200};
    } else if (!strcmp(fig->valuestring, "fig5")) {
        *s = (bounds_spec){
            .figure = FIG5, .values = {7, 8, 9, 10, 11}, .nvalues = 5, .n = 3, .d = 2};
    } else {
        return fail_at(field, fsz, VV_EINVAL, "/figure", "must be fig3, fig4 or fig5, got ",
                       fig->valuestring);
    }
    s->instances = 100;
    s->seed = 1;
    s->tol = 1e-9;
    s->budget = 1000000;
    for (const cJSON *m = root->child; m; m = m->next) {
        char ptr[160];
        snprintf(ptr, sizeof ptr, "/%s", m->string);
        int rc = common_field(root, m, ptr, &s->name, field, fsz);
        if (rc < 0)
            return rc;
        const char *key = m->string;
        if (rc == 1 || !strcmp(key, "figure"))
            continue;
        int64_t seed = 0;
        if (!strcmp(key, "values")) {
            if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) < 1 || cJSON_GetArraySize(m) > 16)
                return fail_at(field, fsz, VV_ETYPE, ptr, "must be an array of 1 to 16 integers",
                               NULL);
            s->nvalues = 0;
            for (const cJSON *v = m->child; v && rc == 0; v = v->next) {
                char sub[180];
                snprintf(sub, sizeof sub, "%s/%d", ptr, s->nvalues);
                rc = want_int(v, sub, 1, 100000, &s->values[s->nvalues++], field, fsz);
            }
        } else if (!strcmp(key, "n") && s->figure != FIG3) {
            rc = want_int(m, ptr, 1, 100000, &s->n, field, fsz);
        } else if (!strcmp(key, "k") && s->figure != FIG5) {
            rc = want_int(m, ptr, 1, 1000000, &s->k, field, fsz);
        } else if (!strcmp(key, "d") && s->figure != FIG4) {
            rc = want_int(m, ptr, 1, 100000, &s->d, field, fsz);
        } else if (!strcmp(key, "instances")) {
            rc = want_int(m, ptr, 1, 100000, &s->instances, field, fsz);
        } else if (!strcmp(key, "seed")) {
            rc = want_int(m, ptr, 0, INT64_C(1) << 53, &seed, field, fsz);
            s->seed = (uint64_t)seed;
        } else if (!strcmp(key, "tol")) {
            if (!cJSON_IsNumber(m) || !(m->valuedouble >= 1e-14 && m->valuedouble < 1))
                return fail_at(field, fsz, VV_EINVAL, ptr, "must be a number in [1e-14, 1)", NULL);
            s->tol = m->valuedouble;
        } else if (!strcmp(key, "budget") && s->figure == FIG5) {
            rc = want_int(m, ptr, 1, INT64_C(1) << 40, &s->budget, field, fsz);
        } else if (!strcmp(key, "n") || !strcmp(key, "k") || !strcmp(key, "d") ||
                   !strcmp(key, "budget")) {
            return fail_at(field, fsz, VV_EINVAL, ptr,
                           "does not apply to this figure (fig3 varies N, fig4 the rank, fig5 K)",
                           NULL);
        } else {
            return fail_at(field, fsz, VV_EUNKNOWN, ptr, "unknown field", NULL);
        }
        if (rc < 0)
            return rc;
    }
    for (int i = 0; i < s->nvalues && s->figure == FIG5; i++) {
        int64_t count = vv_socp_brute_count(s->n, s->values[i]);
        if (count > s->budget) {
            snprintf(field, fsz, "/values/%d", i);
            return vv_fail(VV_EINVAL,
                           "/values/%d: K=%lld with N=%lld means %lld restricted problems per "
                           "instance, over the budget of %lld",
                           i, (long long)s->values[i], (long long)s->n, (long long)count,
                           (long long)s->budget);
        }
    }
    return 0;
}

/* ---- neuron_sharing --------------------------------------------------------------- */

const char *const spec_sharing_fields[] = {
    "kind", "name",       "n",  "d_in", "d_out", "teacher_width", "data_seed",   "width",  "seed",
    "mode", "per_output", "lr", "reg",  "steps", "log_every",     "max_seconds", "device", NULL};

int spec_parse_sharing(const cJSON *root, sharing_spec *s, char *field, size_t fsz)
{
    /* The paper's settings (reference/paper.md section 2). */
    *s = (sharing_spec){.n = 50,
                        .d_in = 2,
                        .d_out = 2,
                        .teacher_width = 5,
                        .width = 100,
                        .data_seed = 1,
                        .seed = 49,
                        .mode = VV_SHALLOW_PROX_VV,
                        .lr = 0.2,
                        .reg = 5e-5,
                        .steps = 1000000,
                        .log_every = 10000};
    if (field && fsz)
        field[0] = 0;
    for (const cJSON *m = root->child; m; m = m->next) {
        char ptr[160];
        snprintf(ptr, sizeof ptr, "/%s", m->string);
        int rc = common_field(root, m, ptr, &s->name, field, fsz);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        const char *k = m->string;
        int64_t v = 0;
        if (!strcmp(k, "mode")) {
            if (!cJSON_IsString(m))
                return fail_at(field, fsz, VV_ETYPE, ptr, "must be a string", NULL);
            if ((rc = vv_shallow_mode_parse(m->valuestring)) < 0)
                return fail_at(field, fsz, VV_EINVAL, ptr,
                               "must be prox_vv, weight_decay or none, got ", m->valuestring);
            s->mode = rc;
            rc = 0;
        } else if (!strcmp(k, "per_output")) {
            if (!cJSON_IsBool(m))
                return fail_at(field, fsz, VV_ETYPE, ptr, "must be a boolean", NULL);
            s->per_output = cJSON_IsTrue(m);
        } else if (!strcmp(k, "lr") || !strcmp(k, "reg") || !strcmp(k, "max_seconds")) {
            if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble))
                return fail_at(field, fsz, VV_ETYPE, ptr, "must be a finite number", NULL);
            double x = m->valuedouble;
            if (!strcmp(k, "lr") ? !(x > 0) : x < 0)
                return fail_at(field, fsz, VV_EINVAL, ptr,
                               !strcmp(k, "lr") ? "must be > 0" : "must be >= 0", NULL);
            *(!strcmp(k, "lr") ? &s->lr : !strcmp(k, "reg") ? &s->reg : &s->max_seconds) = x;
        } else if (!strcmp(k, "n"))
            rc = want_int(m, ptr, 1, 100000, &s->n, field, fsz);
        else if (!strcmp(k, "d_in"))
            rc = want_int(m, ptr, 1, 1024, &s->d_in, field, fsz);
        else if (!strcmp(k, "d_out"))
            rc = want_int(m, ptr, 1, 1024, &s->d_out, field, fsz);
        else if (!strcmp(k, "teacher_width"))
            rc = want_int(m, ptr, 1, 100000, &s->teacher_width, field, fsz);
        else if (!strcmp(k, "width"))
            rc = want_int(m, ptr, 1, 4096, &s->width, field, fsz);
        else if (!strcmp(k, "steps"))
            rc = want_int(m, ptr, 0, INT64_C(1) << 40, &s->steps, field, fsz);
        else if (!strcmp(k, "log_every"))
            rc = want_int(m, ptr, 1, INT64_C(1) << 40, &s->log_every, field, fsz);
        else if (!strcmp(k, "data_seed") || !strcmp(k, "seed")) {
            rc = want_int(m, ptr, 0, INT64_C(1) << 53, &v, field, fsz);
            *(!strcmp(k, "seed") ? &s->seed : &s->data_seed) = (uint64_t)v;
        } else
            return fail_at(field, fsz, VV_EUNKNOWN, ptr, "unknown field", NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

