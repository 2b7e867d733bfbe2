//! The audit log: every mutating API call (who, what, on what, from where, when, with which
//! outcome), refused ones included, and every run state change (recorded by the store in the
//! change's transaction); `GET /api/weir/audit` reads it.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::{ApiQuery, AppState, Shared};
use crate::store::{AuditEntry, AuditFilter};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The action of a call: `jobs.create`, `runs.cancel`, `permissions.patch`, `tokens.revoke`,
/// `modules.push`, ...
pub fn action(method: &Method, path: &str) -> String {
    let rest = path
        .strip_prefix("/api/")
        .map(|p| p.split_once('/').map_or(p, |(_, r)| r))
        .unwrap_or(path);
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["permissions", ..] => format!("permissions.{}", method.as_str().to_lowercase()),
        ["jobs", "runs", tail @ ..] => format!("runs.{}", tail.join(".")),
        [one] if method == Method::POST => match *one {
            "modules" => "modules.push".into(),
            other => format!("{other}.create"),
        },
        parts => parts.join("."),
    }
}

/// The target of a call, from its path, request body, query or answer.
fn target(path: &str, query: &str, request: &Value, answer: &Value) -> String {
    if let Some(rest) = path.split("/permissions/jobs/").nth(1) {
        return format!("job:{}", rest.split('/').next().unwrap_or_default());
    }
    let id = |v: &Value, k: &str| {
        v.get(k).and_then(|x| match x {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.clone()),
            _ => None,
        })
    };
    for (key, kind) in [("run_id", "run"), ("job_id", "job")] {
        if let Some(v) = id(request, key) {
            return format!("{kind}:{v}");
        }
    }
    if let Some(v) = id(request, "token_id") {
        return format!("token:{v}");
    }
    if let Some(v) = answer
        .pointer("/token_info/token_id")
        .and_then(Value::as_str)
    {
        return format!("token:{v}");
    }
    if let Some(v) = id(request, "group") {
        return format!("principal:{v}");
    }
    if let Some(v) = id(request, "name").filter(|_| path.contains("/principals")) {
        return format!("principal:{v}");
    }
    for (key, kind) in [("job_id", "job"), ("run_id", "run")] {
        if let Some(v) = id(answer, key) {
            return format!("{kind}:{v}");
        }
    }
    if path.ends_with("/modules")
        && let Some(name) = query.split('&').find_map(|kv| kv.strip_prefix("name="))
    {
        return format!("module:{name}");
    }
    String::new()
}

/// What else is worth keeping about a call (never a token or a request body).
fn detail(method: &Method, path: &str, request: &Value, answer: &Value) -> String {
    let mut d = format!("{method} {path}");
    if let Some(run_id) = answer
        .get("run_id")
        .filter(|_| request.get("run_id").is_none())
    {
        d.push_str(&format!(" run_id={run_id}"));
    }
    if let Some(r) = answer.get("repair_id") {
        d.push_str(&format!(" repair_id={r}"));
    }
    if let Some(m) = answer.get("message").and_then(Value::as_str) {
        d.push_str(": ");
        d.push_str(&m.chars().take(500).collect::<String>());
    }
    d
}

/// Appends an entry; a failure to write the audit log is logged, the call's answer stands.
pub async fn record(state: &AppState, entry: AuditEntry) {
    if let Err(e) = state.engine.store().append_audit(&entry).await {
        tracing::error!(error = %e, action = %entry.action, "weir.api.audit: cannot append to the audit log");
    }
}

/// Answers bigger than this are not read back for the audit target.
const ANSWER_LIMIT: usize = 1 << 20;

/// Middleware (after authentication): records every call that is not a GET.
pub async fn middleware(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let caller = req.extensions().get::<Caller>().cloned();
    let module = path.ends_with("/modules");
    let (parts, body) = req.into_parts();
    let limit = if module {
        state.max_module_bytes as usize + 1
    } else {
        state.max_request_bytes
    };
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let e = ApiError::too_large(super::too_large_message(&state, module));
            if let Some(c) = &caller {
                record(
                    &state,
                    entry(
                        &state,
                        c,
                        &method,
                        &path,
                        &query,
                        &Value::Null,
                        e.code,
                        &json!({"message": e.message}),
                    ),
                )
                .await;
            }
            return e.into_response();
        }
    };
    let request: Value = if module {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let Some(caller) = caller else {
        return response;
    };
    let status = response.status();
    let (parts, body) = response.into_parts();
    let answer_bytes = axum::body::to_bytes(body, ANSWER_LIMIT)
        .await
        .unwrap_or_default();
    let answer: Value = serde_json::from_slice(&answer_bytes).unwrap_or(Value::Null);
    let outcome = if status.is_success() {
        "ok".to_string()
    } else {
        answer
            .get("error_code")
            .and_then(Value::as_str)
            .map_or_else(|| status.as_u16().to_string(), str::to_string)
    };
    let e = entry(
        &state, &caller, &method, &path, &query, &request, &outcome, &answer,
    );
    record(&state, e).await;
    Response::from_parts(parts, Body::from(answer_bytes))
}

