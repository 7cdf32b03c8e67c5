//! Progress events: one per step start, success, retry, failure, undo and status change, published on
//! `landlord.progress.<tenant_id>` for dashboards, `landlord watch` and the audit trail.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{PROTOCOL_VERSION, TenantId};

/// One progress event, version 1. Messages are written for a person and never carry a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProgressEvent {
    pub v: u8,
    /// Unique per event, also its JetStream message id.
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// Absent only on a `rejected` event for a message that named no readable tenant.
    pub tenant_id: Option<TenantId>,
    /// The run this event belongs to; absent on `rejected`.
    pub run_id: Option<Uuid>,
    pub kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration_ms: Option<u64>,
    /// The tenant's status after this event.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<TenantStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<EventError>,
    /// A short human sentence: what happened, or what was skipped and why.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    StepStarted,
    StepSucceeded,
    StepRetrying,
    StepFailed,
    StepSkipped,
    StepUndone,
    StatusChanged,
    /// A command that could not be acted on (did not decode, named nothing known); it is not retried.
    Rejected,
    /// A paid purchase Landlord refused (invalid metadata, subdomain taken). It is recorded for an
    /// operator (`landlord purchases refused`), who must settle it with the customer.
    PurchaseRefused,
    /// Stripe says the tenant's trial ends in a few days (`customer.subscription.trial_will_end`).
    TrialWillEnd,
    /// The subscription ended; the tenant is suspended and will be offboarded at the time the message
    /// gives, unless an operator resumes it first.
    OffboardingScheduled,
    /// A tenant still waits for an operator (`awaiting_operator`); sent again every
    /// `LANDLORD_OPERATOR_REMINDER` until someone acts. The message says what to do.
    OperatorReminder,
}

/// A tenant's lifecycle state (see ARCHITECTURE.md for the transitions). `moving`: its database is being
/// copied to another server (a plan change across placement), its login locked and its names parked until
/// the copy is switched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Pending,
    Provisioning,
    Active,
    Suspended,
    AwaitingOperator,
    Moving,
    Failed,
    Offboarding,
    Deleted,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::AwaitingOperator => "awaiting_operator",
            Self::Moving => "moving",
            Self::Failed => "failed",
            Self::Offboarding => "offboarding",
            Self::Deleted => "deleted",
        }
    }

    /// Every status, in lifecycle order.
    pub const ALL: [Self; 9] = [
        Self::Pending,
        Self::Provisioning,
        Self::Active,
        Self::Suspended,
        Self::AwaitingOperator,
        Self::Moving,
        Self::Failed,
        Self::Offboarding,
        Self::Deleted,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// What went wrong, for a person: a stable code to search for, a sentence saying what to do, and whether
/// Landlord will try again by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

impl ProgressEvent {
    /// An event of `kind` for a tenant's run, stamped now; fill the optional fields with struct update.
    pub fn new(tenant_id: Option<TenantId>, run_id: Option<Uuid>, kind: EventKind) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            id: Uuid::new_v4(),
            at: Utc::now(),
            tenant_id,
            run_id,
            kind,
            step: None,
            attempt: None,
            duration_ms: None,
            status: None,
            error: None,
            message: None,
        }
    }

    pub fn subject(&self) -> String {
        crate::subjects::progress_subject(self.tenant_id.as_ref())
    }
}
