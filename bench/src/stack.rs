//! Landlord as a user runs it: the release binaries of the ingress and of the workers as processes, with
//! the default settings, a private `nats-server`, a control plane of its own (SQLite or a fresh PostgreSQL
//! database) and the machine's MariaDB or PostgreSQL for tenant databases.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use landlord_protocol::{EventKind, ProgressEvent, TenantId, TenantStatus};
use landlord_tests::{Engine, NatsServer, free_port, repo_root, tenant_db_url};
use secrecy::{ExposeSecret, SecretString};

/// Where the control plane lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ControlPlane {
    Sqlite,
    Postgres,
}

/// A release binary of the workspace, next to this one; built first when it is missing or older than
/// the sources would make it (cargo decides).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent().expect("target dir").join(name)
}

/// The build of the binaries the benchmark runs, and of the benchmark itself: the same command as the one
/// BENCHMARKS.md gives, so it finds everything up to date. With whole-program LTO, two builds of different
/// package sets rebuild their shared dependencies each time the other one ran.
pub const BUILD: [&str; 8] = ["build", "--release", "--locked", "-p", "landlord-cli", "-p", "landlord-bench", "--bins"];

/// Builds the release binaries of `landlord-cli` (the ingress and the worker among them) with [`BUILD`];
/// quick when they are up to date.
pub fn build_binaries() -> anyhow::Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(BUILD)
        .current_dir(repo_root())
        .status()?;
    anyhow::ensure!(status.success(), "building the release binaries failed");
    for bin in ["landlord-ingress", "landlord-worker"] {
        anyhow::ensure!(binary(bin).exists(), "{} missing after the build", binary(bin).display());
    }
    Ok(())
}

/// A child process, killed when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// Its `/metrics` (and `/readyz`) address.
    pub http: String,
}

impl Proc {
    /// A child started elsewhere, to be killed with this.
    pub fn adopt(child: Child, http: String) -> Self {
        Self { child, http }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// Resident memory in bytes, and its parts: `file`, pages mapped from files (the program's own text
    /// and read-only data, shared libraries; clean, shared with other processes running the same binary
    /// and given back under memory pressure) and `anon`, the process's private memory (heap, stacks).
    pub fn memory(&self) -> Resident {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        Resident { total: field("VmRSS:"), anon: field("RssAnon:"), file: field("RssFile:") }
    }
}

/// A process's resident memory in bytes (see [`Proc::memory`]).
#[derive(Debug, Clone, Copy)]
pub struct Resident {
    pub total: u64,
    pub anon: u64,
    pub file: u64,
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One Landlord installation for a figure.
pub struct Stack {
    pub nats: NatsServer,
    pub client: async_nats::Client,
    pub engine: Engine,
    cp_url: String,
    cp_pg_name: Option<String>,
    _dir: tempfile::TempDir,
    pub webhook_secret: String,
    keys: SecretString,
    pub ingress: Option<Proc>,
    pub ingress_url: String,
    pub workers: Vec<Proc>,
    /// Settings added to every worker (none by default: the benchmarks measure the defaults).
    pub worker_extra: Vec<(String, String)>,
    pub events: Events,
    logs: PathBuf,
}

/// Each tenant's progress events, with when they arrived.
type Seen = HashMap<TenantId, Vec<(Instant, ProgressEvent)>>;

/// When each tenant reached each status, from the progress events (core NATS, as a dashboard sees them).
#[derive(Clone, Default)]
pub struct Events {
    pub seen: Arc<Mutex<Seen>>,
}

impl Events {
    /// When `tenant` first reached `status`.
    pub fn reached(&self, tenant: &TenantId, status: TenantStatus) -> Option<Instant> {
        let seen = self.seen.lock().expect("events lock");
        seen.get(tenant)?
            .iter()
            .find(|(_, e)| e.kind == EventKind::StatusChanged && e.status == Some(status))
            .map(|(at, _)| *at)
    }

