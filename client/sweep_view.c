/* sweep_view.c - loads a sweep, matches its runs (every attempt) to the
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

/* ---- Loading a sweep ------------------------------------------------------- */

void vc_sweep_free(vc_sweep *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->npts; i++)
        cJSON_Delete(v->pts[i].values);
    free(v->pts);
    free(v->index);
    cJSON_Delete(v->sweep);
    memset(v, 0, sizeof *v);
}

/* The index of points by their daemon hash: open addressing, slots hold a
 * point's index + 1. */
static unsigned hash_slot(const vc_sweep *v, const char *hash)
{
    unsigned h = 2166136261u;
    for (; *hash; hash++)
        h = (h ^ (unsigned char)*hash) * 16777619u;
    return h & (unsigned)(v->index_size - 1);
}

static int find_index(const vc_sweep *v, const char *hash)
{
    if (!v->index || !hash)
        return -1;
    for (unsigned s = hash_slot(v, hash);; s = (s + 1) & (unsigned)(v->index_size - 1)) {
        int i = v->index[s] - 1;
        if (i < 0)
            return -1;
        if (!strcmp(v->pts[i].hash, hash))
            return i;
    }
}

static void add_index(vc_sweep *v, int i)
{
    unsigned s = hash_slot(v, v->pts[i].hash);
    while (v->index[s])
        s = (s + 1) & (unsigned)(v->index_size - 1);
    v->index[s] = i + 1;
}

const vc_point *vc_sweep_find_point(const vc_sweep *v, const char *hash)
{
    int i = find_index(v, hash);
    return i < 0 ? NULL : &v->pts[i];
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

/* Whether run is a later attempt than cur: the daemon's "latest" first,
 * then "attempt", then the run number. */
static int later(const cJSON *run, const cJSON *cur)
{
    if (!cur)
        return 1;
    int lr = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(run, "latest"));
    int lc = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cur, "latest"));
    if (lr != lc)
        return lr;
    double ar = vc_num(run, "attempt", 1), ac = vc_num(cur, "attempt", 1);
    if (ar != ac)
        return ar > ac;
    return run_number(run) > run_number(cur);
}

/* Assigns each run of the sweep to its point.  A run whose "point" hash is
 * known goes to that point; otherwise the points are searched by grid
 * values, starting after the last match (runs are taken oldest first, so
 * the daemon queued them in the points' order), and the point learns the
 * hash. */
static void assign(vc_sweep *v, const cJSON *runs)
{
    int n = cJSON_GetArraySize(runs), cursor = 0;
    const cJSON **list = calloc((size_t)n + 1, sizeof *list);
    if (!list)
        return;
    int k = n;
    for (const cJSON *run = runs ? runs->child : NULL; run && k > 0; run = run->next)
        list[--k] = run;
    for (k = 0; k < n && v->npts > 0; k++) {
        const cJSON *run = list[k];
        const char *hash = vc_str(run, "point", NULL);
        int idx = find_index(v, hash);
        for (int j = 0; idx < 0 && j < v->npts; j++) {
            int i = (cursor + j) % v->npts;
            vc_point *p = &v->pts[i];
            if ((!hash || !p->hash || !strcmp(p->hash, hash)) && matches(p, run, v))
                idx = i;
        }
        if (idx < 0) {
            v->unmatched++;
            continue;
        }
        cursor = (idx + 1) % v->npts;
        vc_point *p = &v->pts[idx];
        if (hash && !p->hash && v->index) {
            p->hash = hash;
            add_index(v, idx);
        }
        p->attempts++;
        if (later(run, p->run))
            p->run = run;
    }
    free(list);
}

/* Expands the grid of the sweep's request into its distinct points. */
static int expand(vc_sweep *v)
{
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
        fprintf(stderr, "vvctl: %s: the sweep's request has no usable grid\n", v->id);
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
    if (!v->pts) {
        fprintf(stderr, "vvctl: out of memory\n");
        return VC_FAILED;
    }
    for (v->index_size = 16; v->index_size < 2 * v->npts;)
        v->index_size *= 2;
    v->index = calloc((size_t)v->index_size, sizeof *v->index);
    return VC_OK;
}

