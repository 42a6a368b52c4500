/* emit.c - `vvctl sweep ... --emit slurm|k8s`: a sweep whose points run on a
 * cluster's workers and report to this daemon.  The sweep is made with
 * "external": true (its runs wait for workers), then a Slurm job-array
 * script or a Kubernetes Indexed Job manifest is written in which task i
 * runs point i with `vvd run --report-to URL --sweep ID --index i`.  The
 * scheduler runs them; vvd writes no scheduler of its own.
 *
 * Resource requests come from the base spec: a GPU when its "device" is a
 * CUDA device ("cuda", "cuda:N"), memory from the sizes it states (the
 * statistics G and B of a lasso of known K and D, a generated problem's
 * rows), at least 2 GiB; flags override both. */
#include "vvctl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the spec asks for a CUDA device. */
static int wants_gpu(const cJSON *base)
{
    const char *d = vc_str(base, "device", "");
    return !strncmp(d, "cuda", 4);
}

/* A memory request in MiB from what the spec states. */
static long mem_mib(const cJSON *base)
{
    const char *kind = vc_str(base, "kind", "lasso");
    double bytes = 2.0 * 1024 * 1024 * 1024;
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(base, "generate");
    double n = vc_num(g, "n", 0), k = vc_num(g, "k", 0), d = vc_num(g, "d", 0);
    if (!strcmp(kind, "lasso") && k > 0) {
        /* G (K x K) and B (K x D) in float64, a working copy of each, the
         * solution, and a generated problem's rows in float32. */
        double need = 8.0 * (2 * k * k + 3 * k * d) + 4.0 * n * (k + d);
        bytes = fmax(bytes, 1.5 * need);
    } else if (!strcmp(kind, "compress") || !strcmp(kind, "train")) {
        bytes = 8.0 * 1024 * 1024 * 1024; /* a model, its features and a data set */
    }
    return (long)ceil(bytes / (1024.0 * 1024.0));
}

/* A string as a single-quoted shell word. */
static void sh_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

/* A string as a JSON (and so YAML) string. */
static void json_quote(FILE *f, const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *t = cJSON_PrintUnformatted(j);
    fputs(t ? t : "\"\"", f);
    free(t);
    cJSON_Delete(j);
}

static void emit_slurm(FILE *f, const vc_emit_opts *o, const char *sid, int points, long mem,
                       int gpus)
{
    fprintf(f, "#!/bin/bash\n");
    fprintf(f,
            "# vvd sweep %s: %d points, one Slurm array task each (made by vvctl sweep "
            "--emit slurm).\n",
            sid, points);
    fprintf(f, "# Task i runs point i here and reports its events, files and end to %s;\n",
            o->report_to);
    fprintf(f, "# follow it there: vvctl sweep watch %s, or the dashboard's sweep page.\n", sid);
    fprintf(f, "#SBATCH --job-name=vvd-%s\n", sid);
    fprintf(f, "#SBATCH --array=0-%d\n", points - 1);
    fprintf(f, "#SBATCH --ntasks=1\n");
    fprintf(f, "#SBATCH --cpus-per-task=%d\n", o->cpus);
    fprintf(f, "#SBATCH --mem=%ldM\n", mem);
    if (gpus > 0)
        fprintf(f, "#SBATCH --gres=gpu:%d\n", gpus);
    if (o->time)
        fprintf(f, "#SBATCH --time=%s\n", o->time);
    fprintf(f, "#SBATCH --output=vvd-%s-%%a.out\n", sid);
    fprintf(f, "set -euo pipefail\n");
    fprintf(f, "exec ");
    sh_quote(f, o->vvd);
    fprintf(f, " run --report-to ");
    sh_quote(f, o->report_to);
    if (o->token_file) {
        fprintf(f, " --token-file ");
        sh_quote(f, o->token_file);
    }
    fprintf(
        f, " --sweep %s --index \"$SLURM_ARRAY_TASK_ID\" --out \"vvd-out/%s-$SLURM_ARRAY_TASK_ID\"",
        sid, sid);
    if (gpus == 0)
        fprintf(f, " --device cpu");
    fprintf(f, "\n");
}

