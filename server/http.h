/* http.h - vvd's HTTP server (libmicrohttpd, one thread per connection).
 *
 * HTTP threads parse and validate requests, answer from the store and the
 * job hub, and never compute.  Errors are application/problem+json
 * (RFC 9457) built from the vv_err table.  A configured bearer token is
 * required on every route but /health.
 */
#ifndef VV_HTTP_H
#define VV_HTTP_H

#include "jobs.h"
#include "store.h"

#include <stdint.h>

typedef struct http_config {
    const char *host;        /* numeric address to bind, e.g. 127.0.0.1 */
    int port;                /* 0: any free port */
    const char *data_root;   /* absolute */
    const char *web_dir;     /* static files served at / (may be NULL) */
    const char *token;       /* bearer token, or NULL */
    int64_t max_body;        /* JSON bodies, bytes */
    int64_t max_upload;      /* PUT /v1/blobs, bytes */
    double sse_ping;         /* seconds between SSE pings */
    store *db;
    jobs *jobs;
} http_config;

typedef struct http_server http_server;

/* Starts listening; *port_out receives the bound port. */
int http_start(const http_config *cfg, http_server **out, int *port_out);

/* Ends event streams, stops accepting and joins the connection threads. */
void http_stop(http_server *h);

#endif
