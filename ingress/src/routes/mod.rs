//! HTTP routes. Handlers only extract and validate, then call plain functions.

pub mod admin;
pub mod events;
pub mod health;
pub mod servers;
pub mod tenants;
pub mod webhook;

use crate::error::ApiError;

/// Any path the ingress does not serve, answered in the usual error shape.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// A known path with a method it does not take, answered in the usual error shape.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
