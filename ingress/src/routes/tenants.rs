//! The admin API's reads: tenants (filtered, paginated), one tenant with its steps and resources, and the
//! audit log. Viewers and admins may read. Nothing here ever shows a secret: the tenant's password is
//! not even read.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
};
use chrono::{DateTime, Utc};
use landlord_protocol::{PackageId, SubscriptionTypeId, TenantId, TenantStatus};
use landlord_worker::{
    steps::StepName,
    store::{Store, TenantFilter, entities::tenant},
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::admin::{Caller, TenantPath, store};
use crate::{AppState, error::ApiError};

/// Most tenants or audit entries one page holds.
const MAX_PAGE: u64 = 500;

fn internal(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(e.into())
}

/// A tenant as the API shows it; never a secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub subdomain: String,
    pub store_name: String,
    pub contact_email: String,
    /// `pending`, `provisioning`, `active`, `suspended`, `awaiting_operator`, `moving`, `failed`, `offboarding`,
    /// `deleted`.
    pub status: String,
    pub plan: PlanView,
    pub hostname: Option<String>,
    pub api_hostname: Option<String>,
    /// DNS is not confirmed yet; workers keep trying.
    pub dns_pending: bool,
    /// Stripe reports a failed payment it is still retrying.
    pub payment_overdue: bool,
    /// When the tenant is to be offboarded, if it is.
    pub offboard_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Why and since when the tenant waits for an operator (`awaiting_operator` only).
    pub awaiting: Option<AwaitingView>,
    pub database: DatabaseView,
    pub stack: StackView,
    pub stripe: StripeView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The step running now, or the one that failed (the most recent of either): what the list shows.
    pub step: Option<CurrentStep>,
    /// Each step's state (`GET /v1/tenants/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepView>>,
    /// What Landlord made and claimed for the tenant (`GET /v1/tenants/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<ResourceView>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub package_id: i32,
    pub subscription_type_id: i32,
    /// The catalogue's name for the plan, when the catalogue has it.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AwaitingView {
    /// What a person must do.
    pub reason: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// When operators were last reminded.
    pub reminded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseView {
    /// The registered database server it is placed on (`GET /v1/servers`).
    pub server: Option<String>,
    pub engine: Option<String>,
    pub name: Option<String>,
    pub login: Option<String>,
    /// The server a move copies it to, or a dedicated server kept for its next plan change.
    pub moving_to: Option<String>,
    /// The server whose old copy a move has still to drop.
    pub moved_from: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StackView {
    pub id: Option<String>,
    /// The failing resource and its reason, when the stack failed.
    pub failure: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StripeView {
    pub subscription: Option<String>,
    pub customer: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    pub step: String,
    /// `started` (running), `succeeded`, `failed`, `skipped`, `deferred`, `undone`.
    pub status: String,
    pub attempts: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub error: Option<StepErrorView>,
}

/// The step a tenant shows as current: one running, or one that failed while the tenant is failed or
/// waiting (an active tenant's failed step belongs to a change that was rolled back, not to its state).
fn current_step(t: &tenant::Model, step: Option<(String, String)>) -> Option<CurrentStep> {
    let (name, status) = step?;
    let failing_shown = matches!(t.status.as_str(), "failed" | "awaiting_operator" | "offboarding");
    (status == "started" || failing_shown).then_some(CurrentStep { name, status })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentStep {
    pub name: String,
    /// `started` or `failed`.
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepErrorView {
    pub code: String,
    pub message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceView {
    /// `database`, `login`, `dns_record`, `stack`, `archive`.
    pub kind: String,
    pub name: String,
}

/// One page of tenants.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPage {
    pub tenants: Vec<TenantView>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<String>,
}

/// One audit entry: who asked for what, for which tenant, when.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// `admin:<token name>`, `stripe`, Landlord itself, or what a NATS publisher wrote.
    pub actor: String,
    /// The command's kind.
    pub action: String,
    pub tenant_id: String,
    pub command_id: String,
    /// What was asked beyond the kind.
    #[schema(value_type = Object)]
    pub detail: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
}

/// Server names by id, to show where tenants are placed.
pub(crate) async fn server_names(store: &Store) -> Result<HashMap<String, String>, ApiError> {
    Ok(store.servers().await.map_err(internal)?.into_iter().map(|s| (s.id, s.name)).collect())
}

pub(crate) fn view(state: &AppState, servers: &HashMap<String, String>, t: &tenant::Model) -> TenantView {
    let name = PackageId::try_from(t.package_id as u32)
        .ok()
        .zip(SubscriptionTypeId::try_from(t.subscription_type_id as u32).ok())
        .and_then(|(p, k)| state.plans.get(p, k))
        .map(|p| p.name.clone());
    let server_name = |id: &String| servers.get(id).cloned().unwrap_or_else(|| id.clone());
    TenantView {
        id: t.id.clone(),
        subdomain: t.slug.clone(),
        store_name: t.store_name.clone(),
        contact_email: t.contact_email.clone(),
        status: t.status.clone(),
        plan: PlanView { package_id: t.package_id, subscription_type_id: t.subscription_type_id, name },
        hostname: t.hostname.clone(),
        api_hostname: t.api_hostname.clone(),
        dns_pending: t.dns_pending,
        payment_overdue: t.payment_overdue,
        offboard_at: t.offboard_at,
        last_error: t.last_error.clone(),
        awaiting: (t.status == TenantStatus::AwaitingOperator.as_str()).then(|| AwaitingView {
            reason: t.awaiting_reason.clone(),
            since: t.awaiting_since,
            reminded_at: t.operator_reminded_at,
        }),
        database: DatabaseView {
            server: t.db_server.as_ref().map(&server_name),
            engine: t.db_engine.clone(),
            name: t.db_name.clone(),
            login: t.db_login.clone(),
            moving_to: t.moving_to.as_ref().map(&server_name),
            moved_from: t.moved_from.as_ref().map(&server_name),
        },
        stack: StackView { id: t.stack_id.clone(), failure: t.stack_failure.clone() },
        stripe: StripeView { subscription: t.stripe_subscription.clone(), customer: t.stripe_customer.clone() },
        created_at: t.created_at,
        updated_at: t.updated_at,
        step: None,
        steps: None,
        resources: None,
    }
}

fn flag(query: &HashMap<String, String>, key: &str) -> Result<Option<bool>, ApiError> {
    match query.get(key).map(String::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::bad_request("bad_query", format!("{key} must be true or false"))),
    }
}

fn number(query: &HashMap<String, String>, key: &str) -> Result<Option<u32>, ApiError> {
    query
        .get(key)
        .map(|v| {
            v.parse::<u32>().map_err(|_| ApiError::bad_request("bad_query", format!("{key} must be a whole number")))
        })
        .transpose()
}

fn limit(query: &HashMap<String, String>) -> Result<u64, ApiError> {
    let n = number(query, "limit")?.map_or(50, u64::from);
    if !(1..=MAX_PAGE).contains(&n) {
        return Err(ApiError::bad_request("bad_query", format!("limit must be 1 to {MAX_PAGE}")));
    }
    Ok(n)
}

/// Refuses parameters this endpoint does not know, so a typo is not a silently unfiltered list.
fn only(query: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match query.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => {
            Err(ApiError::bad_request("bad_query", format!("unknown parameter {k:?}; known: {}", known.join(", "))))
        }
        None => Ok(()),
    }
}

/// Longest `search` text: more than any subdomain or email address needs.
const MAX_SEARCH: usize = 100;

/// A `search` text as the store takes it: printable, at most [`MAX_SEARCH`] characters.
fn search_text(text: &str) -> Result<String, ApiError> {
    if text.chars().count() > MAX_SEARCH || text.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("search must be 1 to {MAX_SEARCH} printable characters"),
        ));
    }
    Ok(text.to_owned())
}

