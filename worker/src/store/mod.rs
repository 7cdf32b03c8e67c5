//! The control plane: what Landlord knows about tenants, their runs and steps, and the commands it has
//! already processed. Every step outcome is written here before a message is acknowledged.

pub mod entities;
mod leases;
mod refused;
mod resources;
mod retention;

pub use refused::{Refusal, RefusalCode};
pub use resources::ResourceKind;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use landlord_migrations::Migrator;
use landlord_protocol::{ProvisionSpec, TenantId, TenantStatus};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use secrecy::SecretString;
use uuid::Uuid;

use entities::{processed_command, run, tenant, tenant_step};

use crate::secret_box::{SecretError, SecretKeys};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("control-plane database: {0}")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("the control plane was opened without LANDLORD_SECRET_KEYS, so it cannot read or write tenant secrets")]
    NoSecretKeys,
    #[error("cannot create the control-plane file {path} with mode 0600: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// How `rotate_secrets` went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotated {
    /// Values re-encrypted under the primary key (or encrypted for the first time).
    pub rewritten: usize,
    /// Values already under the primary key.
    pub current: usize,
    /// Values a worker replaced while this rotation ran (left for the next one).
    pub changed_meanwhile: usize,
}

/// A step's recorded outcome for a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Started,
    Succeeded,
    Failed,
    /// Not configured in this deployment.
    Skipped,
    /// Left to finish in the background (DNS); the run went on.
    Deferred,
    /// Undone by compensation; a retry does it again.
    Undone,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Deferred => "deferred",
            Self::Undone => "undone",
        }
    }

    /// Whether a resumed run may pass over a step in this state.
    pub fn is_settled(status: &str) -> bool {
        [Self::Succeeded, Self::Skipped, Self::Deferred].iter().any(|s| s.as_str() == status)
    }
}

