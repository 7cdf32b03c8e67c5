//! Refused purchases: a customer paid, and Landlord could not make the tenant. The record is what an
//! operator works from (refund, or provision by hand under another subdomain), so it is written before
//! the command is acknowledged and kept until the operator dismisses it.

use chrono::Utc;
use landlord_protocol::{ContactEmail, Purchase, TenantId, TenantSlug};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{Store, StoreError, entities::refused_purchase};

/// Why a purchase was refused; the stable code operators and alerts match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    InvalidMetadata,
    SubdomainTaken,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidMetadata => "invalid_metadata",
            Self::SubdomainTaken => "subdomain_taken",
        }
    }
}

/// What is recorded about one refusal.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    pub tenant: &'a TenantId,
    pub command_id: &'a str,
    pub code: RefusalCode,
    pub reason: &'a str,
    pub purchase: Option<&'a Purchase>,
    pub contact_email: Option<&'a ContactEmail>,
    pub subdomain: Option<&'a TenantSlug>,
}

impl Store {
    /// Records a refusal once per purchase; a redelivered command finds the record and leaves it alone.
    pub async fn record_refused_purchase(&self, r: Refusal<'_>) -> Result<(), StoreError> {
        let id = r.tenant.to_string();
        if refused_purchase::Entity::find_by_id(id.clone()).one(self.connection()).await?.is_some() {
            return Ok(());
        }
        let row = refused_purchase::ActiveModel {
            tenant_id: Set(id.clone()),
            command_id: Set(r.command_id.to_owned()),
            code: Set(r.code.as_str().to_owned()),
            reason: Set(r.reason.to_owned()),
            checkout_session: Set(r.purchase.map(|p| p.checkout_session.to_string())),
            customer: Set(r.purchase.and_then(|p| p.customer.as_ref()).map(|c| c.to_string())),
            contact_email: Set(r.contact_email.map(|e| e.to_string())),
            subdomain: Set(r.subdomain.map(|s| s.to_string())),
            refused_at: Set(Utc::now()),
            dismissed_at: Set(None),
            dismissed_by: Set(None),
        };
        match row.insert(self.connection()).await {
            Ok(_) => Ok(()),
            // Two workers recorded the same purchase at once: the other one's row stands.
            Err(e) => match refused_purchase::Entity::find_by_id(id).one(self.connection()).await? {
                Some(_) => Ok(()),
                None => Err(e.into()),
            },
        }
    }

    /// Refusals, newest first; only those no operator has dismissed unless `all`.
    pub async fn refused_purchases(&self, all: bool) -> Result<Vec<refused_purchase::Model>, StoreError> {
        let mut query = refused_purchase::Entity::find().order_by_desc(refused_purchase::Column::RefusedAt);
        if !all {
            query = query.filter(refused_purchase::Column::DismissedAt.is_null());
        }
        Ok(query.all(self.connection()).await?)
    }

    /// Marks a refusal settled by `by`. Returns false when there is no open refusal for that purchase.
    pub async fn dismiss_refused_purchase(&self, tenant: &TenantId, by: &str) -> Result<bool, StoreError> {
        let open = refused_purchase::Entity::find_by_id(tenant.to_string())
            .filter(refused_purchase::Column::DismissedAt.is_null())
            .one(self.connection())
            .await?;
        let Some(row) = open else { return Ok(false) };
        let mut row: refused_purchase::ActiveModel = row.into();
        row.dismissed_at = Set(Some(Utc::now()));
        row.dismissed_by = Set(Some(by.chars().take(100).collect()));
        row.update(self.connection()).await?;
        Ok(true)
    }
}
