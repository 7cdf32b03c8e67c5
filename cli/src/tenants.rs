//! `landlord tenants list|show|retry`: the control plane's view of tenants (passwords are never printed),
//! and asking for a failed tenant to be resumed.

use std::path::Path;

use landlord_protocol::{Action, Command as WireCommand, CommandId, TenantId};
use landlord_worker::{WorkerConfig, store::Store};
use secrecy::ExposeSecret;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    List,
    Show {
        id: String,
    },
    /// Resumes a failed tenant at its unfinished steps (publishes a retry command).
    Retry {
        id: String,
    },
    /// Once after upgrading: replaces the wildcard database grants earlier versions gave MariaDB/MySQL
    /// logins (`tenant_ab_c`.* also opened `tenant_abxc`) with escaped ones, on LANDLORD_TENANT_DB_URL.
    RepairGrants,
}

pub async fn run(config: Option<&Path>, cmd: Command) -> anyhow::Result<()> {
    let cfg = WorkerConfig::load(config)?;
    match cmd {
        Command::List => list(&Store::connect(cfg.database_url.expose_secret()).await?).await,
        Command::Show { id } => {
            show(&Store::connect(cfg.database_url.expose_secret()).await?, &TenantId::parse(&id)?).await
        }
        Command::Retry { id } => retry(&cfg, TenantId::parse(&id)?).await,
        Command::RepairGrants => repair_grants(&cfg).await,
    }
}

async fn repair_grants(cfg: &WorkerConfig) -> anyhow::Result<()> {
    use landlord_worker::{
        names::{DatabaseName, LoginName},
        tenant_db::TenantDbServer,
    };
    let store = Store::connect(cfg.database_url.expose_secret()).await?;
    let server = TenantDbServer::new(&cfg.tenant_db_url).await.map_err(|e| anyhow::anyhow!(e.message))?;
    let mut repaired = 0;
    for t in store.tenants().await? {
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

async fn list(store: &Store) -> anyhow::Result<()> {
    println!("{:<36}  {:<24}  {:<13}  plan", "tenant", "subdomain", "status");
    for t in store.tenants().await? {
        println!("{:<36}  {:<24}  {:<13}  {}-{}", t.id, t.slug, t.status, t.package_id, t.subscription_type_id);
    }
    let refused = store.refused_purchases(false).await?.len();
    if refused > 0 {
        println!("\n{refused} paid purchase(s) refused and waiting for an operator: landlord purchases refused");
    }
    Ok(())
}

async fn show(store: &Store, id: &TenantId) -> anyhow::Result<()> {
    let Some(t) = store.tenant(id).await? else { anyhow::bail!("no tenant {id}") };
    println!(
        "tenant     {}\nsubdomain  {}\nstore      {}\ncontact    {}\nplan       package {} type {}\nstatus     {}",
        t.id, t.slug, t.store_name, t.contact_email, t.package_id, t.subscription_type_id, t.status
    );
    if let (Some(engine), Some(db), Some(login)) = (&t.db_engine, &t.db_name, &t.db_login) {
        println!("database   {db} on {engine}, login {login} (password stored in the control plane)");
    }
    if let (Some(host), Some(api)) = (&t.hostname, &t.api_hostname) {
        println!("hostnames  {host}, {api}{}", if t.dns_pending { " (DNS pending)" } else { "" });
    }
    if let Some(stack) = &t.stack_id {
        println!("stack      {stack}");
    }
    if let Some(e) = t.last_error.as_ref().or(t.stack_failure.as_ref()) {
        println!("last error {e}");
    }
    println!("steps:");
    for s in store.steps(id).await? {
        let took = s.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default();
        println!(
            "  {:<16} {:<10} attempt {:<2} {took} {}",
            s.step,
            s.status,
            s.attempts,
            s.error_message.unwrap_or_default()
        );
    }
    Ok(())
}

async fn retry(cfg: &WorkerConfig, id: TenantId) -> anyhow::Result<()> {
    let bus = landlord_bus::Bus::connect_with(&cfg.nats_settings()).await?;
    let command_id = CommandId::parse(&format!("admin:cli-{}", uuid::Uuid::new_v4()))?;
    let requested_by = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let cmd = WireCommand::new(command_id, id, requested_by, Action::Retry);
    bus.publish_command(&cmd).await?;
    println!("retry of {id} requested ({}); follow it with: landlord watch {id}", cmd.id);
    Ok(())
}
