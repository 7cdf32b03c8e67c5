//! Crash → resume: two workers with the default settings; a tenant's health check is held (its URL
//! answers 503) so its run is mid-step; the worker running it is SIGKILLed and the health URL starts
//! answering. Measured: from the kill to the step started again by the other worker, and to `active`.
//! Beside it, what keeping runs alive costs: control-plane lease renewals and JetStream progress
//! acknowledgements per running tenant per second, with one and with eight tenants mid-step.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use landlord_protocol::{EventKind, TenantId};
use landlord_tests::Engine;
use landlord_worker::telemetry;

use crate::{
    stack::{ControlPlane, Stack, metric},
    stats::{median, median_f, ms},
};

/// A health URL the benchmark controls: 503 while held, 200 otherwise.
async fn health_server(held: Arc<AtomicBool>) -> anyhow::Result<String> {
    // Any path: the URL ends in the tenant's hostname, which may be empty when DNS is not configured.
    let app = axum::Router::new().fallback(move || {
        let held = held.clone();
        async move {
            if held.load(Ordering::SeqCst) {
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            } else {
                axum::http::StatusCode::OK
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/health/{{hostname}}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    Ok(url)
}

/// Waits until `tenant`'s health check has started (after `since`).
async fn in_health_check(stack: &Stack, tenant: &TenantId, since: Instant) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started = stack.events.of(tenant).into_iter().find(|(at, e)| {
            *at >= since && e.kind == EventKind::StepStarted && e.step.as_deref() == Some("health_check")
        });
        if let Some((at, _)) = started {
            return Ok(at);
        }
        anyhow::ensure!(Instant::now() < deadline, "tenant {tenant} never reached its health check");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Lease renewals and progress acknowledgements so far, over all workers.
async fn keep_alive_counts(stack: &Stack) -> (f64, f64) {
    let (mut renewals, mut acks) = (0.0, 0.0);
    for w in &stack.workers {
        renewals += metric(&w.http, telemetry::LEASE_RENEWALS).await;
        acks += metric(&w.http, telemetry::PROGRESS_ACKS).await;
    }
    (renewals, acks)
}

/// Per running tenant per second over `window`, with `running` tenants mid-step.
async fn keep_alive_rate(stack: &Stack, running: usize, window: Duration) -> (f64, f64) {
    let (r0, a0) = keep_alive_counts(stack).await;
    tokio::time::sleep(window).await;
    let (r1, a1) = keep_alive_counts(stack).await;
    let per = running as f64 * window.as_secs_f64();
    ((r1 - r0) / per, (a1 - a0) / per)
}

pub async fn run(runs: usize) -> anyhow::Result<()> {
    let held = Arc::new(AtomicBool::new(true));
    let health = health_server(held.clone()).await?;
    let mut stack = Stack::start(Engine::MariaDb, ControlPlane::Sqlite).await?;
    stack.worker_extra.push(("LANDLORD_HEALTH_URL".into(), health));
    stack.start_ingress().await?;
    stack.start_worker().await?;
    stack.start_worker().await?;
    let store = stack.store().await?;
    let http = reqwest::Client::new();
    let tag = crate::run_tag();

    let (mut to_step, mut to_active, mut renew_1, mut acks_1) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        held.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let tenant = stack.purchase(&http, &format!("bench-{tag}-r{i}")).await?;
        in_health_check(&stack, &tenant, started).await?;
        let (renewals, acks) = keep_alive_rate(&stack, 1, Duration::from_secs(5)).await;
        renew_1.push(renewals);
        acks_1.push(acks);

        let holder = store.lease_holder(&tenant).await?.ok_or_else(|| anyhow::anyhow!("no lease held"))?;
        let pid: u32 = holder.split('-').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let victim = stack.workers.iter().position(|w| w.pid() == pid);
        let victim = victim.ok_or_else(|| anyhow::anyhow!("no worker with pid {pid} holds {holder}"))?;
        let mut dead = stack.workers.remove(victim);
        dead.kill();
        let killed = Instant::now();
        held.store(false, Ordering::SeqCst);

        let resumed = in_health_check(&stack, &tenant, killed).await?;
        let active = stack.events.wait_active(std::slice::from_ref(&tenant), Duration::from_secs(120)).await[0];
        to_step.push(resumed - killed);
        to_active.push(active - killed);
        println!(
            "run {i}: killed pid {pid}; health check started again after {}, active after {}",
            ms(resumed - killed),
            ms(active - killed)
        );
        stack.start_worker().await?;
    }

    // Eight tenants mid-step at once (two workers, four runs each by default).
    held.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let mut eight = Vec::new();
    for j in 0..8 {
        eight.push(stack.purchase(&http, &format!("bench-{tag}-e{j}")).await?);
    }
    for t in &eight {
        in_health_check(&stack, t, started).await?;
    }
    let (renew_8, acks_8) = keep_alive_rate(&stack, 8, Duration::from_secs(10)).await;
    held.store(false, Ordering::SeqCst);
    stack.events.wait_active(&eight, Duration::from_secs(120)).await;

    println!();
    println!("## crash → resume ({runs} runs, defaults: ack wait 4 s, lease 4 s)");
    println!("| figure | median | worst |");
    println!("|---|---|---|");
    println!(
        "| SIGKILL → step started again by the other worker | {} | {} |",
        ms(median(&to_step)),
        ms(*to_step.iter().max().unwrap_or(&Duration::ZERO))
    );
    println!(
        "| SIGKILL → tenant active | {} | {} |",
        ms(median(&to_active)),
        ms(*to_active.iter().max().unwrap_or(&Duration::ZERO))
    );
    println!();
    println!("| keeping runs alive, per running tenant per second | 1 running | 8 running |");
    println!("|---|---|---|");
    println!("| lease renewal rounds (one UPDATE each) | {:.2} | {:.2} |", median_f(&renew_1), renew_8);
    println!("| progress acknowledgements (JetStream) | {:.2} | {:.2} |", median_f(&acks_1), acks_8);
    drop(store);
    stack.clean_up().await;
    Ok(())
}
