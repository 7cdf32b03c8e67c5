//! The control plane: what Landlord knows about tenants, their runs and steps, and the commands it has
//! already processed. Every step outcome is written here before a message is acknowledged.

mod audit;
pub mod entities;
mod gauges;
mod leases;
mod listing;
mod moves;
mod operator;
mod outbox;
mod processed;
mod refused;
mod resources;
mod retention;
mod runs;
mod servers;
mod steps;
mod subscriptions;
mod tenants;

pub use gauges::Gauges;
pub use listing::TenantFilter;
pub use operator::reminder_due;
pub use outbox::NewMail;
pub use refused::{Refusal, RefusalCode};
pub use resources::ResourceKind;
pub use runs::{RunEnd, RunStatus};
pub use servers::{DEFAULT_SERVER, NewServer, ServerName, ServerState};
pub use steps::StepState;
pub use subscriptions::KnownSubscription;
pub use tenants::{NewTenant, Rotated};

use std::{sync::Arc, time::Duration};

use landlord_migrations::Migrator;
use landlord_protocol::TenantId;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use secrecy::SecretString;

use crate::secret_box::{SecretError, SecretKeys};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("control-plane database: {0}")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("the control plane was opened without LANDLORD_SECRET_KEYS, so it cannot read or write tenant secrets")]
    NoSecretKeys,
    #[error("there is no control-plane file {0} (no worker has used it yet)")]
    NoFile(String),
    #[error("cannot create the control-plane file {path} with mode 0600: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Encrypts and decrypts tenant secrets; `None` for tools that only read public fields.
    secrets: Option<Arc<SecretKeys>>,
}

/// The associated data a tenant's database password is sealed with, so a value copied to another tenant's
/// row does not decrypt there.
fn password_context(id: &TenantId) -> String {
    format!("tenant:{id}:db_password")
}

/// The file of a `sqlite:` URL; `None` for another database or an in-memory one (`:memory:`, or a
/// named one with `mode=memory`).
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory");
    (!path.is_empty() && !in_memory).then_some(path)
}

/// Creates a SQLite control-plane file readable by its owner only, before SQLite creates it with the
/// process's umask (often world-readable). SQLite gives its `-wal` and `-shm` files the same mode.
fn create_sqlite_file(url: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = sqlite_file(url) else { return Ok(()) };
    if let Ok(meta) = std::fs::metadata(path) {
        // A file from an earlier version (or made by hand) may be readable by others: it holds every tenant's
        // database password, so it is narrowed to its owner.
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(|source| StoreError::File { path: path.to_owned(), source })?;
            tracing::warn!(path, "the control-plane file was readable by others; it is now readable by its owner only");
        }
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::File { path: path.to_owned(), source }),
    }
}

/// `PRAGMA cache_size` of each SQLite connection: negative is KiB (256 KiB).
const SQLITE_CACHE_KIB: &str = "-256";

/// How long an idle SQLite connection is kept (the driver's default is ten minutes). Each holds its own
/// memory (page cache, prepared statements, lookaside, its thread). The driver closes connections idle
/// longer than this (checking as often) and opens one again when none is left (`min_connections`). The
/// pool hands out the connection idle longest, so the timers' and sampler's queries keep several warm:
/// this alone did not give a burst's memory back (BENCHMARKS.md, memory); the smaller pool did. Longer
/// than the timers' default 5 s tick, so an idle worker's last connection is not closed and reopened.
const SQLITE_IDLE: Duration = Duration::from_secs(10);

