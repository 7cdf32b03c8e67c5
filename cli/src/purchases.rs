//! `landlord purchases refused|dismiss`: paid purchases that did not become a tenant, for the operator
//! who settles them with the customer (a refund, or a tenant made by hand under another subdomain).

use std::path::Path;

use landlord_protocol::TenantId;
use landlord_worker::{WorkerConfig, store::Store};
use secrecy::ExposeSecret;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Lists refused purchases that no operator has dismissed yet (`--all`: dismissed ones too).
    Refused {
        #[arg(long)]
        all: bool,
    },
    /// Marks a refused purchase settled, so it leaves the open list. Names the purchase by the tenant id
    /// it would have made (the first column of `refused`).
    Dismiss {
        id: String,
        /// Who settled it, for the record; defaults to $USER.
        #[arg(long)]
        by: Option<String>,
    },
}

pub async fn run(config: Option<&Path>, cmd: Command) -> anyhow::Result<()> {
    let cfg = WorkerConfig::load(config)?;
    let store = Store::connect(cfg.database_url.expose_secret()).await?;
    match cmd {
        Command::Refused { all } => list(&store, all).await,
        Command::Dismiss { id, by } => {
            let id = TenantId::parse(&id)?;
            let by = by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".into());
            if !store.dismiss_refused_purchase(&id, &by).await? {
                anyhow::bail!("no open refused purchase {id} (see `landlord purchases refused --all`)");
            }
            println!("refused purchase {id} dismissed by {by}");
            Ok(())
        }
    }
}

async fn list(store: &Store, all: bool) -> anyhow::Result<()> {
    let rows = store.refused_purchases(all).await?;
    if rows.is_empty() {
        println!("no {}refused purchases", if all { "" } else { "open " });
        return Ok(());
    }
    for r in rows {
        let or_dash = |v: &Option<String>| v.as_deref().map(printable).unwrap_or_else(|| "-".into());
        println!("{}  {}  {}", r.tenant_id, r.refused_at.format("%Y-%m-%d %H:%M:%S UTC"), r.code);
        println!("  checkout session {}  customer {}", or_dash(&r.checkout_session), or_dash(&r.customer));
        println!("  contact {}  subdomain {}", or_dash(&r.contact_email), or_dash(&r.subdomain));
        println!("  reason  {}", printable(&r.reason));
        if let Some(at) = r.dismissed_at {
            println!("  dismissed {} by {}", at.format("%Y-%m-%d %H:%M:%S UTC"), or_dash(&r.dismissed_by));
        }
    }
    Ok(())
}

/// The text with control characters escaped: a record may come from anyone who can publish a command,
/// and must not drive the operator's terminal.
fn printable(s: &str) -> String {
    s.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::printable("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
        assert_eq!(super::printable("plain ünïcode"), "plain ünïcode");
    }
}
