-- Access control: principals, tokens (hashes only), job permissions, run identities and the
-- append-only audit log.

CREATE TABLE principals (
    name         TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    created_time INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    member     TEXT NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, member)
) WITHOUT ROWID;
CREATE INDEX group_members_by_member ON group_members (member);

CREATE TABLE tokens (
    token_id     TEXT    PRIMARY KEY,
    principal    TEXT    NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    hash         TEXT    NOT NULL UNIQUE,
    comment      TEXT    NOT NULL,
    created_time INTEGER NOT NULL,
    expiry_time  INTEGER,
    revoked_time INTEGER
) WITHOUT ROWID;
CREATE INDEX tokens_by_principal ON tokens (principal);

-- No foreign key to jobs: a deleted job's entries are removed with it by the store.
CREATE TABLE job_acl (
    job_id    INTEGER NOT NULL,
    principal TEXT    NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    level     TEXT    NOT NULL,
    PRIMARY KEY (job_id, principal)
) WITHOUT ROWID;
CREATE INDEX job_acl_by_principal ON job_acl (principal);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    time      INTEGER NOT NULL,
    principal TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    source    TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    detail    TEXT    NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (time);

-- Append-only: the database itself refuses changes to the audit log.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Who a run runs as and who started it (runs created through the API).
CREATE TABLE run_identities (
    run_id  INTEGER PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
    run_as  TEXT    NOT NULL,
    creator TEXT    NOT NULL
);
CREATE INDEX run_identities_by_run_as ON run_identities (run_as);

-- Every run state change is on record too, in the transaction that makes it.
CREATE TRIGGER audit_run_events AFTER INSERT ON run_events
BEGIN
    INSERT INTO audit_log (time, principal, action, target, source, outcome, detail)
    VALUES (
        NEW.time,
        'system',
        'runs.state',
        'run:' || NEW.run_id,
        '',
        COALESCE(NEW.result_state, NEW.life_cycle_state),
        'life_cycle_state=' || NEW.life_cycle_state
            || COALESCE(' result_state=' || NEW.result_state, '')
            || COALESCE(' job_id=' || NEW.job_id, '')
    );
END;
