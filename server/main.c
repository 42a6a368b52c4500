/* main.c - the vvd executable: `vvd run`, `vvd gen` (the daemon comes later). */
#include "daemon.h"
#include "device.h"
#include "forward.h"
#include "model_spec.h"
#include "models.h"
#include "mpi_run.h"
#include "report.h"
#include "run.h"
#include "spec.h"

#include "vv/array.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/lasso.h"
#include "vv/log.h"
#include "vv/version.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* OPENBLAS_CORETYPE for this CPU, set before OpenBLAS's constructor runs
 * (vv/blas.h). */
VV_BLAS_PREINIT;

/* Set by the signal handler, polled by the running job.  A lock-free
 * atomic is async-signal-safe to load and store in a handler. */
static atomic_int stop_flag;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop flag must be lock-free");

static void on_signal(int sig)
{
    (void)sig;
    if (atomic_load(&stop_flag)) {
        /* A second interrupt: leave now. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        raise(sig);
    }
    atomic_store(&stop_flag, 1);
}

static void usage(FILE *f)
{
    fputs("usage: vvd serve [--listen ADDR:PORT] [--data-dir DIR] ... (vvd serve --help)\n"
          "       vvd run SPEC.json [--out DIR] [--device DEV]\n"
          "       vvd run --report-to URL (SPEC.json | --sweep SID --index I | --run RID) ...\n"
          "       vvd gen --n N --k K --d D [--seed S] --out DIR\n"
          "       vvd forward MODEL.json WEIGHTS.safetensors X.npy OUT.npy [--preprocess] ...\n"
          "       vvd version\n"
          "\n"
          "run   runs a job spec in-process: NDJSON events (start, stats, metric, point)\n"
          "      on stdout, then one result object as the last line.  Relative paths in\n"
          "      the spec resolve against the current directory.  Artifacts go to DIR\n"
          "      (default vvd-out/<spec name>-<UTC time>).  Ctrl-C stops the solve at\n"
          "      the next iteration and still saves V (state STOPPED).  --device (or\n"
          "      VVD_DEVICE): cpu, cuda:N, sim:N or auto; default the spec's \"device\",\n"
          "      else auto (a GPU when one is usable).\n"
          "      Exit status: 0 finished or stopped, 1 the job failed, 2 bad usage or spec.\n"
          "      Under mpirun (mpirun -np P vvd run SPEC.json; vvd built with MPI) each\n"
          "      rank computes the statistics of its share of the rows, they are summed,\n"
          "      and rank 0 solves, writes and prints; an error on any rank ends all.\n"
          "      --report-to URL: the run is a central vvd serve's, reported to it live\n"
          "      (a Slurm or Kubernetes task of a sweep; vvd run --report-to URL --help).\n"
          "forward  runs a model (an architecture spec such as a compress run's\n"
          "      model.json, and its weights) on X and writes the logits (N x classes\n"
          "      float32) to OUT.  X: float32/float64 N x D or N x C x H x W inputs, or\n"
          "      uint8 raw images that get model.json's preprocess (vvd forward --help).\n"
          "      Exit status: 0 written, 1 a failure, 2 bad usage or input.\n"
          "gen   writes the synthetic problem of spec field \"generate\" as DIR/phi.npy\n"
          "      (N x K float32) and DIR/psi.npy (N x D float32).\n"
          "\n"
          "Environment: OPENBLAS_CORETYPE (vvd chooses one for this CPU when unset),\n"
          "VV_LOG=error|warn|info|debug (stderr logging).\n",
          f);
}

/* The NDJSON printer of `vvd run`: one event a line on the FILE ctx. */
static void print_event(void *ctx, const cJSON *ev)
{
    FILE *f = ctx;
    char *s = cJSON_PrintUnformatted(ev);
    if (s) {
        fputs(s, f);
        fputc('\n', f);
        fflush(f);
        free(s);
    }
}

static void print_metric(void *ctx, const run_metric *m)
{
    cJSON *ev = run_metric_json(m);
    if (ev)
        print_event(ctx, ev);
    cJSON_Delete(ev);
}

/* Logs the OpenBLAS kernel in use and why (VV_BLAS_PREINIT chose it before
 * OpenBLAS started, unless the user set OPENBLAS_CORETYPE). */
static void log_blas_kernels(void)
{
    const char *env = getenv("OPENBLAS_CORETYPE");
    VV_INFO("blas", NULL, "OpenBLAS kernel %s (OPENBLAS_CORETYPE=%s %s, for %s)",
            vv_blas_corename(), env && env[0] ? env : "unset", vv_blas_kernel_origin(),
            vv_cpu_description());
}

/* The largest spec file `vvd run` reads. */
#define SPEC_MAX_BYTES ((size_t)64 << 20)

/* Reads the spec file path whole into a malloc'ed buffer (*len bytes, not
 * NUL-terminated) the caller frees.  On failure returns NULL with *err and a
 * detail naming the file and what happened: VV_ENOFILE when it is missing,
 * a directory, or cannot be opened or read (with strerror), VV_ETOOLARGE
 * when it is larger than SPEC_MAX_BYTES, VV_ENOMEM. */
static char *read_file(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        *err = vv_fail(VV_ENOFILE,
                       e == ENOENT ? "%s: no such spec file (%s)"
                                   : "%s: cannot open the spec file: %s",
                       path, strerror(e));
        return NULL;
    }
    struct stat st;
    int known = fstat(fileno(f), &st) == 0;
    if (known && S_ISDIR(st.st_mode)) {
        fclose(f);
        *err = vv_fail(VV_ENOFILE, "%s: is a directory, not a spec file", path);
        return NULL;
    }
    if (known && S_ISREG(st.st_mode) && (size_t)st.st_size > SPEC_MAX_BYTES) {
        fclose(f);
        *err = vv_fail(VV_ETOOLARGE, "%s: %lld bytes, larger than the %zu MiB limit of a spec file",
                       path, (long long)st.st_size, SPEC_MAX_BYTES >> 20);
        return NULL;
    }
    /* Read to the end (a pipe or a device has no size to check first). */
    size_t cap = 0, n = 0;
    char *buf = NULL;
    *err = 0;
    for (;;) {
        if (n > SPEC_MAX_BYTES) {
            *err = vv_fail(VV_ETOOLARGE, "%s: larger than the %zu MiB limit of a spec file", path,
                           SPEC_MAX_BYTES >> 20);
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 4096;
            nc = nc > SPEC_MAX_BYTES + 1 ? SPEC_MAX_BYTES + 1 : nc;
            char *nb = realloc(buf, nc);
            if (!nb) {
                *err = vv_fail(VV_ENOMEM, "%s: out of memory reading the spec file", path);
                break;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    if (*err == 0 && ferror(f))
        *err = vv_fail(VV_ENOFILE, "%s: cannot read the spec file: %s", path, strerror(errno));
    fclose(f);
    if (*err < 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int fail_line(int err, const char *field)
{
    cJSON *o = run_error_object(err, field);
    print_event(stdout, o);
    cJSON_Delete(o);
    VV_ERROR("run", NULL, "%s: %s", vv_err_code(err), vv_err_detail());
    return vv_err_http_status(err) < 500 ? 2 : 1;
}

/* The end of `vvd run` on this rank: a failure is first agreed on with the
 * other ranks under mpirun (par_leave), then rank 0 prints it as the result
 * line and every rank logs it; exit status as fail_line. */
static int run_end(int rc, const char *field)
{
    char f[256];
    snprintf(f, sizeof f, "%s", field ? field : "");
    rc = par_leave(rc, f, sizeof f);
    int status = 0;
    if (rc < 0 && par_rank() == 0) {
        status = fail_line(rc, f);
    } else if (rc < 0) {
        VV_ERROR("run", NULL, "%s: %s", vv_err_code(rc), vv_err_detail());
        status = vv_err_http_status(rc) < 500 ? 2 : 1;
    }
    par_finalize();
    return status;
}

static int cmd_run(int argc, char **argv)
{
    const char *spec_path = NULL, *out = NULL, *device = getenv("VVD_DEVICE");
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || spec_path) {
            usage(stderr);
            return 2;
        } else
            spec_path = argv[i];
    }
    if (!spec_path) {
        usage(stderr);
        return 2;
    }
    /* Under mpirun: every rank runs the job on its share of the rows, rank 0
     * alone prints events and writes (mpi_run.h). */
    int prc = par_init();
    if (prc < 0)
        return fail_line(prc, "");
    size_t len = 0;
    int ferr = 0;
    char *text = read_file(spec_path, &len, &ferr);
    if (!text)
        return run_end(ferr, "");
    /* The device opens before the spec is read, so that the spec's own
     * "device" is checked against what this process has. */
    char dev[32] = "auto";
    cJSON *peek = device ? NULL : cJSON_ParseWithLength(text, len);
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(peek, "device");
    if (device)
        snprintf(dev, sizeof dev, "%s", device);
    else if (cJSON_IsString(pd) && device_name_ok(pd->valuestring))
        snprintf(dev, sizeof dev, "%s", pd->valuestring);
    cJSON_Delete(peek);
    if (!device_name_ok(dev)) {
        free(text);
        return run_end(
            vv_fail(VV_EINVAL, "--device %.64s: unknown device (one of %s)", dev, device_names()),
            "");
    }
    int orc = devices_open(dev);
    if (orc < 0) {
        free(text);
        return run_end(orc, "/device");
    }
    job_spec spec;
    char field[256];
    int rc = spec_parse_job_text(text, len, &spec, field, sizeof field);
    free(text);
    if (rc == 0 && par_size() > 1 && spec.kind != JOB_LASSO && spec.kind != JOB_COMPRESS) {
        rc = vv_fail(VV_EINVAL,
                     "a %s job runs in one process: under mpirun only lasso and "
                     "compress share their statistics pass",
                     spec_kind_name(spec.kind));
        spec_free_job(&spec);
        snprintf(field, sizeof field, "/kind");
    }
    if (rc < 0)
        return run_end(rc, field);
    char outbuf[4096];
    if (!out) {
        const char *base = strrchr(spec_path, '/');
        base = base ? base + 1 : spec_path;
        char stem[256];
        const char *name = spec.kind == JOB_INTERPOLATE ? spec.interp.name
                           : spec.kind == JOB_BOUNDS    ? spec.bounds.name
                           : spec.kind == JOB_SHARING   ? spec.sharing.name
                                                        : spec.lasso.name;
        snprintf(stem, sizeof stem, "%s", name ? name : base);
        char *dot = strrchr(stem, '.');
        if (dot && !name)
            *dot = 0;
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(outbuf, sizeof outbuf, "vvd-out/%s-%04d%02d%02dT%02d%02d%02dZ", stem,
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        out = outbuf;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    run_sink sink = {print_metric, print_event, stdout}, quiet = {0};
    cJSON *result = NULL;
    /* The default model's cache: the daemon's data directory. */
    const char *dd = getenv("VVD_DATA_DIR");
    models_set_data_dir(dd && dd[0] ? dd : "vvd-data");
    rc = run_job(&spec, out, par_rank() == 0 ? &sink : &quiet, &stop_flag, NULL, &result, field,
                 sizeof field);
    spec_free_job(&spec);
    devices_close();
    if (rc < 0)
        return run_end(rc, field);
    if (result)
        print_event(stdout, result);
    cJSON_Delete(result);
    return run_end(0, "");
}

static int cmd_gen(int argc, char **argv)
{
    long long n = 0, k = 0, d = 0, seed = 0;
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--n"))
            n = atoll(v);
        else if (!strcmp(a, "--k"))
            k = atoll(v);
        else if (!strcmp(a, "--d"))
            d = atoll(v);
        else if (!strcmp(a, "--seed"))
            seed = atoll(v);
        else if (!strcmp(a, "--out"))
            out = v;
        else {
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!out || n < 1 || k < 1 || d < 1 || seed < 0) {
        usage(stderr);
        return 2;
    }
    vv_rows *phi, *psi;
    int rc = vv_synth_open(n, k, d, (uint64_t)seed, &phi, &psi);
    if (rc < 0) {
        fprintf(stderr, "vvd gen: %s\n", vv_err_detail());
        return 2;
    }
    if (mkdir(out, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "vvd gen: %s: %s\n", out, strerror(errno));
        return 1;
    }
    float *P = malloc((size_t)(n * k) * sizeof *P), *Y = malloc((size_t)(n * d) * sizeof *Y);
    int64_t chunk = 4096;
    double *bp = malloc((size_t)(chunk * k) * sizeof *bp), *by = malloc((size_t)(chunk * d) * sizeof *by);
    if (!P || !Y || !bp || !by) {
        fprintf(stderr, "vvd gen: out of memory\n");
        rc = VV_ENOMEM;
    }
    for (int64_t r0 = 0; rc == 0 && r0 < n; r0 += chunk) {
        int64_t m = n - r0 < chunk ? n - r0 : chunk;
        if ((rc = vv_rows_read(phi, r0, m, bp)) == 0)
            rc = vv_rows_read(psi, r0, m, by);
        for (int64_t i = 0; rc == 0 && i < m * k; i++)
            P[r0 * k + i] = (float)bp[i];
        for (int64_t i = 0; rc == 0 && i < m * d; i++)
            Y[r0 * d + i] = (float)by[i];
    }
    char path[4200];
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/phi.npy", out);
        rc = vv_npy_write(path, VV_F32, 2, (int64_t[]){n, k}, P);
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/psi.npy", out);
        rc = vv_npy_write(path, VV_F32, 2, (int64_t[]){n, d}, Y);
    }
    if (rc < 0)
        fprintf(stderr, "vvd gen: %s\n", vv_err_detail());
    free(P);
    free(Y);
    free(bp);
    free(by);
    vv_rows_free(phi);
    vv_rows_free(psi);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("vvd %s\n", VV_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "run"))
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "--report-to"))
                return report_run_main(argc - 2, argv + 2);
    if (!strcmp(argv[1], "run")) {
        log_blas_kernels();
        return cmd_run(argc - 2, argv + 2);
    }
    if (!strcmp(argv[1], "serve")) {
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")))
            return vvd_serve(argc - 2, argv + 2);
        log_blas_kernels();
        return vvd_serve(argc - 2, argv + 2);
    }
    if (!strcmp(argv[1], "forward")) {
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")))
            return vvd_forward(argc - 2, argv + 2);
        log_blas_kernels();
        return vvd_forward(argc - 2, argv + 2);
    }
    if (!strcmp(argv[1], "gen")) {
        log_blas_kernels();
        return cmd_gen(argc - 2, argv + 2);
    }
    fprintf(stderr, "vvd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
