//! Where a tenant's database lives. The registry in the control plane says which server each tenant is
//! placed on; this module opens (and keeps) a connection pool per registered server, so steps ask for
//! "the tenant's server" and never hold a URL themselves. A tenant not placed yet (or placed before the
//! registry existed) is on the default server, `LANDLORD_TENANT_DB_URL`.

pub mod place;

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
        open.insert(row.id.clone(), server.clone());
        Ok(server)
    }

    /// The server the tenant's database is on: where it is placed, else the default server.
    pub async fn of_tenant(&self, tenant: &TenantId) -> Result<TenantDbServer, StepError> {
        match self.store.placement_of(tenant).await? {
            Some(row) => self.get(&row).await,
            None => Ok(self.default.clone()),
        }
    }
}
