//! The tenant database server (`LANDLORD_TENANT_DB_URL`): MySQL/MariaDB or PostgreSQL. Creates a
//! tenant's database and login and applies its plan script. Every operation is idempotent, so a
//! resumed run can repeat it safely.
//!
//! Connections never log statements (`sqlx_logging(false)`): a statement that sets a password must not
//! reach a log, and errors from those statements are redacted before they go anywhere.

mod copy;
mod dump;
mod mysql;
mod postgres;
mod upgrade;
pub mod verifier;

pub use copy::TableRows;

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr, Statement as SqlStatement, sqlx};
use secrecy::{ExposeSecret, SecretString};

use crate::{
    error::{ErrorCode, StepError},
    names::{DatabaseName, LoginName},
    scripts::{Dialect, PlanScript, Statement},
};

/// Table written into each tenant database, in the same transaction as the schema on PostgreSQL and
/// last on MySQL, so a repeated `apply_schema` knows the script already ran.
pub const SCHEMA_MARKER: &str = "_landlord_schema";

/// A connection to the server where tenant databases live.
#[derive(Debug, Clone)]
pub struct TenantDbServer {
    dialect: Dialect,
    url: SecretString,
    admin: DatabaseConnection,
    /// Connections one tenant login may hold at once, so one tenant cannot exhaust the server's.
    login_connection_limit: u32,
}

/// The default for [`TenantDbServer::with_login_connection_limit`] (`LANDLORD_TENANT_MAX_CONNECTIONS`).
pub const DEFAULT_LOGIN_CONNECTION_LIMIT: u32 = 20;

/// Called with (statement index, statement count) before each statement of a plan script: the caller's
/// hook (the chaos suite's failpoint half-way through a script) without this module knowing of it.
pub type BeforeStatement<'a> = &'a (dyn Fn(usize, usize) -> futures::future::BoxFuture<'static, ()> + Send + Sync);

/// A [`BeforeStatement`] that does nothing.
pub fn no_hook(_: usize, _: usize) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(async {})
}

/// What `apply_script` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Now { statements: usize },
    Already,
}

