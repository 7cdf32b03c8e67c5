//! The admin API. Every request carries `Authorization: Bearer <token>` with one of
//! `LANDLORD_ADMIN_TOKENS`; tokens are compared in constant time and never logged, not even in part.
//! Failed authentications are counted per client address ([`crate::AuthFailures`]): an address that fails too
//! often gets `429` for the rest of the minute, so a token cannot be guessed at speed.

use std::{net::SocketAddr, time::Instant};

use axum::{
    Json,
    extract::{ConnectInfo, FromRequestParts, Path, State},
    http::{HeaderMap, StatusCode, header::AUTHORIZATION, request::Parts},
};
use landlord_protocol::{Action, Command, CommandId, TenantId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    AppState,
    auth_failures::Refusal,
    error::{ApiError, whole_secs_up},
};

/// A caller who presented a valid admin token. Extracting it enforces the failure limit, so every admin
/// route takes it first.
#[derive(Debug)]
pub struct Admin {
    /// What commands this caller sends record as `requested_by`.
    pub requested_by: String,
}

/// Why a request did not authenticate, for the log. It names the kind of failure, never the token.
#[derive(Debug, Clone, Copy)]
enum AuthFailure {
    NoBearerToken,
    UnknownToken,
}

impl AuthFailure {
    fn as_str(self) -> &'static str {
        match self {
            Self::NoBearerToken => "no bearer token",
            Self::UnknownToken => "unknown token",
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let client = client_address(parts)?;
        let check_token = || authenticate(&state.admin_tokens, &parts.headers);
        match state.admin_auth_failures.attempt(client.ip(), Instant::now(), check_token) {
            Ok(()) => Ok(Admin { requested_by: "admin".to_owned() }),
            Err(Refusal::Failed { reason, failures, locked_out }) => {
                tracing::warn!(
                    client = %client.ip(),
                    reason = reason.as_str(),
                    failures,
                    locked_out,
                    "admin authentication failed"
                );
                Err(ApiError::Unauthorized)
            }
            Err(Refusal::LockedOut { retry_after }) => {
                // Not a warning each time: the address was reported when it was locked out, and a guesser
                // hammering on must not flood the log.
                tracing::debug!(client = %client.ip(), "admin request refused: too many failed authentications");
                Err(ApiError::TooManyAttempts { retry_after_secs: whole_secs_up(retry_after) })
            }
        }
    }
}

/// The peer's address, put there by `into_make_service_with_connect_info` (see [`crate::router`]).
fn client_address(parts: &Parts) -> Result<SocketAddr, ApiError> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "the client's address is unknown: serve the router with into_make_service_with_connect_info"
        ))
    })
}

/// Checks the bearer token. Digests are compared, so neither a token's content nor its length leaks
/// through timing.
fn authenticate(tokens: &[SecretString], headers: &HeaderMap) -> Result<(), AuthFailure> {
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AuthFailure::NoBearerToken)?;
    let given = Sha256::digest(given.trim().as_bytes());
    let known = tokens.iter().any(|t| bool::from(Sha256::digest(t.expose_secret().as_bytes()).ct_eq(&given)));
    if known { Ok(()) } else { Err(AuthFailure::UnknownToken) }
}

/// The `{id}` of a `/v1/tenants/{id}/…` route, parsed, with a JSON error when it is not a tenant id.
#[derive(Debug, Clone, Copy)]
pub struct TenantPath(pub TenantId);

impl<S: Send + Sync> FromRequestParts<S> for TenantPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("bad_tenant_id", "the tenant id in the path cannot be read"))?;
        TenantId::parse(&id).map(Self).map_err(|e| ApiError::bad_request("bad_tenant_id", e))
    }
}

/// The command id: `admin:<Idempotency-Key>` when the caller gives one (so repeated clicks are one
/// command), a fresh one otherwise.
fn command_id(headers: &HeaderMap) -> Result<CommandId, ApiError> {
    match headers.get("idempotency-key").map(|v| v.to_str().unwrap_or_default()) {
        Some(key) => {
            CommandId::parse(&format!("admin:{key}")).map_err(|e| ApiError::bad_request("bad_idempotency_key", e))
        }
        None => Ok(CommandId::parse(&format!("admin:{}", uuid::Uuid::new_v4())).expect("a UUID is a valid key")),
    }
}

/// `POST /v1/tenants/{id}/provision`: resume a failed tenant at its unfinished steps.
#[tracing::instrument(name = "retry_tenant", skip_all, fields(tenant_id = %tenant))]
pub async fn retry(
    State(state): State<AppState>,
    admin: Admin,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let cmd = Command::new(command_id(&headers)?, tenant, admin.requested_by, Action::Retry);
    let stored = state.bus.publish_command(&cmd).await.map_err(ApiError::Unavailable)?;
    tracing::info!(command_id = %cmd.id, duplicate = stored.duplicate, "retry requested");
    Ok((StatusCode::ACCEPTED, Json(json!({"tenant_id": tenant, "command_id": cmd.id, "duplicate": stored.duplicate}))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_a_configured_bearer_token_authenticates() {
        let tokens = [SecretString::from("admin-token-1".to_owned())];
        assert!(authenticate(&tokens, &bearer("Bearer admin-token-1")).is_ok());
        assert!(matches!(authenticate(&tokens, &bearer("Bearer admin-token-2")), Err(AuthFailure::UnknownToken)));
        assert!(matches!(authenticate(&tokens, &bearer("Basic admin-token-1")), Err(AuthFailure::NoBearerToken)));
        assert!(matches!(authenticate(&tokens, &HeaderMap::new()), Err(AuthFailure::NoBearerToken)));
        assert!(matches!(authenticate(&[], &bearer("Bearer admin-token-1")), Err(AuthFailure::UnknownToken)));
    }
}
