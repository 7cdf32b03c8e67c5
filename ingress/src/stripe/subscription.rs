//! Stripe's subscription and invoice events: each becomes a `stripe_subscription` command keyed by the
//! subscription, carrying the subscription as the event showed it (invoice events carry none: they only
//! ask a worker to look again). The worker finds the tenant and decides; the ingress knows no tenant.

use chrono::{DateTime, Utc};
use landlord_protocol::{
    Action, Command, CommandId, StripeId, SubscriptionEvent, SubscriptionEventType, SubscriptionSnapshot,
    SubscriptionStatus, TenantId,
};
use serde::Deserialize;

use super::checkout::{EventDecision, WebhookError, id_of};

#[derive(Deserialize)]
struct Subscription {
    id: String,
    status: String,
    #[serde(default)]
    customer: serde_json::Value,
    #[serde(default)]
    items: Option<Items>,
}

#[derive(Deserialize)]
struct Items {
    #[serde(default)]
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    price: Option<Price>,
}

#[derive(Deserialize)]
struct Price {
    id: String,
}

/// An invoice names its subscription directly (older API versions) or under `parent.subscription_details`.
#[derive(Deserialize)]
struct Invoice {
    #[serde(default)]
    subscription: serde_json::Value,
    #[serde(default)]
    parent: Option<InvoiceParent>,
    #[serde(default)]
    customer: serde_json::Value,
}

#[derive(Deserialize)]
struct InvoiceParent {
    subscription_details: Option<SubscriptionDetails>,
}

#[derive(Deserialize)]
struct SubscriptionDetails {
    #[serde(default)]
    subscription: serde_json::Value,
}

/// The command of one subscription or invoice event.
pub fn decide(
    event_id: &str,
    kind: SubscriptionEventType,
    created: i64,
    object: serde_json::Value,
) -> Result<EventDecision, WebhookError> {
    let event = StripeId::parse(event_id).map_err(WebhookError::BadEventId)?;
    let created = DateTime::<Utc>::from_timestamp(created, 0)
        .ok_or_else(|| WebhookError::BadSubscription(format!("event {event_id} has an impossible created time")))?;
    let (subscription, customer, snapshot) = if kind.is_invoice() {
        let invoice: Invoice =
            serde_json::from_value(object).map_err(|e| WebhookError::BadSubscription(e.to_string()))?;
        let nested = invoice.parent.and_then(|p| p.subscription_details).map(|d| d.subscription);
        let Some(subscription) = id_of(&invoice.subscription).or_else(|| nested.as_ref().and_then(id_of)) else {
            return Ok(EventDecision::Ignore(format!("{} for an invoice of no subscription", kind.as_str())));
        };
        (subscription, id_of(&invoice.customer), None)
    } else {
        let sub: Subscription =
            serde_json::from_value(object).map_err(|e| WebhookError::BadSubscription(e.to_string()))?;
        let id = StripeId::parse(&sub.id)
            .map_err(|e| WebhookError::BadSubscription(format!("the subscription id is not valid: {e}")))?;
        let Some(status) = SubscriptionStatus::parse(&sub.status) else {
            return Ok(EventDecision::Ignore(format!(
                "subscription status {:?} is not one Landlord knows",
                sub.status
            )));
        };
        let prices = sub
            .items
            .into_iter()
            .flat_map(|i| i.data)
            .filter_map(|i| i.price.and_then(|p| StripeId::parse(&p.id).ok()))
            .collect();
        let deleted = kind == SubscriptionEventType::Deleted;
        (id, id_of(&sub.customer), Some(SubscriptionSnapshot { status, prices, deleted }))
    };
    let key = TenantId::for_subscription(subscription.as_str());
    let id = CommandId::stripe(event_id).map_err(WebhookError::BadEventId)?;
    let action = Action::StripeSubscription(SubscriptionEvent {
        event_id: event,
        event_type: kind,
        event_created: created,
        subscription,
        customer,
        snapshot,
    });
    Ok(EventDecision::Subscription(Box::new(Command::new(id, key, format!("stripe:{event_id}"), action))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> serde_json::Value {
        let path = format!("{}/tests/vectors/stripe_{name}.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn command(d: EventDecision) -> SubscriptionEvent {
        let EventDecision::Subscription(cmd) = d else { panic!("expected a subscription command, got {d:?}") };
        let Action::StripeSubscription(e) = cmd.action else { panic!() };
        assert_eq!(cmd.tenant_id, TenantId::for_subscription(e.subscription.as_str()));
        e
    }

    #[test]
    fn a_subscription_event_carries_its_status_and_prices() {
        let sub = fixture("subscription");
        let e = command(decide("evt_1", SubscriptionEventType::Updated, 1_700_000_000, sub.clone()).unwrap());
        assert_eq!(e.subscription.as_str(), "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw");
        assert_eq!(e.customer.unwrap().as_str(), "cus_QXg1o8vcGmoR32");
        let snap = e.snapshot.unwrap();
        assert_eq!((snap.status, snap.deleted), (SubscriptionStatus::Active, false));
        assert_eq!(snap.prices[0].as_str(), "price_1PgafmB7WZ01zgkW6dKueIc5");
        assert_eq!(e.event_created.timestamp(), 1_700_000_000);
        let gone = command(decide("evt_2", SubscriptionEventType::Deleted, 1, sub).unwrap());
        assert!(gone.snapshot.unwrap().deleted);
    }

    #[test]
    fn an_invoice_event_names_its_subscription_in_either_place_or_is_ignored() {
        let mut invoice = fixture("invoice");
        // The fixture's nested subscription is a placeholder word, which is a valid id shape.
        let e = command(decide("evt_3", SubscriptionEventType::PaymentFailed, 5, invoice.clone()).unwrap());
        assert_eq!((e.subscription.as_str(), e.snapshot), ("subscription", None));
        invoice["subscription"] = "sub_direct".into();
        let e = command(decide("evt_4", SubscriptionEventType::InvoicePaid, 5, invoice.clone()).unwrap());
        assert_eq!(e.subscription.as_str(), "sub_direct");
        invoice["subscription"] = serde_json::Value::Null;
        invoice["parent"] = serde_json::Value::Null;
        assert!(matches!(
            decide("evt_5", SubscriptionEventType::PaymentSucceeded, 5, invoice).unwrap(),
            EventDecision::Ignore(_)
        ));
    }

    #[test]
    fn an_unknown_status_is_ignored_and_a_hostile_id_refused() {
        let mut sub = fixture("subscription");
        sub["status"] = "sparkling".into();
        assert!(matches!(
            decide("evt_6", SubscriptionEventType::Updated, 5, sub.clone()).unwrap(),
            EventDecision::Ignore(_)
        ));
        sub["status"] = "active".into();
        sub["id"] = "sub_1'; DROP TABLE x".into();
        assert!(decide("evt_7", SubscriptionEventType::Updated, 5, sub).is_err());
    }
}
