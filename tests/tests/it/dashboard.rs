//! The dashboard in real headless Chromium: the token is entered once; a provisioning is started and its
//! steps turn green live on the tenant's page (the health check is held back a few seconds, so the page is
//! seen half-way); a tenant whose plan script is missing shows the reason on top; the retry button, after
//! a confirmation naming the tenant, resumes it once the script is there. A screenshot is saved under
//! `target/`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use landlord_protocol::TenantStatus;
use landlord_tests::{ADMIN_TOKEN, Engine, Options, TestApp, browser::Browser, repo_root, unique_slug};

/// A health URL that answers 503 until `open` is set, then 200.
async fn held_health_server(open: Arc<AtomicBool>) -> String {
    use axum::{Router, http::StatusCode, routing::get};
    let app = Router::new().route(
        "/healthz",
        get(move || {
            let open = open.clone();
            async move { if open.load(Ordering::Relaxed) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE } }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    url
}

/// The state the page shows for `step` in the newest run, if it shows the step.
const STEP_STATE: &str = "const run = document.querySelector('#timeline .run'); \
    const line = run && run.querySelector(`.step[data-step='${arguments[0]}']`); \
    return line ? line.dataset.state : null;";

/// The newest run shows the database made and the schema applied while the health check still runs.
const HALF_WAY: &str = "const run = document.querySelector('#timeline .run'); \
    const state = (n) => { const l = run && run.querySelector(`.step[data-step='${n}']`); return l ? l.dataset.state : null; }; \
    return state('create_database') === 'succeeded' && state('apply_schema') === 'succeeded' \
      && ['running', 'retrying'].includes(state('health_check'));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_steps_live_shows_the_reason_and_retries_after_a_confirmation() {
    let scripts = tempfile::tempdir().unwrap();
    for dialect in ["mysql", "postgres"] {
        let from = repo_root().join("sql-scripts").join(dialect);
        std::fs::create_dir(scripts.path().join(dialect)).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), scripts.path().join(dialect).join(entry.file_name())).unwrap();
        }
    }
    let open = Arc::new(AtomicBool::new(false));
    let mut opts = Options { scripts: scripts.path().to_path_buf(), ..Options::new(Engine::MariaDb) };
    opts.infra.health_url = Some(held_health_server(open.clone()).await);
    opts.worker = |cfg, infra| cfg.health_url = infra.health_url.clone();
    let app = TestApp::spawn_with(opts).await;
    let browser = Browser::start(1280, 900).await;

    // The token, entered once in the page.
    browser.goto(&format!("{}/", app.base_url)).await;
    browser.wait_for("the token form", Duration::from_secs(20), "return document.querySelector('form.login');").await;
    browser.type_into("form.login input[name=token]", ADMIN_TOKEN).await;
    browser.click("form.login button").await;
    browser.wait_for("the tenant list", Duration::from_secs(20), "return document.querySelector('#tenants');").await;

    // A provisioning, followed live on its page: earlier steps turn green while the health check waits.
    let slug = unique_slug("dash");
    let tenant = app.buy(&slug, 10).await;
    browser.goto(&format!("{}/#/tenants/{tenant}", app.base_url)).await;
    browser.wait_for("create_database done while health_check runs", Duration::from_secs(60), HALF_WAY).await;
    // The health check is held: the tenant is still provisioning, and the page says so.
    browser
        .wait_for(
            "the tenant provisioning",
            Duration::from_secs(20),
            "const b = document.querySelector('#tenant h2 .badge'); return b && b.textContent === 'provisioning';",
        )
        .await;
    assert_eq!(browser.eval(HALF_WAY, serde_json::json!([])).await, true, "still half-way");
    open.store(true, Ordering::Relaxed);
    browser
        .wait_for(
            "the tenant active",
            Duration::from_secs(60),
            "const b = document.querySelector('#tenant h2 .badge'); return b && b.textContent === 'active';",
        )
        .await;
    for step in ["place_database", "create_database", "apply_schema", "health_check", "activate"] {
        let state = browser.eval(STEP_STATE, serde_json::json!([step])).await;
        assert_eq!(state, "succeeded", "{step}");
    }
    let shot = repo_root().join("target/dashboard.png");
    browser.screenshot(&shot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a real screenshot");

    // A tenant whose plan script is missing: the reason is on top, with the failing step.
    let broken_slug = unique_slug("dashbad");
    let broken = app.buy(&broken_slug, 9).await;
    app.wait_for_status(&broken, TenantStatus::Failed).await;
    browser.goto(&format!("{}/#/tenants/{broken}", app.base_url)).await;
    let reason = browser
        .wait_for(
            "the failing reason",
            Duration::from_secs(20),
            "const r = document.querySelector('#reason'); return r && r.textContent;",
        )
        .await;
    let reason = reason.as_str().unwrap().to_owned();
    assert!(reason.contains("apply_schema") && reason.contains("package-9-type-10"), "{reason}");
    // The list shows it failing at that step.
    browser.goto(&format!("{}/#/?status=failed", app.base_url)).await;
    let row = browser
        .wait_for(
            "the failed tenant listed",
            Duration::from_secs(20),
            &format!("const r = document.querySelector(\"tr[data-tenant='{broken}']\"); return r && r.textContent;"),
        )
        .await;
    assert!(row.as_str().unwrap().contains("apply_schema (failed)"), "{row}");

    // The script arrives; retry, confirmed with the tenant named, resumes it to active.
    std::fs::write(scripts.path().join("mysql/package-9-type-10.sql"), "CREATE TABLE notes (id INT PRIMARY KEY);\n")
        .unwrap();
    browser.goto(&format!("{}/#/tenants/{broken}", app.base_url)).await;
    browser
        .wait_for(
            "the retry button",
            Duration::from_secs(20),
            "return document.querySelector(\"button[data-action='retry']\");",
        )
        .await;
    browser.click("button[data-action='retry']").await;
    let asked = browser.accept_confirmation().await;
    assert!(
        asked.contains(&broken_slug) && asked.contains(&broken.to_string()),
        "the confirmation names the tenant: {asked}"
    );
    browser
        .wait_for(
            "the retried tenant active",
            Duration::from_secs(60),
            "const b = document.querySelector('#tenant h2 .badge'); return b && b.textContent === 'active';",
        )
        .await;
    assert_eq!(app.store.tenant(&broken).await.unwrap().unwrap().status, "active");
    println!("dashboard: live steps, failing reason, retry; screenshot {}", shot.display());
    app.drop_tenant_db(&slug).await;
    app.drop_tenant_db(&broken_slug).await;
}
