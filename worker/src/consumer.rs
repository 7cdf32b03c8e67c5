//! The JetStream side of a worker: the shared durable consumer, decoding each message, and turning a
//! run's [`Outcome`] into an acknowledgement.

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

/// How long JetStream waits for an acknowledgement before redelivering to another worker. Long enough
/// for a whole provisioning run of database steps; a worker that dies mid-run is replaced after this.
pub const ACK_WAIT: Duration = Duration::from_secs(300);

/// Creates (or finds) the one durable pull consumer all workers share.
pub async fn ensure_consumer(bus: &Bus) -> anyhow::Result<PullConsumer> {
    let stream = bus
        .jetstream()
        .get_stream(subjects::COMMANDS_STREAM)
        .await?;
    let consumer = stream
        .get_or_create_consumer(
            subjects::WORKERS_CONSUMER,
            pull::Config {
                durable_name: Some(subjects::WORKERS_CONSUMER.into()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                // Unlimited: transient failures are NAKed with a growing delay, poison is terminated.
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
}

impl Worker {
    /// Handles one message's content and says what became of it. Public so tests can drive a worker one
    /// message at a time without a consumer loop.
    pub async fn handle(&self, subject: &str, payload: &[u8], delivered: i64) -> Outcome {
        self.handle_with(subject, payload, delivered, &NoKeepAlive)
            .await
    }

    /// [`Worker::handle`], keeping `alive` touched during long steps.
    pub async fn handle_with(
        &self,
        subject: &str,
        payload: &[u8],
        delivered: i64,
        alive: &dyn KeepAlive,
    ) -> Outcome {
        let cmd = match Command::decode(subject, payload) {
            Ok(cmd) => cmd,
            Err(e) => return self.reject_undecodable(subject, e.to_string()).await,
        };
        match self.runner.handle(&cmd, delivered, alive).await {
            Ok(outcome) => outcome,
            Err(e) => {
                // The control plane is unreachable: nothing was lost, try again shortly.
                tracing::error!(error = %e, "control plane unavailable");
                Outcome::RetryLater {
                    delay: Duration::from_secs(5),
                }
            }
        }
    }

    async fn reject_undecodable(&self, subject: &str, reason: String) -> Outcome {
        let tenant =
            subjects::parse_command_subject(subject).and_then(|(_, t)| TenantId::parse(t).ok());
        tracing::warn!(%subject, %reason, "undecodable command rejected");
        self.progress
            .rejected(tenant, "undecodable_command", &reason)
            .await;
        Outcome::Rejected { reason }
    }

    /// Handles a JetStream message and acknowledges it according to the outcome.
    pub async fn handle_message(&self, msg: Message) -> Outcome {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        let outcome = self
            .handle_with(msg.subject.as_str(), &msg.payload, delivered, &msg)
            .await;
        let ack = match &outcome {
            Outcome::Completed | Outcome::AlreadyDone | Outcome::Failed { .. } => AckKind::Ack,
            Outcome::Rejected { .. } => AckKind::Term,
            Outcome::RetryLater { delay } => AckKind::Nak(Some(*delay)),
        };
        if let Err(e) = msg.ack_with(ack).await {
            // The outcome is recorded; a redelivery will find it done.
            tracing::warn!(error = %e, "acknowledgement not sent");
        }
        outcome
    }
}

/// Pulls messages until `shutdown`, handling up to `concurrency` at once. In-flight messages finish
/// before this returns.
pub async fn consume(
    worker: &Worker,
    consumer: &PullConsumer,
    concurrency: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Small batches: a worker must not hold messages it is not working on while their ack_wait runs.
    let messages = consumer
        .stream()
        .max_messages_per_batch(concurrency)
        .messages()
        .await?;
    messages
        .take_until(shutdown.cancelled_owned())
        .for_each_concurrent(concurrency, |msg| async move {
            match msg {
                Ok(msg) => {
                    let outcome = worker.handle_message(msg).await;
                    tracing::info!(?outcome, "message handled");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pull failed; continuing");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        })
        .await;
    Ok(())
}
