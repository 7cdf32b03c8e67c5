//! `landlord tenants …`: tenants through the admin API (list, show, create, retry, suspend, resume, plan,
//! offboard), so the CLI needs only the ingress's address and a token, and every change it makes is
//! audited as that token's. `repair-grants` is the one command that talks to the databases directly.

use std::path::Path;

use landlord_worker::{WorkerConfig, store::Store};
use reqwest::Method;
use secrecy::ExposeSecret;
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
    /// Every tenant (all pages), narrowed by the filters.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        package: Option<u32>,
        #[arg(long = "type")]
        subscription_type: Option<u32>,
        /// Only tenants whose step of this name failed.
        #[arg(long)]
        failing_step: Option<String>,
        #[arg(long)]
        dns_pending: bool,
        #[arg(long)]
        payment_overdue: bool,
    },
    /// One tenant, its steps and what Landlord made.
    Show {
        id: String,
    },
    /// Creates and provisions a tenant.
    Create {
        #[arg(long)]
        store_name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        package: u32,
        #[arg(long = "type")]
        subscription_type: u32,
        /// Made from the store's name when absent.
        #[arg(long)]
        subdomain: Option<String>,
        /// Running the same command again with the same key makes no second tenant.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Hands a tenant a dedicated server; the admin URL (`mysql://…` or `postgres://…`) is read from
    /// standard input. Landlord checks it can connect, then resumes a tenant waiting for it, or keeps it for
    /// an active tenant's move to a dedicated plan (its next plan change moves the database there).
    HandOver {
        id: String,
        /// The name to register the server under (default `dedicated-<subdomain>`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Resumes a failed (or waiting) tenant at its unfinished steps.
    Retry {
        id: String,
    },
    Suspend {
        id: String,
    },
    /// Resumes a suspended tenant (also restores one waiting to be offboarded).
    Resume {
        id: String,
    },
    /// Moves the tenant to another plan of the catalogue.
    Plan {
        id: String,
        #[arg(long)]
        package: u32,
        #[arg(long = "type")]
        subscription_type: u32,
    },
    /// Offboards the tenant after the grace period (suspended meanwhile), or at once with --now.
    Offboard {
        id: String,
        #[arg(long)]
        now: bool,
    },
    /// Once after upgrading: replaces the wildcard database grants earlier versions gave MariaDB/MySQL
    /// logins (`tenant_ab_c`.* also opened `tenant_abxc`) with escaped ones, on LANDLORD_TENANT_DB_URL.
    RepairGrants,
}

pub async fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    if let Command::RepairGrants = args.command {
        return repair_grants(&WorkerConfig::load(config)?).await;
    }
    let api = Api::new(&args.api)?;
    let tenant_path = |id: &str, end: &str| -> anyhow::Result<String> {
        let id = landlord_protocol::TenantId::parse(id)?;
        Ok(format!("/v1/tenants/{id}{end}"))
    };
    match args.command {
        Command::List { status, package, subscription_type, failing_step, dns_pending, payment_overdue } => {
            let mut query = Vec::new();
            let mut push = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    query.push((k.to_owned(), v));
                }
            };
            push("status", status);
            push("package_id", package.map(|p| p.to_string()));
            push("subscription_type_id", subscription_type.map(|p| p.to_string()));
            push("failing_step", failing_step);
            push("dns_pending", dns_pending.then(|| "true".into()));
            push("payment_overdue", payment_overdue.then(|| "true".into()));
            list(&api, query).await
        }
        Command::Show { id } => show(&api.call(Method::GET, &tenant_path(&id, "")?, None, None).await?),
        Command::Create { store_name, email, package, subscription_type, subdomain, idempotency_key } => {
            let body = json!({
                "store_name": store_name, "contact_email": email, "package_id": package,
                "subscription_type_id": subscription_type, "subdomain": subdomain,
            });
            // Always a key: a request that timed out can be sent again without making a second tenant.
            let key = idempotency_key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let answer = match api.call(Method::POST, "/v1/tenants", Some(body), Some(&key)).await {
                Ok(a) => a,
                Err(e) => {
                    anyhow::bail!("{e}\nto try again without making a second tenant, add --idempotency-key {key}")
                }
            };
            accepted(&answer, "creation");
            Ok(())
        }
        Command::HandOver { id, name } => {
            let admin_url = crate::servers::admin_url_from_stdin()?;
            let body = json!({"admin_url": admin_url, "name": name});
            change(&api, Method::POST, tenant_path(&id, "/database")?, Some(body), "hand-over").await
        }
        Command::Retry { id } => change(&api, Method::POST, tenant_path(&id, "/provision")?, None, "retry").await,
        Command::Suspend { id } => change(&api, Method::POST, tenant_path(&id, "/suspend")?, None, "suspension").await,
        Command::Resume { id } => change(&api, Method::POST, tenant_path(&id, "/resume")?, None, "resumption").await,
        Command::Plan { id, package, subscription_type } => {
            let body = json!({"package_id": package, "subscription_type_id": subscription_type});
            change(&api, Method::POST, tenant_path(&id, "/plan")?, Some(body), "plan change").await
        }
        Command::Offboard { id, now } => {
            let path = tenant_path(&id, if now { "?now=true" } else { "" })?;
            change(&api, Method::DELETE, path, None, "offboarding").await
        }
        Command::RepairGrants => unreachable!("handled above"),
    }
}

