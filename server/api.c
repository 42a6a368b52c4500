/* api.c - the routes of DESIGN.md section 4. */
#include "http_util.h"

#include "device.h"
#include "kinds.h"
#include "model_check.h"
#include "state.h"
#include "json_check.h"
#include "models.h"
#include "paths.h"
#include "spec.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/log.h"
#include "vv/version.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MAX_SWEEP_POINTS = 10000 };

/* The largest event id or step a request may name (2^53, the largest
 * integer every JSON reader keeps exactly): far from INT64_MAX, so that
 * "the next one" (+ 1) never overflows. */
#define EVENT_ID_MAX (INT64_C(1) << 53)

/* ---- Run objects ----------------------------------------------------------------- */

static cJSON *parse_or_null(const char *text)
{
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    return j ? j : cJSON_CreateNull();
}

static int add_artifact_json(void *ctx, const char *name, const char *path, int64_t bytes)
{
    cJSON *a = cJSON_CreateObject();
    cJSON *arr = ((cJSON **)ctx)[0];
    const char *id = (const char *)((cJSON **)ctx)[1];
    char url[1024];
    snprintf(url, sizeof url, "/v1/runs/%s/artifacts/%s", id, name);
    cJSON_AddStringToObject(a, "name", name);
    cJSON_AddNumberToObject(a, "bytes", (double)bytes);
    cJSON_AddStringToObject(a, "url", url);
    cJSON_AddItemToArray(arr, a);
    (void)path;
    return 0;
}

/* A copy of [s, e) that lives until the next call on this thread. */
static const char *strndup_tmp(const char *s, const char *e)
{
    static _Thread_local char buf[64];
    snprintf(buf, sizeof buf, "%.*s", (int)(e - s), s);
    return buf;
}

cJSON *api_run_json(req *r, const run_row *row)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", row->id);
    cJSON_AddStringToObject(o, "kind", row->kind);
    cJSON_AddStringToObject(o, "state", row->state);
    if (row->stop_reason)
        cJSON_AddStringToObject(o, "stop_reason", row->stop_reason);
    else
        cJSON_AddNullToObject(o, "stop_reason");
    if (row->sweep_id) {
        /* A sweep point's hash, and the attempt: "HASH" is attempt 1, "HASH#n" attempt n. */
        cJSON_AddStringToObject(o, "sweep_id", row->sweep_id);
        const char *h = row->config_hash ? row->config_hash : "";
        const char *hash_end = strchr(h, '#');
        cJSON_AddItemToObject(o, "point",
                              cJSON_CreateString(hash_end ? strndup_tmp(h, hash_end) : h));
        cJSON_AddNumberToObject(o, "attempt", hash_end ? atoi(hash_end + 1) : 1);
    } else {
        cJSON_AddNullToObject(o, "sweep_id");
    }
    cJSON_AddNumberToObject(o, "created", row->created);
    cJSON_AddNumberToObject(o, "started", row->started);
    cJSON_AddNumberToObject(o, "finished", row->finished);
    cJSON_AddNumberToObject(o, "heartbeat", row->heartbeat);
    int pos = 0;
    char reason[256] = "";
    if (!strcmp(row->state, run_state_name(RUN_QUEUED)) && row->runner)
        snprintf(reason, sizeof reason, "waiting for a worker (vvd run --report-to)");
    else if (!strcmp(row->state, run_state_name(RUN_QUEUED)))
        jobs_queue_info(r->cfg->jobs, row->id, &pos, reason, sizeof reason);
    cJSON_AddNumberToObject(o, "queue_position", pos);
    cJSON_AddStringToObject(o, "waiting_reason", reason);
    cJSON_AddItemToObject(o, "spec", parse_or_null(row->spec));
    api_run_annotations(o, row);
    cJSON *result = parse_or_null(row->result);
    cJSON_AddItemToObject(o, "result", result);
    cJSON_AddItemToObject(o, "error", parse_or_null(row->error));
    /* The summary: the result's numbers, or the latest metric while running. */
    cJSON *src = result, *last = NULL;
    if (cJSON_IsNull(result)) {
        char *m = jobs_last_metric(r->cfg->jobs, row->id);
        last = m ? cJSON_Parse(m) : NULL;
        free(m);
        src = last;
    }
    cJSON *sum = cJSON_AddObjectToObject(o, "summary");
    static const char *keys[] = {"lambda",    "objective",  "gap",        "rel_gap",
                                 "active",    "mse",        "group_norm", "iterations",
                                 "seconds",   "step",       "train_acc",  "test_acc",
                                 "train_loss", "test_loss", "params",     "macs",
                                 "loss",      "epoch"};
    for (unsigned i = 0; src && i < sizeof keys / sizeof *keys; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(src, keys[i]);
        if (cJSON_IsNumber(v))
            cJSON_AddNumberToObject(sum, keys[i], v->valuedouble);
    }
    cJSON_Delete(last);
    cJSON *arts = cJSON_AddArrayToObject(o, "artifacts");
    cJSON *ctx[2] = {arts, (cJSON *)row->id};
    store_artifacts_list(r->cfg->db, row->id, add_artifact_json, ctx);
    return o;
}

