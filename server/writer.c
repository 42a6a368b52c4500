/* writer.c - the writer thread: moves each run's events, metrics and final
 * state from the hub to SQLite in batches, and records heartbeats. */
#include "jobs_internal.h"

#include "state.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/log.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

double jobs_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

char *jobs_event_text(const hub_event *e)
{
    if (e->type == HUB_LOG)
        return strdup(e->log ? e->log : "{}");
    cJSON *o;
    if (e->type == HUB_METRIC) {
        o = run_metric_json(&e->m);
    } else {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "state", run_state_name(e->state));
        if (e->why != STOP_NONE)
            cJSON_AddStringToObject(o, "stop_reason", stop_reason_name(e->why));
        cJSON_AddNumberToObject(o, "time", e->time);
    }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* ---- The reserve: room kept for the store on a disk that fills up -------------------
 *
 * DATA/.vvd-reserve holds RESERVE_BYTES of allocated blocks.  When the store
 * finds the disk full, the writer deletes it, so that the store can still
 * record what it owes (a run's final state, FAILED with the reason): a
 * state is reported only once stored, and without room it could not be.
 * The reserve is made again once the disk has room for it twice over. */

enum { RESERVE_BYTES = 4 << 20 };

static void reserve_path(const jobs *j, char *buf, size_t sz)
{
    snprintf(buf, sz, "%s/.vvd-reserve", j->cfg.data_root);
}

/* Makes the reserve unless it exists or the disk lacks room for it. */
static void reserve_make(jobs *j)
{
    char path[4200];
    reserve_path(j, path, sizeof path);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size >= RESERVE_BYTES)
        return;
    struct statvfs vfs;
    if (statvfs(j->cfg.data_root, &vfs) < 0 ||
        (double)vfs.f_bavail * (double)vfs.f_frsize < 2.0 * RESERVE_BYTES)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    int rc = posix_fallocate(fd, 0, RESERVE_BYTES);
    close(fd);
    if (rc != 0)
        unlink(path);
}

/* Deletes the reserve; 1 when there was one to delete. */
static int reserve_release(jobs *j)
{
    char path[4200];
    reserve_path(j, path, sizeof path);
    if (unlink(path) < 0)
        return 0;
    VV_WARN("store", NULL,
            "the disk is full: released the %d MiB reserve (%s) so that the store can "
            "record final states",
            RESERVE_BYTES >> 20, path);
    return 1;
}

static int store_events(void *ctx, const char *id, const hub_event *ev, int n, const hub_final *fin)
{
    jobs *j = ctx;
    event_row *rows = malloc((size_t)(n ? n : 1) * sizeof *rows);
    metric_row *ms = malloc((size_t)(n ? n : 1) * RM_COUNT * sizeof *ms);
    char **texts = calloc((size_t)(n ? n : 1), sizeof *texts);
    int rc = 0, nm = 0;
    if (!rows || !ms || !texts)
        rc = vv_fail(VV_ENOMEM, "out of memory storing the events of %s", id);
    for (int i = 0; i < n && rc == 0; i++) {
        if (!(texts[i] = jobs_event_text(&ev[i]))) {
            rc = vv_fail(VV_ENOMEM, "out of memory storing the events of %s", id);
            break;
        }
        rows[i] = (event_row){ev[i].seq, hub_type_name(ev[i].type), texts[i]};
        if (ev[i].type != HUB_METRIC)
            continue;
        for (int k = 0; k < RM_COUNT; k++)
            if (ev[i].m.have & (1u << k))
                ms[nm++] = (metric_row){ev[i].m.step, run_metric_name((run_metric_key)k),
                                        ev[i].m.values[k], ev[i].m.time};
    }
    for (int attempt = 0; rc == 0 && attempt < 2; attempt++) {
        rc = fin ? store_append_final(j->cfg.db, id, rows, n, ms, nm, run_state_name(fin->state),
                                      stop_reason_or_null(fin->why), fin->result, fin->error,
                                      jobs_wall())
                 : store_append(j->cfg.db, id, rows, n, ms, nm);
        if (rc != VV_ENOSPACE || !reserve_release(j))
            break;
        rc = 0; /* again, with the reserve's room */
    }
    for (int i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(rows);
    free(ms);
    return rc;
}

hub_store jobs_hub_store(jobs *j)
{
    return (hub_store){store_events, j};
}

void *jobs_writer_main(void *arg)
{
    jobs *j = arg;
    setpriority(PRIO_PROCESS, (id_t)gettid(), 5); /* the solver comes first */
    hub_store st = jobs_hub_store(j);
    double rate_t = vv_now(), done_at = 0, reserve_t = 0;
    long long rate_it = atomic_load(&j->iterations);
    for (;;) {
        int done = atomic_load(&j->writer_done);
        if (done && done_at == 0)
            done_at = vv_now();
        while (hub_flush(j->hub, &st, vv_now()))
            ;
        double now = vv_now();
        if (now - reserve_t >= 10.0) {
            reserve_make(j);
            reserve_t = now;
        }
        if (now - rate_t >= 1.0) {
            long long it = atomic_load(&j->iterations);
            atomic_store(&j->rate, (double)(it - rate_it) / (now - rate_t));
            rate_t = now;
            rate_it = it;
            char id[32];
            pthread_mutex_lock(&j->mu);
            snprintf(id, sizeof id, "%s", j->running);
            pthread_mutex_unlock(&j->mu);
            if (id[0])
                store_run_heartbeat(j->cfg.db, id, jobs_wall());
        }
        /* At shutdown: everything stored, or 30 s of a store that fails. */
        if (done && (!hub_pending(j->hub) || now - done_at > 30)) {
            if (hub_pending(j->hub))
                VV_ERROR("jobs", NULL, "shutting down with events the store did not take");
            return NULL;
        }
        hub_wait_work(j->hub, done ? 0.01 : 0.05);
    }
}
