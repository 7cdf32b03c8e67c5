//! `landlord`: run everything locally, send a demo purchase, watch progress, inspect tenants, check
//! plan scripts.

mod api;
mod demo;
mod dev;
mod nats_child;
mod purchases;
mod scripts;
mod secrets;
mod servers;
mod tenants;
mod watch;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// Secret `landlord dev` and `landlord demo-checkout` share when `LANDLORD_STRIPE_WEBHOOK_SECRET` is unset.
/// Only for local development: a deployment sets its own.
pub const DEV_WEBHOOK_SECRET: &str = "whsec_landlord_local_development_only";

#[derive(Debug, Parser)]
#[command(name = "landlord", version, about = "Turns a payment or an operator's request into a running tenant")]
struct Cli {
    /// Optional TOML file with the same keys as the LANDLORD_* variables (lowercase, without the prefix).
    #[arg(long, global = true, env = "LANDLORD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ingress and worker in one process; starts a local nats-server when none answers.
    Dev,
    /// Sends a signed `checkout.session.completed` to an ingress, as Stripe would, and prints the tenant id.
    DemoCheckout(demo::Args),
    /// Follows a tenant's steps as progress bars until it is active (exit 0), failed (1) or waiting for
    /// an operator (2); without a tenant, prints every tenant's events (history first, then live).
    Watch(watch::Args),
    /// Tenants, through the admin API (LANDLORD_API_URL, LANDLORD_ADMIN_TOKEN).
    Tenants(tenants::Args),
    /// Who asked for what, newest first, through the admin API.
    Audit {
        #[command(flatten)]
        api: api::ApiArgs,
        /// One tenant's entries.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The database servers tenants are placed on, through the admin API.
    Servers(servers::Args),
    /// Everything waiting for a person: tenants in awaiting_operator and refused purchases.
    Queue {
        #[command(flatten)]
        api: api::ApiArgs,
    },
    /// Paid purchases that did not become a tenant, for an operator to settle.
    #[command(subcommand)]
    Purchases(purchases::Command),
    /// Plan scripts.
    #[command(subcommand)]
    Scripts(scripts::Command),
    /// Keys of the tenant secrets kept encrypted in the control plane.
    #[command(subcommand)]
    Secrets(secrets::Command),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    landlord_cli::init_tracing();
    let config = cli.config.as_deref();
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Dev => done(dev::run(config).await),
        Command::DemoCheckout(args) => done(demo::run(args).await),
        // Answers with its exit code: 0 active, 1 failed, 2 waiting for an operator.
        Command::Watch(args) => watch::run(config, args).await,
        Command::Tenants(args) => done(tenants::run(config, args).await),
        Command::Audit { api, tenant, limit } => done(tenants::audit(&api, tenant, limit).await),
        Command::Servers(args) => done(servers::run(args).await),
        Command::Queue { api } => done(tenants::queue(&api).await),
        Command::Purchases(cmd) => done(purchases::run(config, cmd).await),
        Command::Scripts(cmd) => done(scripts::run(cmd).await),
        Command::Secrets(cmd) => done(secrets::run(config, cmd).await),
    }
}
