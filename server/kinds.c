/* kinds.c - the table of job kinds, parsing and dispatch through it, and
 * the confinement of every path a spec names. */
#include "kinds.h"

#include "json_check.h"
#include "paths.h"
#include "vv/err.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The paths of each kind ------------------------------------------------------ */

static void add_path(spec_path *out, int *n, char **path, const char *ptr, int dataset)
{
    if (!*path || *n >= SPEC_MAX_PATHS)
        return;
    out[*n].path = path;
    snprintf(out[*n].ptr, sizeof out[*n].ptr, "%s", ptr);
    out[*n].dataset = dataset;
    (*n)++;
}

static void add_model(spec_path *out, int *n, model_ref *m, const char *ptr)
{
    char p[96];
    snprintf(p, sizeof p, "%s/weights", ptr);
    add_path(out, n, &m->weights, p, 0);
    snprintf(p, sizeof p, "%s/spec", ptr);
    add_path(out, n, &m->spec_path, p, 0);
}

static void add_data(spec_path *out, int *n, data_spec *d)
{
    add_path(out, n, &d->train_images, "/data/train/images", 1);
    add_path(out, n, &d->train_labels, "/data/train/labels", 1);
    add_path(out, n, &d->test_images, "/data/test/images", 1);
    add_path(out, n, &d->test_labels, "/data/test/labels", 1);
    add_path(out, n, &d->dir, "/data/dir", 1);
}

static int lasso_paths(job_spec *s, spec_path *out)
{
    int n = 0;
    lasso_spec *l = &s->lasso;
    add_path(out, &n, &l->phi.path, "/phi", 0);
    add_path(out, &n, &l->psi.path, "/psi", 0);
    for (int i = 0; i < l->nphi_shards; i++) {
        char ptr[32];
        snprintf(ptr, sizeof ptr, "/phi/%d", i);
        add_path(out, &n, &l->phi_shards[i].path, ptr, 0);
    }
    for (int i = 0; i < l->npsi_shards; i++) {
        char ptr[32];
        snprintf(ptr, sizeof ptr, "/psi/%d", i);
        add_path(out, &n, &l->psi_shards[i].path, ptr, 0);
    }
    add_path(out, &n, &l->bias_file.path, "/bias", 0);
    add_path(out, &n, &l->init_file.path, "/init", 0);
    return n;
}

static int interp_paths(job_spec *s, spec_path *out)
{
    int n = 0;
    add_path(out, &n, &s->interp.phi.path, "/phi", 0);
    add_path(out, &n, &s->interp.psi.path, "/psi", 0);
    return n;
}

static int no_paths(job_spec *s, spec_path *out)
{
    (void)s;
    (void)out;
    return 0;
}

static int compress_paths(job_spec *s, spec_path *out)
{
    int n = 0;
    add_model(out, &n, &s->compress.model, "/model");
    add_data(out, &n, &s->compress.data);
    return n;
}

static int train_paths(job_spec *s, spec_path *out)
{
    int n = 0;
    add_model(out, &n, &s->train.model, "/model");
    add_data(out, &n, &s->train.data);
    add_path(out, &n, &s->train.resume_from, "/resume_from", 0);
    return n;
}

/* ---- Parse, free and run of each kind ---------------------------------------------- */

static int parse_lasso_job(const cJSON *r, job_spec *s, char *f, size_t n)
{
    return spec_parse_lasso(r, &s->lasso, f, n);
}
static int parse_interp_job(const cJSON *r, job_spec *s, char *f, size_t n)
{
    return spec_parse_interp(r, &s->interp, f, n);
}
static int parse_bounds_job(const cJSON *r, job_spec *s, char *f, size_t n)
{
    return spec_parse_bounds(r, &s->bounds, f, n);
}
static int parse_sharing_job(const cJSON *r, job_spec *s, char *f, size_t n)
{
    return spec_parse_sharing(r, &s->sharing, f, n);
}
static int parse_compress_job(const cJSON *r, job_spec *s, char *f, size_t n)
{
    return spec_parse_compress(r, &s->compress, f, n);
}
static int parse_train_job(const cJSON *r, job_spec *s, char *f, size_t n)
{
    return spec_parse_train(r, &s->train, f, n);
}

