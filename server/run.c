/* run.c - the lasso job: files -> statistics -> solve(s) -> artifacts. */
#include "run.h"
#include "device.h"
#include "mpi_run.h"
#include "state.h"

#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct job {
    const lasso_spec *spec;
    const run_sink *sink;
    const atomic_int *stop;
    const char *out_dir;
    vv_stats st;       /* computed here when there is no cache */
    const vv_stats *stp; /* the statistics in use: &st or a cache entry's */
    int cached;        /* the statistics came from the cache */
    double lambda_max;
    double deadline;
    int64_t step;     /* next metric step */
    int64_t iters;    /* total iterations */
    double t0;
    vv_backend *be;   /* the device: statistics and FISTA run there */
} job;

static void set_field(char *field, size_t fieldsz, const char *ptr)
{
    if (field && fieldsz)
        snprintf(field, fieldsz, "%s", ptr);
}

static void put_eval(cJSON *o, const vv_eval *e)
{
    cJSON_AddNumberToObject(o, "objective", e->objective);
    cJSON_AddNumberToObject(o, "gap", e->gap);
    cJSON_AddNumberToObject(o, "rel_gap", e->rel_gap);
    cJSON_AddNumberToObject(o, "active", (double)e->active);
    cJSON_AddNumberToObject(o, "mse", e->mse);
    cJSON_AddNumberToObject(o, "group_norm", e->group_norm);
}

static int on_metric(void *ctx, const vv_metrics *m)
{
    job *j = ctx;
    run_metric rm = {.step = m->step, .time = vv_now() - j->t0};
    run_metric_set(&rm, RM_lambda, m->lambda);
    run_metric_set(&rm, RM_objective, m->e.objective);
    run_metric_set(&rm, RM_gap, m->e.gap);
    run_metric_set(&rm, RM_rel_gap, m->e.rel_gap);
    run_metric_set(&rm, RM_active, (double)m->e.active);
    run_metric_set(&rm, RM_mse, m->e.mse);
    run_metric_set(&rm, RM_group_norm, m->e.group_norm);
    run_emit_metric(j->sink, &rm);
    j->step = m->step + 1;
    return 0;
}

/* Opens a file source named by a spec field. */
static int open_file(const spec_file *f, vv_rows **out, const char *ptr, char *field,
                     size_t fieldsz)
{
    int rc = vv_rows_open(f->path, f->tensor, out);
    if (rc < 0)
        set_field(field, fieldsz, ptr);
    return rc;
}

/* Opens this rank's sources of the rows: the synthetic problem or a file
 * each, whose rows the ranks share (*split), or, for lists of shards, the
 * concatenation of this rank's whole shards (shards [share of the rank] of
 * the lists; all of them in one process). */
static int open_sources(const lasso_spec *s, vv_rows **phi, vv_rows **psi, int *split, char *field,
                        size_t fieldsz)
{
    *split = 1;
    if (s->generate)
        return vv_synth_open(s->gen_n, s->gen_k, s->gen_d, s->gen_seed, phi, psi);
    int rc;
    if (!s->nphi_shards) {
        if ((rc = open_file(&s->phi, phi, "/phi", field, fieldsz)) == 0)
            rc = open_file(&s->psi, psi, "/psi", field, fieldsz);
        return rc;
    }
    *split = 0;
    int ranks = par_size(), ns = s->nphi_shards;
    if (ns < ranks) {
        set_field(field, fieldsz, "/phi");
        return vv_fail(VV_EINVAL,
                       "phi lists %d shards for %d ranks: each rank reads whole "
                       "shards, give at least one per rank",
                       ns, ranks);
    }
    int64_t b, e;
    vv_stats_share(ns, par_rank(), ranks, &b, &e);
    vv_rows *pp[SPEC_MAX_SHARDS] = {0}, *qq[SPEC_MAX_SHARDS] = {0};
    int m = (int)(e - b);
    rc = 0;
    for (int i = 0; i < m && rc == 0; i++) {
        char ptr[32];
        snprintf(ptr, sizeof ptr, "/phi/%d", (int)b + i);
        if ((rc = open_file(&s->phi_shards[b + i], &pp[i], ptr, field, fieldsz)) < 0)
            break;
        snprintf(ptr, sizeof ptr, "/psi/%d", (int)b + i);
        if ((rc = open_file(&s->psi_shards[b + i], &qq[i], ptr, field, fieldsz)) < 0)
            break;
        if (vv_rows_n(pp[i]) != vv_rows_n(qq[i])) {
            set_field(field, fieldsz, ptr);
            rc = vv_fail(VV_ESHAPE, "shard %d: phi (%s) has %lld rows but psi (%s) has %lld",
                         (int)b + i, vv_rows_name(pp[i]), (long long)vv_rows_n(pp[i]),
                         vv_rows_name(qq[i]), (long long)vv_rows_n(qq[i]));
        }
    }
    if (rc < 0) {
        for (int i = 0; i < m; i++) {
            vv_rows_free(pp[i]);
            vv_rows_free(qq[i]);
        }
        return rc;
    }
    char name[64];
    snprintf(name, sizeof name, "phi shards %lld..%lld of %d", (long long)b, (long long)e - 1, ns);
    if ((rc = vv_rows_concat(name, pp, m, phi)) < 0) {
        for (int i = 0; i < m; i++)
            vv_rows_free(qq[i]);
        set_field(field, fieldsz, "/phi");
        return rc;
    }
    snprintf(name, sizeof name, "psi shards %lld..%lld of %d", (long long)b, (long long)e - 1, ns);
    if ((rc = vv_rows_concat(name, qq, m, psi)) < 0)
        set_field(field, fieldsz, "/psi");
    return rc;
}

