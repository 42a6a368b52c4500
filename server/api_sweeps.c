/* api_sweeps.c - sweeps: a grid over a base spec, expanded server-side.
 *
 * Each distinct point is queued once: its config hash (FNV-1a of the
 * canonical point spec) is UNIQUE within the sweep.  Resuming re-queues the
 * points whose latest attempt FAILED, CRASHED or was STOPPED, and the ones
 * that never got a run; attempt n > 1 of a point carries the hash "HASH#n",
 * so every attempt stays in the sweep and the constraint still holds.
 */
#include "http_util.h"
#include "kinds.h"
#include "state.h"

#include "spec.h"
#include "vv/err.h"
#include "vv/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_SWEEP_POINTS = 10000, MAX_AXES = 16 };

/* Creating, stopping and resuming sweeps read the sweep's runs and then
 * queue or stop some: one at a time, so two resumes never race. */
static pthread_mutex_t sweep_lock = PTHREAD_MUTEX_INITIALIZER;


/* The distinct points of a sweep request, validated. */
typedef struct points {
    int n;
    char **texts;  /* canonical spec JSON */
    char **hashes; /* 16 hex digits */
    job_spec *specs;
    int external; /* run by workers (`vvd run --report-to`), not here */
} points;

static void points_free(points *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->texts[i]);
        free(p->hashes[i]);
        spec_free_job(&p->specs[i]);
    }
    free(p->texts);
    free(p->hashes);
    free(p->specs);
    memset(p, 0, sizeof *p);
}

static int cmp_child(const void *a, const void *b)
{
    const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;
    return strcmp(x->string, y->string);
}

/* Sorts object keys recursively, so equal specs print equally. */
static void canonicalise(cJSON *j)
{
    if (cJSON_IsArray(j)) {
        for (cJSON *c = j->child; c; c = c->next)
            canonicalise(c);
        return;
    }
    if (!cJSON_IsObject(j) || !j->child)
        return;
    int n = cJSON_GetArraySize(j);
    cJSON **v = malloc((size_t)n * sizeof *v);
    if (!v)
        return;
    int i = 0;
    for (cJSON *c = j->child; c; c = c->next)
        v[i++] = c;
    qsort(v, (size_t)n, sizeof *v, cmp_child);
    for (i = 0; i < n; i++) {
        canonicalise(v[i]);
        v[i]->prev = i ? v[i - 1] : v[n - 1];
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
    }
    j->child = v[0];
    free(v);
}

static void fnv_hex(const char *s, char *out)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* Checks a sweep request and expands its grid into distinct, valid points.
 * field receives the JSON pointer of a problem. */
