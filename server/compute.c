/* compute.c - the compute thread: takes runs from the queue and runs them
 * on the device, handing their events to the hub as C structs. */
#include "jobs_internal.h"

#include "device.h"
#include "kinds.h"
#include "state.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/log.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct sink_ctx {
    jobs *j;
    const char *id;
} sink_ctx;

static void on_metric(void *ctx, const run_metric *m)
{
    sink_ctx *c = ctx;
    long long last = atomic_load(&c->j->last_step);
    if (m->step > last)
        atomic_fetch_add(&c->j->iterations, m->step - last);
    atomic_store(&c->j->last_step, m->step);
    hub_publish_metric(c->j->hub, c->id, m);
}

static void on_log(void *ctx, const cJSON *ev)
{
    sink_ctx *c = ctx;
    hub_publish_log(c->j->hub, c->id, cJSON_PrintUnformatted(ev));
}

/* Records a file a run wrote as its artifact, with a few tries (as
 * mark_running); a store that cannot take it (a full disk) stops the walk
 * with its error: the run then ends FAILED, never FINISHED without the
 * record of a file it wrote. */
static int add_artifact(void *ctx, const char *name, const char *path, int64_t bytes)
{
    sink_ctx *c = ctx;
    int rc = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        if ((rc = store_artifact_add(c->j->cfg.db, c->id, name, path, bytes)) == 0)
            return 0;
        VV_ERROR("jobs", c->id, "cannot store artifact %s: %s", name, vv_err_detail());
        struct timespec ts = {0, 50000000L << attempt};
        nanosleep(&ts, NULL);
    }
    char why[512];
    snprintf(why, sizeof why, "%s", vv_err_detail());
    return vv_fail(rc, "the store cannot record the run's file %s (%s): is the disk full? The "
                   "file is in the run's folder, unrecorded", name, why);
}

/* Runs one queued run to its end and hands its final state to the hub (the
 * writer stores it, then it is announced). */
static void run_one(jobs *j, qitem *q)
{
    VV_INFO("jobs", q->id, "running");
    char out[4096];
    snprintf(out, sizeof out, "%s/runs/%s", j->cfg.data_root, q->id);
    sink_ctx sc = {j, q->id};
    run_sink sink = {on_metric, on_log, &sc};
    cJSON *result = NULL;
    char field[256] = "";
    int rc = run_job(&q->spec, out, &sink, &j->stop_flag, j->cache, &result, field, sizeof field);
    int arc = run_each_output(out, add_artifact, &sc);
    if (rc == 0 && arc < 0) {
        cJSON_Delete(result);
        result = NULL;
        field[0] = 0;
        rc = arc;
    }
    int shutdown = atomic_load(&j->shutdown_run);
    if (rc < 0) {
        /* Stopped during the statistics pass: there is no V to keep. */
        int stopped = rc == VV_ESTATE && atomic_load(&j->stop_flag);
        char *etext = NULL;
        if (!stopped) {
            cJSON *err = run_error_object(rc, field);
            cJSON *e = cJSON_DetachItemFromObject(err, "error");
            etext = cJSON_PrintUnformatted(e);
            cJSON_Delete(e);
            cJSON_Delete(err);
            VV_WARN("jobs", q->id, "failed: %s", vv_err_detail());
        }
        hub_finish(j->hub, q->id, stopped ? RUN_STOPPED : RUN_FAILED,
                   stopped ? (shutdown ? STOP_SHUTDOWN : STOP_USER) : STOP_NONE, NULL, etext);
        return;
    }
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(result, "state");
    const cJSON *jw = cJSON_GetObjectItemCaseSensitive(result, "stop_reason");
    int st = run_state_parse(cJSON_IsString(js) ? js->valuestring : NULL);
    int why = stop_reason_parse(cJSON_IsString(jw) ? jw->valuestring : NULL);
    if (st < 0 || why < 0) {
        VV_ERROR("jobs", q->id, "the result's state or stop_reason is unknown");
        st = st < 0 ? RUN_FINISHED : st;
        why = why < 0 ? STOP_NONE : why;
    }
    if (shutdown && st == RUN_STOPPED)
        why = STOP_SHUTDOWN;
    char *rtext = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
    VV_INFO("jobs", q->id, "%s (%s)", run_state_name((run_state)st),
            stop_reason_name((stop_reason)why));
    hub_finish(j->hub, q->id, (run_state)st, (stop_reason)why, rtext, NULL);
}

/* Stores RUNNING before it is announced; a store that cannot take it
 * (after a few tries) fails the run instead. */
static int mark_running(jobs *j, const char *id)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        if (store_run_set_state(j->cfg.db, id, run_state_name(RUN_RUNNING), NULL, NULL, NULL,
                                jobs_wall()) == 0)
            return 0;
        VV_ERROR("jobs", id, "cannot store RUNNING: %s", vv_err_detail());
        struct timespec ts = {0, 50000000L << attempt};
        nanosleep(&ts, NULL);
    }
    return -1;
}

void *jobs_compute_main(void *arg)
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
        atomic_store(&j->stop_flag, 0);
        pthread_mutex_unlock(&j->mu);
        if (mark_running(j, q->id) == 0) {
            hub_publish_state(j->hub, q->id, RUN_RUNNING);
            run_one(j, q);
        } else {
            char *e = strdup("{\"type\":\"about:blank\",\"title\":\"input/output error\","
                             "\"status\":500,\"error_code\":\"IO_ERROR\",\"detail\":\"the run "
                             "could not be marked RUNNING in the store\",\"field\":\"\"}");
            hub_finish(j->hub, q->id, RUN_FAILED, STOP_NONE, NULL, e);
        }
        int lost = devices_lost();
        pthread_mutex_lock(&j->mu);
        j->running[0] = 0;
        int first = lost && !j->device_lost;
        j->device_lost |= lost;
        pthread_mutex_unlock(&j->mu);
        if (first) {
            /* The failed run's state is stored before the grace period of
             * the exit starts, so that clients can read it meanwhile. */
            hub_wait_stored(j->hub, q->id, 10);
            VV_ERROR("jobs", q->id,
                     "the device %s was lost (a sticky error); no run starts "
                     "any more, and vvd exits to be restarted",
                     devices_default());
            if (j->cfg.on_device_lost)
                j->cfg.on_device_lost();
        }
        spec_free_job(&q->spec);
        free(q);
    }
}
