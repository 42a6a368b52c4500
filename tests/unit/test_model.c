/* test_model.c - the model runtime against PyTorch: narrow VGG-19 and
 * AlexNet and a small MLP with the logits of committed fixtures
 * (tests/fixtures/gen_model.py), the full-size architectures' state_dict
 * shapes and parameter counts, weight-file errors, pruning and saving. */
#include "file_util.h"
#include "tap.h"
#include "vv/array.h"
#include "vv/backend.h"
#include "vv/err.h"
#include "vv/model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

static char fx[512];

static const char *fixture(const char *name)
{
    snprintf(fx, sizeof fx, "%s/model/%s", VV_FIXTURES, name);
    return fx;
}

static void against_torch(const char *name, vv_model *m)
{
    char w[256], x[256], y[256];
    snprintf(w, sizeof w, "%s.safetensors", name);
    snprintf(x, sizeof x, "%s_x.npy", name);
    snprintf(y, sizeof y, "%s_logits.npy", name);
    int rc = vv_model_load(m, fixture(w));
    CHECKF(rc == 0, "%s: loads its BF16 state_dict (%s)", name, rc ? vv_err_detail() : "");
    vv_array xa, ya;
    CHECK(vv_npy_read(fixture(x), &xa) == 0 && vv_npy_read(fixture(y), &ya) == 0,
          "fixture arrays read");
    int64_t n = xa.shape[0], k = ya.shape[1];
    CHECKF(xa.shape[1] == vv_model_size(m, -1) && k == vv_model_size(m, m->n - 1),
           "%s: fixture shapes fit the model", name);
    float *out = calloc((size_t)(n * k), sizeof(float));
    CHECK(vv_model_forward(m, 0, m->n, xa.data, n, out) == 0, "forward runs");
    double e = rel_err(out, ya.data, n * k);
    CHECKF(e < 1e-4, "%s: logits equal PyTorch's (max rel err %.2e < 1e-4)", name, e);

    /* Splitting the pass at the last linear layer's input gives the same. */
    int L = vv_model_find(m, m->layers[m->n - 1].name);
    int64_t kl = vv_model_size(m, L - 1);
    float *phi = malloc((size_t)(n * kl) * sizeof(float)), *out2 = malloc((size_t)(n * k) * 4);
    CHECK(vv_model_forward(m, 0, L, xa.data, n, phi) == 0 &&
              vv_model_forward(m, L, m->n, phi, n, out2) == 0,
          "forward in two pieces runs");
    CHECKF(rel_err(out2, out, n * k) == 0, "%s: [0,L) then [L,n) equals one pass", name);
    /* One sample at a time equals the batch. */
    int same = 1;
    for (int64_t s = 0; s < n; s++) {
        float o1[64];
        vv_model_forward(m, 0, m->n, (float *)xa.data + s * xa.shape[1], 1, o1);
        same &= rel_err(o1, out + s * k, k) < 1e-6;
    }
    CHECKF(same, "%s: per-sample passes equal the batched pass", name);

    /* On a device (the simulated one): weights uploaded once, the same
     * logits; split at the first batch norm (the conv's pass alone, then
     * the batch norm alone) or at the last linear layer's input. */
    vv_backend *sim;
    vv_backend_sim_open(NULL, &sim);
    vv_model_dev *md;
    rc = vv_model_dev_open(m, sim, &md);
    float *outd = malloc((size_t)(n * k) * sizeof(float));
    CHECKF(rc == 0 && vv_model_dev_bytes(md) >= (size_t)vv_model_bytes(m) &&
               vv_model_forward_dev(md, 0, m->n, xa.data, n, outd) == 0,
           "%s: on a device, weights up (%zu bytes) and a forward pass", name,
           rc ? 0 : vv_model_dev_bytes(md));
    double ed = rel_err(outd, ya.data, n * k), ec = rel_err(outd, out, n * k);
    CHECKF(ed < 1e-4 && ec < 1e-5,
           "%s: device logits equal PyTorch's (%.1e) and the CPU pass's (%.1e)", name, ed, ec);
    int split = L;
    for (int i = 1; i < m->n; i++)
        if (m->layers[i].type == VV_LAYER_BATCHNORM2D) {
            split = i;
            break;
        }
    int64_t ks = vv_model_size(m, split - 1);
    float *mid = malloc((size_t)(n * ks) * sizeof(float));
    CHECKF(vv_model_forward_dev(md, 0, split, xa.data, n, mid) == 0 &&
               vv_model_forward_dev(md, split, m->n, mid, n, out2) == 0 &&
               rel_err(out2, out, n * k) < 1e-5,
           "%s: on the device, [0,%d) then [%d,n) (%s first) equals the CPU pass", name, split,
           split, split == L ? "the last linear layer" : "a batch norm alone");
    /* The same with the features between kept on the device (VV_DEV_OUT,
     * then VV_DEV_IN): the same logits exactly, and the features (read by
     * a batch norm, in place otherwise) unchanged. */
    float *dmid = sim->ops->alloc(sim, (size_t)(n * ks) * sizeof(float));
    float *out3 = malloc((size_t)(n * k) * sizeof(float)), *mid2 = malloc((size_t)(n * ks) * 4);
    CHECKF(dmid && vv_model_forward_dev_at(md, 0, split, xa.data, n, dmid, VV_DEV_OUT) == 0 &&
               vv_model_forward_dev_at(md, split, m->n, dmid, n, out3, VV_DEV_IN) == 0 &&
               !memcmp(out3, out2, (size_t)(n * k) * sizeof(float)) &&
               sim->ops->download(sim, mid2, dmid, (size_t)(n * ks) * sizeof(float)) == 0 &&
               !memcmp(mid2, mid, (size_t)(n * ks) * sizeof(float)),
           "%s: features kept on the device between [0,%d) and [%d,n): the same logits, the "
           "features unchanged",
           name, split, split);
    sim->ops->free(sim, dmid);
    free(out3);
    free(mid2);
    /* A plan on the device runs the device's pass. */
    vv_forward_plan *plan;
    memset(out2, 0, (size_t)(n * k) * sizeof(float));
    CHECKF(vv_forward_plan_on(m, md, 0, m->n, &plan) == 0 &&
               vv_forward_plan_run(plan, xa.data, n, out2, 0) == 0 &&
               !memcmp(out2, outd, (size_t)(n * k) * sizeof(float)),
           "%s: a plan on the device gives its logits exactly", name);
    vv_forward_plan_free(plan);
    free(mid);
    free(outd);
    vv_model_dev_close(md);
    size_t used = 1;
    vv_backend_sim_counts(sim, NULL, &used);
    CHECKF(used == 0, "%s: closing frees the device memory (%zu bytes left)", name, used);
    sim->ops->close(sim);
    free(phi);
    free(out2);
    free(out);
    vv_array_free(&xa);
    vv_array_free(&ya);
}

