/* compress_layer.c - one layer of a compress job: its statistics, the
 * lasso over its neurons or channels, the kept ones, the refit and the
 * baseline's choice (compress_baseline_layer), and applying the choice to
 * a network.
 *
 * What a layer's lasso deletes (model_check.h): the neurons of the linear
 * layer feeding it (groups of one input), or the channels of the conv2d
 * feeding it, a channel being the group of the layer's inputs that come
 * from it (k x k columns of a conv's unfolded patches, h x w columns of a
 * linear layer after flatten): the same solver with group norms
 * (doc/group-lasso.md). */
#include "compress_internal.h"
#include "model_check.h"
#include "mpi_run.h"

#include "vv/cpu.h"
#include "vv/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int compress_stats_key(const compress_spec *s, const char *model_id, const char *layer, int64_t n,
                       const vv_preprocess *pp, char *buf, size_t sz)
{
    const char *paths[8];
    int np = data_paths(&s->data, paths, 8);
    size_t len = (size_t)snprintf(buf, sz, "compress|%s|%s|n=%lld|pos=%lld,%llu|pp=%d,%d,%d,%d",
                                  model_id, layer, (long long)n, (long long)s->positions,
                                  (unsigned long long)s->lasso.seed, pp->resize, pp->crop,
                                  pp->nnorm, pp->scale255);
    for (int i = 0; i < pp->nnorm && len < sz; i++)
        len += (size_t)snprintf(buf + len, sz - len, ",%.9g/%.9g", pp->mean[i], pp->std[i]);
    for (int i = 0; i < np && len < sz; i++) {
        struct stat st;
        if (stat(paths[i], &st) < 0)
            return -1;
        len +=
            (size_t)snprintf(buf + len, sz - len, "|%s:%lld:%lld:%lld", paths[i],
                             (long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtime);
    }
    return len < sz ? 0 : -1;
}

/* The job's sink with the layer being solved stamped on its metrics. */
typedef struct layer_sink {
    const run_sink *inner;
    const char *layer;
} layer_sink;

static void layer_metric(void *ctx, const run_metric *m)
{
    const layer_sink *ls = ctx;
    run_metric t = *m;
    snprintf(t.layer, sizeof t.layer, "%s", ls->layer);
    run_emit_metric(ls->inner, &t);
}

static void layer_log(void *ctx, const cJSON *ev)
{
    const layer_sink *ls = ctx;
    if (ls->inner && ls->inner->log)
        ls->inner->log(ls->inner->ctx, ev);
}

/* When the lasso keeps nothing: the unit that enters the path first (the
 * largest ||Bt_g||), with its least-squares weights. */
static void keep_first(const vv_stats *sg, layer_out *lo)
{
    int64_t d = lo->d, g = lo->u.group, best = 0;
    double bn = -1;
    for (int64_t u = 0; u < lo->u.units; u++) {
        double q = 0;
        for (int64_t t = 0; t < g * d; t++)
            q += sg->Bt[u * g * d + t] * sg->Bt[u * g * d + t];
        if (q > bn) {
            bn = q;
            best = u;
        }
    }
    memset(lo->W, 0, (size_t)(lo->k * d) * sizeof *lo->W);
    double *Wr = malloc((size_t)(lo->k * d) * sizeof *Wr);
    memcpy(lo->W + best * g * d, sg->Bt + best * g * d, (size_t)(g * d) * sizeof *lo->W);
    if (Wr && bn > 0 && vv_lasso_refit(sg, lo->W, Wr) == 0) {
        memcpy(lo->W, Wr, (size_t)(lo->k * d) * sizeof *lo->W);
    } else {
        for (int64_t r = best * g; r < (best + 1) * g; r++) {
            double gr = sg->G[r * lo->k + r];
            for (int64_t t = 0; t < d; t++)
                lo->W[r * d + t] = gr > 0 ? sg->Bt[r * d + t] / gr / (double)g : 0;
        }
    }
    free(Wr);
    lo->keep[0] = best;
    lo->kept = 1;
    lo->fallback = 1;
}

int compress_stats_ahead(cctx *c, const vv_model *m, int nl, const int *li, int t, const trunk *tr,
                         const vv_dataset *train, const vv_preprocess *pp, int64_t ntrain,
                         run_cache *cache, const char *model_id, stats_ahead *pre)
{
    const compress_spec *s = c->spec;
    int *sel = malloc((size_t)nl * sizeof *sel), ns = 0, last = t;
    layer_unit *us = malloc((size_t)nl * sizeof *us);
    int rc = sel && us ? 0 : vv_fail(VV_ENOMEM, "out of memory");
    /* The budget of a shared pass: its layers' G and Bt. */
    double bytes = 0, budget = (double)compress_env_bytes("VVD_STATS_MEMORY", 1LL << 30);
    for (int j = t; rc == 0 && j < nl; j++) {
        layer_unit u;
        char key[8192];
        if (!model_layer_unit(m, li[j], s->positions, &u))
            break; /* compress_layer reports it */
        if (cache && model_id &&
            compress_stats_key(s, model_id, m->layers[li[j]].name, ntrain, pp, key, sizeof key) ==
                0 &&
            cache_find(cache, key)) {
            last = j + 1;
            continue;
        }
        double b = 8.0 * (double)u.k * (double)(u.k + u.d);
        if (ns > 0 && bytes + b > budget)
            break;
        bytes += b;
        sel[ns] = li[j];
        us[ns++] = u;
        last = j + 1;
    }
    vv_stats *st = ns ? calloc((size_t)ns, sizeof *st) : NULL;
    if (rc == 0 && ns > 0) {
        rc = st ? compress_layer_stats(c, m, ns, sel, us, tr, train, pp, ntrain, 1, st)
                : vv_fail(VV_ENOMEM, "out of memory");
        for (int j = t, q = 0; rc == 0 && j < last; j++)
            if (q < ns && li[j] == sel[q])
                pre[j] = (stats_ahead){st[q++], ns};
    }
    free(st);
    free(sel);
    free(us);
    return rc < 0 ? rc : last;
}

int compress_layer(cctx *c, const vv_model *src, const vv_model *bsrc, int li, const trunk *tr,
                   const vv_dataset *train, const vv_preprocess *pp, int64_t ntrain,
                   run_cache *cache, const char *model_id, const char *out_dir, stats_ahead *pre,
                   layer_out *lo, char *field, size_t fsz)
{
    const compress_spec *s = c->spec;
    const vv_layer *L = &src->layers[li];
    memset(lo, 0, sizeof *lo);
    lo->li = li;
    if (!model_layer_unit(src, li, s->positions, &lo->u)) {
        if (field && fsz)
            snprintf(field, fsz, "/layers");
        return vv_fail(VV_EINVAL, "/layers: layer %s cannot be compressed", L->name);
    }
    lo->k = lo->u.k;
    lo->d = lo->u.d;
    int64_t k = lo->k, d = lo->d, units = lo->u.units;
    vv_stats st = {0}, bst = {0};
    const vv_stats *stp = &st;
    cache_entry *ce = NULL;
    char key[8192];
    int keyed = cache && model_id &&
                compress_stats_key(s, model_id, L->name, ntrain, pp, key, sizeof key) == 0;
    if (keyed && (ce = cache_find(cache, key)) != NULL) {
        stp = cache_stats(ce);
        lo->cached = 1;
    }
    lo->W = calloc((size_t)(k * d), sizeof(double));
    lo->keep = malloc((size_t)k * sizeof(int64_t));
    int rc = vv_groups_uniform(k, lo->u.group, &lo->goff, &lo->ng);
    if (rc < 0)
        return rc;
    if (!lo->W || !lo->keep)
        return vv_fail(VV_ENOMEM, "out of memory for layer %s", L->name);
    lo->pass_layers = 1;
    if (!ce && pre && pre->st.G) {
        st = pre->st;
        lo->pass_layers = pre->layers;
        memset(pre, 0, sizeof *pre);
        if (keyed && (ce = cache_add(cache, key, &st)) != NULL)
            stp = cache_stats(ce);
    } else if (!ce) {
        rc = compress_layer_stats(c, src, 1, &li, &lo->u, tr, train, pp, ntrain, 1, &st);
        if (rc == 0 && keyed && (ce = cache_add(cache, key, &st)) != NULL)
            stp = cache_stats(ce);
    }
    if (rc < 0)
        return rc;
    if (par_rank() != 0) {
        /* Rank 0 solves; its choice comes back through compress_share_layer. */
        vv_stats_free(&st);
        return 0;
    }
    /* The statistics with the layer's groups (one per neuron or channel). */
    vv_stats sg = *stp;
    sg.group_off = lo->goff;
    sg.ngroups = lo->ng;
    lo->stats_seconds = lo->cached ? 0 : stp->seconds;
    lo->lambda_max = vv_lambda_max(&sg);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "stats");
    cJSON_AddStringToObject(ev, "layer", L->name);
    cJSON_AddNumberToObject(ev, "n", (double)stp->n);
    cJSON_AddNumberToObject(ev, "k", (double)k);
    cJSON_AddNumberToObject(ev, "d", (double)d);
    if (lo->u.kind == UNIT_CHANNELS) {
        cJSON_AddNumberToObject(ev, "channels", (double)units);
        cJSON_AddNumberToObject(ev, "group", (double)lo->u.group);
        cJSON_AddNumberToObject(ev, "positions_per_image", (double)lo->u.positions);
    }
    cJSON_AddNumberToObject(ev, "seconds", lo->stats_seconds);
    cJSON_AddBoolToObject(ev, "cached", lo->cached);
    if (!lo->cached)
        cJSON_AddNumberToObject(ev, "pass_layers", lo->pass_layers);
    cJSON_AddNumberToObject(ev, "lambda_max", lo->lambda_max);
    cJSON_AddNumberToObject(ev, "step", (double)c->step);
    run_emit_log(c->sink, ev);

    if (s->lasso.target_active > units) {
        if (field && fsz)
            snprintf(field, fsz, "/target_active");
        rc = vv_fail(VV_EINVAL, "target_active=%lld exceeds the %lld %s feeding %s",
                     (long long)s->lasso.target_active, (long long)units,
                     lo->u.kind == UNIT_CHANNELS ? "channels" : "neurons", L->name);
        goto done;
    }
    vv_lasso_init(s->lasso.init, s->lasso.seed, k, d, lo->W);
    double deadline = s->lasso.max_seconds > 0 ? vv_now() + s->lasso.max_seconds : 0;
    lo->search = cJSON_CreateArray();
    layer_sink ls = {c->sink, L->name};
    run_sink lsink = {layer_metric, layer_log, &ls};
    lo->first_step = c->step;
    rc =
        run_select_solve(&s->lasso, c->be, &sg, ce, &lsink, c->stop, out_dir, c->t0, deadline,
                         &c->step, &c->iters, lo->W, &lo->lambda, &lo->res, lo->search, field, fsz);
    lo->last_step = c->step;
    if (rc < 0)
        goto done;
    lo->kept = vv_lasso_group_support(&sg, lo->W, lo->keep);
    if (lo->kept == 0) {
        /* Never remove every neuron or channel. */
        keep_first(&sg, lo);
    } else if (s->lasso.refit) {
        double *Wr = malloc((size_t)(k * d) * sizeof *Wr);
        if (!Wr) {
            rc = vv_fail(VV_ENOMEM, "out of memory for the refit");
            goto done;
        }
        if ((rc = vv_lasso_refit(&sg, lo->W, Wr)) == 0) {
            lo->Wl = lo->W;
            lo->W = Wr;
        } else {
            free(Wr);
            if (rc == VV_ENUMERIC) { /* no ridge helps: keep the lasso's weights */
                lo->refit_failed = 1;
                rc = 0;
            }
        }
    }
    if (rc == 0 && bsrc) {
        vv_stats bg = sg;
        if (bsrc != src) {
            if ((rc = compress_layer_stats(c, bsrc, 1, &li, &lo->u, tr, train, pp, ntrain, 0,
                                           &bst)) < 0)
                goto done;
            bg = bst;
            bg.group_off = lo->goff;
            bg.ngroups = lo->ng;
        }
        rc = compress_baseline_layer(s, bsrc, &bg, lo);
    }
done:
    vv_stats_free(&st);
    vv_stats_free(&bst);
    return rc;
}

