//! `landlord tenants list|show`: read the control plane. Passwords are never printed.

use std::path::Path;

use landlord_protocol::TenantId;
use landlord_worker::store::Store;
use secrecy::ExposeSecret;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    List,
    Show { id: String },
}

pub async fn run(config: Option<&Path>, cmd: Command) -> anyhow::Result<()> {
    let cfg = landlord_worker::WorkerConfig::load(config)?;
    let store = Store::connect(cfg.database_url.expose_secret()).await?;
    match cmd {
        Command::List => {
            println!(
                "{:<36}  {:<24}  {:<13}  plan",
                "tenant", "subdomain", "status"
            );
            for t in store.tenants().await? {
                println!(
                    "{:<36}  {:<24}  {:<13}  {}-{}",
                    t.id, t.slug, t.status, t.package_id, t.subscription_type_id
                );
            }
        }
        Command::Show { id } => {
            let id = TenantId::parse(&id)?;
            let Some(t) = store.tenant(&id).await? else {
                anyhow::bail!("no tenant {id}")
            };
            println!(
                "tenant     {}\nsubdomain  {}\nstore      {}\ncontact    {}\nplan       package {} type {}\nstatus     {}",
                t.id,
                t.slug,
                t.store_name,
                t.contact_email,
                t.package_id,
                t.subscription_type_id,
                t.status
            );
            if let (Some(engine), Some(db), Some(login)) = (&t.db_engine, &t.db_name, &t.db_login) {
                println!(
                    "database   {db} on {engine}, login {login} (password stored in the control plane)"
                );
            }
            if let Some(e) = &t.last_error {
                println!("last error {e}");
            }
            println!("steps:");
            for s in store.steps(&id).await? {
                let took = s.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default();
                println!(
                    "  {:<16} {:<10} attempt {:<2} {took} {}",
                    s.step,
                    s.status,
                    s.attempts,
                    s.error_message.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
