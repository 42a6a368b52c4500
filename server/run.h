/* run.h - executing a job spec in-process (shared by `vvd run` and, later,
 * the daemon's compute thread). */
#ifndef VV_RUN_H
#define VV_RUN_H

#include "spec.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdint.h>

/* The metric keys of DESIGN.md section 3, one X-macro table: a metric
 * event carries any subset of them. */
#define RUN_METRIC_KEYS(X)                                                                   \
    X(objective) X(gap) X(rel_gap) X(active) X(mse) X(group_norm) X(lambda) X(vv_norm)       \
    X(train_acc) X(test_acc) X(train_loss) X(test_loss) X(params) X(macs) X(latency_ms)      \
    X(loss) X(lr) X(epoch)

typedef enum {
#define RUN_METRIC_ENUM(k) RM_##k,
    RUN_METRIC_KEYS(RUN_METRIC_ENUM)
#undef RUN_METRIC_ENUM
    RM_COUNT
} run_metric_key;

/* The key's name ("rel_gap"); NULL for a value out of range. */
const char *run_metric_name(run_metric_key k);

/* One metric event as the compute side hands it on: a step, seconds since
 * the run started, the keys it has (bit k of have for values[k]) and an
 * optional phase tag (compress: "before", "after", ...).  No JSON: the
 * printers at the edges (NDJSON, the store, SSE) format it. */
typedef struct run_metric {
    int64_t step;
    double time;
    uint32_t have;
    double values[RM_COUNT];
    char phase[24];
    char layer[64]; /* compress: the layer whose lasso is being solved, or "" */
} run_metric;

/* Sets key k of m to v (non-finite values are kept out, as JSON has none). */
void run_metric_set(run_metric *m, run_metric_key k, double v);

/* Where a running job sends its events.  metric gets a typed metric; log
 * gets every other event (start, stats, point, panel, ...: a JSON object
 * with an "event" member) that it must not keep.  Both run on the job's
 * thread, so they must be quick; either may be NULL. */
typedef struct run_sink {
    void (*metric)(void *ctx, const run_metric *m);
    void (*log)(void *ctx, const cJSON *ev);
    void *ctx;
} run_sink;

/* Hand an event to a sink (which may be NULL); run_emit_log frees ev. */
void run_emit_metric(const run_sink *sink, const run_metric *m);
void run_emit_log(const run_sink *sink, cJSON *ev);

/* The JSON object of a metric event ({"event": "metric", "step", "time",
 * its keys, "phase" when set}); NULL when out of memory.  For the edges. */
cJSON *run_metric_json(const run_metric *m);

/* Sufficient statistics kept between runs, keyed by what they were computed
 * from (file path, device, inode, size and modification time of phi, psi and
 * the bias file; the bias values; or the synthetic problem's parameters),
 * with the last solutions found on them for warm starts.  Bounded by
 * max_bytes, least recently used evicted first.  Not thread-safe: one cache
 * per compute thread. */
typedef struct run_cache run_cache;
typedef struct cache_entry cache_entry;

run_cache *run_cache_new(size_t max_bytes);
void run_cache_free(run_cache *c);

/* The cache key of a spec written to buf ("" when a file cannot be
 * examined: such a run is not cached). */
const char *cache_key(const lasso_spec *s, char *buf, size_t sz);
cache_entry *cache_find(run_cache *c, const char *key);
cache_entry *cache_add(run_cache *c, const char *key, vv_stats *st);
/* The statistics an entry holds (owned by the cache). */
const vv_stats *cache_stats(const cache_entry *e);
void cache_warm_start(const cache_entry *e, double lambda, double *W, int64_t kd);
void cache_add_solution(cache_entry *e, double lambda, const double *W, int64_t kd);
/* An entry that holds an object of the caller's (a compress job's trunk
 * features) instead of statistics: bytes count against the budget, and
 * blob_free(blob) is called when it is evicted or the cache freed.  Returns
 * 0, or -1 (blob still the caller's) when it alone exceeds the budget or
 * memory is short.  cache_take removes the entry of key and hands its
 * object back to the caller (NULL when there is none): a job takes it for
 * its duration, so that nothing it adds meanwhile evicts it, and may give
 * it back with cache_add_blob. */
int cache_add_blob(run_cache *c, const char *key, void *blob, size_t bytes,
                   void (*blob_free)(void *));
void *cache_take(run_cache *c, const char *key);

/* Solves on given statistics what the spec selects: one lambda (warm
 * started from the cache entry ce when given), a path (V files under
 * out_dir/path) or a neuron budget (bisection).  W (K x D) is the start and
 * receives the solution; *lambda the lambda solved last; points gets the
 * path or search points.  Metric events go to sink with steps from *step,
 * which is advanced, as is *iters.  be: the job's device (NULL: the CPU).
 * Returns 0 or a negative vv_err. */
int run_select_solve(const lasso_spec *s, vv_backend *be, const vv_stats *st, cache_entry *ce,
                     const run_sink *sink, const atomic_int *stop, const char *out_dir,
                     double t0, double deadline, int64_t *step, int64_t *iters, double *W,
                     double *lambda, vv_lasso_result *res, cJSON *points, char *field,
                     size_t fieldsz);

