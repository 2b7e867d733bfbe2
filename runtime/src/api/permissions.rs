//! Job permissions: who may see, run and change a job, in the Databricks shape at
//! `/api/2.0/permissions/jobs/{job_id}` (GET, PUT, PATCH; `.../permissionLevels`).
//!
//! Levels, least first: `CAN_VIEW` (see the job and its runs), `CAN_MANAGE_RUN` (also run,
//! cancel, repair, delete runs), `CAN_MANAGE` (also change and delete the job and its
//! permissions), `IS_OWNER` (exactly one per job: a user or service principal; runs run as it).
//! Members of `admins` may do everything on every job. A job's creator is its owner.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::{Body, Shared, proto};
use crate::store::{ADMINS, AclEntry, JobId, JobRecord, PermissionLevel, PrincipalKind, RunRecord};
use axum::extract::Path;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

/// The level `caller` has on a job: the highest of its own and its groups' entries (`None`:
/// no access). Admins have `CAN_MANAGE` at least.
pub fn level_in(acl: &[AclEntry], caller: &Caller) -> Option<PermissionLevel> {
    let ids = caller.identities();
    let own = acl
        .iter()
        .filter(|e| ids.contains(&e.principal))
        .map(|e| e.level)
        .max();
    if caller.is_admin() {
        own.max(Some(PermissionLevel::CanManage))
    } else {
        own
    }
}

/// The job, if `caller` has at least `needed` on it; 404 for a job that does not exist, 403
/// naming the missing level otherwise.
pub async fn require_job(
    state: &super::AppState,
    caller: &Caller,
    job_id: JobId,
    needed: PermissionLevel,
) -> ApiResult<JobRecord> {
    let store = state.engine.store();
    let job = store
        .get_job(job_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {job_id} does not exist")))?;
    let acl = store.get_job_acl(job_id).await?;
    check(&acl, caller, needed, &format!("job {job_id}"))?;
    Ok(job)
}

fn check(acl: &[AclEntry], caller: &Caller, needed: PermissionLevel, what: &str) -> ApiResult<()> {
    match level_in(acl, caller) {
        Some(l) if l >= needed => Ok(()),
        have => Err(ApiError::forbidden(format!(
            "`{}` needs {} on {what}{}",
            caller.name,
            needed.as_str(),
            match have {
                Some(l) => format!(" (it has {})", l.as_str()),
                None => " (it has no permission on it)".into(),
            }
        ))),
    }
}

/// Checks that `caller` has at least `needed` on a run: on its job, or for a run without a
/// stored job (a submitted run, or one whose job was deleted), that it runs as or was created by
/// the caller or one of its groups.
pub async fn require_run(
    state: &super::AppState,
    caller: &Caller,
    run: &RunRecord,
    needed: PermissionLevel,
) -> ApiResult<()> {
    if caller.is_admin() {
        return Ok(());
    }
    let store = state.engine.store();
    let what = format!("run {}", run.run_id);
    if let Some(job_id) = run.job_id
        && store.get_job(job_id).await?.is_some()
    {
        let acl = store.get_job_acl(job_id).await?;
        return check(&acl, caller, needed, &format!("job {job_id} (of {what})"));
    }
    let ids = caller.identities();
    match store.get_run_identity(run.run_id).await? {
        Some((run_as, creator)) if ids.contains(&run_as) || ids.contains(&creator) => Ok(()),
        _ => Err(ApiError::forbidden(format!(
            "`{}` needs {} on {what}: only the principal that submitted it and admins may",
            caller.name,
            needed.as_str()
        ))),
    }
}

/// The owner of a job (`None` for a job created before permissions existed).
pub fn owner(acl: &[AclEntry]) -> Option<&str> {
    acl.iter()
        .find(|e| e.level == PermissionLevel::IsOwner)
        .map(|e| e.principal.as_str())
}

/// One entry of a request's `access_control_list`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRequest {
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    service_principal_name: Option<String>,
    permission_level: String,
}

