/* http_util.h - helpers shared by the HTTP glue and the route handlers. */
#ifndef VV_HTTP_UTIL_H
#define VV_HTTP_UTIL_H

#include "http.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stddef.h>

/* One request as the handlers see it. */
typedef struct req {
    struct MHD_Connection *conn;
    const http_config *cfg;
    struct http_server *srv;
    const char *method;
    const char *url;
    char *body;       /* NUL-terminated, may be NULL */
    size_t body_len;
    /* PUT /v1/blobs upload state */
    int upload_fd;
    char upload_tmp[4200];
    char upload_path[4096];
    int64_t upload_bytes;
    int upload_err;   /* a vv_err met while receiving, answered at the end */
    char upload_field[64];
    int too_large;
    char upload_detail[512];
} req;

enum MHD_Result reply_json(req *r, unsigned status, cJSON *body);   /* takes body */
enum MHD_Result reply_text(req *r, unsigned status, const char *type, const char *text);
/* A problem+json answer for err, with vv_err_detail() as detail. */
enum MHD_Result reply_problem(req *r, int err, const char *field);

/* Query parameter or NULL. */
const char *query(req *r, const char *name);

/* Resolves a path from a spec or URL inside the data root: relative to it,
 * no "..", no symlink leading out; writes the absolute path.  VV_EPATH when
 * it escapes, VV_ENOFILE when must_exist and it does not. */
int resolve_in_root(const char *root, const char *path, int must_exist, char *out, size_t outsz);

/* The route table and run objects (api.c). */
enum MHD_Result api_dispatch(req *r);
cJSON *api_run_json(req *r, const run_row *row);
/* The body as one JSON value with nothing but white space after it; NULL
 * with a detail (VV_EJSON) otherwise. */
cJSON *api_parse_body(req *r);
/* Parses a spec and checks its files inside the data root. */
int api_prepare_spec(req *r, const cJSON *json, job_spec *s, char *field, size_t fsz);

/* Resident models (api_models.c): name is NULL for /v1/models itself. */
enum MHD_Result api_models(req *r, const char *name);
/* Checks a job's model reference: its files inside the data root, a
 * resident model's existence, and a spec file's contents. */
int api_check_model_files(req *r, model_ref *m, const char *ptr, char *field, size_t fsz);

/* Queues the training of the embedded default model unless a run queued
 * for it is still pending; runs queued after it find it trained. */
int api_ensure_default(req *r, char *field, size_t fsz);

/* Sweeps (api_sweeps.c). */
enum MHD_Result api_sweep_post(req *r);
enum MHD_Result api_sweep_get(req *r, const char *id, int stop);
enum MHD_Result api_sweep_resume(req *r, const char *id);

/* SSE stream of a run (http.c). */
enum MHD_Result reply_events(req *r, const char *run_id, int64_t after);

#endif
