//! Suspend and resume, as commands on NATS (the admin API and Stripe's subscription events come later):
//! a suspended tenant's login is locked and its open sessions ended; resuming undoes exactly that. Each
//! is a flow of steps with progress events, repeatable for the next suspension.

use landlord_protocol::{Action, Command, CommandId, EventKind, TenantId, TenantStatus};
use landlord_tests::{Engine, TestApp, unique_slug};
use sea_orm::ConnectionTrait;

async fn ask(app: &TestApp, tenant: TenantId, action: Action) -> Command {
    let id = CommandId::parse(&format!("admin:{}", uuid::Uuid::new_v4())).unwrap();
    let cmd = Command::new(id, tenant, "ops-test", action);
    app.bus.publish_command(&cmd).await.unwrap();
    cmd
}

async fn suspend_and_resume(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let slug = unique_slug("pause");
    let tenant = app.buy(&slug, 10).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let db = row.db_name.clone().unwrap();
    let open = app.connect_as_tenant(engine, &row, &db).await.expect("the tenant's application is connected");
    open.execute_unprepared("SELECT 1").await.unwrap();

    ask(&app, tenant, Action::Suspend).await;
    app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    // Its open session was ended and a new one is refused.
    assert!(open.execute_unprepared("SELECT 1").await.is_err(), "{engine:?}: the open session was ended");
    let refused = app.connect_as_tenant(engine, &row, &db).await;
    assert!(refused.is_err(), "{engine:?}: a suspended login is refused");
    let events = app
        .events_until(&tenant, |e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Suspended))
        .await;
    assert!(events.iter().any(|e| e.kind == EventKind::StepSucceeded && e.step.as_deref() == Some("lock_login")));

    ask(&app, tenant, Action::Resume).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    let back = app.connect_as_tenant(engine, &row, &db).await.expect("a resumed login connects again");
    back.execute_unprepared("SELECT 1").await.unwrap();
    back.close().await.ok();

    // A second suspension runs its steps again (each command starts afresh), and resuming works again.
    ask(&app, tenant, Action::Suspend).await;
    app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    assert!(app.connect_as_tenant(engine, &row, &db).await.is_err(), "{engine:?}: suspended again");
    let lock = app.store.step(&tenant, landlord_worker::steps::StepName::LockLogin).await.unwrap().unwrap();
    assert_eq!(lock.attempts, 2, "{engine:?}: locked once per suspension");
    ask(&app, tenant, Action::Resume).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    assert!(app.connect_as_tenant(engine, &row, &db).await.is_ok());
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_login_is_refused_and_accepted_again_after_resume_on_mariadb() {
    Box::pin(suspend_and_resume(Engine::MariaDb)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_login_is_refused_and_accepted_again_after_resume_on_postgres() {
    Box::pin(suspend_and_resume(Engine::Postgres)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_an_active_tenant_does_nothing_and_an_unknown_tenant_is_rejected() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let slug = unique_slug("notpaused");
    let tenant = app.buy(&slug, 10).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    // Resuming an active tenant is a no-op: processed, nothing run, still active.
    let resume = ask(&app, tenant, Action::Resume).await;
    landlord_tests::chaos::eventually(std::time::Duration::from_secs(30), "the resume processed", || async {
        app.store.is_processed(resume.id.as_str()).await.unwrap()
    })
    .await;
    assert!(app.store.step(&tenant, landlord_worker::steps::StepName::UnlockLogin).await.unwrap().is_none());
    assert_eq!(app.store.tenant(&tenant).await.unwrap().unwrap().status, "active");
    let unknown = TenantId::new_random();
    ask(&app, unknown, Action::Suspend).await;
    let events = app.events_until(&unknown, |e| e.kind == EventKind::Rejected).await;
    assert!(events.last().unwrap().error.clone().unwrap().message.contains("no tenant"));
    app.drop_tenant_db(&slug).await;
}

/// With `LANDLORD_SUSPENDED_DNS_TARGET`, a suspended tenant's names point at it, and resuming points them
/// back; both changes are confirmed in Route 53 (moto).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_tenants_names_point_at_the_suspended_target_and_back() {
    use crate::infra::{TARGET, create_zone, records, with_infra};
    let moto = landlord_tests::MotoServer::start();
    let aws = moto.sdk_config().await;
    let zone = create_zone(&aws, "tenants.example.com").await;
    let infra = landlord_tests::Infra { zone_id: Some(zone.clone()), ..landlord_tests::Infra::default() };
    let app = TestApp::spawn_with(landlord_tests::Options {
        aws: Some(aws.clone()),
        worker: |cfg, infra| {
            with_infra(cfg, infra);
            cfg.suspended_dns_target = Some("suspended.tenants.example.net".into());
        },
        infra,
        ..landlord_tests::Options::new(Engine::MariaDb)
    })
    .await;
    let slug = unique_slug("parked");
    let tenant = app.buy(&slug, 10).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    let values = || async {
        let mut v: Vec<String> = records(&aws, &zone, &slug).await.into_iter().flat_map(|r| r.3).collect();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(values().await, vec![TARGET.to_owned()]);
    ask(&app, tenant, Action::Suspend).await;
    app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    assert_eq!(values().await, vec!["suspended.tenants.example.net".to_owned()]);
    ask(&app, tenant, Action::Resume).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    assert_eq!(values().await, vec![TARGET.to_owned()]);
    app.drop_tenant_db(&slug).await;
}
