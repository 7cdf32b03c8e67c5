//! Tenants as the admin API lists them: filtered, in pages ordered by id (a page starts after the last id
//! of the one before, so tenants created meanwhile neither repeat nor shift pages).

use landlord_protocol::{TenantId, TenantStatus};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Query},
};

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
    /// Tenants whose subdomain or contact email starts with this text (ASCII letters in any case, as
    /// SQLite's `lower()` knows only those), to find one customer among thousands. Taken literally: `%`
    /// and `_` match only themselves.
    pub search: Option<String>,
    /// The last id of the previous page.
    pub after: Option<TenantId>,
    pub limit: u64,
}

/// `text` with LIKE's wildcards (`%`, `_`) and the escape character itself escaped by `\`, so a pattern
/// built from it matches the text literally.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
        if let Some(text) = &f.search {
            let prefix = LikeExpr::new(format!("{}%", escape_like(&text.to_ascii_lowercase()))).escape('\\');
            let lower = |c: tenant::Column| Expr::expr(Func::lower(Expr::col((tenant::Entity, c))));
            q = q.filter(
                sea_orm::Condition::any()
                    .add(lower(tenant::Column::Slug).like(prefix.clone()))
                    .add(lower(tenant::Column::ContactEmail).like(prefix)),
            );
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

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_are_taken_literally() {
        assert_eq!(super::escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(super::escape_like("plain"), "plain");
    }
}