/// What happened when a provision asked for a tenant.
#[derive(Debug)]
pub enum NewTenant {
    Created(tenant::Model),
    /// The same tenant already exists: a resumed or repeated purchase.
    Exists(tenant::Model),
    /// Another tenant holds the subdomain.
    SlugTaken,
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

/// Creates a SQLite control-plane file readable by its owner only, before SQLite creates it with the
/// process's umask (often world-readable). SQLite gives its `-wal` and `-shm` files the same mode.
fn create_sqlite_file(url: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
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

impl Store {
    /// Connects and applies migrations. Several workers may start at once; a migration that loses the
    /// race is retried once the winner has created the tables.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            create_sqlite_file(url)?;
        }
        let db = crate::connect::connect(&SecretString::from(url.to_owned()), |o| {
            o.max_connections(8).acquire_timeout(Duration::from_secs(10));
        })
        .await?;
        if url.starts_with("sqlite:") {
            // Several tasks write at once; WAL lets readers continue meanwhile.
            db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        }
        let mut attempt = 0;
        loop {
            match Migrator::up(&db, None).await {
                Ok(()) => break,
                Err(e) if attempt < 3 => {
                    tracing::warn!(error = %e, "migration failed, retrying (another worker may be migrating)");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(300 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Self { db, secrets: None })
    }

    /// The same store, able to encrypt and decrypt tenant secrets with `keys`.
    pub fn with_secrets(mut self, keys: SecretKeys) -> Self {
        self.secrets = Some(Arc::new(keys));
        self
    }

    fn keys(&self) -> Result<&SecretKeys, StoreError> {
        self.secrets.as_deref().ok_or(StoreError::NoSecretKeys)
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<tenant::Model>, StoreError> {
        Ok(tenant::Entity::find_by_id(id.to_string()).one(&self.db).await?)
    }

    pub async fn tenants(&self) -> Result<Vec<tenant::Model>, StoreError> {
        Ok(tenant::Entity::find().order_by_asc(tenant::Column::CreatedAt).all(&self.db).await?)
    }

    /// Creates the tenant in `pending`, or finds it; refuses a subdomain another tenant holds.
    pub async fn create_tenant(&self, id: &TenantId, spec: &ProvisionSpec) -> Result<NewTenant, StoreError> {
        if let Some(existing) = self.tenant(id).await? {
            return Ok(NewTenant::Exists(existing));
        }
        let now = Utc::now();
        let row = tenant::ActiveModel {
            id: Set(id.to_string()),
            slug: Set(spec.slug.to_string()),
            store_name: Set(spec.store_name.to_string()),
            contact_email: Set(spec.contact_email.to_string()),
            package_id: Set(spec.package_id.get() as i32),
            subscription_type_id: Set(spec.subscription_type_id.get() as i32),
            status: Set(TenantStatus::Pending.as_str().into()),
            last_error: Set(None),
            db_engine: Set(None),
            db_name: Set(None),
            db_login: Set(None),
            db_password: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            hostname: Set(None),
            api_hostname: Set(None),
            dns_pending: Set(false),
            stack_id: Set(None),
            stack_outputs: Set(None),
            stack_failure: Set(None),
        };
        match row.insert(&self.db).await {
            Ok(model) => Ok(NewTenant::Created(model)),
            // Lost a race or hit the unique slug: read back which.
            Err(e) => match self.tenant(id).await? {
                Some(existing) => Ok(NewTenant::Exists(existing)),
                None if self.slug_taken(spec.slug.as_str()).await? => Ok(NewTenant::SlugTaken),
                None => Err(e.into()),
            },
        }
    }

    async fn slug_taken(&self, slug: &str) -> Result<bool, StoreError> {
        Ok(tenant::Entity::find().filter(tenant::Column::Slug.eq(slug)).one(&self.db).await?.is_some())
    }

    /// Updates the fields `change` sets on a tenant, stamping `updated_at`.
    async fn update_tenant(
        &self,
        id: &TenantId,
        change: impl FnOnce(&mut tenant::ActiveModel),
    ) -> Result<(), StoreError> {
        let mut row =
            tenant::ActiveModel { id: Set(id.to_string()), updated_at: Set(Utc::now()), ..Default::default() };
        change(&mut row);
        row.update(&self.db).await?;
        Ok(())
    }

    pub async fn set_status(
        &self,
        id: &TenantId,
        status: TenantStatus,
        last_error: Option<String>,
    ) -> Result<(), StoreError> {
        self.update_tenant(id, |t| {
            t.status = Set(status.as_str().into());
            t.last_error = Set(last_error);
        })
        .await
    }

    /// Records the tenant's hostnames and whether their records are still to be confirmed.
    pub async fn save_dns(
        &self,
        id: &TenantId,
        hostname: &str,
        api_hostname: &str,
        pending: bool,
    ) -> Result<(), StoreError> {
        self.update_tenant(id, |t| {
            t.hostname = Set(Some(hostname.to_owned()));
            t.api_hostname = Set(Some(api_hostname.to_owned()));
            t.dns_pending = Set(pending);
        })
        .await
    }

    /// Stops the background retrier from working on this tenant's DNS (its records were undone).
    pub async fn clear_dns_pending(&self, id: &TenantId) -> Result<(), StoreError> {
        self.update_tenant(id, |t| t.dns_pending = Set(false)).await
    }

    /// Tenants whose DNS records still need confirming.
    pub async fn dns_pending(&self) -> Result<Vec<tenant::Model>, StoreError> {
        Ok(tenant::Entity::find().filter(tenant::Column::DnsPending.eq(true)).all(&self.db).await?)
    }

    /// Records the deployed stack, or (with `failure`) why it failed.
    pub async fn save_stack(
        &self,
        id: &TenantId,
        stack_id: Option<&str>,
        outputs: Option<&serde_json::Value>,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        self.update_tenant(id, |t| {
            t.stack_id = Set(stack_id.map(str::to_owned));
            t.stack_outputs = Set(outputs.map(serde_json::Value::to_string));
            t.stack_failure = Set(failure.map(str::to_owned));
        })
        .await
    }

    /// The tenant login's password, decrypted. A value stored before encryption at rest existed is
    /// returned as it is (with a warning) until `landlord secrets rotate` encrypts it.
    pub async fn database_password(&self, id: &TenantId) -> Result<Option<SecretString>, StoreError> {
        let keys = self.keys()?;
        let Some(stored) = self.tenant(id).await?.and_then(|t| t.db_password) else { return Ok(None) };
        if !stored.starts_with("v1:") {
            tracing::warn!(tenant_id = %id, "a tenant password is stored unencrypted; run `landlord secrets rotate`");
            return Ok(Some(SecretString::from(stored)));
        }
        Ok(Some(keys.decrypt(&stored, &password_context(id))?))
    }

    /// Re-encrypts every stored tenant secret that is not under the primary key (or not encrypted at all)
    /// under it, one row at a time, each only if it did not change meanwhile.
    pub async fn rotate_secrets(&self) -> Result<Rotated, StoreError> {
        let keys = self.keys()?;
        let mut done = Rotated::default();
        for row in tenant::Entity::find().filter(tenant::Column::DbPassword.is_not_null()).all(&self.db).await? {
            let Some(stored) = row.db_password else { continue };
            if !keys.needs_rotation(&stored) {
                done.current += 1;
                continue;
            }
            let id = TenantId::parse(&row.id).map_err(|_| DbErr::Custom(format!("stored tenant id {}", row.id)))?;
            let plain = if stored.starts_with("v1:") {
                keys.decrypt(&stored, &password_context(&id))?
            } else {
                SecretString::from(stored.clone())
            };
            let sealed = keys.encrypt(&plain, &password_context(&id));
            let updated = tenant::Entity::update_many()
                .col_expr(tenant::Column::DbPassword, sea_orm::sea_query::Expr::value(sealed))
                .filter(tenant::Column::Id.eq(row.id.clone()))
                .filter(tenant::Column::DbPassword.eq(stored))
                .exec(&self.db)
                .await?;
            // A worker that wrote a new password meanwhile wrote it under its own first key; a second
            // rotation (after every worker runs with the new key first) picks it up.
            if updated.rows_affected == 1 {
                done.rewritten += 1;
            } else {
                done.changed_meanwhile += 1;
            }
        }
        Ok(done)
    }

    /// Records the tenant database and its login. Called after the login's password was (re)set, so
    /// the stored password is always the live one. The password is stored encrypted.
    pub async fn save_database(
        &self,
        id: &TenantId,
        engine: &str,
        name: &str,
        login: &str,
        password: &SecretString,
    ) -> Result<(), StoreError> {
        let sealed = self.keys()?.encrypt(password, &password_context(id));
        self.update_tenant(id, |t| {
            t.db_engine = Set(Some(engine.into()));
            t.db_name = Set(Some(name.into()));
            t.db_login = Set(Some(login.into()));
            t.db_password = Set(Some(sealed));
        })
        .await
    }

    pub async fn steps(&self, id: &TenantId) -> Result<Vec<tenant_step::Model>, StoreError> {
        Ok(tenant_step::Entity::find()
            .filter(tenant_step::Column::TenantId.eq(id.to_string()))
            .order_by_asc(tenant_step::Column::StartedAt)
            .all(&self.db)
            .await?)
    }

    pub async fn step(&self, id: &TenantId, step: &str) -> Result<Option<tenant_step::Model>, StoreError> {
        Ok(tenant_step::Entity::find_by_id((id.to_string(), step.to_owned())).one(&self.db).await?)
    }

    /// Marks a step started for this run and returns its attempt number across all runs.
    pub async fn step_started(&self, id: &TenantId, step: &str, run_id: Uuid) -> Result<u32, StoreError> {
        let now = Utc::now();
        let previous = self.step(id, step).await?;
        let attempts = previous.as_ref().map_or(0, |p| p.attempts) + 1;
        let row = tenant_step::ActiveModel {
            tenant_id: Set(id.to_string()),
            step: Set(step.to_owned()),
            run_id: Set(run_id.to_string()),
            status: Set(StepState::Started.as_str().into()),
            attempts: Set(attempts),
            started_at: Set(now),
            finished_at: Set(None),
            duration_ms: Set(None),
            error_code: Set(None),
            error_message: Set(None),
        };
        if previous.is_some() {
            row.update(&self.db).await?;
        } else {
            row.insert(&self.db).await?;
        }
        Ok(attempts as u32)
    }

    /// Records how a step ended.
    pub async fn step_finished(
        &self,
        id: &TenantId,
        step: &str,
        state: StepState,
        duration: Duration,
        error: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let row = tenant_step::ActiveModel {
            tenant_id: Set(id.to_string()),
            step: Set(step.to_owned()),
            status: Set(state.as_str().into()),
            finished_at: Set(Some(Utc::now())),
            duration_ms: Set(Some(duration.as_millis() as i64)),
            error_code: Set(error.map(|e| e.0.to_owned())),
            error_message: Set(error.map(|e| e.1.to_owned())),
            ..Default::default()
        };
        row.update(&self.db).await?;
        Ok(())
    }

    pub async fn start_run(&self, id: &TenantId, command_id: &str, kind: &str) -> Result<Uuid, StoreError> {
        let run_id = Uuid::new_v4();
        run::ActiveModel {
            id: Set(run_id.to_string()),
            tenant_id: Set(id.to_string()),
            command_id: Set(command_id.to_owned()),
            kind: Set(kind.to_owned()),
            status: Set("running".into()),
            started_at: Set(Utc::now()),
            finished_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(run_id)
    }

    pub async fn finish_run(&self, run_id: Uuid, status: &str) -> Result<(), StoreError> {
        run::ActiveModel {
            id: Set(run_id.to_string()),
            status: Set(status.to_owned()),
            finished_at: Set(Some(Utc::now())),
            ..Default::default()
        }
        .update(&self.db)
        .await?;
        Ok(())
    }

    pub async fn runs(&self, id: &TenantId) -> Result<Vec<run::Model>, StoreError> {
        Ok(run::Entity::find().filter(run::Column::TenantId.eq(id.to_string())).all(&self.db).await?)
    }

    /// Whether some run provisioned this tenant to the end.
    pub async fn has_succeeded_run(&self, id: &TenantId) -> Result<bool, StoreError> {
        Ok(run::Entity::find()
            .filter(run::Column::TenantId.eq(id.to_string()))
            .filter(run::Column::Status.eq("succeeded"))
            .one(&self.db)
            .await?
            .is_some())
    }

    pub async fn is_processed(&self, command_id: &str) -> Result<bool, StoreError> {
        Ok(processed_command::Entity::find_by_id(command_id.to_owned()).one(&self.db).await?.is_some())
    }

    /// Remembers a command as done, so a redelivery after JetStream's duplicate window is a no-op.
    pub async fn mark_processed(&self, command_id: &str, id: &TenantId, kind: &str) -> Result<(), StoreError> {
        insert_processed(&self.db, command_id, id, kind).await
    }

    /// Ends a run in one transaction: the tenant's status (and reason), the run's outcome and the command
    /// marked processed. Nobody can see the tenant `active` (or `failed`) while its run still looks
    /// unfinished, so a redelivery arriving in between never finds a half-recorded ending.
    pub async fn end_run(&self, end: RunEnd<'_>) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        tenant::ActiveModel {
            id: Set(end.tenant.to_string()),
            status: Set(end.status.as_str().into()),
            last_error: Set(end.last_error.map(str::to_owned)),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        run::ActiveModel {
            id: Set(end.run.to_string()),
            status: Set(end.outcome.to_owned()),
            finished_at: Set(Some(Utc::now())),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        insert_processed(&txn, end.command_id, end.tenant, end.kind).await?;
        txn.commit().await?;
        Ok(())
    }
}

/// How a run ended, written at once by [`Store::end_run`].
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    pub tenant: &'a TenantId,
    pub run: Uuid,
    pub status: TenantStatus,
    pub last_error: Option<&'a str>,
    /// The run's recorded outcome (`succeeded`, `failed`).
    pub outcome: &'a str,
    pub command_id: &'a str,
    pub kind: &'a str,
}

async fn insert_processed<C: ConnectionTrait>(
    conn: &C,
    command_id: &str,
    id: &TenantId,
    kind: &str,
) -> Result<(), StoreError> {
    if processed_command::Entity::find_by_id(command_id.to_owned()).one(conn).await?.is_some() {
        return Ok(());
    }
    processed_command::ActiveModel {
        command_id: Set(command_id.to_owned()),
        tenant_id: Set(id.to_string()),
        kind: Set(kind.to_owned()),
        processed_at: Set(Utc::now()),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The control plane failing under a step: an unreachable database is worth retrying; a secret that does
/// not decrypt (a missing or wrong key) is not, and says which key to restore.
impl From<StoreError> for crate::error::StepError {
    fn from(e: StoreError) -> Self {
        use crate::{
            error::{ErrorCode, StepError},
            secret_box::SecretError,
        };
        match e {
            // A key this worker does not have yet (a rotation being rolled out) comes with the next deploy.
            StoreError::Db(_) | StoreError::Secret(SecretError::UnknownKey { .. }) => {
                StepError::transient(ErrorCode::ControlPlane, e.to_string())
            }
            other => StepError::permanent(ErrorCode::ControlPlaneSecret, other.to_string()),
        }
    }
}
