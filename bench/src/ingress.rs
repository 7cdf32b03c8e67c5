//! The ingress: signed webhooks per second into JetStream-acknowledged commands, with `c` clients each
//! sending one request after another, beside two baselines in the same run —
//! - a bare HTTP handler (this binary, `landlord-bench bare-server`, its own process like the ingress)
//!   that publishes the request's bytes to JetStream, waits for the acknowledgement and answers 200:
//!   the limit of HTTP plus JetStream on this machine;
//! - bare async-nats publishes with acknowledgements, `c` at a time, no HTTP.
//!
//! Then the latency at half the ingress's peak rate, open loop (requests start on a schedule, and each
//! one's latency counts from its scheduled start, so a stall is not hidden by the client waiting).

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use landlord_tests::{Engine, free_port};
use secrecy::SecretString;

use crate::{
    stack::{ControlPlane, Proc, Stack, wait_ready},
    stats::{median_f, ms, percentile},
};

const WINDOW: Duration = Duration::from_secs(5);
const BARE_STREAM: &str = "BENCH_BARE";

/// Makes unique signed checkout events quickly: one template, the ids swapped in.
#[derive(Clone)]
struct Bodies {
    template: Arc<String>,
    secret: SecretString,
    run: String,
    next: Arc<AtomicU64>,
}

impl Bodies {
    fn new(secret: &str) -> Self {
        let (body, _) = landlord_tests::purchase_body("bench-ingress-xxxxxxxx", 10, 10);
        let template = String::from_utf8(body).expect("json").replace("xxxxxxxx", "{n}");
        Self {
            template: Arc::new(template),
            secret: SecretString::from(secret.to_owned()),
            run: crate::run_tag(),
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    fn next(&self) -> (Vec<u8>, String) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let body = self.template.replace("{n}", &format!("{}{n}", self.run)).into_bytes();
        let sig = landlord_ingress::stripe::signature::sign(&body, &self.secret, chrono::Utc::now().timestamp());
        (body, sig)
    }
}

/// Requests per second with `c` clients posting for [`WINDOW`], and each request's latency.
async fn closed_loop(url: &str, bodies: &Bodies, c: usize) -> anyhow::Result<(f64, Vec<Duration>)> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(c).build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (http, bodies, stop, url) = (http.clone(), bodies.clone(), stop.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (body, sig) = bodies.next();
                let start = Instant::now();
                let res = http.post(&url).header("Stripe-Signature", sig).body(body).send().await?;
                anyhow::ensure!(res.status() == 200, "answered {}", res.status());
                took.push(start.elapsed());
            }
            Ok(took)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(WINDOW).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all.len() as f64 / started.elapsed().as_secs_f64(), all))
}

/// What an open loop saw: the latencies of the answered requests, and how many were refused with `503`
/// (the ingress's concurrency limit shedding load; Stripe retries those).
struct OpenLoop {
    took: Vec<Duration>,
    refused: usize,
}

/// Latencies at `rate` requests per second for [`WINDOW`], each from its scheduled start.
async fn open_loop(url: &str, bodies: &Bodies, rate: f64) -> anyhow::Result<OpenLoop> {
    let http = reqwest::Client::new();
    let every = Duration::from_secs_f64(1.0 / rate);
    let count = (WINDOW.as_secs_f64() * rate) as usize;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let due = started + every * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
        let (http, url, (body, sig)) = (http.clone(), url.to_owned(), bodies.next());
        tasks.push(tokio::spawn(async move {
            let res = http.post(&url).header("Stripe-Signature", sig).body(body).send().await?;
            if res.status() == 503 {
                return Ok(None);
            }
            anyhow::ensure!(res.status() == 200, "answered {}", res.status());
            Ok(Some(due.elapsed()))
        }));
    }
    let mut seen = OpenLoop { took: Vec::new(), refused: 0 };
    for t in tasks {
        match t.await?? {
            Some(took) => seen.took.push(took),
            None => seen.refused += 1,
        }
    }
    Ok(seen)
}

