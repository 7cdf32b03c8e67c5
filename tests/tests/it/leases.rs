//! Tenant leases: when one ends is the control plane's call, not a worker's; a run that cannot keep its
//! lease stops before another worker may take the tenant; the background DNS retrier takes the lease like
//! any run.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use landlord_protocol::{Command, TenantId, TenantStatus};
use landlord_tests::{
    Engine, Infra, MotoServer, Options, TestApp,
    chaos::{drop_database, eventually, fresh_postgres_database},
    free_port, unique_slug,
};
use landlord_worker::{
    Outcome, Worker, WorkerConfig,
    store::{Store, entities::tenant_lease},
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};

/// The lease of the workers that run a slow step: short, so that losing it shows within seconds.
const LEASE_TTL: Duration = Duration::from_secs(3);
const TARGET: &str = "lb.tenants.example.net";

/// A purchase of plan 1/1 for `slug`: the checkout event Stripe sends, and the command it becomes.
fn purchase(slug: &str) -> (Vec<u8>, Command) {
    let (body, _) = landlord_tests::purchase_body(slug, 10, 10);
    match landlord_ingress::stripe::decide(&body, &landlord_tests::test_plans()).unwrap() {
        landlord_ingress::stripe::EventDecision::Provision(cmd) => (body, *cmd),
        other => panic!("{other:?}"),
    }
}

async fn lease_row(store: &Store, tenant: &TenantId) -> tenant_lease::Model {
    let row = tenant_lease::Entity::find_by_id(tenant.to_string()).one(store.connection()).await.unwrap();
    row.expect("the tenant has a lease row")
}

/// Moves a lease's end, as the control plane records it, behind its holder's back.
async fn end_lease_at(store: &Store, tenant: &TenantId, end: DateTime<Utc>) {
    let changed = tenant_lease::Entity::update_many()
        .col_expr(tenant_lease::Column::ExpiresAt, Expr::value(end))
        .filter(tenant_lease::Column::TenantId.eq(tenant.to_string()))
        .exec(store.connection())
        .await
        .unwrap();
    assert_eq!(changed.rows_affected, 1);
}

/// Hands a lease to `thief` behind its holder's back.
async fn steal_lease(store: &Store, tenant: &TenantId, thief: &str) {
    let changed = tenant_lease::Entity::update_many()
        .col_expr(tenant_lease::Column::Holder, Expr::value(thief))
        .filter(tenant_lease::Column::TenantId.eq(tenant.to_string()))
        .exec(store.connection())
        .await
        .unwrap();
    assert_eq!(changed.rows_affected, 1);
}

async fn rename_table(store: &Store, from: &str, to: &str) {
    store.connection().execute_unprepared(&format!("ALTER TABLE {from} RENAME TO {to}")).await.unwrap();
}

async fn step_status(store: &Store, tenant: &TenantId, step: &str) -> String {
    store
        .step(tenant, landlord_worker::steps::StepName::parse(step).unwrap())
        .await
        .unwrap()
        .map(|s| s.status)
        .unwrap_or_default()
}

