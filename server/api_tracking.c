/* api_tracking.c - what users do with their history: name, tag and annotate
 * runs (PATCH /v1/runs/{id}), delete them (DELETE /v1/runs/{id}), list
 * sweeps (GET /v1/sweeps) and describe a sweep's grid and deleted points. */
#include "http_util.h"

#include "paths.h"
#include "state.h"
#include "vv/err.h"
#include "vv/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { NAME_MAX_BYTES = 200, TAG_MAX_BYTES = 64, TAGS_MAX = 32, NOTES_MAX_BYTES = 65536 };

/* PATCH reads the tags, changes them and writes them back: one at a time. */
static pthread_mutex_t annotate_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- Run objects: name, tags, notes ------------------------------------------------ */

void api_run_annotations(cJSON *o, const run_row *row)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
    const cJSON *sn = cJSON_GetObjectItemCaseSensitive(spec, "name");
    if (row->name)
        cJSON_AddStringToObject(o, "name", row->name);
    else if (cJSON_IsString(sn))
        cJSON_AddStringToObject(o, "name", sn->valuestring);
    else
        cJSON_AddNullToObject(o, "name");
    cJSON *tags = row->tags ? cJSON_Parse(row->tags) : NULL;
    cJSON_AddItemToObject(o, "tags", cJSON_IsArray(tags) ? tags : cJSON_CreateArray());
    if (tags && !cJSON_IsArray(tags))
        cJSON_Delete(tags);
    cJSON_AddStringToObject(o, "notes", row->notes ? row->notes : "");
    /* Where it runs: null for this daemon; "external" while it waits for a
     * worker, then the worker's own description. */
    if (row->runner)
        cJSON_AddStringToObject(o, "runner", row->runner);
    else
        cJSON_AddNullToObject(o, "runner");
}

/* ---- PATCH /v1/runs/{id} ---------------------------------------------------------- */

static int tag_ok(const char *t)
{
    size_t n = strlen(t);
    if (n < 1 || n > TAG_MAX_BYTES)
        return 0;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_.:/=+-", *p)))
            return 0;
    return 1;
}

/* A set of tags: sorted, unique strings. */
typedef struct tagset {
    char *v[TAGS_MAX * 3 + 1];
    int n;
} tagset;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void tags_free(tagset *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->v[i]);
    t->n = 0;
}

static int tags_has(const tagset *t, const char *s)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->v[i], s))
            return i;
    return -1;
}

static int tags_add(tagset *t, const char *s)
{
    if (tags_has(t, s) >= 0)
        return 0;
    if (t->n == (int)(sizeof t->v / sizeof *t->v) - 1)
        return vv_fail(VV_EINVAL, "too many tags");
    if (!(t->v[t->n] = strdup(s)))
        return vv_fail(VV_ENOMEM, "out of memory");
    t->n++;
    return 0;
}

static void tags_remove(tagset *t, const char *s)
{
    int i = tags_has(t, s);
    if (i < 0)
        return;
    free(t->v[i]);
    t->v[i] = t->v[--t->n];
}

/* Checks the array of tags at member m (its pointer in ptr). */
static int check_tags(const cJSON *m, const char *ptr, char *field, size_t fsz)
{
    snprintf(field, fsz, "%s", ptr);
    if (!cJSON_IsArray(m))
        return vv_fail(VV_ETYPE, "%s: must be an array of strings", ptr);
    if (cJSON_GetArraySize(m) > TAGS_MAX)
        return vv_fail(VV_EINVAL, "%s: at most %d tags", ptr, TAGS_MAX);
    int i = 0;
    for (const cJSON *t = m->child; t; t = t->next, i++) {
        snprintf(field, fsz, "%s/%d", ptr, i);
        if (!cJSON_IsString(t))
            return vv_fail(VV_ETYPE, "%s/%d: must be a string", ptr, i);
        if (!tag_ok(t->valuestring))
            return vv_fail(VV_EINVAL,
                           "%s/%d: a tag is 1 to %d characters of letters, digits and _.:/=+-", ptr,
                           i, TAG_MAX_BYTES);
    }
    field[0] = 0;
    return 0;
}

