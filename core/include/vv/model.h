/* vv/model.h - sequential networks: layers, parameters, forward pass.
 *
 * A model is a list of layers applied in order to a batch of N samples of
 * shape C x H x W (float32, NCHW, like PyTorch).  Layers with parameters
 * carry the PyTorch state_dict prefix of their module ("features.0",
 * "classifier.6"), so a model's weights load from a .safetensors export of
 * its state_dict: "<name>.weight", "<name>.bias", and for batch norm
 * "<name>.running_mean" / "<name>.running_var" ("num_batches_tracked" is
 * ignored).  The forward pass is eval mode: dropout is the identity and
 * batch norm uses its running statistics.
 *
 * Building: vv_model_init, vv_model_add for each layer, vv_model_finish
 * (which derives every layer's shapes, checks them and allocates the
 * parameters).  A finished model is read-only during vv_model_forward, so
 * several threads may run forward passes on one model at once.
 */
#ifndef VV_MODEL_H
#define VV_MODEL_H

#include "vv/err.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VV_LAYER_CONV2D = 1,
    VV_LAYER_BATCHNORM2D,
    VV_LAYER_RELU,
    VV_LAYER_MAXPOOL2D,
    VV_LAYER_AVGPOOL2D,
    VV_LAYER_ADAPTIVE_AVGPOOL2D,
    VV_LAYER_FLATTEN,
    VV_LAYER_LINEAR,
    VV_LAYER_DROPOUT,
} vv_layer_type;

/* "conv2d", "batchnorm2d", ...; NULL for an unknown type. */
const char *vv_layer_type_name(vv_layer_type t);
/* 0 for an unknown name. */
vv_layer_type vv_layer_type_from_name(const char *name);

typedef struct vv_layer {
    vv_layer_type type;
    char name[64]; /* state_dict prefix; "" for layers without parameters */
    /* Hyper-parameters.  conv2d: in_ch -> out_ch, kernel, stride, pad, bias.
     * linear: in_ch = in_features, out_ch = out_features, bias.
     * batchnorm2d: in_ch = out_ch = channels, eps.  Pools: kernel, stride,
     * pad (stride 0 = kernel).  adaptive_avgpool2d: out_h x out_w.
     * dropout: p (unused at eval). */
    int in_ch, out_ch, kernel, stride, pad, bias;
    int out_h, out_w;
    float eps, p;
    /* Derived by vv_model_finish: per-sample input and output shapes
     * (a flat vector is C x 1 x 1). */
    int c, h, w, oc, oh, ow;
    /* Parameters (float32, owned by the model; NULL when the layer has none).
     * conv2d weight: out x in x k x k; linear weight: out x in. */
    float *weight, *bias_v, *running_mean, *running_var;
} vv_layer;

typedef struct vv_model {
    int in_c, in_h, in_w; /* per-sample input shape */
    int n;                /* layers */
    vv_layer *layers;
    int cap;
    int finished;
} vv_model;

/* Starts an empty model for inputs of c x h x w.  Free with vv_model_free. */
void vv_model_init(vv_model *m, int c, int h, int w);

/* Appends a copy of *l (only its type, name and hyper-parameters are read).
 * VV_ENOMEM on allocation failure. */
int vv_model_add(vv_model *m, const vv_layer *l);

/* Derives the shapes, checks them and allocates zeroed parameters (batch
 * norm: weight 1, running_var 1).  Fails with VV_ESHAPE naming the layer
 * (its name, or its index and type) when a layer does not fit its input:
 * a linear layer whose in_features differ from the flattened input, a conv
 * whose in_channels differ, a kernel larger than the padded input, two
 * layers with one name, and so on. */
int vv_model_finish(vv_model *m);

/* What vv_model_finish checks, without allocating parameters (validating a
 * spec before loading it). */
int vv_model_check(vv_model *m);

/* Frees the layers and parameters; accepts NULL. */
void vv_model_free(vv_model *m);

/* Index of the layer with this name, or -1. */
int vv_model_find(const vv_model *m, const char *name);

/* Per-sample output size of layer i (oc * oh * ow); i = -1: the input. */
int64_t vv_model_size(const vv_model *m, int i);

