/* compress_trunk.c - the features of a compress job.
 *
 * The trunk is the output of the layers below the first one that any
 * network of the job changes (the input of the linear layer feeding the
 * first compressed layer, or of that layer itself): every network of the
 * job (the original, the lasso's, the baseline's, before fine-tuning) shares
 * it.  It is computed once for the training images and once for the test
 * images, held in memory (float32) or, beyond a limit, in an unlinked
 * temporary file, and every statistics pass and evaluation starts from it,
 * running only the layers above.  The latency of a network is measured on
 * its own, on a few small batches. */
#include "compress_internal.h"
#include "mpi_run.h"

#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/dataset.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- The trunk ----------------------------------------------------------------------- */

int compress_trunk_at(const vv_model *m, int first)
{
    int j = vv_model_feeding_linear(m, first);
    if (j < 0)
        j = vv_model_feeding_conv(m, first, NULL);
    return j >= 0 ? j : first;
}

int compress_trunk_worth(const vv_model *m, int at)
{
    for (int i = 0; i < at; i++)
        if (m->layers[i].type == VV_LAYER_CONV2D || m->layers[i].type == VV_LAYER_LINEAR)
            return 1;
    return 0;
}

int64_t compress_env_bytes(const char *name, int64_t dflt)
{
    const char *e = getenv(name);
    if (e && *e) {
        char *end;
        long long v = strtoll(e, &end, 10);
        if (end != e && v >= 0)
            return (int64_t)v;
    }
    return dflt;
}

int64_t compress_trunk_limit(void)
{
    int64_t set = compress_env_bytes("VVD_TRUNK_MEMORY", -1);
    if (set >= 0)
        return set;
    /* A quarter of the memory free now, at most 4 GiB. */
    long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    double avail = pages > 0 && psz > 0 ? (double)pages * (double)psz : 1 << 30;
    double lim = avail / 4 < 4.0 * (1 << 30) ? avail / 4 : 4.0 * (1 << 30);
    return (int64_t)lim;
}

