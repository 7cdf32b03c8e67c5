//! `configure_dns`: the tenant's hostname and API hostname in Route 53, confirmed `INSYNC`. DNS never
//! fails a provisioning: when it cannot be confirmed within its budget, the tenant goes on to become
//! active flagged `dns_pending`, and the worker keeps retrying in the background.

use futures::{FutureExt, future::BoxFuture};
use tokio::time::Instant;

use super::{Step, StepContext, StepDone, StepError};
use crate::infra::dns::{Dns, hostnames};

#[derive(Debug)]
pub struct ConfigureDns;

/// UPSERTs both records and waits for the change, retrying transient errors until `deadline`.
pub async fn apply(
    dns: &Dns,
    slug: &landlord_protocol::TenantSlug,
    ctx_poll: &crate::RetryPolicy,
    deadline: Instant,
) -> Result<(String, String), StepError> {
    crate::retry::until_deadline(ctx_poll, deadline, || async {
        let (host, api) = hostnames(slug, &dns.domain().await?);
        let change = dns.upsert(&[&host, &api]).await?;
        dns.wait_in_sync(&change, ctx_poll, deadline).await?;
        Ok((host, api))
    })
    .await
}

impl Step for ConfigureDns {
    fn name(&self) -> &'static str {
        "configure_dns"
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let infra = &ctx.deps.infra;
            let Some(dns) = &infra.dns else {
                return Ok(StepDone::Skipped("no Route 53 zone configured (LANDLORD_ROUTE53_ZONE_ID)".into()));
            };
            let store = &ctx.deps.store;
            let control_plane = |e: crate::store::StoreError| StepError::transient("control_plane", e.to_string());
            match apply(dns, &ctx.tenant.slug, &infra.poll, Instant::now() + infra.dns_budget).await {
                Ok((host, api)) => {
                    store.save_dns(&ctx.tenant.id, &host, &api, false).await.map_err(control_plane)?;
                    Ok(StepDone::Done(format!("{host} and {api} point at {} and are in sync", infra.dns_target_label)))
                }
                Err(e) => {
                    let (host, api) = infra.hostnames(&ctx.tenant.slug).await.ok().flatten().unwrap_or_default();
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
                Ok(match dns.delete(&[&host, &api]).await? {
                    Some(_) => StepDone::Done(format!("records for {host} and {api} deleted")),
                    None => StepDone::Done(format!("no records for {host} or {api}")),
                })
            }
            .boxed(),
        )
    }
}
