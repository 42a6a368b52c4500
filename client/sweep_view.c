/* sweep_view.c - loads a sweep with its resumed runs, matches runs to the
 * points of its grid and finds the Pareto front (see sweep.h). */
#include "sweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const vc_states[] = {"QUEUED", "RUNNING", "FINISHED", "STOPPED", "FAILED", "CRASHED"};

static int state_index(const char *st)
{
    for (int i = 0; i < 6; i++)
        if (!strcmp(st, vc_states[i]))
            return i;
    return -1;
}

static long run_number(const cJSON *run)
{
    const char *id = vc_str(run, "id", "");
    const char *dash = strchr(id, '-');
    return dash ? strtol(dash + 1, NULL, 10) : 0;
}

/* ---- The resume tag ---------------------------------------------------------- */

/* Writes "[sweep ID]" into tag. */
void vc_sweep_tag(char *tag, size_t sz, const char *sweep_id)
{
    snprintf(tag, sz, "[sweep %s]", sweep_id);
}

static int has_tag(const cJSON *run, const char *tag)
{
    const char *name = vc_str(cJSON_GetObjectItemCaseSensitive(run, "spec"), "name", NULL);
    size_t n = name ? strlen(name) : 0, t = strlen(tag);
    return n >= t && !strcmp(name + n - t, tag);
}

/* Sets spec's name to its old name (without an old tag) followed by tag. */
void vc_sweep_set_tag(cJSON *spec, const char *tag)
{
    const char *old = vc_str(spec, "name", "");
    char *name = strdup(old);
    char *br = name ? strstr(name, "[sweep ") : NULL;
    if (br && br[strlen(br) - 1] == ']')
        *br = 0;
    size_t n = name ? strlen(name) : 0;
    while (n > 0 && name[n - 1] == ' ')
        name[--n] = 0;
    char *full = NULL;
    vc_strcatf(&full, "%s%s%s", name ? name : "", n ? " " : "", tag);
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "name");
    cJSON_AddStringToObject(spec, "name", full ? full : tag);
    free(full);
    free(name);
}

/* ---- Loading a sweep ------------------------------------------------------- */

void vc_sweep_free(vc_sweep *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->npts; i++)
        cJSON_Delete(v->pts[i].values);
    free(v->pts);
    cJSON_Delete(v->sweep);
    cJSON_Delete(v->extra);
    memset(v, 0, sizeof *v);
}

/* The runs `sweep resume` queued: newest first, up to the sweep's creation. */
static int load_extra(vc_sweep *v)
{
    char tag[96];
    vc_sweep_tag(tag, sizeof tag, v->id);
    double created = vc_num(v->sweep, "created", 0);
    v->extra = cJSON_CreateArray();
    char *token = NULL;
    int rc = VC_OK, done = 0;
    while (!done) {
        char *path = NULL;
        vc_strcatf(&path, "/v1/runs?page_size=1000%s%s", token ? "&page_token=" : "",
                   token ? token : "");
        cJSON *page = vc_call("GET", path, NULL, &rc);
        free(path);
        free(token);
        token = NULL;
        if (!page)
            break;
        const cJSON *run;
        cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(page, "runs"))
        {
            if (vc_num(run, "created", 0) < created - 1) {
                done = 1;
                break;
            }
            if (has_tag(run, tag))
                cJSON_AddItemToArray(v->extra, cJSON_Duplicate(run, 1));
        }
        const char *next = vc_str(page, "next_page_token", "");
        if (next[0] && !done)
            token = vc_urlencode(next, 0);
        else
            done = 1;
        cJSON_Delete(page);
    }
    free(token);
    return rc;
}

static int matches(const vc_point *p, const cJSON *run, const vc_sweep *v)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(run, "spec");
    for (int a = 0; a < v->naxes; a++) {
        const cJSON *got = cJSON_GetObjectItemCaseSensitive(spec, v->axes[a]->string);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(p->values, v->axes[a]->string);
        if (!got || !cJSON_Compare(got, want, 1))
            return 0;
    }
    return 1;
}

static void assign(vc_sweep *v, const cJSON *runs)
{
    const cJSON *run;
    cJSON_ArrayForEach(run, runs)
    {
        for (int i = 0; i < v->npts; i++) {
            vc_point *p = &v->pts[i];
            if (!matches(p, run, v))
                continue;
            p->attempts++;
            if (!p->run || run_number(run) > run_number(p->run))
                p->run = run;
        }
    }
}

/* Loads sweep id, its resumed runs, expands its points and computes the
 * Pareto front.  Returns an exit code (printed on failure). */
