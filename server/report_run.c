/* report_run.c - `vvd run --report-to URL ...`: a run on this machine,
 * reported to a central `vvd serve` (report.h).  The job's events are
 * printed as `vvd run` prints them (NDJSON on stdout) and sent; the run's
 * files are uploaded at the end. */
#include "device.h"
#include "kinds.h"
#include "models.h"
#include "report.h"
#include "run.h"
#include "spec.h"

#include "vv/err.h"
#include "vv/log.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int report_stop;

static void on_signal(int sig)
{
    if (atomic_load(&report_stop)) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    atomic_store(&report_stop, 1);
}

static void print_json(const cJSON *ev)
{
    char *s = cJSON_PrintUnformatted(ev);
    if (s) {
        puts(s);
        fflush(stdout);
        free(s);
    }
}

static void on_metric(void *ctx, const run_metric *m)
{
    cJSON *ev = run_metric_json(m);
    if (ev) {
        print_json(ev);
        reporter_event(ctx, "metric", ev);
    }
    cJSON_Delete(ev);
}

static void on_log(void *ctx, const cJSON *ev)
{
    print_json(ev);
    reporter_event(ctx, "log", ev);
}

static const char report_usage[] =
    "usage: vvd run --report-to URL [--token-file F] [--where TEXT] [--report-timeout S]\n"
    "               [--out DIR] [--device DEV]\n"
    "               (SPEC.json | --sweep SID [--index I] | --run RID)\n"
    "\n"
    "Runs a job here and reports it to the vvd serve at URL through its API: the\n"
    "run, its events (live), its files and its end appear in that daemon's history\n"
    "as if it had run them, with where it ran.\n"
    "  SPEC.json      a new run of this spec (its paths are this machine's)\n"
    "  --sweep SID    point I of the sweep SID, made with \"external\": true (vvctl\n"
    "                 sweep --emit slurm|k8s); I defaults to SLURM_ARRAY_TASK_ID or\n"
    "                 JOB_COMPLETION_INDEX.  A point that has ended is not run again\n"
    "  --run RID      the run RID, made with POST /v1/runs?external=1\n"
    "  --token-file F the daemon's bearer token (default: VVD_TOKEN)\n"
    "  --where TEXT   how the run names this worker (default: host, pid, job)\n"
    "  --report-timeout S  how long the daemon may stay unreachable (default 600 s):\n"
    "                 events wait and are sent again until it is back\n"
    "Exit status: 0 the run finished or stopped, or the point had ended already;\n"
    "1 it failed or could not be reported; 2 bad usage.\n";

/* The token of --token-file (first line), or VVD_TOKEN. */
static int read_token(const char *file, char *tok, size_t sz)
{
    tok[0] = 0;
    if (!file) {
        const char *e = getenv("VVD_TOKEN");
        snprintf(tok, sz, "%s", e ? e : "");
        return 0;
    }
    FILE *f = fopen(file, "r");
    if (!f || !fgets(tok, (int)sz, f)) {
        if (f)
            fclose(f);
        return vv_fail(VV_ENOFILE, "--token-file %s: cannot read it", file);
    }
    fclose(f);
    tok[strcspn(tok, "\r\n")] = 0;
    return 0;
}

