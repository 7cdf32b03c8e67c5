//! A worker SIGKILLed in the middle of a suspension (the login locked, not yet recorded): another worker
//! resumes the run, the login ends up locked once, and the tenant is suspended exactly once.

use std::time::Duration;

use landlord_protocol::{Action, Command, CommandId, EventKind, TenantStatus};
use landlord_tests::{
    Engine, Options, TestApp,
    chaos::{WorkerProcess, drop_database, eventually, fresh_postgres_database},
    tenant_db_url, unique_slug,
};
use landlord_worker::{steps::StepName, store::Store};

use super::harness::{all_events, deliver, log, purchase, wait_processed, worker_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_suspension_is_resumed_by_another_worker() {
    let app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let (control_plane, cp_name) = fresh_postgres_database("chaossuspend").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let logs = super::harness::log_dir("suspend");
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &[]);

    // A tenant, provisioned by a worker that then goes away.
    let mut provisioner = WorkerProcess::spawn(&env, log(&logs, "provisioner"));
    let p = purchase(&unique_slug("suspend"), 10);
    deliver(&app, &p).await;
    wait_processed(&store, std::slice::from_ref(&p), Duration::from_secs(60)).await;
    provisioner.kill();

    // The suspension stops after locking the login, before recording it; that worker is killed.
    let marker = logs.join("failpoint-reached");
    let mut armed = env.clone();
    armed.push(("LANDLORD_FAILPOINT".into(), "during:lock_login".into()));
    armed.push(("LANDLORD_FAILPOINT_FILE".into(), marker.display().to_string()));
    let mut first = WorkerProcess::spawn(&armed, log(&logs, "first"));
    let cmd = Command::new(CommandId::parse("admin:chaos-suspend-1").unwrap(), p.tenant, "chaos", Action::Suspend);
    app.bus.publish_command(&cmd).await.unwrap();
    let reached = marker.clone();
    eventually(Duration::from_secs(60), "the worker to lock the login", || {
        let reached = reached.clone();
        async move { reached.exists() }
    })
    .await;
    let _second = WorkerProcess::spawn(&env, log(&logs, "second"));
    first.kill();

    eventually(Duration::from_secs(60), "the tenant to be suspended", || async {
        store.tenant(&p.tenant).await.unwrap().is_some_and(|t| t.status == "suspended")
    })
    .await;
    let lock = store.step(&p.tenant, StepName::LockLogin).await.unwrap().unwrap();
    assert_eq!((lock.status.as_str(), lock.attempts), ("succeeded", 2), "resumed once: {lock:?}");
    let row = store.tenant(&p.tenant).await.unwrap().unwrap();
    let login = row.db_login.clone().unwrap();
    let shown = {
        use sea_orm::ConnectionTrait;
        let stmt =
            sea_orm::Statement::from_string(sea_orm::DbBackend::MySql, format!("SHOW CREATE USER '{login}'@'%'"));
        let out = app.tenant_db.admin().query_one_raw(stmt).await.unwrap().unwrap();
        out.try_get_by_index::<String>(0).unwrap()
    };
    assert!(shown.contains("ACCOUNT LOCK"), "the login is locked: {shown}");
    let suspended = || async {
        all_events(&app)
            .await
            .iter()
            .filter(|e| e.tenant_id == Some(p.tenant))
            .filter(|e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Suspended))
            .count()
    };
    eventually(Duration::from_secs(10), "the suspended event", || async { suspended().await > 0 }).await;
    assert_eq!(suspended().await, 1, "suspended exactly once");
    println!("chaos suspend: SIGKILL during lock_login, resumed by another worker; suspended once");

    drop(store);
    app.drop_tenant_db(&p.slug).await;
    drop_database(&cp_name).await;
}
