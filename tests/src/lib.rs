//! Helpers for Landlord's end-to-end tests: a private `nats-server` per test on a free loopback port,
//! the ingress on port 0, a worker task, and the real tenant database servers. Nothing here fakes a
//! service; it only starts and wires the real ones.

pub mod browser;
pub mod chaos;
mod moto;
mod nats;
pub mod smtp;
pub mod tls;

use std::{path::PathBuf, time::Duration};

use landlord_bus::Bus;
use landlord_ingress::IngressConfig;
use landlord_protocol::{ProgressEvent, TenantId, TenantStatus};
use landlord_worker::{
    RetryPolicy, WorkerConfig,
    names::{DatabaseName, LoginName},
    secret_box::SecretKeys,
    store::{Store, entities::tenant},
    tenant_db::TenantDbServer,
};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

pub use moto::{MotoServer, sdk_config_at};
pub use nats::{NatsServer, free_port, nats_server_binary};

/// The admin token every [`TestApp`] ingress accepts (named `ops`, role admin).
pub const ADMIN_TOKEN: &str = "test-admin-token-1f0c";
/// A read-only token every [`TestApp`] ingress accepts (named `dash`, role viewer).
pub const VIEWER_TOKEN: &str = "test-viewer-token-7d2e";

/// `LANDLORD_ADMIN_TOKENS` of every [`TestApp`]: [`ADMIN_TOKEN`] and, as a digest, [`VIEWER_TOKEN`].
pub fn admin_tokens() -> Vec<landlord_ingress::admin_tokens::AdminToken> {
    use sha2::Digest;
    let viewer = hex::encode(sha2::Sha256::digest(VIEWER_TOKEN.as_bytes()));
    let setting = format!("ops:admin:{ADMIN_TOKEN},dash:viewer:sha256:{viewer}");
    landlord_ingress::admin_tokens::parse(Some(&SecretString::from(setting))).expect("test tokens parse")
}

/// Which tenant database server a test provisions on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    MariaDb,
    Postgres,
}

