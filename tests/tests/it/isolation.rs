//! Tenants are isolated from each other and from Landlord's own powers: a login reaches its own database
//! only (even when another tenant's name differs by a character a grant treats as a wildcard), holds a
//! bounded number of connections, and the plan script runs as that login, so whoever writes scripts gains
//! nothing beyond the one tenant. Passwords never travel as statement text.

use landlord_protocol::TenantStatus;
use landlord_tests::{Engine, Options, TestApp, chaos::MariaDbServer, scalar, unique_slug};
use sea_orm::ConnectionTrait;
use secrecy::ExposeSecret;

async fn refused(app: &TestApp, engine: Engine, who: &landlord_worker::store::entities::tenant::Model, db: &str) {
    match app.connect_as_tenant(engine, who, db).await {
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("denied") || e.contains("permission"), "{engine:?}: unexpected error {e}");
        }
        Ok(conn) => {
            // Some servers accept the connection and refuse the first use; either way nothing is reachable.
            let created = conn.execute_unprepared("CREATE TABLE stolen (x INT)").await;
            panic!("{engine:?}: {} reached {db} (create table: {created:?})", who.slug);
        }
    }
}

async fn each_login_reaches_only_its_own_database(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let base = unique_slug("iso");
    // On MariaDB `_` matches any character in a database-level grant: `tenant_…_ab_c` would open `…_abxc`.
    let (a_slug, b_slug) = (format!("{base}-ab-c"), format!("{base}-abxc"));
    let (a, b) = (app.buy(&a_slug, 10).await, app.buy(&b_slug, 10).await);
    let a_row = app.wait_for_status(&a, TenantStatus::Active).await;
    let b_row = app.wait_for_status(&b, TenantStatus::Active).await;
    let (a_db, b_db) = (a_row.db_name.clone().unwrap(), b_row.db_name.clone().unwrap());

    let own = app.connect_as_tenant(engine, &a_row, &a_db).await.expect("a reaches its own database");
    assert_eq!(scalar(&own, "SELECT COUNT(*) AS n FROM products").await, 2);
    refused(&app, engine, &a_row, &b_db).await;
    refused(&app, engine, &b_row, &a_db).await;
    own.close().await.ok();
    app.drop_tenant_db(&a_slug).await;
    app.drop_tenant_db(&b_slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mariadb_a_login_reaches_only_its_own_database_when_names_differ_by_a_wildcard() {
    Box::pin(each_login_reaches_only_its_own_database(Engine::MariaDb)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_login_reaches_only_its_own_database_when_names_differ_by_a_wildcard() {
    Box::pin(each_login_reaches_only_its_own_database(Engine::Postgres)).await;
}

/// `LANDLORD_TENANT_MAX_CONNECTIONS` becomes the login's own limit on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_login_holds_at_most_the_configured_connections() {
    for engine in [Engine::MariaDb, Engine::Postgres] {
        let opts = Options { worker: |cfg, _| cfg.tenant_max_connections = 3, ..Options::new(engine) };
        let app = TestApp::spawn_with(opts).await;
        let slug = unique_slug("connlimit");
        let tenant = app.buy(&slug, 10).await;
        let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
        let login = row.db_login.clone().unwrap();
        let sql = match engine {
            Engine::MariaDb => format!("SELECT max_user_connections AS n FROM mysql.user WHERE user = '{login}'"),
            Engine::Postgres => format!("SELECT rolconnlimit::bigint AS n FROM pg_roles WHERE rolname = '{login}'"),
        };
        assert_eq!(scalar(app.tenant_db.admin(), &sql).await, 3, "{engine:?}");
        app.drop_tenant_db(&slug).await;
    }
}

/// The plan script runs as the tenant: MariaDB records the tenant, not the administrator, as the DEFINER
/// of the premium plan's trigger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_script_runs_as_the_tenant_login_on_mariadb() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let slug = unique_slug("definer");
    let tenant = app.buy(&slug, 30).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let sql = format!(
        "SELECT COUNT(*) AS n FROM information_schema.triggers WHERE trigger_schema = '{}' AND definer = '{}@%'",
        row.db_name.clone().unwrap(),
        row.db_login.clone().unwrap()
    );
    assert_eq!(scalar(app.tenant_db.admin(), &sql).await, 1, "the trigger's definer is the tenant login");
    app.drop_tenant_db(&slug).await;
}

/// A hostile plan script (anyone who can write to the scripts bucket) tries to leave the tenant: switch
/// back to the administrator, create a login or a database. Each fails the tenant and creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_plan_script_gains_nothing_beyond_its_tenant() {
    let evil = unique_slug("evil").replace('-', "_");
    let attempts = [
        (Engine::Postgres, format!("RESET ROLE;\nCREATE ROLE {evil} LOGIN SUPERUSER;\n")),
        (Engine::Postgres, format!("CREATE DATABASE {evil};\n")),
        (Engine::MariaDb, format!("CREATE USER '{evil}'@'%';\n")),
        (Engine::MariaDb, format!("CREATE DATABASE {evil};\n")),
    ];
    for (engine, sql) in attempts {
        let scripts = tempfile::tempdir().unwrap();
        let folder = if engine == Engine::MariaDb { "mysql" } else { "postgres" };
        std::fs::create_dir(scripts.path().join(folder)).unwrap();
        std::fs::write(scripts.path().join(folder).join("package-9-type-10.sql"), &sql).unwrap();
        let app = TestApp::spawn_with(Options { scripts: scripts.path().to_owned(), ..Options::new(engine) }).await;
        let slug = unique_slug("hostile");
        let tenant = app.buy(&slug, 9).await;
        let row = app.wait_for_status(&tenant, TenantStatus::Failed).await;
        assert!(row.last_error.clone().unwrap().contains("package-9-type-10.sql"), "{engine:?}: {sql}");
        let (roles, dbs) = match engine {
            Engine::MariaDb => (
                format!("SELECT COUNT(*) AS n FROM mysql.user WHERE user = '{evil}'"),
                format!("SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = '{evil}'"),
            ),
            Engine::Postgres => (
                format!("SELECT COUNT(*) AS n FROM pg_roles WHERE rolname = '{evil}'"),
                format!("SELECT COUNT(*) AS n FROM pg_database WHERE datname = '{evil}'"),
            ),
        };
        assert_eq!(scalar(app.tenant_db.admin(), &roles).await, 0, "{engine:?}: {sql}");
        assert_eq!(scalar(app.tenant_db.admin(), &dbs).await, 0, "{engine:?}: {sql}");
        app.drop_tenant_db(&slug).await;
    }
}

/// With the server's general query log on (as an operator debugging it might turn it on), the log holds
/// Landlord's statements but never a tenant's password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_statement_log_never_holds_a_tenant_password() {
    let server = MariaDbServer::start_with(&["--general-log=1", "--general-log-file={dir}/general.log"]);
    let opts = Options { tenant_db: Some(server.url.clone()), ..Options::new(Engine::MariaDb) };
    let app = TestApp::spawn_with(opts).await;
    let slug = unique_slug("genlog");
    let tenant = app.buy(&slug, 30).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    let password = app.tenant_password(&tenant).await;
    let log = std::fs::read_to_string(server.dir().join("general.log")).expect("general log written");
    assert!(log.contains("CREATE USER"), "the log captured Landlord's statements");
    assert!(log.contains("MAX_USER_CONNECTIONS"));
    assert!(!log.contains(password.expose_secret()), "a tenant password reached the server's statement log");
}

