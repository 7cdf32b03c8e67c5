//! Upgrade scripts, run when a tenant changes plan: once each, recorded by name and checksum in the same
//! marker table as the plan's schema. On PostgreSQL the script and its marker row commit together; on
//! MariaDB/MySQL each DDL statement commits on its own, so an upgrade interrupted half-way is run again
//! from its first statement and must be written to allow that (`CREATE TABLE IF NOT EXISTS`,
//! `ADD COLUMN IF NOT EXISTS`).

use sea_orm::{ConnectionTrait, Statement as SqlStatement, TransactionTrait};
use secrecy::SecretString;

use super::{Applied, BeforeStatement, SCHEMA_MARKER, TenantDbServer, run_statements};
use crate::{
    error::{ErrorCode, StepError},
    names::{DatabaseName, LoginName},
    scripts::{Dialect, PlanScript, Statement},
};

impl TenantDbServer {
    /// Applies an upgrade script as the tenant's own login unless the marker table says it already ran.
    pub async fn apply_upgrade(
        &self,
        db: &DatabaseName,
        login: &LoginName,
        password: &SecretString,
        script: &PlanScript,
        statements: &[Statement],
        before: BeforeStatement<'_>,
    ) -> Result<Applied, StepError> {
        let conn = self.connect_as(db, login, password).await?;
        let backend = conn.get_database_backend();
        let (table, placeholder) = match self.dialect {
            Dialect::MySql => (format!("`{SCHEMA_MARKER}`"), "?"),
            Dialect::Postgres => (format!("public.{SCHEMA_MARKER}"), "$1"),
        };
        let found = conn
            .query_one_raw(SqlStatement::from_sql_and_values(
                backend,
                format!("SELECT sha256 FROM {table} WHERE script = {placeholder}"),
                [script.name.clone().into()],
            ))
            .await
            .map_err(|e| {
                StepError::permanent(
                    ErrorCode::SchemaConflict,
                    format!("database {db} has no readable {SCHEMA_MARKER} table, so its schema is unknown: {e}"),
                )
            })?
            .map(|r| r.try_get::<String>("", "sha256"))
            .transpose()?;
        match found {
            Some(sha) if sha == script.sha256 => {
                conn.close().await.ok();
                return Ok(Applied::Already);
            }
            Some(_) => {
                conn.close().await.ok();
                return Err(StepError::permanent(
                    ErrorCode::SchemaConflict,
                    format!("{} was applied to {db} with other contents; an operator must decide", script.name),
                ));
            }
            None => {}
        }
        let insert = match self.dialect {
            Dialect::MySql => format!("INSERT INTO {table} (script, sha256) VALUES (?, ?)"),
            Dialect::Postgres => format!("INSERT INTO {table} (script, sha256) VALUES ($1, $2)"),
        };
        let marker = SqlStatement::from_sql_and_values(
            backend,
            insert,
            [script.name.clone().into(), script.sha256.clone().into()],
        );
        match self.dialect {
            Dialect::Postgres => {
                let txn = conn.begin().await?;
                run_statements(&txn, script, statements, before).await?;
                txn.execute_raw(marker).await?;
                txn.commit().await?;
            }
            Dialect::MySql => {
                run_statements(&conn, script, statements, before).await?;
                conn.execute_raw(marker).await?;
            }
        }
        conn.close().await.ok();
        Ok(Applied::Now { statements: statements.len() })
    }
}
