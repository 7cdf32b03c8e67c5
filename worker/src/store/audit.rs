//! The audit log: each command that asks for a change is recorded once, when a worker first handles it,
//! whoever sent it (the ingress for Stripe and the admin API, Landlord itself, or a NATS publisher).

use chrono::{DateTime, Utc};
use landlord_protocol::{Action, Command, TenantId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, sea_query::OnConflict};

use super::{Store, StoreError, entities::audit_entry};

/// Longest actor kept; a longer `requested_by` is cut.
const MAX_ACTOR: usize = 200;

impl Store {
    /// Records `cmd` unless it already is (a redelivery).
    pub async fn audit(&self, cmd: &Command) -> Result<(), StoreError> {
        let id = cmd.id.as_str();
        let detail = match &cmd.action {
            Action::ChangePlan(change) => Some(serde_json::to_string(change).expect("serializes")),
            Action::StripeSubscription(ev) => Some(serde_json::to_string(ev).expect("serializes")),
            Action::Provision(spec) => Some(
                serde_json::json!({"slug": spec.slug, "package_id": spec.package_id, "subscription_type_id": spec.subscription_type_id})
                    .to_string(),
            ),
            Action::Offboard(req) => Some(serde_json::to_string(req).expect("serializes")),
            _ => None,
        };
        let row = audit_entry::ActiveModel {
            command_id: Set(id.to_owned()),
            at: Set(Utc::now()),
            actor: Set(cmd.requested_by.chars().take(MAX_ACTOR).collect()),
            action: Set(cmd.action.kind().as_str().to_owned()),
            tenant_id: Set(cmd.tenant_id.to_string()),
            detail: Set(detail),
        };
        // A redelivery, or two workers handling copies of one command at once: the primary key keeps one row.
        let once = OnConflict::column(audit_entry::Column::CommandId).do_nothing().to_owned();
        audit_entry::Entity::insert(row).on_conflict(once).exec_without_returning(self.connection()).await?;
        Ok(())
    }

    /// Audit entries, newest first, for one tenant or all, before `before` when paging back.
    pub async fn audit_entries(
        &self,
        tenant: Option<&TenantId>,
        before: Option<DateTime<Utc>>,
        limit: u64,
    ) -> Result<Vec<audit_entry::Model>, StoreError> {
        let mut query = audit_entry::Entity::find().order_by_desc(audit_entry::Column::At);
        if let Some(t) = tenant {
            query = query.filter(audit_entry::Column::TenantId.eq(t.to_string()));
        }
        if let Some(before) = before {
            query = query.filter(audit_entry::Column::At.lt(before));
        }
        Ok(query.limit(limit).all(self.connection()).await?)
    }
}
