/* external.c - runs that run elsewhere and report here: a worker (`vvd run
 * --report-to URL`, a Slurm array task or a Kubernetes pod) claims a run
 * this daemon holds QUEUED for it, sends its events in numbered batches,
 * uploads its artifacts and ends it.  The events go through the same hub
 * as a local run's (stored by the writer, streamed live), so the history,
 * vvctl and the dashboard see no difference but the run's runner.
 *
 * A worker may send a batch again (it could not tell whether the last one
 * arrived): events numbered at or below the run's ext_seq are skipped.  A
 * restart of this daemon leaves external runs as they are (store_recover);
 * the worker retries until the daemon is back.
 */
#include "http_util.h"

#include "jobs_internal.h"
#include "state.h"
#include "vv/err.h"
#include "vv/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The jobs side ---------------------------------------------------------------- */

int jobs_submit_external(jobs *j, const char *kind, const char *spec_json, const char *sweep_id,
                         const char *config_hash, char *id)
{
    pthread_mutex_lock(&j->mu);
    snprintf(id, 32, "r-%06lld", (long long)j->next_run++);
    pthread_mutex_unlock(&j->mu);
    return store_run_insert_external(j->cfg.db, id, kind, spec_json, sweep_id, config_hash,
                                     jobs_wall());
}

/* Makes an external RUNNING run live in the hub (after a restart too). */
static int ext_live(jobs *j, const run_row *row)
{
    if (!row->runner || strcmp(row->state, run_state_name(RUN_RUNNING)))
        return vv_fail(VV_ESTATE, "run %s is %s%s: it takes no events", row->id, row->state,
                       row->runner ? "" : " and run by this daemon");
    return hub_open(j->hub, row->id, row->last_seq);
}

int jobs_claim(jobs *j, const char *id, const char *where)
{
    int rc = store_run_claim(j->cfg.db, id, where, jobs_wall());
    run_row row = {0};
    if (rc == 0)
        rc = store_run_get(j->cfg.db, id, &row);
    if (rc == 0 && (rc = ext_live(j, &row)) == 0)
        rc = hub_publish_state(j->hub, id, RUN_RUNNING);
    run_row_free(&row);
    if (rc == 0)
        VV_INFO("jobs", id, "claimed by %s", where);
    return rc;
}

/* A worker's metric event as a run_metric: step, time, phase, layer and
 * the metric keys it has. */
static void metric_of(const cJSON *d, run_metric *m)
{
    memset(m, 0, sizeof *m);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "step");
    m->step = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    v = cJSON_GetObjectItemCaseSensitive(d, "time");
    m->time = cJSON_IsNumber(v) ? v->valuedouble : 0;
    for (int k = 0; k < RM_COUNT; k++) {
        v = cJSON_GetObjectItemCaseSensitive(d, run_metric_name((run_metric_key)k));
        if (cJSON_IsNumber(v))
            run_metric_set(m, (run_metric_key)k, v->valuedouble);
    }
    v = cJSON_GetObjectItemCaseSensitive(d, "phase");
    if (cJSON_IsString(v))
        snprintf(m->phase, sizeof m->phase, "%s", v->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(d, "layer");
    if (cJSON_IsString(v))
        snprintf(m->layer, sizeof m->layer, "%s", v->valuestring);
}

/* Checks a batch before anything of it is applied; field gets the pointer. */
static int check_batch(const cJSON *evs, char *field, size_t fsz)
{
    if (!cJSON_IsArray(evs)) {
        snprintf(field, fsz, "/events");
        return vv_fail(cJSON_IsNull(evs) || !evs ? VV_EMISSING : VV_ETYPE,
                       "/events: an array of {seq, type, data} is required");
    }
    int i = 0;
    double prev = 0;
    for (const cJSON *e = evs->child; e; e = e->next, i++) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "seq");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
        snprintf(field, fsz, "/events/%d", i);
        if (!cJSON_IsObject(e))
            return vv_fail(VV_ETYPE, "/events/%d: must be an object", i);
        snprintf(field, fsz, "/events/%d/seq", i);
        if (!cJSON_IsNumber(seq) || seq->valuedouble < 1 || seq->valuedouble > 9007199254740992.0 ||
            seq->valuedouble != (double)(int64_t)seq->valuedouble || seq->valuedouble <= prev)
            return vv_fail(VV_EINVAL, "/events/%d/seq: an integer from 1, increasing", i);
        prev = seq->valuedouble;
        snprintf(field, fsz, "/events/%d/type", i);
        if (!cJSON_IsString(type) ||
            (strcmp(type->valuestring, "metric") && strcmp(type->valuestring, "log")))
            return vv_fail(VV_EINVAL, "/events/%d/type: metric or log", i);
        snprintf(field, fsz, "/events/%d/data", i);
        if (!cJSON_IsObject(data))
            return vv_fail(VV_ETYPE, "/events/%d/data: must be an object", i);
    }
    field[0] = 0;
    return 0;
}

