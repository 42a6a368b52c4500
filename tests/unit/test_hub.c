/* test_hub.c - the live event hub without HTTP or SQLite: publish, flush
 * through a store that records (and can fail), the window and its trim,
 * coalescing under a full backlog, log events waiting for the writer,
 * waiting readers, a slow subscriber, and the final state stored before
 * it is announced. */
#include "hub.h"
#include "tap.h"
#include "vv/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* ---- A store that records what it is given ------------------------------------ */

enum { MAX_STORED = 20000 };

typedef struct rec {
    pthread_mutex_t mu;
    int64_t seq[MAX_STORED];
    hub_type type[MAX_STORED];
    int64_t step[MAX_STORED];
    char *log[MAX_STORED];
    int n;
    int calls, finals;
    int final_n_events; /* events that came with the final state */
    run_state final_state;
    char final_error[1024];
    int fail;         /* fail every call while set */
    int out_of_order; /* a seq not above the last stored one */
} rec;

static int rec_append(void *ctx, const char *id, const hub_event *ev, int n, const hub_final *f)
{
    (void)id;
    rec *r = ctx;
    pthread_mutex_lock(&r->mu);
    r->calls++;
    if (r->fail) {
        pthread_mutex_unlock(&r->mu);
        return vv_fail(VV_ENOSPACE, "database or disk is full");
    }
    for (int i = 0; i < n && r->n < MAX_STORED; i++) {
        if (r->n > 0 && ev[i].seq <= r->seq[r->n - 1])
            r->out_of_order++;
        r->seq[r->n] = ev[i].seq;
        r->type[r->n] = ev[i].type;
        r->step[r->n] = ev[i].m.step;
        r->log[r->n] = ev[i].log ? strdup(ev[i].log) : NULL;
        r->n++;
    }
    if (f) {
        r->finals++;
        r->final_n_events = n;
        r->final_state = f->state;
        snprintf(r->final_error, sizeof r->final_error, "%s", f->error ? f->error : "");
    }
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static void rec_init(rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
}

static void rec_free(rec *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->log[i]);
    pthread_mutex_destroy(&r->mu);
}

