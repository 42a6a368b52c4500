/* shallow_internal.h - helpers shared by core/shallow*.c (not installed). */
#ifndef VV_SHALLOW_INTERNAL_H
#define VV_SHALLOW_INTERNAL_H

#include "vv/shallow.h"

/* VV_EINVAL with a detail unless 1 <= n <= VV_SHALLOW_MAX_N and
 * 1 <= d_in, d_out <= VV_SHALLOW_MAX_DIM; else 0. */
int vv_shallow_check_sizes(int n, int d_in, int d_out);
/* The same for data, plus NULL checks. */
int vv_shallow_check_data(const vv_shallow_data *d);
/* sum_k ||(w_k, b_k)|| ||v_k|| of a width-h network, float64; sum_k ||v_k||
 * into *group_norm when not NULL. */
double vv_shallow_vv_norm_f64(int h, int d_in, int d_out, const double *w1, const double *b1,
                              const double *v, double *group_norm);

#endif
