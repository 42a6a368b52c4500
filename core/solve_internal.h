/* solve_internal.h - what the solvers share: reporting and stop checks. */
#ifndef VV_SOLVE_INTERNAL_H
#define VV_SOLVE_INTERNAL_H

#include "vv/backend.h"
#include "vv/lasso.h"

/* The bookkeeping of one solve. */
typedef struct vv_progress {
    const vv_stats *s;
    const vv_lasso_opts *o;
    double t0;       /* vv_now() at the start */
    double deadline; /* absolute; 0: none */
    int64_t max_iter;
    int64_t every;      /* 0: auto (at most one report per VV_REPORT_GAP seconds) */
    double last_report; /* vv_now() of the last report */
    double tol;
} vv_progress;

void vv_progress_init(vv_progress *p, const vv_stats *s, const vv_lasso_opts *o);

/* Reports iterate number it (evaluated in *e) when due (or when force), then
 * decides whether to stop: returns the stop reason, or VV_STOP_NONE to go
 * on.  The reason is converged when e->rel_gap <= tol. */
vv_stop_reason vv_progress_step(vv_progress *p, int64_t it, const vv_eval *e, int force);

/* The stop checks alone (user flag, time, iterations), for inner loops. */
vv_stop_reason vv_progress_poll(vv_progress *p, int64_t it);

/* lambda_max(G) / N by power iteration in be's operations (G: K x K in be's
 * memory, n the number of samples), scaled up by 1% (vv_lipschitz): the
 * host solvers and the resident one share it.  x, y: K doubles of scratch
 * in be's memory. */
int vv__power_lipschitz(vv_backend *be, const double *G, int64_t k, int64_t n, double *x,
                        double *y, double *L);

/* The first row of group g (g = ngroups: k); row g without groups. */
static inline int64_t vv__goff(const vv_stats *s, int64_t g)
{
    return s->group_off ? s->group_off[g] : g;
}

/* The prox of thr sum_g ||X_g||_F (eps as the backend's group_shrink) on
 * X (K x D): one backend call on the ngroups x (size D) view when the
 * groups have one size, else a loop over the groups on host memory
 * (groups.c). */
int vv__group_shrink(vv_backend *be, const vv_stats *s, double *X, double thr, double eps);

int vv_solve_fista(const vv_stats *s, const vv_lasso_opts *o, double *W, vv_lasso_result *res);
/* FISTA with G, Bt and the iterates in o->be's memory (solve_fista_dev.c). */
int vv_solve_fista_dev(const vv_stats *s, const vv_lasso_opts *o, double *W,
                       vv_lasso_result *res);
int vv_solve_bcd(const vv_stats *s, const vv_lasso_opts *o, double *W, vv_lasso_result *res);
int vv_solve_adam(const vv_stats *s, const vv_lasso_opts *o, double *W, vv_lasso_result *res);

#endif
