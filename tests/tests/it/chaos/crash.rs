//! Scenario 1: a worker SIGKILLed at every step boundary and in the middle of every step, with a second
//! worker running. Every tenant ends active exactly once, with exactly one database, login, pair of DNS
//! records and stack, and the second worker resumes at the unfinished steps.

use std::time::{Duration, Instant};

use futures::StreamExt;
use landlord_protocol::{EventKind, TenantStatus};
use landlord_tests::{
    Engine, MotoServer, Options, TestApp,
    chaos::{WorkerProcess, drop_database, eventually, fresh_postgres_database},
    count_databases, repo_root, tenant_db_url, unique_slug,
};
use landlord_worker::store::Store;

use super::harness::{Figures, deliver, log, purchase, wait_processed, worker_env};

const STEPS: [&str; 6] =
    ["create_database", "apply_schema", "configure_dns", "deploy_stack", "health_check", "activate"];
const TARGET: &str = "lb.tenants.example.net";

/// `before:` (nothing done), `during:` (effects done, not recorded), `after:` (recorded, next not
/// started) for every step, and half-way through the plan script.
fn points() -> Vec<String> {
    let mut points: Vec<String> =
        STEPS.iter().flat_map(|s| ["before", "during", "after"].map(|w| format!("{w}:{s}"))).collect();
    points.insert(4, "apply_schema:middle".into());
    // Two steps that run side by side, both stopped after their work and before recording it.
    points.push("during:configure_dns,during:deploy_stack".into());
    points
}

struct Aws {
    moto: MotoServer,
    zone: String,
}

