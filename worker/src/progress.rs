//! Publishing progress events. The control plane holds the truth; an event that cannot be published is
//! logged and the run goes on rather than stalling provisioning on a dashboard feed.

use std::time::Duration;

use landlord_bus::Bus;
use landlord_protocol::{EventError, EventKind, ProgressEvent, TenantId, TenantStatus};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Progress {
    bus: Bus,
}

/// The optional parts of an event.
#[derive(Debug, Default)]
pub struct Detail {
    pub step: Option<crate::step_name::StepName>,
    pub attempt: Option<u32>,
    pub duration: Option<Duration>,
    pub status: Option<TenantStatus>,
    pub error: Option<EventError>,
    pub message: Option<String>,
    /// A fixed event id, for events that must be published once even when a run is resumed.
    pub event_id: Option<Uuid>,
}

impl Progress {
    pub fn new(bus: Bus) -> Self {
        Self { bus }
    }

    /// The bus, for the commands a worker derives (a reconcile after a Stripe event, a due timer).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Publishes an event for dashboards and watchers; a lost event is logged, never fails the run.
    ///
    /// Events do not wait for JetStream's acknowledgement (a round trip each, two per step): they are
    /// sent in order on the bus's connection and the acknowledgement is awaited beside the run. An event
    /// with a fixed id (a run's ending: active, failed, waiting for an operator) or a rejection (a
    /// command's ending when no run starts) is awaited: the command is acknowledged only after its ending
    /// is in the stream, where `landlord watch` and the event streams read it, and everything sent before
    /// it on the connection went out first.
    pub async fn emit(&self, tenant: Option<TenantId>, run: Option<Uuid>, kind: EventKind, d: Detail) {
        let awaited = d.event_id.is_some() || kind == EventKind::Rejected;
        let event = event(tenant, run, kind, d);
        let id = event.id;
        let sent = match self.bus.send_progress(&event).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, ?kind, %id, ?tenant, "progress event not published");
                return;
            }
        };
        let stored = async move {
            if let Err(e) = sent.await {
                tracing::warn!(error = %e, ?kind, %id, ?tenant, "progress event not stored");
            }
        };
        if awaited {
            stored.await;
        } else {
            tokio::spawn(tracing::Instrument::in_current_span(stored));
        }
    }

    /// [`Progress::emit`] for an event that must not be lost (a refused purchase is announced once JetStream
    /// has it, or the command is handled again): the caller learns whether JetStream stored it.
    pub async fn publish(
        &self,
        tenant: Option<TenantId>,
        run: Option<Uuid>,
        kind: EventKind,
        d: Detail,
    ) -> Result<(), landlord_bus::BusError> {
        self.bus.publish_progress(&event(tenant, run, kind, d)).await
    }

    /// A `rejected` event: the command will not be acted on, and `reason` says why.
    pub async fn rejected(&self, tenant: Option<TenantId>, code: &str, reason: &str) {
        let error = EventError { code: code.into(), message: reason.into(), retryable: false };
        self.emit(tenant, None, EventKind::Rejected, Detail { error: Some(error), ..Detail::default() }).await;
    }
}

/// The event `kind` about `tenant`'s `run` with its optional parts.
fn event(tenant: Option<TenantId>, run: Option<Uuid>, kind: EventKind, d: Detail) -> ProgressEvent {
    let event = ProgressEvent {
        step: d.step.map(|s| s.as_str().to_owned()),
        attempt: d.attempt,
        duration_ms: d.duration.map(|x| x.as_millis() as u64),
        status: d.status,
        error: d.error,
        message: d.message,
        ..ProgressEvent::new(tenant, run, kind)
    };
    ProgressEvent { id: d.event_id.unwrap_or(event.id), ..event }
}
