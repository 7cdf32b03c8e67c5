//! Each tenant's steps: their recorded state, attempts and last error, which is what a resumed run
//! starts from and what operators read.

use std::time::Duration;

use chrono::Utc;
use landlord_protocol::TenantId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::Expr};
use uuid::Uuid;

use super::{
    Store, StoreError,
    entities::{run, tenant_step},
};
use crate::step_name::StepName;

/// A step's recorded outcome for a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Started,
    Succeeded,
    Failed,
    /// Not configured in this deployment.
    Skipped,
    /// Left to finish in the background (DNS); the run went on.
    Deferred,
    /// Undone by compensation; a retry does it again.
    Undone,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Deferred => "deferred",
            Self::Undone => "undone",
        }
    }

    /// Whether a resumed run may pass over a step in this state.
    pub fn is_settled(status: &str) -> bool {
        [Self::Succeeded, Self::Skipped, Self::Deferred].iter().any(|s| s.as_str() == status)
    }
}

impl Store {
    /// For each of `ids`, the step that is running or failed (a failed step undone by compensation keeps
    /// its error and counts as failed), the most recently started: what a list shows as the tenant's
    /// current or failing step, as (step, `started` or `failed`). One query for a whole page.
    pub async fn current_steps(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, (String, String)>, StoreError> {
        let failed_and_undone = sea_orm::Condition::all()
            .add(tenant_step::Column::Status.eq(StepState::Undone.as_str()))
            .add(tenant_step::Column::ErrorCode.is_not_null());
        let rows = tenant_step::Entity::find()
            .filter(tenant_step::Column::TenantId.is_in(ids.iter().cloned()))
            .filter(
                sea_orm::Condition::any()
                    .add(tenant_step::Column::Status.is_in([StepState::Started.as_str(), StepState::Failed.as_str()]))
                    .add(failed_and_undone),
            )
            .order_by_desc(tenant_step::Column::StartedAt)
            .all(self.connection())
            .await?;
        let mut current = std::collections::HashMap::new();
        for row in rows {
            let status = if row.status == StepState::Started.as_str() { "started" } else { "failed" };
            current.entry(row.tenant_id.clone()).or_insert((row.step, status.to_owned()));
        }
        Ok(current)
    }

    pub async fn steps(&self, id: &TenantId) -> Result<Vec<tenant_step::Model>, StoreError> {
        Ok(tenant_step::Entity::find()
            .filter(tenant_step::Column::TenantId.eq(id.to_string()))
            .order_by_asc(tenant_step::Column::StartedAt)
            .all(self.connection())
            .await?)
    }

    pub async fn step(&self, id: &TenantId, step: StepName) -> Result<Option<tenant_step::Model>, StoreError> {
        Ok(tenant_step::Entity::find_by_id((id.to_string(), step.as_str().to_owned())).one(self.connection()).await?)
    }

    /// Marks a step started for this run as its `attempt`th attempt across all runs (the run read the
    /// earlier count with [`Store::steps`] when it began; only the lease holder writes a tenant's steps).
    /// One statement: an insert that updates the row a previous attempt left.
    pub async fn step_started(
        &self,
        id: &TenantId,
        step: StepName,
        run_id: Uuid,
        attempt: u32,
    ) -> Result<(), StoreError> {
        self.put_step(id, step, run_id, attempt, StepState::Started).await
    }

    /// Records a step skipped before it started (nothing to do in this deployment), as its `attempt`th
    /// attempt: one statement, where a step that runs takes two.
    pub async fn step_skipped(
        &self,
        id: &TenantId,
        step: StepName,
        run_id: Uuid,
        attempt: u32,
    ) -> Result<(), StoreError> {
        self.put_step(id, step, run_id, attempt, StepState::Skipped).await
    }

    /// Writes a step's row afresh (started, or skipped and finished at once).
    async fn put_step(
        &self,
        id: &TenantId,
        step: StepName,
        run_id: Uuid,
        attempt: u32,
        state: StepState,
    ) -> Result<(), StoreError> {
        use tenant_step::Column as C;
        let now = Utc::now();
        let finished = state != StepState::Started;
        let row = tenant_step::ActiveModel {
            tenant_id: Set(id.to_string()),
            step: Set(step.as_str().to_owned()),
            run_id: Set(run_id.to_string()),
            status: Set(state.as_str().into()),
            attempts: Set(i32::try_from(attempt).unwrap_or(i32::MAX)),
            started_at: Set(now),
            finished_at: Set(finished.then_some(now)),
            duration_ms: Set(finished.then_some(0)),
            error_code: Set(None),
            error_message: Set(None),
        };
        let again = sea_orm::sea_query::OnConflict::columns([C::TenantId, C::Step])
            .update_columns([
                C::RunId,
                C::Status,
                C::Attempts,
                C::StartedAt,
                C::FinishedAt,
                C::DurationMs,
                C::ErrorCode,
                C::ErrorMessage,
            ])
            .to_owned();
        tenant_step::Entity::insert(row).on_conflict(again).exec_without_returning(self.connection()).await?;
        Ok(())
    }

    /// Records how a step ended.
    pub async fn step_finished(
        &self,
        id: &TenantId,
        step: StepName,
        state: StepState,
        duration: Duration,
        error: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        // An update that changes nothing (the same values again, or a step cancelled before it began and so
        // never recorded) is not an error: there is nothing more to record.
        tenant_step::Entity::update_many()
            .col_expr(tenant_step::Column::Status, Expr::value(state.as_str()))
            .col_expr(tenant_step::Column::FinishedAt, Expr::value(Utc::now()))
            .col_expr(tenant_step::Column::DurationMs, Expr::value(duration.as_millis() as i64))
            .col_expr(tenant_step::Column::ErrorCode, Expr::value(error.map(|e| e.0.to_owned())))
            .col_expr(tenant_step::Column::ErrorMessage, Expr::value(error.map(|e| e.1.to_owned())))
            .filter(tenant_step::Column::TenantId.eq(id.to_string()))
            .filter(tenant_step::Column::Step.eq(step.as_str()))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Marks `steps` not yet done for this command when an earlier command settled them: flows that
    /// happen again and again (suspend, resume) start afresh for each command, while a redelivery of the
    /// same command still passes over what it already did.
    pub async fn reset_steps_of_other_commands(
        &self,
        id: &TenantId,
        steps: impl Iterator<Item = StepName>,
        command_id: &str,
    ) -> Result<(), StoreError> {
        for step in steps {
            let Some(row) = self.step(id, step).await? else { continue };
            if !StepState::is_settled(&row.status) {
                continue;
            }
            let by = run::Entity::find_by_id(row.run_id.clone()).one(self.connection()).await?;
            if by.is_some_and(|r| r.command_id == command_id) {
                continue;
            }
            self.step_finished(id, step, StepState::Undone, Duration::ZERO, None).await?;
        }
        Ok(())
    }

    /// Whether `step` is settled by a run of `command_id` (not by an earlier command).
    pub async fn step_settled_by_command(
        &self,
        id: &TenantId,
        step: StepName,
        command_id: &str,
    ) -> Result<bool, StoreError> {
        let Some(row) = self.step(id, step).await? else { return Ok(false) };
        if !StepState::is_settled(&row.status) {
            return Ok(false);
        }
        let by = run::Entity::find_by_id(row.run_id.clone()).one(self.connection()).await?;
        Ok(by.is_some_and(|r| r.command_id == command_id))
    }
}
