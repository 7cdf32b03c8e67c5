//! A plan without a script fails the tenant with a reason a person can act on.

use landlord_protocol::{EventKind, TenantId, TenantStatus};
use landlord_tests::{Engine, TestApp, checkout_event, plan_metadata, unique_slug};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_plan_script_fails_the_tenant_naming_the_file() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let slug = unique_slug("noscript");
    let session = format!("cs_test_{slug}");
    let res = app
        .post_signed(checkout_event(
            "evt_noscript",
            &session,
            plan_metadata(&slug, 9, 1),
        ))
        .await;
    assert_eq!(res.status(), 200);
    let tenant = TenantId::from_checkout_session(&session);
    let row = app.wait_for_status(&tenant, TenantStatus::Failed).await;
    let reason = row.last_error.unwrap();
    assert!(reason.contains("postgres/package-9-type-1.sql"), "{reason}");

    let events = app
        .events_until(&tenant, |e| {
            e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Failed)
        })
        .await;
    let failed = events
        .iter()
        .find(|e| e.kind == EventKind::StepFailed)
        .expect("a step_failed event");
    assert_eq!(failed.step.as_deref(), Some("apply_schema"));
    let error = failed.error.clone().unwrap();
    assert_eq!(
        (error.code.as_str(), error.retryable),
        ("script_missing", false)
    );
    // The step before it is recorded as done, so a retry resumes at apply_schema.
    let steps = app.store.steps(&tenant).await.unwrap();
    let status = |name: &str| {
        steps
            .iter()
            .find(|s| s.step == name)
            .map(|s| s.status.clone())
    };
    assert_eq!(status("create_database").as_deref(), Some("succeeded"));
    assert_eq!(status("apply_schema").as_deref(), Some("failed"));
    assert_eq!(status("activate"), None);
    app.drop_tenant_db(&slug).await;
}
