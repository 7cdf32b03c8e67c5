//! Stripe subscriptions in the control plane: the newest snapshot of each (an older event never overwrites
//! a newer one; within one second the more restrictive status wins, whichever came first), the tenant a subscription pays for, the
//! `payment_overdue` flag, and the durable offboarding timer.

use chrono::{DateTime, Utc};
use landlord_protocol::{StripeId, SubscriptionSnapshot, SubscriptionStatus, TenantId, TenantStatus};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};

use super::{
    Store, StoreError,
    entities::{stripe_subscription, tenant},
};

/// A stored snapshot, read back as valid types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSubscription {
    pub id: StripeId,
    pub snapshot: SubscriptionSnapshot,
    pub seen_at: DateTime<Utc>,
}

impl Store {
    /// Keeps `snapshot` when it is newer than what is stored, or always when it was read from Stripe's API
    /// (`from_api`: the subscription as it is now); returns whether it was kept.
    pub async fn record_subscription(
        &self,
        id: &StripeId,
        customer: Option<&StripeId>,
        snapshot: &SubscriptionSnapshot,
        seen_at: DateTime<Utc>,
        event_id: &str,
        from_api: bool,
    ) -> Result<bool, StoreError> {
        let prices = serde_json::to_string(&snapshot.prices).expect("ids serialize");
        let existing = stripe_subscription::Entity::find_by_id(id.to_string()).one(self.connection()).await?;
        let Some(old) = existing else {
            let row = stripe_subscription::ActiveModel {
                id: Set(id.to_string()),
                customer: Set(customer.map(ToString::to_string)),
                status: Set(snapshot.status.as_str().into()),
                prices: Set(prices),
                deleted: Set(snapshot.deleted),
                event_created: Set(seen_at),
                event_id: Set(event_id.into()),
                updated_at: Set(Utc::now()),
            };
            row.insert(self.connection()).await?;
            return Ok(true);
        };
        let rank = |status: u8, deleted: bool| u16::from(status) + u16::from(deleted) * 10;
        let old_rank =
            rank(SubscriptionStatus::parse(&old.status).map_or(0, SubscriptionStatus::restrictiveness), old.deleted);
        let new_rank = rank(snapshot.status.restrictiveness(), snapshot.deleted);
        // A deletion is final whenever it came: nothing after it can bring the subscription back.
        let newer = if from_api {
            true
        } else if old.deleted && !snapshot.deleted {
            false
        } else if seen_at != old.event_created {
            seen_at > old.event_created || (snapshot.deleted && !old.deleted)
        } else {
            new_rank > old_rank
        };
        if !newer {
            return Ok(false);
        }
        let mut row = old.into_active_model();
        row.status = Set(snapshot.status.as_str().into());
        row.prices = Set(prices);
        row.deleted = Set(snapshot.deleted);
        row.event_created = Set(seen_at);
        row.event_id = Set(event_id.into());
        row.updated_at = Set(Utc::now());
        if let Some(c) = customer {
            row.customer = Set(Some(c.to_string()));
        }
        row.update(self.connection()).await?;
        Ok(true)
    }

    /// The newest snapshot of a subscription, if one was ever seen.
    pub async fn subscription(&self, id: &str) -> Result<Option<KnownSubscription>, StoreError> {
        let Some(row) = stripe_subscription::Entity::find_by_id(id.to_owned()).one(self.connection()).await? else {
            return Ok(None);
        };
        let bad = |what: &str| StoreError::Db(sea_orm::DbErr::Custom(format!("stored subscription {id}: {what}")));
        let status = SubscriptionStatus::parse(&row.status).ok_or_else(|| bad("unknown status"))?;
        let prices: Vec<String> = serde_json::from_str(&row.prices).map_err(|_| bad("prices are not a list"))?;
        let prices = prices.iter().filter_map(|p| StripeId::parse(p).ok()).collect();
        Ok(Some(KnownSubscription {
            id: StripeId::parse(&row.id).map_err(|_| bad("invalid id"))?,
            snapshot: SubscriptionSnapshot { status, prices, deleted: row.deleted },
            seen_at: row.event_created,
        }))
    }

    /// The tenant a subscription pays for.
    pub async fn tenant_of_subscription(&self, subscription: &str) -> Result<Option<tenant::Model>, StoreError> {
        Ok(tenant::Entity::find()
            .filter(tenant::Column::StripeSubscription.eq(subscription))
            .one(self.connection())
            .await?)
    }

    pub async fn set_payment_overdue(&self, id: &TenantId, overdue: bool) -> Result<(), StoreError> {
        self.update_tenant(id, |t| t.payment_overdue = Set(overdue)).await
    }

    /// Sets (or clears) the tenant's offboarding timer.
    pub async fn set_offboard_at(&self, id: &TenantId, at: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        self.update_tenant(id, |t| t.offboard_at = Set(at)).await
    }

    /// Suspended tenants whose offboarding time has come.
    pub async fn due_offboardings(&self, now: DateTime<Utc>) -> Result<Vec<tenant::Model>, StoreError> {
        Ok(tenant::Entity::find()
            .filter(tenant::Column::OffboardAt.lte(now))
            .filter(tenant::Column::Status.eq(TenantStatus::Suspended.as_str()))
            .all(self.connection())
            .await?)
    }
}
