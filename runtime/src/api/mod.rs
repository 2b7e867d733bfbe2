//! The HTTP API: the Databricks Jobs API 2.2 paths and JSON under `/api/2.2/jobs/`, Weir's
//! additions under `/api/weir/`, `/metrics` (Prometheus) and `/healthz`. Every route but
//! `/healthz` needs the bearer token (`/metrics` too, unless the node runs with
//! `--metrics-public`).

mod access;
mod alerts;
mod audit;
mod auth;
mod error;
mod events;
mod jobs;
mod metrics;
mod modules;
mod permissions;
pub mod proto;
pub mod render;
mod runs;
mod schedules;

pub use auth::{AdminToken, Caller, bootstrap};
pub use error::{ApiError, ApiResult};

use crate::engine::Engine;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The engine (and through it the store, registry and executor).
    pub engine: Engine,
    /// Largest JSON body.
    pub max_request_bytes: usize,
    /// Largest module upload.
    pub max_module_bytes: u64,
    /// The node's data directory (where `admin-token` lives).
    pub data_dir: std::path::PathBuf,
    /// Which host directories jobs may mount.
    pub mount_policy: Arc<crate::exec::MountPolicy>,
    /// Longest time a request may take (`/api/weir/runs/wait` has its own bound).
    pub request_timeout: std::time::Duration,
    /// Whether `/metrics` is served without a token.
    pub metrics_public: bool,
    /// The node's table-change inbox (`POST /api/weir/events`).
    pub table_events: Arc<crate::trigger::table_update::TableEvents>,
}

/// The API router.
pub fn router(state: AppState) -> Router {
    let state = Arc::new(state);
    let json_limit = state.max_request_bytes;
    let module_limit = state.max_module_bytes as usize + 1;
    let jobs = Router::new()
        .route("/create", post(jobs::create))
        .route("/get", get(jobs::get))
        .route("/list", get(jobs::list))
        .route("/update", post(jobs::update))
        .route("/reset", post(jobs::reset))
        .route("/delete", post(jobs::delete))
        .route("/run-now", post(jobs::run_now))
        .route("/runs/submit", post(runs::submit))
        .route("/runs/get", get(runs::get))
        .route("/runs/list", get(runs::list))
        .route("/runs/cancel", post(runs::cancel))
        .route("/runs/cancel-all", post(runs::cancel_all))
        .route("/runs/repair", post(runs::repair))
        .route("/runs/get-output", get(runs::get_output))
        .route("/runs/delete", post(runs::delete))
        .layer(DefaultBodyLimit::max(json_limit));
    // The 2.0 paths whose shapes match 2.2 (2.0's `create`, `reset` and `runs/submit` take the
    // single-task shape, which Weir does not model); `list` pages with `offset` there.
    let jobs_2_0 = Router::new()
        .route("/get", get(jobs::get))
        .route("/list", get(jobs::list))
        .route("/delete", post(jobs::delete))
        .route("/run-now", post(jobs::run_now))
        .route("/runs/get", get(runs::get))
        .route("/runs/list", get(runs::list))
        .route("/runs/cancel", post(runs::cancel))
        .route("/runs/get-output", get(runs::get_output))
        .route("/runs/delete", post(runs::delete))
        .layer(DefaultBodyLimit::max(json_limit));
    let weir = Router::new()
        .route(
            "/modules",
            post(modules::push)
                .get(modules::list)
                .layer(DefaultBodyLimit::max(module_limit)),
        )
        .route("/modules/get", get(modules::get))
        .route("/runs/wait", get(runs::wait))
        .route("/jobs/pause", post(jobs::pause))
        .route("/jobs/resume", post(jobs::resume))
        .route("/jobs/backfill", post(schedules::backfill))
        .route("/alerts", get(alerts::list))
        .route(
            "/tokens",
            post(access::create_token).get(access::list_tokens),
        )
        .route("/tokens/revoke", post(access::revoke_token))
        .route("/tokens/rotate-admin", post(access::rotate_admin))
        .route(
            "/principals",
            post(access::create_principal).get(access::list_principals),
        )
        .route("/principals/delete", post(access::delete_principal))
        .route("/principals/members/add", post(access::add_member))
        .route("/principals/members/remove", post(access::remove_member))
        .route("/audit", get(audit::list))
        .route("/events", post(events::post).get(events::stats))
        .layer(DefaultBodyLimit::max(json_limit));
    let metrics_public = state.metrics_public;
    let mut authed = Router::new()
        .nest("/api/2.2/jobs", jobs.clone())
        .nest("/api/2.1/jobs", jobs)
        .nest("/api/2.0/jobs", jobs_2_0)
        .route(
            "/api/2.0/permissions/jobs/{job_id}",
            get(permissions::get)
                .put(permissions::put)
                .patch(permissions::patch)
                .layer(DefaultBodyLimit::max(json_limit)),
        )
        .route(
            "/api/2.0/permissions/jobs/{job_id}/permissionLevels",
            get(permissions::levels),
        )
        .nest("/api/weir", weir);
    if !metrics_public {
        authed = authed.route("/metrics", get(metrics::get));
    }
    let authed = authed
        .fallback(|| async { ApiError::not_found("no such API path") })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                code: "BAD_REQUEST",
                message: "this API path does not take that HTTP method".into(),
            }
        })
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::middleware,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state.clone());
    let timeout_state = state.clone();
    let mut open = Router::new().route("/healthz", get(healthz));
    if metrics_public {
        open = open.route("/metrics", get(metrics::get));
    }
    open
        // Databricks clients ask for the host's metadata first, without a token, and go on
        // with their own configuration after a 404.
        .route(
            "/.well-known/databricks-config",
            get(|| async {
                ApiError::not_found("this is a Weir node: no Databricks host metadata")
            }),
        )
        .with_state(state)
        .merge(authed)
        .layer(axum::middleware::from_fn_with_state(
            timeout_state,
            request_timeout,
        ))
}

