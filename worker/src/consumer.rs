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
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    keepalive::{KeepAlive, NoKeepAlive},
    progress::Progress,
    runner::{Outcome, Runner},
    store::{Store, StoreError},
};

/// Creates (or finds) the one durable pull consumer all workers share.
///
/// - `ack_wait` (default 60 s): a worker that dies is replaced after at most this long. Live workers
///   send progress acknowledgements every quarter of it, so long steps never hit it.
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
    /// This process's name; each handling holds its lease as `<holder>/<handling id>`, the DNS retrier
    /// as `<holder>/dns-retry`, so that all of them are released together when the process stops.
    pub holder: String,
}

impl Worker {
    /// Handles one message's content and says what became of it. Public so tests can drive a worker one
    /// message at a time without a consumer loop.
    pub async fn handle(&self, subject: &str, payload: &[u8], delivered: i64) -> Outcome {
        Box::pin(self.handle_with(subject, payload, delivered, &NoKeepAlive)).await
    }

    /// [`Worker::handle`], keeping `alive` touched while the run goes on.
    pub async fn handle_with(&self, subject: &str, payload: &[u8], delivered: i64, alive: &dyn KeepAlive) -> Outcome {
        let cmd = match Command::decode(subject, payload) {
            Ok(cmd) => cmd,
            // A kind this version does not know may come from a newer ingress during a rolling upgrade (a
            // refused purchase, say): left for a newer worker for a while instead of being dropped at once.
            Err(e) if is_unknown_kind(&e) && delivered < UNKNOWN_KIND_DELIVERIES => {
                tracing::warn!(%subject, error = %e, delivered, "a command kind this worker does not know; left for a newer worker");
                return Outcome::RetryLater { delay: Duration::from_secs(30) };
            }
            Err(e) => return self.reject_undecodable(subject, e.to_string()).await,
        };
        let cfg = &self.runner.config;
        // One holder per handling, not per process: two copies of a message in one worker (a redelivery
        // after ack_wait) must not share a lease.
        let holder = format!("{}/{}", self.holder, uuid::Uuid::new_v4().simple());
        let lease =
            Lease { store: &self.runner.deps.store, tenant: &cmd.tenant_id, holder: &holder, ttl: cfg.lease_ttl };
        let acquired = match lease.acquire().await {
            Ok(Some(at)) => at,
            Ok(None) => {
                tracing::info!(tenant_id = %cmd.tenant_id, "another worker holds the tenant; trying later");
                return busy(cfg.lease_ttl);
            }
            Err(e) => return control_plane_down(&e),
        };
        // Progress acknowledgements ride on the lease renewals, so both happen every quarter of the shorter:
        // one renewal may fail and the next still lands before the run must stop (two thirds of the ttl).
        let every = cfg.lease_ttl.min(cfg.ack_wait) / 4;
        let outcome =
            match Box::pin(lease.hold(acquired, every, alive, self.runner.handle(&cmd, delivered, alive))).await {
                Ok(result) => result.unwrap_or_else(|e| control_plane_down(&e)),
                Err(gone) => {
                    // Dropped as a crash would drop it: every step is safe to repeat.
                    tracing::error!(
                        tenant_id = %cmd.tenant_id,
                        reason = %gone,
                        "abandoning the run before another worker may take the tenant"
                    );
                    busy(cfg.lease_ttl)
                }
            };
        lease.release().await;
        outcome
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
        // The command's trace goes on here: the span that published it (a webhook, an admin request) is
        // this one's parent, so one purchase is one trace from Stripe's request to the last step.
        let span = tracing::info_span!("command", subject = %msg.subject, delivered);
        span.set_parent(landlord_bus::trace::extract(msg.headers.as_ref())).ok();
        let handling = self.handle_with(msg.subject.as_str(), &msg.payload, delivered, &msg);
        let outcome = Box::pin(tracing::Instrument::instrument(handling, span)).await;
        let ack = match &outcome {
            Outcome::Completed
            | Outcome::AlreadyDone
            | Outcome::Failed { .. }
            | Outcome::Refused { .. }
            | Outcome::AwaitingOperator { .. } => AckKind::Ack,
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

/// How often a command of an unknown kind is handed back (every 30 s, so about ten minutes) before it is
/// rejected as poison.
const UNKNOWN_KIND_DELIVERIES: i64 = 20;

/// Whether a payload failed to decode only because its `kind` is one this version does not know.
fn is_unknown_kind(e: &landlord_protocol::DecodeError) -> bool {
    matches!(e, landlord_protocol::DecodeError::Json(j) if j.to_string().starts_with("unknown variant"))
}

/// The control plane is unreachable: nothing was lost, try again shortly.
fn control_plane_down(e: &StoreError) -> Outcome {
    tracing::error!(error = %e, "control plane unavailable");
    Outcome::RetryLater { delay: Duration::from_secs(5) }
}

/// Another handling has the tenant, or may have it soon: hand the message back for later.
fn busy(ttl: Duration) -> Outcome {
    Outcome::Busy { delay: (ttl / 4).max(Duration::from_secs(1)) }
}

/// How long a lease is relied on after the last acquire or renewal that succeeded: two thirds of its
/// ttl. The lease itself lasts the whole ttl from a moment (the control plane's) after the request was
/// sent, so the last third is a safety margin: for noticing and dropping the work, for a runtime slowed
/// down under load, and for this host's clock running at a slightly different rate than the control
/// plane's. With renewals every quarter of the ttl, one renewal may fail and the next still lands in
/// time; the second failure in a row ends the work.
fn reliable_for(ttl: Duration) -> Duration {
    ttl - ttl / 3
}

/// Why work under a lease was dropped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LeaseGone {
    #[error("the lease was lost: it expired and another holder took it")]
    Lost,
    #[error("the lease was not renewed for {unrenewed:?} of its {ttl:?}, so it may be about to expire")]
    Unsure { unrenewed: Duration, ttl: Duration },
}

/// A tenant's lease as one holder (a handling, the DNS retrier) takes, keeps and releases it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease<'a> {
    pub store: &'a Store,
    pub tenant: &'a TenantId,
    pub holder: &'a str,
    pub ttl: Duration,
}

impl Lease<'_> {
    /// Takes the lease. `Some(when the request was sent)`, from which the lease is relied on; `None`
    /// when another holder's lease is still valid.
    pub async fn acquire(&self) -> Result<Option<Instant>, StoreError> {
        let asked = Instant::now();
        Ok(self.store.acquire_lease(self.tenant, self.holder, self.ttl).await?.then_some(asked))
    }

