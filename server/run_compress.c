/* run_compress.c - the "compress" job: experiment 3 of the paper.
 *
 * For each linear layer to compress, the layer's input features Phi and its
 * pre-activation outputs Psi are taken in eval mode on the un-augmented
 * training set and streamed straight into the sufficient statistics (never
 * stored whole); the multi-task lasso is solved with the layer's bias as the
 * fixed offset; the layer's weight becomes V and the neurons whose columns
 * are zero are deleted from the layer that produces them.  The network is
 * evaluated before and after, and the smaller model is exported.  The
 * layers below every change (the trunk, compress_trunk.c) run once: the
 * statistics passes and the evaluations before fine-tuning start from
 * their output. */
#include "compress_internal.h"
#include "device.h"
#include "model_check.h"
#include "models.h"
#include "mpi_run.h"
#include "run.h"
#include "state.h"

#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void set_field(char *field, size_t fsz, const char *ptr)
{
    if (field && fsz)
        snprintf(field, fsz, "%s", ptr);
}

/* Events of the in-process training of the default model, passed on to the
 * run's sink as log events with "phase": "train_default", metrics renamed
 * "train_metric" and results "train_result" (they are not this run's). */
static void train_pass_on(cctx *c, cJSON *e)
{
    cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "event");
    if (cJSON_IsString(k) &&
        (!strcmp(k->valuestring, "metric") || !strcmp(k->valuestring, "result")))
        cJSON_SetValuestring(k,
                             !strcmp(k->valuestring, "metric") ? "train_metric" : "train_result");
    cJSON_AddStringToObject(e, "phase", "train_default");
    run_emit_log(c->sink, e);
}

static void train_metric(void *ctx, const run_metric *m)
{
    cJSON *e = run_metric_json(m);
    if (e)
        train_pass_on(ctx, e);
}

static void train_log(void *ctx, const cJSON *ev)
{
    cJSON *e = cJSON_Duplicate(ev, 1);
    if (e)
        train_pass_on(ctx, e);
}

/* The default model is trained on first use (and cached in the data
 * directory): a daemon queues that as a run of its own; `vvd run` does it
 * here, before compressing. */
static int train_default(cctx *c, const char *out_dir, char *field, size_t fsz)
{
    const char *text = "{\"kind\":\"train\",\"preset\":\"" MODELS_DEFAULT "\"}";
    job_spec js;
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/default-model", out_dir);
    int rc = spec_parse_job_text(text, strlen(text), &js, field, fsz);
    cJSON *res = NULL;
    run_sink sink = {train_metric, train_log, c};
    if (rc == 0)
        rc = run_train(&js.train, dir, &sink, c->stop, &res, field, fsz);
    if (rc == 0 && !models_default_cached())
        rc = vv_fail(c->stop && atomic_load(c->stop) ? VV_ESTATE : VV_EINTERNAL,
                     "the default model %s was not trained", MODELS_DEFAULT);
    cJSON_Delete(res);
    spec_free_job(&js);
    if (rc < 0)
        set_field(field, fsz, "/model");
    return rc;
}

/* The evaluation of m from the trunks when there are (m unchanged below
 * them), else from the images. */
static int eval_net(cctx *c, const vv_model *m, const trunk *tr, const trunk *te, vv_dataset *train,
                    vv_dataset *test, const vv_preprocess *pp, int64_t ntrain, int64_t ntest,
                    evals *e)
{
    if (!tr->n)
        return compress_eval_all(c, m, train, test, pp, ntrain, ntest, e);
    c->trunk_evals++;
    return compress_eval_trunk(c, m, tr, te->n ? te : NULL, e);
}

