/* models.c - `vvctl models`: the daemon's resident models (GET, POST and
 * DELETE /v1/models). */
#include "vvctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "1x28x28" from an [c, h, w] array. */
static const char *fmt_input(char *buf, size_t cap, const cJSON *in)
{
    size_t k = 0;
    buf[0] = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, in)
    {
        if (k < cap)
            k += (size_t)snprintf(buf + k, cap - k, "%s%.0f", k ? "x" : "", d->valuedouble);
    }
    return k ? buf : "-";
}

static int models_ls(void)
{
    int rc;
    cJSON *o = vc_call("GET", "/v1/models", NULL, &rc);
    if (!o)
        return rc;
    if (vc_opt.json) {
        vc_print_json(o, 0);
        cJSON_Delete(o);
        return VC_OK;
    }
    vc_table t;
    vc_table_init(&t, 8);
    const char *head[] = {"NAME",   "PARAMS", "MIB",    "INPUT",
                          "DEVICE", "IN_USE", "LINEAR", "WEIGHTS"};
    vc_table_row(&t, head);
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(o, "models"))
    {
        char params[32], mib[32], in[64], use[32];
        vc_fmt_num(params, sizeof params, m, "params", 12);
        snprintf(mib, sizeof mib, "%.1f", vc_num(m, "bytes", 0) / 1048576.0);
        fmt_input(in, sizeof in, cJSON_GetObjectItemCaseSensitive(m, "input"));
        vc_fmt_num(use, sizeof use, m, "in_use", 6);
        char *lin = NULL;
        const cJSON *l;
        cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(m, "linear_layers"))
        {
            if (cJSON_IsString(l))
                vc_strcatf(&lin, "%s%s", lin ? "," : "", l->valuestring);
        }
        const char *cells[] = {vc_str(m, "name", "?"),
                               params,
                               mib,
                               in,
                               vc_str(m, "device", "-"),
                               use,
                               lin ? lin : "-",
                               vc_str(m, "weights", "-")};
        vc_table_row(&t, cells);
        free(lin);
    }
    vc_table_print(&t);
    vc_table_free(&t);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "default_model");
    if (d)
        printf("default model %s: %s\n", vc_str(d, "name", "?"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "trained"))
                   ? "trained (loaded on first use)"
                   : "not trained yet (trained by the first run that names it)");
    cJSON_Delete(o);
    return VC_OK;
}

static const vc_optdef load_defs[] = {
    {"arch", 1},  {"spec", 1},       {"weights", 1}, {"width-div", 1}, {"classes", 1}, {"input", 1},
    {"sizes", 1}, {"preprocess", 1}, {"seed", 1},    {"dry-run", 0},   {NULL, 0}};

/* A path that is a local file is uploaded (blob: its base name) and becomes
 * "blobs/NAME"; any other is left as a path in the daemon's data root.
 * Returns an exit code. */
static int local_file(cJSON *body, const char *key, const char *path, int dry)
{
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        cJSON_AddStringToObject(body, key, path);
        return VC_OK;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char *ref = NULL;
    vc_strcatf(&ref, "blobs/%s", base);
    int rc = dry ? VC_OK : vc_upload_path(path, base);
    if (rc == VC_OK)
        cJSON_AddStringToObject(body, key, ref);
    free(ref);
    return rc;
}

/* A comma list of integers as a JSON array; NULL when malformed. */
static cJSON *int_list(const char *s)
{
    cJSON *a = cJSON_CreateArray();
    char *copy = strdup(s), *save = NULL;
    int n = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save), n++) {
        long v;
        if (vc_parse_long(t, &v) || v < 1) {
            n = 0;
            break;
        }
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v));
    }
    free(copy);
    if (!n) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

