/* forward.c - `vvd forward`: a model's outputs on an array of inputs, in
 * batches, with the forward pass of the daemon (forward.h). */
#include "forward.h"

#include "device.h"
#include "model_spec.h"
#include "run.h"

#include "vv/array.h"
#include "vv/backend.h"
#include "vv/cpu.h"
#include "vv/dataset.h"
#include "vv/err.h"
#include "vv/log.h"
#include "vv/model.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Samples per forward call: enough to keep every core (or the device) busy,
 * small enough that a batch of preprocessed 224x224 images stays near 600
 * MiB. */
enum { FORWARD_BATCH = 1024 };

void vvd_forward_usage(FILE *f)
{
    fputs("usage: vvd forward MODEL.json WEIGHTS.safetensors X.npy OUT.npy [--preprocess]\n"
          "                   [--batch N] [--device DEV]\n"
          "\n"
          "Runs a model (an architecture spec such as a compress or train run's\n"
          "model.json, and its weights) in eval mode on the inputs X and writes its\n"
          "outputs, N x outputs float32, to OUT (the logits of a classifier).\n"
          "X is a .npy array of N inputs:\n"
          "  float32 or float64, N x D (flattened, D = C*H*W) or N x C x H x W (N x H x W\n"
          "      when C is 1) of the model's input shape: taken as preprocessed;\n"
          "  uint8 raw images, N x H x W or N x C x H x W of any size: the preprocessing\n"
          "      MODEL.json declares (\"preprocess\": scale to [0, 1], resize, center\n"
          "      crop, mean/std) is applied first, as compress and train runs apply it;\n"
          "      it must end at the model's input shape.\n"
          "  --preprocess   applies it to float images too (taken as they are, or\n"
          "                 divided by 255 with the preprocess's scale255).\n"
          "  --batch N      samples per forward pass (default 1024)\n"
          "  --device DEV   cpu (default), cuda:N, sim:N or auto (VVD_DEVICE)\n"
          "Prints one JSON line: the result (samples, outputs, seconds), or the error\n"
          "as vvd run prints it (error_code, detail, field: /spec... for MODEL.json,\n"
          "/weights, /x, /out, /batch, /device).\n"
          "Exit status: 0 written, 1 a failure of the machine (memory, I/O, device),\n"
          "2 bad usage or bad input (a missing or malformed file, a torch.save file\n"
          "given as weights, inputs of the wrong shape or dtype).\n",
          f);
}

/* Prints the error line of `vvd run` and returns the exit status. */
static int fail(int err, const char *field)
{
    cJSON *o = run_error_object(err, field);
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        printf("%s\n", s);
    fflush(stdout);
    free(s);
    cJSON_Delete(o);
    VV_ERROR("forward", NULL, "%s: %s", vv_err_code(err), vv_err_detail());
    return vv_err_http_status(err) < 500 ? 2 : 1;
}

/* "N x 3 x 32 x 32 uint8" for messages. */
static void shape_str(const vv_npy_raw *a, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < a->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? " x " : "", a->shape[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, " %s",
                 a->kind == 'u' && a->itemsize == 1 ? "uint8"
                 : a->kind == 'f'                   ? (a->itemsize == 4 ? "float32" : "float64")
                                                    : a->descr);
}

/* The forward pass over n samples of x into y (n x k), in batches. */
typedef struct fwd {
    const vv_model *m;
    vv_forward_plan *plan; /* on the device or the CPU */
    int64_t k;             /* outputs per sample */
} fwd;

