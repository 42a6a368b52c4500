/* store_internal.h - what the two halves of the store share: the
 * connection, the prepared statements and small helpers (see store.c). */
#ifndef VV_STORE_INTERNAL_H
#define VV_STORE_INTERNAL_H

#include "store.h"

#include "vv/err.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Defined by the file that schema/sql/embed.py generates. */
extern const char *const vv_schema_migrations[];
extern const int vv_schema_migration_count;

/* clang-format off */
#define RUN_COLS                                                                           \
    "id, kind, state, stop_reason, spec, result, error, sweep_id, config_hash, created, "  \
    "started, finished, heartbeat, last_seq, name, tags, notes, runner, ext_seq"

/* The largest N of the ids "<p>-N" (digits only) in a column of a table. */
#define MAX_SUFFIX(col, table, p)                                                          \
    "SELECT MAX(CAST(substr(" col ", 3) AS INTEGER)) FROM " table " WHERE " col           \
    " GLOB '" p "-[0-9]*' AND substr(" col ", 3) NOT GLOB '*[^0-9]*'"

/* The statements kept prepared in the store. */
enum {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_RUN_INSERT, Q_RUN_GET, Q_RUN_EXISTS, Q_RUN_SET_STATE,
    Q_RUN_HEARTBEAT, Q_LAST_SEQ, Q_SET_LAST_SEQ, Q_EVENT_INSERT, Q_METRIC_INSERT,
    Q_EVENTS_AFTER, Q_CRASH_EVENT, Q_CRASH_SEQ, Q_CRASH_RUNNING, Q_QUEUED, Q_COUNT_STATES, Q_MAX_IDS, Q_SWEEP_INSERT,
    Q_SWEEP_GET, Q_SWEEP_SET_STATE, Q_ARTIFACT_ADD, Q_ARTIFACTS_LIST, Q_COUNT
};

static const char *const query_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_RUN_INSERT] = "INSERT INTO runs (id, kind, state, spec, sweep_id, config_hash, created) "
                     "VALUES (?1, ?2, 'QUEUED', ?3, ?4, ?5, ?6)",
    [Q_RUN_GET] = "SELECT " RUN_COLS " FROM runs WHERE id = ?1",
    [Q_RUN_EXISTS] = "SELECT 1 FROM runs WHERE id = ?1",
    [Q_RUN_SET_STATE] =
        "UPDATE runs SET state = ?2, stop_reason = COALESCE(?3, stop_reason), "
        "result = COALESCE(?4, result), error = COALESCE(?5, error), "
        "started = CASE WHEN ?2 = 'RUNNING' THEN ?6 ELSE started END, "
        "finished = CASE WHEN ?2 IN ('FINISHED', 'STOPPED', 'FAILED', 'CRASHED') "
        "THEN ?6 ELSE finished END WHERE id = ?1",
    [Q_RUN_HEARTBEAT] = "UPDATE runs SET heartbeat = ?2 WHERE id = ?1",
    [Q_LAST_SEQ] = "SELECT last_seq FROM runs WHERE id = ?1",
    [Q_SET_LAST_SEQ] = "UPDATE runs SET last_seq = ?2 WHERE id = ?1",
    [Q_EVENT_INSERT] = "INSERT INTO events (run_id, seq, type, data) VALUES (?1, ?2, ?3, ?4)",
    [Q_METRIC_INSERT] = "INSERT INTO metrics (run_id, step, key, value, time) "
                        "VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_EVENTS_AFTER] = "SELECT seq, type, data FROM events WHERE run_id = ?1 AND seq > ?2 "
                       "ORDER BY seq LIMIT ?3",
    /* A crashed run's event stream ends with a CRASHED state event. */
    [Q_CRASH_EVENT] = "INSERT INTO events (run_id, seq, type, data) SELECT id, last_seq + 1, "
                      "'state', '{\"state\":\"CRASHED\",\"stop_reason\":null}' FROM runs "
                      "WHERE state = 'RUNNING' AND runner IS NULL",
    [Q_CRASH_SEQ] = "UPDATE runs SET last_seq = last_seq + 1 WHERE state = 'RUNNING' "
                    "AND runner IS NULL",
    [Q_CRASH_RUNNING] = "UPDATE runs SET state = 'CRASHED', error = ?1, finished = ?2 "
                        "WHERE state = 'RUNNING' AND runner IS NULL",
    [Q_QUEUED] = "SELECT id FROM runs WHERE state = 'QUEUED' AND runner IS NULL "
                 "ORDER BY created, id",
    [Q_COUNT_STATES] = "SELECT state, COUNT(*) FROM runs GROUP BY state",
    [Q_MAX_IDS] = "SELECT (" MAX_SUFFIX("id", "runs", "r") "), "
                  "MAX(IFNULL((" MAX_SUFFIX("id", "sweeps", "s") "), 0), "
                  "IFNULL((" MAX_SUFFIX("sweep_id", "runs", "s") "), 0))",
    [Q_SWEEP_INSERT] = "INSERT INTO sweeps (id, spec, state, created) "
                       "VALUES (?1, ?2, 'ACTIVE', ?3)",
    [Q_SWEEP_GET] = "SELECT id, spec, state, created FROM sweeps WHERE id = ?1",
    [Q_SWEEP_SET_STATE] = "UPDATE sweeps SET state = ?2 WHERE id = ?1",
    [Q_ARTIFACT_ADD] = "INSERT INTO artifacts (run_id, name, path, bytes) "
                       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (run_id, name) "
                       "DO UPDATE SET path = excluded.path, bytes = excluded.bytes",
    [Q_ARTIFACTS_LIST] = "SELECT name, path, bytes FROM artifacts WHERE run_id = ?1 "
                         "ORDER BY name",
};

