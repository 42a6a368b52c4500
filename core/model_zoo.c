/* model_zoo.c - the built-in architectures: the paper's VGG-19 and AlexNet
 * for CIFAR-10, a small CNN for Fashion-MNIST, and multilayer perceptrons. */
#include "vv/model.h"

#include <stdio.h>
#include <string.h>

/* vv_model_fmnist_cnn's first conv width at div 1 (the others are 2x, 4x
 * and the hidden layer 8x): 16, half the usual 32, so that an epoch of
 * Fashion-MNIST trains in minutes on 2 cores (see vv/model.h). */
#define FMNIST_CNN_BASE 16

static int add(vv_model *m, vv_layer_type t, const char *name, int in, int out, int k, int s, int p,
               int bias)
{
    vv_layer l = {.type = t,
                  .in_ch = in,
                  .out_ch = out,
                  .kernel = k,
                  .stride = s,
                  .pad = p,
                  .bias = bias,
                  .eps = 1e-5f,
                  .p = 0.5f};
    if (name)
        snprintf(l.name, sizeof l.name, "%s", name);
    return vv_model_add(m, &l);
}

static int check_div(int div)
{
    if (div < 1 || 64 % div)
        return vv_fail(VV_EINVAL, "width divisor %d must divide 64", div);
    return 0;
}

/* Adds the shared classifier: [0] dropout, [1] linear, [2] relu, [3] dropout,
 * [4] linear, [5] relu, [6] linear. */
static int classifier(vv_model *m, int in, int hidden, int classes)
{
    int rc = 0;
    rc |= add(m, VV_LAYER_DROPOUT, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_LINEAR, "classifier.1", in, hidden, 0, 0, 0, 1);
    rc |= add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_DROPOUT, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_LINEAR, "classifier.4", hidden, hidden, 0, 0, 0, 1);
    rc |= add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_LINEAR, "classifier.6", hidden, classes, 0, 0, 0, 1);
    return rc ? VV_ENOMEM : 0;
}

int vv_model_vgg19_cifar(vv_model *m, int div, int classes)
{
    static const int cfg[] = {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
                              512, 512, 512, 512, 0,   512, 512, 512, 512, 0};
    int rc = check_div(div);
    vv_model_init(m, 3, 32, 32);
    if (rc < 0)
        return rc;
    if (classes < 2)
        return vv_fail(VV_EINVAL, "classes must be >= 2");
    int in = 3, idx = 0;
    char name[32];
    for (unsigned i = 0; i < sizeof cfg / sizeof *cfg && rc == 0; i++) {
        if (!cfg[i]) {
            rc |= add(m, VV_LAYER_MAXPOOL2D, NULL, 0, 0, 2, 2, 0, 0);
            idx++;
            continue;
        }
        int out = cfg[i] / div;
        snprintf(name, sizeof name, "features.%d", idx);
        rc |= add(m, VV_LAYER_CONV2D, name, in, out, 3, 1, 1, 0);
        snprintf(name, sizeof name, "features.%d", idx + 1);
        rc |= add(m, VV_LAYER_BATCHNORM2D, name, out, out, 0, 0, 0, 1);
        rc |= add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
        idx += 3;
        in = out;
    }
    rc |= add(m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    if (rc == 0)
        rc = classifier(m, 512 / div, 512 / div, classes);
    if (rc == 0)
        rc = vv_model_finish(m);
    if (rc < 0)
        vv_model_free(m);
    return rc;
}

int vv_model_alexnet_cifar64(vv_model *m, int div, int classes)
{
    int rc = check_div(div);
    vv_model_init(m, 3, 64, 64);
    if (rc < 0)
        return rc;
    if (classes < 2)
        return vv_fail(VV_EINVAL, "classes must be >= 2");
    int c1 = 64 / div, c2 = 192 / div, c3 = 384 / div, c4 = 256 / div, c5 = 256 / div;
    rc |= add(m, VV_LAYER_CONV2D, "features.0", 3, c1, 11, 4, 2, 1);
    rc |= add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_MAXPOOL2D, NULL, 0, 0, 3, 2, 0, 0);
    rc |= add(m, VV_LAYER_CONV2D, "features.3", c1, c2, 5, 1, 2, 1);
    rc |= add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_MAXPOOL2D, NULL, 0, 0, 3, 2, 0, 0);
    rc |= add(m, VV_LAYER_CONV2D, "features.6", c2, c3, 3, 1, 1, 1);
    rc |= add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_CONV2D, "features.8", c3, c4, 3, 1, 1, 1);
    rc |= add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_CONV2D, "features.10", c4, c5, 3, 1, 1, 1);
    rc |= add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_MAXPOOL2D, NULL, 0, 0, 3, 2, 0, 0);
    vv_layer ap = {.type = VV_LAYER_ADAPTIVE_AVGPOOL2D, .out_h = 6, .out_w = 6};
    rc |= vv_model_add(m, &ap);
    rc |= add(m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    if (rc == 0)
        rc = classifier(m, c5 * 36, 4096 / div, classes);
    if (rc == 0)
        rc = vv_model_finish(m);
    if (rc < 0)
        vv_model_free(m);
    return rc;
}

