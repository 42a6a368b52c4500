/* device.c - the compute devices of the process (device.h). */
#include "device.h"
#include "mpi_run.h"

#include "vv/array.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/lasso.h"
#include "vv/log.h"
#include "vv/model.h"
#ifdef VV_HAVE_CUDA
#include "vv/backend_cuda.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vv_backend *dev;       /* NULL: the CPU */
static char dev_name[16] = "cpu";

static int parse_index(const char *s, const char *prefix, int *idx)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) || !s[n])
        return 0;
    int v = 0;
    for (const char *p = s + n; *p; p++) {
        if (*p < '0' || *p > '9' || v > 6)
            return 0;
        v = v * 10 + (*p - '0');
    }
    if (v >= 64)
        return 0;
    *idx = v;
    return 1;
}

int device_name_ok(const char *name)
{
    int i;
    return name && (!strcmp(name, "cpu") || !strcmp(name, "auto") ||
                    parse_index(name, "cuda:", &i) || parse_index(name, "sim:", &i));
}

const char *device_names(void) { return "cpu, auto, cuda:N, sim:N"; }

static int open_sim(vv_backend **be)
{
    vv_sim_opts o = {0};
    const char *m = getenv("VVD_SIM_MEMORY");
    if (m)
        o.memory = (size_t)strtoull(m, NULL, 10);
    return vv_backend_sim_open(&o, be);
}

/* Keeps the device opened as name when it passes the self-test; else closes
 * it and fails with why, prefixed by name. */
static int adopt(vv_backend *be, const char *name)
{
    double t0 = vv_now();
    int rc = device_self_test(be);
    if (rc < 0) {
        char why[768];
        snprintf(why, sizeof why, "%s", vv_err_detail());
        be->ops->close(be);
        return vv_fail(rc, "%s failed its self-test: %s", name, why);
    }
    dev = be;
    snprintf(dev_name, sizeof dev_name, "%s", name);
    VV_INFO("device", NULL, "%s passed its self-test (a lasso and a forward pass agree with "
                            "the CPU; %.2f s)",
            name, vv_now() - t0);
    return 0;
}

int devices_open(const char *name)
{
    int idx = 0;
    char nm[16];
    if (!name || !strcmp(name, "cpu"))
        return 0;
    if (parse_index(name, "sim:", &idx)) {
        vv_backend *be;
        int rc = open_sim(&be);
        snprintf(nm, sizeof nm, "sim:%d", idx);
        if (rc == 0 && (rc = adopt(be, nm)) == 0 && getenv("VVD_SIM_FAIL_AFTER"))
            /* Counted from here: the jobs' operations, not the self-test's. */
            vv_backend_sim_fail_after(be, strtoll(getenv("VVD_SIM_FAIL_AFTER"), NULL, 10));
        return rc;
    }
    int is_auto = !strcmp(name, "auto");
    if (!is_auto && !parse_index(name, "cuda:", &idx))
        return vv_fail(VV_EINVAL, "unknown device '%.64s' (one of %s)", name, device_names());
#ifdef VV_HAVE_CUDA
    /* Under mpirun a node's ranks take its GPUs in turn, one each while
     * there are as many (the sums between them need that). */
    int count = is_auto ? vv_backend_cuda_count() : 0;
    if (count > 0 && count <= 64)
        idx = par_local_rank() % count;
    vv_backend *be;
    int rc = vv_backend_cuda_open(idx, &be);
    snprintf(nm, sizeof nm, "cuda:%d", idx);
    if (rc == 0 && (rc = adopt(be, nm)) == 0)
        return 0;
    if (!is_auto) {
        char why[768];
        snprintf(why, sizeof why, "%s", vv_err_detail());
        return vv_fail(rc, "%s%s", strncmp(why, nm, strlen(nm)) ? "cuda: " : "", why);
    }
    VV_INFO("device", NULL, "auto: no usable CUDA device (%s); computing on the CPU",
            vv_err_detail());
    return 0;
#else
    if (!is_auto)
        return vv_fail(VV_EDEVICE, "%s: this vvd was built without CUDA (only cpu, sim:N)",
                       name);
    return 0;
#endif
}

