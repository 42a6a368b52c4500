/* report.c - a worker's run reported to a central vvd (report.h). */
#include "report.h"

#include "run.h"

#include "vv/err.h"
#include "vv/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { BATCH_MAX = 500, QUEUE_MAX = 200000 };

typedef struct pending {
    int64_t seq;
    char type[8];
    char *data; /* JSON text */
} pending;

struct reporter {
    char url[1024];
    char auth[600];
    char where[256];
    double timeout_s;
    char id[32];
    atomic_int *stop;
    /* The queue: events not yet acknowledged, oldest first. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pending *q;
    int n, cap;
    int64_t next_seq, dropped;
    int closing, failed, started;
    char error[6000];
    pthread_t sender;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- HTTP ----------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    buf *b = ctx;
    size_t add = size * nmemb;
    if (b->n + add > (16u << 20))
        return 0;
    char *p = realloc(b->p, b->n + add + 1);
    if (!p)
        return 0;
    memcpy(p + b->n, data, add);
    b->n += add;
    p[b->n] = 0;
    b->p = p;
    return add;
}

/* One request: *status is the HTTP status (0 when no answer came); the
 * answer's body goes to *out (malloc'd, may be NULL). */
static void http_once(reporter *r, const char *method, const char *path, const char *body,
                      FILE *upload, long upload_len, long *status, char **out)
{
    CURL *c = curl_easy_init();
    buf b = {0};
    *status = 0;
    *out = NULL;
    if (!c)
        return;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", r->url, path);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, body ? "Content-Type: application/json"
                                  : "Content-Type: application/octet-stream");
    if (r->auth[0])
        h = curl_slist_append(h, r->auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (upload) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, upload);
        curl_easy_setopt(c, CURLOPT_INFILESIZE, upload_len);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    *out = b.p;
}

/* A request retried with backoff while the daemon cannot be reached or
 * answers 5xx or 429, for up to timeout_s in a row.  Returns the status of
 * the answer kept (2xx or a 4xx to report), or 0 when it gave up. */
static long http(reporter *r, const char *method, const char *path, const char *body,
                 const char *file, char **out)
{
    double t0 = now_s(), wait = 0.2;
    int told = 0;
    for (;;) {
        FILE *f = NULL;
        long len = 0;
        if (file) {
            struct stat st;
            f = fopen(file, "rb");
            if (!f || fstat(fileno(f), &st) < 0) {
                if (f)
                    fclose(f);
                *out = NULL;
                snprintf(r->error, sizeof r->error, "%s: %s", file, strerror(errno));
                return 0;
            }
            len = (long)st.st_size;
        }
        long status;
        http_once(r, method, path, body, f, len, &status, out);
        if (f)
            fclose(f);
        if (status >= 200 && status < 500 && status != 429 && status != 408)
            return status;
        if (now_s() - t0 > r->timeout_s) {
            snprintf(r->error, sizeof r->error, "%s %s%s: %s for %.0f s; giving up", method, r->url,
                     path, status ? "answered with errors" : "unreachable", r->timeout_s);
            return 0;
        }
        if (!told) {
            VV_WARN("report", r->id[0] ? r->id : NULL, "%s %s%s: %s; retrying for up to %.0f s",
                    method, r->url, path, status ? "an error answer" : "no answer", r->timeout_s);
            told = 1;
        }
        free(*out);
        *out = NULL;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
        wait = wait * 2 > 5 ? 5 : wait * 2;
    }
}

/* A non-2xx answer as an error with the daemon's detail. */
static int answer_error(reporter *r, long status, const char *what, const char *body)
{
    if (status == 0)
        return vv_fail(VV_EIO, "%s", r->error);
    cJSON *p = body ? cJSON_Parse(body) : NULL;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(p, "detail");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(p, "error_code");
    int rc = vv_fail(status == 404   ? VV_ENOTFOUND
                     : status == 409 ? VV_ESTATE
                                     : VV_EINVAL,
                     "%s: the daemon answered %ld %s: %s", what, status,
                     cJSON_IsString(code) ? code->valuestring : "",
                     cJSON_IsString(d) ? d->valuestring : (body ? body : ""));
    cJSON_Delete(p);
    return rc;
}

/* ---- Setting up and claiming ---------------------------------------------------- */

