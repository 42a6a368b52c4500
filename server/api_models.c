/* api_models.c - resident models: POST /v1/models, GET /v1/models,
 * GET|DELETE /v1/models/{name}. */
#include "device.h"
#include "http_util.h"

#include "jobs.h"
#include "kinds.h"
#include "models.h"
#include "state.h"
#include "paths.h"
#include "store.h"
#include "vv/err.h"
#include "vv/log.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The run training the embedded default model, when one was queued here. */
static pthread_mutex_t default_mu = PTHREAD_MUTEX_INITIALIZER;
static char default_run[32];

int api_ensure_default(req *r, char *field, size_t fsz)
{
    pthread_mutex_lock(&default_mu);
    int pending = 0;
    if (default_run[0]) {
        run_row row = {0};
        if (store_run_get(r->cfg->db, default_run, &row) == 0)
            pending = !run_state_final((run_state)run_state_parse(row.state));
        run_row_free(&row);
    }
    int rc = 0;
    if (!pending) {
        const char *text = "{\"kind\":\"train\",\"preset\":\"" MODELS_DEFAULT "\","
                           "\"name\":\"the default model " MODELS_DEFAULT "\"}";
        job_spec js;
        char id[32];
        rc = spec_parse_job_text(text, strlen(text), &js, field, fsz);
        if (rc == 0)
            rc = jobs_submit(r->cfg->jobs, &js, text, NULL, NULL, id);
        spec_free_job(&js);
        if (rc == 0) {
            snprintf(default_run, sizeof default_run, "%s", id);
            VV_INFO("api", id, "training the default model %s first (first use)", MODELS_DEFAULT);
        }
    }
    pthread_mutex_unlock(&default_mu);
    return rc;
}

/* Checks a model reference's files inside the data root (rewriting them to
 * their absolute real paths). */
int api_check_model_files(req *r, model_ref *m, const char *ptr, char *field, size_t fsz)
{
    int rc = kinds_confine_model(m, r->cfg->data_root, ptr, field, fsz);
    if (rc < 0)
        return rc;
    if (m->resident && !strcmp(m->resident, MODELS_DEFAULT) && !models_default_cached())
        return api_ensure_default(r, field, fsz);
    if (m->resident) {
        resident *res = models_acquire_default(m->resident);
        if (!res) {
            snprintf(field, fsz, "%s", ptr);
            return vv_fail(VV_EINVAL,
                           "%s: no resident model named '%s' (GET /v1/models lists "
                           "them; POST /v1/models loads one)",
                           ptr, m->resident);
        }
        models_release(res);
    }
    return model_ref_resolve(m, field, fsz);
}

static enum MHD_Result post_model(req *r)
{
    char field[256] = "";
    int perr;
    cJSON *body = api_parse_body(r, &perr, field, sizeof field);
    if (!body)
        return reply_problem(r, perr, field);
    model_ref ref = {0};
    int rc = 0;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "name");
    if (!cJSON_IsObject(body)) {
        rc = vv_fail(VV_ETYPE, "the body must be an object {\"name\", \"arch\" | \"spec\", "
                               "\"weights\"}");
    } else if (!cJSON_IsString(name)) {
        snprintf(field, sizeof field, "/name");
        rc = vv_fail(name ? VV_ETYPE : VV_EMISSING, "/name: a model name (string) is required");
    } else {
        cJSON *m = cJSON_Duplicate(body, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(m, "name");
        rc = model_ref_parse(m, "", &ref, field, sizeof field);
        cJSON_Delete(m);
        if (rc == 0 && ref.resident) {
            snprintf(field, sizeof field, "/arch");
            rc = vv_fail(VV_EMISSING, "/arch: give arch or spec (and weights)");
        }
        if (rc == 0)
            rc = api_check_model_files(r, &ref, "", field, sizeof field);
        if (rc == 0)
            rc = models_load(name->valuestring, &ref, field, sizeof field);
    }
    enum MHD_Result res;
    if (rc < 0) {
        res = reply_problem(r, rc, field);
    } else {
        resident *m = models_acquire(name->valuestring);
        VV_INFO("api", NULL, "model %s loaded (%lld parameters, %.2f s)", name->valuestring,
                m ? (long long)vv_model_params(&m->m) : 0LL, m ? m->load_seconds : 0.0);
        cJSON *o = m ? models_json(m, 1) : cJSON_CreateObject();
        models_release(m);
        res = reply_json(r, 201, o);
    }
    model_ref_free(&ref);
    cJSON_Delete(body);
    return res;
}

enum MHD_Result api_models(req *r, const char *name)
{
    int get = !strcmp(r->method, "GET");
    if (!name) {
        if (!strcmp(r->method, "POST"))
            return post_model(r);
        if (get) {
            cJSON *o = models_list();
            cJSON *d = cJSON_AddObjectToObject(o, "default_model");
            cJSON_AddStringToObject(d, "name", MODELS_DEFAULT);
            cJSON_AddBoolToObject(d, "trained", models_default_cached());
            /* Weights live in host memory (the forward passes run on the CPU);
             * the device's memory is what a compress job's statistics and
             * solve have to fit in. */
            cJSON_AddItemToObject(o, "device", devices_describe());
            return reply_json(r, 200, o);
        }
        vv_fail(VV_EMETHOD, "%s /v1/models: allowed methods are GET, POST", r->method);
        return reply_problem(r, VV_EMETHOD, "");
    }
    if (get) {
        resident *m = models_acquire(name);
        if (!m)
            return reply_problem(r, VV_ENOTFOUND, "");
        cJSON *o = models_json(m, 1);
        models_release(m);
        return reply_json(r, 200, o);
    }
    if (!strcmp(r->method, "DELETE")) {
        int rc = models_delete(name);
        if (rc < 0)
            return reply_problem(r, rc, "");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddBoolToObject(o, "deleted", 1);
        return reply_json(r, 200, o);
    }
    vv_fail(VV_EMETHOD, "%s /v1/models/%s: allowed methods are GET, DELETE", r->method, name);
    return reply_problem(r, VV_EMETHOD, "");
}
