/* store.c - vvd's run history in SQLite (see store.h for the contract).
 *
 * One connection, opened in WAL mode, guarded by one mutex that every public
 * function holds for its whole duration.  Fixed statements are prepared on
 * first use and kept in the store; the two whose text depends on the
 * arguments (listing runs, reading metrics) are prepared per call.
 *
 * Callbacks (store_events_after, store_metrics_get, store_artifacts_list)
 * run with the mutex held: they must not call back into the store, and
 * should copy what they need rather than block on a client.  A callback
 * that returns a positive value stops the iteration and the function
 * returns 0; a negative value stops it and is returned as the error.
 */
#include "store_internal.h"

/* ---- open, migrate, close ---------------------------------------------------- */

/* Runs sql, which must return a row, and copies the row's first column. */
static int first_text(store *s, const char *sql, char *buf, size_t size)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_err(s, rc, sql);
    int err = step(s, st, sql);
    const char *t = err == 1 ? (const char *)sqlite3_column_text(st, 0) : NULL;
    snprintf(buf, size, "%s", t ? t : "");
    sqlite3_finalize(st);
    return err < 0 ? err : 0;
}

/* Applies the migrations the database lacks, each in a transaction that
 * also records it in user_version.  The version is read inside the
 * transaction, so two processes opening the file at once cannot both apply
 * the same migration. */
static int migrate(store *s)
{
    for (;;) {
        int err = begin(s);
        if (err)
            return err;
        char buf[32], sql[64];
        err = first_text(s, "PRAGMA user_version", buf, sizeof buf);
        long version = strtol(buf, NULL, 10);
        if (!err && (version < 0 || version > vv_schema_migration_count))
            err = vv_fail(VV_EIO, "%s: schema version %ld is newer than this vvd's (%d)", s->path,
                          version, vv_schema_migration_count);
        if (err || version == vv_schema_migration_count)
            return finish(s, err);
        char *msg = NULL;
        int rc = sqlite3_exec(s->db, vv_schema_migrations[version], NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            err = vv_fail(VV_EIO, "%s: migration %ld: %s", s->path, version + 1,
                          msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            return finish(s, err);
        }
        snprintf(sql, sizeof sql, "PRAGMA user_version = %ld", version + 1);
        rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if ((err = finish(s, rc == SQLITE_OK ? 0 : db_err(s, rc, "recording the version"))))
            return err;
    }
}

/* Opens the connection and readies it; the body of store_open. */
static int open_db(store *s)
{
    int rc = sqlite3_open_v2(
        s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return vv_fail(rc == SQLITE_NOMEM ? VV_ENOMEM : VV_EIO, "%s: %s", s->path,
                       s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    /* A database in memory cannot use WAL; anything else must. */
    char mode[32];
    int err = first_text(s, "PRAGMA journal_mode = WAL", mode, sizeof mode);
    if (err)
        return err;
    if (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)
        return vv_fail(VV_EIO, "%s: cannot use WAL (journal_mode is %s)", s->path, mode);
    rc = sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", NULL, NULL,
                      NULL);
    if (rc != SQLITE_OK)
        return db_err(s, rc, "setting pragmas");
    return migrate(s);
}

int store_open(const char *path, store **out)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return vv_fail(VV_EINVAL, "store_open: NULL argument");
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return vv_fail(VV_ENOMEM, "%s: out of memory", path);
    }
    pthread_mutex_init(&s->mu, NULL);
    int err = open_db(s);
    if (err) {
        store_close(s);
        return err;
    }
    *out = s;
    return 0;
}

void store_close(store *s)
{
    if (!s)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(s->q[i]);
    if (s->db) {
        sqlite3_exec(s->db, "PRAGMA optimize", NULL, NULL, NULL);
        sqlite3_close(s->db);
    }
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

int store_integrity_check(store *s)
{
    char msg[512];
    lock(s);
    int err = first_text(s, "PRAGMA integrity_check", msg, sizeof msg);
    if (!err && strcmp(msg, "ok") != 0)
        err = vv_fail(VV_EIO, "%s: integrity check: %s", s->path, msg[0] ? msg : "no answer");
    unlock(s);
    return err;
}

/* ---- runs ------------------------------------------------------------------ */

void run_row_free(run_row *r)
{
    if (!r)
        return;
    char *strs[13] = {r->id,    r->kind,     r->state,       r->stop_reason, r->spec,
                      r->result, r->error,   r->sweep_id,    r->config_hash, r->name,
                      r->tags,  r->notes,    r->runner};
    for (int i = 0; i < 13; i++)
        free(strs[i]);
    memset(r, 0, sizeof *r);
}

int store_run_insert(store *s, const char *id, const char *kind, const char *spec,
                     const char *sweep_id, const char *config_hash, double now)
{
    if (!id || !kind || !spec)
        return vv_fail(VV_EINVAL, "store_run_insert: id, kind and spec are required");
    lock(s);
    int err = exec_q(s, Q_RUN_INSERT, "inserting a run", "tttttd", id, kind, spec, sweep_id,
                     config_hash, now);
    if (err == VV_ECONFLICT)
        err = vv_fail(VV_ECONFLICT, "run %s (sweep %s, config %s) already exists", id,
                      sweep_id ? sweep_id : "none", config_hash ? config_hash : "none");
    unlock(s);
    return err;
}

int store_run_set_state(store *s, const char *id, const char *state, const char *stop_reason,
                        const char *result, const char *error, double now)
{
    lock(s);
    int err = set_state_locked(s, id, state, stop_reason, result, error, now);
    unlock(s);
    return err;
}

int store_run_heartbeat(store *s, const char *id, double now)
{
    if (!id)
        return vv_fail(VV_EINVAL, "store_run_heartbeat: NULL id");
    lock(s);
    int err = exec_q(s, Q_RUN_HEARTBEAT, "recording a heartbeat", "td", id, now);
    if (!err && sqlite3_changes(s->db) == 0)
        err = vv_fail(VV_ENOTFOUND, "run %s does not exist", id);
    unlock(s);
    return err;
}

int store_run_get(store *s, const char *id, run_row *out)
{
    if (!out || !id)
        return vv_fail(VV_EINVAL, "store_run_get: NULL argument");
    memset(out, 0, sizeof *out);
    lock(s);
    sqlite3_stmt *st;
    int err = bound(s, Q_RUN_GET, &st, "reading a run", "t", id);
    if (!err) {
        err = step(s, st, "reading a run");
        err = err == 1   ? read_run(st, out)
              : err == 0 ? vv_fail(VV_ENOTFOUND, "run %s does not exist", id)
                         : err;
        reset(st);
    }
    unlock(s);
    return err;
}

/* ---- sweeps -------------------------------------------------------------------- */

void sweep_row_free(sweep_row *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->spec);
    free(r->state);
    memset(r, 0, sizeof *r);
}

