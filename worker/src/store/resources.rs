//! Claims on what Landlord creates: before creating a database, login, DNS record or stack for a tenant,
//! a worker records the claim; a resource of that name that exists without a claim belongs to someone
//! else. Undo removes only what is claimed, and releases the claim after.

use std::fmt;

use chrono::Utc;
use landlord_protocol::TenantId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::OnConflict};

use super::{Store, StoreError, entities::tenant_resource};

/// The kinds of resource Landlord creates and claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Database,
    Login,
    DnsRecord,
    Stack,
    /// An offboarded tenant's final dump; its claim records when it was made, for its retention.
    Archive,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Login => "login",
            Self::DnsRecord => "dns_record",
            Self::Stack => "stack",
            Self::Archive => "archive",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Database => "database",
            Self::Login => "login",
            Self::DnsRecord => "DNS record",
            Self::Stack => "stack",
            Self::Archive => "archive",
        })
    }
}

impl Store {
    /// The tenant a resource was claimed for, if any.
    pub async fn resource_owner(&self, kind: ResourceKind, name: &str) -> Result<Option<TenantId>, StoreError> {
        let row = tenant_resource::Entity::find_by_id((kind.as_str().to_owned(), name.to_owned()))
            .one(self.connection())
            .await?;
        Ok(row.and_then(|r| TenantId::parse(&r.tenant_id).ok()))
    }

    /// Claims a resource for `tenant` (before creating it). Returns the owner afterwards: `tenant`, or the
    /// tenant whose earlier claim stands.
    pub async fn claim_resource(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        name: &str,
    ) -> Result<TenantId, StoreError> {
        let row = tenant_resource::ActiveModel {
            kind: Set(kind.as_str().to_owned()),
            name: Set(name.to_owned()),
            tenant_id: Set(tenant.to_string()),
            claimed_at: Set(Utc::now()),
        };
        // The primary key lets one claim win; whoever lost reads the winner.
        let once =
            OnConflict::columns([tenant_resource::Column::Kind, tenant_resource::Column::Name]).do_nothing().to_owned();
        if tenant_resource::Entity::insert(row).on_conflict(once).exec_without_returning(self.connection()).await? == 1
        {
            return Ok(*tenant);
        }
        self.resource_owner(kind, name).await?.ok_or_else(|| {
            StoreError::Db(sea_orm::DbErr::Custom(format!("claim on {kind} {name} neither inserted nor found")))
        })
    }

    /// Forgets a claim of `tenant` once its resource is gone.
    pub async fn release_resource(&self, tenant: &TenantId, kind: ResourceKind, name: &str) -> Result<(), StoreError> {
        tenant_resource::Entity::delete_many()
            .filter(tenant_resource::Column::Kind.eq(kind.as_str()))
            .filter(tenant_resource::Column::Name.eq(name))
            .filter(tenant_resource::Column::TenantId.eq(tenant.to_string()))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Claims of `kind` made before `cutoff`: (tenant, name), oldest first.
    pub async fn claims_older_than(
        &self,
        kind: ResourceKind,
        cutoff: chrono::DateTime<Utc>,
    ) -> Result<Vec<(TenantId, String)>, StoreError> {
        use sea_orm::QueryOrder;
        let rows = tenant_resource::Entity::find()
            .filter(tenant_resource::Column::Kind.eq(kind.as_str()))
            .filter(tenant_resource::Column::ClaimedAt.lt(cutoff))
            .order_by_asc(tenant_resource::Column::ClaimedAt)
            .all(self.connection())
            .await?;
        Ok(rows.into_iter().filter_map(|r| TenantId::parse(&r.tenant_id).ok().map(|t| (t, r.name))).collect())
    }
}
