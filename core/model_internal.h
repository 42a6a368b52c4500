/* model_internal.h - layer kernels shared by the forward pass and training.
 * Nothing here is part of libvv's public interface. */
#ifndef VV_MODEL_INTERNAL_H
#define VV_MODEL_INTERNAL_H

#include "vv/model.h"

#include <stddef.h>
#include <stdint.h>

/* "layer 3 (conv2d 'features.3')" for messages; returns buf. */
const char *vv__layer_who(const vv_model *m, int i, char *buf, size_t cap);

/* Elements of a layer's weight tensor (0 for layers without one). */
int64_t vv__weight_count(const vv_layer *l);

/* Unfolds one sample x (c x h x w) into col rows (c k k) x (oh ow) with
 * leading dimension ldc (zero padding outside the image). */
/* A conv's output affine: scale 1 and shift its bias, or with a following
 * batch norm bn (may be NULL) folded in (oc values each). */
void vv__conv_affine(const vv_layer *l, const vv_layer *bn, float *scale, float *shift);

void vv__im2col(const float *x, int c, int h, int w, int k, int stride, int pad, int oh, int ow,
                float *col, int64_t ldc);

/* Floats of conv scratch (im2col and gemm output) a layer needs for nb
 * samples; 0 for other layers. */
void vv__scratch_sizes(const vv_layer *l, int64_t nb, int64_t *col, int64_t *tmp);

/* One layer on nb samples: x (nb x input) -> y (nb x output); col and tmp
 * are the conv scratch of vv__scratch_sizes, one buffer (tmp = col + its
 * col floats; unused by other layers, which take NULL). */
void vv__layer_forward(const vv_layer *l, const float *x, int64_t nb, float *y, float *col,
                       float *tmp);

/* ---- Winograd F(4x4, 3x3) (model_winograd.c) ---------------------------------- */

/* Whether conv layer l is one Winograd's kernel takes (3x3, stride 1, pad 1,
 * at least 8 input channels). */
int vv__wino_ok(const vv_layer *l);

/* Floats of l's transformed weights (36 x oc x c), of the scratch one
 * sample takes (its input and output transforms) and of the row buffer a
 * call takes besides. */
int64_t vv__wino_weight_floats(const vv_layer *l);
int64_t vv__wino_sample_floats(const vv_layer *l);
int64_t vv__wino_row_floats(const vv_layer *l);

/* Writes l's transformed weights G g G^T to u (36 planes of oc x c). */
void vv__wino_weights(const vv_layer *l, float *u);

/* Whether the max pool layer pool after conv layer l (and its batch norm
 * and ReLU) can run inside l's output transform: 2x2, stride 2, even maps. */
int vv__wino_pool_ok(const vv_layer *l, const vv_layer *pool);

/* The convolution of nb samples x -> y by Winograd with the transformed
 * weights u, each output then scaled, shifted (per channel), when relu
 * clamped at 0, and when pool max-pooled (vv__wino_pool_ok; y then holds
 * the pooled maps).  scratch holds nscratch floats; runs in chunks of
 * samples that fit and returns nb, or 0 (nothing done) when not even one
 * does. */
int64_t vv__wino_conv(const vv_layer *l, const float *u, const float *x, int64_t nb, float *y,
                      float *scratch, int64_t nscratch, const float *scale, const float *shift,
                      int relu, int pool);

/* ---- Training (train.c, train_backward.c) ---------------------------------------- */

/* What one layer's training forward pass keeps for its backward pass. */
typedef struct vv__saved {
    const float *x, *y;         /* the layer's input and output for the batch */
    const int32_t *argmax;      /* maxpool2d: per output, its input's index in the plane */
    const uint8_t *keep;        /* dropout: per element, 1 when kept; NULL: the identity */
    float scale;                /* dropout: 1 / (1 - p) */
    const float *mean, *invstd; /* batchnorm2d: the batch statistics per channel */
} vv__saved;

/* Floats of scratch the backward pass of a conv layer needs per sample
 * (its im2col columns and its output gradient as a matrix); 0 otherwise. */
int64_t vv__backward_scratch(const vv_layer *l);

/* Back-propagates dy (nb x output) through layer l: writes the weight and
 * bias gradients summed over the batch to dw and db (when the layer has
 * them) and the input gradient to dx (skipped when dx is NULL).  scratch
 * holds nscratch floats, at least vv__backward_scratch(l); convolutions
 * run in groups of samples that fit in it. */
void vv__layer_backward(const vv_layer *l, const vv__saved *s, int64_t nb, const float *dy,
                        float *dx, float *dw, float *db, float *scratch, int64_t nscratch);
/* A batch norm's backward pass for channels [c0, c1) only (their weight
 * and bias gradients and their part of dx). */
void vv__bn_backward(const vv_layer *l, const vv__saved *s, int64_t nb, const float *dy, float *dx,
                     float *dw, float *db, int c0, int c1);

/* SGD on n values with torch.optim.SGD's order of operations in float:
 * d = g + wd w; with a momentum buffer (buf not NULL) buf = mom buf + d and
 * d = buf; then w -= lr d. */
void vv__sgd_update(float *restrict w, const float *restrict g, float *restrict buf, int64_t n,
                    float lr, float wd, float mom);

/* Adam on n values with torch.optim.Adam's order of operations in float:
 * d = g + wd w, m1 = b1 m1 + (1 - b1) d, m2 = b2 m2 + (1 - b2) d^2,
 * w -= step_size m1 / (sqrt(m2) / bc2_sqrt + eps), where step_size is
 * lr / (1 - b1^t) and bc2_sqrt is sqrt(1 - b2^t). */
void vv__adam_update(float *restrict w, const float *restrict g, float *restrict m1,
                     float *restrict m2, int64_t n, float step_size, float bc2_sqrt, float wd,
                     float b1, float b2, float eps);

#endif
