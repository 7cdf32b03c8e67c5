//! Route 53: the tenant's hostname and API hostname in the configured hosted zone, pointing at
//! `LANDLORD_DNS_TARGET`. Records are UPSERTed, so re-running never duplicates one, and a change is
//! waited on until Route 53 reports it `INSYNC`.

use std::time::Duration;

use aws_sdk_route53::{
    Client,
    types::{AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType},
};
use backon::BackoffBuilder;
use landlord_protocol::TenantSlug;
use tokio::{sync::OnceCell, time::Instant};

use super::sdk_error;
use crate::{
    RetryPolicy,
    error::{ErrorCode, StepError},
};

/// What tenant hostnames point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsTarget {
    /// A CNAME to this hostname (TTL 300).
    Cname(String),
    /// An alias A record to a load balancer or distribution: `alias:<hosted zone id>:<dns name>`.
    Alias { hosted_zone_id: String, dns_name: String },
}

impl DnsTarget {
    pub fn parse(s: &str) -> Result<Self, String> {
        let valid_host = |h: &str| {
            !h.is_empty() && h.len() <= 253 && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        };
        if let Some(rest) = s.strip_prefix("alias:") {
            return match rest.split_once(':') {
                Some((zone, name)) if !zone.is_empty() && valid_host(name) => {
                    Ok(Self::Alias { hosted_zone_id: zone.to_owned(), dns_name: name.to_owned() })
                }
                _ => Err(format!("LANDLORD_DNS_TARGET {s:?} must be a hostname or alias:<hosted zone id>:<dns name>")),
            };
        }
        if valid_host(s) {
            Ok(Self::Cname(s.to_owned()))
        } else {
            Err(format!("LANDLORD_DNS_TARGET {s:?} is not a hostname"))
        }
    }
}

/// A tenant's two names: `{slug}.{domain}` and `{slug}.api.{domain}`.
pub fn hostnames(slug: &TenantSlug, domain: &str) -> (String, String) {
    let domain = domain.trim_end_matches('.');
    (format!("{slug}.{domain}"), format!("{slug}.api.{domain}"))
}

#[derive(Debug)]
pub struct Dns {
    client: Client,
    zone_id: String,
    target: DnsTarget,
    zone_name: OnceCell<String>,
}

impl Dns {
    pub fn new(client: Client, zone_id: String, target: DnsTarget) -> Self {
        Self { client, zone_id, target, zone_name: OnceCell::new() }
    }

    /// The hosted zone's domain (looked up once).
    pub async fn domain(&self) -> Result<String, StepError> {
        self.zone_name
            .get_or_try_init(|| async {
                let zone =
                    self.client.get_hosted_zone().id(&self.zone_id).send().await.map_err(|e| {
                        sdk_error(ErrorCode::DnsZone, &format!("reading hosted zone {}", self.zone_id), &e)
                    })?;
                Ok(zone.hosted_zone().map(|z| z.name().trim_end_matches('.').to_owned()).unwrap_or_default())
            })
            .await
            .cloned()
    }

    fn record(&self, name: &str) -> ResourceRecordSet {
        let builder = ResourceRecordSet::builder().name(name);
        let built = match &self.target {
            DnsTarget::Cname(target) => builder
                .r#type(RrType::Cname)
                .ttl(300)
                .resource_records(ResourceRecord::builder().value(target).build().expect("value is set")),
            DnsTarget::Alias { hosted_zone_id, dns_name } => builder.r#type(RrType::A).alias_target(
                AliasTarget::builder()
                    .hosted_zone_id(hosted_zone_id)
                    .dns_name(dns_name)
                    .evaluate_target_health(false)
                    .build()
                    .expect("fields are set"),
            ),
        };
        built.build().expect("name and type are set")
    }

    /// UPSERTs both records in one change and returns the change id.
    pub async fn upsert(&self, names: &[&str]) -> Result<String, StepError> {
        self.change(ChangeAction::Upsert, names.iter().map(|n| self.record(n)).collect()).await
    }

    /// Deletes the tenant's records, using the values Route 53 holds (DELETE must match exactly). Only the
    /// type Landlord writes (CNAME, or A for an alias) is touched; other records at the name are left.
    /// Missing records are fine.
    pub async fn delete(&self, names: &[&str]) -> Result<Option<String>, StepError> {
        let kind = match self.target {
            DnsTarget::Cname(_) => RrType::Cname,
            DnsTarget::Alias { .. } => RrType::A,
        };
        let mut existing = Vec::new();
        for name in names {
            existing.extend(self.records_named(name).await?.into_iter().filter(|r| r.r#type() == &kind));
        }
        if existing.is_empty() {
            return Ok(None);
        }
        self.change(ChangeAction::Delete, existing).await.map(Some)
    }

    async fn change(&self, action: ChangeAction, records: Vec<ResourceRecordSet>) -> Result<String, StepError> {
        let changes = records
            .into_iter()
            .map(|r| Change::builder().action(action.clone()).resource_record_set(r).build().expect("fields are set"))
            .collect::<Vec<_>>();
        let batch =
            ChangeBatch::builder().set_changes(Some(changes)).comment("landlord").build().expect("changes are set");
        let out = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| sdk_error(ErrorCode::DnsChange, &format!("changing records in zone {}", self.zone_id), &e))?;
        Ok(out.change_info().map(|c| c.id().to_owned()).unwrap_or_default())
    }

    /// The record sets with exactly this name.
    pub async fn records_named(&self, name: &str) -> Result<Vec<ResourceRecordSet>, StepError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .start_record_name(&fqdn)
            .max_items(10)
            .send()
            .await
            .map_err(|e| sdk_error(ErrorCode::DnsList, &format!("listing records in zone {}", self.zone_id), &e))?;
        Ok(out.resource_record_sets().iter().filter(|r| r.name() == fqdn).cloned().collect())
    }

    /// Polls the change with backoff until it is `INSYNC` or `deadline` passes.
    pub async fn wait_in_sync(&self, change_id: &str, poll: &RetryPolicy, deadline: Instant) -> Result<(), StepError> {
        let mut delays = poll.backoff().build();
        loop {
            let out = self
                .client
                .get_change()
                .id(change_id)
                .send()
                .await
                .map_err(|e| sdk_error(ErrorCode::DnsChange, &format!("reading change {change_id}"), &e))?;
            if out.change_info().is_some_and(|c| c.status() == &ChangeStatus::Insync) {
                return Ok(());
            }
            let delay = delays.next().unwrap_or(Duration::from_millis(poll.max_delay_ms));
            if Instant::now() + delay > deadline {
                return Err(StepError::transient(
                    ErrorCode::DnsPending,
                    format!("Route 53 change {change_id} is still PENDING"),
                ));
            }
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_hostnames() {
        assert_eq!(DnsTarget::parse("lb.example.net"), Ok(DnsTarget::Cname("lb.example.net".into())));
        assert_eq!(
            DnsTarget::parse("alias:Z2FDTNDATAQYW2:d111111abcdef8.cloudfront.net"),
            Ok(DnsTarget::Alias {
                hosted_zone_id: "Z2FDTNDATAQYW2".into(),
                dns_name: "d111111abcdef8.cloudfront.net".into()
            })
        );
        for bad in ["", "alias:", "alias:Z1", "a b", "x;y"] {
            assert!(DnsTarget::parse(bad).is_err(), "{bad}");
        }
        let slug = TenantSlug::parse("acme").unwrap();
        assert_eq!(
            hostnames(&slug, "tenants.example.com."),
            ("acme.tenants.example.com".into(), "acme.api.tenants.example.com".into())
        );
    }
}
