/* store_tracking.c - what users do with the history: name, tag and annotate
 * runs, delete them, list sweeps (see store.c for the locking rules). */
#include "store_internal.h"

int store_run_annotate(store *s, const char *id, int set_name, const char *name, const char *tags,
                       const char *notes)
{
    if (!id)
        return vv_fail(VV_EINVAL, "store_run_annotate: NULL id");
    lock(s);
    sqlite3_stmt *st = NULL;
    const char *sql = "UPDATE runs SET name = CASE WHEN ?2 THEN ?3 ELSE name END, "
                      "tags = COALESCE(?4, tags), notes = COALESCE(?5, notes) WHERE id = ?1";
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 2, set_name != 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 4, tags, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 5, notes, -1, SQLITE_STATIC);
    int err = rc == SQLITE_OK ? step(s, st, "annotating a run") : db_err(s, rc, "annotating a run");
    if (err == 0 && sqlite3_changes(s->db) == 0)
        err = vv_fail(VV_ENOTFOUND, "run %s does not exist", id);
    sqlite3_finalize(st);
    unlock(s);
    return err < 0 ? err : 0;
}

/* Runs sql with the text parameters given (NULL binds NULL), no rows. */
static int exec_texts(store *s, const char *sql, const char *what, int n, const char *const *t)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    for (int i = 0; i < n && rc == SQLITE_OK; i++)
        rc = sqlite3_bind_text(st, i + 1, t[i], -1, SQLITE_STATIC);
    int err = rc == SQLITE_OK ? step(s, st, what) : db_err(s, rc, what);
    sqlite3_finalize(st);
    return err < 0 ? err : 0;
}

