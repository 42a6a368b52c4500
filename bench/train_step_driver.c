/* train_step_driver.c - times one SGD step (momentum 0.9, cross-entropy,
 * no dropout) of vvd's trainer (bench/bench_train_step.sh).
 *
 *   train_step_driver ARCH DIV BATCH STEPS
 *
 * ARCH is fmnist-mlp (784-128-64-10 on 1x28x28) or vgg19_cifar (widths /
 * DIV).  Runs STEPS steps on seeded random images and labels after one
 * warm-up step and prints one JSON line with the best step's seconds. */
#include "vv/array.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/lasso.h"
#include "vv/model.h"
#include "vv/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: train_step_driver ARCH DIV BATCH STEPS\n");
        return 2;
    }
    int div = atoi(argv[2]), steps = atoi(argv[4]);
    int64_t n = atoll(argv[3]);
    vv_model m;
    int sizes[] = {784, 128, 64, 10};
    int rc = !strcmp(argv[1], "vgg19_cifar") ? vv_model_vgg19_cifar(&m, div, 10)
                                             : vv_model_mlp(&m, 1, 28, 28, sizes, 4);
    if (rc < 0) {
        fprintf(stderr, "%s\n", vv_err_detail());
        return 1;
    }
    vv_model_init_params(&m, 7);
    vv_train_opts o;
    vv_train_opts_default(&o);
    o.momentum = 0.9;
    vv_trainer *t;
    if (vv_trainer_init(&t, &m, &o) < 0) {
        fprintf(stderr, "%s\n", vv_err_detail());
        return 1;
    }
    int64_t in = vv_model_size(&m, -1);
    float *x = malloc((size_t)(n * in) * sizeof *x);
    int32_t *lab = malloc((size_t)n * sizeof *lab);
    vv_rng r;
    vv_rng_seed(&r, 11);
    for (int64_t i = 0; i < n * in; i++)
        x[i] = (float)vv_rng_uniform(&r);
    for (int64_t i = 0; i < n; i++)
        lab[i] = (int32_t)(vv_rng_uniform(&r) * 10);
    double best = 1e30;
    for (int s = 0; s <= steps; s++) {
        double t0 = vv_now();
        if (vv_trainer_step(t, x, lab, n, 0.01, NULL, NULL) < 0) {
            fprintf(stderr, "%s\n", vv_err_detail());
            return 1;
        }
        double dt = vv_now() - t0;
        if (s > 0 && dt < best)
            best = dt;
    }
    printf("{\"seconds\": %.6f, \"threads\": %d}\n", best, vv_blas_threads());
    vv_trainer_free(t);
    free(x);
    free(lab);
    vv_model_free(&m);
    return 0;
}
