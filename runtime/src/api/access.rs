//! `/api/weir/tokens` and `/api/weir/principals`: API tokens, users, groups and service
//! principals. Admins manage everything; any other principal creates, lists and revokes its own
//! tokens only.

use super::auth::{Caller, hash_token, new_token};
use super::error::{ApiError, ApiResult};
use super::{ApiQuery, Body, Shared, proto};
use crate::store::{ADMIN, ADMINS, PrincipalKind, PrincipalRecord, StoreError, TokenRecord};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use std::os::unix::fs::OpenOptionsExt as _;

fn require_admin(caller: &Caller, what: &str) -> ApiResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{what} needs membership in the `{ADMINS}` group; `{}` is not a member",
            caller.name
        )))
    }
}

/// A token's public description (never the token).
pub fn token_info(t: &TokenRecord, now: i64) -> Value {
    let state = if t.revoked_time.is_some() {
        "REVOKED"
    } else if !t.is_valid(now) {
        "EXPIRED"
    } else {
        "ACTIVE"
    };
    json!({
        "token_id": t.token_id,
        "principal": t.principal,
        "comment": t.comment,
        "creation_time": t.created_time,
        "expiry_time": t.expiry_time.unwrap_or(-1),
        "revoked_time": t.revoked_time,
        "state": state,
    })
}

fn principal_json(p: &PrincipalRecord) -> Value {
    json!({
        "name": p.name,
        "kind": p.kind.as_str(),
        "groups": p.groups,
        "created_time": p.created_time,
    })
}

