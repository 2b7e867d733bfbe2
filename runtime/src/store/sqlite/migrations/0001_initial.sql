-- Schema version 1 of Weir's embedded state.

-- One id space for job runs and task runs, as in the Jobs API.
CREATE TABLE run_id_sequence (
    next_id INTEGER NOT NULL
);
INSERT INTO run_id_sequence (next_id) VALUES (1);

CREATE TABLE jobs (
    job_id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL,
    created_time        INTEGER NOT NULL,
    settings            TEXT    NOT NULL,
    -- Copied out of `settings` for admission in claim_runs.
    max_concurrent_runs INTEGER NOT NULL,
    queue_enabled       INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_by_name ON jobs (name);

CREATE TABLE module_blobs (
    digest       TEXT    PRIMARY KEY,
    size         INTEGER NOT NULL,
    created_time INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE module_versions (
    name         TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    digest       TEXT    NOT NULL REFERENCES module_blobs (digest),
    created_time INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;

-- job_id has no foreign key: deleting a job keeps its runs in the history.
CREATE TABLE runs (
    run_id                INTEGER PRIMARY KEY,
    job_id                INTEGER,
    run_name              TEXT    NOT NULL,
    life_cycle_state      TEXT    NOT NULL,
    result_state          TEXT,
    state_message         TEXT    NOT NULL,
    trigger_type          TEXT    NOT NULL,
    trigger_info          TEXT    NOT NULL,
    job_parameters        TEXT    NOT NULL,
    overriding_parameters TEXT    NOT NULL,
    plan                  TEXT    NOT NULL,
    created_time          INTEGER NOT NULL,
    start_time            INTEGER,
    end_time              INTEGER,
    repair_history        TEXT    NOT NULL,
    cancel_requested      INTEGER NOT NULL,
    parent_run_id         INTEGER,
    parent_task_run_id    INTEGER,
    parent_depth          INTEGER,
    idempotency_token     TEXT,
    owner                 TEXT,
    lease_expires_at      INTEGER
);
CREATE INDEX runs_by_job_and_state ON runs (job_id, life_cycle_state);
CREATE INDEX runs_by_state ON runs (life_cycle_state);
CREATE INDEX runs_by_owner ON runs (owner);
CREATE UNIQUE INDEX runs_by_idempotency_token ON runs (idempotency_token);

CREATE TABLE task_runs (
    task_run_id      INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    task_key         TEXT    NOT NULL,
    attempt_number   INTEGER NOT NULL,
    repair_id        INTEGER NOT NULL,
    iteration_parent INTEGER,
    iteration_index  INTEGER,
    life_cycle_state TEXT    NOT NULL,
    result_state     TEXT,
    state_message    TEXT    NOT NULL,
    ready_time       INTEGER,
    start_time       INTEGER,
    end_time         INTEGER,
    retry_at         INTEGER,
    module_digest    TEXT,
    exit_code        INTEGER,
    outcome          TEXT,
    task_values      TEXT    NOT NULL,
    resolved         TEXT,
    child_run_id     INTEGER
);
CREATE INDEX task_runs_by_run ON task_runs (run_id);

CREATE TABLE task_logs (
    task_run_id INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    stdout      TEXT    NOT NULL,
    stderr      TEXT    NOT NULL,
    truncated   INTEGER NOT NULL
);
CREATE INDEX task_logs_by_run ON task_logs (run_id);

-- The outbox of run state changes, written in the transaction of the change.
CREATE TABLE run_events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           INTEGER NOT NULL,
    job_id           INTEGER,
    life_cycle_state TEXT    NOT NULL,
    result_state     TEXT,
    time             INTEGER NOT NULL
);