static run_metric metric(int64_t step, double obj)
{
    run_metric m;
    memset(&m, 0, sizeof m);
    m.step = step;
    m.time = 0.001 * (double)step;
    run_metric_set(&m, RM_objective, obj);
    run_metric_set(&m, RM_rel_gap, 1.0 / (double)(step + 1));
    return m;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void flush_all(hub *h, const hub_store *st)
{
    for (int i = 0; i < 100000 && hub_flush(h, st, now_s()); i++)
        ;
}

/* ---- Publish, flush, read, trim ---------------------------------------------- */

static void test_publish_flush(void)
{
    rec r;
    rec_init(&r);
    hub_store st = {rec_append, &r};
    hub_limits lim = {.window = 8};
    hub *h = hub_new(&lim);
    CHECK(hub_open(h, "r-1", 0) == 0, "open a run");
    CHECK(hub_publish_metric(h, "nope", &(run_metric){0}) == VV_ENOTFOUND,
          "publishing to a run that is not live is VV_ENOTFOUND");
    hub_publish_state(h, "r-1", RUN_RUNNING);
    for (int i = 0; i < 100; i++) {
        run_metric m = metric(i, 100.0 - i);
        hub_publish_metric(h, "r-1", &m);
    }
    hub_publish_log(h, "r-1", strdup("{\"event\":\"start\"}"));
    CHECK(hub_pending(h), "unstored events are pending");
    hub_event ev[64];
    int ended = 1;
    int n = hub_read(h, "r-1", 0, ev, 64, 0, &ended);
    CHECKF(n == 64 && ev[0].seq == 1 && ev[0].type == HUB_STATE && ev[1].type == HUB_METRIC &&
               ev[63].seq == 64 && !ended,
           "a reader gets events before they are stored (n %d)", n);
    for (int i = 0; i < n; i++)
        hub_event_clear(&ev[i]);
    flush_all(h, &st);
    CHECKF(r.n == 102 && !r.out_of_order && r.seq[0] == 1 && r.seq[101] == 102 &&
               r.type[101] == HUB_LOG && r.log[101] && !strcmp(r.log[101], "{\"event\":\"start\"}"),
           "the writer stores every event once, in order (%d stored)", r.n);
    CHECK(!hub_pending(h), "nothing pending after the flush");
    /* The window keeps the last 8 stored events: older ones come from the store. */
    n = hub_read(h, "r-1", 0, ev, 64, 0, &ended);
    CHECKF(n == -1 && !ended, "events older than the window are not in memory (%d)", n);
    n = hub_read(h, "r-1", 96, ev, 64, 0, &ended);
    CHECKF(n == 6 && ev[0].seq == 97 && ev[5].seq == 102 && ev[5].type == HUB_LOG && ev[5].log &&
               !strcmp(ev[5].log, "{\"event\":\"start\"}"),
           "the window serves the newest stored events (%d)", n);
    for (int i = 0; i < n && n > 0; i++)
        hub_event_clear(&ev[i]);
    run_metric last;
    CHECK(hub_last_metric(h, "r-1", &last) && last.step == 99 && last.values[RM_objective] == 1.0,
          "the latest metric is the last one published");
    hub_free(h);
    rec_free(&r);
}

/* ---- The final state: stored with the last events, then announced ------------------ */

static void test_final_durable(void)
{
    rec r;
    rec_init(&r);
    hub_store st = {rec_append, &r};
    hub *h = hub_new(NULL);
    hub_open(h, "r-2", 5); /* five events stored before a restart */
    run_metric m = metric(1, 2.0);
    hub_publish_metric(h, "r-2", &m);
    hub_publish_metric(h, "r-2", &m);
    r.fail = 1;
    hub_finish(h, "r-2", RUN_FINISHED, STOP_CONVERGED, strdup("{\"objective\":2}"), NULL);
    hub_event ev[8];
    int ended = 1;
    int n = hub_read(h, "r-2", 5, ev, 8, 0, &ended);
    CHECKF(n == 2 && ev[0].seq == 6 && ev[1].seq == 7 && !ended,
           "before it is stored, the final state is not readable (%d events)", n);
    hub_flush(h, &st, now_s());
    n = hub_read(h, "r-2", 7, ev, 8, 0.01, &ended);
    CHECKF(n == 0 && !ended && r.calls == 1 && r.n == 0,
           "a failed store leaves the final state unannounced (%d)", n);
    CHECK(hub_wait_stored(h, "r-2", 0.01) == 0, "hub_wait_stored says not stored");
    r.fail = 0;
    /* The retry waits for its backoff: a flush at the same time does nothing. */
    double t = now_s();
    hub_flush(h, &st, t);
    CHECK(r.calls == 1, "a retry waits for its backoff");
    hub_flush(h, &st, t + 5);
    CHECKF(r.finals == 1 && r.final_n_events == 3 && r.final_state == RUN_FINISHED && r.n == 3 &&
               r.seq[0] == 6 && r.seq[2] == 8 && r.type[2] == HUB_STATE,
           "the final state is stored in the same call as the last events (%d events)",
           r.final_n_events);
    n = hub_read(h, "r-2", 7, ev, 8, 0, &ended);
    CHECKF(n == 1 && ev[0].type == HUB_STATE && ev[0].state == RUN_FINISHED &&
               ev[0].why == STOP_CONVERGED && ended,
           "then it is announced, and the stream ends (%d)", n);
    CHECK(hub_wait_stored(h, "r-2", 0) == 1, "hub_wait_stored says stored");
    hub_flush(h, &st, now_s() + 10); /* past linger_s */
    n = hub_read(h, "r-2", 8, ev, 8, 0, &ended);
    CHECKF(n == -1 && ended, "an ended run nobody reads leaves memory (%d)", n);
    CHECK(hub_finish(h, "r-2", RUN_FINISHED, STOP_NONE, NULL, NULL) == VV_ENOTFOUND,
          "a run ends once");
    hub_free(h);
    rec_free(&r);
}

/* ---- A store that keeps failing fails the run, stored once it can ------------------ */

static atomic_int failing_calls;
static char failing_id[32];

static void on_failing(void *ctx, const char *id)
{
    (void)ctx;
    atomic_fetch_add(&failing_calls, 1);
    snprintf(failing_id, sizeof failing_id, "%s", id);
}

static void test_store_failing(void)
{
    rec r;
    rec_init(&r);
    hub_store st = {rec_append, &r};
    hub_limits lim = {.retry_s = 1, .linger_s = 100, .on_store_failing = on_failing};
    hub *h = hub_new(&lim);
    hub_open(h, "r-3", 0);
    hub_open(h, "r-4", 0);
    run_metric m = metric(1, 1.0);
    hub_publish_metric(h, "r-3", &m);
    hub_publish_metric(h, "r-4", &m);
    hub_finish(h, "r-4", RUN_FINISHED, STOP_CONVERGED, strdup("{\"objective\":1}"), NULL);
    r.fail = 1;
    double t = 1000;
    for (int i = 0; i < 20; i++, t += 0.25)
        hub_flush(h, &st, t);
    CHECKF(atomic_load(&failing_calls) == 1 && !strcmp(failing_id, "r-3"),
           "a running run whose events cannot be stored for retry_s is reported once (%d)",
           atomic_load(&failing_calls));
    hub_event ev[4];
    int ended = 1;
    int n = hub_read(h, "r-4", 1, ev, 4, 0, &ended);
    CHECKF(n == 0 && !ended, "an unstored final state is still not announced (%d)", n);
    r.fail = 0;
    /* The running run ends (stopped by its owner); its final state is FAILED. */
    hub_finish(h, "r-3", RUN_STOPPED, STOP_USER, NULL, NULL);
    for (int i = 0; i < 10; i++, t += 3)
        hub_flush(h, &st, t);
    CHECKF(r.finals == 2 && r.final_state == RUN_FAILED && strstr(r.final_error, "disk is full") &&
               strstr(r.final_error, "INSUFFICIENT_STORAGE"),
           "once the store takes it, the final state is FAILED with the reason: %.200s",
           r.final_error);
    n = hub_read(h, "r-4", 1, ev, 4, 0, &ended);
    CHECKF(n == 1 && ev[0].state == RUN_FAILED && ended,
           "a final state that could not be stored becomes FAILED (%d)", n);
    hub_free(h);
    rec_free(&r);
}

/* ---- Backpressure: metrics coalesce, logs wait, memory stays bounded --------------- */

static void test_coalesce(void)
{
    rec r;
    rec_init(&r);
    hub_store st = {rec_append, &r};
    hub_limits lim = {.backlog_events = 16, .window = 4};
    hub *h = hub_new(&lim);
    hub_open(h, "r-5", 0);
    for (int i = 0; i < 1000; i++) {
        run_metric m = metric(i, (double)i);
        if (i == 500)
            m.have &= ~(1u << RM_rel_gap); /* a key missing from one event */
        hub_publish_metric(h, "r-5", &m);
    }
    hub_stats hs;
    hub_get_stats(h, &hs);
    CHECKF(hs.events == 16 && hs.coalesced == 1000 - 16,
           "a full backlog merges metrics: %lld events held, %lld coalesced", (long long)hs.events,
           (long long)hs.coalesced);
    run_metric last;
    hub_last_metric(h, "r-5", &last);
    CHECKF(last.step == 999 && last.values[RM_objective] == 999.0 &&
               last.values[RM_rel_gap] == 1.0 / 1000 && (last.have & (1u << RM_rel_gap)),
           "the merged metric keeps the latest value of each key (step %lld)",
           (long long)last.step);
    flush_all(h, &st);
    CHECKF(r.n == 16 && r.step[15] == 999 && !r.out_of_order,
           "the store gets the merged events, the last at the last step (%d)", r.n);
    hub_free(h);
    rec_free(&r);
}

typedef struct pub_ctx {
    hub *h;
    int n;
    int64_t max_events; /* the most events the hub held, seen after each publish */
} pub_ctx;

static void *publisher(void *arg)
{
    pub_ctx *c = arg;
    for (int i = 0; i < c->n; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "{\"event\":\"point\",\"i\":%d}", i);
        hub_publish_log(c->h, "r-6", strdup(buf));
        hub_stats hs;
        hub_get_stats(c->h, &hs);
        if (hs.events > c->max_events)
            c->max_events = hs.events;
    }
    hub_finish(c->h, "r-6", RUN_FINISHED, STOP_CONVERGED, NULL, NULL);
    return NULL;
}

