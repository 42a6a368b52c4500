/* daemon.c - `vvd serve`: configuration, start-up, shutdown. */
#include "daemon.h"
#include "device.h"
#include "models.h"

#include "http.h"
#include "jobs.h"
#include "store.h"
#include "vv/err.h"
#include "vv/log.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The installed dashboard (meson sets it to DATADIR/vvd/web). */
#ifndef VVD_WEB_DIR_DEFAULT
#define VVD_WEB_DIR_DEFAULT ""
#endif

static void serve_usage(FILE *f)
{
    fputs("usage: vvd serve [options]\n"
          "\n"
          "Runs the vvd daemon: jobs over HTTP, live metrics (Server-Sent Events), run\n"
          "history in SQLite, certified stopping.  Options (environment variable):\n"
          "  --listen ADDR:PORT   address to bind (VVD_LISTEN; default 127.0.0.1:8470;\n"
          "                       port 0 picks a free one).  Any address but loopback\n"
          "                       requires a token.\n"
          "  --data-dir DIR       data root: specs' paths resolve inside it, blobs and\n"
          "                       run artifacts live in it, and vvd.db (VVD_DATA_DIR;\n"
          "                       default ./vvd-data)\n"
          "  --device DEV         where lasso and compress jobs compute (VVD_DEVICE):\n"
          "                       auto (default: cuda:0 when a GPU is usable, else cpu),\n"
          "                       cpu, cuda:N, or sim:N (a simulated device for tests:\n"
          "                       VVD_SIM_MEMORY bytes, VVD_SIM_FAIL_AFTER operations)\n"
          "  --max-queue N        queued runs at most; more get 429 (VVD_MAX_QUEUE; 1000)\n"
          "  --token TOKEN        require 'Authorization: Bearer TOKEN' (VVD_TOKEN)\n"
          "  --token-file FILE    the same, read from FILE (VVD_TOKEN_FILE)\n"
          "  --web-dir DIR        static dashboard served at / (VVD_WEB_DIR; default\n"
          "                       the installed one, " VVD_WEB_DIR_DEFAULT ",\n"
          "                       when it exists; '' for none)\n"
          "  --max-body BYTES     JSON request bodies at most (default 1048576)\n"
          "  --max-upload BYTES   PUT /v1/blobs uploads at most (default 17179869184)\n"
          "  --sse-ping SECONDS   idle ping interval of event streams (default 15)\n"
          "  --port-file FILE     write the bound port to FILE once serving\n"
          "  --help\n"
          "SIGINT/SIGTERM stop the running run (state STOPPED, stop_reason shutdown, V\n"
          "saved), keep queued runs for the next start, and exit 0.  When the device\n"
          "is lost (a sticky CUDA error) the run using it fails, /health answers 503,\n"
          "queued runs stay queued, and 2 s later vvd exits with status 75 to be\n"
          "restarted.\n",
          f);
}

/* The exit status after a lost device (EX_TEMPFAIL): restart me. */
enum { EXIT_DEVICE_LOST = 75, LOST_GRACE_S = 2 };

/* jobs_config.on_device_lost: wakes main's sigwait. */
static void device_lost(void) { kill(getpid(), SIGUSR1); }

