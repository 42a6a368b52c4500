/* http.c - vvctl's HTTP: JSON requests, uploads, downloads and the
 * Server-Sent Events reader, all through libcurl's easy interface. */
#include "vvctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    CONNECT_TIMEOUT_S = 10,  /* establishing a connection */
    REQUEST_TIMEOUT_S = 300, /* a whole JSON request (listing a large sweep is slow) */
    SILENT_STREAM_S = 60     /* an event stream without a byte (pings included) is dead */
};

/* ---- Plumbing ------------------------------------------------------------ */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static int buf_add(buf *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static size_t write_buf(char *data, size_t size, size_t nmemb, void *ctx)
{
    return buf_add(ctx, data, size * nmemb) ? 0 : size * nmemb;
}

/* Builds SERVER + path, dropping a trailing '/' of the server. */
static char *make_url(const char *path)
{
    const char *srv = vc_opt.server;
    size_t n = strlen(srv);
    while (n > 0 && srv[n - 1] == '/')
        n--;
    char *url = malloc(n + strlen(path) + 1);
    if (url) {
        memcpy(url, srv, n);
        strcpy(url + n, path);
    }
    return url;
}

/* Ends a transfer when Ctrl-C was pressed during a watch. */
static int progress_cb(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ctx, (void)dt, (void)dn, (void)ut, (void)un;
    return vc_interrupted ? 1 : 0;
}

/* A handle with the options every request shares; *hdrs must be freed
 * with curl_slist_free_all after the transfer. */
static CURL *new_handle(const char *url, struct curl_slist **hdrs)
{
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "vvctl/0.1.0");
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    *hdrs = NULL;
    if (vc_opt.token && vc_opt.token[0]) {
        char *h = NULL;
        vc_strcatf(&h, "Authorization: Bearer %s", vc_opt.token);
        if (h)
            *hdrs = curl_slist_append(*hdrs, h);
        free(h);
    }
    return c;
}

/* Prints why no answer came; returns VC_UNREACHABLE (or VC_DETACHED when
 * the user interrupted). */
static int transport_error(CURLcode rc, const char *errbuf)
{
    if (rc == CURLE_ABORTED_BY_CALLBACK && vc_interrupted)
        return VC_DETACHED;
    fprintf(stderr, "vvctl: cannot reach vvd at %s: %s (set --server or VVD_SERVER)\n",
            vc_opt.server, errbuf && errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return VC_UNREACHABLE;
}

void vc_resp_free(vc_resp *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof *r);
}

int vc_http(const char *method, const char *path, const char *json_body, vc_resp *out)
{
    memset(out, 0, sizeof *out);
    char *url = make_url(path);
    struct curl_slist *hdrs = NULL;
    CURL *c = url ? new_handle(url, &hdrs) : NULL;
    if (!c) {
        free(url);
        fprintf(stderr, "vvctl: out of memory\n");
        return VC_FAILED;
    }
    buf b = {0};
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_buf);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    if (json_body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(json_body));
    } else if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(c);
    int ret = VC_OK;
    if (rc != CURLE_OK) {
        ret = transport_error(rc, err);
        free(b.p);
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        out->body = b.p ? b.p : strdup("");
        out->len = b.len;
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    free(url);
    return ret;
}

void vc_print_problem(const vc_resp *r)
{
    cJSON *p = r->body ? cJSON_Parse(r->body) : NULL;
    const char *code = vc_str(p, "error_code", NULL);
    if (cJSON_IsObject(p) && code) {
        const char *field = vc_str(p, "field", "");
        const char *detail = vc_str(p, "detail", vc_str(p, "title", ""));
        /* The daemon's suggestion for an unknown name, unless the detail
         * already says it. */
        const char *near = vc_str(p, "did_you_mean", NULL);
        char hint[160] = "";
        if (near && !strstr(detail, "did you mean"))
            snprintf(hint, sizeof hint, "; did you mean '%s'?", near);
        if (field[0])
            fprintf(stderr, "vvctl: %ld %s at %s: %s%s\n", r->status, code, field, detail, hint);
        else
            fprintf(stderr, "vvctl: %ld %s: %s%s\n", r->status, code, detail, hint);
    } else {
        /* Not problem+json (a proxy, another server): its first line. */
        const char *b = r->body ? r->body : "";
        size_t n = strcspn(b, "\r\n");
        fprintf(stderr, "vvctl: %ld from %s: %.*s\n", r->status, vc_opt.server,
                (int)(n > 200 ? 200 : n), b);
    }
    cJSON_Delete(p);
}

