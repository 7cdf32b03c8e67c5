//! The JetStream side of a worker: the shared durable consumer, the per-tenant lease and heartbeat around
//! each run, and turning a run's [`Outcome`] into an acknowledgement.

use std::time::Duration;

use async_nats::jetstream::{
    AckKind, Message,
    consumer::{AckPolicy, PullConsumer, pull},
};
use futures::StreamExt;
use landlord_bus::Bus;
use landlord_protocol::{Command, TenantId, subjects};
use tokio_util::sync::CancellationToken;

use crate::{
    keepalive::{KeepAlive, NoKeepAlive},
    progress::Progress,
    runner::{Outcome, Runner},
};

/// Creates (or finds) the one durable pull consumer all workers share.
///
/// - `ack_wait` (default 60 s): a worker that dies is replaced after at most this long. Live workers
///   send progress acknowledgements every third of it, so long steps never hit it.
/// - `max_deliver` unlimited: a paid purchase is never given up on. Transient failures come back with a
///   growing NAK delay; undecodable or unknown commands are terminated, so nothing loops forever.
/// - no `backoff` list: redelivery delays are chosen per message by the worker (NAK with delay), which
///   knows why it failed; a list would also require a finite `max_deliver`.
pub async fn ensure_consumer(bus: &Bus, ack_wait: Duration) -> anyhow::Result<PullConsumer> {
    let stream = bus.jetstream().get_stream(subjects::COMMANDS_STREAM).await?;
    let consumer = stream
        .get_or_create_consumer(
            subjects::WORKERS_CONSUMER,
            pull::Config {
                durable_name: Some(subjects::WORKERS_CONSUMER.into()),
                ack_policy: AckPolicy::Explicit,
                ack_wait,
                max_deliver: -1,
                ..Default::default()
            },
        )
        .await?;
    Ok(consumer)
}

#[derive(Debug)]
pub struct Worker {
    pub runner: Runner,
    pub progress: Progress,
    /// This process's name; each handling holds its lease as `<holder>/<handling id>`.
    pub holder: String,
}

impl Worker {
    /// Handles one message's content and says what became of it. Public so tests can drive a worker one
    /// message at a time without a consumer loop.
    pub async fn handle(&self, subject: &str, payload: &[u8], delivered: i64) -> Outcome {
        self.handle_with(subject, payload, delivered, &NoKeepAlive).await
    }

    /// [`Worker::handle`], keeping `alive` touched while the run goes on.
    pub async fn handle_with(&self, subject: &str, payload: &[u8], delivered: i64, alive: &dyn KeepAlive) -> Outcome {
        let cmd = match Command::decode(subject, payload) {
            Ok(cmd) => cmd,
            Err(e) => return self.reject_undecodable(subject, e.to_string()).await,
        };
        let store = &self.runner.deps.store;
        let ttl = self.runner.config.lease_ttl;
        // One holder per handling, not per process: two copies of a message in one worker (a redelivery
        // after ack_wait) must not share a lease.
        let holder = format!("{}/{}", self.holder, uuid::Uuid::new_v4().simple());
        match store.acquire_lease(&cmd.tenant_id, &holder, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(tenant_id = %cmd.tenant_id, "another worker holds the tenant; trying later");
                return Outcome::Busy { delay: (ttl / 4).max(Duration::from_secs(1)) };
            }
            Err(e) => return control_plane_down(&e),
        }
        let outcome = self.run_with_heartbeat(&cmd, &holder, delivered, alive).await;
        if let Err(e) = store.release_lease(&cmd.tenant_id, &holder).await {
            tracing::warn!(error = %e, "lease not released; it expires by itself");
        }
        outcome
    }

    /// Runs the command while renewing the lease and acknowledging progress every third of the shorter
    /// of the lease and `ack_wait`. If the lease is lost, the run is dropped at once, as a crash would
    /// be: every step is safe to repeat.
    async fn run_with_heartbeat(&self, cmd: &Command, holder: &str, delivered: i64, alive: &dyn KeepAlive) -> Outcome {
        let cfg = &self.runner.config;
        let mut beat = tokio::time::interval(cfg.lease_ttl.min(cfg.ack_wait) / 3);
        beat.tick().await;
        let run = self.runner.handle(cmd, delivered, alive);
        tokio::pin!(run);
        loop {
            tokio::select! {
                result = &mut run => return result.unwrap_or_else(|e| control_plane_down(&e)),
                _ = beat.tick() => {
                    alive.touch().await;
                    match self.runner.deps.store.renew_lease(&cmd.tenant_id, holder, cfg.lease_ttl).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::error!(tenant_id = %cmd.tenant_id, "lease lost; abandoning the run");
                            return Outcome::Busy { delay: Duration::from_secs(1) };
                        }
                        Err(e) => tracing::warn!(error = %e, "lease not renewed this time"),
                    }
                }
            }
        }
    }

    async fn reject_undecodable(&self, subject: &str, reason: String) -> Outcome {
        let tenant = subjects::parse_command_subject(subject).and_then(|(_, t)| TenantId::parse(t).ok());
        tracing::warn!(%subject, %reason, "undecodable command rejected");
        self.progress.rejected(tenant, "undecodable_command", &reason).await;
        Outcome::Rejected { reason }
    }

    /// Handles a JetStream message and acknowledges it according to the outcome.
    pub async fn handle_message(&self, msg: Message) -> Outcome {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        let outcome = self.handle_with(msg.subject.as_str(), &msg.payload, delivered, &msg).await;
        let ack = match &outcome {
            Outcome::Completed | Outcome::AlreadyDone | Outcome::Failed { .. } => AckKind::Ack,
            Outcome::Rejected { .. } => AckKind::Term,
            Outcome::RetryLater { delay } | Outcome::Busy { delay } => AckKind::Nak(Some(*delay)),
            Outcome::Interrupted => AckKind::Nak(Some(Duration::from_millis(200))),
        };
        if let Err(e) = msg.ack_with(ack).await {
            // The outcome is recorded; a redelivery will find it done.
            tracing::warn!(error = %e, "acknowledgement not sent");
        }
        outcome
    }
}

