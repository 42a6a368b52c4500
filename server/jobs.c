/* jobs.c - queue, compute thread, event hub and the batched SQLite writer. */
#include "jobs.h"

#include "device.h"
#include "run.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/log.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

enum { MEM_EVENTS = 4096, MAX_KEYS = 18 };

typedef struct event {
    int64_t seq;
    char type[8];
    char *data;
    /* metric events: their points, for the metrics table */
    int nkeys;
    int64_t step;
    double time;
    const char *keys[MAX_KEYS];
    double values[MAX_KEYS];
} event;

/* The in-memory side of a run that has not ended yet (or ended recently). */
typedef struct live {
    char id[32];
    int64_t seq;     /* last event published */
    int64_t flushed; /* last event stored */
    int64_t base;    /* seq of ev[0] */
    event *ev;
    int n, cap;
    int readers;       /* event readers waiting on it (it stays while > 0) */
    int final;         /* the final state event is published */
    int state_written; /* the final state is in the store */
    char state[16], stop_reason[16];
    char *result, *error;
    struct live *next;
} live;

typedef struct qitem {
    char id[32];
    job_spec spec;
    struct qitem *next;
} qitem;

struct jobs {
    jobs_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* events published, queue changed, states written */
    pthread_cond_t wcv; /* wakes the writer */
    qitem *qhead, *qtail;
    int queued, reserved; /* runs in the queue; ids handed out but not yet queued */
    live *lives;
    char running[32];
    volatile int stop_flag;
    int stopping, writer_done, shutdown_run, closing;
    int device_lost; /* a sticky device error: no run starts any more */
    int64_t next_run;
    int64_t iterations, last_step;
    double rate, rate_t, rate_it;
    pthread_t compute, writer;
    run_cache *cache;
};

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static live *find_live(jobs *j, const char *id)
{
    for (live *l = j->lives; l; l = l->next)
        if (!strcmp(l->id, id))
            return l;
    return NULL;
}

static live *add_live(jobs *j, const char *id, int64_t last_seq)
{
    live *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    snprintf(l->id, sizeof l->id, "%s", id);
    l->seq = l->flushed = last_seq;
    l->base = last_seq + 1;
    l->next = j->lives;
    j->lives = l;
    return l;
}

/* Appends an event (takes ownership of data); the caller holds the lock. */
static int publish_locked(jobs *j, live *l, const char *type, char *data, const event *metric)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        event *ev = realloc(l->ev, (size_t)cap * sizeof *ev);
        if (!ev) {
            free(data);
            return vv_fail(VV_ENOMEM, "out of memory for events");
        }
        l->ev = ev;
        l->cap = cap;
    }
    event *e = &l->ev[l->n++];
    memset(e, 0, sizeof *e);
    if (metric)
        *e = *metric;
    e->seq = ++l->seq;
    snprintf(e->type, sizeof e->type, "%s", type);
    e->data = data;
    pthread_cond_broadcast(&j->cv);
    return 0;
}

static char *state_json(const char *state, const char *stop_reason)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", state);
    if (stop_reason)
        cJSON_AddStringToObject(o, "stop_reason", stop_reason);
    cJSON_AddNumberToObject(o, "time", wall());
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---- The compute thread's event sink -------------------------------------- */

typedef struct sink_ctx {
    jobs *j;
    live *l;
} sink_ctx;

static const char *metric_keys[] = {
    "objective",  "gap",       "rel_gap",    "active",    "mse",    "group_norm",
    "lambda",     "vv_norm",   "train_acc",  "test_acc",  "train_loss", "test_loss",
    "params",     "macs",      "latency_ms", "loss",      "lr",     "epoch"};

static void on_event(void *ctx, const cJSON *ev)
{
    sink_ctx *c = ctx;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(ev, "event");
    char *data = cJSON_PrintUnformatted(ev);
    if (!data)
        return;
    event m = {0};
    const char *type = "log";
    if (cJSON_IsString(kind) && !strcmp(kind->valuestring, "metric")) {
        type = "metric";
        m.step = (int64_t)cJSON_GetObjectItemCaseSensitive(ev, "step")->valuedouble;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "time");
        m.time = cJSON_IsNumber(t) ? t->valuedouble : 0;
        for (unsigned i = 0; i < sizeof metric_keys / sizeof *metric_keys; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, metric_keys[i]);
            if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
                m.keys[m.nkeys] = metric_keys[i];
                m.values[m.nkeys++] = v->valuedouble;
            }
        }
    }
    pthread_mutex_lock(&c->j->mu);
    if (!strcmp(type, "metric")) {
        if (m.step > c->j->last_step)
            c->j->iterations += m.step - c->j->last_step;
        c->j->last_step = m.step;
    }
    publish_locked(c->j, c->l, type, data, !strcmp(type, "metric") ? &m : NULL);
    pthread_mutex_unlock(&c->j->mu);
}

