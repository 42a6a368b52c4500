/* report.h - `vvd run --report-to URL`: a run on a worker (a Slurm array
 * task, a Kubernetes pod, any machine) reported to a central `vvd serve`
 * through its public API, so that its history, vvctl and the dashboard show
 * it as one of their own (with where it ran).
 *
 * The worker claims a run the daemon holds for it (a point of a sweep made
 * with "external": true, by index; a run made with POST /v1/runs?external=1;
 * or a new one from a spec), runs it here, and a sender thread posts its
 * events in numbered batches (POST /v1/runs/{id}/events: resent batches are
 * skipped by number); at the end it uploads the run's files (PUT
 * /v1/runs/{id}/artifacts/NAME) and ends the run (POST /v1/runs/{id}/finish).
 * Every request is retried with backoff (0.2 s doubling to 5 s) while the
 * daemon is unreachable or answers 5xx/429, for up to timeout_s seconds in a
 * row, so a daemon restarted mid-run loses nothing.  A stop asked for on the
 * daemon reaches the run with the answer to a batch.
 */
#ifndef VV_REPORT_H
#define VV_REPORT_H

#include <cjson/cJSON.h>
#include <stdatomic.h>

typedef struct reporter reporter;

typedef struct report_opts {
    const char *url;   /* the daemon, e.g. http://head:8470 */
    const char *token; /* bearer token or NULL */
    double timeout_s;  /* how long the daemon may stay unreachable (default 600) */
    const char *where; /* how the run names this worker (default: host, pid, job) */
} report_opts;

/* Prepares a reporter (no request yet). */
int reporter_open(const report_opts *o, reporter **out);
void reporter_free(reporter *r);

/* Takes the run this worker will run, writing its id (32 bytes), its spec
 * (malloc'd JSON text) and its state: point index of sweep sid (sid not
 * NULL), the run rid (rid not NULL), or a new external run of spec_text.
 * A state other than RUNNING means the run was not taken (it ended, or
 * another worker has it): nothing to do.  Fails with the daemon's error. */
int reporter_claim(reporter *r, const char *sid, int index, const char *rid,
                   const char *spec_text, char *id, char **spec, char *state, size_t statesz);

/* Starts sending: events queued from now on go to run id; a stop the
 * daemon asks for sets *stop. */
int reporter_start(reporter *r, atomic_int *stop);

/* Queues an event of the run (type "metric" or "log"; data is copied). */
void reporter_event(reporter *r, const char *type, const cJSON *data);

/* Sends what is queued, the files of out_dir (and of its folders, one
 * level) and the run's end: state, stop_reason (may be NULL), result and
 * error (JSON objects or NULL).  Returns 0, or the error that made it give
 * up (the run's files stay in out_dir). */
int reporter_finish(reporter *r, const char *out_dir, const char *state, const char *stop_reason,
                    const cJSON *result, const cJSON *error);

/* `vvd run --report-to URL ...` (report_run.c): argv after "run". */
int report_run_main(int argc, char **argv);

#endif
