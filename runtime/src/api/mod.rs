//! The HTTP API: the Databricks Jobs API 2.2 paths and JSON under `/api/2.2/jobs/`, Weir's
//! additions under `/api/weir/`, and `/healthz`. Every route but `/healthz` needs the bearer
//! token.

mod auth;
mod error;
mod events;
mod jobs;
mod modules;
pub mod render;
mod runs;

pub use auth::Tokens;
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
    /// The node's table-change inbox (`POST /api/weir/events`).
    pub table_events: Arc<crate::trigger::table_update::TableEvents>,
}

/// The API router.
pub fn router(state: AppState, tokens: Tokens) -> Router {
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
        .route("/events", post(events::post).get(events::stats))
        .layer(DefaultBodyLimit::max(json_limit));
    let authed = Router::new()
        .nest("/api/2.2/jobs", jobs.clone())
        .nest("/api/2.1/jobs", jobs)
        .nest("/api/weir", weir)
        .fallback(|| async { ApiError::not_found("no such API path") })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                code: "BAD_REQUEST",
                message: "this API path does not take that HTTP method".into(),
            }
        })
        .route_layer(axum::middleware::from_fn_with_state(
            tokens,
            auth::require_token,
        ))
        .with_state(Arc::new(state.clone()));
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(Arc::new(state))
        .merge(authed)
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
                Err(ApiError::too_large(if module {
                    format!(
                        "the module is larger than the limit of {} bytes (max_module_bytes)",
                        state.max_module_bytes
                    )
                } else {
                    format!(
                        "the request body is larger than the limit of {} bytes (max_request_bytes)",
                        state.max_request_bytes
                    )
                }))
            }
            Err(e) => Err(ApiError::malformed(format!(
                "cannot read the request body: {}",
                e.body_text()
            ))),
        }
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

/// Parses a JSON request body, with the line and column of a problem.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::malformed("the request needs a JSON body"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        ApiError::malformed(format!(
            "request body:{}:{}: {at}{inner}",
            inner.line(),
            inner.column()
        ))
    })
}

/// State handle of the handlers.
pub(crate) type Shared = axum::extract::State<Arc<AppState>>;