    /// The events of `tenant` so far.
    pub fn of(&self, tenant: &TenantId) -> Vec<(Instant, ProgressEvent)> {
        self.seen.lock().expect("events lock").get(tenant).cloned().unwrap_or_default()
    }

    /// Waits until every tenant is active; panics naming one that failed or never got there.
    pub async fn wait_active(&self, tenants: &[TenantId], timeout: Duration) -> Vec<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let done: Vec<Option<Instant>> = tenants.iter().map(|t| self.reached(t, TenantStatus::Active)).collect();
            if done.iter().all(Option::is_some) {
                return done.into_iter().map(|d| d.expect("checked")).collect();
            }
            for t in tenants {
                if self.reached(t, TenantStatus::Failed).is_some() {
                    let events = self.of(t);
                    panic!("tenant {t} failed: {:?}", events.last().map(|(_, e)| e));
                }
            }
            let left = done.iter().filter(|d| d.is_none()).count();
            if Instant::now() >= deadline {
                let waiting = tenants.iter().find(|t| self.reached(t, TenantStatus::Active).is_none());
                let last: Vec<String> = waiting
                    .map(|t| self.of(t).iter().rev().take(4).map(|(_, e)| format!("{e:?}")).collect())
                    .unwrap_or_default();
                panic!(
                    "{left} of {} tenants not active after {timeout:?}; the last events of one: {last:#?}",
                    tenants.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Stack {
    pub async fn start(engine: Engine, control_plane: ControlPlane) -> anyhow::Result<Self> {
        let nats = NatsServer::start();
        let client = async_nats::connect(&nats.url).await?;
        let dir = tempfile::tempdir()?;
        let (cp_url, cp_pg_name) = match control_plane {
            ControlPlane::Sqlite => (format!("sqlite://{}?mode=rwc", dir.path().join("landlord.db").display()), None),
            ControlPlane::Postgres => {
                let (url, name) = landlord_tests::chaos::fresh_postgres_database("bench_cp").await;
                (url, Some(name))
            }
        };
        let events = Events::default();
        let mut sub = client.subscribe(landlord_protocol::subjects::PROGRESS_WILDCARD).await?;
        let seen = events.seen.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let at = Instant::now();
                if let Ok(e) = serde_json::from_slice::<ProgressEvent>(&msg.payload)
                    && let Some(t) = e.tenant_id
                {
                    seen.lock().expect("events lock").entry(t).or_default().push((at, e));
                }
            }
        });
        // Kept after the run (the temporary directory is not), to read when a figure goes wrong.
        let logs = repo_root().join("target").join("bench-logs").join(crate::run_tag());
        std::fs::create_dir_all(&logs)?;
        Ok(Self {
            nats,
            client,
            engine,
            cp_url,
            cp_pg_name,
            _dir: dir,
            webhook_secret: "whsec_bench".into(),
            keys: landlord_worker::secret_box::SecretKeys::generate_entry("bench"),
            ingress: None,
            ingress_url: String::new(),
            workers: Vec::new(),
            worker_extra: Vec::new(),
            events,
            logs,
        })
    }

    fn spawn(&self, bin: &str, env: Vec<(String, String)>, http: String, log: &str) -> anyhow::Result<Proc> {
        let file = std::fs::File::create(self.logs.join(log))?;
        let child = Command::new(binary(bin))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .envs(env)
            .stdout(Stdio::null())
            .stderr(file)
            .current_dir(repo_root())
            .spawn()?;
        Ok(Proc { child, http })
    }

    fn common_env(&self) -> Vec<(String, String)> {
        vec![
            ("LANDLORD_NATS_URL".into(), self.nats.url.clone()),
            ("LANDLORD_PLANS".into(), repo_root().join("plans.toml").display().to_string()),
            // Quiet by default; `LANDLORD_BENCH_LOG=debug` to read what a process did (in target/bench-logs).
            ("LANDLORD_LOG".into(), std::env::var("LANDLORD_BENCH_LOG").unwrap_or_else(|_| "warn".into())),
        ]
    }