int report_run_main(int argc, char **argv)
{
    const char *url = NULL, *token_file = NULL, *where = NULL, *sid = NULL, *rid = NULL;
    const char *spec_arg = NULL, *out = NULL, *device = getenv("VVD_DEVICE");
    const char *index_s = NULL;
    double timeout = 600;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(report_usage, stdout);
            return 0;
        }
        const char **slot = !strcmp(a, "--report-to")    ? &url
                            : !strcmp(a, "--token-file") ? &token_file
                            : !strcmp(a, "--where")      ? &where
                            : !strcmp(a, "--sweep")      ? &sid
                            : !strcmp(a, "--run")        ? &rid
                            : !strcmp(a, "--index")      ? &index_s
                            : !strcmp(a, "--out")        ? &out
                            : !strcmp(a, "--device")     ? &device
                                                         : NULL;
        if (!strcmp(a, "--report-timeout") && v) {
            timeout = atof(v);
            i++;
        } else if (slot && v) {
            *slot = v;
            i++;
        } else if (a[0] != '-' && !spec_arg) {
            spec_arg = a;
        } else {
            fprintf(stderr, "vvd run: bad argument '%s'\n%s", a, report_usage);
            return 2;
        }
    }
    const char *ranks =
        getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("PMI_SIZE");
    if (ranks && atoi(ranks) > 1) {
        fprintf(stderr,
                "vvd run: --report-to runs a job in one process, not under mpirun "
                "(%s ranks): each rank would claim a run of its own\n",
                ranks);
        return 2;
    }
    if (!index_s)
        index_s = getenv("SLURM_ARRAY_TASK_ID") ? getenv("SLURM_ARRAY_TASK_ID")
                                                : getenv("JOB_COMPLETION_INDEX");
    char *end = NULL;
    long index = index_s ? strtol(index_s, &end, 10) : -1;
    if (!url || (!!spec_arg + !!sid + !!rid) != 1 ||
        (sid && (!index_s || !*index_s || *end || index < 0)) || !(timeout > 0)) {
        fprintf(stderr, "vvd run: %s\n%s",
                sid ? "--sweep needs --index I (or SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX)"
                    : "give --report-to URL and one of SPEC.json, --sweep SID, --run RID",
                report_usage);
        return 2;
    }
    char tok[512];
    int rc = read_token(token_file, tok, sizeof tok);
    char *spec_text = NULL;
    if (rc == 0 && spec_arg) {
        FILE *f = fopen(spec_arg, "rb");
        size_t cap = 1 << 16, n = 0;
        spec_text = f ? malloc(cap + 1) : NULL;
        while (spec_text && (n += fread(spec_text + n, 1, cap - n, f)) == cap) {
            char *g = cap < (64u << 20) ? realloc(spec_text, 2 * cap + 1) : NULL;
            if (!g) {
                free(spec_text);
                spec_text = NULL;
                break;
            }
            spec_text = g;
            cap *= 2;
        }
        if (f)
            fclose(f);
        if (spec_text)
            spec_text[n] = 0;
        else
            rc = vv_fail(VV_ENOFILE, "%s: cannot read the spec file", spec_arg);
    }
    reporter *rep = NULL;
    report_opts o = {url, tok, timeout, where};
    if (rc == 0)
        rc = reporter_open(&o, &rep);
    char id[32] = "", state[32] = "";
    char *spec = NULL;
    if (rc == 0)
        rc = reporter_claim(rep, sid, (int)index, rid, spec_text, id, &spec, state, sizeof state);
    free(spec_text);
    if (rc < 0) {
        fprintf(stderr, "vvd run: %s\n", vv_err_detail());
        reporter_free(rep);
        return 1;
    }
    if (strcmp(state, "RUNNING")) {
        /* Ended already (a task run again), or another worker has it. */
        printf("{\"event\":\"skipped\",\"run\":\"%s\",\"state\":\"%s\"}\n", id, state);
        fprintf(stderr, "vvd run: %s is %s: nothing to do\n", id, state);
        free(spec);
        reporter_free(rep);
        return !strcmp(state, "FINISHED") || !strcmp(state, "STOPPED") ? 0 : 1;
    }
    VV_INFO("report", id, "running here, reported to %s", url);
    /* From here the run is the daemon's: every ending is reported. */
    char dev[32] = "auto", field[256] = "", outbuf[512];
    job_spec js = {0};
    int parsed = 0;
    if (device)
        snprintf(dev, sizeof dev, "%s", device);
    if (!device_name_ok(dev))
        rc = vv_fail(VV_EINVAL, "--device %.64s: unknown device (one of %s)", dev, device_names());
    if (rc == 0)
        rc = devices_open(dev);
    if (rc == 0 && (rc = spec_parse_job_text(spec, strlen(spec), &js, field, sizeof field)) == 0)
        parsed = 1;
    free(spec);
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "vvd-out/%s", id);
        out = outbuf;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    cJSON *result = NULL;
    if (rc == 0)
        rc = reporter_start(rep, &report_stop);
    if (rc == 0) {
        const char *dd = getenv("VVD_DATA_DIR");
        models_set_data_dir(dd && dd[0] ? dd : "vvd-data");
        run_sink sink = {on_metric, on_log, rep};
        rc = run_job(&js, out, &sink, &report_stop, NULL, &result, field, sizeof field);
    }
    if (parsed)
        spec_free_job(&js);
    devices_close();
    cJSON *err = NULL;
    const char *st = "FAILED", *why = NULL;
    if (rc == VV_ESTATE && atomic_load(&report_stop)) {
        /* Stopped during the statistics pass: no V to keep, as the daemon
         * ends its own runs stopped then. */
        st = "STOPPED";
        why = "user";
        printf("{\"event\":\"result\",\"state\":\"STOPPED\",\"stop_reason\":\"user\"}\n");
    } else if (rc < 0) {
        cJSON *eo = run_error_object(rc, field);
        print_json(eo);
        err = cJSON_DetachItemFromObject(eo, "error");
        cJSON_Delete(eo);
    } else {
        print_json(result);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(result, "state");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(result, "stop_reason");
        st = cJSON_IsString(s) ? s->valuestring : "FINISHED";
        why = cJSON_IsString(w) ? w->valuestring : NULL;
    }
    int frc = reporter_finish(rep, out, st, why, result, err);
    if (frc < 0)
        fprintf(stderr, "vvd run: %s: not reported: %s (its files are in %s)\n", id,
                vv_err_detail(), out);
    cJSON_Delete(result);
    cJSON_Delete(err);
    reporter_free(rep);
    return (rc < 0 && strcmp(st, "STOPPED")) || frc < 0 ? 1 : 0;
}
