//! Tenant logins must not reach the control plane. PostgreSQL grants `CONNECT` on every database to
//! `PUBLIC` unless it is revoked, so when the control plane shares a PostgreSQL server with tenant
//! databases, every tenant login could open it and read its catalog (which tenants exist, their
//! subdomains). At start the worker finds out whether that is so by asking both connections which
//! server and database they are on, and revokes `PUBLIC`'s `CONNECT` on the control plane; when it may
//! not, it refuses to start and says what to do.

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

use crate::{store::Store, tenant_db::TenantDbServer};

/// Which server and database a connection is on: a database's oid and the server's start time
/// together tell one PostgreSQL server from another, whatever host names the URLs use.
#[derive(Debug, PartialEq, Eq)]
struct Place {
    started: String,
    database_oid: Option<i64>,
}

async fn place(conn: &DatabaseConnection, database: &str) -> Result<Place, sea_orm::DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT extract(epoch FROM pg_postmaster_start_time())::text AS started, \
             (SELECT oid::bigint FROM pg_database WHERE datname = $1) AS database_oid",
            [database.into()],
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("no row".into()))?;
    Ok(Place { started: row.try_get("", "started")?, database_oid: row.try_get("", "database_oid")? })
}

async fn public_may_connect(conn: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT has_database_privilege('public', current_database(), 'CONNECT') AS public_connect",
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("no row".into()))?;
    row.try_get("", "public_connect")
}

/// A PostgreSQL identifier in double quotes, any `"` doubled.
fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Closes the control plane to tenant logins when it shares their PostgreSQL server; see the module.
/// `Ok(false)` when the tenant server does not answer yet, so it cannot be told (the caller asks again
/// before any tenant login can exist).
pub async fn guard(store: &Store, tenant_db: &TenantDbServer) -> anyhow::Result<bool> {
    let control = store.connection();
    if control.get_database_backend() != DatabaseBackend::Postgres
        || tenant_db.admin().get_database_backend() != DatabaseBackend::Postgres
    {
        return Ok(true);
    }
    let name_row = control
        .query_one_raw(Statement::from_string(DatabaseBackend::Postgres, "SELECT current_database() AS name"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the control plane did not name its database"))?;
    let name: String = name_row.try_get("", "name")?;
    let ours = place(control, &name).await?;
    let theirs = match place(tenant_db.admin(), &name).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell yet whether the control plane shares the tenant database server");
            return Ok(false);
        }
    };
    if ours != theirs || !public_may_connect(control).await? {
        return Ok(true);
    }
    let db = quoted(&name);
    // The control plane's own login keeps its way in before PUBLIC loses it.
    control.execute_unprepared(&format!("GRANT CONNECT ON DATABASE {db} TO CURRENT_USER")).await.ok();
    control.execute_unprepared(&format!("REVOKE CONNECT ON DATABASE {db} FROM PUBLIC")).await.ok();
    if public_may_connect(control).await? {
        anyhow::bail!(
            "the control-plane database {name} is on the same PostgreSQL server as the tenant databases and every \
             login may connect to it, so tenant logins could read it; Landlord's login may not change that. As \
             the database's owner run: REVOKE CONNECT ON DATABASE {db} FROM PUBLIC; GRANT CONNECT ON DATABASE {db} \
             TO <Landlord's login>; or keep the control plane on another server"
        );
    }
    tracing::warn!(
        database = %name,
        "the control plane shares the tenant database server: revoked CONNECT on it from PUBLIC so tenant logins \
         cannot open it (grant CONNECT to any other login that needs it)"
    );
    Ok(true)
}

/// [`guard`] until it can tell, before the worker takes any command: a tenant server that is down at start
/// is asked again every two seconds. `Ok(false)` when the worker was told to stop meanwhile.
pub async fn guard_before_work(
    store: &Store,
    tenant_db: &TenantDbServer,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<bool> {
    while !guard(store, tenant_db).await? {
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            () = shutdown.cancelled() => return Ok(false),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted_with_quotes_doubled() {
        assert_eq!(super::quoted("landlord"), "\"landlord\"");
        assert_eq!(super::quoted("a\"b"), "\"a\"\"b\"");
    }
}
