//! `landlord-worker`: consumes commands from JetStream and runs each tenant's steps against the tenant
//! database server, recording every outcome in the control plane and publishing progress.

pub mod archive;
pub mod config;
pub mod connect;
pub mod consumer;
mod control_plane_guard;
pub mod dns_retry;
pub mod error;
pub mod failpoint;
pub mod http;
pub mod infra;
pub mod keepalive;
mod lease;
pub mod mail;
pub mod names;
pub mod placement;
mod progress;
pub mod retention;
mod retry;
pub mod runner;
mod sampler;
pub mod scripts;
pub mod secret_box;
pub mod step_name;
pub mod steps;
pub mod store;
pub mod telemetry;
pub mod tenant_db;
pub mod timers;

use std::{sync::Arc, time::Duration};

use landlord_bus::{Bus, StreamSettings};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

pub use config::WorkerConfig;
pub use consumer::Worker;
pub use progress::Progress;
pub use retry::RetryPolicy;
pub use runner::{Outcome, Runner};

/// Builds a worker from its configuration: connects the control plane (applying migrations), prepares
/// the tenant database server and whatever infrastructure is configured. `aws` overrides the SDK
/// configuration otherwise read from the environment (tests point it at an emulator).
pub async fn build(cfg: &WorkerConfig, bus: &Bus, aws: Option<&aws_config::SdkConfig>) -> anyhow::Result<Worker> {
    let keys = cfg.parsed_secret_keys()?;
    cfg.retention.validate().map_err(anyhow::Error::msg)?;
    if cfg.tenant_max_connections == 0 {
        anyhow::bail!("LANDLORD_TENANT_MAX_CONNECTIONS must be at least 1 (connections one tenant login may hold)");
    }
    let store = store::Store::connect(cfg.database_url.expose_secret()).await?.with_secrets(keys);
    let tenant_db = tenant_db::TenantDbServer::new(&cfg.tenant_db_url)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?
        .with_login_connection_limit(cfg.tenant_max_connections);
    // The zero-configuration default: an empty registry gets LANDLORD_TENANT_DB_URL as its one shared server.
    store.ensure_default_server(&cfg.tenant_db_url, tenant_db.engine(), cfg.default_server_capacity).await?;
    let servers = placement::Servers::new(store.clone(), tenant_db, cfg.tenant_max_connections);
    let loaded;
    let aws = match aws {
        Some(aws) => Some(aws),
        None if cfg.uses_aws() => {
            loaded = infra::sdk_config_from_env().await;
            Some(&loaded)
        }
        None => None,
    };
    let s3 = aws.map(infra::s3_client);
    let scripts = scripts::ScriptSource::parse(&cfg.scripts, s3.clone()).map_err(|e| anyhow::anyhow!(e))?;
    let archive = archive::ArchiveTarget::parse(&cfg.archive, s3.clone()).map_err(|e| anyhow::anyhow!(e))?;
    let templates = templates_from(cfg, aws, s3.as_ref());
    let infra = infra_from(cfg, aws, s3.as_ref())?;
    let deps = steps::Deps {
        store,
        servers,
        scripts,
        infra: std::sync::Arc::new(infra),
        archive,
        archive_days: cfg.retention.archive_days,
        plans: cfg.plans.clone(),
        templates: std::sync::Arc::new(templates),
        mail: std::sync::Arc::new(mail::Mail::from_config(cfg)?),
    };
    let progress = Progress::new(bus.clone());
    let runner = Runner {
        deps,
        progress: progress.clone(),
        flows: steps::Flows::default(),
        config: cfg.clone(),
        shutdown: CancellationToken::new(),
    };
    let holder = format!("{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let renewals = lease::Renewals::new(cfg.lease_ttl);
    let ack_wait = consumer::SharedAckWait::new(cfg.ack_wait);
    Ok(Worker { runner, progress, holder, renewals, ack_wait })
}

/// The CloudFormation templates database servers are made from (`LANDLORD_POOL_TEMPLATE`,
/// `LANDLORD_DEDICATED_TEMPLATE`), each a file or `s3://bucket/key`.
fn templates_from(
    cfg: &WorkerConfig,
    aws: Option<&aws_config::SdkConfig>,
    s3: Option<&aws_sdk_s3::Client>,
) -> placement::templates::ServerTemplates {
    placement::templates::ServerTemplates {
        pool: stacks_of(cfg.pool_template.as_deref(), cfg, aws, s3),
        dedicated: stacks_of(cfg.dedicated_template.as_deref(), cfg, aws, s3),
        default_capacity: cfg.default_server_capacity,
    }
}

/// CloudFormation stacks made from `template` (a file or `s3://bucket/key`), when it is set and AWS is
/// configured.
fn stacks_of(
    template: Option<&str>,
    cfg: &WorkerConfig,
    aws: Option<&aws_config::SdkConfig>,
    s3: Option<&aws_sdk_s3::Client>,
) -> Option<infra::stacks::Stacks> {
    let (template, aws) = (template?, aws?);
    let template = match infra::parse_s3_url(template) {
        Some((bucket, key)) => {
            infra::stacks::TemplateSource::S3 { client: s3.cloned().expect("S3 client with AWS"), bucket, key }
        }
        None => infra::stacks::TemplateSource::File(template.into()),
    };
    Some(infra::stacks::Stacks {
        client: aws_sdk_cloudformation::Client::new(aws),
        template,
        environment: cfg.environment.clone(),
        poll: cfg.poll.clone(),
    })
}

fn infra_from(
    cfg: &WorkerConfig,
    aws: Option<&aws_config::SdkConfig>,
    s3: Option<&aws_sdk_s3::Client>,
) -> anyhow::Result<infra::Infra> {
    let mut infra = infra::Infra::none();
    infra.poll = cfg.poll.clone();
    infra.tenant_domain = cfg.tenant_domain.clone();
    infra.dns_budget = cfg.dns_budget;
    infra.stack_deadline = cfg.stack_deadline;
    infra.health = infra::health::HealthCheck::new(cfg.poll.clone(), cfg.health_deadline);
    infra.health_url = cfg.health_url.clone();
    if let (Some(zone), Some(aws)) = (&cfg.route53_zone_id, aws) {
        let target = cfg
            .dns_target
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("LANDLORD_DNS_TARGET is required with LANDLORD_ROUTE53_ZONE_ID"))?;
        infra.dns_target_label = target.to_owned();
        let target = infra::dns::DnsTarget::parse(target).map_err(|e| anyhow::anyhow!(e))?;
        if let Some(parked) = cfg.suspended_dns_target.as_deref() {
            let parked_target = infra::dns::DnsTarget::parse(parked)
                .map_err(|e| anyhow::anyhow!("LANDLORD_SUSPENDED_DNS_TARGET: {e}"))?;
            // A name's record changes its value, never its type: a CNAME cannot become an alias A record in place.
            if std::mem::discriminant(&parked_target) != std::mem::discriminant(&target) {
                anyhow::bail!(
                    "LANDLORD_SUSPENDED_DNS_TARGET must be of the same kind as LANDLORD_DNS_TARGET (both hostnames, or both alias:…)"
                );
            }
            infra.parked_target_label = parked.to_owned();
            infra.parked_dns =
                Some(infra::dns::Dns::new(aws_sdk_route53::Client::new(aws), zone.clone(), parked_target));
        }
        infra.dns = Some(infra::dns::Dns::new(aws_sdk_route53::Client::new(aws), zone.clone(), target));
    }
    infra.stacks = stacks_of(cfg.stack_template.as_deref(), cfg, aws, s3);
    Ok(infra)
}

