//! Stripe drives the tenant's life: subscription events, signed and posted like Stripe's, in order,
//! reversed, twice and in conflicting pairs within one second, become the newest snapshot of the
//! subscription and a reconcile of its tenant: suspended, resumed, flagged `payment_overdue`, moved to the
//! plan its price buys, or scheduled for offboarding when the subscription is deleted.

use std::time::Duration;

use landlord_protocol::{EventKind, TenantId, TenantStatus};
use landlord_tests::{
    Engine, Infra, Options, TestApp, chaos::eventually, subscription_event, subscription_purchase, unique_slug,
};
use landlord_worker::store::entities::tenant;

const ESSENTIAL: &str = "price_essential_general_monthly";
const PROFESSIONAL: &str = "price_professional_general_monthly";

/// A tenant bought with a subscription, active; returns it and its subscription id.
async fn subscribed(app: &TestApp, prefix: &str) -> (String, TenantId, String) {
    let slug = unique_slug(prefix);
    let (body, tenant, sub) = subscription_purchase(&slug, 10);
    assert_eq!(app.post_signed(body).await.status(), 200);
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    (slug, tenant, sub)
}

/// Posts a signed subscription event and waits until it and the reconcile it asked for are handled.
async fn deliver(app: &TestApp, event_id: &str, kind: &str, created: i64, sub: &str, status: &str, price: &str) {
    let res = app.post_signed(subscription_event(event_id, kind, created, sub, status, price)).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
    settle(app, event_id).await;
}

async fn settle(app: &TestApp, event_id: &str) {
    eventually(Duration::from_secs(60), "the event and its reconcile handled", || async {
        let store = &app.store;
        store.is_processed(&format!("stripe:{event_id}")).await.unwrap()
            && store.is_processed(&format!("landlord:reconcile-{event_id}")).await.unwrap()
    })
    .await;
}

async fn row(app: &TestApp, tenant: &TenantId) -> tenant::Model {
    app.store.tenant(tenant).await.unwrap().unwrap()
}

