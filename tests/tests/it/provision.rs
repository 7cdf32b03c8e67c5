//! One signed checkout becomes an active tenant whose database holds the plan's tables and rows, on
//! MariaDB and on PostgreSQL, and whose login reaches only its own database.

use landlord_protocol::{EventKind, TenantId, TenantStatus};
use landlord_tests::{Engine, Options, TestApp, scalar, unique_slug};
use landlord_worker::steps::StepName;
use secrecy::ExposeSecret;

async fn provision(
    app: &TestApp,
    slug: &str,
    package: u32,
    kind: u32,
) -> (TenantId, landlord_worker::store::entities::tenant::Model) {
    let tenant = app.buy_plan(slug, package, kind).await;
    (tenant, app.wait_for_status(&tenant, TenantStatus::Active).await)
}

async fn end_to_end(engine: Engine, control_plane: Option<String>) {
    let app = TestApp::spawn_with(Options { control_plane, ..Options::new(engine) }).await;
    let (a_slug, b_slug) = (unique_slug("a"), unique_slug("b"));
    // Premium / Made to Measure: the plan with a trigger body and the most tables.
    let (a, a_row) = provision(&app, &a_slug, 30, 20).await;
    let (_, b_row) = provision(&app, &b_slug, 10, 10).await;

    // The plan's tables and seed rows are there, reached with the tenant's own login.
    let a_db = a_row.db_name.clone().expect("database recorded");
    assert_eq!(a_db, format!("tenant_{}", a_slug.replace('-', "_")));
    let conn = app.connect_as_tenant(engine, &a_row, &a_db).await.expect("tenant login reaches its own database");
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM products").await, 2);
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM discount_codes").await, 1);
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM store_settings WHERE setting_value = 'Premium'").await, 1);
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM measurement_profiles").await, 0);
    // The trigger from the plan script works: paying an order awards points.
    use sea_orm::ConnectionTrait;
    conn.execute_unprepared("INSERT INTO customers (email) VALUES ('c@x.example')").await.unwrap();
    conn.execute_unprepared("INSERT INTO orders (customer_id, total) VALUES (1, 42.50)").await.unwrap();
    conn.execute_unprepared("UPDATE orders SET status = 'paid'").await.unwrap();
    let integer = if engine == Engine::Postgres { "BIGINT" } else { "SIGNED" };
    assert_eq!(scalar(&conn, &format!("SELECT CAST(SUM(points) AS {integer}) AS n FROM loyalty_accounts")).await, 42);

    // Essential / General has no Professional tables.
    let b_db = b_row.db_name.clone().unwrap();
    let b_conn = app.connect_as_tenant(engine, &b_row, &b_db).await.expect("tenant b reaches its own database");
    assert_eq!(scalar(&b_conn, "SELECT COUNT(*) AS n FROM products").await, 2);
    assert!(b_conn.execute_unprepared("SELECT * FROM discount_codes").await.is_err());

    // One tenant's login is refused on another tenant's database.
    let refused = app.connect_as_tenant(engine, &a_row, &b_db).await;
    let err = refused.expect_err("tenant a must not reach tenant b's database").to_string();
    assert!(err.contains("denied") || err.contains("permission"), "unexpected error: {err}");

    // Progress told the story: each step started and succeeded, then the tenant became active.
    let events =
        app.events_until(&a, |e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Active)).await;
    for step in ["create_database", "apply_schema", "activate"] {
        for kind in [EventKind::StepStarted, EventKind::StepSucceeded] {
            assert!(
                events.iter().any(|e| e.kind == kind && e.step.as_deref() == Some(step)),
                "no {kind:?} for {step}: {events:#?}"
            );
        }
    }
    // Steps this deployment has no provider for (no Route 53 zone, no stack template, no mail server)
    // are skipped without starting: one event each, with the reason, and one record.
    for step in ["configure_dns", "deploy_stack", "notify"] {
        let of_step: Vec<_> = events.iter().filter(|e| e.step.as_deref() == Some(step)).collect();
        assert_eq!(of_step.len(), 1, "{step}: {of_step:#?}");
        assert_eq!((of_step[0].kind, of_step[0].attempt), (EventKind::StepSkipped, Some(1)), "{step}");
        assert!(of_step[0].message.as_deref().is_some_and(|m| m.contains("LANDLORD_")), "{:?}", of_step[0]);
        let row = app.store.step(&a, StepName::parse(step).unwrap()).await.unwrap().expect("recorded");
        assert_eq!((row.status.as_str(), row.attempts, row.duration_ms), ("skipped", 1, Some(0)), "{step}");
        assert!(row.finished_at.is_some(), "{step}");
    }
    assert!(events.iter().all(|e| e.tenant_id == Some(a) && e.v == 1 && e.run_id.is_some()));
    assert!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::StepSucceeded)
            .all(|e| e.duration_ms.is_some() && e.attempt == Some(1))
    );
    // The password never appears in progress.
    let password = app.tenant_password(&a).await;
    assert!(events.iter().all(|e| !serde_json::to_string(e).unwrap().contains(password.expose_secret())));
    // At rest it is encrypted: the control plane's column holds no trace of it.
    assert!(!a_row.db_password.as_deref().unwrap().contains(password.expose_secret()));

    conn.close().await.ok();
    b_conn.close().await.ok();
    app.drop_tenant_db(&a_slug).await;
    app.drop_tenant_db(&b_slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_to_active_tenant_on_mariadb() {
    Box::pin(end_to_end(Engine::MariaDb, None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_to_active_tenant_on_postgres() {
    Box::pin(end_to_end(Engine::Postgres, None)).await;
}

/// The control plane on PostgreSQL (production's choice) instead of SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_on_postgres() {
    use sea_orm::ConnectionTrait;
    let admin_url = landlord_tests::tenant_db_url(Engine::Postgres);
    let name = unique_slug("cp").replace('-', "_");
    let admin = sea_orm::Database::connect(admin_url.clone()).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    Box::pin(end_to_end(Engine::MariaDb, Some(url.to_string()))).await;
    admin.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
}

/// A checkout without `metadata.subdomain` gets one made from its store's name; a second store of the same
/// name gets it with a short suffix instead of being refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_without_a_subdomain_gets_one_from_its_store_name() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let store_name = format!("Bäckerei {}", unique_slug("nord"));
    let mut tenants = Vec::new();
    for i in 0..2 {
        let session = format!("cs_test_{}_{i}", unique_slug("derive").replace('-', "_"));
        let metadata = serde_json::json!({"store_name": store_name, "package_id": "10", "subscription_type_id": "10"});
        let body = landlord_tests::checkout_event(&format!("evt_{}", &session[8..]), &session, metadata);
        assert_eq!(app.post_signed(body).await.status(), 200);
        tenants.push(TenantId::from_checkout_session(&session));
    }
    let first = app.wait_for_status(&tenants[0], TenantStatus::Active).await;
    let second = app.wait_for_status(&tenants[1], TenantStatus::Active).await;
    let expected = landlord_protocol::TenantSlug::derive(&store_name);
    assert!(first.slug.starts_with("backerei-"), "{}", first.slug);
    let (mut slugs, mut suffixed) = (vec![first.slug.clone(), second.slug.clone()], 0);
    slugs.sort();
    for slug in &slugs {
        if *slug != expected.as_str() {
            assert!(slug.starts_with(&format!("{expected}-")) && slug.len() == expected.as_str().len() + 5, "{slug}");
            suffixed += 1;
        }
    }
    assert_eq!(suffixed, 1, "one store keeps the plain name, the other gets a suffix: {slugs:?}");
    for slug in slugs {
        app.drop_tenant_db(&slug).await;
    }
}
