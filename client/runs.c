/* runs.c - the run commands of vvctl: submit, lasso, stop, ls, show,
 * metrics and get. */
#include "vvctl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- submit and lasso ---------------------------------------------------------- */

/* POSTs a spec as a new run, then prints it or watches it. */
static int post_spec(cJSON *spec, int watch)
{
    char *text = cJSON_PrintUnformatted(spec);
    int rc;
    cJSON *run = text ? vc_call("POST", "/v1/runs", text, &rc) : NULL;
    free(text);
    if (!run)
        return text ? rc : VC_FAILED;
    const char *id = vc_str(run, "id", NULL);
    if (!id) {
        cJSON_Delete(run);
        fprintf(stderr, "vvctl: the server's answer has no run id\n");
        return VC_FAILED;
    }
    if (vc_opt.json && !watch)
        vc_print_json(run, 0);
    else if (!vc_opt.json)
        printf("%s\n", id);
    fflush(stdout);
    int ret = VC_OK;
    if (watch) {
        char *copy = strdup(id);
        ret = copy ? vc_watch_run(copy) : VC_FAILED;
        free(copy);
    } else if (!vc_opt.json) {
        fprintf(stderr, "vvctl: %s queued (position %.0f); follow it with: vvctl watch %s\n", id,
                vc_num(run, "queue_position", 0), id);
    }
    cJSON_Delete(run);
    return ret;
}

static const vc_optdef submit_defs[] = {{"watch", 0}, {"upload", 0}, {"dry-run", 0}, {NULL, 0}};