static enum MHD_Result reply_run(req *r, unsigned status, const char *id)
{
    run_row row = {0};
    int rc = store_run_get(r->cfg->db, id, &row);
    if (rc < 0)
        return reply_problem(r, rc, "");
    cJSON *o = api_run_json(r, &row);
    run_row_free(&row);
    return reply_json(r, status, o);
}

/* ---- Specs ---------------------------------------------------------------------- */

/* Parses a spec given as JSON and confines every path it names to the data
 * root (kinds.h); a model reference is then checked (a resident model's
 * existence, a spec file's contents), and a compress spec's layers and
 * weights against that model (model_check.h).  field gets the JSON pointer
 * of a problem. */
int api_prepare_spec(req *r, const cJSON *json, job_spec *s, char *field, size_t fsz)
{
    int rc = spec_parse_job(json, s, field, fsz);
    if (rc == 0)
        rc = kinds_confine(s, r->cfg->data_root, field, fsz);
    if (rc == 0 && s->kind == JOB_COMPRESS) {
        /* A resident model's layers first: a refused run must not queue the
         * default model's training. */
        compress_spec *c = &s->compress;
        if (c->model.resident)
            rc = model_check_compress(c, field, fsz);
        if (rc == 0)
            rc = api_check_model_files(r, &c->model, "/model", field, fsz);
        if (rc == 0 && !c->model.resident)
            rc = model_check_compress(c, field, fsz);
    }
    if (rc == 0 && s->kind == JOB_TRAIN && s->train.model.spec_path)
        rc = model_ref_resolve(&s->train.model, field, fsz);
    return rc;
}

cJSON *api_parse_body(req *r, int *err, char *field, size_t fsz)
{
    if (fsz)
        field[0] = 0;
    *err = VV_EJSON;
    if (!r->body || !r->body_len) {
        vv_fail(VV_EJSON, "the request body must be JSON");
        return NULL;
    }
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(r->body, r->body_len, &end, 0);
    if (!json) {
        vv_fail(VV_EJSON, "malformed JSON near byte %zu",
                end && end >= r->body ? (size_t)(end - r->body) : 0);
        return NULL;
    }
    for (const char *p = end; p < r->body + r->body_len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(json);
            vv_fail(VV_EJSON, "unexpected text after the JSON value at byte %zu",
                    (size_t)(p - r->body));
            return NULL;
        }
    int rc = json_check_tree(json, field, fsz);
    if (rc < 0) {
        cJSON_Delete(json);
        *err = rc;
        return NULL;
    }
    return json;
}

/* ?external=1: a run for a worker (`vvd run --report-to`), whose paths are
 * the worker's: the spec is checked, not its files. */
static int external_query(req *r, int *external)
{
    const char *e = query(r, "external");
    *external = e && (!strcmp(e, "1") || !strcmp(e, "true"));
    if (e && !*external && strcmp(e, "0") && strcmp(e, "false"))
        return vv_fail(VV_EINVAL, "external: 1 or 0 (true or false)");
    return 0;
}

