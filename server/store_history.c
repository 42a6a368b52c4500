/* store_history.c - the store's run listing, recovery, counters, events and
 * metrics (see store.c for the locking rules). */
#include "store_internal.h"

/* ---- page tokens --------------------------------------------------------------
 * A token is the 16 lowercase hex digits of the IEEE bits of the last row's
 * created, a '.', and the last row's id in unpadded base64url: at most 63
 * characters, so ids of up to 34 bytes fit. */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int store_token_encode(double created, const char *id, char *out)
{
    size_t n = strlen(id);
    if (17 + (4 * n + 2) / 3 + 1 > 64)
        return vv_fail(VV_EINTERNAL, "run id %s is too long for a page token", id);
    uint64_t bits;
    memcpy(&bits, &created, sizeof bits);
    int k = snprintf(out, 64, "%016" PRIx64 ".", bits);
    const unsigned char *p = (const unsigned char *)id;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        int chars = n - i >= 3 ? 4 : (int)(n - i) + 1;
        for (int j = 0; j < chars; j++)
            out[k++] = b64url[(v >> (18 - 6 * j)) & 63];
    }
    out[k] = 0;
    return 0;
}

/* Decodes a token into created and id (room for 64 bytes): 0, or -1 for a
 * malformed one. */
int store_token_decode(const char *tok, double *created, char *id)
{
    size_t len = strlen(tok), k = 0;
    if (len < 19 || len > 63 || tok[16] != '.' || (len - 17) % 4 == 1)
        return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 16; i++) {
        const char *h = strchr("0123456789abcdef", tok[i]);
        if (!h || !tok[i])
            return -1;
        bits = bits << 4 | (uint64_t)(h - "0123456789abcdef");
    }
    memcpy(created, &bits, sizeof bits);
    if (!isfinite(*created))
        return -1;
    uint32_t acc = 0;
    int nbits = 0;
    for (size_t i = 17; i < len; i++) {
        const char *c = strchr(b64url, tok[i]);
        if (!c)
            return -1;
        acc = acc << 6 | (uint32_t)(c - b64url);
        if ((nbits += 6) >= 8) {
            nbits -= 8;
            id[k] = (char)(acc >> nbits);
            acc &= (1u << nbits) - 1;
            if (id[k++] == 0)
                return -1;
        }
    }
    id[k] = 0;
    return acc == 0 ? 0 : -1; /* the unused low bits must be zero */
}

int store_runs_list(store *s, const char *state, const char *kind, const char *sweep_id,
                    int page_size, const char *page_token, run_row **rows, int *n, char *next_token)
{
    run_filter f = {.state = state, .kind = kind, .sweep_id = sweep_id};
    return store_runs_find(s, &f, page_size, page_token, rows, n, next_token);
}

