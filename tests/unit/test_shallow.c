/* test_shallow.c - experiment 1 (vv/shallow.h): the training kernel's
 * gradient against central finite differences of an independent float64
 * loss, the prox step on a hand-computed example, the paper's neuron
 * sharing on shortened runs, the baselines, stopping, errors and the SVG. */
#include "tap.h"
#include "vv/err.h"
#include "vv/lasso.h"
#include "vv/shallow.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Random weights, rounded to float32 so the kernel sees exactly them. */
static void rand_net(vv_rng *r, int w, int di, int dd, double *w1, double *b1, double *v)
{
    for (int i = 0; i < w * di; i++)
        w1[i] = (float)(2 * vv_rng_uniform(r) - 1);
    for (int k = 0; k < w; k++)
        b1[k] = (float)(vv_rng_uniform(r) - 0.5);
    for (int i = 0; i < dd * w; i++)
        v[i] = (float)(0.5 * (2 * vv_rng_uniform(r) - 1));
}

/* Central differences of vv_shallow_mse (float64) against vv_shallow_grad
 * (the float32 kernel), for every parameter. */
static void check_grad(int n, int di, int h_teacher, int dd, int w, uint64_t seed)
{
    vv_shallow_data d;
    if (!CHECK(vv_shallow_data_make(n, di, h_teacher, dd, seed, &d) == 0, "data for gradient"))
        return;
    vv_rng r;
    vv_rng_seed(&r, seed + 1000);
    size_t m1 = (size_t)w * di, m3 = (size_t)dd * w, mt = m1 + w + m3;
    double *p = malloc(sizeof(double) * mt), *g = malloc(sizeof(double) * mt);
    double *w1 = p, *b1 = p + m1, *v = p + m1 + w;
    rand_net(&r, w, di, dd, w1, b1, v);
    double mse_k = NAN;
    int rc = vv_shallow_grad(&d, w, w1, b1, v, g, g + m1, g + m1 + w, &mse_k);
    double mse = vv_shallow_mse(&d, w, w1, b1, v);
    double worst = 0, gmax = 0;
    int bad = 0;
    const double eps = 1e-4;
    for (size_t q = 0; q < mt; q++) {
        double keep = p[q];
        p[q] = keep + eps;
        double fp = vv_shallow_mse(&d, w, w1, b1, v);
        p[q] = keep - eps;
        double fm = vv_shallow_mse(&d, w, w1, b1, v);
        p[q] = keep;
        double fd = (fp - fm) / (2 * eps);
        double e = fabs(fd - g[q]);
        gmax = fmax(gmax, fabs(fd));
        worst = fmax(worst, e / (1e-5 + fabs(fd)));
        bad += e > 2e-5 + 2e-3 * fabs(fd);
    }
    CHECKF(rc == 0 && bad == 0,
           "gradient (n %d, d_in %d, D %d, W %d): %zu parameters match central differences "
           "(worst rel err %.1e, max |g| %.2g, %d off)",
           n, di, dd, w, mt, worst, gmax, bad);
    CHECKF(tap_close(mse_k, mse, 1e-5), "kernel float32 MSE %.8g = float64 MSE %.8g", mse_k, mse);
    free(p);
    free(g);
    vv_shallow_data_free(&d);
}

