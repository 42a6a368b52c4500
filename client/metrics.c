/* metrics.c - `vvctl metrics`: a run's full metric history, one row per
 * step and one column per key (a table, CSV, or the server's JSON). */
#include "vvctl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_KEYS = 32 };

/* The standard keys first, in this order; others after, as they come. */
static const char *const known[] = {"objective",  "gap",    "rel_gap",   "active",    "mse",
                                    "group_norm", "lambda", "train_acc", "test_acc",  "train_loss",
                                    "test_loss",  "params", "macs",      "latency_ms"};

static int key_index(char **keys, int *nkeys, const char *k)
{
    for (int i = 0; i < *nkeys; i++)
        if (!strcmp(keys[i], k))
            return i;
    if (*nkeys == MAX_KEYS)
        return -1;
    keys[*nkeys] = strdup(k);
    return (*nkeys)++;
}

static const vc_optdef metrics_defs[] = {{"keys", 1}, {"csv", 0}, {NULL, 0}};

int vc_cmd_metrics(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("metrics", argc, argv, metrics_defs, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("metrics") : rc;
    if (a.npos != 1)
        return vc_usage("metrics", "metrics takes one run id");
    const char *keys_opt = vc_arg(metrics_defs, &a, "keys");
    int csv = vc_arg(metrics_defs, &a, "csv") != NULL;
    char *eid = vc_urlencode(a.pos[0], 0), *path = NULL;
    vc_strcatf(&path, "/v1/runs/%s/metrics", eid);
    if (keys_opt) {
        char *ek = vc_urlencode(keys_opt, 0);
        vc_strcatf(&path, "?keys=%s", ek);
        free(ek);
    }
    cJSON *m = vc_call("GET", path, NULL, &rc);
    free(path);
    free(eid);
    if (!m)
        return rc;
    if (vc_opt.json) {
        vc_print_json(m, 0);
        cJSON_Delete(m);
        return VC_OK;
    }
    /* Columns: the keys asked for in their order, else the keys present. */
    char *keys[MAX_KEYS];
    int nkeys = 0;
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(m, "metrics"), *p;
    if (keys_opt) {
        char *copy = strdup(keys_opt), *save = NULL;
        for (char *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save))
            key_index(keys, &nkeys, k);
        free(copy);
    } else {
        int present[sizeof known / sizeof *known] = {0};
        cJSON_ArrayForEach(p, pts)
        {
            const char *k = vc_str(p, "key", "");
            for (unsigned i = 0; i < sizeof known / sizeof *known; i++)
                present[i] |= !strcmp(k, known[i]);
        }
        for (unsigned i = 0; i < sizeof known / sizeof *known; i++)
            if (present[i])
                key_index(keys, &nkeys, known[i]);
        cJSON_ArrayForEach(p, pts) key_index(keys, &nkeys, vc_str(p, "key", ""));
    }
    vc_table t;
    vc_table_init(&t, nkeys + 2);
    const char *cells[MAX_KEYS + 2];
    char vals[MAX_KEYS + 2][40];
    cells[0] = "step";
    cells[1] = "time";
    for (int i = 0; i < nkeys; i++)
        cells[i + 2] = keys[i];
    if (csv) {
        for (int i = 0; i < nkeys + 2; i++)
            printf("%s%s", i ? "," : "", cells[i]);
        putchar('\n');
    } else {
        vc_table_row(&t, cells);
    }
    /* Points come ordered by step: one row per step. */
    double step = NAN;
    int have = 0;
    for (p = pts ? pts->child : NULL;; p = p->next) {
        double s = p ? vc_num(p, "step", NAN) : NAN;
        if (have && (!p || s != step)) {
            for (int i = 0; i < nkeys + 2; i++)
                cells[i] = vals[i];
            if (csv) {
                for (int i = 0; i < nkeys + 2; i++)
                    printf("%s%s", i ? "," : "", strcmp(vals[i], "-") ? vals[i] : "");
                putchar('\n');
            } else {
                vc_table_row(&t, cells);
            }
            have = 0;
        }
        if (!p)
            break;
        if (!have) {
            for (int i = 0; i < nkeys + 2; i++)
                strcpy(vals[i], "-");
            step = s;
            snprintf(vals[0], sizeof vals[0], "%.0f", s);
            snprintf(vals[1], sizeof vals[1], "%.6f", vc_num(p, "time", NAN));
            have = 1;
        }
        int k = -1;
        for (int i = 0; i < nkeys; i++)
            if (!strcmp(keys[i], vc_str(p, "key", "")))
                k = i;
        if (k >= 0)
            snprintf(vals[k + 2], sizeof vals[k + 2], "%.*g", csv ? 17 : 9,
                     vc_num(p, "value", NAN));
    }
    if (!csv)
        vc_table_print(&t);
    vc_table_free(&t);
    for (int i = 0; i < nkeys; i++)
        free(keys[i]);
    cJSON_Delete(m);
    return VC_OK;
}
