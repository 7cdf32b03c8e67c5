//! Tenants: who they are, their plan and status, and what Landlord made for them (database, DNS, stack).
//! Their database password is stored encrypted (see `secret_box`).

use chrono::Utc;
use landlord_protocol::{ProvisionSpec, TenantId, TenantStatus};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set, TryIntoModel, sea_query::OnConflict};
use secrecy::SecretString;

use super::{Store, StoreError, entities::tenant, password_context};

/// What happened when a provision asked for a tenant.
#[derive(Debug)]
pub enum NewTenant {
    Created(tenant::Model),
    /// The same tenant already exists: a resumed or repeated purchase.
    Exists(tenant::Model),
    /// Another tenant holds the subdomain.
    SlugTaken,
}

/// How `rotate_secrets` went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotated {
    /// Values re-encrypted under the primary key (or encrypted for the first time).
    pub rewritten: usize,
    /// Values already under the primary key.
    pub current: usize,
    /// Values a worker replaced while this rotation ran (left for the next one).
    pub changed_meanwhile: usize,
}

impl Store {
    pub async fn tenant(&self, id: &TenantId) -> Result<Option<tenant::Model>, StoreError> {
        Ok(tenant::Entity::find_by_id(id.to_string()).one(self.connection()).await?)
    }

    pub async fn tenants(&self) -> Result<Vec<tenant::Model>, StoreError> {
        Ok(tenant::Entity::find().order_by_asc(tenant::Column::CreatedAt).all(self.connection()).await?)
    }

    /// Creates the tenant in `pending`, or finds it; refuses a subdomain another tenant holds.
    /// The insert comes first (a new purchase is the common case); a conflict reads back why.
    pub async fn create_tenant(&self, id: &TenantId, spec: &ProvisionSpec) -> Result<NewTenant, StoreError> {
        let now = Utc::now();
        let row = tenant::ActiveModel {
            id: Set(id.to_string()),
            slug: Set(spec.slug.to_string()),
            store_name: Set(spec.store_name.to_string()),
            contact_email: Set(spec.contact_email.to_string()),
            package_id: Set(spec.package_id.get() as i32),
            subscription_type_id: Set(spec.subscription_type_id.get() as i32),
            status: Set(TenantStatus::Pending.as_str().into()),
            last_error: Set(None),
            db_engine: Set(None),
            db_name: Set(None),
            db_login: Set(None),
            db_password: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            hostname: Set(None),
            api_hostname: Set(None),
            dns_pending: Set(false),
            stack_id: Set(None),
            stack_outputs: Set(None),
            stack_failure: Set(None),
            stripe_subscription: Set(spec
                .purchase
                .as_ref()
                .and_then(|p| p.subscription.as_ref())
                .map(|s| s.to_string())),
            stripe_customer: Set(spec.purchase.as_ref().and_then(|p| p.customer.as_ref()).map(|c| c.to_string())),
            payment_overdue: Set(false),
            offboard_at: Set(None),
            db_server: Set(None),
            awaiting_reason: Set(None),
            awaiting_since: Set(None),
            operator_reminded_at: Set(None),
            moving_to: Set(None),
            move_copy_started: Set(false),
            moved_from: Set(None),
        };
        // Any conflict (the id: a redelivery or a race; the slug: another tenant's subdomain) inserts
        // nothing and is read back, without an error in the database's log for each redelivery.
        let anything = OnConflict::new().do_nothing().to_owned();
        let inserted =
            tenant::Entity::insert(row.clone()).on_conflict(anything).exec_without_returning(self.connection()).await?;
        if inserted == 1 {
            return Ok(NewTenant::Created(row.try_into_model()?));
        }
        match self.tenant(id).await? {
            Some(existing) => Ok(NewTenant::Exists(existing)),
            None if self.slug_taken(spec.slug.as_str()).await? => Ok(NewTenant::SlugTaken),
            None => Err(StoreError::Db(DbErr::Custom(format!("tenant {id} neither inserted nor found")))),
        }
    }

    async fn slug_taken(&self, slug: &str) -> Result<bool, StoreError> {
        Ok(tenant::Entity::find().filter(tenant::Column::Slug.eq(slug)).one(self.connection()).await?.is_some())
    }

    /// Updates the fields `change` sets on a tenant, stamping `updated_at`.
    pub(super) async fn update_tenant(
        &self,
        id: &TenantId,
        change: impl FnOnce(&mut tenant::ActiveModel),
    ) -> Result<(), StoreError> {
        let mut row =
            tenant::ActiveModel { id: Set(id.to_string()), updated_at: Set(Utc::now()), ..Default::default() };
        change(&mut row);
        // Without reading the row back: sea-orm's `ActiveModel::update` does, a second statement on SQLite.
        tenant::Entity::update(row).exec_without_returning(self.connection()).await?;
        Ok(())
    }

    pub async fn set_status(
        &self,
        id: &TenantId,
        status: TenantStatus,
        last_error: Option<String>,
    ) -> Result<(), StoreError> {
        self.update_tenant(id, |t| {
            t.status = Set(status.as_str().into());
            set_awaiting(t, status, last_error.as_deref());
            t.last_error = Set(last_error);
        })
        .await
    }

    /// Records the tenant's hostnames and whether their records are still to be confirmed.
    pub async fn save_dns(
        &self,
        id: &TenantId,
        hostname: &str,
        api_hostname: &str,
        pending: bool,
    ) -> Result<(), StoreError> {
        self.update_tenant(id, |t| {
            t.hostname = Set(Some(hostname.to_owned()));
            t.api_hostname = Set(Some(api_hostname.to_owned()));
            t.dns_pending = Set(pending);
        })
        .await
    }

