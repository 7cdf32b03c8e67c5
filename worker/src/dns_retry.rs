//! Background retries of DNS that `configure_dns` deferred: every interval, each tenant flagged
//! `dns_pending` gets its records UPSERTed again; once they are in sync the flag is cleared, the step is
//! recorded as succeeded and a progress event says so. UPSERT makes concurrent workers harmless.

use std::time::{Duration, Instant};

use landlord_protocol::{EventKind, TenantId, TenantSlug, TenantStatus};
use tokio_util::sync::CancellationToken;

use crate::{
    progress::{Detail, Progress},
    steps::{Deps, apply_dns},
    store::StepState,
};

/// Retries every pending tenant once; returns how many are now in sync.
pub async fn retry_pending(deps: &Deps, progress: &Progress) -> usize {
    let Some(dns) = &deps.infra.dns else { return 0 };
    let pending = match deps.store.dns_pending().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list tenants with pending DNS");
            return 0;
        }
    };
    let mut fixed = 0;
    for tenant in pending {
        let (Ok(id), Ok(slug)) = (TenantId::parse(&tenant.id), TenantSlug::parse(&tenant.slug)) else {
            continue;
        };
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + deps.infra.dns_budget;
        match apply_dns(dns, &deps.store, &id, &slug, &deps.infra.poll, deadline).await {
            Ok((host, api)) => {
                let saved = async {
                    deps.store.save_dns(&id, &host, &api, false).await?;
                    deps.store.step_finished(&id, "configure_dns", StepState::Succeeded, started.elapsed(), None).await
                };
                if let Err(e) = saved.await {
                    tracing::warn!(error = %e, tenant_id = %id, "DNS in sync but not recorded; will retry");
                    continue;
                }
                let status = TenantStatus::parse(&tenant.status);
                let detail = Detail {
                    step: Some("configure_dns"),
                    duration: Some(started.elapsed()),
                    status,
                    message: Some(format!("{host} and {api} are in sync (retried in the background)")),
                    ..Detail::default()
                };
                progress.emit(Some(id), None, EventKind::StepSucceeded, detail).await;
                fixed += 1;
            }
            Err(e) => tracing::info!(tenant_id = %id, error = %e, "DNS still pending"),
        }
    }
    fixed
}

/// Runs [`retry_pending`] every `interval` until `shutdown`.
pub async fn run(deps: &Deps, progress: &Progress, interval: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        retry_pending(deps, progress).await;
    }
}
