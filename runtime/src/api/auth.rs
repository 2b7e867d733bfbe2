//! Bearer-token authentication.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The tokens the API accepts.
#[derive(Clone)]
pub struct Tokens {
    admin: Arc<str>,
}

impl Tokens {
    /// Accepts the admin token.
    pub fn new(admin: &str) -> Tokens {
        Tokens {
            admin: admin.into(),
        }
    }

    fn accepts(&self, token: &str) -> bool {
        constant_time_eq(token.as_bytes(), self.admin.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: refuses requests without a valid `Authorization: Bearer <token>`.
pub async fn require_token(State(tokens): State<Tokens>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    match header.and_then(|h| h.strip_prefix("Bearer ")) {
        None => ApiError::unauthenticated(
            "missing bearer token: send `Authorization: Bearer <token>` (the admin token is in <data-dir>/admin-token)",
        )
        .into_response(),
        Some(token) if !tokens.accepts(token.trim()) => {
            ApiError::unauthenticated("invalid access token").into_response()
        }
        Some(_) => next.run(req).await,
    }
}
