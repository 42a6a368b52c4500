/* view.c - what the tables of vvctl (ls, show, sweep status, compare) show
 * of a run whatever its kind: names, the lambda columns and, for compress
 * runs, layer widths, parameters and test accuracy. */
#include "vvctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cJSON *vc_run_result(const cJSON *run)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(run, "result");
    return cJSON_IsObject(res) ? res : cJSON_GetObjectItemCaseSensitive(run, "summary");
}

int vc_run_is_compress(const cJSON *run)
{
    return !strcmp(vc_str(run, "kind", ""), "compress");
}

const char *vc_run_name(const cJSON *run)
{
    const char *name = vc_str(run, "name", NULL);
    return name ? name : vc_str(cJSON_GetObjectItemCaseSensitive(run, "spec"), "name", NULL);
}

char *vc_fmt_widths(const cJSON *result, int compact)
{
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(result, "layers"), *l;
    if (!cJSON_IsArray(layers) || !cJSON_GetArraySize(layers))
        return NULL;
    char *s = NULL;
    cJSON_ArrayForEach(l, layers)
    {
        if (compact)
            vc_strcatf(&s, "%s%.0f", s ? "/" : "", vc_num(l, "kept", 0));
        else
            vc_strcatf(&s, "%s%s %.0f->%.0f", s ? ", " : "", vc_str(l, "layer", "?"),
                       vc_num(l, "neurons", 0), vc_num(l, "kept", 0));
    }
    return s;
}

/* "A->B" of key in result's "before" and in result itself, or just B. */
static const char *before_after(char *b, size_t sz, const cJSON *result, const char *key,
                                const char *fmt)
{
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(result, key);
    const cJSON *before =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(result, "before"), key);
    if (!cJSON_IsNumber(after))
        snprintf(b, sz, "-");
    else if (cJSON_IsNumber(before)) {
        char x[32];
        snprintf(x, sizeof x, fmt, before->valuedouble);
        snprintf(b, sz, "%s->", x);
        size_t n = strlen(b);
        snprintf(b + n, sz - n, fmt, after->valuedouble);
    } else {
        snprintf(b, sz, fmt, after->valuedouble);
    }
    return b;
}

const char *vc_fmt_params(char *b, size_t sz, const cJSON *result)
{
    return before_after(b, sz, result, "params", "%.0f");
}

const char *vc_fmt_acc(char *b, size_t sz, const cJSON *result)
{
    return before_after(b, sz, result, "test_acc", "%.4f");
}

const char *vc_fmt_lambda(char *b, size_t sz, const cJSON *run)
{
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(run, "summary");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(run, "spec");
    const cJSON *layers =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(run, "result"), "layers");
    /* A compress run of several layers has one lambda per layer: none fits
     * one cell (vvctl show lists them). */
    if (cJSON_GetArraySize(layers) > 1)
        return strcpy(b, "-");
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(sum, "lambda")))
        return vc_fmt_num(b, sz, sum, "lambda", 4);
    return vc_fmt_num(b, sz, spec, "lambda", 4);
}

char *vc_fmt_tags(const cJSON *run)
{
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(run, "tags"), *t;
    char *s = NULL;
    cJSON_ArrayForEach(t, tags)
    {
        if (cJSON_IsString(t))
            vc_strcatf(&s, "%s%s", s ? ", " : "", t->valuestring);
    }
    return s;
}

void vc_print_compress(const cJSON *run, const char *indent)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(run, "result");
    char *w = vc_fmt_widths(res, 0);
    if (!w)
        return;
    char p[64], a[64];
    printf("%slayers %s\n", indent, w);
    printf("%sparameters %s  test acc %s", indent, vc_fmt_params(p, sizeof p, res),
           vc_fmt_acc(a, sizeof a, res));
    /* The baseline's last stage: finetuned, else refit, else pruned. */
    const cJSON *bl = cJSON_GetObjectItemCaseSensitive(res, "baseline"), *base = NULL;
    static const char *const stages[] = {"finetuned", "refit", "pruned"};
    for (int i = 0; i < 3 && !base; i++) {
        base = cJSON_GetObjectItemCaseSensitive(bl, stages[i]);
        if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(base, "test_acc")))
            base = NULL;
    }
    if (base)
        printf("  (magnitude pruning at the same widths: %.4f)", vc_num(base, "test_acc", 0));
    putchar('\n');
    free(w);
}
