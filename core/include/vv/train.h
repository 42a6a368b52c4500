/* vv/train.h - training a sequential model (vv/model.h) by mini-batch
 * gradient descent: the core half of a `train` job.
 *
 * A trainer holds a pointer to a finished model, the gradients of its
 * parameters, the optimizer's state and the activations of the last batch.
 * vv_trainer_step runs one mini-batch in training mode (dropout active,
 * batch norm on batch statistics), back-propagates the loss through every
 * layer type and updates the model's parameters in place with PyTorch's
 * SGD or Adam rules; the caller runs the learning-rate schedule and owns
 * the data order.  Everything is float32 like the forward pass, with
 * reductions (losses, batch-norm statistics, bias gradients) accumulated
 * in double.
 *
 * Thread-safety: a trainer is used by one thread at a time, and nothing
 * else may read or write its model during a call (the model's eval-mode
 * forward pass may run between calls).  The model must not be rebuilt,
 * pruned or freed while a trainer points to it.  Large products go through
 * vv_sgemm, whose OpenBLAS threads make a step use every core.
 *
 * Reproducibility: for a given model, options, batch sequence and random
 * generator state the results are bit-identical from run to run on one
 * machine and OpenBLAS thread count, and a run resumed from a checkpoint
 * (vv_model_save + vv_trainer_save, plus the caller's own position in its
 * data and its vv_rng) continues exactly like an uninterrupted one.
 */
#ifndef VV_TRAIN_H
#define VV_TRAIN_H

#include "vv/err.h"
#include "vv/lasso.h"
#include "vv/model.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VV_OPT_SGD = 1,  /* torch.optim.SGD, dampening 0, nesterov off */
    VV_OPT_ADAM = 2, /* torch.optim.Adam (AdamW with decoupled weight decay), amsgrad off */
} vv_optimizer;

typedef enum {
    VV_LOSS_CE = 1,  /* cross-entropy of the logits, mean over the batch */
    VV_LOSS_MSE = 2, /* mean over batch x classes of (logit - onehot(label))^2 */
} vv_loss;

typedef struct vv_train_opts {
    vv_optimizer optimizer;
    /* The base learning rate (> 0).  It is validated and kept for the
     * caller's schedule; each vv_trainer_step uses its own lr argument. */
    double lr;
    double momentum;          /* SGD: in [0, 1); 0 = plain SGD */
    double beta1, beta2, eps; /* Adam: betas in [0, 1), eps > 0 */
    /* L2 weight decay (>= 0).  decoupled = 0: added to the gradient
     * (wd * p), as PyTorch's SGD and Adam weight_decay do; decoupled = 1:
     * p -= lr * wd * p before the update, as AdamW (and "SGDW") do. */
    double weight_decay;
    int decoupled;
    /* 1: weight decay skips biases and batch-norm weights and biases;
     * 0 (PyTorch's default): it applies to every parameter. */
    int no_decay_bias_bn;
    vv_loss loss;
    /* Batch norm's running statistics: r = (1 - m) r + m batch_stat, with
     * the unbiased batch variance (PyTorch's momentum), in [0, 1]. */
    double bn_momentum;
} vv_train_opts;

/* Fills *o with PyTorch's defaults: SGD, lr 0.01, momentum 0, Adam betas
 * 0.9 / 0.999 and eps 1e-8, no weight decay (coupled), cross-entropy,
 * batch-norm momentum 0.1, decay on every parameter. */
void vv_train_opts_default(vv_train_opts *o);

/* The statistics of one mini-batch, from the forward pass that preceded
 * the update. */
typedef struct vv_step_stats {
    double loss;     /* the batch's mean loss */
    int64_t correct; /* samples whose argmax logit (first on ties) is the label */
} vv_step_stats;

typedef struct vv_trainer vv_trainer;

/* Creates a trainer for the finished model m (whose parameters it updates
 * in place; m must outlive the trainer) with a copy of *o.  The optimizer
 * state starts at step 0 with zero buffers.  Fails with VV_EINVAL for an
 * unfinished model, a dropout p outside [0, 1] or an option out of range
 * (naming it), and VV_ENOMEM; *out is then NULL.  Batch buffers are
 * allocated by the first step and grow with the largest batch seen. */