static void free_lasso_job(job_spec *s)
{
    spec_free_lasso(&s->lasso);
}
static void free_interp_job(job_spec *s)
{
    spec_free_interp(&s->interp);
}
static void free_bounds_job(job_spec *s)
{
    free(s->bounds.name);
    memset(&s->bounds, 0, sizeof s->bounds);
}
static void free_sharing_job(job_spec *s)
{
    free(s->sharing.name);
    memset(&s->sharing, 0, sizeof s->sharing);
}
static void free_compress_job(job_spec *s)
{
    spec_free_compress(&s->compress);
}
static void free_train_job(job_spec *s)
{
    spec_free_train(&s->train);
}

static int run_lasso_job(job_spec *s, const char *out, const run_sink *sink, const atomic_int *stop,
                         run_cache *cache, cJSON **result, char *f, size_t n)
{
    return run_lasso(&s->lasso, out, sink, stop, cache, result, f, n);
}
static int run_interp_job(job_spec *s, const char *out, const run_sink *sink,
                          const atomic_int *stop, run_cache *cache, cJSON **result, char *f,
                          size_t n)
{
    (void)cache;
    return run_interpolate(&s->interp, out, sink, stop, result, f, n);
}
static int run_bounds_job(job_spec *s, const char *out, const run_sink *sink,
                          const atomic_int *stop, run_cache *cache, cJSON **result, char *f,
                          size_t n)
{
    (void)cache;
    return run_bounds(&s->bounds, out, sink, stop, result, f, n);
}
static int run_sharing_job(job_spec *s, const char *out, const run_sink *sink,
                           const atomic_int *stop, run_cache *cache, cJSON **result, char *f,
                           size_t n)
{
    (void)cache;
    return run_sharing(&s->sharing, out, sink, stop, result, f, n);
}
static int run_compress_job(job_spec *s, const char *out, const run_sink *sink,
                            const atomic_int *stop, run_cache *cache, cJSON **result, char *f,
                            size_t n)
{
    return run_compress(&s->compress, out, sink, stop, cache, result, f, n);
}
static int run_train_job(job_spec *s, const char *out, const run_sink *sink, const atomic_int *stop,
                         run_cache *cache, cJSON **result, char *f, size_t n)
{
    (void)cache;
    return run_train(&s->train, out, sink, stop, result, f, n);
}

static const kind_def kinds[] = {
    {JOB_LASSO, "lasso", spec_lasso_fields, parse_lasso_job, free_lasso_job, lasso_paths,
     run_lasso_job},
    {JOB_INTERPOLATE, "interpolate", spec_interp_fields, parse_interp_job, free_interp_job,
     interp_paths, run_interp_job},
    {JOB_BOUNDS, "bounds_study", spec_bounds_fields, parse_bounds_job, free_bounds_job, no_paths,
     run_bounds_job},
    {JOB_SHARING, "neuron_sharing", spec_sharing_fields, parse_sharing_job, free_sharing_job,
     no_paths, run_sharing_job},
    {JOB_COMPRESS, "compress", spec_compress_fields, parse_compress_job, free_compress_job,
     compress_paths, run_compress_job},
    {JOB_TRAIN, "train", spec_train_fields, parse_train_job, free_train_job, train_paths,
     run_train_job},
};
#define NKINDS ((int)(sizeof kinds / sizeof *kinds))

const kind_def *kind_of(job_kind k)
{
    for (int i = 0; i < NKINDS; i++)
        if (kinds[i].kind == k)
            return &kinds[i];
    return &kinds[0];
}

const kind_def *kind_named(const char *name)
{
    for (int i = 0; i < NKINDS; i++)
        if (!strcmp(kinds[i].name, name))
            return &kinds[i];
    return NULL;
}

const char *spec_kind_name(job_kind k)
{
    return kind_of(k)->name;
}

const char *const *spec_fields(job_kind k)
{
    return kind_of(k)->fields;
}

/* An unknown top-level field's detail lists the kind's fields, so that the
 * problem can name the closest one ("did you mean", http.c). */
static int with_allowed(int rc, const kind_def *k, const char *field)
{
    const char *d = vv_err_detail();
    size_t dl = strlen(d), tl = strlen("unknown field");
    if (rc != VV_EUNKNOWN || !field || field[0] != '/' || strchr(field + 1, '/') ||
        dl < tl || strcmp(d + dl - tl, "unknown field"))
        return rc;
    char list[768] = "";
    for (const char *const *f = k->fields; *f; f++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", f == k->fields ? "" : ", ",
                 *f);
    return vv_fail(VV_EUNKNOWN, "%s (allowed: %s)", d, list);
}

