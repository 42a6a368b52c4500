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
    /* PUT /v1/blobs upload state: the body goes to upload_tmp, a temporary
     * file of the folder upload_dirfd (inside DATA/blobs), renamed to
     * upload_leaf by upload_commit(); upload_path is the blob's name relative
     * to the data root (blobs/NAME). */
    int upload_fd;
    int upload_dirfd;
    char upload_tmp[64];   /* "" when there is no temporary file */
    char upload_leaf[256];
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

/* "Did you mean": for an unknown field whose detail lists the valid names
 * as "(allowed: a, b, c)", the name closest to the pointer's last segment,
 * copied into out; NULL when none is close (vv/suggest.h). */
const char *problem_suggest(const char *field, const char *detail, char *out, size_t cap);

/* Query parameter or NULL. */
const char *query(req *r, const char *name);

/* The integer query parameter name (http_query.c): *out = def and 0 when
 * it is absent; otherwise it must be a decimal integer in [lo, hi], an
 * optional '-' and digits and nothing else (no white space, no '+'), or
 * the call returns VV_EINVAL with a detail naming the parameter, and the
 * caller answers 400 with field "/query/NAME". */
int query_int(req *r, const char *name, int64_t lo, int64_t hi, int64_t def, int64_t *out);
/* The same for the request header name; the field is "/header/NAME". */
int header_int(req *r, const char *name, int64_t lo, int64_t hi, int64_t def, int64_t *out);

/* Completes PUT /v1/blobs/NAME once its whole body has arrived: syncs the
 * temporary file and renames it into place.  Returns 0, or the vv_err of the
 * upload (met while receiving or now) with its detail recorded and *field set
 * to the JSON pointer at fault ("" or "/name"); the temporary file is then
 * removed.  Must be called on the request's own thread. */
int upload_commit(req *r, const char **field);

/* The route table and run objects (api.c). */
enum MHD_Result api_dispatch(req *r);
cJSON *api_run_json(req *r, const run_row *row);
/* The body as one JSON value with nothing but white space after it, whose
 * strings and keys are valid UTF-8 and whose objects repeat no key (see
 * json_check.h).  Otherwise NULL, with *err the vv_err (VV_EJSON, or
 * VV_EINVAL for a repeated key), a detail, and field (fsz bytes) the JSON
 * pointer of the bad value ("" when the text does not parse). */
cJSON *api_parse_body(req *r, int *err, char *field, size_t fsz);
/* Parses a spec and checks its files inside the data root. */
int api_prepare_spec(req *r, const cJSON *json, job_spec *s, char *field, size_t fsz);

/* Tracking (api_tracking.c): a run object's name, tags and notes; PATCH
 * and DELETE of a run; GET /v1/sweeps; a sweep's name, kind and grid (and,
 * with with_counts, its points, counts of latest attempts by state and
 * deleted runs) added to o; the list of its deleted runs as o.deleted. */
void api_run_annotations(cJSON *o, const run_row *row);
enum MHD_Result api_patch_run(req *r, const char *id);
enum MHD_Result api_delete_run(req *r, const char *id);
enum MHD_Result api_sweeps_list(req *r);
int api_sweep_describe(req *r, const sweep_row *sw, cJSON *o, int with_counts);
int api_sweep_deleted_json(req *r, const char *id, cJSON *o);

/* External runs (external.c): a worker claims a run or a sweep's point,
 * sends its events, ends it. */
enum MHD_Result api_run_claim(req *r, const char *id);
enum MHD_Result api_run_events_post(req *r, const char *id);
enum MHD_Result api_run_finish(req *r, const char *id);
enum MHD_Result api_sweep_claim(req *r, const char *sid);

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
