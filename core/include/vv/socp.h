/* vv/socp.h - exact multi-task lasso interpolation (the paper's experiment 2).
 *
 * Given Phi (N x K, row-major: samples are rows; the paper's X is Phi^T)
 * and Psi (N x D, row-major), the problem is
 *
 *     minimise  sum_k ||v_k||_2   subject to   Phi V^T = Psi
 *
 * over V (D x K, row-major, v_k = column k, as torch.nn.Linear(K, D) stores
 * its weight), with the dual
 *
 *     maximise  <Psi, Y>   subject to   ||Phi_k^T Y||_2 <= 1 for every k
 *
 * over Y (N x D), Phi_k = column k of Phi.  vv_socp_solve solves the
 * second-order cone program  min sum_k t_k  s.t.  ||v_k|| <= t_k,
 * (Phi (x) I_D) vec(V^T) = vec(Psi)  with a primal-dual interior-point
 * method (Nesterov-Todd scaling, Mehrotra predictor-corrector).
 *
 * The equalities are first reduced to an orthonormal basis of the row space
 * of Phi (Householder QR with column pivoting of Phi^T), so a rank-deficient
 * Phi (the paper's Fig. 4 data) is handled exactly: rank(Phi) is detected,
 * Psi is projected on the column space of Phi, and when Psi has a component
 * outside that space the instance is reported infeasible (no V can satisfy
 * Phi V^T = Psi).  The normal-equations matrix of the reduced problem is
 * (P (x) I_D) + Z^T Z with P = Q^T diag(a) Q (r x r) and one row of Z per
 * neuron, formed with one symmetric rank-K update and factored by Cholesky:
 * O(K (rD)^2 + (rD)^3) per iteration, r = rank(Phi).
 *
 * The same module holds the paper's Fig. 5 brute force (the sparsest
 * optimal solution by enumerating supports) and the instance generators of
 * Figs. 3 and 4.
 *
 * Every function is thread-safe and reentrant (no global state besides the
 * error detail of vv/err.h and OpenBLAS's thread pool); arrays passed in are
 * only read, arrays passed out are written by the function and owned by the
 * caller.  A column counts as active when ||v_k|| > VV_ACTIVE_TOL (1e-7,
 * vv/lasso.h), the paper's rule.  The rule is absolute: at the default tol
 * the columns outside the support come out with norms of about 1e-12 to
 * 1e-10 times ||Psi||_F and the active ones far above, so it separates them
 * for data of the paper's unit scale; for Psi of a very different scale,
 * compare ||v_k|| with max_j ||v_j|| instead.
 */
#ifndef VV_SOCP_H
#define VV_SOCP_H

#include <stdatomic.h>
#include <stdint.h>

/* ---- The interpolation problem ------------------------------------------ */

typedef enum {
    VV_SOCP_OPTIMAL = 0, /* relative gap and residuals below tol */
    VV_SOCP_INFEASIBLE,  /* Psi is not in the column space of Phi */
    VV_SOCP_MAX_ITER,    /* max_iter reached before tol */
    VV_SOCP_NUMERICAL,   /* stalled short of tol: no progress in 5 iterations,
                          * tiny steps or a failed Cholesky factorisation */
} vv_socp_status;

/* "optimal", "infeasible", "max_iter", "numerical"; "unknown" otherwise.
 * The strings are static. */
const char *vv_socp_status_name(int status);

typedef struct vv_socp_opts {
    /* Target for the relative duality gap, the relative primal residual and
     * the dual residual of the interior-point iterates; 0 means 1e-9.  Must
     * lie in [1e-14, 1e-1].  Below about 1e-11 rounding in the normal
     * equations usually stops the method first (status VV_SOCP_NUMERICAL,
     * with the best iterate returned). */
    double tol;
    /* Iteration limit; 0 means 100.  Must be >= 0. */
    int max_iter;
    /* Pivoted-QR rank threshold: a pivot |R_jj| <= rank_tol |R_00| ends the
     * row space of Phi.  0 means 1e-10.  Must lie in [0, 1). */
    double rank_tol;
    /* Psi is consistent (the instance feasible) when its component outside
     * the column space of Phi has Frobenius norm <= feas_tol ||Psi||_F.
     * 0 means 1e-8.  Must lie in [0, 1). */
    double feas_tol;
    /* Polled every iteration; when it becomes non-zero the solve ends with
     * VV_ESTATE.  May be NULL. */
    const atomic_int *stop;
} vv_socp_opts;