async fn healthz(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> axum::Json<serde_json::Value> {
    let executor = state.engine.executor();
    axum::Json(serde_json::json!({
        "status": "ok",
        "node_id": state.engine.node_id(),
        "version": env!("CARGO_PKG_VERSION"),
        "runs_coordinated": state.engine.active_runs(),
        "instances_alive": executor.instances_alive(),
        "modules_cached": executor.modules_cached(),
        "allocator": executor.allocator(),
    }))
}

/// A request body, refused with a Jobs API error when too large or unreadable.
pub(crate) struct Body(pub Bytes);

impl axum::extract::FromRequest<Arc<AppState>> for Body {
    type Rejection = ApiError;

    async fn from_request(
        req: axum::extract::Request,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let module = req.uri().path().ends_with("/modules");
        match <Bytes as axum::extract::FromRequest<_>>::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::too_large(too_large_message(state, module)))
            }
            Err(e) => Err(ApiError::malformed(format!(
                "cannot read the request body: {}",
                e.body_text()
            ))),
        }
    }
}

/// Middleware: answers `504 DEADLINE_EXCEEDED` when a request takes longer than
/// `request_timeout` (the long poll `/api/weir/runs/wait` is bounded by its own
/// `timeout_seconds`, at most 300 s).
async fn request_timeout(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limit = timeout_of(req.uri().path(), state.request_timeout);
    within(limit, next.run(req)).await
}

/// The time limit of a request to `path`.
fn timeout_of(path: &str, base: std::time::Duration) -> std::time::Duration {
    if path == "/api/weir/runs/wait" {
        base.max(std::time::Duration::from_secs(310))
    } else {
        base
    }
}

/// The answer of `handler`, or a 504 after `limit`.
async fn within(
    limit: std::time::Duration,
    handler: impl std::future::Future<Output = axum::response::Response>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match tokio::time::timeout(limit, handler).await {
        Ok(response) => response,
        Err(_) => ApiError {
            status: axum::http::StatusCode::GATEWAY_TIMEOUT,
            code: "DEADLINE_EXCEEDED",
            message: format!(
                "the request took longer than {} s (request_timeout_seconds)",
                limit.as_secs()
            ),
        }
        .into_response(),
    }
}

/// Why a request body was refused for its size.
pub(crate) fn too_large_message(state: &AppState, module: bool) -> String {
    if module {
        format!(
            "the module is larger than the limit of {} bytes (max_module_bytes)",
            state.max_module_bytes
        )
    } else {
        format!(
            "the request body is larger than the limit of {} bytes (max_request_bytes)",
            state.max_request_bytes
        )
    }
}

/// Query parameters, refused with a Jobs API error when missing or malformed.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::invalid(format!("query parameters: {}", e.body_text())))
    }
}

/// State handle of the handlers.
pub(crate) type Shared = axum::extract::State<Arc<AppState>>;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse as _;
    use std::time::Duration;

    #[tokio::test]
    async fn slow_requests_get_a_504_and_long_polls_their_own_bound() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "late".into_response()
        };
        let answer = within(Duration::from_millis(50), slow).await;
        assert_eq!(answer.status(), axum::http::StatusCode::GATEWAY_TIMEOUT);
        let fast = within(Duration::from_secs(60), async { "ok".into_response() }).await;
        assert_eq!(fast.status(), axum::http::StatusCode::OK);
        let base = Duration::from_secs(60);
        assert_eq!(timeout_of("/api/2.2/jobs/list", base), base);
        assert_eq!(
            timeout_of("/api/weir/runs/wait", base),
            Duration::from_secs(310)
        );
    }
}