/// Tenants, filtered, in pages ordered by id.
#[utoipa::path(
    get,
    path = "/v1/tenants",
    tag = "tenants",
    params(
        ("status" = Option<String>, Query, description = "only tenants of this status"),
        ("package_id" = Option<u32>, Query),
        ("subscription_type_id" = Option<u32>, Query),
        ("failing_step" = Option<String>, Query, description = "only tenants whose step of this name failed"),
        ("dns_pending" = Option<bool>, Query),
        ("payment_overdue" = Option<bool>, Query),
        ("search" = Option<String>, Query, description = "only tenants whose subdomain or contact email starts with this text (ASCII letters in any case, at most 100 characters, `_` and `%` taken literally; empty: no filter)"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
        ("after" = Option<String>, Query, description = "the previous page's next_after"),
    ),
    responses(
        (status = 200, body = TenantPage),
        (status = 400, body = crate::error::ErrorBody, description = "an unknown parameter or value"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody, description = "no control plane"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<TenantPage>, ApiError> {
    only(
        &query,
        &[
            "status",
            "package_id",
            "subscription_type_id",
            "failing_step",
            "dns_pending",
            "payment_overdue",
            "search",
            "limit",
            "after",
        ],
    )?;
    let search = query.get("search").map(|s| s.trim()).filter(|s| !s.is_empty()).map(search_text).transpose()?;
    let status = query
        .get("status")
        .map(|s| {
            TenantStatus::parse(s)
                .ok_or_else(|| ApiError::bad_request("bad_query", format!("status {s:?} is not a tenant status")))
        })
        .transpose()?;
    let failing_step = query
        .get("failing_step")
        .map(|s| StepName::parse(s).map_err(|e| ApiError::bad_request("bad_query", e)))
        .transpose()?;
    let after = query
        .get("after")
        .map(|s| TenantId::parse(s).map_err(|e| ApiError::bad_request("bad_query", e)))
        .transpose()?;
    let filter = TenantFilter {
        status,
        package_id: number(&query, "package_id")?,
        subscription_type_id: number(&query, "subscription_type_id")?,
        failing_step,
        dns_pending: flag(&query, "dns_pending")?,
        payment_overdue: flag(&query, "payment_overdue")?,
        search,
        after,
        limit: limit(&query)?,
    };
    let store = store(&state)?;
    let rows = store.tenant_page(&filter).await.map_err(internal)?;
    let next_after = (rows.len() as u64 == filter.limit).then(|| rows.last().map(|t| t.id.clone())).flatten();
    let servers = server_names(store).await?;
    let ids: Vec<String> = rows.iter().map(|t| t.id.clone()).collect();
    let mut current = store.current_steps(&ids).await.map_err(internal)?;
    let tenants = rows
        .iter()
        .map(|t| {
            let mut v = view(&state, &servers, t);
            v.step = current_step(t, current.remove(&t.id));
            v
        })
        .collect();
    Ok(Json(TenantPage { tenants, next_after }))
}

/// The tenant, each step's state, attempts and last error, and what Landlord made.
#[utoipa::path(
    get,
    path = "/v1/tenants/{id}",
    tag = "tenants",
    params(("id" = String, Path, description = "the tenant's id")),
    responses(
        (status = 200, body = TenantView),
        (status = 400, body = crate::error::ErrorBody, description = "not a tenant id"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody, description = "no such tenant"),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    TenantPath(id): TenantPath,
) -> Result<Json<TenantView>, ApiError> {
    let store = store(&state)?;
    let row = store.tenant(&id).await.map_err(internal)?.ok_or(ApiError::TenantNotFound(id))?;
    let steps = store
        .steps(&id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|s| StepView {
            step: s.step,
            status: s.status,
            attempts: s.attempts,
            started_at: s.started_at,
            finished_at: s.finished_at,
            duration_ms: s.duration_ms,
            error: s.error_code.map(|code| StepErrorView { code, message: s.error_message }),
        })
        .collect();
    let resources = store
        .resources_of(&id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|(kind, name)| ResourceView { kind, name })
        .collect();
    let servers = server_names(store).await?;
    let current = store.current_steps(&[id.to_string()]).await.map_err(internal)?.remove(&id.to_string());
    let step = current_step(&row, current);
    Ok(Json(TenantView { step, steps: Some(steps), resources: Some(resources), ..view(&state, &servers, &row) }))
}

/// Who asked for what, newest first.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(
        ("tenant" = Option<String>, Query, description = "one tenant's entries"),
        ("before" = Option<String>, Query, description = "entries before this RFC 3339 time (the previous page's last `at`)"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
    ),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn audit(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<AuditPage>, ApiError> {
    only(&query, &["tenant", "before", "limit"])?;
    let tenant = query
        .get("tenant")
        .map(|s| TenantId::parse(s).map_err(|e| ApiError::bad_request("bad_query", e)))
        .transpose()?;
    let before = query
        .get("before")
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|_| ApiError::bad_request("bad_query", "before must be an RFC 3339 time"))
        })
        .transpose()?;
    let rows = store(&state)?.audit_entries(tenant.as_ref(), before, limit(&query)?).await.map_err(internal)?;
    let entries = rows
        .into_iter()
        .map(|a| AuditEntry {
            detail: a.detail.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
            at: a.at,
            actor: a.actor,
            action: a.action,
            tenant_id: a.tenant_id,
            command_id: a.command_id,
        })
        .collect();
    Ok(Json(AuditPage { entries }))
}

/// A paid purchase that made no tenant, waiting for an operator to settle it with the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedPurchaseView {
    /// The tenant id the purchase would have had.
    pub tenant_id: String,
    /// `invalid_metadata`, `subdomain_taken`, …
    pub code: String,
    pub reason: String,
    pub checkout_session: Option<String>,
    pub customer: Option<String>,
    pub contact_email: Option<String>,
    pub subdomain: Option<String>,
    pub refused_at: DateTime<Utc>,
}