int jobs_ingest(jobs *j, const char *id, const cJSON *evs, int *applied, int64_t *ext_seq,
                int *stop, char *field, size_t fsz)
{
    *applied = 0;
    *stop = 0;
    int rc = check_batch(evs, field, fsz);
    run_row row = {0};
    if (rc == 0)
        rc = store_run_get(j->cfg.db, id, &row);
    if (rc == 0)
        rc = ext_live(j, &row);
    int64_t seq = row.ext_seq;
    for (const cJSON *e = rc == 0 ? evs->child : NULL; e && rc == 0; e = e->next) {
        int64_t s = (int64_t)cJSON_GetObjectItemCaseSensitive(e, "seq")->valuedouble;
        if (s <= seq)
            continue; /* sent again: applied already */
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
        if (!strcmp(cJSON_GetObjectItemCaseSensitive(e, "type")->valuestring, "metric")) {
            run_metric m;
            metric_of(data, &m);
            rc = hub_publish_metric(j->hub, id, &m);
        } else {
            char *text = cJSON_PrintUnformatted(data);
            rc = text ? hub_publish_log(j->hub, id, text) : vv_fail(VV_ENOMEM, "out of memory");
        }
        if (rc == 0) {
            seq = s;
            (*applied)++;
        }
    }
    if (rc == 0 || *applied)
        store_run_ext_seq(j->cfg.db, id, seq, jobs_wall());
    *ext_seq = seq;
    *stop = jobs_ext_stop_requested(j, id, 0);
    run_row_free(&row);
    return rc;
}

int jobs_finish_external(jobs *j, const char *id, run_state state, stop_reason why, char *result,
                         char *error)
{
    run_row row = {0};
    int rc = store_run_get(j->cfg.db, id, &row);
    if (rc == 0 && row.runner && run_state_final((run_state)run_state_parse(row.state))) {
        run_row_free(&row); /* ended already: the worker sent its end again */
        free(result);
        free(error);
        return 0;
    }
    if (rc == 0)
        rc = ext_live(j, &row);
    run_row_free(&row);
    if (rc < 0) {
        free(result);
        free(error);
        return rc;
    }
    rc = hub_finish(j->hub, id, state, why, result, error);
    if (rc == 0 && !hub_wait_stored(j->hub, id, 30))
        rc = vv_fail(VV_EIO, "run %s: its final state is not stored yet; send it again", id);
    jobs_ext_stop_requested(j, id, 1);
    if (rc == 0)
        VV_INFO("jobs", id, "%s (external)", run_state_name(state));
    return rc;
}

/* ---- The routes ------------------------------------------------------------------- */

/* where: a short description of the worker (host, pid, scheduler job). */
static int get_where(const cJSON *b, char *where, size_t sz, char *field, size_t fsz)
{
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(b, "where");
    if (w && (!cJSON_IsString(w) || !w->valuestring[0] || strlen(w->valuestring) > 200)) {
        snprintf(field, fsz, "/where");
        return vv_fail(VV_EINVAL, "/where: a string of 1 to 200 bytes");
    }
    snprintf(where, sz, "%s", w ? w->valuestring : "a worker");
    return 0;
}

/* Only the members named in allowed ("a, b"): 400 naming another. */
static int only(const cJSON *b, const char *allowed, char *field, size_t fsz)
{
    if (!cJSON_IsObject(b)) {
        field[0] = 0;
        return vv_fail(VV_ETYPE, "the body must be a JSON object");
    }
    for (const cJSON *m = b->child; m; m = m->next) {
        char pat[72];
        snprintf(pat, sizeof pat, "%.64s", m->string);
        int ok = 0;
        for (const char *p = allowed; (p = strstr(p, pat)) != NULL; p++)
            ok |= (p == allowed || p[-1] == ' ') && (p[strlen(pat)] == ',' || !p[strlen(pat)]);
        if (!ok) {
            snprintf(field, fsz, "/%.64s", m->string);
            return vv_fail(VV_EUNKNOWN, "/%.64s: unknown field (allowed: %s)", m->string, allowed);
        }
    }
    return 0;
}

