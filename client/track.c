/* track.c - vvctl as a tracking tool: tag, note and rename runs (PATCH
 * /v1/runs/ID) and delete ended ones (DELETE /v1/runs/ID). */
#include "vvctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* PATCHes run id with body (a JSON object, deleted here); returns the run
 * object or NULL with *rc set (the problem printed). */
static cJSON *patch_run(const char *id, cJSON *body, int *rc)
{
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    char *eid = vc_urlencode(id, 0), *path = NULL;
    vc_strcatf(&path, "/v1/runs/%s", eid);
    cJSON *run = text ? vc_call("PATCH", path, text, rc) : NULL;
    if (!text)
        *rc = VC_FAILED;
    free(eid);
    free(path);
    free(text);
    return run;
}

static void print_tags(const cJSON *run, const char *id)
{
    char *tags = vc_fmt_tags(run);
    printf("%s: %s%s\n", vc_str(run, "id", id), tags ? "tags " : "no tags", tags ? tags : "");
    free(tags);
}

/* ---- tag ------------------------------------------------------------------------ */

static const vc_optdef tag_defs[] = {{"rm", 1}, {NULL, 0}};

int vc_cmd_tag(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("tag", argc, argv, tag_defs, "rm", &a);
    if (rc)
        return rc < 0 ? vc_help("tag") : rc;
    if (a.npos < 1)
        return vc_usage("tag", "tag takes a run id and tags");
    const char *id = a.pos[0];
    cJSON *run;
    if (a.npos == 1 && a.nmulti == 0) {
        /* Nothing to change: the run's tags. */
        char *eid = vc_urlencode(id, 0), *path = NULL;
        vc_strcatf(&path, "/v1/runs/%s", eid);
        run = vc_call("GET", path, NULL, &rc);
        free(eid);
        free(path);
    } else {
        cJSON *body = cJSON_CreateObject();
        cJSON *add = cJSON_AddArrayToObject(body, "add_tags");
        for (int i = 1; i < a.npos; i++)
            cJSON_AddItemToArray(add, cJSON_CreateString(a.pos[i]));
        cJSON *del = cJSON_AddArrayToObject(body, "remove_tags");
        for (int i = 0; i < a.nmulti; i++)
            cJSON_AddItemToArray(del, cJSON_CreateString(a.multi[i]));
        run = patch_run(id, body, &rc);
    }
    if (!run)
        return rc;
    if (vc_opt.json)
        vc_print_json(run, 0);
    else
        print_tags(run, id);
    cJSON_Delete(run);
    return VC_OK;
}

/* ---- note and rename -------------------------------------------------------------- */

int vc_cmd_note(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("note", argc, argv, NULL, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("note") : rc;
    if (a.npos < 2)
        return vc_usage("note", "note takes a run id and the text (or - for stdin)");
    char *text = NULL;
    if (a.npos == 2 && !strcmp(a.pos[1], "-")) {
        size_t len = 0;
        text = vc_read_file("-", &len);
        if (!text) {
            fprintf(stderr, "vvctl: reading stdin: %s\n", strerror(errno));
            return VC_USAGE;
        }
        if (len && text[len - 1] == '\n')
            text[--len] = 0;
    } else {
        for (int i = 1; i < a.npos; i++)
            vc_strcatf(&text, "%s%s", i > 1 ? " " : "", a.pos[i]);
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "notes", text ? text : "");
    free(text);
    cJSON *run = patch_run(a.pos[0], body, &rc);
    if (!run)
        return rc;
    if (vc_opt.json) {
        vc_print_json(run, 0);
    } else {
        size_t n = strlen(vc_str(run, "notes", ""));
        if (n)
            printf("%s: notes set (%zu bytes)\n", vc_str(run, "id", a.pos[0]), n);
        else
            printf("%s: notes cleared\n", vc_str(run, "id", a.pos[0]));
    }
    cJSON_Delete(run);
    return VC_OK;
}

static const vc_optdef rename_defs[] = {{"reset", 0}, {NULL, 0}};

int vc_cmd_rename(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("rename", argc, argv, rename_defs, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("rename") : rc;
    int reset = vc_arg(rename_defs, &a, "reset") != NULL;
    if (a.npos != 2 - reset)
        return vc_usage("rename", reset ? "rename --reset takes a run id"
                                        : "rename takes a run id and a name");
    cJSON *body = cJSON_CreateObject();
    if (reset)
        cJSON_AddNullToObject(body, "name");
    else
        cJSON_AddStringToObject(body, "name", a.pos[1]);
    cJSON *run = patch_run(a.pos[0], body, &rc);
    if (!run)
        return rc;
    if (vc_opt.json)
        vc_print_json(run, 0);
    else if (vc_run_name(run))
        printf("%s: name %s\n", vc_str(run, "id", a.pos[0]), vc_run_name(run));
    else
        printf("%s: no name\n", vc_str(run, "id", a.pos[0]));
    cJSON_Delete(run);
    return VC_OK;
}

/* ---- rm --------------------------------------------------------------------------- */

static const vc_optdef rm_defs[] = {{"yes", 0}, {"y", 0}, {NULL, 0}};

/* Deletes one run; returns an exit code (the refusal printed). */
static int rm_one(const char *id)
{
    char *eid = vc_urlencode(id, 0), *path = NULL;
    vc_strcatf(&path, "/v1/runs/%s", eid);
    free(eid);
    vc_resp r;
    int rc = vc_http("DELETE", path, NULL, &r);
    free(path);
    if (rc)
        return rc;
    cJSON *ans = r.status == 200 ? cJSON_ParseWithLength(r.body, r.len) : NULL;
    if (!ans) {
        vc_print_problem(&r);
        if (r.status == 409)
            fprintf(stderr,
                    "vvctl: %s was not deleted: it is queued or running; stop it first "
                    "(vvctl stop %s), then delete it\n",
                    id, id);
        vc_resp_free(&r);
        return VC_FAILED;
    }
    vc_resp_free(&r);
    if (vc_opt.json) {
        vc_print_json(ans, 0);
    } else {
        const char *sweep = vc_str(ans, "sweep_id", NULL);
        printf("%s: deleted (%.0f files removed)", vc_str(ans, "id", id),
               vc_num(ans, "files_removed", 0));
        if (sweep)
            printf("; sweep %s keeps a record of it (vvctl sweep resume %s queues its point "
                   "again)",
                   sweep, sweep);
        putchar('\n');
    }
    cJSON_Delete(ans);
    return VC_OK;
}

int vc_cmd_rm(int argc, char **argv)
{
    vc_args a;
    int rc = vc_parse_args("rm", argc, argv, rm_defs, NULL, &a);
    if (rc)
        return rc < 0 ? vc_help("rm") : rc;
    if (a.npos < 1)
        return vc_usage("rm", "rm takes one or more run ids");
    int yes = vc_arg(rm_defs, &a, "yes") || vc_arg(rm_defs, &a, "y");
    /* Ask only a person at a terminal; scripts delete without a question. */
    if (!yes && isatty(STDIN_FILENO)) {
        char q[256];
        snprintf(q, sizeof q, "delete %s%s and %s files?", a.pos[0],
                 a.npos > 1 ? " and the other runs given" : "", a.npos > 1 ? "their" : "its");
        if (!vc_confirm(q)) {
            fprintf(stderr, "vvctl: nothing deleted\n");
            return VC_FAILED;
        }
    }
    int ret = VC_OK;
    for (int i = 0; i < a.npos; i++) {
        rc = rm_one(a.pos[i]);
        if (rc == VC_UNREACHABLE)
            return rc;
        if (rc)
            ret = rc;
    }
    return ret;
}