static void full_size(const char *arch, vv_model *m)
{
    size_t len;
    snprintf(fx, sizeof fx, "%s/model/full_size.json", VV_FIXTURES);
    char *txt = (char *)slurp(fx, &len);
    cJSON *root = txt ? cJSON_ParseWithLength(txt, len) : NULL;
    cJSON *a = cJSON_GetObjectItem(root, arch);
    double params = cJSON_GetNumberValue(cJSON_GetObjectItem(a, "params"));
    CHECKF((double)vv_model_params(m) == params, "%s: %lld parameters, as PyTorch counts (%.0f)",
           arch, (long long)vv_model_params(m), params);
    /* Write a randomly initialised full-size state_dict with the shapes
     * PyTorch lists, and load it. */
    cJSON *sd = cJSON_GetObjectItem(a, "state_dict"), *t;
    int n = cJSON_GetArraySize(sd), i = 0;
    vv_st_tensor *ts = calloc((size_t)n, sizeof *ts);
    float **data = calloc((size_t)n, sizeof *data);
    int64_t one = 0;
    cJSON_ArrayForEach(t, sd)
    {
        ts[i].name = t->string;
        ts[i].ndim = cJSON_GetArraySize(t);
        int64_t numel = 1;
        for (int d = 0; d < ts[i].ndim; d++)
            numel *= ts[i].shape[d] = (int64_t)cJSON_GetArrayItem(t, d)->valuedouble;
        if (ts[i].ndim == 0) { /* num_batches_tracked: written as a 1-element I64 */
            ts[i].ndim = 1;
            ts[i].shape[0] = 1;
            ts[i].dtype = VV_I64;
            ts[i].data = &one;
        } else {
            ts[i].dtype = VV_F32;
            data[i] = malloc((size_t)numel * sizeof(float));
            for (int64_t q = 0; q < numel; q++)
                data[i][q] = (float)((q * 7919 + i) % 1000) / 1000.0f;
            ts[i].data = data[i];
        }
        i++;
    }
    char path[512];
    tmp_path(path, sizeof path, "model", arch);
    CHECK(vv_safetensors_write(path, ts, n) == 0, "full-size state_dict written");
    int rc = vv_model_load(m, path);
    CHECKF(rc == 0, "%s: a full-size state_dict of PyTorch's shapes loads (%s)", arch,
           rc ? vv_err_detail() : "");
    remove(path);
    for (int q = 0; q < n; q++)
        free(data[q]);
    free(data);
    free(ts);
    cJSON_Delete(root);
    free(txt);
}

