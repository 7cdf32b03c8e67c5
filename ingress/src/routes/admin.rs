//! The admin API. Every request carries `Authorization: Bearer <token>` with one of
//! `LANDLORD_ADMIN_TOKENS`; tokens are compared in constant time and never logged, not even in part.
//! Failed authentications are counted per client address ([`crate::AuthFailures`]): an address that fails too
//! often gets `429` for the rest of the minute, so a token cannot be guessed at speed.

use std::{net::SocketAddr, time::Instant};

use std::collections::HashMap;

use axum::{
    Json,
    extract::{ConnectInfo, FromRequestParts, Path, Query, State, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header::AUTHORIZATION, request::Parts},
};
use landlord_protocol::{
    Action, Command, CommandId, CommandKind, ContactEmail, OffboardRequest, PackageId, PlanChange, ProvisionSpec,
    StoreName, SubscriptionTypeId, TenantId, TenantSlug,
};
use landlord_worker::store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    AppState,
    admin_tokens::{AdminToken, Role},
    auth_failures::Refusal,
    error::{ApiError, whole_secs_up},
};

/// A caller who presented a valid admin token. Extracting it enforces the failure limit, so every admin
/// route takes it first; [`Caller::require_admin`] refuses a viewer.
#[derive(Debug)]
pub struct Caller {
    /// The token's name: commands record `admin:<name>` as who asked.
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// What commands this caller sends record as `requested_by` (and the audit log as who).
    pub fn requested_by(&self) -> String {
        format!("admin:{}", self.name)
    }

    /// 403 unless the token may change tenants.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden { name: self.name.clone(), role: self.role.as_str() })
        }
    }
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

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let client = client_address(parts)?;
        let check_token = || authenticate(&state.admin_tokens, &parts.headers);
        match state.admin_auth_failures.attempt(client.ip(), Instant::now(), check_token) {
            Ok((name, role)) => Ok(Caller { name, role }),
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

/// Checks the bearer token against the configured ones (digests, compared in constant time).
fn authenticate(tokens: &[AdminToken], headers: &HeaderMap) -> Result<(String, Role), AuthFailure> {
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme's name is case-insensitive (RFC 9110, 11.1): `bearer x` is a bearer token too.
        .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t))
        .ok_or(AuthFailure::NoBearerToken)?;
    let token = crate::admin_tokens::find(tokens, given.trim()).ok_or(AuthFailure::UnknownToken)?;
    Ok((token.name.clone(), token.role))
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

/// The control plane, or 503 saying why there is none.
pub fn store(state: &AppState) -> Result<&Store, ApiError> {
    if !state.has_control_plane {
        return Err(ApiError::NoControlPlane(
            "the ingress has no control plane: set LANDLORD_DATABASE_URL to the workers' database",
        ));
    }
    state.store.get().ok_or(ApiError::NoControlPlane("the control plane is not reachable yet; try again"))
}

/// The tenant, or 404: an unknown tenant is refused here, not later by a worker.
pub(crate) async fn existing(
    state: &AppState,
    tenant: TenantId,
) -> Result<landlord_worker::store::entities::tenant::Model, ApiError> {
    let row = store(state)?.tenant(&tenant).await.map_err(|e| ApiError::Internal(e.into()))?;
    row.ok_or(ApiError::TenantNotFound(tenant))
}

/// 409 unless the tenant's status is one of `allowed`: a change that cannot apply is refused here, with the
/// reason, instead of being accepted and then rejected by a worker. (A worker checks again when it runs.)
pub(crate) fn require_status(
    row: &landlord_worker::store::entities::tenant::Model,
    allowed: &[&str],
    what: &str,
) -> Result<(), ApiError> {
    if allowed.contains(&row.status.as_str()) {
        Ok(())
    } else {
        Err(ApiError::Conflict(format!(
            "tenant {} is {}; {what} applies to a tenant that is {}",
            row.slug,
            row.status,
            allowed.join(" or ")
        )))
    }
}

/// The command id: from the caller's `Idempotency-Key`, scoped to the kind and the tenant (so one key
/// reused for another request is another command), a fresh one otherwise.
fn command_id(headers: &HeaderMap, kind: CommandKind, tenant: &TenantId) -> Result<CommandId, ApiError> {
    let key = match headers.get("idempotency-key") {
        Some(v) => {
            let key =
                v.to_str().map_err(|_| ApiError::bad_request("bad_idempotency_key", "Idempotency-Key must be text"))?;
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::bad_request(
                    "bad_idempotency_key",
                    "Idempotency-Key must be 1 to 255 characters",
                ));
            }
            key.to_owned()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let scoped = hex::encode(&Sha256::digest(format!("{}:{tenant}:{key}", kind.as_str()))[..16]);
    CommandId::parse(&format!("admin:{}-{scoped}", kind.as_str())).map_err(|e| ApiError::Internal(e.into()))
}