static void test_logs_wait(void)
{
    rec r;
    rec_init(&r);
    hub_store st = {rec_append, &r};
    hub_limits lim = {.backlog_events = 32, .window = 8, .batch = 16};
    hub *h = hub_new(&lim);
    hub_open(h, "r-6", 0);
    pub_ctx c = {h, 5000, 0};
    pthread_t th;
    pthread_create(&th, NULL, publisher, &c);
    /* The writer: flush until the final state is stored. */
    for (int i = 0; i < 1000000 && r.finals == 0; i++) {
        hub_flush(h, &st, now_s());
        hub_wait_work(h, 0.001);
    }
    pthread_join(th, NULL);
    flush_all(h, &st);
    int in_order = r.n == 5001;
    for (int i = 0; i < 5000 && in_order; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"event\":\"point\",\"i\":%d}", i);
        in_order = r.log[i] && !strcmp(r.log[i], want) && r.seq[i] == i + 1;
    }
    CHECKF(in_order && r.type[5000] == HUB_STATE, "every log event is stored, in order (%d)", r.n);
    CHECKF(c.max_events <= 32 + 8 + 1,
           "log publishers wait for the writer: at most %lld events held (bound 41)",
           (long long)c.max_events);
    hub_free(h);
    rec_free(&r);
}