static enum MHD_Result post_run(req *r)
{
    job_spec s;
    char field[256] = "";
    int rc, external = 0;
    if (external_query(r, &external) < 0)
        return reply_problem(r, VV_EINVAL, "/query/external");
    cJSON *json = api_parse_body(r, &rc, field, sizeof field);
    if (!json)
        return reply_problem(r, rc, field);
    if (external) {
        rc = spec_parse_job_remote(json, &s, field, sizeof field);
        char *text = rc == 0 ? cJSON_PrintUnformatted(json) : NULL;
        cJSON_Delete(json);
        char id[32];
        if (rc == 0)
            rc = text ? jobs_submit_external(r->cfg->jobs, spec_kind_name(s.kind), text, NULL,
                                             NULL, id)
                      : vv_fail(VV_ENOMEM, "out of memory");
        spec_free_job(&s);
        free(text);
        if (rc < 0)
            return reply_problem(r, rc, field);
        VV_INFO("http", id, "waits for a worker");
        return reply_run(r, 201, id);
    }
    rc = api_prepare_spec(r, json, &s, field, sizeof field);
    char *text = rc == 0 ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    char id[32];
    if (rc == 0)
        rc = jobs_submit(r->cfg->jobs, &s, text, NULL, NULL, id);
    spec_free_job(&s);
    free(text);
    if (rc < 0)
        return reply_problem(r, rc, field);
    VV_INFO("http", id, "queued");
    return reply_run(r, 201, id);
}

/* ---- Runs: list, metrics, artifacts ----------------------------------------------- */

typedef struct tag_args {
    const char *v[RUN_FILTER_MAX_TAGS];
    int n, over;
} tag_args;

static enum MHD_Result collect_tag(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    tag_args *t = cls;
    (void)kind;
    if (strcmp(key, "tag") || !value || !value[0])
        return MHD_YES;
    if (t->n == RUN_FILTER_MAX_TAGS)
        t->over = 1;
    else
        t->v[t->n++] = value;
    return MHD_YES;
}

static enum MHD_Result list_runs(req *r)
{
    const char *state_q = query(r, "state"), *kind = query(r, "kind"), *sweep = query(r, "sweep");
    const char *tok = query(r, "page_token"), *q = query(r, "q"), *state = NULL;
    if (state_q && state_q[0]) {
        /* Any case: ?state=finished is FINISHED. */
        for (int i = 0; i < RUN_STATE_COUNT; i++)
            if (!strcasecmp(state_q, run_state_name((run_state)i)))
                state = run_state_name((run_state)i);
        if (!state) {
            vv_fail(VV_EINVAL, "state: one of QUEUED, RUNNING, FINISHED, STOPPED, FAILED, "
                               "CRASHED (any case)");
            return reply_problem(r, VV_EINVAL, "/query/state");
        }
    }
    tag_args tags = {0};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_tag, &tags);
    if (tags.over) {
        vv_fail(VV_EINVAL, "tag: at most %d tags", RUN_FILTER_MAX_TAGS);
        return reply_problem(r, VV_EINVAL, "/query/tag");
    }
    int64_t page = 50;
    if (query_int(r, "page_size", 1, 1000, 50, &page) < 0)
        return reply_problem(r, VV_EINVAL, "/query/page_size");
    run_row *rows = NULL;
    int n = 0;
    char next[64] = "";
    run_filter f = {.state = state,
                    .kind = kind && kind[0] ? kind : NULL,
                    .sweep_id = sweep && sweep[0] ? sweep : NULL,
                    .q = q && q[0] ? q : NULL,
                    .tags = tags.v,
                    .ntags = tags.n};
    int rc = store_runs_find(r->cfg->db, &f, (int)page, tok && tok[0] ? tok : NULL, &rows, &n,
                             next);
    if (rc < 0)
        return reply_problem(r, rc, rc == VV_EINVAL ? "/query/page_token" : "");
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "runs");
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, api_run_json(r, &rows[i]));
        run_row_free(&rows[i]);
    }
    free(rows);
    cJSON_AddStringToObject(o, "next_page_token", next);
    return reply_json(r, 200, o);
}

