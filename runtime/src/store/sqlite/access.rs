//! The access tables: `principals`, `group_members`, `tokens`, `job_acl`, `run_identities` and
//! the append-only `audit_log`.

use super::SqliteStore;
use crate::store::{
    AccessStore, AclEntry, AuditEntry, AuditFilter, JobId, Millis, PermissionLevel, PrincipalKind,
    PrincipalRecord, RunId, StoreError, StoreResult, TokenRecord,
};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

fn kind_of(name: &str, text: &str) -> StoreResult<PrincipalKind> {
    PrincipalKind::parse(text)
        .ok_or_else(|| StoreError::Backend(format!("corrupt kind {text:?} of principal {name:?}")))
}

fn kind(conn: &Connection, name: &str) -> StoreResult<Option<PrincipalKind>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT kind FROM principals WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    text.map(|t| kind_of(name, &t)).transpose()
}

fn groups_of(conn: &Connection, name: &str) -> StoreResult<Vec<String>> {
    let mut st =
        conn.prepare_cached("SELECT group_name FROM group_members WHERE member = ?1 ORDER BY 1")?;
    let rows = st.query_map([name], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn principal(conn: &Connection, name: &str) -> StoreResult<Option<PrincipalRecord>> {
    let row: Option<(String, Millis)> = conn
        .prepare_cached("SELECT kind, created_time FROM principals WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((kind, created_time)) = row else {
        return Ok(None);
    };
    Ok(Some(PrincipalRecord {
        name: name.to_string(),
        kind: kind_of(name, &kind)?,
        created_time,
        groups: groups_of(conn, name)?,
    }))
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        token_id: row.get(0)?,
        principal: row.get(1)?,
        hash: row.get(2)?,
        comment: row.get(3)?,
        created_time: row.get(4)?,
        expiry_time: row.get(5)?,
        revoked_time: row.get(6)?,
    })
}

const TOKEN_COLUMNS: &str =
    "token_id, principal, hash, comment, created_time, expiry_time, revoked_time";

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: row.get(0)?,
        time: row.get(1)?,
        principal: row.get(2)?,
        action: row.get(3)?,
        target: row.get(4)?,
        source: row.get(5)?,
        outcome: row.get(6)?,
        detail: row.get(7)?,
    })
}

