/* compress_internal.h - what the compress job (run_compress.c) shares with
 * its evaluation, baseline and fine-tuning stages (compress_stages.c) and
 * its features (compress_trunk.c). */
#ifndef VV_COMPRESS_INTERNAL_H
#define VV_COMPRESS_INTERNAL_H

#include "model_check.h"
#include "run.h"

#include "vv/lasso.h"
#include "vv/model.h"

typedef struct cctx {
    const compress_spec *spec;
    const run_sink *sink;
    const atomic_int *stop;
    double t0;
    int64_t step, iters;
    vv_backend *be;               /* the job's device; NULL: the CPU (forward passes too) */
    const vv_model *res_m;        /* a resident model's network, whose weights stay on */
    vv_model_dev *res_md;         /* the device between runs (models_device) */
    int trunk_stats, trunk_evals; /* statistics passes and evaluations started from the trunk */
    int trunk_everywhere;         /* every rank holds the training trunk (or one process) */
} cctx;

/* A network's evaluation. */
typedef struct evals {
    double train_acc, train_loss, test_acc, test_loss, latency_ms;
    int64_t params, macs, latency_batch;
    int have_test;
} evals;

/* One compressed layer: the lasso's choice and the baseline's. */
typedef struct layer_out {
    int li;
    layer_unit u;  /* what it deletes: neurons or channels (groups of u.group features) */
    int64_t *goff; /* the groups' offsets (u.units + 1) */
    int64_t ng;
    int64_t k, d, kept;
    int64_t *keep; /* kept units (neurons or channels), ascending */
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
    int pass_layers; /* the layers whose statistics were computed in the same pass */
    cJSON *search;
    int64_t first_step, last_step; /* the metric steps of the layer's solve */
} layer_out;

/* m's weights on the job's device (*md NULL on the CPU): the resident copy
 * when m is the resident model's network, else a fresh upload, *own set:
 * close it after use. */
int compress_dev_for(cctx *c, const vv_model *m, vv_model_dev **md, int *own);

/* The output of layers [0, at) of the job's networks on images [0, n) of a
 * data set (float32, n x cols), with their labels: in memory, or in an
 * unlinked temporary file (fd) beyond the memory limit. */
typedef struct trunk {
    int at;
    int64_t n, cols;
    float *mem;
    float *dev;      /* or on the job's device, */
    vv_backend *dbe; /* in its memory */
    int fd, in_file;
    int32_t *labels;
    double seconds;
    int ranks; /* the processes that computed it (mpirun), each its share */
} trunk;

/* The layer whose input is the trunk of a job whose lowest compressed layer
 * is first: the linear layer feeding it (whose outputs the job deletes),
 * else first itself. */
int compress_trunk_at(const vv_model *m, int first);
/* 1 when layers [0, at) of m hold a convolution or a linear layer: a trunk
 * there saves work (below a flatten alone it would only copy the images). */
int compress_trunk_worth(const vv_model *m, int at);
/* The bytes an environment variable sets (a decimal count >= 0), else
 * dflt. */
int64_t compress_env_bytes(const char *name, int64_t dflt);
/* Bytes of trunk the job may hold in memory (VVD_TRUNK_MEMORY, else a
 * quarter of the free memory, at most 4 GiB). */
int64_t compress_trunk_limit(void);
/* Computes the trunk of m at layer at on images [0, n) of ds (one forward
 * pass, on the job's device when it has one) into *t: in the device's
 * memory when the job has one and it takes at most half of what is free
 * there, else in memory when it fits in *budget (which it then takes
 * from), else in a temporary file in dir.  With split (every rank calls it; in memory only), each
 * rank under mpirun computes its share of whole batches and gets the others' rows. Fails with the
 * data set's and forward pass's errors, VV_EIO, VV_ENOMEM or VV_ESTATE (stopped; split: the error
 * agreed on); *t is then empty. */
int compress_trunk_build(cctx *c, const vv_model *m, int at, const vv_dataset *ds,
                         const vv_preprocess *pp, int64_t n, const char *dir, int64_t *budget,
                         int split, trunk *t);
/* Rows [r0, r0 + n) of the trunk into dst (n x cols). */
int compress_trunk_read(const trunk *t, int64_t r0, int64_t n, float *dst);
/* Rows [r0, r0 + n) of the trunk through layers [t->at, to) of its network
 * into y (host memory): on md's device straight from the trunk when it is
 * there, else read into x (n x cols) and run by plan (layers [t->at, to);
 * NULL when to == t->at: the rows go to y) with threads. */
int compress_trunk_run(const trunk *t, vv_model_dev *md, vv_forward_plan *plan, int to, int64_t r0,
                       int64_t n, float *x, float *y, int threads);
/* Frees it and leaves it empty (fd -1); accepts NULL. */
void compress_trunk_free(trunk *t);
/* The trunks of the training (tr) and test (te: empty without test) images:
 * taken from the cache under key when an earlier run left them there (a
 * sweep's points share them; *cached set), else built (the memory budget
 * compress_trunk_limit() shared by both).  Under mpirun every rank calls
 * it: the ranks split the training trunk (tr->ranks) when each can hold it
 * in memory, else rank 0 alone builds it; the test trunk is rank 0's.  On
 * failure both are empty. */
int compress_trunks_get(cctx *c, run_cache *cache, const char *key, const vv_model *m, int at,
                        const vv_dataset *train, const vv_dataset *test, const vv_preprocess *pp,
                        int64_t ntrain, int64_t ntest, const char *dir, trunk *tr, trunk *te,
                        int *cached);