int vc_cmd_submit(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("submit", argc, argv, submit_defs, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("submit") : rc;
    if (a.npos != 1)
        return vc_usage("submit", "submit takes one spec file (or - for stdin)");
    cJSON *spec = vc_read_json(a.pos[0]);
    if (!spec)
        return VC_USAGE;
    if (!cJSON_IsObject(spec)) {
        cJSON_Delete(spec);
        return vc_usage("submit", "%s: a job spec must be a JSON object", a.pos[0]);
    }
    rc = vc_arg(submit_defs, &a, "upload") ? vc_upload_spec_files(spec) : VC_OK;
    if (rc == VC_OK && vc_arg(submit_defs, &a, "dry-run"))
        vc_print_json(spec, 1);
    else if (rc == VC_OK)
        rc = post_spec(spec, vc_arg(submit_defs, &a, "watch") != NULL);
    cJSON_Delete(spec);
    return rc;
}

static const vc_optdef lasso_defs[] = {{"phi", 1},
                                       {"psi", 1},
                                       {"bias", 1},
                                       {"generate", 1},
                                       {"lambda", 1},
                                       {"lambda-paper", 1},
                                       {"lambda-ratio", 1},
                                       {"target-active", 1},
                                       {"solver", 1},
                                       {"tol", 1},
                                       {"max-iter", 1},
                                       {"max-seconds", 1},
                                       {"mu", 1},
                                       {"init", 1},
                                       {"seed", 1},
                                       {"refit", 0},
                                       {"name", 1},
                                       {"metrics-every", 1},
                                       {"watch", 0},
                                       {"upload", 0},
                                       {"dry-run", 0},
                                       {"device", 1},
                                       {NULL, 0}};

/* Adds a number option to the spec; VC_USAGE when it is not a number. */
static int add_number(cJSON *spec, const vc_args *a, const char *opt, const char *field,
                      int integer)
{
    const char *v = vc_arg(lasso_defs, a, opt);
    if (!v)
        return 0;
    double d;
    long l;
    if (integer ? vc_parse_long(v, &l) : vc_parse_double(v, &d))
        return vc_usage("lasso", "--%s: '%s' is not %s", opt, v,
                        integer ? "an integer" : "a number");
    cJSON_AddNumberToObject(spec, field, integer ? (double)l : d);
    return 0;
}

/* Builds the spec of `vvctl lasso` from its options; NULL on a usage error
 * (printed). */
static cJSON *lasso_spec(const vc_args *a)
{
    cJSON *spec = cJSON_CreateObject();
    cJSON_AddStringToObject(spec, "kind", "lasso");
    const char *name = vc_arg(lasso_defs, a, "name");
    if (name)
        cJSON_AddStringToObject(spec, "name", name);
    const char *phi = vc_arg(lasso_defs, a, "phi"), *psi = vc_arg(lasso_defs, a, "psi");
    const char *gen = vc_arg(lasso_defs, a, "generate");
    int rc = 0;
    if (gen && (phi || psi))
        rc = vc_usage("lasso", "give --phi and --psi, or --generate, not both");
    else if (!gen && (!phi || !psi))
        rc = vc_usage("lasso", "give --phi and --psi (or --generate N,K,D[,SEED])");
    if (!rc && gen) {
        char *copy = strdup(gen), *save = NULL;
        const char *names[] = {"n", "k", "d", "seed"};
        cJSON *g = cJSON_AddObjectToObject(spec, "generate");
        int i = 0;
        for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save), i++) {
            long v;
            if (i >= 4 || vc_parse_long(t, &v))
                rc = vc_usage("lasso", "--generate: expected N,K,D[,SEED] integers, got '%s'", gen);
            else
                cJSON_AddNumberToObject(g, names[i], (double)v);
        }
        if (!rc && i < 3)
            rc = vc_usage("lasso", "--generate: expected N,K,D[,SEED] integers, got '%s'", gen);
        free(copy);
    }
    if (!rc && phi) {
        cJSON_AddStringToObject(spec, "phi", phi);
        cJSON_AddStringToObject(spec, "psi", psi);
    }
    const char *bias = vc_arg(lasso_defs, a, "bias");
    if (!rc && bias) {
        /* A comma list of numbers is an inline bias; anything else a file. */
        cJSON *vals = cJSON_CreateArray();
        int numeric = 1;
        char *copy = strdup(bias), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t && numeric; t = strtok_r(NULL, ",", &save)) {
            double v;
            numeric = !vc_parse_double(t, &v);
            if (numeric)
                cJSON_AddItemToArray(vals, cJSON_CreateNumber(v));
        }
        free(copy);
        if (numeric && cJSON_GetArraySize(vals) > 0)
            cJSON_AddItemToObject(spec, "bias", vals);
        else {
            cJSON_Delete(vals);
            cJSON_AddStringToObject(spec, "bias", bias);
        }
    }
    static const char *const lambdas[][2] = {{"lambda", "lambda"},
                                             {"lambda-paper", "lambda_paper"},
                                             {"lambda-ratio", "lambda_ratio"},
                                             {"target-active", "target_active"}};
    int nl = 0;
    for (int i = 0; i < 4; i++)
        nl += vc_arg(lasso_defs, a, lambdas[i][0]) != NULL;
    if (!rc && nl != 1)
        rc = vc_usage("lasso", "give exactly one of --lambda, --lambda-paper, --lambda-ratio, "
                               "--target-active");
    for (int i = 0; i < 4 && !rc; i++)
        rc = add_number(spec, a, lambdas[i][0], lambdas[i][1], i == 3);
    const char *solver = vc_arg(lasso_defs, a, "solver");
    if (!rc && solver)
        cJSON_AddStringToObject(spec, "solver", solver);
    if (!rc)
        rc = add_number(spec, a, "tol", "tol", 0);
    if (!rc)
        rc = add_number(spec, a, "max-iter", "max_iter", 1);
    if (!rc)
        rc = add_number(spec, a, "max-seconds", "max_seconds", 0);
    if (!rc)
        rc = add_number(spec, a, "mu", "mu", 0);
    const char *init = vc_arg(lasso_defs, a, "init");
    if (!rc && init)
        cJSON_AddStringToObject(spec, "init", init);
    const char *device = vc_arg(lasso_defs, a, "device");
    if (!rc && device)
        cJSON_AddStringToObject(spec, "device", device);
    if (!rc)
        rc = add_number(spec, a, "seed", "seed", 1);
    if (!rc && vc_arg(lasso_defs, a, "refit"))
        cJSON_AddTrueToObject(spec, "refit");
    if (!rc)
        rc = add_number(spec, a, "metrics-every", "metrics_every", 1);
    if (rc) {
        cJSON_Delete(spec);
        return NULL;
    }
    return spec;
}

