/* shallow.c - experiment 1 of the paper: shallow multi-output ReLU students
 * trained by full-batch SGD with the VV prox, weight decay or nothing
 * (contract in vv/shallow.h; data and metrics are in shallow_data.c, the
 * figure in shallow_svg.c).
 *
 * The training state is float32 in a layout that puts the hidden units
 * last and contiguous, padded to a multiple of 16 (one AVX-512 vector of
 * floats): W1 as d_in rows of Wp, b1 as Wp, V as D rows of Wp.  Padded units
 * have zero weights, so they output 0, get zero gradients and stay zero.
 * One SGD step is a loop over the samples; for each sample two vectorised
 * sweeps over the units do the forward pass (with 16-lane partial sums for
 * the outputs, so no reassociation is needed) and the backward pass.  The
 * common shapes (d_in, D) = (2, 2), (2, 1), (1, 1) get their own inlined
 * copies with constant inner trip counts; each step loop is compiled for
 * AVX-512, AVX2+FMA and baseline x86-64, chosen at load time.
 */
#include "shallow_internal.h"

#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wpsabi" /* vf helpers are always inlined */
/* No fused multiply-add contraction: every clone (AVX-512, AVX2, SSE2) then
 * rounds exactly alike and a seed gives the same run on every x86-64 CPU. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define LANES 16
#define POLL_EVERY 4096

/* ---- The float32 network ----------------------------------------------------- */

typedef struct net {
    int n, di, dd, w, wp;   /* samples, inputs, outputs, units, padded units */
    float den;              /* the loss is sum of squares / den: n * (all outputs) */
    float *x, *y;           /* n x di, n x dd */
    float *pw, *pb, *pv;    /* di x wp, wp, dd x wp */
    float *gw, *gb, *gv;    /* gradients, same shapes */
    float *h;               /* wp: activations of the current sample */
    float *mem;
} net;

static void net_free(net *t)
{
    if (t)
        free(t->mem);
}

/* Allocates t for n samples (x: n x di doubles; y: column col0.. of an
 * n x ystride array, dd columns), w units, zero weights. */
static int net_init(net *t, int n, int di, int dd, int w, const double *x, const double *y,
                    int ystride, int col0)
{
    memset(t, 0, sizeof *t);
    int wp = (w + LANES - 1) / LANES * LANES;
    size_t nx = (size_t)n * di, ny = (size_t)n * dd;
    size_t np = (size_t)(di + 1 + dd) * wp;
    size_t total = nx + ny + 2 * np + wp;
    t->mem = aligned_alloc(64, (total * sizeof(float) + 63) / 64 * 64);
    if (!t->mem)
        return vv_fail(VV_ENOMEM, "shallow: out of memory for %zu floats", total);
    memset(t->mem, 0, total * sizeof(float));
    t->n = n;
    t->di = di;
    t->dd = dd;
    t->den = (float)n * (float)dd;
    t->w = w;
    t->wp = wp;
    /* Parameter blocks first: each starts on a 64-byte boundary (wp is a
     * multiple of 16 floats). */
    float *p = t->mem;
    t->pw = p, p += (size_t)di * wp;
    t->pb = p, p += wp;
    t->pv = p, p += (size_t)dd * wp;
    t->gw = p, p += (size_t)di * wp;
    t->gb = p, p += wp;
    t->gv = p, p += (size_t)dd * wp;
    t->h = p, p += wp;
    t->x = p, p += nx;
    t->y = p;
    for (size_t i = 0; i < nx; i++)
        t->x[i] = (float)x[i];
    for (int s = 0; s < n; s++)
        for (int j = 0; j < dd; j++)
            t->y[(size_t)s * dd + j] = (float)y[(size_t)s * ystride + col0 + j];
    return 0;
}

/* Torch layout (w1: w x di, b1: w, v: dd x w, doubles) <-> t. */
static void net_set(net *t, const double *w1, const double *b1, const double *v)
{
    int wp = t->wp;
    for (int k = 0; k < t->w; k++) {
        for (int i = 0; i < t->di; i++)
            t->pw[(size_t)i * wp + k] = (float)w1[(size_t)k * t->di + i];
        t->pb[k] = (float)b1[k];
        for (int j = 0; j < t->dd; j++)
            t->pv[(size_t)j * wp + k] = (float)v[(size_t)j * t->w + k];
    }
}

