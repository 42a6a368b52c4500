/* models.c - the registry of resident models (models.h). */
#include "models.h"
#include "device.h"

#include "vv/cpu.h"
#include "vv/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MAX_MODELS = 64 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static resident *table[MAX_MODELS];

static void unref_locked(resident *r)
{
    if (--r->refs > 0)
        return;
    vv_model_dev_close(r->dev);
    vv_model_free(&r->m);
    cJSON_Delete(r->spec);
    free(r->weights);
    free(r);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

static resident *find_locked(const char *name)
{
    for (int i = 0; i < MAX_MODELS; i++)
        if (table[i] && !strcmp(table[i]->name, name))
            return table[i];
    return NULL;
}

int models_load(const char *name, model_ref *ref, char *field, size_t fsz)
{
    if (!valid_name(name)) {
        if (field && fsz)
            snprintf(field, fsz, "/name");
        return vv_fail(VV_EINVAL, "/name: 1 to 64 characters of letters, digits, '.', '_', '-'");
    }
    pthread_mutex_lock(&mu);
    int taken = find_locked(name) != NULL;
    pthread_mutex_unlock(&mu);
    if (taken) {
        if (field && fsz)
            snprintf(field, fsz, "/name");
        return vv_fail(VV_ECONFLICT,
                       "/name: a model named '%s' is already loaded (DELETE "
                       "/v1/models/%s first)",
                       name, name);
    }
    resident *r = calloc(1, sizeof *r);
    if (!r)
        return vv_fail(VV_ENOMEM, "out of memory");
    snprintf(r->name, sizeof r->name, "%s", name);
    double t0 = vv_now();
    int rc = model_ref_load(ref, "", &r->m, &r->pp, field, fsz);
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->load_seconds = vv_now() - t0;
    r->loaded_at = (double)time(NULL);
    r->spec = cJSON_Duplicate(ref->arch, 1);
    r->weights = ref->weights ? strdup(ref->weights) : NULL;
    r->refs = 1;
    pthread_mutex_lock(&mu);
    int slot = -1;
    for (int i = 0; i < MAX_MODELS && slot < 0; i++)
        if (!table[i])
            slot = i;
    if (find_locked(name)) {
        rc = vv_fail(VV_ECONFLICT, "/name: a model named '%s' was loaded meanwhile", name);
    } else if (slot < 0) {
        rc = vv_fail(VV_EBUSY, "at most %d models can be resident; delete one first", MAX_MODELS);
    } else {
        table[slot] = r;
        r = NULL;
    }
    if (r)
        unref_locked(r);
    pthread_mutex_unlock(&mu);
    return rc;
}

resident *models_acquire(const char *name)
{
    pthread_mutex_lock(&mu);
    resident *r = find_locked(name);
    if (r)
        r->refs++;
    pthread_mutex_unlock(&mu);
    if (!r)
        vv_fail(VV_ENOTFOUND, "no resident model named '%s' (load it with POST /v1/models)", name);
    return r;
}

void models_release(resident *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&mu);
    unref_locked(r);
    pthread_mutex_unlock(&mu);
}

int models_device(resident *r, vv_backend *be, vv_model_dev **out)
{
    pthread_mutex_lock(&mu);
    int rc = 0;
    if (r->dev && vv_model_dev_backend(r->dev) != be) {
        vv_model_dev_close(r->dev);
        r->dev = NULL;
    }
    if (!r->dev)
        rc = vv_model_dev_open(&r->m, be, &r->dev);
    *out = r->dev;
    pthread_mutex_unlock(&mu);
    return rc;
}

int models_delete(const char *name)
{
    pthread_mutex_lock(&mu);
    int rc = vv_fail(VV_ENOTFOUND, "no resident model named '%s'", name);
    for (int i = 0; i < MAX_MODELS; i++)
        if (table[i] && !strcmp(table[i]->name, name)) {
            table[i]->deleted = 1;
            unref_locked(table[i]);
            table[i] = NULL;
            rc = 0;
        }
    pthread_mutex_unlock(&mu);
    return rc;
}