int vc_sweep_load(const char *id, vc_sweep *v)
{
    memset(v, 0, sizeof *v);
    snprintf(v->id, sizeof v->id, "%s", id);
    char *eid = vc_urlencode(id, 0), *path = NULL;
    vc_strcatf(&path, "/v1/sweeps/%s", eid);
    free(eid);
    int rc;
    v->sweep = vc_call("GET", path, NULL, &rc);
    free(path);
    if (!v->sweep)
        return rc;
    rc = load_extra(v);
    if (rc)
        return rc;
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(v->sweep, "request");
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(req, "grid"), *ax;
    v->base = cJSON_GetObjectItemCaseSensitive(req, "base");
    double total = 1;
    cJSON_ArrayForEach(ax, grid)
    {
        if (v->naxes == VC_MAX_AXES || !cJSON_IsArray(ax) || !cJSON_GetArraySize(ax))
            continue;
        v->axes[v->naxes++] = ax;
        total *= cJSON_GetArraySize(ax);
    }
    if (!v->naxes || total > VC_MAX_POINTS) {
        fprintf(stderr, "vvctl: %s: the sweep's request has no usable grid\n", id);
        return VC_FAILED;
    }
    v->pts = calloc((size_t)total, sizeof *v->pts);
    char **texts = calloc((size_t)total, sizeof *texts);
    for (int p = 0; p < (int)total && v->pts && texts; p++) {
        cJSON *vals = cJSON_CreateObject();
        int rem = p;
        for (int a = v->naxes - 1; a >= 0; a--) {
            int n = cJSON_GetArraySize(v->axes[a]);
            cJSON_AddItemToObject(vals, v->axes[a]->string,
                                  cJSON_Duplicate(cJSON_GetArrayItem(v->axes[a], rem % n), 1));
            rem /= n;
        }
        /* Fields in grid order (they were added last axis first). */
        cJSON *ordered = cJSON_CreateObject();
        for (int a = 0; a < v->naxes; a++)
            cJSON_AddItemToObject(
                ordered, v->axes[a]->string,
                cJSON_DetachItemFromObjectCaseSensitive(vals, v->axes[a]->string));
        cJSON_Delete(vals);
        char *t = cJSON_PrintUnformatted(ordered);
        int dup = 0;
        for (int q = 0; q < v->npts && t && !dup; q++)
            dup = !strcmp(texts[q], t);
        if (dup || !t) {
            free(t);
            cJSON_Delete(ordered);
            continue;
        }
        texts[v->npts] = t;
        v->pts[v->npts++].values = ordered;
    }
    for (int i = 0; i < v->npts; i++)
        free(texts[i]);
    free(texts);
    assign(v, cJSON_GetObjectItemCaseSensitive(v->sweep, "runs"));
    assign(v, v->extra);
    /* Counts and the Pareto front over FINISHED points. */
    double *act = calloc((size_t)v->npts + 1, sizeof *act),
           *mse = calloc((size_t)v->npts + 1, sizeof *mse);
    int *ok = calloc((size_t)v->npts + 1, sizeof *ok),
        *opt = calloc((size_t)v->npts + 1, sizeof *opt);
    for (int i = 0; act && mse && ok && opt && i < v->npts; i++) {
        const vc_point *p = &v->pts[i];
        if (!p->run) {
            v->missing++;
            continue;
        }
        v->retried += p->attempts > 1;
        int s = state_index(vc_str(p->run, "state", ""));
        if (s >= 0)
            v->counts[s]++;
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(p->run, "result");
        if (!cJSON_IsObject(res))
            res = cJSON_GetObjectItemCaseSensitive(p->run, "summary");
        act[i] = vc_num(res, "active", NAN);
        mse[i] = vc_num(res, "mse", NAN);
        ok[i] = s == 2;
    }
    if (act && mse && ok && opt) {
        vc_pareto(act, mse, ok, v->npts, opt);
        for (int i = 0; i < v->npts; i++)
            v->pts[i].pareto = opt[i];
    }
    free(act);
    free(mse);
    free(ok);
    free(opt);
    return VC_OK;
}

/* ---- status ------------------------------------------------------------------ */

const cJSON *vc_point_result(const vc_point *p)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(p->run, "result");
    return cJSON_IsObject(res) ? res : cJSON_GetObjectItemCaseSensitive(p->run, "summary");
}

