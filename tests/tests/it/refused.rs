//! A customer who paid is never only a log line: a checkout Landlord cannot turn into a tenant (invalid
//! metadata, a subdomain another tenant holds) is recorded for an operator, announced on the tenant's
//! progress subject, and changes nothing else.

use std::process::Command;

use landlord_protocol::{EventKind, TenantId, TenantStatus};
use landlord_tests::{Engine, TestApp, chaos::workspace_bin, checkout_event, plan_metadata, unique_slug};
use landlord_worker::store::entities::refused_purchase;

/// The checkout event of `session`, paid by Stripe customer `customer`.
fn paid_by(event: &str, session: &str, customer: &str, metadata: serde_json::Value) -> Vec<u8> {
    let mut body: serde_json::Value = serde_json::from_slice(&checkout_event(event, session, metadata)).unwrap();
    body["data"]["object"]["customer"] = customer.into();
    serde_json::to_vec(&body).unwrap()
}

/// Polls the control plane until the purchase of `tenant` has a refusal record (30 s).
async fn refusal_of(app: &TestApp, tenant: &TenantId) -> refused_purchase::Model {
    for _ in 0..300 {
        let rows = app.store.refused_purchases(true).await.unwrap();
        if let Some(r) = rows.into_iter().find(|r| r.tenant_id == tenant.to_string()) {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no refusal recorded for {tenant}");
}

/// `landlord purchases …` against this app's control plane, as an operator runs it.
fn landlord_cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    use secrecy::ExposeSecret;
    let out = Command::new(workspace_bin("landlord"))
        .args(args)
        .env("LANDLORD_DATABASE_URL", app.worker_config.database_url.expose_secret())
        .env("LANDLORD_NATS_URL", &app.nats_url)
        .env("LANDLORD_SECRET_KEYS", app.secret_keys.expose_secret())
        .output()
        .expect("landlord runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_checkout_with_invalid_metadata_is_recorded_announced_and_makes_nothing() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let session = format!("cs_test_{}", unique_slug("refused").replace('-', "_"));
    let tenant = TenantId::from_checkout_session(&session);
    let mut meta = plan_metadata("x'; DROP DATABASE test; --", 10, 10);
    meta["package_id"] = "0".into();
    let body = paid_by("evt_refused_1", &session, "cus_Refused1", meta);

    // Stripe is told the event was received: resending it cannot fix the metadata.
    let res = app.post_signed(body.clone()).await;
    assert_eq!(res.status(), 200);
    let answer: serde_json::Value = res.json().await.unwrap();
    assert_eq!(answer["tenant_id"], tenant.to_string());
    let reason = answer["refused"].as_str().expect("the answer says why").to_owned();
    assert!(reason.contains("subdomain") && reason.contains("package id"), "{reason}");

    // Announced on the purchase's progress subject, with the code and the session to look up.
    let events = app.events_until(&tenant, |e| e.kind == EventKind::PurchaseRefused).await;
    let announced = events.last().unwrap();
    let error = announced.error.clone().unwrap();
    assert_eq!((error.code.as_str(), error.retryable), ("invalid_metadata", false));
    assert!(announced.message.as_deref().unwrap().contains(&session), "{announced:?}");

    // Recorded durably with the Stripe customer, session and reason.
    let record = refusal_of(&app, &tenant).await;
    assert_eq!(record.code, "invalid_metadata");
    assert_eq!(record.checkout_session.as_deref(), Some(session.as_str()));
    assert_eq!(record.customer.as_deref(), Some("cus_Refused1"));
    assert_eq!(record.reason, reason);
    assert!(record.contact_email.is_some(), "the fixture's customer email is kept for the operator");
    assert_eq!(record.subdomain, None, "an invalid subdomain is not stored as one");

    // Stripe delivering the event again changes nothing.
    let again = app.post_signed(body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["duplicate"], true);
    assert_eq!(app.store.refused_purchases(true).await.unwrap().len(), 1);
    assert!(app.store.tenants().await.unwrap().is_empty(), "no tenant was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_of_a_taken_subdomain_is_refused_and_the_holder_is_untouched() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let slug = unique_slug("taken");
    let (first, second) =
        (format!("cs_test_{}_a", slug.replace('-', "_")), format!("cs_test_{}_b", slug.replace('-', "_")));
    let res =
        app.post_signed(paid_by(&format!("evt_{first}"), &first, "cus_First", plan_metadata(&slug, 10, 10))).await;
    assert_eq!(res.status(), 200);
    let holder = TenantId::from_checkout_session(&first);
    let before = app.wait_for_status(&holder, TenantStatus::Active).await;
    let password = app.tenant_password(&holder).await;

    // Another customer pays for the same subdomain: the metadata is valid, so only the worker can tell.
    let res =
        app.post_signed(paid_by(&format!("evt_{second}"), &second, "cus_Second", plan_metadata(&slug, 20, 10))).await;
    assert_eq!(res.status(), 200);
    let buyer = TenantId::from_checkout_session(&second);
    let events = app.events_until(&buyer, |e| e.kind == EventKind::PurchaseRefused).await;
    assert_eq!(events.last().unwrap().error.as_ref().unwrap().code, "subdomain_taken");
    let record = refusal_of(&app, &buyer).await;
    assert_eq!(record.code, "subdomain_taken");
    assert_eq!(
        (record.checkout_session.as_deref(), record.customer.as_deref()),
        (Some(second.as_str()), Some("cus_Second"))
    );
    assert_eq!(record.subdomain.as_deref(), Some(slug.as_str()));
    assert!(record.reason.contains(&slug), "{}", record.reason);

    // The holder keeps its tenant, database and password; no second tenant exists.
    let after = app.store.tenant(&holder).await.unwrap().unwrap();
    assert_eq!((after.status.as_str(), after.db_name.clone()), ("active", before.db_name.clone()));
    use secrecy::ExposeSecret;
    assert_eq!(app.tenant_password(&holder).await.expose_secret(), password.expose_secret());
    assert!(app.store.tenant(&buyer).await.unwrap().is_none());
    let conn = app.connect_as_tenant(Engine::Postgres, &after, before.db_name.as_deref().unwrap()).await;
    assert!(conn.is_ok(), "the holder still logs in: {:?}", conn.err());

    // A "refusal" published for a tenant that exists (a refund for a served customer) is rejected, unrecorded.
    use landlord_protocol::{Action, Command, CommandId, Purchase, RefusedPurchase, StripeId};
    let purchase = Purchase { checkout_session: StripeId::parse(&first).unwrap(), customer: None, subscription: None };
    let forged = Command::new(
        CommandId::parse("admin:forged-refusal").unwrap(),
        holder,
        "someone",
        Action::RefusedPurchase(RefusedPurchase::new(purchase, "refund me", None)),
    );
    app.bus.publish_command(&forged).await.unwrap();
    let events = app.events_until(&holder, |e| e.kind == EventKind::Rejected).await;
    assert!(events.last().unwrap().error.as_ref().unwrap().message.contains("exists"), "{events:?}");
    assert!(app.store.refused_purchases(true).await.unwrap().iter().all(|r| r.tenant_id != holder.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_lists_a_refused_purchase_and_dismisses_it_once() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let session = format!("cs_test_{}", unique_slug("settle").replace('-', "_"));
    let tenant = TenantId::from_checkout_session(&session);
    let res =
        app.post_signed(paid_by("evt_settle_1", &session, "cus_Refused1", plan_metadata("Bad Slug", 10, 10))).await;
    assert_eq!(res.status(), 200);
    refusal_of(&app, &tenant).await;

    // The operator sees it, settles it, and it leaves the open list but stays on record.
    let (ok, listed) = landlord_cli(&app, &["purchases", "refused"]);
    assert!(ok, "{listed}");
    assert!(
        listed.contains(&tenant.to_string()) && listed.contains("cus_Refused1") && listed.contains(&session),
        "{listed}"
    );
    let (ok, out) = landlord_cli(&app, &["purchases", "dismiss", &tenant.to_string(), "--by", "ops-anna"]);
    assert!(ok, "{out}");
    let (ok, out) = landlord_cli(&app, &["purchases", "dismiss", &tenant.to_string()]);
    assert!(!ok && out.contains("no open refused purchase"), "dismissing twice is an error: {out}");
    assert!(app.store.refused_purchases(false).await.unwrap().is_empty());
    let kept = app.store.refused_purchases(true).await.unwrap();
    assert_eq!(kept[0].dismissed_by.as_deref(), Some("ops-anna"));
}