/// The servers' admin URLs; the defaults are what `scripts/services` sets up.
pub fn tenant_db_url(engine: Engine) -> String {
    match engine {
        Engine::MariaDb => {
            std::env::var("LANDLORD_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
        }
        Engine::Postgres => std::env::var("LANDLORD_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into()),
    }
}

/// The tools venv `scripts/services` fills (`LANDLORD_TOOLS_VENV`, else `~/.cache/landlord/venv`).
pub fn tools_venv() -> PathBuf {
    match std::env::var_os("LANDLORD_TOOLS_VENV") {
        Some(dir) => dir.into(),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/landlord/venv"),
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A slug no other test (or earlier run) uses: `it-<prefix>-<8 random letters>`.
pub fn unique_slug(prefix: &str) -> String {
    let tail: String =
        rand::rng().sample_iter(rand::distr::Alphabetic).take(8).map(|c| (c as char).to_ascii_lowercase()).collect();
    format!("it-{prefix}-{tail}")
}

/// How to build a [`TestApp`].
#[derive(Debug, Clone)]
pub struct Options {
    pub engine: Engine,
    /// Control-plane URL; a fresh SQLite file when `None`.
    pub control_plane: Option<String>,
    pub scripts: PathBuf,
    pub retry: RetryPolicy,
    /// The webhook secret; a random one when `None`.
    pub secret: Option<String>,
    /// AWS SDK configuration (a moto server's) for the infrastructure steps.
    pub aws: Option<aws_config::SdkConfig>,
    /// Applied to the worker's configuration last (zone, template, scripts in S3…).
    pub worker: fn(&mut WorkerConfig, &Infra),
    /// Values `worker` may use.
    pub infra: Infra,
    /// Run a worker inside the test process (the chaos suite runs worker processes instead).
    pub in_process_worker: bool,
    /// Use this NATS (a cluster's URLs) instead of starting a private server.
    pub external_nats: Option<String>,
    /// JetStream's duplicate window for commands.
    pub duplicate_window: Duration,
    /// Stream replicas.
    pub replicas: usize,
    /// The tenant database server's admin URL, instead of the machine's server for `engine`.
    pub tenant_db: Option<String>,
    /// The plan catalogue; [`test_plans`] unless a test brings its own.
    pub plans: landlord_protocol::Plans,
    /// The ingress's limits.
    pub ingress_limits: landlord_ingress::Limits,
}

/// The tests' catalogue (`tests/plans.toml`): the product's plans and packages 8 and 9 (type 10), whose
/// scripts tests write themselves (or leave missing).
pub fn test_plans() -> landlord_protocol::Plans {
    landlord_protocol::Plans::read(&repo_root().join("tests/plans.toml")).expect("tests/plans.toml is valid")
}

/// Infrastructure a test set up (zone id, template path, bucket…), handed to [`Options::worker`].
#[derive(Debug, Clone, Default)]
pub struct Infra {
    pub zone_id: Option<String>,
    pub template: Option<String>,
    pub scripts: Option<String>,
    pub health_url: Option<String>,
    /// `LANDLORD_ARCHIVE` (`s3://…`), instead of the app's own folder.
    pub archive: Option<String>,
    /// `LANDLORD_STRIPE_API_BASE` of a test server standing in for Stripe's API.
    pub stripe_api_base: Option<String>,
    /// `LANDLORD_POOL_TEMPLATE` and `LANDLORD_DEDICATED_TEMPLATE`.
    pub pool_template: Option<String>,
    pub dedicated_template: Option<String>,
    /// `LANDLORD_SMTP_URL`, `LANDLORD_OPERATOR_EMAIL` and `LANDLORD_WELCOME_TEMPLATE`.
    pub smtp_url: Option<String>,
    pub operator_email: Option<String>,
    pub welcome_template: Option<String>,
}

impl Options {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            control_plane: None,
            scripts: repo_root().join("sql-scripts"),
            retry: RetryPolicy { initial_ms: 50, multiplier: 2.0, max_delay_ms: 500, max_attempts: 3, jitter: true },
            secret: None,
            aws: None,
            worker: |_, _| {},
            infra: Infra::default(),
            in_process_worker: true,
            external_nats: None,
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            tenant_db: None,
            plans: test_plans(),
            ingress_limits: landlord_ingress::Limits::default(),
        }
    }
}

/// A running Landlord (ingress + one worker) on private NATS, with handles for assertions.
#[derive(Debug)]
pub struct TestApp {
    /// The private server, unless the test brought its own NATS.
    pub nats: Option<NatsServer>,
    pub nats_url: String,
    pub base_url: String,
    pub secret: String,
    pub bus: Bus,
    pub store: Store,
    pub tenant_db: TenantDbServer,
    pub worker_config: WorkerConfig,
    /// `LANDLORD_SECRET_KEYS` of this app's workers (a new key per app), for worker processes too.
    pub secret_keys: SecretString,
    pub aws: Option<aws_config::SdkConfig>,
    pub shutdown: CancellationToken,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> Self {
        Self::spawn_with(Options::new(engine)).await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        // Boxed: the set-up's future is large, and every test awaits it.
        Box::pin(Self::start(opts)).await
    }

    async fn start(opts: Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let nats = opts.external_nats.is_none().then(NatsServer::start);
        let nats_url = opts.external_nats.clone().unwrap_or_else(|| nats.as_ref().expect("private server").url.clone());
        let secret = opts.secret.clone().unwrap_or_else(|| format!("whsec_test_{}", unique_slug("s")));
        let shutdown = CancellationToken::new();

        let control_plane = opts
            .control_plane
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("landlord.db").display()));
        let secret_keys = SecretKeys::generate_entry("test");
        // The test's own handle first: it applies the migrations before the ingress and the worker start,
        // so three parties never race to create the tables of a fresh SQLite file.
        let keys = SecretKeys::parse(&secret_keys).expect("a generated key parses");
        let store = Store::connect(&control_plane).await.expect("control plane").with_secrets(keys);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let ingress = IngressConfig {
            http_addr: listener.local_addr().unwrap(),
            nats_url: nats_url.clone(),
            nats_auth: landlord_bus::NatsSettings::default(),
            stripe_webhook_secrets: vec![SecretString::from(secret.clone())],
            stripe_tolerance: Duration::from_secs(300),
            duplicate_window: opts.duplicate_window,
            replicas: opts.replicas,
            admin_tokens: admin_tokens(),
            database_url: Some(SecretString::from(control_plane.clone())),
            secret_keys: Some(secret_keys.clone()),
            limits: opts.ingress_limits,
            plans: opts.plans.clone(),
        };
        tokio::spawn(landlord_ingress::run(ingress, listener, shutdown.clone()));

        let mut worker_config = WorkerConfig::defaults();
        worker_config.secret_keys = Some(secret_keys.clone());
        worker_config.nats_url = nats_url.clone();
        worker_config.duplicate_window = opts.duplicate_window;
        worker_config.nats_replicas = opts.replicas;
        worker_config.database_url = control_plane.clone().into();
        let tenant_db = opts.tenant_db.clone().unwrap_or_else(|| tenant_db_url(opts.engine));
        worker_config.tenant_db_url = tenant_db.clone().into();
        worker_config.scripts = opts.scripts.display().to_string();
        worker_config.archive = dir.path().join("archive").display().to_string();
        worker_config.plans = opts.plans.clone();
        worker_config.retry = opts.retry.clone();
        worker_config.environment = "test".into();
        worker_config.poll =
            RetryPolicy { initial_ms: 50, multiplier: 2.0, max_delay_ms: 500, max_attempts: 100, jitter: false };
        // Room for a slow emulator on a loaded machine; tests that want DNS deferred use a zone that fails.
        worker_config.dns_budget = Duration::from_secs(10);
        worker_config.health_deadline = Duration::from_secs(10);
        (opts.worker)(&mut worker_config, &opts.infra);
        if opts.in_process_worker {
            tokio::spawn(landlord_worker::run_with(worker_config.clone(), opts.aws.clone(), shutdown.clone()));
        }

        let bus = Bus::connect(&nats_url).await.expect("nats");
        let tenant_db = TenantDbServer::new(&tenant_db.into()).await.expect("tenant db");
        let app = Self {
            nats,
            nats_url,
            base_url,
            secret,
            bus,
            store,
            tenant_db,
            worker_config,
            secret_keys,
            aws: opts.aws.clone(),
            shutdown,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        app.wait_ready().await;
        app
    }

    /// Waits until the ingress reports ready (JetStream answers and the streams exist) and its admin API
    /// has reached the control plane, up to 30 s: a three-node cluster on a loaded two-core machine can
    /// take a while to elect its JetStream leader.
    pub async fn wait_ready(&self) {
        let mut ready = false;
        for _ in 0..600 {
            if !ready && let Ok(r) = self.http.get(format!("{}/readyz", self.base_url)).send().await {
                ready = r.status().is_success();
            }
            if ready {
                let audit = self.http.get(format!("{}/v1/audit?limit=1", self.base_url)).bearer_auth(VIEWER_TOKEN);
                if audit.send().await.is_ok_and(|r| r.status() != 503) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ingress never became ready (ready: {ready})");
    }

    /// Signs `body` with this app's secret, timestamped now.
    pub fn sign(&self, body: &[u8]) -> String {
        landlord_ingress::stripe::signature::sign(
            body,
            &SecretString::from(self.secret.clone()),
            chrono::Utc::now().timestamp(),
        )
    }

    pub async fn post_webhook(&self, body: Vec<u8>, signature: Option<String>) -> reqwest::Response {
        let mut req = self.http.post(format!("{}/webhooks/stripe", self.base_url)).body(body);
        if let Some(sig) = signature {
            req = req.header("Stripe-Signature", sig);
        }
        req.send().await.expect("ingress answers")
    }

    /// `POST /v1/tenants/{id}/provision` with the admin token.
    pub async fn request_retry(&self, tenant: &TenantId) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/tenants/{tenant}/provision", self.base_url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("ingress answers")
    }

    /// Posts a correctly signed event.
    pub async fn post_signed(&self, body: Vec<u8>) -> reqwest::Response {
        let sig = self.sign(&body);
        self.post_webhook(body, Some(sig)).await
    }

    /// Pays for a tenant as Stripe would: a signed `checkout.session.completed` for session `cs_test_<slug>`
    /// with plan `package`/1 and subdomain `slug`. Asserts the ingress answered 200; returns the tenant.
    pub async fn buy(&self, slug: &str, package: u32) -> TenantId {
        self.buy_plan(slug, package, 10).await
    }

    /// [`TestApp::buy`] with the subscription type too; the answer must name the purchase's tenant.
    pub async fn buy_plan(&self, slug: &str, package: u32, kind: u32) -> TenantId {
        let (body, tenant) = purchase_body(slug, package, kind);
        let res = self.post_signed(body).await;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(status, 200, "{text}");
        let answer: serde_json::Value = serde_json::from_str(&text).expect("a JSON answer");
        assert_eq!(answer["tenant_id"], tenant.to_string(), "{text}");
        tenant
    }

    /// Polls the control plane until the tenant has `status` (panics after 90 s with what it saw).
    pub async fn wait_for_status(&self, tenant: &TenantId, status: TenantStatus) -> tenant::Model {
        let mut last = None;
        for _ in 0..900 {
            last = self.store.tenant(tenant).await.expect("control plane");
            if let Some(t) = &last
                && t.status == status.as_str()
            {
                return t.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("tenant {tenant} never became {}: last seen {last:?}", status.as_str());
    }

    /// Progress events of `tenant` until one satisfies `last` (inclusive); panics after 60 s.
    pub async fn events_until(&self, tenant: &TenantId, last: impl Fn(&ProgressEvent) -> bool) -> Vec<ProgressEvent> {
        use futures::StreamExt;
        let mut stream = Box::pin(self.bus.progress(Some(tenant)).await.expect("progress stream"));
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(ev)) => {
                    let done = last(&ev);
                    seen.push(ev);
                    if done {
                        return seen;
                    }
                }
                _ => panic!("progress for {tenant} ended early: {seen:#?}"),
            }
        }
    }

    /// The tenant login's password, decrypted from the control plane.
    pub async fn tenant_password(&self, tenant: &TenantId) -> SecretString {
        self.store.database_password(tenant).await.expect("control plane").expect("password recorded")
    }

    /// A control-plane handle (for a database the test made) that can read tenant secrets like this app's.
    pub async fn store_at(&self, url: &str) -> Store {
        let keys = SecretKeys::parse(&self.secret_keys).expect("a generated key parses");
        Store::connect(url).await.expect("control plane").with_secrets(keys)
    }

    /// Connects to `database` with a tenant's own login (as its application would), on the server the
    /// tenant was provisioned on.
    pub async fn connect_as_tenant(
        &self,
        engine: Engine,
        tenant: &tenant::Model,
        database: &str,
    ) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
        let id = TenantId::parse(&tenant.id).expect("tenant id");
        let password = self.tenant_password(&id).await;
        let mut url = url::Url::parse(&tenant_db_url(engine)).expect("admin url");
        url.set_username(tenant.db_login.as_deref().expect("login recorded")).unwrap();
        url.set_password(Some(password.expose_secret())).unwrap();
        url.set_path(&format!("/{database}"));
        let mut opts = sea_orm::ConnectOptions::new(url.to_string());
        opts.max_connections(1).sqlx_logging(false).connect_timeout(Duration::from_secs(5));
        sea_orm::Database::connect(opts).await
    }

    /// Drops a test tenant's database and login from the shared server.
    pub async fn drop_tenant_db(&self, slug: &str) {
        let slug = landlord_protocol::TenantSlug::parse(slug).expect("slug");
        self.tenant_db
            .drop_database(&DatabaseName::for_slug(&slug), &LoginName::for_slug(&slug))
            .await
            .expect("drop tenant database");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A `checkout.session.completed` event body shaped like Stripe's, built from the checked-in vector (itself
/// built from Stripe's fixtures), with the given ids and metadata.
pub fn checkout_event(event_id: &str, session_id: &str, metadata: serde_json::Value) -> Vec<u8> {
    let path = repo_root().join("ingress/tests/vectors/stripe_checkout_completed.json");
    let mut event: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("vector")).expect("json");
    event["id"] = event_id.into();
    event["data"]["object"]["id"] = session_id.into();
    event["data"]["object"]["metadata"] = metadata;
    serde_json::to_vec(&event).expect("serializes")
}

/// The checkout event of a purchase of plan `package`/`kind` for subdomain `slug` (session `cs_test_<slug>`),
/// and the tenant it names.
pub fn purchase_body(slug: &str, package: u32, kind: u32) -> (Vec<u8>, TenantId) {
    let session = format!("cs_test_{slug}");
    let body = checkout_event(&format!("evt_{}", slug.replace('-', "_")), &session, plan_metadata(slug, package, kind));
    (body, TenantId::from_checkout_session(&session))
}

/// A subscription-mode checkout of plan `package`/10 for `slug` that starts subscription `sub_<slug>`:
/// the body, the tenant it names and the subscription id.
pub fn subscription_purchase(slug: &str, package: u32) -> (Vec<u8>, TenantId, String) {
    let session = format!("cs_test_{slug}");
    let subscription = format!("sub_{}", slug.replace('-', "_"));
    let body = checkout_event(&format!("evt_{}", slug.replace('-', "_")), &session, plan_metadata(slug, package, 10));
    let mut event: serde_json::Value = serde_json::from_slice(&body).expect("json");
    event["data"]["object"]["subscription"] = subscription.clone().into();
    (serde_json::to_vec(&event).expect("serializes"), TenantId::from_checkout_session(&session), subscription)
}

/// A Stripe subscription event (`customer.subscription.updated`, …) shaped like Stripe's, from the
/// checked-in subscription vector: `status`, one item of `price`, stamped `created` (seconds).
pub fn subscription_event(
    event_id: &str,
    kind: &str,
    created: i64,
    subscription: &str,
    status: &str,
    price: &str,
) -> Vec<u8> {
    let path = repo_root().join("ingress/tests/vectors/stripe_subscription.json");
    let mut object: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("vector")).expect("json");
    object["id"] = subscription.into();
    object["status"] = status.into();
    object["items"]["data"][0]["price"]["id"] = price.into();
    let event = serde_json::json!({
        "id": event_id, "object": "event", "type": kind, "created": created, "api_version": "2024-06-20",
        "livemode": false, "pending_webhooks": 1, "data": {"object": object},
    });
    serde_json::to_vec(&event).expect("serializes")
}

