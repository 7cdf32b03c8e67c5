//! Commands: what a worker is asked to do to one tenant. Published on
//! `landlord.commands.<kind>.<tenant_id>` by the ingress, the CLI or an operator with `nats pub`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    CommandId, ContactEmail, PROTOCOL_VERSION, PackageId, StoreName, StripeId, SubscriptionEvent, SubscriptionTypeId,
    TenantId, TenantSlug,
};

/// One command, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Command {
    /// Protocol version; readers refuse versions they do not know.
    pub v: u8,
    /// Idempotency key, also the JetStream message id.
    pub id: CommandId,
    pub tenant_id: TenantId,
    /// Who asked: `stripe`, or the operator's name. For the audit trail only.
    pub requested_by: String,
    pub created: DateTime<Utc>,
    #[serde(flatten)]
    pub action: Action,
}

/// What to do, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Create everything the tenant needs and make it active.
    Provision(ProvisionSpec),
    /// Resume a failed run at its unfinished steps.
    Retry,
    Suspend,
    Resume,
    /// Remove the tenant: at once, or after the grace period (`LANDLORD_OFFBOARD_AFTER`) with the tenant
    /// suspended meanwhile.
    Offboard(OffboardRequest),
    ChangePlan(PlanChange),
    /// A paid checkout Landlord cannot turn into a tenant (its metadata is invalid): recorded for an
    /// operator and announced, never only logged, because the customer has paid.
    RefusedPurchase(RefusedPurchase),
    /// A Stripe event about a subscription. Its subject names [`TenantId::for_subscription`], not a tenant:
    /// the worker keeps the newest snapshot and asks the subscription's tenant, if any, to reconcile.
    StripeSubscription(SubscriptionEvent),
    /// Bring the tenant to the state its subscription's newest snapshot asks for (suspend, resume, change
    /// plan, schedule offboarding); idempotent, one flow per command.
    Reconcile,
}

/// The tenant a purchase pays for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProvisionSpec {
    pub slug: TenantSlug,
    pub store_name: StoreName,
    pub contact_email: ContactEmail,
    pub package_id: PackageId,
    pub subscription_type_id: SubscriptionTypeId,
    /// The Stripe purchase that pays for the tenant; absent when an operator asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase: Option<Purchase>,
    /// The purchase named no subdomain, so Landlord derived `slug` from the store's name: when another
    /// tenant holds it, the worker adds a short suffix instead of refusing the purchase.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub slug_derived: bool,
}

/// Where a purchase came from in Stripe, for the operator who has to find it there (to refund it, say).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Purchase {
    pub checkout_session: StripeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<StripeId>,
    /// The subscription a subscription-mode checkout started; its events drive the tenant's life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<StripeId>,
}

/// A paid purchase and why Landlord refused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RefusedPurchase {
    pub purchase: Purchase,
    /// Every problem found, for a person (at most [`RefusedPurchase::MAX_REASON`] characters).
    pub reason: String,
    /// The customer's address when the session carried a usable one, so the operator can reach them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<ContactEmail>,
}

impl RefusedPurchase {
    /// Longest reason kept; a longer one is cut at a character boundary with an ellipsis.
    pub const MAX_REASON: usize = 2000;

    pub fn new(purchase: Purchase, reason: &str, contact_email: Option<ContactEmail>) -> Self {
        let reason = if reason.chars().count() > Self::MAX_REASON {
            let mut cut: String = reason.chars().take(Self::MAX_REASON - 1).collect();
            cut.push('…');
            cut
        } else {
            reason.to_owned()
        };
        Self { purchase, reason, contact_email }
    }
}

/// How an offboarding goes. `{"kind": "offboard"}` alone offboards at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OffboardRequest {
    /// Suspend now and offboard when the grace period is over (an operator's resume restores the tenant
    /// meanwhile), as a deleted subscription does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_grace: bool,
}

/// The plan a tenant moves to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanChange {
    pub package_id: PackageId,
    pub subscription_type_id: SubscriptionTypeId,
}

/// The `kind` of a command, which is also a token of its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Provision,
    Retry,
    Suspend,
    Resume,
    Offboard,
    ChangePlan,
    RefusedPurchase,
    StripeSubscription,
    Reconcile,
}

impl CommandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provision => "provision",
            Self::Retry => "retry",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Offboard => "offboard",
            Self::ChangePlan => "change_plan",
            Self::RefusedPurchase => "refused_purchase",
            Self::StripeSubscription => "stripe_subscription",
            Self::Reconcile => "reconcile",
        }
    }
}

impl Action {
    pub fn kind(&self) -> CommandKind {
        match self {
            Self::Provision(_) => CommandKind::Provision,
            Self::Retry => CommandKind::Retry,
            Self::Suspend => CommandKind::Suspend,
            Self::Resume => CommandKind::Resume,
            Self::Offboard(_) => CommandKind::Offboard,
            Self::ChangePlan(_) => CommandKind::ChangePlan,
            Self::RefusedPurchase(_) => CommandKind::RefusedPurchase,
            Self::StripeSubscription(_) => CommandKind::StripeSubscription,
            Self::Reconcile => CommandKind::Reconcile,
        }
    }
}

/// Why a payload is not a command Landlord can act on. Carried in the `rejected` progress event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is not a valid command: {0}")]
    Json(#[from] serde_json::Error),
    #[error("protocol version {0} is not supported (this worker reads version {PROTOCOL_VERSION})")]
    Version(u8),
    #[error("subject says tenant {subject} but the payload says {payload}")]
    TenantMismatch { subject: String, payload: TenantId },
    #[error("subject says kind {subject} but the payload says {payload}")]
    KindMismatch { subject: String, payload: &'static str },
}

impl Command {
    /// A version-1 command created now.
    pub fn new(id: CommandId, tenant_id: TenantId, requested_by: impl Into<String>, action: Action) -> Self {
        Self { v: PROTOCOL_VERSION, id, tenant_id, requested_by: requested_by.into(), created: Utc::now(), action }
    }

    /// Decodes a payload and checks it against the subject it arrived on, so a message cannot claim
    /// one tenant in its subject and act on another.
    pub fn decode(subject: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        let cmd: Command = serde_json::from_slice(payload)?;
        if cmd.v != PROTOCOL_VERSION {
            return Err(DecodeError::Version(cmd.v));
        }
        if let Some((kind, tenant)) = crate::subjects::parse_command_subject(subject) {
            if kind != cmd.action.kind().as_str() {
                return Err(DecodeError::KindMismatch {
                    subject: kind.to_owned(),
                    payload: cmd.action.kind().as_str(),
                });
            }
            if tenant != cmd.tenant_id.to_string() {
                return Err(DecodeError::TenantMismatch { subject: tenant.to_owned(), payload: cmd.tenant_id });
            }
        }
        Ok(cmd)
    }

    pub fn subject(&self) -> String {
        crate::subjects::command_subject(self.action.kind(), &self.tenant_id)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a command always serializes")
    }
}
