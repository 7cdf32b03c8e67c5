//! The worker's settings: compiled-in defaults, then an optional TOML file, then `LANDLORD_*`
//! environment variables. Database URLs may carry passwords and are held as `SecretString`s.

use std::{path::Path, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::RetryPolicy;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub nats_url: String,
    /// Control plane; SQLite by default, PostgreSQL in production.
    pub database_url: SecretString,
    /// The server tenant databases are created on.
    pub tenant_db_url: SecretString,
    /// Folder holding `mysql/` and `postgres/` plan scripts.
    pub scripts: PathBuf,
    /// Messages handled at once by this process.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub duplicate_window: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
struct Raw {
    nats_url: String,
    database_url: String,
    tenant_db_url: String,
    scripts: PathBuf,
    worker_concurrency: usize,
    retry: RetryPolicy,
    nats_duplicate_window_secs: u64,
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            nats_url: "nats://127.0.0.1:4222".into(),
            database_url: "sqlite://landlord.db?mode=rwc".into(),
            tenant_db_url: "mysql://root@127.0.0.1:3306".into(),
            scripts: PathBuf::from("./sql-scripts"),
            worker_concurrency: 4,
            retry: RetryPolicy::default(),
            nats_duplicate_window_secs: 120,
        }
    }
}

impl WorkerConfig {
    /// Loads defaults, then `file` if given, then the environment (`LANDLORD_RETRY__INITIAL_MS=…` sets
    /// a nested key).
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Raw::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file(file));
        }
        let raw: Raw = figment
            .merge(Env::prefixed("LANDLORD_").split("__"))
            .extract()
            .map_err(Box::new)?;
        Ok(Self {
            nats_url: raw.nats_url,
            database_url: raw.database_url.into(),
            tenant_db_url: raw.tenant_db_url.into(),
            scripts: raw.scripts,
            concurrency: raw.worker_concurrency.max(1),
            retry: raw.retry,
            duplicate_window: Duration::from_secs(raw.nats_duplicate_window_secs),
        })
    }
}
