//! The one error type handlers return. Client errors become `{"error": {"code", "message"}}` with the
//! right status; anything internal is logged with its chain and answered as an opaque 500.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The caller sent something wrong; `code` is stable, `message` says what to fix.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("a valid admin token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// A dependency is down; the caller should try again (Stripe does so by itself).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl std::fmt::Display) -> Self {
        Self::BadRequest { code, message: message.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            Self::BadRequest { code, message } => (StatusCode::BAD_REQUEST, *code, message.clone()),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", self.to_string()),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", self.to_string()),
            Self::Unavailable(m) => {
                tracing::warn!(reason = %m, "answering 503");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m.clone())
            }
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error".to_owned())
            }
        };
        (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
    }
}