    /// Starts the ingress and waits until it is ready.
    pub async fn start_ingress(&mut self) -> anyhow::Result<()> {
        let port = free_port();
        let mut env = self.common_env();
        env.push(("LANDLORD_HTTP_ADDR".into(), format!("127.0.0.1:{port}")));
        env.push(("LANDLORD_STRIPE_WEBHOOK_SECRET".into(), self.webhook_secret.clone()));
        let url = format!("http://127.0.0.1:{port}");
        self.ingress = Some(self.spawn("landlord-ingress", env, url.clone(), "ingress.log")?);
        self.ingress_url = url.clone();
        wait_ready(&format!("{url}/readyz")).await
    }

    /// Starts one more worker process and waits until it consumes.
    pub async fn start_worker(&mut self) -> anyhow::Result<()> {
        let port = free_port();
        let mut env = self.common_env();
        env.extend([
            ("LANDLORD_DATABASE_URL".into(), self.cp_url.clone()),
            ("LANDLORD_TENANT_DB_URL".into(), tenant_db_url(self.engine)),
            ("LANDLORD_SCRIPTS".into(), repo_root().join("sql-scripts").display().to_string()),
            ("LANDLORD_ARCHIVE".into(), self._dir.path().join("archive").display().to_string()),
            ("LANDLORD_SECRET_KEYS".into(), self.keys.expose_secret().to_owned()),
            ("LANDLORD_WORKER_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
            // One installation, many runs: room for every tenant the benchmarks make.
            ("LANDLORD_TENANT_DB_CAPACITY".into(), "100000".into()),
        ]);
        env.extend(self.worker_extra.iter().cloned());
        // glibc's allocator settings pass through, to see what the allocator's arenas add to a figure.
        env.extend(std::env::vars().filter(|(k, _)| k.starts_with("MALLOC_")));
        let url = format!("http://127.0.0.1:{port}");
        let n = self.workers.len();
        self.workers.push(self.spawn("landlord-worker", env, url.clone(), &format!("worker-{n}.log"))?);
        wait_ready(&format!("{url}/readyz")).await
    }

    /// Posts one signed checkout webhook; the tenant it names.
    pub async fn purchase(&self, http: &reqwest::Client, slug: &str) -> anyhow::Result<TenantId> {
        let (body, tenant) = signed_purchase(slug);
        let sig = self.sign(&body);
        let res = http
            .post(format!("{}/webhooks/stripe", self.ingress_url))
            .header("Stripe-Signature", sig)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "webhook answered {}", res.status());
        Ok(tenant)
    }

    pub fn sign(&self, body: &[u8]) -> String {
        landlord_ingress::stripe::signature::sign(
            body,
            &SecretString::from(self.webhook_secret.clone()),
            chrono::Utc::now().timestamp(),
        )
    }

    /// The control plane, as the workers see it.
    pub async fn store(&self) -> anyhow::Result<landlord_worker::store::Store> {
        Ok(landlord_worker::store::Store::connect(&self.cp_url).await?)
    }

    /// Drops what the benchmark made: tenant databases and logins, the PostgreSQL control plane.
    pub async fn clean_up(mut self) {
        self.ingress.take();
        self.workers.clear();
        crate::direct::drop_bench_databases(self.engine).await;
        if let Some(name) = self.cp_pg_name.take() {
            landlord_tests::chaos::drop_database(&name).await;
        }
    }
}

/// A purchase of plan 10/10 (the product catalogue's Essential / General) for `slug`.
pub fn signed_purchase(slug: &str) -> (Vec<u8>, TenantId) {
    landlord_tests::purchase_body(slug, 10, 10)
}

/// Polls a `/readyz` until it answers 200.
pub async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{url} not ready after 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One series' value in a Prometheus text page (the sum over its label sets).
pub async fn metric(http_base: &str, name: &str) -> f64 {
    let Ok(res) = reqwest::get(format!("{http_base}/metrics")).await else { return 0.0 };
    let text = res.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