static int trunk_store(trunk *t, int64_t r0, int64_t n, const float *src)
{
    size_t bytes = (size_t)(n * t->cols) * sizeof(float);
    if (t->mem) {
        memcpy(t->mem + r0 * t->cols, src, bytes);
        return 0;
    }
    off_t off = (off_t)(r0 * t->cols) * (off_t)sizeof(float);
    for (size_t done = 0; done < bytes;) {
        ssize_t w = pwrite(t->fd, (const char *)src + done, bytes - done, off + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return vv_fail(VV_EIO, "trunk features: cannot write the temporary file: %s",
                           strerror(w < 0 ? errno : ENOSPC));
        done += (size_t)w;
    }
    return 0;
}

int compress_trunk_read(const trunk *t, int64_t r0, int64_t n, float *dst)
{
    if (r0 < 0 || n < 0 || r0 + n > t->n)
        return vv_fail(VV_EINVAL, "trunk features: rows %lld..%lld outside its %lld", (long long)r0,
                       (long long)(r0 + n), (long long)t->n);
    size_t bytes = (size_t)(n * t->cols) * sizeof(float);
    if (t->mem) {
        memcpy(dst, t->mem + r0 * t->cols, bytes);
        return 0;
    }
    if (t->dev)
        return t->dbe->ops->download(t->dbe, dst, t->dev + r0 * t->cols, bytes);
    off_t off = (off_t)(r0 * t->cols) * (off_t)sizeof(float);
    for (size_t done = 0; done < bytes;) {
        ssize_t r = pread(t->fd, (char *)dst + done, bytes - done, off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return vv_fail(VV_EIO, "trunk features: cannot read the temporary file: %s",
                           r < 0 ? strerror(errno) : "it shrank");
        done += (size_t)r;
    }
    return 0;
}

int compress_trunk_run(const trunk *t, vv_model_dev *md, vv_forward_plan *plan, int to, int64_t r0,
                       int64_t n, float *x, float *y, int threads)
{
    if (t->dev && md && vv_model_dev_backend(md) == t->dbe && to > t->at)
        return vv_model_forward_dev_at(md, t->at, to, t->dev + r0 * t->cols, n, y, VV_DEV_IN);
    int rc = compress_trunk_read(t, r0, n, plan ? x : y);
    if (rc == 0 && plan)
        rc = vv_forward_plan_run(plan, x, n, y, threads);
    return rc;
}

void compress_trunk_free(trunk *t)
{
    if (!t)
        return;
    if (t->dev)
        t->dbe->ops->free(t->dbe, t->dev);
    free(t->mem);
    free(t->labels);
    if (t->fd >= 0)
        close(t->fd);
    memset(t, 0, sizeof *t);
    t->fd = -1;
}

int compress_trunk_build(cctx *c, const vv_model *m, int at, const vv_dataset *ds,
                         const vv_preprocess *pp, int64_t n, const char *dir, int64_t *budget,
                         int split, trunk *t)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
    t->at = at;
    t->cols = vv_model_size(m, at - 1);
    double t0 = vv_now();
    int64_t bytes = n * t->cols * (int64_t)sizeof(float);
    int64_t b = c->spec->batch_size > 0 ? c->spec->batch_size : 128;
    int64_t in = vv_model_size(m, -1);
    int rc = 0;
    /* On the job's device the trunk stays there when it takes at most half
     * of the device's free memory (a split one goes between the ranks in
     * host memory). */
    size_t dfree = 0;
    if (c->be && !split && c->be->ops->info(c->be, NULL, 0, &dfree, NULL) == 0 &&
        (double)bytes <= (double)dfree / 2 && (t->dev = c->be->ops->alloc(c->be, (size_t)bytes)))
        t->dbe = c->be;
    if (!t->dev && bytes <= *budget) {
        if ((t->mem = malloc((size_t)bytes > 0 ? (size_t)bytes : 1)) != NULL)
            *budget -= bytes;
    }
    if (!t->dev && !t->mem && split) {
        rc = vv_fail(VV_ENOMEM, "trunk features: out of memory for %lld bytes", (long long)bytes);
    } else if (!t->dev && !t->mem) {
        /* Beyond the memory limit: an unlinked temporary file beside the run's
         * outputs (in the daemon, inside its data directory). */
        char path[4400];
        snprintf(path, sizeof path, "%s/.trunk-XXXXXX", dir);
        if ((t->fd = mkstemp(path)) < 0)
            return vv_fail(VV_EIO, "trunk features: cannot create %s: %s", path, strerror(errno));
        unlink(path);
        t->in_file = 1;
    }
    t->labels = malloc((size_t)(n > 0 ? n : 1) * sizeof *t->labels);
    float *x = malloc((size_t)(b * in) * sizeof *x);
    float *y = t->dev ? NULL : malloc((size_t)(b * t->cols) * sizeof *y);
    vv_model_dev *md = NULL;
    vv_forward_plan *plan = NULL;
    int own = 0;
    if (rc == 0 && (!t->labels || !x || (!t->dev && !y)))
        rc = vv_fail(VV_ENOMEM, "trunk features: out of memory");
    if (rc == 0 && at > 0)
        rc = compress_dev_for(c, m, &md, &own);
    if (rc == 0 && at > 0 && !t->dev) /* (a device trunk is written there directly) */
        rc = vv_forward_plan_on(m, md, 0, at, &plan);
    int64_t lo = 0, hi = n;
    if (split)
        par_share_batches(n, b, par_rank(), &lo, &hi);
    for (int64_t r0 = lo; rc == 0 && r0 < hi; r0 += b) {
        if (c->stop && atomic_load_explicit(c->stop, memory_order_relaxed)) {
            rc = vv_fail(VV_ESTATE, "stopped while computing the trunk features");
            break;
        }
        int64_t nb = hi - r0 < b ? hi - r0 : b;
        if ((rc = vv_dataset_batch(ds, pp, NULL, r0, nb, NULL, x, t->labels + r0)) < 0)
            break;
        const float *out = x;
        if (t->dev) {
            rc = vv_model_forward_dev_at(md, 0, at, x, nb, t->dev + r0 * t->cols, VV_DEV_OUT);
            continue;
        }
        if (plan) {
            rc = vv_forward_plan_run(plan, x, nb, y, 0);
            out = y;
        }
        if (rc == 0)
            rc = trunk_store(t, r0, nb, out);
    }
    if (split && (rc = par_agree(rc, NULL, 0)) == 0)
        /* Every rank gets the others' rows. */
        for (int r = 0; r < par_size(); r++) {
            par_share_batches(n, b, r, &lo, &hi);
            par_bcast_from(r, t->mem + lo * t->cols, (size_t)((hi - lo) * t->cols) * sizeof(float));
            par_bcast_from(r, t->labels + lo, (size_t)(hi - lo) * sizeof *t->labels);
        }
    t->ranks = split ? par_size() : 1;
    if (own)
        vv_model_dev_close(md);
    vv_forward_plan_free(plan);
    free(x);
    free(y);
    t->n = n;
    t->seconds = vv_now() - t0;
    if (rc < 0) {
        if (t->mem)
            *budget += bytes;
        compress_trunk_free(t);
    }
    return rc;
}

cJSON *compress_trunk_json(const vv_model *m, const trunk *tr, const trunk *te)
{
    cJSON *o = cJSON_CreateObject();
    const vv_layer *L = &m->layers[tr->at];
    cJSON_AddStringToObject(o, "input_of", L->name[0] ? L->name : vv_layer_type_name(L->type));
    cJSON_AddNumberToObject(o, "layer_index", tr->at);
    cJSON_AddNumberToObject(o, "features", (double)tr->cols);
    cJSON_AddNumberToObject(o, "train_rows", (double)tr->n);
    cJSON_AddNumberToObject(o, "test_rows", te ? (double)te->n : 0);
    cJSON_AddNumberToObject(o, "bytes", (double)((tr->n + (te ? te->n : 0)) * tr->cols * 4));
    cJSON_AddStringToObject(o, "storage",
                            tr->in_file || (te && te->in_file)      ? "file"
                            : tr->dev && (!te || !te->n || te->dev) ? "device"
                                                                    : "memory");
    cJSON_AddNumberToObject(o, "seconds", tr->seconds + (te ? te->seconds : 0));
    /* Under mpirun: the processes that split the training images' trunk
     * (each holds it all, and the statistics passes start from it there). */
    cJSON_AddNumberToObject(o, "ranks", tr->ranks > 1 ? tr->ranks : 1);
    return o;
}

/* ---- Evaluation from the trunk -------------------------------------------------------- */

/* Accuracy (argmax, first on ties) and mean cross-entropy of m's logits on
 * the trunk's rows, running layers [t->at, m->n) only (as
 * vv_model_evaluate_dev computes them from the images). */
static int trunk_evaluate(cctx *c, const vv_model *m, vv_model_dev *md, const trunk *t, double *acc,
                          double *loss)
{
    int64_t batch = c->spec->batch_size > 0 ? c->spec->batch_size : 128;
    int64_t k = vv_model_size(m, m->n - 1), n = t->n;
    float *x = malloc((size_t)(batch * t->cols) * sizeof(float));
    float *y = malloc((size_t)(batch * k) * sizeof(float));
    vv_forward_plan *plan = NULL;
    int rc = x && y ? 0 : vv_fail(VV_ENOMEM, "evaluation: out of memory");
    if (rc == 0)
        rc = vv_forward_plan_on(m, md, t->at, m->n, &plan);
    int64_t correct = 0;
    double total = 0;
    for (int64_t s0 = 0; s0 < n && rc == 0; s0 += batch) {
        if (c->stop && atomic_load_explicit(c->stop, memory_order_relaxed)) {
            rc = VV_ESTATE;
            break;
        }
        int64_t nb = n - s0 < batch ? n - s0 : batch;
        if ((rc = compress_trunk_run(t, md, plan, m->n, s0, nb, x, y, 0)) < 0)
            break;
        rc = vv_score_logits(y, nb, k, t->labels + s0, s0, &correct, &total);
    }
    vv_forward_plan_free(plan);
    free(x);
    free(y);
    if (rc == 0) {
        *acc = n ? (double)correct / (double)n : 0;
        *loss = n ? total / (double)n : 0;
    }
    return rc;
}

int compress_eval_trunk(cctx *c, const vv_model *m, const trunk *tr, const trunk *te, evals *e)
{
    memset(e, 0, sizeof *e);
    vv_model_dev *md;
    int own;
    int rc = compress_dev_for(c, m, &md, &own);
    if (rc == 0)
        rc = trunk_evaluate(c, m, md, tr, &e->train_acc, &e->train_loss);
    if (rc == 0 && te && te->n > 0) {
        rc = trunk_evaluate(c, m, md, te, &e->test_acc, &e->test_loss);
        e->have_test = 1;
    }
    e->params = vv_model_params(m);
    e->macs = vv_model_macs(m);
    if (rc == 0)
        e->latency_ms = compress_latency_ms(m, md, &e->latency_batch);
    if (own)
        vv_model_dev_close(md);
    return rc;
}

/* ---- Latency --------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double compress_latency_ms(const vv_model *m, vv_model_dev *md, int64_t *batch)
{
    enum { RUNS = 5, BATCH = 32 };
    int64_t in = vv_model_size(m, -1), k = vv_model_size(m, m->n - 1);
    float *x = calloc((size_t)(BATCH * in), sizeof(float)), *y = malloc((size_t)(BATCH * k) * 4);
    double t[RUNS] = {0};
    /* The weights prepared once, as a deployed model's are. */
    vv_forward_plan *plan = NULL;
    if (vv_forward_plan_on(m, md, 0, m->n, &plan) < 0)
        plan = NULL;
    /* The median of RUNS (a cold first pass is an outlier it drops). */
    for (int r = 0; r < RUNS && x && y && plan; r++) {
        double t0 = vv_now();
        vv_forward_plan_run(plan, x, BATCH, y, 1);
        t[r] = (vv_now() - t0) * 1e3;
    }
    vv_forward_plan_free(plan);
    free(x);
    free(y);
    qsort(t, RUNS, sizeof t[0], cmp_double);
    *batch = BATCH;
    return t[RUNS / 2];
}

