//! What every chaos scenario shares: worker processes configured like production, a "Stripe" that
//! retries until it gets a 2xx, counting what exists afterwards, and printing the figures.

use std::{path::Path, time::Duration};

use futures::StreamExt;
use landlord_protocol::{EventKind, ProgressEvent, TenantId};
use landlord_tests::{TestApp, checkout_event, plan_metadata, repo_root};
use landlord_worker::store::Store;

/// Environment of a worker process: short ack wait and lease so a killed worker is replaced within
/// seconds, fast backoff, a PostgreSQL control plane shared by all workers.
pub fn worker_env(
    app: &TestApp,
    control_plane: &str,
    tenant_db: &str,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("LANDLORD_NATS_URL", app.nats_url.clone()),
        ("LANDLORD_DATABASE_URL", control_plane.to_owned()),
        ("LANDLORD_TENANT_DB_URL", tenant_db.to_owned()),
        ("LANDLORD_SCRIPTS", repo_root().join("sql-scripts").display().to_string()),
        ("LANDLORD_ARCHIVE", app.worker_config.archive.clone()),
        ("LANDLORD_PLANS", repo_root().join("tests/plans.toml").display().to_string()),
        ("LANDLORD_ACK_WAIT_SECS", "3".into()),
        // A worker that cannot renew for two thirds of its lease drops its run; on a machine loaded by other
        // builds a 3 s lease made that happen to healthy workers. 6 s keeps crash recovery quick.
        ("LANDLORD_LEASE_TTL_SECS", "6".into()),
        ("LANDLORD_SHUTDOWN_GRACE_SECS", "5".into()),
        ("LANDLORD_WORKER_CONCURRENCY", "4".into()),
        ("LANDLORD_RETRY__INITIAL_MS", "100".into()),
        ("LANDLORD_RETRY__MAX_DELAY_MS", "1000".into()),
        ("LANDLORD_RETRY__MAX_ATTEMPTS", "4".into()),
        ("LANDLORD_POLL__INITIAL_MS", "50".into()),
        ("LANDLORD_POLL__MAX_DELAY_MS", "500".into()),
        ("LANDLORD_NATS_DUPLICATE_WINDOW_SECS", app.worker_config.duplicate_window.as_secs().to_string()),
        ("LANDLORD_NATS_REPLICAS", app.worker_config.nats_replicas.to_string()),
        ("LANDLORD_ENVIRONMENT", "chaos".into()),
        ("LANDLORD_LOG", "info,sqlx=warn,async_nats=warn".into()),
        ("LANDLORD_SECRET_KEYS", secrecy::ExposeSecret::expose_secret(&app.secret_keys).to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

/// One purchase: its checkout event and the tenant it names.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub slug: String,
    pub event_id: String,
    pub tenant: TenantId,
    pub body: Vec<u8>,
}

pub fn purchase(slug: &str, package: u32) -> Purchase {
    let session = format!("cs_chaos_{slug}");
    let event_id = format!("evt_{}", slug.replace('-', "_"));
    let body = checkout_event(&event_id, &session, plan_metadata(slug, package, 10));
    Purchase { slug: slug.to_owned(), event_id, tenant: TenantId::from_checkout_session(&session), body }
}

/// Delivers a purchase the way Stripe does: again and again until it gets a 2xx. Returns how many
/// deliveries it took.
pub async fn deliver(app: &TestApp, p: &Purchase) -> u32 {
    for attempt in 1..=600 {
        // Each delivery is signed afresh, as Stripe signs each attempt.
        let sig = app.sign(&p.body);
        let sent = app
            .http
            .post(format!("{}/webhooks/stripe", app.base_url))
            .header("Stripe-Signature", sig)
            .body(p.body.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Ok(res) = sent {
            if res.status().is_success() {
                return attempt;
            }
            assert_ne!(res.status(), 400, "a valid delivery was refused: {}", res.text().await.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{} was never accepted", p.slug);
}

/// Delivers every purchase, `concurrency` at a time; returns the total number of deliveries it took.
pub async fn deliver_all<'a>(
    app: &TestApp,
    purchases: impl IntoIterator<Item = &'a Purchase>,
    concurrency: usize,
) -> u32 {
    use futures::StreamExt;
    let counts: Vec<u32> =
        futures::stream::iter(purchases).map(|p| deliver(app, p)).buffer_unordered(concurrency).collect().await;
    counts.iter().sum()
}

/// Every progress event currently in the stream.
pub async fn all_events(app: &TestApp) -> Vec<ProgressEvent> {
    let stream = app.bus.jetstream().get_stream("LANDLORD_PROGRESS").await.unwrap();
    let total = stream.clone().get_info().await.unwrap().state.messages as usize;
    let mut events = Vec::with_capacity(total);
    let mut after = None;
    // Right after a cluster node is lost, JetStream may time out creating the reading consumer while it
    // elects new leaders, or a read may end after repeated errors: read on after the last event seen, as
    // an SSE client or a `landlord watch` user would.
    let mut attempt = 0;
    while events.len() < total {
        match app.bus.progress_after(None, after).await {
            Ok(read) => {
                let mut read = Box::pin(read.take(total - events.len()));
                while let Some((seq, event)) = read.next().await {
                    after = Some(seq);
                    events.push(event);
                }
            }
            Err(e) if attempt < 10 => eprintln!("progress not readable yet ({e}); asking again"),
            Err(e) => panic!("progress not readable: {e}"),
        }
        if events.len() < total {
            attempt += 1;
            assert!(attempt <= 10, "only {} of {total} progress events could be read", events.len());
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    events
}

/// What a scenario ends with.
#[derive(Debug, Default)]
pub struct Figures {
    pub requested: usize,
    pub active: usize,
    pub duplicated: usize,
    pub lost: usize,
    pub retries: usize,
    pub deliveries: u32,
    pub wall: Duration,
}

impl Figures {
    /// Counts tenants in the control plane and retries in the progress events, and prints one line.
    pub async fn count(
        name: &str,
        app: &TestApp,
        store: &Store,
        purchases: &[Purchase],
        wall: Duration,
        deliveries: u32,
    ) -> Self {
        let mut f = Figures { requested: purchases.len(), wall, deliveries, ..Figures::default() };
        for p in purchases {
            match store.tenant(&p.tenant).await.unwrap() {
                Some(t) if t.status == "active" => f.active += 1,
                _ => f.lost += 1,
            }
            let provisioned = store.runs(&p.tenant).await.unwrap().iter().filter(|r| r.status == "succeeded").count();
            if provisioned > 1 {
                println!("duplicated: {} ({}) provisioned by {provisioned} runs", p.slug, p.tenant);
                f.duplicated += 1;
            }
        }
        let events = all_events(app).await;
        f.retries = events.iter().filter(|e| e.kind == EventKind::StepRetrying).count();
        println!(
            "chaos {name}: requested {} / active {} / duplicated {} / lost {} / step retries {} / deliveries {} / wall {:.1} s",
            f.requested,
            f.active,
            f.duplicated,
            f.lost,
            f.retries,
            f.deliveries,
            f.wall.as_secs_f64()
        );
        f
    }

    pub fn assert_exactly_once(&self) {
        assert_eq!((self.active, self.duplicated, self.lost), (self.requested, 0, 0), "{self:?}");
    }
}

/// Waits until every purchase's command was processed (the tenant is settled and its message done).
pub async fn wait_processed(store: &Store, purchases: &[Purchase], timeout: Duration) {
    landlord_tests::chaos::eventually(timeout, "every purchase to be provisioned", || async {
        for p in purchases {
            if !store.is_processed(&format!("stripe:{}", p.event_id)).await.unwrap_or(false) {
                return false;
            }
        }
        true
    })
    .await;
}

pub fn log(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("{name}.log"))
}

/// A folder for one scenario's worker logs, kept after the test (`/tmp/landlord-chaos/<scenario>`) so a
/// failure can be read; emptied when the scenario starts.
pub fn log_dir(scenario: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("landlord-chaos").join(scenario);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("log folder");
    dir
}
