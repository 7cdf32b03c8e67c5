//! The one error type handlers and middleware return. Every error becomes `{"error": {"code", "message"}}`
//! with the right status. A message says what the caller can do and never carries internal text: a NATS
//! or other dependency failure is logged with its chain and answered with a generic message.

use std::time::Duration;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use landlord_bus::BusError;
use serde_json::json;

/// Every error's body: `{"error": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, to search for or to branch on: `unauthorized`, `forbidden`, `tenant_not_found`, `bad_query`, …
    pub code: String,
    /// What happened and what to do, for a person.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The caller sent something wrong; `code` is stable, `message` says what to fix.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("a valid admin token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("token {name} is a {role} token; this needs an admin token")]
    Forbidden { name: String, role: &'static str },
    #[error("there is no tenant {0}")]
    TenantNotFound(landlord_protocol::TenantId),
    /// The tenant is not in a state this change applies to; nothing was sent.
    #[error("{0}")]
    Conflict(String),
    /// A database server is already registered under that name.
    #[error("{0}")]
    ServerExists(String),
    #[error("there is no database server named {0}")]
    ServerNotFound(String),
    /// Landlord could not connect to (or use) a database server it was given; nothing was registered.
    #[error("{0}")]
    ServerUnreachable(String),
    #[error("the ingress cannot encrypt a database server's admin URL: set LANDLORD_SECRET_KEYS to the workers' keys")]
    NoSecretKeys,
    /// The ingress was started without `LANDLORD_DATABASE_URL`, or cannot reach the control plane yet.
    #[error("{0}")]
    NoControlPlane(&'static str),
    /// This client address failed admin authentication too often; it may try again after `retry_after_secs`.
    #[error("too many failed admin authentications from this address; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the request was not received and answered within {limit_secs} s")]
    Timeout { limit_secs: u64 },
    #[error("there is no such route")]
    NotFound,
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    /// The ingress is handling as many requests as it is allowed to.
    #[error("Landlord is handling as many requests as it can; try again shortly")]
    Overloaded,
    /// JetStream cannot take the request. The caller learns only that (Stripe retries by itself); the cause
    /// goes to the log, because NATS error text tells a caller nothing they can act on.
    #[error("Landlord cannot take this request now; try again")]
    Unavailable(#[source] BusError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl std::fmt::Display) -> Self {
        Self::BadRequest { code, message: message.to_string() }
    }

    /// The error's code, as answered (`bad_signature`, `unavailable`, …).
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, *code),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            Self::TenantNotFound(_) => (StatusCode::NOT_FOUND, "tenant_not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "wrong_status"),
            Self::NoControlPlane(_) => (StatusCode::SERVICE_UNAVAILABLE, "no_control_plane"),
            Self::ServerExists(_) => (StatusCode::CONFLICT, "server_exists"),
            Self::ServerNotFound(_) => (StatusCode::NOT_FOUND, "server_not_found"),
            Self::ServerUnreachable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "server_unreachable"),
            Self::NoSecretKeys => (StatusCode::SERVICE_UNAVAILABLE, "no_secret_keys"),
            Self::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::Timeout { .. } => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// What a caller may show: the error's own text, except for internal errors.
    fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "Landlord failed to handle this request; the cause is in its log".to_owned(),
            other => other.to_string(),
        }
    }

    /// Seconds to put in `Retry-After`, where waiting is the answer.
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::TooManyAttempts { retry_after_secs } => Some(*retry_after_secs),
            Self::Overloaded => Some(1),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Unavailable(e) => tracing::warn!(error = %chain(e), "answering 503: JetStream cannot take it"),
            Self::Internal(e) => tracing::error!(error = ?e, "internal error"),
            _ => {}
        }
        let (status, code) = self.status_and_code();
        let body = json!({"error": {"code": code, "message": self.public_message()}});
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs() {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// `error` and each of its sources, `: `-separated, for a log line. A source whose text its parent's message
/// already ends with (as `BusError`'s messages do) is not repeated.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}

/// Whole seconds, rounded up, so that a client waiting that long is never early.
pub(crate) fn whole_secs_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: inner")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause_once() {
        let e = Outer(Inner(std::io::Error::other("disk on fire")));
        assert_eq!(chain(&e), "outer: inner: disk on fire");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(whole_secs_up(Duration::from_millis(1)), 1);
        assert_eq!(whole_secs_up(Duration::from_secs(60)), 60);
        assert_eq!(whole_secs_up(Duration::from_millis(59_001)), 60);
    }

    #[tokio::test]
    async fn an_internal_error_answers_without_its_text() {
        let response = ApiError::Internal(anyhow::anyhow!("password=hunter2 rejected by db")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("hunter2") && text.contains("\"internal\""), "{text}");
    }
}
