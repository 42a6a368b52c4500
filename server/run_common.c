/* run_common.c - what the job kinds share: metric and log events, writing
 * artifacts, and opening the data set of a model job (compress, train). */
#include "run.h"

#include "vv/err.h"

#include <errno.h>
#include <math.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Events ------------------------------------------------------------------------ */

_Static_assert(RM_COUNT <= 32, "run_metric.have holds a bit per key");

static const char *const metric_names[RM_COUNT] = {
#define RUN_METRIC_NAME(k) #k,
    RUN_METRIC_KEYS(RUN_METRIC_NAME)
#undef RUN_METRIC_NAME
};

const char *run_metric_name(run_metric_key k)
{
    return (unsigned)k < RM_COUNT ? metric_names[k] : NULL;
}

void run_metric_set(run_metric *m, run_metric_key k, double v)
{
    if ((unsigned)k >= RM_COUNT || !isfinite(v))
        return;
    m->values[k] = v;
    m->have |= UINT32_C(1) << k;
}

void run_emit_metric(const run_sink *sink, const run_metric *m)
{
    if (sink && sink->metric)
        sink->metric(sink->ctx, m);
}

void run_emit_log(const run_sink *sink, cJSON *ev)
{
    if (ev && sink && sink->log)
        sink->log(sink->ctx, ev);
    cJSON_Delete(ev);
}

cJSON *run_metric_json(const run_metric *m)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "event", "metric") &&
             cJSON_AddNumberToObject(o, "step", (double)m->step) &&
             cJSON_AddNumberToObject(o, "time", m->time);
    for (int k = 0; k < RM_COUNT && ok; k++)
        if (m->have & (UINT32_C(1) << k))
            ok = cJSON_AddNumberToObject(o, metric_names[k], m->values[k]) != NULL;
    if (ok && m->phase[0]) {
        char phase[sizeof m->phase + 1];
        snprintf(phase, sizeof phase, "%.*s", (int)sizeof m->phase, m->phase);
        ok = cJSON_AddStringToObject(o, "phase", phase) != NULL;
    }
    if (ok && m->layer[0]) {
        char layer[sizeof m->layer + 1];
        snprintf(layer, sizeof layer, "%.*s", (int)sizeof m->layer, m->layer);
        ok = cJSON_AddStringToObject(o, "layer", layer) != NULL;
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- Artifacts ---------------------------------------------------------------------- */

int run_mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return vv_fail(VV_EINVAL, "output directory path too long");
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return vv_fail(VV_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return vv_fail(VV_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
    return 0;
}

int run_write_text(const char *path, const char *text)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    int ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (ok && rename(tmp, path) == 0)
        return 0;
    int err = errno;
    unlink(tmp);
    return vv_fail(VV_EIO, "%s: cannot write: %s", path, strerror(err));
}

int run_write_json(const char *path, const cJSON *o)
{
    char *t = cJSON_Print(o);
    if (!t)
        return vv_fail(VV_ENOMEM, "%s: out of memory", path);
    size_t n = strlen(t);
    char *nl = realloc(t, n + 2);
    if (!nl) {
        free(t);
        return vv_fail(VV_ENOMEM, "%s: out of memory", path);
    }
    nl[n] = '\n';
    nl[n + 1] = 0;
    int rc = run_write_text(path, nl);
    free(nl);
    return rc;
}

int run_data_open(const data_spec *d, const vv_preprocess *model_pp, const vv_model *m,
                  run_data *out, char *field, size_t fsz)
{
    memset(out, 0, sizeof *out);
    out->pp = d->has_pp ? d->pp : *model_pp;
    int rc = data_open(d, 0, &out->train, field, fsz);
    if (rc == 0)
        rc = data_open(d, 1, &out->test, field, fsz);
    if (rc == 0 && (rc = vv_preprocess_check(out->train, &out->pp)) < 0 && field && fsz)
        snprintf(field, fsz, "%s", d->has_pp ? "/data/preprocess" : "/model/preprocess");
    for (int split = 0; split < 2 && rc == 0; split++) {
        const vv_dataset *ds = split ? out->test : out->train;
        if (!ds)
            continue;
        int c, h, w;
        vv_preprocess_shape(ds, &out->pp, &c, &h, &w);
        if (c == m->in_c && h == m->in_h && w == m->in_w)
            continue;
        const char *ptr = split ? "/data/test" : "/data";
        if (field && fsz)
            snprintf(field, fsz, "%s", ptr);
        rc = vv_fail(VV_ESHAPE,
                     "%s: images are %dx%dx%d after preprocessing (stored %dx%dx%d) but the "
                     "model takes %dx%dx%d; set data.preprocess (resize, crop) or use another "
                     "model",
                     ptr, c, h, w, vv_dataset_channels(ds), vv_dataset_height(ds),
                     vv_dataset_width(ds), m->in_c, m->in_h, m->in_w);
    }
    if (rc < 0) {
        run_data_close(out);
        return rc;
    }
    out->ntrain = vv_dataset_count(out->train);
    out->ntest = out->test ? vv_dataset_count(out->test) : 0;
    if (d->max_train && d->max_train < out->ntrain)
        out->ntrain = d->max_train;
    if (d->max_test && d->max_test < out->ntest)
        out->ntest = d->max_test;
    return 0;
}

void run_data_close(run_data *d)
{
    vv_dataset_free(d->train);
    vv_dataset_free(d->test);
    memset(d, 0, sizeof *d);
}

static int each_output(const char *dir, const char *prefix,
                       int (*fn)(void *ctx, const char *name, const char *path, int64_t bytes),
                       void *ctx)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp."))
            continue;
        char path[4096], name[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(name, sizeof name, "%s%s", prefix, de->d_name);
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && !prefix[0]) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s/", de->d_name);
            rc = each_output(path, sub, fn, ctx);
        } else if (S_ISREG(st.st_mode)) {
            rc = fn(ctx, name, path, (int64_t)st.st_size);
        }
    }
    closedir(d);
    return rc;
}

int run_each_output(const char *dir,
                    int (*fn)(void *ctx, const char *name, const char *path, int64_t bytes),
                    void *ctx)
{
    return each_output(dir, "", fn, ctx);
}
