/* neuron_sharing_driver.c - command-line driver for experiment 1
 * (vv/shallow.h), used by bench/bench_neuron_sharing.sh until a
 * `vvd run` neuron_sharing job exists.  Build:
 *
 *   gcc -O2 -std=gnu11 -D_GNU_SOURCE -Icore/include bench/neuron_sharing_driver.c \
 *       build/libvv.a -lcjson -lm -ldl -lpthread -o build/neuron_sharing_driver
 *
 * (core/shallow.c and core/shallow_svg.c must be in libvv.a, or be added to
 * the command line.)  Commands, each printing one JSON line per run:
 *
 *   data DATA_SEED DIR
 *       writes DIR/x.npy (50 x 2) and DIR/y.npy (50 x 2), float64
 *   train_from DIR MODE STEPS [SVG]
 *       trains on DIR/x.npy, DIR/y.npy from DIR/w1.npy, b1.npy, v.npy
 *       (float64; e.g. the paper's exact PyTorch data and initialisation,
 *       written by neuron_sharing_torch.py paper DIR)
 *   train MODE STEPS DATA_SEED SEED [per_output] [SVG] [LOG_EVERY]
 *       trains width 100, lr 0.2, reg 5e-5 on the paper's data shape;
 *       MODE is prox_vv, weight_decay or none; writes the figure to SVG
 *       when given ("-" for none); LOG_EVERY > 0 prints a progress line to
 *       stderr every LOG_EVERY steps
 */
#include "vv/array.h"
#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/shallow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what)
{
    fprintf(stderr, "neuron_sharing_driver: %s: %s\n", what, vv_err_detail());
    return 1;
}

static int progress(const vv_shallow_metrics *m, void *user)
{
    (void)user;
    fprintf(stderr, "%s step %lld mse %.6e active %d vv_norm %.6f group_norm %.6f t %.2fs\n",
            m->final ? "final" : "log", (long long)m->step, m->mse, m->active, m->vv_norm,
            m->group_norm, m->seconds);
    return 0;
}

static double *load(const char *dir, const char *name, int64_t rows, int64_t cols)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s.npy", dir, name);
    vv_array a;
    if (vv_npy_read(p, &a) < 0 || a.dtype != VV_F64 || a.shape[0] != rows ||
        (cols > 0 && a.shape[1] != cols)) {
        fprintf(stderr, "neuron_sharing_driver: %s: float64 %lld x %lld expected\n", p,
                (long long)rows, (long long)cols);
        exit(1);
    }
    return a.data;
}

