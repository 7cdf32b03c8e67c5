//! What a Stripe subscription event tells Landlord. An event is a trigger, not the truth: Stripe does not
//! order events and stamps them to the second, so workers keep the newest snapshot of each subscription
//! and derive the tenant's desired state from it ([`SubscriptionStatus::desired`]).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::StripeId;

/// The Stripe events Landlord acts on for a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SubscriptionEventType {
    #[serde(rename = "customer.subscription.updated")]
    Updated,
    #[serde(rename = "customer.subscription.deleted")]
    Deleted,
    #[serde(rename = "customer.subscription.paused")]
    Paused,
    #[serde(rename = "customer.subscription.resumed")]
    Resumed,
    #[serde(rename = "customer.subscription.trial_will_end")]
    TrialWillEnd,
    #[serde(rename = "invoice.payment_failed")]
    PaymentFailed,
    #[serde(rename = "invoice.paid")]
    InvoicePaid,
    #[serde(rename = "invoice.payment_succeeded")]
    PaymentSucceeded,
}

impl SubscriptionEventType {
    pub const ALL: [Self; 8] = [
        Self::Updated,
        Self::Deleted,
        Self::Paused,
        Self::Resumed,
        Self::TrialWillEnd,
        Self::PaymentFailed,
        Self::InvoicePaid,
        Self::PaymentSucceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "customer.subscription.updated",
            Self::Deleted => "customer.subscription.deleted",
            Self::Paused => "customer.subscription.paused",
            Self::Resumed => "customer.subscription.resumed",
            Self::TrialWillEnd => "customer.subscription.trial_will_end",
            Self::PaymentFailed => "invoice.payment_failed",
            Self::InvoicePaid => "invoice.paid",
            Self::PaymentSucceeded => "invoice.payment_succeeded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Invoice events carry no subscription object: they only ask for the subscription to be looked at.
    pub fn is_invoice(self) -> bool {
        matches!(self, Self::PaymentFailed | Self::InvoicePaid | Self::PaymentSucceeded)
    }
}

/// A subscription's `status` as Stripe reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    Trialing,
    PastDue,
    Unpaid,
    Paused,
    Canceled,
    Incomplete,
    IncompleteExpired,
}

/// What the tenant of a subscription should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    /// Serving; `payment_overdue` flags a failed payment Stripe is still retrying.
    Active {
        payment_overdue: bool,
    },
    Suspended,
    /// The subscription is gone: suspended now, offboarded after the grace period.
    Ended,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trialing => "trialing",
            Self::PastDue => "past_due",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
            Self::Canceled => "canceled",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Active,
            Self::Trialing,
            Self::PastDue,
            Self::Unpaid,
            Self::Paused,
            Self::Canceled,
            Self::Incomplete,
            Self::IncompleteExpired,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// `active`/`trialing` serve; `past_due` serves with a flag; `unpaid`, `paused`, `canceled` (and a first
    /// payment that never completed) suspend; a deleted subscription ends.
    pub fn desired(self, deleted: bool) -> Desired {
        if deleted {
            return Desired::Ended;
        }
        match self {
            Self::Active | Self::Trialing => Desired::Active { payment_overdue: false },
            Self::PastDue => Desired::Active { payment_overdue: true },
            Self::Unpaid | Self::Paused | Self::Canceled | Self::Incomplete | Self::IncompleteExpired => {
                Desired::Suspended
            }
        }
    }

    /// Which of two snapshots stamped in the same second is kept: Stripe's one-second stamps cannot say
    /// which is later, so the one that restricts the tenant more wins, whichever arrives first (an ended
    /// subscription most, then an unpaid, a paused, an overdue one, then the serving statuses). With
    /// `LANDLORD_STRIPE_API_KEY` the API says which is current.
    pub fn restrictiveness(self) -> u8 {
        match self {
            Self::Canceled => 5,
            Self::IncompleteExpired => 4,
            Self::Unpaid => 3,
            Self::Paused | Self::Incomplete => 2,
            Self::PastDue => 1,
            Self::Active | Self::Trialing => 0,
        }
    }
}

/// A subscription as one event (or Stripe's API) showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionSnapshot {
    pub status: SubscriptionStatus,
    /// The prices of its items, which decide the plan.
    pub prices: Vec<StripeId>,
    /// `customer.subscription.deleted`: the subscription is over for good.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// One Stripe event about a subscription (`stripe_subscription` command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionEvent {
    pub event_id: StripeId,
    pub event_type: SubscriptionEventType,
    /// The event's `created`, to the second (the command's own `created` is when Landlord received it).
    pub event_created: DateTime<Utc>,
    pub subscription: StripeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<StripeId>,
    /// The subscription as the event carried it; absent for invoice events, which only trigger a look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SubscriptionSnapshot>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_tenants_state() {
        use SubscriptionStatus::*;
        assert_eq!(Active.desired(false), Desired::Active { payment_overdue: false });
        assert_eq!(Trialing.desired(false), Desired::Active { payment_overdue: false });
        assert_eq!(PastDue.desired(false), Desired::Active { payment_overdue: true });
        for st in [Unpaid, Paused, Canceled] {
            assert_eq!(st.desired(false), Desired::Suspended, "{st:?}");
        }
        assert_eq!(Active.desired(true), Desired::Ended);
        assert!(Canceled.restrictiveness() > Unpaid.restrictiveness());
        assert!(Unpaid.restrictiveness() > Paused.restrictiveness());
        assert!(Paused.restrictiveness() > PastDue.restrictiveness());
        assert!(PastDue.restrictiveness() > Active.restrictiveness());
        for st in [Active, Trialing, PastDue, Unpaid, Paused, Canceled, Incomplete, IncompleteExpired] {
            assert_eq!(SubscriptionStatus::parse(st.as_str()), Some(st));
        }
        for t in SubscriptionEventType::ALL {
            assert_eq!(SubscriptionEventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}
