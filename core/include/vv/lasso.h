/* vv/lasso.h - the multi-task lasso on sufficient statistics.
 *
 * Problem (DESIGN.md section 1, scikit-learn MultiTaskLasso scaling):
 *
 *     P(V) = 1/(2N) ||Psi - b - Phi V^T||_F^2 + lambda * sum_k ||v_k||_2
 *
 * with Phi N x K, Psi N x D and V D x K; with groups of features
 * (vv_stats.group_off) the penalty is lambda * sum_g ||W_g||_F over blocks
 * of rows of W, the group lasso (doc/group-lasso.md), of which one row a
 * group is the case above.  Internally every solver works on
 * W = V^T (K x D, row k = the outgoing weights of neuron k, contiguous) and
 * on the sufficient statistics G = Phi^T Phi, Bt = Phi^T (Psi - b),
 * c = ||Psi - b||_F^2 and N, so no iteration touches N-sized data.
 */
#ifndef VV_LASSO_H
#define VV_LASSO_H

#include "vv/array.h"
#include "vv/backend.h"

#include <stdatomic.h>
#include <stdint.h>

/* ---- Sufficient statistics ---------------------------------------------- */

typedef struct vv_stats {
    int64_t n, k, d;
    double *G;      /* K x K, symmetric, row-major (both triangles filled) */
    double *Bt;     /* K x D, Phi^T (Psi - b) */
    double c;       /* ||Psi - b||_F^2 */
    double seconds; /* wall time of the pass */
    double flops;   /* floating-point operations of the Gram and cross products */
    /* Groups of rows of W (of features) penalised together: group g is rows
     * [group_off[g], group_off[g + 1]) (ascending, group_off[0] = 0,
     * group_off[ngroups] = k); NULL / 0: every row its own group.  Not
     * owned: vv_stats_free leaves it.  Groups that are not contiguous in the
     * features (channels tied by a residual addition) are made contiguous by
     * ordering the features.  vv_stats_compute zeroes both (no groups); a
     * caller sets them afterwards, on a copy when the statistics are shared:
     * vv_stats g = *s; g.group_off = off; g.ngroups = ng;
     * (doc/group-lasso.md). */
    const int64_t *group_off;
    int64_t ngroups;
} vv_stats;

typedef struct vv_stats_opts {
    int64_t chunk_rows;     /* rows per chunk; 0 chooses (about 32 MiB of features) */
    const double *bias;     /* D values subtracted from Psi, or NULL */
    const atomic_int *stop; /* polled between chunks; may be NULL */
    vv_backend *be;         /* NULL: CPU.  Another backend (a device): each chunk is
                             * uploaded and G, Bt accumulate in its memory (one
                             * worker), then come back to the host */
    int64_t row0, nrows;    /* nrows > 0: only rows [row0, row0 + nrows) of both sources
                             * (one process's share of a pass whose sums are added up
                             * across processes); 0: every row */
    int workers;            /* CPU workers; 0 chooses (one per core, at most 4) */
    /* On a device backend, when set: called once the pass is over, with its
     * status rc (0 or a negative vv_err) and G (K x K, upper triangle) and
     * Bt (K x D) still in device memory, before they come back to the host;
     * what it returns is the pass's status (server/mpi_run.c sums them
     * across processes there).  Not called when the pass fails before it
     * starts (bad shapes, no memory). */
    int (*device_sums)(void *ctx, vv_backend *be, int rc, double *G, double *Bt, int64_t k,
                       int64_t d);
    void *device_sums_ctx;
} vv_stats_opts;

/* One streaming pass over the rows of phi (N x K) and psi (N x D): G, Bt, c
 * accumulated in float64, unnormalised (plain sums over the rows, so the
 * statistics of disjoint row ranges add up to those of their union; n is
 * the number of rows summed).  Memory: O(K^2 + K D + chunk).  Fails with
 * VV_ESHAPE when the row counts differ (naming both sources), VV_EINVAL for
 * a row range outside them, with the source's error on bad data (NaN/Inf,
 * I/O), VV_ENOMEM, or VV_ESTATE when *stop became non-zero.  On failure
 * *out is zeroed. */
int vv_stats_compute(vv_rows *phi, vv_rows *psi, const vv_stats_opts *opts, vv_stats *out);

/* One problem of a shared pass (vv_stats_compute_set). */
typedef struct vv_stats_src {
    vv_rows *phi, *psi; /* N x K and N x D */
    int64_t per_unit;   /* rows per unit (>= 1): N = units x per_unit */
    const double *bias; /* D values subtracted from Psi, or NULL */
} vv_stats_src;

