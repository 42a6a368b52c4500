/* sweep.h - a sweep as vvctl sees it: its points, each point's attempts and
 * the Pareto front (sweep_view.c), shared by the sweep commands (sweep.c).
 *
 * A point is one element of the cartesian product of the sweep request's
 * grid (duplicates dropped, in the daemon's order: last field fastest).
 * Every run of a point belongs to the daemon's sweep (sweep_id == ID): the
 * first one queued when the sweep was created, and one more each time
 * `vvctl sweep resume ID` (POST /v1/sweeps/ID/resume) re-queued the point
 * because its latest attempt FAILED, CRASHED or was STOPPED, or because it
 * never got a run.  GET /v1/sweeps/ID lists all of them; each carries the
 * point's hash ("point", the same for all its attempts), its "attempt"
 * (1, 2, ...) and "latest" (true for the newest attempt of its point), and
 * the sweep's counts and state count only latest attempts.
 *
 * vvctl matches a run to a point by its "point" hash once one run of that
 * point was matched by the grid fields of its spec; a point's current run is
 * its latest attempt (the daemon's "latest", else the highest "attempt"),
 * and its attempts are all the runs with its hash.
 */
#ifndef VVCTL_SWEEP_H
#define VVCTL_SWEEP_H

#include "vvctl.h"

enum { VC_MAX_AXES = 16, VC_MAX_POINTS = 10000 };

typedef struct vc_point {
    cJSON *values;    /* field -> value (owned) */
    const char *hash; /* the daemon's point hash (from its runs), or NULL */
    const cJSON *run; /* the current (latest) attempt, or NULL */
    int attempts;
    int deleted; /* no run, and `vvctl rm` deleted its latest (the sweep's
                  * "deleted" records) */
    int pareto;  /* Pareto-optimal among the FINISHED points (active and mse; for
                  * a compress sweep params and test_acc) */
} vc_point;

typedef struct vc_sweep {
    char id[64];
    cJSON *sweep; /* GET /v1/sweeps/ID (owned) */
    const cJSON *base;
    const cJSON *axes[VC_MAX_AXES]; /* the grid's arrays, in request order */
    int naxes;
    vc_point *pts;
    int npts;
    int counts[6]; /* current runs by state, in the order of vc_states */
    int missing;   /* points without any run */
    int deleted;   /* of them, points whose run was deleted */
    int retried;   /* points with more than one attempt */
    int unmatched; /* runs of the sweep that match no point */
    int compress;  /* the base spec's kind is compress */
    int *index;    /* points by hash (sweep_view.c) */
    int index_size;
} vc_sweep;

/* QUEUED, RUNNING, FINISHED, STOPPED, FAILED, CRASHED. */
extern const char *const vc_states[6];

/* Loads sweep id (GET /v1/sweeps/ID), expands its points, assigns their
 * runs and computes the Pareto front.  Returns an exit code, printed on
 * failure; *v must be released with vc_sweep_free either way. */
int vc_sweep_load(const char *id, vc_sweep *v);
/* The same from a sweep object already fetched (e.g. the answer of POST
 * /v1/sweeps/ID/stop); takes ownership of sweep. */
int vc_sweep_from_json(const char *id, cJSON *sweep, vc_sweep *v);
void vc_sweep_free(vc_sweep *v); /* accepts NULL */

/* The point whose daemon hash is hash, or NULL. */
const vc_point *vc_sweep_find_point(const vc_sweep *v, const char *hash);

/* The sweep as one JSON object: id, state, request, counts, points (each
 * with values, point, run, attempts, pareto).  The caller deletes it. */
cJSON *vc_sweep_json(const vc_sweep *v);

/* The header line (state and counts), and the table of points. */
void vc_sweep_print_counts(const vc_sweep *v);
void vc_sweep_print_table(const vc_sweep *v);

/* A point's grid values as " field=value ..." (malloc'd, "" when none). */
char *vc_point_values_text(const vc_sweep *v, const vc_point *p);

/* The current run's result (or its summary while it runs). */
const cJSON *vc_point_result(const vc_point *p);
/* Whether the point's current run is QUEUED or RUNNING. */
int vc_point_active(const vc_point *p);

#endif