int spec_parse_job(const cJSON *root, job_spec *s, char *field, size_t fsz)
{
    memset(s, 0, sizeof *s);
    /* A spec without a kind is a lasso spec (whose parser reports it). */
    const cJSON *kind =
        cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "kind") : NULL;
    if (!cJSON_IsString(kind))
        return with_allowed(kinds[0].parse(root, s, field, fsz), &kinds[0], field);
    for (int i = 0; i < NKINDS; i++)
        if (!strcmp(kind->valuestring, kinds[i].name)) {
            s->kind = kinds[i].kind;
            return with_allowed(kinds[i].parse(root, s, field, fsz), &kinds[i], field);
        }
    char names[256] = "";
    for (int i = 0; i < NKINDS; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                 kinds[i].name);
    snprintf(field, fsz, "/kind");
    return vv_fail(VV_EINVAL, "/kind: unsupported kind '%.64s' (supported: %s)", kind->valuestring,
                   names);
}

int spec_parse_job_remote(const cJSON *root, job_spec *s, char *field, size_t fsz)
{
    spec_for_worker = 1;
    int rc = spec_parse_job(root, s, field, fsz);
    spec_for_worker = 0;
    return rc;
}

int spec_parse_job_text(const char *text, size_t len, job_spec *out, char *field, size_t fsz)
{
    memset(out, 0, sizeof *out);
    if (field && fsz)
        field[0] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        return vv_fail(VV_EJSON, "spec: malformed JSON near byte %zu", off);
    }
    for (const char *p = end; p && p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != 0) {
            cJSON_Delete(root);
            return vv_fail(VV_EJSON, "spec: unexpected text after the JSON value at byte %zu",
                           (size_t)(p - text));
        }
    int rc = json_check_tree(root, field, fsz);
    if (rc < 0) {
        cJSON_Delete(root);
        return rc;
    }
    rc = spec_parse_job(root, out, field, fsz);
    cJSON_Delete(root);
    if (rc < 0)
        spec_free_job(out);
    return rc;
}

void spec_free_job(job_spec *s)
{
    if (!s)
        return;
    for (int i = 0; i < NKINDS; i++)
        kinds[i].free(s);
}

int run_job(job_spec *s, const char *out_dir, const run_sink *sink, const atomic_int *stop,
            run_cache *cache, cJSON **result, char *field, size_t fsz)
{
    return kind_of(s->kind)->run(s, out_dir, sink, stop, cache, result, field, fsz);
}

/* ---- Confinement ------------------------------------------------------------------- */

/* Whether path's real location is inside the built-in Fashion-MNIST folder. */
static int builtin_dataset(const char *path)
{
    char real[PATH_MAX], dir[PATH_MAX];
    if (!realpath(path, real) || !realpath(data_fashion_mnist_dir(), dir))
        return 0;
    size_t dl = strlen(dir);
    return !strncmp(real, dir, dl) && (real[dl] == '/' || real[dl] == 0);
}

static int confine(spec_path *p, int n, const char *root, char *field, size_t fsz)
{
    for (int i = 0; i < n; i++) {
        char abs[PATH_MAX];
        if (p[i].dataset && (*p[i].path)[0] == '/' && builtin_dataset(*p[i].path))
            continue;
        int rc = data_resolve_input(root, *p[i].path, abs, sizeof abs);
        if (rc < 0) {
            snprintf(field, fsz, "%s", p[i].ptr);
            return rc;
        }
        char *copy = strdup(abs);
        if (!copy)
            return vv_fail(VV_ENOMEM, "out of memory");
        free(*p[i].path);
        *p[i].path = copy;
    }
    return 0;
}

int kinds_confine(job_spec *s, const char *root, char *field, size_t fsz)
{
    spec_path p[SPEC_MAX_PATHS];
    int n = kind_of(s->kind)->paths(s, p);
    return confine(p, n, root, field, fsz);
}

int kinds_confine_model(model_ref *m, const char *root, const char *ptr, char *field, size_t fsz)
{
    spec_path p[SPEC_MAX_PATHS];
    int n = 0;
    add_model(p, &n, m, ptr);
    return confine(p, n, root, field, fsz);
}