cJSON *vc_sweep_json(const vc_sweep *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", v->id);
    cJSON_AddStringToObject(o, "state", vc_str(v->sweep, "state", "?"));
    cJSON_AddItemToObject(
        o, "request", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(v->sweep, "request"), 1));
    cJSON *c = cJSON_AddObjectToObject(o, "counts");
    for (int i = 0; i < 6; i++)
        cJSON_AddNumberToObject(c, vc_states[i], v->counts[i]);
    cJSON_AddNumberToObject(c, "MISSING", v->missing);
    cJSON *arr = cJSON_AddArrayToObject(o, "points");
    for (int i = 0; i < v->npts; i++) {
        const vc_point *p = &v->pts[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "values", cJSON_Duplicate(p->values, 1));
        cJSON_AddItemToObject(e, "run", p->run ? cJSON_Duplicate(p->run, 1) : cJSON_CreateNull());
        cJSON_AddNumberToObject(e, "attempts", p->attempts);
        cJSON_AddBoolToObject(e, "pareto", p->pareto);
        cJSON_AddItemToArray(arr, e);
    }
    return o;
}

void vc_sweep_print_counts(const vc_sweep *v)
{
    printf("sweep %s  %s  %d points:", v->id, vc_str(v->sweep, "state", "?"), v->npts);
    for (int i = 0; i < 6; i++)
        if (v->counts[i])
            printf(" %s %d", vc_states[i], v->counts[i]);
    if (v->missing)
        printf(" MISSING %d", v->missing);
    /* The daemon's state of the sweep ignores the runs resume queued. */
    int n = cJSON_GetArraySize(v->extra);
    if (n)
        printf("  (%d run%s re-queued by vvctl sweep resume)", n, n == 1 ? "" : "s");
    putchar('\n');
}

void vc_sweep_print_table(const vc_sweep *v)
{
    vc_sweep_print_counts(v);
    int acc = 0;
    for (int i = 0; i < v->npts; i++)
        acc |= v->pts[i].run && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(
                                    vc_point_result(&v->pts[i]), "test_acc"));
    int ncols = 1 + 1 + v->naxes + 5 + acc + (v->retried > 0);
    vc_table t;
    vc_table_init(&t, ncols);
    const char *cells[VC_MAX_AXES + 10];
    char *own[VC_MAX_AXES + 10];
    int c = 0;
    cells[c++] = "";
    cells[c++] = "RUN";
    for (int a = 0; a < v->naxes; a++)
        cells[c++] = v->axes[a]->string;
    cells[c++] = "STATE";
    cells[c++] = "ACTIVE";
    cells[c++] = "OBJECTIVE";
    cells[c++] = "MSE";
    cells[c++] = "REL_GAP";
    if (acc)
        cells[c++] = "TEST_ACC";
    if (v->retried)
        cells[c++] = "TRIES";
    vc_table_row(&t, cells);
    for (int i = 0; i < v->npts; i++) {
        const vc_point *p = &v->pts[i];
        const cJSON *res = p->run ? vc_point_result(p) : NULL;
        char b[6][40];
        int no = 0;
        c = 0;
        cells[c++] = p->pareto ? "*" : "";
        cells[c++] = p->run ? vc_str(p->run, "id", "?") : "-";
        for (int a = 0; a < v->naxes; a++) {
            own[no] = vc_fmt_value(cJSON_GetObjectItemCaseSensitive(p->values, v->axes[a]->string));
            cells[c++] = own[no++];
        }
        cells[c++] = p->run ? vc_str(p->run, "state", "?") : "MISSING";
        cells[c++] = vc_fmt_num(b[0], sizeof b[0], res, "active", 9);
        cells[c++] = vc_fmt_num(b[1], sizeof b[1], res, "objective", 7);
        cells[c++] = vc_fmt_num(b[2], sizeof b[2], res, "mse", 7);
        cells[c++] = vc_fmt_num(b[3], sizeof b[3], res, "rel_gap", 3);
        if (acc)
            cells[c++] = vc_fmt_num(b[4], sizeof b[4], res, "test_acc", 5);
        if (v->retried) {
            snprintf(b[5], sizeof b[5], "%d", p->attempts);
            cells[c++] = b[5];
        }
        vc_table_row(&t, cells);
        for (int k = 0; k < no; k++)
            free(own[k]);
    }
    vc_table_print(&t);
    vc_table_free(&t);
    printf("* Pareto-optimal among FINISHED points: no other has active <= and mse <= with one "
           "smaller\n");
}

int vc_point_active(const vc_point *p)
{
    if (!p->run)
        return 0;
    const char *st = vc_str(p->run, "state", "");
    return !strcmp(st, "QUEUED") || !strcmp(st, "RUNNING");
}