int vc_cmd_lasso(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("lasso", argc, argv, lasso_defs, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("lasso") : rc;
    if (a.npos)
        return vc_usage("lasso", "unexpected argument '%s'", a.pos[0]);
    cJSON *spec = lasso_spec(&a);
    if (!spec)
        return VC_USAGE;
    rc = vc_arg(lasso_defs, &a, "upload") ? vc_upload_spec_files(spec) : VC_OK;
    if (rc == VC_OK && vc_arg(lasso_defs, &a, "dry-run"))
        vc_print_json(spec, 1);
    else if (rc == VC_OK)
        rc = post_spec(spec, vc_arg(lasso_defs, &a, "watch") != NULL);
    cJSON_Delete(spec);
    return rc;
}

/* ---- stop, show, get ------------------------------------------------------------ */

/* Parses a command that takes exactly one run id. */
static int one_id(const char *cmd, int argc, char **argv, const char **id)
{
    vc_args a;
    int rc = vc_parse_args(cmd, argc, argv, NULL, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help(cmd) : rc;
    if (a.npos != 1)
        return vc_usage(cmd, "%s takes one run id", cmd);
    *id = a.pos[0];
    return VC_OK;
}

static int is_ended(const char *st)
{
    return !strcmp(st, "FINISHED") || !strcmp(st, "STOPPED") || !strcmp(st, "FAILED") ||
           !strcmp(st, "CRASHED");
}

/* A run that had already ended: said, not an error. */
static int already_ended(const cJSON *run, const char *id)
{
    if (vc_opt.json)
        vc_print_json(run, 0);
    else
        printf("%s: the run had already ended (state %s); nothing to stop\n", vc_str(run, "id", id),
               vc_str(run, "state", "?"));
    return VC_OK;
}

int vc_cmd_stop(int argc, char **argv)
{
    const char *id = NULL;
    int rc = one_id("stop", argc, argv, &id);
    if (rc || !id) /* !id: the help was asked for */
        return rc;
    char *eid = vc_urlencode(id, 0), *path = NULL;
    vc_strcatf(&path, "/v1/runs/%s", eid);
    free(eid);
    /* The state first: stopping an ended run changes nothing (the daemon
     * answers it unchanged), and the user is told so. */
    cJSON *run = vc_call("GET", path, NULL, &rc);
    if (!run || is_ended(vc_str(run, "state", ""))) {
        if (run)
            rc = already_ended(run, id);
        cJSON_Delete(run);
        free(path);
        return rc;
    }
    cJSON_Delete(run);
    vc_strcatf(&path, "/stop");
    vc_resp r;
    rc = vc_http("POST", path, NULL, &r);
    free(path);
    if (rc)
        return rc;
    run = r.status >= 200 && r.status < 300 ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    if (!run) {
        if (r.status >= 200 && r.status < 300)
            fprintf(stderr, "vvctl: POST /v1/runs/%s/stop: the answer is not JSON\n", id);
        else
            vc_print_problem(&r);
        vc_resp_free(&r);
        return VC_FAILED;
    }
    vc_resp_free(&r);
    if (vc_opt.json)
        vc_print_json(run, 0);
    else {
        const char *st = vc_str(run, "state", "?");
        if (!strcmp(st, "RUNNING"))
            printf("%s: stop requested; it stops at its next iteration (vvctl watch %s)\n",
                   vc_str(run, "id", id), vc_str(run, "id", id));
        else
            printf("%s: %s\n", vc_str(run, "id", id), st);
    }
    cJSON_Delete(run);
    return VC_OK;
}

static const char *fmt_time(char *b, size_t sz, double t)
{
    if (!(t > 0))
        return strcpy(b, "-");
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(b, sz, "%Y-%m-%d %H:%M:%S", &tm);
    return b;
}

int vc_cmd_show(int argc, char **argv)
{
    const char *id = NULL;
    int rc = one_id("show", argc, argv, &id);
    if (rc || !id) /* !id: the help was asked for */
        return rc;
    char *eid = vc_urlencode(id, 0), *path = NULL;
    vc_strcatf(&path, "/v1/runs/%s", eid);
    cJSON *run = vc_call("GET", path, NULL, &rc);
    free(path);
    free(eid);
    if (!run)
        return rc;
    if (vc_opt.json) {
        vc_print_json(run, 1);
        cJSON_Delete(run);
        return VC_OK;
    }
    char b1[64], b2[64], b3[64];
    double started = vc_num(run, "started", 0), finished = vc_num(run, "finished", 0);
    const char *name = vc_run_name(run), *notes = vc_str(run, "notes", "");
    char *tags = vc_fmt_tags(run);
    if (name)
        printf("name      %s\n", name);
    printf("kind      %s\n", vc_str(run, "kind", "?"));
    if (vc_str(run, "runner", NULL))
        printf("runner    %s\n", vc_str(run, "runner", ""));
    if (tags)
        printf("tags      %s\n", tags);
    free(tags);
    if (notes[0]) {
        /* Every line of the notes, indented under the first. */
        printf("notes     ");
        for (const char *p = notes; *p;) {
            size_t n = strcspn(p, "\n");
            printf("%s%.*s\n", p == notes ? "" : "          ", (int)n, p);
            p += n + (p[n] == '\n');
        }
    }
    if (vc_str(run, "point", NULL))
        printf("sweep     %s  point %s  attempt %.0f\n", vc_str(run, "sweep_id", "-"),
               vc_str(run, "point", "?"), vc_num(run, "attempt", 1));
    else
        printf("sweep     %s\n", vc_str(run, "sweep_id", "-"));
    printf("created   %s\n", fmt_time(b1, sizeof b1, vc_num(run, "created", 0)));
    printf("started   %s\n", fmt_time(b2, sizeof b2, started));
    printf("finished  %s%s%s%s\n", fmt_time(b3, sizeof b3, finished),
           finished > 0 && started > 0 ? " (" : "",
           finished > 0 && started > 0 ? vc_fmt_duration(b1, sizeof b1, finished - started) : "",
           finished > 0 && started > 0 ? ")" : "");
    if (!strcmp(vc_str(run, "state", ""), "QUEUED"))
        printf("queue     position %.0f: %s\n", vc_num(run, "queue_position", 0),
               vc_str(run, "waiting_reason", ""));
    char *spec = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(run, "spec"));
    printf("spec      %s\n", spec ? spec : "-");
    free(spec);
    vc_print_run_summary(run);
    cJSON_Delete(run);
    return VC_OK;
}

static const vc_optdef get_defs[] = {{"o", 1}, {"output", 1}, {NULL, 0}};

int vc_cmd_get(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("get", argc, argv, get_defs, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("get") : rc;
    if (a.npos != 2)
        return vc_usage("get", "get takes a run id and an artifact name");
    const char *out = vc_arg(get_defs, &a, "o");
    if (!out)
        out = vc_arg(get_defs, &a, "output");
    if (!out) {
        const char *slash = strrchr(a.pos[1], '/');
        out = slash ? slash + 1 : a.pos[1];
    }
    char *eid = vc_urlencode(a.pos[0], 0), *ename = vc_urlencode(a.pos[1], 1), *path = NULL;
    vc_strcatf(&path, "/v1/runs/%s/artifacts/%s", eid, ename);
    rc = vc_download(path, out);
    if (rc == VC_OK && strcmp(out, "-"))
        fprintf(stderr, "vvctl: wrote %s\n", out);
    free(path);
    free(eid);
    free(ename);
    return rc;
}

/* ---- ls ------------------------------------------------------------------------- */

static const vc_optdef ls_defs[] = {{"state", 1},     {"kind", 1}, {"sweep", 1},
                                    {"page-size", 1}, {"all", 0},  {"page-token", 1},
                                    {"tag", 1},       {"q", 1},    {NULL, 0}};

enum { LS_FIXED = 12 }; /* columns before TEST_ACC and PARAMS */

/* One row of ls; acc adds TEST_ACC and PARAMS. */
static void ls_row(vc_table *t, const cJSON *run, double now, int acc)
{
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(run, "summary");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(run, "spec");
    const cJSON *res = vc_run_result(run);
    char lam[32], ratio[32], mu[32], act[32], gap[32], dur[32], ta[64], par[64];
    vc_fmt_lambda(lam, sizeof lam, run);
    vc_fmt_num(ratio, sizeof ratio, spec, "lambda_ratio", 4);
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(spec, "mu")))
        vc_fmt_num(mu, sizeof mu, spec, "mu", 4);
    else
        vc_fmt_num(mu, sizeof mu, res, "mu", 4);
    char *widths = vc_fmt_widths(cJSON_GetObjectItemCaseSensitive(run, "result"), 1);
    if (widths)
        snprintf(act, sizeof act, "%s", widths);
    else
        vc_fmt_num(act, sizeof act, sum, "active", 9);
    free(widths);
    vc_fmt_num(gap, sizeof gap, sum, "rel_gap", 3);
    if (vc_run_is_compress(run) &&
        cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(run, "result"))) {
        vc_fmt_acc(ta, sizeof ta, res);
        vc_fmt_params(par, sizeof par, res);
    } else {
        vc_fmt_num(ta, sizeof ta, sum, "test_acc", 4);
        vc_fmt_num(par, sizeof par, sum, "params", 12);
    }
    double st = vc_num(run, "started", 0), fi = vc_num(run, "finished", 0);
    if (st > 0)
        vc_fmt_duration(dur, sizeof dur, (fi > 0 ? fi : now) - st);
    else
        strcpy(dur, "-");
    const char *cells[] = {vc_str(run, "id", "?"),
                           vc_run_name(run),
                           vc_str(run, "kind", "?"),
                           vc_str(run, "state", "?"),
                           vc_str(run, "sweep_id", "-"),
                           lam,
                           ratio,
                           mu,
                           act,
                           gap,
                           dur,
                           vc_str(run, "stop_reason", "-"),
                           ta,
                           par};
    if (acc) {
        /* TEST_ACC and PARAMS before DURATION and STOP_REASON. */
        const char *c2[] = {cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6],
                            cells[7], cells[8], cells[9], ta,       par,      dur,      cells[11]};
        vc_table_row(t, c2);
    } else {
        vc_table_row(t, cells);
    }
}