int reporter_open(const report_opts *o, reporter **out)
{
    *out = NULL;
    if (!o->url || strncmp(o->url, "http", 4))
        return vv_fail(VV_EINVAL, "--report-to: an http:// or https:// URL, got '%.200s'",
                       o->url ? o->url : "");
    reporter *r = calloc(1, sizeof *r);
    if (!r)
        return vv_fail(VV_ENOMEM, "out of memory");
    snprintf(r->url, sizeof r->url, "%s", o->url);
    size_t l = strlen(r->url);
    while (l && r->url[l - 1] == '/')
        r->url[--l] = 0;
    if (o->token && o->token[0])
        snprintf(r->auth, sizeof r->auth, "Authorization: Bearer %s", o->token);
    r->timeout_s = o->timeout_s > 0 ? o->timeout_s : 600;
    if (o->where && o->where[0]) {
        snprintf(r->where, sizeof r->where, "%s", o->where);
    } else {
        char host[128] = "?";
        gethostname(host, sizeof host - 1);
        const char *sj = getenv("SLURM_ARRAY_JOB_ID"), *st = getenv("SLURM_ARRAY_TASK_ID");
        const char *job = getenv("SLURM_JOB_ID"), *pod = getenv("JOB_COMPLETION_INDEX");
        int n = snprintf(r->where, sizeof r->where, "%s pid %ld", host, (long)getpid());
        if (sj && st)
            snprintf(r->where + n, sizeof r->where - (size_t)n, ", slurm job %s_%s", sj, st);
        else if (job)
            snprintf(r->where + n, sizeof r->where - (size_t)n, ", slurm job %s", job);
        else if (pod)
            snprintf(r->where + n, sizeof r->where - (size_t)n, ", kubernetes index %s", pod);
    }
    r->next_seq = 1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    *out = r;
    return 0;
}

int reporter_claim(reporter *r, const char *sid, int index, const char *rid, const char *spec_text,
                   char *id, char **spec, char *state, size_t statesz)
{
    *spec = NULL;
    char path[256], *ans = NULL;
    long status;
    char created[32] = "";
    if (!sid && !rid) {
        /* A new external run of the spec, then taken like any other. */
        status = http(r, "POST", "/v1/runs?external=1", spec_text, NULL, &ans);
        if (status != 201) {
            int rc = answer_error(r, status, "creating the run", ans);
            free(ans);
            return rc;
        }
        cJSON *o = cJSON_Parse(ans);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "id");
        snprintf(created, sizeof created, "%s", cJSON_IsString(v) ? v->valuestring : "");
        cJSON_Delete(o);
        free(ans);
        rid = created;
    }
    cJSON *b = cJSON_CreateObject();
    if (sid)
        cJSON_AddNumberToObject(b, "index", index);
    cJSON_AddStringToObject(b, "where", r->where);
    char *text = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    if (sid)
        snprintf(path, sizeof path, "/v1/sweeps/%s/claim", sid);
    else
        snprintf(path, sizeof path, "/v1/runs/%s/claim", rid);
    status = http(r, "POST", path, text, NULL, &ans);
    free(text);
    if (status != 200) {
        int rc =
            answer_error(r, status, sid ? "claiming the sweep's point" : "claiming the run", ans);
        free(ans);
        return rc;
    }
    cJSON *o = cJSON_Parse(ans);
    free(ans);
    const cJSON *vid = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(o, "state");
    const cJSON *vspec = cJSON_GetObjectItemCaseSensitive(o, "spec");
    if (!cJSON_IsString(vid) || !cJSON_IsString(vs) || !cJSON_IsObject(vspec)) {
        cJSON_Delete(o);
        return vv_fail(VV_EFORMAT, "the daemon's answer to the claim is not a run object");
    }
    snprintf(id, 32, "%s", vid->valuestring);
    snprintf(r->id, sizeof r->id, "%s", vid->valuestring);
    snprintf(state, statesz, "%s", vs->valuestring);
    *spec = cJSON_PrintUnformatted(vspec);
    cJSON_Delete(o);
    return *spec ? 0 : vv_fail(VV_ENOMEM, "out of memory");
}

/* ---- Sending events ----------------------------------------------------------- */

