/* http.c - libmicrohttpd glue: requests, bodies, uploads, replies, SSE. */
#include "http_util.h"

#include "vv/suggest.h"
#include "paths.h"

#include "vv/err.h"
#include "vv/log.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct http_server {
    http_config cfg;
    struct MHD_Daemon *mhd;
    atomic_int closing; /* set by http_stop, read by the SSE readers */
};

/* ---- Replies ---------------------------------------------------------------- */

static enum MHD_Result send_buf(req *r, unsigned status, const char *type, const char *buf,
                                size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)buf, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"vvd\"");
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result reply_text(req *r, unsigned status, const char *type, const char *text)
{
    return send_buf(r, status, type, text, strlen(text));
}

enum MHD_Result reply_json(req *r, unsigned status, cJSON *body)
{
    char *s = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!s)
        return reply_text(r, 500, "application/problem+json",
                          "{\"title\":\"internal error\",\"status\":500}");
    enum MHD_Result ret = send_buf(r, status, "application/json", s, strlen(s));
    free(s);
    return ret;
}

const char *problem_suggest(const char *field, const char *detail, char *out, size_t cap)
{
    const char *word = field ? strrchr(field, '/') : NULL;
    const char *list = detail ? strstr(detail, "(allowed: ") : NULL;
    if (!word || !word[1] || !list)
        return NULL;
    list += strlen("(allowed: ");
    const char *end = strchr(list, ')');
    char cands[1024];
    snprintf(cands, sizeof cands, "%.*s", end ? (int)(end - list) : (int)strlen(list), list);
    return vv_closest_in_list(word + 1, cands, out, cap);
}

enum MHD_Result reply_problem(req *r, int err, const char *field)
{
    int status = vv_err_http_status(err);
    cJSON *o = cJSON_CreateObject();
    char type[96];
    snprintf(type, sizeof type, "/problems/%s", vv_err_code(err));
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, "title", vv_err_message(err));
    cJSON_AddNumberToObject(o, "status", status);
    char hint[72];
    const char *near = err == VV_EUNKNOWN ? problem_suggest(field, vv_err_detail(), hint, sizeof hint)
                                           : NULL;
    if (near)
        vv_fail(err, "%s; did you mean '%s'?", vv_err_detail(), near);
    cJSON_AddStringToObject(o, "detail", vv_err_detail()[0] ? vv_err_detail() : vv_err_message(err));
    cJSON_AddStringToObject(o, "error_code", vv_err_code(err));
    cJSON_AddStringToObject(o, "field", field ? field : "");
    if (near)
        cJSON_AddStringToObject(o, "did_you_mean", near);
    char instance[1024];
    vv_escape_text(instance, sizeof instance, r->url); /* the URL's bytes are the client's */
    cJSON_AddStringToObject(o, "instance", instance);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    enum MHD_Result ret = send_buf(r, (unsigned)status, "application/problem+json", s, strlen(s));
    free(s);
    if (status >= 500)
        VV_ERROR("http", NULL, "%s %s: %d %s", r->method, r->url, status, vv_err_detail());
    return ret;
}