int vc_cmd_ls(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("ls", argc, argv, ls_defs, "tag", &a);
    if (rc)
        return rc < 0 ? vc_help("ls") : rc;
    if (a.npos)
        return vc_usage("ls", "unexpected argument '%s'", a.pos[0]);
    int all = vc_arg(ls_defs, &a, "all") != NULL;
    const char *tok = vc_arg(ls_defs, &a, "page-token");
    if (all && tok)
        return vc_usage("ls", "--all and --page-token exclude each other");
    char *base = strdup("/v1/runs?");
    static const char *const q[][2] = {{"state", "state"},
                                       {"kind", "kind"},
                                       {"sweep", "sweep"},
                                       {"q", "q"},
                                       {"page-size", "page_size"}};
    for (int i = 0; i < 5; i++) {
        const char *v = vc_arg(ls_defs, &a, q[i][0]);
        char up[32];
        if (v && i == 0) /* states in any case */
            v = vc_upper(up, sizeof up, v);
        if (v) {
            char *e = vc_urlencode(v, 0);
            vc_strcatf(&base, "%s=%s&", q[i][1], e);
            free(e);
        }
    }
    for (int i = 0; i < a.nmulti; i++) {
        char *e = vc_urlencode(a.multi[i], 0);
        vc_strcatf(&base, "tag=%s&", e);
        free(e);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    /* Every run of the pages asked for, then the table (its columns depend
     * on what the runs have). */
    cJSON *merged = cJSON_CreateArray();
    char *next = tok ? strdup(tok) : NULL;
    rc = VC_OK;
    do {
        char *path = strdup(base);
        if (next && next[0]) {
            char *e = vc_urlencode(next, 0);
            vc_strcatf(&path, "page_token=%s", e);
            free(e);
        }
        cJSON *page = vc_call("GET", path, NULL, &rc);
        free(path);
        free(next);
        next = NULL;
        if (!page)
            break;
        next = strdup(vc_str(page, "next_page_token", ""));
        cJSON *runs = cJSON_GetObjectItemCaseSensitive(page, "runs"), *run;
        cJSON_ArrayForEach(run, runs)
        {
            cJSON_AddItemToArray(merged, cJSON_Duplicate(run, 1));
        }
        if (vc_opt.json && !all)
            vc_print_json(page, 0);
        cJSON_Delete(page);
    } while (all && next && next[0]);
    if (rc == VC_OK && vc_opt.json && all) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "runs", merged);
        merged = NULL;
        cJSON_AddStringToObject(o, "next_page_token", "");
        vc_print_json(o, 0);
        cJSON_Delete(o);
    }
    if (rc == VC_OK && !vc_opt.json) {
        int acc = 0;
        const cJSON *run;
        cJSON_ArrayForEach(run, merged)
        {
            const cJSON *sum = cJSON_GetObjectItemCaseSensitive(run, "summary");
            acc |= cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(sum, "test_acc")) ||
                   cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(sum, "params"));
        }
        vc_table t;
        vc_table_init(&t, LS_FIXED + 2 * acc);
        const char *head[] = {"ID",       "NAME",        "KIND", "STATE",  "SWEEP",
                              "LAMBDA",   "RATIO",       "MU",   "ACTIVE", "REL_GAP",
                              "DURATION", "STOP_REASON", NULL,   NULL};
        const char *head_acc[] = {"ID",       "NAME",   "KIND",     "STATE",      "SWEEP",
                                  "LAMBDA",   "RATIO",  "MU",       "ACTIVE",     "REL_GAP",
                                  "TEST_ACC", "PARAMS", "DURATION", "STOP_REASON"};
        vc_table_row(&t, acc ? head_acc : head);
        cJSON_ArrayForEach(run, merged)
        {
            ls_row(&t, run, now, acc);
        }
        vc_table_print(&t);
        vc_table_free(&t);
        if (next && next[0])
            fprintf(stderr, "vvctl: more runs: vvctl ls --page-token %s (or --all)\n", next);
    }
    cJSON_Delete(merged);
    free(next);
    free(base);
    return rc;
}
