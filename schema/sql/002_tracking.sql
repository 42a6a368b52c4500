-- 002_tracking.sql - what users add to runs (a name, tags, notes) and the
-- record a sweep keeps of the runs deleted from it.

-- name: a label set through PATCH /v1/runs/{id}; NULL falls back to the
-- spec's "name".  tags: a JSON array of strings, sorted and unique.
ALTER TABLE runs ADD COLUMN name TEXT;
ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';

-- A run deleted from a sweep: what it was (its spec, state and summary), so
-- that the sweep still accounts for the point.
CREATE TABLE sweep_deleted (
    sweep_id    TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    config_hash TEXT,
    state       TEXT NOT NULL,
    spec        TEXT NOT NULL,                    -- JSON
    result      TEXT,                             -- JSON
    deleted     REAL NOT NULL,
    PRIMARY KEY (sweep_id, run_id)
) WITHOUT ROWID;
