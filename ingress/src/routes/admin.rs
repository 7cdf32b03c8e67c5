//! The admin API. Every request carries `Authorization: Bearer <token>` with one of
//! `LANDLORD_ADMIN_TOKENS`; tokens are compared in constant time and never logged.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use landlord_protocol::{Action, Command, CommandId, TenantId};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{AppState, error::ApiError};

/// Checks the bearer token. Digests are compared, so neither a token's content nor its length leaks
/// through timing.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let given = Sha256::digest(given.trim().as_bytes());
    let known =
        state.admin_tokens.iter().any(|t| bool::from(Sha256::digest(t.expose_secret().as_bytes()).ct_eq(&given)));
    if known { Ok("admin".to_owned()) } else { Err(ApiError::Unauthorized) }
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

/// `POST /v1/tenants/{id}/provision`: resume a failed tenant at its first unfinished step.
#[tracing::instrument(name = "retry_tenant", skip_all, fields(tenant_id = %id))]
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let requested_by = authorize(&state, &headers)?;
    let tenant = TenantId::parse(&id).map_err(|e| ApiError::bad_request("bad_tenant_id", e))?;
    let cmd = Command::new(command_id(&headers)?, tenant, requested_by, Action::Retry);
    let stored = state.bus.publish_command(&cmd).await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    tracing::info!(command_id = %cmd.id, duplicate = stored.duplicate, "retry requested");
    Ok((StatusCode::ACCEPTED, Json(json!({"tenant_id": tenant, "command_id": cmd.id, "duplicate": stored.duplicate}))))
}
