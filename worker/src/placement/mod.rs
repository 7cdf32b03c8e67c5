//! Where a tenant's database lives. The registry in the control plane says which server each tenant is
//! placed on; this module opens (and keeps) a connection pool per registered server, so steps ask for
//! "the tenant's server" and never hold a URL themselves. A tenant not placed yet (or placed before the
//! registry existed) is on the default server, `LANDLORD_TENANT_DB_URL`.

pub mod moving;
pub mod place;
pub mod templates;

use std::{collections::HashMap, sync::Arc};

use landlord_protocol::{DbEngine, TenantId};
use tokio::sync::Mutex;

use crate::{
    error::{ErrorCode, StepError},
    store::{Store, entities::db_server},
    tenant_db::TenantDbServer,
};

/// The default server and a pool per registered server, opened on first use.
#[derive(Debug, Clone)]
pub struct Servers {
    store: Store,
    default: TenantDbServer,
    default_engine: DbEngine,
    login_connection_limit: u32,
    open: Arc<Mutex<HashMap<String, TenantDbServer>>>,
}

impl Servers {
    pub fn new(store: Store, default: TenantDbServer, login_connection_limit: u32) -> Self {
        let default_engine = default.engine();
        Self { store, default, default_engine, login_connection_limit, open: Arc::default() }
    }

    /// `LANDLORD_TENANT_DB_URL`'s server.
    pub fn default_server(&self) -> &TenantDbServer {
        &self.default
    }

    /// The engine of `LANDLORD_TENANT_DB_URL`: a plan's engine unless it names one.
    pub fn default_engine(&self) -> DbEngine {
        self.default_engine
    }

    /// The pool of a registered server. The server named `default` is always reached with this worker's
    /// own `LANDLORD_TENANT_DB_URL`, so a changed password there takes effect with the next start.
    pub async fn get(&self, row: &db_server::Model) -> Result<TenantDbServer, StepError> {
        if row.name == crate::store::DEFAULT_SERVER {
            return Ok(self.default.clone());
        }
        let mut open = self.open.lock().await;
        if let Some(server) = open.get(&row.id) {
            return Ok(server.clone());
        }
        let url = self.store.server_admin_url(row)?.ok_or_else(|| {
            StepError::transient(
                ErrorCode::NotReady,
                format!("database server {} is still being created; its admin URL is not known yet", row.name),
            )
        })?;
        let server = TenantDbServer::new(&url)
            .await
            .map_err(|mut e| {
                e.message = format!("database server {}: {}", row.name, e.message);
                e
            })?
            .with_login_connection_limit(self.login_connection_limit);
        // A registered PostgreSQL server may hold the control plane too: tenant logins must not open it.
        match crate::control_plane_guard::guard(&self.store, &server).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(StepError::transient(
                    ErrorCode::DatabaseUnavailable,
                    format!("database server {} does not answer yet", row.name),
                ));
            }
            Err(e) => {
                return Err(StepError::permanent(
                    ErrorCode::DatabaseConflict,
                    format!("database server {}: {e}", row.name),
                ));
            }
        }
        open.insert(row.id.clone(), server.clone());
        Ok(server)
    }

    /// Where a plan's tenants go and on which engine: what the plan says, else shared, on the default
    /// server's engine (a plan missing from the catalogue too).
    pub fn placement_of(&self, plan: Option<&landlord_protocol::Plan>) -> (landlord_protocol::Placement, DbEngine) {
        let placement = plan.map_or(landlord_protocol::Placement::Shared, |p| p.placement);
        (placement, plan.and_then(|p| p.engine).unwrap_or(self.default_engine))
    }

    /// The server the tenant's database is on: where it is placed, else the default server.
    pub async fn of_tenant(&self, tenant: &TenantId) -> Result<TenantDbServer, StepError> {
        match self.store.placement_of(tenant).await? {
            Some(row) => self.get(&row).await,
            None => Ok(self.default.clone()),
        }
    }
}

/// Query parameters an admin URL may carry: TLS settings. Anything else (`host=`, `hostaddr=`,
/// `socket=`, `password=`) could send Landlord somewhere other than the host it shows, or hide a secret
/// where it is not redacted.
const ALLOWED_URL_PARAMETERS: &[&str] =
    &["sslmode", "ssl-mode", "sslrootcert", "ssl-ca", "sslcert", "ssl-cert", "sslkey", "ssl-key"];

/// Checks an administrator's URL before Landlord stores or uses it: a database scheme, a host, and no
/// query parameter beyond the TLS ones. Returns its engine.
pub fn check_admin_url(url: &secrecy::SecretString) -> Result<DbEngine, String> {
    use secrecy::ExposeSecret;
    let text = url.expose_secret();
    let engine = DbEngine::of_url(text)
        .ok_or("the admin URL must start with mysql://, mariadb://, postgres:// or postgresql://")?;
    let parsed = url::Url::parse(text).map_err(|e| format!("the admin URL is not a URL: {e}"))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the admin URL names no host".into());
    }
    if let Some((key, _)) = parsed.query_pairs().find(|(k, _)| !ALLOWED_URL_PARAMETERS.contains(&k.as_ref())) {
        return Err(format!(
            "the admin URL may carry only TLS parameters ({}), not {key:?}",
            ALLOWED_URL_PARAMETERS.join(", ")
        ));
    }
    Ok(engine)
}

#[cfg(test)]
mod tests {
    use super::check_admin_url;

    #[test]
    fn an_admin_url_is_a_database_url_with_a_host_and_tls_parameters_only() {
        let check = |u: &str| check_admin_url(&u.to_owned().into());
        assert!(check("mysql://root:pw@db.internal:3306").is_ok());
        assert!(check("postgres://admin:pw@db/postgres?sslmode=require").is_ok());
        assert!(check("http://db").is_err());
        assert!(check("postgres://admin@db/postgres?host=/var/run/postgresql").unwrap_err().contains("\"host\""));
        assert!(check("postgres://admin@db/postgres?password=x").is_err());
        assert!(check("mysql://root@db?socket=/tmp/s").is_err());
        assert!(check("mysql:///x").is_err());
    }
}