static enum MHD_Result reply_run_id(req *r, const char *id)
{
    run_row row = {0};
    int rc = store_run_get(r->cfg->db, id, &row);
    if (rc < 0)
        return reply_problem(r, rc, "");
    cJSON *o = api_run_json(r, &row);
    run_row_free(&row);
    return reply_json(r, 200, o);
}

enum MHD_Result api_run_claim(req *r, const char *id)
{
    char field[128] = "", where[256];
    int rc;
    cJSON *b = api_parse_body(r, &rc, field, sizeof field);
    if (!b)
        return reply_problem(r, rc, field);
    rc = only(b, "where", field, sizeof field);
    if (rc == 0)
        rc = get_where(b, where, sizeof where, field, sizeof field);
    cJSON_Delete(b);
    if (rc == 0)
        rc = jobs_claim(r->cfg->jobs, id, where);
    return rc < 0 ? reply_problem(r, rc, field) : reply_run_id(r, id);
}

enum MHD_Result api_run_events_post(req *r, const char *id)
{
    char field[128] = "";
    int rc;
    cJSON *b = api_parse_body(r, &rc, field, sizeof field);
    if (!b)
        return reply_problem(r, rc, field);
    int applied = 0, stop = 0;
    int64_t seq = 0;
    rc = only(b, "events", field, sizeof field);
    if (rc == 0)
        rc = jobs_ingest(r->cfg->jobs, id, cJSON_GetObjectItemCaseSensitive(b, "events"), &applied,
                         &seq, &stop, field, sizeof field);
    cJSON_Delete(b);
    if (rc < 0)
        return reply_problem(r, rc, field);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "applied", applied);
    cJSON_AddNumberToObject(o, "ext_seq", (double)seq);
    cJSON_AddBoolToObject(o, "stop", stop);
    return reply_json(r, 200, o);
}

enum MHD_Result api_run_finish(req *r, const char *id)
{
    char field[128] = "";
    int rc;
    cJSON *b = api_parse_body(r, &rc, field, sizeof field);
    if (!b)
        return reply_problem(r, rc, field);
    rc = only(b, "state, stop_reason, result, error", field, sizeof field);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(b, "state");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(b, "stop_reason");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(b, "result");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(b, "error");
    int state = cJSON_IsString(st) ? run_state_parse(st->valuestring) : -1;
    int reason = STOP_NONE;
    if (rc == 0 && (state < 0 || !run_state_final((run_state)state) || state == RUN_CRASHED)) {
        snprintf(field, sizeof field, "/state");
        rc = vv_fail(VV_EINVAL, "/state: FINISHED, STOPPED or FAILED");
    }
    if (rc == 0 && why && !cJSON_IsNull(why) &&
        (!cJSON_IsString(why) || (reason = stop_reason_parse(why->valuestring)) < 0)) {
        snprintf(field, sizeof field, "/stop_reason");
        rc = vv_fail(VV_EINVAL, "/stop_reason: converged, max_iter, max_seconds, user, ...");
    }
    if (rc == 0 && res && !cJSON_IsNull(res) && !cJSON_IsObject(res)) {
        snprintf(field, sizeof field, "/result");
        rc = vv_fail(VV_ETYPE, "/result: an object or null");
    }
    if (rc == 0 && err && !cJSON_IsNull(err) && !cJSON_IsObject(err)) {
        snprintf(field, sizeof field, "/error");
        rc = vv_fail(VV_ETYPE, "/error: a problem object or null");
    }
    char *rtext = rc == 0 && cJSON_IsObject(res) ? cJSON_PrintUnformatted(res) : NULL;
    char *etext = rc == 0 && cJSON_IsObject(err) ? cJSON_PrintUnformatted(err) : NULL;
    cJSON_Delete(b);
    if (rc == 0)
        rc = jobs_finish_external(r->cfg->jobs, id, (run_state)state, (stop_reason)reason, rtext,
                                  etext);
    else {
        free(rtext);
        free(etext);
    }
    return rc < 0 ? reply_problem(r, rc, field) : reply_run_id(r, id);
}

/* POST /v1/sweeps/{id}/claim {"index": I, "where": W}: point I of the sweep
 * (points in the order the sweep made them, from 0: a Slurm array task's
 * SLURM_ARRAY_TASK_ID, a Kubernetes Indexed Job's JOB_COMPLETION_INDEX).
 * Its latest attempt is claimed when it waits for a worker; a point that
 * ended answers its run as it is (the worker has nothing to do). */