/* clang-format on */

static const char *const run_states[6] = {"QUEUED",  "RUNNING", "FINISHED",
                                          "STOPPED", "FAILED",  "CRASHED"};

/* The problem object recorded for the runs found RUNNING at start-up. */
static const char crashed_error[] =
    "{\"type\":\"about:blank\",\"title\":\"daemon stopped while the run was running\","
    "\"status\":500,\"error_code\":\"CRASHED\","
    "\"detail\":\"vvd restarted; the run was RUNNING\"}";

struct store {
    sqlite3 *db;
    char *path;
    pthread_mutex_t mu;
    sqlite3_stmt *q[Q_COUNT];
};

/* Page tokens (store_history.c): created and id of the last row of a page,
 * encoded in at most 63 characters; decode answers -1 for a malformed one. */
int store_token_encode(double created, const char *id, char *out);
int store_token_decode(const char *tok, double *created, char *id);

/* ---- helpers --------------------------------------------------------------- */

static inline void lock(store *s)
{
    pthread_mutex_lock(&s->mu);
}
static inline void unlock(store *s)
{
    pthread_mutex_unlock(&s->mu);
}

/* Turns a failed SQLite call (result code rc) into a vv_err with a detail:
 * constraint failures become VV_ECONFLICT (UNIQUE, PRIMARY KEY),
 * VV_ENOTFOUND (FOREIGN KEY) or VV_EINVAL (CHECK, NOT NULL); running out of
 * memory is VV_ENOMEM; the rest is VV_EIO naming the file. */
static inline int db_err(store *s, int rc, const char *what)
{
    int ext = sqlite3_extended_errcode(s->db);
    const char *msg = (ext & 0xff) == (rc & 0xff) ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
            return vv_fail(VV_ECONFLICT, "%s: %s", what, msg);
        if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            return vv_fail(VV_ENOTFOUND, "%s: %s", what, msg);
        return vv_fail(VV_EINVAL, "%s: %s", what, msg);
    }
    if ((rc & 0xff) == SQLITE_NOMEM)
        return vv_fail(VV_ENOMEM, "%s: %s", what, msg);
    if ((rc & 0xff) == SQLITE_FULL)
        return vv_fail(VV_ENOSPACE, "%s: %s: %s", s->path, what, msg);
    return vv_fail(VV_EIO, "%s: %s: %s", s->path, what, msg);
}

/* Readies a statement for its next use. */
static inline void reset(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Binds parameters 1, 2, ... of st, one per letter of types: 't' a const
 * char * (NULL binds SQL NULL), 'd' a double, 'i' an int64_t.  Returns an
 * SQLite result code. */
static inline int bindv(sqlite3_stmt *st, const char *types, va_list ap)
{
    int rc = SQLITE_OK;
    for (int i = 0; types[i] && rc == SQLITE_OK; i++) {
        if (types[i] == 't')
            rc = sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_STATIC);
        else if (types[i] == 'd')
            rc = sqlite3_bind_double(st, i + 1, va_arg(ap, double));
        else
            rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
    }
    return rc;
}

/* Fetches the kept statement `which` (preparing it on first use) into *st
 * and binds the arguments; on failure nothing stays bound. */