/* The statistics of np problems in one pass over their units (a unit is
 * per_unit consecutive rows of each problem: one image's rows, e.g. the
 * sampled positions of a conv layer).  The units are taken in batches, and
 * each batch's rows of every problem are read in turn (problem 0 first,
 * phi before psi), so sources that compute from the same data (the inputs
 * of several layers of one network) can compute them once per batch; each
 * problem adds its rows up in chunks of its own size, as vv_stats_compute
 * does (whose single problem has one row a unit).  opts as for
 * vv_stats_compute, except that bias is each problem's own, row0 and nrows
 * count units, and device_sums is called for each problem in order.
 * out[j] gets problem j's statistics, seconds the shared pass's; on
 * failure all are zeroed.  VV_ESHAPE also when the problems' units differ;
 * memory: every problem's accumulators at once. */
int vv_stats_compute_set(int np, const vv_stats_src *src, const vv_stats_opts *opts, vv_stats *out);

/* The units per batch of a pass over src's np problems given chunk_rows (0:
 * choose): as many as every problem's chunk takes, at least one. */
int64_t vv_stats_batch(int np, const vv_stats_src *src, int64_t chunk_rows);

/* Frees G and Bt and zeroes the struct (group_off, not owned, is not
 * freed); accepts NULL. */
void vv_stats_free(vv_stats *s);

/* The rows per chunk of a pass given chunk_rows (0: choose) and K features
 * (before it is cut to the rows there are). */
int64_t vv_stats_chunk(int64_t chunk_rows, int64_t k);

/* The share of part `part` of `parts` in n items, [*begin, *end):
 * contiguous, in part order, covering 0..n exactly once, the sizes
 * differing by at most one (the first n % parts shares are the larger).
 * Used to split rows (or shards) across processes. */
void vv_stats_share(int64_t n, int part, int parts, int64_t *begin, int64_t *end);

/* ---- Groups (groups.c; doc/group-lasso.md) ------------------------------- */

/* Checks s's groups: VV_EINVAL (with a message naming the fault) unless
 * group_off is NULL (ngroups 0 or k) or ngroups >= 1 offsets ascend
 * strictly from group_off[0] = 0 to group_off[ngroups] = k (no empty group;
 * k = 0 allows ngroups = 0). */
int vv_groups_check(const vv_stats *s);

/* Offsets (*ng + 1 values, malloc'd, the caller frees) of k rows in groups
 * of `size` consecutive rows; VV_EINVAL unless size >= 1 divides k,
 * VV_ENOMEM. */
int vv_groups_uniform(int64_t k, int64_t size, int64_t **off, int64_t *ng);

/* The number of groups (k when group_off is NULL). */
int64_t vv_groups_count(const vv_stats *s);

/* The size shared by every group, or 0 when the sizes differ (1 without
 * groups). */
int64_t vv_groups_size(const vv_stats *s);

/* L_g = lambda_max(G_gg), the largest eigenvalue of the diagonal block of
 * every group (not divided by N), into L (vv_groups_count(s) values): G_kk
 * exactly for a group of one row, LAPACK's dsyev scaled up by 1 + 1e-12
 * otherwise (an upper bound within rounding: screening relies on it).
 * VV_ENOMEM, or VV_ENUMERIC when dsyev fails. */
int vv_group_lmax(const vv_stats *s, double *L);

/* The active groups of W (K x D), ||W_g||_F > VV_ACTIVE_TOL: writes their
 * indices, ascending, to gidx (vv_groups_count(s) entries of room; may be
 * NULL) and returns how many there are. */
int64_t vv_lasso_group_support(const vv_stats *s, const double *W, int64_t *gidx);

/* ---- Quantities on the statistics (gram.c) ------------------------------ */

/* Smallest lambda for which V = 0 is optimal: max_g ||Bt_g||_F / N
 * (max_k ||Bt_k|| / N without groups). */
double vv_lambda_max(const vv_stats *s);

/* Largest eigenvalue of G / N by power iteration (relative accuracy about
 * 1e-6; the returned value is scaled up by 1% to be a safe Lipschitz bound
 * of the gradient of the smooth part). Needs K doubles of scratch. */
double vv_lipschitz(const vv_stats *s);