/* Writes t's weights into rows k0.. of w1/b1 and (rows j0.., columns k0..)
 * of v, where v has vw columns. */
static void net_get(const net *t, double *w1, double *b1, double *v, int vw, int k0, int j0)
{
    int wp = t->wp;
    for (int k = 0; k < t->w; k++) {
        for (int i = 0; i < t->di; i++)
            w1[(size_t)(k0 + k) * t->di + i] = t->pw[(size_t)i * wp + k];
        b1[k0 + k] = t->pb[k];
        for (int j = 0; j < t->dd; j++)
            v[(size_t)(j0 + j) * vw + k0 + k] = t->pv[(size_t)j * wp + k];
    }
}

static double net_mse_f64(const net *t)
{
    double sse = 0;
    int wp = t->wp;
    for (int s = 0; s < t->n; s++) {
        const float *xs = t->x + (size_t)s * t->di;
        double o[VV_SHALLOW_MAX_DIM] = {0};
        for (int k = 0; k < t->w; k++) {
            double z = t->pb[k];
            for (int i = 0; i < t->di; i++)
                z += (double)t->pw[(size_t)i * wp + k] * xs[i];
            if (z > 0)
                for (int j = 0; j < t->dd; j++)
                    o[j] += (double)t->pv[(size_t)j * wp + k] * z;
        }
        for (int j = 0; j < t->dd; j++) {
            double r = o[j] - t->y[(size_t)s * t->dd + j];
            sse += r * r;
        }
    }
    return sse / ((double)t->n * t->dd);
}

static int net_active(const net *t)
{
    int c = 0;
    for (int k = 0; k < t->w; k++) {
        double a = 0;
        for (int j = 0; j < t->dd; j++)
            a += (double)t->pv[(size_t)j * t->wp + k] * t->pv[(size_t)j * t->wp + k];
        c += sqrt(a) > VV_SHALLOW_ACTIVE_TOL;
    }
    return c;
}

/* ---- The kernels ------------------------------------------------------------- */


/* GCC/Clang vector extensions: one vf is 16 floats (one AVX-512 register,
 * two AVX2 or four SSE registers in the other clones). */
typedef float vf __attribute__((vector_size(64), aligned(64)));
typedef int vi __attribute__((vector_size(64), aligned(64)));

/* x where h > 0, else 0 (a macro: vf arguments would warn under -Wpsabi). */
#define relu_mask(x, h) ((vf)((vi)(x) & ((h) > 0)))

static inline __attribute__((always_inline)) float hsum(const vf *a)
{
    float s = 0;
    for (int l = 0; l < LANES; l++)
        s += (*a)[l];
    return s;
}

/* Gradient of the MSE (mean over n*dd) into gw, gb, gv; returns the float32
 * MSE.  di and dd are compile-time constants at the specialised call sites,
 * so the loops over them unroll and the activations stay in registers. */
static inline __attribute__((always_inline)) float kern_grad(net *restrict t, const int di,
                                                            const int dd)
{
    const int nb = t->wp / LANES, n = t->n;
    const vf *restrict W = (const vf *)t->pw, *restrict B = (const vf *)t->pb;
    const vf *restrict V = (const vf *)t->pv;
    vf *restrict GW = (vf *)t->gw, *restrict GB = (vf *)t->gb, *restrict GV = (vf *)t->gv;
    vf *restrict H = (vf *)t->h;
    const float scale = 2.0f / t->den;
    const vf zero = {0};
    float sse = 0;
    for (int b = 0; b < (di + 1 + dd) * nb; b++) /* GW, GB, GV are adjacent */
        GW[b] = zero;
    for (int s = 0; s < n; s++) {
        const float *xs = t->x + (size_t)s * di;
        float r[VV_SHALLOW_MAX_DIM];
        vf acc[VV_SHALLOW_MAX_DIM];
        for (int j = 0; j < dd; j++)
            acc[j] = zero;
        for (int b = 0; b < nb; b++) {
            vf z = B[b];
            for (int i = 0; i < di; i++)
                z += xs[i] * W[i * nb + b];
            vf h = relu_mask(z, z);
            H[b] = h;
            for (int j = 0; j < dd; j++)
                acc[j] += V[j * nb + b] * h;
        }
        for (int j = 0; j < dd; j++) {
            float e = hsum(&acc[j]) - t->y[(size_t)s * dd + j];
            sse += e * e;
            r[j] = e * scale;
        }
        for (int b = 0; b < nb; b++) {
            vf h = H[b], d = zero;
            for (int j = 0; j < dd; j++) {
                GV[j * nb + b] += r[j] * h;
                d += V[j * nb + b] * r[j];
            }
            d = relu_mask(d, h);
            GB[b] += d;
            for (int i = 0; i < di; i++)
                GW[i * nb + b] += xs[i] * d;
        }
    }
    return sse / t->den;
}