typedef struct mctx {
    cJSON *arr;
    char *csv;
    size_t len, cap;
    int64_t count, last_step, cut_step;
} mctx;

static int metric_fn(void *ctx, int64_t step, const char *key, double value, double time)
{
    mctx *m = ctx;
    m->count++;
    m->last_step = step;
    if (m->csv) {
        char line[256];
        int n = snprintf(line, sizeof line, "%lld,%s,%.17g,%.6f\n", (long long)step, key, value,
                         time);
        if (m->len + (size_t)n + 1 > m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 65536;
            char *c = realloc(m->csv, cap);
            if (!c)
                return 1;
            m->csv = c;
            m->cap = cap;
        }
        memcpy(m->csv + m->len, line, (size_t)n + 1);
        m->len += (size_t)n;
        return 0;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "step", (double)step);
    cJSON_AddStringToObject(p, "key", key);
    cJSON_AddNumberToObject(p, "value", value);
    cJSON_AddNumberToObject(p, "time", time);
    cJSON_AddItemToArray(m->arr, p);
    return 0;
}

static enum MHD_Result get_metrics(req *r, const char *id)
{
    run_row row = {0};
    int rc = store_run_get(r->cfg->db, id, &row);
    run_row_free(&row);
    if (rc < 0)
        return reply_problem(r, rc, "");
    const char *keys_q = query(r, "keys"), *fmt = query(r, "format");
    /* -1, the default, is "from the first step". */
    int64_t after = -1;
    if (query_int(r, "after_step", -1, EVENT_ID_MAX, -1, &after) < 0)
        return reply_problem(r, VV_EINVAL, "/query/after_step");
    if (fmt && strcmp(fmt, "json") && strcmp(fmt, "csv")) {
        vv_fail(VV_EINVAL, "format: json or csv");
        return reply_problem(r, VV_EINVAL, "/query/format");
    }
    char kbuf[1024];
    const char *keys[32];
    int nk = 0;
    if (keys_q && keys_q[0]) {
        snprintf(kbuf, sizeof kbuf, "%s", keys_q);
        for (char *save = NULL, *k = strtok_r(kbuf, ",", &save); k && nk < 32;
             k = strtok_r(NULL, ",", &save))
            keys[nk++] = k;
    }
    int csv = fmt && !strcmp(fmt, "csv");
    mctx m = {0};
    if (csv) {
        m.csv = malloc(65536);
        if (!m.csv) {
            vv_fail(VV_ENOMEM, "out of memory");
            return reply_problem(r, VV_ENOMEM, "");
        }
        m.cap = 65536;
        m.len = (size_t)snprintf(m.csv, m.cap, "step,key,value,time\n");
    } else {
        m.arr = cJSON_CreateArray();
    }
    rc = store_metrics_get(r->cfg->db, id, keys, nk, after, 0, metric_fn, &m);
    if (rc < 0) {
        cJSON_Delete(m.arr);
        free(m.csv);
        return reply_problem(r, rc, "");
    }
    if (csv) {
        enum MHD_Result ret = reply_text(r, 200, "text/csv", m.csv ? m.csv : "");
        free(m.csv);
        return ret;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "run_id", id);
    cJSON_AddNumberToObject(o, "count", (double)m.count);
    cJSON_AddItemToObject(o, "metrics", m.arr);
    return reply_json(r, 200, o);
}

typedef struct afind {
    const char *name;
    char path[4096];
    int found;
} afind;

static int find_artifact(void *ctx, const char *name, const char *path, int64_t bytes)
{
    afind *a = ctx;
    (void)bytes;
    if (strcmp(a->name, name))
        return 0;
    snprintf(a->path, sizeof a->path, "%s", path);
    a->found = 1;
    return 1;
}