static int expand(req *r, const cJSON *json, points *out, char *field, size_t fsz)
{
    memset(out, 0, sizeof *out);
    const cJSON *base = NULL, *grid = NULL;
    for (const cJSON *m = json->child; m; m = m->next) {
        if (!strcmp(m->string, "base"))
            base = m;
        else if (!strcmp(m->string, "grid"))
            grid = m;
        else if (!strcmp(m->string, "external")) {
            if (!cJSON_IsBool(m)) {
                snprintf(field, fsz, "/external");
                return vv_fail(VV_ETYPE, "/external: must be a boolean");
            }
            out->external = cJSON_IsTrue(m);
        } else if (strcmp(m->string, "name")) {
            snprintf(field, fsz, "/%s", m->string);
            return vv_fail(VV_EUNKNOWN, "/%s: unknown field (allowed: base, grid, name, external)",
                           m->string);
        } else if (!cJSON_IsString(m)) {
            snprintf(field, fsz, "/name");
            return vv_fail(VV_ETYPE, "/name: must be a string");
        }
    }
    if (!cJSON_IsObject(base)) {
        snprintf(field, fsz, "/base");
        return vv_fail(base ? VV_ETYPE : VV_EMISSING,
                       "/base: the base job spec (an object) is required");
    }
    if (!cJSON_IsObject(grid) || !grid->child) {
        snprintf(field, fsz, "/grid");
        return vv_fail(grid ? VV_ETYPE : VV_EMISSING,
                       "/grid: an object of spec fields to lists of values is required");
    }
    int naxes = 0, sizes[MAX_AXES];
    const cJSON *axes[MAX_AXES];
    double total = 1;
    for (const cJSON *a = grid->child; a; a = a->next) {
        snprintf(field, fsz, "/grid/%s", a->string);
        const cJSON *bk = cJSON_GetObjectItemCaseSensitive(base, "kind");
        const kind_def *kd = cJSON_IsString(bk) ? kind_named(bk->valuestring) : kind_of(JOB_LASSO);
        job_kind kind = kd ? kd->kind : JOB_LASSO; /* an unknown kind: the base's parser says so */
        int known = 0;
        for (const char *const *f = spec_fields(kind); *f; f++)
            known |= !strcmp(*f, a->string);
        if (!known || !strcmp(a->string, "kind")) {
            char list[768] = "";
            for (const char *const *f = spec_fields(kind); *f; f++)
                if (strcmp(*f, "kind"))
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                             list[0] ? ", " : "", *f);
            return vv_fail(VV_EUNKNOWN, "/grid/%s: not a field of a %s spec (allowed: %s)",
                           a->string, spec_kind_name(kind), list);
        }
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1)
            return vv_fail(VV_ETYPE, "/grid/%s: must be a non-empty array of values", a->string);
        if (naxes == MAX_AXES)
            return vv_fail(VV_EINVAL, "/grid: at most %d fields", MAX_AXES);
        axes[naxes] = a;
        sizes[naxes++] = cJSON_GetArraySize(a);
        total *= cJSON_GetArraySize(a);
    }
    if (total > MAX_SWEEP_POINTS) {
        snprintf(field, fsz, "/grid");
        return vv_fail(VV_EINVAL, "/grid: %.0f points; at most %d", total, MAX_SWEEP_POINTS);
    }
    field[0] = 0;
    int npts = (int)total;
    out->texts = calloc((size_t)npts, sizeof *out->texts);
    out->hashes = calloc((size_t)npts, sizeof *out->hashes);
    out->specs = calloc((size_t)npts, sizeof *out->specs);
    if (!out->texts || !out->hashes || !out->specs) {
        points_free(out);
        return vv_fail(VV_ENOMEM, "out of memory");
    }
    for (int p = 0; p < npts; p++) {
        cJSON *pt = cJSON_Duplicate(base, 1);
        int idx[MAX_AXES], rem = p;
        for (int a = naxes - 1; a >= 0; a--) {
            idx[a] = rem % sizes[a];
            rem /= sizes[a];
            cJSON *v = cJSON_Duplicate(cJSON_GetArrayItem(axes[a], idx[a]), 1);
            if (cJSON_GetObjectItemCaseSensitive(pt, axes[a]->string))
                cJSON_ReplaceItemInObjectCaseSensitive(pt, axes[a]->string, v);
            else
                cJSON_AddItemToObject(pt, axes[a]->string, v);
        }
        char sub[200];
        job_spec *s = &out->specs[out->n];
        /* A worker's paths are its own: its spec is checked, not its files. */
        int rc = out->external ? spec_parse_job_remote(pt, s, sub, sizeof sub)
                               : api_prepare_spec(r, pt, s, sub, sizeof sub);
        if (rc < 0) {
            /* Name the grid value when the bad field is a grid axis. */
            snprintf(field, fsz, "/base%s", sub);
            for (int a = 0; a < naxes; a++) {
                size_t kl = strlen(axes[a]->string);
                if (!strncmp(sub + 1, axes[a]->string, kl) && (sub[kl + 1] == 0 || sub[kl + 1] == '/'))
                    snprintf(field, fsz, "/grid/%s/%d", axes[a]->string, idx[a]);
            }
            spec_free_job(s);
            cJSON_Delete(pt);
            points_free(out);
            return rc;
        }
        canonicalise(pt);
        char *t = cJSON_PrintUnformatted(pt);
        cJSON_Delete(pt);
        char h[17];
        fnv_hex(t ? t : "", h);
        int dup = !t;
        for (int q = 0; q < out->n && !dup; q++)
            dup = !strcmp(out->hashes[q], h);
        if (dup) {
            free(t);
            spec_free_job(s);
            continue;
        }
        out->texts[out->n] = t;
        out->hashes[out->n++] = strdup(h);
    }
    return 0;
}

