//! Changing plan, as a command on NATS: the upgrade script between the two plans runs once as the
//! tenant's own login, the new plan is recorded, and the stack gets the new `Plan` parameter. A plan
//! outside the catalogue, or a tenant that is not active, is refused.

use landlord_protocol::{
    Action, Command, CommandId, EventKind, PackageId, PlanChange, SubscriptionTypeId, TenantId, TenantStatus,
};
use landlord_tests::{Engine, Options, TestApp, chaos::eventually, scalar, unique_slug};
use std::time::Duration;

fn change(package: u32, kind: u32) -> Action {
    Action::ChangePlan(PlanChange {
        package_id: PackageId::try_from(package).unwrap(),
        subscription_type_id: SubscriptionTypeId::try_from(kind).unwrap(),
    })
}

/// Sends `action` and waits until it is processed.
async fn apply(app: &TestApp, tenant: TenantId, action: Action) -> Command {
    let id = CommandId::parse(&format!("admin:{}", uuid::Uuid::new_v4())).unwrap();
    let cmd = Command::new(id, tenant, "ops-test", action);
    app.bus.publish_command(&cmd).await.unwrap();
    eventually(Duration::from_secs(60), "the command processed", || async {
        app.store.is_processed(cmd.id.as_str()).await.unwrap()
    })
    .await;
    cmd
}

/// The repository's scripts plus an upgrade from Essential to Professional (General) that counts how
/// often it ran: a plain INSERT, which a second run would repeat.
fn scripts_with_upgrade(engine: Engine) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for dialect in ["mysql", "postgres"] {
        let from = landlord_tests::repo_root().join("sql-scripts").join(dialect);
        std::fs::create_dir(dir.path().join(dialect)).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(dialect).join(entry.file_name())).unwrap();
        }
    }
    let (folder, sql) = match engine {
        Engine::MariaDb => (
            "mysql",
            "CREATE TABLE IF NOT EXISTS upgrade_runs (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40));\n\
             INSERT INTO upgrade_runs (note) VALUES ('essential to professional');\n",
        ),
        Engine::Postgres => (
            "postgres",
            "CREATE TABLE IF NOT EXISTS upgrade_runs (id SERIAL PRIMARY KEY, note VARCHAR(40));\n\
             INSERT INTO upgrade_runs (note) VALUES ('essential to professional');\n",
        ),
    };
    let name = "upgrade-package-10-type-10-to-package-20-type-10.sql";
    std::fs::write(dir.path().join(folder).join(name), sql).unwrap();
    dir
}

async fn change_plan(engine: Engine) {
    let scripts = scripts_with_upgrade(engine);
    let app = TestApp::spawn_with(Options { scripts: scripts.path().to_path_buf(), ..Options::new(engine) }).await;
    let slug = unique_slug("upgrade");
    let tenant = app.buy(&slug, 10).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let db = row.db_name.clone().unwrap();

    let first = apply(&app, tenant, change(20, 10)).await;
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert_eq!((row.package_id, row.subscription_type_id, row.status.as_str()), (20, 10, "active"));
    let conn = app.connect_as_tenant(engine, &row, &db).await.unwrap();
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM upgrade_runs").await, 1, "{engine:?}: upgraded once");
    let events = app.events_until(&tenant, |e| e.step.as_deref() == Some("update_stack")).await;
    let upgraded = events
        .iter()
        .find(|e| e.kind == EventKind::StepSucceeded && e.step.as_deref() == Some("upgrade_schema"))
        .expect("the upgrade ran");
    assert!(upgraded.message.clone().unwrap().contains("applied: 2 statements"), "{upgraded:?}");

    // The same command delivered again is done already; the plan it names is the tenant's.
    let worker = landlord_worker::build(&app.worker_config, &app.bus, None).await.unwrap();
    let again = worker.handle(&first.subject(), &first.to_json(), 2).await;
    assert_eq!(again, landlord_worker::Outcome::AlreadyDone);
    apply(&app, tenant, change(20, 10)).await;
    // Down and up again: there is no script down, and the one up was applied already, so it is not run twice.
    apply(&app, tenant, change(10, 10)).await;
    assert_eq!(app.store.tenant(&tenant).await.unwrap().unwrap().package_id, 10);
    apply(&app, tenant, change(20, 10)).await;
    assert_eq!(app.store.tenant(&tenant).await.unwrap().unwrap().package_id, 20);
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM upgrade_runs").await, 1, "{engine:?}: still once");
    let step = app.store.step(&tenant, landlord_worker::steps::StepName::UpgradeSchema).await.unwrap().unwrap();
    assert_eq!(step.status, "succeeded", "{step:?}");
    conn.close().await.ok();

    // A plan outside the catalogue, and a tenant that is not active, are refused and change nothing.
    apply(&app, tenant, change(99, 10)).await;
    let events = app.events_until(&tenant, |e| e.kind == EventKind::Rejected).await;
    assert!(events.last().unwrap().error.clone().unwrap().message.contains("not a plan"), "{events:#?}");
    apply(&app, tenant, Action::Suspend).await;
    apply(&app, tenant, change(30, 20)).await;
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert_eq!((row.package_id, row.status.as_str()), (20, "suspended"));
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_change_upgrades_the_schema_once_on_mariadb() {
    Box::pin(change_plan(Engine::MariaDb)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_change_upgrades_the_schema_once_on_postgres() {
    Box::pin(change_plan(Engine::Postgres)).await;
}

/// On AWS (moto): the stack is updated with the new plan in its `Plan` parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_change_updates_the_stacks_plan_parameter() {
    let (_moto, aws, _zone, _dir, app) = crate::infra::with_zone_and_stack().await;
    let slug = unique_slug("restack");
    let tenant = app.buy(&slug, 10).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    apply(&app, tenant, change(30, 20)).await;
    let cfn = aws_sdk_cloudformation::Client::new(&aws);
    let stack = cfn.describe_stacks().stack_name(format!("{slug}-test-website")).send().await.unwrap();
    let plan = stack.stacks()[0]
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some("Plan"))
        .and_then(|p| p.parameter_value().map(str::to_owned));
    assert_eq!(plan.as_deref(), Some("package-30-type-20"));
    let step = app.store.step(&tenant, landlord_worker::steps::StepName::UpdateStack).await.unwrap().unwrap();
    assert_eq!(step.status, "succeeded", "{step:?}");
    app.drop_tenant_db(&slug).await;
}