async fn change(api: &Api, method: Method, path: String, body: Option<Value>, what: &str) -> anyhow::Result<()> {
    accepted(&api.call(method, &path, body, None).await?, what);
    Ok(())
}

fn accepted(answer: &Value, what: &str) {
    // A server kept for an active tenant's move: nothing runs until the plan change.
    if let Some(next) = answer["next"].as_str() {
        println!(
            "database server {} kept for tenant {}",
            answer["server"].as_str().unwrap_or_default(),
            answer["tenant_id"].as_str().unwrap_or_default()
        );
        println!("next: {next}");
        return;
    }
    let tenant = answer["tenant_id"].as_str().unwrap_or_default();
    let again = if answer["duplicate"] == true { " (already requested)" } else { "" };
    println!("{what} of {tenant} requested{again}: command {}", answer["command_id"].as_str().unwrap_or_default());
    println!("follow it with: landlord watch {tenant}");
}

async fn list(api: &Api, query: Vec<(String, String)>) -> anyhow::Result<()> {
    println!("{:<36}  {:<24}  {:<13}  {:<8}  flags", "tenant", "subdomain", "status", "plan");
    let mut after: Option<String> = None;
    loop {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.extend_pairs(&query).append_pair("limit", "500");
        if let Some(a) = &after {
            q.append_pair("after", a);
        }
        let page = api.call(Method::GET, &format!("/v1/tenants?{}", q.finish()), None, None).await?;
        for t in page["tenants"].as_array().into_iter().flatten() {
            let mut flags = Vec::new();
            if t["dns_pending"] == true {
                flags.push("dns_pending");
            }
            if t["payment_overdue"] == true {
                flags.push("payment_overdue");
            }
            if !t["offboard_at"].is_null() {
                flags.push("offboarding_scheduled");
            }
            println!(
                "{:<36}  {:<24}  {:<13}  {:<8}  {}",
                t["id"].as_str().unwrap_or_default(),
                t["subdomain"].as_str().unwrap_or_default(),
                t["status"].as_str().unwrap_or_default(),
                format!("{}-{}", t["plan"]["package_id"], t["plan"]["subscription_type_id"]),
                flags.join(",")
            );
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return Ok(()),
        }
    }
}

