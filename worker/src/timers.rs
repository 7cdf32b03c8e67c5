//! Durable timers: what must happen later is a time in the control plane, never a sleeping task, so it
//! survives restarts and fires on whichever worker looks first. Today there is one: a tenant whose
//! subscription ended is offboarded at its `offboard_at`. Every worker looks every few seconds; the
//! command a due timer becomes has an id made from the tenant and the time, so several workers finding it
//! at once store it once, and the offboarding itself runs once under the tenant's lease.

use std::time::Duration;

use landlord_protocol::{Action, Command, CommandId, TenantId};
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
