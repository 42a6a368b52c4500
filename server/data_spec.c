/* data_spec.c - data sets and their preprocessing in job specs
 * (model_spec.h). */
#include "model_spec.h"

#include "vv/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Preprocessing ------------------------------------------------------------------ */

static int float_list(const cJSON *v, const char *ptr, float *out, int max, int *n, char *field,
                      size_t fsz)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 || cJSON_GetArraySize(v) > max)
        return spec_bad(field, fsz, VV_ETYPE, ptr, "must be an array of 1 to %d numbers", max);
    int i = 0;
    for (const cJSON *x = v->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
            char p[256];
            snprintf(p, sizeof p, "%.200s/%d", ptr, i);
            return spec_bad(field, fsz, VV_ETYPE, p, "must be a finite number");
        }
        out[i] = (float)x->valuedouble;
    }
    *n = i;
    return 0;
}

int preprocess_parse(const cJSON *j, const char *ptr, vv_preprocess *pp, char *field, size_t fsz)
{
    static const char *const allowed[] = {"resize", "crop", "mean", "std", "scale255", NULL};
    memset(pp, 0, sizeof *pp);
    if (!cJSON_IsObject(j))
        return spec_bad(field, fsz, VV_ETYPE, ptr, "must be an object {resize, crop, mean, std}");
    int rc = spec_only(j, ptr, allowed, field, fsz);
    if (rc == 0)
        rc = spec_opt_int(j, "resize", ptr, 1, 4096, &pp->resize, field, fsz);
    if (rc == 0)
        rc = spec_opt_int(j, "crop", ptr, 1, 4096, &pp->crop, field, fsz);
    if (rc == 0)
        rc = spec_opt_bool(j, "scale255", ptr, &pp->scale255, field, fsz);
    if (rc < 0)
        return rc;
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(j, "mean"),
                *std = cJSON_GetObjectItemCaseSensitive(j, "std");
    char p[256];
    if (!mean != !std)
        return spec_bad(field, fsz, VV_EMISSING, ptr, "give mean and std together");
    if (mean) {
        int nm, ns;
        snprintf(p, sizeof p, "%.200s/mean", ptr);
        if ((rc = float_list(mean, p, pp->mean, 4, &nm, field, fsz)) < 0)
            return rc;
        snprintf(p, sizeof p, "%.200s/std", ptr);
        if ((rc = float_list(std, p, pp->std, 4, &ns, field, fsz)) < 0)
            return rc;
        if (nm != ns)
            return spec_bad(field, fsz, VV_EINVAL, p, "has %d values but mean has %d", ns, nm);
        for (int i = 0; i < ns; i++)
            if (!(pp->std[i] > 0))
                return spec_bad(field, fsz, VV_EINVAL, p, "values must be > 0");
        pp->nnorm = nm;
    }
    return 0;
}

cJSON *preprocess_json(const vv_preprocess *pp)
{
    cJSON *o = cJSON_CreateObject();
    if (pp->resize)
        cJSON_AddNumberToObject(o, "resize", pp->resize);
    if (pp->crop)
        cJSON_AddNumberToObject(o, "crop", pp->crop);
    if (pp->scale255)
        cJSON_AddBoolToObject(o, "scale255", 1);
    if (pp->nnorm) {
        cJSON *m = cJSON_AddArrayToObject(o, "mean"), *s = cJSON_AddArrayToObject(o, "std");
        for (int i = 0; i < pp->nnorm; i++) {
            cJSON_AddItemToArray(m, cJSON_CreateNumber(pp->mean[i]));
            cJSON_AddItemToArray(s, cJSON_CreateNumber(pp->std[i]));
        }
    }
    return o;
}

/* ---- Data sets ----------------------------------------------------------------------- */

const char *data_fashion_mnist_dir(void)
{
    const char *d = getenv("VV_FASHION_MNIST_DIR");
    return d && d[0] ? d : "/usr/share/datasets/fashion-mnist";
}

