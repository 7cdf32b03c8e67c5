//! PostgreSQL: a login role and a database it owns, with `CONNECT` and `TEMPORARY` revoked from
//! `PUBLIC` so no other tenant's login can reach it. `CREATE DATABASE` cannot run in a transaction and is
//! issued alone. The login has a connection limit and no server-wide power. The plan script runs in one
//! transaction connected as the tenant's login (so the tenant owns its tables and cannot switch back to
//! the administrator), together with the marker, so it either applied completely or not at all.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement as SqlStatement, TransactionTrait};
use secrecy::{ExposeSecret, SecretString};

use super::{
    Applied, BeforeStatement, SCHEMA_MARKER, TenantDbServer, already_applied, run_secret, run_statements, verifier,
    write_marker,
};
use crate::{
    error::{ErrorCode, StepError},
    names::{DatabaseName, LoginName},
    scripts::{PlanScript, Statement},
};

async fn exists(conn: &DatabaseConnection, sql: &str, name: &str) -> Result<Option<String>, StepError> {
    let row = conn.query_one_raw(SqlStatement::from_sql_and_values(DbBackend::Postgres, sql, [name.into()])).await?;
    Ok(row.map(|r| r.try_get::<String>("", "owner")).transpose()?)
}

const DB_OWNER: &str = "SELECT pg_get_userbyid(datdba)::text AS owner FROM pg_database WHERE datname = $1";
const ROLE: &str = "SELECT rolname::text AS owner FROM pg_roles WHERE rolname = $1";

pub async fn create_database(
    admin: &DatabaseConnection,
    db: &DatabaseName,
    login: &LoginName,
    password: &SecretString,
    connection_limit: u32,
) -> Result<(), StepError> {
    // The statement carries a SCRAM verifier computed here, never the password: PostgreSQL may write a
    // statement to its log (log_statement, an error's STATEMENT line) and shows it in pg_stat_activity.
    let verifier = SecretString::from(verifier::scram_sha256(password));
    let role = |verb: &str| role_statement(verb, login, &verifier, connection_limit);
    let verb = if exists(admin, ROLE, login.as_str()).await?.is_some() { "ALTER" } else { "CREATE" };
    // Utility statements take no bind parameters; the verifier is base64 text with no quote in it.
    if let Err(e) = run_secret(admin, &role(verb), &verifier).await {
        // Another attempt may have created the role in between; setting the verifier again settles it.
        if verb == "CREATE" && exists(admin, ROLE, login.as_str()).await?.is_some() {
            run_secret(admin, &role("ALTER"), &verifier).await?;
        } else {
            return Err(e);
        }
    }
    if exists(admin, DB_OWNER, db.as_str()).await?.is_none()
        && let Err(e) = admin.execute_unprepared(&format!("CREATE DATABASE {} OWNER {}", db.pg(), login.pg())).await
    {
        // 42P04: created concurrently. Accept it only if it is ours.
        if exists(admin, DB_OWNER, db.as_str()).await?.is_none() {
            return Err(e.into());
        }
    }
    match exists(admin, DB_OWNER, db.as_str()).await? {
        Some(owner) if owner == login.as_str() => {}
        other => {
            return Err(StepError::permanent(
                ErrorCode::DatabaseConflict,
                format!(
                    "database {db} exists but is owned by {}; it does not belong to this tenant",
                    other.unwrap_or_default()
                ),
            ));
        }
    }
    admin.execute_unprepared(&format!("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC", db.pg())).await?;
    Ok(())
}

/// `CREATE|ALTER ROLE` with the SCRAM verifier in place of a password.
fn role_statement(verb: &str, login: &LoginName, verifier: &SecretString, connection_limit: u32) -> String {
    format!(
        "{verb} ROLE {} WITH LOGIN CONNECTION LIMIT {connection_limit} PASSWORD '{}'",
        login.pg(),
        verifier.expose_secret()
    )
}

pub async fn database_exists(admin: &DatabaseConnection, db: &DatabaseName) -> Result<bool, StepError> {
    Ok(exists(admin, DB_OWNER, db.as_str()).await?.is_some())
}

pub async fn drop_db(admin: &DatabaseConnection, db: &DatabaseName) -> Result<(), StepError> {
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.pg())).await?;
    Ok(())
}

/// `NOLOGIN` (or `LOGIN`) on the tenant's role; locking also ends its open sessions.
pub async fn set_login_locked(admin: &DatabaseConnection, login: &LoginName, locked: bool) -> Result<(), StepError> {
    let can = if locked { "NOLOGIN" } else { "LOGIN" };
    admin.execute_unprepared(&format!("ALTER ROLE {} {can}", login.pg())).await?;
    if locked {
        admin
            .execute_raw(SqlStatement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                [login.as_str().into()],
            ))
            .await?;
    }
    Ok(())
}

pub async fn drop_login(admin: &DatabaseConnection, login: &LoginName) -> Result<(), StepError> {
    admin.execute_unprepared(&format!("DROP ROLE IF EXISTS {}", login.pg())).await?;
    Ok(())
}

pub async fn login_exists(admin: &DatabaseConnection, login: &LoginName) -> Result<bool, StepError> {
    Ok(exists(admin, ROLE, login.as_str()).await?.is_some())
}

pub async fn apply_script(
    server: &TenantDbServer,
    db: &DatabaseName,
    login: &LoginName,
    password: &SecretString,
    script: &PlanScript,
    statements: &[Statement],
    before: BeforeStatement<'_>,
) -> Result<Applied, StepError> {
    // Connected as the tenant's own login, not switched to its role: a script cannot `RESET ROLE` back
    // to the administrator, because it never was one.
    let conn = server.connect_as(db, login, password).await?;
    let marker = conn
        .query_one_raw(SqlStatement::from_string(
            DbBackend::Postgres,
            format!("SELECT (to_regclass('public.{SCHEMA_MARKER}') IS NOT NULL) AS present"),
        ))
        .await?
        .map(|r| r.try_get::<bool>("", "present"))
        .transpose()?
        .unwrap_or(false);
    if marker {
        let same = conn
            .query_one_raw(SqlStatement::from_sql_and_values(
                DbBackend::Postgres,
                format!("SELECT COUNT(*) AS n FROM public.{SCHEMA_MARKER} WHERE script = $1 AND sha256 = $2"),
                [script.name.clone().into(), script.sha256.clone().into()],
            ))
            .await?
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0);
        conn.close().await.ok();
        return already_applied(db, script, same > 0);
    }
    let txn = conn.begin().await?;
    run_statements(&txn, script, statements, before).await?;
    write_marker(&txn, script).await?;
    txn.commit().await?;
    conn.close().await.ok();
    Ok(Applied::Now { statements: statements.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_statement_carries_a_verifier_and_never_the_password() {
        let password = SecretString::from("Pa55wordThatMustNotTravel0123456");
        let login = LoginName::parse("tenant_acme").unwrap();
        let verifier = SecretString::from(verifier::scram_sha256(&password));
        for verb in ["CREATE", "ALTER"] {
            let sql = role_statement(verb, &login, &verifier, 7);
            assert!(!sql.contains(password.expose_secret()), "{sql}");
            assert!(sql.contains("PASSWORD 'SCRAM-SHA-256$4096:"), "{sql}");
            assert!(sql.contains("CONNECTION LIMIT 7"), "{sql}");
        }
    }
}