/* Fills o with the defaults named above and no stop flag. */
void vv_socp_opts_default(vv_socp_opts *o);

typedef struct vv_socp_result {
    int status;     /* a vv_socp_status */
    int iterations; /* interior-point iterations */
    int64_t rank;   /* detected rank of Phi */
    double primal;  /* sum_k ||v_k|| of the returned V */
    double dual;    /* <Psi, Y> of the returned Y */
    double gap;     /* primal - dual */
    double rel_gap; /* gap / max(primal, tiny) */
    double pres;    /* ||Phi V^T - Psi||_F / ||Psi||_F */
    /* max(0, max_k ||Phi_k^T Y|| - 1) of the interior-point iterate before
     * the returned Y was scaled into the dual feasible set (see below). */
    double dres;
    /* sum_k (||v_k|| - <v_k, Phi_k^T Y>) / primal: every term is >= 0 for a
     * dual feasible Y, and the sum is 0 at the optimum. */
    double complementarity;
    /* ||(I - P_Phi) Psi||_F / ||Psi||_F, the component of Psi no V can fit. */
    double inconsistency;
    int64_t active; /* #{k : ||v_k|| > VV_ACTIVE_TOL} */
    double seconds; /* wall time of the call */
} vv_socp_result;

/* Solves the interpolation problem for phi (n x k, row-major) and psi
 * (n x d, row-major).  Writes V (d x k, row-major: column k is v_k) to v and
 * the dual certificate Y (n x d, row-major) to y; either may be NULL when
 * not wanted.  res is required.
 *
 * The returned Y is always dual feasible (it is scaled by
 * 1 / max(1, max_k ||Phi_k^T Y||)), so res->dual is a true lower bound of
 * the optimum and res->gap bounds the suboptimality of V up to its
 * residual res->pres.  Psi = 0 gives V = 0, Y = 0 with no iteration.
 *
 * Returns 0 when the solve ran, whatever its status:
 * - VV_SOCP_OPTIMAL: rel_gap, pres and dres of the iterates reached tol;
 * - VV_SOCP_INFEASIBLE: Psi has a component R outside the column space of
 *   Phi (inconsistency > feas_tol); V is then zero and Y = R / ||R||_F, so
 *   Phi^T Y = 0 and <Psi, Y> > 0: a ray along which the dual objective
 *   grows without bound, i.e. a certificate of infeasibility; primal, dual
 *   and gap are NaN;
 * - VV_SOCP_MAX_ITER and VV_SOCP_NUMERICAL: V and Y are the best iterate
 *   seen (smallest max(rel_gap, residuals)), with its metrics.
 * Fails with VV_EINVAL (NULL phi, psi or res, a size < 1, bad options),
 * VV_ENONFINITE (NaN or Inf in phi or psi, naming the entry), VV_ETOOLARGE
 * (min(n, k) * d above 8192 equalities: the normal matrix would pass
 * 512 MiB),
 * VV_ENOMEM, or VV_ESTATE when *opts->stop became non-zero.  On failure v,
 * y and res are left unspecified.  opts may be NULL (defaults). */
int vv_socp_solve(int64_t n, int64_t k, int64_t d, const double *phi, const double *psi,
                  const vv_socp_opts *opts, double *v, double *y, vv_socp_result *res);

/* ---- Fig. 5: the sparsest optimal solution by brute force ---------------- */

/* Number of restricted problems the brute force may solve for k columns
 * and n samples: sum_{m=n}^{k} C(k, m) (every support of size n..k),
 * saturating at INT64_MAX; 0 when n > k or a size is < 1. */
int64_t vv_socp_brute_count(int64_t n, int64_t k);