/// A change accepted: stored as a command on NATS for a worker.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub tenant_id: String,
    /// The command's id; the same for a repeated request with the same `Idempotency-Key`.
    pub command_id: String,
    pub kind: String,
    /// JetStream already held this command (a repeated request).
    pub duplicate: bool,
}

/// Publishes `action` for `tenant` and answers 202 with the command id.
pub(crate) async fn send(
    state: &AppState,
    caller: &Caller,
    tenant: TenantId,
    headers: &HeaderMap,
    action: Action,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let id = command_id(headers, action.kind(), &tenant)?;
    publish(state, caller, Command::new(id, tenant, caller.requested_by(), action)).await
}

/// Publishes an admin's command and answers 202 with its id. Its span is the trace the command carries
/// to the worker (`traceparent` beside `Nats-Msg-Id`), as a webhook's span is for a purchase.
#[tracing::instrument(name = "admin_command", skip_all, fields(tenant_id = %cmd.tenant_id, kind = cmd.action.kind().as_str()))]
pub(crate) async fn publish(
    state: &AppState,
    caller: &Caller,
    cmd: Command,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let tenant = cmd.tenant_id;
    let stored = state.bus.publish_command(&cmd).await.map_err(ApiError::Unavailable)?;
    tracing::info!(tenant_id = %tenant, command_id = %cmd.id, kind = cmd.action.kind().as_str(), by = %caller.name, duplicate = stored.duplicate, "admin command stored");
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            tenant_id: tenant.to_string(),
            command_id: cmd.id.to_string(),
            kind: cmd.action.kind().as_str().to_owned(),
            duplicate: stored.duplicate,
        }),
    ))
}

/// An admin's change of an existing tenant whose status is one of `allowed`, sent as a command.
async fn checked_change(
    state: &AppState,
    caller: &Caller,
    tenant: TenantId,
    headers: &HeaderMap,
    allowed: &[&str],
    what: &str,
    action: Action,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.require_admin()?;
    let row = existing(state, tenant).await?;
    require_status(&row, allowed, what)?;
    send(state, caller, tenant, headers, action).await
}

/// `POST /v1/tenants/{id}/provision`: resume a failed (or waiting) tenant at its unfinished steps.
#[utoipa::path(
    post,
    path = "/v1/tenants/{id}/provision",
    tag = "tenants",
    params(("id" = String, Path, description = "the tenant's id"), ("Idempotency-Key" = Option<String>, Header, description = "makes a repeated request the same command")),
    responses(
        (status = 202, body = Accepted),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "a viewer token"),
        (status = 404, body = crate::error::ErrorBody, description = "no such tenant"),
        (status = 409, body = crate::error::ErrorBody, description = "the change does not apply to the tenant's status"),
        (status = 503, body = crate::error::ErrorBody, description = "NATS or the control plane cannot take it"),
    ),
    security(("bearer" = []))
)]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let allowed = ["failed", "provisioning", "pending", "awaiting_operator"];
    checked_change(&state, &caller, tenant, &headers, &allowed, "a retry", Action::Retry).await
}

/// `POST /v1/tenants/{id}/suspend`.
#[utoipa::path(
    post,
    path = "/v1/tenants/{id}/suspend",
    tag = "tenants",
    params(("id" = String, Path, description = "the tenant's id"), ("Idempotency-Key" = Option<String>, Header, description = "makes a repeated request the same command")),
    responses(
        (status = 202, body = Accepted),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "a viewer token"),
        (status = 404, body = crate::error::ErrorBody, description = "no such tenant"),
        (status = 409, body = crate::error::ErrorBody, description = "the change does not apply to the tenant's status"),
        (status = 503, body = crate::error::ErrorBody, description = "NATS or the control plane cannot take it"),
    ),
    security(("bearer" = []))
)]
pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    checked_change(&state, &caller, tenant, &headers, &["active", "suspended"], "suspending", Action::Suspend).await
}