/* Posts the oldest events (up to BATCH_MAX); drops those the daemon has. */
static int send_batch(reporter *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n < BATCH_MAX ? r->n : BATCH_MAX;
    cJSON *b = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(b, "events");
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "seq", (double)r->q[i].seq);
        cJSON_AddStringToObject(e, "type", r->q[i].type);
        cJSON *d = cJSON_Parse(r->q[i].data);
        cJSON_AddItemToObject(e, "data", d ? d : cJSON_CreateObject());
        cJSON_AddItemToArray(arr, e);
    }
    pthread_mutex_unlock(&r->mu);
    char *text = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    char path[96], *ans = NULL;
    snprintf(path, sizeof path, "/v1/runs/%s/events", r->id);
    long status = text ? http(r, "POST", path, text, NULL, &ans) : 0;
    free(text);
    if (status != 200) {
        int rc = answer_error(r, status, "sending events", ans);
        free(ans);
        return rc;
    }
    cJSON *o = cJSON_Parse(ans);
    free(ans);
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "ext_seq");
    int64_t acked = cJSON_IsNumber(seq) ? (int64_t)seq->valuedouble : 0;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "stop")) && r->stop)
        atomic_store(r->stop, 1);
    cJSON_Delete(o);
    pthread_mutex_lock(&r->mu);
    int k = 0;
    while (k < r->n && r->q[k].seq <= acked)
        free(r->q[k++].data);
    memmove(r->q, r->q + k, (size_t)(r->n - k) * sizeof *r->q);
    r->n -= k;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static void *sender_main(void *arg)
{
    reporter *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->failed) {
        if (r->n == 0 && r->closing)
            break;
        if (r->n < BATCH_MAX && !r->closing) {
            /* Batches every half second (at once when a batch is full or
             * the run has ended). */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 500000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        }
        if (r->n == 0)
            continue;
        pthread_mutex_unlock(&r->mu);
        int rc = send_batch(r);
        pthread_mutex_lock(&r->mu);
        if (rc < 0) {
            r->failed = 1;
            snprintf(r->error, sizeof r->error, "%s", vv_err_detail());
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int reporter_start(reporter *r, atomic_int *stop)
{
    r->stop = stop;
    if (pthread_create(&r->sender, NULL, sender_main, r))
        return vv_fail(VV_EINTERNAL, "cannot start the reporting thread");
    r->started = 1;
    return 0;
}

void reporter_event(reporter *r, const char *type, const cJSON *data)
{
    char *text = cJSON_PrintUnformatted(data);
    if (!text)
        return;
    pthread_mutex_lock(&r->mu);
    if (r->n == QUEUE_MAX) {
        /* The daemon has been away long: the oldest event goes (counted). */
        free(r->q[0].data);
        memmove(r->q, r->q + 1, (size_t)(r->n - 1) * sizeof *r->q);
        r->n--;
        r->dropped++;
    }
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 1024;
        pending *q = realloc(r->q, (size_t)cap * sizeof *q);
        if (!q) {
            pthread_mutex_unlock(&r->mu);
            free(text);
            return;
        }
        r->q = q;
        r->cap = cap;
    }
    pending *p = &r->q[r->n++];
    p->seq = r->next_seq++;
    snprintf(p->type, sizeof p->type, "%s", type);
    p->data = text;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* ---- The end ---------------------------------------------------------------------- */

typedef struct upload_ctx {
    reporter *r;
    int count;
} upload_ctx;

/* Uploads one file of the run's folder as its artifact NAME. */
static int upload_one(void *ctx, const char *name, const char *path, int64_t bytes)
{
    upload_ctx *u = ctx;
    char url[768], *ans = NULL;
    (void)bytes;
    snprintf(url, sizeof url, "/v1/runs/%s/artifacts/%s", u->r->id, name);
    long status = http(u->r, "PUT", url, NULL, path, &ans);
    int rc = status == 201 ? 0 : answer_error(u->r, status, name, ans);
    u->count += rc == 0;
    free(ans);
    return rc;
}

int reporter_finish(reporter *r, const char *out_dir, const char *state, const char *stop_reason,
                    const cJSON *result, const cJSON *error)
{
    pthread_mutex_lock(&r->mu);
    r->closing = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->started)
        pthread_join(r->sender, NULL);
    r->started = 0;
    if (r->failed)
        return vv_fail(VV_EIO, "%s", r->error);
    if (r->dropped)
        VV_WARN("report", r->id, "%lld events were dropped while the daemon was away",
                (long long)r->dropped);
    upload_ctx u = {r, 0};
    int rc = out_dir ? run_each_output(out_dir, upload_one, &u) : 0;
    int files = u.count;
    if (rc < 0)
        return rc;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "state", state);
    if (stop_reason && stop_reason[0])
        cJSON_AddStringToObject(b, "stop_reason", stop_reason);
    cJSON_AddItemToObject(b, "result", result ? cJSON_Duplicate(result, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(b, "error", error ? cJSON_Duplicate(error, 1) : cJSON_CreateNull());
    char *text = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    char path[96], *ans = NULL;
    snprintf(path, sizeof path, "/v1/runs/%s/finish", r->id);
    long status = text ? http(r, "POST", path, text, NULL, &ans) : 0;
    free(text);
    rc = status == 200 ? 0 : answer_error(r, status, "ending the run", ans);
    free(ans);
    if (rc == 0)
        VV_INFO("report", r->id, "%s, reported with %d file(s) to %s", state, files, r->url);
    return rc;
}

void reporter_free(reporter *r)
{
    if (!r)
        return;
    if (r->started) {
        pthread_mutex_lock(&r->mu);
        r->closing = 1;
        r->failed = 1;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->sender, NULL);
    }
    for (int i = 0; i < r->n; i++)
        free(r->q[i].data);
    free(r->q);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
