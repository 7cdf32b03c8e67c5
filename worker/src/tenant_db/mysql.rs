//! MySQL/MariaDB: `CREATE DATABASE IF NOT EXISTS … utf8mb4`, a login `'name'@'%'` with privileges on that
//! database only (the grant's name escaped, since `_` is a wildcard there) and a connection limit. The plan
//! script runs as that login. DDL commits as it goes, so a script that failed half-way leaves tables behind: before
//! applying, a database holding tables but no marker row is emptied by dropping and recreating it (it was
//! created by this same provisioning and holds nothing else).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement as SqlStatement};
use secrecy::{ExposeSecret, SecretString};

use super::{
    Applied, BeforeStatement, SCHEMA_MARKER, TenantDbServer, already_applied, run_secret, run_statements, verifier,
    write_marker,
};
use crate::{
    error::StepError,
    names::{DatabaseName, LoginName},
    scripts::{PlanScript, Statement},
};

pub async fn create_database(
    admin: &DatabaseConnection,
    db: &DatabaseName,
    login: &LoginName,
    password: &SecretString,
    connection_limit: u32,
) -> Result<(), StepError> {
    let (d, l) = (db.mysql(), login.as_str());
    admin
        .execute_unprepared(&format!(
            "CREATE DATABASE IF NOT EXISTS {d} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        ))
        .await?;
    // The statements carry the password's `mysql_native_password` hash, never the password: a server may
    // write statement text to its general, slow or audit log, and the hash alone cannot log in.
    let hash = SecretString::from(verifier::mysql_native_password(password));
    let auth = format!("IDENTIFIED WITH mysql_native_password AS '{}'", hash.expose_secret());
    let limit = format!("WITH MAX_USER_CONNECTIONS {connection_limit}");
    run_secret(admin, &format!("CREATE USER IF NOT EXISTS '{l}'@'%' {auth} {limit}"), &hash).await?;
    run_secret(admin, &format!("ALTER USER '{l}'@'%' {auth} {limit}"), &hash).await?;
    // `_` is a wildcard in a database-level grant: the escaped name opens this database and no other.
    repair_grant(admin, db, login).await
}

/// The login's grant on its database, escaped (`_` is a wildcard in a database-level grant), with any
/// unescaped one an earlier version gave removed.
pub async fn repair_grant(admin: &DatabaseConnection, db: &DatabaseName, login: &LoginName) -> Result<(), StepError> {
    let pattern = db.mysql_grant_pattern();
    revoke_wildcard_grant(admin, db, login).await?;
    admin.execute_unprepared(&format!("GRANT ALL PRIVILEGES ON {pattern}.* TO '{}'@'%'", login.as_str())).await?;
    Ok(())
}

/// Removes the unescaped grant earlier Landlord versions gave (`tenant_ab_c`.* also opens `tenant_abxc`);
/// a login that never had it is fine (1141: no such grant).
async fn revoke_wildcard_grant(
    admin: &DatabaseConnection,
    db: &DatabaseName,
    login: &LoginName,
) -> Result<(), StepError> {
    let sql = format!("REVOKE ALL PRIVILEGES ON {}.* FROM '{}'@'%'", db.mysql(), login.as_str());
    match admin.execute_unprepared(&sql).await {
        Ok(_) => Ok(()),
        Err(e) if mysql_code(&e) == Some(1141) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn mysql_code(e: &sea_orm::DbErr) -> Option<u16> {
    match e {
        sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(s)) => match s.as_ref() {
            sea_orm::sqlx::Error::Database(d) => {
                d.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>().map(|m| m.number())
            }
            _ => None,
        },
        _ => None,
    }
}

pub async fn database_exists(admin: &DatabaseConnection, db: &DatabaseName) -> Result<bool, StepError> {
    let row = admin
        .query_one_raw(SqlStatement::from_sql_and_values(
            DbBackend::MySql,
            "SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = ?",
            [db.as_str().into()],
        ))
        .await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0) > 0)
}

pub async fn drop_db(admin: &DatabaseConnection, db: &DatabaseName) -> Result<(), StepError> {
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {}", db.mysql())).await?;
    Ok(())
}

/// Locks (or unlocks) the login; locking also ends its open sessions, so a suspended tenant's application
/// loses the database at once, not at its next reconnect.
pub async fn set_login_locked(admin: &DatabaseConnection, login: &LoginName, locked: bool) -> Result<(), StepError> {
    let lock = if locked { "LOCK" } else { "UNLOCK" };
    admin.execute_unprepared(&format!("ALTER USER '{}'@'%' ACCOUNT {lock}", login.as_str())).await?;
    if locked {
        let sessions = admin
            .query_all_raw(SqlStatement::from_sql_and_values(
                DbBackend::MySql,
                "SELECT CAST(ID AS SIGNED) AS id FROM information_schema.PROCESSLIST WHERE USER = ?",
                [login.as_str().into()],
            ))
            .await?;
        for row in sessions {
            let id: i64 = row.try_get("", "id")?;
            // A session that ended meanwhile is what we wanted anyway.
            admin.execute_unprepared(&format!("KILL CONNECTION {id}")).await.ok();
        }
    }
    Ok(())
}

pub async fn drop_login(admin: &DatabaseConnection, login: &LoginName) -> Result<(), StepError> {
    admin.execute_unprepared(&format!("DROP USER IF EXISTS '{}'@'%'", login.as_str())).await?;
    Ok(())
}

/// Any account with this user name, whatever its host: `'tenant_x'@'localhost'` made by someone else is as
/// much a conflict as `'tenant_x'@'%'`.
pub async fn login_exists(admin: &DatabaseConnection, login: &LoginName) -> Result<bool, StepError> {
    let sql = "SELECT COUNT(*) AS n FROM mysql.user WHERE user = ?";
    Ok(count(admin, sql, vec![login.as_str().into()]).await? > 0)
}

async fn count(conn: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Result<i64, StepError> {
    let row = conn.query_one_raw(SqlStatement::from_sql_and_values(DbBackend::MySql, sql, values)).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0))
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
    let admin = server.admin();
    // The database's tables and whether the marker is among them, in one look at information_schema (slow
    // on MariaDB). Only a real table counts as the marker, and its rows are read as the tenant: a script
    // may have put a view there whose functions must never run with the administrator's rights.
    let tables = format!(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(table_name = '{SCHEMA_MARKER}' AND table_type = 'BASE TABLE'), 0) \
         AS SIGNED) AS marker FROM information_schema.tables WHERE table_schema = ?"
    );
    let row = admin
        .query_one_raw(SqlStatement::from_sql_and_values(DbBackend::MySql, &tables, vec![db.as_str().into()]))
        .await?;
    let (in_db, marker) = match row {
        Some(r) => (r.try_get::<i64>("", "n")?, r.try_get::<i64>("", "marker")?),
        None => (0, 0),
    };
    if marker > 0 {
        let conn = server.connect_as(db, login, password).await?;
        let rows = count(&conn, &format!("SELECT COUNT(*) AS n FROM `{SCHEMA_MARKER}`"), vec![]).await?;
        // The marker table is created, then filled, in two statements that each commit: an empty one is
        // an attempt interrupted in between, and is cleared below like any other leftover.
        if rows > 0 {
            let same = count(
                &conn,
                &format!("SELECT COUNT(*) AS n FROM `{SCHEMA_MARKER}` WHERE script = ? AND sha256 = ?"),
                vec![script.name.clone().into(), script.sha256.clone().into()],
            )
            .await?;
            conn.close().await.ok();
            return already_applied(db, script, same > 0);
        }
        conn.close().await.ok();
    }
    if in_db > 0 {
        tracing::warn!(%db, "database holds tables from an interrupted attempt; recreating it before applying");
        admin.execute_unprepared(&format!("DROP DATABASE {}", db.mysql())).await?;
        admin
            .execute_unprepared(&format!(
                "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                db.mysql()
            ))
            .await?;
    }
    // As the tenant: a trigger or routine the script defines gets the tenant as its DEFINER, and a
    // statement reaching for another database or the server's users is refused.
    let conn = server.connect_as(db, login, password).await?;
    run_statements(&conn, script, statements, before).await?;
    write_marker(&conn, script).await?;
    conn.close().await.ok();
    Ok(Applied::Now { statements: statements.len() })
}