/// `POST /v1/tenants/{id}/resume` (also restores a tenant waiting to be offboarded).
#[utoipa::path(
    post,
    path = "/v1/tenants/{id}/resume",
    tag = "tenants",
    params(("id" = String, Path, description = "the tenant's id"), ("Idempotency-Key" = Option<String>, Header, description = "makes a repeated request the same command")),
    responses(
        (status = 202, body = Accepted),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "a viewer token"),
        (status = 404, body = crate::error::ErrorBody, description = "no such tenant"),
        (status = 409, body = crate::error::ErrorBody, description = "the change does not apply to the tenant's status"),
        (status = 503, body = crate::error::ErrorBody, description = "NATS or the control plane cannot take it"),
    ),
    security(("bearer" = []))
)]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    checked_change(&state, &caller, tenant, &headers, &["suspended", "active"], "resuming", Action::Resume).await
}

/// `DELETE /v1/tenants/{id}`: offboard after the grace period (suspended meanwhile), or at once with
/// `?now=true`.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{id}",
    tag = "tenants",
    params(("id" = String, Path, description = "the tenant's id"), ("now" = Option<bool>, Query, description = "offboard at once instead of after the grace period"), ("Idempotency-Key" = Option<String>, Header, description = "makes a repeated request the same command")),
    responses(
        (status = 202, body = Accepted),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "a viewer token"),
        (status = 404, body = crate::error::ErrorBody, description = "no such tenant"),
        (status = 409, body = crate::error::ErrorBody, description = "the change does not apply to the tenant's status"),
        (status = 503, body = crate::error::ErrorBody, description = "NATS or the control plane cannot take it"),
    ),
    security(("bearer" = []))
)]
pub async fn offboard(
    State(state): State<AppState>,
    caller: Caller,
    TenantPath(tenant): TenantPath,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.require_admin()?;
    let now = match query.get("now").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::bad_request("bad_query", "now must be true or false")),
    };
    let row = existing(&state, tenant).await?;
    if now {
        let allowed = ["active", "suspended", "failed", "awaiting_operator", "offboarding", "deleted"];
        require_status(&row, &allowed, "offboarding")?;
    } else {
        // A grace period keeps a tenant suspended meanwhile; one that never became active has nothing to
        // keep, so it is offboarded only when asked to be, at once.
        require_status(
            &row,
            &["active", "suspended", "deleted"],
            "offboarding after the grace period (?now=true offboards any other at once)",
        )?;
    }
    send(&state, &caller, tenant, &headers, Action::Offboard(OffboardRequest { after_grace: !now })).await
}

/// A plan, as the admin API takes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    pub package_id: u32,
    pub subscription_type_id: u32,
}

fn plan_of(state: &AppState, body: &PlanBody) -> Result<(PackageId, SubscriptionTypeId), ApiError> {
    let package = PackageId::try_from(body.package_id).map_err(|e| ApiError::bad_request("unknown_plan", e))?;
    let kind = SubscriptionTypeId::try_from(body.subscription_type_id)
        .map_err(|e| ApiError::bad_request("unknown_plan", e))?;
    state.plans.get(package, kind).ok_or_else(|| {
        ApiError::bad_request(
            "unknown_plan",
            format!("package {package} with subscription type {kind} is not a plan in {}", state.plans.source()),
        )
    })?;
    Ok((package, kind))
}

/// A JSON body, with a 400 in the usual shape when it cannot be read.
pub(crate) fn body<T: serde::de::DeserializeOwned>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(b)| b).map_err(|e| ApiError::bad_request("bad_body", e.body_text()))
}

/// `POST /v1/tenants/{id}/plan` with `{"package_id", "subscription_type_id"}`.
#[utoipa::path(
    post,
    path = "/v1/tenants/{id}/plan",
    tag = "tenants",
    params(("id" = String, Path, description = "the tenant's id"), ("Idempotency-Key" = Option<String>, Header, description = "makes a repeated request the same command")),
    request_body = PlanBody,
    responses(
        (status = 202, body = Accepted),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "a viewer token"),
        (status = 404, body = crate::error::ErrorBody, description = "no such tenant"),
        (status = 409, body = crate::error::ErrorBody, description = "the change does not apply to the tenant's status"),
        (status = 503, body = crate::error::ErrorBody, description = "NATS or the control plane cannot take it"),
    ),
    security(("bearer" = []))
)]
pub async fn change_plan(
    State(state): State<AppState>,
    caller: Caller,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
    json: Result<Json<PlanBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.require_admin()?;
    let (package_id, subscription_type_id) = plan_of(&state, &body(json)?)?;
    let row = existing(&state, tenant).await?;
    require_status(&row, &["active"], "a plan change")?;
    send(&state, &caller, tenant, &headers, Action::ChangePlan(PlanChange { package_id, subscription_type_id })).await
}

