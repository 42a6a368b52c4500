/* compress_internal.h - what the compress job (run_compress.c) shares with
 * its evaluation, baseline and fine-tuning stages (compress_stages.c). */
#ifndef VV_COMPRESS_INTERNAL_H
#define VV_COMPRESS_INTERNAL_H

#include "run.h"

#include "vv/lasso.h"
#include "vv/model.h"

typedef struct cctx {
    const compress_spec *spec;
    const run_sink *sink;
    const atomic_int *stop;
    double t0;
    int64_t step, iters;
    vv_backend *be;        /* the job's device; NULL: the CPU (forward passes too) */
    const vv_model *res_m; /* a resident model's network, whose weights stay on */
    vv_model_dev *res_md;  /* the device between runs (models_device) */
} cctx;

/* A network's evaluation. */
typedef struct evals {
    double train_acc, train_loss, test_acc, test_loss, latency_ms;
    int64_t params, macs;
    int have_test;
} evals;

/* One compressed layer: the lasso's choice and the baseline's. */
typedef struct layer_out {
    int li;
    int64_t k, d, kept;
    int64_t *keep; /* kept indices, ascending */
    double *W;     /* K x D solution (refitted when asked) */
    double *Wl;    /* K x D lasso solution before the refit (NULL without one) */
    /* The magnitude baseline at the same width: the kept neurons of largest
     * outgoing-weight norm, their weights as trained (Wbp) and refitted (Wb). */
    int64_t *bkeep;
    double *Wb, *Wbp;
    int refit_failed, brefit_failed; /* the refit found G singular at any ridge */
    double lambda, lambda_max, stats_seconds;
    vv_lasso_result res;
    int cached, fallback;
    cJSON *search;
    int64_t first_step, last_step; /* the metric steps of the layer's solve */
} layer_out;

/* m's weights on the job's device (*md NULL on the CPU): the resident copy
 * when m is the resident model's network, else a fresh upload, *own set:
 * close it after use. */
int compress_dev_for(cctx *c, const vv_model *m, vv_model_dev **md, int *own);

/* Accuracy and cross-entropy on both splits, parameters, multiply-adds and
 * the latency of a batch of m. */
int compress_eval_all(cctx *c, const vv_model *m, vv_dataset *train, vv_dataset *test,
                      const vv_preprocess *pp, int64_t ntrain, int64_t ntest, evals *e);
cJSON *compress_evals_json(const evals *e);
/* A metric event of e tagged phase. */
void compress_emit_evals(cctx *c, const evals *e, const char *phase);

/* The magnitude baseline of layer lo->li at lo's width (see
 * compress_stages.c). */
int compress_baseline_layer(const compress_spec *s, const vv_layer *L, const vv_stats *bst,
                            layer_out *lo);

/* Trains m in place for the spec's fine-tuning epochs (see
 * compress_stages.c). */
int compress_finetune(cctx *c, vv_model *m, const vv_dataset *train, const vv_preprocess *pp,
                      int64_t ntrain, const char *phase, double *seconds, int *stopped);

#endif