static void test_prox(void)
{
    /* Two neurons, d_in 2, D 2, tau 1e-5.
     * v_0 = (3e-5, 4e-5): norm 5e-5, scale 1 - 1e-5/5e-5 = 0.8 -> (2.4e-5, 3.2e-5).
     * v_1 = (3e-6, 4e-6): norm 5e-6 <= tau -> 0.
     * (w_0, b_0) = (3, 0, 4) -> (0.6, 0, 0.8); (w_1, b_1) = (1, 2, 2) -> /3. */
    double w1[4] = {3, 0, 1, 2}, b1[2] = {4, 2};
    double v[4] = {3e-5, 3e-6, 4e-5, 4e-6}; /* D x W: row j holds output j */
    int rc = vv_shallow_prox(2, 2, 2, 1e-5, w1, b1, v);
    CHECK(rc == 0, "prox runs");
    CHECKF(tap_close(v[0], 2.4e-5, 1e-6) && tap_close(v[2], 3.2e-5, 1e-6),
           "prox shrinks v_0 = (3e-5, 4e-5) to (2.4e-5, 3.2e-5): got (%.7g, %.7g)", v[0], v[2]);
    CHECKF(v[1] == 0 && v[3] == 0, "prox zeroes v_1 with ||v_1|| = 5e-6 <= tau (got %g, %g)", v[1],
           v[3]);
    CHECKF(fabs(w1[0] - 0.6) < 1e-7 && w1[1] == 0 && fabs(b1[0] - 0.8) < 1e-7,
           "prox renormalises (3, 0, 4) to (0.6, 0, 0.8): got (%.8g, %.8g, %.8g)", w1[0], w1[1],
           b1[0]);
    CHECKF(fabs(w1[2] - 1.0 / 3) < 1e-7 && fabs(w1[3] - 2.0 / 3) < 1e-7 &&
               fabs(b1[1] - 2.0 / 3) < 1e-7,
           "prox renormalises (1, 2, 2) to (1/3, 2/3, 2/3)");
    /* A zero column stays zero (denominator clipped at 1e-8); random
     * (w, b) come out with unit norm; tau 0 leaves v alone. */
    enum { W = 37, DI = 3, DD = 2 };
    double a[W * DI], b[W], c[DD * W], c0[DD * W];
    vv_rng r;
    vv_rng_seed(&r, 5);
    rand_net(&r, W, DI, DD, a, b, c);
    c[0] = c[W] = 0;
    memcpy(c0, c, sizeof c);
    rc = vv_shallow_prox(W, DI, DD, 0, a, b, c);
    double worst = 0;
    for (int k = 0; k < W; k++) {
        double s = b[k] * b[k];
        for (int i = 0; i < DI; i++)
            s += a[k * DI + i] * a[k * DI + i];
        worst = fmax(worst, fabs(sqrt(s) - 1));
    }
    CHECKF(rc == 0 && worst < 1e-6, "renormalised (w_k, b_k) have unit norm (worst |norm-1| %.1e)",
           worst);
    CHECK(memcmp(c, c0, sizeof c) == 0, "tau 0 leaves V unchanged, zero columns included");
    CHECK(vv_shallow_prox(W, DI, DD, -1, a, b, c) == VV_EINVAL, "negative tau is VV_EINVAL");
    CHECK(vv_shallow_prox(0, DI, DD, 0, a, b, c) == VV_EINVAL, "width 0 is VV_EINVAL");
    CHECK(vv_shallow_prox(W, DI, DD, 0, NULL, b, c) == VV_EINVAL, "NULL w1 is VV_EINVAL");
}

static void test_data(void)
{
    vv_shallow_data d;
    int rc = vv_shallow_data_make(50, 2, 5, 2, 43, &d);
    CHECK(rc == 0 && d.n == 50 && d.d_in == 2 && d.d_out == 2 && d.teacher_width == 5,
          "data: the paper's shapes");
    double m = vv_shallow_mse(&d, 5, d.t_w1, d.t_b1, d.t_v);
    CHECKF(m == 0, "y = teacher(x) exactly (teacher MSE %g)", m);
    double bound = 1 / sqrt(2.0), ok = 1;
    for (int i = 0; i < 10; i++)
        ok = ok && fabs(d.t_w1[i]) <= bound;
    for (int i = 0; i < 10; i++)
        ok = ok && fabs(d.t_v[i]) <= 1 / sqrt(5.0);
    CHECKF(ok && d.teacher_vv > 0.1 && d.teacher_vv < 5,
           "teacher weights within the default-init bounds, VV norm %.4f", d.teacher_vv);
    vv_shallow_data e;
    vv_shallow_data_make(50, 2, 5, 2, 43, &e);
    CHECK(memcmp(d.x, e.x, sizeof(double) * 100) == 0 && memcmp(d.y, e.y, sizeof(double) * 100) == 0,
          "data are a pure function of the seed");
    vv_shallow_data_free(&e);
    vv_shallow_data_free(&d);
    vv_shallow_data_free(NULL);
    CHECK(vv_shallow_data_make(0, 2, 5, 2, 1, &d) == VV_EINVAL && d.x == NULL, "n 0 is VV_EINVAL");
    CHECK(vv_shallow_data_make(5, 2, 0, 2, 1, &d) == VV_EINVAL, "teacher width 0 is VV_EINVAL");
    CHECK(vv_shallow_data_make(5, 2, 5, 65, 1, &d) == VV_EINVAL, "d_out 65 is VV_EINVAL");
    double x[2] = {1, NAN}, y[1] = {0};
    rc = vv_shallow_data_from(1, 2, 1, x, y, &d);
    CHECKF(rc == VV_ENONFINITE && strstr(vv_err_detail(), "x[0][1]"),
           "NaN input is VV_ENONFINITE naming x[0][1] (%s)", vv_err_detail());
}