fn list_audit(conn: &Connection, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut add = |sql: &str, v: Value| {
        values.push(v);
        conditions.push(sql.replace('?', &format!("?{}", values.len())));
    };
    if let Some(p) = &filter.principal {
        add("principal = ?", p.clone().into());
    }
    if let Some(a) = &filter.action {
        // Every `?` of a condition is its one parameter.
        add("substr(action, 1, length(?)) = ?", a.clone().into());
    }
    if let Some(t) = &filter.target {
        add("target = ?", t.clone().into());
    }
    if let Some(s) = filter.since {
        add("time >= ?", s.into());
    }
    if let Some(u) = filter.until {
        add("time <= ?", u.into());
    }
    if let Some(b) = filter.before_seq {
        add("seq < ?", b.into());
    }
    let limit = match filter.limit {
        0 => 100,
        n => n.min(10_000),
    };
    values.push(i64::from(limit).into());
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT seq, time, principal, action, target, source, outcome, detail FROM audit_log{where_clause} ORDER BY seq DESC LIMIT ?{}",
        values.len()
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(params_from_iter(values), audit_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records who a run runs as and who created it.
pub(super) fn put_run_identity(
    conn: &Connection,
    run_id: RunId,
    run_as: &str,
    creator: &str,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO run_identities (run_id, run_as, creator) VALUES (?1, ?2, ?3)
         ON CONFLICT (run_id) DO NOTHING",
    )?
    .execute(params![run_id, run_as, creator])?;
    Ok(())
}

/// Who a run runs as and who created it.
pub(super) fn get_run_identity(
    conn: &Connection,
    run_id: RunId,
) -> StoreResult<Option<(String, String)>> {
    Ok(conn
        .prepare_cached("SELECT run_as, creator FROM run_identities WHERE run_id = ?1")?
        .query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Removes a deleted job's permissions.
pub(super) fn delete_job_acl(conn: &Connection, job_id: JobId) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM job_acl WHERE job_id = ?1")?
        .execute([job_id])?;
    Ok(())
}

#[async_trait]
impl AccessStore for SqliteStore {
    async fn create_principal(
        &self,
        name: &str,
        kind: PrincipalKind,
        now: Millis,
    ) -> StoreResult<()> {
        let name = name.to_string();
        self.writer
            .call("create_principal", move |c| {
                if let Some(existing) = self::kind(c, &name)? {
                    return Err(StoreError::Conflict(format!(
                        "a principal named `{name}` already exists ({})",
                        existing.as_str()
                    )));
                }
                c.prepare_cached(
                    "INSERT INTO principals (name, kind, created_time) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![name, kind.as_str(), now])?;
                Ok(())
            })
            .await
    }

    async fn get_principal(&self, name: &str) -> StoreResult<Option<PrincipalRecord>> {
        let name = name.to_string();
        self.readers
            .call("get_principal", move |c| principal(c, &name))
            .await
    }

    async fn list_principals(&self) -> StoreResult<Vec<PrincipalRecord>> {
        self.readers
            .call("list_principals", |c| {
                let names: Vec<String> = c
                    .prepare_cached("SELECT name FROM principals ORDER BY name")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                names
                    .iter()
                    .filter_map(|n| principal(c, n).transpose())
                    .collect()
            })
            .await
    }

    async fn delete_principal(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.writer
            .call("delete_principal", move |c| {
                let changed = c
                    .prepare_cached("DELETE FROM principals WHERE name = ?1")?
                    .execute([&name])?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("principal `{name}`")));
                }
                Ok(())
            })
            .await
    }

    async fn add_member(&self, group: &str, member: &str) -> StoreResult<()> {
        let (group, member) = (group.to_string(), member.to_string());
        self.writer
            .call("add_member", move |c| {
                match self::kind(c, &group)? {
                    None => return Err(StoreError::NotFound(format!("group `{group}`"))),
                    Some(PrincipalKind::Group) => {}
                    Some(k) => {
                        return Err(StoreError::InvalidState(format!(
                            "`{group}` is a {}, not a group",
                            k.as_str()
                        )));
                    }
                }
                match self::kind(c, &member)? {
                    None => return Err(StoreError::NotFound(format!("principal `{member}`"))),
                    Some(PrincipalKind::Group) => {
                        return Err(StoreError::InvalidState(format!(
                            "`{member}` is a group; groups hold users and service principals"
                        )));
                    }
                    Some(_) => {}
                }
                c.prepare_cached(
                    "INSERT INTO group_members (group_name, member) VALUES (?1, ?2)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![group, member])?;
                Ok(())
            })
            .await
    }

    async fn remove_member(&self, group: &str, member: &str) -> StoreResult<()> {
        let (group, member) = (group.to_string(), member.to_string());
        self.writer
            .call("remove_member", move |c| {
                let changed = c
                    .prepare_cached(
                        "DELETE FROM group_members WHERE group_name = ?1 AND member = ?2",
                    )?
                    .execute(params![group, member])?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!(
                        "membership of `{member}` in group `{group}`"
                    )));
                }
                Ok(())
            })
            .await
    }

    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let t = token.clone();
        self.writer
            .call("create_token", move |c| {
                if self::kind(c, &t.principal)?.is_none() {
                    return Err(StoreError::NotFound(format!("principal `{}`", t.principal)));
                }
                c.prepare_cached(&format!(
                    "INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ))?
                .execute(params![
                    t.token_id,
                    t.principal,
                    t.hash,
                    t.comment,
                    t.created_time,
                    t.expiry_time,
                    t.revoked_time
                ])?;
                Ok(())
            })
            .await
    }

    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let hash = hash.to_string();
        self.readers
            .call("find_token", move |c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1"
                ))?
                .query_row([hash], token_from_row)
                .optional()?)
            })
            .await
    }

    async fn list_tokens(&self, principal: Option<&str>) -> StoreResult<Vec<TokenRecord>> {
        let principal = principal.map(str::to_string);
        self.readers
            .call("list_tokens", move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE ?1 IS NULL OR principal = ?1
                     ORDER BY created_time DESC, token_id"
                ))?;
                let rows = st.query_map([principal], token_from_row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn revoke_token(&self, token_id: &str, now: Millis) -> StoreResult<()> {
        let token_id = token_id.to_string();
        self.writer
            .call("revoke_token", move |c| {
                let exists: bool = c
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM tokens WHERE token_id = ?1)")?
                    .query_row([&token_id], |r| r.get(0))?;
                if !exists {
                    return Err(StoreError::NotFound(format!("token {token_id}")));
                }
                c.prepare_cached(
                    "UPDATE tokens SET revoked_time = ?2 WHERE token_id = ?1 AND revoked_time IS NULL",
                )?
                .execute(params![token_id, now])?;
                Ok(())
            })
            .await
    }

    async fn get_job_acl(&self, job_id: JobId) -> StoreResult<Vec<AclEntry>> {
        self.readers
            .call("get_job_acl", move |c| {
                let mut st = c.prepare_cached(
                    "SELECT principal, level FROM job_acl WHERE job_id = ?1 ORDER BY principal",
                )?;
                let rows: Vec<(String, String)> = st
                    .query_map([job_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                rows.into_iter()
                    .map(|(principal, level)| {
                        let level = PermissionLevel::parse(&level).ok_or_else(|| {
                            StoreError::Backend(format!(
                                "corrupt permission level {level:?} of job {job_id}"
                            ))
                        })?;
                        Ok(AclEntry { principal, level })
                    })
                    .collect()
            })
            .await
    }

    async fn put_job_acl(&self, job_id: JobId, acl: &[AclEntry]) -> StoreResult<()> {
        let acl = acl.to_vec();
        self.writer
            .call("put_job_acl", move |c| {
                for e in &acl {
                    if self::kind(c, &e.principal)?.is_none() {
                        return Err(StoreError::NotFound(format!("principal `{}`", e.principal)));
                    }
                }
                delete_job_acl(c, job_id)?;
                let mut st = c.prepare_cached(
                    "INSERT INTO job_acl (job_id, principal, level) VALUES (?1, ?2, ?3)
                     ON CONFLICT (job_id, principal) DO UPDATE SET level = excluded.level",
                )?;
                for e in &acl {
                    st.execute(params![job_id, e.principal, e.level.as_str()])?;
                }
                Ok(())
            })
            .await
    }

    async fn jobs_visible_to(&self, principals: &[String]) -> StoreResult<Vec<JobId>> {
        let principals = principals.to_vec();
        self.readers
            .call("jobs_visible_to", move |c| {
                if principals.is_empty() {
                    return Ok(vec![]);
                }
                let marks: Vec<String> = (1..=principals.len()).map(|i| format!("?{i}")).collect();
                let sql = format!(
                    "SELECT DISTINCT job_id FROM job_acl WHERE principal IN ({}) ORDER BY job_id",
                    marks.join(", ")
                );
                let mut st = c.prepare(&sql)?;
                let rows = st.query_map(params_from_iter(principals), |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn put_run_identity(
        &self,
        run_id: RunId,
        run_as: &str,
        creator: &str,
    ) -> StoreResult<()> {
        let (run_as, creator) = (run_as.to_string(), creator.to_string());
        self.writer
            .call("put_run_identity", move |c| {
                put_run_identity(c, run_id, &run_as, &creator)
            })
            .await
    }

    async fn get_run_identity(&self, run_id: RunId) -> StoreResult<Option<(String, String)>> {
        self.readers
            .call("get_run_identity", move |c| get_run_identity(c, run_id))
            .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64> {
        let e = entry.clone();
        self.writer
            .call("append_audit", move |c| {
                c.prepare_cached(
                    "INSERT INTO audit_log (time, principal, action, target, source, outcome, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    e.time,
                    e.principal,
                    e.action,
                    e.target,
                    e.source,
                    e.outcome,
                    e.detail
                ])?;
                Ok(c.last_insert_rowid())
            })
            .await
    }

    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let filter = filter.clone();
        self.readers
            .call("list_audit", move |c| list_audit(c, &filter))
            .await
    }
}