/* param -= lr * (grad + wd * param) over all parameters. */
static inline __attribute__((always_inline)) void kern_update(net *restrict t, float lr, float wd)
{
    size_t m = (size_t)(t->di + 1 + t->dd) * t->wp; /* pw, pb, pv adjacent; gw, gb, gv too */
    float *restrict p = t->pw;
    const float *restrict g = t->gw;
    if (wd != 0) {
        for (size_t i = 0; i < m; i++)
            p[i] -= lr * (g[i] + wd * p[i]);
    } else {
        for (size_t i = 0; i < m; i++)
            p[i] -= lr * g[i];
    }
}

/* Group soft-threshold of the columns of V with threshold tau, then unit
 * (w_k, b_k); padded units are left at zero. */
static inline __attribute__((always_inline)) void kern_prox(net *restrict t, const int di,
                                                           const int dd, float tau)
{
    const int wp = t->wp, w = t->w;
    float *restrict pw = t->pw, *restrict pb = t->pb, *restrict pv = t->pv;
    for (int k = 0; k < w; k++) {
        float a = 0;
        for (int j = 0; j < dd; j++)
            a += pv[(size_t)j * wp + k] * pv[(size_t)j * wp + k];
        float nv = sqrtf(a);
        nv = nv > 1e-8f ? nv : 1e-8f;
        float c = 1.0f - tau / nv;
        c = c > 0 ? c : 0;
        for (int j = 0; j < dd; j++)
            pv[(size_t)j * wp + k] *= c;
        float b = pb[k] * pb[k];
        for (int i = 0; i < di; i++)
            b += pw[(size_t)i * wp + k] * pw[(size_t)i * wp + k];
        float nw = sqrtf(b);
        nw = nw > 0 ? nw : 1.0f;
        for (int i = 0; i < di; i++)
            pw[(size_t)i * wp + k] /= nw;
        pb[k] /= nw;
    }
}

typedef struct step_args {
    float lr, wd, tau; /* wd: weight-decay coefficient or 0; tau < 0: no prox */
    int64_t steps;
    int *active_last; /* when non-NULL: active count of the last step, before its prox */
} step_args;

static inline __attribute__((always_inline)) float run_steps_body(net *t, const step_args *a,
                                                                 const int di, const int dd)
{
    float mse = 0;
    for (int64_t s = 0; s < a->steps; s++) {
        mse = kern_grad(t, di, dd);
        kern_update(t, a->lr, a->wd);
        if (a->active_last && s == a->steps - 1)
            *a->active_last = net_active(t);
        if (a->tau >= 0)
            kern_prox(t, di, dd, a->tau);
    }
    return mse;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) &&                   \
    !defined(VV_SHALLOW_NO_CLONES)
#define VV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VV_CLONES
#endif

/* Runs a->steps SGD steps on t; returns the float32 MSE of the last forward
 * pass (0 when no step ran). */
VV_CLONES static float run_steps(net *t, const step_args *a)
{
    if (t->di == 2 && t->dd == 2)
        return run_steps_body(t, a, 2, 2);
    if (t->di == 2 && t->dd == 1)
        return run_steps_body(t, a, 2, 1);
    if (t->di == 1 && t->dd == 1)
        return run_steps_body(t, a, 1, 1);
    return run_steps_body(t, a, t->di, t->dd);
}

static float grad_once(net *t)
{
    return kern_grad(t, t->di, t->dd);
}

static void prox_once(net *t, float tau)
{
    kern_prox(t, t->di, t->dd, tau);
}


/* ---- Exposed kernels ---------------------------------------------------------- */

static int check_width(int width)
{
    if (width < 1 || width > VV_SHALLOW_MAX_WIDTH)
        return vv_fail(VV_EINVAL, "width = %d: must lie in [1, %d]", width, VV_SHALLOW_MAX_WIDTH);
    return 0;
}