static int write_svg(const vv_shallow_result *r, const char *title, const char *path)
{
    char *svg;
    if (vv_shallow_svg(r, title, &svg) < 0)
        return die("svg");
    FILE *f = fopen(path, "w");
    if (!f || fputs(svg, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "neuron_sharing_driver: cannot write %s\n", path);
        return 1;
    }
    free(svg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "train_from") == 0) {
        const char *dir = argv[2];
        double *x = load(dir, "x", 50, 2), *y = load(dir, "y", 50, 2);
        double *w1 = load(dir, "w1", 100, 2), *b1 = load(dir, "b1", 100, 0);
        double *v = load(dir, "v", 2, 100);
        vv_shallow_data d;
        if (vv_shallow_data_from(50, 2, 2, x, y, &d) < 0)
            return die("data");
        vv_shallow_opts o;
        vv_shallow_opts_default(&o);
        if ((o.mode = vv_shallow_mode_parse(argv[3])) < 0)
            return die("mode");
        o.steps = strtoll(argv[4], NULL, 10);
        o.init_w1 = w1;
        o.init_b1 = b1;
        o.init_v = v;
        o.log_every = 0;
        vv_shallow_result r;
        if (vv_shallow_train(&d, &o, NULL, NULL, &r) < 0)
            return die("train");
        printf("{\"mode\": \"%s\", \"steps\": %lld, \"seconds\": %.4f, \"active\": %d, "
               "\"shared\": %d, \"used_by_one\": %d, \"used\": [%d, %d], \"mse\": %.6e, "
               "\"vv_norm\": %.6f, \"group_norm\": %.6f}\n",
               argv[3], (long long)r.steps, r.seconds, r.active, r.shared, r.used_by_one,
               r.used[0], r.used[1], r.mse, r.vv_norm, r.group_norm);
        if (argc > 5 && write_svg(&r, "Neurons f_1/f_2 (paper data and init)", argv[5]))
            return 1;
        vv_shallow_result_free(&r);
        vv_shallow_data_free(&d);
        free(x), free(y), free(w1), free(b1), free(v);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "data") == 0) {
        vv_shallow_data d;
        if (vv_shallow_data_make(50, 2, 5, 2, strtoull(argv[2], NULL, 10), &d) < 0)
            return die("data");
        char p[4096];
        int64_t sh[2] = {50, 2};
        snprintf(p, sizeof p, "%s/x.npy", argv[3]);
        if (vv_npy_write(p, VV_F64, 2, sh, d.x) < 0)
            return die(p);
        snprintf(p, sizeof p, "%s/y.npy", argv[3]);
        if (vv_npy_write(p, VV_F64, 2, sh, d.y) < 0)
            return die(p);
        printf("{\"teacher_vv\": %.9g}\n", d.teacher_vv);
        vv_shallow_data_free(&d);
        return 0;
    }
    if (argc < 6 || strcmp(argv[1], "train") != 0) {
        fprintf(stderr, "usage: %s data DATA_SEED DIR | train MODE STEPS DATA_SEED SEED "
                        "[per_output] [SVG|-] [LOG_EVERY]\n",
                argv[0]);
        return 2;
    }
    int mode = vv_shallow_mode_parse(argv[2]);
    if (mode < 0)
        return die("mode");
    vv_shallow_data d;
    if (vv_shallow_data_make(50, 2, 5, 2, strtoull(argv[4], NULL, 10), &d) < 0)
        return die("data");
    vv_shallow_opts o;
    vv_shallow_opts_default(&o);
    o.mode = mode;
    o.steps = strtoll(argv[3], NULL, 10);
    o.seed = strtoull(argv[5], NULL, 10);
    o.per_output = argc > 6 && atoi(argv[6]) != 0;
    o.log_every = argc > 8 ? atoll(argv[8]) : 0;
    vv_shallow_result r;
    double t0 = vv_now();
    if (vv_shallow_train(&d, &o, o.log_every ? progress : NULL, NULL, &r) < 0)
        return die("train");
    double secs = vv_now() - t0;
    printf("{\"mode\": \"%s\", \"per_output\": %d, \"steps\": %lld, \"data_seed\": %s, "
           "\"seed\": %s, \"seconds\": %.4f, \"train_seconds\": %.4f, \"active\": %d, "
           "\"shared\": %d, \"used_by_one\": %d, \"used\": [%d, %d], \"mse\": %.6e, "
           "\"vv_norm\": %.6f, \"group_norm\": %.6f, \"teacher_vv\": %.6f, \"cpu\": \"%s\"}\n",
           vv_shallow_mode_name(mode), o.per_output, (long long)r.steps, argv[4], argv[5], secs,
           r.seconds, r.active, r.shared, r.used_by_one, r.used[0], r.used[1], r.mse, r.vv_norm,
           r.group_norm, d.teacher_vv, vv_cpu_description());
    if (argc > 7 && strcmp(argv[7], "-") != 0) {
        char title[128];
        snprintf(title, sizeof title, "Neurons f_1/f_2, %s%s", vv_shallow_mode_name(mode),
                 o.per_output ? " (one student per output)" : "");
        if (write_svg(&r, title, argv[7]))
            return 1;
    }
    vv_shallow_result_free(&r);
    vv_shallow_data_free(&d);
    return 0;
}