cJSON *vc_call(const char *method, const char *path, const char *json_body, int *rc)
{
    vc_resp r;
    *rc = vc_http(method, path, json_body, &r);
    if (*rc != VC_OK)
        return NULL;
    if (r.status < 200 || r.status >= 300) {
        vc_print_problem(&r);
        vc_resp_free(&r);
        *rc = VC_FAILED;
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    if (!j) {
        fprintf(stderr, "vvctl: %s %s: the answer is not JSON\n", method, path);
        *rc = VC_FAILED;
    }
    vc_resp_free(&r);
    return j;
}

/* ---- Uploads and downloads ---------------------------------------------------- */

int vc_upload(const char *local_path, const char *name)
{
    FILE *f = fopen(local_path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "vvctl: %s: %s\n", local_path, f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        return VC_USAGE;
    }
    char *path = NULL;
    vc_strcatf(&path, "/v1/blobs/%s", name);
    char *url = path ? make_url(path) : NULL;
    struct curl_slist *hdrs = NULL;
    CURL *c = url ? new_handle(url, &hdrs) : NULL;
    int ret = VC_FAILED;
    if (c) {
        buf b = {0};
        char err[CURL_ERROR_SIZE] = "";
        hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, f);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_buf);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK) {
            ret = transport_error(rc, err);
        } else {
            vc_resp r = {0, b.p, b.len};
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
            if (r.status >= 200 && r.status < 300) {
                ret = VC_OK;
                fprintf(stderr, "vvctl: uploaded %s as %s (%lld bytes)\n", local_path, name,
                        (long long)st.st_size);
            } else {
                vc_print_problem(&r);
            }
        }
        free(b.p);
    } else {
        fprintf(stderr, "vvctl: out of memory\n");
    }
    curl_slist_free_all(hdrs);
    if (c)
        curl_easy_cleanup(c);
    free(url);
    free(path);
    fclose(f);
    return ret;
}

/* Download state: the body goes to the file only for a 2xx answer; an
 * error answer is kept in memory to be printed. */
typedef struct dl {
    CURL *c;
    FILE *f;
    buf err;
    int failed;
} dl;

static size_t write_dl(char *data, size_t size, size_t nmemb, void *ctx)
{
    dl *d = ctx;
    long status = 0;
    curl_easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &status);
    size_t n = size * nmemb;
    if (status < 200 || status >= 300)
        return buf_add(&d->err, data, n) ? 0 : n;
    if (fwrite(data, 1, n, d->f) != n) {
        d->failed = errno ? errno : EIO;
        return 0;
    }
    return n;
}

