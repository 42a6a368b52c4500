/* solve_fista.c - accelerated proximal gradient with adaptive restart.
 *
 * Step 1/L with L = lambda_max(G)/N from power iteration; the prox of
 * lambda/L sum_g ||W_g||_F is the group soft-threshold of every group
 * (every row without groups; vv__group_shrink).  Only one product with
 * G per iteration: G Y is recovered from G W of the last two iterates by
 * linearity.  Momentum restarts when it points uphill (O'Donoghue and
 * Candes' gradient scheme).
 */
#include "solve_internal.h"
#include "vv/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int vv_solve_fista(const vv_stats *s, const vv_lasso_opts *o, double *W, vv_lasso_result *res)
{
    vv_backend *be = o->be ? o->be : vv_backend_cpu();
    int64_t k = s->k, d = s->d, kd = k * d;
    double n = (double)s->n;
    double L = vv_lipschitz(s);
    if (!(L > 0)) {
        /* G = 0: every feature is zero and W = 0 is the solution. */
        memset(W, 0, (size_t)kd * sizeof *W);
        L = 1;
    }
    size_t bytes = (size_t)kd * sizeof(double);
    double *GW = malloc(bytes), *Wn = malloc(bytes), *GWn = malloc(bytes);
    double *Y = malloc(bytes), *GY = malloc(bytes);
    int rc = 0;
    if (!GW || !Wn || !GWn || !Y || !GY) {
        rc = vv_fail(VV_ENOMEM, "fista: out of memory");
        goto done;
    }
    vv_progress p;
    vv_progress_init(&p, s, o);
    if ((rc = vv_gram_apply(s, be, W, GW)) < 0)
        goto done;
    vv_eval e;
    vv_gram_eval(s, W, GW, o->lambda, NULL, &e);
    int64_t it = 0;
    vv_stop_reason why = vv_progress_step(&p, it, &e, 1);
    memcpy(Y, W, bytes);
    memcpy(GY, GW, bytes);
    double t = 1;
    while (why == VV_STOP_NONE) {
        /* Wn = prox(Y - (GY - Bt) / (N L)). */
        double step = 1.0 / (n * L);
        for (int64_t i = 0; i < kd; i++)
            Wn[i] = Y[i] - step * (GY[i] - s->Bt[i]);
        if ((rc = vv__group_shrink(be, s, Wn, o->lambda / L, 0.0)) < 0)
            goto done;
        if ((rc = vv_gram_apply(s, be, Wn, GWn)) < 0)
            goto done;
        it++;
        vv_gram_eval(s, Wn, GWn, o->lambda, NULL, &e);
        /* Restart when the step Wn - W and the prox-gradient step Y - Wn point
         * the same way, i.e. momentum carried us uphill. */
        double up = 0;
        for (int64_t i = 0; i < kd; i++)
            up += (Y[i] - Wn[i]) * (Wn[i] - W[i]);
        double tn = up > 0 ? 1.0 : 0.5 * (1 + sqrt(1 + 4 * t * t));
        double beta = up > 0 ? 0.0 : (t - 1) / tn;
        for (int64_t i = 0; i < kd; i++) {
            Y[i] = Wn[i] + beta * (Wn[i] - W[i]);
            GY[i] = GWn[i] + beta * (GWn[i] - GW[i]);
        }
        t = tn;
        memcpy(W, Wn, bytes);
        memcpy(GW, GWn, bytes);
        why = vv_progress_step(&p, it, &e, 0);
    }
    res->stop_reason = why;
    res->iterations = it;
    res->e = e;
done:
    free(GW);
    free(Wn);
    free(GWn);
    free(Y);
    free(GY);
    return rc;
}