/* The body of store_run_delete, inside a transaction. */
static int delete_locked(store *s, const char *id, double now, run_row *row)
{
    sqlite3_stmt *st;
    int err = bound(s, Q_RUN_GET, &st, "reading a run", "t", id);
    if (!err) {
        err = step(s, st, "reading a run");
        err = err == 1   ? read_run(st, row)
              : err == 0 ? vv_fail(VV_ENOTFOUND, "run %s does not exist", id)
                         : err;
        reset(st);
    }
    if (err)
        return err;
    if (!strcmp(row->state, "QUEUED") || !strcmp(row->state, "RUNNING"))
        return vv_fail(VV_ECONFLICT, "run %s is %s: stop it first", id, row->state);
    if (row->sweep_id) {
        sqlite3_stmt *ins = NULL;
        int rc = sqlite3_prepare_v2(s->db,
                                    "INSERT OR REPLACE INTO sweep_deleted (sweep_id, run_id, "
                                    "config_hash, state, spec, result, deleted) "
                                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                    -1, &ins, NULL);
        const char *t[6] = {row->sweep_id, row->id,   row->config_hash,
                            row->state,    row->spec, row->result};
        for (int i = 0; i < 6 && rc == SQLITE_OK; i++)
            rc = sqlite3_bind_text(ins, i + 1, t[i], -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_double(ins, 7, now);
        err = rc == SQLITE_OK ? step(s, ins, "recording a deleted sweep run")
                              : db_err(s, rc, "recording a deleted sweep run");
        sqlite3_finalize(ins);
        if (err < 0)
            return err;
    }
    static const char *const sql[] = {
        "DELETE FROM events WHERE run_id = ?1",
        "DELETE FROM metrics WHERE run_id = ?1",
        "DELETE FROM artifacts WHERE run_id = ?1",
        "DELETE FROM runs WHERE id = ?1",
    };
    for (unsigned i = 0; i < sizeof sql / sizeof *sql && !err; i++)
        err = exec_texts(s, sql[i], "deleting a run", 1, &id);
    return err;
}

int store_run_delete(store *s, const char *id, double now, run_row *was)
{
    if (!id)
        return vv_fail(VV_EINVAL, "store_run_delete: NULL id");
    run_row row = {0};
    lock(s);
    int err = begin(s);
    if (!err)
        err = finish(s, delete_locked(s, id, now, &row));
    unlock(s);
    if (was && !err)
        *was = row;
    else
        run_row_free(&row);
    return err;
}

/* ---- sweeps -------------------------------------------------------------------- */

int store_sweeps_list(store *s, const char *state, const char *kind, const char *q, int page_size,
                      const char *page_token, sweep_row **rows, int *n, char *next_token)
{
    if (!rows || !n)
        return vv_fail(VV_EINVAL, "store_sweeps_list: NULL output");
    *rows = NULL;
    *n = 0;
    if (next_token)
        next_token[0] = 0;
    if (page_size < 1 || page_size > 1000)
        return vv_fail(VV_EINVAL, "page_size %d is outside 1..1000", page_size);
    double after_created = 0;
    char after_id[64];
    int after = page_token && page_token[0];
    if (after && store_token_decode(page_token, &after_created, after_id) != 0)
        return vv_fail(VV_EINVAL, "malformed page_token");
    /* ?1 state, ?2 kind, ?3 q, ?4 id, ?5 created, ?6 limit. */
    const char *texts[4] = {state, kind, q, after ? after_id : NULL};
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT id, spec, state, created FROM sweeps WHERE 1%s%s%s%s "
             "ORDER BY created DESC, id DESC LIMIT ?6",
             state ? " AND state = ?1" : "",
             kind ? " AND IFNULL(json_extract(spec, '$.base.kind'), 'lasso') = ?2" : "",
             q ? " AND instr(lower(id || ' ' || IFNULL(json_extract(spec, '$.name'), '')), "
                 "lower(?3)) > 0"
               : "",
             after ? " AND (created, id) < (?5, ?4)" : "");
    sweep_row *out = calloc((size_t)page_size, sizeof *out);
    if (!out)
        return vv_fail(VV_ENOMEM, "out of memory listing sweeps");
    lock(s);
    sqlite3_stmt *st = NULL;
    int count = 0;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    for (int i = 0; i < 4 && rc == SQLITE_OK; i++)
        if (texts[i])
            rc = sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && after)
        rc = sqlite3_bind_double(st, 5, after_created);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 6, page_size + 1);
    int err = rc == SQLITE_OK ? 0 : db_err(s, rc, "listing sweeps");
    while (!err && (err = step(s, st, "listing sweeps")) == 1) {
        if (count == page_size)
            break;
        sweep_row *r = &out[count];
        r->created = sqlite3_column_double(st, 3);
        if ((err = col_dup(st, 0, &r->id)) || (err = col_dup(st, 1, &r->spec)) ||
            (err = col_dup(st, 2, &r->state)))
            sweep_row_free(r);
        else
            count++;
    }
    sqlite3_finalize(st);
    unlock(s);
    if (err == 1)
        err = next_token ? store_token_encode(out[count - 1].created, out[count - 1].id, next_token)
                         : 0;
    if (err) {
        for (int i = 0; i < count; i++)
            sweep_row_free(&out[i]);
        free(out);
        if (next_token)
            next_token[0] = 0;
        return err;
    }
    *rows = out;
    *n = count;
    return 0;
}

