//! Offboarding, on MariaDB and PostgreSQL, with the archive in a folder and in S3 (moto): the tenant's
//! final dump is taken with its login locked, then its stack, DNS records, database, login and stored
//! password are removed; the tenant row and its history stay, `deleted`. The dump restores into a fresh
//! database with every row. Only what Landlord made is removed.

use landlord_protocol::{Action, Command, CommandId, EventKind, TenantId, TenantStatus};
use landlord_tests::{Engine, Infra, MotoServer, TestApp, count_databases, restore_dump, scalar, unique_slug};
use landlord_worker::{steps::StepName, store::ResourceKind};
use sea_orm::ConnectionTrait;

use crate::infra::{create_zone, records, spawn_on_moto, template};

async fn ask(app: &TestApp, tenant: TenantId, action: Action) -> Command {
    let id = CommandId::parse(&format!("admin:{}", uuid::Uuid::new_v4())).unwrap();
    let cmd = Command::new(id, tenant, "ops-test", action);
    app.bus.publish_command(&cmd).await.unwrap();
    cmd
}

/// How many logins of that name the server has.
async fn logins(app: &TestApp, engine: Engine, login: &str) -> i64 {
    let (sql, backend) = match engine {
        Engine::MariaDb => ("SELECT COUNT(*) AS n FROM mysql.user WHERE user = ?", sea_orm::DbBackend::MySql),
        Engine::Postgres => ("SELECT COUNT(*) AS n FROM pg_roles WHERE rolname = $1", sea_orm::DbBackend::Postgres),
    };
    let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, [login.into()]);
    let row = app.tenant_db.admin().query_one_raw(stmt).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Creates an empty database as the administrator, restores `dump` into it, and returns a connection.
async fn restored(app: &TestApp, engine: Engine, dump: &std::path::Path, db: &str) -> sea_orm::DatabaseConnection {
    app.tenant_db.admin().execute_unprepared(&format!("CREATE DATABASE {db}")).await.unwrap();
    restore_dump(engine, dump, db);
    let mut url = url::Url::parse(&landlord_tests::tenant_db_url(engine)).unwrap();
    url.set_path(&format!("/{db}"));
    sea_orm::Database::connect(url.to_string()).await.unwrap()
}

