/* run.h - executing a job spec in-process (shared by `vvd run` and, later,
 * the daemon's compute thread). */
#ifndef VV_RUN_H
#define VV_RUN_H

#include "spec.h"

#include <cjson/cJSON.h>

/* Where a running job sends its events (start, stats, metric, point, log).
 * The callback gets a JSON object it must not keep; it runs on the job's
 * thread, so it must be quick. */
typedef struct run_sink {
    void (*event)(void *ctx, const cJSON *ev);
    void *ctx;
} run_sink;

/* Runs a lasso job: reads the arrays (or generates them), computes the
 * sufficient statistics, solves (one lambda, a path or a neuron budget),
 * writes V.npy (D x K float32), kept.npy (int64 indices of the neurons
 * kept), optionally V_refit.npy and per-point V files, and result.json into
 * out_dir (created if needed).  *result receives the result object (caller
 * frees with cJSON_Delete) whenever the job ran: state FINISHED or STOPPED
 * (stop flag set).  Returns 0 then; on failure returns a negative vv_err
 * with field set to the JSON pointer of the input at fault ("" if none)
 * and *result NULL. */
int run_lasso(const lasso_spec *spec, const char *out_dir, const run_sink *sink,
              const volatile int *stop, cJSON **result, char *field, size_t fieldsz);

/* A problem+json-like error object: state FAILED, error_code, status,
 * title, detail, field. */
cJSON *run_error_object(int err, const char *field);

#endif
