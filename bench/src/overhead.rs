//! Overhead per tenant: one signed webhook → `active` through the ingress and one worker (defaults),
//! beside the same database work done by hand ([`crate::direct`]) in two ways: over the same driver with
//! a kept-open administrator connection (the stricter baseline), and with the database's own client as
//! the by-hand figure was taken. Interleaved run by run so all see the same machine; the first
//! of each is a warm-up. On MariaDB and PostgreSQL, with the control plane on SQLite and on PostgreSQL.

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
    println!("direct: the same work over the same driver with a kept-open administrator connection;");
    println!("client: the database's own command-line client, one call as the administrator, one as the login");
    println!(
        "| tenant database | control plane | webhook → active | direct | ratio | difference | client | ratio | difference |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// The three ways of doing one provisioning, measured in turn.
#[derive(Clone, Copy)]
enum Way {
    Landlord,
    Direct,
    Client,
}

async fn one(engine: Engine, cp: ControlPlane, runs: usize) -> anyhow::Result<String> {
    let mut stack = Stack::start(engine, cp).await?;
    stack.start_ingress().await?;
    stack.start_worker().await?;
    let direct = Direct::connect(engine).await?;
    let http = reqwest::Client::new();
    let tag = crate::run_tag();
    let (mut landlord, mut baseline, mut client) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    let order = [Way::Landlord, Way::Direct, Way::Client];
    for i in 0..=runs {
        // Which goes first rotates, so none always finds the server warmed by another.
        for k in 0..order.len() {
            match order[(i + k) % order.len()] {
                Way::Landlord => {
                    let started = Instant::now();
                    let tenant = stack.purchase(&http, &format!("bench-{tag}-o{i}")).await?;
                    let active =
                        stack.events.wait_active(std::slice::from_ref(&tenant), Duration::from_secs(60)).await[0];
                    last = Some((tenant, started));
                    if i > 0 {
                        landlord.push(active - started);
                    }
                }
                Way::Direct => {
                    let started = Instant::now();
                    direct.provision(&format!("tenant_bench_{tag}_d{i}")).await?;
                    if i > 0 {
                        baseline.push(started.elapsed());
                    }
                }
                Way::Client => {
                    let started = Instant::now();
                    direct.provision_with_client(&format!("tenant_bench_{tag}_c{i}")).await?;
                    if i > 0 {
                        client.push(started.elapsed());
                    }
                }
            }
        }
    }
    if let Some((tenant, started)) = last {
        timeline(&stack, &tenant, started);
    }
    let (l, b, c) = (median(&landlord), median(&baseline), median(&client));
    let line = format!(
        "| {engine:?} | {cp:?} | {} | {} | {:.2} | {} | {} | {:.2} | {} |",
        ms(l),
        ms(b),
        l.as_secs_f64() / b.as_secs_f64(),
        ms(l.saturating_sub(b)),
        ms(c),
        l.as_secs_f64() / c.as_secs_f64(),
        signed_ms(l, c),
    );
    println!("{line}");
    stack.clean_up().await;
    Ok(line)
}

/// `a - b` in milliseconds, negative when `a` is quicker.
fn signed_ms(a: Duration, b: Duration) -> String {
    format!("{:+.1} ms", (a.as_secs_f64() - b.as_secs_f64()) * 1000.0)
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
