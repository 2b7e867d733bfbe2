-- Schema version 2: durable trigger state.

-- One row per job with a trigger: where the trigger stands (kind-specific cursor), what it
-- fires next, its last error. Deleted with the job.
CREATE TABLE trigger_state (
    job_id          INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL,
    settings_hash   TEXT    NOT NULL,
    armed_time      INTEGER NOT NULL,
    cursor          TEXT    NOT NULL,
    next_fire_time  INTEGER,
    last_fire_time  INTEGER,
    last_run_id     INTEGER,
    last_error      TEXT,
    last_error_time INTEGER,
    updated_time    INTEGER NOT NULL
);

-- What a job's trigger has handled (files by path and version), written in the transaction of
-- the run that covers it.
CREATE TABLE trigger_seen (
    job_id      INTEGER NOT NULL,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    run_id      INTEGER,
    seen_time   INTEGER NOT NULL,
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;
