//! Bearer-token authentication: a token names a principal; the request carries the [`Caller`].
//!
//! Tokens are random (`weir_` and 64 hex digits); the store keeps only their SHA-256. The node's
//! admin token (`<data-dir>/admin-token`) belongs to the `admin` user of the `admins` group: the
//! node that initialises a state store registers it there, so it works on every node sharing
//! the store until it is rotated.

use super::AppState;
use super::error::ApiError;
use crate::store::{ADMIN, ADMINS, Millis, PrincipalKind, Store, StoreError, TokenRecord};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;

/// The token id of the admin token registered at store initialisation.
pub const ADMIN_TOKEN_ID: &str = "admin";

/// Who is calling: the principal its token names, its groups, and where the call comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Principal name.
    pub name: String,
    /// What the principal is.
    pub kind: PrincipalKind,
    /// Its groups.
    pub groups: Vec<String>,
    /// The token it used.
    pub token_id: String,
    /// The client's address (`ip:port`), empty when unknown.
    pub source: String,
}

impl Caller {
    /// Whether the caller is in the `admins` group.
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == ADMINS)
    }

    /// The caller and its groups: the names permissions are granted to.
    pub fn identities(&self) -> Vec<String> {
        let mut out = vec![self.name.clone()];
        out.extend(self.groups.iter().cloned());
        out
    }
}

/// Hex SHA-256 of a token: what the store keeps.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    hex::encode(buf)
}

/// A new token and its record (not stored yet).
pub fn new_token(
    principal: &str,
    comment: &str,
    now: Millis,
    lifetime_seconds: Option<u64>,
) -> (String, TokenRecord) {
    let token = format!("weir_{}", random_hex(32));
    let record = TokenRecord {
        token_id: random_hex(8),
        principal: principal.to_string(),
        hash: hash_token(&token),
        comment: comment.to_string(),
        created_time: now,
        expiry_time: lifetime_seconds
            .map(|s| now.saturating_add(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX))),
        revoked_time: None,
    };
    (token, record)
}

/// What [`bootstrap`] found about the node's admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminToken {
    /// The store was new to principals: the file's token is now the admin token.
    Registered,
    /// The file's token is a valid token of the store.
    Valid,
    /// The file's token is not valid for this store (rotated on another node, revoked,
    /// or from another store).
    Stale,
}

/// Makes sure the `admins` group and the `admin` user exist, and registers `admin_token` as
/// the admin's token when the store has never had one.
pub async fn bootstrap(
    store: &Arc<dyn Store>,
    admin_token: &str,
    now: Millis,
) -> Result<AdminToken, StoreError> {
    for (name, kind) in [(ADMINS, PrincipalKind::Group), (ADMIN, PrincipalKind::User)] {
        match store.create_principal(name, kind, now).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    store.add_member(ADMINS, ADMIN).await?;
    let hash = hash_token(admin_token);
    if let Some(t) = store.find_token(&hash).await? {
        return Ok(if t.is_valid(now) {
            AdminToken::Valid
        } else {
            AdminToken::Stale
        });
    }
    let ever = store.list_tokens(Some(ADMIN)).await?;
    if ever.iter().any(|t| t.token_id == ADMIN_TOKEN_ID) {
        return Ok(AdminToken::Stale);
    }
    let record = TokenRecord {
        token_id: ADMIN_TOKEN_ID.into(),
        principal: ADMIN.into(),
        hash,
        comment: "the node's admin token (<data-dir>/admin-token)".into(),
        created_time: now,
        expiry_time: None,
        revoked_time: None,
    };
    match store.create_token(&record).await {
        Ok(()) => Ok(AdminToken::Registered),
        // Another node registered its token first.
        Err(StoreError::Backend(_)) => Ok(AdminToken::Stale),
        Err(e) => Err(e),
    }
}

/// Looks a bearer token up: the caller, or why not.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    source: String,
) -> Result<Caller, ApiError> {
    let store = state.engine.store();
    let now = state.engine.now();
    let record = store
        .find_token(&hash_token(token))
        .await?
        .ok_or_else(|| ApiError::unauthenticated("invalid access token"))?;
    if record.revoked_time.is_some() {
        return Err(ApiError::unauthenticated(format!(
            "access token {} was revoked",
            record.token_id
        )));
    }
    if record.expiry_time.is_some_and(|e| now >= e) {
        return Err(ApiError::unauthenticated(format!(
            "access token {} expired at {}",
            record.token_id,
            crate::api::render::iso_time(record.expiry_time.unwrap_or_default())
        )));
    }
    let principal = store
        .get_principal(&record.principal)
        .await?
        .ok_or_else(|| {
            ApiError::unauthenticated(format!(
                "access token {}: its principal `{}` no longer exists",
                record.token_id, record.principal
            ))
        })?;
    Ok(Caller {
        name: principal.name,
        kind: principal.kind,
        groups: principal.groups,
        token_id: record.token_id,
        source,
    })
}

/// Middleware: refuses requests without a valid `Authorization: Bearer <token>`, and gives the
/// others their [`Caller`].
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let result = match header.and_then(|h| h.strip_prefix("Bearer ")) {
        None => Err(ApiError::unauthenticated(
            "missing bearer token: send `Authorization: Bearer <token>` (the admin token is in <data-dir>/admin-token)",
        )),
        Some(token) => authenticate(&state, token.trim(), source.clone()).await,
    };
    match result {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            super::audit::record_unauthenticated(
                &state,
                req.method(),
                req.uri().path(),
                &source,
                &e.message,
            )
            .await;
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_hashes() {
        let (a, ra) = new_token("alice", "ci", 1_000, Some(60));
        let (b, _) = new_token("alice", "ci", 1_000, None);
        assert_ne!(a, b);
        assert!(a.starts_with("weir_") && a.len() == 69, "{a}");
        assert_eq!(ra.hash, hash_token(&a));
        assert!(!ra.hash.contains(&a[5..]));
        assert_eq!(ra.expiry_time, Some(61_000));
        assert!(ra.is_valid(60_999));
        assert!(!ra.is_valid(61_000));
    }
}