int vv_model_mlp(vv_model *m, int c, int h, int w, const int *sizes, int n)
{
    vv_model_init(m, c, h, w);
    if (n < 2)
        return vv_fail(VV_EINVAL, "an MLP needs at least 2 sizes (input and output)");
    int rc = add(m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    char name[32];
    for (int i = 1; i < n && rc == 0; i++) {
        snprintf(name, sizeof name, "fc%d", i);
        rc = add(m, VV_LAYER_LINEAR, name, sizes[i - 1], sizes[i], 0, 0, 0, 1);
        if (rc == 0 && i < n - 1)
            rc = add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    }
    if (rc == 0)
        rc = vv_model_finish(m);
    if (rc < 0)
        vv_model_free(m);
    return rc;
}

int vv_model_fmnist_cnn(vv_model *m, int div, int classes)
{
    vv_model_init(m, 1, 28, 28);
    if (div < 1 || FMNIST_CNN_BASE % div)
        return vv_fail(VV_EINVAL, "width divisor %d must divide %d", div, FMNIST_CNN_BASE);
    if (classes < 2)
        return vv_fail(VV_EINVAL, "classes must be >= 2");
    /* Conv widths (0: max-pool 2) and the classifier's hidden size. */
    const int b = FMNIST_CNN_BASE / div;
    const int cfg[] = {b, b, 0, 2 * b, 2 * b, 0, 4 * b, 0};
    int in = 1, idx = 0, rc = 0;
    char name[32];
    for (unsigned i = 0; i < sizeof cfg / sizeof *cfg && rc == 0; i++) {
        if (!cfg[i]) {
            rc |= add(m, VV_LAYER_MAXPOOL2D, NULL, 0, 0, 2, 2, 0, 0);
            idx++;
            continue;
        }
        snprintf(name, sizeof name, "features.%d", idx);
        rc |= add(m, VV_LAYER_CONV2D, name, in, cfg[i], 3, 1, 1, 0);
        snprintf(name, sizeof name, "features.%d", idx + 1);
        rc |= add(m, VV_LAYER_BATCHNORM2D, name, cfg[i], cfg[i], 0, 0, 0, 1);
        rc |= add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
        idx += 3;
        in = cfg[i];
    }
    rc |= add(m, VV_LAYER_FLATTEN, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_DROPOUT, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_LINEAR, "classifier.1", in * 9, 8 * b, 0, 0, 0, 1);
    rc |= add(m, VV_LAYER_RELU, NULL, 0, 0, 0, 0, 0, 0);
    rc |= add(m, VV_LAYER_LINEAR, "classifier.3", 8 * b, classes, 0, 0, 0, 1);
    if (rc)
        rc = VV_ENOMEM;
    if (rc == 0)
        rc = vv_model_finish(m);
    if (rc < 0)
        vv_model_free(m);
    return rc;
}
