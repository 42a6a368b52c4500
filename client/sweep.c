/* sweep.c - `vvctl sweep`: create a sweep, show its points with their
 * Pareto front, stop it, resume it and watch it (the model of a sweep and
 * of resume is in sweep.h). */
#include "sweep.h"

#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int sweep_status(const char *id)
{
    vc_sweep v;
    int rc = vc_sweep_load(id, &v);
    if (rc == VC_OK) {
        if (vc_opt.json) {
            cJSON *o = vc_sweep_json(&v);
            vc_print_json(o, 0);
            cJSON_Delete(o);
        } else {
            vc_sweep_print_table(&v);
        }
    }
    vc_sweep_free(&v);
    return rc;
}

/* ---- watch ------------------------------------------------------------------ */

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (!vc_interrupted && nanosleep(&ts, &ts) != 0)
        ;
}

/* Polls the sweep twice a second until none of its points is QUEUED or
 * RUNNING.  Plain output: a line per change of a point's run or state;
 * on a terminal one live line.  Ends with the status table. */
static int sweep_watch(const char *id)
{
    int tty = !vc_opt.json && vc_isatty_stdout();
    char **seen = NULL;
    int nseen = 0, line_on = 0, ret = -1;
    vc_catch_sigint(1);
    vc_sweep v = {0};
    for (;;) {
        int rc = vc_sweep_load(id, &v);
        if (rc) {
            ret = vc_interrupted ? VC_DETACHED : rc;
            break;
        }
        if (!seen) {
            nseen = v.npts;
            seen = calloc((size_t)nseen + 1, sizeof *seen);
        }
        int active = 0;
        const cJSON *running = NULL;
        for (int i = 0; i < v.npts; i++) {
            const vc_point *p = &v.pts[i];
            active |= vc_point_active(p);
            if (p->run && !strcmp(vc_str(p->run, "state", ""), "RUNNING"))
                running = p->run;
            char *key = NULL;
            vc_strcatf(&key, "%s %s", p->run ? vc_str(p->run, "id", "?") : "-",
                       p->run ? vc_str(p->run, "state", "?") : "MISSING");
            if (seen && i < nseen && key && (!seen[i] || strcmp(seen[i], key))) {
                free(seen[i]);
                seen[i] = key;
                key = NULL;
                if (line_on) {
                    fputs("\r\033[K", stdout);
                    line_on = 0;
                }
                char *vals = vc_point_values_text(&v, p);
                if (vc_opt.json) {
                    cJSON *e = cJSON_CreateObject();
                    cJSON_AddStringToObject(e, "sweep", id);
                    cJSON_AddNumberToObject(e, "point", i);
                    cJSON_AddItemToObject(e, "values", cJSON_Duplicate(p->values, 1));
                    cJSON_AddItemToObject(e, "run",
                                          p->run ? cJSON_Duplicate(p->run, 1) : cJSON_CreateNull());
                    vc_print_json(e, 0);
                    cJSON_Delete(e);
                } else {
                    const cJSON *res = p->run ? vc_point_result(p) : NULL;
                    char a1[64], a2[64];
                    printf("%s %s%s %s", id, p->run ? vc_str(p->run, "id", "?") : "-",
                           vals ? vals : "", seen[i] + strcspn(seen[i], " ") + 1);
                    if (p->run && !vc_point_active(p) && v.compress) {
                        char *w = vc_fmt_widths(res, 1);
                        printf(" widths=%s params=%s test_acc=%s", w ? w : "-",
                               vc_fmt_params(a1, sizeof a1, res), vc_fmt_acc(a2, sizeof a2, res));
                        free(w);
                    } else if (p->run && !vc_point_active(p)) {
                        printf(" active=%s mse=%s", vc_fmt_num(a1, sizeof a1, res, "active", 9),
                               vc_fmt_num(a2, sizeof a2, res, "mse", 7));
                    }
                    putchar('\n');
                }
                free(vals);
            }
            free(key);
        }
        if (tty) {
            char line[400];
            int n = snprintf(line, sizeof line, "%s %d points:", id, v.npts);
            for (int s = 0; s < 6 && n < (int)sizeof line; s++)
                if (v.counts[s])
                    n += snprintf(line + n, sizeof line - (size_t)n, " %s %d", vc_states[s],
                                  v.counts[s]);
            if (running && n < (int)sizeof line) {
                const cJSON *sum = cJSON_GetObjectItemCaseSensitive(running, "summary");
                char a1[32], a2[32], a3[32];
                snprintf(line + n, sizeof line - (size_t)n, "  | %s step %s rel_gap %s active %s",
                         vc_str(running, "id", "?"), vc_fmt_num(a1, sizeof a1, sum, "step", 12),
                         vc_fmt_num(a2, sizeof a2, sum, "rel_gap", 3),
                         vc_fmt_num(a3, sizeof a3, sum, "active", 9));
            }
            printf("\r\033[K%s", line);
            line_on = 1;
        }
        fflush(stdout);
        if (!active)
            break;
        vc_sweep_free(&v);
        nap_ms(500);
        if (vc_interrupted) {
            ret = VC_DETACHED;
            break;
        }
    }
    vc_catch_sigint(0);
    if (line_on) {
        fputs("\r\033[K", stdout);
        fflush(stdout);
    }
    for (int i = 0; i < nseen; i++)
        free(seen[i]);
    free(seen);
    if (ret == VC_DETACHED) {
        fprintf(stderr,
                "vvctl: detached from sweep %s; its runs go on.\n"
                "  re-attach: vvctl sweep watch %s\n  stop it:   vvctl sweep stop %s\n",
                id, id, id);
    } else if (ret < 0) {
        if (vc_opt.json) {
            cJSON *o = vc_sweep_json(&v);
            vc_print_json(o, 0);
            cJSON_Delete(o);
        } else {
            vc_sweep_print_table(&v);
        }
        ret = v.counts[4] || v.counts[5] ? VC_FAILED : VC_OK;
    }
    vc_sweep_free(&v);
    return ret;
}

