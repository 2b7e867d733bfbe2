//! API errors in the Jobs API shape: `{"error_code": "...", "message": "..."}` with a 4xx/5xx
//! status.

use crate::engine::EngineError;
use crate::spec::SpecErrors;
use crate::store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Jobs API error code, e.g. `RESOURCE_DOES_NOT_EXIST`.
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

impl ApiError {
    /// 400 INVALID_PARAMETER_VALUE.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_PARAMETER_VALUE",
            message: message.into(),
        }
    }
    /// 400 MALFORMED_REQUEST.
    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "MALFORMED_REQUEST",
            message: message.into(),
        }
    }
    /// 404 RESOURCE_DOES_NOT_EXIST.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "RESOURCE_DOES_NOT_EXIST",
            message: message.into(),
        }
    }
    /// 409 RESOURCE_ALREADY_EXISTS.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "RESOURCE_ALREADY_EXISTS",
            message: message.into(),
        }
    }
    /// 400 INVALID_STATE.
    pub fn invalid_state(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_STATE",
            message: message.into(),
        }
    }
    /// 401 UNAUTHENTICATED.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "UNAUTHENTICATED",
            message: message.into(),
        }
    }
    /// 403 PERMISSION_DENIED.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "PERMISSION_DENIED",
            message: message.into(),
        }
    }
    /// 413 REQUEST_LIMIT_EXCEEDED.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "REQUEST_LIMIT_EXCEEDED",
            message: message.into(),
        }
    }
    /// 500 INTERNAL_ERROR.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "INTERNAL_ERROR",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "weir.api.error");
        }
        (
            self.status,
            Json(json!({"error_code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(m) => ApiError::not_found(m),
            EngineError::InvalidParameter(m) => ApiError::invalid(m),
            EngineError::InvalidState(m) => ApiError::invalid_state(m),
            EngineError::Store(m) => ApiError::internal(m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(format!("{m} does not exist")),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::InvalidState(m) => ApiError::invalid_state(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<SpecErrors> for ApiError {
    fn from(e: SpecErrors) -> Self {
        ApiError::invalid(e.to_string())
    }
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