int vc_sweep_from_json(const char *id, cJSON *sweep, vc_sweep *v)
{
    memset(v, 0, sizeof *v);
    snprintf(v->id, sizeof v->id, "%s", id);
    v->sweep = sweep;
    int rc = expand(v);
    if (rc)
        return rc;
    assign(v, cJSON_GetObjectItemCaseSensitive(v->sweep, "runs"));
    v->compress = !strcmp(vc_str(v->base, "kind", ""), "compress");
    /* Counts and the Pareto front over FINISHED points. */
    double *act = calloc((size_t)v->npts + 1, sizeof *act),
           *mse = calloc((size_t)v->npts + 1, sizeof *mse);
    int *ok = calloc((size_t)v->npts + 1, sizeof *ok),
        *opt = calloc((size_t)v->npts + 1, sizeof *opt);
    for (int i = 0; act && mse && ok && opt && i < v->npts; i++) {
        const vc_point *p = &v->pts[i];
        if (!p->run) {
            v->missing++;
            /* Its run was deleted when the sweep keeps a record of it. */
            const cJSON *rec;
            cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(v->sweep, "deleted"))
            {
                if (!v->pts[i].deleted && matches(&v->pts[i], rec, v))
                    v->pts[i].deleted = 1;
            }
            v->deleted += v->pts[i].deleted;
            continue;
        }
        v->retried += p->attempts > 1;
        int s = state_index(vc_str(p->run, "state", ""));
        if (s >= 0)
            v->counts[s]++;
        const cJSON *res = vc_point_result(p);
        if (v->compress) {
            /* Fewer parameters and a higher test accuracy are better. */
            act[i] = vc_num(res, "params", NAN);
            mse[i] = -vc_num(res, "test_acc", NAN);
        } else {
            act[i] = vc_num(res, "active", NAN);
            mse[i] = vc_num(res, "mse", NAN);
        }
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

int vc_sweep_load(const char *id, vc_sweep *v)
{
    memset(v, 0, sizeof *v);
    char *eid = vc_urlencode(id, 0), *path = NULL;
    vc_strcatf(&path, "/v1/sweeps/%s", eid);
    free(eid);
    int rc;
    cJSON *sweep = vc_call("GET", path, NULL, &rc);
    free(path);
    return sweep ? vc_sweep_from_json(id, sweep, v) : rc;
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
        cJSON_AddItemToObject(e, "point",
                              p->hash ? cJSON_CreateString(p->hash) : cJSON_CreateNull());
        cJSON_AddItemToObject(e, "run", p->run ? cJSON_Duplicate(p->run, 1) : cJSON_CreateNull());
        cJSON_AddNumberToObject(e, "attempts", p->attempts);
        cJSON_AddBoolToObject(e, "pareto", p->pareto);
        cJSON_AddBoolToObject(e, "deleted", p->deleted);
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
    if (v->deleted)
        printf(" (%d deleted)", v->deleted);
    if (v->retried)
        printf("  (%d point%s tried more than once)", v->retried, v->retried == 1 ? "" : "s");
    if (v->unmatched)
        printf("  (%d run%s of the sweep match%s no point of its grid)", v->unmatched,
               v->unmatched == 1 ? "" : "s", v->unmatched == 1 ? "es" : "");
    putchar('\n');
}

/* The table of a compress sweep: kept widths, parameters and test
 * accuracy, the front on params and test_acc. */
/* The columns every table of points starts with: the Pareto mark, the run,
 * the grid's axes, the state (a header when p is NULL).  Returns the count;
 * the axes' texts go to own[*no...] (free them). */
static int lead_cells(const vc_sweep *v, const vc_point *p, const char **cells, char **own, int *no)
{
    int c = 0;
    cells[c++] = p ? (p->pareto ? "*" : "") : "";
    cells[c++] = !p ? "RUN" : p->run ? vc_str(p->run, "id", "?") : "-";
    for (int a = 0; a < v->naxes; a++) {
        if (!p) {
            cells[c++] = v->axes[a]->string;
            continue;
        }
        own[*no] = vc_fmt_value(cJSON_GetObjectItemCaseSensitive(p->values, v->axes[a]->string));
        cells[c++] = own[(*no)++];
    }
    cells[c++] = !p           ? "STATE"
                 : p->run     ? vc_str(p->run, "state", "?")
                 : p->deleted ? "DELETED"
                              : "MISSING";
    return c;
}

static void print_compress_table(const vc_sweep *v)
{
    int ncols = 1 + 1 + v->naxes + 4 + (v->retried > 0);
    vc_table t;
    vc_table_init(&t, ncols);
    const char *cells[VC_MAX_AXES + 10];
    char *own[VC_MAX_AXES + 10];
    int no = 0;
    int c = lead_cells(v, NULL, cells, own, &no);
    cells[c++] = "WIDTHS";
    cells[c++] = "PARAMS";
    cells[c++] = "TEST_ACC";
    if (v->retried)
        cells[c++] = "TRIES";
    vc_table_row(&t, cells);
    for (int i = 0; i < v->npts; i++) {
        const vc_point *p = &v->pts[i];
        const cJSON *res = p->run ? vc_point_result(p) : NULL;
        char b[3][64];
        no = 0;
        c = lead_cells(v, p, cells, own, &no);
        own[no] = vc_fmt_widths(res, 1);
        cells[c++] = own[no++];
        cells[c++] = vc_fmt_params(b[0], sizeof b[0], res);
        cells[c++] = vc_fmt_acc(b[1], sizeof b[1], res);
        if (v->retried) {
            snprintf(b[2], sizeof b[2], "%d", p->attempts);
            cells[c++] = b[2];
        }
        vc_table_row(&t, cells);
        for (int k = 0; k < no; k++)
            free(own[k]);
    }
    vc_table_print(&t);
    vc_table_free(&t);
    printf("* Pareto-optimal among FINISHED points: no other has params <= and test_acc >= with "
           "one strictly better\n");
}

void vc_sweep_print_table(const vc_sweep *v)
{
    vc_sweep_print_counts(v);
    int acc = 0;
    for (int i = 0; i < v->npts; i++)
        acc |= v->pts[i].run && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(
                                    vc_point_result(&v->pts[i]), "test_acc"));
    if (v->compress) {
        print_compress_table(v);
        return;
    }
    int ncols = 1 + 1 + v->naxes + 5 + acc + (v->retried > 0);
    vc_table t;
    vc_table_init(&t, ncols);
    const char *cells[VC_MAX_AXES + 10];
    char *own[VC_MAX_AXES + 10];
    int no = 0;
    int c = lead_cells(v, NULL, cells, own, &no);
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
        no = 0;
        c = lead_cells(v, p, cells, own, &no);
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

char *vc_point_values_text(const vc_sweep *v, const vc_point *p)
{
    char *vals = NULL;
    for (int a = 0; a < v->naxes; a++) {
        char *s = vc_fmt_value(cJSON_GetObjectItemCaseSensitive(p->values, v->axes[a]->string));
        vc_strcatf(&vals, " %s=%s", v->axes[a]->string, s ? s : "?");
        free(s);
    }
    return vals ? vals : strdup("");
}
