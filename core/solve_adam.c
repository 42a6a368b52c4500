/* solve_adam.c - the paper's proximal Adam, graded by the duality gap.
 *
 * Reference: ../shared/reference/paper.md section 4.5.  Each iteration
 * takes one full-batch Adam step (learning rate mu, betas 0.9 / 0.999,
 * eps 1e-8, PyTorch's bias correction) on the MSE averaged over the N*D
 * entries, then shrinks every neuron's column v_k by
 * max(0, 1 - mu*lambda_paper / (||v_k|| + 1e-8)) (with groups, every
 * group's block V_g by the same factor of ||V_g||_F).  With
 * lambda = lambda_paper * D / 2 this is the canonical problem's penalty.
 * The gradient 2/(N D) (V G - B) comes from the statistics.  The paper's
 * bugs are not kept: the start may be the trained weight, the stop is the
 * certificate, and every iterate reports its gap.
 */
#include "solve_internal.h"
#include "vv/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int vv_solve_adam(const vv_stats *s, const vv_lasso_opts *o, double *W, vv_lasso_result *res)
{
    vv_backend *be = o->be ? o->be : vv_backend_cpu();
    int64_t k = s->k, d = s->d, kd = k * d;
    size_t bytes = (size_t)kd * sizeof(double);
    double *GW = malloc(bytes), *m1 = calloc((size_t)kd, sizeof(double)),
           *m2 = calloc((size_t)kd, sizeof(double));
    int rc = 0;
    if (!GW || !m1 || !m2) {
        rc = vv_fail(VV_ENOMEM, "adam_prox: out of memory");
        goto done;
    }
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double mu = o->mu, lam_paper = 2.0 * o->lambda / (double)d;
    double gscale = 2.0 / ((double)s->n * (double)d);
    vv_progress p;
    vv_progress_init(&p, s, o);
    int64_t it = 0;
    vv_eval e;
    vv_stop_reason why;
    for (;;) {
        if ((rc = vv_gram_apply(s, be, W, GW)) < 0)
            goto done;
        vv_gram_eval(s, W, GW, o->lambda, NULL, &e);
        why = vv_progress_step(&p, it, &e, it == 0);
        if (why != VV_STOP_NONE)
            break;
        it++;
        double bc1 = 1 - pow(b1, (double)it), bc2 = 1 - pow(b2, (double)it);
        double step = mu / bc1, bc2s = sqrt(bc2);
        for (int64_t i = 0; i < kd; i++) {
            double g = gscale * (GW[i] - s->Bt[i]);
            m1[i] = b1 * m1[i] + (1 - b1) * g;
            m2[i] = b2 * m2[i] + (1 - b2) * g * g;
            W[i] -= step * m1[i] / (sqrt(m2[i]) / bc2s + eps);
        }
        if ((rc = vv__group_shrink(be, s, W, mu * lam_paper, 1e-8)) < 0)
            goto done;
    }
    res->stop_reason = why;
    res->iterations = it;
    res->e = e;
done:
    free(GW);
    free(m1);
    free(m2);
    return rc;
}
