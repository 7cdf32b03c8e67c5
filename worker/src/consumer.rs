//! The JetStream side of a worker: the shared durable consumer, the per-tenant lease and heartbeat around
//! each run, and turning a run's [`Outcome`] into an acknowledgement.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_nats::jetstream::{
    AckKind, Message,
    consumer::{AckPolicy, PullConsumer, pull},
};
use futures::StreamExt;
use landlord_bus::Bus;
use landlord_protocol::{Command, TenantId, subjects};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    keepalive::{KeepAlive, NoKeepAlive},
    lease::{Acquired, Lease, Renewals},
    progress::Progress,
    runner::{Outcome, Runner},
    store::StoreError,
};

/// Creates (or finds) the one durable pull consumer all workers share.
///
/// - `ack_wait` (default 4 s): a worker that dies is replaced after at most this long. Live workers
///   send progress acknowledgements every quarter of it, so long steps never hit it. The consumer is
///   created or updated, so a changed setting (or the shorter default of a newer version) takes effect
///   when a worker starts; the last worker started decides.
/// - `max_deliver` unlimited: a paid purchase is never given up on. Transient failures come back with a
///   growing NAK delay; undecodable or unknown commands are terminated, so nothing loops forever.
/// - no `backoff` list: redelivery delays are chosen per message by the worker (NAK with delay), which
///   knows why it failed; a list would also require a finite `max_deliver`.
pub async fn ensure_consumer(bus: &Bus, ack_wait: Duration) -> anyhow::Result<PullConsumer> {
    let stream = bus.jetstream().get_stream(subjects::COMMANDS_STREAM).await?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(subjects::WORKERS_CONSUMER.into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait,
            max_deliver: -1,
            ..Default::default()
        })
        .await?;
    Ok(consumer)
}

/// The ack wait the shared consumer has, as last read from JetStream. Workers share one consumer and
/// the last one started sets it: one started with a shorter setting (or a newer version's shorter
/// default) shortens it for all, and the others must then acknowledge progress often enough for it.
#[derive(Debug, Clone)]
pub struct SharedAckWait {
    configured: Duration,
    seen_ms: Arc<AtomicU64>,
}

impl SharedAckWait {
    pub fn new(configured: Duration) -> Self {
        Self { configured, seen_ms: Arc::new(AtomicU64::new(millis(configured))) }
    }

    /// The shorter of this worker's setting and the consumer's: what heartbeats must keep up with.
    pub fn get(&self) -> Duration {
        self.configured.min(Duration::from_millis(self.seen_ms.load(Ordering::Relaxed)))
    }

    /// Notes the consumer's ack wait as JetStream reports it; says so once when it is not this worker's.
    pub fn observe(&self, actual: Duration) {
        let before = self.seen_ms.swap(millis(actual), Ordering::Relaxed);
        if actual != self.configured && before != millis(actual) {
            tracing::warn!(
                consumer_ack_wait_ms = millis(actual),
                configured_ms = millis(self.configured),
                "the shared consumer's ack wait differs from this worker's LANDLORD_ACK_WAIT_SECS (another worker \
                 set it); heartbeats follow the shorter, and a dead worker's message passes on after the consumer's"
            );
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug)]
pub struct Worker {
    pub runner: Runner,
    pub progress: Progress,
    /// This process's name; each handling holds its lease as `<holder>/<handling id>`, the DNS retrier
    /// as `<holder>/dns-retry/<tenant>`, so that all of them are released together when the process stops.
    pub holder: String,
    /// The renewal all of this process's leases share.
    pub renewals: Renewals,
    /// The shared consumer's ack wait, read back from JetStream.
    pub ack_wait: SharedAckWait,
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
            Lease { store: &self.runner.deps.store, renewals: &self.renewals, tenant: &cmd.tenant_id, holder: &holder };
        let acquired = match lease.acquire().await {
            Ok(Acquired::At(at)) => at,
            Ok(Acquired::Busy(left)) => {
                tracing::info!(tenant_id = %cmd.tenant_id, ?left, "another worker holds the tenant; trying later");
                return busy_for(left, cfg.lease_ttl);
            }
            Err(e) => return control_plane_down(&e),
        };
        // Progress acknowledgements ride on the lease renewals, so both happen every quarter of the shorter:
        // one renewal may fail and the next still lands before the run must stop (two thirds of the ttl).
        let every = heartbeat(cfg.lease_ttl, self.ack_wait.get());
        let outcome =
            match Box::pin(lease.hold(acquired, every, alive, self.runner.handle(&cmd, delivered, alive))).await {
                Ok(result) => result.unwrap_or_else(|e| control_plane_down(&e)),
                Err(gone) => {
                    // Dropped as a crash would drop it: every step is safe to repeat, and whatever the run
                    // recorded (even its end) is what the redelivery starts from.
                    tracing::error!(
                        tenant_id = %cmd.tenant_id,
                        reason = %gone,
                        "the lease could not be confirmed in time: the run stops before another worker may take \
                         the tenant, and the command's redelivery goes on from what it recorded"
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

/// Another holder has the tenant for `left` still: the message comes back just after that, so a tenant
/// whose worker died is taken over as soon as its lease ends (a live holder renews it, and the message
/// comes back again then).
fn busy_for(left: Duration, ttl: Duration) -> Outcome {
    Outcome::Busy { delay: (left + Duration::from_millis(100)).clamp(Duration::from_millis(100), ttl) }
}

/// How often a run's lease is renewed and its message touched: a quarter of the shorter of the lease and
/// the ack wait, so one renewal may fail and the next still lands before the run must stop.
pub fn heartbeat(lease_ttl: Duration, ack_wait: Duration) -> Duration {
    lease_ttl.min(ack_wait) / 4
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_follow_the_shorter_of_the_setting_and_the_shared_consumer() {
        let wait = SharedAckWait::new(Duration::from_secs(60));
        assert_eq!(wait.get(), Duration::from_secs(60));
        // Another worker set 4 s on the shared consumer.
        wait.observe(Duration::from_secs(4));
        assert_eq!(wait.get(), Duration::from_secs(4));
        assert_eq!(heartbeat(Duration::from_secs(60), wait.get()), Duration::from_secs(1));
        // A longer consumer setting does not lengthen this worker's own.
        wait.observe(Duration::from_secs(120));
        assert_eq!(wait.get(), Duration::from_secs(60));
    }
}
