/* vv/shallow.h - shallow multi-output ReLU networks: the paper's experiment 1
 * ("neuron sharing", reference/paper.md section 2).
 *
 * A teacher network Linear(d_in -> h, with bias) -> ReLU -> Linear(h -> D,
 * no bias) labels N Gaussian inputs; a student of the same architecture and
 * width W is trained on them full-batch by plain SGD on the MSE (mean over
 * the N*D entries, torch.nn.MSELoss()), in one of three modes:
 *
 * - VV_SHALLOW_PROX_VV (the paper's "with weight decay" run): after every
 *   SGD step each output column v_k in R^D is group soft-thresholded with
 *   threshold lr*reg (v_k <- v_k * max(0, 1 - lr*reg / max(||v_k||, 1e-8))),
 *   then each neuron's input weights and bias are renormalised jointly,
 *   (w_k, b_k) <- (w_k, b_k) / ||(w_k, b_k)||_2, with v_k not rescaled.
 *   This is proximal gradient on MSE + reg * sum_k ||v_k||_2 subject to
 *   ||(w_k, b_k)|| = 1, the VV-norm form of weight decay.
 * - VV_SHALLOW_WEIGHT_DECAY: plain SGD whose gradient gets + reg * param for
 *   all three tensors (W1, b1, V), the coupled form torch's SGD uses for
 *   weight_decay=reg.  This is the gradient of MSE + reg/2 (||W1||_F^2 +
 *   ||b1||^2 + ||V||_F^2), whose minimisers are those of MSE + reg * (VV
 *   norm) (paper.md sections 1.4 and 2.2 [derived]), so reg means the same
 *   thing in both regularised modes.
 * - VV_SHALLOW_NONE: plain SGD.
 *
 * With per_output set, the baseline of the experiment is trained instead:
 * one single-output student of width W per output, same mode and settings,
 * each on its share of the joint MSE (sum over its N residuals / (N*D)), so
 * together they minimise the same objective as the joint student with V
 * restricted to be block diagonal; the result describes them as one network
 * of width D*W (neuron block j feeds output j only), so that no neuron can
 * be shared.
 *
 * Arithmetic: the training state (inputs, targets, weights, gradients) is
 * float32, as in the paper's PyTorch run; the forward/backward pass is a
 * hand-written loop over the hidden units, vectorised (AVX-512 / AVX2 clones
 * chosen at load time).  Every reported metric is recomputed in float64 from
 * the float32 weights.  The paper's setting (N=50, W=100, d_in=2, D=2,
 * 10^6 steps) takes about two seconds on one core.
 *
 * Conventions: X is N x d_in and Y is N x D, row-major (samples are rows);
 * W1 is W x d_in (torch's Linear(d_in, W).weight), b1 has W entries and V is
 * D x W (torch's Linear(W, D, bias=False).weight: column k is v_k).  Every
 * function is reentrant and thread-safe (no global state besides the error
 * detail of vv/err.h); arrays passed in are only read; arrays passed out are
 * owned by the caller or freed by the matching _free, which accepts NULL.
 */
#ifndef VV_SHALLOW_H
#define VV_SHALLOW_H

#include <stdatomic.h>
#include <stdint.h>

/* A neuron k counts as active when ||v_k||_2 > VV_SHALLOW_ACTIVE_TOL, and
 * as used by output j when |v_jk| * ||w_k||_2 > VV_SHALLOW_ACTIVE_TOL (the
 * notebook's rules, paper.md sections 2.2 and 2.3; ||w_k|| excludes the
 * bias). */
#define VV_SHALLOW_ACTIVE_TOL 1e-3

/* Largest accepted sizes: d_in, D and teacher width <= 64, W <= 4096,
 * N <= 100000. */
#define VV_SHALLOW_MAX_DIM 64
#define VV_SHALLOW_MAX_WIDTH 4096
#define VV_SHALLOW_MAX_N 100000

/* ---- Data: the teacher and its samples ----------------------------------- */

typedef struct vv_shallow_data {
    int n, d_in, d_out, teacher_width;
    double *x;         /* n x d_in */
    double *y;         /* n x d_out, y = teacher(x) */
    double *t_w1;      /* teacher_width x d_in */
    double *t_b1;      /* teacher_width */
    double *t_v;       /* d_out x teacher_width */
    double teacher_vv; /* sum_k ||(w_k, b_k)||_2 ||v_k||_2 of the teacher */
} vv_shallow_data;