/* ---- Readers: a waiting reader, a slow subscriber, huge offsets ------------------- */

typedef struct reader_ctx {
    hub *h;
    int n, ended;
    int64_t seq;
    double waited;
} reader_ctx;

static void *reader(void *arg)
{
    reader_ctx *c = arg;
    hub_event ev[4];
    double t = now_s();
    c->n = hub_read(c->h, "r-7", 0, ev, 4, 10, &c->ended);
    c->waited = now_s() - t;
    c->seq = c->n > 0 ? ev[0].seq : -1;
    for (int i = 0; i < c->n; i++)
        hub_event_clear(&ev[i]);
    return NULL;
}

static void test_readers(void)
{
    rec r;
    rec_init(&r);
    hub_store st = {rec_append, &r};
    hub_limits lim = {.window = 16};
    hub *h = hub_new(&lim);
    hub_open(h, "r-7", 0);
    reader_ctx c = {.h = h};
    pthread_t th;
    pthread_create(&th, NULL, reader, &c);
    run_metric m = metric(0, 1.0);
    hub_publish_metric(h, "r-7", &m);
    pthread_join(th, NULL);
    CHECKF(c.n == 1 && c.seq == 1 && c.waited < 5,
           "a waiting reader wakes with the event (%d after %.3f s)", c.n, c.waited);
    /* A slow subscriber: it reads nothing while 10000 events pass; they are
     * stored and leave memory, and the publisher never waits for it. */
    double t = now_s();
    for (int i = 1; i <= 10000; i++) {
        m = metric(i, 1.0);
        hub_publish_metric(h, "r-7", &m);
        if (i % 1000 == 0)
            hub_flush(h, &st, now_s());
    }
    flush_all(h, &st);
    double pub = now_s() - t;
    hub_event ev[4];
    int ended;
    int n = hub_read(h, "r-7", 1, ev, 4, 0, &ended);
    CHECKF(n == -1 && r.n == 10001 && r.out_of_order == 0,
           "the slow subscriber's next events come from the store (%d; %d stored)", n, r.n);
    CHECKF(pub < 5, "publishing 10000 metrics without readers took %.3f s", pub);
    /* Offsets at the end of int64: no overflow, no spinning. */
    n = hub_read(h, "r-7", INT64_MAX, ev, 4, 0.05, &ended);
    CHECKF(n == 0 && !ended, "after = INT64_MAX on a live run waits and returns nothing (%d)", n);
    hub_finish(h, "r-7", RUN_STOPPED, STOP_USER, NULL, NULL);
    hub_flush(h, &st, now_s());
    reader_ctx c2 = {.h = h};
    (void)c2;
    n = hub_read(h, "r-7", INT64_MAX, ev, 4, 5, &ended);
    CHECKF(n == 0 && ended, "after = INT64_MAX on an ended run: the stream ends (%d)", n);
    n = hub_read(h, "unknown", 0, ev, 4, 0, &ended);
    CHECK(n == -1 && ended, "an unknown run is not in memory");
    hub_close(h);
    t = now_s();
    n = hub_read(h, "r-7", 0, ev, 4, 10, &ended);
    CHECKF(n == 0 && ended && now_s() - t < 1, "after hub_close, reads end at once (%d)", n);
    hub_free(h);
    rec_free(&r);
}

int main(void)
{
    test_publish_flush();
    test_final_durable();
    test_store_failing();
    test_coalesce();
    test_logs_wait();
    test_readers();
    return tap_done();
}
