//! Permanent failures: the tenant fails with a reason a person can act on, compensation undoes what
//! policy says (the database), and a retry — by the admin API or a NATS message — resumes the tenant.

use landlord_protocol::{EventKind, TenantId, TenantSlug, TenantStatus};
use landlord_tests::{Engine, Options, TestApp, scalar, unique_slug};
use landlord_worker::{names::DatabaseName, tenant_db::no_hook};

async fn database_exists(app: &TestApp, slug: &str) -> bool {
    app.tenant_db.database_exists(&DatabaseName::for_slug(&TenantSlug::parse(slug).unwrap())).await.unwrap()
}

async fn step_status(app: &TestApp, tenant: &TenantId, step: &str) -> Option<String> {
    app.store.step(tenant, landlord_worker::steps::StepName::parse(step).unwrap()).await.unwrap().map(|s| s.status)
}

/// A Landlord whose scripts folder lacks plan 9/1, and a tenant of that plan that failed for it.
async fn failed_for_a_missing_script() -> (TestApp, tempfile::TempDir, String, TenantId) {
    let scripts = tempfile::tempdir().unwrap();
    std::fs::create_dir(scripts.path().join("postgres")).unwrap();
    let app =
        TestApp::spawn_with(Options { scripts: scripts.path().to_owned(), ..Options::new(Engine::Postgres) }).await;
    let slug = unique_slug("noscript");
    let tenant = app.buy(&slug, 9).await;
    app.wait_for_status(&tenant, TenantStatus::Failed).await;
    (app, scripts, slug, tenant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_script_fails_the_tenant_and_drops_its_half_made_database() {
    let (app, _scripts, slug, tenant) = failed_for_a_missing_script().await;
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    let reason = row.last_error.unwrap();
    assert!(reason.contains("postgres/package-9-type-10.sql"), "{reason}");

    let events = app
        .events_until(&tenant, |e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Failed))
        .await;
    let failed = events.iter().find(|e| e.kind == EventKind::StepFailed).expect("a step_failed event");
    assert_eq!(failed.step.as_deref(), Some("apply_schema"));
    let error = failed.error.clone().unwrap();
    assert_eq!((error.code.as_str(), error.retryable), ("script_missing", false));
    let undone = events.iter().find(|e| e.kind == EventKind::StepUndone).expect("a step_undone event");
    assert_eq!(undone.step.as_deref(), Some("create_database"));
    assert!(events.last().unwrap().message.as_deref().unwrap().contains("undone: create_database"));
    // The half-made database is gone, and both steps will run again.
    assert!(!database_exists(&app, &slug).await);
    assert_eq!(step_status(&app, &tenant, "create_database").await.as_deref(), Some("undone"));
    assert_eq!(step_status(&app, &tenant, "apply_schema").await.as_deref(), Some("undone"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_retry_needs_a_valid_token_and_a_tenant_id() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let tenant = TenantId::new_random();
    let anonymous = app.http.post(format!("{}/v1/tenants/{tenant}/provision", app.base_url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = app
        .http
        .post(format!("{}/v1/tenants/{tenant}/provision", app.base_url))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let bad_id = app
        .http
        .post(format!("{}/v1/tenants/x';--/provision", app.base_url))
        .bearer_auth(landlord_tests::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status(), 400);
    let stream = app.bus.jetstream().get_stream("LANDLORD_COMMANDS").await.unwrap();
    assert_eq!(stream.get_info().await.unwrap().state.messages, 0, "nothing was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_retry_after_the_script_is_added_resumes_the_tenant() {
    let (app, scripts, slug, tenant) = failed_for_a_missing_script().await;
    std::fs::copy(
        landlord_tests::repo_root().join("sql-scripts/postgres/package-10-type-10.sql"),
        scripts.path().join("postgres/package-9-type-10.sql"),
    )
    .unwrap();
    assert_eq!(app.request_retry(&tenant).await.status(), 202);
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    assert_eq!(row.last_error, None);
    assert!(database_exists(&app, &slug).await);
    let steps = app.store.steps(&tenant).await.unwrap();
    let attempts = |n: &str| steps.iter().find(|s| s.step == n).unwrap().attempts;
    assert_eq!((attempts("create_database"), attempts("apply_schema"), attempts("activate")), (2, 2, 1));
    assert_eq!(app.store.runs(&tenant).await.unwrap().len(), 2);
    app.drop_tenant_db(&slug).await;
}

/// On MariaDB, DDL commits as it goes: a script failing half-way leaves tables behind. Compensation drops
/// the database; after the script is fixed, a retry published on NATS builds it from scratch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_failing_half_way_drops_the_database_and_a_nats_retry_rebuilds_it() {
    let scripts = tempfile::tempdir().unwrap();
    std::fs::create_dir(scripts.path().join("mysql")).unwrap();
    let script = scripts.path().join("mysql/package-8-type-10.sql");
    std::fs::write(
        &script,
        "CREATE TABLE first_half (id INT);\nINSERT INTO first_half VALUES (1);\nCREATE TABLE broken (id INT,);\n",
    )
    .unwrap();
    let app =
        TestApp::spawn_with(Options { scripts: scripts.path().to_owned(), ..Options::new(Engine::MariaDb) }).await;
    let slug = unique_slug("halfway");
    let tenant = app.buy(&slug, 8).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Failed).await;
    let reason = row.last_error.unwrap();
    assert!(reason.contains("statement 3 (line 3)") && reason.contains("package-8-type-10.sql"), "{reason}");
    assert!(!database_exists(&app, &slug).await, "the half-built database was dropped");

    std::fs::write(
        &script,
        "CREATE TABLE first_half (id INT);\nINSERT INTO first_half VALUES (1);\nCREATE TABLE fixed (id INT);\n",
    )
    .unwrap();
    let retry = landlord_protocol::Command::new(
        landlord_protocol::CommandId::parse("admin:nats-retry-1").unwrap(),
        tenant,
        "ops",
        landlord_protocol::Action::Retry,
    );
    app.bus.publish_command(&retry).await.unwrap();
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let conn = app.connect_as_tenant(Engine::MariaDb, &row, row.db_name.as_deref().unwrap()).await.unwrap();
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM first_half").await, 1, "built once, not twice");
    conn.close().await.ok();
    app.drop_tenant_db(&slug).await;
}

/// A retry naming a tenant Landlord does not know gets 404 at the API, and one sent on NATS is rejected
/// with a reason and not redelivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_an_unknown_tenant_is_rejected() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let tenant = TenantId::new_random();
    assert_eq!(app.request_retry(&tenant).await.status(), 404);
    let id = landlord_protocol::CommandId::parse("admin:retry-unknown").unwrap();
    let cmd = landlord_protocol::Command::new(id, tenant, "ops-test", landlord_protocol::Action::Retry);
    app.bus.publish_command(&cmd).await.unwrap();
    let events = app.events_until(&tenant, |e| e.kind == EventKind::Rejected).await;
    let error = events.last().unwrap().error.clone().unwrap();
    assert!(error.message.contains("no tenant") && !error.retryable, "{error:?}");
    let stream = app.bus.jetstream().get_stream("LANDLORD_COMMANDS").await.unwrap();
    landlord_tests::chaos::eventually(
        std::time::Duration::from_secs(10),
        "the rejected command to leave the stream",
        || {
            let stream = stream.clone();
            async move { stream.clone().get_info().await.unwrap().state.messages == 0 }
        },
    )
    .await;
}

/// The schema marker on MariaDB, whose DDL commits statement by statement: an empty marker table (an
/// attempt stopped between creating and filling it) is cleared and the script applied; the same script
/// again is a no-op; a different script is refused for a person to decide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_schema_attempt_is_cleared_and_a_different_schema_refused() {
    use landlord_worker::{
        names::LoginName,
        scripts::{Dialect, ScriptSource, split},
        tenant_db::Applied,
    };
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn(Engine::MariaDb).await;
    let slug = TenantSlug::parse(&unique_slug("marker")).unwrap();
    let (db, login) = (DatabaseName::for_slug(&slug), LoginName::for_slug(&slug));
    let password: secrecy::SecretString = "x".repeat(32).into();
    app.tenant_db.create_database(&db, &login, &password).await.unwrap();
    // Leftovers of an interrupted attempt: a table from the script and an empty marker.
    let admin = app.tenant_db.admin();
    admin.execute_unprepared(&format!("CREATE TABLE {}.store_settings (k INT)", db.mysql())).await.unwrap();
    admin
        .execute_unprepared(&format!(
            "CREATE TABLE {}._landlord_schema (script VARCHAR(255), sha256 CHAR(64))",
            db.mysql()
        ))
        .await
        .unwrap();

    let scripts = ScriptSource::Folder(landlord_tests::repo_root().join("sql-scripts"));
    let plan = |p: &str| landlord_protocol::PackageId::parse(p).unwrap();
    let kind = landlord_protocol::SubscriptionTypeId::parse("10").unwrap();
    let script = scripts.load(Dialect::MySql, plan("10"), kind).await.unwrap();
    let statements = split(&script.sql, Dialect::MySql).unwrap();
    let applied = app.tenant_db.apply_script(&db, &login, &password, &script, &statements, &no_hook).await.unwrap();
    assert_eq!(applied, Applied::Now { statements: statements.len() });
    let again = app.tenant_db.apply_script(&db, &login, &password, &script, &statements, &no_hook).await.unwrap();
    assert_eq!(again, Applied::Already);

    let other = scripts.load(Dialect::MySql, plan("20"), kind).await.unwrap();
    let other_statements = split(&other.sql, Dialect::MySql).unwrap();
    let conflict =
        app.tenant_db.apply_script(&db, &login, &password, &other, &other_statements, &no_hook).await.unwrap_err();
    assert_eq!((conflict.code.as_str(), conflict.is_transient()), ("schema_conflict", false));
    app.tenant_db.drop_database(&db, &login).await.unwrap();
}

/// A tenant database URL whose login the server refuses (a wrong user or password) is a mistake in the
/// settings, not an outage: the tenant fails at once with a reason naming the setting, instead of
/// retrying for ever. Checked on both engines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_database_login_fails_the_tenant_at_once_with_the_setting_named() {
    for engine in [Engine::MariaDb, Engine::Postgres] {
        let opts = Options {
            worker: |cfg, _| {
                let mut url = url::Url::parse(secrecy::ExposeSecret::expose_secret(&cfg.tenant_db_url)).unwrap();
                url.set_username("landlord_no_such_login").unwrap();
                url.set_password(Some("wrong")).unwrap();
                cfg.tenant_db_url = url.to_string().into();
            },
            ..Options::new(engine)
        };
        let app = TestApp::spawn_with(opts).await;
        let slug = unique_slug("badlogin");
        let tenant = app.buy(&slug, 10).await;
        let row = app.wait_for_status(&tenant, TenantStatus::Failed).await;
        let reason = row.last_error.unwrap();
        assert!(reason.contains("LANDLORD_TENANT_DB_URL"), "{engine:?}: {reason}");
        assert!(!reason.contains("wrong"), "{engine:?}: the password is not repeated: {reason}");
        let step = app.store.step(&tenant, landlord_worker::steps::StepName::CreateDatabase).await.unwrap().unwrap();
        assert_eq!(step.error_code.as_deref(), Some("database_login_refused"));
        // A connection attempt that times out (a server slow to answer on a loaded machine) is retried; the
        // refusal itself is not: it ends the step at once, long before the retry policy runs out.
        assert!(step.attempts <= 2, "{engine:?}: a refused login is not retried ({} attempts)", step.attempts);
    }
}