impl TenantDbServer {
    /// Prepares a lazy admin pool: the worker starts even while the server is down, and steps retry.
    pub async fn new(url: &SecretString) -> Result<Self, StepError> {
        let text = url.expose_secret();
        let dialect = if text.starts_with("mysql:") || text.starts_with("mariadb:") {
            Dialect::MySql
        } else if text.starts_with("postgres:") || text.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StepError::permanent(
                ErrorCode::TenantDbUrl,
                "LANDLORD_TENANT_DB_URL must start with mysql:// or postgres://",
            ));
        };
        let admin = connect(url, 4, true).await?;
        Ok(Self { dialect, url: url.clone(), admin, login_connection_limit: DEFAULT_LOGIN_CONNECTION_LIMIT })
    }

    /// Sets how many connections each tenant login may hold at once (applied when a login is created).
    pub fn with_login_connection_limit(mut self, limit: u32) -> Self {
        self.login_connection_limit = limit;
        self
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn engine(&self) -> landlord_protocol::DbEngine {
        match self.dialect {
            Dialect::MySql => landlord_protocol::DbEngine::Mysql,
            Dialect::Postgres => landlord_protocol::DbEngine::Postgres,
        }
    }

    /// Connects as the administrator and asks whether it may create databases and logins and grant them:
    /// what an operator's hand-over or a registration is checked with before Landlord relies on the server.
    pub async fn check(&self) -> Result<(), StepError> {
        let (sql, wanted, needs) = match self.dialect {
            // Global CREATE and CREATE USER, both grantable (Landlord grants a tenant login its database).
            Dialect::MySql => (
                "SELECT COUNT(DISTINCT PRIVILEGE_TYPE) AS n FROM information_schema.USER_PRIVILEGES \
                 WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
                 SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') \
                 AND PRIVILEGE_TYPE IN ('CREATE', 'CREATE USER') AND IS_GRANTABLE = 'YES'",
                2,
                "global CREATE and CREATE USER, WITH GRANT OPTION",
            ),
            Dialect::Postgres => (
                "SELECT COUNT(*) AS n FROM pg_roles WHERE rolname = current_user \
                 AND (rolsuper OR (rolcreatedb AND rolcreaterole))",
                1,
                "CREATEDB and CREATEROLE, or superuser",
            ),
        };
        let row = self.admin.query_one_raw(SqlStatement::from_string(self.admin.get_database_backend(), sql)).await?;
        let n: i64 = row.and_then(|r| r.try_get("", "n").ok()).unwrap_or(0);
        if n < wanted {
            return Err(StepError::permanent(
                ErrorCode::DatabaseLoginRefused,
                format!("the administrator login may not create databases and logins here (it needs {needs})"),
            ));
        }
        Ok(())
    }

    /// The administrator's password, decoded, only to remove it from a tool's error output.
    pub fn admin_password(&self) -> Option<String> {
        let url = url::Url::parse(self.url.expose_secret()).ok()?;
        let password = url.password()?;
        Some(percent_encoding::percent_decode_str(password).decode_utf8_lossy().into_owned())
    }

    /// Creates the tenant's database and a login that can reach only it, with `password`. Repeating it
    /// resets the password, so the one recorded afterwards is always the live one.
    pub async fn create_database(
        &self,
        db: &DatabaseName,
        login: &LoginName,
        password: &SecretString,
    ) -> Result<(), StepError> {
        let limit = self.login_connection_limit;
        match self.dialect {
            Dialect::MySql => mysql::create_database(&self.admin, db, login, password, limit).await,
            Dialect::Postgres => postgres::create_database(&self.admin, db, login, password, limit).await,
        }
    }

    /// Applies a plan script's statements in `db`, unless the marker says this script already ran. The
    /// statements run as the tenant's own login, never as the administrator: whoever can write plan
    /// scripts (an S3 bucket) gains nothing beyond the one tenant the script runs for.
    pub async fn apply_script(
        &self,
        db: &DatabaseName,
        login: &LoginName,
        password: &SecretString,
        script: &PlanScript,
        statements: &[Statement],
        before: BeforeStatement<'_>,
    ) -> Result<Applied, StepError> {
        match self.dialect {
            Dialect::MySql => mysql::apply_script(self, db, login, password, script, statements, before).await,
            Dialect::Postgres => postgres::apply_script(self, db, login, password, script, statements, before).await,
        }
    }

    /// Replaces an unescaped (wildcard) database grant that earlier versions gave a MySQL/MariaDB login by
    /// the escaped one; nothing to do on PostgreSQL. For `landlord tenants repair-grants` after an upgrade.
    pub async fn repair_grant(&self, db: &DatabaseName, login: &LoginName) -> Result<(), StepError> {
        match self.dialect {
            Dialect::MySql => mysql::repair_grant(&self.admin, db, login).await,
            Dialect::Postgres => Ok(()),
        }
    }

    /// Whether the database exists (used by checks and tests).
    pub async fn database_exists(&self, db: &DatabaseName) -> Result<bool, StepError> {
        match self.dialect {
            Dialect::MySql => mysql::database_exists(&self.admin, db).await,
            Dialect::Postgres => postgres::database_exists(&self.admin, db).await,
        }
    }

    /// Whether a login (any host, on MySQL) or role of that name exists.
    pub async fn login_exists(&self, login: &LoginName) -> Result<bool, StepError> {
        match self.dialect {
            Dialect::MySql => mysql::login_exists(&self.admin, login).await,
            Dialect::Postgres => postgres::login_exists(&self.admin, login).await,
        }
    }

    /// Drops the database and its login; missing ones are fine.
    pub async fn drop_database(&self, db: &DatabaseName, login: &LoginName) -> Result<(), StepError> {
        self.drop_db(db).await?;
        self.drop_login(login).await
    }

    /// Drops the database; a missing one is fine.
    pub async fn drop_db(&self, db: &DatabaseName) -> Result<(), StepError> {
        match self.dialect {
            Dialect::MySql => mysql::drop_db(&self.admin, db).await,
            Dialect::Postgres => postgres::drop_db(&self.admin, db).await,
        }
    }

    /// Drops the login; a missing one is fine.
    /// Locks a login and ends its sessions (a suspended tenant), or unlocks it (resumed).
    pub async fn set_login_locked(&self, login: &LoginName, locked: bool) -> Result<(), StepError> {
        match self.dialect {
            Dialect::MySql => mysql::set_login_locked(&self.admin, login, locked).await,
            Dialect::Postgres => postgres::set_login_locked(&self.admin, login, locked).await,
        }
    }

    pub async fn drop_login(&self, login: &LoginName) -> Result<(), StepError> {
        match self.dialect {
            Dialect::MySql => mysql::drop_login(&self.admin, login).await,
            Dialect::Postgres => postgres::drop_login(&self.admin, login).await,
        }
    }

    /// A single-connection pool on one tenant database, as the tenant's own login.
    async fn connect_as(
        &self,
        db: &DatabaseName,
        login: &LoginName,
        password: &SecretString,
    ) -> Result<DatabaseConnection, StepError> {
        let mut url = url::Url::parse(self.url.expose_secret())
            .map_err(|_| StepError::permanent(ErrorCode::TenantDbUrl, "LANDLORD_TENANT_DB_URL is not a valid URL"))?;
        url.set_path(&format!("/{}", db.as_str()));
        // Logins and generated passwords are letters, digits and `_`: nothing to percent-encode.
        let set = url.set_username(login.as_str()).and_then(|()| url.set_password(Some(password.expose_secret())));
        set.map_err(|()| StepError::permanent(ErrorCode::TenantDbUrl, "LANDLORD_TENANT_DB_URL cannot carry a login"))?;
        connect(&SecretString::from(url.to_string()), 1, false).await.map_err(|e| {
            let mut err = if is_login_refused(&e) {
                // Not the administrator's settings: the tenant's own login, whose password may have been
                // changed since Landlord set it (a plan script can do that to its own login).
                StepError::permanent(
                    ErrorCode::TenantLoginRefused,
                    format!("the server refused tenant login {login} with the password Landlord recorded: {e}"),
                )
            } else {
                StepError::from(e)
            };
            // The URL holds the tenant's password; keep it out of the error.
            err.redact(password.expose_secret());
            err
        })
    }

    pub fn admin(&self) -> &DatabaseConnection {
        &self.admin
    }
}