/// What every control plane must do: take, refuse and hand over a lease by its own clock.
async fn leases_follow_the_control_planes_clock(store: &Store) {
    let tenant = TenantId::from_checkout_session(&unique_slug("lease"));
    let ttl = Duration::from_secs(60);
    let before = store.db_now().await.unwrap();
    assert!(store.acquire_lease(&tenant, "first/1", ttl).await.unwrap());
    let after = store.db_now().await.unwrap();
    let end = lease_row(store, &tenant).await.expires_at;
    let lasts = chrono::Duration::from_std(ttl).unwrap();
    assert!(before + lasts <= end && end <= after + lasts, "{before} + 60 s <= {end} <= {after} + 60 s");

    // Shortly before its end by the control plane's clock, the lease is still the first holder's.
    end_lease_at(store, &tenant, store.db_now().await.unwrap() + chrono::Duration::seconds(30)).await;
    assert!(!store.acquire_lease(&tenant, "second/1", ttl).await.unwrap());
    assert_eq!(store.lease_holder(&tenant).await.unwrap().as_deref(), Some("first/1"));

    // Just after it, another holder takes it, and the first can no longer renew it.
    end_lease_at(store, &tenant, store.db_now().await.unwrap() - chrono::Duration::milliseconds(10)).await;
    assert!(store.acquire_lease(&tenant, "second/1", ttl).await.unwrap());
    assert_eq!(store.lease_holder(&tenant).await.unwrap().as_deref(), Some("second/1"));
    assert_eq!(store.renew_leases(&["first/1".into()], ttl).await.unwrap(), 0);
    assert_eq!(store.renew_leases(&["second/1".into()], ttl).await.unwrap(), 1);

    // A worker renews the leases it names in one statement, and no others: a lease whose holder is done
    // with it (its release failed) is left to expire.
    let other = TenantId::from_checkout_session(&unique_slug("lease"));
    let third = TenantId::from_checkout_session(&unique_slug("lease"));
    assert!(store.acquire_lease(&other, "second/2", ttl).await.unwrap());
    assert!(store.acquire_lease(&third, "second/3", ttl).await.unwrap());
    let soon = store.db_now().await.unwrap() + chrono::Duration::seconds(1);
    for t in [&tenant, &other, &third] {
        end_lease_at(store, t, soon).await;
    }
    let held = ["second/1".to_owned(), "second/2".to_owned()];
    assert_eq!(store.renew_leases(&held, ttl).await.unwrap(), 2);
    assert!(lease_row(store, &tenant).await.expires_at > soon + chrono::Duration::seconds(30));
    assert!(lease_row(store, &other).await.expires_at > soon + chrono::Duration::seconds(30));
    assert_eq!(lease_row(store, &third).await.expires_at, soon, "not named, not renewed");
    assert_eq!(store.renew_leases(&[], ttl).await.unwrap(), 0);

    // How long a lease has left, by the control plane's clock, tells a busy message when to come back.
    let left = store.lease_left(&third).await.unwrap().expect("held");
    assert!(left <= Duration::from_secs(1), "{left:?}");
    store.release_lease(&third, "second/3").await.unwrap();
    assert_eq!(store.lease_left(&third).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_ends_when_the_control_planes_clock_says_so_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("leases.db").display())).await;
    leases_follow_the_control_planes_clock(&store.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_ends_when_the_control_planes_clock_says_so_on_postgresql() {
    let (url, name) = fresh_postgres_database("leases").await;
    let store = Store::connect(&url).await.unwrap();
    leases_follow_the_control_planes_clock(&store).await;
    drop(store);
    drop_database(&name).await;
}

/// A worker whose health check takes two minutes (its URL is a port nobody listens on) and whose lease
/// lasts [`LEASE_TTL`], renewed every third of it.
async fn worker_stuck_in_health_check(app: &TestApp) -> Worker {
    let mut cfg: WorkerConfig = app.worker_config.clone();
    cfg.health_url = Some(format!("http://127.0.0.1:{}/healthz", free_port()));
    cfg.health_deadline = Duration::from_secs(120);
    cfg.lease_ttl = LEASE_TTL;
    landlord_worker::build(&cfg, &app.bus, None).await.unwrap()
}

/// Handles `cmd` on `worker`, doing `meddle` once the run's health check is under way; returns the
/// outcome and when `meddle` was done.
async fn run_and_meddle(
    app: &TestApp,
    worker: &Worker,
    cmd: &Command,
    meddle: impl Future<Output = ()>,
) -> (Outcome, Instant) {
    let (subject, payload) = (cmd.subject(), cmd.to_json());
    let meddling = async {
        eventually(Duration::from_secs(60), "the health check to start", || async {
            step_status(&app.store, &cmd.tenant_id, "health_check").await == "started"
        })
        .await;
        meddle.await;
        Instant::now()
    };
    tokio::join!(worker.handle(&subject, &payload, 1), meddling)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_another_holder_took_is_abandoned_before_it_completes() {
    let app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let worker = worker_stuck_in_health_check(&app).await;
    let slug = unique_slug("leasestolen");
    let (_, cmd) = purchase(&slug);

    let stealing = steal_lease(&app.store, &cmd.tenant_id, "thief/1");
    let (outcome, stolen) = run_and_meddle(&app, &worker, &cmd, stealing).await;
    assert!(matches!(outcome, Outcome::Busy { .. }), "{outcome:?}");
    assert!(stolen.elapsed() < LEASE_TTL, "noticed at the next renewal, not {:?} later", stolen.elapsed());
    assert_eq!(step_status(&app.store, &cmd.tenant_id, "health_check").await, "started", "dropped, not finished");
    assert_eq!(app.store.tenant(&cmd.tenant_id).await.unwrap().unwrap().status, "provisioning");
    assert_eq!(app.store.lease_holder(&cmd.tenant_id).await.unwrap().as_deref(), Some("thief/1"), "left alone");
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_renew_its_lease_stops_while_the_lease_is_still_valid() {
    // The default control plane, SQLite, whose lease table can be taken away under a running worker.
    let app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let worker = worker_stuck_in_health_check(&app).await;
    let slug = unique_slug("leasefails");
    let (_, cmd) = purchase(&slug);

    // From now on every renewal fails with an error, as against a control plane that is down.
    let failing = rename_table(&app.store, "tenant_leases", "tenant_leases_away");
    let (outcome, _) = run_and_meddle(&app, &worker, &cmd, failing).await;
    let stopped = app.store.db_now().await.unwrap();
    rename_table(&app.store, "tenant_leases_away", "tenant_leases").await;

    assert!(matches!(outcome, Outcome::Busy { .. }), "{outcome:?}");
    let lease = lease_row(&app.store, &cmd.tenant_id).await;
    assert!(lease.holder.starts_with(&format!("{}/", worker.holder)), "the worker's lease: {lease:?}");
    assert!(stopped < lease.expires_at, "stopped at {stopped}, after the lease ended at {}", lease.expires_at);
    assert_eq!(step_status(&app.store, &cmd.tenant_id, "health_check").await, "started", "dropped, not finished");
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_with_a_shorter_ack_wait_updates_the_shared_consumer() {
    // The consumer an older version made, with its minute-long ack wait.
    let app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let mut old = landlord_worker::consumer::ensure_consumer(&app.bus, Duration::from_secs(60)).await.unwrap();
    assert_eq!(old.info().await.unwrap().config.ack_wait, Duration::from_secs(60));

    let default_wait = WorkerConfig::defaults().ack_wait;
    assert_eq!(default_wait, Duration::from_secs(4), "the default: a dead worker's message passes on in seconds");
    let mut new = landlord_worker::consumer::ensure_consumer(&app.bus, default_wait).await.unwrap();
    assert_eq!(new.info().await.unwrap().config.ack_wait, default_wait);
    assert_eq!(old.info().await.unwrap().config.ack_wait, default_wait, "one consumer, changed in place");

    // A worker still set to 60 s reads the consumer's ack wait back and heartbeats for the shorter one.
    let seen = landlord_worker::consumer::SharedAckWait::new(Duration::from_secs(60));
    seen.observe(old.info().await.unwrap().config.ack_wait);
    assert_eq!(seen.get(), default_wait);
    let every = landlord_worker::consumer::heartbeat(Duration::from_secs(60), seen.get());
    assert!(every * 4 <= default_wait, "progress every {every:?} keeps a {default_wait:?} ack wait alive");
}

/// Points the worker at `infra`'s hosted zone, with the background DNS retrier left to the test.
fn with_zone(cfg: &mut WorkerConfig, infra: &Infra) {
    cfg.route53_zone_id = infra.zone_id.clone();
    cfg.dns_target = Some(TARGET.into());
    cfg.dns_retry_interval = Duration::from_secs(3600);
}

async fn create_zone(aws: &aws_config::SdkConfig, name: &str) -> String {
    let r53 = aws_sdk_route53::Client::new(aws);
    let zone = r53.create_hosted_zone().name(name).caller_reference(unique_slug("zone")).send().await.unwrap();
    zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_owned()
}

/// How many record sets in the zone name `slug`.
async fn records_naming(aws: &aws_config::SdkConfig, zone: &str, slug: &str) -> usize {
    let r53 = aws_sdk_route53::Client::new(aws);
    let out = r53.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
    out.resource_record_sets().iter().filter(|r| r.name().contains(slug)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dns_retrier_leaves_a_tenant_alone_while_another_holder_has_its_lease() {
    let moto = MotoServer::start();
    let aws = moto.sdk_config().await;
    // A zone id that does not exist: the tenant becomes active with its DNS deferred.
    let infra = Infra { zone_id: Some("ZNOSUCHZONE00".into()), ..Infra::default() };
    let opts = Options { aws: Some(aws.clone()), worker: with_zone, infra, ..Options::new(Engine::MariaDb) };
    let app = TestApp::spawn_with(opts).await;
    let slug = unique_slug("dnslease");
    let (body, cmd) = purchase(&slug);
    assert_eq!(app.post_signed(body).await.status(), 200);
    assert!(app.wait_for_status(&cmd.tenant_id, TenantStatus::Active).await.dns_pending);
    let zone = create_zone(&aws, "tenants.example.com").await;
    let mut cfg = app.worker_config.clone();
    cfg.route53_zone_id = Some(zone.clone());
    let worker = landlord_worker::build(&cfg, &app.bus, Some(&aws)).await.unwrap();

    // While a run elsewhere holds the tenant, the retrier does not touch it.
    assert!(app.store.acquire_lease(&cmd.tenant_id, "elsewhere/run", Duration::from_secs(60)).await.unwrap());
    assert_eq!(landlord_worker::dns_retry::retry_pending(&worker).await, 0);
    assert_eq!(records_naming(&aws, &zone, &slug).await, 0);
    assert!(app.store.tenant(&cmd.tenant_id).await.unwrap().unwrap().dns_pending);
    assert_eq!(app.store.lease_holder(&cmd.tenant_id).await.unwrap().as_deref(), Some("elsewhere/run"));

    // Once the run is over, the retrier takes the tenant, fixes its DNS and gives the lease back.
    app.store.release_lease(&cmd.tenant_id, "elsewhere/run").await.unwrap();
    assert_eq!(landlord_worker::dns_retry::retry_pending(&worker).await, 1);
    assert_eq!(records_naming(&aws, &zone, &slug).await, 2);
    assert!(!app.store.tenant(&cmd.tenant_id).await.unwrap().unwrap().dns_pending);
    assert_eq!(step_status(&app.store, &cmd.tenant_id, "configure_dns").await, "succeeded");
    assert_eq!(app.store.lease_holder(&cmd.tenant_id).await.unwrap(), None);
    app.drop_tenant_db(&slug).await;
}
