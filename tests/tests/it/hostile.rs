//! Hostile or malformed metadata is refused at the edge and creates nothing: a paid checkout becomes a
//! refused-purchase record for an operator, never a tenant, a database or a statement.

use landlord_tests::{Engine, TestApp, checkout_event, plan_metadata};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_slugs_are_refused_and_nothing_is_created() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    // Tests run in parallel and create `tenant_it_*` databases; anything else named `tenant_` would be ours.
    let before = landlord_tests::count_non_test_tenant_databases(&app).await;
    let long = "a".repeat(200);
    let hostile = [
        "x'; DROP DATABASE test; --",
        "`shop`",
        "shop`; DROP DATABASE mysql; `",
        "../../etc/passwd",
        "shop/../admin",
        "ѕhop", // Cyrillic dze
        "shоp", // Cyrillic o
        "shop\u{200b}x",
        "SHOP",
        "admin",
        long.as_str(),
        "",
    ];
    for (i, slug) in hostile.iter().enumerate() {
        let body = checkout_event(&format!("evt_hostile_{i}"), &format!("cs_hostile_{i}"), plan_metadata(slug, 10, 10));
        let res = app.post_signed(body).await;
        assert_eq!(res.status(), 200, "slug {slug:?}");
        let v: serde_json::Value = res.json().await.unwrap();
        assert!(v["refused"].as_str().unwrap().contains("subdomain"), "slug {slug:?}: {v}");
        assert!(v.get("error").is_none(), "{v}");
    }
    // Bad plan numbers are refused the same way, each problem named.
    let mut meta = plan_metadata("fine-shop", 10, 10);
    meta["package_id"] = "1; DROP TABLE x".into();
    meta["subscription_type_id"] = "0".into();
    let res = app.post_signed(checkout_event("evt_hostile_plan", "cs_hostile_plan", meta)).await;
    assert_eq!(res.status(), 200);
    let msg = res.json::<serde_json::Value>().await.unwrap()["refused"].as_str().unwrap().to_owned();
    assert!(msg.contains("package id") && msg.contains("subscription type id"), "{msg}");

    // Every purchase is on record for an operator, and nothing else happened.
    let expected = hostile.len() + 1;
    let mut recorded = 0;
    for _ in 0..300 {
        recorded = app.store.refused_purchases(false).await.unwrap().len();
        if recorded == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(recorded, expected, "each refused purchase is recorded once");
    assert!(
        app.store.refused_purchases(false).await.unwrap().iter().all(|r| r.code == "invalid_metadata"),
        "all refused for their metadata"
    );
    assert!(app.store.tenants().await.unwrap().is_empty(), "no tenant was recorded");
    let after = landlord_tests::count_non_test_tenant_databases(&app).await;
    assert_eq!(after, before, "no database was created");
}

/// A command published straight to NATS with a hostile slug is rejected by the worker, not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_command_on_nats_is_rejected_with_a_reason() {
    use landlord_protocol::EventKind;
    let app = TestApp::spawn(Engine::MariaDb).await;
    let tenant = landlord_protocol::TenantId::new_random();
    let payload = serde_json::json!({
        "v": 1, "id": "admin:hostile-1", "tenant_id": tenant, "requested_by": "someone",
        "created": "2026-01-01T00:00:00Z", "kind": "provision", "slug": "x'; DROP DATABASE test; --",
        "store_name": "X", "contact_email": "a@b.example", "package_id": 10, "subscription_type_id": 10
    });
    let subject = format!("landlord.commands.provision.{tenant}");
    app.bus.jetstream().publish(subject, payload.to_string().into()).await.unwrap().await.unwrap();
    let events = app.events_until(&tenant, |e| e.kind == EventKind::Rejected).await;
    let error = events.last().unwrap().error.clone().unwrap();
    assert_eq!(error.code, "undecodable_command");
    assert!(error.message.contains("subdomain"), "{}", error.message);
    assert!(!error.retryable);
    assert!(app.store.tenants().await.unwrap().is_empty());
}

/// A command kind this worker does not know (a newer ingress during a rolling upgrade) is handed back for
/// a while, not dropped at once; after about ten minutes of redeliveries it is rejected as poison.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_command_kind_waits_for_a_newer_worker_then_is_rejected() {
    use landlord_worker::Outcome;
    let app = TestApp::spawn_with(landlord_tests::Options {
        in_process_worker: false,
        ..landlord_tests::Options::new(Engine::MariaDb)
    })
    .await;
    let worker = landlord_worker::build(&app.worker_config, &app.bus, None).await.unwrap();
    let tenant = landlord_protocol::TenantId::new_random();
    let payload = serde_json::json!({
        "v": 1, "id": "admin:future-1", "tenant_id": tenant, "requested_by": "ops",
        "created": "2026-01-01T00:00:00Z", "kind": "hibernate"
    })
    .to_string();
    let subject = format!("landlord.commands.hibernate.{tenant}");
    let first = worker.handle(&subject, payload.as_bytes(), 1).await;
    assert!(matches!(first, Outcome::RetryLater { .. }), "{first:?}");
    let last = worker.handle(&subject, payload.as_bytes(), 20).await;
    assert!(matches!(&last, Outcome::Rejected { reason } if reason.contains("hibernate")), "{last:?}");
    // Garbage is still rejected at once.
    let garbage = worker.handle(&subject, b"{not json", 1).await;
    assert!(matches!(garbage, Outcome::Rejected { .. }), "{garbage:?}");
}