const UPDATED: &str = "customer.subscription.updated";
const DELETED: &str = "customer.subscription.deleted";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_suspends_past_due_flags_and_paid_again_resumes() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let (slug, tenant, sub) = subscribed(&app, "unpaid").await;
    let t0 = chrono::Utc::now().timestamp() - 3600;

    deliver(&app, &format!("evt_{sub}_1"), UPDATED, t0, &sub, "past_due", ESSENTIAL).await;
    let r = row(&app, &tenant).await;
    assert_eq!((r.status.as_str(), r.payment_overdue), ("active", true));

    deliver(&app, &format!("evt_{sub}_2"), UPDATED, t0 + 10, &sub, "unpaid", ESSENTIAL).await;
    let r = app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    let db = r.db_name.clone().unwrap();
    assert!(app.connect_as_tenant(Engine::Postgres, &r, &db).await.is_err(), "an unpaid tenant's login is locked");

    deliver(&app, &format!("evt_{sub}_3"), UPDATED, t0 + 20, &sub, "active", ESSENTIAL).await;
    let r = app.wait_for_status(&tenant, TenantStatus::Active).await;
    assert!(!r.payment_overdue, "paid again: the flag is cleared");
    assert!(app.connect_as_tenant(Engine::Postgres, &r, &db).await.is_ok());

    // Reversed: an older event arriving late changes nothing; the same event twice is stored once.
    deliver(&app, &format!("evt_{sub}_0"), UPDATED, t0 - 100, &sub, "unpaid", ESSENTIAL).await;
    assert_eq!(row(&app, &tenant).await.status, "active");
    let again =
        app.post_signed(subscription_event(&format!("evt_{sub}_3"), UPDATED, t0 + 20, &sub, "active", ESSENTIAL));
    let answer: serde_json::Value = again.await.json().await.unwrap();
    assert_eq!(answer["duplicate"], true, "{answer}");
    let known = app.store.subscription(&sub).await.unwrap().unwrap();
    assert_eq!(known.seen_at.timestamp(), t0 + 20);

    // trial_will_end only tells.
    deliver(
        &app,
        &format!("evt_{sub}_4"),
        "customer.subscription.trial_will_end",
        t0 + 30,
        &sub,
        "trialing",
        ESSENTIAL,
    )
    .await;
    let events = app.events_until(&tenant, |e| e.kind == EventKind::TrialWillEnd).await;
    assert!(events.last().unwrap().message.clone().unwrap().contains("trial"));
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_price_changes_the_plan_and_a_deleted_subscription_is_offboarded_after_the_grace_period() {
    let app = TestApp::spawn_with(Options {
        worker: |cfg, _| {
            cfg.offboard_after = Duration::from_secs(3);
            cfg.timer_interval = Duration::from_secs(1);
        },
        ..Options::new(Engine::MariaDb)
    })
    .await;
    let (slug, tenant, sub) = subscribed(&app, "upgrade").await;
    let t0 = chrono::Utc::now().timestamp() - 3600;
    deliver(&app, &format!("evt_{sub}_1"), UPDATED, t0, &sub, "active", PROFESSIONAL).await;
    eventually(Duration::from_secs(30), "the plan changed", || async { row(&app, &tenant).await.package_id == 20 })
        .await;

    deliver(&app, &format!("evt_{sub}_2"), DELETED, t0 + 10, &sub, "canceled", PROFESSIONAL).await;
    let r = app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    assert!(r.offboard_at.is_some(), "the offboarding is scheduled");
    let events = app.events_until(&tenant, |e| e.kind == EventKind::OffboardingScheduled).await;
    assert!(events.last().unwrap().message.clone().unwrap().contains("will be offboarded"));
    // A later "active" snapshot cannot bring a deleted subscription back.
    deliver(&app, &format!("evt_{sub}_3"), UPDATED, t0 + 20, &sub, "active", PROFESSIONAL).await;
    assert_ne!(row(&app, &tenant).await.status, "active");
    app.wait_for_status(&tenant, TenantStatus::Deleted).await;
    assert_eq!(landlord_tests::count_databases(&app, Engine::MariaDb, &r.db_name.unwrap()).await, 0);
    let _ = slug;
}

/// Both orders of conflicting events stamped in the same second end the same: a deletion wins over an
/// update, an unpaid subscription over a paid one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_events_in_the_same_second_end_the_same_in_either_order() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let t0 = chrono::Utc::now().timestamp() - 3600;
    for (i, order) in [[DELETED, UPDATED], [UPDATED, DELETED]].into_iter().enumerate() {
        let (slug, tenant, sub) = subscribed(&app, &format!("race{i}")).await;
        for (j, kind) in order.into_iter().enumerate() {
            let status = if kind == DELETED { "canceled" } else { "active" };
            deliver(&app, &format!("evt_{sub}_{j}"), kind, t0, &sub, status, ESSENTIAL).await;
        }
        let known = app.store.subscription(&sub).await.unwrap().unwrap();
        assert!(known.snapshot.deleted, "order {order:?}: {known:?}");
        let r = app.wait_for_status(&tenant, TenantStatus::Suspended).await;
        assert!(r.offboard_at.is_some(), "order {order:?}");
        app.drop_tenant_db(&slug).await;
    }
    // Paid and unpaid in the same second: the more restrictive wins in either order.
    for (i, order) in [["active", "unpaid"], ["unpaid", "active"]].into_iter().enumerate() {
        let (slug, tenant, sub) = subscribed(&app, &format!("tie{i}")).await;
        for (j, status) in order.into_iter().enumerate() {
            deliver(&app, &format!("evt_{sub}_{j}"), UPDATED, t0, &sub, status, ESSENTIAL).await;
        }
        let known = app.store.subscription(&sub).await.unwrap().unwrap();
        assert_eq!(known.snapshot.status.as_str(), "unpaid", "order {order:?}");
        app.wait_for_status(&tenant, TenantStatus::Suspended).await;
        app.drop_tenant_db(&slug).await;
    }
}