static int is_loopback(const char *host)
{
    return !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

static int read_token_file(const char *path, char *buf, size_t sz)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return vv_fail(VV_ENOFILE, "--token-file %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sz - 1, f);
    fclose(f);
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    if (!buf[0])
        return vv_fail(VV_EINVAL, "--token-file %s: empty", path);
    return 0;
}

int vvd_serve(int argc, char **argv)
{
    const char *listen = getenv("VVD_LISTEN") ? getenv("VVD_LISTEN") : "127.0.0.1:8470";
    const char *data = getenv("VVD_DATA_DIR") ? getenv("VVD_DATA_DIR") : "vvd-data";
    const char *device = getenv("VVD_DEVICE") ? getenv("VVD_DEVICE") : "auto";
    const char *token = getenv("VVD_TOKEN"), *token_file = getenv("VVD_TOKEN_FILE");
    const char *web = getenv("VVD_WEB_DIR"), *port_file = NULL;
    long long max_queue = getenv("VVD_MAX_QUEUE") ? atoll(getenv("VVD_MAX_QUEUE")) : 1000;
    long long max_body = 1 << 20, max_upload = 16LL << 30;
    double ping = 15;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            serve_usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "vvd serve: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--listen"))
            listen = v;
        else if (!strcmp(a, "--data-dir"))
            data = v;
        else if (!strcmp(a, "--device"))
            device = v;
        else if (!strcmp(a, "--max-queue"))
            max_queue = atoll(v);
        else if (!strcmp(a, "--token"))
            token = v;
        else if (!strcmp(a, "--token-file"))
            token_file = v;
        else if (!strcmp(a, "--web-dir"))
            web = v;
        else if (!strcmp(a, "--max-body"))
            max_body = atoll(v);
        else if (!strcmp(a, "--max-upload"))
            max_upload = atoll(v);
        else if (!strcmp(a, "--sse-ping"))
            ping = atof(v);
        else if (!strcmp(a, "--port-file"))
            port_file = v;
        else {
            fprintf(stderr, "vvd serve: unknown option %s\n", a);
            serve_usage(stderr);
            return 2;
        }
    }
    if (!device_name_ok(device)) {
        fprintf(stderr, "vvd serve: --device %s: unknown device (one of %s)\n", device,
                device_names());
        return 2;
    }
    if (max_queue < 1 || max_body < 1024 || max_upload < 1 || !(ping > 0)) {
        fprintf(stderr, "vvd serve: --max-queue, --max-body, --max-upload and --sse-ping "
                        "must be positive (max-body at least 1024)\n");
        return 2;
    }
    char host[256];
    int port = 0;
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host ||
        sscanf(colon + 1, "%d", &port) != 1 || port < 0 || port > 65535) {
        fprintf(stderr, "vvd serve: --listen wants ADDR:PORT, got '%s'\n", listen);
        return 2;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    char tokbuf[1024];
    if (token_file) {
        if (read_token_file(token_file, tokbuf, sizeof tokbuf) < 0) {
            fprintf(stderr, "vvd serve: %s\n", vv_err_detail());
            return 2;
        }
        token = tokbuf;
    }
    if (token && !token[0])
        token = NULL;
    if (!is_loopback(host) && !token) {
        fprintf(stderr, "vvd serve: binding %s (not loopback) requires --token or --token-file\n",
                host);
        return 2;
    }
    if (mkdir(data, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "vvd serve: --data-dir %s: %s\n", data, strerror(errno));
        return 1;
    }
    char root[PATH_MAX], webroot[PATH_MAX];
    if (!realpath(data, root)) {
        fprintf(stderr, "vvd serve: --data-dir %s: %s\n", data, strerror(errno));
        return 1;
    }
    /* Neither --web-dir nor VVD_WEB_DIR: the installed dashboard, if it is
     * there (not in a build tree that was never installed).  An empty
     * value: no dashboard. */
    int web_default = !web;
    if (!web)
        web = VVD_WEB_DIR_DEFAULT;
    if (!web[0])
        web = NULL;
    if (web && !realpath(web, webroot)) {
        if (!web_default) {
            fprintf(stderr, "vvd serve: --web-dir %s: %s\n", web, strerror(errno));
            return 2;
        }
        VV_INFO("serve", NULL, "no dashboard: %s: %s (--web-dir DIR serves one)", web,
                strerror(errno));
        web = NULL;
    }
    if (web)
        VV_INFO("serve", NULL, "dashboard from %s", webroot);
    char sub[PATH_MAX + 8];
    snprintf(sub, sizeof sub, "%s/runs", root);
    mkdir(sub, 0755);
    /* Specs' relative paths resolve inside the data root. */
    if (chdir(root) < 0) {
        fprintf(stderr, "vvd serve: %s: %s\n", root, strerror(errno));
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1); /* the compute thread: the device was lost */
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads inherit it; main waits */
    signal(SIGPIPE, SIG_IGN);

    if (devices_open(device) < 0) {
        fprintf(stderr, "vvd serve: --device %s: %s\n", device, vv_err_detail());
        return 1;
    }
    VV_INFO("serve", NULL, "computing on %s", devices_default());
    store *db = NULL;
    char dbpath[PATH_MAX + 16];
    snprintf(dbpath, sizeof dbpath, "%s/vvd.db", root);
    if (store_open(dbpath, &db) < 0) {
        fprintf(stderr, "vvd serve: %s\n", vv_err_detail());
        return 1;
    }
    jobs *jb = NULL;
    models_set_data_dir(root);
    jobs_config jc = {.db = db, .data_root = root, .max_queue = (int)max_queue,
                      .on_device_lost = device_lost};
    if (jobs_start(&jc, &jb) < 0) {
        fprintf(stderr, "vvd serve: %s\n", vv_err_detail());
        store_close(db);
        return 1;
    }
    http_config hc = {.host = host, .port = port, .data_root = root, .web_dir = web ? webroot : NULL,
                      .token = token, .max_body = max_body, .max_upload = max_upload,
                      .sse_ping = ping, .db = db, .jobs = jb};
    http_server *hs = NULL;
    int bound = 0;
    if (http_start(&hc, &hs, &bound) < 0) {
        fprintf(stderr, "vvd serve: %s\n", vv_err_detail());
        jobs_stop(jb);
        store_close(db);
        return 1;
    }
    VV_INFO("serve", NULL, "listening on http://%s%s%s:%d (data root %s%s)",
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", bound, root,
            token ? ", bearer token required" : "");
    if (port_file) {
        char tmp[PATH_MAX + 16];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", bound) < 0 || fclose(f) != 0 || rename(tmp, port_file) < 0)
            VV_ERROR("serve", NULL, "--port-file %s: %s", port_file, strerror(errno));
    }
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGUSR1) {
        /* Keep answering a moment (503 on /health, the failed run readable)
         * so that monitors and clients see why before the restart; a
         * SIGINT/SIGTERM ends the wait. */
        VV_ERROR("serve", NULL, "the device %s was lost: exiting in %d s to be restarted",
                 devices_default(), LOST_GRACE_S);
        sigset_t term;
        sigemptyset(&term);
        sigaddset(&term, SIGINT);
        sigaddset(&term, SIGTERM);
        struct timespec grace = {LOST_GRACE_S, 0};
        sigtimedwait(&term, NULL, &grace);
    } else
        VV_INFO("serve", NULL, "signal %d: shutting down", sig);
    http_stop(hs);
    jobs_stop(jb);
    store_close(db);
    devices_close();
    VV_INFO("serve", NULL, "stopped");
    return sig == SIGUSR1 ? EXIT_DEVICE_LOST : 0;
}
