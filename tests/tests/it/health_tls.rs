//! The health check speaks HTTPS and trusts what the machine trusts: the system roots and `SSL_CERT_FILE`.
//! A worker process is used because `SSL_CERT_FILE` is read from its environment, as in production.

use std::time::Duration;

use landlord_protocol::TenantStatus;
use landlord_tests::{Engine, Options, TestApp, chaos::WorkerProcess, tenant_db_url, tls::TlsServer, unique_slug};

use crate::chaos::harness::{log, log_dir, worker_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_health_url_is_checked_with_the_roots_the_machine_trusts() {
    let tls = TlsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let control_plane = format!("sqlite://{}?mode=rwc", dir.path().join("landlord.db").display());
    let app = TestApp::spawn_with(Options {
        in_process_worker: false,
        control_plane: Some(control_plane.clone()),
        ..Options::new(Engine::MariaDb)
    })
    .await;
    let logs = log_dir("health_tls");
    let health = ("LANDLORD_HEALTH_URL", tls.url("/healthz?host={hostname}"));
    let deadline = ("LANDLORD_HEALTH_DEADLINE_SECS", "3".to_owned());
    let ca = ("SSL_CERT_FILE", tls.ca_file.display().to_string());

    // Trusting the test CA through SSL_CERT_FILE, the tenant's https health URL answers and it goes live.
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &[health.clone(), ca]);
    let mut trusting = WorkerProcess::spawn(&env, log(&logs, "trusting"));
    let slug = unique_slug("https");
    let tenant = app.buy(&slug, 10).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    let step = app.store.step(&tenant, landlord_worker::steps::StepName::HealthCheck).await.unwrap().unwrap();
    assert_eq!(step.status, "succeeded");
    trusting.kill();

    // Without it, the same server's certificate is refused, and the reason says why.
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &[health, deadline]);
    let _wary = WorkerProcess::spawn(&env, log(&logs, "wary"));
    let other = unique_slug("https");
    let refused = app.buy(&other, 10).await;
    let row = app.wait_for_status(&refused, TenantStatus::Failed).await;
    let reason = row.last_error.unwrap_or_default();
    assert!(reason.contains("certificate"), "{reason}");
    let step = app.store.step(&refused, landlord_worker::steps::StepName::HealthCheck).await.unwrap().unwrap();
    assert_eq!(step.status, "failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.drop_tenant_db(&slug).await;
    app.drop_tenant_db(&other).await;
}