/// A pool of at most `max` connections; lazy ones connect on first use, so a worker starts while the server
/// is down and its steps retry.
async fn connect(url: &SecretString, max: u32, lazy: bool) -> Result<DatabaseConnection, DbErr> {
    crate::connect::connect(url, |o| {
        o.max_connections(max)
            .min_connections(0)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(lazy);
    })
    .await
}

/// SQLSTATEs and MySQL error numbers that clear up on their own: locks, deadlocks, serialization
/// failures, too many connections, a server shutting down.
const TRANSIENT_SQLSTATES: &[&str] = &["40001", "40P01", "55P03", "57P01", "57P03", "53300", "08006", "08001", "08004"];
/// 1203 and 1226 are a login's own connection limit (`MAX_USER_CONNECTIONS`) being reached.
const TRANSIENT_MYSQL_CODES: &[u16] = &[1205, 1213, 1040, 1053, 1203, 1226, 2002, 2003, 2006, 2013];

/// SQLSTATEs and MySQL error numbers of a login the server refuses: a wrong user or password does not
/// fix itself, so retrying it forever would only hide the mistake.
const LOGIN_REFUSED_SQLSTATES: &[&str] = &["28000", "28P01"];
const LOGIN_REFUSED_MYSQL_CODES: &[u16] = &[1045, 1698];

/// The database error is kept as the cause; statements that carried a password go through `run_secret`,
/// which redacts the message and drops the cause.
impl From<DbErr> for StepError {
    fn from(e: DbErr) -> Self {
        let message = e.to_string();
        let error = if is_login_refused(&e) {
            StepError::permanent(
                ErrorCode::DatabaseLoginRefused,
                format!(
                    "the tenant database server refused Landlord's login; check the user and password in \
                     LANDLORD_TENANT_DB_URL (and that this login may connect over TCP): {message}"
                ),
            )
        } else if is_transient(&e) {
            StepError::transient(ErrorCode::DatabaseUnavailable, format!("tenant database server: {message}"))
        } else {
            StepError::permanent(ErrorCode::DatabaseError, format!("tenant database server: {message}"))
        };
        error.caused_by(e)
    }
}