/* Inputs already preprocessed: a float array of the model's input shape. */
static int run_plain(const fwd *f, const char *xpath, const vv_npy_raw *a, int64_t batch, float *y,
                     char *field, size_t fsz)
{
    const vv_model *m = f->m;
    int64_t d = vv_model_size(m, -1), n = a->shape[0];
    int fits = (a->ndim == 2 && a->shape[1] == d) ||
               (a->ndim == 4 && a->shape[1] == m->in_c && a->shape[2] == m->in_h &&
                a->shape[3] == m->in_w) ||
               (a->ndim == 3 && m->in_c == 1 && a->shape[1] == m->in_h && a->shape[2] == m->in_w);
    if (!fits) {
        char got[160];
        shape_str(a, got, sizeof got);
        snprintf(field, fsz, "/x");
        return vv_fail(VV_ESHAPE,
                       "%s: inputs of %s, but the model takes N x %d x %d x %d (or N x %" PRId64
                       " flattened)%s",
                       xpath, got, m->in_c, m->in_h, m->in_w, d,
                       a->ndim >= 3 ? "; raw images get MODEL.json's preprocess when they are "
                                      "uint8, or with --preprocess"
                                    : "");
    }
    float *buf = n > 0 ? malloc((size_t)(batch * d) * sizeof *buf) : NULL;
    if (!buf && n > 0)
        return vv_fail(VV_ENOMEM, "out of memory for a batch of %" PRId64 " inputs", batch);
    int rc = 0;
    for (int64_t s0 = 0; s0 < n && rc == 0; s0 += batch) {
        int64_t nb = n - s0 < batch ? n - s0 : batch;
        if (a->itemsize == 8) {
            const double *src = (const double *)a->data + s0 * d;
            for (int64_t i = 0; i < nb * d; i++)
                buf[i] = (float)src[i];
        } else {
            memcpy(buf, (const float *)a->data + s0 * d, (size_t)(nb * d) * sizeof *buf);
        }
        for (int64_t i = 0; i < nb * d; i++)
            if (!isfinite(buf[i])) {
                snprintf(field, fsz, "/x");
                rc = vv_fail(VV_ENONFINITE,
                             "%s: input %" PRId64 " holds a NaN or Inf (or a float64 beyond "
                             "float32's range) at element %" PRId64,
                             xpath, s0 + i / d, i % d);
                break;
            }
        if (rc == 0)
            rc = vv_forward_plan_run(f->plan, buf, nb, y + s0 * f->k, 0);
    }
    free(buf);
    return rc;
}

/* Raw images: the model's preprocessing, then the forward pass. */
static int run_images(const fwd *f, const char *xpath, const vv_preprocess *pp, int64_t batch,
                      float *y, char *field, size_t fsz)
{
    const vv_model *m = f->m;
    vv_dataset *ds = NULL;
    int rc = vv_dataset_open_npy_images(xpath, &ds);
    if (rc < 0) {
        snprintf(field, fsz, "/x");
        return rc;
    }
    int c, h, w;
    if ((rc = vv_preprocess_check(ds, pp)) < 0) {
        snprintf(field, fsz, "/spec/preprocess");
        vv_dataset_free(ds);
        return rc;
    }
    vv_preprocess_shape(ds, pp, &c, &h, &w);
    if (c != m->in_c || h != m->in_h || w != m->in_w) {
        snprintf(field, fsz, "/x");
        rc = vv_fail(VV_ESHAPE,
                     "%s: images of %d x %d x %d are %d x %d x %d after the model's "
                     "preprocessing (resize %d, crop %d), but the model takes %d x %d x %d",
                     xpath, vv_dataset_channels(ds), vv_dataset_height(ds), vv_dataset_width(ds), c,
                     h, w, pp->resize, pp->crop, m->in_c, m->in_h, m->in_w);
        vv_dataset_free(ds);
        return rc;
    }
    int64_t n = vv_dataset_count(ds), d = (int64_t)c * h * w;
    float *buf = malloc((size_t)(batch * d) * sizeof *buf);
    if (!buf)
        rc = vv_fail(VV_ENOMEM, "out of memory for a batch of %" PRId64 " images", batch);
    for (int64_t s0 = 0; s0 < n && rc == 0; s0 += batch) {
        int64_t nb = n - s0 < batch ? n - s0 : batch;
        if ((rc = vv_dataset_batch(ds, pp, NULL, s0, nb, NULL, buf, NULL)) == 0)
            rc = vv_forward_plan_run(f->plan, buf, nb, y + s0 * f->k, 0);
    }
    free(buf);
    vv_dataset_free(ds);
    return rc;
}

