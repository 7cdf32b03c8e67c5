//! The database's own dump tool (`mariadb-dump` or `mysqldump`, `pg_dump`) for a tenant's final dump.
//! It runs as the administrator of `LANDLORD_TENANT_DB_URL`; the password goes in the tool's environment
//! (`MYSQL_PWD`, `PGPASSWORD`), never on its command line, where any user of the machine could read it.
//! The dump is plain SQL without the database's own name, owner or grants, so it can be restored into
//! any fresh database: `mariadb NEWDB < dump.sql`, `psql -d NEWDB -f dump.sql`.

use std::process::Stdio;

use percent_encoding::percent_decode_str;
use secrecy::ExposeSecret;
use tokio::process::Command;

use super::TenantDbServer;
use crate::{
    error::{ErrorCode, StepError},
    names::DatabaseName,
    scripts::Dialect,
};

/// The dump tools tried in order, per engine: MariaDB's own name first, MySQL's as a fallback.
fn tools(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::MySql => &["mariadb-dump", "mysqldump"],
        Dialect::Postgres => &["pg_dump"],
    }
}

/// The first tool of `dialect` found on `PATH`.
fn find_tool(dialect: Dialect) -> Result<std::path::PathBuf, StepError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in tools(dialect) {
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
        format!("{} is not installed on this worker (Debian package {package})", tools(dialect).join(" or ")),
    ))
}

impl TenantDbServer {
    /// The command that writes `db` as SQL to its standard output. Its standard error is piped, for the
    /// reason it gives when it fails.
    pub fn dump_command(&self, db: &DatabaseName) -> Result<Command, StepError> {
        let url = url::Url::parse(self.url.expose_secret())
            .map_err(|_| StepError::permanent(ErrorCode::TenantDbUrl, "LANDLORD_TENANT_DB_URL is not a valid URL"))?;
        let tool = find_tool(self.dialect)?;
        let host = url.host_str().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']').to_owned();
        let user = percent_decode_str(url.username()).decode_utf8_lossy().into_owned();
        let password = url.password().map(|p| percent_decode_str(p).decode_utf8_lossy().into_owned());
        let query = |keys: &[&str]| url.query_pairs().find(|(k, _)| keys.contains(&k.as_ref())).map(|(_, v)| v);
        let mut cmd = Command::new(tool);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        // Nothing from the worker's own environment may change what is dumped or where from.
        for var in
            ["MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_PWD", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE"]
        {
            cmd.env_remove(var);
        }
        match self.dialect {
            Dialect::MySql => {
                let port = url.port().unwrap_or(3306);
                cmd.args(["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob"])
                    .args(["--no-tablespaces", "--skip-comments", "--protocol=TCP"])
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
                    // The verifying modes verify here too: the dump is the whole tenant database.
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
                // The database name is a positional argument after `--`: it can never be read as an option.
                cmd.arg("--").arg(db.as_str());
            }
            Dialect::Postgres => {
                let port = url.port().unwrap_or(5432);
                // No ~/.pgpass or service file: only the URL's credentials.
                cmd.env("PGPASSFILE", "/dev/null").env("PGSERVICEFILE", "/dev/null");
                cmd.args(["--format=plain", "--no-owner", "--no-privileges", "--quote-all-identifiers"])
                    .arg(format!("--host={host}"))
                    .arg(format!("--port={port}"));
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
                cmd.arg(format!("--dbname={}", db.as_str()));
            }
        }
        Ok(cmd)
    }
}
