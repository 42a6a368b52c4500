-- 003_external.sql - runs that run elsewhere (`vvd run --report-to`: a Slurm
-- array task, a Kubernetes pod) and report their events to this daemon.

-- runner: NULL for a run of this daemon; 'external' for one that waits for
-- a worker; then where it runs ("host pid", and the scheduler's job).  A
-- start-up never crashes nor queues an external run: it runs elsewhere.
-- ext_seq: the last event number the worker sent that is applied (resent
-- events at or below it are skipped).
ALTER TABLE runs ADD COLUMN runner TEXT;
ALTER TABLE runs ADD COLUMN ext_seq INTEGER NOT NULL DEFAULT 0;
