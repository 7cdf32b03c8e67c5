//! Overhead per tenant: one signed webhook → `active` through the ingress and one worker (defaults),
//! beside the same database work done directly ([`crate::direct`]), interleaved run by run so both see
//! the same machine; the first of each is a warm-up. On MariaDB and PostgreSQL, with the control plane on
//! SQLite and on PostgreSQL.

use std::time::{Duration, Instant};

use landlord_tests::Engine;

use crate::{
    direct::Direct,
    stack::{ControlPlane, Stack},
    stats::{median, ms},
};

pub async fn run(runs: usize) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for engine in [Engine::MariaDb, Engine::Postgres] {
        for cp in [ControlPlane::Sqlite, ControlPlane::Postgres] {
            lines.push(one(engine, cp, runs).await?);
        }
    }
    println!();
    println!("## overhead per tenant (median of {runs}, after one warm-up each)");
    println!("| tenant database | control plane | webhook → active | direct | ratio | difference |");
    println!("|---|---|---|---|---|---|");
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

async fn one(engine: Engine, cp: ControlPlane, runs: usize) -> anyhow::Result<String> {
    let mut stack = Stack::start(engine, cp).await?;
    stack.start_ingress().await?;
    stack.start_worker().await?;
    let direct = Direct::connect(engine).await?;
    let http = reqwest::Client::new();
    let tag = crate::run_tag();
    let (mut landlord, mut baseline) = (Vec::new(), Vec::new());
    let mut last = None;
    for i in 0..=runs {
        // Which goes first alternates, so neither always finds the server warmed by the other.
        let direct_first = i % 2 == 1;
        let mut direct_took = Duration::ZERO;
        if direct_first {
            direct_took = by_hand(&direct, &format!("tenant_bench_{tag}_d{i}")).await?;
        }
        let started = Instant::now();
        let tenant = stack.purchase(&http, &format!("bench-{tag}-o{i}")).await?;
        let active = stack.events.wait_active(std::slice::from_ref(&tenant), Duration::from_secs(60)).await[0];
        if !direct_first {
            direct_took = by_hand(&direct, &format!("tenant_bench_{tag}_d{i}")).await?;
        }
        last = Some((tenant, started));
        if i > 0 {
            landlord.push(active - started);
            baseline.push(direct_took);
        }
    }
    if let Some((tenant, started)) = last {
        timeline(&stack, &tenant, started);
    }
    let (l, b) = (median(&landlord), median(&baseline));
    let line = format!(
        "| {engine:?} | {cp:?} | {} | {} | {:.2} | {} |",
        ms(l),
        ms(b),
        l.as_secs_f64() / b.as_secs_f64(),
        ms(l.saturating_sub(b))
    );
    println!("{line}");
    stack.clean_up().await;
    Ok(line)
}

/// How long `direct` takes to provision `name`.
async fn by_hand(direct: &Direct, name: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    direct.provision(name).await?;
    Ok(started.elapsed())
}

/// The last run's progress events, each with its time since the webhook was posted: where its time went.
fn timeline(stack: &Stack, tenant: &landlord_protocol::TenantId, posted: Instant) {
    println!("  the last run, from the webhook posted:");
    for (at, e) in stack.events.of(tenant) {
        let what = match (&e.step, e.duration_ms) {
            (Some(step), Some(d)) => format!("{:?} {step} ({d} ms)", e.kind),
            (Some(step), None) => format!("{:?} {step}", e.kind),
            _ => format!("{:?} {:?}", e.kind, e.status),
        };
        println!("  {:>9}  {what}", ms(at.saturating_duration_since(posted)));
    }
}