/// `landlord-bench bare-server`: the baseline handler.
pub async fn bare_server(nats: &str, port: u16) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(async_nats::connect(nats).await?);
    let js = Arc::new(js);
    let seq = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/webhooks/stripe",
            axum::routing::post(move |body: bytes::Bytes| {
                let (js, seq) = (js.clone(), seq.clone());
                async move {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Nats-Msg-Id", format!("bare-{n}").as_str());
                    match js.publish_with_headers(format!("bench.bare.{n}"), headers, body).await {
                        Ok(ack) => match ack.await {
                            Ok(_) => axum::http::StatusCode::OK,
                            Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        },
                        Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    }
                }
            }),
        )
        .route("/readyz", axum::routing::get(|| async { "ready" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The stream the baselines publish to: file storage, like Landlord's commands.
async fn bare_stream(client: &async_nats::Client) -> anyhow::Result<async_nats::jetstream::Context> {
    let js = async_nats::jetstream::new(client.clone());
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: BARE_STREAM.into(),
        subjects: vec!["bench.bare.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    Ok(js)
}

/// Acknowledged publishes per second, `c` at a time, for [`WINDOW`].
async fn bare_publishes(js: &async_nats::jetstream::Context, body: &[u8], c: usize) -> anyhow::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let body = bytes::Bytes::copy_from_slice(body);
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (js, stop, seq, body) = (js.clone(), stop.clone(), seq.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("pub-{n}").as_str());
                js.publish_with_headers(format!("bench.bare.p{n}"), headers, body.clone()).await?.await?;
                done += 1;
            }
            Ok::<_, anyhow::Error>(done)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(WINDOW).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

pub async fn run(repeats: usize) -> anyhow::Result<()> {
    let mut stack = Stack::start(Engine::MariaDb, ControlPlane::Sqlite).await?;
    stack.start_ingress().await?;
    let landlord_url = format!("{}/webhooks/stripe", stack.ingress_url);
    let port = free_port();
    let child = Command::new(std::env::current_exe()?)
        .args(["bare-server", "--nats", &stack.nats.url, "--port", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    let _bare = Proc::adopt(child, format!("http://127.0.0.1:{port}"));
    wait_ready(&format!("http://127.0.0.1:{port}/readyz")).await?;
    let bare_url = format!("http://127.0.0.1:{port}/webhooks/stripe");
    let js = bare_stream(&stack.client).await?;
    let bodies = Bodies::new(&stack.webhook_secret);
    let sample = bodies.next().0;

    println!();
    println!(
        "## ingress: signed webhooks → JetStream-acknowledged commands ({repeats} windows of {} s each, medians)",
        WINDOW.as_secs()
    );
    println!(
        "| clients | Landlord ingress | bare HTTP + JetStream handler | ratio | bare async-nats publishes | ratio | Landlord p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut peak: f64 = 0.0;
    for c in [16, 64] {
        let (mut l, mut b, mut n, mut p99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats {
            let (rate, took) = closed_loop(&landlord_url, &bodies, c).await?;
            l.push(rate);
            p99.push(percentile(&took, 99.0).as_secs_f64());
            b.push(closed_loop(&bare_url, &bodies, c).await?.0);
            n.push(bare_publishes(&js, &sample, c).await?);
        }
        let (l, b, n) = (median_f(&l), median_f(&b), median_f(&n));
        peak = peak.max(l);
        println!(
            "| {c} | {l:.0}/s | {b:.0}/s | {:.2} | {n:.0}/s | {:.2} | {} |",
            l / b,
            l / n,
            ms(Duration::from_secs_f64(median_f(&p99)))
        );
    }
    let half = peak / 2.0;
    let (mut landlord_p99, mut landlord_p50, mut bare_p99, mut bare_p50) = (vec![], vec![], vec![], vec![]);
    let (mut landlord_refused, mut bare_refused, mut sent) = (0, 0, 0);
    for _ in 0..repeats {
        let seen = open_loop(&landlord_url, &bodies, half).await?;
        landlord_p99.push(percentile(&seen.took, 99.0).as_secs_f64());
        landlord_p50.push(percentile(&seen.took, 50.0).as_secs_f64());
        landlord_refused += seen.refused;
        sent += seen.took.len() + seen.refused;
        let seen = open_loop(&bare_url, &bodies, half).await?;
        bare_p99.push(percentile(&seen.took, 99.0).as_secs_f64());
        bare_p50.push(percentile(&seen.took, 50.0).as_secs_f64());
        bare_refused += seen.refused;
    }
    println!();
    println!("| at half the peak, {half:.0}/s, open loop ({sent} requests each) | p50 | p99 | refused (503) |");
    println!("|---|---|---|---|");
    let d = |v: &[f64]| ms(Duration::from_secs_f64(median_f(v)));
    println!("| Landlord ingress | {} | {} | {landlord_refused} |", d(&landlord_p50), d(&landlord_p99));
    println!("| bare HTTP + JetStream handler | {} | {} | {bare_refused} |", d(&bare_p50), d(&bare_p99));
    stack.clean_up().await;
    Ok(())
}
