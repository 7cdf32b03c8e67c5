//! The database's own tools: the dump tool (`mariadb-dump` or `mysqldump`, `pg_dump`) for a tenant's
//! final dump and for moving it, and the client (`mariadb` or `mysql`, `pg_restore`) that restores a move's dump
//! on the new server. A dump runs as the server's administrator; a restore runs as the tenant's own login,
//! so what it creates is the tenant's and a dump can do nothing the tenant could not. Passwords go in the
//! tool's environment (`MYSQL_PWD`, `PGPASSWORD`), never on its command line, where any user of the
//! machine could read them. The dump is plain SQL without the database's own name, owner or grants, so it
//! can be restored into any fresh database: `mariadb NEWDB < dump.sql`, `psql -d NEWDB -f dump.sql`.

use std::process::Stdio;

use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};
use tokio::process::Command;

use super::TenantDbServer;
use crate::{
    error::{ErrorCode, StepError},
    names::{DatabaseName, LoginName},
    scripts::Dialect,
};

/// What a tool is for.
#[derive(Debug, Clone, Copy)]
enum Tool {
    Dump,
    Restore,
}

/// The tools tried in order, per engine: MariaDB's own names first, MySQL's as a fallback.
fn tools(dialect: Dialect, tool: Tool) -> &'static [&'static str] {
    match (dialect, tool) {
        (Dialect::MySql, Tool::Dump) => &["mariadb-dump", "mysqldump"],
        (Dialect::MySql, Tool::Restore) => &["mariadb", "mysql"],
        (Dialect::Postgres, Tool::Dump) => &["pg_dump"],
        (Dialect::Postgres, Tool::Restore) => &["pg_restore"],
    }
}

/// The first tool of `dialect` found on `PATH`.
fn find_tool(dialect: Dialect, tool: Tool) -> Result<std::path::PathBuf, StepError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in tools(dialect, tool) {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(tool);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let package = match dialect {
        Dialect::MySql => "mariadb-client",
        Dialect::Postgres => "postgresql-client",
    };
    Err(StepError::permanent(
        ErrorCode::ArchiveTool,
        format!("{} is not installed on this worker (Debian package {package})", tools(dialect, tool).join(" or ")),
    ))
}

impl TenantDbServer {
    /// The command that writes `db` as SQL to its standard output, as the administrator: a final dump any
    /// fresh database can be restored from. Its standard error is piped, for the reason it gives when it
    /// fails.
    pub fn dump_command(&self, db: &DatabaseName) -> Result<Command, StepError> {
        self.dump(db, "--format=plain")
    }

    /// The command that writes `db` for a move to its standard output: what [`restore_command`] reads (on
    /// PostgreSQL the custom format, which `pg_restore` runs statement by statement, never through a
    /// client that would obey meta-commands hidden in a name).
    ///
    /// [`restore_command`]: Self::restore_command
    pub fn move_dump_command(&self, db: &DatabaseName) -> Result<Command, StepError> {
        self.dump(db, "--format=custom")
    }

    /// The dump tool for `db`; `pg_format` is PostgreSQL's `--format=…` (MySQL writes SQL either way).
    fn dump(&self, db: &DatabaseName, pg_format: &str) -> Result<Command, StepError> {
        let mut cmd = self.tool_command(Tool::Dump, None)?;
        match self.dialect {
            Dialect::MySql => {
                cmd.args(["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob"])
                    .args(["--no-tablespaces", "--skip-comments"]);
                // The database name is a positional argument after `--`: it can never be read as an option.
                cmd.arg("--").arg(db.as_str());
            }
            Dialect::Postgres => {
                cmd.arg(pg_format).args(["--no-owner", "--no-privileges", "--quote-all-identifiers"]);
                cmd.arg(format!("--dbname={}", db.as_str()));
            }
        }
        Ok(cmd)
    }

