//! The admin API's reads: tenants (filtered, paginated), one tenant with its steps and resources, and the
//! audit log. Viewers and admins may read. Nothing here ever shows a secret: the tenant's password is
//! not even read.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
};
use landlord_protocol::{PackageId, SubscriptionTypeId, TenantId, TenantStatus};
use landlord_worker::{
    steps::StepName,
    store::{TenantFilter, entities::tenant},
};
use serde_json::{Value, json};

use super::admin::{Caller, TenantPath, store};
use crate::{AppState, error::ApiError};

/// Most tenants or audit entries one page holds.
const MAX_PAGE: u64 = 500;

fn internal(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(e.into())
}

/// A tenant as the API shows it.
fn view(state: &AppState, t: &tenant::Model) -> Value {
    let plan_name = PackageId::try_from(t.package_id as u32)
        .ok()
        .zip(SubscriptionTypeId::try_from(t.subscription_type_id as u32).ok())
        .and_then(|(p, k)| state.plans.get(p, k))
        .map(|p| p.name.clone());
    json!({
        "id": t.id,
        "subdomain": t.slug,
        "store_name": t.store_name,
        "contact_email": t.contact_email,
        "status": t.status,
        "plan": {"package_id": t.package_id, "subscription_type_id": t.subscription_type_id, "name": plan_name},
        "hostname": t.hostname,
        "api_hostname": t.api_hostname,
        "dns_pending": t.dns_pending,
        "payment_overdue": t.payment_overdue,
        "offboard_at": t.offboard_at,
        "last_error": t.last_error,
        "database": {"engine": t.db_engine, "name": t.db_name, "login": t.db_login},
        "stack": {"id": t.stack_id, "failure": t.stack_failure},
        "stripe": {"subscription": t.stripe_subscription, "customer": t.stripe_customer},
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
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

/// `GET /v1/tenants?status=&package_id=&subscription_type_id=&failing_step=&dns_pending=&payment_overdue=&limit=&after=`.
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(
        &query,
        &[
            "status",
            "package_id",
            "subscription_type_id",
            "failing_step",
            "dns_pending",
            "payment_overdue",
            "limit",
            "after",
        ],
    )?;
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
        after,
        limit: limit(&query)?,
    };
    let rows = store(&state)?.tenant_page(&filter).await.map_err(internal)?;
    let next = (rows.len() as u64 == filter.limit).then(|| rows.last().map(|t| t.id.clone())).flatten();
    let tenants: Vec<Value> = rows.iter().map(|t| view(&state, t)).collect();
    Ok(Json(json!({"tenants": tenants, "next_after": next})))
}

/// `GET /v1/tenants/{id}`: the tenant, each step's state, attempts and last error, and what Landlord made.
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    TenantPath(id): TenantPath,
) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    let row = store.tenant(&id).await.map_err(internal)?.ok_or(ApiError::TenantNotFound(id))?;
    let steps: Vec<Value> = store
        .steps(&id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|s| {
            json!({
                "step": s.step, "status": s.status, "attempts": s.attempts, "started_at": s.started_at,
                "finished_at": s.finished_at, "duration_ms": s.duration_ms,
                "error": s.error_code.map(|code| json!({"code": code, "message": s.error_message})),
            })
        })
        .collect();
    let resources: Vec<Value> = store
        .resources_of(&id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|(kind, name)| json!({"kind": kind, "name": name}))
        .collect();
    let mut tenant = view(&state, &row);
    tenant["steps"] = steps.into();
    tenant["resources"] = resources.into();
    Ok(Json(tenant))
}

/// `GET /v1/audit?tenant=&before=&limit=`: who asked for what, newest first.
pub async fn audit(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
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
    let entries: Vec<Value> = rows
        .into_iter()
        .map(|a| {
            let detail = a.detail.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok());
            json!({"at": a.at, "actor": a.actor, "action": a.action, "tenant_id": a.tenant_id, "command_id": a.command_id, "detail": detail})
        })
        .collect();
    Ok(Json(json!({"entries": entries})))
}
