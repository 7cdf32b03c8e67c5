//! `configure_dns`: the tenant's hostname and API hostname in Route 53, confirmed `INSYNC`. DNS never
//! fails a provisioning: when it cannot be confirmed within its budget, the tenant goes on to become
//! active flagged `dns_pending`, and the worker keeps retrying in the background.

use std::time::Duration;

use futures::{FutureExt, future::BoxFuture};
use tokio::time::Instant;

use landlord_protocol::{TenantId, TenantSlug};

use super::{ErrorCode, Step, StepContext, StepDone, StepError, StepName, ownership};
use crate::{
    infra::dns::{Dns, hostnames},
    store::{ResourceKind, Store},
};

#[derive(Debug)]
pub struct ConfigureDns;

const NO_ZONE: &str = "no Route 53 zone configured (LANDLORD_ROUTE53_ZONE_ID)";

/// Claims both names for the tenant (refusing records someone else made), UPSERTs both records and waits
/// for the change, retrying transient errors until `deadline`. The background retrier calls this too, so a
/// record that appeared meanwhile is never taken over.
pub async fn apply(
    dns: &Dns,
    store: &Store,
    tenant: &TenantId,
    slug: &TenantSlug,
    ctx_poll: &crate::RetryPolicy,
    deadline: Instant,
) -> Result<(String, String), StepError> {
    // The deadline bounds the calls too, not only the polling between them: Route 53 (or whatever answers
    // at its address) may accept a connection and never reply.
    let attempt = crate::retry::until_deadline(ctx_poll, deadline, || async {
        let (host, api) = hostnames(slug, &dns.domain().await?);
        for name in [&host, &api] {
            let exists = !dns.records_named(name).await?.is_empty();
            let owner = match store.resource_owner(ResourceKind::DnsRecord, name).await? {
                Some(owner) => owner,
                None if exists => return Err(ownership::not_ours(ResourceKind::DnsRecord, name)),
                None => store.claim_resource(tenant, ResourceKind::DnsRecord, name).await?,
            };
            if owner != *tenant {
                return Err(ownership::not_ours(ResourceKind::DnsRecord, name));
            }
        }
        let change = dns.upsert(&[&host, &api]).await?;
        dns.wait_in_sync(&change, ctx_poll, deadline).await?;
        Ok((host, api))
    });
    tokio::time::timeout_at(deadline, attempt).await.unwrap_or_else(|_| {
        Err(StepError::transient(
            ErrorCode::DnsTimeout,
            "Route 53 did not answer within the DNS budget (LANDLORD_DNS_BUDGET_SECS)",
        ))
    })
}

impl Step for ConfigureDns {
    fn name(&self) -> StepName {
        StepName::ConfigureDns
    }

    fn configured_off(&self, deps: &super::Deps) -> Option<String> {
        deps.infra.dns.is_none().then(|| NO_ZONE.to_owned())
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let infra = &ctx.deps.infra;
            let Some(dns) = &infra.dns else {
                return Ok(StepDone::Skipped(NO_ZONE.into()));
            };
            let store = &ctx.deps.store;
            let control_plane =
                |e: crate::store::StoreError| StepError::transient(ErrorCode::ControlPlane, e.to_string());
            let deadline = Instant::now() + infra.dns_budget;
            match apply(dns, store, &ctx.tenant.id, &ctx.tenant.slug, &infra.poll, deadline).await {
                Ok((host, api)) => {
                    store.save_dns(&ctx.tenant.id, &host, &api, false).await.map_err(control_plane)?;
                    Ok(StepDone::Done(format!("{host} and {api} point at {} and are in sync", infra.dns_target_label)))
                }
                // Someone else's record under the tenant's name: a person must decide; nothing was changed.
                Err(e) if !e.is_transient() && e.code == ErrorCode::ResourceNotOurs => Err(e),
                Err(e) => {
                    // The names are only a record for operators here; Route 53 that does not answer must not
                    // hold the step past its budget for them.
                    let names = tokio::time::timeout(Duration::from_secs(5), infra.hostnames(&ctx.tenant.slug)).await;
                    let (host, api) = names.ok().and_then(|r| r.ok()).flatten().unwrap_or_default();
                    store.save_dns(&ctx.tenant.id, &host, &api, true).await.map_err(control_plane)?;
                    Ok(StepDone::Deferred(format!(
                        "DNS not confirmed within {} s ({e}); the tenant goes on and DNS keeps being retried",
                        infra.dns_budget.as_secs()
                    )))
                }
            }
        }
        .boxed()
    }

    fn undo<'a>(&'a self, ctx: &'a StepContext<'a>) -> Option<BoxFuture<'a, Result<StepDone, StepError>>> {
        Some(
            async move {
                let Some(dns) = &ctx.deps.infra.dns else {
                    return Ok(StepDone::Skipped("no Route 53 zone configured".into()));
                };
                let (host, api) = hostnames(&ctx.tenant.slug, &dns.domain().await?);
                let mut ours = Vec::new();
                for name in [host, api] {
                    if ownership::is_ours(ctx, ResourceKind::DnsRecord, &name).await? {
                        ours.push(name);
                    }
                }
                if ours.is_empty() {
                    return Ok(StepDone::Skipped("no DNS record of this tenant was created by Landlord".into()));
                }
                let names: Vec<&str> = ours.iter().map(String::as_str).collect();
                dns.delete(&names).await?;
                for name in &ours {
                    ownership::release(ctx, ResourceKind::DnsRecord, name).await?;
                }
                // Nothing is pending any more: the background retrier must not bring the records back.
                ctx.deps.store.clear_dns_pending(&ctx.tenant.id).await?;
                Ok(StepDone::Done(format!("records for {} deleted", names.join(" and "))))
            }
            .boxed(),
        )
    }
}
