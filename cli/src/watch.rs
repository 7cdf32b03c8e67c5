//! `landlord watch`: progress events as they happen, one line each.

use std::path::Path;

use futures::StreamExt;
use landlord_bus::Bus;
use landlord_protocol::{EventKind, ProgressEvent, TenantId, TenantStatus};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this tenant (all tenants when absent).
    tenant: Option<String>,
    /// Exit once the tenant is active or failed (exit code 1 when failed, refused or rejected).
    #[arg(long)]
    until_done: bool,
}

pub async fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let cfg = landlord_worker::WorkerConfig::load(config)?;
    let tenant = args.tenant.as_deref().map(TenantId::parse).transpose()?;
    let bus = Bus::connect_with(&cfg.nats_settings()).await?;
    let mut events = Box::pin(bus.progress(tenant.as_ref()).await?);
    while let Some(ev) = events.next().await {
        println!("{}", line(&ev));
        let ours = tenant.is_none_or(|t| ev.tenant_id == Some(t));
        if args.until_done && ours && matches!(ev.kind, EventKind::PurchaseRefused | EventKind::Rejected) {
            anyhow::bail!("no tenant will be made: {}", ev.error.map(|e| e.message).unwrap_or_default())
        }
        if args.until_done && ours && ev.kind == EventKind::StatusChanged {
            match ev.status {
                // Active again after a plan change that failed (a move rolled back): the change did not happen.
                Some(TenantStatus::Active) if ev.error.is_some() => {
                    anyhow::bail!("the change failed: {}", ev.error.map(|e| e.message).unwrap_or_default())
                }
                Some(TenantStatus::Active) => return Ok(()),
                Some(TenantStatus::Failed) => {
                    anyhow::bail!("tenant failed: {}", ev.error.map(|e| e.message).unwrap_or_default())
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn line(ev: &ProgressEvent) -> String {
    let mut out = format!(
        "{}  {:<15}",
        ev.at.format("%H:%M:%S%.3f"),
        serde_json::to_value(ev.kind).expect("an event kind serializes").as_str().unwrap_or("")
    );
    if let Some(step) = &ev.step {
        out.push_str(&format!(" {step:<16}"));
    }
    if let Some(attempt) = ev.attempt {
        out.push_str(&format!(" attempt {attempt}"));
    }
    if let Some(ms) = ev.duration_ms {
        out.push_str(&format!(" {ms} ms"));
    }
    if let Some(status) = ev.status {
        out.push_str(&format!(" [{}]", status.as_str()));
    }
    if let Some(m) = &ev.message {
        out.push_str(&format!("  {m}"));
    }
    if let Some(e) = &ev.error {
        out.push_str(&format!("  error {}: {}{}", e.code, e.message, if e.retryable { " (will retry)" } else { "" }));
    }
    out
}
