//! Tenant leases: a worker runs a tenant only while it holds the tenant's lease. Taking one is a
//! compare-and-set — an UPDATE that succeeds only if the lease is ours or expired, else an INSERT that
//! the primary key lets only one worker win — so it works the same on SQLite and PostgreSQL.

use std::time::Duration;

use chrono::Utc;
use landlord_protocol::TenantId;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set, sea_query::Expr};

use super::{Store, StoreError, entities::tenant_lease};

impl Store {
    /// Takes or renews the lease of `tenant` for `holder` until `ttl` from now. False when another
    /// holder's lease is still valid.
    pub async fn acquire_lease(&self, tenant: &TenantId, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(ttl).expect("lease ttl fits");
        let taken = tenant_lease::Entity::update_many()
            .col_expr(tenant_lease::Column::Holder, Expr::value(holder))
            .col_expr(tenant_lease::Column::ExpiresAt, Expr::value(until))
            .filter(tenant_lease::Column::TenantId.eq(tenant.to_string()))
            .filter(
                Condition::any()
                    .add(tenant_lease::Column::Holder.eq(holder))
                    .add(tenant_lease::Column::ExpiresAt.lt(now)),
            )
            .exec(self.connection())
            .await?;
        if taken.rows_affected == 1 {
            return Ok(true);
        }
        let row = tenant_lease::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            holder: Set(holder.to_owned()),
            expires_at: Set(until),
        };
        // Losing the insert race (or a live lease existing) is the normal "busy" answer.
        Ok(row.insert(self.connection()).await.is_ok())
    }

    /// Extends a lease this holder has; false when it was lost (expired and taken by another).
    pub async fn renew_lease(&self, tenant: &TenantId, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let until = Utc::now() + chrono::Duration::from_std(ttl).expect("lease ttl fits");
        let renewed = tenant_lease::Entity::update_many()
            .col_expr(tenant_lease::Column::ExpiresAt, Expr::value(until))
            .filter(tenant_lease::Column::TenantId.eq(tenant.to_string()))
            .filter(tenant_lease::Column::Holder.eq(holder))
            .exec(self.connection())
            .await?;
        Ok(renewed.rows_affected == 1)
    }

    pub async fn release_lease(&self, tenant: &TenantId, holder: &str) -> Result<(), StoreError> {
        tenant_lease::Entity::delete_many()
            .filter(tenant_lease::Column::TenantId.eq(tenant.to_string()))
            .filter(tenant_lease::Column::Holder.eq(holder))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Releases every lease a worker's handlings hold (`<worker>/…`), when it shuts down.
    pub async fn release_leases_of(&self, worker: &str) -> Result<u64, StoreError> {
        let gone = tenant_lease::Entity::delete_many()
            .filter(tenant_lease::Column::Holder.starts_with(format!("{worker}/")))
            .exec(self.connection())
            .await?;
        Ok(gone.rows_affected)
    }

    /// The current holder of a tenant's lease, if any (expired or not).
    pub async fn lease_holder(&self, tenant: &TenantId) -> Result<Option<String>, StoreError> {
        Ok(tenant_lease::Entity::find_by_id(tenant.to_string()).one(self.connection()).await?.map(|l| l.holder))
    }
}