int store_sweep_points(store *s, const char *sweep_id,
                       int (*fn)(void *ctx, const char *config_hash, const char *state), void *ctx)
{
    if (!sweep_id || !fn)
        return vv_fail(VV_EINVAL, "store_sweep_points: bad arguments");
    lock(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT config_hash, state FROM runs WHERE sweep_id = ?1",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, sweep_id, -1, SQLITE_STATIC);
    int err = rc == SQLITE_OK ? 0 : db_err(s, rc, "reading a sweep's runs");
    while (!err && (err = step(s, st, "reading a sweep's runs")) == 1) {
        const char *h = (const char *)sqlite3_column_text(st, 0);
        const char *state = (const char *)sqlite3_column_text(st, 1);
        int ret = fn(ctx, h ? h : "", state ? state : "");
        if (ret != 0) {
            err = ret < 0 ? ret : 0;
            break;
        }
        err = 0;
    }
    sqlite3_finalize(st);
    unlock(s);
    return err < 0 ? err : 0;
}

int store_sweep_deleted(store *s, const char *sweep_id,
                        int (*fn)(void *ctx, const char *run_id, const char *config_hash,
                                  const char *state, const char *spec, const char *result,
                                  double deleted),
                        void *ctx)
{
    if (!sweep_id || !fn)
        return vv_fail(VV_EINVAL, "store_sweep_deleted: bad arguments");
    lock(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT run_id, config_hash, state, spec, result, deleted "
                                "FROM sweep_deleted WHERE sweep_id = ?1 ORDER BY deleted, run_id",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, sweep_id, -1, SQLITE_STATIC);
    int err = rc == SQLITE_OK ? 0 : db_err(s, rc, "reading a sweep's deleted runs");
    while (!err && (err = step(s, st, "reading a sweep's deleted runs")) == 1) {
        const char *t[5];
        for (int i = 0; i < 5; i++)
            t[i] = (const char *)sqlite3_column_text(st, i);
        int ret = fn(ctx, t[0] ? t[0] : "", t[1] ? t[1] : "", t[2] ? t[2] : "", t[3] ? t[3] : "",
                     t[4], sqlite3_column_double(st, 5));
        if (ret != 0) {
            err = ret < 0 ? ret : 0;
            break;
        }
        err = 0;
    }
    sqlite3_finalize(st);
    unlock(s);
    return err < 0 ? err : 0;
}

/* ---- external runs ------------------------------------------------------------- */

int store_run_insert_external(store *s, const char *id, const char *kind, const char *spec,
                              const char *sweep_id, const char *config_hash, double now)
{
    if (!id || !kind || !spec)
        return vv_fail(VV_EINVAL, "store_run_insert_external: id, kind and spec are required");
    lock(s);
    int err = begin(s);
    if (!err) {
        err = exec_q(s, Q_RUN_INSERT, "inserting a run", "tttttd", id, kind, spec, sweep_id,
                     config_hash, now);
        if (!err)
            err = exec_texts(s, "UPDATE runs SET runner = 'external' WHERE id = ?1",
                             "inserting a run", 1, &id);
        err = finish(s, err);
    }
    if (err == VV_ECONFLICT)
        err = vv_fail(VV_ECONFLICT, "run %s (or its sweep point) already exists", id);
    unlock(s);
    return err;
}

int store_run_claim(store *s, const char *id, const char *where, double now)
{
    if (!id || !where)
        return vv_fail(VV_EINVAL, "store_run_claim: NULL argument");
    lock(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "UPDATE runs SET state = 'RUNNING', runner = ?2, started = ?3, "
                                "heartbeat = ?3 WHERE id = ?1 AND runner IS NOT NULL AND "
                                "state = 'QUEUED'",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, where, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(st, 3, now);
    int err = rc == SQLITE_OK ? step(s, st, "claiming a run") : db_err(s, rc, "claiming a run");
    int changed = err == 0 ? sqlite3_changes(s->db) : 0;
    sqlite3_finalize(st);
    if (err == 0 && !changed) {
        sqlite3_stmt *q;
        err = bound(s, Q_RUN_GET, &q, "reading a run", "t", id);
        if (!err) {
            run_row r;
            err = step(s, q, "reading a run");
            if (err == 0) {
                err = vv_fail(VV_ENOTFOUND, "run %s does not exist", id);
            } else if (err == 1 && (err = read_run(q, &r)) == 0) {
                err = !r.runner ? vv_fail(VV_ESTATE, "run %s is run by this daemon, not by a "
                                                     "worker", id)
                                : vv_fail(VV_ESTATE, "run %s is %s (runner: %s), not QUEUED", id,
                                          r.state, r.runner);
                run_row_free(&r);
            }
            reset(q);
        }
    }
    unlock(s);
    return err < 0 ? err : 0;
}

int store_run_ext_seq(store *s, const char *id, int64_t seq, double now)
{
    lock(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "UPDATE runs SET ext_seq = MAX(ext_seq, ?2), heartbeat = ?3 "
                                "WHERE id = ?1",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(st, 3, now);
    int err = rc == SQLITE_OK ? step(s, st, "recording a worker's events")
                              : db_err(s, rc, "recording a worker's events");
    sqlite3_finalize(st);
    unlock(s);
    return err < 0 ? err : 0;
}