/// The driver's error inside a sea-orm error, when there is one.
fn sqlx_error(e: &DbErr) -> Option<&sqlx::Error> {
    match e {
        DbErr::Conn(RuntimeErr::SqlxError(s))
        | DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s)) => Some(s.as_ref()),
        _ => None,
    }
}

/// Whether the server refused the login itself (bad user or password, no access from this host) while
/// connecting; the same codes from a statement mean something else.
pub fn is_login_refused(e: &DbErr) -> bool {
    let DbErr::Conn(RuntimeErr::SqlxError(inner)) = e else { return false };
    let sqlx::Error::Database(db) = inner.as_ref() else { return false };
    let state = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let mysql_code = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map(|m| m.number());
    LOGIN_REFUSED_SQLSTATES.contains(&state.as_str())
        || mysql_code.is_some_and(|n| LOGIN_REFUSED_MYSQL_CODES.contains(&n))
}

/// Whether a database error may succeed on retry. A refused login never does.
pub fn is_transient(e: &DbErr) -> bool {
    if is_login_refused(e) {
        return false;
    }
    if matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        return true;
    }
    let Some(sqlx_err) = sqlx_error(e) else { return false };
    match sqlx_err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let state = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let mysql_code = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map(|m| m.number());
            TRANSIENT_SQLSTATES.contains(&state.as_str())
                || mysql_code.is_some_and(|n| TRANSIENT_MYSQL_CODES.contains(&n))
        }
        _ => false,
    }
}

/// Runs a statement that carries a password, replacing the password in any error before it is kept.
async fn run_secret(conn: &DatabaseConnection, sql: &str, password: &SecretString) -> Result<(), StepError> {
    use sea_orm::ConnectionTrait;
    conn.execute_unprepared(sql).await.map(|_| ()).map_err(|e| {
        let mut err = StepError::from(e);
        err.redact(password.expose_secret());
        err
    })
}

/// Runs a script's statements in order, logging each one's number, line and duration. A failing
/// statement names the script, its number and line; a lost connection stays transient so the step
/// retries.
async fn run_statements<C: ConnectionTrait>(
    conn: &C,
    script: &PlanScript,
    statements: &[Statement],
    before: BeforeStatement<'_>,
) -> Result<(), StepError> {
    for (i, st) in statements.iter().enumerate() {
        before(i, statements.len()).await;
        let started = Instant::now();
        conn.execute_unprepared(&st.sql).await.map_err(|e| {
            let message = format!("{} statement {} (line {}) failed: {e}", script.location, i + 1, st.line);
            if is_transient(&e) {
                StepError::transient(ErrorCode::DatabaseUnavailable, message)
            } else {
                StepError::permanent(ErrorCode::SchemaFailed, message)
            }
        })?;
        let duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(statement = i + 1, line = st.line, duration_ms, "schema statement applied");
    }
    Ok(())
}

/// Records that `script` was applied, in the marker table (created here).
async fn write_marker<C: ConnectionTrait>(conn: &C, script: &PlanScript) -> Result<(), StepError> {
    let backend = conn.get_database_backend();
    let (create, insert) = match backend {
        DbBackend::MySql => (
            format!(
                "CREATE TABLE `{SCHEMA_MARKER}` (script VARCHAR(255) PRIMARY KEY, sha256 CHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            ),
            format!("INSERT INTO `{SCHEMA_MARKER}` (script, sha256) VALUES (?, ?)"),
        ),
        _ => (
            format!(
                "CREATE TABLE public.{SCHEMA_MARKER} (script text PRIMARY KEY, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ),
            format!("INSERT INTO public.{SCHEMA_MARKER} (script, sha256) VALUES ($1, $2)"),
        ),
    };
    conn.execute_unprepared(&create).await?;
    let values = [script.name.clone().into(), script.sha256.clone().into()];
    conn.execute_raw(SqlStatement::from_sql_and_values(backend, insert, values)).await?;
    Ok(())
}

/// The outcome when the marker table already exists: the same script means done, another means a
/// person must look.
fn already_applied(db: &DatabaseName, script: &PlanScript, same_script: bool) -> Result<Applied, StepError> {
    if same_script {
        Ok(Applied::Already)
    } else {
        Err(StepError::permanent(
            ErrorCode::SchemaConflict,
            format!("database {db} already holds a different schema than {}; an operator must decide", script.name),
        ))
    }
}
