//! `landlord-bench`: Landlord's figures, each beside its baseline measured in the same run. It builds and
//! starts what it needs (the release binaries of the ingress and the worker, a private `nats-server`),
//! against the MariaDB and PostgreSQL `scripts/services` runs. Results go in `BENCHMARKS.md`.
//!
//! ```sh
//! scripts/services                                                          # once: the services
//! cargo build --release --locked -p landlord-cli -p landlord-bench --bins   # one build for everything
//! target/release/landlord-bench all     # or one of: resume, overhead, throughput, ingress, memory
//! ```
//!
//! One build of both packages, not `cargo run -p landlord-bench`: the release profile's whole-program
//! LTO makes builds of different package sets rebuild their shared dependencies after one another, and
//! the benchmark builds the binaries it runs with the same command (a no-op after it).

mod cpu;
mod direct;
mod ingress;
mod memory;
mod overhead;
mod resume;
mod stack;
mod stats;
mod throughput;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Landlord's benchmarks, each beside its baseline")]
struct Cli {
    #[command(subcommand)]
    figure: Figure,
}

#[derive(Subcommand)]
enum Figure {
    /// A worker SIGKILLed mid-step: time until another resumes its tenant; lease writes per running tenant.
    Resume {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// One tenant, webhook → active, against the same database work done directly.
    Overhead {
        #[arg(long, default_value_t = 12)]
        runs: usize,
    },
    /// A burst of tenants with 1, 2 and 4 workers, against as many direct client loops.
    Throughput {
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        workers: Vec<usize>,
        #[arg(long, default_value_t = 40)]
        tenants: usize,
        #[arg(long, value_enum, default_value = "sqlite")]
        control_plane: stack::ControlPlane,
    },
    /// Signed webhooks per second into JetStream, against a bare handler and bare publishes.
    Ingress {
        #[arg(long, default_value_t = 3)]
        repeats: usize,
    },
    /// Idle RSS of ingress and worker, and after a burst of tenants.
    Memory {
        #[arg(long, default_value_t = 1000)]
        tenants: usize,
        #[arg(long, value_enum, default_value = "sqlite")]
        control_plane: stack::ControlPlane,
    },
    /// Every figure with its defaults.
    All,
    /// The ingress figure's baseline server (started by `ingress`).
    #[command(hide = true)]
    BareServer {
        #[arg(long)]
        nats: String,
        #[arg(long)]
        port: u16,
    },
}

/// Letters that make this run's tenant names its own.
pub fn run_tag() -> String {
    let slug = landlord_tests::unique_slug("b");
    slug.rsplit('-').next().unwrap_or("run").to_owned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Figure::BareServer { nats, port } = &cli.figure {
        return ingress::bare_server(nats, *port).await;
    }
    stack::build_binaries()?;
    println!("machine: {} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), kernel());
    match cli.figure {
        Figure::Resume { runs } => resume::run(runs).await,
        Figure::Overhead { runs } => overhead::run(runs).await,
        Figure::Throughput { workers, tenants, control_plane } => {
            throughput::run(&workers, tenants, control_plane).await
        }
        Figure::Ingress { repeats } => ingress::run(repeats).await,
        Figure::Memory { tenants, control_plane } => memory::run(tenants, control_plane).await,
        Figure::All => {
            resume::run(5).await?;
            overhead::run(12).await?;
            throughput::run(&[1, 2, 4], 40, stack::ControlPlane::Sqlite).await?;
            ingress::run(3).await?;
            memory::run(1000, stack::ControlPlane::Sqlite).await
        }
        Figure::BareServer { .. } => unreachable!("handled above"),
    }
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| format!("Linux {}", s.trim())).unwrap_or_default()
}
