/* model_spec.h - models and data sets named in job specs (JSON).
 *
 * An architecture spec (schema/model.schema.json) is either a built-in
 * architecture, {"arch": "vgg19_cifar" | "alexnet_cifar64" | "fmnist_cnn" | "mlp",
 * ...},
 * or a list of layers, {"input": [c, h, w], "layers": [{"type": "conv2d",
 * "name": "features.0", ...}, ...]}, with PyTorch's argument names.  Either
 * may carry "preprocess", the input preprocessing the model was trained
 * with.  A job names its model as {"arch" | "spec", "weights", ...} or by the
 * name of a model resident in the daemon (a string).
 *
 * Errors name the field as a JSON pointer, like spec.h.
 */
#ifndef VV_MODEL_SPEC_H
#define VV_MODEL_SPEC_H

#include "vv/dataset.h"
#include "vv/model.h"

#include <cjson/cJSON.h>

/* A model as a job names it. */
typedef struct model_ref {
    char *resident;  /* a resident model's name, or NULL */
    cJSON *arch;     /* the architecture spec (owned), or NULL for a resident model */
    char *weights;   /* .safetensors state_dict, or NULL (random init) */
    uint64_t seed;   /* initialisation when there are no weights */
    char *spec_path; /* "spec" given as a file, read by model_ref_resolve */
    cJSON *spec_pre; /* "preprocess" given beside a spec file */
    char spec_ptr[256];
} model_ref;

/* Parses a job's "model" field at ptr: a string (resident model) or an
 * object {"arch": ..., options} / {"spec": {...} | "file.json"} with
 * optional "weights", "preprocess", "seed".  An inline architecture is
 * checked (shapes) here, without allocating parameters; a spec file is
 * only named here, and read and checked by model_ref_resolve (so that the
 * daemon can check its path first). */
int model_ref_parse(const cJSON *j, const char *ptr, model_ref *out, char *field, size_t fsz);
int model_ref_resolve(model_ref *r, char *field, size_t fsz);
void model_ref_free(model_ref *r);

/* Builds a finished model (zeroed parameters) from an architecture spec;
 * *pp receives its preprocessing (zeroed when it declares none) when pp is
 * not NULL. */
int model_build(const cJSON *arch, const char *ptr, vv_model *m, vv_preprocess *pp, char *field,
                size_t fsz);

/* Builds and loads (or initialises) the model of a parsed reference
 * (resolving a spec file first). */
int model_ref_load(model_ref *r, const char *ptr, vv_model *m, vv_preprocess *pp, char *field,
                   size_t fsz);

/* The layers form of a model's architecture (with preprocess when pp is
 * not NULL): what an exported model's spec file holds. */
cJSON *model_spec_export(const vv_model *m, const vv_preprocess *pp);

/* Parses {"resize", "crop", "mean", "std", "scale255"} at ptr into *pp. */
int preprocess_parse(const cJSON *j, const char *ptr, vv_preprocess *pp, char *field, size_t fsz);
cJSON *preprocess_json(const vv_preprocess *pp);

/* A data set as a job names it: "fashion-mnist", or {"format":
 * "fashion-mnist" | "idx" | "cifar10" | "npy", "train": {"images",
 * "labels"}, "test": {...}, "dir" (cifar10), "preprocess", "max_train",
 * "max_test"}. */
typedef enum { DATA_IDX = 1, DATA_CIFAR10, DATA_NPY } data_format;

typedef struct data_spec {
    data_format format;
    char *train_images, *train_labels, *test_images, *test_labels; /* idx, npy */
    char *dir;  /* cifar10: data_batch_1..5.bin, test_batch.bin */
    int has_pp; /* preprocess given (overrides the model's) */
    vv_preprocess pp;
    int64_t max_train, max_test; /* 0: all */
} data_spec;

/* Where Fashion-MNIST's IDX files are (VV_FASHION_MNIST_DIR or Debian's
 * /usr/share/datasets/fashion-mnist). */
const char *data_fashion_mnist_dir(void);

int data_spec_parse(const cJSON *j, const char *ptr, data_spec *out, char *field, size_t fsz);
void data_spec_free(data_spec *d);

/* Opens the training (test = 0) or test (test = 1) split; *out is NULL
 * when the spec has no test split. */
int data_open(const data_spec *d, int test, vv_dataset **out, char *field, size_t fsz);

/* The paths a data spec reads (for the daemon's data-root checks and the
 * statistics cache key); writes up to max pointers, returns the count. */
int data_paths(const data_spec *d, const char **paths, int max);

/* ---- JSON helpers shared by model_spec.c and data_spec.c -------------------------- */

/* Sets field to ptr and fails with err and "ptr: message". */
int spec_bad(char *field, size_t fsz, int err, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Optional members of object o at ptr: an integer in [lo, hi], a boolean;
 * absent keeps *out. */
int spec_opt_i64(const cJSON *o, const char *key, const char *ptr, int64_t lo, int64_t hi,
                 int64_t *out, char *field, size_t fsz);
int spec_opt_int(const cJSON *o, const char *key, const char *ptr, int lo, int hi, int *out,
                 char *field, size_t fsz);
int spec_opt_bool(const cJSON *o, const char *key, const char *ptr, int *out, char *field,
                  size_t fsz);
/* Every member of o is one of allowed (NULL-ended) and appears once. */
int spec_only(const cJSON *o, const char *ptr, const char *const *allowed, char *field, size_t fsz);

#endif