/* Checks a PATCH body; on success the members are known and typed. */
static int check_patch(const cJSON *b, char *field, size_t fsz)
{
    if (!cJSON_IsObject(b)) {
        snprintf(field, fsz, "%s", "");
        return vv_fail(VV_ETYPE, "the body must be a JSON object");
    }
    for (const cJSON *m = b->child; m; m = m->next) {
        char ptr[96];
        snprintf(ptr, sizeof ptr, "/%.80s", m->string);
        int rc = 0;
        if (!strcmp(m->string, "name")) {
            if (!cJSON_IsNull(m) && !cJSON_IsString(m))
                rc = vv_fail(VV_ETYPE, "/name: must be a string or null");
            else if (cJSON_IsString(m) &&
                     (!m->valuestring[0] || strlen(m->valuestring) > NAME_MAX_BYTES))
                rc = vv_fail(VV_EINVAL, "/name: 1 to %d bytes (null clears it)", NAME_MAX_BYTES);
        } else if (!strcmp(m->string, "notes")) {
            if (!cJSON_IsString(m))
                rc = vv_fail(VV_ETYPE, "/notes: must be a string");
            else if (strlen(m->valuestring) > NOTES_MAX_BYTES)
                rc = vv_fail(VV_ETOOLARGE, "/notes: at most %d bytes", NOTES_MAX_BYTES);
        } else if (!strcmp(m->string, "tags") || !strcmp(m->string, "add_tags") ||
                   !strcmp(m->string, "remove_tags")) {
            if ((rc = check_tags(m, ptr, field, fsz)) < 0)
                return rc;
        } else {
            rc = vv_fail(VV_EUNKNOWN,
                         "%s: unknown field (allowed: name, tags, add_tags, remove_tags, notes)",
                         ptr);
        }
        if (rc < 0) {
            snprintf(field, fsz, "%s", ptr);
            return rc;
        }
    }
    return 0;
}

/* The new tags (JSON text) from the stored ones and the body. */
static char *new_tags(const char *stored, const cJSON *b, int *err)
{
    tagset t = {0};
    *err = 0;
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(b, "tags");
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(b, "add_tags");
    const cJSON *rm = cJSON_GetObjectItemCaseSensitive(b, "remove_tags");
    cJSON *old = set ? NULL : cJSON_Parse(stored ? stored : "[]");
    const cJSON *srcs[2] = {set ? set : old, add};
    for (int s = 0; s < 2 && !*err; s++)
        for (const cJSON *x = srcs[s] ? srcs[s]->child : NULL; x && !*err; x = x->next)
            if (cJSON_IsString(x))
                *err = tags_add(&t, x->valuestring);
    cJSON_Delete(old);
    for (const cJSON *x = rm ? rm->child : NULL; x; x = x->next)
        tags_remove(&t, x->valuestring);
    if (!*err && t.n > TAGS_MAX)
        *err =
            vv_fail(VV_EINVAL, "a run carries at most %d tags (this would be %d)", TAGS_MAX, t.n);
    char *text = NULL;
    if (!*err) {
        qsort(t.v, (size_t)t.n, sizeof *t.v, cmp_str);
        cJSON *arr = cJSON_CreateStringArray((const char *const *)t.v, t.n);
        text = arr ? cJSON_PrintUnformatted(arr) : NULL;
        cJSON_Delete(arr);
        if (!text)
            *err = vv_fail(VV_ENOMEM, "out of memory");
    }
    tags_free(&t);
    return text;
}

enum MHD_Result api_patch_run(req *r, const char *id)
{
    char field[128] = "";
    int rc;
    cJSON *b = api_parse_body(r, &rc, field, sizeof field);
    if (!b)
        return reply_problem(r, rc, field);
    if ((rc = check_patch(b, field, sizeof field)) < 0) {
        cJSON_Delete(b);
        return reply_problem(r, rc, field);
    }
    pthread_mutex_lock(&annotate_lock);
    run_row row = {0};
    rc = store_run_get(r->cfg->db, id, &row);
    char *tags = NULL;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
    const cJSON *notes = cJSON_GetObjectItemCaseSensitive(b, "notes");
    if (rc == 0 && (cJSON_HasObjectItem(b, "tags") || cJSON_HasObjectItem(b, "add_tags") ||
                    cJSON_HasObjectItem(b, "remove_tags"))) {
        tags = new_tags(row.tags, b, &rc);
        if (rc < 0)
            snprintf(field, sizeof field, "/add_tags");
    }
    if (rc == 0)
        rc = store_run_annotate(r->cfg->db, id, name != NULL,
                                cJSON_IsString(name) ? name->valuestring : NULL, tags,
                                cJSON_IsString(notes) ? notes->valuestring : NULL);
    pthread_mutex_unlock(&annotate_lock);
    run_row_free(&row);
    free(tags);
    cJSON_Delete(b);
    if (rc < 0)
        return reply_problem(r, rc, field);
    VV_INFO("http", id, "annotated");
    run_row now = {0};
    if ((rc = store_run_get(r->cfg->db, id, &now)) < 0)
        return reply_problem(r, rc, "");
    cJSON *o = api_run_json(r, &now);
    run_row_free(&now);
    return reply_json(r, 200, o);
}