    /// The command that restores what [`move_dump_command`](Self::move_dump_command) wrote, from its
    /// standard input into `db`, as the tenant's own `login`, stopping at the first error (PostgreSQL: in
    /// one transaction, so a failed restore leaves nothing half-made).
    pub fn restore_command(
        &self,
        db: &DatabaseName,
        login: &LoginName,
        password: &SecretString,
    ) -> Result<Command, StepError> {
        let mut cmd = self.tool_command(Tool::Restore, Some((login, password)))?;
        match self.dialect {
            Dialect::MySql => {
                // `--binary-mode` with piped input: no client command but `DELIMITER` is obeyed.
                cmd.args(["--batch", "--binary-mode", "--no-auto-rehash", "--skip-column-names", "--local-infile=0"]);
                cmd.arg(format!("--database={}", db.as_str()));
            }
            Dialect::Postgres => {
                cmd.args(["--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]);
                cmd.arg(format!("--dbname={}", db.as_str()));
            }
        }
        Ok(cmd)
    }

    /// A tool connected to this server as the administrator, or as `login` when given: host, port, user,
    /// password and TLS from the admin URL, and nothing from the worker's own environment.
    fn tool_command(&self, tool: Tool, login: Option<(&LoginName, &SecretString)>) -> Result<Command, StepError> {
        let url = url::Url::parse(self.url.expose_secret()).map_err(|_| {
            StepError::permanent(ErrorCode::TenantDbUrl, "the database server's admin URL is not valid")
        })?;
        let program = find_tool(self.dialect, tool)?;
        let host = url.host_str().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']').to_owned();
        let (user, password) = match login {
            Some((login, password)) => (login.as_str().to_owned(), Some(password.expose_secret().to_owned())),
            None => (
                percent_decode_str(url.username()).decode_utf8_lossy().into_owned(),
                url.password().map(|p| percent_decode_str(p).decode_utf8_lossy().into_owned()),
            ),
        };
        let query = |keys: &[&str]| url.query_pairs().find(|(k, _)| keys.contains(&k.as_ref())).map(|(_, v)| v);
        let mut cmd = Command::new(program);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        // Nothing from the worker's own environment may change what is read or written, or where.
        for var in
            ["MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_PWD", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE"]
        {
            cmd.env_remove(var);
        }
        match self.dialect {
            Dialect::MySql => {
                let port = url.port().unwrap_or(3306);
                // No option files: only the URL's settings (must come first on the command line).
                cmd.arg("--no-defaults")
                    .arg("--protocol=TCP")
                    .arg(format!("--host={host}"))
                    .arg(format!("--port={port}"));
                if !user.is_empty() {
                    cmd.arg(format!("--user={user}"));
                }
                if let Some(mode) = query(&["ssl-mode", "sslmode"])
                    && !mode.eq_ignore_ascii_case("disabled")
                    && !mode.eq_ignore_ascii_case("preferred")
                {
                    cmd.arg("--ssl");
                    // The verifying modes verify here too: the whole tenant database goes over this link.
                    if mode.to_ascii_lowercase().starts_with("verify") {
                        cmd.arg("--ssl-verify-server-cert");
                    }
                }
                if let Some(ca) = query(&["ssl-ca", "sslca"]) {
                    cmd.arg(format!("--ssl-ca={ca}"));
                }
                if let Some(password) = password {
                    cmd.env("MYSQL_PWD", password);
                }
            }
            Dialect::Postgres => {
                let port = url.port().unwrap_or(5432);
                // No ~/.pgpass or service file: only the URL's credentials.
                cmd.env("PGPASSFILE", "/dev/null").env("PGSERVICEFILE", "/dev/null");
                cmd.arg(format!("--host={host}")).arg(format!("--port={port}"));
                if !user.is_empty() {
                    cmd.arg(format!("--username={user}"));
                }
                if let Some(mode) = query(&["sslmode"]) {
                    cmd.env("PGSSLMODE", mode.as_ref());
                }
                if let Some(ca) = query(&["sslrootcert"]) {
                    cmd.env("PGSSLROOTCERT", ca.as_ref());
                }
                match password {
                    Some(password) => cmd.env("PGPASSWORD", password),
                    // Never stop to ask for a password on a terminal.
                    None => cmd.arg("--no-password"),
                };
            }
        }
        Ok(cmd)
    }
}
