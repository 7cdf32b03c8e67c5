//! Processed commands: every command id Landlord has finished with, so a delivery after JetStream's
//! duplicate window (Stripe retries for days) is a no-op.

use chrono::Utc;
use landlord_protocol::{CommandKind, TenantId};
use sea_orm::{ConnectionTrait, EntityTrait, Set, sea_query::OnConflict};

use super::{Store, StoreError, entities::processed_command};

impl Store {
    pub async fn is_processed(&self, command_id: &str) -> Result<bool, StoreError> {
        Ok(processed_command::Entity::find_by_id(command_id.to_owned()).one(self.connection()).await?.is_some())
    }

    /// Remembers a command as done, so a redelivery after JetStream's duplicate window is a no-op.
    pub async fn mark_processed(&self, command_id: &str, id: &TenantId, kind: CommandKind) -> Result<(), StoreError> {
        insert_processed(self.connection(), command_id, id, kind).await
    }
}

pub(super) async fn insert_processed<C: ConnectionTrait>(
    conn: &C,
    command_id: &str,
    id: &TenantId,
    kind: CommandKind,
) -> Result<(), StoreError> {
    let row = processed_command::ActiveModel {
        command_id: Set(command_id.to_owned()),
        tenant_id: Set(id.to_string()),
        kind: Set(kind.as_str().to_owned()),
        processed_at: Set(Utc::now()),
    };
    // Already processed (a redelivery that raced this one): the first record stands.
    let once = OnConflict::column(processed_command::Column::CommandId).do_nothing().to_owned();
    processed_command::Entity::insert(row).on_conflict(once).exec_without_returning(conn).await?;
    Ok(())
}
