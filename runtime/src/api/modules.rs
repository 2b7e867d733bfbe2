//! `/api/weir/modules`: upload (validated, compiled, stored) and listing of wasm modules.

use super::error::{ApiError, ApiResult};
use super::{ApiQuery, Body, Shared, render};
use crate::exec::ModuleError;
use crate::modules::PushError;
use axum::Json;
use serde::Deserialize;
use serde_json::{Value, json};

/// `?name=` of an upload.
#[derive(Deserialize)]
pub struct PushQuery {
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/weir/modules?name=NAME` with the wasm bytes as the body.
pub async fn push(
    state: Shared,
    ApiQuery(q): ApiQuery<PushQuery>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    if body.is_empty() {
        return Err(ApiError::invalid(
            "the request body must be the module's wasm bytes",
        ));
    }
    let registry = state.engine.registry();
    let pushed = registry
        .push(q.name.as_deref(), body, state.engine.now())
        .await
        .map_err(|e| match e {
            PushError::Invalid(ModuleError::TooLarge { .. }) => ApiError::too_large(e.to_string()),
            PushError::Invalid(_) | PushError::BadName(_) => ApiError::invalid(e.to_string()),
            PushError::Storage(m) => ApiError::internal(m),
        })?;
    let mut out = json!({
        "digest": pushed.blob.digest,
        "size": pushed.blob.size,
        "created_time": pushed.blob.created_time,
        "new_blob": pushed.new_blob,
    });
    if let Some(v) = &pushed.version {
        out["name"] = json!(v.name);
        out["version"] = json!(v.version);
    }
    Ok(Json(out))
}

/// `?name=` of a listing.
#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    name: Option<String>,
}

/// `GET /api/weir/modules`: every named version.
pub async fn list(state: Shared, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Value>> {
    let versions = state
        .engine
        .store()
        .list_module_versions(q.name.as_deref())
        .await?;
    Ok(Json(
        json!({"modules": versions.iter().map(render::module).collect::<Vec<_>>()}),
    ))
}

/// `?...` of a lookup: `digest`, or `name` with an optional `version`.
#[derive(Deserialize)]
pub struct GetQuery {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    digest: Option<String>,
}

/// `GET /api/weir/modules/get`.
pub async fn get(state: Shared, ApiQuery(q): ApiQuery<GetQuery>) -> ApiResult<Json<Value>> {
    let store = state.engine.store();
    match (q.digest, q.name) {
        (Some(d), None) => {
            let blob = store
                .get_module_blob(&d)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("module {d} is not in the registry")))?;
            Ok(Json(
                json!({"digest": blob.digest, "size": blob.size, "created_time": blob.created_time}),
            ))
        }
        (None, Some(name)) => {
            let v = store
                .get_module_version(&name, q.version)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(match q.version {
                        Some(n) => format!("module `{name}` has no version {n}"),
                        None => format!("module `{name}` is not in the registry"),
                    })
                })?;
            Ok(Json(render::module(&v)))
        }
        _ => Err(ApiError::invalid(
            "give either digest, or name (and optionally version)",
        )),
    }
}
