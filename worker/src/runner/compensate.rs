//! Compensation after a permanent failure: the steps the policy names (`LANDLORD_COMPENSATE`, by default
//! `create_database`: a database whose schema failed half-way is dropped, DNS is kept) are undone in
//! reverse plan order, and steps that needed an undone one are reset, so a retry redoes them.

use std::time::Instant;

use landlord_protocol::EventKind;
use uuid::Uuid;

use super::Runner;
use crate::{
    progress::Detail,
    steps::{Plan, StepContext, StepDone, StepName},
    store::{StepState, StoreError},
};

impl Runner {
    /// Undoes what policy says; returns the steps undone. An undo that fails is reported and the rest go
    /// on: the tenant is failed either way and the retry starts from the recorded states.
    pub(super) async fn compensate(
        &self,
        plan: &Plan,
        ctx: &StepContext<'_>,
        run: Uuid,
    ) -> Result<Vec<StepName>, StoreError> {
        let (store, tenant) = (&self.deps.store, ctx.tenant.id);
        let mut undone = Vec::new();
        // Reverse plan order is reverse dependency order: a step is undone before anything it needed.
        for planned in plan.steps().iter().rev() {
            let (step, step_name) = (planned.step.as_ref(), planned.name());
            let name = step_name.as_str();
            if !self.config.compensate.contains(&step_name) {
                continue;
            }
            if store.step(&tenant, step_name).await?.is_none_or(|s| s.status != StepState::Succeeded.as_str()) {
                continue;
            }
            let Some(undo) = step.undo(ctx) else { continue };
            let started = Instant::now();
            match undo.await {
                Ok(StepDone::Done(message) | StepDone::Skipped(message) | StepDone::Deferred(message)) => {
                    store.step_finished(&tenant, step_name, StepState::Undone, started.elapsed(), None).await?;
                    let detail = Detail {
                        step: Some(step_name),
                        duration: Some(started.elapsed()),
                        message: Some(message),
                        ..Detail::default()
                    };
                    self.progress.emit(Some(tenant), Some(run), EventKind::StepUndone, detail).await;
                    undone.push(step_name);
                }
                Err(e) => {
                    tracing::error!(step = name, error = %e, "undo failed; left for an operator");
                    let detail = Detail {
                        step: Some(step_name),
                        error: Some(e.to_event()),
                        message: Some(format!("could not undo {name}; an operator must clean up")),
                        ..Detail::default()
                    };
                    self.progress.emit(Some(tenant), Some(run), EventKind::StepFailed, detail).await;
                }
            }
        }
        // Steps that needed an undone one start over. One that needed it directly had its work inside it
        // (the schema inside a dropped database) and is reset whatever its state; one that needed it
        // through another (the health check of a tenant whose database is gone) is reset when it had
        // settled, and a failed one keeps its error for operators (it runs again anyway).
        for planned in plan.steps() {
            let name = planned.name();
            if undone.contains(&name) {
                continue;
            }
            let direct = planned.needs.iter().any(|need| undone.contains(need));
            let through = plan.requires(name).iter().any(|need| undone.contains(need));
            let Some(state) = store.step(&tenant, name).await? else { continue };
            if direct || (through && StepState::is_settled(&state.status)) {
                // The step that failed keeps its error: lists show why the tenant failed, and where.
                let error = match (state.status == StepState::Failed.as_str(), &state.error_code) {
                    (true, Some(code)) => Some((code.as_str(), state.error_message.as_deref().unwrap_or_default())),
                    _ => None,
                };
                store.step_finished(&tenant, name, StepState::Undone, std::time::Duration::ZERO, error).await?;
            }
        }
        Ok(undone)
    }
}

impl Runner {
    /// After a move failed for good: before its switch, the tenant's login is unlocked and the copy
    /// dropped, its names restored, and a place reserved on a shared server freed (a dedicated server stays
    /// kept for the tenant), so the tenant serves from its old server as before; after the switch, nothing
    /// is undone (the tenant's database is the new one; the plan change sent again finishes the move).
    /// Returns the steps undone.
    pub(super) async fn roll_back_move(
        &self,
        plan: &Plan,
        ctx: &StepContext<'_>,
        run: Uuid,
    ) -> Result<Vec<StepName>, StoreError> {
        let (store, tenant) = (&self.deps.store, ctx.tenant.id);
        if store.tenant(&tenant).await?.is_none_or(|row| row.moving_to.is_none()) {
            return Ok(Vec::new());
        }
        let mut undone = Vec::new();
        let copy = crate::steps::step(StepName::CopyDatabase);
        let undo_copy = copy.undo(ctx).expect("a copy can be undone");
        let copy_gone = self.record_undo(ctx, run, StepName::CopyDatabase, undo_copy.await, &mut undone).await?;
        if plan.names().any(|n| n == StepName::ParkDns) {
            let restored = crate::steps::step(StepName::RestoreDns).run(ctx).await;
            self.record_undo(ctx, run, StepName::ParkDns, restored, &mut undone).await?;
        }
        // A place is freed only once nothing of the tenant's is left there.
        let reserved = store.moving_to(&tenant).await?;
        if copy_gone && reserved.is_some_and(|s| s.kind == landlord_protocol::Placement::Shared.as_str()) {
            let release = crate::steps::step(StepName::ReserveServer);
            let released = release.undo(ctx).expect("a reservation can be undone").await;
            self.record_undo(ctx, run, StepName::ReserveServer, released, &mut undone).await?;
        }
        Ok(undone)
    }

    /// Records one part of a move's rollback: the step undone (when it had run) and its event, or the
    /// failure for operators. True when it succeeded.
    async fn record_undo(
        &self,
        ctx: &StepContext<'_>,
        run: Uuid,
        name: StepName,
        result: Result<StepDone, crate::steps::StepError>,
        undone: &mut Vec<StepName>,
    ) -> Result<bool, StoreError> {
        let (store, tenant) = (&self.deps.store, ctx.tenant.id);
        match result {
            Ok(StepDone::Done(message) | StepDone::Skipped(message) | StepDone::Deferred(message)) => {
                if store.step(&tenant, name).await?.is_some() {
                    store.step_finished(&tenant, name, StepState::Undone, std::time::Duration::ZERO, None).await?;
                    let detail = Detail { step: Some(name), message: Some(message), ..Detail::default() };
                    self.progress.emit(Some(tenant), Some(run), EventKind::StepUndone, detail).await;
                    undone.push(name);
                }
                Ok(true)
            }
            Err(e) => {
                tracing::error!(step = name.as_str(), error = %e, "could not roll back this part of the move");
                let detail = Detail {
                    step: Some(name),
                    error: Some(e.to_event()),
                    message: Some(format!(
                        "could not undo {name} of the move; sending the plan change again finishes or rolls it back"
                    )),
                    ..Detail::default()
                };
                self.progress.emit(Some(tenant), Some(run), EventKind::StepFailed, detail).await;
                Ok(false)
            }
        }
    }
}