/// Checks request entries against the principals they name: each names exactly one existing
/// principal of the kind its field says, with a known level; an owner is a user or service
/// principal.
pub async fn resolve(
    state: &super::AppState,
    entries: Vec<AclRequest>,
) -> ApiResult<Vec<AclEntry>> {
    let store = state.engine.store();
    let mut out: Vec<AclEntry> = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let at = format!("access_control_list[{i}]");
        let named: Vec<(String, PrincipalKind)> = [
            (e.user_name, PrincipalKind::User),
            (e.group_name, PrincipalKind::Group),
            (e.service_principal_name, PrincipalKind::ServicePrincipal),
        ]
        .into_iter()
        .filter_map(|(n, k)| n.map(|n| (n, k)))
        .collect();
        let [(name, kind)] = &named[..] else {
            return Err(ApiError::invalid(format!(
                "{at}: give exactly one of user_name, group_name, service_principal_name"
            )));
        };
        let level = PermissionLevel::parse(&e.permission_level).ok_or_else(|| {
            ApiError::invalid(format!(
                "{at}.permission_level: {:?} is not one of CAN_VIEW, CAN_MANAGE_RUN, CAN_MANAGE, IS_OWNER",
                e.permission_level
            ))
        })?;
        let found = store.get_principal(name).await?.ok_or_else(|| {
            ApiError::invalid(format!(
                "{at}: principal `{name}` does not exist (create it with `weir principals create`)"
            ))
        })?;
        if found.kind != *kind {
            return Err(ApiError::invalid(format!(
                "{at}: `{name}` is a {}, not a {}",
                found.kind.as_str(),
                kind.as_str()
            )));
        }
        if level == PermissionLevel::IsOwner && *kind == PrincipalKind::Group {
            return Err(ApiError::invalid(format!(
                "{at}: a group cannot own a job; IS_OWNER goes to a user or service principal"
            )));
        }
        if out.iter().any(|o| &o.principal == name) {
            return Err(ApiError::invalid(format!("{at}: `{name}` is listed twice")));
        }
        out.push(AclEntry {
            principal: name.clone(),
            level,
        });
    }
    Ok(out)
}

/// Exactly one owner: the one the entries name, or else the current one.
fn with_one_owner(mut acl: Vec<AclEntry>, current_owner: Option<&str>) -> ApiResult<Vec<AclEntry>> {
    let owners: Vec<&str> = acl
        .iter()
        .filter(|e| e.level == PermissionLevel::IsOwner)
        .map(|e| e.principal.as_str())
        .collect();
    match (owners.len(), current_owner) {
        (1, _) => Ok(acl),
        (0, Some(owner)) => {
            acl.retain(|e| e.principal != owner);
            acl.push(AclEntry {
                principal: owner.to_string(),
                level: PermissionLevel::IsOwner,
            });
            Ok(acl)
        }
        (0, None) => Err(ApiError::invalid(
            "access_control_list: the job has no owner; name one with IS_OWNER",
        )),
        _ => Err(ApiError::invalid(format!(
            "access_control_list: a job has exactly one IS_OWNER, got {}",
            owners.join(", ")
        ))),
    }
}

/// The permissions object of a job.
pub async fn render(state: &super::AppState, job_id: JobId) -> ApiResult<Value> {
    let store = state.engine.store();
    let acl = store.get_job_acl(job_id).await?;
    let mut list = Vec::new();
    for e in &acl {
        let kind = store
            .get_principal(&e.principal)
            .await?
            .map_or(PrincipalKind::User, |p| p.kind);
        let mut entry = json!({
            "display_name": e.principal,
            "all_permissions": [{"permission_level": e.level.as_str(), "inherited": false}],
        });
        entry[name_field(kind)] = json!(e.principal);
        list.push(entry);
    }
    list.push(json!({
        "group_name": ADMINS,
        "display_name": ADMINS,
        "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": true,
                             "inherited_from_object": ["/jobs/"]}],
    }));
    Ok(json!({
        "object_id": format!("/jobs/{job_id}"),
        "object_type": "job",
        "access_control_list": list,
    }))
}

fn name_field(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "user_name",
        PrincipalKind::Group => "group_name",
        PrincipalKind::ServicePrincipal => "service_principal_name",
    }
}

fn job_id_of(raw: &str) -> ApiResult<JobId> {
    proto::int64_of(&Value::String(raw.to_string()))
        .ok_or_else(|| ApiError::invalid(format!("job_id {raw:?} in the path is not a job id")))
}