/* Draws the experiment's data from vv_rng (vv/lasso.h) seeded with seed:
 * first x ~ N(0, I) row by row, then the teacher's W1, b1 (uniform on
 * [-1/sqrt(d_in), 1/sqrt(d_in)]) and V (uniform on [-1/sqrt(h), 1/sqrt(h)]),
 * PyTorch's default initialisation rule (its RNG stream is not reproduced),
 * and y = teacher(x) without noise.  The paper: n 50, d_in 2, h 5, d_out 2.
 * Fills out (owned by the caller, free with vv_shallow_data_free).  Fails
 * with VV_EINVAL (NULL out, sizes < 1 or above the limits) or VV_ENOMEM,
 * leaving out zeroed. */
int vv_shallow_data_make(int n, int d_in, int teacher_width, int d_out, uint64_t seed,
                         vv_shallow_data *out);

/* Wraps caller arrays as data (copies them): x is n x d_in, y n x d_out.
 * There is no teacher (teacher_width 0, teacher_vv NaN).  Fails with
 * VV_EINVAL, VV_ENONFINITE (naming the entry) or VV_ENOMEM. */
int vv_shallow_data_from(int n, int d_in, int d_out, const double *x, const double *y,
                         vv_shallow_data *out);

/* Frees the arrays of d and zeroes it; accepts NULL. */
void vv_shallow_data_free(vv_shallow_data *d);

/* ---- Training ------------------------------------------------------------- */

typedef enum {
    VV_SHALLOW_PROX_VV = 0,
    VV_SHALLOW_WEIGHT_DECAY,
    VV_SHALLOW_NONE,
} vv_shallow_mode;

/* "prox_vv", "weight_decay", "none"; "unknown" otherwise (static). */
const char *vv_shallow_mode_name(int mode);
/* The mode named s (one of the names above), or VV_EINVAL with a detail. */
int vv_shallow_mode_parse(const char *s);

typedef enum {
    VV_SHALLOW_DONE = 0,    /* all steps ran */
    VV_SHALLOW_USER,        /* *stop became non-zero or the callback returned non-zero */
    VV_SHALLOW_MAX_SECONDS, /* max_seconds elapsed */
} vv_shallow_stop;

/* "max_iter", "user", "max_seconds" (the run stop reasons of DESIGN.md
 * section 3); "unknown" otherwise (static). */
const char *vv_shallow_stop_name(int reason);

typedef struct vv_shallow_opts {
    int width;          /* student width W, in [1, VV_SHALLOW_MAX_WIDTH]; paper 100 */
    int mode;           /* a vv_shallow_mode; paper VV_SHALLOW_PROX_VV */
    int per_output;     /* 1: the per-output baseline (see the top) */
    double lr;          /* SGD step, > 0; paper 0.2 */
    double reg;         /* >= 0; paper 5e-5 (ignored by VV_SHALLOW_NONE) */
    int64_t steps;      /* SGD iterations, >= 0; paper 1e6 */
    uint64_t seed;      /* student initialisation; paper 49 */
    int64_t log_every;  /* callback period in steps; 0: only the final call */
    double max_seconds; /* wall-time limit; 0: none; must be >= 0 */
    /* Polled every 4096 steps (and before the first); when it becomes
     * non-zero the run ends with stop_reason VV_SHALLOW_USER and its
     * current weights.  May be NULL. */
    const atomic_int *stop;
    /* Initial weights in the layout of the top (width x d_in, width,
     * d_out x width), e.g. a PyTorch student's; when all three are
     * non-NULL they replace the seeded draw (per_output must then be 0 and
     * the values finite).  Only read. */
    const double *init_w1, *init_b1, *init_v;
} vv_shallow_opts;

/* Fills o with the paper's settings: width 100, prox_vv, lr 0.2, reg 5e-5,
 * 10^6 steps, seed 49, log_every 10000, no time limit, no stop flag, no
 * initial weights. */
void vv_shallow_opts_default(vv_shallow_opts *o);

/* One progress report.  At a logged step s (s % log_every == 0, counted
 * from 0) the values follow the notebook: mse is the MSE of the forward
 * pass of step s (weights after s updates), active counts ||v_k|| > 1e-3
 * on V after the SGD update of step s but before its prox, and vv_norm,
 * group_norm are taken after step s.  The final report (final = 1) comes
 * after the last step, with step = steps run, and every value of the final
 * weights (active after the prox). */
typedef struct vv_shallow_metrics {
    int64_t step;
    double mse;        /* mean over N*D entries, float64 */
    int active;        /* #{k : ||v_k|| > 1e-3} */
    double vv_norm;    /* sum_k ||(w_k, b_k)||_2 ||v_k||_2 */
    double group_norm; /* sum_k ||v_k||_2 (the notebook's "PN") */
    double seconds;    /* since the start of training */
    int final;
} vv_shallow_metrics;

/* Called at every logged step and once at the end.  A non-zero return ends
 * the run (stop_reason VV_SHALLOW_USER) after this step. */
typedef int (*vv_shallow_cb)(const vv_shallow_metrics *m, void *user);

