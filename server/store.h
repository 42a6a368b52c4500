/* store.h - vvd's run history in SQLite (WAL).
 *
 * Tables (schema/sql/NNN_name.sql, applied in order by store_open and recorded in
 * PRAGMA user_version): runs, events, metrics, sweeps, artifacts.  One
 * connection guarded by an internal mutex: every function is thread-safe.
 * Functions return 0 or a negative vv_err (VV_ENOTFOUND for a missing id,
 * VV_ECONFLICT for a duplicate, VV_EIO for SQLite errors, with a detail).
 * Strings returned in rows are malloc'd and owned by the row; free rows with
 * the matching _free function (which accepts NULL).  Times are seconds since
 * the Unix epoch (double).
 */
#ifndef VV_STORE_H
#define VV_STORE_H

#include <stdint.h>

typedef struct store store;

/* Opens (creating if needed) the database at path, sets WAL mode,
 * synchronous=NORMAL, foreign keys on, a busy timeout, and applies pending
 * migrations.  Fails with VV_EIO naming the file. */
int store_open(const char *path, store **out);
void store_close(store *s);

/* PRAGMA integrity_check == "ok": 0, else VV_EIO with the first message. */
int store_integrity_check(store *s);

/* ---- runs ---------------------------------------------------------------- */

typedef struct run_row {
    char *id;           /* e.g. "r-000042" */
    char *kind;         /* "lasso", ... */
    char *state;        /* QUEUED RUNNING FINISHED STOPPED FAILED CRASHED */
    char *stop_reason;  /* converged max_iter max_seconds user, or NULL */
    char *spec;         /* the submitted spec, JSON text */
    char *result;       /* the result object, JSON text, or NULL */
    char *error;        /* problem object of a FAILED/CRASHED run, JSON text, or NULL */
    char *sweep_id;     /* or NULL */
    char *config_hash;  /* sweeps: hash of the point's spec, or NULL */
    double created, started, finished, heartbeat; /* 0 when not yet */
    int64_t last_seq;   /* highest event seq stored for the run (0: none) */
    char *name;         /* the name set by store_run_annotate, or NULL */
    char *tags;         /* JSON array of strings, sorted and unique ("[]") */
    char *notes;        /* free text ("" when none) */
    char *runner;       /* NULL: this daemon's; "external" or where it runs (store_run_claim) */
    int64_t ext_seq;    /* an external run: the worker's last event number applied */
} run_row;

void run_row_free(run_row *r);

/* Inserts a QUEUED run.  sweep_id and config_hash may be NULL; a second run
 * with the same (sweep_id, config_hash) is VV_ECONFLICT (UNIQUE). */
int store_run_insert(store *s, const char *id, const char *kind, const char *spec,
                     const char *sweep_id, const char *config_hash, double now);

/* Sets state (and stop_reason, result, error when not NULL); RUNNING sets
 * started, a final state sets finished.  VV_ENOTFOUND if no such run. */
int store_run_set_state(store *s, const char *id, const char *state, const char *stop_reason,
                        const char *result, const char *error, double now);

int store_run_heartbeat(store *s, const char *id, double now);

int store_run_get(store *s, const char *id, run_row *out);

/* Lists runs newest first, filtered by state / kind / sweep_id (each NULL
 * for any).  page_token is NULL or a token returned earlier; at most
 * page_size rows (1..1000) go to *rows (array of *n, free each row with
 * run_row_free and the array with free).  next_token (room for 64 bytes)
 * receives the token of the next page, or "" at the end.  A malformed token
 * is VV_EINVAL. */
int store_runs_list(store *s, const char *state, const char *kind, const char *sweep_id,
                    int page_size, const char *page_token, run_row **rows, int *n,
                    char *next_token);

/* What store_runs_find selects: each member NULL (0) for any.  q matches
 * case-insensitively anywhere in the id, kind, name (or the spec's name)
 * and tags; a run must carry every one of tags. */
enum { RUN_FILTER_MAX_TAGS = 16 };
typedef struct run_filter {
    const char *state, *kind, *sweep_id, *q;
    const char *const *tags;
    int ntags;
} run_filter;

/* store_runs_list with the filter f (same paging and ownership). */
int store_runs_find(store *s, const run_filter *f, int page_size, const char *page_token,
                    run_row **rows, int *n, char *next_token);

/* Sets what users add to a run: name (when set_name; NULL clears it),
 * tags (a JSON array text, sorted and unique; NULL keeps them) and notes
 * (NULL keeps them).  VV_ENOTFOUND if no such run. */
int store_run_annotate(store *s, const char *id, int set_name, const char *name,
                       const char *tags, const char *notes);

/* Deletes an ended run with its events, metrics and artifact records in ONE
 * transaction; a run of a sweep leaves a row in sweep_deleted (its spec,
 * state and result).  A QUEUED or RUNNING run is VV_ECONFLICT, a missing one
 * VV_ENOTFOUND.  *was (may be NULL) receives the row as it was. */
int store_run_delete(store *s, const char *id, double now, run_row *was);

/* ---- external runs (run by `vvd run --report-to` elsewhere) ----------------- */

/* Inserts a QUEUED run that waits for a worker (runner "external"): never
 * queued here, nor crashed or queued by store_recover.  As
 * store_run_insert otherwise. */
