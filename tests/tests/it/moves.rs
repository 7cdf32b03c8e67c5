//! A plan change across placement moves the tenant's database: shared to dedicated and back, on MariaDB
//! and on PostgreSQL, with a private server of each as the tenant's own. Every row of every table (names
//! the tenant chose, binary data, a view and a trigger) must arrive; the old copy and login are gone from
//! the server left; the places are counted on the right servers; the tenant's own login works on the new
//! server with the password it had. A move that cannot get a server changes nothing.

use std::time::Duration;

use landlord_protocol::{EventKind, TenantId, TenantStatus};
use landlord_tests::{
    ADMIN_TOKEN, Engine, TestApp,
    chaos::{MariaDbServer, PostgresServer, eventually},
    scalar, tenant_db_url, unique_slug,
};
use landlord_worker::store::entities::tenant;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// The tenant's data, made with its own login as its application would: rows in tables whose names need
/// quoting, binary values, a view, and a trigger that writes a second table.
pub fn seed_sql(engine: Engine) -> Vec<&'static str> {
    match engine {
        Engine::MariaDb => vec![
            "CREATE TABLE sales (id INT PRIMARY KEY, customer VARCHAR(100), amount DECIMAL(10,2), note TEXT, raw BLOB)",
            "CREATE TABLE sales_log (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT)",
            "CREATE TRIGGER sales_audit AFTER INSERT ON sales FOR EACH ROW INSERT INTO sales_log (order_id) VALUES (NEW.id)",
            "INSERT INTO sales SELECT i, CONCAT('customer ', i), i * 1.25, CONCAT('it''s \"quoted\" ', i, ' ; -- not sql'), \
             UNHEX(SHA2(i, 256)) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 700) \
             SELECT i FROM n) AS numbers",
            "CREATE TABLE `we``ird name; DROP` (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO `we``ird name; DROP` VALUES (1, 'a'), (2, NULL), (3, 'ü€')",
            "CREATE VIEW big_sales AS SELECT id, amount FROM sales WHERE amount > 100",
        ],
        Engine::Postgres => vec![
            "CREATE TABLE sales (id INT PRIMARY KEY, customer VARCHAR(100), amount NUMERIC(10,2), note TEXT, raw BYTEA)",
            "CREATE TABLE sales_log (id SERIAL PRIMARY KEY, order_id INT)",
            "CREATE FUNCTION sales_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN INSERT INTO sales_log (order_id) VALUES (NEW.id); RETURN NEW; END $$",
            "CREATE TRIGGER sales_audit AFTER INSERT ON sales FOR EACH ROW EXECUTE FUNCTION sales_audit()",
            "INSERT INTO sales SELECT i, 'customer ' || i, i * 1.25, 'it''s \"quoted\" ' || i || ' ; -- not sql', \
             sha256(i::text::bytea) FROM generate_series(1, 700) AS i",
            "CREATE TABLE \"we\"\"ird name; DROP\" (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO \"we\"\"ird name; DROP\" VALUES (1, 'a'), (2, NULL), (3, 'ü€')",
            "CREATE VIEW big_sales AS SELECT id, amount FROM sales WHERE amount > 100",
        ],
    }
}

/// Every row of every table of the seed, as text, in order: what must arrive.
pub async fn snapshot(engine: Engine, conn: &DatabaseConnection) -> Vec<String> {
    let queries = match engine {
        Engine::MariaDb => [
            "SELECT CONCAT_WS('|', id, customer, amount, note, HEX(raw)) AS r FROM sales ORDER BY id",
            "SELECT CONCAT_WS('|', id, order_id) AS r FROM sales_log ORDER BY id",
            "SELECT CONCAT_WS('|', id, IFNULL(v, '<null>')) AS r FROM `we``ird name; DROP` ORDER BY id",
            "SELECT CONCAT_WS('|', id, amount) AS r FROM big_sales ORDER BY id",
        ],
        Engine::Postgres => [
            "SELECT concat_ws('|', id, customer, amount, note, encode(raw, 'hex')) AS r FROM sales ORDER BY id",
            "SELECT concat_ws('|', id, order_id) AS r FROM sales_log ORDER BY id",
            "SELECT concat_ws('|', id, coalesce(v, '<null>')) AS r FROM \"we\"\"ird name; DROP\" ORDER BY id",
            "SELECT concat_ws('|', id, amount) AS r FROM big_sales ORDER BY id",
        ],
    };
    let mut rows = Vec::new();
    for (i, sql) in queries.iter().enumerate() {
        let stmt = Statement::from_string(conn.get_database_backend(), *sql);
        for row in conn.query_all_raw(stmt).await.unwrap_or_else(|e| panic!("{sql}: {e}")) {
            rows.push(format!("{i}:{}", row.try_get::<String>("", "r").unwrap()));
        }
    }
    rows
}