static int models_load(const vc_args *a)
{
    if (a->npos != 2)
        return vc_usage("models", "models load takes one name: vvctl models load NAME --arch A "
                                  "| --spec F [--weights W]");
    const char *arch = vc_arg(load_defs, a, "arch"), *spec = vc_arg(load_defs, a, "spec");
    if (!arch == !spec)
        return vc_usage("models", "give exactly one of --arch and --spec");
    int dry = vc_arg(load_defs, a, "dry-run") != NULL;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "name", a->pos[1]);
    int rc = VC_OK;
    if (arch)
        cJSON_AddStringToObject(body, "arch", arch);
    else
        rc = local_file(body, "spec", spec, dry);
    static const char *const ints[][2] = {
        {"width-div", "width_div"}, {"classes", "classes"}, {"seed", "seed"}};
    for (int i = 0; i < 3 && rc == VC_OK; i++) {
        const char *v = vc_arg(load_defs, a, ints[i][0]);
        long l;
        if (v && (vc_parse_long(v, &l) || l < 0))
            rc = vc_usage("models", "--%s: '%s' is not a non-negative integer", ints[i][0], v);
        else if (v)
            cJSON_AddNumberToObject(body, ints[i][1], (double)l);
    }
    static const char *const lists[] = {"input", "sizes"};
    for (int i = 0; i < 2 && rc == VC_OK; i++) {
        const char *v = vc_arg(load_defs, a, lists[i]);
        cJSON *l = v ? int_list(v) : NULL;
        if (v && !l)
            rc = vc_usage("models", "--%s: '%s' is not a comma list of positive integers", lists[i],
                          v);
        else if (l)
            cJSON_AddItemToObject(body, lists[i], l);
    }
    const char *pre = vc_arg(load_defs, a, "preprocess");
    if (rc == VC_OK && pre) {
        cJSON *p = cJSON_Parse(pre);
        if (!cJSON_IsObject(p)) {
            cJSON_Delete(p);
            rc = vc_usage("models", "--preprocess: a JSON object, e.g. '{\"mean\": [0.286], "
                                    "\"std\": [0.353]}'");
        } else {
            cJSON_AddItemToObject(body, "preprocess", p);
        }
    }
    const char *w = vc_arg(load_defs, a, "weights");
    if (rc == VC_OK && w)
        rc = local_file(body, "weights", w, dry);
    if (rc == VC_OK && dry) {
        vc_print_json(body, 1);
        cJSON_Delete(body);
        return VC_OK;
    }
    char *text = rc == VC_OK ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text)
        return rc ? rc : VC_FAILED;
    cJSON *m = vc_call("POST", "/v1/models", text, &rc);
    free(text);
    if (!m)
        return rc;
    if (vc_opt.json) {
        vc_print_json(m, 0);
    } else {
        char in[64], params[32];
        printf("%s: loaded, %s parameters (%.1f MiB), input %s, in %.2f s\n",
               vc_str(m, "name", a->pos[1]), vc_fmt_num(params, sizeof params, m, "params", 12),
               vc_num(m, "bytes", 0) / 1048576.0,
               fmt_input(in, sizeof in, cJSON_GetObjectItemCaseSensitive(m, "input")),
               vc_num(m, "load_seconds", 0));
    }
    cJSON_Delete(m);
    return VC_OK;
}

static int models_rm(const vc_args *a)
{
    if (a->npos != 2)
        return vc_usage("models", "models rm takes one model name");
    char *e = vc_urlencode(a->pos[1], 0), *path = NULL;
    vc_strcatf(&path, "/v1/models/%s", e);
    int rc;
    cJSON *o = vc_call("DELETE", path, NULL, &rc);
    free(path);
    free(e);
    if (!o)
        return rc;
    if (vc_opt.json)
        vc_print_json(o, 0);
    else
        printf("%s: deleted (runs using it keep it until they end)\n",
               vc_str(o, "name", a->pos[1]));
    cJSON_Delete(o);
    return VC_OK;
}

int vc_cmd_models(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("models", argc, argv, load_defs, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("models") : rc;
    const char *sub = a.npos ? a.pos[0] : "ls";
    int has_opts = 0;
    for (int i = 0; load_defs[i].name; i++)
        has_opts |= a.val[i] != NULL;
    if (strcmp(sub, "load") && has_opts)
        return vc_usage("models", "options such as --arch only go with 'models load'");
    if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
        if (a.npos > 1)
            return vc_usage("models", "models ls takes no argument");
        return models_ls();
    }
    if (!strcmp(sub, "load"))
        return models_load(&a);
    if (!strcmp(sub, "rm") || !strcmp(sub, "delete"))
        return models_rm(&a);
    static const char *const subs[] = {"ls", "load", "rm", "list", "unload", NULL};
    const char *near = vc_suggest(sub, subs);
    if (near)
        return vc_usage("models", "no subcommand '%s'; did you mean '%s'? (ls, load, rm)", sub,
                        !strcmp(near, "list")     ? "ls"
                        : !strcmp(near, "unload") ? "rm"
                                                  : near);
    return vc_usage("models", "no subcommand '%s' (ls, load, rm)", sub);
}