/* Parameters (weights, biases, batch-norm affine) and multiply-adds per
 * sample of a forward pass. */
int64_t vv_model_params(const vv_model *m);
int64_t vv_model_macs(const vv_model *m);
/* Bytes of parameter memory (float32 weights plus batch-norm statistics). */
int64_t vv_model_bytes(const vv_model *m);

/* PyTorch's default initialisation from a seed: conv and linear weights and
 * biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a =
 * sqrt(5)), batch norm weight 1, bias 0, mean 0, var 1. */
void vv_model_init_params(vv_model *m, uint64_t seed);

/* Loads every parameter from a .safetensors state_dict.  Fails with
 * VV_EINVAL naming a missing tensor, VV_ESHAPE naming a tensor whose shape
 * differs from the spec's (with both shapes), and VV_EINVAL naming a tensor
 * of the file that the spec has no place for.  F32, F64, F16 and BF16 are
 * accepted.  On failure the parameters are unspecified. */
int vv_model_load(vv_model *m, const char *path);

/* Writes the parameters as a .safetensors state_dict (float32, PyTorch's
 * names and shapes; batch norm adds num_batches_tracked = 0). */
int vv_model_save(const vv_model *m, const char *path);

/* Runs layers [from, to) on x (n samples of layer from's input shape) and
 * writes layer to-1's output to y (n x vv_model_size(m, to - 1)).  x and y
 * may not overlap.  Thread-safe on a finished model.  Fails with VV_ENOMEM
 * or VV_EINVAL (bad range).  3x3 stride-1 convolutions run by Winograd
 * F(4x4, 3x3) (the same outputs to float rounding, a few 1e-6 relative),
 * with their weights transformed once per call (4 times their size, up to
 * 256 MiB; past it per chunk; vv_forward_plan_new keeps them for many
 * calls).  Batches are processed in groups whose two
 * activation buffers stay near 32 MiB (plus 32 MiB of convolution scratch);
 * a fully connected tail (from the first linear layer after from) runs on
 * every sample at once, after the rest, with the head's outputs kept
 * (n x that layer's input floats). */
int vv_model_forward(const vv_model *m, int from, int to, const float *x, int64_t n, float *y);

/* The same with the batch split over threads (0: one per core, at most 8)
 * up to the fully connected tail, each running single-threaded BLAS (the
 * process-wide OpenBLAS thread count is set to 1 meanwhile, so call it from
 * one thread at a time); the tail then runs on BLAS's own threads. */
int vv_model_forward_parallel(const vv_model *m, int from, int to, const float *x, int64_t n,
                              float *y, int threads);

/* A forward plan: layers [from, to) of the finished model m with their
 * Winograd weights transformed once, for many calls of
 * vv_forward_plan_run, which also keeps its threads' scratch buffers
 * (fresh ones cost a page fault per 4 KiB on every call).  m must outlive
 * the plan and its weights must not change meanwhile (make a new plan
 * after training or pruning).  run is vv_model_forward_parallel (threads
 * 1: vv_model_forward, on the calling thread's own scratch) on the plan's
 * range, from one thread at a time when threads != 1.  new fails as
 * vv_model_forward. */
typedef struct vv_forward_plan vv_forward_plan;
int vv_forward_plan_new(const vv_model *m, int from, int to, vv_forward_plan **out);
/* The same for m's weights on a device (vv_model_dev_open; NULL: the
 * CPU, as vv_forward_plan_new): its runs are vv_model_forward_dev's, with
 * threads ignored and nothing prepared on the host.  md must outlive it. */
struct vv_model_dev;
int vv_forward_plan_on(const vv_model *m, struct vv_model_dev *md, int from, int to,
                       vv_forward_plan **out);
int vv_forward_plan_run(vv_forward_plan *p, const float *x, int64_t n, float *y, int threads);
void vv_forward_plan_free(vv_forward_plan *p);

/* A model's weights resident on a device backend (vv/backend.h), for the
 * forward pass there: conv and linear weights and biases, and batch norms
 * folded into per-channel scale and shift, uploaded once by open.  The
 * model must outlive it and not change.  One thread at a time. */
