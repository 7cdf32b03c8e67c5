//! Deleting control-plane records past their retention (the policy is in the `retention` module).

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{
    Store, StoreError,
    entities::{processed_command, run},
};

impl Store {
    /// Deletes processed commands older than `commands_before` and finished runs (failed, interrupted; not
    /// succeeded) that ended before `runs_before`; returns how many of each.
    pub async fn prune(
        &self,
        commands_before: DateTime<Utc>,
        runs_before: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let commands = processed_command::Entity::delete_many()
            .filter(processed_command::Column::ProcessedAt.lt(commands_before))
            .exec(self.connection())
            .await?;
        // Succeeded runs stay: one is what tells a redelivered purchase that its tenant is provisioned.
        let runs = run::Entity::delete_many()
            .filter(run::Column::Status.ne(super::RunStatus::Succeeded.as_str()))
            .filter(run::Column::FinishedAt.is_not_null())
            .filter(run::Column::FinishedAt.lt(runs_before))
            .exec(self.connection())
            .await?;
        Ok((commands.rows_affected, runs.rows_affected))
    }
}
