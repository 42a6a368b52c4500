-- 001_init.sql - vvd's first schema: runs, their events and metrics, sweeps
-- and artifacts.  Applied by store_open inside one transaction, after which
-- PRAGMA user_version is 1.  Times are seconds since the Unix epoch (REAL);
-- JSON columns hold the texts exactly as the daemon gave them.

-- A sweep: one request expanded into many runs.
CREATE TABLE sweeps (
    id      TEXT PRIMARY KEY NOT NULL,            -- "s-000001"
    spec    TEXT NOT NULL,                        -- the sweep request, JSON
    state   TEXT NOT NULL DEFAULT 'ACTIVE'
            CHECK (state IN ('ACTIVE', 'STOPPED', 'FINISHED')),
    created REAL NOT NULL
);

-- A run.  started/finished/heartbeat are NULL until they happen.  sweep_id
-- is deliberately not a foreign key, so that runs can be recorded in any
-- order relative to their sweep.  UNIQUE (sweep_id, config_hash) keeps one
-- run per point of a sweep; NULLs never collide in SQLite, so runs outside
-- sweeps (both NULL) are unconstrained.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY NOT NULL,        -- "r-000042"
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'QUEUED'
                CHECK (state IN ('QUEUED', 'RUNNING', 'FINISHED',
                                 'STOPPED', 'FAILED', 'CRASHED')),
    stop_reason TEXT,
    spec        TEXT NOT NULL,                    -- JSON
    result      TEXT,                             -- JSON
    error       TEXT,                             -- problem object, JSON
    sweep_id    TEXT,
    config_hash TEXT,
    created     REAL NOT NULL,
    started     REAL,
    finished    REAL,
    heartbeat   REAL,
    last_seq    INTEGER NOT NULL DEFAULT 0,       -- highest event seq stored
    UNIQUE (sweep_id, config_hash)
);

CREATE INDEX runs_state ON runs (state);
CREATE INDEX runs_sweep ON runs (sweep_id);
-- Listing pages newest first by (created DESC, id DESC).
CREATE INDEX runs_created ON runs (created, id);

-- The event stream of a run (SSE ids are seq).
CREATE TABLE events (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    type   TEXT NOT NULL,                         -- metric, state or log
    data   TEXT NOT NULL,                         -- JSON object
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Metric points.  value and time may be NULL, which stands for NaN (SQLite
-- stores a bound NaN as NULL).
CREATE TABLE metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step   INTEGER NOT NULL,
    key    TEXT NOT NULL,
    value  REAL,
    time   REAL
);

CREATE INDEX metrics_run_key_step ON metrics (run_id, key, step);
CREATE INDEX metrics_run_step ON metrics (run_id, step);

-- Files a run produced; a name is unique per run.
CREATE TABLE artifacts (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    path   TEXT NOT NULL,
    bytes  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