int compress_apply(vv_model *m, const layer_out *lo, const double *W, const int64_t *keep)
{
    vv_layer *L = &m->layers[lo->li];
    /* A conv's weight is out x (in k k), its inputs' order in the patches. */
    for (int64_t i = 0; i < lo->d; i++)
        for (int64_t c = 0; c < lo->k; c++)
            L->weight[i * lo->k + c] = (float)W[c * lo->d + i];
    switch (lo->u.kind) {
    case UNIT_NEURONS:
        return vv_model_prune(m, lo->u.producer, lo->li, keep, lo->kept);
    case UNIT_CHANNELS:
        return vv_model_prune_channels(m, lo->u.producer, lo->li, keep, lo->kept);
    default:
        return 0;
    }
}

int compress_share_layer(int rc, layer_out *lo, int *stopped, char *field, size_t fsz)
{
    if (par_size() == 1 || (rc = par_agree(rc, field, fsz)) < 0)
        return rc;
    int64_t hdr[2] = {lo->kept, lo->res.stop_reason == VV_STOP_USER};
    par_bcast(hdr, sizeof hdr);
    lo->kept = hdr[0];
    *stopped = (int)hdr[1];
    par_bcast(lo->W, (size_t)(lo->k * lo->d) * sizeof *lo->W);
    par_bcast(lo->keep, (size_t)lo->kept * sizeof *lo->keep);
    return 0;
}

void compress_layer_free(layer_out *lo)
{
    free(lo->keep);
    free(lo->W);
    free(lo->Wl);
    free(lo->bkeep);
    free(lo->Wb);
    free(lo->Wbp);
    free(lo->goff);
    cJSON_Delete(lo->search);
    memset(lo, 0, sizeof *lo);
}
