/* forward_driver.c - times vvd's eval-mode forward pass of a built-in
 * architecture (bench/bench_forward.sh).
 *
 *   forward_driver ARCH DIV N BATCH OUT_DIR
 *
 * Builds ARCH (vgg19_cifar | alexnet_cifar64) with widths / DIV, seeded
 * PyTorch-style initialisation, writes its weights to OUT_DIR/w.safetensors
 * and N random inputs to OUT_DIR/x.npy (so PyTorch runs the same network on
 * the same data), then runs N images through it in batches of BATCH three
 * times and prints one JSON line: the best time, images/s, and the logits of
 * the first 4 images (OUT_DIR/y.npy).  The weights are PyTorch's default
 * initialisation scaled up to He's. */
#include "vv/array.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/lasso.h"
#include "vv/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: forward_driver ARCH DIV N BATCH OUT_DIR\n");
        return 2;
    }
    const char *arch = argv[1], *dir = argv[5];
    int div = atoi(argv[2]);
    int64_t n = atoll(argv[3]), batch = atoll(argv[4]);
    vv_model m;
    int rc = !strcmp(arch, "vgg19_cifar") ? vv_model_vgg19_cifar(&m, div, 10)
                                          : vv_model_alexnet_cifar64(&m, div, 10);
    if (rc < 0) {
        fprintf(stderr, "%s\n", vv_err_detail());
        return 1;
    }
    vv_model_init_params(&m, 7);
    /* He's scale (variance 2 / fan-in, PyTorch's default gives 1 / (3 fan-in)):
     * the activations keep their size through the layers, so the logits
     * carry every convolution's rounding, not mostly the last biases. */
    for (int i = 0; i < m.n; i++) {
        vv_layer *l = &m.layers[i];
        if (l->type == VV_LAYER_CONV2D || l->type == VV_LAYER_LINEAR) {
            int64_t nw = (int64_t)l->out_ch * l->in_ch *
                         (l->type == VV_LAYER_CONV2D ? l->kernel * l->kernel : 1);
            for (int64_t j = 0; j < nw; j++)
                l->weight[j] *= 2.449489743f; /* sqrt(6) */
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    vv_model_save(&m, path);
    int64_t in = vv_model_size(&m, -1), k = vv_model_size(&m, m.n - 1);
    float *x = malloc((size_t)(n * in) * sizeof *x), *y = malloc((size_t)(n * k) * sizeof *y);
    vv_rng r;
    vv_rng_seed(&r, 11);
    for (int64_t i = 0; i < n * in; i++)
        x[i] = (float)vv_rng_uniform(&r);
    snprintf(path, sizeof path, "%s/x.npy", dir);
    vv_npy_write(path, VV_F32, 2, (int64_t[]){n, in}, x);
    /* The weights prepared once, as the model is loaded once (PyTorch's
     * side does not time its loading either). */
    vv_forward_plan *plan;
    if (vv_forward_plan_new(&m, 0, m.n, &plan) < 0) {
        fprintf(stderr, "%s\n", vv_err_detail());
        return 1;
    }
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = vv_now();
        for (int64_t s = 0; s < n; s += batch) {
            int64_t nb = n - s < batch ? n - s : batch;
            vv_forward_plan_run(plan, x + s * in, nb, y + s * k, 0);
        }
        double t = vv_now() - t0;
        best = t < best ? t : best;
    }
    snprintf(path, sizeof path, "%s/y.npy", dir);
    vv_npy_write(path, VV_F32, 2, (int64_t[]){n, k}, y);
    printf("{\"seconds\": %.6f, \"images_per_s\": %.1f, \"macs\": %lld, \"blas\": \"%s\", "
           "\"threads\": %d}\n",
           best, (double)n / best, (long long)vv_model_macs(&m), vv_blas_corename(),
           vv_blas_threads());
    free(x);
    free(y);
    vv_forward_plan_free(plan);
    vv_model_free(&m);
    return 0;
}
