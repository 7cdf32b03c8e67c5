//! Durable timers: what must happen later is a time in the control plane, never a sleeping task, so it
//! survives restarts and fires on whichever worker looks first. A tenant whose subscription ended is
//! offboarded at its `offboard_at`; a tenant waiting for an operator is resumed once it can go on (it was
//! handed a server, or a shared server has room again) and otherwise reminded of every
//! `LANDLORD_OPERATOR_REMINDER`. Every worker looks every few seconds; the command or event a due timer
//! becomes has an id made from the tenant and the time, so several workers finding it at once store it
//! once, and the work itself runs once under the tenant's lease.

use std::time::Duration;

use landlord_protocol::{Action, Command, CommandId, EventKind, Placement, TenantId};
use tokio_util::sync::CancellationToken;

use crate::Worker;

/// Fires due timers every `interval` until `shutdown`.
pub async fn run(worker: &Worker, interval: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = fire_due(worker).await {
            tracing::warn!(error = %e, "due timers could not be read; trying again");
        }
        if let Err(e) = resume_waiting(worker).await {
            tracing::warn!(error = %e, "waiting tenants could not be read; trying again");
        }
        if let Err(e) = remind_operators(worker, worker.runner.config.operator_reminder).await {
            tracing::warn!(error = %e, "operator reminders could not be read; trying again");
        }
    }
}

/// Publishes an offboard command for every suspended tenant whose offboarding time has come; returns how
/// many were published.
pub async fn fire_due(worker: &Worker) -> Result<usize, crate::store::StoreError> {
    let store = &worker.runner.deps.store;
    let mut fired = 0;
    for row in store.due_offboardings(chrono::Utc::now()).await? {
        let (Ok(tenant), Some(at)) = (TenantId::parse(&row.id), row.offboard_at) else { continue };
        let Ok(id) = CommandId::derived(&format!("offboard-due-{tenant}-{}", at.timestamp())) else { continue };
        let cmd = Command::new(
            id,
            tenant,
            "landlord (subscription ended; grace period over)",
            Action::Offboard(Default::default()),
        );
        match worker.runner.progress.bus().publish_command(&cmd).await {
            Ok(stored) => {
                if !stored.duplicate {
                    tracing::info!(tenant_id = %tenant, slug = %row.slug, "grace period over; offboarding");
                }
                fired += 1;
            }
            Err(e) => tracing::warn!(error = %e, tenant_id = %tenant, "offboarding not requested yet; trying again"),
        }
    }
    Ok(fired)
}

/// Resumes every waiting tenant that can go on now: one handed a server (it is placed), or one waiting
/// for room on a shared server of its engine, longest waiting first and no more than there are free
/// places. Returns how many were resumed. A tenant that finds the room taken by a new purchase meanwhile
/// waits again, from a new time, so it is tried again.
pub async fn resume_waiting(worker: &Worker) -> Result<usize, crate::store::StoreError> {
    let (store, config) = (&worker.runner.deps.store, &worker.runner.config);
    let mut resumed = 0;
    let mut free = std::collections::HashMap::new();
    for row in store.awaiting_tenants().await? {
        let (Ok(tenant), Some(since)) = (TenantId::parse(&row.id), row.awaiting_since) else { continue };
        let can_go_on = if row.db_server.is_some() {
            true
        } else {
            let package = landlord_protocol::PackageId::try_from(row.package_id as u32);
            let kind = landlord_protocol::SubscriptionTypeId::try_from(row.subscription_type_id as u32);
            let plan = match (package, kind) {
                (Ok(package), Ok(kind)) => config.plans.get(package, kind),
                _ => None,
            };
            let (placement, engine) = worker.runner.deps.servers.placement_of(plan);
            if placement != Placement::Shared {
                false
            } else {
                let left = match free.get(&engine) {
                    Some(n) => *n,
                    None => store.shared_free(engine).await?,
                };
                free.insert(engine, left - 1);
                left > 0
            }
        };
        if !can_go_on {
            continue;
        }
        let Ok(id) = CommandId::derived(&format!("resume-{tenant}-{}", since.timestamp_micros())) else { continue };
        let cmd = Command::new(id, tenant, "landlord (a database server is available)", Action::Retry);
        match worker.runner.progress.bus().publish_command(&cmd).await {
            Ok(stored) => {
                if !stored.duplicate {
                    tracing::info!(tenant_id = %tenant, slug = %row.slug, "a waiting tenant can go on; resuming it");
                }
                resumed += 1;
            }
            Err(e) => tracing::warn!(error = %e, tenant_id = %tenant, "a waiting tenant not resumed yet; trying again"),
        }
    }
    Ok(resumed)
}

/// Reminds operators of every tenant that has waited another `every` since they were last told: a
/// progress event (the same event id for the same reminder, whichever worker sends it), then the time
/// recorded. Returns how many reminders went out.
pub async fn remind_operators(worker: &Worker, every: Duration) -> Result<usize, crate::store::StoreError> {
    let store = &worker.runner.deps.store;
    let now = chrono::Utc::now();
    let mut sent = 0;
    for row in store.awaiting_tenants().await? {
        if !crate::store::reminder_due(&row, every, now) {
            continue;
        }
        let Ok(tenant) = TenantId::parse(&row.id) else { continue };
        let last = row.operator_reminded_at;
        let since = row.awaiting_since.map_or_else(|| "a while".to_owned(), |s| s.to_rfc3339());
        let reason = row.awaiting_reason.as_deref().unwrap_or("a person must act");
        let key = format!("landlord:reminder:{}", last.map_or(0, |t| t.timestamp_micros()));
        let detail = crate::progress::Detail {
            status: Some(landlord_protocol::TenantStatus::AwaitingOperator),
            message: Some(format!("reminder: tenant {} has waited for an operator since {since}: {reason}", row.slug)),
            event_id: Some(uuid::Uuid::new_v5(&tenant.as_uuid(), key.as_bytes())),
            ..Default::default()
        };
        let deps = &worker.runner.deps;
        let subject = format!("Landlord reminder: tenant {} still waits for an operator", row.slug);
        let body = format!(
            "Tenant {} ({tenant}) has waited for an operator since {since}:\n\n{reason}\n\n`landlord queue` lists \
             everything waiting for a person.\n",
            row.slug
        );
        // One tenant's notice that cannot be queued now must not hold back the others' reminders.
        if let Err(e) = crate::mail::notify_operators(store, &deps.mail, &tenant, &key, &subject, &body).await {
            tracing::warn!(error = %e, tenant_id = %tenant, "operator notice not queued yet; trying again");
            continue;
        }
        if let Err(e) = worker.runner.progress.publish(Some(tenant), None, EventKind::OperatorReminder, detail).await {
            tracing::warn!(error = %e, tenant_id = %tenant, "operator reminder not sent yet; trying again");
            continue;
        }
        if store.mark_reminded(&tenant, last, now).await? {
            tracing::warn!(tenant_id = %tenant, slug = %row.slug, %reason, "reminded operators of a waiting tenant");
            sent += 1;
        }
    }
    Ok(sent)
}
