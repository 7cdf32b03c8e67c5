//! Throughput: a burst of signed webhooks, all posted at once, with 1, 2 and 4 worker processes (default
//! settings: four runs at a time each) until every tenant is active; beside it, the same database work
//! done by as many direct client loops as Landlord runs at once (four per worker), with Landlord's
//! processes still running, idle: over the same driver, and with the `mariadb` command-line client (as
//! the by-hand figure was taken). Also says where a
//! tenant's time went: waiting in the queue, in its steps, and around them.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use landlord_protocol::{EventKind, TenantId};
use landlord_tests::Engine;

use crate::{
    cpu,
    direct::Direct,
    stack::{ControlPlane, Proc, Stack},
    stats::{median, ms},
};

/// Runs at once per worker process (`LANDLORD_WORKER_CONCURRENCY`'s default).
const PER_WORKER: usize = 4;

pub struct Burst {
    pub per_minute: f64,
    pub baseline_per_minute: f64,
    /// The same loops with the database's own command-line client ([`Direct::provision_with_client`]).
    pub client_per_minute: f64,
}

pub async fn run(workers: &[usize], tenants: usize, cp: ControlPlane) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for &n in workers {
        let b = burst(n, tenants, cp).await?;
        lines.push(format!(
            "| {tenants} tenants, {n} worker(s) | {:.0}/min | {:.0}/min ({} loops) | {:.2} | {:.0}/min | {:.2} |",
            b.per_minute,
            b.baseline_per_minute,
            n * PER_WORKER,
            b.per_minute / b.baseline_per_minute,
            b.client_per_minute,
            b.per_minute / b.client_per_minute,
        ));
    }
    println!();
    println!("## throughput, control plane {cp:?}, tenant databases on MariaDB");
    println!("| burst | Landlord | direct loops (driver) | ratio | loops with the mariadb client | ratio |");
    println!("|---|---|---|---|---|---|");
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// One burst of `tenants` with `workers` worker processes, and its baseline.
pub async fn burst(workers: usize, tenants: usize, cp: ControlPlane) -> anyhow::Result<Burst> {
    let mut stack = Stack::start(Engine::MariaDb, cp).await?;
    stack.start_ingress().await?;
    for _ in 0..workers {
        stack.start_worker().await?;
    }
    let tag = crate::run_tag();
    let meter = cpu::Meter::start(vec![
        ("workers".into(), stack.workers.iter().map(Proc::pid).collect()),
        ("ingress".into(), stack.ingress.iter().map(Proc::pid).collect()),
        ("nats-server".into(), cpu::named("nats-server")),
        ("mariadbd".into(), cpu::named("mariadbd")),
        ("benchmark client".into(), vec![std::process::id()]),
    ]);
    let started = Instant::now();
    let posted = post_all(&stack, &tag, tenants).await?;
    let ids: Vec<TenantId> = posted.iter().map(|(t, _)| *t).collect();
    let timeout = Duration::from_secs(60 + tenants as u64);
    let active = stack.events.wait_active(&ids, timeout).await;
    let took = *active.iter().max().expect("tenants") - started;
    let per_minute = tenants as f64 / took.as_secs_f64() * 60.0;
    where_the_time_went(&stack, &posted);
    println!("  CPU per tenant, Landlord: {}", cpu::line(&meter.per(tenants)));

    let loops = workers * PER_WORKER;
    let direct = Arc::new(Direct::connect(Engine::MariaDb).await?);
    // Which baseline goes first alternates from burst to burst: the second finds the server holding the
    // first one's databases and logins.
    let (baseline_per_minute, client_per_minute) = if workers % 2 == 1 {
        let driver = loops_of(&direct, loops, tenants, &format!("{tag}_b"), false).await?;
        (driver, loops_of(&direct, loops, tenants, &format!("{tag}_c"), true).await?)
    } else {
        let client = loops_of(&direct, loops, tenants, &format!("{tag}_c"), true).await?;
        (loops_of(&direct, loops, tenants, &format!("{tag}_b"), false).await?, client)
    };
    // Stopped only now: the baseline runs beside Landlord's processes, idle, as Landlord ran beside them.
    stack.clean_up().await;
    println!(
        "{tenants} tenants, {workers} worker(s): Landlord {per_minute:.0}/min in {}, direct {baseline_per_minute:.0}/min, \
         client {client_per_minute:.0}/min",
        ms(took)
    );
    Ok(Burst { per_minute, baseline_per_minute, client_per_minute })
}

