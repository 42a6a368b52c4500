/* shallow_data.c - experiment 1's data, names and result metrics
 * (contract in vv/shallow.h): the teacher and its samples, the float64
 * reference forward pass and MSE, and the measures of a result. */
#include "shallow_internal.h"

#include "vv/err.h"
#include "vv/lasso.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Names ----------------------------------------------------------------- */

const char *vv_shallow_mode_name(int mode)
{
    switch (mode) {
    case VV_SHALLOW_PROX_VV: return "prox_vv";
    case VV_SHALLOW_WEIGHT_DECAY: return "weight_decay";
    case VV_SHALLOW_NONE: return "none";
    default: return "unknown";
    }
}

int vv_shallow_mode_parse(const char *s)
{
    if (s) {
        for (int m = VV_SHALLOW_PROX_VV; m <= VV_SHALLOW_NONE; m++)
            if (strcmp(s, vv_shallow_mode_name(m)) == 0)
                return m;
    }
    return vv_fail(VV_EINVAL, "mode: '%s' is not one of prox_vv, weight_decay, none",
                   s ? s : "(null)");
}

const char *vv_shallow_stop_name(int reason)
{
    switch (reason) {
    case VV_SHALLOW_DONE: return "max_iter";
    case VV_SHALLOW_USER: return "user";
    case VV_SHALLOW_MAX_SECONDS: return "max_seconds";
    default: return "unknown";
    }
}

/* ---- Data ------------------------------------------------------------------ */

void vv_shallow_data_free(vv_shallow_data *d)
{
    if (!d)
        return;
    free(d->x);
    free(d->y);
    free(d->t_w1);
    free(d->t_b1);
    free(d->t_v);
    memset(d, 0, sizeof *d);
}

int vv_shallow_check_sizes(int n, int d_in, int d_out)
{
    if (n < 1 || n > VV_SHALLOW_MAX_N)
        return vv_fail(VV_EINVAL, "n = %d: must lie in [1, %d]", n, VV_SHALLOW_MAX_N);
    if (d_in < 1 || d_in > VV_SHALLOW_MAX_DIM)
        return vv_fail(VV_EINVAL, "d_in = %d: must lie in [1, %d]", d_in, VV_SHALLOW_MAX_DIM);
    if (d_out < 1 || d_out > VV_SHALLOW_MAX_DIM)
        return vv_fail(VV_EINVAL, "d_out = %d: must lie in [1, %d]", d_out, VV_SHALLOW_MAX_DIM);
    return 0;
}

/* Forward pass of (w1, b1, v) of width h on x (n x d_in) into out (n x d_out), float64. */
static void forward_f64(int n, int d_in, int d_out, int h, const double *x, const double *w1,
                        const double *b1, const double *v, double *out)
{
    for (int s = 0; s < n; s++) {
        double *o = out + (size_t)s * d_out;
        for (int j = 0; j < d_out; j++)
            o[j] = 0;
        for (int k = 0; k < h; k++) {
            double z = b1[k];
            for (int i = 0; i < d_in; i++)
                z += w1[(size_t)k * d_in + i] * x[(size_t)s * d_in + i];
            if (z <= 0)
                continue;
            for (int j = 0; j < d_out; j++)
                o[j] += v[(size_t)j * h + k] * z;
        }
    }
}

double vv_shallow_vv_norm_f64(int h, int d_in, int d_out, const double *w1, const double *b1,
                          const double *v, double *group_norm)
{
    double vv = 0, gn = 0;
    for (int k = 0; k < h; k++) {
        double a = b1[k] * b1[k], c = 0;
        for (int i = 0; i < d_in; i++)
            a += w1[(size_t)k * d_in + i] * w1[(size_t)k * d_in + i];
        for (int j = 0; j < d_out; j++)
            c += v[(size_t)j * h + k] * v[(size_t)j * h + k];
        vv += sqrt(a) * sqrt(c);
        gn += sqrt(c);
    }
    if (group_norm)
        *group_norm = gn;
    return vv;
}

int vv_shallow_data_make(int n, int d_in, int teacher_width, int d_out, uint64_t seed,
                         vv_shallow_data *out)
{
    if (!out)
        return vv_fail(VV_EINVAL, "vv_shallow_data_make: NULL out");
    memset(out, 0, sizeof *out);
    int rc = vv_shallow_check_sizes(n, d_in, d_out);
    if (rc < 0)
        return rc;
    if (teacher_width < 1 || teacher_width > VV_SHALLOW_MAX_DIM)
        return vv_fail(VV_EINVAL, "teacher_width = %d: must lie in [1, %d]", teacher_width,
                       VV_SHALLOW_MAX_DIM);
    int h = teacher_width;
    out->n = n;
    out->d_in = d_in;
    out->d_out = d_out;
    out->teacher_width = h;
    out->x = malloc(sizeof(double) * (size_t)n * d_in);
    out->y = malloc(sizeof(double) * (size_t)n * d_out);
    out->t_w1 = malloc(sizeof(double) * (size_t)h * d_in);
    out->t_b1 = malloc(sizeof(double) * (size_t)h);
    out->t_v = malloc(sizeof(double) * (size_t)d_out * h);
    if (!out->x || !out->y || !out->t_w1 || !out->t_b1 || !out->t_v) {
        vv_shallow_data_free(out);
        return vv_fail(VV_ENOMEM, "vv_shallow_data_make: out of memory");
    }
    vv_rng r;
    vv_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)n * d_in; i++)
        out->x[i] = vv_rng_normal(&r);
    double a = 1 / sqrt((double)d_in), c = 1 / sqrt((double)h);
    for (size_t i = 0; i < (size_t)h * d_in; i++)
        out->t_w1[i] = a * (2 * vv_rng_uniform(&r) - 1);
    for (int k = 0; k < h; k++)
        out->t_b1[k] = a * (2 * vv_rng_uniform(&r) - 1);
    for (size_t i = 0; i < (size_t)d_out * h; i++)
        out->t_v[i] = c * (2 * vv_rng_uniform(&r) - 1);
    forward_f64(n, d_in, d_out, h, out->x, out->t_w1, out->t_b1, out->t_v, out->y);
    out->teacher_vv = vv_shallow_vv_norm_f64(h, d_in, d_out, out->t_w1, out->t_b1, out->t_v, NULL);
    return 0;
}