static void emit_k8s(FILE *f, const vc_emit_opts *o, const char *sid, int points, long mem,
                     int gpus)
{
    char name[64];
    snprintf(name, sizeof name, "vvd-%s", sid);
    fprintf(f,
            "# vvd sweep %s: %d points, one Indexed Job completion each (made by vvctl\n"
            "# sweep --emit k8s).  Completion i runs point i and reports to %s.\n",
            sid, points, o->report_to);
    fprintf(f, "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: %s\n", name);
    fprintf(f, "  labels:\n    app.kubernetes.io/name: vvd\n    vvd/sweep: %s\n", sid);
    fprintf(f, "spec:\n  completionMode: Indexed\n  completions: %d\n  parallelism: %d\n", points,
            o->parallelism > 0 && o->parallelism < points ? o->parallelism : points);
    /* A point's worker that failed has ended its run FAILED: a retry would
     * find it ended (vvctl sweep resume queues it again). */
    fprintf(f, "  backoffLimitPerIndex: 0\n  maxFailedIndexes: %d\n", points);
    fprintf(f, "  template:\n    metadata:\n      labels:\n        vvd/sweep: %s\n", sid);
    fprintf(f, "    spec:\n      restartPolicy: Never\n      containers:\n");
    fprintf(f, "        - name: vvd\n          image: ");
    json_quote(f, o->image);
    fprintf(f, "\n          command:\n");
    const char *args[] = {o->vvd,    "run",         "--report-to", o->report_to,
                          "--sweep", sid,           "--index",     "$(JOB_COMPLETION_INDEX)",
                          "--out",   "/tmp/vvd-out"};
    for (unsigned i = 0; i < sizeof args / sizeof *args; i++) {
        fprintf(f, "            - ");
        json_quote(f, args[i]);
        fprintf(f, "\n");
    }
    if (o->token_file) {
        fprintf(f, "            - \"--token-file\"\n            - ");
        json_quote(f, o->token_file);
        fprintf(f, "\n");
    }
    if (gpus == 0)
        fprintf(f, "            - \"--device\"\n            - \"cpu\"\n");
    fprintf(f, "          resources:\n");
    fprintf(f,
            "            requests:\n              cpu: \"%d\"\n              memory: \"%ldMi\"\n",
            o->cpus, mem);
    fprintf(f, "            limits:\n              memory: \"%ldMi\"\n", mem);
    if (gpus > 0)
        fprintf(f, "              nvidia.com/gpu: %d\n", gpus);
}

int vc_emit(FILE *f, const vc_emit_opts *o, const cJSON *request, const cJSON *sweep)
{
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(request, "base");
    const char *sid = vc_str(sweep, "id", "?");
    int points = (int)vc_num(sweep, "points", 0);
    long mem = o->mem_mib > 0 ? o->mem_mib : mem_mib(base);
    int gpus = o->gpus >= 0 ? o->gpus : wants_gpu(base);
    if (points < 1)
        return VC_FAILED;
    if (!strcmp(o->kind, "slurm"))
        emit_slurm(f, o, sid, points, mem, gpus);
    else
        emit_k8s(f, o, sid, points, mem, gpus);
    return ferror(f) ? VC_FAILED : VC_OK;
}

int vc_parse_mem(const char *s, long *mib)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || end == s || !(v > 0))
        return -1;
    double mult = !*end || !strcmp(end, "M") || !strcmp(end, "Mi") ? 1
                  : !strcmp(end, "G") || !strcmp(end, "Gi")        ? 1024
                  : !strcmp(end, "T") || !strcmp(end, "Ti")        ? 1024 * 1024
                                                                   : -1;
    if (mult < 0)
        return -1;
    *mib = (long)ceil(v * mult);
    return 0;
}