static enum MHD_Result send_file(req *r, const char *path, const char *type)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        vv_fail(VV_ENOTFOUND, "no such file");
        return reply_problem(r, VV_ENOTFOUND, "");
    }
    struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result get_artifact(req *r, const char *id, const char *name)
{
    run_row row = {0};
    int rc = store_run_get(r->cfg->db, id, &row);
    run_row_free(&row);
    if (rc < 0)
        return reply_problem(r, rc, "");
    afind a = {.name = name};
    store_artifacts_list(r->cfg->db, id, find_artifact, &a);
    if (!a.found) {
        vv_fail(VV_ENOTFOUND, "run %s has no artifact '%.200s'", id, name);
        return reply_problem(r, VV_ENOTFOUND, "");
    }
    const char *dot = strrchr(name, '.');
    return send_file(r, a.path, dot && !strcmp(dot, ".json") ? "application/json"
                                                             : "application/octet-stream");
}

/* PUT /v1/runs/{id}/artifacts/NAME: a worker's file of an external run,
 * stored as DATA/runs/{id}/NAME (http.c receives it) and recorded. */
static enum MHD_Result put_artifact(req *r, const char *id, const char *name)
{
    const char *field = "";
    int rc = upload_commit(r, &field);
    if (rc == 0)
        rc = store_artifact_add(r->cfg->db, id, name, r->upload_path, r->upload_bytes);
    if (rc < 0)
        return reply_problem(r, rc, field);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "bytes", (double)r->upload_bytes);
    VV_INFO("http", id, "artifact %s: %lld bytes", name, (long long)r->upload_bytes);
    return reply_json(r, 201, o);
}

/* ---- Blobs, health, metrics, static files ----------------------------------------- */

/* PUT /v1/blobs/NAME: the body is stored as DATA/blobs/NAME (see paths.h);
 * specs name it NAME or blobs/NAME. */
static enum MHD_Result put_blob(req *r)
{
    const char *field = "";
    int rc = upload_commit(r, &field);
    if (rc < 0)
        return reply_problem(r, rc, field);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->url + 10);
    cJSON_AddNumberToObject(o, "bytes", (double)r->upload_bytes);
    VV_INFO("http", NULL, "blob %s: %lld bytes", r->upload_path, (long long)r->upload_bytes);
    return reply_json(r, 201, o);
}

static enum MHD_Result get_health(req *r)
{
    jobs_stats js;
    jobs_get_stats(r->cfg->jobs, &js);
    cJSON *o = cJSON_CreateObject();
    int lost = devices_lost();
    cJSON_AddStringToObject(o, "status", lost ? "device lost" : "ok");
    cJSON_AddStringToObject(o, "version", VV_VERSION);
    cJSON_AddItemToObject(o, "device", devices_describe());
    cJSON_AddStringToObject(o, "blas", vv_blas_corename());
    cJSON_AddNumberToObject(o, "queued", js.queued);
    cJSON_AddNumberToObject(o, "running", js.running);
    int nmodels;
    double model_bytes;
    models_totals(&nmodels, &model_bytes);
    cJSON_AddNumberToObject(o, "models", nmodels);
    cJSON_AddNumberToObject(o, "model_bytes", model_bytes);
    /* A lost device cannot run anything: unhealthy until the restart. */
    return reply_json(r, lost ? 503 : 200, o);
}

