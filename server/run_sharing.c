/* run_sharing.c - the "neuron_sharing" job: experiment 1 of the paper. */
#include "run.h"
#include "state.h"

#include "vv/cpu.h"
#include "vv/err.h"
#include "vv/shallow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sctx {
    const run_sink *sink;
    const atomic_int *stop;
} sctx;

static int on_metrics(const vv_shallow_metrics *m, void *user)
{
    sctx *c = user;
    run_metric rm = {.step = m->step, .time = m->seconds};
    run_metric_set(&rm, RM_mse, m->mse);
    run_metric_set(&rm, RM_active, m->active);
    run_metric_set(&rm, RM_vv_norm, m->vv_norm);
    run_metric_set(&rm, RM_group_norm, m->group_norm);
    run_emit_metric(c->sink, &rm);
    return c->stop && atomic_load(c->stop);
}

int run_sharing(const sharing_spec *s, const char *out_dir, const run_sink *sink,
                const atomic_int *stop, cJSON **result, char *field, size_t fsz)
{
    *result = NULL;
    if (field && fsz)
        field[0] = 0;
    double t0 = vv_now();
    vv_shallow_data data = {0};
    vv_shallow_result res = {0};
    char *svg = NULL;
    int rc = run_mkdir_p(out_dir);
    if (rc == 0)
        rc = vv_shallow_data_make((int)s->n, (int)s->d_in, (int)s->teacher_width, (int)s->d_out,
                                  s->data_seed, &data);
    if (rc < 0)
        goto done;
    vv_shallow_opts o;
    vv_shallow_opts_default(&o);
    o.width = (int)s->width;
    o.mode = s->mode;
    o.per_output = s->per_output;
    o.lr = s->lr;
    o.reg = s->reg;
    o.steps = s->steps;
    o.seed = s->seed;
    o.log_every = s->log_every;
    o.max_seconds = s->max_seconds;
    o.stop = stop;
    sctx c = {sink, stop};
    if ((rc = vv_shallow_train(&data, &o, on_metrics, &c, &res)) < 0) {
        if (rc == VV_EINVAL && field && fsz)
            snprintf(field, fsz, "%s", "");
        goto done;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "event", "result");
    int user = res.stop_reason == VV_SHALLOW_USER;
    cJSON_AddStringToObject(r, "state", user ? run_state_name(RUN_STOPPED) : run_state_name(RUN_FINISHED));
    cJSON_AddStringToObject(r, "stop_reason", vv_shallow_stop_name(res.stop_reason));
    cJSON_AddStringToObject(r, "kind", "neuron_sharing");
    if (s->name)
        cJSON_AddStringToObject(r, "name", s->name);
    cJSON_AddStringToObject(r, "mode", vv_shallow_mode_name(s->mode));
    cJSON_AddBoolToObject(r, "per_output", s->per_output);
    cJSON_AddNumberToObject(r, "steps", (double)res.steps);
    cJSON_AddNumberToObject(r, "width", res.width);
    cJSON_AddNumberToObject(r, "active", res.active);
    cJSON *used = cJSON_AddArrayToObject(r, "used_by_output");
    for (int j = 0; j < res.d_out; j++)
        cJSON_AddItemToArray(used, cJSON_CreateNumber(res.used[j]));
    cJSON_AddNumberToObject(r, "shared", res.shared);
    cJSON_AddNumberToObject(r, "used_by_one", res.used_by_one);
    cJSON_AddNumberToObject(r, "mse", res.mse);
    cJSON_AddNumberToObject(r, "vv_norm", res.vv_norm);
    cJSON_AddNumberToObject(r, "group_norm", res.group_norm);
    cJSON_AddNumberToObject(r, "teacher_vv_norm", data.teacher_vv);
    cJSON_AddNumberToObject(r, "train_seconds", res.seconds);
    /* Artifacts: the weights in PyTorch's layout and the figure. */
    char path[4200];
    cJSON *outs = cJSON_AddObjectToObject(r, "outputs");
    vv_st_tensor t[3] = {
        {"0.weight", VV_F64, 2, {res.width, res.d_in}, res.w1},
        {"0.bias", VV_F64, 1, {res.width}, res.b1},
        {"2.weight", VV_F64, 2, {res.d_out, res.width}, res.v},
    };
    snprintf(path, sizeof path, "%s/weights.safetensors", out_dir);
    if ((rc = vv_safetensors_write(path, t, 3)) == 0)
        cJSON_AddStringToObject(outs, "weights", path);
    if (rc == 0 && res.d_in == 2) {
        char title[160];
        snprintf(title, sizeof title, "%s: %d active, %d shared by all outputs",
                 vv_shallow_mode_name(s->mode), res.active, res.shared);
        snprintf(path, sizeof path, "%s/neurons.svg", out_dir);
        if ((rc = vv_shallow_svg(&res, title, &svg)) == 0 && (rc = run_write_text(path, svg)) == 0)
            cJSON_AddStringToObject(outs, "figure", path);
    }
    cJSON_AddNumberToObject(r, "seconds", vv_now() - t0);
    char *txt = rc == 0 ? cJSON_Print(r) : NULL;
    snprintf(path, sizeof path, "%s/result.json", out_dir);
    if (rc == 0 && (rc = txt ? run_write_text(path, txt) : vv_fail(VV_ENOMEM, "out of memory")) == 0)
        cJSON_AddStringToObject(outs, "result", path);
    free(txt);
    if (rc < 0) {
        cJSON_Delete(r);
        goto done;
    }
    *result = r;
done:
    free(svg);
    vv_shallow_result_free(&res);
    vv_shallow_data_free(&data);
    return rc;
}