int run_compress(compress_spec *s, const char *out_dir, const run_sink *sink,
                 const atomic_int *stop, run_cache *cache, cJSON **result, char *field, size_t fsz)
{
    *result = NULL;
    set_field(field, fsz, "");
    cctx c = {.spec = s, .sink = sink, .stop = stop, .t0 = vv_now()};
    /* Under mpirun (mpi_run.h) every rank computes its share of each layer's
     * statistics; rank 0 alone solves, evaluates, runs the baseline and
     * fine-tuning, and writes.  The daemon's cache is not used there. */
    int root = par_rank() == 0;
    if (par_size() > 1)
        cache = NULL;
    resident *res = NULL;
    vv_model own = {0}, cur = {0}, curl = {0}, bm = {0}, bmp = {0};
    const vv_model *orig = &own;
    vv_preprocess pp = {0};
    run_data dat = {0};
    vv_dataset *train = NULL, *test = NULL; /* dat's */
    layer_out *los = NULL;
    stats_ahead *pre = NULL;                  /* independent mode's statistics, computed ahead */
    trunk ttr = {.fd = -1}, tte = {.fd = -1}; /* the trunk of the train and test images */
    char tkey[8192] = "";                     /* their cache key ("": not cached) */
    int nl = 0, *idx = NULL, stopped = 0;
    char model_id[4400] = "";
    cJSON *r = NULL;
    int rc;
    vv_backend *be;
    if ((rc = devices_get(s->lasso.device, &be)) < 0) {
        set_field(field, fsz, "/device");
        return rc;
    }
    c.be = vv_backend_is_device(be) ? be : NULL;

    /* The model (the default one is trained by rank 0 when not yet cached). */
    if (s->model.resident && !strcmp(s->model.resident, MODELS_DEFAULT)) {
        rc = root && !models_default_cached() ? train_default(&c, out_dir, field, fsz) : 0;
        if ((rc = par_agree(rc, field, fsz)) < 0)
            return rc;
    }
    if (s->model.resident) {
        if (!(res = models_acquire_default(s->model.resident))) {
            set_field(field, fsz, "/model");
            return VV_ENOTFOUND;
        }
        orig = &res->m;
        pp = res->pp;
        if (c.be && (rc = models_device(res, c.be, &c.res_md)) < 0) {
            models_release(res);
            return rc;
        }
        c.res_m = orig;
        snprintf(model_id, sizeof model_id, "resident:%s@%.0f", res->name, res->loaded_at);
    } else {
        if ((rc = model_ref_load(&s->model, "/model", &own, &pp, field, fsz)) < 0)
            return rc;
        struct stat st;
        char *arch = cJSON_PrintUnformatted(s->model.arch);
        if (s->model.weights && stat(s->model.weights, &st) == 0 && arch)
            snprintf(model_id, sizeof model_id, "%s:%lld:%lld:%lld|%.2000s", s->model.weights,
                     (long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtime, arch);
        free(arch);
    }

    /* The layers. */
    if (!(idx = malloc((size_t)(orig->n + 1) * sizeof *idx))) {
        rc = vv_fail(VV_ENOMEM, "out of memory");
        goto done;
    }
    if ((nl = model_compress_layers(orig, s, idx, field, fsz)) < 0) {
        rc = nl;
        nl = 0;
        goto done;
    }

    /* The data. */
    if ((rc = run_data_open(&s->data, &pp, orig, &dat, field, fsz)) < 0)
        goto done;
    train = dat.train;
    test = dat.test;
    pp = dat.pp;
    int64_t ntrain = dat.ntrain, ntest = dat.ntest;
    if (root && (rc = run_mkdir_p(out_dir)) < 0)
        goto done;

    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "start");
    cJSON_AddStringToObject(ev, "kind", "compress");
    cJSON_AddStringToObject(ev, "model", s->model.resident ? s->model.resident : "(spec)");
    cJSON *ln = cJSON_AddArrayToObject(ev, "layers");
    for (int t = 0; t < nl; t++)
        cJSON_AddItemToArray(ln, cJSON_CreateString(orig->layers[idx[t]].name));
    cJSON_AddNumberToObject(ev, "n_train", (double)ntrain);
    cJSON_AddNumberToObject(ev, "n_test", (double)ntest);
    cJSON_AddStringToObject(ev, "blas", vv_blas_corename());
    cJSON_AddStringToObject(ev, "device", s->lasso.device[0] ? s->lasso.device : devices_default());
    run_emit_log(sink, ev);

    evals before, after, pruned_e, base_p, base_r, base_f;
    int refit = s->lasso.refit && root, ft = s->finetune.enabled, base = s->baseline && root;
    /* The trunk below every change, once (rank 0: it evaluates); the images
     * when it fits neither in memory nor in a file, or holds only them. */
    int tcached = 0, at = compress_trunk_at(orig, idx[0]);
    c.trunk_everywhere = par_size() == 1;
    if (compress_trunk_worth(orig, at)) { /* (every rank: they may split it) */
        char tl[256];
        snprintf(tl, sizeof tl, "trunk@%d|test=%lld|device=%s", at, (long long)ntest,
                 s->lasso.device);
        if (!cache || !model_id[0] ||
            compress_stats_key(s, model_id, tl, ntrain, &pp, tkey, sizeof tkey))
            tkey[0] = 0;
        rc = compress_trunks_get(&c, cache, tkey, orig, at, train, test, &pp, ntrain, ntest,
                                 out_dir, &ttr, &tte, &tcached);
        if (par_size() > 1) {
            /* The ranks go on together: all with the trunk of the training
             * images (split between them), or from the images. */
            rc = par_agree(rc, field, fsz);
            c.trunk_everywhere = rc == 0 && ttr.ranks > 1;
        }
        if (rc == VV_ENOMEM || rc == VV_EIO) {
            cJSON *lg = cJSON_CreateObject();
            cJSON_AddStringToObject(lg, "event", "log");
            cJSON_AddStringToObject(lg, "message", vv_err_detail());
            cJSON_AddStringToObject(lg, "note", "features are recomputed from the images");
            run_emit_log(sink, lg);
            rc = 0;
        }
        if (rc < 0)
            goto done;
    }
    if (root && (rc = eval_net(&c, orig, &ttr, &tte, train, test, &pp, ntrain, ntest, &before)) < 0)
        goto done;
    if (root)
        compress_emit_evals(&c, &before, "before");

    /* The networks: cur (the lasso's, refitted when asked: the features of
     * the next layer in sequential mode, then fine-tuned), curl (the lasso's
     * weights without the refit), bm and bmp (the magnitude baseline,
     * refitted and not). */
    if ((rc = vv_model_copy(orig, &cur)) < 0 || (refit && (rc = vv_model_copy(orig, &curl)) < 0) ||
        (base && (rc = vv_model_copy(orig, &bm)) < 0) ||
        (base && refit && (rc = vv_model_copy(orig, &bmp)) < 0) ||
        !(los = calloc((size_t)nl, sizeof *los))) {
        rc = rc < 0 ? rc : vv_fail(VV_ENOMEM, "out of memory");
        goto done;
    }
    /* Independent mode: the layers' statistics in shared passes, each
     * computed when the first of its layers comes. */
    if (!s->sequential && nl > 1 && !(pre = calloc((size_t)nl, sizeof *pre))) {
        rc = vv_fail(VV_ENOMEM, "out of memory");
        goto done;
    }
    int done_layers = 0, ahead_to = 0;
    cJSON *lj = cJSON_CreateArray();
    for (int t = 0; t < nl; t++) {
        const vv_model *src = s->sequential ? &cur : orig;
        /* The baseline's features: its own network in sequential mode (the
         * same as vvd's for the first layer). */
        const vv_model *bsrc = !base ? NULL : !s->sequential || t == 0 ? src : &bm;
        /* Sequential features come from a network that changed: not cached. */
        const char *id = s->sequential && t > 0 ? NULL : model_id[0] ? model_id : NULL;
        int sstop = 0;
        rc = 0;
        if (pre && t >= ahead_to) {
            int to = compress_stats_ahead(&c, orig, nl, idx, t, ttr.n ? &ttr : NULL, train, &pp,
                                          ntrain, cache, id, pre);
            rc = to < 0 ? to : 0;
            ahead_to = to > t ? to : t + 1;
        }
        if (rc == 0)
            rc = compress_layer(&c, src, bsrc, idx[t], ttr.n ? &ttr : NULL, train, &pp, ntrain,
                                cache, id, out_dir, pre ? &pre[t] : NULL, &los[t], field, fsz);
        if ((rc = compress_share_layer(rc, &los[t], &sstop, field, fsz)) < 0) {
            cJSON_Delete(lj);
            if (rc == VV_ESTATE && stop && atomic_load(stop)) {
                stopped = 1;
                rc = 0;
                lj = NULL;
                break;
            }
            goto done;
        }
        layer_out *lo = &los[t];
        if ((rc = compress_apply(&cur, lo, lo->W, lo->keep)) < 0 ||
            (refit && (rc = compress_apply(&curl, lo, lo->Wl ? lo->Wl : lo->W, lo->keep)) < 0) ||
            (base && (rc = compress_apply(&bm, lo, lo->Wb, lo->bkeep)) < 0) ||
            (base && refit && (rc = compress_apply(&bmp, lo, lo->Wbp, lo->bkeep)) < 0)) {
            cJSON_Delete(lj);
            goto done;
        }
        done_layers = t + 1;
        if (!root) {
            if (sstop)
                break;
            continue;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "layer", orig->layers[lo->li].name);
        /* neurons: the units the layer's lasso chose among (channels of a
         * conv for a channel layer, also under "channels"). */
        int chan = lo->u.kind == UNIT_CHANNELS;
        cJSON_AddNumberToObject(o, "neurons", (double)lo->u.units);
        cJSON_AddNumberToObject(o, "kept", (double)lo->kept);
        cJSON_AddStringToObject(o, "unit", chan ? "channel" : "neuron");
        if (lo->u.producer >= 0)
            cJSON_AddStringToObject(o, "producer", orig->layers[lo->u.producer].name);
        if (chan) {
            cJSON_AddNumberToObject(o, "channels", (double)lo->u.units);
            cJSON_AddNumberToObject(o, "group", (double)lo->u.group);
            if (lo->u.conv)
                cJSON_AddNumberToObject(o, "positions_per_image", (double)lo->u.positions);
        }
        cJSON_AddStringToObject(o, "removes",
                                chan ? "channels of the conv2d feeding it (its filters, its batch "
                                       "norm's channels and these inputs)"
                                : lo->u.kind == UNIT_NEURONS
                                    ? "neurons of the layer feeding it"
                                    : "nothing (inputs are not neurons of a linear layer; "
                                      "their columns are zero)");
        cJSON_AddNumberToObject(o, "lambda", lo->lambda);
        cJSON_AddNumberToObject(o, "lambda_paper", 2 * lo->lambda / (double)lo->d);
        cJSON_AddNumberToObject(o, "lambda_max", lo->lambda_max);
        cJSON_AddNumberToObject(o, "rel_gap", lo->res.e.rel_gap);
        cJSON_AddNumberToObject(o, "objective", lo->res.e.objective);
        cJSON_AddNumberToObject(o, "mse", lo->res.e.mse);
        cJSON_AddNumberToObject(o, "active", (double)lo->res.e.active);
        cJSON_AddStringToObject(o, "stop_reason", vv_stop_reason_name(lo->res.stop_reason));
        cJSON_AddNumberToObject(o, "iterations", (double)lo->res.iterations);
        cJSON_AddStringToObject(o, "solver_used",
                                vv_solver_name(lo->res.solver ? lo->res.solver : s->lasso.solver));
        cJSON_AddNumberToObject(o, "first_step", (double)lo->first_step);
        cJSON_AddNumberToObject(o, "last_step", (double)lo->last_step);
        cJSON_AddNumberToObject(o, "stats_seconds", lo->stats_seconds);
        cJSON_AddBoolToObject(o, "stats_cached", lo->cached);
        if (!lo->cached)
            cJSON_AddNumberToObject(o, "stats_pass_layers", lo->pass_layers);
        cJSON_AddBoolToObject(o, "refit", refit && !lo->fallback && !lo->refit_failed);
        if (lo->refit_failed)
            cJSON_AddStringToObject(o, "refit_note",
                                    "the kept neurons' Gram matrix is singular "
                                    "at every ridge: the lasso's weights kept");
        if (base)
            cJSON_AddBoolToObject(o, "baseline_refit", refit && !lo->brefit_failed);
        if (lo->fallback)
            cJSON_AddStringToObject(o, "note",
                                    "lambda >= lambda_max: kept the one neuron that "
                                    "enters first, never none");
        if (cJSON_GetArraySize(lo->search) > 0) {
            cJSON_AddItemToObject(o, "search", lo->search);
            lo->search = NULL;
        }
        cJSON_AddItemToArray(lj, o);
        if (lo->res.stop_reason == VV_STOP_USER) {
            stopped = 1;
            break;
        }
    }
    /* The other ranks are done. */
    par_end();
    if (!root) {
        cJSON_Delete(lj);
        goto done;
    }
    if (stopped && done_layers == 0) {
        /* Stopped before any layer was solved: a stopped run with no model. */
        r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "event", "result");
        cJSON_AddStringToObject(r, "state", run_state_name(RUN_STOPPED));
        cJSON_AddStringToObject(r, "stop_reason", stop_reason_name(STOP_USER));
        cJSON_AddStringToObject(r, "kind", "compress");
        cJSON_AddItemToObject(r, "before", compress_evals_json(&before));
        cJSON_Delete(lj);
        *result = r;
        r = NULL;
        goto done;
    }
    /* The stages, evaluated even when stopped (the layers solved so far are
     * in); a stop skips fine-tuning. */
    atomic_int no_stop = 0;
    const atomic_int *user_stop = c.stop;
    c.stop = &no_stop;
    cJSON *stages = cJSON_CreateObject();
    cJSON_AddItemToObject(stages, "before", compress_evals_json(&before));
    if ((rc = eval_net(&c, refit ? &curl : &cur, &ttr, &tte, train, test, &pp, ntrain, ntest,
                       &pruned_e)) < 0) {
        cJSON_Delete(lj);
        cJSON_Delete(stages);
        goto done;
    }
    compress_emit_evals(&c, &pruned_e, "pruned");
    cJSON_AddItemToObject(stages, "pruned", compress_evals_json(&pruned_e));
    after = pruned_e;
    if (refit) {
        if ((rc = eval_net(&c, &cur, &ttr, &tte, train, test, &pp, ntrain, ntest, &after)) < 0) {
            cJSON_Delete(lj);
            cJSON_Delete(stages);
            goto done;
        }
        compress_emit_evals(&c, &after, "refit");
        cJSON_AddItemToObject(stages, "refit", compress_evals_json(&after));
    }
    double ft_seconds = 0, bft_seconds = 0;
    if (ft && !stopped) {
        c.stop = user_stop;
        rc = compress_finetune(&c, &cur, train, &pp, ntrain, "finetune", &ft_seconds, &stopped);
        c.stop = &no_stop;
        if (rc == 0)
            rc = compress_eval_all(&c, &cur, train, test, &pp, ntrain, ntest, &after);
        if (rc < 0) {
            cJSON_Delete(lj);
            cJSON_Delete(stages);
            goto done;
        }
        compress_emit_evals(&c, &after, "finetuned");
        cJSON *fe = compress_evals_json(&after);
        cJSON_AddNumberToObject(fe, "epochs", (double)s->finetune.epochs);
        cJSON_AddNumberToObject(fe, "seconds", ft_seconds);
        cJSON_AddItemToObject(stages, "finetuned", fe);
    }
    compress_emit_evals(&c, &after, "after");
    /* The magnitude baseline at the same widths, through the same stages. */
    cJSON *bj = NULL;
    if (base && !stopped) {
        bj = cJSON_CreateObject();
        cJSON_AddStringToObject(bj, "method", "magnitude");
        int any_chan = 0;
        for (int t = 0; t < done_layers; t++)
            any_chan |= los[t].u.kind == UNIT_CHANNELS;
        cJSON_AddStringToObject(bj, "selection",
                                any_chan ? "the same number of units per layer: neurons whose "
                                           "outgoing weights have the largest L2 norm, channels "
                                           "whose filters have the largest L1 norm (Li et al., "
                                           "ICLR 2017)"
                                         : "the same number of neurons per layer, those whose "
                                           "outgoing weights have the largest L2 norm");
        int bstop = 0;
        rc = eval_net(&c, refit ? &bmp : &bm, &ttr, &tte, train, test, &pp, ntrain, ntest, &base_p);
        if (rc == 0)
            cJSON_AddItemToObject(bj, "pruned", compress_evals_json(&base_p));
        if (rc == 0 && refit &&
            (rc = eval_net(&c, &bm, &ttr, &tte, train, test, &pp, ntrain, ntest, &base_r)) == 0)
            cJSON_AddItemToObject(bj, "refit", compress_evals_json(&base_r));
        if (rc == 0 && ft) {
            c.stop = user_stop;
            rc = compress_finetune(&c, &bm, train, &pp, ntrain, "baseline_finetune", &bft_seconds,
                                   &bstop);
            c.stop = &no_stop;
            if (rc == 0 &&
                (rc = compress_eval_all(&c, &bm, train, test, &pp, ntrain, ntest, &base_f)) == 0) {
                cJSON *fe = compress_evals_json(&base_f);
                cJSON_AddNumberToObject(fe, "epochs", (double)s->finetune.epochs);
                cJSON_AddNumberToObject(fe, "seconds", bft_seconds);
                cJSON_AddItemToObject(bj, "finetuned", fe);
            }
        }
        if (rc < 0) {
            cJSON_Delete(lj);
            cJSON_Delete(stages);
            cJSON_Delete(bj);
            goto done;
        }
        cJSON *kb = cJSON_AddObjectToObject(bj, "kept");
        for (int t = 0; t < done_layers; t++) {
            cJSON *a = cJSON_CreateArray();
            for (int64_t q = 0; q < los[t].kept; q++)
                cJSON_AddItemToArray(a, cJSON_CreateNumber((double)los[t].bkeep[q]));
            cJSON_AddItemToObject(kb, orig->layers[los[t].li].name, a);
        }
    }

    r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "event", "result");
    cJSON_AddStringToObject(r, "state",
                            stopped ? run_state_name(RUN_STOPPED) : run_state_name(RUN_FINISHED));
    int all_conv = 1;
    for (int t = 0; t < done_layers; t++)
        all_conv &= los[t].res.stop_reason == VV_STOP_CONVERGED;
    cJSON_AddStringToObject(r, "stop_reason",
                            stopped    ? "user"
                            : all_conv ? "converged"
                                       : vv_stop_reason_name(los[done_layers - 1].res.stop_reason));
    if (s->name)
        cJSON_AddStringToObject(r, "name", s->name);
    cJSON_AddStringToObject(r, "kind", "compress");
    cJSON_AddStringToObject(r, "model", s->model.resident ? s->model.resident : "(spec)");
    cJSON_AddStringToObject(r, "solver", vv_solver_name(s->lasso.solver));
    /* The solvers that ran, each named once in layer order ("fista, bcd"). */
    char used[64] = "";
    for (int t = 0; t < done_layers; t++) {
        const char *nm = vv_solver_name(los[t].res.solver ? los[t].res.solver : s->lasso.solver);
        int seen = 0;
        for (int u = 0; u < t; u++)
            seen |= los[u].res.solver == los[t].res.solver;
        if (!seen)
            snprintf(used + strlen(used), sizeof used - strlen(used), "%s%s", used[0] ? ", " : "",
                     nm);
    }
    cJSON_AddStringToObject(r, "solver_used", used[0] ? used : vv_solver_name(s->lasso.solver));
    cJSON_AddBoolToObject(r, "sequential", s->sequential);
    if (!s->sequential && done_layers > 1)
        cJSON_AddStringToObject(r, "warning",
                                "independent mode: every layer was fitted on the original "
                                "network's features, and all were changed; each layer's "
                                "certificate bounds its own problem, not the whole network "
                                "(sequential: true fits each on the network compressed below it)");
    cJSON_AddBoolToObject(r, "refit", refit);
    cJSON_AddNumberToObject(r, "n_train", (double)ntrain);
    cJSON_AddNumberToObject(r, "n_test", (double)ntest);
    cJSON_AddItemToObject(r, "layers", lj);
    cJSON_AddItemToObject(r, "before", compress_evals_json(&before));
    cJSON_AddItemToObject(r, "after", compress_evals_json(&after));
    cJSON_AddItemToObject(r, "stages", stages);
    if (ttr.n) {
        /* What was computed once: the trunk, and what started from it. */
        cJSON *tj = compress_trunk_json(orig, &ttr, tte.n ? &tte : NULL);
        cJSON_AddBoolToObject(tj, "cached", tcached);
        if (tcached)
            cJSON_SetNumberValue(cJSON_GetObjectItem(tj, "seconds"), 0);
        cJSON_AddNumberToObject(tj, "statistics_passes", c.trunk_stats);
        cJSON_AddNumberToObject(tj, "evaluations", c.trunk_evals);
        cJSON_AddItemToObject(r, "trunk", tj);
    }
    if (bj)
        cJSON_AddItemToObject(r, "baseline", bj);
    /* The top-level summary keys of a run (the first layer's lambda and
     * certificate; active = neurons kept in all). */
    int64_t kept_all = 0;
    double worst_gap = 0;
    for (int t = 0; t < done_layers; t++) {
        kept_all += los[t].kept;
        worst_gap = los[t].res.e.rel_gap > worst_gap ? los[t].res.e.rel_gap : worst_gap;
    }
    cJSON_AddNumberToObject(r, "lambda", los[0].lambda);
    cJSON_AddNumberToObject(r, "active", (double)kept_all);
    cJSON_AddNumberToObject(r, "rel_gap", worst_gap);
    cJSON_AddNumberToObject(r, "train_acc", after.train_acc);
    cJSON_AddNumberToObject(r, "train_loss", after.train_loss);
    if (after.have_test) {
        cJSON_AddNumberToObject(r, "test_acc", after.test_acc);
        cJSON_AddNumberToObject(r, "test_loss", after.test_loss);
    }
    cJSON_AddNumberToObject(r, "params", (double)after.params);
    cJSON_AddNumberToObject(r, "macs", (double)after.macs);
    cJSON_AddNumberToObject(r, "iterations", (double)c.iters);
    cJSON_AddNumberToObject(r, "seconds", vv_now() - c.t0);
    cJSON_AddStringToObject(r, "blas", vv_blas_corename());
    cJSON_AddStringToObject(r, "device", s->lasso.device[0] ? s->lasso.device : devices_default());

    cJSON *outs = cJSON_AddObjectToObject(r, "outputs");
    char path[4400];
    cJSON *kept = cJSON_CreateObject();
    for (int t = 0; t < done_layers; t++) {
        cJSON *a = cJSON_CreateArray();
        for (int64_t q = 0; q < los[t].kept; q++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber((double)los[t].keep[q]));
        cJSON_AddItemToObject(kept, orig->layers[los[t].li].name, a);
    }
    /* V of each layer in the original indexing (D x K float32, zero
     * columns for the deleted neurons). */
    for (int t = 0; t < done_layers && rc == 0; t++) {
        const layer_out *lo = &los[t];
        float *V = malloc((size_t)(lo->k * lo->d) * sizeof *V);
        if (!V) {
            rc = vv_fail(VV_ENOMEM, "out of memory");
            break;
        }
        for (int64_t i = 0; i < lo->d; i++)
            for (int64_t q = 0; q < lo->k; q++)
                V[i * lo->k + q] = (float)lo->W[q * lo->d + i];
        snprintf(path, sizeof path, "%s/V_%s.npy", out_dir, orig->layers[lo->li].name);
        rc = vv_npy_write(path, VV_F32, 2, (int64_t[]){lo->d, lo->k}, V);
        free(V);
    }
    snprintf(path, sizeof path, "%s/kept.json", out_dir);
    if (rc == 0)
        rc = run_write_json(path, kept);
    cJSON_Delete(kept);
    if (rc == 0)
        cJSON_AddStringToObject(outs, "kept", path);
    if (rc == 0 && s->export_model) {
        snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
        if ((rc = vv_model_save(&cur, path)) == 0)
            cJSON_AddStringToObject(outs, "weights", path);
        cJSON *spec = model_spec_export(&cur, &pp);
        snprintf(path, sizeof path, "%s/model.json", out_dir);
        if (rc == 0 && (rc = run_write_json(path, spec)) == 0)
            cJSON_AddStringToObject(outs, "spec", path);
        cJSON_Delete(spec);
    }
    snprintf(path, sizeof path, "%s/result.json", out_dir);
    cJSON_AddStringToObject(outs, "result", path);
    if (rc == 0)
        rc = run_write_json(path, r);
    if (rc < 0)
        goto done;
    *result = r;
    r = NULL;
done:
    cJSON_Delete(r);
    for (int t = 0; los && t < nl; t++)
        compress_layer_free(&los[t]);
    for (int t = 0; pre && t < nl; t++)
        vv_stats_free(&pre[t].st);
    free(los);
    free(pre);
    free(idx);
    vv_model_free(&cur);
    vv_model_free(&curl);
    vv_model_free(&bm);
    vv_model_free(&bmp);
    vv_model_free(&own);
    models_release(res);
    compress_trunks_put(cache, tkey, &ttr, &tte);
    run_data_close(&dat);
    return rc;
}
