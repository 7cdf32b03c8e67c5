//! Scenario 4: the tenant database server stopped for 20 s in the middle of a batch. Steps fail with
//! "connection refused", back off, hand their messages back with a delay, and complete once the server
//! is back. A private MariaDB is used so the machine's shared one is never stopped.

use std::time::{Duration, Instant};

use landlord_tests::{
    Engine, Options, TestApp,
    chaos::{MariaDbServer, WorkerProcess, drop_database, eventually, fresh_postgres_database},
    unique_slug,
};
use landlord_worker::store::Store;

use super::harness::{Figures, deliver, deliver_all, log, purchase, wait_processed, worker_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_database_down_for_twenty_seconds() {
    let mut mariadb = MariaDbServer::start();
    let app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let (control_plane, cp_name) = fresh_postgres_database("chaosdb").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let logs = super::harness::log_dir("db_outage");
    let env = worker_env(&app, &control_plane, &mariadb.url, &[]);
    let _workers: Vec<_> = (0..2).map(|i| WorkerProcess::spawn(&env, log(&logs, &format!("w{i}")))).collect();

    let batch = unique_slug("dbdown");
    let purchases: Vec<_> = (0..30).map(|i| purchase(&format!("{batch}-{i}"), 10)).collect();
    let started = Instant::now();
    let mut deliveries = 0;
    for p in &purchases[..10] {
        deliveries += deliver(&app, p).await;
    }
    // Some of the first ten are active; then the server goes away for 20 s while the rest arrive.
    eventually(Duration::from_secs(60), "a first tenant to be active", || async {
        store.tenants().await.unwrap().iter().any(|t| t.status == "active")
    })
    .await;
    mariadb.stop();
    let stopped = Instant::now();
    deliveries += deliver_all(&app, &purchases[10..], 8).await;
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(stopped.elapsed())).await;
    let waiting = store.tenants().await.unwrap().iter().filter(|t| t.status != "active").count();
    mariadb.restart();

    wait_processed(&store, &purchases, Duration::from_secs(240)).await;
    let figures =
        Figures::count("tenant database down 20 s", &app, &store, &purchases, started.elapsed(), deliveries).await;
    figures.assert_exactly_once();
    assert!(waiting > 0, "some tenants were waiting for the database while it was down");
    assert!(figures.retries > 0, "steps backed off while the server was down");
    drop(store);
    drop_database(&cp_name).await;
}
