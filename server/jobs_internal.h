/* jobs_internal.h - what the queue (jobs.c), the compute thread (compute.c)
 * and the writer (writer.c) share. */
#ifndef VV_JOBS_INTERNAL_H
#define VV_JOBS_INTERNAL_H

#include "hub.h"
#include "jobs.h"
#include "run.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct qitem {
    char id[32];
    job_spec spec;
    struct qitem *next;
} qitem;

struct jobs {
    jobs_config cfg;
    hub *hub;
    run_cache *cache;
    /* The queue; mu guards it and the members up to running. */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the queue changed, or stopping */
    qitem *qhead, *qtail;
    int queued, reserved; /* runs in the queue; places handed out but not yet queued */
    int stopping;
    int device_lost; /* a sticky device error: no run starts any more */
    int64_t next_run;
    char running[32]; /* the running run's id, "" when none */
    /* External runs asked to stop (their workers learn it with their next
     * batch of events). */
    char (*ext_stops)[32];
    int n_ext_stops, cap_ext_stops;
    /* Read by the solver between iterations, set by other threads. */
    atomic_int stop_flag;    /* stop the running run */
    atomic_int shutdown_run; /* ... because vvd shuts down */
    atomic_int writer_done;  /* the writer stores what is left and returns */
    /* Solver progress, for /metrics and /health. */
    atomic_llong iterations, last_step;
    _Atomic double rate; /* iterations per second, over the last second */
    pthread_t compute, writer;
};

void *jobs_compute_main(void *arg); /* compute.c */
void *jobs_writer_main(void *arg);  /* writer.c */

/* The JSON text of an event (malloc'd), as the store and SSE carry it. */
char *jobs_event_text(const hub_event *e);

/* The writer's hub_store over j's SQLite store. */
hub_store jobs_hub_store(jobs *j);

double jobs_wall(void);

#endif