static int64_t next_sweep_id(store *db)
{
    static int64_t next;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    if (next == 0) {
        int64_t mr = 0, ms = 0;
        store_max_ids(db, &mr, &ms);
        next = ms + 1;
    }
    int64_t id = next++;
    pthread_mutex_unlock(&mu);
    return id;
}

enum MHD_Result api_sweep_post(req *r)
{
    char field[256] = "";
    int perr;
    cJSON *json = api_parse_body(r, &perr, field, sizeof field);
    if (!json)
        return reply_problem(r, perr, field);
    points pts;
    int rc = cJSON_IsObject(json) ? expand(r, json, &pts, field, sizeof field)
                                  : vv_fail(VV_ETYPE, "a sweep request must be an object");
    int reserved = 0;
    if (rc == 0 && !pts.external && (rc = jobs_reserve(r->cfg->jobs, pts.n)) == 0)
        reserved = pts.n;
    cJSON *out = NULL;
    if (rc == 0) {
        char sid[32];
        snprintf(sid, sizeof sid, "s-%06lld", (long long)next_sweep_id(r->cfg->db));
        char *stext = cJSON_PrintUnformatted(json);
        rc = store_sweep_insert(r->cfg->db, sid, stext ? stext : "{}", (double)time(NULL));
        free(stext);
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "id", sid);
        cJSON_AddNumberToObject(out, "points", pts.n);
        cJSON *ids = cJSON_AddArrayToObject(out, "runs");
        for (int p = 0; p < pts.n && rc == 0; p++) {
            char id[32];
            if (pts.external) {
                rc = jobs_submit_external(r->cfg->jobs, spec_kind_name(pts.specs[p].kind),
                                          pts.texts[p], sid, pts.hashes[p], id);
            } else {
                rc = jobs_submit_reserved(r->cfg->jobs, &pts.specs[p], pts.texts[p], sid,
                                          pts.hashes[p], id);
                reserved--;
            }
            if (rc == 0)
                cJSON_AddItemToArray(ids, cJSON_CreateString(id));
        }
        jobs_unreserve(r->cfg->jobs, reserved);
        if (rc < 0)
            VV_WARN("http", sid, "sweep stopped queueing: %s", vv_err_detail());
        points_free(&pts);
    }
    cJSON_Delete(json);
    if (rc < 0) {
        cJSON_Delete(out);
        return reply_problem(r, rc, field);
    }
    return reply_json(r, 201, out);
}

/* Every run of a sweep (all attempts), newest first. */
static int list_all(req *r, const char *sweep, cJSON *arr)
{
    char token[64] = "", next[64];
    do {
        run_row *rows = NULL;
        int n = 0;
        int rc = store_runs_list(r->cfg->db, NULL, NULL, sweep, 1000, token[0] ? token : NULL,
                                 &rows, &n, next);
        if (rc < 0)
            return rc;
        for (int i = 0; i < n; i++) {
            cJSON_AddItemToArray(arr, api_run_json(r, &rows[i]));
            run_row_free(&rows[i]);
        }
        free(rows);
        snprintf(token, sizeof token, "%s", next);
    } while (token[0]);
    return 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : 0;
}

typedef struct run_ref {
    cJSON *run;
    const char *point;
    int attempt;
} run_ref;

static int cmp_run_ref(const void *a, const void *b)
{
    const run_ref *x = a, *y = b;
    int c = strcmp(x->point, y->point);
    return c ? c : y->attempt - x->attempt;
}

/* Marks each run "latest" when it is the newest attempt of its point
 * (sorting by point, so large sweeps stay cheap). */