/// A login left with the wildcard grant of an earlier version (`tenant_…_ab_c`.*) is repaired: afterwards it
/// holds only the escaped grant, and the look-alike database is out of its reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repairing_grants_removes_the_wildcard_grant_of_an_earlier_version() {
    use landlord_worker::names::{DatabaseName, LoginName};
    let app = TestApp::spawn(Engine::MariaDb).await;
    let base = unique_slug("repair");
    let (a_slug, b_slug) = (format!("{base}-ab-c"), format!("{base}-abxc"));
    let (a, b) = (app.buy(&a_slug, 10).await, app.buy(&b_slug, 10).await);
    let a_row = app.wait_for_status(&a, TenantStatus::Active).await;
    let b_row = app.wait_for_status(&b, TenantStatus::Active).await;
    let (db, login) = (a_row.db_name.clone().unwrap(), a_row.db_login.clone().unwrap());
    // What earlier versions granted.
    let old_grant = format!("GRANT ALL PRIVILEGES ON `{db}`.* TO '{login}'@'%'");
    app.tenant_db.admin().execute_unprepared(&old_grant).await.unwrap();
    let reach = app.connect_as_tenant(Engine::MariaDb, &a_row, b_row.db_name.as_deref().unwrap()).await;
    assert!(reach.is_ok(), "the old grant opened the look-alike database (the defect being repaired)");

    let (db, login) = (DatabaseName::parse(&db).unwrap(), LoginName::parse(&login).unwrap());
    app.tenant_db.repair_grant(&db, &login).await.unwrap();
    app.tenant_db.repair_grant(&db, &login).await.expect("repairing twice is harmless");
    refused(&app, Engine::MariaDb, &a_row, b_row.db_name.as_deref().unwrap()).await;
    let own = app.connect_as_tenant(Engine::MariaDb, &a_row, db.as_str()).await.expect("still reaches its own");
    assert_eq!(scalar(&own, "SELECT COUNT(*) AS n FROM products").await, 2);
    own.close().await.ok();
    app.drop_tenant_db(&a_slug).await;
    app.drop_tenant_db(&b_slug).await;
}