/* G.npy (K x K) and B.npy (D x K, (Psi - b)^T Phi), float64, into dir. */
static int write_stats(const char *dir, const vv_stats *st, cJSON *outs)
{
    int64_t k = st->k, d = st->d;
    char path[4200];
    snprintf(path, sizeof path, "%s/G.npy", dir);
    int rc = vv_npy_write(path, VV_F64, 2, (int64_t[]){k, k}, st->G);
    if (rc < 0)
        return rc;
    cJSON_AddStringToObject(outs, "G", path);
    double *B = malloc((size_t)(k * d) * sizeof *B + 8);
    if (!B)
        return vv_fail(VV_ENOMEM, "out of memory writing B.npy");
    for (int64_t i = 0; i < d; i++)
        for (int64_t c = 0; c < k; c++)
            B[i * k + c] = st->Bt[c * d + i];
    snprintf(path, sizeof path, "%s/B.npy", dir);
    rc = vv_npy_write(path, VV_F64, 2, (int64_t[]){d, k}, B);
    free(B);
    if (rc == 0)
        cJSON_AddStringToObject(outs, "B", path);
    return rc;
}

/* Reads a whole small array (bias, initial weights) as rows x cols doubles. */
int run_read_matrix(const spec_file *f, const char *ptr, double **out, int64_t *rows,
                      int64_t *cols, char *field, size_t fieldsz)
{
    vv_rows *r = NULL;
    int rc = open_file(f, &r, ptr, field, fieldsz);
    if (rc < 0)
        return rc;
    *rows = vv_rows_n(r);
    *cols = vv_rows_cols(r);
    *out = malloc((size_t)(*rows * *cols) * sizeof **out + 8);
    if (!*out)
        rc = vv_fail(VV_ENOMEM, "%s: out of memory", f->path);
    else
        rc = vv_rows_read(r, 0, *rows, *out);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        set_field(field, fieldsz, ptr);
    }
    vv_rows_free(r);
    return rc;
}

static int write_V(const char *dir, const char *name, const double *W, int64_t k, int64_t d,
                   char *path, size_t pathsz)
{
    float *V = malloc((size_t)(k * d) * sizeof *V);
    if (!V)
        return vv_fail(VV_ENOMEM, "out of memory writing %s", name);
    for (int64_t i = 0; i < d; i++)
        for (int64_t c = 0; c < k; c++)
            V[i * k + c] = (float)W[c * d + i];
    snprintf(path, pathsz, "%s/%s", dir, name);
    int64_t shape[2] = {d, k};
    int rc = vv_npy_write(path, VV_F32, 2, shape, V);
    free(V);
    return rc;
}

static cJSON *point_json(int64_t index, double lambda, double lmax, const vv_lasso_result *r,
                         const char *vfile)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "index", (double)index);
    cJSON_AddNumberToObject(p, "lambda", lambda);
    cJSON_AddNumberToObject(p, "lambda_ratio", lambda / lmax);
    put_eval(p, &r->e);
    cJSON_AddStringToObject(p, "stop_reason", vv_stop_reason_name(r->stop_reason));
    cJSON_AddNumberToObject(p, "iterations", (double)r->iterations);
    cJSON_AddNumberToObject(p, "seconds", r->seconds);
    if (vfile)
        cJSON_AddStringToObject(p, "V", vfile);
    return p;
}

