//! Memory: resident set (VmRSS) of the ingress and of a worker once started and idle, and again after a
//! burst of 1 000 tenants (idle again: right after, 10 s and 30 s later); with the burst's own rate beside it.

use std::time::Duration;

use landlord_tests::Engine;

use crate::stack::{ControlPlane, Stack};

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub async fn run(tenants: usize, cp: ControlPlane) -> anyhow::Result<()> {
    let mut stack = Stack::start(Engine::MariaDb, cp).await?;
    stack.start_ingress().await?;
    stack.start_worker().await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ingress = stack.ingress.as_ref().expect("started");
    let (ingress_idle, worker_idle) = (ingress.memory(), stack.workers[0].memory());

    let tag = crate::run_tag();
    let started = std::time::Instant::now();
    let posted = crate::throughput::post_all(&stack, &tag, tenants).await?;
    let ids: Vec<_> = posted.iter().map(|(t, _)| *t).collect();
    let active = stack.events.wait_active(&ids, Duration::from_secs(60 + tenants as u64)).await;
    let took = *active.iter().max().expect("tenants") - started;
    crate::throughput::where_the_time_went(&stack, &posted);
    let (ingress_peak, worker_peak) = (stack.ingress.as_ref().expect("started").memory(), stack.workers[0].memory());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (ingress_10, worker_10) = (stack.ingress.as_ref().expect("started").memory(), stack.workers[0].memory());
    // A SQLite control plane closes connections idle for 10 s (checked every 10 s): 30 s after the burst
    // they are gone.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (ingress_after, worker_after) = (stack.ingress.as_ref().expect("started").memory(), stack.workers[0].memory());

    println!();
    println!(
        "## memory (VmRSS), one ingress and one worker, control plane {cp:?}; {tenants} tenants in {:.1} s ({:.0}/min)",
        took.as_secs_f64(),
        tenants as f64 / took.as_secs_f64() * 60.0
    );
    println!("| process | idle | right after the burst | 10 s later | 30 s later | 10 s / idle | 30 s / idle |");
    println!("|---|---|---|---|---|---|---|");
    for (name, idle, peak, ten, after) in [
        ("ingress", ingress_idle, ingress_peak, ingress_10, ingress_after),
        ("worker", worker_idle, worker_peak, worker_10, worker_after),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} | {:.2} | {:.2} |",
            mib(idle.total),
            mib(peak.total),
            mib(ten.total),
            mib(after.total),
            ten.total as f64 / idle.total as f64,
            after.total as f64 / idle.total as f64
        );
    }
    // What the resident memory is: pages of the program mapped from its file (shared and clean) and
    // the process's private memory.
    println!();
    println!("| process, idle → 30 s after | mapped from files (RssFile) | private (RssAnon) |");
    println!("|---|---|---|");
    for (name, idle, after) in [("ingress", ingress_idle, ingress_after), ("worker", worker_idle, worker_after)] {
        println!("| {name} | {} → {} | {} → {} |", mib(idle.file), mib(after.file), mib(idle.anon), mib(after.anon));
    }
    stack.clean_up().await;
    Ok(())
}