/// Body of `POST /api/weir/tokens`.
#[derive(Deserialize)]
struct CreateToken {
    #[serde(default)]
    principal: Option<String>,
    #[serde(default, deserialize_with = "proto::opt_int64")]
    lifetime_seconds: Option<i64>,
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /api/weir/tokens`: a new token for a principal (an admin may name any principal, and a
/// missing one is created as a user; others get tokens for themselves). The token is in the
/// answer once and never again.
pub async fn create_token(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let b: CreateToken = proto::parse(&body, &["principal", "lifetime_seconds", "comment"])?;
    let principal = b.principal.unwrap_or_else(|| caller.name.clone());
    if principal != caller.name {
        require_admin(&caller, "creating a token for another principal")?;
    }
    let lifetime = match b.lifetime_seconds {
        None | Some(0) => None,
        Some(s) if s > 0 => Some(s as u64),
        Some(s) => {
            return Err(ApiError::invalid(format!(
                "lifetime_seconds must be positive (or 0 for no expiry), got {s}"
            )));
        }
    };
    validate_name(&principal, "principal")?;
    let store = state.engine.store();
    let now = state.engine.now();
    let mut created_principal = false;
    if store.get_principal(&principal).await?.is_none() {
        require_admin(&caller, "creating a principal")?;
        match store
            .create_principal(&principal, PrincipalKind::User, now)
            .await
        {
            Ok(()) => created_principal = true,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (token, record) = new_token(&principal, &b.comment.unwrap_or_default(), now, lifetime);
    store.create_token(&record).await?;
    Ok(Json(json!({
        "token_value": token,
        "token_info": token_info(&record, now),
        "principal_created": created_principal,
    })))
}

/// `?principal=` of `GET /api/weir/tokens`.
#[derive(Deserialize)]
pub struct ListTokens {
    #[serde(default)]
    principal: Option<String>,
}

/// `GET /api/weir/tokens`: an admin sees every token (or one principal's); others their own.
pub async fn list_tokens(
    state: Shared,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<ListTokens>,
) -> ApiResult<Json<Value>> {
    let principal = match (caller.is_admin(), q.principal) {
        (true, p) => p,
        (false, Some(p)) if p != caller.name => {
            return Err(ApiError::forbidden(format!(
                "listing the tokens of `{p}` needs membership in the `{ADMINS}` group"
            )));
        }
        (false, _) => Some(caller.name.clone()),
    };
    let now = state.engine.now();
    let tokens = state
        .engine
        .store()
        .list_tokens(principal.as_deref())
        .await?;
    let infos: Vec<Value> = tokens.iter().map(|t| token_info(t, now)).collect();
    Ok(Json(json!({"token_infos": infos})))
}

/// Body with a token id.
#[derive(Deserialize)]
struct TokenIdBody {
    token_id: String,
}

/// `POST /api/weir/tokens/revoke`: an admin revokes any token; others their own.
pub async fn revoke_token(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let b: TokenIdBody = proto::parse(&body, &["token_id"])?;
    let store = state.engine.store();
    if !caller.is_admin() {
        let own = store.list_tokens(Some(&caller.name)).await?;
        if !own.iter().any(|t| t.token_id == b.token_id) {
            return Err(ApiError::forbidden(format!(
                "revoking token {} needs membership in the `{ADMINS}` group (it is not a token of `{}`)",
                b.token_id, caller.name
            )));
        }
    }
    store.revoke_token(&b.token_id, state.engine.now()).await?;
    Ok(Json(json!({})))
}

/// `POST /api/weir/tokens/rotate-admin`: a new admin token replaces every other token of the
/// `admin` user; it is written to this node's `<data-dir>/admin-token` (mode 0600) and
/// returned once.
pub async fn rotate_admin(
    state: Shared,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    require_admin(&caller, "rotating the admin token")?;
    let store = state.engine.store();
    let now = state.engine.now();
    let (token, record) = new_token(ADMIN, "the node's admin token (rotated)", now, None);
    let path = state.data_dir.join("admin-token");
    let tmp = state.data_dir.join("admin-token.new");
    write_secret(&tmp, &token)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| ApiError::internal(format!("cannot write {}: {e}", path.display())))?;
    store.create_token(&record).await?;
    for old in store.list_tokens(Some(ADMIN)).await? {
        if old.token_id != record.token_id && old.revoked_time.is_none() {
            store.revoke_token(&old.token_id, now).await?;
        }
    }
    debug_assert_eq!(record.hash, hash_token(&token));
    Ok(Json(json!({
        "token_value": token,
        "token_info": token_info(&record, now),
        "path": path.display().to_string(),
    })))
}

fn write_secret(path: &std::path::Path, value: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(format!("{value}\n").as_bytes())?;
    f.sync_all()
}

/// Principal names: 1 to 128 characters, no control characters or whitespace at the ends.
fn validate_name(name: &str, what: &str) -> ApiResult<()> {
    if name.is_empty()
        || name.len() > 128
        || name.trim() != name
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(format!(
            "{what} {name:?}: a name is 1 to 128 characters, without control characters or surrounding spaces"
        )));
    }
    Ok(())
}

/// `GET /api/weir/principals`.
pub async fn list_principals(
    state: Shared,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    require_admin(&caller, "listing principals")?;
    let list = state.engine.store().list_principals().await?;
    Ok(Json(
        json!({"principals": list.iter().map(principal_json).collect::<Vec<_>>()}),
    ))
}

/// Body of `POST /api/weir/principals`.
#[derive(Deserialize)]
struct CreatePrincipal {
    name: String,
    #[serde(default)]
    kind: Option<String>,
}

/// `POST /api/weir/principals`: a user (default), group or service principal.
pub async fn create_principal(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    require_admin(&caller, "creating a principal")?;
    let b: CreatePrincipal = proto::parse(&body, &["name", "kind"])?;
    validate_name(&b.name, "name")?;
    let kind = match b.kind.as_deref() {
        None => PrincipalKind::User,
        Some(k) => PrincipalKind::parse(k).ok_or_else(|| {
            ApiError::invalid(format!(
                "kind {k:?} is not one of USER, GROUP, SERVICE_PRINCIPAL"
            ))
        })?,
    };
    let store = state.engine.store();
    store
        .create_principal(&b.name, kind, state.engine.now())
        .await?;
    let p = store
        .get_principal(&b.name)
        .await?
        .ok_or_else(|| ApiError::internal("the principal vanished"))?;
    Ok(Json(principal_json(&p)))
}

/// Body with a principal name.
#[derive(Deserialize)]
struct NameBody {
    name: String,
}

/// `POST /api/weir/principals/delete`: the principal, its tokens, memberships and permissions.
pub async fn delete_principal(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    require_admin(&caller, "deleting a principal")?;
    let b: NameBody = proto::parse(&body, &["name"])?;
    if b.name == ADMIN || b.name == ADMINS {
        return Err(ApiError::invalid(format!(
            "`{}` is built in and cannot be deleted",
            b.name
        )));
    }
    let store = state.engine.store();
    // A job keeps exactly one owner: the principal must not own one.
    let owned = owned_jobs(&state, &b.name).await?;
    if !owned.is_empty() {
        return Err(ApiError::invalid_state(format!(
            "`{}` owns jobs {}; give them another owner first (PATCH /api/2.0/permissions/jobs/<job_id>)",
            b.name,
            owned
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    store.delete_principal(&b.name).await?;
    Ok(Json(json!({})))
}

async fn owned_jobs(state: &super::AppState, name: &str) -> ApiResult<Vec<i64>> {
    let store = state.engine.store();
    let mut out = Vec::new();
    for job_id in store.jobs_visible_to(&[name.to_string()]).await? {
        let acl = store.get_job_acl(job_id).await?;
        if acl
            .iter()
            .any(|e| e.principal == name && e.level == crate::store::PermissionLevel::IsOwner)
        {
            out.push(job_id);
        }
    }
    Ok(out)
}

/// Body of the membership calls.
#[derive(Deserialize)]
struct MemberBody {
    group: String,
    member: String,
}

/// `POST /api/weir/principals/members/add`.
pub async fn add_member(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    require_admin(&caller, "changing group membership")?;
    let b: MemberBody = proto::parse(&body, &["group", "member"])?;
    state.engine.store().add_member(&b.group, &b.member).await?;
    Ok(Json(json!({})))
}

/// `POST /api/weir/principals/members/remove`.
pub async fn remove_member(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    require_admin(&caller, "changing group membership")?;
    let b: MemberBody = proto::parse(&body, &["group", "member"])?;
    if b.group == ADMINS && b.member == ADMIN {
        return Err(ApiError::invalid(
            "`admin` stays in `admins` (rotate its token instead)",
        ));
    }
    state
        .engine
        .store()
        .remove_member(&b.group, &b.member)
        .await?;
    Ok(Json(json!({})))
}