/// Everything that waits for a person, oldest first: tenants paused in `awaiting_operator` and paid
/// purchases that could not become tenants.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorQueue {
    pub waiting_tenants: Vec<TenantView>,
    pub refused_purchases: Vec<RefusedPurchaseView>,
}

/// What waits for an operator: tenants paused for a person (a server to hand over, no room on shared
/// servers) and refused purchases not yet dismissed.
#[utoipa::path(
    get,
    path = "/v1/operator-queue",
    tag = "tenants",
    responses(
        (status = 200, body = OperatorQueue),
        (status = 401, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody, description = "no control plane"),
    ),
    security(("bearer" = []))
)]
pub async fn operator_queue(State(state): State<AppState>, _caller: Caller) -> Result<Json<OperatorQueue>, ApiError> {
    let store = store(&state)?;
    let servers = server_names(store).await?;
    let waiting_tenants =
        store.awaiting_tenants().await.map_err(internal)?.iter().map(|t| view(&state, &servers, t)).collect();
    let mut refused = store.refused_purchases(false).await.map_err(internal)?;
    refused.sort_by_key(|r| r.refused_at);
    let refused_purchases = refused
        .into_iter()
        .map(|r| RefusedPurchaseView {
            tenant_id: r.tenant_id,
            code: r.code,
            reason: r.reason,
            checkout_session: r.checkout_session,
            customer: r.customer,
            contact_email: r.contact_email,
            subdomain: r.subdomain,
            refused_at: r.refused_at,
        })
        .collect();
    Ok(Json(OperatorQueue { waiting_tenants, refused_purchases }))
}