/// The control plane is unreachable: nothing was lost, try again shortly.
fn control_plane_down(e: &crate::store::StoreError) -> Outcome {
    tracing::error!(error = %e, "control plane unavailable");
    Outcome::RetryLater { delay: Duration::from_secs(5) }
}

/// Pulls one message, waiting up to five seconds for one to arrive.
async fn pull_one(consumer: &PullConsumer) -> anyhow::Result<Option<Message>> {
    let mut batch = consumer.batch().max_messages(1).expires(Duration::from_secs(5)).messages().await?;
    match batch.next().await {
        Some(Ok(msg)) => Ok(Some(msg)),
        Some(Err(e)) => Err(anyhow::anyhow!(e)),
        None => Ok(None),
    }
}

/// Handles up to `concurrency` messages at once until `shutdown`. A message is pulled only when a slot
/// is free, so the worker never holds one it is not working on (and heartbeating) while its `ack_wait`
/// runs. After `shutdown`, in-flight runs stop at their next step boundary; whatever still runs after
/// `grace` is abandoned (its message is redelivered once `ack_wait` passes) and this worker's leases are
/// released.
pub async fn consume(
    worker: &Worker,
    consumer: &PullConsumer,
    concurrency: usize,
    grace: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut pulling: Option<futures::future::BoxFuture<'_, anyhow::Result<Option<Message>>>> = None;
    while !shutdown.is_cancelled() {
        if pulling.is_none() && in_flight.len() < concurrency {
            pulling = Some(Box::pin(pull_one(consumer)));
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                tracing::info!(?outcome, "message handled");
            }
            pulled = async { pulling.as_mut().expect("checked").await }, if pulling.is_some() => {
                pulling = None;
                match pulled {
                    Ok(Some(msg)) => in_flight.push(worker.handle_message(msg)),
                    Ok(None) => {}
                    Err(e) => {
                        // NATS restarting or a node gone: the client reconnects; pull again shortly.
                        tracing::warn!(error = %e, "pull failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    }
    drop(pulling);
    let drain = async {
        while let Some(outcome) = in_flight.next().await {
            tracing::info!(?outcome, "message handled during shutdown");
        }
    };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "in-flight work did not reach a checkpoint in time; abandoning it"
        );
    }
    match worker.runner.deps.store.release_leases_of(&worker.holder).await {
        Ok(n) => tracing::info!(released = n, "worker stopped"),
        Err(e) => tracing::warn!(error = %e, "leases not released; they expire by themselves"),
    }
    Ok(())
}