/* Runs a lasso job: reads the arrays (or generates them), computes the
 * sufficient statistics, solves (one lambda, a path or a neuron budget),
 * writes V.npy (D x K float32), kept.npy (int64 indices of the neurons
 * kept), optionally V_refit.npy and per-point V files, and result.json into
 * out_dir (created if needed).  *result receives the result object (caller
 * frees with cJSON_Delete) whenever the job ran: state FINISHED or STOPPED
 * (stop flag set).  With a cache, the statistics of earlier runs on the same
 * data are reused and a single-lambda solve starts from the nearest earlier
 * solution (unless the spec gives init).  Returns 0 then; on failure returns a negative vv_err
 * with field set to the JSON pointer of the input at fault ("" if none)
 * and *result NULL. */
int run_lasso(const lasso_spec *spec, const char *out_dir, const run_sink *sink,
              const atomic_int *stop, run_cache *cache, cJSON **result, char *field,
              size_t fieldsz);

/* Runs an interpolate job (run_interp.c): the exact problem by the
 * interior-point SOCP, and optionally the sparsest optimal support by brute
 * force.  Writes V.npy (D x K float64), Y.npy (the dual certificate, N x D
 * float64), kept.npy and result.json.  Contract as run_lasso. */
int run_interpolate(const interp_spec *spec, const char *out_dir, const run_sink *sink,
                    const atomic_int *stop, cJSON **result, char *field, size_t fieldsz);

/* Runs a bounds_study job (run_bounds.c): instances of the paper's Fig. 3,
 * 4 or 5, their counts of nonzero columns, histograms against the bounds
 * (result.json, histograms.svg).  Contract as run_lasso. */
int run_bounds(const bounds_spec *spec, const char *out_dir, const run_sink *sink,
               const atomic_int *stop, cJSON **result, char *field, size_t fieldsz);

/* Runs a neuron_sharing job (run_sharing.c): experiment 1 of the paper;
 * weights.safetensors (PyTorch layout), neurons.svg, result.json. */
int run_sharing(const sharing_spec *spec, const char *out_dir, const run_sink *sink,
                const atomic_int *stop, cJSON **result, char *field, size_t fieldsz);

/* Runs a compress job (run_compress.c): experiment 3 of the paper on a
 * model (resident, or loaded from its spec and weights) and a data set;
 * writes model.safetensors and model.json (the compressed model),
 * kept.json (the kept neurons of each layer) and result.json.  Contract as
 * run_lasso; the statistics of each layer are cached like a lasso run's. */
int run_compress(compress_spec *spec, const char *out_dir, const run_sink *sink,
                 const atomic_int *stop, run_cache *cache, cJSON **result, char *field,
                 size_t fieldsz);

/* Runs a train job (run_train.c): mini-batch training with a checkpoint
 * (model, optimizer state, epoch) after every epoch under out_dir/checkpoint,
 * resumable with resume_from; writes model.safetensors, model.json and
 * result.json.  The preset fmnist-mlp installs its model as the embedded
 * default (models.h).  Contract as run_lasso. */
int run_train(train_spec *spec, const char *out_dir, const run_sink *sink,
              const atomic_int *stop, cJSON **result, char *field, size_t fieldsz);

/* Runs a job of any kind. */
int run_job(job_spec *spec, const char *out_dir, const run_sink *sink,
            const atomic_int *stop, run_cache *cache, cJSON **result, char *field,
            size_t fieldsz);

/* ---- Shared by the kinds (run_common.c) ----------------------------------------- */

/* Creates a directory and its parents (mkdir -p). */
int run_mkdir_p(const char *dir);

/* Calls fn for each file a run wrote in dir, its artifacts: the regular
 * files of dir and of its folders one level down (named "SUB/NAME"),
 * skipping names that start with '.' and temporary files (".tmp.").  Stops
 * at fn's first non-zero answer and returns it; 0 when dir is missing. */
int run_each_output(const char *dir,
                    int (*fn)(void *ctx, const char *name, const char *path, int64_t bytes),
                    void *ctx);

/* Writes text (or a JSON object, pretty-printed, with a final newline) to
 * path through a temporary file renamed into place, so a reader or a crash
 * never sees half a file.  VV_EIO naming path on failure. */
int run_write_text(const char *path, const char *text);
int run_write_json(const char *path, const cJSON *o);

/* The data set of a model job: both splits opened, the preprocessing (the
 * data spec's, else the model's) checked, every split's images fitting m,
 * and the counts cut to max_train / max_test.  Errors name /data,
 * /data/test, /data/preprocess or /model/preprocess in field. */
typedef struct run_data {
    vv_dataset *train, *test; /* test may be NULL */
    vv_preprocess pp;
    int64_t ntrain, ntest;
} run_data;
int run_data_open(const data_spec *d, const vv_preprocess *model_pp, const vv_model *m,
                  run_data *out, char *field, size_t fsz);
void run_data_close(run_data *d);

/* Reads a whole array file named by a spec field as rows x cols doubles
 * (*out malloc'd); on failure field receives ptr. */
int run_read_matrix(const spec_file *f, const char *ptr, double **out, int64_t *rows,
                    int64_t *cols, char *field, size_t fieldsz);

/* A problem+json-like error object: state FAILED, error_code, status,
 * title, detail, field. */
cJSON *run_error_object(int err, const char *field);

#endif
