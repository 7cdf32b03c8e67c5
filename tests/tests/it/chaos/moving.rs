//! A move of a tenant's database survives its workers: the worker copying it is SIGKILLed after the
//! restore (before the rows are counted or anything recorded), the next one after switching (recorded in
//! the control plane, the step not), and a third finishes. Every row arrives, once; the tenant's login on
//! the old server stayed locked while the copy could change; the old copy is dropped.

use std::{path::Path, time::Duration};

use landlord_protocol::{Action, Command, CommandId, PackageId, PlanChange, SubscriptionTypeId, TenantStatus};
use landlord_tests::{
    ADMIN_TOKEN, Engine, Options, TestApp,
    chaos::{MariaDbServer, WorkerProcess, drop_database, eventually, fresh_postgres_database},
    tenant_db_url, unique_slug,
};
use landlord_worker::steps::StepName;
use sea_orm::ConnectionTrait;

use super::harness::{log, purchase, worker_env};
use crate::moves::{connect_tenant, present, seed_sql, snapshot};

/// Starts a worker that stops at `point`.
fn armed(env: &[(String, String)], logs: &Path, name: &str, point: &str) -> WorkerProcess {
    let mut armed = env.to_vec();
    armed.push(("LANDLORD_FAILPOINT".into(), point.into()));
    armed.push(("LANDLORD_FAILPOINT_FILE".into(), logs.join(format!("{name}-reached")).display().to_string()));
    WorkerProcess::spawn(&armed, log(logs, name))
}

/// Waits until the worker `name` stopped at its point.
async fn reached(logs: &Path, name: &str) {
    let marker = logs.join(format!("{name}-reached"));
    eventually(Duration::from_secs(90), &format!("worker {name} to reach its failpoint"), || {
        let marker = marker.clone();
        async move { marker.exists() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_killed_after_its_copy_and_after_its_switch_finishes_with_every_row_once() {
    let (control_plane, cp_name) = fresh_postgres_database("chaosmove").await;
    let opts = Options {
        in_process_worker: false,
        control_plane: Some(control_plane.clone()),
        ..Options::new(Engine::MariaDb)
    };
    let app = TestApp::spawn_with(opts).await;
    let logs = super::harness::log_dir("moving");
    let default_url = tenant_db_url(Engine::MariaDb);
    let env = worker_env(&app, &control_plane, &default_url, &[]);
    let own = MariaDbServer::start();

    let mut provisioner = WorkerProcess::spawn(&env, log(&logs, "provisioner"));
    let p = purchase(&unique_slug("chmove"), 10);
    assert_eq!(app.post_signed(p.body.clone()).await.status(), 200);
    let row = app.wait_for_status(&p.tenant, TenantStatus::Active).await;
    provisioner.kill();
    let conn = connect_tenant(&app, &default_url, &row).await.unwrap();
    for sql in seed_sql(Engine::MariaDb) {
        conn.execute_unprepared(sql).await.unwrap();
    }
    let before = snapshot(Engine::MariaDb, &conn).await;
    conn.close().await.ok();
    let res = app
        .http
        .post(format!("{}/v1/tenants/{}/database", app.base_url, p.tenant))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "admin_url": own.url }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());

    // The first worker restores the copy and is killed before counting rows or recording anything.
    let mut first = armed(&env, &logs, "first", "copy_database:restored");
    let change = Action::ChangePlan(PlanChange {
        package_id: PackageId::try_from(40).unwrap(),
        subscription_type_id: SubscriptionTypeId::try_from(10).unwrap(),
    });
    let cmd = Command::new(CommandId::parse("admin:chaos-move-1").unwrap(), p.tenant, "chaos", change);
    app.bus.publish_command(&cmd).await.unwrap();
    reached(&logs, "first").await;
    let moving = app.store.tenant(&p.tenant).await.unwrap().unwrap();
    assert_eq!(moving.status, "moving", "{moving:?}");
    // While it is copied, the tenant's login is locked on the server it leaves.
    assert!(connect_tenant(&app, &default_url, &moving).await.is_err(), "the login is locked during the copy");
    first.kill();

    // The second finishes the copy and switches, and is killed before the switch is recorded.
    let mut second = armed(&env, &logs, "second", "during:switch_server");
    reached(&logs, "second").await;
    let switched = app.store.tenant(&p.tenant).await.unwrap().unwrap();
    assert!(switched.moved_from.is_some() && switched.moving_to.is_none(), "switched: {switched:?}");
    second.kill();

    let _third = WorkerProcess::spawn(&env, log(&logs, "third"));
    eventually(Duration::from_secs(90), "the move to end", || async {
        app.store.is_processed(cmd.id.as_str()).await.unwrap()
    })
    .await;
    let row = app.store.tenant(&p.tenant).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.package_id), ("active", 40), "{row:?}");
    assert_eq!((row.moving_to.as_deref(), row.moved_from.as_deref()), (None, None), "{row:?}");
    let conn = connect_tenant(&app, &own.url, &row).await.unwrap();
    assert_eq!(snapshot(Engine::MariaDb, &conn).await, before, "every row arrived, once");
    conn.close().await.ok();
    assert_eq!(present(Engine::MariaDb, &default_url, &row).await, (false, false), "the old copy is dropped");
    let copy = app.store.step(&p.tenant, StepName::CopyDatabase).await.unwrap().unwrap();
    let switch = app.store.step(&p.tenant, StepName::SwitchServer).await.unwrap().unwrap();
    assert_eq!((copy.status.as_str(), copy.attempts), ("succeeded", 2), "copied again after the kill: {copy:?}");
    assert_eq!((switch.status.as_str(), switch.attempts), ("succeeded", 2), "{switch:?}");
    let own_row = app.store.server_named(&format!("dedicated-{}", p.slug)).await.unwrap().unwrap();
    let default_row = app.store.server_named("default").await.unwrap().unwrap();
    assert_eq!(row.db_server.as_deref(), Some(own_row.id.as_str()));
    assert_eq!(own_row.placed, 1, "one place on the new server");
    assert_eq!(
        app.store.tenants_on(&default_row.id).await.unwrap(),
        u64::try_from(default_row.placed).unwrap(),
        "the default server counts exactly the tenants on it"
    );
    println!(
        "chaos move: killed after the restore and after the switch; the third worker finished; {} rows",
        before.len()
    );
    drop_database(&cp_name).await;
}
