/* forward_driver.c - times vvd's eval-mode forward pass of a built-in
 * architecture (bench/bench_forward.sh).
 *
 *   forward_driver ARCH DIV N BATCH OUT_DIR [DEVICE]
 *
 * Builds ARCH (vgg19_cifar | alexnet_cifar64) with widths / DIV, seeded
 * PyTorch-style initialisation, writes its weights to OUT_DIR/w.safetensors
 * and N random inputs to OUT_DIR/x.npy (so PyTorch runs the same network on
 * the same data), then runs N images through it in batches of BATCH three
 * times and prints one JSON line: the best time, images/s, and the logits of
 * the first 4 images (OUT_DIR/y.npy).  The weights are PyTorch's default
 * initialisation scaled up to He's.  With DEVICE (sim, or cuda when built
 * with VV_HAVE_CUDA: device 0) the passes run there (the weights uploaded
 * once; each batch's images up and logits down timed), and the JSON also
 * gives the largest relative difference of the first BATCH images' logits
 * from the CPU's. */
#include "vv/array.h"
#include "vv/backend.h"
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/lasso.h"
#include "vv/model.h"
#ifdef VV_HAVE_CUDA
#include "vv/backend_cuda.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: forward_driver ARCH DIV N BATCH OUT_DIR [sim|cuda]\n");
        return 2;
    }
    const char *arch = argv[1], *dir = argv[5], *dev = argc == 7 ? argv[6] : NULL;
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
    /* The weights prepared once (uploaded, on a device), as the model is
     * loaded once (PyTorch's side does not time its loading either). */
    vv_backend *be = NULL;
    vv_model_dev *md = NULL;
    char devname[256] = "cpu";
    rc = 0;
    if (dev && !strcmp(dev, "sim"))
        rc = vv_backend_sim_open(NULL, &be);
#ifdef VV_HAVE_CUDA
    else if (dev && !strcmp(dev, "cuda"))
        rc = vv_backend_cuda_open(0, &be);
#endif
    else if (dev)
        rc = vv_fail(VV_EINVAL, "device %s: not sim%s", dev,
#ifdef VV_HAVE_CUDA
                     " or cuda"
#else
                     " (built without CUDA)"
#endif
        );
    if (rc == 0 && be)
        rc = be->ops->info(be, devname, sizeof devname, NULL, NULL);
    if (rc == 0 && be)
        rc = vv_model_dev_open(&m, be, &md);
    vv_forward_plan *plan = NULL;
    if (rc < 0 || vv_forward_plan_on(&m, md, 0, m.n, &plan) < 0) {
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
    /* On a device: the first batch's logits against the CPU's. */
    double diff = 0;
    if (md) {
        int64_t nb = n < batch ? n : batch;
        float *yc = malloc((size_t)(nb * k) * sizeof *yc);
        double top = 0, d = 0;
        if (!yc || vv_model_forward(&m, 0, m.n, x, nb, yc) < 0) {
            fprintf(stderr, "the CPU's pass: %s\n", vv_err_detail());
            return 1;
        }
        for (int64_t i = 0; i < nb * k; i++) {
            top = fmax(top, fabs(yc[i]));
            d = fmax(d, fabs((double)y[i] - yc[i]));
        }
        diff = top > 0 ? d / top : d;
        free(yc);
    }
    printf("{\"seconds\": %.6f, \"images_per_s\": %.1f, \"macs\": %lld, \"blas\": \"%s\", "
           "\"threads\": %d, \"device\": \"%s\", \"cpu_rel_diff\": %.3g}\n",
           best, (double)n / best, (long long)vv_model_macs(&m), vv_blas_corename(),
           vv_blas_threads(), devname, diff);
    free(x);
    free(y);
    vv_forward_plan_free(plan);
    vv_model_dev_close(md);
    if (be)
        be->ops->close(be);
    vv_model_free(&m);
    return 0;
}
