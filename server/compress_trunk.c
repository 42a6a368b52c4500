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

int64_t compress_trunk_limit(void)
{
    const char *e = getenv("VVD_TRUNK_MEMORY");
    if (e && *e) {
        char *end;
        long long v = strtoll(e, &end, 10);
        if (end != e && v >= 0)
            return (int64_t)v;
    }
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

void compress_trunk_free(trunk *t)
{
    if (!t)
        return;
    free(t->mem);
    free(t->labels);
    if (t->fd >= 0)
        close(t->fd);
    memset(t, 0, sizeof *t);
    t->fd = -1;
}

int compress_trunk_build(cctx *c, const vv_model *m, int at, const vv_dataset *ds,
                         const vv_preprocess *pp, int64_t n, const char *dir, int64_t *budget,
                         trunk *t)
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
    if (bytes <= *budget) {
        if ((t->mem = malloc((size_t)bytes > 0 ? (size_t)bytes : 1)) != NULL)
            *budget -= bytes;
    }
    if (!t->mem) {
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
    float *y = malloc((size_t)(b * t->cols) * sizeof *y);
    vv_model_dev *md = NULL;
    vv_forward_plan *plan = NULL;
    int own = 0;
    if (!t->labels || !x || !y)
        rc = vv_fail(VV_ENOMEM, "trunk features: out of memory");
    if (rc == 0 && at > 0)
        rc = compress_dev_for(c, m, &md, &own);
    if (rc == 0 && at > 0)
        rc = vv_forward_plan_on(m, md, 0, at, &plan);
    for (int64_t r0 = 0; rc == 0 && r0 < n; r0 += b) {
        if (c->stop && atomic_load_explicit(c->stop, memory_order_relaxed)) {
            rc = vv_fail(VV_ESTATE, "stopped while computing the trunk features");
            break;
        }
        int64_t nb = n - r0 < b ? n - r0 : b;
        if ((rc = vv_dataset_batch(ds, pp, NULL, r0, nb, NULL, x, t->labels + r0)) < 0)
            break;
        const float *out = x;
        if (plan) {
            rc = vv_forward_plan_run(plan, x, nb, y, 0);
            out = y;
        }
        if (rc == 0)
            rc = trunk_store(t, r0, nb, out);
    }
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
    cJSON_AddStringToObject(o, "storage", tr->in_file || (te && te->in_file) ? "file" : "memory");
    cJSON_AddNumberToObject(o, "seconds", tr->seconds + (te ? te->seconds : 0));
    return o;
}

/* ---- Features as row sources --------------------------------------------------------- */

/* Phi (the input of layer li) and Psi (its output) for rows [r0, r0 + n) of
 * the training set, from the trunk when there is one (the layers above it
 * only), else from the images; computed together when Phi is read and kept
 * for the Psi read of the same rows (the statistics pass reads a chunk's
 * Phi then its Psi under one lock for sources like these).
 *
 * For a conv layer a row is one output position of one image (pos rows per
 * image, image-major): Phi the unfolded input patch there (in_ch x k x k,
 * zeros outside the map, the order of the weight's columns) and Psi the
 * layer's output there, computed from the patch in float64 (patch . W^T +
 * bias: exactly what the conv computes, without running it everywhere). */
typedef struct feats {
    const vv_model *m;
    vv_model_dev *md;      /* m's weights on the job's device; NULL: the CPU */
    vv_forward_plan *plan; /* the layers from the trunk (or 0) to li, if any */
    int li;
    const trunk *tr; /* NULL: from the images */
    const vv_dataset *ds;
    const vv_preprocess *pp;
    int64_t in, k, d;
    int64_t r0, n; /* rows held in psi (or phid) */
    float *x, *phi, *psi;
    int64_t cap;
    /* conv layers */
    int conv;
    int64_t pos, map; /* positions per image, of map = oh x ow */
    uint64_t seed;
    int32_t *perm;     /* map entries of scratch */
    double *phid, *wd; /* the rows' patches (cap x k); the weight (d x k) */
    int64_t icap;      /* images the buffers hold */
} feats;

/* The input of layer li for images [i0, i0 + n) into f->phi (n x its
 * size): the trunk's rows (or the images) run through the layers between. */
static int feats_input(feats *f, int64_t i0, int64_t n)
{
    int rc = f->tr ? compress_trunk_read(f->tr, i0, n, f->x)
                   : vv_dataset_batch(f->ds, f->pp, NULL, i0, n, NULL, f->x, NULL);
    if (rc == 0 && f->plan)
        rc = vv_forward_plan_run(f->plan, f->x, n, f->phi, 1);
    else if (rc == 0)
        memcpy(f->phi, f->x, (size_t)(n * vv_model_size(f->m, f->li - 1)) * sizeof(float));
    return rc;
}

static int feats_fill(feats *f, int64_t r0, int64_t n)
{
    if (n > f->cap) {
        free(f->x);
        free(f->phi);
        free(f->psi);
        f->x = malloc((size_t)(n * f->in) * sizeof(float));
        f->phi = malloc((size_t)(n * f->k) * sizeof(float));
        f->psi = malloc((size_t)(n * f->d) * sizeof(float));
        f->cap = f->x && f->phi && f->psi ? n : 0;
        if (!f->cap)
            return vv_fail(VV_ENOMEM, "features: out of memory for %lld rows", (long long)n);
    }
    int rc = feats_input(f, r0, n);
    if (rc == 0)
        rc = f->md ? vv_model_forward_dev(f->md, f->li, f->li + 1, f->phi, n, f->psi)
                   : vv_model_forward(f->m, f->li, f->li + 1, f->phi, n, f->psi);
    f->r0 = rc == 0 ? r0 : -1;
    f->n = rc == 0 ? n : 0;
    return rc;
}

/* The output positions sampled from image img: all of them in order when
 * pos = map, else pos distinct ones drawn by a partial Fisher-Yates shuffle
 * seeded by (seed, img), so that every pass (and every process) draws the
 * same rows. */
static void conv_positions(feats *f, int64_t img)
{
    for (int64_t p = 0; p < f->map; p++)
        f->perm[p] = (int32_t)p;
    if (f->pos == f->map)
        return;
    vv_rng r;
    vv_rng_seed(&r, f->seed * 0x9E3779B97F4A7C15ull + (uint64_t)img * 0xD1B54A32D192ED03ull + 1);
    for (int64_t p = 0; p < f->pos; p++) {
        int64_t q = p + (int64_t)(vv_rng_next(&r) % (uint64_t)(f->map - p));
        int32_t t = f->perm[p];
        f->perm[p] = f->perm[q];
        f->perm[q] = t;
    }
}

/* Rows [r0, r0 + n) of a conv layer: the input maps of the images they
 * come from, run up to the layer and unfolded at the sampled positions
 * into phid. */
static int conv_fill(feats *f, int64_t r0, int64_t n)
{
    const vv_layer *L = &f->m->layers[f->li];
    int64_t i0 = r0 / f->pos, i1 = (r0 + n - 1) / f->pos, ni = i1 - i0 + 1;
    int64_t csz = (int64_t)L->c * L->h * L->w;
    if (ni > f->icap) {
        free(f->x);
        free(f->phi);
        f->x = malloc((size_t)(ni * f->in) * sizeof(float));
        f->phi = malloc((size_t)(ni * csz) * sizeof(float));
        f->icap = f->x && f->phi ? ni : 0;
        if (!f->icap)
            return vv_fail(VV_ENOMEM, "features: out of memory for %lld images", (long long)ni);
    }
    if (n > f->cap) {
        free(f->phid);
        f->phid = malloc((size_t)(n * f->k) * sizeof(double));
        f->cap = f->phid ? n : 0;
        if (!f->cap)
            return vv_fail(VV_ENOMEM, "features: out of memory for %lld rows", (long long)n);
    }
    int rc = feats_input(f, i0, ni);
    f->r0 = -1;
    if (rc < 0)
        return rc;
    int kk = L->kernel, ow = L->ow;
    int64_t last = -1;
    for (int64_t r = r0; r < r0 + n; r++) {
        int64_t img = r / f->pos;
        if (img != last) {
            conv_positions(f, img);
            last = img;
        }
        int p = f->perm[r % f->pos], oy = p / ow, ox = p % ow;
        const float *mp = f->phi + (img - i0) * csz;
        double *row = f->phid + (r - r0) * f->k;
        for (int c = 0; c < L->c; c++)
            for (int ky = 0; ky < kk; ky++) {
                int y = oy * L->stride - L->pad + ky;
                for (int kx = 0; kx < kk; kx++) {
                    int xx = ox * L->stride - L->pad + kx;
                    *row++ = y >= 0 && y < L->h && xx >= 0 && xx < L->w
                                 ? (double)mp[((int64_t)c * L->h + y) * L->w + xx]
                                 : 0.0;
                }
            }
    }
    f->r0 = r0;
    f->n = n;
    return 0;
}

static int read_phi(void *ctx, int64_t r0, int64_t n, double *dst)
{
    feats *f = ctx;
    if (f->conv) {
        int rc = conv_fill(f, r0, n);
        if (rc == 0)
            memcpy(dst, f->phid, (size_t)(n * f->k) * sizeof *dst);
        return rc;
    }
    int rc = feats_fill(f, r0, n);
    for (int64_t t = 0; rc == 0 && t < n * f->k; t++)
        dst[t] = f->phi[t];
    return rc;
}

static int read_psi(void *ctx, int64_t r0, int64_t n, double *dst)
{
    feats *f = ctx;
    if (f->conv) {
        int rc = f->r0 == r0 && f->n == n ? 0 : conv_fill(f, r0, n);
        if (rc < 0)
            return rc;
        const vv_layer *L = &f->m->layers[f->li];
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < f->d; j++)
                dst[r * f->d + j] = L->bias_v ? L->bias_v[j] : 0;
        vv_dgemm(0, 1, n, f->d, f->k, 1.0, f->phid, f->k, f->wd, f->k, 1.0, dst, f->d);
        return 0;
    }
    int rc = f->r0 == r0 && f->n == n ? 0 : feats_fill(f, r0, n);
    for (int64_t t = 0; rc == 0 && t < n * f->d; t++)
        dst[t] = f->psi[t];
    return rc;
}

