/* sweep.h - a sweep as vvctl sees it: its points, each point's runs and the
 * Pareto front (sweep_view.c), shared by the sweep commands (sweep.c).
 *
 * A point is one element of the cartesian product of the sweep request's
 * grid (duplicates dropped, in the daemon's order: last field fastest).  Its
 * attempts are the runs of the sweep (sweep_id == ID) plus the runs `vvctl
 * sweep resume ID` queued for it: the daemon has no resume route, so resume
 * POSTs each point again as a plain run whose spec "name" ends with the tag
 * "[sweep ID]".  Runs are matched to points by the grid fields of their
 * spec, and a point's current run is its newest attempt.
 */
#ifndef VVCTL_SWEEP_H
#define VVCTL_SWEEP_H

#include "vvctl.h"

enum { VC_MAX_AXES = 16, VC_MAX_POINTS = 10000 };

typedef struct vc_point {
    cJSON *values;    /* field -> value (owned) */
    const cJSON *run; /* the current (newest) attempt, or NULL */
    int attempts;
    int pareto; /* Pareto-optimal among the FINISHED points */
} vc_point;

typedef struct vc_sweep {
    char id[64];
    cJSON *sweep; /* GET /v1/sweeps/ID */
    cJSON *extra; /* runs queued by `sweep resume` (owned array) */
    const cJSON *base;
    const cJSON *axes[VC_MAX_AXES]; /* the grid's arrays, in request order */
    int naxes;
    vc_point *pts;
    int npts;
    int counts[6]; /* current runs by state, in the order of vc_states */
    int missing;   /* points without any run */
    int retried;   /* points with more than one attempt */
} vc_sweep;

/* QUEUED, RUNNING, FINISHED, STOPPED, FAILED, CRASHED. */
extern const char *const vc_states[6];

/* Loads sweep id (GET /v1/sweeps/ID, and GET /v1/runs back to the sweep's
 * creation for the resumed runs), expands its points, assigns their runs
 * and computes the Pareto front.  Returns an exit code, printed on
 * failure; *v must be released with vc_sweep_free either way. */
int vc_sweep_load(const char *id, vc_sweep *v);
void vc_sweep_free(vc_sweep *v); /* accepts NULL */

/* The sweep as one JSON object: id, state, request, counts, points (each
 * with values, run, attempts, pareto).  The caller deletes it. */
cJSON *vc_sweep_json(const vc_sweep *v);

/* The header line (state and counts), and the table of points. */
void vc_sweep_print_counts(const vc_sweep *v);
void vc_sweep_print_table(const vc_sweep *v);

/* The current run's result (or its summary while it runs). */
const cJSON *vc_point_result(const vc_point *p);
/* Whether the point's current run is QUEUED or RUNNING. */
int vc_point_active(const vc_point *p);

/* Writes the resume tag "[sweep ID]" into tag. */
void vc_sweep_tag(char *tag, size_t sz, const char *sweep_id);
/* Sets spec's name to its old name (without an old tag) followed by tag. */
void vc_sweep_set_tag(cJSON *spec, const char *tag);

#endif