/* ---- DELETE /v1/runs/{id} --------------------------------------------------------- */

enum MHD_Result api_delete_run(req *r, const char *id)
{
    run_row was = {0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int rc = store_run_delete(r->cfg->db, id, (double)ts.tv_sec + ts.tv_nsec * 1e-9, &was);
    if (rc < 0)
        return reply_problem(r, rc, "");
    /* The record is gone first: a failure below leaves files, never a run
     * whose files are half removed. */
    int nfiles = 0;
    rc = data_remove_run_dir(r->cfg->data_root, was.id, &nfiles);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", was.id);
    cJSON_AddBoolToObject(o, "deleted", 1);
    if (was.sweep_id)
        cJSON_AddStringToObject(o, "sweep_id", was.sweep_id);
    else
        cJSON_AddNullToObject(o, "sweep_id");
    cJSON_AddNumberToObject(o, "files_removed", nfiles);
    if (rc < 0) {
        cJSON_AddStringToObject(o, "warning", vv_err_detail());
        VV_WARN("http", was.id, "deleted; its folder was not fully removed: %s", vv_err_detail());
    } else {
        VV_INFO("http", was.id, "deleted (%d files)", nfiles);
    }
    run_row_free(&was);
    return reply_json(r, 200, o);
}

/* ---- Sweeps: summaries, the list -------------------------------------------------- */

typedef struct pt {
    char *point;
    int attempt;
    int state;
} pt;

typedef struct pts {
    pt *v;
    int n, cap, err;
} pts;

static int collect_point(void *ctx, const char *hash, const char *state)
{
    pts *p = ctx;
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        pt *v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v)
            return p->err = vv_fail(VV_ENOMEM, "out of memory");
        p->v = v;
        p->cap = cap;
    }
    const char *h = strchr(hash, '#');
    size_t len = h ? (size_t)(h - hash) : strlen(hash);
    char *s = malloc(len + 1);
    if (!s)
        return p->err = vv_fail(VV_ENOMEM, "out of memory");
    memcpy(s, hash, len);
    s[len] = 0;
    p->v[p->n++] = (pt){s, h ? atoi(h + 1) : 1, run_state_parse(state)};
    return 0;
}

static int cmp_pt(const void *a, const void *b)
{
    const pt *x = a, *y = b;
    int c = strcmp(x->point, y->point);
    return c ? c : y->attempt - x->attempt;
}

static int count_deleted(void *ctx, const char *run_id, const char *hash, const char *state,
                         const char *spec, const char *result, double deleted)
{
    (void)run_id, (void)hash, (void)state, (void)spec, (void)result, (void)deleted;
    (*(int *)ctx)++;
    return 0;
}

int api_sweep_describe(req *r, const sweep_row *sw, cJSON *o, int with_counts)
{
    cJSON *request = cJSON_Parse(sw->spec);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(request, "name");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(request, "base");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(base, "kind");
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(request, "grid");
    if (cJSON_IsString(name))
        cJSON_AddStringToObject(o, "name", name->valuestring);
    else
        cJSON_AddNullToObject(o, "name");
    cJSON_AddStringToObject(o, "kind", cJSON_IsString(kind) ? kind->valuestring : "lasso");
    cJSON_AddItemToObject(o, "grid", grid ? cJSON_Duplicate(grid, 1) : cJSON_CreateObject());
    cJSON_Delete(request);
    if (!with_counts)
        return 0;
    pts p = {0};
    int rc = store_sweep_points(r->cfg->db, sw->id, collect_point, &p);
    if (rc == 0 && p.err)
        rc = p.err;
    int counts[RUN_STATE_COUNT] = {0}, points = 0, deleted = 0;
    if (rc == 0) {
        qsort(p.v, (size_t)p.n, sizeof *p.v, cmp_pt);
        for (int i = 0; i < p.n; i++)
            if (i == 0 || strcmp(p.v[i - 1].point, p.v[i].point)) {
                points++;
                if (p.v[i].state >= 0)
                    counts[p.v[i].state]++;
            }
        rc = store_sweep_deleted(r->cfg->db, sw->id, count_deleted, &deleted);
    }
    for (int i = 0; i < p.n; i++)
        free(p.v[i].point);
    free(p.v);
    if (rc < 0)
        return rc;
    cJSON_AddNumberToObject(o, "points", points);
    cJSON *c = cJSON_AddObjectToObject(o, "counts");
    for (int i = 0; i < RUN_STATE_COUNT; i++)
        cJSON_AddNumberToObject(c, run_state_name((run_state)i), counts[i]);
    cJSON_AddNumberToObject(o, "deleted", deleted);
    return 0;
}

