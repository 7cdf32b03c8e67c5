//! `landlord secrets generate-key|rotate`: keys for the tenant secrets Landlord keeps encrypted in the
//! control plane (`LANDLORD_SECRET_KEYS`), and re-encrypting every stored secret under the newest key.

use std::path::Path;

use landlord_worker::{WorkerConfig, secret_box::SecretKeys, store::Store};
use secrecy::ExposeSecret;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Prints a new key entry (`<id>:<base64>`) to put first in LANDLORD_SECRET_KEYS.
    GenerateKey {
        /// The key's id, stored beside every value it encrypts (a–z, 0–9, `_`, `-`; up to 32).
        #[arg(long, default_value_t = default_id())]
        id: String,
    },
    /// Re-encrypts every stored secret that is not under the first key of LANDLORD_SECRET_KEYS (and
    /// encrypts any stored before encryption at rest). Roll a key out in this order: add the new key after
    /// the old one on every worker, then put it first on every worker, then rotate. Safe to run again.
    Rotate,
}

fn default_id() -> String {
    format!("k{}", chrono::Utc::now().format("%Y%m%d"))
}

pub async fn run(config: Option<&Path>, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::GenerateKey { id } => {
            anyhow::ensure!(SecretKeys::is_valid_id(&id), "key id {id:?}: use 1–24 of a–z, 0–9, `_` and `-`");
            println!("{}", SecretKeys::generate_entry(&id).expose_secret());
            eprintln!(
                "put it first in LANDLORD_SECRET_KEYS (keep the old keys after it), then run `landlord secrets rotate`"
            );
            Ok(())
        }
        Command::Rotate => {
            let cfg = WorkerConfig::load(config)?;
            let keys = cfg.parsed_secret_keys()?;
            let primary = keys.primary_id().to_owned();
            let store = Store::connect(cfg.database_url.expose_secret()).await?.with_secrets(keys);
            let done = store.rotate_secrets().await?;
            println!(
                "{} secret(s) re-encrypted under key `{primary}`, {} already under it, {} changed meanwhile (run \
                 again). Once every worker runs with `{primary}` first and a rotation finds nothing to do, the \
                 other keys may be removed from LANDLORD_SECRET_KEYS.",
                done.rewritten, done.current, done.changed_meanwhile
            );
            Ok(())
        }
    }
}
