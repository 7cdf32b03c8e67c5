//! Runs: one per command that works on a tenant, with how it ended. A succeeded run is what tells a
//! redelivered purchase that its tenant exists; it is never pruned.

use chrono::Utc;
use landlord_protocol::{CommandKind, TenantId, TenantStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait};
use uuid::Uuid;

use super::{
    Store, StoreError,
    entities::{run, tenant},
    processed::insert_processed,
};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Stopped at a checkpoint (shutdown, a transient error outlasting its retries); resumed later.
    Interrupted,
    /// Paused until a person acts (`awaiting_operator`); a later command resumes the tenant.
    Waiting,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Waiting => "waiting",
        }
    }
}

/// How a run ended, written at once by [`Store::end_run`].
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    pub tenant: &'a TenantId,
    pub run: Uuid,
    pub status: TenantStatus,
    pub last_error: Option<&'a str>,
    /// The run's recorded outcome (succeeded or failed).
    pub outcome: RunStatus,
    pub command_id: &'a str,
    pub kind: CommandKind,
}

/// A run's outcome, for an update by its id. Updates are made without reading the row back
/// (`ActiveModel::update` does, a second statement on SQLite); a run that is not there is still an error.
fn finished(run: Uuid, status: RunStatus) -> run::ActiveModel {
    run::ActiveModel {
        id: Set(run.to_string()),
        status: Set(status.as_str().to_owned()),
        finished_at: Set(Some(Utc::now())),
        ..Default::default()
    }
}

impl Store {
    pub async fn start_run(&self, id: &TenantId, command_id: &str, kind: CommandKind) -> Result<Uuid, StoreError> {
        let run_id = Uuid::new_v4();
        let row = run::ActiveModel {
            id: Set(run_id.to_string()),
            tenant_id: Set(id.to_string()),
            command_id: Set(command_id.to_owned()),
            kind: Set(kind.as_str().to_owned()),
            status: Set(RunStatus::Running.as_str().into()),
            started_at: Set(Utc::now()),
            finished_at: Set(None),
        };
        // Inserted without reading it back (`ActiveModel::insert` does, a second statement on SQLite).
        run::Entity::insert(row).exec_without_returning(self.connection()).await?;
        Ok(run_id)
    }

    pub async fn finish_run(&self, run_id: Uuid, status: RunStatus) -> Result<(), StoreError> {
        run::Entity::update(finished(run_id, status)).exec_without_returning(self.connection()).await?;
        Ok(())
    }

    pub async fn runs(&self, id: &TenantId) -> Result<Vec<run::Model>, StoreError> {
        Ok(run::Entity::find().filter(run::Column::TenantId.eq(id.to_string())).all(self.connection()).await?)
    }

    /// Whether the tenant's most recent run is `command_id`'s: a move under way is continued only by the
    /// command that began it.
    pub async fn is_latest_run_of(&self, id: &TenantId, command_id: &str) -> Result<bool, StoreError> {
        let latest = run::Entity::find()
            .filter(run::Column::TenantId.eq(id.to_string()))
            .order_by_desc(run::Column::StartedAt)
            .one(self.connection())
            .await?;
        Ok(latest.is_some_and(|r| r.command_id == command_id))
    }

    /// Whether some run provisioned this tenant to the end.
    pub async fn has_succeeded_run(&self, id: &TenantId) -> Result<bool, StoreError> {
        Ok(run::Entity::find()
            .filter(run::Column::TenantId.eq(id.to_string()))
            .filter(run::Column::Status.eq(RunStatus::Succeeded.as_str()))
            .one(self.connection())
            .await?
            .is_some())
    }

    /// Ends a run in one transaction: the tenant's status (and reason), the run's outcome and the command
    /// marked processed. Nobody can see the tenant `active` (or `failed`) while its run still looks
    /// unfinished, so a redelivery arriving in between never finds a half-recorded ending.
    pub async fn end_run(&self, end: RunEnd<'_>) -> Result<(), StoreError> {
        let txn = self.connection().begin().await?;
        let mut row = tenant::ActiveModel {
            id: Set(end.tenant.to_string()),
            status: Set(end.status.as_str().into()),
            last_error: Set(end.last_error.map(str::to_owned)),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        super::tenants::set_awaiting(&mut row, end.status, end.last_error);
        // An active tenant is to be offboarded by nobody: a resume restores it, and a suspension that failed
        // leaves the next reconcile to schedule again. Cleared with the status, so no crash can leave a
        // timer behind that a later, ordinary suspension would set off.
        if end.status == landlord_protocol::TenantStatus::Active {
            row.offboard_at = Set(None);
        }
        tenant::Entity::update(row).exec_without_returning(&txn).await?;
        run::Entity::update(finished(end.run, end.outcome)).exec_without_returning(&txn).await?;
        insert_processed(&txn, end.command_id, end.tenant, end.kind).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The kind of the command whose run last settled `step` for the tenant (who suspended it: an
    /// operator's `suspend` or a `reconcile`).
    pub async fn kind_that_ran(
        &self,
        id: &TenantId,
        step: crate::step_name::StepName,
    ) -> Result<Option<String>, StoreError> {
        let Some(row) = self.step(id, step).await? else { return Ok(None) };
        Ok(run::Entity::find_by_id(row.run_id).one(self.connection()).await?.map(|r| r.kind))
    }
}