/// `GET /api/2.0/permissions/jobs/{job_id}` (needs `CAN_MANAGE`).
pub async fn get(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Path(job_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let job_id = job_id_of(&job_id)?;
    require_job(&state, &caller, job_id, PermissionLevel::CanManage).await?;
    Ok(Json(render(&state, job_id).await?))
}

/// `GET /api/2.0/permissions/jobs/{job_id}/permissionLevels` (needs `CAN_VIEW`).
pub async fn levels(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Path(job_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let job_id = job_id_of(&job_id)?;
    require_job(&state, &caller, job_id, PermissionLevel::CanView).await?;
    let levels: Vec<Value> = PermissionLevel::ALL
        .iter()
        .map(|l| json!({"permission_level": l.as_str(), "description": l.description()}))
        .collect();
    Ok(Json(json!({"permission_levels": levels})))
}

/// Body of PUT and PATCH.
#[derive(Deserialize)]
struct AclBody {
    #[serde(default, deserialize_with = "proto::list")]
    access_control_list: Vec<AclRequest>,
}

async fn change(
    state: &super::AppState,
    caller: &Caller,
    job_id: JobId,
    body: &[u8],
    replace: bool,
) -> ApiResult<Value> {
    require_job(state, caller, job_id, PermissionLevel::CanManage).await?;
    let b: AclBody = proto::parse(body, &["access_control_list"])?;
    let requested = resolve(state, b.access_control_list).await?;
    let store = state.engine.store();
    let current = store.get_job_acl(job_id).await?;
    let current_owner = owner(&current).map(str::to_string);
    let next = if replace {
        requested
    } else {
        let new_owner = requested
            .iter()
            .any(|e| e.level == PermissionLevel::IsOwner);
        let mut merged: Vec<AclEntry> = current
            .into_iter()
            .filter(|c| !requested.iter().any(|r| r.principal == c.principal))
            // A new owner replaces the old one.
            .filter(|c| !(new_owner && c.level == PermissionLevel::IsOwner))
            .collect();
        merged.extend(requested);
        merged
    };
    let next = with_one_owner(next, current_owner.as_deref())?;
    store.put_job_acl(job_id, &next).await?;
    render(state, job_id).await
}

/// `PUT /api/2.0/permissions/jobs/{job_id}`: replaces the job's direct permissions (the owner
/// stays unless another is named).
pub async fn put(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Path(job_id): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let job_id = job_id_of(&job_id)?;
    Ok(Json(change(&state, &caller, job_id, &body, true).await?))
}

/// `PATCH /api/2.0/permissions/jobs/{job_id}`: adds or changes entries; an `IS_OWNER` entry
/// transfers ownership.
pub async fn patch(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Path(job_id): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let job_id = job_id_of(&job_id)?;
    Ok(Json(change(&state, &caller, job_id, &body, false).await?))
}

/// The access control list of a new job: the caller owns it, plus the entries of
/// `access_control_list` in the create request.
pub async fn initial_acl(
    state: &super::AppState,
    caller: &Caller,
    requested: Vec<AclRequest>,
) -> ApiResult<Vec<AclEntry>> {
    let requested = resolve(state, requested).await?;
    let mut acl: Vec<AclEntry> = requested
        .into_iter()
        .filter(|e| e.principal != caller.name)
        .collect();
    if acl.iter().any(|e| e.level == PermissionLevel::IsOwner) {
        return with_one_owner(acl, None);
    }
    acl.push(AclEntry {
        principal: caller.name.clone(),
        level: PermissionLevel::IsOwner,
    });
    Ok(acl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(name: &str, groups: &[&str]) -> Caller {
        Caller {
            name: name.into(),
            kind: PrincipalKind::User,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            token_id: "t".into(),
            source: String::new(),
        }
    }

    fn entry(p: &str, level: PermissionLevel) -> AclEntry {
        AclEntry {
            principal: p.into(),
            level,
        }
    }

    #[test]
    fn the_highest_level_of_the_caller_and_its_groups_counts() {
        let acl = vec![
            entry("alice", PermissionLevel::IsOwner),
            entry("bob", PermissionLevel::CanView),
            entry("ops", PermissionLevel::CanManageRun),
        ];
        assert_eq!(
            level_in(&acl, &caller("bob", &[])),
            Some(PermissionLevel::CanView)
        );
        assert_eq!(
            level_in(&acl, &caller("bob", &["ops"])),
            Some(PermissionLevel::CanManageRun)
        );
        assert_eq!(level_in(&acl, &caller("carol", &[])), None);
        assert_eq!(
            level_in(&acl, &caller("root", &[ADMINS])),
            Some(PermissionLevel::CanManage)
        );
        let e = check(
            &acl,
            &caller("bob", &[]),
            PermissionLevel::CanManageRun,
            "job 1",
        )
        .unwrap_err();
        assert_eq!(e.code, "PERMISSION_DENIED");
        assert_eq!(
            e.message,
            "`bob` needs CAN_MANAGE_RUN on job 1 (it has CAN_VIEW)"
        );
    }

    #[test]
    fn a_job_keeps_exactly_one_owner() {
        let acl = vec![entry("bob", PermissionLevel::CanView)];
        let kept = with_one_owner(acl.clone(), Some("alice")).unwrap();
        assert_eq!(owner(&kept), Some("alice"));
        let two = vec![
            entry("a", PermissionLevel::IsOwner),
            entry("b", PermissionLevel::IsOwner),
        ];
        assert!(
            with_one_owner(two, None)
                .unwrap_err()
                .message
                .contains("exactly one")
        );
        assert!(with_one_owner(acl, None).is_err());
    }
}