int vc_download(const char *path, const char *out)
{
    int to_stdout = !strcmp(out, "-");
    char *tmp = NULL;
    FILE *f = stdout;
    if (!to_stdout) {
        vc_strcatf(&tmp, "%s.part.%ld", out, (long)getpid());
        f = tmp ? fopen(tmp, "wb") : NULL;
        if (!f) {
            fprintf(stderr, "vvctl: %s: %s\n", tmp ? tmp : out, strerror(errno));
            free(tmp);
            return VC_USAGE;
        }
    }
    char *url = make_url(path);
    struct curl_slist *hdrs = NULL;
    dl d = {0};
    d.f = f;
    d.c = url ? new_handle(url, &hdrs) : NULL;
    int ret = VC_FAILED;
    if (d.c) {
        char err[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(d.c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(d.c, CURLOPT_WRITEFUNCTION, write_dl);
        curl_easy_setopt(d.c, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(d.c, CURLOPT_ERRORBUFFER, err);
        CURLcode rc = curl_easy_perform(d.c);
        long status = 0;
        curl_easy_getinfo(d.c, CURLINFO_RESPONSE_CODE, &status);
        if (d.failed) {
            fprintf(stderr, "vvctl: writing %s: %s\n", out, strerror(d.failed));
        } else if (rc != CURLE_OK) {
            ret = transport_error(rc, err);
        } else if (status < 200 || status >= 300) {
            vc_resp r = {status, d.err.p, d.err.len};
            vc_print_problem(&r);
        } else {
            ret = VC_OK;
        }
        curl_easy_cleanup(d.c);
    }
    free(d.err.p);
    curl_slist_free_all(hdrs);
    free(url);
    if (!to_stdout) {
        if (fclose(f) != 0 && ret == VC_OK) {
            fprintf(stderr, "vvctl: writing %s: %s\n", out, strerror(errno));
            ret = VC_FAILED;
        }
        if (ret == VC_OK && rename(tmp, out) < 0) {
            fprintf(stderr, "vvctl: %s: %s\n", out, strerror(errno));
            ret = VC_FAILED;
        }
        if (ret != VC_OK)
            unlink(tmp);
        free(tmp);
    } else {
        fflush(stdout);
    }
    return ret;
}

/* ---- Server-Sent Events ------------------------------------------------------- */

/* Parser state of one stream (the text/event-stream format of the HTML
 * standard: lines "field: value", events end at a blank line). */
typedef struct sse {
    CURL *c;
    buf line; /* the current, unfinished line */
    buf data; /* data lines of the current event */
    char type[32];
    int64_t id;
    int has_data;
    int64_t *last_id;
    int *retry_ms;
    vc_sse_fn fn;
    void *ctx;
    int stopped;
    buf errbody; /* the body of an error answer */
    long status;
} sse;

static void sse_dispatch(sse *s)
{
    if (s->has_data && !s->stopped) {
        vc_sse_event ev = {s->id, s->type[0] ? s->type : "message", s->data.p ? s->data.p : ""};
        if (s->id >= 0)
            *s->last_id = s->id;
        if (s->fn(s->ctx, &ev))
            s->stopped = 1;
    }
    s->data.len = 0;
    if (s->data.p)
        s->data.p[0] = 0;
    s->has_data = 0;
    s->type[0] = 0;
    s->id = -1;
}

static void sse_line(sse *s, char *line, size_t n)
{
    if (n > 0 && line[n - 1] == '\r')
        line[--n] = 0;
    if (n == 0) {
        sse_dispatch(s);
        return;
    }
    if (line[0] == ':')
        return; /* a comment: the server's ping */
    char *colon = memchr(line, ':', n);
    const char *value = "";
    if (colon) {
        *colon = 0;
        value = colon + 1;
        if (*value == ' ')
            value++;
    }
    if (!strcmp(line, "data")) {
        if (s->has_data)
            buf_add(&s->data, "\n", 1);
        buf_add(&s->data, value, strlen(value));
        s->has_data = 1;
    } else if (!strcmp(line, "event")) {
        snprintf(s->type, sizeof s->type, "%s", value);
    } else if (!strcmp(line, "id")) {
        char *e;
        long long v = strtoll(value, &e, 10);
        if (!*e && e != value)
            s->id = v;
    } else if (!strcmp(line, "retry")) {
        char *e;
        long v = strtol(value, &e, 10);
        if (!*e && e != value && v >= 0)
            *s->retry_ms = (int)v;
    }
}

static size_t write_sse(char *data, size_t size, size_t nmemb, void *ctx)
{
    sse *s = ctx;
    size_t n = size * nmemb;
    if (!s->status)
        curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status < 200 || s->status >= 300)
        return buf_add(&s->errbody, data, n) ? 0 : n;
    for (size_t i = 0; i < n && !s->stopped; i++) {
        if (data[i] == '\n') {
            if (!s->line.p && buf_add(&s->line, "", 0))
                return 0;
            sse_line(s, s->line.p, s->line.len);
            s->line.len = 0;
        } else if (buf_add(&s->line, data + i, 1)) {
            return 0;
        }
    }
    /* Returning less than n makes libcurl end the transfer. */
    return s->stopped ? 0 : n;
}

int vc_sse(const char *path, int64_t *last_id, int *retry_ms, vc_sse_fn fn, void *ctx,
           long *http_status)
{
    *http_status = 0;
    char *url = make_url(path);
    struct curl_slist *hdrs = NULL;
    sse s = {0};
    s.id = -1;
    s.last_id = last_id;
    s.retry_ms = retry_ms;
    s.fn = fn;
    s.ctx = ctx;
    s.c = url ? new_handle(url, &hdrs) : NULL;
    if (!s.c) {
        free(url);
        return VC_SSE_DROPPED;
    }
    hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
    if (*last_id > 0) {
        char h[64];
        snprintf(h, sizeof h, "Last-Event-ID: %lld", (long long)*last_id);
        hdrs = curl_slist_append(hdrs, h);
    }
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(s.c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(s.c, CURLOPT_WRITEFUNCTION, write_sse);
    curl_easy_setopt(s.c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(s.c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(s.c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(s.c, CURLOPT_LOW_SPEED_TIME, (long)SILENT_STREAM_S);
    CURLcode rc = curl_easy_perform(s.c);
    curl_easy_getinfo(s.c, CURLINFO_RESPONSE_CODE, http_status);
    int ret;
    if (vc_interrupted)
        ret = VC_SSE_INTERRUPTED;
    else if (s.stopped)
        ret = VC_SSE_STOPPED;
    else if (*http_status && (*http_status < 200 || *http_status >= 300)) {
        vc_resp r = {*http_status, s.errbody.p, s.errbody.len};
        vc_print_problem(&r);
        ret = VC_SSE_REFUSED;
    } else if (rc != CURLE_OK)
        ret = VC_SSE_DROPPED;
    else
        ret = VC_SSE_END;
    free(s.line.p);
    free(s.data.p);
    free(s.errbody.p);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(s.c);
    free(url);
    return ret;
}