typedef struct vv_shallow_result {
    int width; /* neurons in the result: W, or D*W with per_output */
    int d_in, d_out;
    double *w1; /* width x d_in */
    double *b1; /* width */
    double *v;  /* d_out x width */
    int64_t steps;   /* steps run */
    int stop_reason; /* a vv_shallow_stop */
    double mse, vv_norm, group_norm;
    int active;      /* #{k : ||v_k|| > 1e-3} */
    int *used;       /* d_out entries: #{k : |v_jk| ||w_k|| > 1e-3} */
    int shared;      /* neurons used by every output */
    int used_by_one; /* neurons used by exactly one output */
    double seconds;  /* wall time of the training loop */
} vv_shallow_result;

/* Trains the student on data with opts (NULL: the defaults) and fills res
 * (owned by the caller, free with vv_shallow_result_free).  cb may be NULL.
 * A run ended by the stop flag, the callback or max_seconds is a success:
 * res holds the weights at that point and says why in stop_reason.
 * Fails with VV_EINVAL (NULL data or res, bad options: the detail names the
 * field), VV_ENONFINITE (a non-finite initial weight), VV_ENOMEM, or
 * VV_ENUMERIC when the loss stops being finite (checked at least every 4096
 * steps: lr too large); res is then zeroed.
 *
 * Stability: with unit-norm (w_k, b_k) (prox_vv) the largest curvature of
 * the MSE at initialisation is of the order of W/D times the mean squared
 * activation, so lr 0.2 can lie past the stable step for some draws: the
 * loss first rises by orders of magnitude and then either settles (many
 * ReLUs switched off, a larger VV norm to shed; the usual case) or leaves
 * every neuron dead at a finite loss, which is not reported as an error
 * (look at res->mse). */
int vv_shallow_train(const vv_shallow_data *data, const vv_shallow_opts *opts, vv_shallow_cb cb,
                     void *user, vv_shallow_result *res);

/* Frees the arrays of r and zeroes it; accepts NULL. */
void vv_shallow_result_free(vv_shallow_result *r);

/* Fills every metric of r (mse against data, vv_norm, group_norm, active,
 * used, shared, used_by_one) from its weights, in float64; r->used must
 * have room for d_out entries.  Used by vv_shallow_train; exposed to grade
 * weights obtained elsewhere.  Fails with VV_EINVAL (NULL or mismatched
 * sizes). */
int vv_shallow_result_measure(vv_shallow_result *r, const vv_shallow_data *data);

/* ---- The kernels, exposed for tests --------------------------------------- */

/* MSE (mean over n*d_out entries) of the network (w1, b1, v) of the given
 * width on data, in float64. */
double vv_shallow_mse(const vv_shallow_data *data, int width, const double *w1, const double *b1,
                      const double *v);

/* Runs the float32 training kernel's forward/backward pass once on the
 * weights (rounded to float32) and writes the gradient of the MSE with
 * respect to w1 (width x d_in), b1 (width) and v (d_out x width) into g_w1,
 * g_b1, g_v (float64 copies of the float32 values), and the kernel's
 * float32 MSE to *mse (may be NULL).  ReLU'(0) is taken as 0, as torch
 * does.  Fails with VV_EINVAL or VV_ENOMEM. */
int vv_shallow_grad(const vv_shallow_data *data, int width, const double *w1, const double *b1,
                    const double *v, double *g_w1, double *g_b1, double *g_v, double *mse);

/* Applies the prox_vv step of the training kernel (float32) in place:
 * group soft-threshold of every column of v (d_out x width) with threshold
 * tau (denominator clipped at 1e-8), then (w1[k,:], b1[k]) scaled to unit
 * norm (left alone when it is exactly zero).  The arrays are rounded to
 * float32 and back.  Fails with VV_EINVAL (NULL, sizes, tau < 0) or
 * VV_ENOMEM. */
int vv_shallow_prox(int width, int d_in, int d_out, double tau, double *w1, double *b1, double *v);

/* ---- The figure ----------------------------------------------------------- */

/* Writes a self-contained SVG (no external fonts or images) of r in the
 * paper's style to *svg (NUL-terminated, malloc'd, owned by the caller):
 * one panel per output j titled "f_j"; every neuron k used by output j
 * (|v_jk| ||w_k|| > 1e-3) drawn as a disc at (angle of w_k in [0, 2 pi),
 * b_k / ||w_k||) with area proportional to |v_jk| ||w_k||; y-limits
 * [-3, 3] (points outside are clipped to the frame), x ticks 0, pi/2, pi,
 * 3pi/2, 2pi.  title (may be NULL) goes above the panels.  Requires
 * d_in == 2 (the angle); fails with VV_EINVAL otherwise or on NULL
 * arguments, or VV_ENOMEM. */
int vv_shallow_svg(const vv_shallow_result *r, const char *title, char **svg);

#endif
