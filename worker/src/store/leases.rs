//! Tenant leases: a worker runs a tenant only while it holds the tenant's lease. Taking one is a
//! compare-and-set — an INSERT that the primary key lets only one worker win, else an UPDATE that
//! succeeds only if the lease is ours or expired — so it works the same on SQLite and PostgreSQL.
//!
//! When a lease ends is decided by the control plane's clock alone ([`Store::db_now`]): a worker whose
//! clock runs ahead would otherwise take leases that are still valid, and one whose clock runs behind
//! would hand out leases that end early.

use std::time::Duration;

use chrono::{DateTime, Utc};
use landlord_protocol::TenantId;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Set, Statement,
    sea_query::{Expr, OnConflict},
};

use super::{Store, StoreError, entities::tenant_lease};

impl Store {
    /// The control plane's current time. Read as a value and bound back into the lease statements like
    /// any other timestamp, so stored and compared values keep one format (on SQLite, where timestamps
    /// are text, a value from SQL's own `CURRENT_TIMESTAMP` would compare as a different string).
    pub async fn db_now(&self) -> Result<DateTime<Utc>, StoreError> {
        let db = self.connection();
        let backend = db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => "SELECT now() AS now",
            // SQLite has no timestamp type: ask for RFC 3339 text with milliseconds, its finest.
            DbBackend::Sqlite => "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS now",
            DbBackend::MySql => "SELECT UTC_TIMESTAMP(6) AS now",
            other => return Err(DbErr::Custom(format!("no clock query for a {other:?} control plane")).into()),
        };
        let row = db
            .query_one_raw(Statement::from_string(backend, sql))
            .await?
            .ok_or_else(|| DbErr::Custom("the control plane's clock query returned no row".into()))?;
        let now = match backend {
            DbBackend::Sqlite => {
                let text: String = row.try_get("", "now")?;
                DateTime::parse_from_rfc3339(&text)
                    .map_err(|e| DbErr::Custom(format!("the control plane's clock read {text:?}: {e}")))?
                    .with_timezone(&Utc)
            }
            DbBackend::MySql => row.try_get::<chrono::NaiveDateTime>("", "now")?.and_utc(),
            _ => row.try_get::<DateTime<Utc>>("", "now")?,
        };
        Ok(now)
    }

    /// Takes or renews the lease of `tenant` for `holder` until `ttl` from now by the control plane's
    /// clock. False when another holder's lease is still valid.
    pub async fn acquire_lease(&self, tenant: &TenantId, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = self.db_now().await?;
        let until = now + chrono::Duration::from_std(ttl).expect("lease ttl fits");
        // A tenant nobody holds has no row (a release deletes it): the insert takes it in one statement, and
        // the primary key lets only one worker win. Otherwise the update takes it only if it is ours or expired.
        let row = tenant_lease::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            holder: Set(holder.to_owned()),
            expires_at: Set(until),
        };
        let free = OnConflict::column(tenant_lease::Column::TenantId).do_nothing().to_owned();
        let insert = || tenant_lease::Entity::insert(row.clone()).on_conflict(free.clone());
        if insert().exec_without_returning(self.connection()).await? == 1 {
            return Ok(true);
        }
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
        // Released between the two statements: free again. Otherwise a live lease of another holder is
        // the normal "busy" answer.
        Ok(insert().exec_without_returning(self.connection()).await? == 1)
    }

    /// Extends the leases of these holders to `ttl` from now by the control plane's clock, in one
    /// statement; how many there were. A worker renews all of its leases this way at once.
    pub async fn renew_leases(&self, holders: &[String], ttl: Duration) -> Result<u64, StoreError> {
        if holders.is_empty() {
            return Ok(0);
        }
        let until = self.db_now().await? + chrono::Duration::from_std(ttl).expect("lease ttl fits");
        let renewed = tenant_lease::Entity::update_many()
            .col_expr(tenant_lease::Column::ExpiresAt, Expr::value(until))
            .filter(tenant_lease::Column::Holder.is_in(holders.iter().map(String::as_str)))
            .exec(self.connection())
            .await?;
        Ok(renewed.rows_affected)
    }

    /// How long a tenant's lease has left by the control plane's clock; `None` when nobody holds it.
    pub async fn lease_left(&self, tenant: &TenantId) -> Result<Option<Duration>, StoreError> {
        let Some(lease) = tenant_lease::Entity::find_by_id(tenant.to_string()).one(self.connection()).await? else {
            return Ok(None);
        };
        let left = lease.expires_at - self.db_now().await?;
        Ok(Some(left.to_std().unwrap_or_default()))
    }

    pub async fn release_lease(&self, tenant: &TenantId, holder: &str) -> Result<(), StoreError> {
        tenant_lease::Entity::delete_many()
            .filter(tenant_lease::Column::TenantId.eq(tenant.to_string()))
            .filter(tenant_lease::Column::Holder.eq(holder))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Releases every lease a worker's handlings (and its DNS retrier) hold (`<worker>/…`), when it shuts
    /// down.
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