typedef struct logbook {
    int calls, finals, first_active;
    int64_t last_step;
    int stop_at; /* return 1 at this call (1-based); 0 never */
} logbook;

static int logger(const vv_shallow_metrics *m, void *user)
{
    logbook *b = user;
    b->calls++;
    b->finals += m->final;
    if (b->calls == 1)
        b->first_active = m->active;
    b->last_step = m->step;
    return b->stop_at && b->calls == b->stop_at;
}

/* The paper's setting, 2e5 steps: few neurons, all shared by both outputs. */
static void test_sharing(uint64_t data_seed, uint64_t seed)
{
    vv_shallow_data d;
    vv_shallow_data_make(50, 2, 5, 2, data_seed, &d);
    vv_shallow_opts o;
    vv_shallow_opts_default(&o);
    o.steps = 200000;
    o.seed = seed;
    o.log_every = 10000;
    logbook lb = {0};
    vv_shallow_result r;
    int rc = vv_shallow_train(&d, &o, logger, &lb, &r);
    CHECKF(rc == 0, "prox_vv trains (data seed %llu, seed %llu)", (unsigned long long)data_seed,
           (unsigned long long)seed);
    if (rc != 0) {
        vv_shallow_data_free(&d);
        return;
    }
    CHECKF(r.active <= 15 && r.active >= 1,
           "prox_vv, 2e5 steps, seeds %llu/%llu: %d of 100 neurons active (<= 15)",
           (unsigned long long)data_seed, (unsigned long long)seed, r.active);
    CHECKF(r.shared == r.active && r.used_by_one == 0 && r.used[0] == r.active &&
               r.used[1] == r.active,
           "every active neuron is shared by both outputs (shared %d, used %d/%d, by one %d)",
           r.shared, r.used[0], r.used[1], r.used_by_one);
    CHECKF(r.mse < 2e-4, "final MSE %.3e small", r.mse);
    CHECKF(fabs(r.vv_norm - r.group_norm) < 1e-5 * r.group_norm,
           "with unit (w_k, b_k) the VV norm %.6f equals sum ||v_k|| %.6f", r.vv_norm, r.group_norm);
    CHECKF(lb.calls == 21 && lb.finals == 1 && lb.last_step == 200000 && lb.first_active == 100,
           "callback: 20 logged steps + 1 final (calls %d, final %d, last step %lld)", lb.calls,
           lb.finals, (long long)lb.last_step);
    CHECK(r.steps == 200000 && r.stop_reason == VV_SHALLOW_DONE, "ran all steps, stop max_iter");
    vv_shallow_result_free(&r);
    vv_shallow_data_free(&d);
}

static void test_baselines(void)
{
    vv_shallow_data d;
    vv_shallow_data_make(50, 2, 5, 2, 43, &d);
    vv_shallow_opts o;
    vv_shallow_opts_default(&o);
    o.steps = 100000;
    o.log_every = 0;

    vv_shallow_result none, wd, po;
    o.mode = VV_SHALLOW_NONE;
    int rc = vv_shallow_train(&d, &o, NULL, NULL, &none);
    CHECKF(rc == 0 && none.active >= 95,
           "none, 1e5 steps: %d of 100 neurons stay active (>= 95), MSE %.2e, VV norm %.3f",
           none.active, none.mse, none.vv_norm);
    o.mode = VV_SHALLOW_WEIGHT_DECAY;
    rc = vv_shallow_train(&d, &o, NULL, NULL, &wd);
    CHECKF(rc == 0 && wd.mse < 1e-3 && wd.vv_norm < none.vv_norm,
           "weight_decay, 1e5 steps: MSE %.2e, VV norm %.3f < none's %.3f (active %d)", wd.mse,
           wd.vv_norm, none.vv_norm, wd.active);

    o.mode = VV_SHALLOW_PROX_VV;
    o.per_output = 1;
    rc = vv_shallow_train(&d, &o, NULL, NULL, &po);
    int offdiag = 0;
    if (rc == 0)
        for (int k = 0; k < 100; k++)
            offdiag += po.v[0 * 200 + 100 + k] != 0 || po.v[1 * 200 + k] != 0;
    CHECKF(rc == 0 && po.width == 200 && offdiag == 0 && po.shared == 0,
           "per_output: 2 students of 100 as one net of 200, block-diagonal V, 0 shared "
           "(used %d/%d, active %d, MSE %.2e)",
           rc == 0 ? po.used[0] : -1, rc == 0 ? po.used[1] : -1, po.active, po.mse);
    vv_shallow_result_free(&none);
    vv_shallow_result_free(&wd);
    vv_shallow_result_free(&po);

    /* Starting from given weights: the same weights as the seeded draw
     * reproduce the seeded run exactly. */
    vv_shallow_result a, b;
    vv_shallow_opts_default(&o);
    o.steps = 3000;
    o.log_every = 0;
    o.seed = 7;
    vv_shallow_opts z = o;
    z.steps = 0;
    vv_shallow_train(&d, &z, NULL, NULL, &a);
    o.init_w1 = a.w1;
    o.init_b1 = a.b1;
    o.init_v = a.v;
    rc = vv_shallow_train(&d, &o, NULL, NULL, &b);
    vv_shallow_opts o2 = o;
    o2.init_w1 = o2.init_b1 = o2.init_v = NULL;
    vv_shallow_result c;
    int rc2 = vv_shallow_train(&d, &o2, NULL, NULL, &c);
    CHECK(rc == 0 && rc2 == 0 && memcmp(b.v, c.v, sizeof(double) * 200) == 0 &&
              memcmp(b.w1, c.w1, sizeof(double) * 200) == 0,
          "init weights equal to the seeded draw give the seeded run bit for bit");
    vv_shallow_result_free(&a);
    vv_shallow_result_free(&b);
    vv_shallow_result_free(&c);
    vv_shallow_data_free(&d);
}

