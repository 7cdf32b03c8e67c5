//! Scenario 5: a three-node NATS cluster with streams replicated three times; one node SIGKILLed in the
//! middle of a batch. The other two keep a quorum, clients move to them, and nothing is lost.

use std::time::{Duration, Instant};

use landlord_tests::{
    Engine, Options, TestApp,
    chaos::{NatsCluster, WorkerProcess, drop_database, fresh_postgres_database},
    tenant_db_url, unique_slug,
};
use landlord_worker::store::Store;

use super::harness::{Figures, deliver, deliver_all, log, purchase, wait_processed, worker_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_of_a_three_node_cluster_killed_mid_batch() {
    let logs = super::harness::log_dir("cluster");
    let mut cluster = NatsCluster::start(&logs);
    cluster.wait_jetstream().await;
    // The ingress creates R3 streams once the cluster has elected a JetStream leader; ready waits for it.
    let app = TestApp::spawn_with(Options {
        in_process_worker: false,
        external_nats: Some(cluster.url.clone()),
        replicas: 3,
        ..Options::new(Engine::MariaDb)
    })
    .await;
    let info = app.bus.jetstream().get_stream("LANDLORD_COMMANDS").await.unwrap().get_info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let (control_plane, cp_name) = fresh_postgres_database("chaoscluster").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &[]);
    let _workers: Vec<_> = (0..2).map(|i| WorkerProcess::spawn(&env, log(&logs, &format!("w{i}")))).collect();

    let batch = unique_slug("cluster");
    let purchases: Vec<_> = (0..40).map(|i| purchase(&format!("{batch}-{i}"), 10)).collect();
    let started = Instant::now();
    let mut deliveries = 0;
    for p in &purchases[..15] {
        deliveries += deliver(&app, p).await;
    }
    // Kill the node holding the command stream's leader, the worst one to lose.
    let mut leader = None;
    for _ in 0..100 {
        let info = app.bus.jetstream().get_stream("LANDLORD_COMMANDS").await.unwrap().get_info().await.unwrap();
        leader = info.cluster.and_then(|c| c.leader).filter(|l| !l.is_empty());
        if leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leader = leader.expect("the command stream has a leader");
    let victim: usize = leader.strip_prefix('n').and_then(|i| i.parse().ok()).expect("nodes are named n0..n2");
    cluster.kill(victim);
    deliveries += deliver_all(&app, &purchases[15..], 8).await;

    wait_processed(&store, &purchases, Duration::from_secs(180)).await;
    let name = format!("cluster, node {leader} (stream leader) killed");
    let figures = Figures::count(&name, &app, &store, &purchases, started.elapsed(), deliveries).await;
    figures.assert_exactly_once();
    assert_eq!(store.tenants().await.unwrap().len(), purchases.len());

    drop(store);
    for p in &purchases {
        app.drop_tenant_db(&p.slug).await;
    }
    drop_database(&cp_name).await;
}