/// `tenants` provisionings by hand, `loops` at a time, over the driver or with the command-line client;
/// tenants per minute, with the CPU they took.
async fn loops_of(direct: &Arc<Direct>, loops: usize, tenants: usize, tag: &str, client: bool) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let meter = cpu::Meter::start(vec![
        ("mariadbd".into(), cpu::named("mariadbd")),
        ("benchmark client".into(), vec![std::process::id()]),
    ]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..loops {
        let (direct, next, tag) = (direct.clone(), next.clone(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= tenants {
                    return Ok::<_, anyhow::Error>(());
                }
                let name = format!("tenant_bench_{tag}{i}");
                if client { direct.provision_with_client(&name).await? } else { direct.provision(&name).await? }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let per_minute = tenants as f64 / started.elapsed().as_secs_f64() * 60.0;
    // (The client processes' own CPU is not counted: they are gone before it is read.)
    let way = if client { "mariadb client" } else { "direct" };
    println!("  CPU per tenant, {way}: {}", cpu::line(&meter.per(tenants)));
    Ok(per_minute)
}

/// Posts `tenants` purchases, 32 at a time; each tenant with when its webhook was answered.
pub async fn post_all(stack: &Stack, tag: &str, tenants: usize) -> anyhow::Result<Vec<(TenantId, Instant)>> {
    let http = reqwest::Client::new();
    futures::stream::iter(0..tenants)
        .map(|i| {
            let (http, slug) = (&http, format!("bench-{tag}-t{i}"));
            async move {
                let tenant = stack.purchase(http, &slug).await?;
                Ok::<_, anyhow::Error>((tenant, Instant::now()))
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Medians over the burst's tenants: from the webhook's answer to the run's first event (in the queue),
/// the steps' own durations, and the rest of the run (recording, publishing, leases).
pub fn where_the_time_went(stack: &Stack, posted: &[(TenantId, Instant)]) {
    let (mut queued, mut in_steps, mut around) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_step: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
    for (tenant, answered) in posted {
        let events = stack.events.of(tenant);
        for (_, e) in events.iter().filter(|(_, e)| e.kind == EventKind::StepSucceeded) {
            if let (Some(step), Some(d)) = (&e.step, e.duration_ms) {
                per_step.entry(step.clone()).or_default().push(Duration::from_millis(d));
            }
        }
        let Some((first, _)) = events.first() else { continue };
        let Some(active) = stack.events.reached(tenant, landlord_protocol::TenantStatus::Active) else { continue };
        let steps: u64 =
            events.iter().filter(|(_, e)| e.kind == EventKind::StepSucceeded).filter_map(|(_, e)| e.duration_ms).sum();
        let run = active.saturating_duration_since(*first);
        queued.push(first.saturating_duration_since(*answered));
        in_steps.push(Duration::from_millis(steps));
        around.push(run.saturating_sub(Duration::from_millis(steps)));
    }
    println!(
        "  per tenant (medians): queued {}, in steps {}, around the steps {}",
        ms(median(&queued)),
        ms(median(&in_steps)),
        ms(median(&around))
    );
    let steps: Vec<String> = per_step.iter().map(|(step, d)| format!("{step} {}", ms(median(d)))).collect();
    println!("  each step (medians): {}", steps.join(", "));
}