static void mark_latest(cJSON *runs)
{
    int n = cJSON_GetArraySize(runs), k = 0;
    run_ref *v = calloc((size_t)n + 1, sizeof *v);
    if (!v)
        return;
    for (cJSON *run = runs->child; run; run = run->next)
        v[k++] = (run_ref){run, str(run, "point"), num(run, "attempt")};
    qsort(v, (size_t)k, sizeof *v, cmp_run_ref);
    for (int i = 0; i < k; i++)
        cJSON_AddBoolToObject(v[i].run, "latest", i == 0 || strcmp(v[i - 1].point, v[i].point));
    free(v);
}

enum MHD_Result api_sweep_get(req *r, const char *id, int stop)
{
    sweep_row sw = {0};
    int rc = store_sweep_get(r->cfg->db, id, &sw);
    if (rc < 0)
        return reply_problem(r, rc, "");
    cJSON *runs = cJSON_CreateArray();
    if (stop)
        pthread_mutex_lock(&sweep_lock);
    rc = list_all(r, id, runs);
    if (rc == 0 && stop) {
        for (cJSON *run = runs->child; run; run = run->next)
            if (!run_state_final((run_state)run_state_parse(str(run, "state"))))
                jobs_stop_run(r->cfg->jobs, str(run, "id"));
        store_sweep_set_state(r->cfg->db, id, "STOPPED");
        cJSON_Delete(runs);
        runs = cJSON_CreateArray();
        sweep_row_free(&sw);
        rc = store_sweep_get(r->cfg->db, id, &sw);
        if (rc == 0)
            rc = list_all(r, id, runs);
    }
    if (stop)
        pthread_mutex_unlock(&sweep_lock);
    if (rc < 0) {
        cJSON_Delete(runs);
        sweep_row_free(&sw);
        return reply_problem(r, rc, "");
    }
    mark_latest(runs);
    int counts[6] = {0};
    for (cJSON *run = runs->child; run; run = run->next)
        if (cJSON_IsTrue(cJSON_GetObjectItem(run, "latest")))
            for (int i = 0; i < 6; i++)
                counts[i] += !strcmp(str(run, "state"), run_state_name((run_state)i));
    const char *state = sw.state;
    /* A sweep whose points have all ended is finished. */
    if (!strcmp(state, "ACTIVE") && counts[0] == 0 && counts[1] == 0 &&
        store_sweep_set_state(r->cfg->db, id, "FINISHED") == 0)
        state = "FINISHED";
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", sw.id);
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddNumberToObject(o, "created", sw.created);
    api_sweep_describe(r, &sw, o, 0);
    if ((rc = api_sweep_deleted_json(r, id, o)) < 0) {
        cJSON_Delete(o);
        cJSON_Delete(runs);
        sweep_row_free(&sw);
        return reply_problem(r, rc, "");
    }
    cJSON *req_json = cJSON_Parse(sw.spec);
    cJSON_AddItemToObject(o, "request", req_json ? req_json : cJSON_CreateNull());
    cJSON *c = cJSON_AddObjectToObject(o, "counts");
    for (int i = 0; i < 6; i++)
        cJSON_AddNumberToObject(c, run_state_name((run_state)i), counts[i]);
    cJSON_AddItemToObject(o, "runs", runs);
    sweep_row_free(&sw);
    return reply_json(r, 200, o);
}

typedef struct attempt_ref {
    const char *point, *state;
    int attempt;
} attempt_ref;

static int cmp_ref_point(const void *a, const void *b)
{
    return strcmp(((const attempt_ref *)a)->point, ((const attempt_ref *)b)->point);
}

static int cmp_ref(const void *a, const void *b)
{
    const attempt_ref *x = a, *y = b;
    int c = strcmp(x->point, y->point);
    return c ? c : y->attempt - x->attempt; /* newest attempt first */
}

/* The newest attempt of each point, sorted by point (binary-searchable). */
static attempt_ref *latest_attempts(const cJSON *runs, int *n)
{
    int m = cJSON_GetArraySize(runs), k = 0;
    attempt_ref *v = calloc((size_t)m + 1, sizeof *v);
    if (!v)
        return NULL;
    for (const cJSON *run = runs->child; run; run = run->next)
        v[k++] = (attempt_ref){str(run, "point"), str(run, "state"), num(run, "attempt")};
    qsort(v, (size_t)k, sizeof *v, cmp_ref);
    int u = 0;
    for (int i = 0; i < k; i++)
        if (u == 0 || strcmp(v[u - 1].point, v[i].point))
            v[u++] = v[i];
    *n = u;
    return v;
}