/// Connects as the tenant's own login to its database on the server at `admin_url`.
pub async fn connect_tenant(
    app: &TestApp,
    admin_url: &str,
    row: &tenant::Model,
) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let id = TenantId::parse(&row.id).unwrap();
    let password = app.tenant_password(&id).await;
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_username(row.db_login.as_deref().unwrap()).unwrap();
    url.set_password(Some(password.expose_secret())).unwrap();
    url.set_path(&format!("/{}", row.db_name.as_deref().unwrap()));
    let mut opts = sea_orm::ConnectOptions::new(url.to_string());
    opts.max_connections(1).sqlx_logging(false).connect_timeout(Duration::from_secs(5));
    sea_orm::Database::connect(opts).await
}

/// Whether a database (and, separately, a login) of the tenant's name exists on the server at `admin_url`.
pub async fn present(engine: Engine, admin_url: &str, row: &tenant::Model) -> (bool, bool) {
    let server = landlord_worker::tenant_db::TenantDbServer::new(&admin_url.to_owned().into()).await.unwrap();
    let (db, login) = (row.db_name.clone().unwrap(), row.db_login.clone().unwrap());
    let (db_sql, login_sql) = match engine {
        Engine::MariaDb => (
            format!("SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = '{db}'"),
            format!("SELECT COUNT(*) AS n FROM mysql.user WHERE user = '{login}'"),
        ),
        Engine::Postgres => (
            format!("SELECT COUNT(*) AS n FROM pg_database WHERE datname = '{db}'"),
            format!("SELECT COUNT(*) AS n FROM pg_roles WHERE rolname = '{login}'"),
        ),
    };
    (scalar(server.admin(), &db_sql).await > 0, scalar(server.admin(), &login_sql).await > 0)
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let res = app
        .http
        .request(method, format!("{}{path}", app.base_url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Changes the tenant's plan through the admin API and waits until the command is processed.
pub async fn change_plan(app: &TestApp, tenant: &TenantId, package: u32) {
    let body = json!({ "package_id": package, "subscription_type_id": 10 });
    let (status, answer) = send(app, reqwest::Method::POST, &format!("/v1/tenants/{tenant}/plan"), body).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["command_id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(120), "the plan change processed", || async {
        app.store.is_processed(&id).await.unwrap()
    })
    .await;
}

/// `placed` of the registered server named `name`.
async fn placed(app: &TestApp, name: &str) -> i64 {
    let row = app.store.server_named(name).await.unwrap().unwrap_or_else(|| panic!("server {name} registered"));
    i64::from(row.placed)
}

async fn moves_both_ways(engine: Engine, own_url: &str) {
    let app = TestApp::spawn(engine).await;
    let default_url = tenant_db_url(engine);
    let slug = unique_slug("move");
    let tenant = app.buy(&slug, 10).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let conn = connect_tenant(&app, &default_url, &row).await.unwrap();
    for sql in seed_sql(engine) {
        conn.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{engine:?} seed {sql}: {e}"));
    }
    let before = snapshot(engine, &conn).await;
    conn.close().await.ok();
    // 700 sales, 700 sales_log rows by the trigger, 3 odd rows, and the view's 620 (amount above 100).
    assert_eq!(before.len(), 700 + 700 + 3 + 620, "{engine:?}: the seed is what the test thinks");
    let default_before = placed(&app, "default").await;

    // Enterprise (40) is dedicated; no server can be had (no template, none handed over): nothing changes.
    change_plan(&app, &tenant, 40).await;
    let events = app.events_until(&tenant, |e| e.kind == EventKind::StatusChanged && e.error.is_some()).await;
    let failed = events.last().unwrap();
    assert_eq!(failed.error.as_ref().unwrap().code, "dedicated_server_needed", "{failed:?}");
    assert!(failed.error.as_ref().unwrap().message.contains("hand-over"), "says what to do: {failed:?}");
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.package_id, row.moving_to.as_deref()), ("active", 10, None));
    let conn = connect_tenant(&app, &default_url, &row).await.expect("the tenant still serves from where it was");
    assert_eq!(snapshot(engine, &conn).await, before);
    conn.close().await.ok();

    // The operator hands a server over for it (the answer says what comes next), then changes the plan.
    let path = format!("/v1/tenants/{tenant}/database");
    let (status, answer) = send(&app, reqwest::Method::POST, &path, json!({ "admin_url": own_url })).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["next"].as_str().unwrap().contains("plan"), "{answer}");
    let own_name = answer["server"].as_str().unwrap().to_owned();
    assert_eq!(placed(&app, &own_name).await, 1, "the place is taken for the move");
    let (status, _) = send(&app, reqwest::Method::POST, &path, json!({ "admin_url": own_url })).await;
    assert_eq!(status, 409, "one server is kept for a move, not two");

    change_plan(&app, &tenant, 40).await;
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    let own = app.store.server_named(&own_name).await.unwrap().unwrap();
    assert_eq!(row.status, "active", "{row:?}");
    assert_eq!((row.package_id, row.db_server.as_deref()), (40, Some(own.id.as_str())), "{row:?}");
    assert_eq!((row.moving_to.as_deref(), row.moved_from.as_deref()), (None, None), "the move is over");
    let conn = connect_tenant(&app, own_url, &row).await.expect("the tenant's login works on its new server");
    assert_eq!(snapshot(engine, &conn).await, before, "{engine:?}: every row arrived on {own_name}");
    // The trigger came along and still writes: the database is the tenant's to use.
    conn.execute_unprepared("INSERT INTO sales (id, customer) VALUES (9001, 'after the move')").await.unwrap();
    assert_eq!(scalar(&conn, "SELECT COUNT(*) AS n FROM sales_log WHERE order_id = 9001").await, 1);
    conn.execute_unprepared("DELETE FROM sales WHERE id = 9001").await.unwrap();
    conn.execute_unprepared("DELETE FROM sales_log WHERE order_id = 9001").await.unwrap();
    conn.close().await.ok();
    assert_eq!(present(engine, &default_url, &row).await, (false, false), "the old copy and login are dropped");
    assert_eq!((placed(&app, &own_name).await, placed(&app, "default").await), (1, default_before - 1));
    let events = app.events_until(&tenant, |e| e.step.as_deref() == Some("drop_old_copy")).await;
    assert!(
        events.iter().any(|e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Moving)),
        "the tenant was shown moving"
    );
    let copied = events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::StepSucceeded && e.step.as_deref() == Some("copy_database"))
        .and_then(|e| e.message.clone())
        .unwrap_or_default();
    assert!(copied.contains("every table's count checked"), "{copied}");
    println!("{engine:?} move to {own_name}: {copied}");

    // And back to a shared plan: the database returns to a shared server (the default, the only one).
    let after_audit = {
        let conn = connect_tenant(&app, own_url, &row).await.unwrap();
        let rows = snapshot(engine, &conn).await;
        conn.close().await.ok();
        rows
    };
    change_plan(&app, &tenant, 20).await;
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    let default = app.store.server_named("default").await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.package_id), ("active", 20), "{row:?}");
    assert_eq!(row.db_server.as_deref(), Some(default.id.as_str()));
    let conn = connect_tenant(&app, &default_url, &row).await.unwrap();
    assert_eq!(snapshot(engine, &conn).await, after_audit, "{engine:?}: every row came back");
    conn.close().await.ok();
    assert_eq!(present(engine, own_url, &row).await, (false, false), "nothing is left on the dedicated server");
    assert_eq!((placed(&app, &own_name).await, placed(&app, "default").await), (0, default_before));
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_change_across_placement_moves_every_row_both_ways_on_mariadb() {
    let own = MariaDbServer::start();
    Box::pin(moves_both_ways(Engine::MariaDb, &own.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_change_across_placement_moves_every_row_both_ways_on_postgres() {
    let own = PostgresServer::start();
    Box::pin(moves_both_ways(Engine::Postgres, &own.url)).await;
}

/// The tenant's events up to its `n`th status change that carries an error (a failed change).
async fn until_failure(app: &TestApp, tenant: &TenantId, n: usize) -> Vec<landlord_protocol::ProgressEvent> {
    let seen = std::cell::Cell::new(0);
    app.events_until(tenant, |e| {
        if e.kind == EventKind::StatusChanged && e.error.is_some() {
            seen.set(seen.get() + 1);
        }
        seen.get() == n
    })
    .await
}

/// A move that cannot be made safely changes nothing: a database with an enabled scheduled event (which
/// would change rows during the copy) is refused before anything is locked; a restore the new server
/// refuses (its `max_allowed_packet` too small for the dump's statements) is rolled back: the tenant is
/// active on its old plan and server, its login unlocked and every row where it was, nothing is left on the
/// new server, and the dedicated server stays kept for the tenant. Once the server is fixed, the same
/// change moves every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_that_cannot_be_made_safely_is_refused_or_rolled_back_and_the_tenant_serves_as_before() {
    let own = MariaDbServer::start_with(&["--max-allowed-packet=4096"]);
    let app = TestApp::spawn(Engine::MariaDb).await;
    let default_url = tenant_db_url(Engine::MariaDb);
    let slug = unique_slug("moverb");
    let tenant = app.buy(&slug, 10).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let conn = connect_tenant(&app, &default_url, &row).await.unwrap();
    for sql in seed_sql(Engine::MariaDb) {
        conn.execute_unprepared(sql).await.unwrap();
    }
    let before = snapshot(Engine::MariaDb, &conn).await;
    conn.execute_unprepared("CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM sales_log WHERE id < 0")
        .await
        .unwrap();
    conn.close().await.ok();
    let path = format!("/v1/tenants/{tenant}/database");
    let (status, answer) = send(&app, reqwest::Method::POST, &path, json!({ "admin_url": own.url })).await;
    assert_eq!(status, 200, "{answer}");
    let own_name = answer["server"].as_str().unwrap().to_owned();
    let own_id = app.store.server_named(&own_name).await.unwrap().unwrap().id;
    change_plan(&app, &tenant, 40).await;
    let failed = until_failure(&app, &tenant, 1).await;
    let error = failed.last().unwrap().error.clone().unwrap();
    assert_eq!(error.code, "move_failed", "{failed:?}");
    assert!(error.message.contains("scheduled event"), "{error:?}");
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.package_id), ("active", 10), "{row:?}");
    let conn = connect_tenant(&app, &default_url, &row).await.expect("never locked");
    conn.execute_unprepared("DROP EVENT nightly").await.unwrap();
    conn.close().await.ok();

    change_plan(&app, &tenant, 40).await;
    let events = until_failure(&app, &tenant, 2).await;
    let error = events.last().unwrap().error.clone().unwrap();
    assert_eq!(error.code, "move_failed", "{events:#?}");
    assert!(error.message.contains("restore"), "the reason names the restore: {error:?}");
    // The server's own words (MariaDB versions differ: "packet bigger than max_allowed_packet", or the
    // connection closed: "Server has gone away").
    assert!(error.message.contains("ERROR"), "and the server's own words: {error:?}");
    assert!(!error.message.contains("customer "), "not the statement it echoed, with the tenant's data: {error:?}");
    assert!(
        events.iter().any(|e| e.kind == EventKind::StepUndone && e.step.as_deref() == Some("copy_database")),
        "the copy is undone: {events:#?}"
    );
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.package_id), ("active", 10), "{row:?}");
    assert_eq!((row.moving_to.as_deref(), row.moved_from.as_deref()), (Some(own_id.as_str()), None), "{row:?}");
    assert!(!row.move_copy_started, "{row:?}");
    let conn = connect_tenant(&app, &default_url, &row).await.expect("the login is unlocked again");
    assert_eq!(snapshot(Engine::MariaDb, &conn).await, before, "every row where it was");
    conn.close().await.ok();
    assert_eq!(present(Engine::MariaDb, &own.url, &row).await, (false, false), "nothing left on the new server");
    assert_eq!(placed(&app, &own_name).await, 1, "the tenant's own server stays kept for it");

    let admin = landlord_worker::tenant_db::TenantDbServer::new(&own.url.clone().into()).await.unwrap();
    admin.admin().execute_unprepared("SET GLOBAL max_allowed_packet = 16777216").await.unwrap();
    change_plan(&app, &tenant, 40).await;
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.package_id), ("active", 40), "{row:?}");
    let conn = connect_tenant(&app, &own.url, &row).await.unwrap();
    assert_eq!(snapshot(Engine::MariaDb, &conn).await, before, "moved on the next try");
    conn.close().await.ok();
    assert_eq!(present(Engine::MariaDb, &default_url, &row).await, (false, false));
}
