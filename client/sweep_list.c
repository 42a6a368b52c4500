/* sweep_list.c - `vvctl sweep ls`: the daemon's sweeps (GET /v1/sweeps),
 * newest first, following its page tokens up to --limit. */
#include "vvctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const vc_optdef ls_defs[] = {{"state", 1}, {"kind", 1}, {"q", 1}, {"limit", 1}, {NULL, 0}};

/* "FINISHED=2,RUNNING=1": the nonzero counts, "-" when none. */
static char *counts_text(const cJSON *counts)
{
    char *s = NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, counts)
    {
        if (cJSON_IsNumber(c) && c->valuedouble > 0)
            vc_strcatf(&s, "%s%s=%.0f", s ? "," : "", c->string, c->valuedouble);
    }
    return s ? s : strdup("-");
}

/* "lambda_ratio[6],mu[2]": the grid's fields and their number of values. */
static char *grid_text(const cJSON *grid)
{
    char *s = NULL;
    const cJSON *ax;
    cJSON_ArrayForEach(ax, grid)
    {
        vc_strcatf(&s, "%s%s[%d]", s ? "," : "", ax->string,
                   cJSON_IsArray(ax) ? cJSON_GetArraySize(ax) : 1);
    }
    return s ? s : strdup("-");
}

static void row(vc_table *t, const cJSON *sw)
{
    char pts[32], created[32];
    vc_fmt_num(pts, sizeof pts, sw, "points", 9);
    double c = vc_num(sw, "created", 0);
    if (c > 0) {
        time_t tt = (time_t)c;
        struct tm tm;
        localtime_r(&tt, &tm);
        strftime(created, sizeof created, "%Y-%m-%d %H:%M", &tm);
    } else {
        strcpy(created, "-");
    }
    char *counts = counts_text(cJSON_GetObjectItemCaseSensitive(sw, "counts"));
    char *grid = grid_text(cJSON_GetObjectItemCaseSensitive(sw, "grid"));
    double deleted = vc_num(sw, "deleted", 0);
    char del[32] = "";
    if (deleted > 0)
        snprintf(del, sizeof del, ",DELETED=%.0f", deleted);
    char *cnt = NULL;
    vc_strcatf(&cnt, "%s%s", counts, del);
    const char *cells[] = {vc_str(sw, "id", "?"),
                           vc_str(sw, "name", "-"),
                           vc_str(sw, "kind", "-"),
                           vc_str(sw, "state", "?"),
                           pts,
                           cnt ? cnt : counts,
                           grid,
                           created};
    vc_table_row(t, cells);
    free(cnt);
    free(counts);
    free(grid);
}

int vc_sweep_ls(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("sweep ls", argc, argv, ls_defs, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("sweep") : rc;
    if (a.npos)
        return vc_usage("sweep", "sweep ls: unexpected argument '%s'", a.pos[0]);
    long limit = 50;
    const char *lim = vc_arg(ls_defs, &a, "limit");
    if (lim && (vc_parse_long(lim, &limit) || limit < 1))
        return vc_usage("sweep", "--limit: '%s' is not a positive integer", lim);
    char *base = NULL;
    vc_strcatf(&base, "/v1/sweeps?page_size=%ld", limit < 1000 ? limit : 1000);
    static const char *const q[] = {"state", "kind", "q"};
    for (int i = 0; i < 3; i++) {
        const char *v = vc_arg(ls_defs, &a, q[i]);
        char up[32];
        if (v && i == 0) /* states in any case */
            v = vc_upper(up, sizeof up, v);
        if (v) {
            char *e = vc_urlencode(v, 0);
            vc_strcatf(&base, "&%s=%s", q[i], e);
            free(e);
        }
    }
    cJSON *all = cJSON_CreateArray();
    char *next = NULL;
    long got = 0;
    rc = VC_OK;
    do {
        char *path = strdup(base);
        if (next && next[0]) {
            char *e = vc_urlencode(next, 0);
            vc_strcatf(&path, "&page_token=%s", e);
            free(e);
        }
        free(next);
        next = NULL;
        cJSON *page = vc_call("GET", path, NULL, &rc);
        free(path);
        if (!page)
            break;
        next = strdup(vc_str(page, "next_page_token", ""));
        cJSON *sw;
        cJSON_ArrayForEach(sw, cJSON_GetObjectItemCaseSensitive(page, "sweeps"))
        {
            if (got++ < limit)
                cJSON_AddItemToArray(all, cJSON_Duplicate(sw, 1));
        }
        cJSON_Delete(page);
    } while (next && next[0] && got < limit);
    if (rc == VC_OK && vc_opt.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "sweeps", all);
        all = NULL;
        vc_print_json(o, 0);
        cJSON_Delete(o);
    } else if (rc == VC_OK) {
        vc_table t;
        vc_table_init(&t, 8);
        const char *head[] = {"ID", "NAME", "KIND", "STATE", "POINTS", "COUNTS", "GRID", "CREATED"};
        vc_table_row(&t, head);
        const cJSON *sw;
        cJSON_ArrayForEach(sw, all)
        {
            row(&t, sw);
        }
        vc_table_print(&t);
        vc_table_free(&t);
        if (next && next[0])
            fprintf(stderr, "vvctl: more sweeps: raise --limit (now %ld)\n", limit);
    }
    cJSON_Delete(all);
    free(next);
    free(base);
    return rc;
}