enum MHD_Result api_sweep_claim(req *r, const char *sid)
{
    char field[128] = "", where[256];
    int rc;
    cJSON *b = api_parse_body(r, &rc, field, sizeof field);
    if (!b)
        return reply_problem(r, rc, field);
    rc = only(b, "index, where", field, sizeof field);
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(b, "index");
    if (rc == 0 && (!cJSON_IsNumber(ix) || ix->valuedouble < 0 || ix->valuedouble > 1e6 ||
                    ix->valuedouble != (double)(int)ix->valuedouble)) {
        snprintf(field, sizeof field, "/index");
        rc = vv_fail(ix ? VV_EINVAL : VV_EMISSING, "/index: the point's number, from 0");
    }
    if (rc == 0)
        rc = get_where(b, where, sizeof where, field, sizeof field);
    int index = rc == 0 ? ix->valueint : 0;
    cJSON_Delete(b);
    sweep_row sw = {0};
    if (rc == 0)
        rc = store_sweep_get(r->cfg->db, sid, &sw);
    sweep_row_free(&sw);
    if (rc < 0)
        return reply_problem(r, rc, field);
    /* Every run of the sweep, oldest first: points in the order they were made. */
    run_row *all = NULL;
    int n = 0, cap = 0;
    char token[64] = "", next[64];
    run_filter f = {.sweep_id = sid};
    do {
        run_row *rows = NULL;
        int k = 0;
        rc = store_runs_find(r->cfg->db, &f, 1000, token[0] ? token : NULL, &rows, &k, next);
        if (rc == 0 && n + k > cap) {
            cap = 2 * (n + k);
            run_row *g = realloc(all, (size_t)cap * sizeof *g);
            if (!g)
                rc = vv_fail(VV_ENOMEM, "out of memory");
            else
                all = g;
        }
        for (int i = 0; i < k; i++) {
            if (rc == 0)
                all[n++] = rows[i];
            else
                run_row_free(&rows[i]);
        }
        free(rows);
        snprintf(token, sizeof token, "%s", next);
    } while (rc == 0 && token[0]);
    /* Newest first from the store: walk backwards. */
    const char *point = NULL, *latest = NULL;
    int seen = -1, latest_attempt = 0;
    for (int i = n - 1; rc == 0 && i >= 0; i--) {
        const char *h = all[i].config_hash ? all[i].config_hash : "";
        size_t pl = strcspn(h, "#");
        int first = 1;
        for (int q = n - 1; q > i && first; q--)
            first = strncmp(all[q].config_hash ? all[q].config_hash : "", h, pl) ||
                    ((all[q].config_hash ? all[q].config_hash : "")[pl] != 0 &&
                     (all[q].config_hash ? all[q].config_hash : "")[pl] != '#');
        if (first && ++seen == index)
            point = h;
    }
    if (rc == 0 && !point) {
        snprintf(field, sizeof field, "/index");
        rc = vv_fail(VV_EINVAL, "/index: sweep %s has %d points (0 to %d)", sid, seen + 1, seen);
    }
    size_t pl = point ? strcspn(point, "#") : 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *h = all[i].config_hash ? all[i].config_hash : "";
        if (strncmp(h, point, pl) || (h[pl] != 0 && h[pl] != '#'))
            continue;
        int attempt = h[pl] == '#' ? atoi(h + pl + 1) : 1;
        if (attempt > latest_attempt) {
            latest_attempt = attempt;
            latest = all[i].id;
        }
    }
    char id[32] = "";
    if (latest)
        snprintf(id, sizeof id, "%s", latest);
    for (int i = 0; i < n; i++)
        run_row_free(&all[i]);
    free(all);
    if (rc < 0)
        return reply_problem(r, rc, field);
    run_row row = {0};
    rc = store_run_get(r->cfg->db, id, &row);
    int queued = rc == 0 && row.runner && !strcmp(row.state, run_state_name(RUN_QUEUED));
    if (rc == 0 && !row.runner)
        rc = vv_fail(VV_ESTATE,
                     "sweep %s runs on this daemon, not on workers (create it with "
                     "\"external\": true)",
                     sid);
    run_row_free(&row);
    if (rc == 0 && queued)
        rc = jobs_claim(r->cfg->jobs, id, where);
    return rc < 0 ? reply_problem(r, rc, "") : reply_run_id(r, id);
}
