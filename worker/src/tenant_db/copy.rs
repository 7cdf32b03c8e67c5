//! Copying a tenant database to another server, for a move: the dump tool on this server writes straight
//! into the client on the other (nothing lands on the worker's disk), then every table's rows are counted
//! on both sides. The tenant's login is locked on this server before, so the counts must agree.

use std::{collections::BTreeMap, process::ExitStatus, time::Duration};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, Statement as SqlStatement,
    sea_query::{Alias, Expr, Query},
};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::AsyncReadExt;

use super::TenantDbServer;
use crate::{
    error::{ErrorCode, StepError},
    keepalive::KeepAlive,
    names::{DatabaseName, LoginName},
    scripts::Dialect,
};

/// The last this much of a tool's standard error is kept for the step's error.
const STDERR_KEPT: usize = 2000;

/// Rows per table, by (schema, table).
pub type TableRows = BTreeMap<(String, String), i64>;

impl TenantDbServer {
    /// Dumps `db` here as the administrator and restores it into the same-named, empty database on
    /// `target` as the tenant's `login`. A tool that fails makes the copy fail, with its complaint (the
    /// passwords removed).
    pub async fn copy_to(
        &self,
        target: &TenantDbServer,
        db: &DatabaseName,
        login: &LoginName,
        password: &SecretString,
        alive: &dyn KeepAlive,
    ) -> Result<(), StepError> {
        // Both tools first: a worker without one must fail before it starts anything.
        let mut dump = self.move_dump_command(db)?;
        let mut restore = target.restore_command(db, login, password)?;
        let start = |what: &str, e: std::io::Error| {
            StepError::permanent(ErrorCode::ArchiveTool, format!("cannot start the {what} tool for {db}: {e}"))
        };
        let mut dumping = dump.spawn().map_err(|e| start("dump", e))?;
        let out: std::process::Stdio =
            dumping.stdout.take().expect("stdout is piped").try_into().map_err(|e| start("dump", e))?;
        let mut restoring =
            restore.stdin(out).stdout(std::process::Stdio::null()).spawn().map_err(|e| start("restore", e))?;
        let dump_complaint = complaint(dumping.stderr.take().expect("stderr is piped"));
        let restore_complaint = complaint(restoring.stderr.take().expect("stderr is piped"));
        let both = async { tokio::join!(dumping.wait(), restoring.wait()) };
        tokio::pin!(both);
        // A large database may take longer than the message's ack wait: keep the command alive meanwhile.
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        let (dumped, restored) = loop {
            tokio::select! {
                done = &mut both => break done,
                _ = tick.tick() => alive.touch().await,
            }
        };
        let (dump_complaint, restore_complaint) =
            (dump_complaint.await.unwrap_or_default(), restore_complaint.await.unwrap_or_default());
        let failed = |what: &str, status: std::io::Result<ExitStatus>, complaint: String| {
            let how = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            let said = error_lines(&complaint);
            let mut err =
                StepError::permanent(ErrorCode::MoveFailed, format!("{what} of database {db} failed ({how}): {said}"));
            err.redact(self.admin_password().unwrap_or_default().as_str());
            err.redact(password.expose_secret());
            err
        };
        // The dump failing first closes the pipe and fails the restore too: the dump's error is the cause.
        if !dumped.as_ref().is_ok_and(ExitStatus::success) {
            return Err(failed("the dump", dumped, dump_complaint));
        }
        if !restored.as_ref().is_ok_and(ExitStatus::success) {
            return Err(failed("the restore", restored, restore_complaint));
        }
        Ok(())
    }

    /// How many rows each table of `db` holds, counted as the administrator.
    pub async fn table_rows(&self, db: &DatabaseName) -> Result<TableRows, StepError> {
        let conn = self.connect_admin_to(db).await?;
        let backend = conn.get_database_backend();
        let list = match self.dialect {
            Dialect::MySql => SqlStatement::from_sql_and_values(
                backend,
                "SELECT CAST(TABLE_SCHEMA AS CHAR) AS s, CAST(TABLE_NAME AS CHAR) AS t FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE') \
                 ORDER BY TABLE_NAME",
                [db.as_str().into()],
            ),
            Dialect::Postgres => SqlStatement::from_string(
                backend,
                "SELECT n.nspname::text AS s, c.relname::text AS t FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' \
                 AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2",
            ),
        };
        let mut rows = TableRows::new();
        for table in conn.query_all_raw(list).await? {
            let (schema, name): (String, String) = (table.try_get("", "s")?, table.try_get("", "t")?);
            // Names the tenant chose: quoted by the query builder, never pasted into SQL.
            let count = Query::select()
                .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
                .from((Alias::new(schema.clone()), Alias::new(name.clone())))
                .to_owned();
            let row = conn.query_one(&count).await?;
            let n: i64 = row.map(|r| r.try_get("", "n")).transpose()?.unwrap_or(0);
            rows.insert((schema, name), n);
        }
        conn.close().await.ok();
        Ok(rows)
    }

    /// Enabled scheduled events in `db` (MySQL/MariaDB): they run as their definer whatever its login's
    /// state, so they would change rows while the database is copied. None on PostgreSQL.
    pub async fn scheduled_events(&self, db: &DatabaseName) -> Result<i64, StepError> {
        if self.dialect != Dialect::MySql {
            return Ok(0);
        }
        let stmt = SqlStatement::from_sql_and_values(
            self.admin.get_database_backend(),
            "SELECT COUNT(*) AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND STATUS = 'ENABLED'",
            [db.as_str().into()],
        );
        let row = self.admin.query_one_raw(stmt).await?;
        Ok(row.map(|r| r.try_get("", "n")).transpose()?.unwrap_or(0))
    }

    /// A single connection to `db` as the administrator (PostgreSQL reads one database per connection).
    /// On PostgreSQL with `row_security` off: a tenant's row-level policy (code the tenant wrote) never runs
    /// with the administrator's rights; a table it would filter makes the count fail instead.
    async fn connect_admin_to(&self, db: &DatabaseName) -> Result<DatabaseConnection, StepError> {
        let mut url = url::Url::parse(self.url.expose_secret()).map_err(|_| {
            StepError::permanent(ErrorCode::TenantDbUrl, "the database server's admin URL is not valid")
        })?;
        url.set_path(&format!("/{}", db.as_str()));
        if self.dialect == Dialect::Postgres {
            url.query_pairs_mut().append_pair("options", "-c row_security=off");
        }
        Ok(super::connect(&SecretString::from(url.to_string()), 1, false).await?)
    }
}

/// The lines of a tool's complaint that say what went wrong, without the statement it echoes (which carries
/// the tenant's data): at most three, each cut short.
fn error_lines(complaint: &str) -> String {
    let lines: Vec<String> = complaint
        .lines()
        .map(str::trim)
        .filter(|l| l.to_ascii_lowercase().contains("error") && !l.starts_with("Command was"))
        .map(|l| l.chars().filter(|c| !c.is_control()).take(300).collect())
        .collect();
    let kept = &lines[lines.len().saturating_sub(3)..];
    if kept.is_empty() { "no error message".to_owned() } else { kept.join(" / ") }
}

/// Reads a tool's standard error beside its work (a tool with much to say would block on a full pipe),
/// keeping the end.
fn complaint(mut stderr: tokio::process::ChildStderr) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = (&mut stderr).take(1 << 20).read_to_end(&mut text).await;
        let text = String::from_utf8_lossy(&text).trim().to_owned();
        let cut = text.char_indices().rev().nth(STDERR_KEPT).map_or(0, |(i, _)| i);
        text[cut..].to_owned()
    })
}
