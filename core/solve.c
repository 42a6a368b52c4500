/* solve.c - solver dispatch, options, progress reporting, refit, init. */
#include "solve_internal.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *solver_names[] = {"auto", "fista", "bcd", "adam_prox"};
static const char *stop_names[] = {"none", "converged", "max_iter", "max_seconds", "user"};

const char *vv_solver_name(vv_solver s)
{
    return (unsigned)s < sizeof solver_names / sizeof *solver_names ? solver_names[s] : "?";
}

int vv_solver_from_name(const char *name)
{
    for (unsigned i = 0; i < sizeof solver_names / sizeof *solver_names; i++)
        if (!strcmp(name, solver_names[i]))
            return (int)i;
    return -1;
}

const char *vv_stop_reason_name(vv_stop_reason r)
{
    return (unsigned)r < sizeof stop_names / sizeof *stop_names ? stop_names[r] : "?";
}

void vv_lasso_opts_default(vv_lasso_opts *o)
{
    memset(o, 0, sizeof *o);
    o->solver = VV_SOLVER_AUTO;
    o->tol = 1e-6;
    o->max_iter = 100000;
    o->metrics_every = 1;
    o->mu = 1e-3;
}

void vv_progress_init(vv_progress *p, const vv_stats *s, const vv_lasso_opts *o)
{
    p->s = s;
    p->o = o;
    p->t0 = vv_now();
    p->deadline = o->deadline;
    if (o->max_seconds > 0 && (p->deadline == 0 || p->t0 + o->max_seconds < p->deadline))
        p->deadline = p->t0 + o->max_seconds;
    p->max_iter = o->max_iter > 0 ? o->max_iter : 100000;
    p->every = o->metrics_every > 0 ? o->metrics_every : 0;
    p->last_report = 0;
    p->tol = o->tol > 0 ? o->tol : 1e-6;
}

vv_stop_reason vv_progress_poll(vv_progress *p, int64_t it)
{
    if (p->o->stop && atomic_load_explicit(p->o->stop, memory_order_relaxed))
        return VV_STOP_USER;
    if (it >= p->max_iter)
        return VV_STOP_MAX_ITER;
    if (p->deadline > 0 && vv_now() >= p->deadline)
        return VV_STOP_MAX_SECONDS;
    return VV_STOP_NONE;
}

vv_stop_reason vv_progress_step(vv_progress *p, int64_t it, const vv_eval *e, int force)
{
    vv_stop_reason r = VV_STOP_NONE;
    if (e->rel_gap <= p->tol)
        r = VV_STOP_CONVERGED;
    else
        r = vv_progress_poll(p, it);
    double now = p->o->on_metric ? vv_now() : 0;
    int due = p->every ? it % p->every == 0 : now - p->last_report >= VV_REPORT_GAP;
    if (p->o->on_metric && (force || r != VV_STOP_NONE || due)) {
        p->last_report = now;
        vv_metrics m = {.step = p->o->step0 + it, .time = now - p->t0, .lambda = p->o->lambda,
                        .e = *e};
        if (p->o->on_metric(p->o->ctx, &m) && r == VV_STOP_NONE)
            r = VV_STOP_USER;
    }
    return r;
}

int vv_lasso_solve(const vv_stats *s, const vv_lasso_opts *o, double *W, vv_lasso_result *res)
{
    memset(res, 0, sizeof *res);
    if (!(o->lambda > 0) || !isfinite(o->lambda))
        return vv_fail(VV_EINVAL, "lambda must be a positive finite number, got %g", o->lambda);
    if (!(o->tol >= 0) || !isfinite(o->tol))
        return vv_fail(VV_EINVAL, "tol must be a non-negative finite number, got %g", o->tol);
    int rc = vv_groups_check(s);
    if (rc < 0)
        return rc;
    res->lambda = o->lambda;
    double t0 = vv_now();
    /* On a device backend FISTA runs resident there; the sequential solvers
     * (bcd, adam_prox) work on host memory, so they get the CPU backend. */
    int device = o->be && o->be != vv_backend_cpu();
    int resident = o->resident || device;
    vv_lasso_opts host = *o;
    if (device)
        host.be = NULL;
    /* The resident solver serves groups of one size through the backend's
     * row operations (the ngroups x (size D) view); groups of several sizes
     * would need a kernel per group, so FISTA runs on the host instead
     * (doc/group-lasso.md). */
    if (resident && vv_groups_size(s) == 0)
        resident = 0;
    switch (o->solver) {
    case VV_SOLVER_FISTA:
        rc = resident ? vv_solve_fista_dev(s, o, W, res) : vv_solve_fista(s, &host, W, res);
        res->solver = VV_SOLVER_FISTA;
        break;
    case VV_SOLVER_ADAM_PROX:
        if (!(o->mu > 0) || !isfinite(o->mu))
            return vv_fail(VV_EINVAL, "mu must be a positive finite number, got %g", o->mu);
        rc = vv_solve_adam(s, &host, W, res);
        res->solver = VV_SOLVER_ADAM_PROX;
        break;
    case VV_SOLVER_AUTO:
        /* Block coordinate descent updates one neuron at a time with
         * matrix-vector work (K D per neuron); FISTA's step is one K x K x D
         * matrix product.  With many outputs the product's speed wins: on the
         * default model's fc2 (K = D = 1024, lambda_ratio 0.002) FISTA took
         * 31 s and BCD 298 s to rel_gap 1e-6, while with D = 10 (its fc3, the
         * VGG-like problem) BCD is as fast or faster. */
        if (s->d < VV_AUTO_FISTA_D) {
            rc = vv_solve_bcd(s, &host, W, res);
            res->solver = VV_SOLVER_BCD;
        } else {
            rc = resident ? vv_solve_fista_dev(s, o, W, res) : vv_solve_fista(s, &host, W, res);
            res->solver = VV_SOLVER_FISTA;
        }
        break;
    case VV_SOLVER_BCD:
        rc = vv_solve_bcd(s, &host, W, res);
        res->solver = VV_SOLVER_BCD;
        break;
    default:
        return vv_fail(VV_EINVAL, "unknown solver %d", (int)o->solver);
    }
    res->seconds = vv_now() - t0;
    res->lambda = o->lambda;
    return rc;
}


