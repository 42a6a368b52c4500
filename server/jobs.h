/* jobs.h - the job pipeline: the run queue (jobs.c), the compute thread
 * (compute.c), the live event hub (hub.c) and the writer (writer.c).
 *
 * HTTP threads submit parsed, confined specs and read events; they never
 * compute.  One compute thread (the device's) takes runs from a FIFO queue
 * and runs them through the table of kinds (kinds.h); it hands the hub
 * typed events (metrics, states, logs) and returns at once, so a slow
 * subscriber or disk never slows the solver (the hub's memory is bounded:
 * see hub.h).  The writer moves events and metrics to SQLite in batches and
 * stores a run's final state in one transaction with its last events; only
 * then is that state announced.  A state this module reports is a state
 * the store holds.  All functions are thread-safe.
 */
#ifndef VV_JOBS_H
#define VV_JOBS_H

#include "spec.h"
#include "state.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jobs jobs;

typedef struct jobs_config {
    store *db;
    const char *data_root; /* absolute, existing */
    int max_queue;         /* QUEUED runs at most (429 beyond) */
    /* Called once, on the compute thread, when a run left the device lost
     * (a sticky error): that run is FAILED, no other run starts, and the
     * daemon must exit so that its service manager restarts it. */
    void (*on_device_lost)(void);
} jobs_config;

/* Recovers the store (RUNNING -> CRASHED, QUEUED queued again in order,
 * their specs confined to the data root again: one that fails is FAILED)
 * and starts the compute and writer threads.  On failure nothing is left
 * running or allocated. */
int jobs_start(const jobs_config *cfg, jobs **out);

/* Stops accepting work, stops the running run (state STOPPED, stop_reason
 * "shutdown", V saved), flushes every event and joins the threads.  QUEUED
 * runs stay QUEUED in the store and run after the next start. */
void jobs_stop(jobs *j);

/* Queues a run of a parsed spec (ownership of *spec passes to the queue;
 * *spec is zeroed).  spec_json is the submitted spec text, stored as is.
 * Writes the new id (room for 32 bytes).  VV_EBUSY when the queue is full,
 * VV_ECONFLICT when (sweep_id, config_hash) already exists. */
int jobs_submit(jobs *j, job_spec *spec, const char *spec_json, const char *sweep_id,
                const char *config_hash, char *id);

/* Stops a run: a QUEUED run becomes STOPPED (stop_reason user) without
 * starting, stored before this returns; a RUNNING one is asked to stop at
 * its next iteration; a run that has ended is left as it is (idempotent:
 * 0).  VV_ENOTFOUND for an unknown id. */
int jobs_stop_run(jobs *j, const char *id);

/* ---- External runs (external.c): run elsewhere, reported here ------------- */

/* Records a run that waits for a worker (never queued here); writes its id. */
int jobs_submit_external(jobs *j, const char *kind, const char *spec_json, const char *sweep_id,
                         const char *config_hash, char *id);
/* A worker (where: host, scheduler job) takes an external QUEUED run: it is
 * RUNNING and live.  VV_ESTATE when it is not external or not QUEUED. */
int jobs_claim(jobs *j, const char *id, const char *where);
/* Applies a batch of a worker's events ([{seq, type: metric|log, data}],
 * checked whole first: field names a bad one); events numbered at or below
 * the run's ext_seq are skipped.  *applied, the new *ext_seq, and *stop:
 * whether a stop was asked for. */
int jobs_ingest(jobs *j, const char *id, const cJSON *events, int *applied, int64_t *ext_seq,
                int *stop, char *field, size_t fsz);
/* Ends an external RUNNING run (takes result and error, JSON texts or NULL),
 * stored before it returns; an external run that ended already is 0. */
int jobs_finish_external(jobs *j, const char *id, run_state state, stop_reason why, char *result,
                         char *error);
/* Whether a stop was asked for the external run id; clear forgets it. */
int jobs_ext_stop_requested(jobs *j, const char *id, int clear);

/* Queue position (1 = next) and why the run waits, for a QUEUED run; 0 and
 * "" otherwise. */
void jobs_queue_info(jobs *j, const char *id, int *position, char *reason, size_t reasonsz);

typedef struct jobs_stats {
    int queued, running;
    int64_t iterations;       /* solver iterations since start */
    double iterations_per_s;  /* over the last few seconds */
    int64_t events_coalesced; /* metrics merged because the store was behind */
    int64_t events_bytes;     /* memory the live events hold now */
    int64_t store_errors;     /* failed store transactions (retried) */
} jobs_stats;

void jobs_get_stats(jobs *j, jobs_stats *st);

/* Free places in the queue now. */
int jobs_room(jobs *j);

/* Reserves n queue places at once (VV_EBUSY, reserving nothing, when they
 * are not free); jobs_submit_reserved then uses one each, and
 * jobs_unreserve gives back the ones not used.  For sweeps: all their points
 * or none. */
int jobs_reserve(jobs *j, int n);
void jobs_unreserve(jobs *j, int n);
int jobs_submit_reserved(jobs *j, job_spec *spec, const char *spec_json, const char *sweep_id,
                         const char *config_hash, char *id);

/* ---- events (Server-Sent Events source) ---------------------------------- */

/* One event as SSE wants it. */
typedef struct jobs_event {
    int64_t seq;
    char type[8];  /* metric, state, log */
    char *data;    /* JSON text, malloc'd */
} jobs_event;

/* Copies up to max events of run id with seq > after into ev (the caller
 * frees each data), waiting up to wait_s seconds for one to appear.
 * Returns the number copied (0 after the wait); *ended is set when the run
 * is over and every event up to the last has been returned (the stream can
 * end).  Events older than the in-memory window come from the store.
 * VV_ENOTFOUND for an unknown run. */
int jobs_events(jobs *j, const char *id, int64_t after, jobs_event *ev, int max, double wait_s,
                int *ended);

/* Ends every wait in jobs_events at once and makes later calls report the
 * stream as ended (shutdown: lets event streams close). */
void jobs_wake(jobs *j);

/* The data of the run's latest metric event (malloc'd JSON text), or NULL
 * when the run has none in memory. */
char *jobs_last_metric(jobs *j, const char *id);

#endif
