/* socp_internal.h - the interior-point core shared by socp.c and
 * socp_ipm.c (not installed). */
#ifndef VV_SOCP_INTERNAL_H
#define VV_SOCP_INTERNAL_H

#include "vv/socp.h"

#include <stdint.h>

/* Solves the reduced problem
 *
 *     min sum_k ||w_k||_2   s.t.   Q^T W = B
 *
 * for Q (k x r, row-major, orthonormal columns) and B (r x d, row-major,
 * unit Frobenius norm) by the primal-dual interior-point method, with the
 * tolerances, iteration limit and stop flag of o (already validated).
 * Writes the primal W (k x d, row-major, rows w_k) and the dual multiplier
 * Yr (r x d) of the last iterate, or of the best one when the method did
 * not reach o->tol, and the number of iterations.  Returns a
 * vv_socp_status, or a negative vv_err (VV_ENOMEM, VV_ESTATE on stop). */
int vv_socp_ipm(int64_t k, int64_t d, int64_t r, const double *Q, const double *B,
                const vv_socp_opts *o, double *W, double *Yr, int *iterations);

#endif
