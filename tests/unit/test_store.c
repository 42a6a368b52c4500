/* test_store.c - the SQLite run history: schema, runs, listing, events,
 * metrics, recovery, sweeps, artifacts, concurrency and durability. */
#include "store.h"
#include "tap.h"
#include "vv/err.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern const int vv_schema_migration_count;

/* A 1000-row append takes about 2 ms in an optimised build and must stay
 * well under 10 ms.  Sanitizers intercept SQLite's memcpy and friends and
 * make it about ten times slower, so they (and unoptimised builds) get a
 * looser bound. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) ||                               \
    __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || !defined(__OPTIMIZE__)
#define APPEND_LIMIT_MS 100.0
#else
#define APPEND_LIMIT_MS 10.0
#endif

static char dir[512];

static const char *path_of(const char *name)
{
    static char buf[4][600];
    static int turn;
    char *p = buf[turn++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static void remove_db(const char *name)
{
    char p[700];
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s%s", dir, name, suffix[i]);
        unlink(p);
    }
}

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The first column of a one-row query, read through a connection of our own. */
static void raw_text(const char *path, const char *sql, char *buf, size_t size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    snprintf(buf, size, "?");
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int user_version(const char *path)
{
    char buf[32];
    raw_text(path, "PRAGMA user_version", buf, sizeof buf);
    return buf[0] == '?' ? -1 : atoi(buf);
}

static int exec_raw(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

/* ---- callbacks collecting what the store hands out ---------------------------- */

typedef struct collect {
    int n, stop_after, ret;
    int64_t num[64];
    char text[64][64];
    double value[64], time[64];
} collect;

static int on_event(void *ctx, int64_t seq, const char *type, const char *data)
{
    collect *c = ctx;
    if (c->n < 64) {
        c->num[c->n] = seq;
        snprintf(c->text[c->n], sizeof c->text[0], "%s %s", type, data);
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? c->ret : 0;
}

static int on_metric(void *ctx, int64_t step, const char *key, double value, double time)
{
    collect *c = ctx;
    if (c->n < 64) {
        c->num[c->n] = step;
        snprintf(c->text[c->n], sizeof c->text[0], "%s", key);
        c->value[c->n] = value;
        c->time[c->n] = time;
    }
    c->n++;
    return 0;
}

static int on_artifact(void *ctx, const char *name, const char *path, int64_t bytes)
{
    collect *c = ctx;
    if (c->n < 64) {
        c->num[c->n] = bytes;
        snprintf(c->text[c->n], sizeof c->text[0], "%s=%s", name, path);
    }
    c->n++;
    return 0;
}

static int count_metrics(store *s, const char *run)
{
    collect c = {0};
    store_metrics_get(s, run, NULL, 0, -1, 0, on_metric, &c);
    return c.n;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_open(void)
{
    store *s = NULL;
    const char *p = path_of("open.db");
    CHECK(store_open(p, &s) == 0 && s, "open creates a database");
    CHECKF(user_version(p) == vv_schema_migration_count, "user_version is %d",
           vv_schema_migration_count);
    CHECK(store_integrity_check(s) == 0, "integrity_check says ok");
    char buf[64];
    raw_text(p, "PRAGMA journal_mode", buf, sizeof buf);
    CHECKF(strcmp(buf, "wal") == 0, "the file is in WAL mode (%s)", buf);
    raw_text(p,
             "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema "
             "WHERE type = 'table' ORDER BY name)",
             buf, sizeof buf);
    CHECKF(strcmp(buf, "artifacts,events,metrics,runs,sweep_deleted,sweeps") == 0, "tables: %s",
           buf);
    store_close(s);
    s = NULL;
    CHECK(store_open(p, &s) == 0 && s, "reopen applies nothing twice");
    CHECK(user_version(p) == vv_schema_migration_count, "user_version unchanged on reopen");
    store_close(s);

    CHECK(exec_raw(p, "PRAGMA user_version = 999") == SQLITE_OK, "pretend a newer schema");
    s = (store *)1;
    CHECK(store_open(p, &s) == VV_EIO && !s, "a newer schema is VV_EIO");
    CHECK(strstr(vv_err_detail(), "open.db") != NULL, "the detail names the file");
    remove_db("open.db");

    CHECK(store_open(path_of("no/such/dir/x.db"), &s) == VV_EIO && !s, "bad directory: VV_EIO");
    CHECK(strstr(vv_err_detail(), "no/such/dir/x.db") != NULL, "the detail names the path");

    FILE *f = fopen(path_of("junk.db"), "wb");
    for (int i = 0; f && i < 200; i++)
        fputs("this is not an SQLite database at all. ", f);
    if (f)
        fclose(f);
    CHECK(store_open(path_of("junk.db"), &s) == VV_EIO && !s, "a non-database file: VV_EIO");
    remove_db("junk.db");
    run_row_free(NULL);
    sweep_row_free(NULL);
    store_close(NULL);
}

static void test_runs(store *s)
{
    run_row r;
    CHECK(store_run_insert(s, "r-000001", "lasso", "{\"a\":1}", NULL, NULL, 100.5) == 0,
          "insert a run");
    CHECK(store_run_get(s, "r-000001", &r) == 0, "get it back");
    CHECK(r.id && strcmp(r.id, "r-000001") == 0 && strcmp(r.kind, "lasso") == 0 &&
              strcmp(r.state, "QUEUED") == 0 && strcmp(r.spec, "{\"a\":1}") == 0,
          "id, kind, state QUEUED and spec text as given");
    CHECK(!r.stop_reason && !r.result && !r.error && !r.sweep_id && !r.config_hash,
          "optional fields are NULL");
    CHECK(r.created == 100.5 && r.started == 0 && r.finished == 0 && r.heartbeat == 0 &&
              r.last_seq == 0,
          "created set, other times 0, last_seq 0");
    run_row_free(&r);

    CHECK(store_run_set_state(s, "r-000001", "RUNNING", NULL, NULL, NULL, 101.25) == 0,
          "set RUNNING");
    CHECK(store_run_heartbeat(s, "r-000001", 102.0) == 0, "heartbeat");
    store_run_get(s, "r-000001", &r);
    CHECK(strcmp(r.state, "RUNNING") == 0 && r.started == 101.25 && r.finished == 0 &&
              r.heartbeat == 102.0,
          "RUNNING sets started; heartbeat recorded");
    run_row_free(&r);
    CHECK(store_run_set_state(s, "r-000001", "FINISHED", "converged", "{\"kept\":3}", NULL,
                              110.0) == 0,
          "set FINISHED with stop_reason and result");
    store_run_get(s, "r-000001", &r);
    CHECK(strcmp(r.state, "FINISHED") == 0 && strcmp(r.stop_reason, "converged") == 0 &&
              strcmp(r.result, "{\"kept\":3}") == 0 && !r.error && r.finished == 110.0 &&
              r.started == 101.25,
          "final state sets finished and keeps started");
    run_row_free(&r);

    CHECK(store_run_get(s, "r-404", &r) == VV_ENOTFOUND && !r.id, "get missing: VV_ENOTFOUND");
    CHECK(strstr(vv_err_detail(), "r-404") != NULL, "the detail names the id");
    CHECK(store_run_set_state(s, "r-404", "RUNNING", NULL, NULL, NULL, 1) == VV_ENOTFOUND,
          "set_state missing: VV_ENOTFOUND");
    CHECK(store_run_heartbeat(s, "r-404", 1) == VV_ENOTFOUND, "heartbeat missing: VV_ENOTFOUND");
    CHECK(store_run_set_state(s, "r-000001", "DONE", NULL, NULL, NULL, 1) == VV_EINVAL,
          "unknown state: VV_EINVAL");

    CHECK(store_run_insert(s, "r-000001", "lasso", "{}", NULL, NULL, 1) == VV_ECONFLICT,
          "duplicate id: VV_ECONFLICT");
    CHECK(store_run_insert(s, "r-000002", "lasso", "{}", "s-000001", "h1", 1) == 0 &&
              store_run_insert(s, "r-000003", "lasso", "{}", "s-000001", "h1", 1) == VV_ECONFLICT,
          "duplicate (sweep_id, config_hash): VV_ECONFLICT");
    CHECK(store_run_insert(s, "r-000004", "lasso", "{}", "s-000002", "h1", 1) == 0,
          "same hash in another sweep is fine");
    CHECK(store_run_insert(s, "r-000005", "lasso", "{}", "s-000001", NULL, 1) == 0 &&
              store_run_insert(s, "r-000006", "lasso", "{}", "s-000001", NULL, 1) == 0 &&
              store_run_insert(s, "r-000007", "lasso", "{}", NULL, NULL, 1) == 0,
          "NULL hashes never collide");
    CHECK(store_run_insert(s, NULL, "lasso", "{}", NULL, NULL, 1) == VV_EINVAL,
          "NULL id: VV_EINVAL");
}

/* 25 runs: created 1000 + i/2 (so pairs share a time, ordered by id), kinds
 * alternate, every third RUNNING, the first ten in sweep s-000009. */
static void make_list_runs(store *s)
{
    for (int i = 0; i < 25; i++) {
        char id[32], hash[32];
        snprintf(id, sizeof id, "r-1%05d", i);
        snprintf(hash, sizeof hash, "h%d", i);
        store_run_insert(s, id, i % 2 ? "compress" : "lasso", "{}", i < 10 ? "s-000009" : NULL,
                         i < 10 ? hash : NULL, 1000.0 + (double)(i / 2));
        if (i % 3 == 0)
            store_run_set_state(s, id, "RUNNING", NULL, NULL, NULL, 2000);
    }
}

static int list_count(store *s, const char *state, const char *kind, const char *sweep)
{
    run_row *rows;
    int n = -1, total = 0;
    char tok[64] = "";
    do {
        char prev[64];
        snprintf(prev, sizeof prev, "%s", tok);
        if (store_runs_list(s, state, kind, sweep, 3, prev[0] ? prev : NULL, &rows, &n, tok))
            return -1;
        for (int i = 0; i < n; i++) {
            if ((state && strcmp(rows[i].state, state)) || (kind && strcmp(rows[i].kind, kind)) ||
                (sweep && (!rows[i].sweep_id || strcmp(rows[i].sweep_id, sweep))))
                total = -1000;
            run_row_free(&rows[i]);
        }
        free(rows);
        total += n;
    } while (tok[0]);
    return total;
}

static void test_list(void)
{
    store *s;
    const char *p = path_of("list.db");
    if (store_open(p, &s)) {
        CHECK(0, "open list.db");
        return;
    }
    make_list_runs(s);
    int seen[25] = {0}, pages = 0, total = 0, ordered = 1, sizes_ok = 1;
    double last_created = 1e300;
    char last_id[64] = "~", tok[64] = "";
    do {
        run_row *rows;
        int n;
        char prev[64];
        snprintf(prev, sizeof prev, "%s", tok);
        int err = store_runs_list(s, NULL, NULL, NULL, 10, pages ? prev : NULL, &rows, &n, tok);
        if (err) {
            CHECKF(0, "list page %d: %s", pages, vv_err_detail());
            break;
        }
        if (n != (pages < 2 ? 10 : 5) || (pages < 2) != (tok[0] != 0))
            sizes_ok = 0;
        for (int i = 0; i < n; i++) {
            int k = atoi(rows[i].id + 3);
            if (k >= 0 && k < 25)
                seen[k]++;
            if (rows[i].created > last_created ||
                (rows[i].created == last_created && strcmp(rows[i].id, last_id) >= 0))
                ordered = 0;
            last_created = rows[i].created;
            snprintf(last_id, sizeof last_id, "%s", rows[i].id);
            run_row_free(&rows[i]);
        }
        free(rows);
        total += n;
        pages++;
    } while (tok[0] && pages < 10);
    int once = 1;
    for (int i = 0; i < 25; i++)
        once &= seen[i] == 1;
    CHECKF(pages == 3 && total == 25 && sizes_ok, "25 runs in pages of 10, 10, 5 (%d pages)",
           pages);
    CHECK(once, "every run listed exactly once");
    CHECK(ordered, "newest first by (created, id) descending");

    CHECK(list_count(s, "RUNNING", NULL, NULL) == 9, "filter by state");
    CHECK(list_count(s, "QUEUED", NULL, NULL) == 16, "filter by another state");
    CHECK(list_count(s, NULL, "compress", NULL) == 12, "filter by kind");
    CHECK(list_count(s, NULL, NULL, "s-000009") == 10, "filter by sweep");
    CHECK(list_count(s, "RUNNING", "lasso", "s-000009") == 2, "all three filters");
    CHECK(list_count(s, NULL, "train", NULL) == 0, "a filter matching nothing");

    run_row *rows = (run_row *)1;
    int n = 7;
    char next[64] = "x";
    CHECK(store_runs_list(s, NULL, NULL, NULL, 1000, NULL, &rows, &n, next) == 0 && n == 25 &&
              next[0] == 0,
          "one page of 1000 holds everything and ends the listing");
    for (int i = 0; i < n; i++)
        run_row_free(&rows[i]);
    free(rows);
    CHECK(store_runs_list(s, NULL, NULL, NULL, 0, NULL, &rows, &n, next) == VV_EINVAL && !rows &&
              n == 0,
          "page_size 0: VV_EINVAL");
    CHECK(store_runs_list(s, NULL, NULL, NULL, 1001, NULL, &rows, &n, next) == VV_EINVAL,
          "page_size 1001: VV_EINVAL");
    static const char *const bad[] = {
        "zz",
        "0123456789abcdef",
        "0123456789abcdef.",
        "0123456789ABCDEF.ci0wMDAwMDE",                                      /* uppercase hex */
        "0123456789abcdefXci0wMDAwMDE",                                      /* no dot */
        "0123456789abcdef.ci0w*DAwMDE",                                      /* not base64url */
        "0123456789abcdef.ci0wMDAwMDExy",                                    /* length 4k+1 */
        "7ff8000000000000.ci0wMDAwMDE",                                      /* NaN */
        "7ff0000000000000.ci0wMDAwMDE",                                      /* Inf */
        "408f400000000000.AA",                                               /* a NUL byte */
        "408f400000000000.cj",                                               /* stray low bits */
        "408f400000000000.ci0wMDAwMDEci0wMDAwMDEci0wMDAwMDEci0wMDAwMDEci0w", /* too long */
    };
    int all_bad = 1;
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int err = store_runs_list(s, NULL, NULL, NULL, 10, bad[i], &rows, &n, next);
        if (err != VV_EINVAL) {
            all_bad = 0;
            printf("# token %s gave %d\n", bad[i], err);
        }
    }
    CHECK(all_bad, "malformed tokens: VV_EINVAL");
    /* A well-formed token for a position past the end gives an empty page. */
    CHECK(store_runs_list(s, NULL, NULL, NULL, 10, "0000000000000000.cg", &rows, &n, next) == 0 &&
              n == 0 && next[0] == 0,
          "a token before everything gives an empty last page");
    free(rows);
    CHECK(store_runs_list(s, NULL, NULL, NULL, 10, "", &rows, &n, next) == 0 && n == 10 &&
              next[0] != 0,
          "an empty token is the first page");
    for (int i = 0; i < n; i++)
        run_row_free(&rows[i]);
    free(rows);
    store_close(s);
    remove_db("list.db");
}

static void test_events_metrics(store *s)
{
    store_run_insert(s, "r-000100", "lasso", "{}", NULL, NULL, 5);
    event_row ev[3] = {{1, "state", "{\"state\":\"RUNNING\"}"},
                       {2, "metric", "{\"step\":0}"},
                       {3, "log", "{\"msg\":\"hi\"}"}};
    metric_row m[6] = {{0, "objective", 10.0, 0.1}, {0, "gap", 5.0, 0.1},
                       {1, "objective", 8.0, 0.2},  {1, "gap", NAN, 0.2},
                       {2, "objective", 7.0, 0.3},  {2, "gap", 1.0, 0.3}};
    CHECK(store_append(s, "r-000100", ev, 3, m, 6) == 0, "append 3 events and 6 metrics");
    run_row r;
    store_run_get(s, "r-000100", &r);
    CHECK(r.last_seq == 3, "last_seq follows the events");
    run_row_free(&r);

    collect c = {0};
    CHECK(store_events_after(s, "r-000100", 0, 0, on_event, &c) == 0 && c.n == 3 && c.num[0] == 1 &&
              c.num[2] == 3 && strcmp(c.text[0], "state {\"state\":\"RUNNING\"}") == 0,
          "events_after 0: all, in order, texts intact");
    c = (collect){0};
    store_events_after(s, "r-000100", 1, 0, on_event, &c);
    CHECK(c.n == 2 && c.num[0] == 2, "events_after 1");
    c = (collect){0};
    store_events_after(s, "r-000100", 0, 1, on_event, &c);
    CHECK(c.n == 1 && c.num[0] == 1, "events_after with limit 1");
    c = (collect){.stop_after = 2, .ret = 1};
    CHECK(store_events_after(s, "r-000100", 0, 0, on_event, &c) == 0 && c.n == 2,
          "a callback returning 1 stops early");
    c = (collect){.stop_after = 1, .ret = VV_EIO};
    CHECK(store_events_after(s, "r-000100", 0, 0, on_event, &c) == VV_EIO && c.n == 1,
          "a callback's error is returned");
    CHECK(store_events_after(s, "r-404", 0, 0, on_event, &c) == VV_ENOTFOUND,
          "events of a missing run: VV_ENOTFOUND");

    c = (collect){0};
    store_metrics_get(s, "r-000100", NULL, 0, -1, 0, on_metric, &c);
    CHECK(c.n == 6 && c.num[0] == 0 && strcmp(c.text[0], "gap") == 0 &&
              strcmp(c.text[1], "objective") == 0 && c.num[5] == 2 && c.value[1] == 10.0 &&
              c.time[1] == 0.1,
          "metrics_get: all points ordered by (step, key)");
    CHECK(isnan(c.value[2]), "a NaN value comes back as NaN");
    const char *keys[] = {"objective"};
    c = (collect){0};
    store_metrics_get(s, "r-000100", keys, 1, -1, 0, on_metric, &c);
    CHECK(c.n == 3 && strcmp(c.text[2], "objective") == 0 && c.value[2] == 7.0,
          "metrics_get: keys filter");
    const char *two[] = {"gap", "nonexistent"};
    c = (collect){0};
    store_metrics_get(s, "r-000100", two, 2, 0, 0, on_metric, &c);
    CHECK(c.n == 2 && c.num[0] == 1 && c.num[1] == 2, "metrics_get: keys and after_step");
    c = (collect){0};
    store_metrics_get(s, "r-000100", NULL, 0, 0, 3, on_metric, &c);
    CHECK(c.n == 3 && c.num[0] == 1 && c.num[2] == 2, "metrics_get: after_step and limit");
    CHECK(store_metrics_get(s, "r-404", NULL, 0, 0, 0, on_metric, &c) == VV_ENOTFOUND,
          "metrics of a missing run: VV_ENOTFOUND");

    /* Conflicts write nothing. */
    event_row old[1] = {{3, "log", "{}"}};
    metric_row more[2] = {{3, "objective", 6.0, 0.4}, {3, "gap", 0.5, 0.4}};
    CHECK(store_append(s, "r-000100", old, 1, more, 2) == VV_ECONFLICT,
          "a seq not above last_seq: VV_ECONFLICT");
    event_row dup[2] = {{5, "log", "{}"}, {5, "log", "{}"}};
    CHECK(store_append(s, "r-000100", dup, 2, more, 2) == VV_ECONFLICT,
          "seqs not increasing within a batch: VV_ECONFLICT");
    event_row mixed[2] = {{4, "log", "{}"}, {2, "log", "{}"}};
    CHECK(store_append(s, "r-000100", mixed, 2, more, 2) == VV_ECONFLICT,
          "a decreasing seq: VV_ECONFLICT");
    c = (collect){0};
    store_events_after(s, "r-000100", 0, 0, on_event, &c);
    store_run_get(s, "r-000100", &r);
    CHECK(c.n == 3 && count_metrics(s, "r-000100") == 6 && r.last_seq == 3,
          "the rejected batches left nothing behind");
    run_row_free(&r);
    CHECK(store_append(s, "r-404", ev, 1, m, 1) == VV_ENOTFOUND, "append to a missing run");
    CHECK(store_append(s, "r-000100", NULL, 0, more, 2) == 0 && count_metrics(s, "r-000100") == 8,
          "metrics without events");
    event_row next[1] = {{10, "log", "{}"}};
    CHECK(store_append(s, "r-000100", next, 1, NULL, 0) == 0, "events without metrics");
    store_run_get(s, "r-000100", &r);
    CHECK(r.last_seq == 10, "last_seq may jump");
    run_row_free(&r);

    /* 1000 metric rows in one append, best of five: wall time is printed,
     * and the thread's CPU time (which other processes' load does not
     * inflate) is checked. */
    store_run_insert(s, "r-000101", "lasso", "{}", NULL, NULL, 6);
    metric_row *big = malloc(1000 * sizeof *big);
    static const char *const names[] = {"objective", "gap", "rel_gap", "active", "mse"};
    double wall = 1e9, cpu = 1e9;
    int ok = 1;
    for (int rep = 0; rep < 5; rep++) {
        for (int i = 0; i < 1000; i++)
            big[i] = (metric_row){rep * 200 + i / 5, names[i % 5], (double)i, 0.001 * i};
        event_row one = {rep + 1, "metric", "{}"};
        double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
        ok &= store_append(s, "r-000101", &one, 1, big, 1000) == 0;
        double c1 = now_s(CLOCK_THREAD_CPUTIME_ID), w1 = now_s(CLOCK_MONOTONIC);
        wall = w1 - w0 < wall ? w1 - w0 : wall;
        cpu = c1 - c0 < cpu ? c1 - c0 : cpu;
    }
    free(big);
    printf("# store_append of 1000 metric rows: %.3f ms wall, %.3f ms CPU (best of 5)\n",
           wall * 1e3, cpu * 1e3);
    CHECK(ok && count_metrics(s, "r-000101") == 5000, "five 1000-row appends");
    CHECKF(cpu * 1e3 < APPEND_LIMIT_MS, "a 1000-row append takes %.3f ms of CPU (< %g ms)",
           cpu * 1e3, APPEND_LIMIT_MS);
}

static void test_recover(void)
{
    store *s;
    const char *p = path_of("recover.db");
    if (store_open(p, &s)) {
        CHECK(0, "open recover.db");
        return;
    }
    store_run_insert(s, "r-a", "lasso", "{}", NULL, NULL, 3);
    store_run_insert(s, "r-b", "lasso", "{}", NULL, NULL, 2);
    store_run_insert(s, "r-c", "lasso", "{}", NULL, NULL, 1);
    store_run_insert(s, "r-d", "lasso", "{}", NULL, NULL, 1);
    store_run_insert(s, "r-e", "lasso", "{}", NULL, NULL, 0.5);
    store_run_insert(s, "r-f", "lasso", "{}", NULL, NULL, 0.5);
    store_run_set_state(s, "r-b", "RUNNING", NULL, NULL, NULL, 10);
    store_run_set_state(s, "r-f", "RUNNING", NULL, NULL, NULL, 10);
    store_run_set_state(s, "r-e", "FINISHED", "converged", "{}", NULL, 11);

    int64_t counts[6];
    CHECK(store_count_states(s, counts) == 0 && counts[0] == 3 && counts[1] == 2 &&
              counts[2] == 1 && counts[3] == 0 && counts[4] == 0 && counts[5] == 0,
          "count_states before recovery");
    int crashed = -1, nq = -1;
    char **q = NULL;
    CHECK(store_recover(s, 50.0, &crashed, &q, &nq) == 0, "recover");
    CHECK(crashed == 2 && nq == 3, "two crashed, three queued");
    CHECK(nq == 3 && strcmp(q[0], "r-c") == 0 && strcmp(q[1], "r-d") == 0 &&
              strcmp(q[2], "r-a") == 0,
          "queued ids oldest first, ties by id");
    for (int i = 0; i < nq; i++)
        free(q[i]);
    free(q);
    run_row r;
    store_run_get(s, "r-b", &r);
    CHECK(strcmp(r.state, "CRASHED") == 0 && r.finished == 50.0 && r.started == 10 && r.error &&
              strcmp(r.error,
                     "{\"type\":\"about:blank\",\"title\":\"daemon stopped while the run was "
                     "running\",\"status\":500,\"error_code\":\"CRASHED\",\"detail\":\"vvd "
                     "restarted; the run was RUNNING\"}") == 0,
          "RUNNING became CRASHED with the problem object and finished = now");
    run_row_free(&r);
    store_run_get(s, "r-e", &r);
    CHECK(strcmp(r.state, "FINISHED") == 0 && !r.error && r.finished == 11,
          "finished runs untouched");
    run_row_free(&r);
    CHECK(store_count_states(s, counts) == 0 && counts[0] == 3 && counts[1] == 0 &&
              counts[2] == 1 && counts[5] == 2,
          "count_states after recovery");
    CHECK(store_recover(s, 60.0, &crashed, &q, &nq) == 0 && crashed == 0 && nq == 3,
          "a second recovery crashes nothing");
    for (int i = 0; i < nq; i++)
        free(q[i]);
    free(q);

    int64_t mr = -1, ms = -1;
    CHECK(store_max_ids(s, &mr, &ms) == 0 && mr == 0 && ms == 0,
          "max_ids: no numbered ids yet gives 0, 0");
    store_run_insert(s, "r-000042", "lasso", "{}", "s-000005", "h", 1);
    store_run_insert(s, "r-7", "lasso", "{}", NULL, NULL, 1);
    store_run_insert(s, "r-99x", "lasso", "{}", NULL, NULL, 1);
    store_run_insert(s, "x-000100", "lasso", "{}", NULL, NULL, 1);
    store_sweep_insert(s, "s-000003", "{}", 1);
    store_sweep_insert(s, "s-0000zz", "{}", 1);
    CHECK(store_max_ids(s, &mr, &ms) == 0 && mr == 42 && ms == 5,
          "max_ids: largest numeric suffixes");
    store_close(s);
    remove_db("recover.db");
}

static void test_sweeps_artifacts(store *s)
{
    sweep_row w;
    CHECK(store_sweep_insert(s, "s-000001", "{\"grid\":[1,2]}", 7.5) == 0, "insert a sweep");
    CHECK(store_sweep_insert(s, "s-000001", "{}", 8) == VV_ECONFLICT, "duplicate sweep");
    CHECK(store_sweep_get(s, "s-000001", &w) == 0 && strcmp(w.id, "s-000001") == 0 &&
              strcmp(w.spec, "{\"grid\":[1,2]}") == 0 && strcmp(w.state, "ACTIVE") == 0 &&
              w.created == 7.5,
          "get it back ACTIVE");
    sweep_row_free(&w);
    CHECK(store_sweep_set_state(s, "s-000001", "STOPPED") == 0 &&
              store_sweep_get(s, "s-000001", &w) == 0 && strcmp(w.state, "STOPPED") == 0,
          "set STOPPED");
    sweep_row_free(&w);
    CHECK(store_sweep_set_state(s, "s-000001", "PAUSED") == VV_EINVAL, "bad sweep state");
    CHECK(store_sweep_set_state(s, "s-404", "STOPPED") == VV_ENOTFOUND, "set missing sweep");
    CHECK(store_sweep_get(s, "s-404", &w) == VV_ENOTFOUND && !w.id, "get missing sweep");

    CHECK(store_artifact_add(s, "r-000001", "V.npy", "/data/r-000001/V.npy", 800) == 0 &&
              store_artifact_add(s, "r-000001", "kept.npy", "/data/r-000001/kept.npy", 80) == 0,
          "add two artifacts");
    CHECK(store_artifact_add(s, "r-000001", "V.npy", "/data/r-000001/V2.npy", 1600) == 0,
          "re-add one");
    collect c = {0};
    CHECK(store_artifacts_list(s, "r-000001", on_artifact, &c) == 0 && c.n == 2 &&
              strcmp(c.text[0], "V.npy=/data/r-000001/V2.npy") == 0 && c.num[0] == 1600 &&
              strcmp(c.text[1], "kept.npy=/data/r-000001/kept.npy") == 0 && c.num[1] == 80,
          "listed by name; the re-added one replaced");
    CHECK(store_artifact_add(s, "r-404", "x", "/x", 1) == VV_ENOTFOUND,
          "artifact of a missing run");
    CHECK(store_artifacts_list(s, "r-404", on_artifact, &c) == VV_ENOTFOUND,
          "artifacts of a missing run");
}

/* ---- names, tags, deletion, the list of sweeps --------------------------------- */

static int on_point(void *ctx, const char *hash, const char *state)
{
    collect *c = ctx;
    if (c->n < 8)
        snprintf(c->text[c->n++], sizeof c->text[0], "%s=%s", hash, state);
    return 0;
}

static int on_deleted(void *ctx, const char *id, const char *hash, const char *state,
                      const char *spec, const char *result, double deleted)
{
    collect *c = ctx;
    (void)spec;
    if (c->n < 8) {
        snprintf(c->text[c->n], sizeof c->text[0], "%s %s %s %s", id, hash, state,
                 result ? result : "-");
        c->num[c->n++] = (int64_t)deleted;
    }
    return 0;
}

static int find_ids(store *s, const run_filter *f, char *out, size_t cap)
{
    run_row *rows = NULL;
    int n = 0;
    char next[64];
    out[0] = 0;
    if (store_runs_find(s, f, 100, NULL, &rows, &n, next) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", rows[i].id);
        run_row_free(&rows[i]);
    }
    free(rows);
    return n;
}

static void test_tracking(void)
{
    remove_db("track.db");
    store *s = NULL;
    CHECK(store_open(path_of("track.db"), &s) == 0, "open a database for tracking");
    if (!s)
        return;
    store_run_insert(s, "r-1", "lasso", "{\"name\":\"from spec\"}", NULL, NULL, 1);
    store_run_insert(s, "r-2", "lasso", "{}", "s-1", "aaa", 2);
    store_run_insert(s, "r-3", "compress", "{}", "s-1", "bbb", 3);
    store_run_insert(s, "r-4", "lasso", "{}", "s-1", "aaa#2", 4);
    store_run_set_state(s, "r-2", "FINISHED", "converged", "{\"lambda\":0.5}", NULL, 5);
    store_run_set_state(s, "r-3", "RUNNING", NULL, NULL, NULL, 5);
    run_row r;
    CHECK(store_run_get(s, "r-1", &r) == 0 && !r.name && strcmp(r.tags, "[]") == 0 &&
              strcmp(r.notes, "") == 0,
          "a new run: no name, tags [], notes \"\"");
    run_row_free(&r);
    CHECK(store_run_annotate(s, "r-1", 1, "mine", "[\"a\",\"b\"]", "some notes") == 0 &&
              store_run_get(s, "r-1", &r) == 0 && strcmp(r.name, "mine") == 0 &&
              strcmp(r.tags, "[\"a\",\"b\"]") == 0 && strcmp(r.notes, "some notes") == 0,
          "annotate sets name, tags and notes");
    run_row_free(&r);
    CHECK(store_run_annotate(s, "r-1", 0, NULL, NULL, "new notes") == 0 &&
              store_run_get(s, "r-1", &r) == 0 && strcmp(r.name, "mine") == 0 &&
              strcmp(r.tags, "[\"a\",\"b\"]") == 0 && strcmp(r.notes, "new notes") == 0,
          "NULL tags and set_name 0 keep them");
    run_row_free(&r);
    CHECK(store_run_annotate(s, "r-1", 1, NULL, NULL, NULL) == 0 &&
              store_run_get(s, "r-1", &r) == 0 && !r.name,
          "set_name with NULL clears the name");
    run_row_free(&r);
    CHECK(store_run_annotate(s, "r-9", 1, "x", NULL, NULL) == VV_ENOTFOUND, "annotate a missing run");
    store_run_annotate(s, "r-2", 0, NULL, "[\"b\"]", NULL);

    char ids[256];
    const char *ab[] = {"a", "b"}, *b[] = {"b"};
    run_filter f1 = {.tags = b, .ntags = 1}, f2 = {.tags = ab, .ntags = 2};
    run_filter f3 = {.q = "FROM SPEC"}, f4 = {.q = "compress"}, f5 = {.q = "r-2"};
    run_filter f6 = {.kind = "lasso", .tags = b, .ntags = 1};
    CHECK(find_ids(s, &f1, ids, sizeof ids) == 2 && strcmp(ids, "r-2,r-1") == 0,
          "tag b: both tagged runs, newest first");
    CHECK(find_ids(s, &f2, ids, sizeof ids) == 1 && strcmp(ids, "r-1") == 0,
          "tags a and b: the run with both");
    CHECK(find_ids(s, &f3, ids, sizeof ids) == 1 && strcmp(ids, "r-1") == 0,
          "q matches the spec's name, any case");
    CHECK(find_ids(s, &f4, ids, sizeof ids) == 1 && strcmp(ids, "r-3") == 0, "q matches the kind");
    CHECK(find_ids(s, &f5, ids, sizeof ids) == 1 && strcmp(ids, "r-2") == 0, "q matches the id");
    CHECK(find_ids(s, &f6, ids, sizeof ids) == 2, "kind and tag together");
    const char *many[RUN_FILTER_MAX_TAGS + 1] = {0};
    run_filter f7 = {.tags = many, .ntags = RUN_FILTER_MAX_TAGS + 1};
    CHECK(find_ids(s, &f7, ids, sizeof ids) == -1, "too many tags: refused");

    store_append(s, "r-2", (event_row[]){{1, "state", "{}"}}, 1,
                 (metric_row[]){{1, "gap", 0.5, 0.1}}, 1);
    store_artifact_add(s, "r-2", "V.npy", "/x/V.npy", 10);
    CHECK(store_run_delete(s, "r-3", 9, NULL) == VV_ECONFLICT, "deleting a RUNNING run: conflict");
    CHECK(store_run_delete(s, "r-4", 9, NULL) == VV_ECONFLICT, "deleting a QUEUED run: conflict");
    CHECK(store_run_delete(s, "r-9", 9, NULL) == VV_ENOTFOUND, "deleting a missing run");
    CHECK(store_run_delete(s, "r-2", 9.5, &r) == 0 && strcmp(r.id, "r-2") == 0 &&
              strcmp(r.sweep_id, "s-1") == 0,
          "delete a finished sweep run; *was has its row");
    run_row_free(&r);
    CHECK(store_run_get(s, "r-2", &r) == VV_ENOTFOUND, "it is gone");
    CHECK(count_metrics(s, "r-2") == 0, "its metrics are gone");
    char cnt[64];
    raw_text(path_of("track.db"), "SELECT COUNT(*) FROM events WHERE run_id = 'r-2'", cnt,
             sizeof cnt);
    CHECKF(strcmp(cnt, "0") == 0, "its events are gone (%s left)", cnt);
    raw_text(path_of("track.db"), "SELECT COUNT(*) FROM artifacts WHERE run_id = 'r-2'", cnt,
             sizeof cnt);
    CHECKF(strcmp(cnt, "0") == 0, "its artifact records are gone (%s left)", cnt);
    collect d = {0};
    CHECK(store_sweep_deleted(s, "s-1", on_deleted, &d) == 0 && d.n == 1 &&
              strcmp(d.text[0], "r-2 aaa FINISHED {\"lambda\":0.5}") == 0 && d.num[0] == 9,
          "the sweep records the deleted run (id, point, state, result, time)");
    store_run_set_state(s, "r-4", "FAILED", NULL, NULL, "{}", 10);
    CHECK(store_run_delete(s, "r-4", 11, NULL) == 0, "delete a second one");
    collect d2 = {0}, pts = {0};
    CHECK(store_sweep_deleted(s, "s-1", on_deleted, &d2) == 0 && d2.n == 2 &&
              strncmp(d2.text[1], "r-4 aaa#2 FAILED", 16) == 0,
          "both deletions are listed, oldest first");
    CHECK(store_sweep_points(s, "s-1", on_point, &pts) == 0 && pts.n == 1 &&
              strcmp(pts.text[0], "bbb=RUNNING") == 0,
          "the sweep's remaining runs: one point");

    store_sweep_insert(s, "s-1", "{\"name\":\"Alpha\",\"base\":{\"kind\":\"compress\"}}", 1);
    store_sweep_insert(s, "s-2", "{\"base\":{}}", 2);
    store_sweep_insert(s, "s-3", "{\"name\":\"beta\",\"base\":{}}", 3);
    store_sweep_set_state(s, "s-3", "FINISHED");
    sweep_row *sw = NULL;
    int n = 0;
    char next[64];
    CHECK(store_sweeps_list(s, NULL, NULL, NULL, 2, NULL, &sw, &n, next) == 0 && n == 2 &&
              strcmp(sw[0].id, "s-3") == 0 && strcmp(sw[1].id, "s-2") == 0 && next[0],
          "sweeps newest first, a page of 2 with a token");
    for (int i = 0; i < n; i++)
        sweep_row_free(&sw[i]);
    free(sw);
    char next2[64];
    CHECK(store_sweeps_list(s, NULL, NULL, NULL, 2, next, &sw, &n, next2) == 0 && n == 1 &&
              strcmp(sw[0].id, "s-1") == 0 && next2[0] == 0,
          "the next page has the last one and no token");
    sweep_row_free(&sw[0]);
    free(sw);
    CHECK(store_sweeps_list(s, NULL, "lasso", NULL, 10, NULL, &sw, &n, next) == 0 && n == 2,
          "kind lasso: the two whose base names no kind");
    for (int i = 0; i < n; i++)
        sweep_row_free(&sw[i]);
    free(sw);
    CHECK(store_sweeps_list(s, "FINISHED", NULL, "BET", 10, NULL, &sw, &n, next) == 0 && n == 1 &&
              strcmp(sw[0].id, "s-3") == 0,
          "state and q (any case) together");
    sweep_row_free(&sw[0]);
    free(sw);
    CHECK(store_sweeps_list(s, NULL, "compress", "alpha", 10, NULL, &sw, &n, next) == 0 &&
              n == 1 && strcmp(sw[0].id, "s-1") == 0,
          "kind compress and q");
    sweep_row_free(&sw[0]);
    free(sw);
    CHECK(store_sweeps_list(s, NULL, NULL, NULL, 10, "bad", &sw, &n, next) == VV_EINVAL,
          "a malformed token");
    store_close(s);
    remove_db("track.db");
}

/* ---- concurrency ------------------------------------------------------------ */

typedef struct worker {
    store *s;
    char run[32];
    int errors;
    atomic_int *done;
} worker;

static void *writer(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 200; i++) {
        char data[64];
        snprintf(data, sizeof data, "{\"step\":%d}", i);
        event_row ev = {i + 1, "metric", data};
        metric_row m[5];
        for (int k = 0; k < 5; k++)
            m[k] = (metric_row){i, k % 2 ? "gap" : "objective", i * 0.5 + k, i * 0.01};
        if (store_append(w->s, w->run, &ev, 1, m, 5) != 0)
            w->errors++;
        if (i % 50 == 0 && store_run_heartbeat(w->s, w->run, 3000.0 + i) != 0)
            w->errors++;
    }
    return NULL;
}

static void *reader(void *arg)
{
    worker *w = arg;
    int loops = 0;
    while (!atomic_load(w->done) || loops < 5) {
        run_row *rows;
        int n;
        char tok[64];
        if (store_runs_list(w->s, NULL, NULL, NULL, 50, NULL, &rows, &n, tok) != 0)
            w->errors++;
        else {
            for (int i = 0; i < n; i++)
                run_row_free(&rows[i]);
            free(rows);
        }
        int64_t counts[6];
        collect c = {0};
        if (store_count_states(w->s, counts) != 0 ||
            store_events_after(w->s, "r-200000", 0, 10, on_event, &c) != 0)
            w->errors++;
        loops++;
    }
    return NULL;
}

static void test_concurrency(store *s)
{
    atomic_int done = 0;
    worker w[5];
    pthread_t t[5];
    for (int i = 0; i < 5; i++) {
        w[i] = (worker){.s = s, .done = &done};
        snprintf(w[i].run, sizeof w[i].run, "r-2%05d", i);
        if (i < 4)
            store_run_insert(s, w[i].run, "lasso", "{}", NULL, NULL, 4000 + i);
    }
    pthread_create(&t[4], NULL, reader, &w[4]);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, writer, &w[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    atomic_store(&done, 1);
    pthread_join(t[4], NULL);
    int errors = 0, intact = 1;
    for (int i = 0; i < 5; i++)
        errors += w[i].errors;
    for (int i = 0; i < 4; i++) {
        run_row r;
        store_run_get(s, w[i].run, &r);
        intact &= r.last_seq == 200 && r.heartbeat == 3150.0 && count_metrics(s, w[i].run) == 1000;
        run_row_free(&r);
    }
    CHECKF(errors == 0, "4 writers and a reader at once: %d errors", errors);
    CHECK(intact, "every writer's 200 events and 1000 metrics arrived");
}

static void test_reopen(store *s, const char *p)
{
    store_close(s);
    s = NULL;
    CHECK(store_open(p, &s) == 0, "reopen the main database");
    if (!s)
        return;
    run_row r;
    CHECK(store_run_get(s, "r-000001", &r) == 0 && strcmp(r.state, "FINISHED") == 0 &&
              strcmp(r.result, "{\"kept\":3}") == 0 && r.finished == 110.0,
          "a run survives the reopen");
    run_row_free(&r);
    collect c = {0};
    store_events_after(s, "r-000100", 0, 0, on_event, &c);
    CHECK(c.n == 4 && c.num[3] == 10, "events survive");
    CHECK(count_metrics(s, "r-000100") == 8 && count_metrics(s, "r-200003") == 1000,
          "metrics survive");
    c = (collect){0};
    store_artifacts_list(s, "r-000001", on_artifact, &c);
    sweep_row w;
    CHECK(c.n == 2 && store_sweep_get(s, "s-000001", &w) == 0 && strcmp(w.state, "STOPPED") == 0,
          "sweeps and artifacts survive");
    sweep_row_free(&w);
    CHECK(store_integrity_check(s) == 0, "integrity_check ok after everything");
    store_close(s);
}

int main(void)
{
    const char *tmp = getenv("VV_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/store-test-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    if (mkdir(dir, 0700) != 0) {
        printf("Bail out! cannot create %s\n", dir);
        return 1;
    }
    test_open();
    store *s = NULL;
    char p[600];
    snprintf(p, sizeof p, "%s", path_of("main.db"));
    CHECK(store_open(p, &s) == 0, "open the main database");
    if (s) {
        test_runs(s);
        test_events_metrics(s);
        test_sweeps_artifacts(s);
        test_concurrency(s);
        CHECK(store_integrity_check(s) == 0, "integrity_check ok");
        test_reopen(s, p);
    }
    test_list();
    test_recover();
    test_tracking();
    remove_db("main.db");
    rmdir(dir);
    return tap_done();
}
