/* hub.h - the live event hub: each run's events between the compute thread
 * that publishes them, the writer that stores them and the readers (SSE)
 * that follow them.
 *
 * Events are C structs (a typed metric, a state, or a log event's JSON
 * text); JSON is made at the edges (the writer's store adapter, the SSE
 * printer).  Memory is bounded per run: at most limits.backlog_events
 * unstored events (beyond that a new metric is merged into the newest
 * unstored metric: the latest value of each key is kept, and every state
 * change) and limits.backlog_bytes of unstored log text (beyond that a log
 * event waits for the writer), plus a window of limits.window stored events
 * (and window_bytes of their text) for readers; older events are read from
 * the store.
 *
 * A run's final state is not published when the run ends: hub_finish hands
 * it to the writer, which stores it in one transaction with the run's last
 * events (hub_store.append with a final); only then does the state event
 * reach readers.  A failed store is retried with backoff (50 ms doubling to
 * 2 s); after limits.retry_s seconds of failures the run is failed: a
 * running run is asked to stop (on_store_failing) and its final state
 * becomes FAILED with the store's reason, and a final state that cannot be
 * stored becomes FAILED with that reason, stored as soon as the store takes
 * it.  Nothing reports a final state that is not stored.
 *
 * Every function is thread-safe.
 */
#ifndef VV_HUB_H
#define VV_HUB_H

#include "run.h"
#include "state.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { HUB_METRIC = 0, HUB_STATE, HUB_LOG } hub_type;

/* The type's name as SSE and the store know it ("metric", "state", "log"). */
const char *hub_type_name(hub_type t);

typedef struct hub_event {
    int64_t seq; /* strictly increasing per run, from 1 */
    hub_type type;
    run_metric m;    /* HUB_METRIC */
    run_state state; /* HUB_STATE */
    stop_reason why; /* HUB_STATE */
    double time;     /* HUB_STATE: wall-clock seconds */
    char *log;       /* HUB_LOG: a JSON object's text, owned by the event */
} hub_event;

/* A run's final state, stored with its last events. */
typedef struct hub_final {
    run_state state;
    stop_reason why;
    const char *result; /* JSON text or NULL */
    const char *error;  /* JSON text (a problem object) or NULL */
} hub_final;

/* Where the writer stores events: append stores ev[0..n) of run id (n may
 * be 0) and, when final is not NULL, the run's final state, all in one
 * transaction (the final state's own event is then ev[n - 1]).  Returns 0
 * or a negative vv_err with a detail. */
typedef struct hub_store {
    int (*append)(void *ctx, const char *id, const hub_event *ev, int n, const hub_final *final);
    void *ctx;
} hub_store;

typedef struct hub_limits {
    int backlog_events;   /* unstored events per run (default 8192) */
    size_t backlog_bytes; /* unstored log text per run (default 8 MiB) */
    int window;           /* stored events kept per unfinished run (default 4096) */
    size_t window_bytes;  /* their log text at most (default 4 MiB) */
    int batch;            /* events per transaction at most (default 2048) */
    double retry_s;       /* seconds of store failures before a run fails (default 10) */
    double linger_s;      /* an ended, stored run stays this long for late readers (2) */
    /* Called (without the hub's lock, on the writer's thread) when the
     * events of an unfinished run cannot be stored for retry_s seconds. */
    void (*on_store_failing)(void *ctx, const char *id);
    void *ctx;
} hub_limits;

typedef struct hub hub;

/* limits may be NULL (the defaults); zero members take their default. */
hub *hub_new(const hub_limits *limits);
void hub_free(hub *h);

/* Makes run id live, its events numbered after last_seq (the highest stored
 * seq).  A run already live is left as it is.  VV_ENOMEM. */
int hub_open(hub *h, const char *id, int64_t last_seq);

/* ---- The publishing side (the compute thread, the queue) ----------------- */

/* Publishes a metric, merged into the newest unstored metric when the
 * backlog is full.  VV_ENOTFOUND for a run that is not live. */
int hub_publish_metric(hub *h, const char *id, const run_metric *m);

/* Publishes a log event (takes json, a JSON object's text), waiting while
 * the backlog is full and the store keeps up. */
int hub_publish_log(hub *h, const char *id, char *json);

/* Publishes a state the caller has stored in the run's row (QUEUED,
 * RUNNING); its event is stored by the writer. */
int hub_publish_state(hub *h, const char *id, run_state state);

/* Ends a live run: the final state (and result and error, JSON texts the
 * hub takes) is stored by the writer with the run's last events and then
 * published.  When the store failed the run (on_store_failing), the final
 * state becomes FAILED with the store's reason. */
int hub_finish(hub *h, const char *id, run_state state, stop_reason why, char *result, char *error);

/* Waits until run id's final state is stored (or wait_s seconds pass).
 * Returns 1 when it is, 0 otherwise (also when the run is not live). */
int hub_wait_stored(hub *h, const char *id, double wait_s);

/* ---- The writer --------------------------------------------------------- */

/* One pass: stores what each run has unstored (one batch per run), the final
 * state of an ended run with its last events, trims stored events beyond
 * the window, and forgets ended runs nobody has read for linger_s seconds
 * (now and the retry times are on one clock: the caller's).  Returns 1 when work is
 * left (call again at once), 0 when all is stored or waits for a retry. */
int hub_flush(hub *h, const hub_store *store, double now);

/* Whether any run has unstored events or an unstored final state. */
int hub_pending(hub *h);

/* Waits up to wait_s seconds for something to store. */
void hub_wait_work(hub *h, double wait_s);

/* ---- Readers -------------------------------------------------------------- */

/* Copies up to max events of run id with seq > after into ev (release each
 * with hub_event_clear), waiting up to wait_s seconds for one.  Returns the
 * number copied, or -1 when those events are not in memory (the run is not
 * live, or they left the window: they are stored, read them there).
 * *ended: the run's final state is stored and every event up to it was
 * returned (with -1: the run's final state is stored, or it is not live). */
int hub_read(hub *h, const char *id, int64_t after, hub_event *ev, int max, double wait_s,
             int *ended);
void hub_event_clear(hub_event *e);

/* The run's latest metric in memory: 1 and *out, or 0. */
int hub_last_metric(hub *h, const char *id, run_metric *out);

/* Ends every wait at once, and makes later reads report their streams as
 * ended (shutdown). */
void hub_close(hub *h);

typedef struct hub_stats {
    int64_t coalesced; /* metrics merged into an unstored one */
    int64_t store_errors;
    size_t bytes;   /* memory held by events now */
    int64_t events; /* events held now */
} hub_stats;
void hub_get_stats(hub *h, hub_stats *st);

#endif