/* Everything the certificate says about an iterate. */
typedef struct vv_eval {
    double objective;  /* P(V) */
    double gap;        /* duality gap, >= 0 up to rounding */
    double rel_gap;    /* gap / (c / 2N) */
    double mse;        /* ||R||^2 / (N D), the paper's MSELoss */
    double group_norm; /* sum_g ||W_g||_F (sum_k ||w_k|| without groups) */
    double r2;         /* ||R||^2 */
    double dual_scale; /* s = min(1, lambda / max_g ||M_g||_F) */
    int64_t active;    /* #{g : ||W_g||_F > active_tol}: active GROUPS (neurons
                        * without groups) */
} vv_eval;

/* The column norm above which a neuron counts as active (the paper's 1e-7). */
#define VV_ACTIVE_TOL 1e-7

/* Evaluates W (K x D) given GW = G W, with s's groups.  When mnorm is not
 * NULL it receives ||M_g||_F = ||Bt_g - (G W)_g||_F / N for every GROUP g
 * (vv_groups_count(s) values; K without groups), the quantity Gap Safe
 * screening needs.  O(K D). */
void vv_gram_eval(const vv_stats *s, const double *W, const double *GW, double lambda,
                  double *mnorm, vv_eval *e);

/* The same from the sums it is made of, however they were computed:
 * wb = <W, Bt>, wgw = <W, G W>, gn = sum_g ||W_g||_F, mmax = max_g ||M_g||_F
 * and active = #{g : ||W_g||_F > VV_ACTIVE_TOL} (rows k for singletons). */
void vv_gram_eval_sums(const vv_stats *s, double lambda, double wb, double wgw, double gn,
                       double mmax, int64_t active, vv_eval *e);

/* GW = G W computed from the nonzero rows of W only (O(K |supp W| D)). */
int vv_gram_apply(const vv_stats *s, vv_backend *be, const double *W, double *GW);

/* Gap Safe rule: 1 when group g (neuron g without groups) is provably zero
 * at the optimum, i.e. s ||M_g||_F + sqrt(2 gap / N) sqrt(L_g) < lambda with
 * L_g = lambda_max(G_gg) (G_kk for one row; ||Phi_g||_2 = sqrt(L_g)).  This
 * form computes L_g (an eigenvalue problem for a group of several rows; 0,
 * not screened, when that fails); solvers pass their vv_group_lmax values
 * to vv_gap_safe_screened_lg. */
int vv_gap_safe_screened(const vv_stats *s, const vv_eval *e, double lambda, double mnorm_g,
                         int64_t g);
int vv_gap_safe_screened_lg(const vv_stats *s, const vv_eval *e, double lambda, double mnorm_g,
                            double L_g);

/* ---- Solvers --------------------------------------------------------------- */

/* The solver auto picks: fista from this many outputs D on, bcd below. */
#define VV_AUTO_FISTA_D 64

typedef enum {
    VV_SOLVER_AUTO = 0,
    VV_SOLVER_FISTA,
    VV_SOLVER_BCD,
    VV_SOLVER_ADAM_PROX,
} vv_solver;

typedef enum {
    VV_STOP_NONE = 0,
    VV_STOP_CONVERGED, /* rel_gap <= tol */
    VV_STOP_MAX_ITER,
    VV_STOP_MAX_SECONDS,
    VV_STOP_USER, /* the external stop flag was set */
} vv_stop_reason;

const char *vv_solver_name(vv_solver s);
/* Returns -1 for an unknown name. */
int vv_solver_from_name(const char *name);
const char *vv_stop_reason_name(vv_stop_reason r);

/* One metrics report (DESIGN.md section 3 keys). */
typedef struct vv_metrics {
    int64_t step; /* increases within a solve (and along a path) */
    double time;  /* seconds since the solve began */
    double lambda;
    vv_eval e;
} vv_metrics;

/* Called with each report; a non-zero return stops the solve (as user). */
typedef int (*vv_metric_fn)(void *ctx, const vv_metrics *m);

typedef enum { VV_INIT_ZEROS = 0, VV_INIT_RANDOM, VV_INIT_GIVEN } vv_init;

/* Auto reporting: at most one metrics report per this many seconds, so that
 * reporting never dominates cheap iterations. */
#define VV_REPORT_GAP 0.002

