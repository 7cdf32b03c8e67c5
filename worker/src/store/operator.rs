//! The operator queue as the control plane holds it: tenants waiting in `awaiting_operator`, whether one
//! can go on now (it was handed a server, or a shared server has room again), and when operators were last
//! reminded of each (a durable timer: it survives restarts and fires on whichever worker looks first).

use chrono::{DateTime, Utc};
use landlord_protocol::{DbEngine, Placement, TenantId, TenantStatus};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait},
};

use super::{
    ServerState, Store, StoreError,
    entities::{db_server, tenant},
};

impl Store {
    /// Every tenant waiting for a person, longest waiting first.
    pub async fn awaiting_tenants(&self) -> Result<Vec<tenant::Model>, StoreError> {
        Ok(tenant::Entity::find()
            .filter(tenant::Column::Status.eq(TenantStatus::AwaitingOperator.as_str()))
            .order_by_asc(tenant::Column::AwaitingSince)
            .all(self.connection())
            .await?)
    }

    /// How many more tenants the open shared servers of `engine` can take.
    pub async fn shared_free(&self, engine: DbEngine) -> Result<i64, StoreError> {
        Ok(db_server::Entity::find()
            .filter(db_server::Column::Kind.eq(Placement::Shared.as_str()))
            .filter(db_server::Column::State.eq(ServerState::Open.as_str()))
            .filter(db_server::Column::Engine.eq(engine.as_str()))
            .filter(Expr::col(db_server::Column::Placed).lt(Expr::col(db_server::Column::Capacity)))
            .all(self.connection())
            .await?
            .iter()
            .map(|s| i64::from(s.capacity - s.placed))
            .sum())
    }

    /// Records that operators were reminded of a waiting tenant, if nobody else did since `previous`
    /// (several workers may find the same reminder due). False: another worker recorded it first.
    pub async fn mark_reminded(
        &self,
        id: &TenantId,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut update = tenant::Entity::update_many()
            .col_expr(tenant::Column::OperatorRemindedAt, Expr::value(Some(now)))
            .filter(tenant::Column::Id.eq(id.to_string()))
            .filter(tenant::Column::Status.eq(TenantStatus::AwaitingOperator.as_str()));
        update = match previous {
            Some(at) => update.filter(tenant::Column::OperatorRemindedAt.eq(at)),
            None => update.filter(tenant::Column::OperatorRemindedAt.is_null()),
        };
        Ok(update.exec(self.connection()).await?.rows_affected == 1)
    }
}

/// Whether a waiting tenant's reminder is due at `now`.
pub fn reminder_due(row: &tenant::Model, every: std::time::Duration, now: DateTime<Utc>) -> bool {
    let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
    match row.operator_reminded_at.or(row.awaiting_since) {
        Some(last) => last.checked_add_signed(every).is_some_and(|due| due <= now),
        None => true,
    }
}
