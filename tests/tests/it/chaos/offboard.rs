//! A worker SIGKILLed in the middle of an offboarding (the database dropped, not yet recorded): another
//! worker resumes the run where it stopped. The dump is not taken again, the tenant ends `deleted` once.

use std::time::Duration;

use landlord_protocol::{Action, Command, CommandId, EventKind, TenantStatus};
use landlord_tests::{
    Engine, Options, TestApp,
    chaos::{WorkerProcess, drop_database, eventually, fresh_postgres_database},
    count_databases, tenant_db_url, unique_slug,
};
use landlord_worker::{steps::StepName, store::Store};

use super::harness::{all_events, deliver, log, purchase, wait_processed, worker_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_an_offboarding_is_resumed_by_another_worker() {
    let app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let (control_plane, cp_name) = fresh_postgres_database("chaosoffboard").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let logs = super::harness::log_dir("offboard");
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &[]);

    let mut provisioner = WorkerProcess::spawn(&env, log(&logs, "provisioner"));
    let p = purchase(&unique_slug("offboard"), 10);
    deliver(&app, &p).await;
    wait_processed(&store, std::slice::from_ref(&p), Duration::from_secs(60)).await;
    provisioner.kill();
    let db = store.tenant(&p.tenant).await.unwrap().unwrap().db_name.unwrap();

    // The offboarding stops right after dropping the database, before recording it; that worker is killed.
    let marker = logs.join("failpoint-reached");
    let mut armed = env.clone();
    armed.push(("LANDLORD_FAILPOINT".into(), "during:drop_database".into()));
    armed.push(("LANDLORD_FAILPOINT_FILE".into(), marker.display().to_string()));
    let mut first = WorkerProcess::spawn(&armed, log(&logs, "first"));
    let cmd = Command::new(
        CommandId::parse("admin:chaos-offboard-1").unwrap(),
        p.tenant,
        "chaos",
        Action::Offboard(Default::default()),
    );
    app.bus.publish_command(&cmd).await.unwrap();
    let reached = marker.clone();
    eventually(Duration::from_secs(60), "the worker to drop the database", || {
        let reached = reached.clone();
        async move { reached.exists() }
    })
    .await;
    assert_eq!(count_databases(&app, Engine::MariaDb, &db).await, 0, "dropped before the kill");
    let _second = WorkerProcess::spawn(&env, log(&logs, "second"));
    first.kill();

    eventually(Duration::from_secs(60), "the tenant to be deleted", || async {
        store.tenant(&p.tenant).await.unwrap().is_some_and(|t| t.status == "deleted")
    })
    .await;
    let archive = store.step(&p.tenant, StepName::ArchiveDatabase).await.unwrap().unwrap();
    assert_eq!((archive.status.as_str(), archive.attempts), ("succeeded", 1), "dumped once: {archive:?}");
    // Run again by the second worker, it finds nothing of Landlord's left to drop (the first dropped it and
    // released its claims) and says so.
    let dropped = store.step(&p.tenant, StepName::DropDatabase).await.unwrap().unwrap();
    assert_eq!((dropped.status.as_str(), dropped.attempts), ("skipped", 2), "resumed once: {dropped:?}");
    assert_eq!(count_databases(&app, Engine::MariaDb, &db).await, 0);
    let row = store.tenant(&p.tenant).await.unwrap().unwrap();
    assert_eq!(row.db_password, None, "the stored password is forgotten");
    let dump =
        std::path::PathBuf::from(&app.worker_config.archive).join(p.tenant.to_string()).join(format!("{db}.sql"));
    assert!(std::fs::metadata(&dump).unwrap().len() > 0, "the dump is kept");
    let deleted = || async {
        all_events(&app)
            .await
            .iter()
            .filter(|e| e.tenant_id == Some(p.tenant))
            .filter(|e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Deleted))
            .count()
    };
    eventually(Duration::from_secs(10), "the deleted event", || async { deleted().await > 0 }).await;
    assert_eq!(deleted().await, 1, "deleted exactly once");
    println!("chaos offboard: SIGKILL during drop_database, resumed by another worker; deleted once");

    drop(store);
    drop_database(&cp_name).await;
}
