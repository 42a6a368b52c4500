/* compare.c - `vvctl compare ID ID...`: runs side by side, their final
 * metrics and the spec parameters that differ between them. */
#include "vvctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_RUNS = 16 };

/* Adds every leaf of spec to out as "prefix.name" -> value (copies);
 * arrays are leaves. */
static void flatten(const cJSON *o, const char *prefix, cJSON *out)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, o)
    {
        char *name = NULL;
        vc_strcatf(&name, "%s%s%s", prefix, prefix[0] ? "." : "", m->string ? m->string : "?");
        if (!name)
            continue;
        if (cJSON_IsObject(m) && m->child)
            flatten(m, name, out);
        else if (!cJSON_GetObjectItemCaseSensitive(out, name))
            cJSON_AddItemToObject(out, name, cJSON_Duplicate(m, 1));
        free(name);
    }
}

/* Adds the names of o's members missing from keys (an array of strings). */
static void add_keys(cJSON *keys, const cJSON *o)
{
    const cJSON *m, *k;
    cJSON_ArrayForEach(m, o)
    {
        int seen = 0;
        cJSON_ArrayForEach(k, keys)
        {
            seen |= !strcmp(k->valuestring, m->string);
        }
        if (!seen)
            cJSON_AddItemToArray(keys, cJSON_CreateString(m->string));
    }
}

/* The metrics of a run compared: state, name, the summary and, for a
 * compress run, its kept widths and parameters before->after. */
static cJSON *metrics_of(const cJSON *run)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "state", vc_str(run, "state", "?"));
    if (vc_run_name(run))
        cJSON_AddStringToObject(m, "name", vc_run_name(run));
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(run, "summary"), *s;
    cJSON_ArrayForEach(s, sum)
    {
        cJSON_AddItemToObject(m, s->string, cJSON_Duplicate(s, 1));
    }
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(run, "result");
    char *w = vc_fmt_widths(res, 0);
    if (w) {
        char b[64];
        cJSON_AddStringToObject(m, "widths", w);
        cJSON_AddStringToObject(m, "params (before->after)", vc_fmt_params(b, sizeof b, res));
        cJSON_AddStringToObject(m, "test_acc (before->after)", vc_fmt_acc(b, sizeof b, res));
        free(w);
    }
    return m;
}

/* Prints (or adds to json) one table: a row per key, a column per run. */
static void table(const char *title, const cJSON *keys, cJSON *const *vals, int n, const cJSON *ids,
                  cJSON *json, int only_differing)
{
    vc_table t;
    vc_table_init(&t, n + 1);
    const char *cells[MAX_RUNS + 1];
    cells[0] = title;
    for (int i = 0; i < n; i++)
        cells[i + 1] = cJSON_GetArrayItem(ids, i)->valuestring;
    vc_table_row(&t, cells);
    const cJSON *k;
    int rows = 0;
    cJSON_ArrayForEach(k, keys)
    {
        const char *key = k->valuestring;
        if (only_differing) {
            int same = 1;
            const cJSON *v0 = cJSON_GetObjectItemCaseSensitive(vals[0], key);
            for (int i = 1; i < n && same; i++) {
                const cJSON *vi = cJSON_GetObjectItemCaseSensitive(vals[i], key);
                same = (!v0 && !vi) || (v0 && vi && cJSON_Compare(v0, vi, 1));
            }
            if (same)
                continue;
        }
        rows++;
        char *own[MAX_RUNS];
        cJSON *arr = json ? cJSON_AddArrayToObject(json, key) : NULL;
        cells[0] = key;
        for (int i = 0; i < n; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(vals[i], key);
            own[i] = v ? vc_fmt_value(v) : NULL;
            cells[i + 1] = own[i];
            if (arr)
                cJSON_AddItemToArray(arr, v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
        }
        if (!json)
            vc_table_row(&t, cells);
        for (int i = 0; i < n; i++)
            free(own[i]);
    }
    if (!json) {
        if (rows)
            vc_table_print(&t);
        else if (only_differing)
            printf("no spec parameter differs between these runs\n");
    }
    vc_table_free(&t);
}

int vc_cmd_compare(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("compare", argc, argv, NULL, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("compare") : rc;
    if (a.npos < 2 || a.npos > MAX_RUNS)
        return vc_usage("compare", "compare takes 2 to %d run ids", MAX_RUNS);
    int n = a.npos;
    cJSON *runs[MAX_RUNS] = {0}, *metrics[MAX_RUNS] = {0}, *params[MAX_RUNS] = {0};
    cJSON *ids = cJSON_CreateArray(), *mkeys = cJSON_CreateArray(), *pkeys = cJSON_CreateArray();
    rc = VC_OK;
    for (int i = 0; i < n && rc == VC_OK; i++) {
        char *eid = vc_urlencode(a.pos[i], 0), *path = NULL;
        vc_strcatf(&path, "/v1/runs/%s", eid);
        runs[i] = vc_call("GET", path, NULL, &rc);
        free(eid);
        free(path);
        if (!runs[i])
            break;
        cJSON_AddItemToArray(ids, cJSON_CreateString(vc_str(runs[i], "id", a.pos[i])));
        metrics[i] = metrics_of(runs[i]);
        add_keys(mkeys, metrics[i]);
        params[i] = cJSON_CreateObject();
        flatten(cJSON_GetObjectItemCaseSensitive(runs[i], "spec"), "", params[i]);
        add_keys(pkeys, params[i]);
    }
    if (rc == VC_OK) {
        cJSON *out = vc_opt.json ? cJSON_CreateObject() : NULL;
        if (out)
            cJSON_AddItemToObject(out, "runs", cJSON_Duplicate(ids, 1));
        cJSON *jm = out ? cJSON_AddObjectToObject(out, "metrics") : NULL;
        table("METRIC", mkeys, metrics, n, ids, jm, 0);
        if (!out)
            putchar('\n');
        cJSON *jp = out ? cJSON_AddObjectToObject(out, "params") : NULL;
        table("PARAMETER", pkeys, params, n, ids, jp, 1);
        if (out) {
            vc_print_json(out, 0);
            cJSON_Delete(out);
        }
    }
    for (int i = 0; i < n; i++) {
        cJSON_Delete(runs[i]);
        cJSON_Delete(metrics[i]);
        cJSON_Delete(params[i]);
    }
    cJSON_Delete(ids);
    cJSON_Delete(mkeys);
    cJSON_Delete(pkeys);
    return rc;
}
