//! Reading progress back: history first, then live, in order. Used by `landlord watch`, the ingress's
//! Server-Sent Events (each event with its JetStream sequence, so a client resumes after the last one it
//! saw) and the tests.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::{Stream, StreamExt};
use landlord_protocol::{ProgressEvent, TenantId, subjects};

use crate::{Bus, BusError};

/// Errors within [`ERROR_WINDOW`] after which a read of progress events ends.
const ERRORS_THAT_END_A_READ: usize = 5;
const ERROR_WINDOW: Duration = Duration::from_secs(30);

/// A progress message with its stream sequence; `None` (with a warning) when it does not decode.
fn decoded(m: &async_nats::jetstream::Message) -> Option<(u64, ProgressEvent)> {
    let seq = m.info().ok()?.stream_sequence;
    serde_json::from_slice::<ProgressEvent>(&m.payload)
        .inspect_err(|e| tracing::warn!(error = %e, seq, "skipping undecodable progress event"))
        .ok()
        .map(|event| (seq, event))
}

impl Bus {
    /// Every progress event of `tenant` (or of all tenants), from the oldest kept, then live ones as they
    /// arrive. Events that do not decode are skipped with a warning rather than ending the stream.
    pub async fn progress(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<impl Stream<Item = ProgressEvent> + use<>, BusError> {
        Ok(self.progress_after(tenant, None).await?.map(|(_, event)| event))
    }

    /// Every progress event of `tenant` (or of all tenants) stored after stream sequence `after` (from the
    /// oldest kept when `None`), then live ones, each with its sequence: a reader that resumes after the
    /// last sequence it saw misses none and sees none twice.
    pub async fn progress_after(
        &self,
        tenant: Option<&TenantId>,
        after: Option<u64>,
    ) -> Result<impl Stream<Item = (u64, ProgressEvent)> + use<>, BusError> {
        let filter = match tenant {
            Some(t) => subjects::progress_subject(Some(t)),
            None => subjects::PROGRESS_WILDCARD.to_owned(),
        };
        let deliver_policy = match after {
            Some(seq) => DeliverPolicy::ByStartSequence { start_sequence: seq.saturating_add(1) },
            None => DeliverPolicy::All,
        };
        let fail = |e: &dyn std::fmt::Display| BusError::Unavailable(e.to_string());
        let stream = self.js.get_stream(subjects::PROGRESS_STREAM).await.map_err(|e| fail(&e))?;
        let consumer = stream
            .create_consumer(OrderedConfig { filter_subject: filter, deliver_policy, ..Default::default() })
            .await
            .map_err(|e| fail(&e))?;
        let messages = consumer.messages().await.map_err(|e| fail(&e))?;
        // The ordered consumer recreates itself after a lost message or heartbeat; errors it cannot get
        // past come again and again. Those end the stream, so its reader resumes (an SSE client reconnects
        // with `Last-Event-ID`) instead of waiting on a stream that only sends keep-alives.
        Ok(messages
            .scan(Vec::<Instant>::new(), |errors, m| {
                let next = match m {
                    Ok(m) => Some(decoded(&m)),
                    Err(e) => {
                        // Only errors close together count: one after each of a few NATS reconnects, days
                        // apart, must not end a healthy stream.
                        let now = Instant::now();
                        errors.retain(|at| now.duration_since(*at) < ERROR_WINDOW);
                        errors.push(now);
                        tracing::warn!(error = %e, recent_errors = errors.len(), "reading progress events failed");
                        (errors.len() < ERRORS_THAT_END_A_READ).then_some(None)
                    }
                };
                futures::future::ready(next)
            })
            .filter_map(futures::future::ready))
    }

    /// The stream sequence of the newest progress event of `tenant`, if it has any: where a reader that
    /// replays history knows it has caught up.
    pub async fn last_progress(&self, tenant: &TenantId) -> Result<Option<u64>, BusError> {
        let fail = |e: &dyn std::fmt::Display| BusError::Unavailable(e.to_string());
        let stream = self.js.get_stream(subjects::PROGRESS_STREAM).await.map_err(|e| fail(&e))?;
        match stream.get_last_raw_message_by_subject(&subjects::progress_subject(Some(tenant))).await {
            Ok(message) => Ok(Some(message.sequence)),
            Err(e) if e.kind() == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(fail(&e)),
        }
    }

    /// How many commands about `tenant` wait in the commands stream (queued, or being worked on: the stream
    /// is a work queue, so a command leaves it once a worker has acknowledged it). A watcher that found the
    /// tenant settled in history keeps watching while one waits (`landlord tenants resume X && landlord
    /// watch X`).
    pub async fn commands_waiting(&self, tenant: &TenantId) -> Result<usize, BusError> {
        let fail = |e: &dyn std::fmt::Display| BusError::Unavailable(e.to_string());
        let stream = self.js.get_stream(subjects::COMMANDS_STREAM).await.map_err(|e| fail(&e))?;
        let mut subjects =
            stream.info_with_subjects(format!("landlord.commands.*.{tenant}")).await.map_err(|e| fail(&e))?;
        let mut waiting = 0;
        while let Some(subject) = subjects.next().await {
            waiting += subject.map_err(|e| fail(&e))?.1;
        }
        Ok(waiting)
    }
}
