//! Turns a verified Stripe event into a decision: provision a tenant, refuse a paid purchase for an
//! operator, or ignore the event (with a reason for the log and the response). Only the fields Landlord
//! needs are read. The plan comes from the checkout's metadata when it names one, otherwise from the price
//! of its line items (present when the session was expanded), looked up in the plan catalogue.

use std::collections::HashMap;

use landlord_protocol::{
    Action, Command, CommandId, ContactEmail, PackageId, Plan, Plans, ProvisionSpec, Purchase, RefusedPurchase,
    StoreName, StripeId, SubscriptionTypeId, TenantId, TenantSlug,
};
use serde::Deserialize;

/// Event types that mean "this purchase is paid".
const PAID_CHECKOUT_EVENTS: &[&str] = &["checkout.session.completed", "checkout.session.async_payment_succeeded"];

#[derive(Debug)]
pub enum EventDecision {
    Provision(Box<Command>),
    /// A paid checkout whose metadata cannot make a tenant: recorded for an operator, since the customer
    /// has paid and Stripe retrying the same event cannot fix it.
    Refuse {
        command: Box<Command>,
        reason: String,
    },
    /// A subscription or invoice event, for the worker to weigh against what it knows.
    Subscription(Box<Command>),
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
    #[error("the checkout session id is not valid: {0}")]
    BadSessionId(landlord_protocol::IdError),
    #[error("the subscription or invoice cannot be read: {0}")]
    BadSubscription(String),
}

/// A Stripe event whose object is read as `T`. The body is read twice: first with the object skipped
/// (`IgnoredAny`: scanned, nothing allocated) to learn the event's type, then with the object straight into
/// the type that event carries. Building a JSON tree of the whole object first cost more than the rest
/// of a webhook's handling (BENCHMARKS.md, ingress).
#[derive(Deserialize)]
struct Event<T> {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    created: i64,
    data: EventData<T>,
}

#[derive(Deserialize)]
struct EventData<T> {
    object: T,
}

#[derive(Deserialize)]
struct CheckoutSession {
    id: String,
    payment_status: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, Option<String>>,
    customer_details: Option<CustomerDetails>,
    customer_email: Option<String>,
    /// A customer id, or the customer object when the event was expanded.
    #[serde(default)]
    customer: serde_json::Value,
    /// In subscription mode, the subscription the checkout started (an id, or the expanded object).
    #[serde(default)]
    subscription: serde_json::Value,
    /// Stripe leaves line items out of webhook events; they are here only when the session was expanded.
    line_items: Option<LineItems>,
}

#[derive(Deserialize)]
struct LineItems {
    #[serde(default)]
    data: Vec<LineItem>,
}

#[derive(Deserialize)]
struct LineItem {
    price: Option<Price>,
}

#[derive(Deserialize)]
struct Price {
    id: String,
}

impl CheckoutSession {
    fn purchase(&self) -> Result<Purchase, WebhookError> {
        let checkout_session = StripeId::parse(&self.id).map_err(WebhookError::BadSessionId)?;
        Ok(Purchase { checkout_session, customer: id_of(&self.customer), subscription: id_of(&self.subscription) })
    }

    fn email(&self) -> Option<String> {
        self.customer_details.as_ref().and_then(|d| d.email.clone()).or_else(|| self.customer_email.clone())
    }
}

/// The id of a field that holds an id, or the object when the event was expanded.
pub(crate) fn id_of(value: &serde_json::Value) -> Option<StripeId> {
    let id = match value {
        serde_json::Value::String(id) => Some(id.as_str()),
        serde_json::Value::Object(o) => o.get("id").and_then(|v| v.as_str()),
        _ => None,
    };
    id.and_then(|id| StripeId::parse(id).ok())
}

#[derive(Deserialize)]
struct CustomerDetails {
    email: Option<String>,
}

