//! `landlord servers …`: the registry of database servers tenants are placed on, through the admin API.
//! An admin URL is read from standard input, never from the command line, where `ps` and shell history
//! would show its password.

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Api, ApiArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Every server with its tenants and free places.
    List,
    /// Registers a server; its admin URL (`mysql://…` or `postgres://…`) is read from standard input.
    Register {
        name: String,
        /// How many tenants it may hold.
        #[arg(long)]
        capacity: u32,
        /// A server for one tenant (handed over with `landlord tenants hand-over` instead, usually).
        #[arg(long)]
        dedicated: bool,
    },
    /// Takes new tenants again.
    Open { name: String },
    /// Keeps its tenants, takes no new ones.
    Drain { name: String },
    /// Takes no new tenants; meant to be empty.
    Close { name: String },
    /// Changes how many tenants it may hold.
    Capacity { name: String, capacity: u32 },
}

/// The first line of standard input: an admin URL piped in (`landlord servers register pool-2 --capacity 50 < url`).
pub fn admin_url_from_stdin() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("admin URL (mysql://… or postgres://…), then Enter:");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let url = line.trim().to_owned();
    if url.is_empty() {
        anyhow::bail!("no admin URL on standard input");
    }
    Ok(url)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = Api::new(&args.api)?;
    let path = |name: &str| {
        format!("/v1/servers/{}", url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>())
    };
    let answer = match args.command {
        Command::List => {
            let list = api.call(Method::GET, "/v1/servers", None, None).await?;
            println!(
                "{:<24}  {:<8}  {:<9}  {:<8}  {:>8}  {:>6}  address",
                "server", "engine", "kind", "state", "placed", "free"
            );
            for s in list["servers"].as_array().into_iter().flatten() {
                print_row(s);
            }
            return Ok(());
        }
        Command::Register { name, capacity, dedicated } => {
            let admin_url = admin_url_from_stdin()?;
            let kind = if dedicated { "dedicated" } else { "shared" };
            let body = json!({"name": name, "admin_url": admin_url, "capacity": capacity, "kind": kind});
            api.call(Method::POST, "/v1/servers", Some(body), None).await?
        }
        Command::Open { name } => api.call(Method::PATCH, &path(&name), Some(json!({"state": "open"})), None).await?,
        Command::Drain { name } => {
            api.call(Method::PATCH, &path(&name), Some(json!({"state": "draining"})), None).await?
        }
        Command::Close { name } => {
            api.call(Method::PATCH, &path(&name), Some(json!({"state": "closed"})), None).await?
        }
        Command::Capacity { name, capacity } => {
            api.call(Method::PATCH, &path(&name), Some(json!({"capacity": capacity})), None).await?
        }
    };
    print_row(&answer);
    Ok(())
}

fn print_row(s: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!(
        "{:<24}  {:<8}  {:<9}  {:<8}  {:>8}  {:>6}  {}",
        text(&s["name"]),
        text(&s["engine"]),
        text(&s["kind"]),
        text(&s["state"]),
        format!("{}/{}", s["placed"], s["capacity"]),
        s["free"],
        text(&s["address"])
    );
}