/* An empty page_token is taken as none (the first page). */
int store_runs_find(store *s, const run_filter *f, int page_size, const char *page_token,
                    run_row **rows, int *n, char *next_token)
{
    if (!rows || !n || !f)
        return vv_fail(VV_EINVAL, "store_runs_find: NULL argument");
    *rows = NULL;
    *n = 0;
    if (next_token)
        next_token[0] = 0;
    if (page_size < 1 || page_size > 1000)
        return vv_fail(VV_EINVAL, "page_size %d is outside 1..1000", page_size);
    if (f->ntags < 0 || f->ntags > RUN_FILTER_MAX_TAGS)
        return vv_fail(VV_EINVAL, "at most %d tags in a filter", RUN_FILTER_MAX_TAGS);
    double after_created = 0;
    char after_id[64];
    int after = page_token && page_token[0];
    if (after && store_token_decode(page_token, &after_created, after_id) != 0)
        return vv_fail(VV_EINVAL, "malformed page_token");

    /* Parameters: ?1 state, ?2 kind, ?3 sweep, ?4 id, ?5 created, ?6 limit,
     * ?7 the search text, ?8... the tags. */
    const char *texts[5] = {f->state, f->kind, f->sweep_id, after ? after_id : NULL, f->q};
    char sql[2048];
    int len = snprintf(
        sql, sizeof sql, "SELECT " RUN_COLS " FROM runs WHERE 1%s%s%s%s%s",
        f->state ? " AND state = ?1" : "", f->kind ? " AND kind = ?2" : "",
        f->sweep_id ? " AND sweep_id = ?3" : "", after ? " AND (created, id) < (?5, ?4)" : "",
        f->q ? " AND instr(lower(id || ' ' || kind || ' ' || IFNULL(name, "
               "IFNULL(json_extract(spec, '$.name'), '')) || ' ' || tags), lower(?7)) > 0"
             : "");
    for (int i = 0; i < f->ntags; i++)
        len += snprintf(sql + len, sizeof sql - (size_t)len,
                        " AND EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE value = ?%d)", 8 + i);
    snprintf(sql + len, sizeof sql - (size_t)len, " ORDER BY created DESC, id DESC LIMIT ?6");
    run_row *out = calloc((size_t)page_size, sizeof *out);
    if (!out)
        return vv_fail(VV_ENOMEM, "out of memory listing runs");

    lock(s);
    sqlite3_stmt *st = NULL;
    int count = 0, err = 0;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    for (int i = 0; i < 5 && rc == SQLITE_OK; i++)
        if (texts[i])
            rc = sqlite3_bind_text(st, i < 4 ? i + 1 : 7, texts[i], -1, SQLITE_STATIC);
    for (int i = 0; i < f->ntags && rc == SQLITE_OK; i++)
        rc = sqlite3_bind_text(st, 8 + i, f->tags[i], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && after)
        rc = sqlite3_bind_double(st, 5, after_created);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 6, page_size + 1); /* one more tells whether more follow */
    err = rc == SQLITE_OK ? 0 : db_err(s, rc, "listing runs");
    while (!err && (err = step(s, st, "listing runs")) == 1) {
        if (count == page_size)
            break;
        if (!(err = read_run(st, &out[count])))
            count++;
    }
    sqlite3_finalize(st);
    unlock(s);

    if (err == 1) /* a row beyond the page */
        err = next_token ? store_token_encode(out[count - 1].created, out[count - 1].id, next_token)
                         : 0;
    if (err) {
        for (int i = 0; i < count; i++)
            run_row_free(&out[i]);
        free(out);
        if (next_token)
            next_token[0] = 0;
        return err;
    }
    *rows = out;
    *n = count;
    return 0;
}

/* ---- recovery and counters --------------------------------------------------- */

/* The body of store_recover, inside a transaction. */
static int recover_locked(store *s, double now, int *crashed, char ***ids, int *nids)
{
    int err = exec_q(s, Q_CRASH_EVENT, "ending crashed runs' event streams", "");
    if (!err)
        err = exec_q(s, Q_CRASH_SEQ, "ending crashed runs' event streams", "");
    if (!err)
        err = exec_q(s, Q_CRASH_RUNNING, "marking running runs crashed", "td", crashed_error, now);
    if (err)
        return err;
    *crashed = sqlite3_changes(s->db);
    sqlite3_stmt *st;
    if ((err = bound(s, Q_QUEUED, &st, "listing queued runs", "")))
        return err;
    int cap = 0;
    while ((err = step(s, st, "listing queued runs")) == 1) {
        if (*nids == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(*ids, (size_t)cap * sizeof *grown);
            if (!grown) {
                err = vv_fail(VV_ENOMEM, "out of memory listing queued runs");
                break;
            }
            *ids = grown;
        }
        if ((err = col_dup(st, 0, &(*ids)[*nids])))
            break;
        (*nids)++;
    }
    reset(st);
    return err;
}

int store_recover(store *s, double now, int *crashed, char ***queued, int *nqueued)
{
    if (!crashed || !queued || !nqueued)
        return vv_fail(VV_EINVAL, "store_recover: NULL output");
    *crashed = 0;
    *queued = NULL;
    *nqueued = 0;
    char **ids = NULL;
    int nids = 0, ncrashed = 0;
    lock(s);
    int err = begin(s);
    if (!err)
        err = finish(s, recover_locked(s, now, &ncrashed, &ids, &nids));
    unlock(s);
    if (err) {
        for (int i = 0; i < nids; i++)
            free(ids[i]);
        free(ids);
        return err;
    }
    *crashed = ncrashed;
    *queued = ids;
    *nqueued = nids;
    return 0;
}