static inline int vbound(store *s, int which, sqlite3_stmt **st, const char *what,
                         const char *types, va_list ap)
{
    if (!s->q[which]) {
        int rc = sqlite3_prepare_v3(s->db, query_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->q[which], NULL);
        if (rc != SQLITE_OK)
            return db_err(s, rc, what);
    }
    *st = s->q[which];
    int rc = bindv(*st, types, ap);
    if (rc == SQLITE_OK)
        return 0;
    int err = db_err(s, rc, what);
    reset(*st);
    return err;
}

static inline int bound(store *s, int which, sqlite3_stmt **st, const char *what, const char *types,
                        ...)
{
    va_list ap;
    va_start(ap, types);
    int err = vbound(s, which, st, what, types, ap);
    va_end(ap);
    return err;
}

/* Steps st: 1 for a row, 0 at the end, or a negative vv_err. */
static inline int step(store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_err(s, rc, what);
}

/* Runs the kept statement `which`, which returns no rows, with the
 * arguments given as for bound(). */
static inline int exec_q(store *s, int which, const char *what, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, types);
    int err = vbound(s, which, &st, what, types, ap);
    va_end(ap);
    if (err)
        return err;
    err = step(s, st, what);
    reset(st);
    return err < 0 ? err : 0;
}

static inline int begin(store *s)
{
    return exec_q(s, Q_BEGIN, "beginning a transaction", "");
}

/* Ends the transaction begun by begin(): commits when err is 0, and rolls
 * back when err is not or the commit fails (unless SQLite already has).
 * Returns the outcome. */
static inline int finish(store *s, int err)
{
    if (!err && !(err = exec_q(s, Q_COMMIT, "committing", "")))
        return 0;
    if (!sqlite3_get_autocommit(s->db))
        exec_q(s, Q_ROLLBACK, "rolling back", "");
    return err;
}

/* Copies text column i of st into a new string; SQL NULL gives NULL. */
static inline int col_dup(sqlite3_stmt *st, int i, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    char *c = t ? malloc((size_t)n + 1) : NULL;
    if (!c)
        return vv_fail(VV_ENOMEM, "out of memory reading a row");
    memcpy(c, t, (size_t)n);
    c[n] = 0;
    *out = c;
    return 0;
}

/* A REAL column in which NULL stands for NaN (SQLite stores NaN as NULL). */
static inline double col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* Fills r from a row of RUN_COLS; on failure r holds nothing. */
static inline int read_run(sqlite3_stmt *st, run_row *r)
{
    memset(r, 0, sizeof *r);
    char **strs[13] = {&r->id,     &r->kind,  &r->state,    &r->stop_reason, &r->spec,
                       &r->result, &r->error, &r->sweep_id, &r->config_hash, &r->name,
                       &r->tags,   &r->notes, &r->runner};
    static const int cols[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17};
    for (int i = 0; i < 13; i++) {
        int err = col_dup(st, cols[i], strs[i]);
        if (err) {
            run_row_free(r);
            return err;
        }
    }
    r->created = sqlite3_column_double(st, 9);
    r->started = sqlite3_column_double(st, 10);
    r->finished = sqlite3_column_double(st, 11);
    r->heartbeat = sqlite3_column_double(st, 12);
    r->last_seq = sqlite3_column_int64(st, 13);
    r->ext_seq = sqlite3_column_int64(st, 18);
    return 0;
}

/* 0 if the run exists, VV_ENOTFOUND if not (or another error). */
static inline int run_exists(store *s, const char *id)
{
    sqlite3_stmt *st;
    int err = bound(s, Q_RUN_EXISTS, &st, "looking up a run", "t", id);
    if (err)
        return err;
    err = step(s, st, "looking up a run");
    reset(st);
    return err == 0 ? vv_fail(VV_ENOTFOUND, "run %s does not exist", id) : err < 0 ? err : 0;
}

/* The body of store_run_set_state, with the lock held (and possibly inside
 * a transaction). */
static inline int set_state_locked(store *s, const char *id, const char *state,
                                   const char *stop_reason, const char *result,
                                   const char *error, double now)
{
    int known = 0;
    for (int i = 0; state && i < 6; i++)
        known |= strcmp(state, run_states[i]) == 0;
    if (!id || !known)
        return vv_fail(VV_EINVAL, "store_run_set_state: bad run state %s",
                       state ? state : "(null)");
    int err = exec_q(s, Q_RUN_SET_STATE, "setting a run's state", "tttttd", id, state, stop_reason,
                     result, error, now);
    if (!err && sqlite3_changes(s->db) == 0)
        err = vv_fail(VV_ENOTFOUND, "run %s does not exist", id);
    return err;
}

#endif