cJSON *models_json(const resident *r, int held)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddNumberToObject(o, "params", (double)vv_model_params(&r->m));
    cJSON_AddNumberToObject(o, "bytes", (double)vv_model_bytes(&r->m));
    cJSON_AddNumberToObject(o, "macs", (double)vv_model_macs(&r->m));
    cJSON *in = cJSON_AddArrayToObject(o, "input");
    cJSON_AddItemToArray(in, cJSON_CreateNumber(r->m.in_c));
    cJSON_AddItemToArray(in, cJSON_CreateNumber(r->m.in_h));
    cJSON_AddItemToArray(in, cJSON_CreateNumber(r->m.in_w));
    cJSON *lin = cJSON_AddArrayToObject(o, "linear_layers");
    for (int i = 0; i < r->m.n; i++)
        if (r->m.layers[i].type == VV_LAYER_LINEAR)
            cJSON_AddItemToArray(lin, cJSON_CreateString(r->m.layers[i].name));
    if (r->weights)
        cJSON_AddStringToObject(o, "weights", r->weights);
    else
        cJSON_AddNullToObject(o, "weights");
    cJSON_AddItemToObject(o, "spec", cJSON_Duplicate(r->spec, 1));
    cJSON_AddNumberToObject(o, "loaded_at", r->loaded_at);
    cJSON_AddNumberToObject(o, "load_seconds", r->load_seconds);
    cJSON_AddNumberToObject(o, "in_use", r->refs - 1 - held);
    /* Where its weights are: host memory always, and the device once a run
     * used them there. */
    cJSON_AddStringToObject(o, "device", r->dev ? devices_default() : "cpu");
    cJSON_AddNumberToObject(o, "device_bytes", (double)vv_model_dev_bytes(r->dev));
    return o;
}

cJSON *models_list(void)
{
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "models");
    double total = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_MODELS; i++)
        if (table[i]) {
            cJSON_AddItemToArray(a, models_json(table[i], 0));
            total += (double)vv_model_bytes(&table[i]->m);
        }
    pthread_mutex_unlock(&mu);
    cJSON_AddNumberToObject(o, "bytes", total);
    return o;
}

void models_totals(int *count, double *bytes)
{
    *count = 0;
    *bytes = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_MODELS; i++)
        if (table[i]) {
            ++*count;
            *bytes += (double)vv_model_bytes(&table[i]->m);
        }
    pthread_mutex_unlock(&mu);
}

static char data_dir[4096] = "vvd-data";

void models_set_data_dir(const char *dir)
{
    snprintf(data_dir, sizeof data_dir, "%s", dir);
}

static void default_path(char *buf, size_t sz, const char *file)
{
    snprintf(buf, sz, "%s/models/" MODELS_DEFAULT "/%s", data_dir, file);
}

int models_default_cached(void)
{
    char a[4200], b[4200];
    default_path(a, sizeof a, "model.json");
    default_path(b, sizeof b, "model.safetensors");
    return access(a, R_OK) == 0 && access(b, R_OK) == 0;
}

static int load_default_locked_free(void)
{
    char spec[4200], w[4200], field[128];
    default_path(spec, sizeof spec, "model.json");
    default_path(w, sizeof w, "model.safetensors");
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "spec", spec);
    cJSON_AddStringToObject(j, "weights", w);
    model_ref ref;
    int rc = model_ref_parse(j, "", &ref, field, sizeof field);
    cJSON_Delete(j);
    if (rc == 0)
        rc = models_load(MODELS_DEFAULT, &ref, field, sizeof field);
    model_ref_free(&ref);
    return rc;
}

resident *models_acquire_default(const char *name)
{
    resident *r = models_acquire(name);
    if (r || strcmp(name, MODELS_DEFAULT))
        return r;
    if (!models_default_cached()) {
        vv_fail(VV_ENOTFOUND,
                "the default model '%s' is not trained yet (run the train preset "
                "fmnist-mlp: {\"kind\": \"train\", \"preset\": \"fmnist-mlp\"})",
                name);
        return NULL;
    }
    int rc = load_default_locked_free();
    if (rc < 0 && rc != VV_ECONFLICT)
        return NULL;
    return models_acquire(name);
}

static int copy_file(const char *src, const char *dst)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", dst, (int)getpid());
    FILE *in = fopen(src, "rb"), *out = in ? fopen(tmp, "wb") : NULL;
    int ok = in && out;
    char buf[1 << 16];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    if (ok && rename(tmp, dst) == 0)
        return 0;
    unlink(tmp);
    return vv_fail(VV_EIO, "cannot copy %s to %s", src, dst);
}

int models_install_default(const char *run_dir)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/models", data_dir);
    mkdir(data_dir, 0755);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/models/" MODELS_DEFAULT, data_dir);
    mkdir(dir, 0755);
    const char *files[] = {"model.json", "model.safetensors", "result.json"};
    const char *names[] = {"model.json", "model.safetensors", "train.json"};
    for (int i = 0; i < 3; i++) {
        char src[4200], dst[4200];
        snprintf(src, sizeof src, "%s/%s", run_dir, files[i]);
        default_path(dst, sizeof dst, names[i]);
        int rc = copy_file(src, dst);
        if (rc < 0)
            return rc;
    }
    models_delete(MODELS_DEFAULT); /* an older one, if resident */
    return load_default_locked_free();
}

void models_clear(void)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_MODELS; i++)
        if (table[i]) {
            unref_locked(table[i]);
            table[i] = NULL;
        }
    pthread_mutex_unlock(&mu);
}