void devices_close(void)
{
    if (dev)
        dev->ops->close(dev);
    dev = NULL;
    snprintf(dev_name, sizeof dev_name, "cpu");
}

const char *devices_default(void) { return dev_name; }

int devices_get(const char *name, vv_backend **be)
{
    *be = NULL;
    if (!name || !name[0] || !strcmp(name, "auto") || !strcmp(name, dev_name)) {
        *be = dev ? dev : vv_backend_cpu();
        return 0;
    }
    if (!strcmp(name, "cpu")) {
        *be = vv_backend_cpu();
        return 0;
    }
    return vv_fail(VV_EDEVICE, "device %.64s is not available: this vvd computes on %s%s",
                   name, dev ? "cpu and " : "", dev_name);
}

int devices_lost(void) { return dev && dev->ops->lost && dev->ops->lost(dev); }

cJSON *devices_describe(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", dev_name);
    cJSON_AddStringToObject(o, "kind", dev ? dev->ops->name : "cpu");
    if (dev && dev->ops->info) {
        char model[256] = "";
        size_t fr = 0, tot = 0;
        if (dev->ops->info(dev, model, sizeof model, &fr, &tot) == 0) {
            cJSON_AddStringToObject(o, "model", model);
            cJSON_AddNumberToObject(o, "memory_total", (double)tot);
            cJSON_AddNumberToObject(o, "memory_free", (double)fr);
        }
    }
    cJSON_AddBoolToObject(o, "lost", devices_lost());
    return o;
}

/* ---- The self-test --------------------------------------------------------------- */

/* Fills n floats with uniform values in [lo, hi). */
static void fill(vv_rng *r, float *p, int64_t n, double lo, double hi)
{
    for (int64_t i = 0; p && i < n; i++)
        p[i] = (float)(lo + (hi - lo) * vv_rng_uniform(r));
}

static double max_rel(const double *a, const double *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    return s > 0 ? d / s : d;
}

/* A lasso (statistics and FISTA) on the device and on the CPU. */
static int test_lasso(vv_backend *be)
{
    enum { N = 300, K = 24, D = 70 };
    vv_rng r;
    vv_rng_seed(&r, 7);
    double *phi = malloc(N * K * sizeof *phi), *psi = malloc(N * D * sizeof *psi);
    double *w[2] = {calloc(K * D, sizeof(double)), calloc(K * D, sizeof(double))};
    vv_stats st[2] = {{0}, {0}};
    vv_lasso_result res[2];
    int rc = phi && psi && w[0] && w[1] ? 0 : vv_fail(VV_ENOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < N * K; i++)
        phi[i] = fmax(0, vv_rng_normal(&r));
    for (int i = 0; rc == 0 && i < N * D; i++)
        psi[i] = phi[(i / D) * K + i % 7] - 0.5 * phi[(i / D) * K + 9 + i % 5] + 0.1 * vv_rng_normal(&r);
    for (int t = 0; t < 2 && rc == 0; t++) {
        vv_rows *a = NULL, *b = NULL;
        vv_rows_from_memory("self-test phi", N, K, phi, &a);
        vv_rows_from_memory("self-test psi", N, D, psi, &b);
        vv_stats_opts so = {.chunk_rows = 128, .be = t ? NULL : be};
        rc = a && b ? vv_stats_compute(a, b, &so, &st[t]) : vv_fail(VV_ENOMEM, "out of memory");
        vv_rows_free(a);
        vv_rows_free(b);
        vv_lasso_opts o;
        vv_lasso_opts_default(&o);
        o.solver = VV_SOLVER_FISTA;
        o.lambda = rc == 0 ? 0.05 * vv_lambda_max(&st[t]) : 1;
        o.tol = 1e-10;
        o.max_iter = 20000;
        o.be = t ? NULL : be;
        if (rc == 0)
            rc = vv_lasso_solve(&st[t], &o, w[t], &res[t]);
    }
    double eg = rc == 0 ? max_rel(st[0].G, st[1].G, K * K) : 0;
    double ew = rc == 0 ? max_rel(w[0], w[1], K * D) : 0;
    if (rc == 0 && (eg > 1e-12 || res[0].stop_reason != VV_STOP_CONVERGED ||
                    fabs(res[0].e.objective - res[1].e.objective) > 1e-9 * res[1].e.objective ||
                    ew > 1e-4))
        rc = vv_fail(VV_EDEVICE,
                     "self-test: a lasso on the device disagrees with the CPU (G %.1e, W %.1e "
                     "relative, objective %.12g vs %.12g, %s)",
                     eg, ew, res[0].e.objective, res[1].e.objective,
                     vv_stop_reason_name(res[0].stop_reason));
    vv_stats_free(&st[0]);
    vv_stats_free(&st[1]);
    free(phi);
    free(psi);
    free(w[0]);
    free(w[1]);
    return rc;
}