impl Store {
    /// Whether the control plane answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.connection().ping().await?)
    }

    /// Connects and applies migrations. Several workers may start at once; a migration that loses the
    /// race is retried once the winner has created the tables.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            create_sqlite_file(url)?;
        }
        let sqlite = url.starts_with("sqlite:");
        let db = crate::connect::connect(&SecretString::from(url.to_owned()), |o| {
            // SQLite writes one at a time whatever the pool, so four connections serve a worker's four runs
            // at a time; each holds its own memory, and connections taken in turn (the pool hands out the
            // one idle longest) are all kept warm by the timers, so fewer is the only way to hold less.
            o.max_connections(if sqlite { 4 } else { 8 }).acquire_timeout(Duration::from_secs(10));
            // (An in-memory database lives only as long as its connections: it is not given a timeout.)
            if sqlite_file(url).is_some() {
                o.min_connections(1).idle_timeout(SQLITE_IDLE);
            }
            // SQLite keeps a page cache per connection, 2 MiB each by default, and a worker's memory grew
            // with the control plane (BENCHMARKS.md, memory). The file's pages stay in the operating
            // system's cache, so a small one per connection costs little.
            o.map_sqlx_sqlite_opts(|s| s.pragma("cache_size", SQLITE_CACHE_KIB));
        })
        .await?;
        if sqlite {
            // Several tasks write at once; WAL lets readers continue meanwhile.
            db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        }
        let mut attempt = 0;
        loop {
            match Migrator::up(&db, None).await {
                Ok(()) => break,
                // An ingress and several workers may start together on a fresh database.
                Err(e) if attempt < 8 => {
                    tracing::warn!(error = %e, "migration failed, retrying (another worker may be migrating)");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(300 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Self { db, secrets: None })
    }

    /// Connects without migrating, with a small pool: for the ingress's admin API, which only reads (and
    /// can run with a SELECT-only role). The workers own the schema.
    pub async fn connect_existing(url: &str) -> Result<Self, StoreError> {
        // `mode=rwc` (the default URL's) would make an empty file, world-readable, wherever this runs.
        if let Some(path) = sqlite_file(url).filter(|path| !std::path::Path::new(path).exists()) {
            return Err(StoreError::NoFile(path.to_owned()));
        }
        let db = crate::connect::connect(&SecretString::from(url.to_owned()), |o| {
            o.max_connections(4).acquire_timeout(Duration::from_secs(3));
        })
        .await?;
        // The tables must be there: a control plane no worker has set up yet is not reachable for the API.
        db.execute_unprepared("SELECT 1 FROM audit_log WHERE 1 = 0").await?;
        Ok(Self { db, secrets: None })
    }

    /// The same store, able to encrypt and decrypt tenant secrets with `keys`.
    pub fn with_secrets(mut self, keys: SecretKeys) -> Self {
        self.secrets = Some(Arc::new(keys));
        self
    }

    /// Whether this store can encrypt and decrypt secrets.
    pub fn has_secrets(&self) -> bool {
        self.secrets.is_some()
    }

    fn keys(&self) -> Result<&SecretKeys, StoreError> {
        self.secrets.as_deref().ok_or(StoreError::NoSecretKeys)
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// The control plane failing under a step: an unreachable database is worth retrying; a secret that does
/// not decrypt (a missing or wrong key) is not, and says which key to restore.
impl From<StoreError> for crate::error::StepError {
    fn from(e: StoreError) -> Self {
        use crate::{
            error::{ErrorCode, StepError},
            secret_box::SecretError,
        };
        let message = e.to_string();
        let error = match e {
            // A key this worker does not have yet (a rotation being rolled out) comes with the next deploy.
            StoreError::Db(_) | StoreError::Secret(SecretError::UnknownKey { .. }) => {
                StepError::transient(ErrorCode::ControlPlane, message)
            }
            _ => StepError::permanent(ErrorCode::ControlPlaneSecret, message),
        };
        // Neither a database error nor a secret error repeats secret material (see `secret_box`).
        error.caused_by(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_of_a_sqlite_url() {
        assert_eq!(sqlite_file("sqlite://landlord.db?mode=rwc"), Some("landlord.db"));
        assert_eq!(sqlite_file("sqlite:///var/lib/landlord/cp.db"), Some("/var/lib/landlord/cp.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://cp?mode=memory&cache=shared"), None, "a named in-memory database");
        assert_eq!(sqlite_file("sqlite://cp.db?cache=shared&mode=rwc"), Some("cp.db"));
        assert_eq!(sqlite_file("postgres://localhost/landlord"), None);
    }

    /// A burst opens several SQLite connections; once idle past [`SQLITE_IDLE`] they are closed, down to
    /// the one kept, so what each held (its caches, its thread) is given back.
    #[tokio::test]
    async fn a_bursts_sqlite_connections_are_closed_once_idle() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("cp.db").display());
        let store = Store::connect(&url).await.unwrap();
        let pool = store.connection().get_sqlite_connection_pool();
        let slow =
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT count(*) FROM c";
        futures::future::try_join_all((0..8).map(|_| store.connection().execute_unprepared(slow))).await.unwrap();
        let opened = pool.size();
        assert!(opened > 1, "the burst ran on several connections: {opened}");
        let closed = tokio::time::timeout(SQLITE_IDLE * 6, async {
            while pool.size() > 1 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        closed.await.unwrap_or_else(|_| panic!("{} of {opened} connections still open", pool.size()));
        // The store still works on what is left (or on one opened again).
        store.ping().await.unwrap();
    }

    /// A reader (the admin API, `landlord watch`) pointed at a control plane no worker has made finds
    /// none, rather than leaving an empty database file behind.
    #[tokio::test]
    async fn connecting_to_an_existing_control_plane_makes_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("landlord.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let err = Store::connect_existing(&url).await.unwrap_err();
        assert!(matches!(err, StoreError::NoFile(_)), "{err}");
        assert!(!path.exists(), "no file made");
    }
}
