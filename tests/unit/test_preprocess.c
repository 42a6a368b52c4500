/* test_preprocess.c - the data sets' preprocessing: the checks of a
 * vv_preprocess, resize + crop + normalise against PyTorch
 * (tests/fixtures/dataset, made by gen_dataset.py), random crops and flips
 * checked by brute force, determinism, concurrent batches and the speed of
 * a CIFAR-10 batch upscaled to 64 x 64. */
#include "dataset_util.h"
#include "vv/array.h"
#include "vv/lasso.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- Preprocessing checks -------------------------------------------------- */

/* A data set of n random images c x h x w (uint8), labels i % 10. */
static vv_dataset *random_set(int n, int c, int h, int w, uint64_t seed)
{
    char im[512], lb[512];
    tp(im, sizeof im, "rand_x.npy");
    tp(lb, sizeof lb, "rand_y.npy");
    size_t np = (size_t)n * (size_t)(c * h * w);
    unsigned char *p = malloc(np);
    int64_t *l = malloc((size_t)n * sizeof(int64_t));
    vv_rng r;
    vv_rng_seed(&r, seed);
    for (size_t i = 0; i < np; i++)
        p[i] = (unsigned char)(vv_rng_next(&r) >> 56);
    for (int i = 0; i < n; i++)
        l[i] = i % 10;
    int64_t s4[4] = {n, c, h, w}, s1[1] = {n};
    write_npy(im, "|u1", 0, 4, s4, p, np);
    write_npy(lb, "<i8", 0, 1, s1, l, (size_t)n * sizeof(int64_t));
    vv_dataset *ds = NULL;
    if (vv_dataset_open_npy(im, lb, &ds) != 0)
        fprintf(stderr, "random_set: %s\n", vv_err_detail());
    free(p);
    free(l);
    unlink(im);
    unlink(lb);
    return ds;
}