    /// Stops the background retrier from working on this tenant's DNS (its records were undone).
    pub async fn clear_dns_pending(&self, id: &TenantId) -> Result<(), StoreError> {
        self.update_tenant(id, |t| t.dns_pending = Set(false)).await
    }

    /// Tenants whose DNS records still need confirming.
    pub async fn dns_pending(&self) -> Result<Vec<tenant::Model>, StoreError> {
        Ok(tenant::Entity::find().filter(tenant::Column::DnsPending.eq(true)).all(self.connection()).await?)
    }

    /// Records the deployed stack, or (with `failure`) why it failed.
    pub async fn save_stack(
        &self,
        id: &TenantId,
        stack_id: Option<&str>,
        outputs: Option<&serde_json::Value>,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        self.update_tenant(id, |t| {
            t.stack_id = Set(stack_id.map(str::to_owned));
            t.stack_outputs = Set(outputs.map(serde_json::Value::to_string));
            t.stack_failure = Set(failure.map(str::to_owned));
        })
        .await
    }

    /// The tenant login's password, decrypted. A value stored before encryption at rest existed is
    /// returned as it is (with a warning) until `landlord secrets rotate` encrypts it.
    pub async fn database_password(&self, id: &TenantId) -> Result<Option<SecretString>, StoreError> {
        let keys = self.keys()?;
        let Some(stored) = self.tenant(id).await?.and_then(|t| t.db_password) else { return Ok(None) };
        if !stored.starts_with("v1:") {
            tracing::warn!(tenant_id = %id, "a tenant password is stored unencrypted; run `landlord secrets rotate`");
            return Ok(Some(SecretString::from(stored)));
        }
        Ok(Some(keys.decrypt(&stored, &password_context(id))?))
    }

    /// Re-encrypts every stored tenant secret that is not under the primary key (or not encrypted at all)
    /// under it, one row at a time, each only if it did not change meanwhile.
    pub async fn rotate_secrets(&self) -> Result<Rotated, StoreError> {
        let keys = self.keys()?;
        let mut done = Rotated::default();
        for row in
            tenant::Entity::find().filter(tenant::Column::DbPassword.is_not_null()).all(self.connection()).await?
        {
            let Some(stored) = row.db_password else { continue };
            if !keys.needs_rotation(&stored) {
                done.current += 1;
                continue;
            }
            let id = TenantId::parse(&row.id).map_err(|_| DbErr::Custom(format!("stored tenant id {}", row.id)))?;
            let plain = if stored.starts_with("v1:") {
                keys.decrypt(&stored, &password_context(&id))?
            } else {
                SecretString::from(stored.clone())
            };
            let sealed = keys.encrypt(&plain, &password_context(&id));
            let updated = tenant::Entity::update_many()
                .col_expr(tenant::Column::DbPassword, sea_orm::sea_query::Expr::value(sealed))
                .filter(tenant::Column::Id.eq(row.id.clone()))
                .filter(tenant::Column::DbPassword.eq(stored))
                .exec(self.connection())
                .await?;
            // A worker that wrote a new password meanwhile wrote it under its own first key; a second
            // rotation (after every worker runs with the new key first) picks it up.
            if updated.rows_affected == 1 {
                done.rewritten += 1;
            } else {
                done.changed_meanwhile += 1;
            }
        }
        self.rotate_server_secrets(&mut done).await?;
        Ok(done)
    }

    /// Records the tenant database and its login. Called after the login's password was (re)set, so
    /// the stored password is always the live one. The password is stored encrypted.
    pub async fn save_database(
        &self,
        id: &TenantId,
        engine: &str,
        name: &str,
        login: &str,
        password: &SecretString,
    ) -> Result<(), StoreError> {
        let sealed = self.keys()?.encrypt(password, &password_context(id));
        self.update_tenant(id, |t| {
            t.db_engine = Set(Some(engine.into()));
            t.db_name = Set(Some(name.into()));
            t.db_login = Set(Some(login.into()));
            t.db_password = Set(Some(sealed));
        })
        .await
    }

    /// Forgets the tenant login's password once the login is gone (offboarding). The database's and the
    /// login's names stay, for the record of what the tenant had.
    pub async fn forget_database_password(&self, id: &TenantId) -> Result<(), StoreError> {
        self.update_tenant(id, |t| t.db_password = Set(None)).await
    }

    /// Records the tenant's new plan (a plan change).
    pub async fn set_plan(
        &self,
        id: &TenantId,
        package: landlord_protocol::PackageId,
        kind: landlord_protocol::SubscriptionTypeId,
    ) -> Result<(), StoreError> {
        self.update_tenant(id, |t| {
            t.package_id = Set(package.get() as i32);
            t.subscription_type_id = Set(kind.get() as i32);
        })
        .await
    }
}

/// Keeps the `awaiting_*` fields in step with the status: a tenant that starts waiting for a person records
/// why and since when (and counts as just told); any other status clears them.
pub(super) fn set_awaiting(t: &mut tenant::ActiveModel, status: TenantStatus, reason: Option<&str>) {
    if status == TenantStatus::AwaitingOperator {
        let now = Utc::now();
        t.awaiting_reason = Set(reason.map(str::to_owned));
        t.awaiting_since = Set(Some(now));
        t.operator_reminded_at = Set(Some(now));
    } else {
        t.awaiting_reason = Set(None);
        t.awaiting_since = Set(None);
        t.operator_reminded_at = Set(None);
    }
}