int store_count_states(store *s, int64_t counts[6])
{
    memset(counts, 0, 6 * sizeof counts[0]);
    lock(s);
    sqlite3_stmt *st;
    int err = bound(s, Q_COUNT_STATES, &st, "counting runs", "");
    if (!err) {
        while ((err = step(s, st, "counting runs")) == 1) {
            const char *state = (const char *)sqlite3_column_text(st, 0);
            for (int i = 0; state && i < 6; i++)
                if (strcmp(state, run_states[i]) == 0)
                    counts[i] = sqlite3_column_int64(st, 1);
        }
        reset(st);
    }
    unlock(s);
    return err;
}

int store_max_ids(store *s, int64_t *max_run, int64_t *max_sweep)
{
    *max_run = 0;
    *max_sweep = 0;
    lock(s);
    sqlite3_stmt *st;
    int err = bound(s, Q_MAX_IDS, &st, "reading the largest ids", "");
    if (!err) {
        if ((err = step(s, st, "reading the largest ids")) == 1) {
            *max_run = sqlite3_column_int64(st, 0);
            *max_sweep = sqlite3_column_int64(st, 1);
        }
        reset(st);
    }
    unlock(s);
    return err < 0 ? err : 0;
}

/* ---- events and metrics -------------------------------------------------------- */

/* The body of store_append, inside a transaction. */
static int append_locked(store *s, const char *run_id, const event_row *ev, int nev,
                         const metric_row *m, int nm)
{
    sqlite3_stmt *st;
    int err = bound(s, Q_LAST_SEQ, &st, "reading last_seq", "t", run_id);
    if (err)
        return err;
    err = step(s, st, "reading last_seq");
    int64_t last = err == 1 ? sqlite3_column_int64(st, 0) : 0;
    reset(st);
    if (err == 0)
        return vv_fail(VV_ENOTFOUND, "run %s does not exist", run_id);
    if (err < 0)
        return err;
    if (nev > 0 && ev[0].seq <= last)
        return vv_fail(VV_ECONFLICT, "run %s: event seq %" PRId64 " is not above %" PRId64, run_id,
                       ev[0].seq, last);
    err = 0;
    for (int i = 0; i < nev && !err; i++)
        err = exec_q(s, Q_EVENT_INSERT, "inserting an event", "titt", run_id, ev[i].seq, ev[i].type,
                     ev[i].data);
    for (int i = 0; i < nm && !err; i++)
        err = exec_q(s, Q_METRIC_INSERT, "inserting a metric", "titdd", run_id, m[i].step, m[i].key,
                     m[i].value, m[i].time);
    if (nev > 0 && !err)
        err = exec_q(s, Q_SET_LAST_SEQ, "setting last_seq", "ti", run_id, ev[nev - 1].seq);
    return err;
}

int store_append(store *s, const char *run_id, const event_row *ev, int nev, const metric_row *m,
                 int nm)
{
    if (!run_id || nev < 0 || nm < 0 || (nev && !ev) || (nm && !m))
        return vv_fail(VV_EINVAL, "store_append: bad arguments");
    for (int i = 0; i < nev; i++) {
        if (!ev[i].type || !ev[i].data)
            return vv_fail(VV_EINVAL, "store_append: event %d lacks type or data", i);
        if (i > 0 && ev[i].seq <= ev[i - 1].seq)
            return vv_fail(VV_ECONFLICT, "run %s: event seq %" PRId64 " follows %" PRId64, run_id,
                           ev[i].seq, ev[i - 1].seq);
    }
    for (int i = 0; i < nm; i++)
        if (!m[i].key)
            return vv_fail(VV_EINVAL, "store_append: metric %d lacks a key", i);
    lock(s);
    int err = begin(s);
    if (!err)
        err = finish(s, append_locked(s, run_id, ev, nev, m, nm));
    unlock(s);
    return err;
}