int store_run_insert_external(store *s, const char *id, const char *kind, const char *spec,
                              const char *sweep_id, const char *config_hash, double now);

/* A worker takes an external QUEUED run: RUNNING, runner = where, started
 * = heartbeat = now.  VV_ENOTFOUND for a missing run; VV_ESTATE for a run
 * that is not external or not QUEUED (the detail says its state). */
int store_run_claim(store *s, const char *id, const char *where, double now);

/* Records that the worker's events up to seq are applied, and a heartbeat. */
int store_run_ext_seq(store *s, const char *id, int64_t seq, double now);

/* Start-up recovery: every RUNNING run of this daemon (external runs run
 * elsewhere and are left as they are) becomes CRASHED with error
 * {"title":"daemon stopped while the run was running", ...} and finished =
 * now; *crashed receives how many.  The ids of this daemon's QUEUED runs,
 * oldest first, go to *queued (array of *nqueued malloc'd strings; free
 * each and the array). */
int store_recover(store *s, double now, int *crashed, char ***queued, int *nqueued);

/* Number of runs in each state, for /metrics: counts[i] for states[i],
 * states = QUEUED RUNNING FINISHED STOPPED FAILED CRASHED. */
int store_count_states(store *s, int64_t counts[6]);

/* The largest numeric suffix of run ids "r-NNNNNN" and sweep ids
 * "s-NNNNNN" (0 if none), so that new ids continue after a restart. */
int store_max_ids(store *s, int64_t *max_run, int64_t *max_sweep);

/* ---- events and metrics ---------------------------------------------------- */

/* One event of a run: seq increases strictly per run (SSE id), type is
 * "metric", "state" or "log", data a JSON object text. */
typedef struct event_row {
    int64_t seq;
    const char *type;
    const char *data;
} event_row;

/* One metric point. */
typedef struct metric_row {
    int64_t step;
    const char *key;
    double value;
    double time; /* seconds since the run started */
} metric_row;

/* Appends events and metric points in ONE transaction (either may be
 * empty), and sets the run's last_seq.  A seq not above the stored last_seq
 * is VV_ECONFLICT (and nothing is written). */
int store_append(store *s, const char *run_id, const event_row *ev, int nev,
                 const metric_row *m, int nm);

/* store_append and store_run_set_state in ONE transaction: a run's last
 * events and its final state (with its stop_reason, result and error) are
 * stored together or not at all.  VV_ENOSPACE when the disk is full. */
int store_append_final(store *s, const char *run_id, const event_row *ev, int nev,
                       const metric_row *m, int nm, const char *state, const char *stop_reason,
                       const char *result, const char *error, double now);

/* Calls fn for the events of run_id with seq > after_seq, in order, at most
 * limit (0: all); stops early when fn returns non-zero. */
int store_events_after(store *s, const char *run_id, int64_t after_seq, int limit,
                       int (*fn)(void *ctx, int64_t seq, const char *type, const char *data),
                       void *ctx);

/* Calls fn for the metric points of run_id with step > after_step, ordered
 * by (step, key), restricted to keys (NULL or nkeys == 0: all keys), at
 * most limit (0: all). */
int store_metrics_get(store *s, const char *run_id, const char *const *keys, int nkeys,
                      int64_t after_step, int64_t limit,
                      int (*fn)(void *ctx, int64_t step, const char *key, double value,
                                double time),
                      void *ctx);

/* ---- sweeps ------------------------------------------------------------------ */

typedef struct sweep_row {
    char *id;
    char *spec;  /* the sweep request, JSON text */
    char *state; /* ACTIVE STOPPED FINISHED */
    double created;
} sweep_row;

void sweep_row_free(sweep_row *r);
int store_sweep_insert(store *s, const char *id, const char *spec, double now);
int store_sweep_get(store *s, const char *id, sweep_row *out);
int store_sweep_set_state(store *s, const char *id, const char *state);

/* Lists sweeps newest first (paging as store_runs_list), filtered by state,
 * kind (the base spec's, "lasso" when it names none) and q (in the id or
 * the request's name); each NULL for any.  Free each row with
 * sweep_row_free and the array with free. */
int store_sweeps_list(store *s, const char *state, const char *kind, const char *q,
                      int page_size, const char *page_token, sweep_row **rows, int *n,
                      char *next_token);

/* Calls fn with the config_hash and state of every run of the sweep. */
int store_sweep_points(store *s, const char *sweep_id,
                       int (*fn)(void *ctx, const char *config_hash, const char *state),
                       void *ctx);

/* Calls fn for each run deleted from the sweep, oldest deletion first
 * (result may be NULL). */
int store_sweep_deleted(store *s, const char *sweep_id,
                        int (*fn)(void *ctx, const char *run_id, const char *config_hash,
                                  const char *state, const char *spec, const char *result,
                                  double deleted),
                        void *ctx);

/* ---- artifacts ------------------------------------------------------------- */

/* Records a file of a run (name unique per run; re-adding replaces). */
int store_artifact_add(store *s, const char *run_id, const char *name, const char *path,
                       int64_t bytes);

/* Calls fn for each artifact of the run, by name. */
int store_artifacts_list(store *s, const char *run_id,
                         int (*fn)(void *ctx, const char *name, const char *path, int64_t bytes),
                         void *ctx);

#endif