/// A tenant an operator creates.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenantBody {
    pub store_name: String,
    pub contact_email: String,
    pub package_id: u32,
    pub subscription_type_id: u32,
    /// The subdomain; made from the store's name when absent.
    pub subdomain: Option<String>,
}

/// `POST /v1/tenants`: creates and provisions a tenant. With an `Idempotency-Key`, the tenant's id is made
/// from it, so a repeated request names the same tenant and stores one command.
#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "tenants",
    params(("Idempotency-Key" = Option<String>, Header, description = "makes a repeated request the same command and the same tenant")),
    request_body = NewTenantBody,
    responses(
        (status = 202, body = Accepted),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "a viewer token"),
        (status = 503, body = crate::error::ErrorBody, description = "NATS or the control plane cannot take it"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    json: Result<Json<NewTenantBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.require_admin()?;
    let b = body(json)?;
    let (package_id, subscription_type_id) =
        plan_of(&state, &PlanBody { package_id: b.package_id, subscription_type_id: b.subscription_type_id })?;
    let store_name = StoreName::parse(&b.store_name).map_err(|e| ApiError::bad_request("bad_store_name", e))?;
    let contact_email =
        ContactEmail::parse(&b.contact_email).map_err(|e| ApiError::bad_request("bad_contact_email", e))?;
    let (slug, slug_derived) = match &b.subdomain {
        Some(s) => (TenantSlug::parse(s).map_err(|e| ApiError::bad_request("bad_subdomain", e))?, false),
        None => (TenantSlug::derive(store_name.as_str()), true),
    };
    let tenant = match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(key) => TenantId::from_admin_key(key),
        None => TenantId::new_random(),
    };
    store(&state)?;
    let spec = ProvisionSpec {
        slug,
        store_name,
        contact_email,
        package_id,
        subscription_type_id,
        purchase: None,
        slug_derived,
    };
    send(&state, &caller, tenant, &headers, Action::Provision(spec)).await
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
    fn only_a_configured_bearer_token_authenticates_and_carries_its_role() {
        let tokens = crate::admin_tokens::parse(Some(&secrecy::SecretString::from(
            "ops:admin:admin-token-1-0123456789,dash:viewer:viewer-token-0123456789".to_owned(),
        )))
        .unwrap();
        assert_eq!(
            authenticate(&tokens, &bearer("Bearer admin-token-1-0123456789")).unwrap(),
            ("ops".into(), Role::Admin)
        );
        assert_eq!(authenticate(&tokens, &bearer("Bearer viewer-token-0123456789")).unwrap().1, Role::Viewer);
        assert!(matches!(authenticate(&tokens, &bearer("Bearer admin-token-2")), Err(AuthFailure::UnknownToken)));
        assert!(matches!(authenticate(&tokens, &bearer("Basic admin-token-1")), Err(AuthFailure::NoBearerToken)));
        assert_eq!(authenticate(&tokens, &bearer("bearer viewer-token-0123456789")).unwrap().1, Role::Viewer);
        assert!(matches!(authenticate(&tokens, &bearer("Bearer")), Err(AuthFailure::NoBearerToken)));
        assert!(matches!(authenticate(&tokens, &HeaderMap::new()), Err(AuthFailure::NoBearerToken)));
        assert!(matches!(authenticate(&[], &bearer("Bearer admin-token-1")), Err(AuthFailure::UnknownToken)));
    }

    #[test]
    fn an_idempotency_key_names_one_command_per_kind_and_tenant() {
        let mut headers = HeaderMap::new();
        headers.insert("idempotency-key", "click-1".parse().unwrap());
        let (a, b) = (TenantId::new_random(), TenantId::new_random());
        let id = |kind, t| command_id(&headers, kind, t).unwrap();
        assert_eq!(id(CommandKind::Suspend, &a), id(CommandKind::Suspend, &a));
        assert_ne!(id(CommandKind::Suspend, &a), id(CommandKind::Resume, &a));
        assert_ne!(id(CommandKind::Suspend, &a), id(CommandKind::Suspend, &b));
        assert_ne!(command_id(&HeaderMap::new(), CommandKind::Suspend, &a).unwrap(), id(CommandKind::Suspend, &a));
    }
}