int vv_trainer_init(vv_trainer **out, vv_model *m, const vv_train_opts *o);

/* Bytes a trainer for m with options o holds once it has run batches of n
 * samples (0 for an unfinished model or n < 1): the gradients and the
 * optimizer state (1 + 0, 1 or 2 floats per parameter), every layer's
 * output for the batch (flatten layers share their input's buffer and relu
 * layers overwrite it), max-pool argmaxes, dropout masks, two activation
 * gradients of the widest layer, and the conv scratch, which is bounded by
 * about 64 MiB whatever n is.  Lets a caller refuse a batch size before
 * training. */
int64_t vv_trainer_bytes(const vv_model *m, const vv_train_opts *o, int64_t n);

/* Frees the trainer (not its model); accepts NULL. */
void vv_trainer_free(vv_trainer *t);

/* One optimizer step on the mini-batch x (n samples of the model's input
 * shape, NCHW float32) with labels in [0, classes), where classes is the
 * last layer's output size.  Training mode: each dropout layer with p > 0
 * zeroes elements and scales the rest by 1 / (1 - p) (inverted dropout),
 * drawing one vv_rng_uniform(rng) per element of its batch output in
 * memory order, layers in order, and keeping an element when the draw is
 * >= p; rng NULL disables dropout (the deterministic mode of the tests).
 * Batch norm normalises with the batch mean and biased variance and
 * updates its running statistics.  Then every parameter is updated with
 * learning rate lr (> 0).  st, when not NULL, receives the batch's loss
 * and correct count.
 *
 * Fails with VV_EINVAL for n < 1, a label out of range (naming the sample
 * index and the label), lr <= 0 or a batch norm layer that sees one value
 * per channel; VV_ENOMEM when the batch buffers cannot grow; VV_ENUMERIC
 * when the loss is not finite.  On any failure the model and the optimizer
 * state are unchanged (the rng may have advanced). */
int vv_trainer_step(vv_trainer *t, const float *x, const int32_t *labels, int64_t n, double lr,
                    vv_rng *rng, vv_step_stats *st);

/* Forward and backward passes on a mini-batch as vv_trainer_step does them,
 * without any update: the model, including batch norm's running
 * statistics, and the optimizer state are left as they were.  *loss (when
 * not NULL) receives the mean loss; the gradients are then readable with
 * vv_trainer_grads and vv_trainer_input_grad until the next call.  Fails
 * like vv_trainer_step (except for the loss check). */
int vv_trainer_grad(vv_trainer *t, const float *x, const int32_t *labels, int64_t n, vv_rng *rng,
                    double *loss);

/* The gradient of the mean loss with respect to layer i's weight and bias
 * (shaped like vv_layer.weight and .bias_v) from the last step or grad
 * call; NULL for a parameter the layer lacks.  The buffers belong to the
 * trainer and change with its next call.  VV_EINVAL for a bad index. */
int vv_trainer_grads(const vv_trainer *t, int i, const float **dweight, const float **dbias);

/* The gradient with respect to the input x of the last vv_trainer_grad
 * call (n x input size, owned by the trainer), or NULL when the last call
 * was a step (which skips it). */
const float *vv_trainer_input_grad(const vv_trainer *t);

/* Optimizer steps taken so far (restored by vv_trainer_load). */
int64_t vv_trainer_steps(const vv_trainer *t);

/* Writes the optimizer state as a .safetensors file: "step" (I64, one
 * element) and, per parameter "<layer>.<weight|bias>", SGD's
 * "<param>.momentum_buffer" (when momentum > 0) or Adam's
 * "<param>.exp_avg" and "<param>.exp_avg_sq" (F32, the parameter's shape).
 * The model's weights are saved separately (vv_model_save). */
int vv_trainer_save(const vv_trainer *t, const char *path);

/* Restores the optimizer state written by vv_trainer_save for the same
 * architecture and optimizer.  Fails with the file errors of vv/array.h,
 * VV_EINVAL naming a missing tensor or one that the trainer has no place
 * for (another optimizer or architecture), and VV_ESHAPE naming a tensor
 * of the wrong size; the trainer's state is then unchanged. */
int vv_trainer_load(vv_trainer *t, const char *path);

#ifdef __cplusplus
}
#endif
#endif