/// An `http://` address that accepts connections and never answers: a peer that hangs (an AWS endpoint,
/// say). The connections are held until the test ends.
pub async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    format!("http://{addr}")
}

/// Metadata for a plan purchase.
pub fn plan_metadata(slug: &str, package: u32, kind: u32) -> serde_json::Value {
    serde_json::json!({
        "subdomain": slug,
        "store_name": format!("Store {slug}"),
        "package_id": package.to_string(),
        "subscription_type_id": kind.to_string(),
    })
}

/// Loads a dump into a fresh database `db` with the engine's own client as the administrator, as an
/// operator restoring an offboarded tenant would; panics with the client's complaint when it fails.
pub fn restore_dump(engine: Engine, dump: &std::path::Path, db: &str) {
    let url = url::Url::parse(&tenant_db_url(engine)).expect("admin url");
    let (host, port) = (url.host_str().unwrap_or("127.0.0.1").to_owned(), url.port());
    let mut cmd = match engine {
        Engine::MariaDb => {
            let mut c = std::process::Command::new("mariadb");
            c.arg(format!("--host={host}")).arg(format!("--port={}", port.unwrap_or(3306))).arg("--protocol=TCP");
            c.arg(format!("--user={}", url.username())).arg(db);
            if let Some(p) = url.password() {
                c.env("MYSQL_PWD", p);
            }
            c
        }
        Engine::Postgres => {
            let mut c = std::process::Command::new("psql");
            c.arg(format!("--host={host}")).arg(format!("--port={}", port.unwrap_or(5432)));
            c.arg(format!("--username={}", url.username())).arg(format!("--dbname={db}"));
            c.args(["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"]);
            if let Some(p) = url.password() {
                c.env("PGPASSWORD", p);
            }
            c
        }
    };
    let out = cmd.stdin(std::fs::File::open(dump).expect("dump file")).output().expect("the database client runs");
    assert!(out.status.success(), "restoring {} failed: {}", dump.display(), String::from_utf8_lossy(&out.stderr));
}