fn show(t: &Value) -> anyhow::Result<()> {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!(
        "tenant     {}\nsubdomain  {}\nstore      {}\ncontact    {}",
        s(&t["id"]),
        s(&t["subdomain"]),
        s(&t["store_name"]),
        s(&t["contact_email"])
    );
    println!(
        "plan       package {} type {} ({})\nstatus     {}",
        t["plan"]["package_id"],
        t["plan"]["subscription_type_id"],
        s(&t["plan"]["name"]),
        s(&t["status"])
    );
    if !t["database"]["name"].is_null() {
        println!(
            "database   {} on {}, login {}",
            s(&t["database"]["name"]),
            s(&t["database"]["engine"]),
            s(&t["database"]["login"])
        );
    }
    if !t["database"]["server"].is_null() {
        println!("server     {}", s(&t["database"]["server"]));
    }
    if !t["awaiting"].is_null() {
        println!("waiting    since {}: {}", s(&t["awaiting"]["since"]), s(&t["awaiting"]["reason"]));
    }
    if !t["hostname"].is_null() {
        let pending = if t["dns_pending"] == true { " (DNS pending)" } else { "" };
        println!("hostnames  {}, {}{pending}", s(&t["hostname"]), s(&t["api_hostname"]));
    }
    if !t["stack"]["id"].is_null() {
        println!("stack      {}", s(&t["stack"]["id"]));
    }
    if t["payment_overdue"] == true {
        println!("payment    overdue (Stripe is retrying)");
    }
    if !t["offboard_at"].is_null() {
        println!("offboard   at {}", s(&t["offboard_at"]));
    }
    if !t["last_error"].is_null() {
        println!("last error {}", s(&t["last_error"]));
    }
    println!("steps:");
    for step in t["steps"].as_array().into_iter().flatten() {
        let took = step["duration_ms"].as_i64().map(|d| format!("{d} ms")).unwrap_or_default();
        println!(
            "  {:<18} {:<10} attempt {:<2} {took} {}",
            s(&step["step"]),
            s(&step["status"]),
            step["attempts"],
            step["error"]["message"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

/// `landlord audit [--tenant ID]`: who asked for what, newest first.
pub async fn audit(api: &ApiArgs, tenant: Option<String>, limit: u32) -> anyhow::Result<()> {
    let api = Api::new(api)?;
    let mut q = vec![format!("limit={limit}")];
    if let Some(t) = tenant {
        q.push(format!("tenant={}", landlord_protocol::TenantId::parse(&t)?));
    }
    let page = api.call(Method::GET, &format!("/v1/audit?{}", q.join("&")), None, None).await?;
    for e in page["entries"].as_array().into_iter().flatten() {
        println!(
            "{}  {:<16}  {:<36}  {}",
            e["at"].as_str().unwrap_or_default(),
            e["action"].as_str().unwrap_or_default(),
            e["tenant_id"].as_str().unwrap_or_default(),
            e["actor"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

async fn repair_grants(cfg: &WorkerConfig) -> anyhow::Result<()> {
    use landlord_worker::{
        names::{DatabaseName, LoginName},
        tenant_db::TenantDbServer,
    };
    let store = Store::connect(cfg.database_url.expose_secret()).await?;
    let server = TenantDbServer::new(&cfg.tenant_db_url).await.map_err(|e| anyhow::anyhow!(e.message))?;
    let mut repaired = 0;
    // Only tenants on the default server (or placed before the registry existed): others live elsewhere.
    let default = store.server_named(landlord_worker::store::DEFAULT_SERVER).await?.map(|s| s.id);
    for t in store.tenants().await? {
        if t.db_server.is_some() && t.db_server != default {
            continue;
        }
        let (Some(db), Some(login)) = (&t.db_name, &t.db_login) else { continue };
        if t.db_engine.as_deref() != Some(server.dialect().as_str()) {
            continue;
        }
        let (db, login) = (DatabaseName::parse(db)?, LoginName::parse(login)?);
        server.repair_grant(&db, &login).await.map_err(|e| anyhow::anyhow!("{db}: {}", e.message))?;
        repaired += 1;
    }
    println!("{repaired} tenant login(s) hold an escaped grant on their own database only");
    Ok(())
}

/// `landlord queue`: what waits for a person, oldest first.
pub async fn queue(api: &ApiArgs) -> anyhow::Result<()> {
    let api = Api::new(api)?;
    let q = api.call(Method::GET, "/v1/operator-queue", None, None).await?;
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let tenants = q["waiting_tenants"].as_array().cloned().unwrap_or_default();
    let refused = q["refused_purchases"].as_array().cloned().unwrap_or_default();
    println!("tenants waiting for an operator: {}", tenants.len());
    for t in &tenants {
        println!("  {}  {:<24}  since {}", text(&t["id"]), text(&t["subdomain"]), text(&t["awaiting"]["since"]));
        println!("      {}", text(&t["awaiting"]["reason"]));
    }
    println!("refused purchases: {}", refused.len());
    for r in &refused {
        println!(
            "  {}  {:<16}  {}  {}",
            text(&r["refused_at"]),
            text(&r["code"]),
            text(&r["checkout_session"]),
            text(&r["reason"])
        );
    }
    Ok(())
}