    /// Runs `work` while renewing the lease (taken at `acquired`) every `every`, touching `alive` first.
    /// The work is dropped when the lease is lost, or once it has gone unrenewed for
    /// [`reliable_for`] its ttl (the control plane failing or slow), before another holder may take it.
    pub async fn hold<T>(
        &self,
        acquired: Instant,
        every: Duration,
        alive: &dyn KeepAlive,
        work: impl Future<Output = T>,
    ) -> Result<T, LeaseGone> {
        let reliable = reliable_for(self.ttl);
        let mut renewed = acquired;
        let mut beat = tokio::time::interval(every);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        beat.tick().await;
        tokio::pin!(work);
        loop {
            let unsure_at = renewed + reliable;
            tokio::select! {
                biased;
                done = &mut work => return Ok(done),
                () = tokio::time::sleep_until(unsure_at) => return Err(self.unsure(renewed)),
                _ = beat.tick() => {
                    let asked = Instant::now();
                    let renewal = async {
                        alive.touch().await;
                        self.store.renew_lease(self.tenant, self.holder, self.ttl).await
                    };
                    // A renewal that hangs (a control plane not answering) must not outlast the lease.
                    match tokio::time::timeout_at(unsure_at, renewal).await {
                        Ok(Ok(true)) => renewed = asked,
                        Ok(Ok(false)) => return Err(LeaseGone::Lost),
                        Ok(Err(e)) => {
                            tracing::warn!(tenant_id = %self.tenant, error = %e, "lease not renewed this time");
                        }
                        Err(_) => return Err(self.unsure(renewed)),
                    }
                }
            }
        }
    }

    fn unsure(&self, renewed: Instant) -> LeaseGone {
        LeaseGone::Unsure { unrenewed: renewed.elapsed(), ttl: self.ttl }
    }

    /// Gives the lease up; if that fails it expires by itself.
    pub async fn release(&self) {
        if let Err(e) = self.store.release_lease(self.tenant, self.holder).await {
            tracing::warn!(tenant_id = %self.tenant, error = %e, "lease not released; it expires by itself");
        }
    }
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
/// runs. After `shutdown`, in-flight runs stop at their next step boundary. `grace` bounds the whole
/// stop: whatever still runs when it ends is abandoned (its message is redelivered once `ack_wait`
/// passes), and this worker's leases are released in what is left of it (when nothing is left, they
/// expire by themselves, about when the abandoned messages come back anyway).
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
    let stop_by = Instant::now() + grace;
    let drain = async {
        while let Some(outcome) = in_flight.next().await {
            tracing::info!(?outcome, "message handled during shutdown");
        }
    };
    if tokio::time::timeout_at(stop_by, drain).await.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "in-flight work did not reach a checkpoint in time; abandoning it"
        );
    }
    match tokio::time::timeout_at(stop_by, worker.runner.deps.store.release_leases_of(&worker.holder)).await {
        Ok(Ok(n)) => tracing::info!(released = n, "worker stopped"),
        Ok(Err(e)) => tracing::warn!(error = %e, "leases not released; they expire by themselves"),
        Err(_) => tracing::warn!("no time left to release leases; they expire by themselves"),
    }
    Ok(())
}
