//! Processed commands: every command id Landlord has finished with, so a delivery after JetStream's
//! duplicate window (Stripe retries for days) is a no-op.

use chrono::Utc;
use landlord_protocol::{CommandKind, TenantId};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};

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
    if processed_command::Entity::find_by_id(command_id.to_owned()).one(conn).await?.is_some() {
        return Ok(());
    }
    processed_command::ActiveModel {
        command_id: Set(command_id.to_owned()),
        tenant_id: Set(id.to_string()),
        kind: Set(kind.as_str().to_owned()),
        processed_at: Set(Utc::now()),
    }
    .insert(conn)
    .await?;
    Ok(())
}