static void load_errors(void)
{
    vv_model m;
    int sizes[] = {36, 20, 12, 5};
    vv_model_mlp(&m, 1, 6, 6, sizes, 4);
    char path[512];
    tmp_path(path, sizeof path, "model", "bad.safetensors");
    float w[20 * 36] = {0}, b[20] = {0}, w2[12 * 21] = {0}, b2[12] = {0}, w3[5 * 12], b3[5];
    vv_st_tensor ts[] = {
        {"fc1.weight", VV_F32, 2, {20, 36}, w},  {"fc1.bias", VV_F32, 1, {20}, b},
        {"fc2.weight", VV_F32, 2, {12, 21}, w2}, {"fc2.bias", VV_F32, 1, {12}, b2},
        {"fc3.weight", VV_F32, 2, {5, 12}, w3},  {"fc3.bias", VV_F32, 1, {5}, b3},
        {"fc4.weight", VV_F32, 1, {5}, b3},
    };
    vv_safetensors_write(path, ts, 6);
    int rc = vv_model_load(&m, path);
    CHECKF(rc == VV_ESHAPE && strstr(vv_err_detail(), "fc2.weight") &&
               strstr(vv_err_detail(), "[12, 21]") && strstr(vv_err_detail(), "[12, 20]"),
           "a wrong shape names the tensor and both shapes: %s", vv_err_detail());
    ts[2].shape[1] = 20;
    vv_safetensors_write(path, ts, 3);
    rc = vv_model_load(&m, path);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "missing tensor 'fc2.bias'"),
           "a missing tensor is named: %s", vv_err_detail());
    vv_safetensors_write(path, ts, 7);
    rc = vv_model_load(&m, path);
    CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), "'fc4.weight' has no place"),
           "an extra tensor is named: %s", vv_err_detail());
    vv_safetensors_write(path, ts, 6);
    CHECK(vv_model_load(&m, path) == 0, "the corrected file loads");
    tmp_path(path, sizeof path, "model", "missing.safetensors");
    CHECK(vv_model_load(&m, path) == VV_ENOFILE, "a missing file is VV_ENOFILE");
    vv_model_free(&m);

    /* Specs that do not fit their input. */
    vv_model_init(&m, 1, 6, 6);
    vv_layer fl = {.type = VV_LAYER_FLATTEN},
             li = {.type = VV_LAYER_LINEAR, .in_ch = 35, .out_ch = 4, .bias = 1, .name = "head"};
    vv_model_add(&m, &fl);
    vv_model_add(&m, &li);
    rc = vv_model_finish(&m);
    CHECKF(rc == VV_ESHAPE && strstr(vv_err_detail(), "'head'") && strstr(vv_err_detail(), "36"),
           "a linear layer of the wrong width is named: %s", vv_err_detail());
    vv_model_free(&m);
    vv_model_init(&m, 3, 8, 8);
    vv_layer cv = {
        .type = VV_LAYER_CONV2D, .in_ch = 1, .out_ch = 4, .kernel = 3, .stride = 1, .name = "c"};
    vv_model_add(&m, &cv);
    rc = vv_model_finish(&m);
    CHECKF(rc == VV_ESHAPE && strstr(vv_err_detail(), "in_channels is 1"),
           "a conv with the wrong in_channels is named: %s", vv_err_detail());
    vv_model_free(&m);
    vv_model_init(&m, 1, 4, 4);
    vv_layer big = {.type = VV_LAYER_MAXPOOL2D, .kernel = 5};
    vv_model_add(&m, &big);
    CHECK(vv_model_finish(&m) == VV_ESHAPE, "a pool larger than its input is refused");
    vv_model_free(&m);
}

/* Deleting neurons equals zeroing the matching input columns of the next
 * layer; the pruned model saves and reloads to the same logits. */