typedef struct vv_model_dev vv_model_dev;
struct vv_backend;
int vv_model_dev_open(const vv_model *m, struct vv_backend *be, vv_model_dev **out);
void vv_model_dev_close(vv_model_dev *md);
/* Device memory its weights take (the batch buffers not counted). */
size_t vv_model_dev_bytes(const vv_model_dev *md);
struct vv_backend *vv_model_dev_backend(const vv_model_dev *md);

/* vv_model_forward on the device: x and y are host memory; batches of up
 * to 256 samples go up, through layers [from, to) and back.  Fails with
 * the backend's errors (VV_ENOMEM when a batch does not fit). */
int vv_model_forward_dev(vv_model_dev *md, int from, int to, const float *x, int64_t n, float *y);
/* The same with x (VV_DEV_IN in where) and/or y (VV_DEV_OUT) in md's
 * device memory (allocated by its backend): features kept on the device
 * feed the layers above them, or are kept there, without crossing the
 * bus.  x is only read. */
enum { VV_DEV_IN = 1, VV_DEV_OUT = 2 };
int vv_model_forward_dev_at(vv_model_dev *md, int from, int to, const float *x, int64_t n, float *y,
                            int where);

/* Accuracy (argmax, first on ties) and mean cross-entropy of the logits of
 * m in eval mode on images [0, n) of ds, preprocessed by pp, in batches of
 * `batch` (the forward pass split over cores).  Fails with the data set's
 * errors, VV_EINVAL naming an image whose label is not a class of the
 * model, VV_ENOMEM, or VV_ESTATE when *stop (may be NULL) became non-zero. */
struct vv_dataset;
struct vv_preprocess;
int vv_model_evaluate(const vv_model *m, const struct vv_dataset *ds,
                      const struct vv_preprocess *pp, int64_t n, int64_t batch,
                      const atomic_int *stop, double *acc, double *loss);

/* Scores nb rows of k logits y against their labels: adds to *correct the
 * rows whose argmax (first on ties) is the label and to *loss_sum their
 * cross-entropies.  first is the index of row 0 in the data set, for the
 * message: VV_EINVAL names an image whose label is not a class. */
int vv_score_logits(const float *y, int64_t nb, int64_t k, const int32_t *labels, int64_t first,
                    int64_t *correct, double *loss_sum);

/* The same with the forward pass on md's device (md holds m's weights;
 * NULL: the CPU, as vv_model_evaluate). */
int vv_model_evaluate_dev(const vv_model *m, vv_model_dev *md, const struct vv_dataset *ds,
                          const struct vv_preprocess *pp, int64_t n, int64_t batch,
                          const atomic_int *stop, double *acc, double *loss);

/* The layer chain feeding layer i: the index of the nearest earlier linear
 * layer when only relu and dropout layers lie between it and layer i (so
 * the inputs of layer i are that layer's neurons), else -1. */
int vv_model_feeding_linear(const vv_model *m, int i);

/* Removes neurons: keeps only the outputs keep[0..nkeep) (ascending) of
 * linear layer j, i.e. rows of its weight and bias, and the matching input
 * columns of the layer i that it feeds (vv_model_feeding_linear(m, i) ==
 * j).  Shapes are re-derived.  VV_EINVAL for a bad pair or index list. */
int vv_model_prune(vv_model *m, int j, int i, const int64_t *keep, int64_t nkeep);

/* The conv2d layer whose output channels layer i consumes (model_prune.c):
 * layer i is a conv2d or a linear layer, and below it lies a conv2d j with
 * only batchnorm2d, relu, maxpool2d, avgpool2d, adaptive_avgpool2d, dropout
 * and flatten layers between (all channel-wise: channel c of j's output
 * feeds only inputs of layer i derived from channel c).  Returns j and sets
 * *group (may be NULL) to the inputs of layer i per channel of j: k*k of a
 * conv (layer i's in_ch = j's out_ch), in_features / out_ch(j) of a linear
 * layer after flatten (the flatten keeps channel-major order, so channel
 * c's inputs are the contiguous block [c*group, (c+1)*group)); else -1
 * (and *group 0).  Reads the derived shapes: call it on a finished (or
 * checked) model. */
int vv_model_feeding_conv(const vv_model *m, int i, int64_t *group);