static void test_stop_and_errors(void)
{
    vv_shallow_data d;
    vv_shallow_data_make(50, 2, 5, 2, 43, &d);
    vv_shallow_opts o;
    vv_shallow_opts_default(&o);
    vv_shallow_result r;
    atomic_int stop = 1;
    o.stop = &stop;
    int rc = vv_shallow_train(&d, &o, NULL, NULL, &r);
    CHECK(rc == 0 && r.steps == 0 && r.stop_reason == VV_SHALLOW_USER && r.w1 != NULL,
          "a raised stop flag ends the run at once with its weights");
    vv_shallow_result_free(&r);
    o.stop = NULL;
    logbook lb = {.stop_at = 2};
    o.log_every = 1000;
    rc = vv_shallow_train(&d, &o, logger, &lb, &r);
    CHECKF(rc == 0 && r.steps == 1001 && r.stop_reason == VV_SHALLOW_USER && lb.finals == 1,
           "a callback returning 1 at step 1000 stops after it (steps %lld)", (long long)r.steps);
    vv_shallow_result_free(&r);
    o.log_every = 0;
    o.max_seconds = 0.05;
    rc = vv_shallow_train(&d, &o, NULL, NULL, &r);
    CHECKF(rc == 0 && r.stop_reason == VV_SHALLOW_MAX_SECONDS && r.steps < 1000000 &&
               r.steps % 4096 == 0,
           "max_seconds 0.05 stops at a poll point (%lld steps)", (long long)r.steps);
    vv_shallow_result_free(&r);
    vv_shallow_opts_default(&o);
    o.lr = 1e6;
    o.mode = VV_SHALLOW_NONE;
    o.steps = 10000;
    rc = vv_shallow_train(&d, &o, NULL, NULL, &r);
    CHECKF(rc == VV_ENUMERIC && r.w1 == NULL, "lr 1e6 diverges: VV_ENUMERIC (%s)",
           vv_err_detail());

    vv_shallow_opts_default(&o);
    o.width = 0;
    CHECK(vv_shallow_train(&d, &o, NULL, NULL, &r) == VV_EINVAL && strstr(vv_err_detail(), "width"),
          "width 0 is VV_EINVAL naming width");
    vv_shallow_opts_default(&o);
    o.lr = 0;
    CHECK(vv_shallow_train(&d, &o, NULL, NULL, &r) == VV_EINVAL && strstr(vv_err_detail(), "lr"),
          "lr 0 is VV_EINVAL naming lr");
    vv_shallow_opts_default(&o);
    o.mode = 9;
    CHECK(vv_shallow_train(&d, &o, NULL, NULL, &r) == VV_EINVAL, "mode 9 is VV_EINVAL");
    vv_shallow_opts_default(&o);
    o.steps = -1;
    CHECK(vv_shallow_train(&d, &o, NULL, NULL, &r) == VV_EINVAL, "steps -1 is VV_EINVAL");
    vv_shallow_opts_default(&o);
    o.reg = NAN;
    CHECK(vv_shallow_train(&d, &o, NULL, NULL, &r) == VV_EINVAL, "reg NaN is VV_EINVAL");
    vv_shallow_opts_default(&o);
    o.init_w1 = d.x;
    CHECK(vv_shallow_train(&d, &o, NULL, NULL, &r) == VV_EINVAL, "init_w1 alone is VV_EINVAL");
    CHECK(vv_shallow_train(NULL, NULL, NULL, NULL, &r) == VV_EINVAL, "NULL data is VV_EINVAL");
    CHECK(vv_shallow_train(&d, NULL, NULL, NULL, NULL) == VV_EINVAL, "NULL result is VV_EINVAL");
    CHECK(vv_shallow_mode_parse("prox_vv") == VV_SHALLOW_PROX_VV &&
              vv_shallow_mode_parse("weight_decay") == VV_SHALLOW_WEIGHT_DECAY &&
              vv_shallow_mode_parse("none") == VV_SHALLOW_NONE &&
              vv_shallow_mode_parse("wd") == VV_EINVAL && vv_shallow_mode_parse(NULL) == VV_EINVAL,
          "mode names parse; unknown ones are VV_EINVAL");
    CHECK(strcmp(vv_shallow_stop_name(VV_SHALLOW_MAX_SECONDS), "max_seconds") == 0 &&
              strcmp(vv_shallow_stop_name(VV_SHALLOW_DONE), "max_iter") == 0 &&
              strcmp(vv_shallow_mode_name(42), "unknown") == 0,
          "stop reasons use the run vocabulary");
    vv_shallow_result_free(NULL);
    vv_shallow_data_free(&d);
}