typedef struct vv_socp_brute_opts {
    vv_socp_opts socp; /* for the restricted interior-point solves */
    /* Refuse (VV_EINVAL) when vv_socp_brute_count(n, k) exceeds this; must
     * be >= 1. */
    int64_t budget;
    /* A support S is optimal when its restricted optimum is
     * <= GL* (1 + opt_tol); 0 means 1e-6 (the paper's script). */
    double opt_tol;
    /* 0: stop after the first support size that holds an optimal support
     * (enough for the answer).  1: solve every support of every size, as
     * the paper's script does, so that GL* is the minimum over all of
     * them. */
    int exhaustive;
    const atomic_int *stop; /* polled between subproblems; may be NULL */
} vv_socp_brute_opts;

/* Fills o with opt_tol 1e-6, budget 1e6, not exhaustive, the default socp
 * options and no stop flag. */
void vv_socp_brute_opts_default(vv_socp_brute_opts *o);

typedef struct vv_socp_brute_result {
    double gl_star;          /* the global optimum (minimum over the solved supports) */
    int64_t sparsest;        /* smallest |S| whose restricted optimum is optimal */
    double sparsest_obj;     /* the restricted optimum of that support */
    int64_t sparsest_active; /* columns of that restricted solution with norm > 1e-7 */
    int64_t subproblems;     /* restricted problems solved (incl. the full one) */
    int64_t closed_form;     /* of which |S| = n solved as (Phi_S^{-1} Psi)^T */
    int64_t infeasible;      /* restricted problems with no feasible V */
    int64_t failed;          /* interior-point solves that ended short of tol */
    double seconds;
} vv_socp_brute_result;

/* Finds the sparsest optimal solution of the interpolation problem by
 * enumerating the supports S (all C(k, m) subsets of sizes m = n..k, in
 * increasing size, each size in lexicographic order) and solving the
 * problem restricted to S (columns outside S forced to zero); |S| = n with
 * an invertible Phi_S is solved in closed form, V_S = (Phi_S^{-1} Psi)^T.
 * GL* starts as the optimum of the full problem.  The result: GL*, the
 * smallest |S| whose restricted optimum is within opt_tol of GL* (the
 * histogram-ready count), and that support (the one of smallest optimum
 * among those of that size), written ascending to support (room for k
 * entries; may be NULL).  size_best (room for k + 1 entries; may be NULL)
 * receives, for every m, the smallest restricted optimum of size m, or
 * +Inf for sizes not solved or without a feasible support.
 *
 * Fails with VV_EINVAL when the sizes or options are bad or when
 * vv_socp_brute_count(n, k) is above opts->budget (the detail names the
 * count and the budget), with the errors of vv_socp_solve, or with
 * VV_ESTATE when *opts->stop became non-zero.  An infeasible full problem
 * is reported with VV_ENUMERIC ("Psi is not in the column space of Phi").
 * opts may be NULL (defaults). */
int vv_socp_brute(int64_t n, int64_t k, int64_t d, const double *phi, const double *psi,
                  const vv_socp_brute_opts *opts, int64_t *support, double *size_best,
                  vv_socp_brute_result *res);

/* ---- Instances of the paper (reference/paper.md sections 3.2-3.4) -------- */

/* Fig. 3 / Fig. 5 data: the paper's X = randn(K, N) and Y = randn(D, N),
 * stored as phi = X^T (n x k) and psi = Y^T (n x d), drawn from vv_rng
 * seeded with seed (X row by row, then Y row by row).  Deterministic.
 * Fails with VV_EINVAL on a size < 1 or a NULL buffer. */
int vv_socp_gen_gaussian(int64_t n, int64_t k, int64_t d, uint64_t seed, double *phi, double *psi);

/* Fig. 4 data ("subspace version"): U = randn(K, r), every sample
 * X[:, i] = U b_i with b_i = randn(r), G = randn(r, K), Y = G X; stored as
 * phi = X^T (n x k, rank r) and psi = Y^T (n x r: the output dimension is
 * r, not the paper's nominal D = 10).  Fails with VV_EINVAL on a size < 1,
 * r > min(n, k) or a NULL buffer. */
int vv_socp_gen_lowrank(int64_t n, int64_t k, int64_t r, uint64_t seed, double *phi, double *psi);

#endif