int vv_shallow_grad(const vv_shallow_data *data, int width, const double *w1, const double *b1,
                    const double *v, double *g_w1, double *g_b1, double *g_v, double *mse)
{
    int rc = vv_shallow_check_data(data);
    if (rc < 0)
        return rc;
    if ((rc = check_width(width)) < 0)
        return rc;
    if (!w1 || !b1 || !v || !g_w1 || !g_b1 || !g_v)
        return vv_fail(VV_EINVAL, "vv_shallow_grad: NULL array");
    net t;
    if ((rc = net_init(&t, data->n, data->d_in, data->d_out, width, data->x, data->y, data->d_out,
                       0)) < 0)
        return rc;
    net_set(&t, w1, b1, v);
    float m = grad_once(&t);
    for (int k = 0; k < width; k++) {
        for (int i = 0; i < t.di; i++)
            g_w1[(size_t)k * t.di + i] = t.gw[(size_t)i * t.wp + k];
        g_b1[k] = t.gb[k];
        for (int j = 0; j < t.dd; j++)
            g_v[(size_t)j * width + k] = t.gv[(size_t)j * t.wp + k];
    }
    if (mse)
        *mse = m;
    net_free(&t);
    return 0;
}

int vv_shallow_prox(int width, int d_in, int d_out, double tau, double *w1, double *b1, double *v)
{
    int rc = check_width(width);
    if (rc < 0)
        return rc;
    if (d_in < 1 || d_in > VV_SHALLOW_MAX_DIM || d_out < 1 || d_out > VV_SHALLOW_MAX_DIM)
        return vv_fail(VV_EINVAL, "vv_shallow_prox: d_in = %d, d_out = %d outside [1, %d]", d_in,
                       d_out, VV_SHALLOW_MAX_DIM);
    if (!(tau >= 0) || !isfinite(tau))
        return vv_fail(VV_EINVAL, "vv_shallow_prox: tau = %g must be finite and >= 0", tau);
    if (!w1 || !b1 || !v)
        return vv_fail(VV_EINVAL, "vv_shallow_prox: NULL array");
    double zeros[VV_SHALLOW_MAX_DIM] = {0};
    net t;
    if ((rc = net_init(&t, 1, d_in, d_out, width, zeros, zeros, 0, 0)) < 0)
        return rc;
    net_set(&t, w1, b1, v);
    prox_once(&t, (float)tau);
    net_get(&t, w1, b1, v, width, 0, 0);
    net_free(&t);
    return 0;
}

/* ---- Training ------------------------------------------------------------------ */

void vv_shallow_opts_default(vv_shallow_opts *o)
{
    memset(o, 0, sizeof *o);
    o->width = 100;
    o->mode = VV_SHALLOW_PROX_VV;
    o->lr = 0.2;
    o->reg = 5e-5;
    o->steps = 1000000;
    o->seed = 49;
    o->log_every = 10000;
}

static int check_opts(const vv_shallow_opts *o)
{
    int rc = check_width(o->width);
    if (rc < 0)
        return rc;
    if (o->mode < VV_SHALLOW_PROX_VV || o->mode > VV_SHALLOW_NONE)
        return vv_fail(VV_EINVAL, "mode = %d: not a vv_shallow_mode", o->mode);
    if (o->per_output != 0 && o->per_output != 1)
        return vv_fail(VV_EINVAL, "per_output = %d: must be 0 or 1", o->per_output);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return vv_fail(VV_EINVAL, "lr = %g: must be finite and > 0", o->lr);
    if (!(o->reg >= 0) || !isfinite(o->reg))
        return vv_fail(VV_EINVAL, "reg = %g: must be finite and >= 0", o->reg);
    if (o->steps < 0)
        return vv_fail(VV_EINVAL, "steps = %lld: must be >= 0", (long long)o->steps);
    if (o->log_every < 0)
        return vv_fail(VV_EINVAL, "log_every = %lld: must be >= 0", (long long)o->log_every);
    if (!(o->max_seconds >= 0) || isnan(o->max_seconds))
        return vv_fail(VV_EINVAL, "max_seconds = %g: must be >= 0", o->max_seconds);
    if (o->init_w1 || o->init_b1 || o->init_v) {
        if (!o->init_w1 || !o->init_b1 || !o->init_v)
            return vv_fail(VV_EINVAL, "init_w1, init_b1, init_v: give all three or none");
        if (o->per_output)
            return vv_fail(VV_EINVAL, "init weights: not with per_output");
    }
    return 0;
}

