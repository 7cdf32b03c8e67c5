//! Graceful shutdown: SIGTERM during a step lets the step finish, stops the run at the next step
//! boundary, releases the worker's leases and exits; another worker resumes at the unfinished steps.

use std::time::{Duration, Instant};

use landlord_protocol::{EventKind, TenantStatus};
use landlord_tests::{
    Engine, Options, TestApp,
    chaos::{WorkerProcess, drop_database, eventually, fresh_postgres_database},
    tenant_db_url, unique_slug,
};
use landlord_worker::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::{deliver, log, purchase, wait_processed, worker_env};

/// An HTTP endpoint that answers 200 after `delay`: a tenant slow to come up.
async fn slow_health(delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _request_line = sock.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await.ok();
            });
        }
    });
    format!("http://{addr}/healthz")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_at_a_checkpoint_and_releases_the_lease() {
    let app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let (control_plane, cp_name) = fresh_postgres_database("chaosterm").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let logs = super::harness::log_dir("shutdown");
    let health = slow_health(Duration::from_secs(3)).await;
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &[("LANDLORD_HEALTH_URL", health)]);
    let mut first = WorkerProcess::spawn(&env, log(&logs, "first"));
    let p = purchase(&unique_slug("term"), 10);
    deliver(&app, &p).await;

    // SIGTERM while the health check waits on the slow tenant.
    eventually(Duration::from_secs(60), "the health check to start", || async {
        store
            .step(&p.tenant, landlord_worker::steps::StepName::HealthCheck)
            .await
            .unwrap()
            .is_some_and(|s| s.status == "started")
    })
    .await;
    let holder = store.lease_holder(&p.tenant).await.unwrap();
    assert!(holder.is_some(), "the running worker holds the tenant's lease");
    let signalled = Instant::now();
    first.terminate();
    let status = first.wait_exit(Duration::from_secs(20)).expect("the worker exits after SIGTERM");
    let took = signalled.elapsed();
    assert!(status.success(), "clean exit: {status:?}");
    println!("chaos sigterm: exited {:.1} s after SIGTERM (grace 5 s)", took.as_secs_f64());

    // The step in flight finished; the run stopped at the boundary before `activate`.
    assert_eq!(
        store.step(&p.tenant, landlord_worker::steps::StepName::HealthCheck).await.unwrap().unwrap().status,
        "succeeded"
    );
    assert!(
        store.step(&p.tenant, landlord_worker::steps::StepName::Activate).await.unwrap().is_none(),
        "activate was not started"
    );
    assert_eq!(store.tenant(&p.tenant).await.unwrap().unwrap().status, "provisioning");
    assert!(store.runs(&p.tenant).await.unwrap().iter().any(|r| r.status == "interrupted"));
    assert_eq!(store.lease_holder(&p.tenant).await.unwrap(), None, "the lease was released");

    // Another worker resumes at `activate`, without repeating the health check.
    let _second = WorkerProcess::spawn(&env, log(&logs, "second"));
    wait_processed(&store, std::slice::from_ref(&p), Duration::from_secs(60)).await;
    let steps = store.steps(&p.tenant).await.unwrap();
    let attempts = |n: &str| steps.iter().find(|s| s.step == n).unwrap().attempts;
    assert_eq!((attempts("health_check"), attempts("activate")), (1, 1));
    // The status event follows the run's record by a moment: wait for it, then count.
    let activations = || async {
        let events = super::harness::all_events(&app).await;
        events
            .iter()
            .filter(|e| {
                e.tenant_id == Some(p.tenant)
                    && e.kind == EventKind::StatusChanged
                    && e.status == Some(TenantStatus::Active)
            })
            .count()
    };
    landlord_tests::chaos::eventually(Duration::from_secs(10), "the active event", || async {
        activations().await > 0
    })
    .await;
    assert_eq!(activations().await, 1);

    drop(store);
    app.drop_tenant_db(&p.slug).await;
    drop_database(&cp_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_within_the_grace_while_the_dns_retrier_waits_on_route53() {
    let app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let (control_plane, cp_name) = fresh_postgres_database("chaosdns").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let logs = super::harness::log_dir("shutdown_dns");
    let route53 = landlord_tests::black_hole().await;
    let aws = |budget: &str, interval: &str| {
        vec![
            ("AWS_ENDPOINT_URL", route53.clone()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("LANDLORD_ROUTE53_ZONE_ID", "ZHANGS0000001".to_owned()),
            ("LANDLORD_DNS_TARGET", "lb.example.net".to_owned()),
            ("LANDLORD_DNS_BUDGET_SECS", budget.to_owned()),
            ("LANDLORD_DNS_RETRY_INTERVAL_SECS", interval.to_owned()),
        ]
    };

    // Route 53 never answers: within its 2 s budget the tenant goes live with its DNS deferred.
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &aws("2", "3600"));
    let mut first = WorkerProcess::spawn(&env, log(&logs, "first"));
    let p = purchase(&unique_slug("dnsterm"), 10);
    deliver(&app, &p).await;
    wait_processed(&store, std::slice::from_ref(&p), Duration::from_secs(60)).await;
    assert!(store.tenant(&p.tenant).await.unwrap().unwrap().dns_pending, "DNS deferred, not failed");
    first.kill();

    // A worker whose retrier takes the tenant's lease and then waits on Route 53 (budget 120 s)...
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &aws("120", "1"));
    let mut second = WorkerProcess::spawn(&env, log(&logs, "second"));
    eventually(Duration::from_secs(60), "the DNS retrier to take the tenant's lease", || async {
        store.lease_holder(&p.tenant).await.unwrap().is_some_and(|h| h.ends_with(&format!("/dns-retry/{}", p.tenant)))
    })
    .await;
    // ...still ends within its 5 s grace when told to stop, and gives the lease back.
    let signalled = Instant::now();
    second.terminate();
    let status = second.wait_exit(Duration::from_secs(20)).expect("the worker exits after SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");
    println!(
        "chaos sigterm during DNS retry: exited {:.1} s after SIGTERM (grace 5 s)",
        signalled.elapsed().as_secs_f64()
    );
    assert_eq!(store.lease_holder(&p.tenant).await.unwrap(), None, "the retrier's lease was released");
    assert!(store.tenant(&p.tenant).await.unwrap().unwrap().dns_pending, "still pending, retried by the next worker");

    drop(store);
    app.drop_tenant_db(&p.slug).await;
    drop_database(&cp_name).await;
}

/// A worker told to stop while NATS is gone does not wait for it: the progress events still in its buffer
/// are given up after a short wait instead of holding the process until NATS returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_nats_is_gone_still_ends() {
    let mut app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let (control_plane, cp_name) = fresh_postgres_database("chaosnonats").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let logs = super::harness::log_dir("shutdown-no-nats");
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &[]);
    let mut worker = WorkerProcess::spawn(&env, log(&logs, "worker"));
    let p = purchase(&unique_slug("nonats"), 10);
    deliver(&app, &p).await;
    wait_processed(&store, std::slice::from_ref(&p), Duration::from_secs(60)).await;

    app.nats.as_mut().expect("a private nats-server").kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    worker.terminate();
    let status = worker.wait_exit(Duration::from_secs(30)).expect("the worker exits after SIGTERM with NATS gone");
    assert!(status.success(), "clean exit: {status:?}");
    println!("chaos sigterm without NATS: exited {:.1} s after SIGTERM (grace 5 s)", signalled.elapsed().as_secs_f64());

    drop(store);
    app.drop_tenant_db(&p.slug).await;
    drop_database(&cp_name).await;
}