/* ---- stop and resume -------------------------------------------------------------- */

static char *sweep_path(const char *id, const char *rest)
{
    char *eid = vc_urlencode(id, 0), *path = NULL;
    vc_strcatf(&path, "/v1/sweeps/%s%s", eid, rest);
    free(eid);
    return path;
}

/* POST /v1/sweeps/ID/stop stops every queued or running run of the sweep
 * (all attempts) and answers with the sweep. */
static int sweep_stop(const char *id)
{
    char *path = sweep_path(id, "/stop");
    int rc;
    cJSON *sw = vc_call("POST", path, NULL, &rc);
    free(path);
    if (!sw)
        return rc;
    vc_sweep v;
    rc = vc_sweep_from_json(id, sw, &v);
    if (rc == VC_OK) {
        if (vc_opt.json) {
            cJSON *o = vc_sweep_json(&v);
            vc_print_json(o, 0);
            cJSON_Delete(o);
        } else {
            printf("sweep %s stopped\n", id);
            vc_sweep_print_counts(&v);
        }
    }
    vc_sweep_free(&v);
    return rc;
}

/* POST /v1/sweeps/ID/resume: the daemon queues, inside the sweep, a new
 * attempt of every point whose latest attempt FAILED, CRASHED or was
 * STOPPED, and of every point that never got a run. */
static int sweep_resume(const char *id, int watch)
{
    char *path = sweep_path(id, "/resume");
    int rc;
    cJSON *ans = vc_call("POST", path, NULL, &rc);
    free(path);
    if (!ans)
        return rc;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(ans, "requeued"), *e;
    int n = cJSON_GetArraySize(list);
    if (vc_opt.json) {
        vc_print_json(ans, 0);
    } else if (n == 0) {
        printf("%s: nothing to resume (no point FAILED, CRASHED, STOPPED or missing)\n", id);
    } else {
        /* The sweep again, for the grid values of the re-queued points. */
        vc_sweep v;
        int lrc = vc_sweep_load(id, &v);
        cJSON_ArrayForEach(e, list)
        {
            const vc_point *p =
                lrc == VC_OK ? vc_sweep_find_point(&v, vc_str(e, "point", "")) : NULL;
            char *vals = p ? vc_point_values_text(&v, p) : NULL;
            printf("%s: re-queued %s%s attempt %.0f (was %s)\n", id, vc_str(e, "run", "?"),
                   vals ? vals : "", vc_num(e, "attempt", 0), vc_str(e, "was", "?"));
            free(vals);
        }
        vc_sweep_free(&v);
        printf("%s: %d point%s re-queued\n", id, n, n == 1 ? "" : "s");
        rc = lrc;
    }
    cJSON_Delete(ans);
    fflush(stdout);
    if (rc == VC_OK && watch)
        rc = sweep_watch(id);
    return rc;
}