/// Decides what a verified event body asks of Landlord; `plans` is the catalogue purchases must buy from.
pub fn decide(body: &[u8], plans: &Plans) -> Result<EventDecision, WebhookError> {
    let head: Event<serde::de::IgnoredAny> = serde_json::from_slice(body).map_err(WebhookError::NotAnEvent)?;
    if let Some(kind) = landlord_protocol::SubscriptionEventType::parse(&head.kind) {
        let event: Event<serde_json::Value> = serde_json::from_slice(body).map_err(WebhookError::NotAnEvent)?;
        return super::subscription::decide(&event.id, kind, event.created, event.data.object);
    }
    if !PAID_CHECKOUT_EVENTS.contains(&head.kind.as_str()) {
        return Ok(EventDecision::Ignore(format!("event type {} is not handled", head.kind)));
    }
    // The body is an event (read above), so what does not read now is the session.
    let event: Event<CheckoutSession> = serde_json::from_slice(body).map_err(WebhookError::BadSession)?;
    let session = event.data.object;
    if session.payment_status.as_deref() == Some("unpaid") {
        return Ok(EventDecision::Ignore(
            "checkout completed but not paid yet; waiting for checkout.session.async_payment_succeeded".into(),
        ));
    }
    let id = CommandId::stripe(&event.id).map_err(WebhookError::BadEventId)?;
    let purchase = session.purchase()?;
    let tenant = TenantId::from_checkout_session(&session.id);
    // Who asked, for the audit log: Stripe, by this event.
    let by = format!("stripe:{}", event.id);
    match provision_spec(&session, purchase.clone(), plans) {
        Ok(spec) => Ok(EventDecision::Provision(Box::new(Command::new(id, tenant, by, Action::Provision(spec))))),
        Err(WebhookError::Metadata(reason)) => {
            let email = session.email().and_then(|e| ContactEmail::parse(&e).ok());
            let refused = RefusedPurchase::new(purchase, &format!("invalid or missing metadata: {reason}"), email);
            let reason = refused.reason.clone();
            let command = Box::new(Command::new(id, tenant, by, Action::RefusedPurchase(refused)));
            Ok(EventDecision::Refuse { command, reason })
        }
        Err(other) => Err(other),
    }
}

/// Reads the tenant from the session, reporting every problem at once so one fix is enough.
fn provision_spec(session: &CheckoutSession, purchase: Purchase, plans: &Plans) -> Result<ProvisionSpec, WebhookError> {
    let mut problems = Vec::new();
    let store = session.metadata.get("store_name").cloned().flatten();
    if store.is_none() {
        problems.push("metadata.store_name is missing".to_owned());
    }
    // No subdomain: one is made from the store's name (and made unique by the worker if it is taken).
    let slug = session.metadata.get("subdomain").cloned().flatten();
    let slug_derived = slug.is_none();
    let email = session.email();
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
    let store_name = check(&mut problems, store, StoreName::parse);
    let slug = match slug {
        Some(given) => check(&mut problems, Some(given), TenantSlug::parse),
        None => store_name.as_ref().map(|name| TenantSlug::derive(name.as_str())),
    };
    let plan = chosen_plan(session, plans).map_err(|p| problems.push(p)).ok();
    let contact_email = check(&mut problems, email, ContactEmail::parse);
    match (slug, store_name, contact_email, plan) {
        (Some(slug), Some(store_name), Some(contact_email), Some(plan)) if problems.is_empty() => Ok(ProvisionSpec {
            slug,
            store_name,
            contact_email,
            package_id: plan.package_id,
            subscription_type_id: plan.subscription_type_id,
            purchase: Some(purchase),
            slug_derived,
        }),
        _ => Err(WebhookError::Metadata(problems.join("; "))),
    }
}

