-- Schema version 4 (the alerts migration): the alert outbox and its consumers' cursors.

-- How far each consumer of `run_events` has read (the alert planner is one), moved in the
-- transaction that records what it derived from the events.
CREATE TABLE event_cursors (
    consumer TEXT    PRIMARY KEY,
    seq      INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per notification to deliver: derived from a run event (or a health rule), with the
-- exact body to send, and its delivery state. `dedupe_key` makes deriving idempotent.
CREATE TABLE alerts (
    alert_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key        TEXT    NOT NULL UNIQUE,
    run_id            INTEGER NOT NULL,
    job_id            INTEGER,
    task_key          TEXT,
    event             TEXT    NOT NULL,
    channel           TEXT    NOT NULL,
    destination       TEXT    NOT NULL,
    payload           TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    next_attempt_time INTEGER NOT NULL,
    claim_owner       TEXT,
    claim_expires     INTEGER,
    created_time      INTEGER NOT NULL,
    updated_time      INTEGER NOT NULL
);
CREATE INDEX alerts_due ON alerts (status, next_attempt_time);
CREATE INDEX alerts_job ON alerts (job_id, alert_id);
