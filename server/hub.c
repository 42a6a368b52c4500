/* hub.c - the live event hub (hub.h). */
#include "hub.h"

#include "vv/err.h"
#include "vv/log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The in-memory side of a live run: events [base, seq] are in ev, those up
 * to flushed are stored, those up to inflight are being stored. */
typedef struct live {
    char id[32];
    int64_t seq, flushed, inflight, base;
    hub_event *ev;
    int n, cap;
    size_t unstored_bytes, stored_bytes; /* log text */
    int readers;
    int ended, written;
    double written_at; /* when the final state was stored (the writer's clock) */
    run_state fstate;
    stop_reason fwhy;
    char *result, *error;
    /* store failures */
    int fails, failing;
    double first_fail, retry_at;
    int64_t dropped;
    char fail_detail[512];
    struct live *next;
} live;

struct hub {
    hub_limits lim;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* events published or stored, finals stored, room freed */
    pthread_cond_t wcv; /* work for the writer */
    live *lives;
    int closing;
    int64_t coalesced, store_errors;
};

static const char *const type_names[] = {"metric", "state", "log"};

const char *hub_type_name(hub_type t)
{
    return (unsigned)t < 3 ? type_names[t] : "log";
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct timespec deadline(double wait_s)
{
    double until = wall() + (wait_s > 0 ? wait_s : 0);
    struct timespec ts;
    ts.tv_sec = (time_t)until;
    ts.tv_nsec = (long)((until - floor(until)) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

hub *hub_new(const hub_limits *limits)
{
    hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    if (limits)
        h->lim = *limits;
    if (h->lim.backlog_events <= 0)
        h->lim.backlog_events = 8192;
    if (!h->lim.backlog_bytes)
        h->lim.backlog_bytes = (size_t)8 << 20;
    if (h->lim.window <= 0)
        h->lim.window = 4096;
    if (!h->lim.window_bytes)
        h->lim.window_bytes = (size_t)4 << 20;
    if (h->lim.batch <= 0)
        h->lim.batch = 2048;
    if (h->lim.retry_s <= 0)
        h->lim.retry_s = 10;
    if (h->lim.linger_s <= 0)
        h->lim.linger_s = 2;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    pthread_cond_init(&h->wcv, NULL);
    return h;
}

static void live_free(live *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->ev[i].log);
    free(l->ev);
    free(l->result);
    free(l->error);
    free(l);
}

void hub_free(hub *h)
{
    if (!h)
        return;
    while (h->lives) {
        live *l = h->lives;
        h->lives = l->next;
        live_free(l);
    }
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    pthread_cond_destroy(&h->wcv);
    free(h);
}

static live *find(hub *h, const char *id)
{
    for (live *l = h->lives; l; l = l->next)
        if (!strcmp(l->id, id))
            return l;
    return NULL;
}

int hub_open(hub *h, const char *id, int64_t last_seq)
{
    pthread_mutex_lock(&h->mu);
    int rc = 0;
    if (!find(h, id)) {
        live *l = calloc(1, sizeof *l);
        if (!l) {
            rc = vv_fail(VV_ENOMEM, "out of memory for run %s", id);
        } else {
            snprintf(l->id, sizeof l->id, "%s", id);
            l->seq = l->flushed = l->inflight = last_seq;
            l->base = last_seq + 1;
            l->next = h->lives;
            h->lives = l;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* Appends an event (its log text is then the hub's); the caller holds the
 * lock.  Out of memory drops it with VV_ENOMEM. */
static int append_locked(hub *h, live *l, hub_event *e)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 4; /* a queued run holds one event */
        hub_event *ev = realloc(l->ev, (size_t)cap * sizeof *ev);
        if (!ev) {
            free(e->log);
            return vv_fail(VV_ENOMEM, "out of memory for the events of run %s", l->id);
        }
        l->ev = ev;
        l->cap = cap;
    }
    e->seq = ++l->seq;
    l->ev[l->n++] = *e;
    if (e->log)
        l->unstored_bytes += strlen(e->log) + 1;
    pthread_cond_broadcast(&h->cv);
    if (l->seq - l->flushed >= h->lim.batch / 2)
        pthread_cond_signal(&h->wcv);
    return 0;
}

static int backlog_full(const hub *h, const live *l, size_t more)
{
    return l->seq - l->flushed >= h->lim.backlog_events ||
           (l->seq > l->flushed && l->unstored_bytes + more > h->lim.backlog_bytes);
}

int hub_publish_metric(hub *h, const char *id, const run_metric *m)
{
    pthread_mutex_lock(&h->mu);
    live *l = find(h, id);
    int rc = 0;
    if (!l) {
        rc = vv_fail(VV_ENOTFOUND, "run %s is not live", id);
    } else if (backlog_full(h, l, 0) && l->n > 0 && l->ev[l->n - 1].type == HUB_METRIC &&
               l->ev[l->n - 1].seq > l->inflight) {
        /* The writer is behind: merge into the newest unstored metric (not
         * one being stored), keeping the latest value of each key. */
        run_metric *t = &l->ev[l->n - 1].m;
        for (int k = 0; k < RM_COUNT; k++)
            if (m->have & (1u << k))
                t->values[k] = m->values[k];
        t->have |= m->have;
        t->step = m->step;
        t->time = m->time;
        if (m->phase[0])
            memcpy(t->phase, m->phase, sizeof t->phase);
        memcpy(t->layer, m->layer, sizeof t->layer);
        h->coalesced++;
        pthread_cond_broadcast(&h->cv);
    } else {
        hub_event e = {.type = HUB_METRIC, .m = *m};
        rc = append_locked(h, l, &e);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int hub_publish_log(hub *h, const char *id, char *json)
{
    if (!json)
        return vv_fail(VV_ENOMEM, "out of memory for an event");
    size_t len = strlen(json) + 1;
    pthread_mutex_lock(&h->mu);
    live *l = find(h, id);
    /* Wait for the writer while it keeps up; a store that fails stops the
     * run instead (on_store_failing), so its last events are not held up. */
    while (l && !h->closing && !l->failing && backlog_full(h, l, len)) {
        pthread_cond_signal(&h->wcv);
        struct timespec ts = deadline(0.1);
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        l = find(h, id);
    }
    int rc;
    if (!l) {
        free(json);
        rc = vv_fail(VV_ENOTFOUND, "run %s is not live", id);
    } else if (l->failing && l->seq - l->flushed >= 4 * (int64_t)h->lim.backlog_events) {
        free(json); /* the store is failing the run: keep memory bounded */
        l->dropped++;
        rc = 0;
    } else {
        hub_event e = {.type = HUB_LOG, .log = json};
        rc = append_locked(h, l, &e);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int hub_publish_state(hub *h, const char *id, run_state state)
{
    pthread_mutex_lock(&h->mu);
    live *l = find(h, id);
    int rc;
    if (!l) {
        rc = vv_fail(VV_ENOTFOUND, "run %s is not live", id);
    } else {
        hub_event e = {.type = HUB_STATE, .state = state, .why = STOP_NONE, .time = wall()};
        rc = append_locked(h, l, &e);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* A problem object's text for a run the store failed. */
static char *store_error(const live *l)
{
    cJSON *o = cJSON_CreateObject();
    char detail[900];
    snprintf(detail, sizeof detail,
             "the run's events and result could not be stored: %s; its outputs stay in "
             "runs/%s/%s",
             l->fail_detail[0] ? l->fail_detail : "input/output error", l->id,
             l->dropped ? " (events that could not be stored were dropped)" : "");
    int err =
        strstr(l->fail_detail, "full") || strstr(l->fail_detail, "space") ? VV_ENOSPACE : VV_EIO;
    cJSON_AddStringToObject(o, "type", "about:blank");
    cJSON_AddStringToObject(o, "title", vv_err_message(err));
    cJSON_AddNumberToObject(o, "status", vv_err_http_status(err));
    cJSON_AddStringToObject(o, "detail", detail);
    cJSON_AddStringToObject(o, "error_code", vv_err_code(err));
    cJSON_AddStringToObject(o, "field", "");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Turns a failing run's final state into FAILED with the store's reason;
 * its unstored events are dropped, so that the final state is small enough
 * for a store that can take little. */
static void fail_final_locked(live *l)
{
    l->fstate = RUN_FAILED;
    l->fwhy = STOP_NONE;
    free(l->result);
    l->result = NULL;
    free(l->error);
    l->error = store_error(l);
}

int hub_finish(hub *h, const char *id, run_state state, stop_reason why, char *result, char *error)
{
    pthread_mutex_lock(&h->mu);
    live *l = find(h, id);
    int rc = 0;
    if (!l || l->ended) {
        free(result);
        free(error);
        rc = l ? vv_fail(VV_ESTATE, "run %s already ended", id)
               : vv_fail(VV_ENOTFOUND, "run %s is not live", id);
    } else {
        l->ended = 1;
        l->fstate = state;
        l->fwhy = why;
        l->result = result;
        l->error = error;
        if (l->failing)
            fail_final_locked(l);
        pthread_cond_signal(&h->wcv);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int hub_wait_stored(hub *h, const char *id, double wait_s)
{
    struct timespec ts = deadline(wait_s);
    pthread_mutex_lock(&h->mu);
    live *l = find(h, id);
    if (l)
        l->readers++;
    while (l && !l->written && !h->closing)
        if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) == ETIMEDOUT)
            break;
    int done = l && l->written;
    if (l)
        l->readers--;
    pthread_mutex_unlock(&h->mu);
    return done;
}

/* ---- The writer ---------------------------------------------------------- */

static size_t log_bytes(const hub_event *e)
{
    return e->log ? strlen(e->log) + 1 : 0;
}

/* Stores one batch of l (and its final state when all else is stored);
 * called and returning with the lock held, which it drops while storing. */
static void flush_live(hub *h, live *l, const hub_store *store, double now,
                       void (**notify)(void *, const char *), char *notify_id)
{
    if (l->failing && l->ended && !l->written && l->seq > l->flushed) {
        /* Give up the events the store cannot take (they are counted as
         * stored and leave with the window), keep the final state. */
        l->dropped += l->seq - l->flushed;
        l->stored_bytes += l->unstored_bytes;
        l->unstored_bytes = 0;
        l->flushed = l->inflight = l->seq;
        fail_final_locked(l);
    }
    int64_t unstored = l->seq - l->flushed;
    int final = l->ended && !l->written;
    if (!unstored && !final)
        return;
    int64_t take = unstored;
    if (!final && take > h->lim.batch)
        take = h->lim.batch;
    hub_event *batch = malloc((size_t)(take + 1) * sizeof *batch);
    if (!batch)
        return; /* tried again on the next pass */
    size_t bytes = 0;
    for (int64_t i = 0; i < take; i++) {
        batch[i] = l->ev[l->flushed + 1 + i - l->base]; /* the log text stays put */
        bytes += log_bytes(&batch[i]);
    }
    hub_final fin = {0};
    if (final) {
        batch[take] = (hub_event){.seq = l->seq + 1,
                                  .type = HUB_STATE,
                                  .state = l->fstate,
                                  .why = l->fwhy,
                                  .time = wall()};
        fin = (hub_final){l->fstate, l->fwhy, l->result, l->error};
    }
    l->inflight = l->flushed + take;
    char id[32];
    memcpy(id, l->id, sizeof id);
    l->readers++; /* keeps l while unlocked */
    pthread_mutex_unlock(&h->mu);
    int rc = store->append(store->ctx, id, batch, (int)take + final, final ? &fin : NULL);
    char detail[512];
    snprintf(detail, sizeof detail, "%s", rc < 0 ? vv_err_detail() : "");
    pthread_mutex_lock(&h->mu);
    l->readers--;
    l->inflight = l->flushed;
    if (rc == 0) {
        l->flushed += take;
        l->unstored_bytes -= bytes;
        l->stored_bytes += bytes;
        l->fails = 0;
        l->retry_at = 0;
        if (final) {
            hub_event e = batch[take];
            append_locked(h, l, &e);
            l->flushed = l->seq;
            l->written = 1;
            l->written_at = now;
            free(l->result);
            free(l->error);
            l->result = l->error = NULL;
            VV_INFO("hub", id, "%s stored", run_state_name(l->fstate));
        }
        pthread_cond_broadcast(&h->cv);
    } else {
        h->store_errors++;
        if (l->fails++ == 0)
            l->first_fail = now;
        double backoff = 0.05 * (double)(1 << (l->fails < 6 ? l->fails - 1 : 5));
        l->retry_at = now + (backoff < 2 ? backoff : 2);
        snprintf(l->fail_detail, sizeof l->fail_detail, "%s", detail);
        VV_ERROR("hub", id, "cannot store events %lld..%lld%s (attempt %d): %s",
                 (long long)(l->flushed + 1), (long long)(l->flushed + take),
                 final ? " and the final state" : "", l->fails, detail);
        if (!l->failing && now - l->first_fail >= h->lim.retry_s) {
            l->failing = 1;
            if (l->ended && !l->written) {
                fail_final_locked(l);
            } else if (!l->ended && h->lim.on_store_failing) {
                *notify = h->lim.on_store_failing;
                memcpy(notify_id, id, 32);
            }
            pthread_cond_broadcast(&h->cv); /* log publishers stop waiting */
        }
    }
    free(batch);
}

/* Drops stored events beyond the window (an ended run keeps its window
 * until it is forgotten, linger_s after its final state is stored). */
static void trim_locked(hub *h, live *l)
{
    int64_t stored = l->flushed - l->base + 1;
    int64_t keep = h->lim.window;
    int64_t drop = stored > keep ? stored - keep : 0;
    size_t bytes = l->stored_bytes;
    for (int64_t i = 0; i < drop; i++)
        bytes -= log_bytes(&l->ev[i]);
    while (drop < stored && bytes > h->lim.window_bytes)
        bytes -= log_bytes(&l->ev[drop++]);
    if (drop <= 0)
        return;
    for (int64_t i = 0; i < drop; i++) {
        l->stored_bytes -= log_bytes(&l->ev[i]);
        free(l->ev[i].log);
    }
    memmove(l->ev, l->ev + drop, (size_t)(l->n - drop) * sizeof *l->ev);
    l->n -= (int)drop;
    l->base += drop;
}

int hub_flush(hub *h, const hub_store *store, double now)
{
    int more = 0;
    void (*notify)(void *, const char *) = NULL;
    char notify_id[32] = "";
    pthread_mutex_lock(&h->mu);
    for (live *l = h->lives; l; l = l->next) {
        if (l->retry_at > now)
            continue;
        flush_live(h, l, store, now, &notify, notify_id);
        trim_locked(h, l);
        if (l->retry_at <= now && (l->seq > l->flushed || (l->ended && !l->written)))
            more = 1;
    }
    for (live **p = &h->lives; *p;) {
        live *l = *p;
        if (l->written && l->flushed == l->seq && l->readers == 0 &&
            now - l->written_at >= h->lim.linger_s) {
            *p = l->next;
            live_free(l);
        } else {
            p = &l->next;
        }
    }
    void *ctx = h->lim.ctx;
    pthread_mutex_unlock(&h->mu);
    if (notify)
        notify(ctx, notify_id);
    return more;
}

int hub_pending(hub *h)
{
    pthread_mutex_lock(&h->mu);
    int any = 0;
    for (live *l = h->lives; l && !any; l = l->next)
        any = l->seq > l->flushed || (l->ended && !l->written);
    pthread_mutex_unlock(&h->mu);
    return any;
}

void hub_wait_work(hub *h, double wait_s)
{
    struct timespec ts = deadline(wait_s);
    pthread_mutex_lock(&h->mu);
    pthread_cond_timedwait(&h->wcv, &h->mu, &ts);
    pthread_mutex_unlock(&h->mu);
}

/* ---- Readers ---------------------------------------------------------------- */

int hub_read(hub *h, const char *id, int64_t after, hub_event *ev, int max, double wait_s,
             int *ended)
{
    *ended = 0;
    struct timespec ts = deadline(wait_s);
    pthread_mutex_lock(&h->mu);
    if (h->closing) {
        *ended = 1;
        pthread_mutex_unlock(&h->mu);
        return 0;
    }
    live *l = find(h, id);
    if (!l) {
        *ended = 1;
        pthread_mutex_unlock(&h->mu);
        return -1;
    }
    l->readers++;
    /* Wait while the events asked for are in memory and none is new.  (No
     * after + 1: after may be as large as INT64_MAX.) */
    while (!h->closing && after >= l->base - 1 && l->seq <= after && !l->written)
        if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) == ETIMEDOUT)
            break;
    l->readers--;
    if (h->closing) {
        *ended = 1;
        pthread_mutex_unlock(&h->mu);
        return 0;
    }
    if (after < l->base - 1) {
        *ended = l->written;
        pthread_mutex_unlock(&h->mu);
        return -1;
    }
    int n = 0;
    for (int64_t s = after < l->seq ? after + 1 : l->seq + 1; s <= l->seq && n < max; s++, n++) {
        ev[n] = l->ev[s - l->base];
        if (ev[n].log)
            ev[n].log = strdup(ev[n].log); /* NULL when out of memory: printed as {} */
    }
    *ended = l->written && after >= l->seq - n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

void hub_event_clear(hub_event *e)
{
    free(e->log);
    e->log = NULL;
}

int hub_last_metric(hub *h, const char *id, run_metric *out)
{
    pthread_mutex_lock(&h->mu);
    live *l = find(h, id);
    int found = 0;
    for (int i = l ? l->n - 1 : -1; i >= 0 && !found; i--)
        if (l->ev[i].type == HUB_METRIC) {
            *out = l->ev[i].m;
            found = 1;
        }
    pthread_mutex_unlock(&h->mu);
    return found;
}

void hub_close(hub *h)
{
    pthread_mutex_lock(&h->mu);
    h->closing = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_cond_broadcast(&h->wcv);
    pthread_mutex_unlock(&h->mu);
}

void hub_get_stats(hub *h, hub_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&h->mu);
    st->coalesced = h->coalesced;
    st->store_errors = h->store_errors;
    for (live *l = h->lives; l; l = l->next) {
        st->events += l->n;
        st->bytes +=
            (size_t)l->cap * sizeof(hub_event) + l->unstored_bytes + l->stored_bytes + sizeof *l;
    }
    pthread_mutex_unlock(&h->mu);
}