static void test_checks(void)
{
    vv_dataset *ds = random_set(3, 3, 32, 32, 1), *wide = random_set(1, 3, 20, 30, 2);
    if (!ds || !wide) {
        CHECK(0, "checks: random data sets");
        return;
    }
    int c, h, w;
    vv_preprocess pp = {0};
    vv_preprocess_shape(ds, &pp, &c, &h, &w);
    CHECK(c == 3 && h == 32 && w == 32, "shape: scale only keeps 3 x 32 x 32");
    pp.resize = 16;
    vv_preprocess_shape(wide, &pp, &c, &h, &w);
    CHECK(h == 16 && w == 24, "shape: 20 x 30 resized to 16 is 16 x 24");
    pp.resize = 7;
    vv_preprocess_shape(wide, &pp, &c, &h, &w);
    CHECK(h == 7 && w == 10, "shape: 20 x 30 resized to 7 is 7 x int(7 * 30 / 20) = 10");
    pp.crop = 5;
    vv_preprocess_shape(wide, &pp, &c, &h, &w);
    CHECK(c == 3 && h == 5 && w == 5 && vv_preprocess_check(wide, &pp) == 0,
          "shape: crop 5 gives 3 x 5 x 5");
    CHECK(vv_preprocess_check(ds, NULL) == 0, "check: NULL preprocessing is fine");

    static const struct {
        vv_preprocess pp;
        const char *field;
        const char *what;
    } bad[] = {
        {{.crop = 33}, "crop = 33", "center crop 33 of a 32 x 32 image"},
        {{.resize = 40, .crop = 41}, "crop = 41", "crop 41 after resizing to 40"},
        {{.crop = 37, .random_crop = 1, .pad = 2}, "crop = 37", "random crop 37 with pad 2"},
        {{.nnorm = 1, .mean = {0.5f}, .std = {1}}, "nnorm = 1", "nnorm 1 for 3 channels"},
        {{.nnorm = 5}, "nnorm = 5", "nnorm 5"},
        {{.nnorm = 3, .mean = {0, 0, 0}, .std = {1, 0, 1}}, "std[1]", "std 0"},
        {{.nnorm = 3, .mean = {0, NAN, 0}, .std = {1, 1, 1}}, "mean[1]", "mean NaN"},
        {{.nnorm = 3, .mean = {0, 0, 0}, .std = {1, 1, INFINITY}}, "std[2]", "std Inf"},
        {{.resize = -1}, "resize = -1", "negative resize"},
        {{.crop = -2}, "crop = -2", "negative crop"},
        {{.crop = 8, .random_crop = 1, .pad = -1}, "pad = -1", "negative pad"},
        {{.random_crop = 1}, "random_crop", "random crop without a crop size"},
        {{.crop = 8, .pad = 2}, "pad = 2", "pad without random_crop"},
        {{.resize = 70000}, "resize = 70000", "resize 70000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = vv_preprocess_check(ds, &bad[i].pp);
        expect(rc, VV_EINVAL, bad[i].field, NULL, bad[i].what);
        float x[1];
        rc = vv_dataset_batch(ds, &bad[i].pp, NULL, 0, 1, NULL, x, NULL);
        CHECKF(rc == VV_EINVAL, "batch refuses it too: %s", bad[i].what);
    }
    vv_preprocess big = {.resize = 50000};
    expect(vv_preprocess_check(wide, &big), VV_EINVAL, "resize = 50000", "75000",
           "resize 50000 of 20 x 30 images: the long side exceeds 65536");
    vv_preprocess ok = {.crop = 36,
                        .random_crop = 1,
                        .pad = 2,
                        .nnorm = 3,
                        .mean = {0.1f, 0.2f, 0.3f},
                        .std = {-1, 2, 3}};
    CHECK(vv_preprocess_check(ds, &ok) == 0, "check: random crop 36 with pad 2, negative std");

    /* Batch arguments. */
    float *x = malloc(3 * 3 * 36 * 36 * sizeof(float));
    int32_t y[3];
    int rc = vv_dataset_batch(ds, &ok, NULL, 0, 2, NULL, x, y);
    expect(rc, VV_EINVAL, "rng", NULL, "batch: random crop without an rng");
    vv_preprocess flip = {.hflip = 1};
    rc = vv_dataset_batch(ds, &flip, NULL, 0, 2, NULL, x, y);
    expect(rc, VV_EINVAL, "rng", NULL, "batch: hflip without an rng");
    int64_t idx[3] = {2, 3, 0};
    rc = vv_dataset_batch(ds, NULL, idx, 0, 3, NULL, x, y);
    expect(rc, VV_EINVAL, "idx[1] = 3", NULL, "batch: index 3 of 3 images");
    idx[1] = -1;
    rc = vv_dataset_batch(ds, NULL, idx, 0, 3, NULL, x, y);
    expect(rc, VV_EINVAL, "idx[1] = -1", NULL, "batch: index -1");
    rc = vv_dataset_batch(ds, NULL, NULL, 2, 2, NULL, x, y);
    expect(rc, VV_EINVAL, "start = 2", NULL, "batch: images 2..3 of 3");
    rc = vv_dataset_batch(ds, NULL, NULL, 0, -1, NULL, x, y);
    expect(rc, VV_EINVAL, "count = -1", NULL, "batch: negative count");
    CHECK(vv_dataset_batch(ds, NULL, NULL, 3, 0, NULL, NULL, NULL) == 0,
          "batch: an empty batch at the end is fine");
    idx[0] = 2;
    idx[1] = 0;
    rc = vv_dataset_batch(ds, NULL, idx, 0, 2, NULL, x, y);
    float *all = all_pixels(ds);
    CHECK(rc == 0 && y[0] == 2 && y[1] == 0 && all &&
              !memcmp(x, all + 2 * 3072, 3072 * sizeof(float)) &&
              !memcmp(x + 3072, all, 3072 * sizeof(float)),
          "batch: idx picks images and labels in the given order");
    free(all);
    free(x);
    vv_dataset_free(ds);
    vv_dataset_free(wide);
    vv_dataset_free(NULL);
    CHECK(vv_dataset_count(NULL) == 0 && vv_dataset_labels(NULL) == NULL,
          "accessors and vv_dataset_free accept NULL");
}

/* ---- Against PyTorch --------------------------------------------------------- */

static void test_fixtures(void)
{
    static const struct {
        const char *name;
        vv_preprocess pp;
    } cases[] = {
        {"cifar70",
         {.resize = 70,
          .crop = 64,
          .nnorm = 3,
          .mean = {0.4914f, 0.4822f, 0.4465f},
          .std = {0.2470f, 0.2435f, 0.2616f}}},
        {"down20", {.resize = 20}},
        {"wide16",
         {.resize = 16,
          .crop = 15,
          .nnorm = 3,
          .mean = {0.5f, 0.25f, 0.125f},
          .std = {0.5f, 2.0f, 0.25f}}},
        {"tall7", {.resize = 7}},
        {"up11",
         {.scale255 = 1,
          .resize = 11,
          .crop = 10,
          .nnorm = 2,
          .mean = {0.5f, 0.1f},
          .std = {0.3f, -2.0f}}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *name = cases[k].name;
        char xp[512], yp[512], op[512];
        snprintf(xp, sizeof xp, "%s/dataset/%s_x.npy", VV_FIXTURES, name);
        snprintf(yp, sizeof yp, "%s/dataset/%s_y.npy", VV_FIXTURES, name);
        snprintf(op, sizeof op, "%s/dataset/%s_out.npy", VV_FIXTURES, name);
        vv_dataset *ds = NULL;
        vv_npy_raw want, lab;
        int rc = vv_dataset_open_npy(xp, yp, &ds);
        int rc2 = vv_npy_read_raw(op, &want);
        int rc3 = vv_npy_read_raw(yp, &lab);
        CHECKF(rc == 0 && rc2 == 0 && rc3 == 0, "%s: fixture opens (%s)", name,
               why(rc | rc2 | rc3));
        if (rc == 0 && rc2 == 0 && rc3 == 0) {
            const vv_preprocess *pp = &cases[k].pp;
            int c, h, w;
            int64_t n = vv_dataset_count(ds);
            vv_preprocess_shape(ds, pp, &c, &h, &w);
            CHECKF(vv_preprocess_check(ds, pp) == 0 && want.ndim == 4 && want.shape[0] == n &&
                       want.shape[1] == c && want.shape[2] == h && want.shape[3] == w,
                   "%s: output shape %d x %d x %d as PyTorch's", name, c, h, w);
            size_t total = (size_t)n * (size_t)(c * h * w);
            float *x = malloc(total * sizeof(float));
            int32_t *y = malloc((size_t)n * sizeof(int32_t));
            rc = vv_dataset_batch(ds, pp, NULL, 0, n, NULL, x, y);
            double err = 0;
            const float *ref = want.data;
            if (rc == 0 && want.shape[1] == c && want.shape[2] == h && want.shape[3] == w)
                for (size_t i = 0; i < total; i++)
                    err = fmax(err, isnan(x[i]) ? INFINITY : fabs((double)x[i] - ref[i]));
            else
                err = INFINITY;
            CHECKF(err <= 1e-5, "%s: resize/crop/normalise within 1e-5 of PyTorch (max %.3g)", name,
                   err);
            int ok = rc == 0;
            for (int64_t i = 0; ok && i < n; i++) {
                int64_t v = 0;
                memcpy(&v, (const char *)lab.data + i * lab.itemsize, (size_t)lab.itemsize);
                ok = y[i] == (int32_t)v;
            }
            CHECKF(ok, "%s: labels (%s) returned with the batch", name, lab.descr);
            free(x);
            free(y);
        }
        vv_dataset_free(ds);
        vv_npy_raw_free(&want);
        vv_npy_raw_free(&lab);
    }
}

/* ---- Augmentations by brute force ------------------------------------------ */

/* Searches the padded reference (c x ph x pw: the resized, normalised image
 * framed by normalised zeros) for every oh x ow window that out is an
 * exact copy of, mirrored (f = 1) or not; returns the number of matches and
 * sets *dy, *dx and *fl to the first. */
static int find_window(const float *ref, int c, int ph, int pw, const float *out, int oh, int ow,
                       int *dy, int *dx, int *fl)
{
    int found = 0;
    for (int f = 0; f < 2; f++)
        for (int y0 = 0; y0 + oh <= ph; y0++)
            for (int x0 = 0; x0 + ow <= pw; x0++) {
                int ok = 1;
                for (int ch = 0; ok && ch < c; ch++)
                    for (int y = 0; ok && y < oh; y++)
                        for (int x = 0; ok && x < ow; x++) {
                            int sx = f ? x0 + ow - 1 - x : x0 + x;
                            ok = out[((size_t)ch * oh + y) * ow + x] ==
                                 ref[((size_t)ch * ph + y0 + y) * pw + sx];
                        }
                if (ok) {
                    if (!found++) {
                        *dy = y0;
                        *dx = x0;
                        *fl = f;
                    }
                }
            }
    return found;
}

static void test_augment(void)
{
    enum { N = 48 };
    vv_dataset *ds = random_set(N, 3, 24, 24, 7);
    if (!ds) {
        CHECK(0, "augment: random data set");
        return;
    }
    /* Resize 24 -> 30, zero-pad by 3, random 28 x 28 crop, flip, normalise. */
    vv_preprocess aug = {.resize = 30,
                         .crop = 28,
                         .random_crop = 1,
                         .pad = 3,
                         .hflip = 1,
                         .nnorm = 3,
                         .mean = {0.5f, 0.4f, 0.3f},
                         .std = {0.2f, 0.3f, 0.25f}};
    vv_preprocess full = {
        .resize = 30, .nnorm = 3, .mean = {0.5f, 0.4f, 0.3f}, .std = {0.2f, 0.3f, 0.25f}};
    enum { R = 30, P = 3, PS = R + 2 * P, O = 28 };
    size_t per = 3 * O * O;
    float *a = malloc(N * per * sizeof(float)), *b = malloc(N * per * sizeof(float));
    float *c = malloc(N * per * sizeof(float));
    float *ref = malloc((size_t)N * 3 * R * R * sizeof(float));
    float *pad = malloc(3 * PS * PS * sizeof(float));
    vv_rng r1, r2, r3;
    vv_rng_seed(&r1, 42);
    vv_rng_seed(&r2, 42);
    vv_rng_seed(&r3, 43);
    int rc = vv_dataset_batch(ds, &aug, NULL, 0, N, &r1, a, NULL);
    rc |= vv_dataset_batch(ds, &aug, NULL, 0, N, &r2, b, NULL);
    rc |= vv_dataset_batch(ds, &aug, NULL, 0, N, &r3, c, NULL);
    CHECKF(rc == 0, "augment: batches run (%s)", why(rc));
    CHECK(!memcmp(a, b, N * per * sizeof(float)) && !memcmp(&r1, &r2, sizeof r1),
          "augment: the same seed gives the same batch and leaves the same rng state");
    CHECK(memcmp(a, c, N * per * sizeof(float)) != 0, "augment: another seed, another batch");
    rc = vv_dataset_batch(ds, &full, NULL, 0, N, NULL, ref, NULL);
    int matched = 0, flips = 0, unique = 1, offsets = 0;
    int seen[PS - O + 1][PS - O + 1];
    memset(seen, 0, sizeof seen);
    for (int i = 0; rc == 0 && i < N; i++) {
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < PS; y++)
                for (int x = 0; x < PS; x++) {
                    int ry = y - P, rx = x - P;
                    pad[(ch * PS + y) * PS + x] =
                        ry >= 0 && ry < R && rx >= 0 && rx < R
                            ? ref[(((size_t)i * 3 + ch) * R + ry) * R + rx]
                            : (0 - full.mean[ch]) / full.std[ch];
                }
        int dy = 0, dx = 0, fl = 0;
        int n = find_window(pad, 3, PS, PS, a + i * per, O, O, &dy, &dx, &fl);
        if (n >= 1) {
            matched++;
            flips += fl;
            offsets += !seen[dy][dx]++;
        }
        unique = unique && n <= 1;
    }
    CHECKF(matched == N,
           "augment: all %d outputs are windows of the padded, resized image, "
           "mirrored or not (%d)",
           N, matched);
    CHECK(unique, "augment: each output matches exactly one window and flip");
    CHECKF(flips > N / 5 && flips < N - N / 5, "augment: about half are flipped (%d of %d)", flips,
           N);
    CHECKF(offsets >= 15, "augment: offsets vary (%d distinct of 81)", offsets);

    /* A random crop as large as the padded image has one position; hflip
     * alone mirrors exactly. */
    vv_preprocess fl_only = {.hflip = 1};
    vv_rng r4;
    vv_rng_seed(&r4, 5);
    float *all = all_pixels(ds);
    rc = vv_dataset_batch(ds, &fl_only, NULL, 0, N, &r4, a, NULL);
    int exact = rc == 0 && all, nflip = 0;
    for (int i = 0; exact && i < N; i++) {
        const float *src = all + (size_t)i * 3 * 24 * 24, *o = a + (size_t)i * 3 * 24 * 24;
        int same = !memcmp(src, o, 3 * 24 * 24 * sizeof(float)), mirrored = 1;
        for (int k = 0; mirrored && k < 3 * 24 * 24; k++)
            mirrored = o[k] == src[k - k % 24 + 23 - k % 24];
        exact = same || mirrored;
        nflip += !same;
    }
    CHECKF(exact && nflip > 0 && nflip < N, "hflip alone: copies or mirror images (%d flipped)",
           nflip);
    free(all);
    free(a);
    free(b);
    free(c);
    free(ref);
    free(pad);
    vv_dataset_free(ds);
}

/* ---- Concurrency and speed ------------------------------------------------- */

typedef struct {
    const vv_dataset *ds;
    const vv_preprocess *pp;
    uint64_t seed;
    float *x;
    int rc;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    vv_rng r;
    vv_rng_seed(&r, j->seed);
    j->rc = vv_dataset_batch(j->ds, j->pp, NULL, 0, vv_dataset_count(j->ds), &r, j->x, NULL);
    return NULL;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void test_threads_and_speed(void)
{
    enum { N = 256, T = 4 };
    vv_dataset *ds = random_set(N, 3, 32, 32, 11);
    if (!ds) {
        CHECK(0, "speed: random data set");
        return;
    }
    vv_preprocess center = {.resize = 70,
                            .crop = 64,
                            .nnorm = 3,
                            .mean = {0.49f, 0.48f, 0.45f},
                            .std = {0.25f, 0.24f, 0.26f}};
    vv_preprocess train = center;
    train.random_crop = 1;
    train.pad = 4;
    train.hflip = 1;
    size_t per = 3 * 64 * 64;
    float *x = malloc(N * per * sizeof(float));

    job jobs[T];
    pthread_t th[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (job){ds, &train, 100 + (uint64_t)(t % 2), malloc(N * per * sizeof(float)), -1};
        pthread_create(&th[t], NULL, run_job, &jobs[t]);
    }
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    int ok = 1;
    for (int t = 0; t < T; t++) {
        job one = {ds, &train, jobs[t].seed, x, -1};
        run_job(&one);
        ok = ok && jobs[t].rc == 0 && one.rc == 0 && !memcmp(x, jobs[t].x, N * per * sizeof(float));
        free(jobs[t].x);
    }
    CHECK(ok, "threads: 4 concurrent batches on one data set equal the same batches run alone");

    const vv_preprocess *pps[2] = {&center, &train};
    for (int k = 0; k < 2; k++) {
        vv_rng r;
        vv_rng_seed(&r, 1);
        double best = INFINITY;
        int rc = 0;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now_ms();
            rc |= vv_dataset_batch(ds, pps[k], NULL, 0, N, &r, x, NULL);
            double dt = now_ms() - t0;
            best = dt < best ? dt : best;
        }
        printf("# %d CIFAR-sized images 32 -> 70 -> 64 (%s): %.2f ms\n", N,
               k ? "random crop, pad 4, flip" : "center crop", best);
        /* The goal is well under 50 ms on one core; the bound leaves room
         * for a loaded machine.  Sanitizer builds (VV_TEST_QUICK) are many
         * times slower. */
        double limit = getenv("VV_TEST_QUICK") ? 2000 : 200;
        CHECKF(rc == 0 && best < limit, "speed: %s batch of %d in %.1f ms (< %.0f ms)",
               k ? "training" : "evaluation", N, best, limit);
    }
    free(x);
    vv_dataset_free(ds);
}

int main(void)
{
    const char *t = getenv("VV_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", t && *t ? t : "/tmp");
    test_checks();
    test_fixtures();
    test_augment();
    test_threads_and_speed();
    return tap_done();
}