int store_append_final(store *s, const char *run_id, const event_row *ev, int nev,
                       const metric_row *m, int nm, const char *state, const char *stop_reason,
                       const char *result, const char *error, double now)
{
    if (!run_id || !state || nev < 0 || nm < 0 || (nev && !ev) || (nm && !m))
        return vv_fail(VV_EINVAL, "store_append_final: bad arguments");
    for (int i = 0; i < nev; i++)
        if (!ev[i].type || !ev[i].data || (i > 0 && ev[i].seq <= ev[i - 1].seq))
            return vv_fail(VV_EINVAL, "store_append_final: event %d is malformed or out of order",
                           i);
    for (int i = 0; i < nm; i++)
        if (!m[i].key)
            return vv_fail(VV_EINVAL, "store_append_final: metric %d lacks a key", i);
    lock(s);
    int err = begin(s);
    if (!err) {
        int e2 = append_locked(s, run_id, ev, nev, m, nm);
        if (!e2)
            e2 = set_state_locked(s, run_id, state, stop_reason, result, error, now);
        err = finish(s, e2);
    }
    unlock(s);
    return err;
}

int store_events_after(store *s, const char *run_id, int64_t after_seq, int limit,
                       int (*fn)(void *ctx, int64_t seq, const char *type, const char *data),
                       void *ctx)
{
    if (!run_id || !fn || limit < 0)
        return vv_fail(VV_EINVAL, "store_events_after: bad arguments");
    lock(s);
    sqlite3_stmt *st;
    int err = run_exists(s, run_id);
    if (!err)
        err = bound(s, Q_EVENTS_AFTER, &st, "reading events", "tii", run_id, after_seq,
                    (int64_t)(limit ? limit : -1));
    if (!err) {
        /* err: 1 while a row is at hand, then 0, or < 0 for an error. */
        while (!err && (err = step(s, st, "reading events")) == 1) {
            const char *type = (const char *)sqlite3_column_text(st, 1);
            const char *data = (const char *)sqlite3_column_text(st, 2);
            int ret = type && data ? fn(ctx, sqlite3_column_int64(st, 0), type, data)
                                   : vv_fail(VV_ENOMEM, "out of memory reading events");
            err = ret < 0 ? ret : ret > 0; /* a positive answer stops with err 1 */
        }
        reset(st);
    }
    unlock(s);
    return err < 0 ? err : 0;
}

int store_metrics_get(store *s, const char *run_id, const char *const *keys, int nkeys,
                      int64_t after_step, int64_t limit,
                      int (*fn)(void *ctx, int64_t step, const char *key, double value,
                                double time),
                      void *ctx)
{
    if (!keys)
        nkeys = 0;
    if (!run_id || !fn || limit < 0 || nkeys < 0 || nkeys > 1000)
        return vv_fail(VV_EINVAL, "store_metrics_get: bad arguments");
    for (int i = 0; i < nkeys; i++)
        if (!keys[i])
            return vv_fail(VV_EINVAL, "store_metrics_get: NULL key");
    /* Parameters: ?1 run, ?2 step, ?3 limit, ?4... the keys. */
    size_t cap = 256 + 8 * (size_t)nkeys, len;
    char *sql = malloc(cap);
    if (!sql)
        return vv_fail(VV_ENOMEM, "out of memory reading metrics");
    len = (size_t)snprintf(sql, cap,
                           "SELECT step, key, value, time FROM metrics "
                           "WHERE run_id = ?1 AND step > ?2%s",
                           nkeys ? " AND key IN (" : "");
    for (int i = 0; i < nkeys; i++)
        len += (size_t)snprintf(sql + len, cap - len, "%s?%d", i ? "," : "", 4 + i);
    snprintf(sql + len, cap - len, "%s ORDER BY step, key, rowid LIMIT ?3", nkeys ? ")" : "");

    lock(s);
    sqlite3_stmt *st = NULL;
    int err = run_exists(s, run_id);
    if (!err) {
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 2, after_step);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 3, limit ? limit : -1);
        for (int i = 0; i < nkeys && rc == SQLITE_OK; i++)
            rc = sqlite3_bind_text(st, 4 + i, keys[i], -1, SQLITE_STATIC);
        err = rc == SQLITE_OK ? 0 : db_err(s, rc, "reading metrics");
    }
    while (!err && (err = step(s, st, "reading metrics")) == 1) {
        const char *key = (const char *)sqlite3_column_text(st, 1);
        int ret = key ? fn(ctx, sqlite3_column_int64(st, 0), key, col_real(st, 2), col_real(st, 3))
                      : vv_fail(VV_ENOMEM, "out of memory reading metrics");
        err = ret < 0 ? ret : ret > 0;
    }
    sqlite3_finalize(st);
    unlock(s);
    free(sql);
    return err < 0 ? err : 0;
}