async fn offboard_with_a_folder_archive(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let slug = unique_slug("leave");
    let tenant = app.buy(&slug, 30).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let (db, login) = (row.db_name.clone().unwrap(), row.db_login.clone().unwrap());
    let open = app.connect_as_tenant(engine, &row, &db).await.unwrap();
    open.execute_unprepared("INSERT INTO customers (email, full_name) VALUES ('last@shop.example', 'Zoë Ünal')")
        .await
        .unwrap();

    let cmd = ask(&app, tenant, Action::Offboard(Default::default())).await;
    let gone = app.wait_for_status(&tenant, TenantStatus::Deleted).await;
    let events = app
        .events_until(&tenant, |e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Deleted))
        .await;
    let done = |kind: EventKind| -> Vec<String> {
        events.iter().filter(|e| e.kind == kind).filter_map(|e| e.step.clone()).collect()
    };
    let (succeeded, skipped) = (done(EventKind::StepSucceeded), done(EventKind::StepSkipped));
    for step in ["archive_database", "drop_database", "forget_credentials"] {
        assert!(succeeded.iter().any(|s| s == step), "{engine:?}: {step} in {succeeded:?}");
    }
    // No zone and no template here: nothing of DNS or a stack was made, so there is nothing to remove.
    for step in ["delete_stack", "remove_dns"] {
        assert!(skipped.iter().any(|s| s == step), "{engine:?}: {step} in {skipped:?}");
    }
    assert!(
        events.iter().any(|e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Offboarding)),
        "{engine:?}: the tenant was offboarding first: {events:#?}"
    );

    // The open session was ended before the dump; the database and the login are gone.
    assert!(open.execute_unprepared("SELECT 1").await.is_err(), "{engine:?}: the session was ended");
    assert_eq!(count_databases(&app, engine, &db).await, 0, "{engine:?}: database dropped");
    assert_eq!(logins(&app, engine, &login).await, 0, "{engine:?}: login dropped");
    // The row stays for the record, without the password; the claims are released, the archive's kept.
    assert_eq!(gone.db_password, None);
    assert_eq!((gone.db_name.as_deref(), gone.store_name.is_empty()), (Some(db.as_str()), false));
    assert_eq!(app.store.resource_owner(ResourceKind::Database, &db).await.unwrap(), None);
    assert_eq!(app.store.resource_owner(ResourceKind::Login, &login).await.unwrap(), None);
    let dump = std::path::PathBuf::from(&app.worker_config.archive).join(tenant.to_string()).join(format!("{db}.sql"));
    let archive = dump.display().to_string();
    assert_eq!(app.store.resource_owner(ResourceKind::Archive, &archive).await.unwrap(), Some(tenant));
    let archived = app.store.step(&tenant, StepName::ArchiveDatabase).await.unwrap().unwrap();
    assert_eq!(archived.status, "succeeded");

    // The dump restores into a fresh database with the customer's row and the plan's tables.
    let copy = format!("restore_{}", slug.replace('-', "_"));
    let conn = restored(&app, engine, &dump, &copy).await;
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM customers WHERE full_name = 'Zoë Ünal'").await, 1);
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM products").await, 2);
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM discount_codes").await, 1);
    conn.close().await.ok();
    app.tenant_db.admin().execute_unprepared(&format!("DROP DATABASE {copy}")).await.unwrap();

    // The same command again, a new offboarding, or a retry change nothing: the tenant is deleted.
    assert!(app.store.is_processed(cmd.id.as_str()).await.unwrap());
    // One after the other: two commands for one tenant at once would wait on its lease.
    for action in [Action::Offboard(Default::default()), Action::Retry] {
        let cmd = ask(&app, tenant, action).await;
        landlord_tests::chaos::eventually(std::time::Duration::from_secs(30), "handled", || async {
            app.store.is_processed(cmd.id.as_str()).await.unwrap()
        })
        .await;
    }
    let events = app.events_until(&tenant, |e| e.kind == EventKind::Rejected).await;
    assert!(events.last().unwrap().error.clone().unwrap().message.contains("is deleted"), "{events:#?}");
    assert_eq!(app.store.tenant(&tenant).await.unwrap().unwrap().status, "deleted");
    assert_eq!(count_databases(&app, engine, &db).await, 0, "{engine:?}: nothing was made again");

    // Past its retention the dump is deleted and its record forgotten; a younger one is kept.
    let policy = landlord_worker::retention::Retention { archive_days: 30, ..Default::default() };
    let target = landlord_worker::archive::ArchiveTarget::Folder(app.worker_config.archive.clone().into());
    assert_eq!(policy.prune_archives(&app.store, &target).await.unwrap(), 0, "a fresh dump is kept");
    let aged = sea_orm::Statement::from_sql_and_values(
        app.store.connection().get_database_backend(),
        "UPDATE tenant_resources SET claimed_at = ? WHERE kind = 'archive' AND name = ?",
        [(chrono::Utc::now() - chrono::Duration::days(31)).into(), archive.clone().into()],
    );
    app.store.connection().execute_raw(aged).await.unwrap();
    assert_eq!(policy.prune_archives(&app.store, &target).await.unwrap(), 1);
    assert!(!dump.exists(), "{engine:?}: the dump past its retention is deleted");
    assert_eq!(app.store.resource_owner(ResourceKind::Archive, &archive).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_archives_then_removes_what_landlord_made_on_mariadb() {
    Box::pin(offboard_with_a_folder_archive(Engine::MariaDb)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_archives_then_removes_what_landlord_made_on_postgres() {
    Box::pin(offboard_with_a_folder_archive(Engine::Postgres)).await;
}

/// The whole tenant on AWS (moto): the dump goes to S3 with its retention date, the DNS records and the
/// stack are deleted. A record of the same zone that is not the tenant's stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_a_tenant_with_dns_and_a_stack_archives_to_s3() {
    let moto = MotoServer::start();
    let aws = moto.sdk_config().await;
    let s3 = landlord_worker::infra::s3_client(&aws);
    let bucket = unique_slug("archive");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let zone = create_zone(&aws, "tenants.example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let template_path = dir.path().join("tenant.json");
    let infra = Infra {
        zone_id: Some(zone.clone()),
        template: Some(template_path.display().to_string()),
        archive: Some(format!("s3://{bucket}/final/")),
        ..Infra::default()
    };
    let app = spawn_on_moto(&aws, infra, Engine::Postgres).await;
    std::fs::write(&template_path, template(&format!("{}/healthz", app.base_url), "")).unwrap();

    let slug = unique_slug("leaves3");
    let tenant = app.buy(&slug, 20).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    assert_eq!(records(&aws, &zone, &slug).await.len(), 2);
    let db = row.db_name.clone().unwrap();

    ask(&app, tenant, Action::Offboard(Default::default())).await;
    app.wait_for_status(&tenant, TenantStatus::Deleted).await;
    assert!(records(&aws, &zone, &slug).await.is_empty(), "the tenant's records are deleted");
    let cfn = aws_sdk_cloudformation::Client::new(&aws);
    let stack = cfn.describe_stacks().stack_name(row.stack_id.clone().unwrap()).send().await;
    let deleted = stack.map(|s| s.stacks()[0].stack_status().unwrap().as_str() == "DELETE_COMPLETE").unwrap_or(true);
    assert!(deleted, "the stack is deleted");

    let key = format!("final/{tenant}/{db}.sql");
    let object = s3.get_object().bucket(&bucket).key(&key).send().await.unwrap();
    let retain = object.metadata().and_then(|m| m.get("landlord-retain-until")).cloned().unwrap();
    let retain = chrono::DateTime::parse_from_rfc3339(&retain).unwrap();
    let days = (retain.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((89..=90).contains(&days), "kept 90 days by default: {days}");
    let body = object.body.collect().await.unwrap().into_bytes();
    let file = dir.path().join("dump.sql");
    std::fs::write(&file, &body).unwrap();
    let copy = format!("restore_{}", slug.replace('-', "_"));
    let conn = restored(&app, Engine::Postgres, &file, &copy).await;
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM products").await, 2);
    conn.close().await.ok();
    app.tenant_db.admin().execute_unprepared(&format!("DROP DATABASE {copy}")).await.unwrap();
    assert_eq!(
        app.store.resource_owner(ResourceKind::Archive, &format!("s3://{bucket}/{key}")).await.unwrap(),
        Some(tenant)
    );
}

/// A tenant whose provisioning failed (its database undone by compensation) is offboarded too: there is
/// nothing to dump, and only its DNS and stack (none here) would be removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_tenant_is_offboarded_without_a_dump() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let slug = unique_slug("failedleave");
    let tenant = app.buy(&slug, 9).await;
    app.wait_for_status(&tenant, TenantStatus::Failed).await;
    ask(&app, tenant, Action::Offboard(Default::default())).await;
    app.wait_for_status(&tenant, TenantStatus::Deleted).await;
    let events = app
        .events_until(&tenant, |e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Deleted))
        .await;
    let archive = events
        .iter()
        .find(|e| e.step.as_deref() == Some("archive_database") && e.kind == EventKind::StepSkipped)
        .expect("the dump is skipped");
    assert!(archive.message.clone().unwrap().contains("nothing to archive"), "{archive:?}");
}