static void prune(void)
{
    vv_model m, p, z;
    int sizes[] = {36, 20, 12, 5};
    vv_model_mlp(&m, 1, 6, 6, sizes, 4);
    vv_model_load(&m, fixture("mlp_36_20_12_5.safetensors"));
    vv_array xa;
    vv_npy_read(fixture("mlp_36_20_12_5_x.npy"), &xa);
    int64_t n = xa.shape[0];
    int64_t keep[] = {0, 3, 4, 9, 15, 19};
    int nk = 6;
    vv_model_copy(&m, &p);
    vv_model_copy(&m, &z);
    int j = vv_model_find(&m, "fc1"), i = vv_model_find(&m, "fc2");
    CHECK(vv_model_feeding_linear(&m, i) == j, "fc1 feeds fc2 through a relu");
    CHECK(vv_model_feeding_linear(&m, j) == -1, "fc1 is fed by the flattened input");
    int rc = vv_model_prune(&p, j, i, keep, nk);
    CHECKF(rc == 0, "prune runs (%s)", rc ? vv_err_detail() : "");
    CHECK(p.layers[j].out_ch == nk && p.layers[i].in_ch == nk, "widths shrink to 6");
    CHECK(vv_model_params(&p) == vv_model_params(&m) - (20 - nk) * (36 + 1 + 12),
          "the parameter count drops by the deleted rows and columns");
    /* z: fc2's columns of the deleted neurons set to zero. */
    vv_layer *l = &z.layers[i];
    for (int r = 0; r < l->out_ch; r++)
        for (int c = 0; c < l->in_ch; c++) {
            int kept = 0;
            for (int t = 0; t < nk; t++)
                kept |= keep[t] == c;
            if (!kept)
                l->weight[r * l->in_ch + c] = 0;
        }
    float a[64], b[64], c[64];
    vv_model_forward(&p, 0, p.n, xa.data, n, a);
    vv_model_forward(&z, 0, z.n, xa.data, n, b);
    double e = rel_err(a, b, n * 5);
    CHECKF(e < 1e-6, "pruned logits equal the zeroed-columns logits (rel err %.1e)", e);
    char path[512];
    tmp_path(path, sizeof path, "model", "pruned.safetensors");
    CHECK(vv_model_save(&p, path) == 0, "the pruned model saves");
    vv_model r;
    int s2[] = {36, nk, 12, 5};
    vv_model_mlp(&r, 1, 6, 6, s2, 4);
    CHECK(vv_model_load(&r, path) == 0, "and loads into a 36-6-12-5 MLP");
    vv_model_forward(&r, 0, r.n, xa.data, n, c);
    CHECK(rel_err(c, a, n * 5) == 0, "with the same logits");
    int64_t bad[] = {3, 3};
    CHECK(vv_model_prune(&p, j, i, bad, 2) == VV_EINVAL, "repeated indices are refused");
    CHECK(vv_model_prune(&p, j, i, keep, 0) == VV_EINVAL, "removing every neuron is refused");
    remove(path);
    vv_model_free(&r);
    vv_model_free(&m);
    vv_model_free(&p);
    vv_model_free(&z);
    vv_array_free(&xa);
}

int main(void)
{
    const char *t = getenv("VV_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", t ? t : "/tmp");
    vv_model m;
    CHECK(vv_model_vgg19_cifar(&m, 16, 10) == 0, "narrow VGG-19 builds");
    against_torch("vgg19_div16", &m);
    vv_model_free(&m);
    CHECK(vv_model_alexnet_cifar64(&m, 32, 10) == 0, "narrow AlexNet builds");
    CHECK(m.layers[m.n - 7].ow == 1 && vv_model_size(&m, m.n - 7) == 288,
          "AlexNet's adaptive pool sees 1x1 maps at 64x64 input and flattens to 256/32*36");
    against_torch("alexnet_div32", &m);
    vv_model_free(&m);
    int sizes[] = {36, 20, 12, 5};
    CHECK(vv_model_mlp(&m, 1, 6, 6, sizes, 4) == 0, "MLP builds");
    against_torch("mlp_36_20_12_5", &m);
    vv_model_free(&m);

    CHECK(vv_model_vgg19_cifar(&m, 1, 10) == 0, "full VGG-19 builds");
    full_size("vgg19_cifar", &m);
    CHECK(vv_model_macs(&m) > 398000000 && vv_model_macs(&m) < 400000000,
          "VGG-19 at 32x32 costs about 399M multiply-adds");
    vv_model_free(&m);
    CHECK(vv_model_alexnet_cifar64(&m, 1, 10) == 0, "full AlexNet builds");
    full_size("alexnet_cifar64", &m);
    vv_model_free(&m);
    load_errors();
    prune();
    return tap_done();
}