/* Removes channels: keeps output channels keep[0..nkeep) (ascending) of
 * conv j (weight slices and bias), the same channels of every batch norm
 * between j and i (weight, bias, running mean and variance), and the
 * matching input channels of layer i (a conv's in-channel slices of its
 * weight, or a linear layer's column blocks of *group columns).  Shapes
 * are re-derived (vv_model_params and vv_model_macs follow); the parameter
 * arrays are compacted in place, not reallocated.  VV_EINVAL for a bad pair
 * (vv_model_feeding_conv(m, i) != j), an unfinished model or a bad index
 * list (empty, not ascending, out of range); the model is then unchanged. */
int vv_model_prune_channels(vv_model *m, int j, int i, const int64_t *keep, int64_t nkeep);

/* A deep copy of a finished model into *dst. */
int vv_model_copy(const vv_model *src, vv_model *dst);

/* ---- Built-in architectures (model_zoo.c) ---------------------------------------- */

/* The paper's VGG-19 for CIFAR-10 (32x32 input): 16 conv 3x3 layers without
 * bias, each followed by batch norm and ReLU, max-pools after blocks, and
 * classifier [0] dropout, [1] linear 512-512, [2] relu, [3] dropout,
 * [4] linear 512-512, [5] relu, [6] linear 512-classes.  Every width (conv
 * channels and the classifier's hidden size) is divided by div (>= 1, a
 * divisor of 64), which gives the narrow versions the tests use.  Returns a
 * finished model with zeroed parameters. */
int vv_model_vgg19_cifar(vv_model *m, int div, int classes);

/* The paper's AlexNet for 64x64 CIFAR-10: features conv 11/4/2 -> 64, relu,
 * maxpool 3/2, conv 5/1/2 -> 192, relu, maxpool 3/2, conv 3 -> 384, relu,
 * conv 3 -> 256, relu, conv 3 -> 256, relu, maxpool 3/2, adaptive average
 * pool 6x6, flatten (9216); classifier [0] dropout, [1] linear 9216-4096,
 * [2] relu, [3] dropout, [4] linear 4096-4096, [5] relu, [6] linear
 * 4096-classes.  Widths divided by div (a divisor of 64). */
int vv_model_alexnet_cifar64(vv_model *m, int div, int classes);

/* A small VGG-style CNN for 1x28x28 inputs (Fashion-MNIST), named like a
 * PyTorch nn.Sequential pair: features [0] conv 3x3/1/1 1->16 (no bias),
 * [1] batch norm, [2] relu, [3] conv 16->16, [4] bn, [5] relu, [6] maxpool 2
 * (14x14), [7] conv 16->32, [8] bn, [9] relu, [10] conv 32->32, [11] bn,
 * [12] relu, [13] maxpool 2 (7x7), [14] conv 32->64, [15] bn, [16] relu,
 * [17] maxpool 2 (3x3), flatten (64*9 = 576); classifier [0] dropout 0.5,
 * [1] linear 576-128, [2] relu, [3] linear 128-classes.  Every width (conv
 * channels, hidden size) is divided by div (a divisor of 16).  div 1, 10
 * classes: 110,170 parameters, 5.61 M multiply-adds per image.
 *
 * The widths are half of the usual 32-32-64-64-128 / 256 design, chosen by
 * measurement on a 2-core machine (shared with other work, batch 128, Adam):
 * that design (436,906 parameters, 22.2 M MACs) trains at about 470 s an
 * epoch of 60,000 images; this one at 145-245 s, reaching 91.4% test
 * accuracy after 4 epochs (the train preset fmnist-cnn); half of it again
 * (div 2: 28,018 parameters, 1.43 M MACs) at 85-130 s, but only 89.5%
 * after 4 epochs. */
int vv_model_fmnist_cnn(vv_model *m, int div, int classes);

/* A multilayer perceptron on c x h x w inputs: flatten, then linear layers
 * "fc1" .. "fc<n-1>" of sizes[0] -> sizes[1] -> ... -> sizes[n-1] with ReLU
 * between them; sizes[0] must equal c h w. */
int vv_model_mlp(vv_model *m, int c, int h, int w, const int *sizes, int n);

#ifdef __cplusplus
}
#endif
#endif