/* ---- Shared between runs ------------------------------------------------------------- */

static void trunks_free(void *p)
{
    trunk *t = p;
    compress_trunk_free(&t[0]);
    compress_trunk_free(&t[1]);
    free(t);
}

int compress_trunks_get(cctx *c, run_cache *cache, const char *key, const vv_model *m, int at,
                        const vv_dataset *train, const vv_dataset *test, const vv_preprocess *pp,
                        int64_t ntrain, int64_t ntest, const char *dir, trunk *tr, trunk *te,
                        int *cached)
{
    *cached = 0;
    trunk *held = cache && key && key[0] ? cache_take(cache, key) : NULL;
    if (held) {
        *tr = held[0];
        *te = held[1];
        free(held);
        *cached = 1;
        return 0;
    }
    int64_t budget = compress_trunk_limit();
    /* Under mpirun the ranks split the training images' trunk when every
     * one can hold it all in memory; else rank 0 alone builds it. */
    int split = par_size() > 1;
    if (split) {
        int64_t bytes = ntrain * vv_model_size(m, at - 1) * (int64_t)sizeof(float);
        split = par_sum_i64(bytes <= budget ? 0 : 1) == 0;
    }
    if (!split && par_rank() != 0)
        return 0;
    int rc = compress_trunk_build(c, m, at, train, pp, ntrain, dir, &budget, split, tr);
    if (rc == 0 && test && par_rank() == 0)
        rc = compress_trunk_build(c, m, at, test, pp, ntest, dir, &budget, 0, te);
    if (rc < 0) {
        compress_trunk_free(tr);
        compress_trunk_free(te);
    }
    return rc;
}

void compress_trunks_put(run_cache *cache, const char *key, trunk *tr, trunk *te)
{
    /* Only trunks held in memory, or on the device, are kept (the cache's
     * budget counts their bytes either way). */
    trunk *held =
        cache && key && key[0] && (tr->mem || tr->dev) && (te->n == 0 || te->mem || te->dev)
            ? malloc(2 * sizeof *held)
            : NULL;
    if (held) {
        held[0] = *tr;
        held[1] = *te;
        size_t bytes = (size_t)((tr->n + te->n) * tr->cols) * sizeof(float) +
                       (size_t)(tr->n + te->n) * sizeof(int32_t);
        if (cache_add_blob(cache, key, held, bytes, trunks_free) == 0) {
            memset(tr, 0, sizeof *tr);
            memset(te, 0, sizeof *te);
            tr->fd = te->fd = -1;
            return;
        }
        free(held);
    }
    compress_trunk_free(tr);
    compress_trunk_free(te);
}
