//! Background retries of DNS that `configure_dns` deferred: every interval, each tenant flagged
//! `dns_pending` gets its records UPSERTed again; once they are in sync the step is recorded as
//! succeeded, the flag is cleared and a progress event says so. The retrier holds the tenant's lease
//! while it works, like any run, so it never works on a tenant at the same time as a run of it.

use std::time::{Duration, Instant};

use landlord_protocol::{EventKind, TenantId, TenantSlug, TenantStatus};

use crate::{
    consumer::Worker,
    infra::dns::Dns,
    keepalive::NoKeepAlive,
    lease::{Acquired, Lease},
    progress::{Detail, Progress},
    steps::{Deps, StepName, apply_dns},
    store::{StepState, entities::tenant},
};

/// Retries every pending tenant once, skipping those a run (or another worker's retrier) holds; returns
/// how many are now in sync. Stops at once when the worker shuts down (`runner.shutdown`): the records
/// are UPSERTed, so abandoning one midway is safe, and the lease it held is released with the worker's
/// others (`<holder>/dns-retry/<tenant>`).
pub async fn retry_pending(worker: &Worker) -> usize {
    let shutdown = &worker.runner.shutdown;
    tokio::select! {
        fixed = retry_each(worker) => fixed,
        () = shutdown.cancelled() => 0,
    }
}

async fn retry_each(worker: &Worker) -> usize {
    let deps = &worker.runner.deps;
    let Some(dns) = &deps.infra.dns else { return 0 };
    let pending = match deps.store.dns_pending().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list tenants with pending DNS");
            return 0;
        }
    };
    let ttl = worker.runner.config.lease_ttl;
    let mut fixed = 0;
    for tenant in pending {
        let (Ok(id), Ok(slug)) = (TenantId::parse(&tenant.id), TenantSlug::parse_stored(&tenant.slug)) else {
            continue;
        };
        // A name of its own per tenant: the process's renewal counts the rows it extends by name, and a
        // lease whose release failed must not be renewed along with the next tenant's.
        let holder = format!("{}/dns-retry/{id}", worker.holder);
        let lease = Lease { store: &deps.store, renewals: &worker.renewals, tenant: &id, holder: &holder };
        let acquired = match lease.acquire().await {
            Ok(Acquired::At(at)) => at,
            Ok(Acquired::Busy(_)) => {
                tracing::info!(tenant_id = %id, "the tenant is being worked on; its DNS is retried next time");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, tenant_id = %id, "cannot take the tenant's lease; DNS is retried next time");
                continue;
            }
        };
        // Read again under the lease: a run may have undone the records since the list was read. A tenant
        // that is not serving (suspended or moving: its names may be parked; offboarding, deleted) is left alone.
        let serving = |t: &crate::store::entities::tenant::Model| {
            !matches!(t.status.as_str(), "suspended" | "moving" | "offboarding" | "deleted")
        };
        if !matches!(deps.store.tenant(&id).await, Ok(Some(t)) if t.dns_pending && serving(&t)) {
            lease.release().await;
            continue;
        }
        // DNS may be polled longer than the lease lasts (LANDLORD_DNS_BUDGET_SECS): it is renewed meanwhile.
        let work = retry_one(deps, &worker.progress, dns, &tenant, id, &slug);
        match Box::pin(lease.hold(acquired, ttl / 4, &NoKeepAlive, work)).await {
            Ok(true) => fixed += 1,
            Ok(false) => {}
            Err(gone) => tracing::error!(tenant_id = %id, reason = %gone, "DNS retry abandoned; retried next time"),
        }
        lease.release().await;
    }
    fixed
}

/// UPSERTs one tenant's records and, once they are in sync, records it; true when it did.
async fn retry_one(
    deps: &Deps,
    progress: &Progress,
    dns: &Dns,
    tenant: &tenant::Model,
    id: TenantId,
    slug: &TenantSlug,
) -> bool {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + deps.infra.dns_budget;
    let (host, api) = match apply_dns(dns, &deps.store, &id, slug, &deps.infra.poll, deadline).await {
        Ok(names) => names,
        Err(e) => {
            tracing::info!(tenant_id = %id, error = %e, "DNS still pending");
            return false;
        }
    };
    // The step first, the flag last: stopped in between, the tenant is still pending and simply retried.
    let saved = async {
        deps.store.step_finished(&id, StepName::ConfigureDns, StepState::Succeeded, started.elapsed(), None).await?;
        deps.store.save_dns(&id, &host, &api, false).await
    };
    if let Err(e) = saved.await {
        tracing::warn!(error = %e, tenant_id = %id, "DNS in sync but not recorded; will retry");
        return false;
    }
    let detail = Detail {
        step: Some(StepName::ConfigureDns),
        duration: Some(started.elapsed()),
        status: TenantStatus::parse(&tenant.status),
        message: Some(format!("{host} and {api} are in sync (retried in the background)")),
        ..Detail::default()
    };
    progress.emit(Some(id), None, EventKind::StepSucceeded, detail).await;
    true
}

/// Runs [`retry_pending`] every `interval` until the worker shuts down (`runner.shutdown`).
pub async fn run(worker: &Worker, interval: Duration) {
    let shutdown = &worker.runner.shutdown;
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
        Box::pin(retry_pending(worker)).await;
    }
}