/// Runs a worker until `shutdown` is cancelled, then lets in-flight messages finish.
pub async fn run(cfg: WorkerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    Box::pin(run_with(cfg, None, shutdown)).await
}

/// How long a stopping worker waits for NATS to take the progress events still in its buffer.
const EXIT_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// [`run`] with an explicit AWS SDK configuration.
pub async fn run_with(
    cfg: WorkerConfig,
    aws: Option<aws_config::SdkConfig>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // The port first: one that is taken stops the worker at once, with the reason. It answers `/healthz`
    // from now on, and `/readyz` once commands are consumed.
    telemetry::metrics();
    let readiness = Arc::new(http::Readiness::default());
    if let Some(addr) = cfg.http_addr {
        let listener = http::bind(addr).await?;
        tokio::spawn(http::serve(listener, readiness.clone(), shutdown.clone()));
    }
    let bus = Bus::connect_with(&cfg.nats_settings()).await?;
    readiness.bus.set(bus.clone()).ok();
    failpoint::install(cfg.failpoint.clone(), cfg.failpoint_file.clone());
    cfg.retention.validate().map_err(anyhow::Error::msg)?;
    let settings = StreamSettings {
        duplicate_window: cfg.duplicate_window,
        replicas: cfg.nats_replicas,
        progress_max_age: cfg.retention.progress_max_age(),
        enforce_progress_max_age: true,
    };
    while let Err(e) = bus.ensure_streams(&settings).await {
        tracing::warn!(error = %e, "JetStream streams not ready yet; retrying");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
    let mut worker = build(&cfg, &bus, aws.as_ref()).await?;
    worker.runner.shutdown = shutdown.clone();
    readiness.store.set(worker.runner.deps.store.clone()).ok();
    let deps = &worker.runner.deps;
    if !control_plane_guard::guard_before_work(&deps.store, deps.servers.default_server(), &shutdown).await? {
        return Ok(());
    }

    let consumer = loop {
        match consumer::ensure_consumer(&bus, cfg.ack_wait).await {
            Ok(c) => break c,
            Err(e) => tracing::warn!(error = %e, "JetStream consumer not ready yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    };
    tracing::info!(concurrency = cfg.concurrency, "worker consuming commands");
    readiness.consuming.store(true, std::sync::atomic::Ordering::Relaxed);
    // Both stop within the grace: the retrier at once (it obeys `worker.runner.shutdown`), the consumer
    // after letting in-flight runs reach a checkpoint; the consumer's lease release frees the retrier's too.
    let dns = dns_retry::run(&worker, cfg.dns_retry_interval);
    let deps = &worker.runner.deps;
    let prune = retention::run(&deps.store, &deps.archive, &cfg.retention, shutdown.clone());
    let timers = timers::run(&worker, cfg.timer_interval, shutdown.clone());
    let sampling = sampler::run(&worker, &consumer, cfg.timer_interval, shutdown.clone());
    let mail_stop = shutdown.clone();
    let mailing = async {
        let deps = &worker.runner.deps;
        if let Some(smtp) = &deps.mail.smtp {
            mail::sender::run(&deps.store, smtp, deps.mail.retry, cfg.timer_interval, mail_stop).await;
        }
    };
    let consume = async {
        let consumed = consumer::consume(&worker, &consumer, cfg.concurrency, cfg.shutdown_grace, shutdown).await;
        readiness.consuming.store(false, std::sync::atomic::Ordering::Relaxed);
        consumed
    };
    let (_, _, _, _, _, consumed) = tokio::join!(dns, prune, timers, sampling, mailing, consume);
    // Progress events are sent without waiting for their acknowledgement; what is still in the
    // connection's buffer goes out before the process exits, unless NATS is unreachable: then the stop is
    // not held up (a flush waits for a reconnection that may never come).
    match tokio::time::timeout(EXIT_FLUSH, bus.client().flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "progress events still buffered at shutdown may be lost"),
        Err(_) => {
            tracing::warn!(?EXIT_FLUSH, "NATS did not take the buffered progress events in time; they may be lost")
        }
    }
    consumed
}
