//! `park_dns` and `restore_dns`: with `LANDLORD_SUSPENDED_DNS_TARGET`, a suspended tenant's names point at
//! that target (a "suspended" page) and resuming points them back at `LANDLORD_DNS_TARGET`, each change
//! confirmed `INSYNC`. Only names Landlord made for the tenant are changed; without the setting, or without
//! a zone, the names stay as they are.

use futures::{FutureExt, future::BoxFuture};
use tokio::time::Instant;

use super::{Step, StepContext, StepDone, StepError, StepName, ownership};
use crate::{infra::dns::hostnames, store::ResourceKind};

#[derive(Debug)]
pub struct ParkDns;

#[derive(Debug)]
pub struct RestoreDns;

async fn point(ctx: &StepContext<'_>, parked: bool) -> Result<StepDone, StepError> {
    let infra = &ctx.deps.infra;
    let (Some(normal), Some(parking)) = (&infra.dns, &infra.parked_dns) else {
        return Ok(StepDone::Skipped(
            "no LANDLORD_SUSPENDED_DNS_TARGET (or no zone): the names stay as they are".into(),
        ));
    };
    let (dns, label) = if parked { (parking, &infra.parked_target_label) } else { (normal, &infra.dns_target_label) };
    let domain = match tokio::time::timeout(infra.dns_budget, dns.domain()).await {
        Ok(Ok(domain)) => domain,
        Ok(Err(e)) => {
            return Ok(StepDone::Deferred(format!("the zone could not be read ({e}); the names stay as they are")));
        }
        Err(_) => return Ok(StepDone::Deferred("Route 53 did not answer; the names stay as they are".into())),
    };
    let (host, api) = hostnames(&ctx.tenant.slug, &domain);
    let mut ours = Vec::new();
    for name in [host, api] {
        if ownership::is_ours(ctx, ResourceKind::DnsRecord, &name).await? {
            ours.push(name);
        }
    }
    if ours.is_empty() {
        return Ok(StepDone::Skipped("no DNS record of this tenant was made by Landlord".into()));
    }
    let names: Vec<&str> = ours.iter().map(String::as_str).collect();
    let changed = async {
        let change = dns.upsert(&names).await?;
        dns.wait_in_sync(&change, &infra.poll, Instant::now() + infra.dns_budget).await
    };
    match tokio::time::timeout(infra.dns_budget, changed).await {
        Ok(Ok(())) => Ok(StepDone::Done(format!("{} point at {label}", names.join(" and ")))),
        // DNS never fails a suspension or a resume: the login is what locks a tenant out, and a run that
        // failed here would leave the tenant's status and its login disagreeing.
        Ok(Err(e)) => Ok(StepDone::Deferred(format!(
            "{} could not be pointed at {label} ({e}); suspend or resume again to try once more",
            names.join(" and ")
        ))),
        Err(_) => Ok(StepDone::Deferred(format!(
            "Route 53 did not confirm {} at {label} within LANDLORD_DNS_BUDGET_SECS; suspend or resume again to try once more",
            names.join(" and ")
        ))),
    }
}

impl Step for ParkDns {
    fn name(&self) -> StepName {
        StepName::ParkDns
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        point(ctx, true).boxed()
    }
}

impl Step for RestoreDns {
    fn name(&self) -> StepName {
        StepName::RestoreDns
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        point(ctx, false).boxed()
    }
}
