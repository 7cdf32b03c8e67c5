//! Tenants as the admin API lists them: filtered, in pages ordered by id (a page starts after the last id
//! of the one before, so tenants created meanwhile neither repeat nor shift pages).

use landlord_protocol::{TenantId, TenantStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Query};

use super::{
    StepState, Store, StoreError,
    entities::{tenant, tenant_resource, tenant_step},
};
use crate::step_name::StepName;

/// What to list; every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    pub status: Option<TenantStatus>,
    pub package_id: Option<u32>,
    pub subscription_type_id: Option<u32>,
    /// Tenants whose step of this name failed.
    pub failing_step: Option<StepName>,
    pub dns_pending: Option<bool>,
    pub payment_overdue: Option<bool>,
    /// The last id of the previous page.
    pub after: Option<TenantId>,
    pub limit: u64,
}

impl Store {
    pub async fn tenant_page(&self, f: &TenantFilter) -> Result<Vec<tenant::Model>, StoreError> {
        let mut q = tenant::Entity::find().order_by_asc(tenant::Column::Id);
        if let Some(s) = f.status {
            q = q.filter(tenant::Column::Status.eq(s.as_str()));
        }
        if let Some(p) = f.package_id {
            q = q.filter(tenant::Column::PackageId.eq(p as i32));
        }
        if let Some(t) = f.subscription_type_id {
            q = q.filter(tenant::Column::SubscriptionTypeId.eq(t as i32));
        }
        if let Some(d) = f.dns_pending {
            q = q.filter(tenant::Column::DnsPending.eq(d));
        }
        if let Some(o) = f.payment_overdue {
            q = q.filter(tenant::Column::PaymentOverdue.eq(o));
        }
        if let Some(step) = f.failing_step {
            let failing = Query::select()
                .column(tenant_step::Column::TenantId)
                .from(tenant_step::Entity)
                .and_where(tenant_step::Column::Step.eq(step.as_str()))
                // A failed step undone by compensation keeps its error: it failed all the same.
                .cond_where(
                    sea_orm::Condition::any().add(tenant_step::Column::Status.eq(StepState::Failed.as_str())).add(
                        sea_orm::Condition::all()
                            .add(tenant_step::Column::Status.eq(StepState::Undone.as_str()))
                            .add(tenant_step::Column::ErrorCode.is_not_null()),
                    ),
                )
                .to_owned();
            q = q.filter(tenant::Column::Id.in_subquery(failing));
        }
        if let Some(after) = f.after {
            q = q.filter(tenant::Column::Id.gt(after.to_string()));
        }
        Ok(q.limit(f.limit).all(self.connection()).await?)
    }

    /// What Landlord claimed for a tenant: (kind, name) pairs.
    pub async fn resources_of(&self, id: &TenantId) -> Result<Vec<(String, String)>, StoreError> {
        let rows = tenant_resource::Entity::find()
            .filter(tenant_resource::Column::TenantId.eq(id.to_string()))
            .order_by_asc(tenant_resource::Column::ClaimedAt)
            .all(self.connection())
            .await?;
        Ok(rows.into_iter().map(|r| (r.kind, r.name)).collect())
    }
}