int vv_lasso_refit(const vv_stats *s, const double *W, double *Wr)
{
    int64_t k = s->k, d = s->d;
    int64_t ng = vv_groups_count(s);
    int64_t *sup = malloc((size_t)k * sizeof *sup), *gsup = malloc((size_t)ng * sizeof *gsup);
    if (!sup || !gsup) {
        free(sup);
        free(gsup);
        return vv_fail(VV_ENOMEM, "refit: out of memory");
    }
    /* The support: every row of every active group (the active rows without
     * groups); a group's zero rows are refitted with it. */
    int64_t mg = vv_lasso_group_support(s, W, gsup), m = 0;
    for (int64_t a = 0; a < mg; a++)
        for (int64_t i = vv__goff(s, gsup[a]); i < vv__goff(s, gsup[a] + 1); i++)
            sup[m++] = i;
    free(gsup);
    memset(Wr, 0, (size_t)(k * d) * sizeof *Wr);
    if (m == 0) {
        free(sup);
        return 0;
    }
    double *A = malloc((size_t)(m * m) * sizeof *A), *X = malloc((size_t)(m * d) * sizeof *X);
    int rc = 0;
    if (!A || !X) {
        rc = vv_fail(VV_ENOMEM, "refit: out of memory for a %lld-neuron support", (long long)m);
        goto done;
    }
    double tr = 0;
    for (int64_t a = 0; a < m; a++)
        tr += s->G[sup[a] * k + sup[a]];
    /* Plain Cholesky first; if G_SS is singular, ridges of 1e-12 .. 1e-4 of its
     * mean diagonal. */
    for (int attempt = 0; attempt < 6 && tr > 0; attempt++) {
        double ridge = attempt == 0 ? 0 : 1e-12 * pow(100, attempt - 1) * tr / (double)m;
        /* Column-major for LAPACK; A is symmetric so the layout does not matter. */
        for (int64_t a = 0; a < m; a++)
            for (int64_t b = 0; b < m; b++)
                A[a * m + b] = s->G[sup[a] * k + sup[b]] + (a == b ? ridge : 0);
        for (int64_t j = 0; j < d; j++)
            for (int64_t a = 0; a < m; a++)
                X[j * m + a] = s->Bt[sup[a] * d + j];
        if (vv_dpotrf((int)m, A) != 0 || vv_dpotrs((int)m, (int)d, A, X) != 0)
            continue;
        for (int64_t a = 0; a < m; a++)
            for (int64_t j = 0; j < d; j++)
                Wr[sup[a] * d + j] = X[j * m + a];
        goto done;
    }
    rc = vv_fail(VV_ENUMERIC, "refit: the Gram matrix of the %lld kept neurons is singular",
                 (long long)m);
done:
    free(sup);
    free(A);
    free(X);
    return rc;
}

int64_t vv_lasso_support(const double *W, int64_t k, int64_t d, int64_t *idx)
{
    int64_t m = 0;
    for (int64_t i = 0; i < k; i++) {
        double q = 0;
        for (int64_t j = 0; j < d; j++)
            q += W[i * d + j] * W[i * d + j];
        if (sqrt(q) > VV_ACTIVE_TOL) {
            if (idx)
                idx[m] = i;
            m++;
        }
    }
    return m;
}

void vv_lasso_init(vv_init how, uint64_t seed, int64_t k, int64_t d, double *W)
{
    if (how != VV_INIT_RANDOM) {
        if (how == VV_INIT_ZEROS)
            memset(W, 0, (size_t)(k * d) * sizeof *W);
        return;
    }
    vv_rng r;
    vv_rng_seed(&r, seed);
    double b = 1.0 / sqrt((double)k);
    for (int64_t i = 0; i < k * d; i++)
        W[i] = b * (2 * vv_rng_uniform(&r) - 1);
}