enum MHD_Result api_sweep_resume(req *r, const char *id)
{
    pthread_mutex_lock(&sweep_lock);
    sweep_row sw = {0};
    int rc = store_sweep_get(r->cfg->db, id, &sw);
    if (rc < 0) {
        pthread_mutex_unlock(&sweep_lock);
        return reply_problem(r, rc, "");
    }
    cJSON *request = cJSON_Parse(sw.spec);
    sweep_row_free(&sw);
    points pts = {0};
    char field[256] = "";
    cJSON *runs = cJSON_CreateArray();
    rc = request ? expand(r, request, &pts, field, sizeof field)
                 : vv_fail(VV_EINTERNAL, "sweep %s: its stored request does not parse", id);
    cJSON_Delete(request);
    if (rc == 0)
        rc = list_all(r, id, runs);
    int nlat = 0;
    attempt_ref *lat = rc == 0 ? latest_attempts(runs, &nlat) : NULL;
    if (rc == 0 && !lat)
        rc = vv_fail(VV_ENOMEM, "out of memory");
    /* For each point: its latest attempt, and whether it needs another. */
    int *attempt = calloc((size_t)pts.n + 1, sizeof *attempt);
    const char **was = calloc((size_t)pts.n + 1, sizeof *was);
    int needed = 0;
    for (int p = 0; rc == 0 && p < pts.n; p++) {
        attempt_ref key = {pts.hashes[p], NULL, 0};
        attempt_ref *hit = bsearch(&key, lat, (size_t)nlat, sizeof *lat, cmp_ref_point);
        attempt[p] = hit ? hit->attempt : 0;
        was[p] = hit ? hit->state : "MISSING";
        int st = hit ? run_state_parse(was[p]) : -1;
        int again = !hit || st == RUN_FAILED || st == RUN_CRASHED || st == RUN_STOPPED;
        if (!again)
            attempt[p] = -1;
        needed += again;
    }
    int reserved = 0;
    if (rc == 0 && needed > 0 && !pts.external && (rc = jobs_reserve(r->cfg->jobs, needed)) == 0)
        reserved = needed;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "id", id);
    cJSON *list = cJSON_AddArrayToObject(out, "requeued");
    int queued = 0;
    for (int p = 0; rc == 0 && p < pts.n; p++) {
        if (attempt[p] < 0)
            continue;
        char hash[40], rid[32];
        if (attempt[p] == 0)
            snprintf(hash, sizeof hash, "%s", pts.hashes[p]);
        else
            snprintf(hash, sizeof hash, "%s#%d", pts.hashes[p], attempt[p] + 1);
        if (pts.external) {
            rc = jobs_submit_external(r->cfg->jobs, spec_kind_name(pts.specs[p].kind),
                                      pts.texts[p], id, hash, rid);
        } else {
            rc = jobs_submit_reserved(r->cfg->jobs, &pts.specs[p], pts.texts[p], id, hash, rid);
            reserved--;
        }
        if (rc < 0)
            break;
        queued++;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "run", rid);
        cJSON_AddStringToObject(e, "point", pts.hashes[p]);
        cJSON_AddNumberToObject(e, "attempt", attempt[p] + 1);
        cJSON_AddStringToObject(e, "was", was[p]);
        cJSON_AddItemToArray(list, e);
    }
    jobs_unreserve(r->cfg->jobs, reserved);
    /* The sweep is active again when anything was queued, whatever failed later. */
    if (queued > 0)
        store_sweep_set_state(r->cfg->db, id, "ACTIVE");
    pthread_mutex_unlock(&sweep_lock);
    free(attempt);
    free(was);
    free(lat);
    cJSON_Delete(runs);
    points_free(&pts);
    if (rc < 0) {
        cJSON_Delete(out);
        return reply_problem(r, rc, field);
    }
    VV_INFO("http", id, "resume: %d point(s) queued again", queued);
    return reply_json(r, 200, out);
}
