//! Scenario 2: 200 signed checkouts, 30 % of them delivered again — concurrently with the first delivery,
//! and again after JetStream's duplicate window has passed — to two worker processes. One tenant per
//! purchase: the control plane's memory of processed commands catches what JetStream no longer does.

use std::time::{Duration, Instant};

use landlord_tests::{
    Engine, Options, TestApp,
    chaos::{WorkerProcess, drop_database, fresh_postgres_database},
    count_databases, tenant_db_url, unique_slug,
};
use landlord_worker::store::Store;

use super::harness::{Figures, deliver_all, log, purchase, wait_processed, worker_env};

const PURCHASES: usize = 200;
const REDELIVERED: usize = PURCHASES * 30 / 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_checkouts_with_thirty_percent_redelivered() {
    let window = Duration::from_secs(2);
    let app = TestApp::spawn_with(Options {
        in_process_worker: false,
        duplicate_window: window,
        ..Options::new(Engine::MariaDb)
    })
    .await;
    let (control_plane, cp_name) = fresh_postgres_database("chaosbulk").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let logs = super::harness::log_dir("bulk");
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &[]);
    let _workers: Vec<_> = (0..2).map(|i| WorkerProcess::spawn(&env, log(&logs, &format!("w{i}")))).collect();

    let batch = unique_slug("bulk");
    let purchases: Vec<_> = (0..PURCHASES).map(|i| purchase(&format!("{batch}-{i}"), 10)).collect();
    let started = Instant::now();
    // First deliveries, with 30 % delivered twice at the same time.
    let first: Vec<_> = purchases.iter().chain(purchases.iter().take(REDELIVERED)).collect();
    let deliveries = deliver_all(&app, first, 16).await;
    // The same 30 % once more, after JetStream has forgotten their ids.
    tokio::time::sleep(window + Duration::from_millis(500)).await;
    let late = deliver_all(&app, purchases.iter().take(REDELIVERED), 16).await;
    wait_processed(&store, &purchases, Duration::from_secs(300)).await;
    // Let the late duplicates drain from the stream before counting.
    let stream = app.bus.jetstream().get_stream("LANDLORD_COMMANDS").await.unwrap();
    landlord_tests::chaos::eventually(Duration::from_secs(60), "every command consumed", || {
        let stream = stream.clone();
        async move { stream.clone().get_info().await.unwrap().state.messages == 0 }
    })
    .await;

    let figures =
        Figures::count("bulk 200 + 30% redelivered", &app, &store, &purchases, started.elapsed(), deliveries + late)
            .await;
    figures.assert_exactly_once();
    assert_eq!(store.tenants().await.unwrap().len(), PURCHASES, "no tenant beyond one per purchase");
    let db_prefix = format!("tenant_{}", batch.replace('-', "_"));
    assert_eq!(count_databases(&app, Engine::MariaDb, &db_prefix).await, PURCHASES as i64);
    for p in &purchases {
        assert_eq!(store.runs(&p.tenant).await.unwrap().len(), 1, "{} was provisioned by one run", p.slug);
    }

    drop(store);
    for p in &purchases {
        app.drop_tenant_db(&p.slug).await;
    }
    drop_database(&cp_name).await;
}