int vvd_forward(int argc, char **argv)
{
    const char *pos[4] = {0}, *device = getenv("VVD_DEVICE");
    int npos = 0, want_pp = 0;
    long long batch = FORWARD_BATCH;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            vvd_forward_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--preprocess")) {
            want_pp = 1;
        } else if (!strcmp(a, "--device") && i + 1 < argc) {
            device = argv[++i];
        } else if (!strcmp(a, "--batch") && i + 1 < argc) {
            char *end;
            batch = strtoll(argv[++i], &end, 10);
            if (*end || end == argv[i] || batch < 1 || batch > 65536) {
                vv_fail(VV_EINVAL, "--batch %.32s: need an integer in [1, 65536]", argv[i]);
                return fail(VV_EINVAL, "/batch");
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "vvd forward: unknown option '%s'\n", a);
            vvd_forward_usage(stderr);
            return 2;
        } else if (npos < 4) {
            pos[npos++] = a;
        } else {
            vvd_forward_usage(stderr);
            return 2;
        }
    }
    if (npos != 4) {
        vvd_forward_usage(stderr);
        return 2;
    }
    const char *spec = pos[0], *weights = pos[1], *xpath = pos[2], *out = pos[3];
    char dev[32];
    snprintf(dev, sizeof dev, "%s", device && device[0] ? device : "cpu");
    if (!device_name_ok(dev)) {
        vv_fail(VV_EINVAL, "--device %.32s: unknown device (one of %s)", dev, device_names());
        return fail(VV_EINVAL, "/device");
    }
    double t0 = vv_now();
    char field[256] = "";
    vv_backend *be = NULL;
    int rc = devices_open(dev);
    if (rc < 0 || (rc = devices_get(NULL, &be)) < 0)
        return fail(rc, "/device");

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "spec", spec);
    cJSON_AddStringToObject(j, "weights", weights);
    model_ref ref;
    vv_model m = {0};
    vv_preprocess pp = {0};
    vv_npy_raw raw = {0};
    vv_model_dev *md = NULL;
    float *y = NULL;
    int64_t n = 0, k = 0;
    int images = 0;
    char got[160] = "";
    rc = model_ref_parse(j, "", &ref, field, sizeof field);
    cJSON_Delete(j);
    if (rc == 0)
        rc = model_ref_load(&ref, "", &m, &pp, field, sizeof field);
    if (rc == 0 && (rc = vv_npy_read_raw(xpath, &raw)) < 0)
        snprintf(field, sizeof field, "/x");
    if (rc == 0) {
        shape_str(&raw, got, sizeof got);
        int u8 = raw.kind == 'u' && raw.itemsize == 1;
        if (!u8 && !(raw.kind == 'f' && (raw.itemsize == 4 || raw.itemsize == 8))) {
            snprintf(field, sizeof field, "/x");
            rc = vv_fail(VV_EDTYPE,
                         "%s: dtype '%s'; need float32 or float64 (preprocessed inputs) or "
                         "uint8 (raw images)",
                         xpath, raw.descr);
        } else if (raw.ndim < 2) {
            snprintf(field, sizeof field, "/x");
            rc = vv_fail(VV_ESHAPE, "%s: a %d-D array; need N x D or N x C x H x W inputs", xpath,
                         raw.ndim);
        }
        images = u8 || want_pp;
        n = raw.ndim > 0 ? raw.shape[0] : 0;
        k = vv_model_size(&m, m.n - 1);
    }
    if (rc == 0 && vv_backend_is_device(be) && (rc = vv_model_dev_open(&m, be, &md)) < 0)
        snprintf(field, sizeof field, "/device");
    if (rc == 0 && !(y = malloc((size_t)(n * k) * sizeof *y + 4)))
        rc = vv_fail(VV_ENOMEM, "out of memory for %" PRId64 " x %" PRId64 " outputs", n, k);
    fwd f = {&m, NULL, k};
    if (rc == 0)
        rc = vv_forward_plan_on(&m, md, 0, m.n, &f.plan);
    if (rc == 0 && images) {
        /* The data set reader reads the file again, as images. */
        vv_npy_raw_free(&raw);
        rc = run_images(&f, xpath, &pp, batch, y, field, sizeof field);
    } else if (rc == 0) {
        rc = run_plain(&f, xpath, &raw, batch, y, field, sizeof field);
    }
    if (rc == 0 && (rc = vv_npy_write(out, VV_F32, 2, (int64_t[]){n, k}, y)) < 0)
        snprintf(field, sizeof field, "/out");
    if (rc == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "event", "result");
        cJSON_AddStringToObject(o, "state", "FINISHED");
        cJSON_AddNumberToObject(o, "samples", (double)n);
        cJSON_AddNumberToObject(o, "outputs", (double)k);
        cJSON_AddStringToObject(o, "input", got);
        cJSON_AddBoolToObject(o, "preprocessed", images);
        cJSON_AddStringToObject(o, "device", md ? devices_default() : "cpu");
        cJSON_AddNumberToObject(o, "seconds", vv_now() - t0);
        cJSON_AddStringToObject(o, "out", out);
        char *s = cJSON_PrintUnformatted(o);
        if (s)
            printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
    }
    int status = rc < 0 ? fail(rc, field) : 0;
    free(y);
    vv_forward_plan_free(f.plan);
    vv_npy_raw_free(&raw);
    vv_model_dev_close(md);
    vv_model_free(&m);
    model_ref_free(&ref);
    devices_close();
    return status;
}