static void feats_free(feats *f)
{
    free(f->x);
    free(f->phi);
    free(f->psi);
    free(f->perm);
    free(f->phid);
    free(f->wd);
    vv_forward_plan_free(f->plan);
}

int compress_layer_stats(cctx *c, const vv_model *m, int li, const layer_unit *u, const trunk *tr,
                         const vv_dataset *train, const vv_preprocess *pp, int64_t ntrain,
                         int share, vv_stats *st)
{
    const vv_layer *L = &m->layers[li];
    int64_t k = u->k, d = u->d;
    double *bias = malloc((size_t)d * sizeof *bias);
    if (!bias)
        return vv_fail(VV_ENOMEM, "out of memory for layer %s", L->name);
    for (int64_t i = 0; i < d; i++)
        bias[i] = L->bias_v ? L->bias_v[i] : 0;
    if (tr && (tr->n != ntrain || tr->at > li))
        tr = NULL;
    feats f = {.m = m,
               .li = li,
               .tr = tr,
               .ds = train,
               .pp = pp,
               .in = tr ? tr->cols : vv_model_size(m, -1),
               .k = k,
               .d = d,
               .r0 = -1,
               .conv = u->conv,
               .pos = u->positions,
               .map = (int64_t)L->oh * L->ow,
               .seed = c->spec->lasso.seed};
    int rc = 0;
    if (f.conv) {
        f.perm = malloc((size_t)f.map * sizeof *f.perm);
        f.wd = malloc((size_t)(k * d) * sizeof *f.wd);
        if (!f.perm || !f.wd)
            rc = vv_fail(VV_ENOMEM, "out of memory for layer %s", L->name);
        for (int64_t t = 0; rc == 0 && t < k * d; t++)
            f.wd[t] = L->weight[t];
    }
    int own_md = 0;
    if (rc == 0)
        rc = compress_dev_for(c, m, &f.md, &own_md);
    if (rc == 0 && li > (tr ? tr->at : 0))
        rc = vv_forward_plan_on(m, f.md, tr ? tr->at : 0, li, &f.plan);
    vv_rows *phi = NULL, *psi = NULL;
    char nphi[128], npsi[128];
    snprintf(nphi, sizeof nphi, "input of %s", L->name);
    snprintf(npsi, sizeof npsi, "output of %s", L->name);
    int64_t rows = ntrain * u->positions;
    if (rc == 0)
        rc = vv_rows_from_callback(nphi, rows, k, read_phi, &f, NULL, &phi);
    if (rc == 0)
        rc = vv_rows_from_callback(npsi, rows, d, read_psi, &f, NULL, &psi);
    /* Psi's bias is subtracted: the statistics see the pre-bias output. */
    vv_stats_opts so = {
        .chunk_rows = c->spec->lasso.chunk_rows, .bias = bias, .stop = c->stop, .be = c->be};
    if (rc == 0)
        rc = share ? par_stats_share(phi, psi, &so, 1, st) : vv_stats_compute(phi, psi, &so, st);
    vv_rows_free(phi);
    vv_rows_free(psi);
    if (own_md)
        vv_model_dev_close(f.md);
    feats_free(&f);
    free(bias);
    if (share && ((rc = par_agree(rc, NULL, 0)) < 0 || (rc = par_sum_stats(st)) < 0))
        vv_stats_free(st);
    return rc;
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
        if ((rc = compress_trunk_read(t, s0, nb, x)) < 0 ||
            (rc = vv_forward_plan_run(plan, x, nb, y, 0)) < 0)
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
    int rc = compress_trunk_build(c, m, at, train, pp, ntrain, dir, &budget, tr);
    if (rc == 0 && test)
        rc = compress_trunk_build(c, m, at, test, pp, ntest, dir, &budget, te);
    if (rc < 0) {
        compress_trunk_free(tr);
        compress_trunk_free(te);
    }
    return rc;
}

void compress_trunks_put(run_cache *cache, const char *key, trunk *tr, trunk *te)
{
    /* Only trunks held in memory are kept (the cache's budget is memory). */
    trunk *held = cache && key && key[0] && tr->mem && (te->n == 0 || te->mem)
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