/* Records the files a run wrote (its artifacts), recursing one level. */
static void add_artifacts(jobs *j, const char *id, const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp."))
            continue;
        char path[4096], name[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(name, sizeof name, "%s%s", prefix, de->d_name);
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && !prefix[0]) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s/", de->d_name);
            add_artifacts(j, id, path, sub);
        } else if (S_ISREG(st.st_mode)) {
            store_artifact_add(j->cfg.db, id, name, path, (int64_t)st.st_size);
        }
    }
    closedir(d);
}

static void finish_run(jobs *j, live *l, const char *state, const char *stop_reason,
                       char *result, char *error)
{
    pthread_mutex_lock(&j->mu);
    snprintf(l->state, sizeof l->state, "%s", state);
    snprintf(l->stop_reason, sizeof l->stop_reason, "%s", stop_reason ? stop_reason : "");
    l->result = result;
    l->error = error;
    publish_locked(j, l, "state", state_json(state, stop_reason), NULL);
    l->final = 1;
    pthread_cond_signal(&j->wcv);
    pthread_mutex_unlock(&j->mu);
}

/* Runs one queued run to its end on the compute thread. */
static void run_one(jobs *j, qitem *q, live *l)
{
    VV_INFO("jobs", q->id, "running");
    char out[4096];
    snprintf(out, sizeof out, "%s/runs/%s", j->cfg.data_root, q->id);
    sink_ctx sc = {j, l};
    run_sink sink = {on_event, &sc};
    cJSON *result = NULL;
    char field[256];
    int rc = run_job(&q->spec, out, &sink, &j->stop_flag, j->cache, &result, field, sizeof field);
    add_artifacts(j, q->id, out, "");
    if (rc < 0) {
        /* Stopped during the statistics pass: there is no V to keep. */
        int stopped = rc == VV_ESTATE && j->stop_flag;
        cJSON *err = run_error_object(rc, field);
        cJSON *e = cJSON_DetachItemFromObject(err, "error");
        char *etext = stopped ? NULL : cJSON_PrintUnformatted(e);
        cJSON_Delete(e);
        cJSON_Delete(err);
        if (!stopped)
            VV_WARN("jobs", q->id, "failed: %s", vv_err_detail());
        finish_run(j, l, stopped ? "STOPPED" : "FAILED",
                   stopped ? (j->shutdown_run ? "shutdown" : "user") : NULL, NULL, etext);
        return;
    }
    char st[16], why[16];
    snprintf(st, sizeof st, "%s", cJSON_GetObjectItem(result, "state")->valuestring);
    snprintf(why, sizeof why, "%s", cJSON_GetObjectItem(result, "stop_reason")->valuestring);
    if (j->shutdown_run && !strcmp(st, "STOPPED"))
        snprintf(why, sizeof why, "shutdown");
    char *rtext = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
    VV_INFO("jobs", q->id, "%s (%s)", st, why);
    finish_run(j, l, st, why, rtext, NULL);
}

static void *compute_main(void *arg)
{
    jobs *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        while ((!j->qhead || j->device_lost) && !j->stopping)
            pthread_cond_wait(&j->cv, &j->mu);
        if (j->stopping) {
            pthread_mutex_unlock(&j->mu);
            return NULL;
        }
        qitem *q = j->qhead;
        j->qhead = q->next;
        if (!j->qhead)
            j->qtail = NULL;
        j->queued--;
        snprintf(j->running, sizeof j->running, "%s", q->id);
        j->stop_flag = 0;
        pthread_mutex_unlock(&j->mu);
        /* Stored before it is announced: a client that reads the run when
         * the RUNNING event arrives finds it RUNNING. */
        store_run_set_state(j->cfg.db, q->id, "RUNNING", NULL, NULL, NULL, wall());
        pthread_mutex_lock(&j->mu);
        live *l = find_live(j, q->id);
        if (!l)
            l = add_live(j, q->id, 0);
        if (l)
            publish_locked(j, l, "state", state_json("RUNNING", NULL), NULL);
        pthread_mutex_unlock(&j->mu);
        if (l)
            run_one(j, q, l);
        int lost = devices_lost();
        pthread_mutex_lock(&j->mu);
        j->running[0] = 0;
        int first = lost && !j->device_lost;
        j->device_lost |= lost;
        pthread_mutex_unlock(&j->mu);
        if (first) {
            VV_ERROR("jobs", q->id, "the device %s was lost (a sticky error); no run starts "
                                    "any more, and vvd exits to be restarted",
                     devices_default());
            if (j->cfg.on_device_lost)
                j->cfg.on_device_lost();
        }
        spec_free_job(&q->spec);
        free(q);
    }
}