static int count(const char *s, const char *pat)
{
    int c = 0;
    for (const char *p = strstr(s, pat); p; p = strstr(p + 1, pat))
        c++;
    return c;
}

static void test_svg(void)
{
    vv_shallow_data d;
    vv_shallow_data_make(50, 2, 5, 2, 43, &d);
    vv_shallow_opts o;
    vv_shallow_opts_default(&o);
    o.steps = 20000;
    o.log_every = 0;
    vv_shallow_result r;
    vv_shallow_train(&d, &o, NULL, NULL, &r);
    char *svg = NULL;
    int rc = vv_shallow_svg(&r, "Neurons <f_1/f_2> & weight decay", &svg);
    CHECK(rc == 0 && svg && strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "</svg>\n"),
          "svg: a complete document");
    if (svg) {
        CHECKF(count(svg, "<circle") == r.used[0] + r.used[1],
               "svg: one disc per (output, used neuron): %d = %d + %d", count(svg, "<circle"),
               r.used[0], r.used[1]);
        CHECK(strstr(svg, ">f_1 ") && strstr(svg, ">f_2 ") && strstr(svg, "3\xcf\x80/2") &&
                  strstr(svg, ">-3<") && strstr(svg, ">3<"),
              "svg: panels f_1 and f_2, ticks 0..2pi and -3..3");
        CHECK(strstr(svg, "&lt;f_1/f_2&gt; &amp;") && !strstr(svg, "@font-face") &&
                  !strstr(svg, "href"),
              "svg: title escaped, no external fonts or links");
    }
    free(svg);
    r.d_in = 3;
    CHECK(vv_shallow_svg(&r, NULL, &svg) == VV_EINVAL && svg == NULL, "svg: d_in 3 is VV_EINVAL");
    r.d_in = 2;
    CHECK(vv_shallow_svg(NULL, NULL, &svg) == VV_EINVAL, "svg: NULL result is VV_EINVAL");
    vv_shallow_result_free(&r);
    vv_shallow_data_free(&d);
}

int main(void)
{
    vv_shallow_opts o;
    vv_shallow_opts_default(&o);
    CHECK(o.width == 100 && o.lr == 0.2 && o.reg == 5e-5 && o.steps == 1000000 &&
              o.mode == VV_SHALLOW_PROX_VV && o.seed == 49,
          "defaults are the paper's settings");
    test_data();
    check_grad(50, 2, 5, 2, 100, 1); /* the paper's shape, 100 -> 112 padded units */
    check_grad(13, 2, 3, 1, 20, 2);  /* the per-output path */
    check_grad(9, 1, 3, 1, 16, 3);   /* no padding */
    check_grad(11, 3, 4, 5, 33, 4);  /* generic sizes */
    test_prox();
    test_sharing(43, 49);
    test_sharing(3, 49);
    test_sharing(8, 49);
    test_baselines();
    test_stop_and_errors();
    test_svg();
    return tap_done();
}
