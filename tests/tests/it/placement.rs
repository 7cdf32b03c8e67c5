//! Where tenant databases live: the registry of servers, atomic placement on shared servers by several
//! workers at once, a tenant waiting for an operator when no server can take it, and a dedicated server
//! handed over by an operator. Real MariaDB servers: the machine's and private ones on free ports.

use std::time::Duration;

use landlord_protocol::{EventKind, TenantId, TenantStatus};
use landlord_tests::{
    ADMIN_TOKEN, Engine, Options, TestApp, VIEWER_TOKEN,
    chaos::{MariaDbServer, drop_database, eventually, fresh_postgres_database},
    scalar, unique_slug,
};
use landlord_worker::tenant_db::TenantDbServer;
use serde_json::{Value, json};

async fn get(app: &TestApp, path: &str) -> Value {
    let res = app.http.get(format!("{}{path}", app.base_url)).bearer_auth(VIEWER_TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {path}");
    res.json().await.unwrap()
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, token: &str, body: Value) -> (u16, Value) {
    let res = app
        .http
        .request(method, format!("{}{path}", app.base_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The registered server named `name`, as `GET /v1/servers` shows it.
async fn server(app: &TestApp, name: &str) -> Value {
    let list = get(app, "/v1/servers").await;
    list["servers"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap_or(Value::Null)
}

async fn count_tenant_databases(url: &str) -> i64 {
    let server = TenantDbServer::new(&url.to_owned().into()).await.unwrap();
    scalar(server.admin(), "SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name LIKE 'tenant\\_%'")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tenants_from_three_workers_fill_servers_of_20_20_and_10_exactly() {
    let (control_plane, cp_name) = fresh_postgres_database("placement").await;
    let opts = Options {
        control_plane: Some(control_plane.clone()),
        // The machine's server, registered at start as the default, takes 20.
        worker: |cfg, _| {
            cfg.default_server_capacity = 20;
            cfg.timer_interval = Duration::from_secs(1);
        },
        ..Options::new(Engine::MariaDb)
    };
    let app = TestApp::spawn_with(opts).await;
    // Two more workers on the same control plane: three place tenants at the same time.
    for _ in 0..2 {
        tokio::spawn(landlord_worker::run_with(app.worker_config.clone(), None, app.shutdown.clone()));
    }
    let (b, c) = (MariaDbServer::start(), MariaDbServer::start());
    eventually(Duration::from_secs(30), "the default server registered", || async {
        server(&app, "default").await["capacity"] == 20
    })
    .await;
    let post = reqwest::Method::POST;
    for (name, url, capacity) in [("pool-b", &b.url, 20), ("pool-c", &c.url, 10)] {
        let body = json!({"name": name, "admin_url": url, "capacity": capacity});
        let (status, answer) = send(&app, post.clone(), "/v1/servers", ADMIN_TOKEN, body).await;
        assert_eq!(status, 201, "{answer}");
        assert_eq!((answer["kind"].as_str(), answer["free"].as_i64()), (Some("shared"), Some(capacity)), "{answer}");
        assert!(!answer.to_string().contains("mysql://"), "an admin URL is never answered back: {answer}");
    }
    // Registration checks the server first and refuses a name twice.
    let dead = json!({"name": "pool-dead", "admin_url": "mysql://root@127.0.0.1:1", "capacity": 5});
    assert_eq!(send(&app, post.clone(), "/v1/servers", ADMIN_TOKEN, dead).await.0, 422);
    let twice = json!({"name": "pool-b", "admin_url": b.url, "capacity": 5});
    assert_eq!(send(&app, post.clone(), "/v1/servers", ADMIN_TOKEN, twice).await.0, 409);
    let viewer = json!({"name": "pool-v", "admin_url": b.url, "capacity": 5});
    assert_eq!(send(&app, post.clone(), "/v1/servers", VIEWER_TOKEN, viewer).await.0, 403);

    let slugs: Vec<String> = (0..51).map(|_| unique_slug("place")).collect();
    let mut tenants = Vec::new();
    for slug in &slugs {
        tenants.push(app.buy(slug, 10).await);
    }
    // 50 fit; whichever comes last finds every server full and waits for an operator.
    let settled = || async {
        let (mut active, mut waiting) = (0, Vec::new());
        for t in &tenants {
            match app.store.tenant(t).await.unwrap().map(|r| r.status) {
                Some(s) if s == "active" => active += 1,
                Some(s) if s == "awaiting_operator" => waiting.push(*t),
                _ => {}
            }
        }
        (active, waiting)
    };
    eventually(Duration::from_secs(240), "50 tenants active and one waiting", || async {
        let (active, waiting) = settled().await;
        active == 50 && waiting.len() == 1
    })
    .await;
    let waiting: TenantId = settled().await.1[0];
    let mut counts = Vec::new();
    for name in ["default", "pool-b", "pool-c"] {
        let s = server(&app, name).await;
        counts.push((name.to_owned(), s["placed"].as_i64().unwrap(), s["free"].as_i64().unwrap()));
    }
    assert_eq!(
        counts,
        [("default".to_owned(), 20, 0), ("pool-b".to_owned(), 20, 0), ("pool-c".to_owned(), 10, 0)],
        "every server filled to its capacity, none beyond"
    );
    // The counts are the truth: each private server holds exactly as many tenant databases.
    assert_eq!(count_tenant_databases(&b.url).await, 20);
    assert_eq!(count_tenant_databases(&c.url).await, 10);

    let row = app.store.tenant(&waiting).await.unwrap().unwrap();
    assert!(row.awaiting_reason.as_deref().unwrap_or_default().contains("full"), "{row:?}");
    assert!(row.db_server.is_none() && row.awaiting_since.is_some(), "{row:?}");
    let queue = get(&app, "/v1/operator-queue").await;
    let listed = &queue["waiting_tenants"][0];
    assert_eq!(listed["id"], waiting.to_string(), "{queue}");
    assert!(listed["awaiting"]["since"].is_string() && listed["last_error"].is_string(), "{queue}");
    let page = get(&app, "/v1/tenants?status=awaiting_operator").await;
    assert_eq!(page["tenants"].as_array().unwrap().len(), 1, "{page}");

    // One more place on pool-c: the waiting tenant is placed there and finishes, with no command from anyone.
    let patch = reqwest::Method::PATCH;
    let (status, answer) = send(&app, patch.clone(), "/v1/servers/pool-c", ADMIN_TOKEN, json!({"capacity": 11})).await;
    assert_eq!((status, answer["free"].as_i64()), (200, Some(1)), "{answer}");
    let row = app.wait_for_status(&waiting, TenantStatus::Active).await;
    assert_eq!(server(&app, "pool-c").await["placed"], 11);
    assert!(row.awaiting_reason.is_none() && row.awaiting_since.is_none(), "{row:?}");
    let shown = get(&app, &format!("/v1/tenants/{waiting}")).await;
    assert_eq!(shown["database"]["server"], "pool-c", "{shown}");

    // A draining server takes nobody new.
    let (status, _) =
        send(&app, patch, "/v1/servers/pool-c", ADMIN_TOKEN, json!({"state": "draining", "capacity": 20})).await;
    assert_eq!(status, 200);
    assert_eq!(server(&app, "pool-c").await["free"], 0);

    let default = app.store.server_named("default").await.unwrap().unwrap().id;
    for (slug, t) in slugs.iter().zip(&tenants) {
        let row = app.store.tenant(t).await.unwrap().unwrap();
        if row.db_server.as_deref() == Some(default.as_str()) {
            app.drop_tenant_db(slug).await;
        }
    }
    drop_database(&cp_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_tenant_waits_for_a_server_and_resumes_on_the_one_handed_over() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let own = MariaDbServer::start();
    let slug = unique_slug("dedi");
    // Package 40 (Enterprise) is a dedicated plan.
    let tenant = app.buy(&slug, 40).await;
    let events = app.events_until(&tenant, |e| e.status == Some(TenantStatus::AwaitingOperator)).await;
    let waiting = events.last().unwrap();
    let error = waiting.error.as_ref().unwrap();
    assert_eq!(error.code, "dedicated_server_needed", "{waiting:?}");
    assert!(error.message.contains("/database"), "the event says how to hand one over: {waiting:?}");
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert_eq!(row.status, "awaiting_operator");
    assert!(row.db_name.is_none(), "nothing was created on any server: {row:?}");

    let path = format!("/v1/tenants/{tenant}/database");
    let post = reqwest::Method::POST;
    // Refused, changing nothing: a viewer, an unreachable server, a URL that is not a database's.
    let hand = |url: &str| json!({ "admin_url": url });
    assert_eq!(send(&app, post.clone(), &path, VIEWER_TOKEN, hand(&own.url)).await.0, 403);
    let (status, answer) =
        send(&app, post.clone(), &path, ADMIN_TOKEN, hand("mysql://root:s3cret-pw@127.0.0.1:1")).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (422, Some("server_unreachable")), "{answer}");
    assert!(!answer.to_string().contains("s3cret-pw"), "{answer}");
    assert_eq!(send(&app, post.clone(), &path, ADMIN_TOKEN, hand("http://127.0.0.1:1")).await.0, 400);
    let socket = format!("{}?socket=/tmp/elsewhere.sock", own.url);
    assert_eq!(send(&app, post.clone(), &path, ADMIN_TOKEN, hand(&socket)).await.0, 400, "only TLS parameters");
    // A login that may not create databases and logins is refused before anything is stored.
    let admin = TenantDbServer::new(&own.url.clone().into()).await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(admin.admin(), "CREATE USER 'weak'@'%' IDENTIFIED BY 'weak-pw-7'")
        .await
        .unwrap();
    let weak = own.url.replace("root@", "weak:weak-pw-7@");
    let (status, answer) = send(&app, post.clone(), &path, ADMIN_TOKEN, hand(&weak)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (422, Some("server_unreachable")), "{answer}");
    assert!(answer.to_string().contains("CREATE USER") && !answer.to_string().contains("weak-pw-7"), "{answer}");
    // A server of another engine than the tenant's (the default server's, MariaDB) is refused.
    let postgres = landlord_tests::tenant_db_url(Engine::Postgres);
    let (status, answer) = send(&app, post.clone(), &path, ADMIN_TOKEN, hand(&postgres)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("wrong_engine")), "{answer}");
    assert_eq!(get(&app, "/v1/servers").await["servers"].as_array().unwrap().len(), 1, "only the default server");

    let (status, answer) = send(&app, post.clone(), &path, ADMIN_TOKEN, hand(&own.url)).await;
    assert_eq!(status, 202, "{answer}");
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let dedicated = server(&app, &format!("dedicated-{slug}")).await;
    assert_eq!((dedicated["kind"].as_str(), dedicated["placed"].as_i64()), (Some("dedicated"), Some(1)), "{dedicated}");
    assert_eq!(count_tenant_databases(&own.url).await, 1, "the database is on the server handed over");
    let db = row.db_name.clone().unwrap();
    let on_default = scalar(
        app.tenant_db.admin(),
        &format!("SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = '{db}'"),
    )
    .await;
    assert_eq!(on_default, 0, "nothing on the default server");
    // A second hand-over is refused: the tenant no longer waits.
    assert_eq!(send(&app, post, &path, ADMIN_TOKEN, hand(&own.url)).await.0, 409);

    // Offboarding drops it there and frees the place.
    let res = app
        .http
        .delete(format!("{}/v1/tenants/{tenant}?now=true", app.base_url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    app.wait_for_status(&tenant, TenantStatus::Deleted).await;
    assert_eq!(count_tenant_databases(&own.url).await, 0);
    assert_eq!(server(&app, &format!("dedicated-{slug}")).await["placed"], 0);
    let kinds: Vec<EventKind> =
        app.events_until(&tenant, |e| e.status == Some(TenantStatus::Deleted)).await.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::StatusChanged));
}

/// A template whose stack outputs `url` as its admin URL, with `capacity` places when given.
fn server_template(url: &str, capacity: Option<u32>) -> String {
    let capacity = capacity.map(|c| format!(r#", "Capacity": {{"Value": "{c}"}}"#)).unwrap_or_default();
    format!(
        r#"{{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {{"ServerName": {{"Type": "String"}}, "Environment": {{"Type": "String"}}}},
  "Resources": {{"Topic": {{"Type": "AWS::SNS::Topic", "Properties": {{"TopicName": {{"Fn::Sub": "${{ServerName}}-${{Environment}}"}}}}}}}},
  "Outputs": {{"AdminUrl": {{"Value": "{url}"}}{capacity}}}
}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_are_made_from_templates_once_when_none_has_room() {
    let moto = landlord_tests::MotoServer::start();
    let aws = moto.sdk_config().await;
    let (pool, own) = (MariaDbServer::start(), MariaDbServer::start());
    let dir = tempfile::tempdir().unwrap();
    let (pool_file, own_file) = (dir.path().join("pool.json"), dir.path().join("dedicated.json"));
    std::fs::write(&pool_file, server_template(&pool.url, Some(3))).unwrap();
    std::fs::write(&own_file, server_template(&own.url, None)).unwrap();
    let infra = landlord_tests::Infra {
        pool_template: Some(pool_file.display().to_string()),
        dedicated_template: Some(own_file.display().to_string()),
        ..Default::default()
    };
    let opts = Options {
        aws: Some(aws.clone()),
        infra,
        worker: |cfg, infra| {
            // The default server takes one tenant; the rest need a server from the pool template.
            cfg.default_server_capacity = 1;
            cfg.pool_template = infra.pool_template.clone();
            cfg.dedicated_template = infra.dedicated_template.clone();
            cfg.concurrency = 4;
        },
        ..Options::new(Engine::MariaDb)
    };
    let app = TestApp::spawn_with(opts).await;
    let slugs: Vec<String> = (0..4).map(|_| unique_slug("pool")).collect();
    let mut tenants = Vec::new();
    for slug in &slugs {
        tenants.push(app.buy(slug, 10).await);
    }
    for t in &tenants {
        app.wait_for_status(t, TenantStatus::Active).await;
    }
    // 1 on the default server, 3 on the one server the template made, though three tenants found no room at once.
    let made = server(&app, "pool-mysql-1").await;
    assert_eq!(
        (made["state"].as_str(), made["placed"].as_i64(), made["capacity"].as_i64()),
        (Some("open"), Some(3), Some(3)),
        "{made}"
    );
    assert!(server(&app, "pool-mysql-2").await.is_null(), "one server made, not one per tenant");
    assert_eq!(count_tenant_databases(&pool.url).await, 3);
    let cfn = aws_sdk_cloudformation::Client::new(&aws);
    let stacks = cfn.describe_stacks().send().await.unwrap();
    let names: Vec<&str> = stacks.stacks().iter().filter_map(|s| s.stack_name()).collect();
    assert_eq!(names.iter().filter(|n| n.starts_with("landlord-db-pool-mysql")).count(), 1, "{names:?}");

    // A dedicated plan gets a server of its own from the other template, with nobody asked.
    let slug = unique_slug("owndb");
    let tenant = app.buy(&slug, 40).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let dedicated = server(&app, &format!("dedicated-{slug}")).await;
    assert_eq!((dedicated["kind"].as_str(), dedicated["placed"].as_i64()), (Some("dedicated"), Some(1)), "{dedicated}");
    assert!(row.db_server.is_some());
    assert_eq!(count_tenant_databases(&own.url).await, 1);
    let default = app.store.server_named("default").await.unwrap().unwrap().id;
    for (slug, t) in slugs.iter().zip(&tenants) {
        if app.store.tenant(t).await.unwrap().unwrap().db_server.as_deref() == Some(default.as_str()) {
            app.drop_tenant_db(slug).await;
        }
    }
}

/// The compare-and-set holds on SQLite too (the default control plane): three handles on one file, as
/// three workers have, place 30 tenants at once on two servers of 10 places; exactly 20 are placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_never_overfills_on_a_sqlite_control_plane() {
    use landlord_protocol::{
        ContactEmail, DbEngine, PackageId, Placement, ProvisionSpec, StoreName, SubscriptionTypeId, TenantSlug,
    };
    use landlord_worker::{
        secret_box::SecretKeys,
        store::{NewServer, ServerName, ServerState, Store},
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cp.db").display());
    let keys = SecretKeys::generate_entry("t");
    let open = || async { Store::connect(&url).await.unwrap().with_secrets(SecretKeys::parse(&keys).unwrap()) };
    let stores = [open().await, open().await, open().await];
    for name in ["one", "two"] {
        let name = ServerName::parse(name).unwrap();
        let admin = "mysql://root@127.0.0.1:3306".to_owned().into();
        let new = NewServer {
            name: &name,
            engine: DbEngine::Mysql,
            admin_url: Some(&admin),
            kind: Placement::Shared,
            capacity: 10,
            state: ServerState::Open,
            stack_id: None,
        };
        stores[0].register_server(new).await.unwrap().unwrap();
    }
    let mut tenants = Vec::new();
    for i in 0..30 {
        let id = TenantId::new_random();
        let spec = ProvisionSpec {
            slug: TenantSlug::parse(&format!("{}-{i}", unique_slug("sq"))).unwrap(),
            store_name: StoreName::parse("Placement").unwrap(),
            contact_email: ContactEmail::parse("ops@example.com").unwrap(),
            package_id: PackageId::parse("10").unwrap(),
            subscription_type_id: SubscriptionTypeId::parse("10").unwrap(),
            purchase: None,
            slug_derived: false,
        };
        stores[0].create_tenant(&id, &spec).await.unwrap();
        tenants.push(id);
    }
    let placing = tenants.iter().enumerate().map(|(i, t)| {
        let store = stores[i % 3].clone();
        async move { store.place_shared(t, DbEngine::Mysql).await.unwrap().map(|s| s.name) }
    });
    let placed: Vec<Option<String>> = futures::future::join_all(placing).await;
    let count = |n: &str| placed.iter().filter(|p| p.as_deref() == Some(n)).count();
    assert_eq!((count("one"), count("two"), placed.iter().filter(|p| p.is_none()).count()), (10, 10, 10), "{placed:?}");
    for name in ["one", "two"] {
        let row = stores[1].server_named(name).await.unwrap().unwrap();
        assert_eq!((row.placed, stores[2].tenants_on(&row.id).await.unwrap()), (10, 10), "{row:?}");
    }
}