/// An event that comes before its tenant exists is kept, and applied once the tenant is provisioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_before_the_purchase_is_applied_once_the_tenant_exists() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let slug = unique_slug("early");
    let (body, tenant, sub) = subscription_purchase(&slug, 10);
    let early = format!("evt_{sub}_early");
    let res = app
        .post_signed(subscription_event(
            &early,
            UPDATED,
            chrono::Utc::now().timestamp() - 3600,
            &sub,
            "unpaid",
            ESSENTIAL,
        ))
        .await;
    assert_eq!(res.status(), 200);
    eventually(Duration::from_secs(30), "the early event handled", || async {
        app.store.is_processed(&format!("stripe:{early}")).await.unwrap()
    })
    .await;
    assert!(app.store.tenant(&tenant).await.unwrap().is_none());
    assert_eq!(app.post_signed(body).await.status(), 200);
    app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    app.drop_tenant_db(&slug).await;
}

/// With `LANDLORD_STRIPE_API_KEY`, the subscription is read from Stripe's API, which wins over the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_api_key_the_subscription_is_read_from_stripe() {
    use std::sync::{Arc, Mutex};

    use axum::{
        Router,
        extract::{Path, State},
        http::HeaderMap,
        routing::get,
    };
    // What Stripe's API says the subscription is now; the test changes it.
    let status = Arc::new(Mutex::new("active"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stripe = Router::new()
        .route(
            "/v1/subscriptions/{id}",
            get(|State(status): State<Arc<Mutex<&'static str>>>, Path(id): Path<String>, headers: HeaderMap| async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk_test_landlord") {
                    return (axum::http::StatusCode::UNAUTHORIZED, "{}".to_owned());
                }
                let body = serde_json::json!({
                    "id": id, "object": "subscription", "status": *status.lock().unwrap(), "ended_at": null,
                    "items": {"data": [{"price": {"id": ESSENTIAL}}]},
                });
                (axum::http::StatusCode::OK, body.to_string())
            }),
        )
        .with_state(status.clone());
    tokio::spawn(async move { axum::serve(listener, stripe).await.ok() });
    let app = TestApp::spawn_with(Options {
        worker: crate::infra::with_infra,
        infra: Infra { stripe_api_base: Some(base), ..Infra::default() },
        ..Options::new(Engine::MariaDb)
    })
    .await;
    let (slug, tenant, sub) = subscribed(&app, "apitruth").await;
    let purchase = landlord_protocol::CommandId::stripe(&format!("evt_{}", slug.replace('-', "_"))).unwrap();
    let after = uuid::Uuid::new_v5(&tenant.as_uuid(), purchase.as_str().as_bytes());
    eventually(Duration::from_secs(30), "the reconcile after provisioning", || async {
        app.store.is_processed(&format!("landlord:reconcile-after-{after}")).await.unwrap()
    })
    .await;
    assert_eq!(row(&app, &tenant).await.status, "active", "Stripe said active after the purchase");
    *status.lock().unwrap() = "paused";
    // The event says active; Stripe's API says paused: the tenant is suspended.
    deliver(&app, &format!("evt_{sub}_1"), UPDATED, chrono::Utc::now().timestamp() - 3600, &sub, "active", ESSENTIAL)
        .await;
    app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    assert_eq!(app.store.subscription(&sub).await.unwrap().unwrap().snapshot.status.as_str(), "paused");
    app.drop_tenant_db(&slug).await;
}