/* ---- The writer ------------------------------------------------------------ */

/* The static name of an event type (metric, state or log). */
static const char *static_type(const char *t)
{
    return !strcmp(t, "metric") ? "metric" : !strcmp(t, "state") ? "state" : "log";
}

static void flush_once(jobs *j)
{
    pthread_mutex_lock(&j->mu);
    for (live *l = j->lives; l; l = l->next) {
        while (l->flushed < l->seq) {
            /* Events (flushed, seq] stay put while we write: only this thread
             * trims them. */
            int64_t from = l->flushed + 1, to = l->seq;
            if (to - from >= 2048)
                to = from + 2047;
            int nev = (int)(to - from + 1), nm = 0;
            event_row *rows = malloc((size_t)nev * sizeof *rows);
            metric_row *ms = malloc((size_t)nev * MAX_KEYS * sizeof *ms);
            if (!rows || !ms) {
                free(rows);
                free(ms);
                break;
            }
            for (int i = 0; i < nev; i++) {
                event *e = &l->ev[from - l->base + i];
                /* The rows outlive the lock: nothing may point into l->ev, which the
                 * compute thread may move (realloc) meanwhile; data has its own block. */
                rows[i] = (event_row){e->seq, static_type(e->type), e->data};
                for (int k = 0; k < e->nkeys; k++)
                    ms[nm++] = (metric_row){e->step, e->keys[k], e->values[k], e->time};
            }
            char id[32];
            snprintf(id, sizeof id, "%s", l->id);
            pthread_mutex_unlock(&j->mu);
            int rc = store_append(j->cfg.db, id, rows, nev, ms, nm);
            if (rc < 0)
                VV_ERROR("store", id, "cannot store events %lld..%lld: %s", (long long)from,
                         (long long)to, vv_err_detail());
            free(rows);
            free(ms);
            pthread_mutex_lock(&j->mu);
            l->flushed = to; /* on a store error the events stay in memory for SSE */
        }
        if (l->final && !l->state_written && l->flushed == l->seq) {
            char id[32], state[16], why[16];
            snprintf(id, sizeof id, "%s", l->id);
            snprintf(state, sizeof state, "%s", l->state);
            snprintf(why, sizeof why, "%s", l->stop_reason);
            char *result = l->result, *error = l->error;
            l->result = l->error = NULL;
            pthread_mutex_unlock(&j->mu);
            store_run_set_state(j->cfg.db, id, state, why[0] ? why : NULL, result, error, wall());
            free(result);
            free(error);
            pthread_mutex_lock(&j->mu);
            l->state_written = 1;
            pthread_cond_broadcast(&j->cv);
        }
        /* Keep at most MEM_EVENTS stored events in memory; none once written
         * (readers then get them from the store). */
        int64_t keep = l->state_written ? 0 : MEM_EVENTS;
        int64_t drop = l->flushed - l->base + 1 - keep;
        if (drop > 0) {
            for (int64_t i = 0; i < drop; i++)
                free(l->ev[i].data);
            memmove(l->ev, l->ev + drop, (size_t)(l->n - drop) * sizeof *l->ev);
            l->n -= (int)drop;
            l->base += drop;
        }
    }
    /* Forget runs that ended and are all stored, unless a reader waits on one. */
    for (live **p = &j->lives; *p;) {
        live *l = *p;
        if (l->final && l->state_written && l->flushed == l->seq && l->readers == 0) {
            *p = l->next;
            for (int i = 0; i < l->n; i++)
                free(l->ev[i].data);
            free(l->ev);
            free(l->result);
            free(l->error);
            free(l);
        } else {
            p = &l->next;
        }
    }
    double now = vv_now();
    if (now - j->rate_t >= 1.0) {
        if (j->rate_t > 0)
            j->rate = (double)(j->iterations - j->rate_it) / (now - j->rate_t);
        j->rate_t = now;
        j->rate_it = j->iterations;
        if (j->running[0]) {
            char id[32];
            snprintf(id, sizeof id, "%s", j->running);
            pthread_mutex_unlock(&j->mu);
            store_run_heartbeat(j->cfg.db, id, wall());
            pthread_mutex_lock(&j->mu);
        }
    }
    pthread_mutex_unlock(&j->mu);
}