static int add_deleted(void *ctx, const char *run_id, const char *hash, const char *state,
                       const char *spec, const char *result, double deleted)
{
    cJSON *e = cJSON_CreateObject();
    const char *h = strchr(hash, '#');
    char point[64];
    snprintf(point, sizeof point, "%.*s", h ? (int)(h - hash) : (int)strlen(hash), hash);
    cJSON_AddStringToObject(e, "id", run_id);
    cJSON_AddStringToObject(e, "point", point);
    cJSON_AddNumberToObject(e, "attempt", h ? atoi(h + 1) : 1);
    cJSON_AddStringToObject(e, "state", state);
    cJSON_AddNumberToObject(e, "deleted", deleted);
    cJSON *sp = cJSON_Parse(spec), *res = result ? cJSON_Parse(result) : NULL;
    cJSON_AddItemToObject(e, "spec", sp ? sp : cJSON_CreateNull());
    cJSON *sum = cJSON_AddObjectToObject(e, "summary");
    static const char *const keys[] = {"lambda", "objective", "rel_gap", "active",
                                       "mse",    "test_acc",  "params"};
    for (unsigned i = 0; res && i < sizeof keys / sizeof *keys; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, keys[i]);
        if (cJSON_IsNumber(v))
            cJSON_AddNumberToObject(sum, keys[i], v->valuedouble);
    }
    cJSON_Delete(res);
    cJSON_AddItemToArray((cJSON *)ctx, e);
    return 0;
}

int api_sweep_deleted_json(req *r, const char *id, cJSON *o)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "deleted");
    return store_sweep_deleted(r->cfg->db, id, add_deleted, arr);
}

/* state (any case) as a sweep state, or NULL. */
static const char *sweep_state(const char *q)
{
    static const char *const states[] = {"ACTIVE", "STOPPED", "FINISHED"};
    for (int i = 0; i < 3; i++)
        if (!strcasecmp(q, states[i]))
            return states[i];
    return NULL;
}

enum MHD_Result api_sweeps_list(req *r)
{
    const char *state_q = query(r, "state"), *kind = query(r, "kind"), *q = query(r, "q");
    const char *tok = query(r, "page_token"), *state = NULL;
    if (state_q && state_q[0] && !(state = sweep_state(state_q))) {
        vv_fail(VV_EINVAL, "state: one of ACTIVE, STOPPED, FINISHED (any case)");
        return reply_problem(r, VV_EINVAL, "/query/state");
    }
    int64_t page = 50;
    if (query_int(r, "page_size", 1, 1000, 50, &page) < 0)
        return reply_problem(r, VV_EINVAL, "/query/page_size");
    sweep_row *rows = NULL;
    int n = 0;
    char next[64] = "";
    int rc =
        store_sweeps_list(r->cfg->db, state, kind && kind[0] ? kind : NULL, q && q[0] ? q : NULL,
                          (int)page, tok && tok[0] ? tok : NULL, &rows, &n, next);
    if (rc < 0)
        return reply_problem(r, rc, rc == VV_EINVAL ? "/query/page_token" : "");
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "sweeps");
    for (int i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "id", rows[i].id);
        cJSON_AddStringToObject(s, "state", rows[i].state);
        cJSON_AddNumberToObject(s, "created", rows[i].created);
        if (rc == 0)
            rc = api_sweep_describe(r, &rows[i], s, 1);
        /* An ACTIVE sweep whose points have all ended is finished (as GET
         * /v1/sweeps/{id} finds). */
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(s, "counts");
        if (rc == 0 && !strcmp(rows[i].state, "ACTIVE") && cJSON_IsObject(c) &&
            cJSON_GetObjectItem(c, "QUEUED")->valueint == 0 &&
            cJSON_GetObjectItem(c, "RUNNING")->valueint == 0 &&
            cJSON_GetObjectItem(s, "points")->valueint > 0 &&
            store_sweep_set_state(r->cfg->db, rows[i].id, "FINISHED") == 0)
            cJSON_SetValuestring(cJSON_GetObjectItem(s, "state"), "FINISHED");
        if (state && strcmp(state, cJSON_GetObjectItem(s, "state")->valuestring))
            cJSON_Delete(s); /* it has just finished: no longer what was asked for */
        else
            cJSON_AddItemToArray(arr, s);
        sweep_row_free(&rows[i]);
    }
    free(rows);
    if (rc < 0) {
        cJSON_Delete(o);
        return reply_problem(r, rc, "");
    }
    cJSON_AddStringToObject(o, "next_page_token", next);
    return reply_json(r, 200, o);
}