/// Stripe resumes only what billing suspended: a tenant an operator suspended stays suspended when its
/// subscription is paid, and a command naming one subscription's key but another subscription is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_suspension_is_not_undone_by_a_payment() {
    use landlord_protocol::{Action, Command, CommandId, StripeId, SubscriptionEvent, SubscriptionEventType};
    let app = TestApp::spawn(Engine::MariaDb).await;
    let (slug, tenant, sub) = subscribed(&app, "opsuspend").await;
    let suspend = Command::new(CommandId::parse("admin:ops-suspend-1").unwrap(), tenant, "admin:ops", Action::Suspend);
    app.bus.publish_command(&suspend).await.unwrap();
    app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    let t0 = chrono::Utc::now().timestamp() - 60;
    deliver(&app, &format!("evt_{sub}_paid"), UPDATED, t0, &sub, "active", ESSENTIAL).await;
    assert_eq!(row(&app, &tenant).await.status, "suspended", "the operator's suspension stands");

    // Nor is an operator's offboarding with a grace period: the tenant stays suspended, the timer set.
    let (slug2, tenant2, sub2) = subscribed(&app, "opleave").await;
    let later = landlord_protocol::OffboardRequest { after_grace: true };
    let leave =
        Command::new(CommandId::parse("admin:ops-leave-1").unwrap(), tenant2, "admin:ops", Action::Offboard(later));
    app.bus.publish_command(&leave).await.unwrap();
    app.wait_for_status(&tenant2, TenantStatus::Suspended).await;
    deliver(&app, &format!("evt_{sub2}_upd"), UPDATED, t0 + 1, &sub2, "active", ESSENTIAL).await;
    let r = row(&app, &tenant2).await;
    assert_eq!((r.status.as_str(), r.offboard_at.is_some()), ("suspended", true), "the operator's offboarding stands");
    app.drop_tenant_db(&slug2).await;

    let forged = Action::StripeSubscription(SubscriptionEvent {
        event_id: StripeId::parse("evt_forged").unwrap(),
        event_type: SubscriptionEventType::Deleted,
        event_created: chrono::Utc::now(),
        subscription: StripeId::parse(&sub).unwrap(),
        customer: None,
        snapshot: None,
    });
    let other_key = TenantId::for_subscription("sub_someone_else");
    let cmd = Command::new(CommandId::parse("admin:forged-1").unwrap(), other_key, "mallory", forged);
    app.bus.publish_command(&cmd).await.unwrap();
    let events = app.events_until(&other_key, |e| e.kind == EventKind::Rejected).await;
    assert!(events.last().unwrap().error.clone().unwrap().message.contains("is not that of subscription"));
    app.drop_tenant_db(&slug).await;
}

/// `.paused` and `.resumed` move the tenant; invoice events carry no subscription state and only ask for a
/// reconcile of what is known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_and_resumed_move_the_tenant_and_invoices_only_trigger() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let (slug, tenant, sub) = subscribed(&app, "pause").await;
    let t0 = chrono::Utc::now().timestamp() - 600;
    deliver(&app, &format!("evt_{sub}_p"), "customer.subscription.paused", t0, &sub, "paused", ESSENTIAL).await;
    app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    deliver(&app, &format!("evt_{sub}_r"), "customer.subscription.resumed", t0 + 5, &sub, "active", ESSENTIAL).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    for (i, kind) in ["invoice.payment_failed", "invoice.paid", "invoice.payment_succeeded"].into_iter().enumerate() {
        let path = landlord_tests::repo_root().join("ingress/tests/vectors/stripe_invoice.json");
        let mut invoice: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        invoice["subscription"] = sub.clone().into();
        let event_id = format!("evt_{sub}_inv{i}");
        let body = serde_json::json!({"id": event_id, "object": "event", "type": kind, "created": t0 + 10, "data": {"object": invoice}});
        assert_eq!(app.post_signed(serde_json::to_vec(&body).unwrap()).await.status(), 200);
        settle(&app, &event_id).await;
    }
    let known = app.store.subscription(&sub).await.unwrap().unwrap();
    assert_eq!(known.seen_at.timestamp(), t0 + 5, "invoices carry no snapshot");
    assert_eq!(row(&app, &tenant).await.status, "active");
    app.drop_tenant_db(&slug).await;
}