int vv_shallow_data_from(int n, int d_in, int d_out, const double *x, const double *y,
                         vv_shallow_data *out)
{
    if (!out)
        return vv_fail(VV_EINVAL, "vv_shallow_data_from: NULL out");
    memset(out, 0, sizeof *out);
    if (!x || !y)
        return vv_fail(VV_EINVAL, "vv_shallow_data_from: NULL x or y");
    int rc = vv_shallow_check_sizes(n, d_in, d_out);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < (size_t)n * d_in; i++)
        if (!isfinite(x[i]))
            return vv_fail(VV_ENONFINITE, "x[%zu][%zu] is not finite", i / d_in, i % d_in);
    for (size_t i = 0; i < (size_t)n * d_out; i++)
        if (!isfinite(y[i]))
            return vv_fail(VV_ENONFINITE, "y[%zu][%zu] is not finite", i / d_out, i % d_out);
    out->x = malloc(sizeof(double) * (size_t)n * d_in);
    out->y = malloc(sizeof(double) * (size_t)n * d_out);
    if (!out->x || !out->y) {
        vv_shallow_data_free(out);
        return vv_fail(VV_ENOMEM, "vv_shallow_data_from: out of memory");
    }
    memcpy(out->x, x, sizeof(double) * (size_t)n * d_in);
    memcpy(out->y, y, sizeof(double) * (size_t)n * d_out);
    out->n = n;
    out->d_in = d_in;
    out->d_out = d_out;
    out->teacher_vv = NAN;
    return 0;
}

int vv_shallow_check_data(const vv_shallow_data *d)
{
    if (!d || !d->x || !d->y)
        return vv_fail(VV_EINVAL, "shallow: NULL data");
    return vv_shallow_check_sizes(d->n, d->d_in, d->d_out);
}

double vv_shallow_mse(const vv_shallow_data *data, int width, const double *w1, const double *b1,
                      const double *v)
{
    if (vv_shallow_check_data(data) < 0 || width < 1 || !w1 || !b1 || !v)
        return NAN;
    double *o = malloc(sizeof(double) * (size_t)data->n * data->d_out);
    if (!o)
        return NAN;
    forward_f64(data->n, data->d_in, data->d_out, width, data->x, w1, b1, v, o);
    double sse = 0;
    for (size_t i = 0; i < (size_t)data->n * data->d_out; i++)
        sse += (o[i] - data->y[i]) * (o[i] - data->y[i]);
    free(o);
    return sse / ((double)data->n * data->d_out);
}

/* ---- Result ------------------------------------------------------------------ */

void vv_shallow_result_free(vv_shallow_result *r)
{
    if (!r)
        return;
    free(r->w1);
    free(r->b1);
    free(r->v);
    free(r->used);
    memset(r, 0, sizeof *r);
}

int vv_shallow_result_measure(vv_shallow_result *r, const vv_shallow_data *data)
{
    int rc = vv_shallow_check_data(data);
    if (rc < 0)
        return rc;
    if (!r || !r->w1 || !r->b1 || !r->v || !r->used || r->width < 1)
        return vv_fail(VV_EINVAL, "vv_shallow_result_measure: NULL or empty result");
    if (r->d_in != data->d_in || r->d_out != data->d_out)
        return vv_fail(VV_EINVAL, "vv_shallow_result_measure: result is %d -> %d, data %d -> %d",
                       r->d_in, r->d_out, data->d_in, data->d_out);
    int h = r->width, di = r->d_in, dd = r->d_out;
    r->mse = vv_shallow_mse(data, h, r->w1, r->b1, r->v);
    r->vv_norm = vv_shallow_vv_norm_f64(h, di, dd, r->w1, r->b1, r->v, &r->group_norm);
    r->active = r->shared = r->used_by_one = 0;
    for (int j = 0; j < dd; j++)
        r->used[j] = 0;
    for (int k = 0; k < h; k++) {
        double a = 0, wn = 0;
        for (int j = 0; j < dd; j++)
            a += r->v[(size_t)j * h + k] * r->v[(size_t)j * h + k];
        for (int i = 0; i < di; i++)
            wn += r->w1[(size_t)k * di + i] * r->w1[(size_t)k * di + i];
        wn = sqrt(wn);
        r->active += sqrt(a) > VV_SHALLOW_ACTIVE_TOL;
        int users = 0;
        for (int j = 0; j < dd; j++) {
            if (fabs(r->v[(size_t)j * h + k]) * wn > VV_SHALLOW_ACTIVE_TOL) {
                r->used[j]++;
                users++;
            }
        }
        r->shared += users == dd;
        r->used_by_one += users == 1;
    }
    return 0;
}