/* A narrow VGG-19 (conv, batch norm, ReLU, pools, linear layers) with random
 * weights, forward on the device and on the CPU. */
static int test_forward(vv_backend *be)
{
    vv_model m;
    int rc = vv_model_vgg19_cifar(&m, 32, 10);
    if (rc < 0)
        return rc;
    vv_rng r;
    vv_rng_seed(&r, 11);
    for (int i = 0; i < m.n; i++) {
        vv_layer *l = &m.layers[i];
        int64_t nw = l->type == VV_LAYER_CONV2D ? (int64_t)l->oc * l->in_ch * l->kernel * l->kernel
                     : l->type == VV_LAYER_LINEAR ? (int64_t)l->out_ch * l->in_ch
                     : l->type == VV_LAYER_BATCHNORM2D ? l->c
                                                       : 0;
        int64_t nb = l->type == VV_LAYER_BATCHNORM2D ? l->c : l->out_ch;
        fill(&r, l->weight, nw, -0.3, 0.3);
        fill(&r, l->bias_v, nb, -0.1, 0.1);
        fill(&r, l->running_mean, nb, -0.1, 0.1);
        fill(&r, l->running_var, nb, 0.5, 1.5);
    }
    enum { S = 6 };
    int64_t in = vv_model_size(&m, -1), out = vv_model_size(&m, m.n - 1);
    float *x = malloc((size_t)(S * in) * sizeof *x), *y[2];
    y[0] = malloc((size_t)(S * out) * sizeof(float));
    y[1] = malloc((size_t)(S * out) * sizeof(float));
    vv_model_dev *md = NULL;
    rc = x && y[0] && y[1] ? vv_model_dev_open(&m, be, &md) : vv_fail(VV_ENOMEM, "out of memory");
    fill(&r, x, rc == 0 ? S * in : 0, -1, 1);
    if (rc == 0)
        rc = vv_model_forward_dev(md, 0, m.n, x, S, y[0]);
    if (rc == 0)
        rc = vv_model_forward(&m, 0, m.n, x, S, y[1]);
    double d = 0, s = 0;
    for (int64_t i = 0; rc == 0 && i < S * out; i++) {
        d = fmax(d, fabs((double)y[0][i] - y[1][i]));
        s = fmax(s, fabs((double)y[1][i]));
    }
    if (rc == 0 && !(d <= 1e-4 * s))
        rc = vv_fail(VV_EDEVICE,
                     "self-test: a forward pass on the device disagrees with the CPU (max rel "
                     "err %.1e)",
                     s > 0 ? d / s : d);
    vv_model_dev_close(md);
    vv_model_free(&m);
    free(x);
    free(y[0]);
    free(y[1]);
    return rc;
}

int device_self_test(vv_backend *be)
{
    int rc = test_lasso(be);
    return rc ? rc : test_forward(be);
}