/* Leaves the trunks in the cache under key when both are in memory and fit
 * its budget, else frees them; either way *tr and *te are left empty. */
void compress_trunks_put(run_cache *cache, const char *key, trunk *tr, trunk *te);
/* The result's description of the trunks (te may be NULL). */
cJSON *compress_trunk_json(const vv_model *m, const trunk *tr, const trunk *te);

/* The sufficient statistics of layers li[0] < li[1] < ... < li[nl - 1] of
 * m (each one's inputs and pre-activation outputs on the training set, its
 * bias as the offset; for a conv, rows are u[j].positions output positions
 * per image, sampled by the spec's seed, with the unfolded input patches
 * and the outputs there) into st[0..nl), in one pass over the data
 * (compress_feats.c), from the trunk tr (NULL, or one of another size or
 * above li[0]: from the images; counted in c->trunk_stats).  With share,
 * under mpirun, each rank runs the forward passes of its share of the
 * training images (from the trunk when c->trunk_everywhere) and the sums
 * are added up (every rank calls it); else this process does all the
 * rows. */
int compress_layer_stats(cctx *c, const vv_model *m, int nl, const int *li, const layer_unit *u,
                         const trunk *tr, const vv_dataset *train, const vv_preprocess *pp,
                         int64_t ntrain, int share, vv_stats *st);

/* compress_eval_all on the trunks of the training (tr) and test (te, may be
 * NULL) images; m must share them (unchanged below tr->at). */
int compress_eval_trunk(cctx *c, const vv_model *m, const trunk *tr, const trunk *te, evals *e);

/* The latency of m (on md's device when not NULL, inputs and outputs
 * crossing the bus included): the median of 5 forward passes of a batch of
 * zeros, in milliseconds; *batch: its size. */
double compress_latency_ms(const vv_model *m, vv_model_dev *md, int64_t *batch);

/* Accuracy and cross-entropy on both splits, parameters, multiply-adds and
 * the latency of a batch of m. */
int compress_eval_all(cctx *c, const vv_model *m, vv_dataset *train, vv_dataset *test,
                      const vv_preprocess *pp, int64_t ntrain, int64_t ntest, evals *e);
cJSON *compress_evals_json(const evals *e);
/* A metric event of e tagged phase. */
void compress_emit_evals(cctx *c, const evals *e, const char *phase);

/* The baseline of layer lo->li of m at lo's width (see compress_stages.c):
 * neurons by the L2 norm of their outgoing weights, channels by the L1 norm
 * of their filters in the producing conv (Li et al., ICLR 2017). */
int compress_baseline_layer(const compress_spec *s, const vv_model *m, const vv_stats *bst,
                            layer_out *lo);

/* ---- One layer (compress_layer.c) ---- */

/* The cache key of a layer's statistics (or of the trunk) from the model
 * id, the data files' identity and the preprocessing; -1 if it does not
 * fit in sz. */
int compress_stats_key(const compress_spec *s, const char *model_id, const char *layer, int64_t n,
                       const vv_preprocess *pp, char *buf, size_t sz);
/* Statistics computed ahead of the layers' turns (independent mode: their
 * inputs all come from the original network). */
typedef struct stats_ahead {
    vv_stats st;
    int layers; /* the layers of the pass that computed them */
} stats_ahead;
/* Computes, in one pass, the statistics of layers li[t], li[t + 1], ... of
 * m into pre[t], pre[t + 1], ... as far as their G and Bt fit in 1 GiB
 * together (VVD_STATS_MEMORY sets the bytes; at least one), skipping those in the cache under
 * model_id and stopping before a layer that cannot be compressed.  Returns the index after the last
 * layer it covered, or a negative vv_err.  Under mpirun every rank calls it and computes its share
 * (as compress_layer). */
int compress_stats_ahead(cctx *c, const vv_model *m, int nl, const int *li, int t, const trunk *tr,
                         const vv_dataset *train, const vv_preprocess *pp, int64_t ntrain,
                         run_cache *cache, const char *model_id, stats_ahead *pre);
/* Compresses layer li of src: statistics (cached by model_id when given,
 * else pre's when it holds them, taken over; pre may be NULL), the lasso
 * over its neurons or channels, the kept ones, the refit; and,
 * when bsrc is given, the baseline at the same width (bsrc == src: on the
 * same statistics; else on bsrc's, the baseline network's own features). */
int compress_layer(cctx *c, const vv_model *src, const vv_model *bsrc, int li, const trunk *tr,
                   const vv_dataset *train, const vv_preprocess *pp, int64_t ntrain,
                   run_cache *cache, const char *model_id, const char *out_dir, stats_ahead *pre,
                   layer_out *lo, char *field, size_t fsz);
/* Sets layer lo->li's weight of m to V = W^T (D x K) and deletes the units
 * not in keep (lo->kept of them) from the layer producing them (and a conv's
 * batch norms); a layer whose inputs are not one layer's outputs keeps its
 * width with zero columns. */
int compress_apply(vv_model *m, const layer_out *lo, const double *W, const int64_t *keep);
/* Under mpirun: rank 0's outcome of layer lo (its status, then V and the
 * kept units) reaches every rank.  *stopped: the solve was stopped by the
 * user. */
int compress_share_layer(int rc, layer_out *lo, int *stopped, char *field, size_t fsz);
void compress_layer_free(layer_out *lo);

/* Trains m in place for the spec's fine-tuning epochs (see
 * compress_stages.c). */
int compress_finetune(cctx *c, vv_model *m, const vv_dataset *train, const vv_preprocess *pp,
                      int64_t ntrain, const char *phase, double *seconds, int *stopped);

#endif
