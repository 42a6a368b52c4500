/* watch_log.c - the log events of a run (what server/run*.c emit: start,
 * stats, point, panel, the default model's training) as short human lines
 * for `vvctl watch`.  Unknown events become "event NAME" and a few of their
 * key=value pairs, so that raw JSON never lands in the human output. */
#include "vvctl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_PAIRS = 4 }; /* key=value pairs shown of an unknown event */

/* Appends " key=value" for up to max scalar members of ev other than
 * "event" and "phase" (numbers with 4 significant digits, strings cut at 40
 * bytes); arrays of strings are joined with commas. */
static void add_pairs(char **s, const cJSON *ev, int max)
{
    const cJSON *m;
    int n = 0;
    cJSON_ArrayForEach(m, ev)
    {
        if (n >= max)
            break;
        if (!m->string || !strcmp(m->string, "event") || !strcmp(m->string, "phase"))
            continue;
        if (cJSON_IsNumber(m))
            vc_strcatf(s, " %s=%.4g", m->string, m->valuedouble);
        else if (cJSON_IsString(m))
            vc_strcatf(s, " %s=%.40s", m->string, m->valuestring);
        else if (cJSON_IsBool(m))
            vc_strcatf(s, " %s=%s", m->string, cJSON_IsTrue(m) ? "true" : "false");
        else
            continue;
        n++;
    }
}

/* The strings of an array joined with ", " (malloc'd; "-" when none). */
static char *join(const cJSON *arr)
{
    char *s = NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (cJSON_IsString(e))
            vc_strcatf(&s, "%s%s", s ? ", " : "", e->valuestring);
    }
    return s ? s : strdup("-");
}

static void start_text(char **s, const cJSON *ev)
{
    const char *kind = vc_str(ev, "kind", "?");
    vc_strcatf(s, "start %s", kind);
    if (!strcmp(kind, "compress")) {
        char *layers = join(cJSON_GetObjectItemCaseSensitive(ev, "layers"));
        vc_strcatf(s, ": model %s, layers %s; %.0f train / %.0f test images",
                   vc_str(ev, "model", "?"), layers, vc_num(ev, "n_train", 0),
                   vc_num(ev, "n_test", 0));
        free(layers);
    } else if (!strcmp(kind, "lasso") || !strcmp(kind, "interpolate")) {
        vc_strcatf(s, ": n=%.0f k=%.0f d=%.0f", vc_num(ev, "n", 0), vc_num(ev, "k", 0),
                   vc_num(ev, "d", 0));
        if (vc_str(ev, "solver", NULL))
            vc_strcatf(s, ", solver %s", vc_str(ev, "solver", ""));
    } else if (!strcmp(kind, "train")) {
        vc_strcatf(s, ": %s%s%.0f parameters, %.0f train / %.0f test images, %.0f epochs",
                   vc_str(ev, "preset", ""), vc_str(ev, "preset", NULL) ? ", " : "",
                   vc_num(ev, "params", 0), vc_num(ev, "n_train", 0), vc_num(ev, "n_test", 0),
                   vc_num(ev, "epochs", 0));
    } else {
        add_pairs(s, ev, MAX_PAIRS);
        return;
    }
    if (vc_str(ev, "device", NULL))
        vc_strcatf(s, "; on %s", vc_str(ev, "device", ""));
    if (vc_str(ev, "blas", NULL))
        vc_strcatf(s, " (BLAS %s)", vc_str(ev, "blas", ""));
}

static void stats_text(char **s, const cJSON *ev)
{
    char b[32];
    const char *layer = vc_str(ev, "layer", NULL);
    if (layer)
        vc_strcatf(s, "layer %s: statistics over %.0f samples (%.0f inputs, %.0f outputs)", layer,
                   vc_num(ev, "n", 0), vc_num(ev, "k", 0), vc_num(ev, "d", 0));
    else
        vc_strcatf(s, "statistics");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "cached")))
        vc_strcatf(s, " (cached)");
    else
        vc_strcatf(s, " in %s", vc_fmt_duration(b, sizeof b, vc_num(ev, "seconds", NAN)));
    if (vc_num(ev, "gflops", 0) > 0)
        vc_strcatf(s, " (%.1f GFLOP/s)", vc_num(ev, "gflops", 0));
    vc_strcatf(s, ", lambda_max %.4g", vc_num(ev, "lambda_max", NAN));
}

static void point_text(char **s, const cJSON *ev)
{
    vc_strcatf(s,
               "path point %.0f: lambda %.4g (ratio %.3g), active %.0f, rel_gap %.2e, %s after "
               "%.0f iterations",
               vc_num(ev, "index", 0), vc_num(ev, "lambda", NAN), vc_num(ev, "lambda_ratio", NAN),
               vc_num(ev, "active", NAN), vc_num(ev, "rel_gap", NAN),
               vc_str(ev, "stop_reason", "?"), vc_num(ev, "iterations", 0));
}

char *vc_log_text(const cJSON *ev)
{
    const char *name = vc_str(ev, "event", "?");
    const char *phase = vc_str(ev, "phase", NULL);
    char *s = NULL;
    if (phase && !strcmp(phase, "train_default")) {
        /* The default model trained on first use (not this run's steps). */
        vc_strcatf(&s, "default model: ");
        if (!strcmp(name, "train_metric")) {
            vc_strcatf(&s, "step %.0f", vc_num(ev, "step", 0));
            if (cJSON_GetObjectItemCaseSensitive(ev, "epoch"))
                vc_strcatf(&s, " epoch %.2f", vc_num(ev, "epoch", 0));
            if (cJSON_GetObjectItemCaseSensitive(ev, "loss"))
                vc_strcatf(&s, " loss %.4f", vc_num(ev, "loss", 0));
            if (cJSON_GetObjectItemCaseSensitive(ev, "test_acc"))
                vc_strcatf(&s, " test acc %.4f", vc_num(ev, "test_acc", 0));
            return s;
        }
        if (!strcmp(name, "train_result")) {
            vc_strcatf(&s, "trained, test acc %.4f", vc_num(ev, "test_acc", NAN));
            return s;
        }
    } else if (phase) {
        vc_strcatf(&s, "%s: ", phase);
    }
    if (!strcmp(name, "start"))
        start_text(&s, ev);
    else if (!strcmp(name, "stats"))
        stats_text(&s, ev);
    else if (!strcmp(name, "point"))
        point_text(&s, ev);
    else {
        vc_strcatf(&s, "event %s", name);
        add_pairs(&s, ev, MAX_PAIRS);
    }
    return s;
}