static void *writer_main(void *arg)
{
    jobs *j = arg;
    setpriority(PRIO_PROCESS, (id_t)gettid(), 5); /* the solver comes first */
    for (;;) {
        pthread_mutex_lock(&j->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (!j->writer_done)
            pthread_cond_timedwait(&j->wcv, &j->mu, &ts);
        int done = j->writer_done;
        pthread_mutex_unlock(&j->mu);
        flush_once(j);
        if (done)
            return NULL;
    }
}

/* ---- Public functions --------------------------------------------------------- */

int jobs_start(const jobs_config *cfg, jobs **out)
{
    jobs *j = calloc(1, sizeof *j);
    if (!j)
        return vv_fail(VV_ENOMEM, "out of memory");
    j->cfg = *cfg;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    pthread_cond_init(&j->wcv, NULL);
    j->cache = run_cache_new((size_t)4 << 30);
    int64_t max_run = 0, max_sweep = 0;
    store_max_ids(cfg->db, &max_run, &max_sweep);
    j->next_run = max_run + 1;
    int crashed = 0, nq = 0;
    char **queued = NULL;
    int rc = store_recover(cfg->db, wall(), &crashed, &queued, &nq);
    if (rc < 0) {
        free(j);
        return rc;
    }
    if (crashed)
        VV_WARN("jobs", NULL, "%d run(s) were RUNNING when vvd stopped: now CRASHED", crashed);
    for (int i = 0; i < nq; i++) {
        run_row r = {0};
        char field[256];
        if (store_run_get(cfg->db, queued[i], &r) == 0) {
            qitem *q = calloc(1, sizeof *q);
            if (q && spec_parse_job_text(r.spec, strlen(r.spec), &q->spec, field, sizeof field) == 0) {
                snprintf(q->id, sizeof q->id, "%s", r.id);
                if (j->qtail)
                    j->qtail->next = q;
                else
                    j->qhead = q;
                j->qtail = q;
                j->queued++;
                add_live(j, r.id, r.last_seq);
            } else {
                free(q);
                char *e = strdup("{\"title\":\"invalid spec after restart\",\"status\":400,"
                                 "\"error_code\":\"INVALID_PARAMETER_VALUE\"}");
                store_run_set_state(cfg->db, queued[i], "FAILED", NULL, NULL, e, wall());
                free(e);
            }
        }
        run_row_free(&r);
        free(queued[i]);
    }
    free(queued);
    if (nq)
        VV_INFO("jobs", NULL, "%d queued run(s) queued again", j->queued);
    if (pthread_create(&j->writer, NULL, writer_main, j) ||
        pthread_create(&j->compute, NULL, compute_main, j)) {
        free(j);
        return vv_fail(VV_EINTERNAL, "cannot start threads");
    }
    *out = j;
    return 0;
}

void jobs_stop(jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stopping = 1;
    if (j->running[0]) {
        j->shutdown_run = 1;
        j->stop_flag = 1;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->compute, NULL);
    pthread_mutex_lock(&j->mu);
    j->writer_done = 1;
    pthread_cond_signal(&j->wcv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->writer, NULL);
    while (j->qhead) {
        qitem *q = j->qhead;
        j->qhead = q->next;
        spec_free_job(&q->spec);
        free(q);
    }
    while (j->lives) {
        live *l = j->lives;
        j->lives = l->next;
        for (int i = 0; i < l->n; i++)
            free(l->ev[i].data);
        free(l->ev);
        free(l->result);
        free(l->error);
        free(l);
    }
    run_cache_free(j->cache);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    pthread_cond_destroy(&j->wcv);
    free(j);
}

int jobs_reserve(jobs *j, int n)
{
    pthread_mutex_lock(&j->mu);
    int room = j->cfg.max_queue - j->queued - j->reserved;
    if (j->stopping || n > room) {
        int stopping = j->stopping;
        pthread_mutex_unlock(&j->mu);
        return stopping ? vv_fail(VV_EDEVICE, "vvd is shutting down")
                        : vv_fail(VV_EBUSY, "the queue has room for %d runs, %d are needed; "
                                            "try again later or raise --max-queue",
                                  room > 0 ? room : 0, n);
    }
    j->reserved += n;
    pthread_mutex_unlock(&j->mu);
    return 0;
}

void jobs_unreserve(jobs *j, int n)
{
    pthread_mutex_lock(&j->mu);
    j->reserved -= n;
    pthread_mutex_unlock(&j->mu);
}

int jobs_submit(jobs *j, job_spec *spec, const char *spec_json, const char *sweep_id,
                const char *config_hash, char *id)
{
    int rc = jobs_reserve(j, 1);
    if (rc == VV_EBUSY) {
        int q = j->cfg.max_queue;
        return vv_fail(VV_EBUSY, "the queue is full (%d runs); try again later", q);
    }
    return rc < 0 ? rc : jobs_submit_reserved(j, spec, spec_json, sweep_id, config_hash, id);
}

int jobs_submit_reserved(jobs *j, job_spec *spec, const char *spec_json, const char *sweep_id,
                         const char *config_hash, char *id)
{
    /* The queue place is reserved; take an id under the lock and write the
     * row outside it: the compute thread's metric callbacks take this lock. */
    pthread_mutex_lock(&j->mu);
    snprintf(id, 32, "r-%06lld", (long long)j->next_run++);
    pthread_mutex_unlock(&j->mu);
    int rc = store_run_insert(j->cfg.db, id, spec_kind_name(spec->kind), spec_json, sweep_id,
                              config_hash, wall());
    qitem *q = rc == 0 ? calloc(1, sizeof *q) : NULL;
    if (rc == 0 && !q) {
        store_run_set_state(j->cfg.db, id, "FAILED", NULL, NULL, NULL, wall());
        rc = vv_fail(VV_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&j->mu);
    j->reserved--;
    live *l = rc == 0 ? add_live(j, id, 0) : NULL;
    if (rc == 0 && !l) {
        free(q);
        q = NULL;
        rc = vv_fail(VV_ENOMEM, "out of memory");
    }
    if (rc < 0 || !q) {
        pthread_mutex_unlock(&j->mu);
        return rc;
    }
    snprintf(q->id, sizeof q->id, "%s", id);
    q->spec = *spec;
    memset(spec, 0, sizeof *spec);
    if (j->qtail)
        j->qtail->next = q;
    else
        j->qhead = q;
    j->qtail = q;
    j->queued++;
    publish_locked(j, l, "state", state_json("QUEUED", NULL), NULL);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return 0;
}

int jobs_stop_run(jobs *j, const char *id)
{
    pthread_mutex_lock(&j->mu);
    if (!strcmp(j->running, id)) {
        j->stop_flag = 1;
        pthread_mutex_unlock(&j->mu);
        return 0;
    }
    for (qitem **p = &j->qhead; *p; p = &(*p)->next) {
        if (strcmp((*p)->id, id))
            continue;
        qitem *q = *p;
        *p = q->next;
        if (j->qtail == q) {
            j->qtail = NULL;
            for (qitem *t = j->qhead; t; t = t->next)
                j->qtail = t;
        }
        j->queued--;
        pthread_mutex_unlock(&j->mu);
        /* Stored first, announced second: a stream that ends shows it stored. */
        int rc = store_run_set_state(j->cfg.db, id, "STOPPED", "user", NULL, NULL, wall());
        pthread_mutex_lock(&j->mu);
        live *l = find_live(j, id);
        if (l) {
            snprintf(l->state, sizeof l->state, "STOPPED");
            snprintf(l->stop_reason, sizeof l->stop_reason, "user");
            publish_locked(j, l, "state", state_json("STOPPED", "user"), NULL);
            l->final = 1;
            l->state_written = 1;
        }
        pthread_cond_signal(&j->wcv);
        pthread_mutex_unlock(&j->mu);
        spec_free_job(&q->spec);
        free(q);
        return rc;
    }
    live *l = find_live(j, id);
    int final = l && l->final;
    char state[16] = "";
    if (l)
        snprintf(state, sizeof state, "%s", l->state);
    pthread_mutex_unlock(&j->mu);
    if (final)
        return !strcmp(state, "STOPPED") ? 0
                                         : vv_fail(VV_ESTATE, "run %s already ended (%s)", id, state);
    run_row r = {0};
    int rc = store_run_get(j->cfg.db, id, &r);
    if (rc == 0 && strcmp(r.state, "STOPPED"))
        rc = vv_fail(VV_ESTATE, "run %s already ended (%s)", id, r.state);
    run_row_free(&r);
    return rc;
}

void jobs_queue_info(jobs *j, const char *id, int *position, char *reason, size_t reasonsz)
{
    *position = 0;
    if (reasonsz)
        reason[0] = 0;
    pthread_mutex_lock(&j->mu);
    int pos = 1;
    for (qitem *q = j->qhead; q; q = q->next, pos++) {
        if (strcmp(q->id, id))
            continue;
        *position = pos;
        if (j->device_lost)
            snprintf(reason, reasonsz, "the device %s was lost: vvd is restarting, and runs "
                                       "after the restart", devices_default());
        else if (j->running[0])
            snprintf(reason, reasonsz, "waiting for the %s device: %s is running%s",
                     devices_default(), j->running, pos > 1 ? ", and earlier runs are queued" : "");
        else
            snprintf(reason, reasonsz, "about to start");
        break;
    }
    pthread_mutex_unlock(&j->mu);
}

void jobs_get_stats(jobs *j, jobs_stats *st)
{
    pthread_mutex_lock(&j->mu);
    st->queued = j->queued;
    st->running = j->running[0] != 0;
    st->iterations = j->iterations;
    st->iterations_per_s = j->rate;
    st->events_dropped = 0;
    pthread_mutex_unlock(&j->mu);
}

typedef struct collect {
    jobs_event *ev;
    int n, max;
} collect;

static int collect_fn(void *ctx, int64_t seq, const char *type, const char *data)
{
    collect *c = ctx;
    jobs_event *e = &c->ev[c->n++];
    e->seq = seq;
    snprintf(e->type, sizeof e->type, "%s", type);
    e->data = strdup(data);
    return c->n >= c->max;
}

int jobs_events(jobs *j, const char *id, int64_t after, jobs_event *ev, int max, double wait_s,
                int *ended)
{
    *ended = 0;
    if (j->closing) {
        *ended = 1;
        return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double until = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec + wait_s;
    ts.tv_sec = (time_t)until;
    ts.tv_nsec = (long)((until - floor(until)) * 1e9);
    pthread_mutex_lock(&j->mu);
    live *l = find_live(j, id);
    /* Wait for something new while the events asked for are in memory. */
    if (l)
        l->readers++;
    while (l && !j->closing && after + 1 >= l->base && l->seq <= after &&
           !(l->final && l->state_written)) {
        if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT)
            break;
    }
    if (l)
        l->readers--;
    if (!l || after + 1 < l->base) {
        /* Not in memory: the run ended before this start, or the events are
         * older than the in-memory window (they are stored: only stored
         * events leave memory). */
        int written = l && l->state_written;
        pthread_mutex_unlock(&j->mu);
        collect c = {ev, 0, max};
        int rc = store_events_after(j->cfg.db, id, after, max, collect_fn, &c);
        if (rc < 0)
            return rc;
        if (c.n > 0)
            return c.n;
        if (l) {
            *ended = written;
            return 0;
        }
        run_row r = {0};
        rc = store_run_get(j->cfg.db, id, &r);
        if (rc == 0)
            *ended = 1; /* a run with no live side has ended and all is stored */
        run_row_free(&r);
        return rc < 0 ? rc : 0;
    }
    int n = 0;
    for (int64_t s = after + 1; s <= l->seq && n < max; s++, n++) {
        event *e = &l->ev[s - l->base];
        ev[n].seq = e->seq;
        snprintf(ev[n].type, sizeof ev[n].type, "%s", e->type);
        ev[n].data = strdup(e->data);
    }
    if (l->final && l->state_written && after + n >= l->seq)
        *ended = 1;
    pthread_mutex_unlock(&j->mu);
    return n;
}

void jobs_wake(jobs *j)
{
    pthread_mutex_lock(&j->mu);
    j->closing = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

char *jobs_last_metric(jobs *j, const char *id)
{
    char *out = NULL;
    pthread_mutex_lock(&j->mu);
    live *l = find_live(j, id);
    for (int i = l ? l->n - 1 : -1; i >= 0; i--)
        if (!strcmp(l->ev[i].type, "metric")) {
            out = strdup(l->ev[i].data);
            break;
        }
    pthread_mutex_unlock(&j->mu);
    return out;
}

int jobs_room(jobs *j)
{
    pthread_mutex_lock(&j->mu);
    int room = j->cfg.max_queue - j->queued - j->reserved;
    pthread_mutex_unlock(&j->mu);
    return room > 0 ? room : 0;
}