async fn crash_at(point: String, aws: &Aws) -> Figures {
    let app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let (control_plane, cp_name) = fresh_postgres_database("chaoscp").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let logs = super::harness::log_dir(&format!("crash-{}", point.replace(':', "-")));
    let marker = logs.join("failpoint-reached");
    let template = repo_root().join("deploy/tenant-website.template.json").display().to_string();
    let infra = [
        ("AWS_ENDPOINT_URL", aws.moto.endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("LANDLORD_ROUTE53_ZONE_ID", aws.zone.clone()),
        ("LANDLORD_DNS_TARGET", TARGET.to_owned()),
        ("LANDLORD_STACK_TEMPLATE", template),
        ("LANDLORD_HEALTH_URL", format!("{}/healthz", app.base_url)),
    ];
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &infra);
    let mut armed = env.clone();
    armed.push(("LANDLORD_FAILPOINT".into(), point.clone()));
    armed.push(("LANDLORD_FAILPOINT_FILE".into(), marker.display().to_string()));

    let started = Instant::now();
    let mut first = WorkerProcess::spawn(&armed, log(&logs, "first"));
    let p = purchase(&unique_slug("crash"), 20);
    let deliveries = deliver(&app, &p).await;
    let reached = marker.clone();
    let wanted = point.split(',').count();
    eventually(Duration::from_secs(60), &format!("the worker to reach {point}"), || {
        let reached = reached.clone();
        async move { std::fs::read_to_string(&reached).is_ok_and(|text| text.lines().count() == wanted) }
    })
    .await;
    let _second = WorkerProcess::spawn(&env, log(&logs, "second"));
    first.kill();
    wait_processed(&store, std::slice::from_ref(&p), Duration::from_secs(120)).await;
    let figures = Figures::count(&point, &app, &store, std::slice::from_ref(&p), started.elapsed(), deliveries).await;
    figures.assert_exactly_once();

    // Exactly one of everything.
    let db = format!("tenant_{}", p.slug.replace('-', "_"));
    assert_eq!(count_databases(&app, Engine::MariaDb, &db).await, 1, "{point}: databases");
    let logins = {
        use sea_orm::ConnectionTrait;
        let stmt = sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::MySql,
            "SELECT COUNT(*) AS n FROM mysql.user WHERE User = ?",
            [db.clone().into()],
        );
        let row = app.tenant_db.admin().query_one_raw(stmt).await.unwrap().unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    assert_eq!(logins, 1, "{point}: logins");
    let r53 = aws_sdk_route53::Client::new(&aws.moto.sdk_config().await);
    let sets = r53.list_resource_record_sets().hosted_zone_id(&aws.zone).send().await.unwrap();
    for name in [format!("{}.tenants.example.com.", p.slug), format!("{}.api.tenants.example.com.", p.slug)] {
        let n = sets.resource_record_sets().iter().filter(|r| r.name() == name).count();
        assert_eq!(n, 1, "{point}: records named {name}");
    }
    let cfn = aws_sdk_cloudformation::Client::new(&aws.moto.sdk_config().await);
    let stack = format!("{}-chaos-website", p.slug);
    let listed = cfn.list_stacks().send().await.unwrap();
    let live = listed
        .stack_summaries()
        .iter()
        .filter(|s| s.stack_name() == Some(stack.as_str()))
        .filter(|s| s.stack_status().is_some_and(|st| st.as_str() != "DELETE_COMPLETE"))
        .count();
    assert_eq!(live, 1, "{point}: stacks");

    // Active exactly once, and the run resumed at the unfinished steps.
    // The status event follows the run's record by a moment: wait for it, then count.
    let activations = || async {
        let events = super::harness::all_events(&app).await;
        events
            .iter()
            .filter(|e| e.tenant_id == Some(p.tenant))
            .filter(|e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Active))
            .count()
    };
    eventually(Duration::from_secs(10), "the active event", || async { activations().await > 0 }).await;
    assert_eq!(activations().await, 1, "{point}: status_changed active events");
    // Steps run as a plan: what the crashed step needs had settled before it started and never runs again;
    // steps that were in flight beside it when the worker died resume (another attempt) and finish once.
    let steps = store.steps(&p.tenant).await.unwrap();
    let attempts = |name: &str| steps.iter().find(|s| s.step == name).unwrap().attempts;
    for one in point.split(',') {
        let (when, crashed_step) = one.split_once(':').unwrap();
        let crashed_step = if STEPS.contains(&crashed_step) { crashed_step } else { when };
        let crashed_step = landlord_worker::steps::StepName::parse(crashed_step).unwrap();
        for done in landlord_worker::steps::provisioning().requires(crashed_step) {
            assert_eq!(attempts(done.as_str()), 1, "{point}: {done} finished before the crash and must not run again");
        }
        if when == "during" {
            // Its work was done but not recorded when the worker died: it ran again, and made nothing twice.
            assert_eq!(attempts(crashed_step.as_str()), 2, "{point}: {crashed_step} resumed");
        }
    }
    for s in &steps {
        assert!(landlord_worker::store::StepState::is_settled(&s.status), "{point}: {} ended {}", s.step, s.status);
    }

    drop(store);
    app.drop_tenant_db(&p.slug).await;
    drop_database(&cp_name).await;
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_every_step_boundary_and_mid_step() {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config().await;
    let zone = aws_sdk_route53::Client::new(&sdk)
        .create_hosted_zone()
        .name("tenants.example.com")
        .caller_reference(unique_slug("zone"))
        .send()
        .await
        .unwrap();
    let zone = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_owned();
    let aws = Aws { moto, zone };
    let started = Instant::now();
    let results: Vec<Figures> =
        futures::stream::iter(points()).map(|p| crash_at(p, &aws)).buffer_unordered(3).collect().await;
    let requested: usize = results.iter().map(|f| f.requested).sum();
    let active: usize = results.iter().map(|f| f.active).sum();
    let retries: usize = results.iter().map(|f| f.retries).sum();
    println!(
        "chaos sigkill (all {} points): requested {requested} / active {active} / duplicated 0 / lost 0 / step retries {retries} / wall {:.1} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(results.len(), 20);
}