/* ---- create ---------------------------------------------------------------------- */

static const vc_optdef create_defs[] = {
    {"grid", 1},   {"file", 1},       {"name", 1},   {"watch", 0},       {"dry-run", 0},
    {"upload", 0}, {"emit", 1},       {"output", 1}, {"report-to", 1},   {"token-file", 1},
    {"image", 1},  {"vvd", 1},        {"mem", 1},    {"gpus", 1},        {"cpus", 1},
    {"time", 1},   {"parallelism", 1}, {NULL, 0}};

/* The --emit options; VC_USAGE (printed) when one is bad. */
static int emit_opts(const vc_args *a, vc_emit_opts *o)
{
    const char *v;
    memset(o, 0, sizeof *o);
    o->kind = vc_arg(create_defs, a, "emit");
    o->report_to = vc_arg(create_defs, a, "report-to") ? vc_arg(create_defs, a, "report-to")
                                                       : vc_opt.server;
    o->token_file = vc_arg(create_defs, a, "token-file");
    o->image = vc_arg(create_defs, a, "image") ? vc_arg(create_defs, a, "image") : "vvd:latest";
    o->vvd = vc_arg(create_defs, a, "vvd") ? vc_arg(create_defs, a, "vvd") : "vvd";
    o->time = vc_arg(create_defs, a, "time");
    o->gpus = -1;
    o->cpus = 4;
    long l;
    if (strcmp(o->kind, "slurm") && strcmp(o->kind, "k8s"))
        return vc_usage("sweep", "--emit %s: slurm or k8s", o->kind);
    if ((v = vc_arg(create_defs, a, "mem")) && vc_parse_mem(v, &o->mem_mib) < 0)
        return vc_usage("sweep", "--mem %s: a size such as 4096M, 8G or 8Gi", v);
    if ((v = vc_arg(create_defs, a, "gpus")) && (vc_parse_long(v, &l) || l < 0 || l > 64))
        return vc_usage("sweep", "--gpus %s: 0 to 64", v);
    if (v)
        o->gpus = (int)l;
    if ((v = vc_arg(create_defs, a, "cpus")) && (vc_parse_long(v, &l) || l < 1 || l > 1024))
        return vc_usage("sweep", "--cpus %s: 1 to 1024", v);
    if (v)
        o->cpus = (int)l;
    if ((v = vc_arg(create_defs, a, "parallelism")) &&
        (vc_parse_long(v, &l) || l < 1 || l > 100000))
        return vc_usage("sweep", "--parallelism %s: 1 to 100000", v);
    if (v)
        o->parallelism = (int)l;
    return VC_OK;
}