int store_sweep_insert(store *s, const char *id, const char *spec, double now)
{
    if (!id || !spec)
        return vv_fail(VV_EINVAL, "store_sweep_insert: id and spec are required");
    lock(s);
    int err = exec_q(s, Q_SWEEP_INSERT, "inserting a sweep", "ttd", id, spec, now);
    if (err == VV_ECONFLICT)
        err = vv_fail(VV_ECONFLICT, "sweep %s already exists", id);
    unlock(s);
    return err;
}

int store_sweep_get(store *s, const char *id, sweep_row *out)
{
    if (!out || !id)
        return vv_fail(VV_EINVAL, "store_sweep_get: NULL argument");
    memset(out, 0, sizeof *out);
    lock(s);
    sqlite3_stmt *st;
    int err = bound(s, Q_SWEEP_GET, &st, "reading a sweep", "t", id);
    if (!err) {
        err = step(s, st, "reading a sweep");
        if (err == 0) {
            err = vv_fail(VV_ENOTFOUND, "sweep %s does not exist", id);
        } else if (err == 1) {
            out->created = sqlite3_column_double(st, 3);
            if ((err = col_dup(st, 0, &out->id)) || (err = col_dup(st, 1, &out->spec)) ||
                (err = col_dup(st, 2, &out->state)))
                sweep_row_free(out);
        }
        reset(st);
    }
    unlock(s);
    return err;
}

int store_sweep_set_state(store *s, const char *id, const char *state)
{
    if (!id || !state ||
        (strcmp(state, "ACTIVE") != 0 && strcmp(state, "STOPPED") != 0 &&
         strcmp(state, "FINISHED") != 0))
        return vv_fail(VV_EINVAL, "store_sweep_set_state: bad sweep state %s",
                       state ? state : "(null)");
    lock(s);
    int err = exec_q(s, Q_SWEEP_SET_STATE, "setting a sweep's state", "tt", id, state);
    if (!err && sqlite3_changes(s->db) == 0)
        err = vv_fail(VV_ENOTFOUND, "sweep %s does not exist", id);
    unlock(s);
    return err;
}

/* ---- artifacts ----------------------------------------------------------------- */

int store_artifact_add(store *s, const char *run_id, const char *name, const char *path,
                       int64_t bytes)
{
    if (!run_id || !name || !path)
        return vv_fail(VV_EINVAL, "store_artifact_add: run_id, name and path are required");
    lock(s);
    int err = run_exists(s, run_id);
    if (!err)
        err = exec_q(s, Q_ARTIFACT_ADD, "recording an artifact", "ttti", run_id, name, path, bytes);
    unlock(s);
    return err;
}

int store_artifacts_list(store *s, const char *run_id,
                         int (*fn)(void *ctx, const char *name, const char *path, int64_t bytes),
                         void *ctx)
{
    if (!run_id || !fn)
        return vv_fail(VV_EINVAL, "store_artifacts_list: bad arguments");
    lock(s);
    sqlite3_stmt *st;
    int err = run_exists(s, run_id);
    if (!err)
        err = bound(s, Q_ARTIFACTS_LIST, &st, "listing artifacts", "t", run_id);
    if (!err) {
        while (!err && (err = step(s, st, "listing artifacts")) == 1) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            const char *path = (const char *)sqlite3_column_text(st, 1);
            int ret = name && path ? fn(ctx, name, path, sqlite3_column_int64(st, 2))
                                   : vv_fail(VV_ENOMEM, "out of memory listing artifacts");
            err = ret < 0 ? ret : ret > 0;
        }
        reset(st);
    }
    unlock(s);
    return err < 0 ? err : 0;
}