#[allow(clippy::too_many_arguments)]
fn entry(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    path: &str,
    query: &str,
    request: &Value,
    outcome: &str,
    answer: &Value,
) -> AuditEntry {
    AuditEntry {
        seq: 0,
        time: state.engine.now(),
        principal: caller.name.clone(),
        action: action(method, path),
        target: target(path, query, request, answer),
        source: caller.source.clone(),
        outcome: outcome.to_string(),
        detail: detail(method, path, request, answer),
    }
}

/// Records a refused authentication of a mutating call.
pub async fn record_unauthenticated(
    state: &AppState,
    method: &Method,
    path: &str,
    source: &str,
    message: &str,
) {
    if method == Method::GET || method == Method::HEAD {
        return;
    }
    let e = AuditEntry {
        seq: 0,
        time: state.engine.now(),
        principal: String::new(),
        action: action(method, path),
        target: String::new(),
        source: source.to_string(),
        outcome: "UNAUTHENTICATED".into(),
        detail: format!("{method} {path}: {message}"),
    };
    record(state, e).await;
}

/// `?...` of `GET /api/weir/audit`.
#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    since: Option<i64>,
    #[serde(default)]
    until: Option<i64>,
    #[serde(default)]
    page_token: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /api/weir/audit` (admins only): entries newest first, with filters; `next_page_token`
/// pages back.
pub async fn list(
    state: Shared,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Value>> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden(format!(
            "reading the audit log needs membership in the `{}` group; `{}` is not a member",
            crate::store::ADMINS,
            caller.name
        )));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and 1000, got {limit}"
        )));
    }
    let before_seq = match q.page_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| {
            ApiError::invalid(format!("page_token {t:?} is not a token this API issued"))
        })?),
    };
    let filter = AuditFilter {
        principal: q.principal,
        action: q.action,
        target: q.target,
        since: q.since,
        until: q.until,
        before_seq,
        limit: limit + 1,
    };
    let mut entries = state.engine.store().list_audit(&filter).await?;
    let has_more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let mut out = json!({"entries": entries, "has_more": has_more});
    if has_more && let Some(last) = entries.last() {
        out["next_page_token"] = json!(last.seq.to_string());
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_name_the_call() {
        assert_eq!(action(&Method::POST, "/api/2.2/jobs/create"), "jobs.create");
        assert_eq!(
            action(&Method::POST, "/api/2.1/jobs/runs/cancel"),
            "runs.cancel"
        );
        assert_eq!(
            action(&Method::PATCH, "/api/2.0/permissions/jobs/3"),
            "permissions.patch"
        );
        assert_eq!(action(&Method::POST, "/api/weir/tokens"), "tokens.create");
        assert_eq!(
            action(&Method::POST, "/api/weir/tokens/revoke"),
            "tokens.revoke"
        );
        assert_eq!(action(&Method::POST, "/api/weir/modules"), "modules.push");
        assert_eq!(action(&Method::POST, "/api/weir/jobs/pause"), "jobs.pause");
    }

    #[test]
    fn targets_come_from_the_request_or_the_answer() {
        let none = Value::Null;
        assert_eq!(
            target("/api/2.2/jobs/delete", "", &json!({"job_id": 4}), &none),
            "job:4"
        );
        assert_eq!(
            target(
                "/api/2.2/jobs/create",
                "",
                &json!({"name": "x"}),
                &json!({"job_id": 9})
            ),
            "job:9"
        );
        assert_eq!(
            target(
                "/api/2.2/jobs/run-now",
                "",
                &json!({"job_id": "4"}),
                &json!({"run_id": 7})
            ),
            "job:4"
        );
        assert_eq!(
            target("/api/2.0/permissions/jobs/12", "", &none, &none),
            "job:12"
        );
        assert_eq!(
            target("/api/weir/modules", "name=ingest", &none, &none),
            "module:ingest"
        );
        assert_eq!(
            target(
                "/api/weir/tokens",
                "",
                &json!({"principal": "bob"}),
                &json!({"token_info": {"token_id": "ab"}})
            ),
            "token:ab"
        );
    }
}