static int sweep_create(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("sweep", argc, argv, create_defs, "grid", &a);
    if (rc)
        return rc < 0 ? vc_help("sweep") : rc;
    const char *file = vc_arg(create_defs, &a, "file");
    if ((file != NULL) + a.npos != 1)
        return vc_usage("sweep", "give a base spec file or --file SWEEP.json (one of them)");
    cJSON *req;
    char err[400];
    if (file) {
        req = vc_read_json(file);
        if (!req)
            return VC_USAGE;
        cJSON *grid = cJSON_GetObjectItemCaseSensitive(req, "grid"), *ax;
        if (!cJSON_IsObject(req) ||
            !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(req, "base"))) {
            cJSON_Delete(req);
            return vc_usage("sweep", "%s: a sweep file is {\"base\": spec, \"grid\": {...}}", file);
        }
        if (!grid)
            grid = cJSON_AddObjectToObject(req, "grid");
        cJSON_ArrayForEach(ax, grid)
        {
            /* A string axis is vvctl's grid syntax. */
            if (!cJSON_IsString(ax))
                continue;
            cJSON *vals = vc_grid_values(ax->valuestring, err, sizeof err);
            if (!vals) {
                cJSON_Delete(req);
                return vc_usage("sweep", "%s: bad grid /grid/%s: %s", file, ax->string, err);
            }
            vals->string = strdup(ax->string);
            cJSON_ReplaceItemViaPointer(grid, ax, vals);
            ax = vals;
        }
    } else {
        cJSON *base = vc_read_json(a.pos[0]);
        if (!base)
            return VC_USAGE;
        if (!cJSON_IsObject(base)) {
            cJSON_Delete(base);
            return vc_usage("sweep", "%s: a job spec must be a JSON object", a.pos[0]);
        }
        req = cJSON_CreateObject();
        cJSON_AddItemToObject(req, "base", base);
        cJSON_AddObjectToObject(req, "grid");
    }
    cJSON *grid = cJSON_GetObjectItemCaseSensitive(req, "grid");
    for (int i = 0; i < a.nmulti; i++) {
        char *field;
        cJSON *vals;
        if (vc_grid_parse(a.multi[i], &field, &vals, err, sizeof err)) {
            cJSON_Delete(req);
            return vc_usage("sweep", "%s", err);
        }
        int dup = cJSON_GetObjectItemCaseSensitive(grid, field) && !file;
        if (dup) {
            vc_usage("sweep", "--grid %s given twice", field);
            free(field);
            cJSON_Delete(vals);
            cJSON_Delete(req);
            return VC_USAGE;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(grid, field);
        cJSON_AddItemToObject(grid, field, vals);
        free(field);
    }
    if (!cJSON_IsObject(grid) || !grid->child) {
        cJSON_Delete(req);
        return vc_usage("sweep", "no grid: give --grid FIELD=VALUES");
    }
    const char *name = vc_arg(create_defs, &a, "name");
    if (name) {
        cJSON_DeleteItemFromObjectCaseSensitive(req, "name");
        cJSON_AddStringToObject(req, "name", name);
    }
    vc_emit_opts eo;
    const char *emit = vc_arg(create_defs, &a, "emit");
    if (emit && (rc = emit_opts(&a, &eo)) != VC_OK) {
        cJSON_Delete(req);
        return rc;
    }
    if (emit) {
        /* Its points wait for workers that the scheduler starts. */
        cJSON_DeleteItemFromObjectCaseSensitive(req, "external");
        cJSON_AddTrueToObject(req, "external");
    }
    rc = VC_OK;
    if (vc_arg(create_defs, &a, "upload"))
        rc = vc_upload_spec_files(cJSON_GetObjectItemCaseSensitive(req, "base"));
    if (rc == VC_OK && vc_arg(create_defs, &a, "dry-run")) {
        vc_print_json(req, 1);
        cJSON_Delete(req);
        return VC_OK;
    }
    char *text = rc == VC_OK ? cJSON_PrintUnformatted(req) : NULL;
    if (!text) {
        cJSON_Delete(req);
        return rc ? rc : VC_FAILED;
    }
    cJSON *sw = vc_call("POST", "/v1/sweeps", text, &rc);
    free(text);
    if (sw && emit) {
        const char *outp = vc_arg(create_defs, &a, "output");
        FILE *f = outp ? fopen(outp, "w") : stdout;
        rc = f ? vc_emit(f, &eo, req, sw) : VC_FAILED;
        if (!f)
            fprintf(stderr, "vvctl: %s: %s\n", outp, strerror(errno));
        if (f && f != stdout && fclose(f) != 0)
            rc = VC_FAILED;
        if (rc == VC_OK)
            fprintf(stderr,
                    "vvctl: sweep %s: %.0f points wait for workers; %s%s%s; vvctl sweep watch "
                    "%s\n",
                    vc_str(sw, "id", "?"), vc_num(sw, "points", 0),
                    !strcmp(eo.kind, "slurm") ? "sbatch " : "kubectl apply -f ",
                    outp ? outp : "(the script above)", "", vc_str(sw, "id", "?"));
        cJSON_Delete(sw);
        cJSON_Delete(req);
        return rc;
    }
    cJSON_Delete(req);
    if (!sw)
        return rc;
    const char *id = vc_str(sw, "id", "?");
    int watch = vc_arg(create_defs, &a, "watch") != NULL;
    if (vc_opt.json && !watch) {
        vc_print_json(sw, 0);
    } else if (!vc_opt.json) {
        printf("%s\n", id);
        fprintf(stderr, "vvctl: sweep %s: %.0f points queued; vvctl sweep status %s\n", id,
                vc_num(sw, "points", 0), id);
    }
    fflush(stdout);
    if (watch) {
        char *copy = strdup(id);
        rc = copy ? sweep_watch(copy) : VC_FAILED;
        free(copy);
    }
    cJSON_Delete(sw);
    return rc;
}