typedef struct trainer {
    net nets[VV_SHALLOW_MAX_DIM];
    int count; /* 1, or d_out with per_output */
    step_args args;
} trainer;

static void trainer_free(trainer *tr)
{
    for (int i = 0; i < tr->count; i++)
        net_free(&tr->nets[i]);
}

/* Metrics of the combined network: mse (mean over n*D), vv and group norms. */
static void trainer_norms(const trainer *tr, vv_shallow_metrics *m)
{
    double mse = 0, vv = 0, gn = 0;
    for (int c = 0; c < tr->count; c++) {
        const net *t = &tr->nets[c];
        mse += net_mse_f64(t) * t->dd;
        for (int k = 0; k < t->w; k++) {
            double a = (double)t->pb[k] * t->pb[k], b = 0;
            for (int i = 0; i < t->di; i++)
                a += (double)t->pw[(size_t)i * t->wp + k] * t->pw[(size_t)i * t->wp + k];
            for (int j = 0; j < t->dd; j++)
                b += (double)t->pv[(size_t)j * t->wp + k] * t->pv[(size_t)j * t->wp + k];
            vv += sqrt(a) * sqrt(b);
            gn += sqrt(b);
        }
    }
    int dtot = 0;
    for (int c = 0; c < tr->count; c++)
        dtot += tr->nets[c].dd;
    m->mse = mse / dtot;
    m->vv_norm = vv;
    m->group_norm = gn;
}

/* Runs `steps` steps on every net; returns 0, or VV_ENUMERIC on a
 * non-finite loss.  With active != NULL, stores the active count of the
 * last step before its prox (summed over the nets). */
static int trainer_steps(trainer *tr, int64_t steps, int *active)
{
    int total = 0;
    for (int c = 0; c < tr->count; c++) {
        int a = 0;
        step_args sa = tr->args;
        sa.steps = steps;
        sa.active_last = active ? &a : NULL;
        float mse = run_steps(&tr->nets[c], &sa);
        if (!isfinite(mse))
            return vv_fail(VV_ENUMERIC, "shallow: the loss became non-finite (lr %g too large?)",
                           (double)tr->args.lr);
        total += a;
    }
    if (active)
        *active = total;
    return 0;
}