static int split(const cJSON *o, const char *ptr, char **images, char **labels, char *field,
                 size_t fsz)
{
    static const char *const allowed[] = {"images", "labels", NULL};
    if (!cJSON_IsObject(o))
        return spec_bad(field, fsz, VV_ETYPE, ptr, "must be an object {\"images\", \"labels\"}");
    int rc = spec_only(o, ptr, allowed, field, fsz);
    if (rc < 0)
        return rc;
    const char *keys[] = {"images", "labels"};
    char **outs[] = {images, labels};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
        char p[256];
        snprintf(p, sizeof p, "%.200s/%s", ptr, keys[i]);
        if (!cJSON_IsString(v) || !v->valuestring[0])
            return spec_bad(field, fsz, v ? VV_ETYPE : VV_EMISSING, p, "a file path is required");
        if (!(*outs[i] = strdup(v->valuestring)))
            return vv_fail(VV_ENOMEM, "out of memory");
    }
    return 0;
}

static int set_fashion(data_spec *d)
{
    const char *dir = data_fashion_mnist_dir();
    const char *names[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    char **outs[] = {&d->train_images, &d->train_labels, &d->test_images, &d->test_labels};
    d->format = DATA_IDX;
    for (int i = 0; i < 4; i++) {
        char buf[4096];
        snprintf(buf, sizeof buf, "%s/%s", dir, names[i]);
        if (!(*outs[i] = strdup(buf)))
            return vv_fail(VV_ENOMEM, "out of memory");
    }
    return 0;
}

int data_spec_parse(const cJSON *j, const char *ptr, data_spec *d, char *field, size_t fsz)
{
    memset(d, 0, sizeof *d);
    if (cJSON_IsString(j)) {
        if (strcmp(j->valuestring, "fashion-mnist"))
            return spec_bad(
                field, fsz, VV_EINVAL, ptr,
                "unknown data set '%.64s' (the built-in one is fashion-mnist; others are "
                "objects {\"format\": \"idx\" | \"cifar10\" | \"npy\", ...})",
                j->valuestring);
        return set_fashion(d);
    }
    if (!cJSON_IsObject(j))
        return spec_bad(field, fsz, j ? VV_ETYPE : VV_EMISSING, ptr,
                        "must be \"fashion-mnist\" or an object {\"format\", ...}");
    static const char *const allowed[] = {"format",     "train",     "test",     "dir",
                                          "preprocess", "max_train", "max_test", NULL};
    int rc = spec_only(j, ptr, allowed, field, fsz);
    if (rc < 0)
        return rc;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "format");
    char p[256];
    snprintf(p, sizeof p, "%.200s/format", ptr);
    if (!cJSON_IsString(f))
        return spec_bad(field, fsz, f ? VV_ETYPE : VV_EMISSING, p,
                        "must be one of fashion-mnist, idx, cifar10, npy");
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(j, "train"),
                *test = cJSON_GetObjectItemCaseSensitive(j, "test"),
                *dir = cJSON_GetObjectItemCaseSensitive(j, "dir");
    if (!strcmp(f->valuestring, "fashion-mnist")) {
        if (train || test || dir) {
            snprintf(p, sizeof p, "%.200s/%s", ptr, train ? "train" : test ? "test" : "dir");
            return spec_bad(field, fsz, VV_EINVAL, p,
                            "does not apply to the built-in fashion-mnist");
        }
        rc = set_fashion(d);
    } else if (!strcmp(f->valuestring, "idx") || !strcmp(f->valuestring, "npy")) {
        d->format = f->valuestring[0] == 'i' ? DATA_IDX : DATA_NPY;
        if (dir) {
            snprintf(p, sizeof p, "%.200s/dir", ptr);
            return spec_bad(field, fsz, VV_EINVAL, p, "only applies to format cifar10");
        }
        snprintf(p, sizeof p, "%.200s/train", ptr);
        if (!train)
            return spec_bad(field, fsz, VV_EMISSING, p, "is required: {\"images\", \"labels\"}");
        rc = split(train, p, &d->train_images, &d->train_labels, field, fsz);
        if (rc == 0 && test) {
            snprintf(p, sizeof p, "%.200s/test", ptr);
            rc = split(test, p, &d->test_images, &d->test_labels, field, fsz);
        }
    } else if (!strcmp(f->valuestring, "cifar10")) {
        d->format = DATA_CIFAR10;
        snprintf(p, sizeof p, "%.200s/dir", ptr);
        if (!cJSON_IsString(dir) || !dir->valuestring[0])
            return spec_bad(field, fsz, dir ? VV_ETYPE : VV_EMISSING, p,
                            "the folder of data_batch_1..5.bin and test_batch.bin is required");
        if (train || test) {
            snprintf(p, sizeof p, "%.200s/%s", ptr, train ? "train" : "test");
            return spec_bad(field, fsz, VV_EINVAL, p,
                            "does not apply to format cifar10 (give dir)");
        }
        if (!(d->dir = strdup(dir->valuestring)))
            return vv_fail(VV_ENOMEM, "out of memory");
    } else {
        return spec_bad(field, fsz, VV_EINVAL, p,
                        "unknown format '%.64s' (fashion-mnist, idx, cifar10, npy)",
                        f->valuestring);
    }
    if (rc < 0)
        return rc;
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "preprocess");
    if (pre) {
        snprintf(p, sizeof p, "%.200s/preprocess", ptr);
        if ((rc = preprocess_parse(pre, p, &d->pp, field, fsz)) < 0)
            return rc;
        d->has_pp = 1;
    }
    int64_t most = INT64_C(1000000000000);
    if ((rc = spec_opt_i64(j, "max_train", ptr, 1, most, &d->max_train, field, fsz)) < 0)
        return rc;
    return spec_opt_i64(j, "max_test", ptr, 1, most, &d->max_test, field, fsz);
}

