//! Compensation after a permanent failure: the steps the policy names (`LANDLORD_COMPENSATE`, by default
//! `create_database`: a database whose schema failed half-way is dropped, DNS is kept) are undone in
//! reverse order, and steps that depend on an undone one are reset, so a retry redoes them.

use std::time::Instant;

use landlord_protocol::EventKind;
use uuid::Uuid;

use super::Runner;
use crate::{
    progress::Detail,
    steps::{StepContext, StepDone, StepName},
    store::{StepState, StoreError},
};

impl Runner {
    /// Undoes what policy says; returns the steps undone. An undo that fails is reported and the rest go
    /// on: the tenant is failed either way and the retry starts from the recorded states.
    pub(super) async fn compensate(&self, ctx: &StepContext<'_>, run: Uuid) -> Result<Vec<StepName>, StoreError> {
        let (store, tenant) = (&self.deps.store, ctx.tenant.id);
        let mut undone = Vec::new();
        // Reverse plan order is reverse dependency order: a step is undone before anything it needed.
        for planned in self.plan.steps().iter().rev() {
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
                        step: Some(name),
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
                        step: Some(name),
                        error: Some(e.to_event()),
                        message: Some(format!("could not undo {name}; an operator must clean up")),
                        ..Detail::default()
                    };
                    self.progress.emit(Some(tenant), Some(run), EventKind::StepFailed, detail).await;
                }
            }
        }
        // Steps whose work lived inside an undone one (the schema inside a dropped database) start over.
        for planned in self.plan.steps() {
            let name = planned.name();
            if planned.step.reset_with().is_some_and(|dep| undone.contains(&dep))
                && store.step(&tenant, name).await?.is_some()
            {
                store.step_finished(&tenant, name, StepState::Undone, std::time::Duration::ZERO, None).await?;
            }
        }
        Ok(undone)
    }
}