/* One solve at lambda from the warm start W; emits a "point" event. */
static int solve_point(job *j, double lambda, double *W, vv_lasso_result *res, int64_t index,
                       const char *vfile)
{
    const lasso_spec *s = j->spec;
    vv_lasso_opts o;
    vv_lasso_opts_default(&o);
    o.solver = s->solver;
    o.lambda = lambda;
    o.tol = s->tol;
    o.max_iter = s->max_iter;
    o.deadline = j->deadline;
    o.stop = j->stop;
    o.metrics_every = s->metrics_every;
    o.step0 = j->step;
    o.on_metric = on_metric;
    o.ctx = j;
    o.mu = s->mu;
    o.be = j->be;
    int rc = vv_lasso_solve(j->stp, &o, W, res);
    if (rc < 0)
        return rc;
    j->iters += res->iterations;
    if (index >= 0) {
        cJSON *ev = point_json(index, lambda, j->lambda_max, res, vfile);
        cJSON_AddStringToObject(ev, "event", "point");
        run_emit_log(j->sink, ev);
    }
    return 0;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* A lambda path with warm starts, from the largest lambda down. */
static int run_path(job *j, double *W, vv_lasso_result *res, double *lambda, cJSON *points)
{
    const lasso_spec *s = j->spec;
    int64_t n = s->path_n;
    double *lams = malloc((size_t)n * sizeof *lams);
    if (!lams)
        return vv_fail(VV_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        if (s->path_kind == PATH_LAMBDAS)
            lams[i] = s->path_values[i];
        else if (s->path_kind == PATH_RATIOS)
            lams[i] = s->path_values[i] * j->lambda_max;
        else
            lams[i] = n == 1 ? j->lambda_max
                             : j->lambda_max * pow(s->path_min_ratio, (double)i / (double)(n - 1));
    }
    qsort(lams, (size_t)n, sizeof *lams, cmp_desc);
    char dir[4096], vrel[64], vpath[4200];
    snprintf(dir, sizeof dir, "%s/path", j->out_dir);
    int rc = run_mkdir_p(dir);
    for (int64_t i = 0; i < n && rc == 0; i++) {
        snprintf(vrel, sizeof vrel, "path/V_%03lld.npy", (long long)i);
        if ((rc = solve_point(j, lams[i], W, res, i, vrel)) < 0)
            break;
        if ((rc = write_V(j->out_dir, vrel, W, j->stp->k, j->stp->d, vpath, sizeof vpath)) < 0)
            break;
        cJSON_AddItemToArray(points, point_json(i, lams[i], j->lambda_max, res, vrel));
        *lambda = lams[i];
        if (res->stop_reason == VV_STOP_USER || res->stop_reason == VV_STOP_MAX_SECONDS)
            break;
    }
    free(lams);
    return rc;
}

/* Bisection on log(lambda) for the largest support of at most target_active
 * neurons. */
static int run_target(job *j, double *W, vv_lasso_result *res, double *lambda, cJSON *points)
{
    const lasso_spec *s = j->spec;
    int64_t k = j->stp->k, d = j->stp->d, target = s->target_active;
    size_t bytes = (size_t)(k * d) * sizeof(double);
    double *best = calloc(1, bytes);
    if (!best)
        return vv_fail(VV_ENOMEM, "out of memory");
    vv_lasso_result bres = {0};
    double hi = j->lambda_max, lo = 0;
    int have_best = 0, rc = 0;
    int64_t idx = 0;
    double lam = hi * 0.5;
    for (int step = 0; step < 60 && rc == 0; step++) {
        if ((rc = solve_point(j, lam, W, res, idx, NULL)) < 0)
            break;
        cJSON_AddItemToArray(points, point_json(idx++, lam, j->lambda_max, res, NULL));
        if (res->stop_reason == VV_STOP_USER || res->stop_reason == VV_STOP_MAX_SECONDS) {
            if (!have_best) {
                memcpy(best, W, bytes);
                bres = *res;
                *lambda = lam;
                have_best = 1;
            }
            break;
        }
        if (res->e.active <= target) {
            hi = lam;
            memcpy(best, W, bytes);
            bres = *res;
            *lambda = lam;
            have_best = 1;
            if (res->e.active == target)
                break;
        } else {
            lo = lam;
        }
        if (lo == 0) {
            if (lam < 1e-8 * j->lambda_max)
                break; /* even tiny lambdas keep at most target neurons */
            lam *= 0.25;
        } else {
            if (hi / lo < 1 + 1e-6)
                break;
            lam = sqrt(lo * hi);
        }
    }
    if (rc == 0) {
        memcpy(W, best, bytes);
        *res = bres;
    }
    free(best);
    return rc;
}


/* ---- The statistics cache ------------------------------------------------- */

enum { MAX_SOLUTIONS = 16 };

typedef struct cache_entry {
    char *key;
    vv_stats st;
    uint64_t used; /* LRU clock */
    int nsol;
    double sol_lambda[MAX_SOLUTIONS];
    double *sol_W[MAX_SOLUTIONS];
    void *blob; /* cache_add_blob's object instead of statistics */
    size_t blob_bytes;
    void (*blob_free)(void *);
    struct cache_entry *next;
} cache_entry;

struct run_cache {
    size_t max_bytes;
    uint64_t clock;
    cache_entry *head;
};

run_cache *run_cache_new(size_t max_bytes)
{
    run_cache *c = calloc(1, sizeof *c);
    if (c)
        c->max_bytes = max_bytes;
    return c;
}

static size_t entry_bytes(const cache_entry *e)
{
    size_t b = (size_t)(e->st.k * e->st.k + e->st.k * e->st.d) * sizeof(double) + e->blob_bytes;
    return b + (size_t)e->nsol * (size_t)(e->st.k * e->st.d) * sizeof(double);
}

static void entry_free(cache_entry *e)
{
    free(e->key);
    vv_stats_free(&e->st);
    if (e->blob && e->blob_free)
        e->blob_free(e->blob);
    for (int i = 0; i < e->nsol; i++)
        free(e->sol_W[i]);
    free(e);
}

void run_cache_free(run_cache *c)
{
    if (!c)
        return;
    while (c->head) {
        cache_entry *e = c->head;
        c->head = e->next;
        entry_free(e);
    }
    free(c);
}

/* Appends "path|tensor|device|inode|size|mtime" of a file, or "" when the file
 * cannot be examined (then the key is not used). */
static int key_file(char *buf, size_t sz, size_t *len, const spec_file *f)
{
    struct stat st;
    if (!f->path)
        return 0;
    if (stat(f->path, &st) < 0)
        return -1;
    int n = snprintf(buf + *len, sz - *len, "%s|%s|%llu|%llu|%lld|%lld.%09ld;", f->path,
                     f->tensor ? f->tensor : "", (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino, (long long)st.st_size,
                     (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (n < 0 || (size_t)n >= sz - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}

const char *cache_key(const lasso_spec *s, char *buf, size_t sz)
{
    size_t len = 0;
    buf[0] = 0;
    int n = s->generate ? snprintf(buf, sz, "gen:%lld:%lld:%lld:%llu;", (long long)s->gen_n,
                                   (long long)s->gen_k, (long long)s->gen_d,
                                   (unsigned long long)s->gen_seed)
                        : 0;
    len = n > 0 ? (size_t)n : 0;
    if (key_file(buf, sz, &len, &s->phi) < 0 || key_file(buf, sz, &len, &s->psi) < 0 ||
        key_file(buf, sz, &len, &s->bias_file) < 0) {
        buf[0] = 0;
        return buf;
    }
    for (int64_t i = 0; i < s->nbias; i++) {
        n = snprintf(buf + len, sz - len, "%.17g,", s->bias[i]);
        if (n < 0 || (size_t)n >= sz - len) {
            buf[0] = 0;
            return buf;
        }
        len += (size_t)n;
    }
    return buf;
}

cache_entry *cache_find(run_cache *c, const char *key)
{
    if (!key[0])
        return NULL;
    for (cache_entry *e = c->head; e; e = e->next)
        if (!strcmp(e->key, key)) {
            e->used = ++c->clock;
            return e;
        }
    return NULL;
}

const vv_stats *cache_stats(const cache_entry *e) { return &e->st; }

/* Puts e (its size known) at the head, evicting the least recently used
 * entries beyond the budget; 0, or -1 (e untouched) when e alone exceeds it. */
static int cache_insert(run_cache *c, cache_entry *e)
{
    if (entry_bytes(e) > c->max_bytes)
        return -1;
    e->used = ++c->clock;
    e->next = c->head;
    c->head = e;
    for (;;) {
        size_t total = 0;
        cache_entry **lru = NULL;
        for (cache_entry **p = &c->head; *p; p = &(*p)->next) {
            total += entry_bytes(*p);
            if (*p != e && (!lru || (*p)->used < (*lru)->used))
                lru = p;
        }
        if (total <= c->max_bytes || !lru)
            break;
        cache_entry *victim = *lru;
        *lru = victim->next;
        entry_free(victim);
    }
    return 0;
}

/* Takes ownership of *st (zeroing it) into a new entry, evicting the least
 * recently used entries beyond the budget; NULL (and *st untouched) when the
 * statistics alone exceed the budget or memory is short. */
cache_entry *cache_add(run_cache *c, const char *key, vv_stats *st)
{
    cache_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return NULL;
    }
    e->st = *st;
    if (cache_insert(c, e) < 0) {
        free(e->key);
        free(e);
        return NULL;
    }
    memset(st, 0, sizeof *st);
    return e;
}

int cache_add_blob(run_cache *c, const char *key, void *blob, size_t bytes,
                   void (*blob_free)(void *))
{
    cache_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return -1;
    }
    e->blob_bytes = bytes;
    if (cache_insert(c, e) < 0) {
        free(e->key);
        free(e);
        return -1;
    }
    e->blob = blob;
    e->blob_free = blob_free;
    return 0;
}

void *cache_take(run_cache *c, const char *key)
{
    for (cache_entry **p = &c->head; key[0] && *p; p = &(*p)->next)
        if (!strcmp((*p)->key, key)) {
            cache_entry *e = *p;
            void *blob = e->blob;
            *p = e->next;
            e->blob = NULL;
            entry_free(e);
            return blob;
        }
    return NULL;
}

void cache_warm_start(const cache_entry *e, double lambda, double *W, int64_t kd)
{
    int best = -1;
    for (int i = 0; i < e->nsol; i++)
        if (best < 0 || fabs(log(e->sol_lambda[i] / lambda)) < fabs(log(e->sol_lambda[best] / lambda)))
            best = i;
    if (best >= 0)
        memcpy(W, e->sol_W[best], (size_t)kd * sizeof *W);
}

void cache_add_solution(cache_entry *e, double lambda, const double *W, int64_t kd)
{
    double *copy = malloc((size_t)kd * sizeof *copy);
    if (!copy)
        return;
    memcpy(copy, W, (size_t)kd * sizeof *copy);
    if (e->nsol == MAX_SOLUTIONS) {
        free(e->sol_W[0]);
        memmove(e->sol_W, e->sol_W + 1, (MAX_SOLUTIONS - 1) * sizeof *e->sol_W);
        memmove(e->sol_lambda, e->sol_lambda + 1, (MAX_SOLUTIONS - 1) * sizeof *e->sol_lambda);
        e->nsol--;
    }
    e->sol_lambda[e->nsol] = lambda;
    e->sol_W[e->nsol++] = copy;
}

cJSON *run_error_object(int err, const char *field)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", "result");
    cJSON_AddStringToObject(o, "state", run_state_name(RUN_FAILED));
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "title", vv_err_message(err));
    cJSON_AddNumberToObject(e, "status", vv_err_http_status(err));
    cJSON_AddStringToObject(e, "error_code", vv_err_code(err));
    cJSON_AddStringToObject(e, "detail", vv_err_detail());
    cJSON_AddStringToObject(e, "field", field ? field : "");
    return o;
}

int run_select_solve(const lasso_spec *s, vv_backend *be, const vv_stats *st, cache_entry *ce,
                     const run_sink *sink, const atomic_int *stop, const char *out_dir,
                     double t0, double deadline, int64_t *step, int64_t *iters, double *W,
                     double *lambda, vv_lasso_result *res, cJSON *points, char *field,
                     size_t fieldsz)
{
    job j = {.spec = s, .sink = sink, .stop = stop, .out_dir = out_dir, .stp = st,
             .cached = ce != NULL, .lambda_max = vv_lambda_max(st), .deadline = deadline,
             .step = *step, .iters = *iters, .t0 = t0, .be = be};
    int64_t k = st->k, d = st->d;
    int rc;
    *lambda = 0;
    if (s->path_kind) {
        rc = run_path(&j, W, res, lambda, points);
    } else if (s->target_active) {
        if (j.lambda_max <= 0)
            return vv_fail(VV_EINVAL, "psi - bias is orthogonal to every feature: lambda_max = 0");
        rc = run_target(&j, W, res, lambda, points);
    } else {
        *lambda = s->lam_kind == LAM_CANONICAL ? s->lam_value
                  : s->lam_kind == LAM_PAPER   ? s->lam_value * (double)d / 2
                                               : s->lam_value * j.lambda_max;
        if (!(*lambda > 0)) {
            set_field(field, fieldsz, "/lambda_ratio");
            return vv_fail(VV_EINVAL, "lambda_ratio gives lambda = 0: psi - bias is orthogonal "
                                      "to every feature (lambda_max = 0)");
        }
        /* Warm start from the nearest solution of the same statistics, unless the
         * spec chose the start itself. */
        if (ce && !s->init_given && s->solver != VV_SOLVER_ADAM_PROX)
            cache_warm_start(ce, *lambda, W, k * d);
        rc = solve_point(&j, *lambda, W, res, -1, NULL);
        if (rc == 0 && ce && res->stop_reason == VV_STOP_CONVERGED)
            cache_add_solution(ce, *lambda, W, k * d);
    }
    *step = j.step;
    *iters = j.iters;
    return rc;
}

int run_lasso(const lasso_spec *s, const char *out_dir, const run_sink *sink,
              const atomic_int *stop, run_cache *cache, cJSON **result, char *field, size_t fieldsz)
{
    *result = NULL;
    set_field(field, fieldsz, "");
    job j = {.spec = s, .sink = sink, .stop = stop, .out_dir = out_dir, .t0 = vv_now()};
    if (s->max_seconds > 0)
        j.deadline = j.t0 + s->max_seconds;
    vv_rows *phi = NULL, *psi = NULL;
    double *bias = NULL, *W = NULL, *init = NULL;
    cJSON *points = NULL;
    int rc;
    if ((rc = devices_get(s->device, &j.be)) < 0) {
        set_field(field, fieldsz, "/device");
        goto done;
    }
    /* Under mpirun the ranks meet here (a shard missing on one of them ends
     * the job at once), and before the sums of the statistics. */
    int split = 1;
    rc = open_sources(s, &phi, &psi, &split, field, fieldsz);
    if ((rc = par_agree(rc, field, fieldsz)) < 0)
        goto done;
    int64_t n = split ? vv_rows_n(phi) : par_sum_i64(vv_rows_n(phi));
    int64_t k = vv_rows_cols(phi), d = vv_rows_cols(psi);
    if (vv_rows_n(psi) != vv_rows_n(phi)) {
        rc = vv_fail(VV_ESHAPE, "phi (%s) has N=%lld rows but psi (%s) has N=%lld",
                     vv_rows_name(phi), (long long)n, vv_rows_name(psi),
                     (long long)vv_rows_n(psi));
        set_field(field, fieldsz, "/psi");
        goto done;
    }
    if (s->target_active > k) {
        rc = vv_fail(VV_EINVAL, "target_active=%lld exceeds the number of neurons K=%lld",
                     (long long)s->target_active, (long long)k);
        set_field(field, fieldsz, "/target_active");
        goto done;
    }
    if (s->nbias) {
        if (s->nbias != d) {
            rc = vv_fail(VV_ESHAPE, "bias has %lld values but psi has D=%lld columns",
                         (long long)s->nbias, (long long)d);
            set_field(field, fieldsz, "/bias");
            goto done;
        }
        bias = malloc((size_t)d * sizeof *bias);
        if (!bias) {
            rc = vv_fail(VV_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(bias, s->bias, (size_t)d * sizeof *bias);
    } else if (s->bias_file.path) {
        int64_t r, c;
        if ((rc = run_read_matrix(&s->bias_file, "/bias", &bias, &r, &c, field, fieldsz)) < 0)
            goto done;
        if (r * c != d || (r != 1 && c != 1)) {
            rc = vv_fail(VV_ESHAPE, "%s: bias must have D=%lld values, got shape %lld x %lld",
                         s->bias_file.path, (long long)d, (long long)r, (long long)c);
            set_field(field, fieldsz, "/bias");
            goto done;
        }
    }
    W = calloc((size_t)(k * d), sizeof *W);
    if (!W) {
        rc = vv_fail(VV_ENOMEM, "out of memory for V (%lld x %lld)", (long long)d, (long long)k);
        goto done;
    }
    if (s->init == VV_INIT_GIVEN) {
        int64_t r, c;
        if ((rc = run_read_matrix(&s->init_file, "/init", &init, &r, &c, field, fieldsz)) < 0)
            goto done;
        if (r != d || c != k) {
            rc = vv_fail(VV_ESHAPE,
                         "%s: the initial weight must be D x K = %lld x %lld (torch Linear.weight), "
                         "got %lld x %lld",
                         s->init_file.path, (long long)d, (long long)k, (long long)r, (long long)c);
            set_field(field, fieldsz, "/init");
            goto done;
        }
        for (int64_t i = 0; i < d; i++)
            for (int64_t c2 = 0; c2 < k; c2++)
                W[c2 * d + i] = init[i * k + c2];
    } else {
        vv_lasso_init(s->init, s->seed, k, d, W);
    }
    if (par_rank() == 0 && (rc = run_mkdir_p(out_dir)) < 0)
        goto done;

    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "start");
    cJSON_AddStringToObject(ev, "kind", "lasso");
    if (par_size() > 1)
        cJSON_AddNumberToObject(ev, "ranks", par_size());
    cJSON_AddStringToObject(ev, "phi", vv_rows_name(phi));
    cJSON_AddStringToObject(ev, "psi", vv_rows_name(psi));
    cJSON_AddNumberToObject(ev, "n", (double)n);
    cJSON_AddNumberToObject(ev, "k", (double)k);
    cJSON_AddNumberToObject(ev, "d", (double)d);
    cJSON_AddStringToObject(ev, "solver", vv_solver_name(s->solver));
    cJSON_AddStringToObject(ev, "blas", vv_blas_corename());
    cJSON_AddStringToObject(ev, "device", s->device[0] ? s->device : devices_default());
    run_emit_log(sink, ev);

    char key[8192] = "";
    /* (The daemon's cache; `vvd run`, and so every rank, has none.) */
    cache_entry *ce = cache ? cache_find(cache, cache_key(s, key, sizeof key)) : NULL;
    if (ce) {
        j.stp = &ce->st;
        j.cached = 1;
    } else {
        vv_stats_opts so = {.chunk_rows = s->chunk_rows, .stop = stop, .be = j.be};
        vv_stats_src one = {phi, psi, 1, bias};
        if ((rc = par_stats_share(1, &one, &so, split, &j.st)) < 0) {
            const char *det = vv_err_detail();
            if (rc == VV_ESTATE) {
                /* Stopped during the pass: nothing to save. */
            } else if (strstr(det, vv_rows_name(phi)))
                set_field(field, fieldsz, "/phi");
            else if (strstr(det, vv_rows_name(psi)))
                set_field(field, fieldsz, "/psi");
            for (int i = 0; i < s->nphi_shards; i++) {
                char ptr[32];
                const char *side = strstr(det, s->phi_shards[i].path)   ? "phi"
                                   : strstr(det, s->psi_shards[i].path) ? "psi"
                                                                        : NULL;
                snprintf(ptr, sizeof ptr, "/%s/%d", side ? side : "", i);
                if (side)
                    set_field(field, fieldsz, ptr);
            }
        }
        if ((rc = par_agree(rc, field, fieldsz)) < 0 || (rc = par_sum_stats(&j.st, 1)) < 0)
            goto done;
        /* The other ranks are done: rank 0 solves and writes. */
        par_end();
        if (par_rank() != 0)
            goto done;
        j.stp = &j.st;
        if (cache && key[0] && (ce = cache_add(cache, key, &j.st)) != NULL)
            j.stp = &ce->st;
    }
    j.lambda_max = vv_lambda_max(j.stp);
    ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "stats");
    cJSON_AddNumberToObject(ev, "seconds", j.cached ? 0.0 : j.stp->seconds);
    cJSON_AddNumberToObject(ev, "gflops", j.stp->flops / j.stp->seconds * 1e-9);
    cJSON_AddBoolToObject(ev, "cached", j.cached);
    cJSON_AddNumberToObject(ev, "lambda_max", j.lambda_max);
    cJSON_AddNumberToObject(ev, "c", j.stp->c);
    run_emit_log(sink, ev);

    double lambda = 0;
    vv_lasso_result res = {0};
    points = cJSON_CreateArray();
    double ts = vv_now();
    rc = run_select_solve(s, j.be, j.stp, ce, sink, stop, out_dir, j.t0, j.deadline, &j.step,
                          &j.iters, W, &lambda, &res, points, field, fieldsz);
    if (rc < 0)
        goto done;
    double solve_seconds = vv_now() - ts;

    /* Artifacts. */
    char vpath[4200], kpath[4200], rpath[4200];
    if ((rc = write_V(out_dir, "V.npy", W, k, d, vpath, sizeof vpath)) < 0)
        goto done;
    int64_t *kept = malloc((size_t)k * sizeof *kept + 8);
    if (!kept) {
        rc = vv_fail(VV_ENOMEM, "out of memory");
        goto done;
    }
    int64_t nk = vv_lasso_support(W, k, d, kept);
    snprintf(kpath, sizeof kpath, "%s/kept.npy", out_dir);
    rc = vv_npy_write(kpath, VV_I64, 1, (int64_t[]){nk}, kept);
    free(kept);
    if (rc < 0)
        goto done;

    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "event", "result");
    cJSON_AddStringToObject(r, "state", res.stop_reason == VV_STOP_USER ? run_state_name(RUN_STOPPED) : run_state_name(RUN_FINISHED));
    cJSON_AddStringToObject(r, "stop_reason", vv_stop_reason_name(res.stop_reason));
    if (s->name)
        cJSON_AddStringToObject(r, "name", s->name);
    cJSON_AddStringToObject(r, "kind", "lasso");
    cJSON_AddStringToObject(r, "solver", vv_solver_name(s->solver));
    cJSON_AddStringToObject(r, "solver_used", vv_solver_name(res.solver ? res.solver : s->solver));
    cJSON_AddNumberToObject(r, "lambda", lambda);
    cJSON_AddNumberToObject(r, "lambda_paper", 2 * lambda / (double)d);
    cJSON_AddNumberToObject(r, "lambda_max", j.lambda_max);
    put_eval(r, &res.e);
    cJSON_AddNumberToObject(r, "kept", (double)nk);
    cJSON_AddNumberToObject(r, "tol", s->tol);
    cJSON_AddNumberToObject(r, "iterations", (double)j.iters);
    cJSON_AddNumberToObject(r, "seconds", vv_now() - j.t0);
    cJSON_AddNumberToObject(r, "stats_seconds", j.cached ? 0.0 : j.stp->seconds);
    cJSON_AddBoolToObject(r, "stats_cached", j.cached);
    cJSON_AddNumberToObject(r, "solve_seconds", solve_seconds);
    cJSON_AddNumberToObject(r, "n", (double)n);
    cJSON_AddNumberToObject(r, "k", (double)k);
    cJSON_AddNumberToObject(r, "d", (double)d);
    cJSON_AddStringToObject(r, "blas", vv_blas_corename());
    if (cJSON_GetArraySize(points) > 0) {
        cJSON_AddItemToObject(r, s->path_kind ? "path" : "search", points);
        points = NULL;
    }
    cJSON *outs = cJSON_AddObjectToObject(r, "outputs");
    cJSON_AddStringToObject(outs, "V", vpath);
    cJSON_AddStringToObject(outs, "kept", kpath);
    if (par_size() > 1)
        cJSON_AddNumberToObject(r, "ranks", par_size());
    if (s->save_stats) {
        cJSON_AddNumberToObject(r, "c", j.stp->c);
        if ((rc = write_stats(out_dir, j.stp, outs)) < 0) {
            cJSON_Delete(r);
            goto done;
        }
    }
    if (s->refit) {
        double *Wr = malloc((size_t)(k * d) * sizeof *Wr), *GWr = malloc((size_t)(k * d) * sizeof *GWr);
        if (!Wr || !GWr)
            rc = vv_fail(VV_ENOMEM, "out of memory for the refit");
        if (rc == 0)
            rc = vv_lasso_refit(j.stp, W, Wr);
        if (rc == 0)
            rc = vv_gram_apply(j.stp, vv_backend_cpu(), Wr, GWr);
        if (rc == 0) {
            vv_eval re;
            vv_gram_eval(j.stp, Wr, GWr, lambda, NULL, &re);
            cJSON *rf = cJSON_AddObjectToObject(r, "refit");
            cJSON_AddNumberToObject(rf, "mse", re.mse);
            cJSON_AddNumberToObject(rf, "active", (double)re.active);
            rc = write_V(out_dir, "V_refit.npy", Wr, k, d, rpath, sizeof rpath);
            if (rc == 0)
                cJSON_AddStringToObject(outs, "V_refit", rpath);
        }
        free(Wr);
        free(GWr);
        if (rc < 0) {
            cJSON_Delete(r);
            goto done;
        }
    }
    snprintf(rpath, sizeof rpath, "%s/result.json", out_dir);
    cJSON_AddStringToObject(outs, "result", rpath);
    if ((rc = run_write_json(rpath, r)) < 0) {
        cJSON_Delete(r);
        goto done;
    }
    *result = r;
    rc = 0;
done:
    cJSON_Delete(points);
    vv_stats_free(&j.st);
    vv_rows_free(phi);
    vv_rows_free(psi);
    free(bias);
    free(W);
    free(init);
    return rc;
}
