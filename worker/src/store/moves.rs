//! The control plane's side of moving a tenant's database to another server. A move holds a place on
//! both servers while it runs: the new one is taken (`moving_to`) before anything is copied there, the
//! switch makes it the tenant's server and keeps the old one (`moved_from`) until its copy is dropped.
//! Each change is one conditional update, so a repeated step changes nothing twice.

use chrono::Utc;
use landlord_protocol::{DbEngine, TenantId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

use super::{
    Store, StoreError,
    entities::{db_server, tenant},
    servers::Slot,
};

impl Store {
    /// The server the tenant's database is moving to, if a move has reserved one.
    pub async fn moving_to(&self, tenant_id: &TenantId) -> Result<Option<db_server::Model>, StoreError> {
        match self.tenant(tenant_id).await?.and_then(|row| row.moving_to) {
            Some(id) => self.server(&id).await,
            None => Ok(None),
        }
    }

    /// The server whose old copy a switched move has still to drop.
    pub async fn moved_from(&self, tenant_id: &TenantId) -> Result<Option<db_server::Model>, StoreError> {
        match self.tenant(tenant_id).await?.and_then(|row| row.moved_from) {
            Some(id) => self.server(&id).await,
            None => Ok(None),
        }
    }

    /// Reserves a place for the tenant's move on the least-loaded open shared server of `engine` with room
    /// (never the one it is on); the server already reserved, if there is one.
    pub async fn reserve_shared(
        &self,
        tenant_id: &TenantId,
        engine: DbEngine,
    ) -> Result<Option<db_server::Model>, StoreError> {
        if let Some(reserved) = self.moving_to(tenant_id).await? {
            return Ok(Some(reserved));
        }
        let current = self.tenant(tenant_id).await?.and_then(|row| row.db_server);
        for server in self.shared_candidates(engine).await? {
            if current.as_deref() == Some(server.id.as_str()) {
                continue;
            }
            if self.take_slot(tenant_id, &server.id, true, Slot::MovingTo).await? {
                return self.server(&server.id).await;
            }
            if let Some(reserved) = self.moving_to(tenant_id).await? {
                return Ok(Some(reserved));
            }
        }
        Ok(None)
    }

    /// Reserves a place for the tenant's move on a given server (a dedicated one made or handed over for
    /// it). False when another server is reserved already, the server is full, or it is the tenant's own.
    pub async fn reserve_on(&self, tenant_id: &TenantId, server_id: &str) -> Result<bool, StoreError> {
        let Some(row) = self.tenant(tenant_id).await? else { return Ok(false) };
        if let Some(reserved) = row.moving_to {
            return Ok(reserved == server_id);
        }
        if row.db_server.as_deref() == Some(server_id) {
            return Ok(false);
        }
        self.take_slot(tenant_id, server_id, false, Slot::MovingTo).await
    }

    /// Records that Landlord is about to create the tenant's copy on the reserved server (`started`): from
    /// now on a database of the tenant's name there is Landlord's to replace; or that the copy was dropped.
    pub async fn mark_copy_started(&self, tenant_id: &TenantId, started: bool) -> Result<(), StoreError> {
        tenant::Entity::update_many()
            .col_expr(tenant::Column::MoveCopyStarted, Expr::value(started))
            .col_expr(tenant::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(tenant::Column::Id.eq(tenant_id.to_string()))
            .filter(tenant::Column::MovingTo.is_not_null())
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Gives up a move before its switch: the reserved place is freed and the copy is no longer Landlord's
    /// to replace (it has been dropped by then). Returns the server that was reserved.
    pub async fn release_reservation(&self, tenant_id: &TenantId) -> Result<Option<String>, StoreError> {
        self.free_slot(tenant_id, Slot::MovingTo).await
    }

    /// The switch: the copy becomes the tenant's database and the old server waits for its copy to be
    /// dropped, in one update (only once the copy was started, and never over an old copy not yet dropped). True when this call switched; false when there was nothing to switch (done
    /// before, or no move reserved).
    pub async fn switch_server(&self, tenant_id: &TenantId) -> Result<bool, StoreError> {
        let switched = tenant::Entity::update_many()
            .col_expr(tenant::Column::MovedFrom, Expr::col(tenant::Column::DbServer))
            .col_expr(tenant::Column::DbServer, Expr::col(tenant::Column::MovingTo))
            .col_expr(tenant::Column::MovingTo, Expr::value(Option::<String>::None))
            .col_expr(tenant::Column::MoveCopyStarted, Expr::value(false))
            .col_expr(tenant::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(tenant::Column::Id.eq(tenant_id.to_string()))
            .filter(tenant::Column::MovingTo.is_not_null())
            .filter(tenant::Column::MoveCopyStarted.eq(true))
            .filter(tenant::Column::MovedFrom.is_null())
            // The old server must be known, or its copy could never be dropped.
            .filter(tenant::Column::DbServer.is_not_null())
            .exec(self.connection())
            .await?;
        Ok(switched.rows_affected == 1)
    }

    /// The old copy is gone: its server's place is freed.
    pub async fn forget_old_copy(&self, tenant_id: &TenantId) -> Result<Option<String>, StoreError> {
        self.free_slot(tenant_id, Slot::MovedFrom).await
    }
}
