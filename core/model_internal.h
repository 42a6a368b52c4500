/* model_internal.h - layer kernels shared by the forward pass and training.
 * Nothing here is part of libvv's public interface. */
#ifndef VV_MODEL_INTERNAL_H
#define VV_MODEL_INTERNAL_H

#include "vv/model.h"

#include <stdint.h>

/* Unfolds one sample x (c x h x w) into col rows (c k k) x (oh ow) with
 * leading dimension ldc (zero padding outside the image). */
void vv__im2col(const float *x, int c, int h, int w, int k, int stride, int pad, int oh, int ow,
                float *col, int64_t ldc);

/* Floats of conv scratch (im2col and gemm output) a layer needs for nb
 * samples; 0 for other layers. */
void vv__scratch_sizes(const vv_layer *l, int64_t nb, int64_t *col, int64_t *tmp);

/* One layer on nb samples: x (nb x input) -> y (nb x output); col and tmp
 * are the conv scratch of vv__scratch_sizes. */
void vv__layer_forward(const vv_layer *l, const float *x, int64_t nb, float *y, float *col,
                       float *tmp);

#endif