/// The plan a checkout buys: the one its metadata names (`package_id` and `subscription_type_id`, both),
/// else the one its line items' price buys. Either must be in the catalogue.
fn chosen_plan<'p>(session: &CheckoutSession, plans: &'p Plans) -> Result<&'p Plan, String> {
    let meta = |key: &str| session.metadata.get(key).cloned().flatten();
    let (package, kind) = (meta("package_id"), meta("subscription_type_id"));
    if package.is_some() || kind.is_some() {
        let (package, kind) = match (package, kind) {
            (Some(p), Some(k)) => (p, k),
            (None, _) => return Err("metadata.package_id is missing (metadata.subscription_type_id is set)".into()),
            (_, None) => return Err("metadata.subscription_type_id is missing (metadata.package_id is set)".into()),
        };
        let (package, kind) = match (PackageId::parse(&package), SubscriptionTypeId::parse(&kind)) {
            (Ok(p), Ok(k)) => (p, k),
            (p, k) => {
                let errors = [p.err().map(|e| e.to_string()), k.err().map(|e| e.to_string())];
                return Err(errors.into_iter().flatten().collect::<Vec<_>>().join("; "));
            }
        };
        return plans.get(package, kind).ok_or_else(|| {
            format!("package {package} with subscription type {kind} is not a plan in {}", plans.source())
        });
    }
    let prices: Vec<&str> = session
        .line_items
        .iter()
        .flat_map(|items| &items.data)
        .filter_map(|item| item.price.as_ref().map(|p| p.id.as_str()))
        .collect();
    if prices.is_empty() {
        return Err("the checkout names no plan: give metadata.package_id and metadata.subscription_type_id, \
                    or expand its line items with a price listed in the plan catalogue"
            .into());
    }
    let mut bought = prices.iter().filter_map(|p| StripeId::parse(p).ok()).filter_map(|p| plans.for_price(&p));
    let plan = bought.next().ok_or_else(|| {
        let shown: Vec<&str> = prices.iter().take(5).map(|p| &p[..p.len().min(80)]).collect();
        format!("no price of the checkout ({}) buys a plan in {}", shown.join(", "), plans.source())
    })?;
    if let Some(other) = bought.find(|o| o != &plan) {
        return Err(format!("the checkout buys two plans ({} and {}); a tenant has one", plan.name, other.name));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide_sample(body: &[u8]) -> Result<EventDecision, WebhookError> {
        decide(body, &Plans::sample())
    }

    fn event(kind: &str, session: &serde_json::Value) -> Vec<u8> {
        serde_json::json!({"id": "evt_1", "type": kind, "data": {"object": session}}).to_string().into_bytes()
    }

    fn paid_session() -> serde_json::Value {
        serde_json::json!({
            "id": "cs_test_1", "payment_status": "paid",
            "metadata": {"subdomain": "acme", "store_name": "Acme", "package_id": "10", "subscription_type_id": "20"},
            "customer_details": {"email": "a@acme.example"}, "customer": "cus_1"
        })
    }

    #[test]
    fn paid_checkout_becomes_a_provision_command() {
        let EventDecision::Provision(cmd) =
            decide_sample(&event("checkout.session.completed", &paid_session())).unwrap()
        else {
            panic!("expected a provision")
        };
        assert_eq!(cmd.id.as_str(), "stripe:evt_1");
        assert_eq!(cmd.requested_by, "stripe:evt_1", "the audit log names the event");
        assert_eq!(cmd.tenant_id, TenantId::from_checkout_session("cs_test_1"));
        let Action::Provision(spec) = &cmd.action else { panic!() };
        assert_eq!((spec.slug.as_str(), spec.package_id.get(), spec.subscription_type_id.get()), ("acme", 10, 20));
        let purchase = spec.purchase.as_ref().unwrap();
        assert_eq!(
            (purchase.checkout_session.as_str(), purchase.customer.as_ref().unwrap().as_str()),
            ("cs_test_1", "cus_1")
        );
    }

    #[test]
    fn without_a_subdomain_one_is_derived_from_the_store_name() {
        let mut s = paid_session();
        s["metadata"] =
            serde_json::json!({"store_name": "Café Müller", "package_id": "10", "subscription_type_id": "20"});
        let EventDecision::Provision(cmd) = decide_sample(&event("checkout.session.completed", &s)).unwrap() else {
            panic!()
        };
        let Action::Provision(spec) = &cmd.action else { panic!() };
        assert_eq!((spec.slug.as_str(), spec.slug_derived), ("cafe-muller", true));
        let EventDecision::Provision(cmd) =
            decide_sample(&event("checkout.session.completed", &paid_session())).unwrap()
        else {
            panic!()
        };
        let Action::Provision(spec) = &cmd.action else { panic!() };
        assert!(!spec.slug_derived, "a subdomain the buyer chose is never changed");
    }

    #[test]
    fn an_expanded_customer_object_gives_its_id_and_a_missing_one_none() {
        let mut s = paid_session();
        s["customer"] = serde_json::json!({"id": "cus_expanded", "object": "customer"});
        let EventDecision::Provision(cmd) = decide_sample(&event("checkout.session.completed", &s)).unwrap() else {
            panic!()
        };
        let Action::Provision(spec) = &cmd.action else { panic!() };
        assert_eq!(spec.purchase.as_ref().unwrap().customer.as_ref().unwrap().as_str(), "cus_expanded");
        s["customer"] = serde_json::Value::Null;
        let EventDecision::Provision(cmd) = decide_sample(&event("checkout.session.completed", &s)).unwrap() else {
            panic!()
        };
        let Action::Provision(spec) = &cmd.action else { panic!() };
        assert_eq!(spec.purchase.as_ref().unwrap().customer, None);
    }

    #[test]
    fn without_plan_metadata_the_line_items_price_decides_the_plan() {
        let mut s = paid_session();
        s["metadata"] = serde_json::json!({"subdomain": "acme", "store_name": "Acme"});
        s["line_items"] = serde_json::json!({"object": "list", "data": [
            {"id": "li_1", "price": {"id": "price_premium_measure_monthly", "object": "price"}, "quantity": 1}
        ]});
        let EventDecision::Provision(cmd) = decide_sample(&event("checkout.session.completed", &s)).unwrap() else {
            panic!()
        };
        let Action::Provision(spec) = &cmd.action else { panic!() };
        assert_eq!((spec.package_id.get(), spec.subscription_type_id.get()), (30, 20));
    }

    fn refusal(s: &serde_json::Value) -> String {
        match decide_sample(&event("checkout.session.completed", s)).unwrap() {
            EventDecision::Refuse { reason, .. } => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_plan_outside_the_catalogue_or_no_plan_at_all_is_refused() {
        let mut s = paid_session();
        s["metadata"]["package_id"] = "11".into();
        assert!(refusal(&s).contains("package 11 with subscription type 20 is not a plan in the built-in"));
        s["metadata"] = serde_json::json!({"subdomain": "acme", "store_name": "Acme", "package_id": "10"});
        assert!(refusal(&s).contains("subscription_type_id is missing"), "{}", refusal(&s));
        s["metadata"] = serde_json::json!({"subdomain": "acme", "store_name": "Acme"});
        assert!(refusal(&s).contains("names no plan"), "{}", refusal(&s));
        s["line_items"] = serde_json::json!({"data": [{"price": {"id": "price_somebody_elses"}}]});
        assert!(refusal(&s).contains("(price_somebody_elses) buys a plan"), "{}", refusal(&s));
        s["line_items"] = serde_json::json!({"data": [
            {"price": {"id": "price_essential_general_monthly"}}, {"price": {"id": "price_premium_general_yearly"}}
        ]});
        assert!(refusal(&s).contains("buys two plans"), "{}", refusal(&s));
    }

    #[test]
    fn other_events_and_unpaid_checkouts_are_ignored() {
        assert!(matches!(
            decide_sample(&event("invoice.paid", &serde_json::json!({}))).unwrap(),
            EventDecision::Ignore(_)
        ));
        let mut unpaid = paid_session();
        unpaid["payment_status"] = "unpaid".into();
        assert!(matches!(
            decide_sample(&event("checkout.session.completed", &unpaid)).unwrap(),
            EventDecision::Ignore(_)
        ));
    }

    #[test]
    fn a_paid_checkout_with_bad_metadata_is_refused_with_every_problem() {
        let mut s = paid_session();
        s["metadata"] = serde_json::json!({"subdomain": "Bad Slug", "package_id": "x", "subscription_type_id": "-1"});
        s["customer_details"] = serde_json::json!({"email": null});
        let EventDecision::Refuse { command: cmd, .. } =
            decide_sample(&event("checkout.session.completed", &s)).unwrap()
        else {
            panic!("expected a refusal")
        };
        assert_eq!(
            cmd.tenant_id,
            TenantId::from_checkout_session("cs_test_1"),
            "the tenant the purchase would have made"
        );
        let Action::RefusedPurchase(refused) = &cmd.action else { panic!() };
        assert_eq!(refused.purchase.checkout_session.as_str(), "cs_test_1");
        assert_eq!(refused.purchase.customer.as_ref().unwrap().as_str(), "cus_1");
        assert_eq!(refused.contact_email, None);
        for needle in ["store_name is missing", "subscription type id", "email is missing", "subdomain", "package id"] {
            assert!(refused.reason.contains(needle), "{} lacks {needle}", refused.reason);
        }
    }

    #[test]
    fn a_huge_reason_is_cut_at_a_character_boundary() {
        let purchase =
            Purchase { checkout_session: StripeId::parse("cs_1").unwrap(), customer: None, subscription: None };
        let refused = RefusedPurchase::new(purchase.clone(), &"é".repeat(5000), None);
        assert_eq!(refused.reason.chars().count(), RefusedPurchase::MAX_REASON);
        assert!(refused.reason.ends_with('…'));
        assert_eq!(RefusedPurchase::new(purchase, "short", None).reason, "short");
    }

    #[test]
    fn a_session_id_that_is_not_a_stripe_id_is_a_bad_event() {
        let mut s = paid_session();
        s["id"] = "cs'; DROP TABLE x".into();
        assert!(matches!(decide_sample(&event("checkout.session.completed", &s)), Err(WebhookError::BadSessionId(_))));
    }

    #[test]
    fn garbage_is_not_an_event() {
        assert!(matches!(decide_sample(b"[1,2]"), Err(WebhookError::NotAnEvent(_))));
        // An event without its object is not an event, whatever its type.
        let no_object = br#"{"id": "evt_1", "type": "checkout.session.completed", "data": {}}"#;
        assert!(matches!(decide_sample(no_object), Err(WebhookError::NotAnEvent(_))));
    }

    /// The session is read straight from the body (no JSON tree first): a session of the wrong shape is a
    /// bad session, and an event of another type is not read beyond its head.
    #[test]
    fn a_session_of_the_wrong_shape_is_a_bad_session() {
        let mut s = paid_session();
        s["metadata"] = serde_json::json!(["not", "a", "map"]);
        assert!(matches!(decide_sample(&event("checkout.session.completed", &s)), Err(WebhookError::BadSession(_))));
        let ignored = decide_sample(&event("charge.refunded", &s)).unwrap();
        assert!(matches!(ignored, EventDecision::Ignore(ref r) if r.contains("charge.refunded")), "{ignored:?}");
    }
}