int vv_shallow_train(const vv_shallow_data *data, const vv_shallow_opts *opts, vv_shallow_cb cb,
                     void *user, vv_shallow_result *res)
{
    if (!res)
        return vv_fail(VV_EINVAL, "vv_shallow_train: NULL res");
    memset(res, 0, sizeof *res);
    int rc = vv_shallow_check_data(data);
    if (rc < 0)
        return rc;
    vv_shallow_opts o;
    if (opts)
        o = *opts;
    else
        vv_shallow_opts_default(&o);
    if ((rc = check_opts(&o)) < 0)
        return rc;
    if ((int64_t)o.width * (o.per_output ? data->d_out : 1) > VV_SHALLOW_MAX_WIDTH * 16)
        return vv_fail(VV_EINVAL, "width %d x %d outputs: too many neurons", o.width, data->d_out);

    int n = data->n, di = data->d_in, dd = data->d_out, w = o.width;
    trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return vv_fail(VV_ENOMEM, "vv_shallow_train: out of memory");
    tr->args.lr = (float)o.lr;
    tr->args.wd = o.mode == VV_SHALLOW_WEIGHT_DECAY ? (float)o.reg : 0.0f;
    tr->args.tau = o.mode == VV_SHALLOW_PROX_VV ? (float)(o.lr * o.reg) : -1.0f;
    int count = o.per_output ? dd : 1;
    for (int c = 0; c < count; c++) {
        int ndd = o.per_output ? 1 : dd;
        if ((rc = net_init(&tr->nets[c], n, di, ndd, w, data->x, data->y, dd, c)) < 0) {
            trainer_free(tr);
            free(tr);
            return rc;
        }
        tr->nets[c].den = (float)n * (float)dd; /* each net's share of the joint MSE */
        tr->count = c + 1;
    }
    if (o.init_w1) {
        size_t m[3] = {(size_t)w * di, (size_t)w, (size_t)dd * w};
        const double *a3[3] = {o.init_w1, o.init_b1, o.init_v};
        for (int q = 0; q < 3; q++)
            for (size_t i = 0; i < m[q]; i++)
                if (!isfinite(a3[q][i])) {
                    trainer_free(tr);
                    free(tr);
                    return vv_fail(VV_ENONFINITE, "%s[%zu] is not finite",
                                   q == 0 ? "init_w1" : q == 1 ? "init_b1" : "init_v", i);
                }
        net_set(&tr->nets[0], o.init_w1, o.init_b1, o.init_v);
    }
    /* Default-like initialisation, one rng stream for all nets in order. */
    vv_rng r;
    vv_rng_seed(&r, o.seed);
    double a = 1 / sqrt((double)di), bv = 1 / sqrt((double)w);
    for (int c = 0; c < (o.init_w1 ? 0 : count); c++) {
        net *t = &tr->nets[c];
        for (int k = 0; k < w; k++)
            for (int i = 0; i < di; i++)
                t->pw[(size_t)i * t->wp + k] = (float)(a * (2 * vv_rng_uniform(&r) - 1));
        for (int k = 0; k < w; k++)
            t->pb[k] = (float)(a * (2 * vv_rng_uniform(&r) - 1));
        for (int j = 0; j < t->dd; j++)
            for (int k = 0; k < w; k++)
                t->pv[(size_t)j * t->wp + k] = (float)(bv * (2 * vv_rng_uniform(&r) - 1));
    }

    double t0 = vv_now();
    int64_t s = 0;
    int reason = VV_SHALLOW_DONE;
    while (s < o.steps) {
        if (s % POLL_EVERY == 0) {
            if (o.stop && atomic_load_explicit(o.stop, memory_order_relaxed)) {
                reason = VV_SHALLOW_USER;
                break;
            }
            if (o.max_seconds > 0 && vv_now() - t0 >= o.max_seconds) {
                reason = VV_SHALLOW_MAX_SECONDS;
                break;
            }
        }
        if (o.log_every > 0 && s % o.log_every == 0) {
            vv_shallow_metrics m = {.step = s};
            trainer_norms(tr, &m); /* mse before the step */
            double mse = m.mse;
            if ((rc = trainer_steps(tr, 1, &m.active)) < 0)
                goto fail;
            trainer_norms(tr, &m);
            m.mse = mse;
            m.seconds = vv_now() - t0;
            s++;
            if (cb && cb(&m, user)) {
                reason = VV_SHALLOW_USER;
                break;
            }
            continue;
        }
        int64_t end = (s / POLL_EVERY + 1) * POLL_EVERY;
        if (o.log_every > 0) {
            int64_t nl = (s / o.log_every + 1) * o.log_every;
            end = nl < end ? nl : end;
        }
        end = end < o.steps ? end : o.steps;
        if ((rc = trainer_steps(tr, end - s, NULL)) < 0)
            goto fail;
        s = end;
    }
    double secs = vv_now() - t0;

    int hw = w * count;
    res->width = hw;
    res->d_in = di;
    res->d_out = dd;
    res->w1 = calloc((size_t)hw * di, sizeof(double));
    res->b1 = calloc((size_t)hw, sizeof(double));
    res->v = calloc((size_t)dd * hw, sizeof(double));
    res->used = calloc((size_t)dd, sizeof(int));
    if (!res->w1 || !res->b1 || !res->v || !res->used) {
        rc = vv_fail(VV_ENOMEM, "vv_shallow_train: out of memory for the result");
        goto fail;
    }
    for (int c = 0; c < count; c++)
        net_get(&tr->nets[c], res->w1, res->b1, res->v, hw, c * w, o.per_output ? c : 0);
    res->steps = s;
    res->stop_reason = reason;
    res->seconds = secs;
    if ((rc = vv_shallow_result_measure(res, data)) < 0)
        goto fail;
    if (!isfinite(res->mse)) {
        rc = vv_fail(VV_ENUMERIC, "shallow: the final loss is not finite (lr %g too large?)", o.lr);
        goto fail;
    }
    trainer_free(tr);
    free(tr);
    if (cb) {
        vv_shallow_metrics m = {.step = s,
                                .mse = res->mse,
                                .active = res->active,
                                .vv_norm = res->vv_norm,
                                .group_norm = res->group_norm,
                                .seconds = secs,
                                .final = 1};
        cb(&m, user);
    }
    return 0;

fail:
    trainer_free(tr);
    free(tr);
    vv_shallow_result_free(res);
    return rc;
}
