//! Turns a verified Stripe event into a decision: provision a tenant, or ignore the event (with a reason
//! for the log and the response). Only the fields Landlord needs are read.

use std::collections::HashMap;

use landlord_protocol::{
    Action, Command, CommandId, ContactEmail, PackageId, ProvisionSpec, StoreName, SubscriptionTypeId, TenantId,
    TenantSlug,
};
use serde::Deserialize;

/// Event types that mean "this purchase is paid".
const PAID_CHECKOUT_EVENTS: &[&str] = &["checkout.session.completed", "checkout.session.async_payment_succeeded"];

#[derive(Debug)]
pub enum EventDecision {
    Provision(Box<Command>),
    Ignore(String),
}

/// A body that is signed correctly but cannot be acted on. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the body is not a Stripe event: {0}")]
    NotAnEvent(serde_json::Error),
    #[error("the checkout session cannot be read: {0}")]
    BadSession(serde_json::Error),
    #[error("the event id is not valid: {0}")]
    BadEventId(landlord_protocol::IdError),
    #[error("the checkout session has invalid or missing metadata: {0}")]
    Metadata(String),
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: serde_json::Value,
}

#[derive(Deserialize)]
struct CheckoutSession {
    id: String,
    payment_status: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, Option<String>>,
    customer_details: Option<CustomerDetails>,
    customer_email: Option<String>,
}

#[derive(Deserialize)]
struct CustomerDetails {
    email: Option<String>,
}

/// Decides what a verified event body asks of Landlord.
pub fn decide(body: &[u8]) -> Result<EventDecision, WebhookError> {
    let event: Event = serde_json::from_slice(body).map_err(WebhookError::NotAnEvent)?;
    if !PAID_CHECKOUT_EVENTS.contains(&event.kind.as_str()) {
        return Ok(EventDecision::Ignore(format!("event type {} is not handled", event.kind)));
    }
    let session: CheckoutSession = serde_json::from_value(event.data.object).map_err(WebhookError::BadSession)?;
    if session.payment_status.as_deref() == Some("unpaid") {
        return Ok(EventDecision::Ignore(
            "checkout completed but not paid yet; waiting for checkout.session.async_payment_succeeded".into(),
        ));
    }
    let id = CommandId::stripe(&event.id).map_err(WebhookError::BadEventId)?;
    let spec = provision_spec(&session)?;
    let tenant = TenantId::from_checkout_session(&session.id);
    Ok(EventDecision::Provision(Box::new(Command::new(id, tenant, "stripe", Action::Provision(spec)))))
}

/// Reads the tenant from the session, reporting every problem at once so one fix is enough.
fn provision_spec(session: &CheckoutSession) -> Result<ProvisionSpec, WebhookError> {
    let mut problems = Vec::new();
    let mut field = |key: &str| -> Option<String> {
        match session.metadata.get(key).cloned().flatten() {
            Some(v) => Some(v),
            None => {
                problems.push(format!("metadata.{key} is missing"));
                None
            }
        }
    };
    let (slug, store, package, kind) =
        (field("subdomain"), field("store_name"), field("package_id"), field("subscription_type_id"));
    let email =
        session.customer_details.as_ref().and_then(|d| d.email.clone()).or_else(|| session.customer_email.clone());
    if email.is_none() {
        problems.push("customer_details.email is missing".into());
    }
    fn check<T>(
        problems: &mut Vec<String>,
        v: Option<String>,
        parse: impl Fn(&str) -> Result<T, landlord_protocol::IdError>,
    ) -> Option<T> {
        v.and_then(|s| parse(&s).map_err(|e| problems.push(e.to_string())).ok())
    }
    let slug = check(&mut problems, slug, TenantSlug::parse);
    let store_name = check(&mut problems, store, StoreName::parse);
    let package_id = check(&mut problems, package, PackageId::parse);
    let subscription_type_id = check(&mut problems, kind, SubscriptionTypeId::parse);
    let contact_email = check(&mut problems, email, ContactEmail::parse);
    match (slug, store_name, contact_email, package_id, subscription_type_id) {
        (Some(slug), Some(store_name), Some(contact_email), Some(package_id), Some(subscription_type_id))
            if problems.is_empty() =>
        {
            Ok(ProvisionSpec { slug, store_name, contact_email, package_id, subscription_type_id })
        }
        _ => Err(WebhookError::Metadata(problems.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, session: &serde_json::Value) -> Vec<u8> {
        serde_json::json!({"id": "evt_1", "type": kind, "data": {"object": session}}).to_string().into_bytes()
    }

    fn paid_session() -> serde_json::Value {
        serde_json::json!({
            "id": "cs_test_1", "payment_status": "paid",
            "metadata": {"subdomain": "acme", "store_name": "Acme", "package_id": "1", "subscription_type_id": "2"},
            "customer_details": {"email": "a@acme.example"}
        })
    }

    #[test]
    fn paid_checkout_becomes_a_provision_command() {
        let EventDecision::Provision(cmd) = decide(&event("checkout.session.completed", &paid_session())).unwrap()
        else {
            panic!("expected a provision")
        };
        assert_eq!(cmd.id.as_str(), "stripe:evt_1");
        assert_eq!(cmd.tenant_id, TenantId::from_checkout_session("cs_test_1"));
        let Action::Provision(spec) = &cmd.action else { panic!() };
        assert_eq!((spec.slug.as_str(), spec.package_id.get(), spec.subscription_type_id.get()), ("acme", 1, 2));
    }

    #[test]
    fn other_events_and_unpaid_checkouts_are_ignored() {
        assert!(matches!(decide(&event("invoice.paid", &serde_json::json!({}))).unwrap(), EventDecision::Ignore(_)));
        let mut unpaid = paid_session();
        unpaid["payment_status"] = "unpaid".into();
        assert!(matches!(decide(&event("checkout.session.completed", &unpaid)).unwrap(), EventDecision::Ignore(_)));
    }

    #[test]
    fn every_metadata_problem_is_reported() {
        let mut s = paid_session();
        s["metadata"] = serde_json::json!({"subdomain": "Bad Slug", "package_id": "x"});
        s["customer_details"] = serde_json::json!({"email": null});
        let err = decide(&event("checkout.session.completed", &s)).unwrap_err().to_string();
        for needle in
            ["store_name is missing", "subscription_type_id is missing", "email is missing", "subdomain", "package id"]
        {
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }

    #[test]
    fn garbage_is_not_an_event() {
        assert!(matches!(decide(b"[1,2]"), Err(WebhookError::NotAnEvent(_))));
    }
}
