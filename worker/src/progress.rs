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

    pub async fn emit(&self, tenant: Option<TenantId>, run: Option<Uuid>, kind: EventKind, d: Detail) {
        if let Err(e) = self.publish(tenant, run, kind, d).await {
            tracing::warn!(error = %e, ?kind, "progress event not published");
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
        let event = ProgressEvent {
            step: d.step.map(|s| s.as_str().to_owned()),
            attempt: d.attempt,
            duration_ms: d.duration.map(|x| x.as_millis() as u64),
            status: d.status,
            error: d.error,
            message: d.message,
            ..ProgressEvent::new(tenant, run, kind)
        };
        let event = ProgressEvent { id: d.event_id.unwrap_or(event.id), ..event };
        self.bus.publish_progress(&event).await
    }

    /// A `rejected` event: the command will not be acted on, and `reason` says why.
    pub async fn rejected(&self, tenant: Option<TenantId>, code: &str, reason: &str) {
        let error = EventError { code: code.into(), message: reason.into(), retryable: false };
        self.emit(tenant, None, EventKind::Rejected, Detail { error: Some(error), ..Detail::default() }).await;
    }
}