/// Whether PUBLIC may connect to database `name` on the machine's PostgreSQL.
async fn public_may_connect(name: &str) -> bool {
    let admin = sea_orm::Database::connect(landlord_tests::tenant_db_url(Engine::Postgres)).await.unwrap();
    let sql = format!("SELECT CAST(has_database_privilege('public', '{name}', 'CONNECT') AS INT)::bigint AS n");
    let may = scalar(&admin, &sql).await == 1;
    admin.close().await.ok();
    may
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_on_the_tenants_postgres_server_is_closed_to_tenant_logins() {
    use landlord_tests::chaos::{drop_database, fresh_postgres_database};
    let (url, name) = fresh_postgres_database("cp_shared").await;
    assert!(public_may_connect(&name).await, "a new PostgreSQL database is open to every login");
    let app = TestApp::spawn_with(Options { control_plane: Some(url), ..Options::new(Engine::Postgres) }).await;
    let slug = unique_slug("cohost");
    let tenant = app.buy(&slug, 10).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;

    assert!(!public_may_connect(&name).await, "the worker revoked PUBLIC's CONNECT on the control plane");
    refused(&app, Engine::Postgres, &row, &name).await;
    // Landlord itself still works there: a second tenant is provisioned through the same control plane.
    let other = app.buy(&unique_slug("cohost"), 10).await;
    app.wait_for_status(&other, TenantStatus::Active).await;
    app.shutdown.cancel();
    drop_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_on_another_server_keeps_its_grants() {
    use landlord_tests::chaos::{drop_database, fresh_postgres_database};
    // Tenants on MariaDB cannot reach a PostgreSQL control plane: its grants are the operator's business.
    let (url, name) = fresh_postgres_database("cp_apart").await;
    let app = TestApp::spawn_with(Options { control_plane: Some(url), ..Options::new(Engine::MariaDb) }).await;
    let tenant = app.buy(&unique_slug("apart"), 10).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    assert!(public_may_connect(&name).await, "left as the operator set it");
    app.shutdown.cancel();
    drop_database(&name).await;
}
