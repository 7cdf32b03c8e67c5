//! `landlord watch TENANT` as a script uses it: it follows the tenant's steps and answers with its exit
//! code, 0 once active, 1 when it failed (with the reason), 2 when it waits for an operator; a tenant that
//! is already settled answers at once; NATS out of reach is 3.

use std::time::Duration;

use landlord_protocol::{TenantId, TenantStatus};
use landlord_tests::{Engine, TestApp, chaos::workspace_bin, unique_slug};

async fn watch(app: &TestApp, tenant: &TenantId) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(workspace_bin("landlord"))
            .args(["watch", &tenant.to_string(), "--plain"])
            .env("LANDLORD_NATS_URL", &app.nats_url)
            .env("LANDLORD_LOG", "warn")
            .output(),
    )
    .await
    .expect("watch ends by itself")
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_answers_with_the_tenants_fate() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let good_slug = unique_slug("watch");
    let good = app.buy(&good_slug, 10).await;
    // Started at once: it follows the provisioning live to the end.
    let (code, stdout, _) = watch(&app, &good).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("create_database") && stdout.contains("is active"), "{stdout}");
    // Again, now that it is settled: it answers from history at once.
    assert_eq!(watch(&app, &good).await.0, 0);

    let broken_slug = unique_slug("watchbad");
    let broken = app.buy(&broken_slug, 8).await;
    app.wait_for_status(&broken, TenantStatus::Failed).await;
    let (code, _, stderr) = watch(&app, &broken).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("failed"), "with the reason: {stderr}");

    let waiting = app.buy(&unique_slug("watchops"), 40).await;
    let (code, _, stderr) = watch(&app, &waiting).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("dedicated"), "{stderr}");

    let out = tokio::process::Command::new(workspace_bin("landlord"))
        .args(["watch", &good.to_string(), "--plain"])
        .env("LANDLORD_NATS_URL", "nats://127.0.0.1:1")
        .env("LANDLORD_LOG", "off")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    app.drop_tenant_db(&good_slug).await;
    app.drop_tenant_db(&broken_slug).await;
}
