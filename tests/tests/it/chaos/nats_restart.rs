//! Scenario 3: nats-server SIGKILLed and restarted 8 s later, in the middle of a batch. Stripe's retries carry the
//! purchases the ingress had to refuse (503) meanwhile; nothing is lost and nothing is doubled.

use std::time::{Duration, Instant};

use landlord_tests::{
    Engine, Options, TestApp,
    chaos::{WorkerProcess, drop_database, fresh_postgres_database},
    tenant_db_url, unique_slug,
};
use landlord_worker::store::Store;

use super::harness::{Figures, deliver, deliver_all, log, purchase, wait_processed, worker_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarted_mid_batch() {
    let mut app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let (control_plane, cp_name) = fresh_postgres_database("chaosnats").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let logs = super::harness::log_dir("nats_restart");
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &[]);
    let _workers: Vec<_> = (0..2).map(|i| WorkerProcess::spawn(&env, log(&logs, &format!("w{i}")))).collect();

    let batch = unique_slug("natsr");
    let purchases: Vec<_> = (0..40).map(|i| purchase(&format!("{batch}-{i}"), 10)).collect();
    let started = Instant::now();
    let mut deliveries = 0;
    for p in &purchases[..15] {
        deliveries += deliver(&app, p).await;
    }
    app.nats.as_mut().unwrap().kill();
    // Stripe keeps delivering while NATS is down; the server comes back (same port, same storage)
    // after eight seconds — longer than the ingress waits for a publish acknowledgement (5 s), so some
    // deliveries are answered 503 and retried, while those caught by a short gap are held until stored.
    let nats = std::sync::Mutex::new(app.nats.take().unwrap());
    let rest = deliver_all(&app, &purchases[15..], 8);
    let (sent, ()) = tokio::join!(rest, async {
        tokio::time::sleep(Duration::from_secs(8)).await;
        nats.lock().unwrap().restart();
    });
    deliveries += sent;
    app.nats = Some(nats.into_inner().unwrap());

    wait_processed(&store, &purchases, Duration::from_secs(180)).await;
    let figures =
        Figures::count("nats restart mid-batch", &app, &store, &purchases, started.elapsed(), deliveries).await;
    figures.assert_exactly_once();
    assert!(deliveries > purchases.len() as u32, "some deliveries were refused while NATS was down");
    assert_eq!(store.tenants().await.unwrap().len(), purchases.len());

    drop(store);
    for p in &purchases {
        app.drop_tenant_db(&p.slug).await;
    }
    drop_database(&cp_name).await;
}