/* ---- dispatch --------------------------------------------------------------------- */

static const vc_optdef resume_defs[] = {{"watch", 0}, {NULL, 0}};

int vc_cmd_sweep(int argc, char **argv)
{
    static const char *const subs[] = {"status", "stop", "resume", "watch", "ls", NULL};
    static const char *const with_value[] = {
        "--server", "--token", "--grid",      "--file",       "--name",  "--state",
        "--kind",   "--q",     "--limit",     "--emit",       "--output", "--report-to",
        "--token-file", "--image", "--vvd",   "--mem",        "--gpus",  "--cpus",
        "--time",   "--parallelism"};
    /* The subcommand is the first argument that is not an option or an
     * option's value (so that `vvctl sweep --json status ID` works). */
    int first = -1, sub = -1;
    for (int i = 0; i < argc && first < 0 && strcmp(argv[i], "--"); i++) {
        if (argv[i][0] != '-') {
            first = i;
            break;
        }
        for (unsigned k = 0; k < sizeof with_value / sizeof *with_value; k++)
            if (!strcmp(argv[i], with_value[k])) {
                i++;
                break;
            }
    }
    for (int i = 0; first >= 0 && subs[i]; i++)
        if (!strcmp(argv[first], subs[i]))
            sub = i;
    if (sub < 0 && first >= 0 && access(argv[first], F_OK) != 0) {
        /* Not a spec file here: a misspelled subcommand? */
        static const char *const words[] = {"status", "stop", "resume", "watch",
                                            "ls",     "list", NULL};
        const char *near = vc_suggest(argv[first], words);
        if (near && !strcmp(near, "list"))
            near = "ls";
        if (near)
            return vc_usage("sweep", "unknown sweep subcommand '%s'; did you mean '%s'?",
                            argv[first], near);
    }
    if (sub < 0)
        return sweep_create(argc, argv);
    char *rest[64];
    int nrest = 0;
    if (sub == 4) {
        for (int i = 0; i < argc && nrest < 64; i++)
            if (i != first)
                rest[nrest++] = argv[i];
        return vc_sweep_ls(nrest, rest);
    }
    for (int i = 0; i < argc && nrest < 64; i++)
        if (i != first)
            rest[nrest++] = argv[i];
    char cmd[32];
    snprintf(cmd, sizeof cmd, "sweep %s", subs[sub]);
    vc_args a;
    int rc = vc_parse_args(cmd, nrest, rest, sub == 2 ? resume_defs : NULL, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("sweep") : rc;
    if (a.npos != 1)
        return vc_usage("sweep", "%s takes one sweep id", cmd);
    switch (sub) {
    case 0:
        return sweep_status(a.pos[0]);
    case 1:
        return sweep_stop(a.pos[0]);
    case 2:
        return sweep_resume(a.pos[0], vc_arg(resume_defs, &a, "watch") != NULL);
    default:
        return sweep_watch(a.pos[0]);
    }
}