void data_spec_free(data_spec *d)
{
    if (!d)
        return;
    free(d->train_images);
    free(d->train_labels);
    free(d->test_images);
    free(d->test_labels);
    free(d->dir);
    memset(d, 0, sizeof *d);
}

int data_open(const data_spec *d, int test, vv_dataset **out, char *field, size_t fsz)
{
    *out = NULL;
    int rc = 0;
    const char *img = test ? d->test_images : d->train_images;
    const char *lab = test ? d->test_labels : d->train_labels;
    if (d->format == DATA_CIFAR10) {
        char paths[5][4200];
        const char *ps[5];
        int n = test ? 1 : 5;
        for (int i = 0; i < n; i++) {
            if (test)
                snprintf(paths[i], sizeof paths[i], "%s/test_batch.bin", d->dir);
            else
                snprintf(paths[i], sizeof paths[i], "%s/data_batch_%d.bin", d->dir, i + 1);
            ps[i] = paths[i];
        }
        rc = vv_dataset_open_cifar10(ps, n, out);
        if (rc < 0 && field && fsz)
            snprintf(field, fsz, "/data/dir");
        return rc;
    }
    if (!img)
        return 0;
    rc = d->format == DATA_IDX ? vv_dataset_open_idx(img, lab, out)
                               : vv_dataset_open_npy(img, lab, out);
    if (rc < 0 && field && fsz)
        snprintf(field, fsz, "/data/%s/%s", test ? "test" : "train",
                 strstr(vv_err_detail(), lab) ? "labels" : "images");
    return rc;
}

int data_paths(const data_spec *d, const char **paths, int max)
{
    int n = 0;
    const char *all[] = {d->train_images, d->train_labels, d->test_images, d->test_labels, d->dir};
    for (int i = 0; i < 5 && n < max; i++)
        if (all[i])
            paths[n++] = all[i];
    return n;
}
