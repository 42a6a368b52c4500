/* model_eval.c - a model's accuracy and cross-entropy on a data set. */
#include "vv/dataset.h"
#include "vv/err.h"
#include "vv/model.h"

#include <math.h>
#include <stdlib.h>

int vv_score_logits(const float *y, int64_t nb, int64_t k, const int32_t *labels, int64_t first,
                    int64_t *correct, double *loss_sum)
{
    for (int64_t i = 0; i < nb; i++) {
        const float *z = y + i * k;
        int64_t best = 0;
        double mx = z[0];
        for (int64_t t = 1; t < k; t++)
            if (z[t] > mx) {
                mx = z[t];
                best = t;
            }
        double se = 0;
        for (int64_t t = 0; t < k; t++)
            se += exp((double)z[t] - mx);
        int32_t l = labels[i];
        if (l < 0 || l >= k)
            return vv_fail(VV_EINVAL,
                           "label %d of image %lld is not a class of the model's %lld outputs", l,
                           (long long)(first + i), (long long)k);
        *loss_sum += log(se) + mx - z[l];
        *correct += best == l;
    }
    return 0;
}

/* The forward pass on md's device when md is not NULL, else on the CPU. */
static int evaluate(const vv_model *m, vv_model_dev *md, const vv_dataset *ds,
                    const vv_preprocess *pp, int64_t n, int64_t batch, const atomic_int *stop,
                    double *acc, double *loss)
{
    int c, h, w;
    vv_preprocess_shape(ds, pp, &c, &h, &w);
    int64_t in = (int64_t)c * h * w, k = vv_model_size(m, m->n - 1);
    float *x = malloc((size_t)(batch * in) * sizeof(float));
    float *y = malloc((size_t)(batch * k) * sizeof(float));
    int32_t *lab = malloc((size_t)batch * sizeof(int32_t));
    vv_forward_plan *plan = NULL;
    int rc = x && y && lab ? 0 : vv_fail(VV_ENOMEM, "evaluation: out of memory");
    if (rc == 0)
        rc = vv_forward_plan_on(m, md, 0, m->n, &plan);
    int64_t correct = 0;
    double total = 0;
    for (int64_t s0 = 0; s0 < n && rc == 0; s0 += batch) {
        if (stop && atomic_load_explicit(stop, memory_order_relaxed)) {
            rc = VV_ESTATE;
            break;
        }
        int64_t nb = n - s0 < batch ? n - s0 : batch;
        if ((rc = vv_dataset_batch(ds, pp, NULL, s0, nb, NULL, x, lab)) < 0 ||
            (rc = vv_forward_plan_run(plan, x, nb, y, 0)) < 0)
            break;
        rc = vv_score_logits(y, nb, k, lab, s0, &correct, &total);
    }
    vv_forward_plan_free(plan);
    free(x);
    free(y);
    free(lab);
    if (rc == 0) {
        *acc = n ? (double)correct / (double)n : 0;
        *loss = n ? total / (double)n : 0;
    }
    return rc;
}

int vv_model_evaluate(const vv_model *m, const vv_dataset *ds, const vv_preprocess *pp, int64_t n,
                      int64_t batch, const atomic_int *stop, double *acc, double *loss)
{
    return evaluate(m, NULL, ds, pp, n, batch, stop, acc, loss);
}

int vv_model_evaluate_dev(const vv_model *m, vv_model_dev *md, const vv_dataset *ds,
                          const vv_preprocess *pp, int64_t n, int64_t batch, const atomic_int *stop,
                          double *acc, double *loss)
{
    return evaluate(m, md, ds, pp, n, batch, stop, acc, loss);
}
