//! `landlord-worker`: consumes commands from JetStream and runs each tenant's steps against the tenant
//! database server, recording every outcome in the control plane and publishing progress.

pub mod config;
pub mod consumer;
pub mod names;
mod progress;
mod retry;
pub mod runner;
pub mod scripts;
pub mod steps;
pub mod store;
pub mod tenant_db;

use std::time::Duration;

use landlord_bus::{Bus, StreamSettings};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

pub use config::WorkerConfig;
pub use consumer::Worker;
pub use progress::Progress;
pub use retry::RetryPolicy;
pub use runner::{Outcome, Runner};

/// Builds a worker from its configuration: connects the control plane (applying migrations) and prepares
/// the tenant database server.
pub async fn build(cfg: &WorkerConfig, bus: &Bus) -> anyhow::Result<Worker> {
    let store = store::Store::connect(cfg.database_url.expose_secret()).await?;
    let tenant_db = tenant_db::TenantDbServer::new(&cfg.tenant_db_url)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let deps = steps::Deps {
        store,
        tenant_db,
        scripts: scripts::ScriptSource::Folder(cfg.scripts.clone()),
    };
    let progress = Progress::new(bus.clone());
    let runner = Runner {
        deps,
        progress: progress.clone(),
        steps: steps::provisioning(),
        retry: cfg.retry.clone(),
    };
    Ok(Worker { runner, progress })
}

/// Runs a worker until `shutdown` is cancelled, then lets in-flight messages finish.
pub async fn run(cfg: WorkerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let bus = Bus::connect(&cfg.nats_url).await?;
    let settings = StreamSettings {
        duplicate_window: cfg.duplicate_window,
        ..StreamSettings::default()
    };
    while let Err(e) = bus.ensure_streams(&settings).await {
        tracing::warn!(error = %e, "JetStream streams not ready yet; retrying");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
    let worker = build(&cfg, &bus).await?;
    let consumer = consumer::ensure_consumer(&bus).await?;
    tracing::info!(concurrency = cfg.concurrency, "worker consuming commands");
    consumer::consume(&worker, &consumer, cfg.concurrency, shutdown).await
}
