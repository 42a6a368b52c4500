/* models.h - models resident in the daemon: loaded once (POST /v1/models),
 * used by runs by name, unloaded when deleted and no run holds them.
 * Thread-safe: HTTP threads load, list and delete; compute threads acquire
 * and release. */
#ifndef VV_MODELS_H
#define VV_MODELS_H

#include "model_spec.h"

#include <cjson/cJSON.h>

typedef struct resident {
    char name[72];
    vv_model m;          /* finished, with weights; read-only while resident */
    vv_preprocess pp;    /* the preprocessing its spec declares */
    cJSON *spec;         /* the architecture spec it was built from */
    char *weights;       /* its weights file, or NULL (seeded initialisation) */
    double loaded_at;    /* unix time */
    double load_seconds;
    int refs;            /* registry + runs */
    int deleted;
    vv_model_dev *dev;   /* its weights on the process's device, made by the first
                          * run there (models_device) and kept with the model */
} resident;

/* Loads a model under name (1-64 characters of [A-Za-z0-9._-]).
 * VV_ECONFLICT when the name is taken; the errors of model_ref_load. */
int models_load(const char *name, model_ref *ref, char *field, size_t fsz);

/* A resident model for a run (NULL with VV_ENOTFOUND set when none has that
 * name); release it with models_release. */
resident *models_acquire(const char *name);
void models_release(resident *r);

/* r's weights on the device be (the process's device), uploaded the first
 * time and kept until the model is unloaded.  Compute thread only. */
int models_device(resident *r, struct vv_backend *be, vv_model_dev **out);

/* Removes a model from the registry (runs holding it keep it until they
 * release it).  VV_ENOTFOUND when none has that name. */
int models_delete(const char *name);

/* {"models": [{"name", "params", "bytes", "macs", "input", "weights",
 * "loaded_at", "load_seconds", "in_use"}], "bytes": total}. */
cJSON *models_list(void);
/* The number of resident models and the bytes of their weights. */
void models_totals(int *count, double *bytes);
/* One model; held: references the caller holds (not counted as in use). */
cJSON *models_json(const resident *r, int held);

/* The embedded default model: trained by vvd itself (train preset
 * fmnist-mlp) and cached under DIR/models/fmnist-mlp/ (model.json,
 * model.safetensors, train.json), DIR being the data directory. */
#define MODELS_DEFAULT "fmnist-mlp"
void models_set_data_dir(const char *dir);
/* 1 when the default model's files are in the cache. */
int models_default_cached(void);
/* models_acquire, which first loads the default model from the cache when
 * it is asked for and not resident yet. */
resident *models_acquire_default(const char *name);
/* Copies a trained default model's files from run_dir into the cache and
 * makes it resident (replacing an earlier one). */
int models_install_default(const char *run_dir);

/* Frees every model (at exit). */
void models_clear(void);

#endif
