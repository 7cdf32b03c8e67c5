//! What the control plane says right now, for the metrics a worker samples: tenants by status, tenants
//! whose DNS is pending, and the oldest running step and the longest wait for an operator (what the
//! shipped alerts watch).

use chrono::{DateTime, Utc};
use landlord_protocol::TenantStatus;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{
    StepState, Store, StoreError,
    entities::{tenant, tenant_step},
};

/// One sample of the control plane's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Tenants per status, every status listed (zero included).
    pub by_status: Vec<(TenantStatus, u64)>,
    pub dns_pending: u64,
    /// When the step running longest started.
    pub oldest_running_step: Option<DateTime<Utc>>,
    /// Since when the tenant waiting longest for an operator waits.
    pub oldest_awaiting_operator: Option<DateTime<Utc>>,
}

impl Store {
    pub async fn gauges(&self) -> Result<Gauges, StoreError> {
        let db = self.connection();
        let counted: Vec<(String, i64)> = tenant::Entity::find()
            .select_only()
            .column(tenant::Column::Status)
            .column_as(tenant::Column::Id.count(), "n")
            .group_by(tenant::Column::Status)
            .into_tuple()
            .all(db)
            .await?;
        let by_status = TenantStatus::ALL
            .iter()
            .map(|status| {
                let n = counted.iter().find(|(s, _)| s == status.as_str()).map_or(0, |(_, n)| *n);
                (*status, u64::try_from(n).unwrap_or(0))
            })
            .collect();
        let dns_pending = tenant::Entity::find()
            .filter(tenant::Column::DnsPending.eq(true))
            .filter(tenant::Column::Status.ne(TenantStatus::Deleted.as_str()))
            .count(db)
            .await?;
        // A step left started by a tenant that is settled (deleted, failed) is not stuck work.
        let working = sea_orm::sea_query::Query::select()
            .column(tenant::Column::Id)
            .from(tenant::Entity)
            .and_where(tenant::Column::Status.is_in(["provisioning", "moving", "offboarding", "active", "suspended"]))
            .to_owned();
        let oldest_running_step = tenant_step::Entity::find()
            .filter(tenant_step::Column::Status.eq(StepState::Started.as_str()))
            .filter(tenant_step::Column::TenantId.in_subquery(working))
            .order_by_asc(tenant_step::Column::StartedAt)
            .one(db)
            .await?
            .map(|s| s.started_at);
        let oldest_awaiting_operator = tenant::Entity::find()
            .filter(tenant::Column::Status.eq(TenantStatus::AwaitingOperator.as_str()))
            .filter(tenant::Column::AwaitingSince.is_not_null())
            .order_by_asc(tenant::Column::AwaitingSince)
            .one(db)
            .await?
            .and_then(|t| t.awaiting_since);
        Ok(Gauges { by_status, dns_pending, oldest_running_step, oldest_awaiting_operator })
    }
}