static enum MHD_Result get_prometheus(req *r)
{
    jobs_stats js;
    jobs_get_stats(r->cfg->jobs, &js);
    int64_t counts[6] = {0};
    store_count_states(r->cfg->db, counts);
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "# HELP vvd_up Whether vvd is serving.\n# TYPE vvd_up gauge\nvvd_up 1\n"
                     "# HELP vvd_queue_length Runs waiting in the queue.\n"
                     "# TYPE vvd_queue_length gauge\nvvd_queue_length %d\n"
                     "# HELP vvd_runs Runs in the store by state.\n# TYPE vvd_runs gauge\n",
                     js.queued);
    for (int i = 0; i < 6; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "vvd_runs{state=\"%s\"} %lld\n",
                      run_state_name((run_state)i),
                      (long long)counts[i]);
    snprintf(buf + n, sizeof buf - (size_t)n,
             "# HELP vvd_iterations_total Solver iterations since start.\n"
             "# TYPE vvd_iterations_total counter\nvvd_iterations_total %lld\n"
             "# HELP vvd_iterations_per_second Solver iterations per second, last second.\n"
             "# TYPE vvd_iterations_per_second gauge\nvvd_iterations_per_second %.3f\n"
             "# HELP vvd_events_coalesced_total Metric events merged while the store was behind.\n"
             "# TYPE vvd_events_coalesced_total counter\nvvd_events_coalesced_total %lld\n"
             "# HELP vvd_events_bytes Memory held by live events.\n"
             "# TYPE vvd_events_bytes gauge\nvvd_events_bytes %lld\n"
             "# HELP vvd_store_errors_total Failed store transactions (retried).\n"
             "# TYPE vvd_store_errors_total counter\nvvd_store_errors_total %lld\n",
             (long long)js.iterations, js.iterations_per_s, (long long)js.events_coalesced,
             (long long)js.events_bytes, (long long)js.store_errors);
    return reply_text(r, 200, "text/plain; version=0.0.4", buf);
}

static enum MHD_Result get_static(req *r)
{
    if (!r->cfg->web_dir) {
        vv_fail(VV_ENOTFOUND, "no dashboard is served (vvd serve --web-dir DIR)");
        return reply_problem(r, VV_ENOTFOUND, "");
    }
    const char *rel = !strcmp(r->url, "/") ? "index.html" : r->url + 1;
    char path[PATH_MAX];
    if (resolve_in_root(r->cfg->web_dir, rel, 1, path, sizeof path) < 0) {
        vv_fail(VV_ENOTFOUND, "%s: not found", r->url);
        return reply_problem(r, VV_ENOTFOUND, "");
    }
    const char *dot = strrchr(path, '.');
    const char *type = !dot                     ? "application/octet-stream"
                       : !strcmp(dot, ".html")  ? "text/html; charset=utf-8"
                       : !strcmp(dot, ".js")    ? "text/javascript; charset=utf-8"
                       : !strcmp(dot, ".mjs")   ? "text/javascript; charset=utf-8"
                       : !strcmp(dot, ".css")   ? "text/css; charset=utf-8"
                       : !strcmp(dot, ".svg")   ? "image/svg+xml"
                       : !strcmp(dot, ".png")   ? "image/png"
                       : !strcmp(dot, ".json")  ? "application/json"
                                                : "application/octet-stream";
    return send_file(r, path, type);
}

/* ---- Routing --------------------------------------------------------------------- */

static enum MHD_Result not_allowed(req *r, const char *allow)
{
    vv_fail(VV_EMETHOD, "%s %s: allowed methods are %s", r->method, r->url, allow);
    return reply_problem(r, VV_EMETHOD, "");
}

static int is(req *r, const char *m) { return !strcmp(r->method, m); }

/* Splits "/v1/runs/{id}/rest" into id (copied) and rest (pointer); returns 0
 * when the prefix does not match. */
static int take_id(const char *url, const char *prefix, char *id, size_t idsz, const char **rest)
{
    size_t pl = strlen(prefix);
    if (strncmp(url, prefix, pl))
        return 0;
    const char *s = url + pl, *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 0 || n >= idsz)
        return n >= idsz ? -1 : 0;
    memcpy(id, s, n);
    id[n] = 0;
    *rest = e ? e : "";
    return 1;
}