typedef struct vv_lasso_opts {
    vv_solver solver;
    double lambda;          /* canonical lambda (> 0) */
    double tol;             /* stop when rel_gap <= tol; default 1e-6 */
    int64_t max_iter;       /* epochs / iterations; 0: 100000 */
    double max_seconds;     /* 0: unlimited */
    double deadline;        /* absolute vv_now() limit, 0: none (set by the caller for paths) */
    const atomic_int *stop; /* external stop flag, polled every iteration; may be NULL */
    int64_t metrics_every;  /* report every this many iterations; 0: auto, i.e. every
                             * iteration but at most one per VV_REPORT_GAP seconds (the
                             * first, outer-loop and last reports are always made) */
    int64_t step0;          /* step number of the first report */
    vv_metric_fn on_metric;
    void *ctx;
    vv_backend *be; /* NULL: CPU */
    int resident;   /* fista: keep G, Bt and the iterates in be's memory and do
                     * every K x D operation through be's table (the device
                     * solver); implied when be is not the CPU backend.  The
                     * resident solver needs groups of one size (it views W
                     * as ngroups x (size D)); with groups of several sizes
                     * fista runs on the host instead */
    /* bcd */
    int no_screening; /* disable Gap Safe screening (tests) */
    /* adam_prox: Adam with learning rate mu on the MSE, then group
     * soft-threshold with threshold mu * lambda_paper (lambda_paper =
     * 2 lambda / D); the paper's betas and eps. */
    double mu;
} vv_lasso_opts;

typedef struct vv_lasso_result {
    vv_stop_reason stop_reason;
    int64_t iterations;
    double seconds;
    double lambda;
    vv_eval e;
    vv_solver solver; /* the solver that ran (never VV_SOLVER_AUTO) */
} vv_lasso_result;

/* Fills opts with the defaults (auto solver, tol 1e-6, ...). */
void vv_lasso_opts_default(vv_lasso_opts *o);

/* Solves from the warm start W (K x D, in/out; zeros for a cold start),
 * with the penalty lambda sum_g ||W_g||_F over s's groups (one row a group
 * without them).  On return W holds the last iterate, which the certificate
 * in res grades.  Fails only on VV_ENOMEM, a backend error or invalid
 * options or groups (VV_EINVAL); reaching max_iter or the time limit is a
 * normal return. */
int vv_lasso_solve(const vv_stats *s, const vv_lasso_opts *o, double *W, vv_lasso_result *res);

/* Least squares on the support of W: S = every row of the active groups
 * (||W_g||_F > VV_ACTIVE_TOL; the rows k with ||w_k|| > VV_ACTIVE_TOL
 * without groups): W_S = G_SS^{-1} Bt_S by Cholesky, zero elsewhere; when G_SS is singular
 * the smallest ridge among 1e-12 .. 1e-4 of its mean diagonal that makes it
 * factorable is added.  Writes the refitted weights to Wr (K x D); fails
 * with VV_ENUMERIC when no ridge helps. */
int vv_lasso_refit(const vv_stats *s, const double *W, double *Wr);

/* The active neurons of W (K x D), row by row whatever the groups
 * (vv_lasso_group_support gives the active groups): writes their indices,
 * ascending, to idx (K entries of room; may be NULL) and returns how many
 * there are. */
int64_t vv_lasso_support(const double *W, int64_t k, int64_t d, int64_t *idx);

/* Fills W with the initialisation: zeros, or PyTorch's nn.Linear default
 * U(-1/sqrt K, 1/sqrt K) drawn from a seeded generator. */
void vv_lasso_init(vv_init how, uint64_t seed, int64_t k, int64_t d, double *W);

/* ---- Deterministic random numbers (synthetic problems, init) ------------- */

typedef struct vv_rng {
    uint64_t s[4];
} vv_rng;

void vv_rng_seed(vv_rng *r, uint64_t seed);
uint64_t vv_rng_next(vv_rng *r);
double vv_rng_uniform(vv_rng *r); /* [0, 1) */
double vv_rng_normal(vv_rng *r);  /* N(0, 1) */

/* ---- Synthetic problems (synth.c) ----------------------------------------- */

/* Post-ReLU features of a random 2-layer ReLU net on correlated Gaussian
 * inputs (AR(1) correlation rho = 0.8 across 64 input dimensions, hidden
 * width 256), and outputs Psi = Phi V0^T + b0 + 0.1 noise for a random dense
 * V0: a VGG/AlexNet-like last-layer problem.  Rows are generated on demand
 * and are a pure function of (seed, row), so any chunking gives the same
 * matrix.  Creates the two sources; psi must be read for the same rows
 * right after phi (as vv_stats_compute does). */
int vv_synth_open(int64_t n, int64_t k, int64_t d, uint64_t seed, vv_rows **phi, vv_rows **psi);

#endif