/// One number from a query such as `SELECT COUNT(*) AS n …`.
pub async fn scalar(conn: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let backend = conn.get_database_backend();
    let row =
        conn.query_one_raw(sea_orm::Statement::from_string(backend, sql.to_owned())).await.expect(sql).expect("a row");
    row.try_get::<i64>("", "n").expect("column n")
}

/// How many databases on the server have a name starting with `prefix` (for "nothing was created").
pub async fn count_databases(app: &TestApp, engine: Engine, prefix: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let (sql, backend) = match engine {
        Engine::MariaDb => (
            "SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name LIKE ?",
            sea_orm::DbBackend::MySql,
        ),
        Engine::Postgres => {
            ("SELECT COUNT(*) AS n FROM pg_database WHERE datname LIKE $1", sea_orm::DbBackend::Postgres)
        }
    };
    let stmt = sea_orm::Statement::from_sql_and_values(backend, sql, [format!("{prefix}%").into()]);
    let row = app.tenant_db.admin().query_one_raw(stmt).await.expect("count").expect("row");
    row.try_get::<i64>("", "n").expect("n")
}

/// MariaDB databases named like a tenant's but not by a test slug (`it-…`), counted in one query so
/// that tests creating and dropping their own at the same time cannot skew it.
pub async fn count_non_test_tenant_databases(app: &TestApp) -> i64 {
    use sea_orm::ConnectionTrait;
    let sql = "SELECT COUNT(*) AS n FROM information_schema.schemata \
               WHERE schema_name LIKE 'tenant\\_%' AND schema_name NOT LIKE 'tenant\\_it\\_%'";
    let row =
        app.tenant_db.admin().query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::MySql, sql)).await;
    row.expect("count").expect("row").try_get::<i64>("", "n").expect("n")
}