enum MHD_Result api_dispatch(req *r)
{
    const char *u = r->url, *rest;
    char id[64];
    if (!strcmp(u, "/health"))
        return is(r, "GET") ? get_health(r) : not_allowed(r, "GET");
    if (!strcmp(u, "/metrics"))
        return is(r, "GET") ? get_prometheus(r) : not_allowed(r, "GET");
    if (!strcmp(u, "/v1/runs"))
        return is(r, "POST") ? post_run(r) : is(r, "GET") ? list_runs(r) : not_allowed(r, "GET, POST");
    if (!strcmp(u, "/v1/sweeps"))
        return is(r, "POST")  ? api_sweep_post(r)
               : is(r, "GET") ? api_sweeps_list(r)
                              : not_allowed(r, "GET, POST");
    if (!strncmp(u, "/v1/blobs/", 10))
        return is(r, "PUT") ? put_blob(r) : not_allowed(r, "PUT");
    if (!strcmp(u, "/v1/models"))
        return api_models(r, NULL);
    if (!strncmp(u, "/v1/models/", 11) && u[11] && !strchr(u + 11, '/'))
        return api_models(r, u + 11);
    int t = take_id(u, "/v1/runs/", id, sizeof id, &rest);
    if (t > 0) {
        if (!rest[0])
            return is(r, "GET")      ? reply_run(r, 200, id)
                   : is(r, "PATCH")  ? api_patch_run(r, id)
                   : is(r, "DELETE") ? api_delete_run(r, id)
                                     : not_allowed(r, "GET, PATCH, DELETE");
        if (!strcmp(rest, "/stop")) {
            if (!is(r, "POST"))
                return not_allowed(r, "POST");
            int rc = jobs_stop_run(r->cfg->jobs, id);
            return rc < 0 ? reply_problem(r, rc, "") : reply_run(r, 200, id);
        }
        if (!strcmp(rest, "/metrics"))
            return is(r, "GET") ? get_metrics(r, id) : not_allowed(r, "GET");
        if (!strcmp(rest, "/claim"))
            return is(r, "POST") ? api_run_claim(r, id) : not_allowed(r, "POST");
        if (!strcmp(rest, "/finish"))
            return is(r, "POST") ? api_run_finish(r, id) : not_allowed(r, "POST");
        if (!strcmp(rest, "/events")) {
            if (is(r, "POST"))
                return api_run_events_post(r, id);
            if (!is(r, "GET"))
                return not_allowed(r, "GET, POST");
            run_row row = {0};
            int rc = store_run_get(r->cfg->db, id, &row);
            run_row_free(&row);
            if (rc < 0)
                return reply_problem(r, rc, "");
            /* Last-Event-ID (a reconnecting EventSource) wins over ?after=;
             * the cap keeps after + 1 from overflowing in the event hub. */
            int64_t after = 0;
            if (MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID")) {
                if (header_int(r, "Last-Event-ID", 0, EVENT_ID_MAX, 0, &after) < 0)
                    return reply_problem(r, VV_EINVAL, "/header/Last-Event-ID");
            } else if (query_int(r, "after", 0, EVENT_ID_MAX, 0, &after) < 0) {
                return reply_problem(r, VV_EINVAL, "/query/after");
            }
            return reply_events(r, id, after);
        }
        if (!strncmp(rest, "/artifacts/", 11) && rest[11])
            return is(r, "GET")   ? get_artifact(r, id, rest + 11)
                   : is(r, "PUT") ? put_artifact(r, id, rest + 11)
                                  : not_allowed(r, "GET, PUT");
    }
    t = take_id(u, "/v1/sweeps/", id, sizeof id, &rest);
    if (t > 0) {
        if (!rest[0])
            return is(r, "GET") ? api_sweep_get(r, id, 0) : not_allowed(r, "GET");
        if (!strcmp(rest, "/stop"))
            return is(r, "POST") ? api_sweep_get(r, id, 1) : not_allowed(r, "POST");
        if (!strcmp(rest, "/resume"))
            return is(r, "POST") ? api_sweep_resume(r, id) : not_allowed(r, "POST");
        if (!strcmp(rest, "/claim"))
            return is(r, "POST") ? api_sweep_claim(r, id) : not_allowed(r, "POST");
    }
    if (strncmp(u, "/v1/", 4) && strcmp(u, "/v1") && is(r, "GET"))
        return get_static(r);
    vv_fail(VV_ENOTFOUND, "%s %s: no such resource", r->method, u);
    return reply_problem(r, VV_ENOTFOUND, "");
}