const char *query(req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- Server-Sent Events ------------------------------------------------------ */

typedef struct sse {
    http_server *srv;
    char run[32];
    int64_t after;
    char *buf;
    size_t len, off, cap;
    int ended, started;
} sse;

static int sse_put(sse *s, const char *text, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 8192;
        while (cap < s->len + n)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return -1;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    return 0;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    sse *s = cls;
    if (s->off == s->len) {
        s->off = s->len = 0;
        if (s->ended || atomic_load(&s->srv->closing))
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!s->started) {
            s->started = 1;
            sse_put(s, "retry: 2000\n\n", 13);
        } else {
            jobs_event ev[64];
            int ended = 0;
            int n = jobs_events(s->srv->cfg.jobs, s->run, s->after, ev, 64, s->srv->cfg.sse_ping,
                                &ended);
            if (n < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            for (int i = 0; i < n; i++) {
                char head[96];
                int hn = snprintf(head, sizeof head, "id: %lld\nevent: %s\ndata: ",
                                  (long long)ev[i].seq, ev[i].type);
                sse_put(s, head, (size_t)hn);
                sse_put(s, ev[i].data ? ev[i].data : "{}", ev[i].data ? strlen(ev[i].data) : 2);
                sse_put(s, "\n\n", 2);
                s->after = ev[i].seq;
                free(ev[i].data);
            }
            if (n == 0 && !ended)
                sse_put(s, ": ping\n\n", 8);
            s->ended = ended;
            if (s->len == 0)
                return MHD_CONTENT_READER_END_OF_STREAM;
        }
    }
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(out, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    sse *s = cls;
    free(s->buf);
    free(s);
}

enum MHD_Result reply_events(req *r, const char *run_id, int64_t after)
{
    sse *s = calloc(1, sizeof *s);
    if (!s)
        return MHD_NO;
    s->srv = r->srv;
    snprintf(s->run, sizeof s->run, "%s", run_id);
    s->after = after;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, s, sse_free);
    if (!resp) {
        sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- Requests ------------------------------------------------------------------ */

static int is_blob_put(const char *method, const char *url)
{
    return !strcmp(method, "PUT") && !strncmp(url, "/v1/blobs/", 10);
}

/* PUT /v1/runs/{id}/artifacts/{name}: a worker's file of an external run. */
static int is_artifact_put(const char *method, const char *url, char *id, size_t idsz,
                           const char **name)
{
    if (strcmp(method, "PUT") || strncmp(url, "/v1/runs/", 9))
        return 0;
    const char *s = url + 9, *e = strchr(s, '/');
    if (!e || e == s || (size_t)(e - s) >= idsz || strncmp(e, "/artifacts/", 11))
        return 0;
    memcpy(id, s, (size_t)(e - s));
    id[e - s] = 0;
    *name = e + 11;
    return 1;
}

static int is_upload_put(const char *method, const char *url)
{
    char id[64];
    const char *name;
    return is_blob_put(method, url) || is_artifact_put(method, url, id, sizeof id, &name);
}

/* Records an upload error and its detail (answered when the body ends). */
static int upload_fail(req *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int upload_fail(req *r, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->upload_detail, sizeof r->upload_detail, fmt, ap);
    va_end(ap);
    return err;
}

/* Closes and removes the upload's temporary file, if any; the folder stays
 * open for the answer.  Safe to call more than once. */
static void upload_discard(req *r)
{
    if (r->upload_fd >= 0) {
        close(r->upload_fd);
        r->upload_fd = -1;
    }
    if (r->upload_tmp[0] && r->upload_dirfd >= 0)
        unlinkat(r->upload_dirfd, r->upload_tmp, 0);
    r->upload_tmp[0] = 0;
}

/* The vv_err of a failed write, sync or create: a full disk or quota is
 * VV_ENOSPACE (507), anything else VV_EIO. */
static int upload_errno(int e)
{
    return e == ENOSPC || e == EDQUOT ? VV_ENOSPACE : VV_EIO;
}

/* Starts PUT /v1/blobs/NAME: checks the name, opens (creating) its folder
 * inside DATA/blobs and creates the temporary file there.  A refusal is kept
 * in r->upload_err and answered once the body has been read; nothing is
 * created for a refused name. */
/* Whether name is 1 to 128 letters, digits and ._- not starting with '.'. */
static int artifact_part_ok(const char *name, size_t n)
{
    int ok = n >= 1 && n <= 128 && name[0] != '.';
    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
             (name[i] >= '0' && name[i] <= '9') || strchr("._-", name[i]);
    return ok;
}

/* Opens DATA/runs/ID (or its folder SUB, for NAME = SUB/FILE: one level, as
 * a run writes) for an external RUNNING run's artifact NAME. */
static int artifact_dir(req *r, const char *id, const char *name, const char **leaf)
{
    const char *slash = strchr(name, '/');
    if (!(slash ? artifact_part_ok(name, (size_t)(slash - name)) &&
                      artifact_part_ok(slash + 1, strlen(slash + 1)) && !strchr(slash + 1, '/')
                : artifact_part_ok(name, strlen(name))))
        return vv_fail(VV_EINVAL, "artifact name '%.128s': FILE or FOLDER/FILE, each 1 to 128 "
                                  "letters, digits and ._- (not starting with '.')",
                       name);
    run_row row = {0};
    int rc = store_run_get(r->cfg->db, id, &row);
    if (rc == 0 && (!row.runner || strcmp(row.state, "RUNNING")))
        rc = vv_fail(VV_ESTATE, "run %s is %s%s: only a worker's RUNNING run takes artifacts", id,
                     row.state, row.runner ? "" : " and run by this daemon");
    run_row_free(&row);
    if (rc < 0)
        return rc;
    if (snprintf(r->upload_path, sizeof r->upload_path, "%s/runs/%s/%s", r->cfg->data_root, id,
                 name) >= (int)sizeof r->upload_path)
        return vv_fail(VV_EINVAL, "artifact path too long");
    char runs[PATH_MAX];
    snprintf(runs, sizeof runs, "%s/runs", r->cfg->data_root);
    if (mkdir(runs, 0755) < 0 && errno != EEXIST)
        return vv_fail(upload_errno(errno), "%s: %s", runs, strerror(errno));
    int rfd = open(runs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rfd < 0)
        return vv_fail(VV_EIO, "%s: %s", runs, strerror(errno));
    if (mkdirat(rfd, id, 0755) < 0 && errno != EEXIST) {
        int e = errno;
        close(rfd);
        return vv_fail(upload_errno(e), "%s/%s: %s", runs, id, strerror(e));
    }
    r->upload_dirfd = openat(rfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(rfd);
    if (r->upload_dirfd < 0)
        return vv_fail(VV_EIO, "%s/%s: %s", runs, id, strerror(e));
    *leaf = name;
    if (slash) {
        char sub[130];
        snprintf(sub, sizeof sub, "%.*s", (int)(slash - name), name);
        if (mkdirat(r->upload_dirfd, sub, 0755) < 0 && errno != EEXIST)
            return vv_fail(upload_errno(errno), "%s/%s/%s: %s", runs, id, sub, strerror(errno));
        int sfd = openat(r->upload_dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        e = errno;
        close(r->upload_dirfd);
        r->upload_dirfd = sfd;
        if (sfd < 0)
            return vv_fail(VV_EIO, "%s/%s/%s: %s", runs, id, sub, strerror(e));
        *leaf = slash + 1;
    }
    return 0;
}

static void upload_begin(req *r)
{
    static atomic_uint seq;
    const char *name = r->url + 10, *rel = NULL, *leaf = NULL;
    char id[64];
    r->upload_fd = r->upload_dirfd = -1;
    int rc;
    if (is_artifact_put(r->method, r->url, id, sizeof id, &name)) {
        rc = artifact_dir(r, id, name, &leaf);
    } else {
        rc = data_blob_name(name, &rel);
        if (rc == 0 && snprintf(r->upload_path, sizeof r->upload_path, DATA_BLOBS "/%s", rel) >=
                           (int)sizeof r->upload_path)
            rc = vv_fail(VV_EINVAL, "blob name '%.200s' is too long", name);
        if (rc == 0)
            rc = data_blob_open_dir(r->cfg->data_root, rel, &r->upload_dirfd, &leaf);
    }
    if (rc < 0) {
        r->upload_err = upload_fail(r, rc, "%s", vv_err_detail());
        snprintf(r->upload_field, sizeof r->upload_field, rc == VV_ENOSPACE ? "" : "/name");
        return;
    }
    snprintf(r->upload_leaf, sizeof r->upload_leaf, "%s", leaf);
    /* ".upload-" names are refused as blob names: no collision with a blob. */
    for (int i = 0; i < 100 && r->upload_fd < 0; i++) {
        snprintf(r->upload_tmp, sizeof r->upload_tmp, ".upload-%ld-%u", (long)getpid(),
                 atomic_fetch_add(&seq, 1));
        r->upload_fd = openat(r->upload_dirfd, r->upload_tmp,
                              O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (r->upload_fd < 0 && errno != EEXIST)
            break;
    }
    if (r->upload_fd < 0) {
        int e = errno;
        r->upload_tmp[0] = 0;
        r->upload_err = upload_fail(r, upload_errno(e), "blob %s: cannot create its file: %s",
                                    r->upload_path, strerror(e));
    }
}

static void upload_chunk(req *r, const char *data, size_t n)
{
    if (r->upload_err || r->upload_fd < 0)
        return;
    if (r->upload_bytes + (int64_t)n > r->cfg->max_upload) {
        r->upload_err = upload_fail(r, VV_ETOOLARGE, "uploads are limited to %lld bytes",
                                    (long long)r->cfg->max_upload);
        r->too_large = 1;
        upload_discard(r);
        return;
    }
    while (n > 0) {
        ssize_t w = write(r->upload_fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            r->upload_err = upload_fail(r, upload_errno(e), "blob %s: writing byte %lld: %s",
                                        r->upload_path, (long long)r->upload_bytes, strerror(e));
            /* At once, so that a full disk gets its space back. */
            upload_discard(r);
            return;
        }
        data += w;
        n -= (size_t)w;
        r->upload_bytes += w;
    }
}

int upload_commit(req *r, const char **field)
{
    *field = "";
    if (r->upload_err) {
        *field = r->upload_field;
        upload_discard(r);
        return vv_fail(r->upload_err, "%s", r->upload_detail);
    }
    if (r->upload_fd < 0 || r->upload_dirfd < 0 || !r->upload_tmp[0])
        return vv_fail(VV_EINTERNAL, "upload not started");
    int fd = r->upload_fd;
    r->upload_fd = -1;
    if (fsync(fd) < 0 || close(fd) < 0) {
        int e = errno;
        upload_discard(r);
        return vv_fail(upload_errno(e), "blob %s: writing its file: %s", r->upload_path,
                       strerror(e));
    }
    if (renameat(r->upload_dirfd, r->upload_tmp, r->upload_dirfd, r->upload_leaf) < 0) {
        int e = errno;
        upload_discard(r);
        if (e == EISDIR || e == ENOTEMPTY || e == EEXIST || e == ENOTDIR) {
            *field = "/name";
            return vv_fail(VV_ECONFLICT, "blob %s: a folder of that name exists", r->upload_path);
        }
        return vv_fail(upload_errno(e), "blob %s: storing it: %s", r->upload_path, strerror(e));
    }
    r->upload_tmp[0] = 0;
    fsync(r->upload_dirfd); /* the new name survives a crash; best effort */
    return 0;
}

static int check_token(req *r)
{
    if (!r->cfg->token)
        return 1;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7))
        return 0;
    const char *t = h + 7, *want = r->cfg->token;
    size_t a = strlen(t), b = strlen(want);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a && i < b; i++)
        diff |= (unsigned)(t[i] ^ want[i]);
    return diff == 0;
}

/* Requests answered without the token: /health, and the dashboard's own files
 * (GET of a path outside /v1/, but not /metrics) when --web-dir is set: they
 * hold no data, and a browser loads them before it can send a token. */
static int is_public(const req *r, const char *method, const char *url)
{
    if (!strcmp(url, "/health"))
        return 1;
    return r->cfg->web_dir && !strcmp(method, "GET") && strncmp(url, "/v1/", 4) &&
           strcmp(url, "/v1") && strcmp(url, "/metrics");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    http_server *h = cls;
    req *r = *con_cls;
    /* Connection threads yield the CPU to the compute threads: a busy API
     * must not slow the solver down. */
    static _Thread_local int niced;
    if (!niced) {
        niced = 1;
        setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    }
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->conn = conn;
        r->cfg = &h->cfg;
        r->srv = h;
        r->method = method;
        r->url = url;
        r->upload_fd = r->upload_dirfd = -1;
        *con_cls = r;
        if (is_upload_put(method, url) && check_token(r))
            upload_begin(r);
        return MHD_YES;
    }
    if (*upload_size) {
        if (is_upload_put(method, url)) {
            /* After an error the rest of the body is read and dropped: this
             * libmicrohttpd cannot answer before the request is complete. */
            upload_chunk(r, upload_data, *upload_size);
        } else if (!r->too_large) {
            if ((int64_t)(r->body_len + *upload_size) > r->cfg->max_body) {
                r->too_large = 1;
            } else {
                char *b = realloc(r->body, r->body_len + *upload_size + 1);
                if (!b)
                    return MHD_NO;
                r->body = b;
                memcpy(r->body + r->body_len, upload_data, *upload_size);
                r->body_len += *upload_size;
                r->body[r->body_len] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    vv_err_clear();
    if (!is_public(r, method, url) && !check_token(r)) {
        vv_fail(VV_EAUTH, "this vvd requires 'Authorization: Bearer <token>'");
        return reply_problem(r, VV_EAUTH, "");
    }
    if (r->too_large && !is_upload_put(method, url)) {
        vv_fail(VV_ETOOLARGE, "request bodies are limited to %lld bytes",
                (long long)r->cfg->max_body);
        return reply_problem(r, VV_ETOOLARGE, "");
    }
    return api_dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req *r = *con_cls;
    if (!r)
        return;
    /* Every way an upload ends without upload_commit() renaming its file
     * (a refusal, a client that went away) removes the temporary file. */
    upload_discard(r);
    if (r->upload_dirfd >= 0)
        close(r->upload_dirfd);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

int http_start(const http_config *cfg, http_server **out, int *port_out)
{
    http_server *h = calloc(1, sizeof *h);
    if (!h)
        return vv_fail(VV_ENOMEM, "out of memory");
    h->cfg = *cfg;
    struct sockaddr_in sa4 = {0};
    struct sockaddr_in6 sa6 = {0};
    struct sockaddr *sa;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, cfg->host, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons((uint16_t)cfg->port);
        sa = (struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, cfg->host, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons((uint16_t)cfg->port);
        sa = (struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        free(h);
        return vv_fail(VV_EINVAL, "--listen: '%s' is not a numeric IPv4 or IPv6 address",
                       cfg->host);
    }
    h->mhd = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, h,
                              MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                              h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_END);
    if (!h->mhd) {
        free(h);
        return vv_fail(VV_EIO, "cannot listen on %s:%d (in use, or not an address of this host)",
                       cfg->host, cfg->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = info ? info->port : cfg->port;
    *out = h;
    return 0;
}

void http_stop(http_server *h)
{
    if (!h)
        return;
    atomic_store(&h->closing, 1);
    jobs_wake(h->cfg.jobs);
    MHD_stop_daemon(h->mhd);
    free(h);
}
