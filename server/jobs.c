/* jobs.c - the run queue and the public face of the job pipeline: start and
 * stop, submit and stop runs, and the event streams (from the hub, or from
 * the store for what left memory). */
#include "jobs_internal.h"

#include "device.h"
#include "kinds.h"
#include "state.h"
#include "vv/err.h"
#include "vv/log.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The store failed the running run's events for long: stop it (its final
 * state becomes FAILED with the store's reason, see hub.h). */
static void on_store_failing(void *ctx, const char *id)
{
    jobs *j = ctx;
    pthread_mutex_lock(&j->mu);
    if (!strcmp(j->running, id))
        atomic_store(&j->stop_flag, 1);
    pthread_mutex_unlock(&j->mu);
    VV_ERROR("jobs", id, "the store keeps failing: the run is stopped and will be FAILED");
}

static void queue_push(jobs *j, qitem *q)
{
    if (j->qtail)
        j->qtail->next = q;
    else
        j->qhead = q;
    j->qtail = q;
    j->queued++;
}

/* Frees what jobs_start made; the threads are not running. */
static void jobs_free(jobs *j)
{
    while (j->qhead) {
        qitem *q = j->qhead;
        j->qhead = q->next;
        spec_free_job(&q->spec);
        free(q);
    }
    hub_free(j->hub);
    run_cache_free(j->cache);
    free(j->ext_stops);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* Queues again the runs the store has QUEUED (their specs parsed and
 * confined again: a spec that no longer passes is FAILED, stored). */
static int requeue(jobs *j)
{
    int crashed = 0, nq = 0;
    char **queued = NULL;
    int rc = store_recover(j->cfg.db, jobs_wall(), &crashed, &queued, &nq);
    if (rc < 0)
        return rc;
    if (crashed)
        VV_WARN("jobs", NULL, "%d run(s) were RUNNING when vvd stopped: now CRASHED", crashed);
    for (int i = 0; i < nq; i++) {
        run_row r = {0};
        char field[256] = "";
        if (store_run_get(j->cfg.db, queued[i], &r) == 0) {
            qitem *q = calloc(1, sizeof *q);
            int prc = q ? spec_parse_job_text(r.spec, strlen(r.spec), &q->spec, field, sizeof field)
                        : vv_fail(VV_ENOMEM, "out of memory");
            if (prc == 0)
                prc = kinds_confine(&q->spec, j->cfg.data_root, field, sizeof field);
            if (prc == 0)
                prc = hub_open(j->hub, r.id, r.last_seq);
            if (prc == 0) {
                snprintf(q->id, sizeof q->id, "%s", r.id);
                queue_push(j, q);
            } else {
                if (q)
                    spec_free_job(&q->spec);
                free(q);
                cJSON *e = run_error_object(prc, field);
                cJSON *err = cJSON_DetachItemFromObject(e, "error");
                char *detail = cJSON_PrintUnformatted(err);
                cJSON_Delete(err);
                cJSON_Delete(e);
                VV_WARN("jobs", queued[i], "not queued again: %s", vv_err_detail());
                store_run_set_state(j->cfg.db, queued[i], run_state_name(RUN_FAILED), NULL, NULL,
                                    detail, jobs_wall());
                free(detail);
            }
        }
        run_row_free(&r);
        free(queued[i]);
    }
    free(queued);
    if (nq)
        VV_INFO("jobs", NULL, "%d queued run(s) queued again", j->queued);
    return 0;
}

int jobs_start(const jobs_config *cfg, jobs **out)
{
    *out = NULL;
    jobs *j = calloc(1, sizeof *j);
    if (!j)
        return vv_fail(VV_ENOMEM, "out of memory");
    j->cfg = *cfg;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    hub_limits lim = {.on_store_failing = on_store_failing, .ctx = j};
    j->hub = hub_new(&lim);
    j->cache = run_cache_new((size_t)4 << 30);
    if (!j->hub || !j->cache) {
        jobs_free(j);
        return vv_fail(VV_ENOMEM, "out of memory");
    }
    int64_t max_run = 0, max_sweep = 0;
    store_max_ids(cfg->db, &max_run, &max_sweep);
    j->next_run = max_run + 1;
    int rc = requeue(j);
    if (rc < 0) {
        jobs_free(j);
        return rc;
    }
    if (pthread_create(&j->writer, NULL, jobs_writer_main, j)) {
        jobs_free(j);
        return vv_fail(VV_EINTERNAL, "cannot start the writer thread");
    }
    if (pthread_create(&j->compute, NULL, jobs_compute_main, j)) {
        atomic_store(&j->writer_done, 1);
        hub_close(j->hub);
        pthread_join(j->writer, NULL);
        jobs_free(j);
        return vv_fail(VV_EINTERNAL, "cannot start the compute thread");
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
        atomic_store(&j->shutdown_run, 1);
        atomic_store(&j->stop_flag, 1);
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->compute, NULL);
    /* The writer stores what is left (the stopped run's final state). */
    atomic_store(&j->writer_done, 1);
    pthread_join(j->writer, NULL);
    jobs_free(j);
}

int jobs_reserve(jobs *j, int n)
{
    pthread_mutex_lock(&j->mu);
    int room = j->cfg.max_queue - j->queued - j->reserved;
    if (j->stopping || n > room) {
        int stopping = j->stopping;
        pthread_mutex_unlock(&j->mu);
        return stopping ? vv_fail(VV_EDEVICE, "vvd is shutting down")
                        : vv_fail(VV_EBUSY,
                                  "the queue has room for %d runs, %d are needed; "
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
    if (rc == VV_EBUSY)
        return vv_fail(VV_EBUSY, "the queue is full (%d runs); try again later", j->cfg.max_queue);
    return rc < 0 ? rc : jobs_submit_reserved(j, spec, spec_json, sweep_id, config_hash, id);
}

int jobs_submit_reserved(jobs *j, job_spec *spec, const char *spec_json, const char *sweep_id,
                         const char *config_hash, char *id)
{
    /* The queue place is reserved; take an id under the lock and write the
     * row outside it. */
    pthread_mutex_lock(&j->mu);
    snprintf(id, 32, "r-%06lld", (long long)j->next_run++);
    pthread_mutex_unlock(&j->mu);
    int rc = store_run_insert(j->cfg.db, id, spec_kind_name(spec->kind), spec_json, sweep_id,
                              config_hash, jobs_wall());
    qitem *q = rc == 0 ? calloc(1, sizeof *q) : NULL;
    if (rc == 0 && !q)
        rc = vv_fail(VV_ENOMEM, "out of memory");
    if (rc == 0)
        rc = hub_open(j->hub, id, 0);
    if (rc < 0 && q) {
        /* The row exists: end it, stored, so that it is not queued again. */
        free(q);
        q = NULL;
        store_run_set_state(j->cfg.db, id, run_state_name(RUN_FAILED), NULL, NULL, NULL,
                            jobs_wall());
    }
    pthread_mutex_lock(&j->mu);
    j->reserved--;
    if (rc < 0) {
        pthread_mutex_unlock(&j->mu);
        return rc;
    }
    snprintf(q->id, sizeof q->id, "%s", id);
    q->spec = *spec;
    memset(spec, 0, sizeof *spec);
    queue_push(j, q);
    hub_publish_state(j->hub, id, RUN_QUEUED);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return 0;
}

int jobs_stop_run(jobs *j, const char *id)
{
    pthread_mutex_lock(&j->mu);
    if (!strcmp(j->running, id)) {
        atomic_store(&j->stop_flag, 1);
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
        /* Stored (by the writer) before it is announced, and before this
         * answers: the reply shows the stored state. */
        hub_finish(j->hub, id, RUN_STOPPED, STOP_USER, NULL, NULL);
        hub_wait_stored(j->hub, id, 10);
        spec_free_job(&q->spec);
        free(q);
        return 0;
    }
    pthread_mutex_unlock(&j->mu);
    /* Neither running nor queued here: an external run, or one that has
     * ended (or is ending now, its final state not yet stored: stop is
     * idempotent, nothing to do). */
    run_row r = {0};
    int rc = store_run_get(j->cfg.db, id, &r);
    int st = rc == 0 ? run_state_parse(r.state) : -1;
    if (rc == 0 && r.runner && st == RUN_QUEUED) {
        /* No worker has it yet: it ends here. */
        if ((rc = hub_open(j->hub, id, r.last_seq)) == 0 &&
            (rc = hub_finish(j->hub, id, RUN_STOPPED, STOP_USER, NULL, NULL)) == 0)
            hub_wait_stored(j->hub, id, 10);
    } else if (rc == 0 && r.runner && st == RUN_RUNNING) {
        /* Its worker learns it with its next batch of events; a worker
         * silent for a minute is gone: the run ends here. */
        if (jobs_wall() - r.heartbeat > 60) {
            if ((rc = hub_open(j->hub, id, r.last_seq)) == 0 &&
                (rc = hub_finish(j->hub, id, RUN_STOPPED, STOP_USER, NULL, NULL)) == 0)
                hub_wait_stored(j->hub, id, 10);
        } else {
            pthread_mutex_lock(&j->mu);
            int have = 0;
            for (int i = 0; i < j->n_ext_stops && !have; i++)
                have = !strcmp(j->ext_stops[i], id);
            if (!have && j->n_ext_stops == j->cap_ext_stops) {
                int cap = j->cap_ext_stops ? 2 * j->cap_ext_stops : 8;
                char(*g)[32] = realloc(j->ext_stops, (size_t)cap * sizeof *g);
                if (g) {
                    j->ext_stops = g;
                    j->cap_ext_stops = cap;
                }
            }
            if (!have && j->n_ext_stops < j->cap_ext_stops)
                snprintf(j->ext_stops[j->n_ext_stops++], 32, "%s", id);
            pthread_mutex_unlock(&j->mu);
        }
    }
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
            snprintf(reason, reasonsz,
                     "the device %s was lost: vvd is restarting, and runs "
                     "after the restart",
                     devices_default());
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
    pthread_mutex_unlock(&j->mu);
    st->iterations = atomic_load(&j->iterations);
    st->iterations_per_s = atomic_load(&j->rate);
    hub_stats hs;
    hub_get_stats(j->hub, &hs);
    st->events_coalesced = hs.coalesced;
    st->events_bytes = (int64_t)hs.bytes;
    st->store_errors = hs.store_errors;
}

int jobs_room(jobs *j)
{
    pthread_mutex_lock(&j->mu);
    int room = j->cfg.max_queue - j->queued - j->reserved;
    pthread_mutex_unlock(&j->mu);
    return room > 0 ? room : 0;
}

/* ---- Event streams --------------------------------------------------------------- */

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
    hub_event he[64];
    if (max > 64)
        max = 64;
    int n = hub_read(j->hub, id, after, he, max, wait_s, ended);
    if (n >= 0) {
        for (int i = 0; i < n; i++) {
            ev[i].seq = he[i].seq;
            snprintf(ev[i].type, sizeof ev[i].type, "%s", hub_type_name(he[i].type));
            ev[i].data = jobs_event_text(&he[i]);
            hub_event_clear(&he[i]);
        }
        return n;
    }
    /* Not in memory: the run ended before this start, or the events are
     * older than the in-memory window (only stored events leave memory). */
    int written = *ended;
    *ended = 0;
    collect c = {ev, 0, max};
    int rc = store_events_after(j->cfg.db, id, after, max, collect_fn, &c);
    if (rc < 0)
        return rc;
    if (c.n > 0)
        return c.n;
    if (!written)
        return 0;
    run_row r = {0};
    rc = store_run_get(j->cfg.db, id, &r);
    run_row_free(&r);
    if (rc < 0)
        return rc;
    *ended = 1;
    return 0;
}

void jobs_wake(jobs *j)
{
    hub_close(j->hub);
}

char *jobs_last_metric(jobs *j, const char *id)
{
    run_metric m;
    if (!hub_last_metric(j->hub, id, &m))
        return NULL;
    cJSON *o = run_metric_json(&m);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

int jobs_ext_stop_requested(jobs *j, const char *id, int clear)
{
    pthread_mutex_lock(&j->mu);
    int found = 0;
    for (int i = 0; i < j->n_ext_stops && !found; i++)
        if (!strcmp(j->ext_stops[i], id)) {
            found = 1;
            if (clear)
                memcpy(j->ext_stops[i], j->ext_stops[--j->n_ext_stops], 32);
        }
    pthread_mutex_unlock(&j->mu);
    return found;
}
