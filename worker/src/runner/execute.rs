//! One step, with in-process retries on transient errors (the step's own retry policy), each attempt
//! recorded and reported.

use std::time::Instant;

use backon::BackoffBuilder;
use landlord_protocol::{EventKind, TenantStatus};
use uuid::Uuid;

use super::Runner;
use crate::{
    failpoint,
    progress::Detail,
    steps::{Step, StepContext, StepDone, StepError},
    store::{StepState, StoreError},
    telemetry,
};

impl Runner {
    /// Runs `step` until it succeeds, fails permanently, or its retry policy runs out. `attempts` is how
    /// many times earlier runs started it.
    pub(super) async fn run_step(
        &self,
        step: &dyn Step,
        ctx: &StepContext<'_>,
        run: Uuid,
        during: TenantStatus,
        mut attempts: u32,
    ) -> Result<Result<(), StepError>, StoreError> {
        let (store, step_name, tenant) = (&self.deps.store, step.name(), ctx.tenant.id);
        let name = step_name.as_str();
        if let Some(message) = step.configured_off(&self.deps) {
            let attempt = attempts + 1;
            store.step_skipped(&tenant, step_name, run, attempt).await?;
            metrics::histogram!(telemetry::STEP_DURATION, "step" => name, "outcome" => "skipped").record(0.0);
            tracing::info!(step = name, attempt, %message, "step skipped: not configured");
            let detail = Detail {
                step: Some(step_name),
                attempt: Some(attempt),
                duration: Some(std::time::Duration::ZERO),
                message: Some(message),
                status: Some(during),
                ..Detail::default()
            };
            self.progress.emit(Some(tenant), Some(run), EventKind::StepSkipped, detail).await;
            return Ok(Ok(()));
        }
        let mut delays = self.config.retry_for(step_name).backoff().build();
        loop {
            attempts += 1;
            let attempt = attempts;
            store.step_started(&tenant, step_name, run, attempt).await?;
            let detail =
                Detail { step: Some(step_name), attempt: Some(attempt), status: Some(during), ..Detail::default() };
            self.progress.emit(Some(tenant), Some(run), EventKind::StepStarted, detail).await;
            let started = Instant::now();
            let result = step.run(ctx).await;
            let took = started.elapsed();
            let base =
                Detail { step: Some(step_name), attempt: Some(attempt), duration: Some(took), ..Detail::default() };
            match result {
                Ok(done) => {
                    failpoint::hit(&format!("during:{name}")).await;
                    let (state, kind, message) = match done {
                        StepDone::Done(m) => (StepState::Succeeded, EventKind::StepSucceeded, m),
                        StepDone::Skipped(m) => (StepState::Skipped, EventKind::StepSkipped, m),
                        StepDone::Deferred(m) => (StepState::Deferred, EventKind::StepSkipped, m),
                    };
                    store.step_finished(&tenant, step_name, state, took, None).await?;
                    // A skipped step did nothing: its near-zero time is kept out of the succeeded steps'.
                    let outcome = if state == StepState::Skipped { "skipped" } else { "succeeded" };
                    metrics::histogram!(telemetry::STEP_DURATION, "step" => name, "outcome" => outcome)
                        .record(took.as_secs_f64());
                    tracing::info!(step = name, attempt, duration_ms = took.as_millis() as u64, %message, "step succeeded");
                    // The tenant becomes active only when the run ends, after its last step.
                    let status = Some(during);
                    self.progress
                        .emit(Some(tenant), Some(run), kind, Detail { message: Some(message), status, ..base })
                        .await;
                    return Ok(Ok(()));
                }
                Err(e) => {
                    store
                        .step_finished(&tenant, step_name, StepState::Failed, took, Some((e.code.as_str(), &e.message)))
                        .await?;
                    let next = if e.is_transient() { delays.next() } else { None };
                    let outcome = if next.is_some() { "retried" } else { "failed" };
                    metrics::histogram!(telemetry::STEP_DURATION, "step" => name, "outcome" => outcome)
                        .record(took.as_secs_f64());
                    if next.is_some() {
                        metrics::counter!(telemetry::STEP_RETRIES, "step" => name).increment(1);
                    }
                    let (kind, status) = match next {
                        Some(_) => (EventKind::StepRetrying, during),
                        None if e.is_transient() => (EventKind::StepFailed, during),
                        // The tenant is marked failed only once compensation ran and the run is recorded.
                        None => (EventKind::StepFailed, during),
                    };
                    tracing::warn!(step = name, attempt, error = %e, retry_in = ?next, "step failed");
                    let detail = Detail { error: Some(e.to_event()), status: Some(status), ..base };
                    self.progress.emit(Some(tenant), Some(run), kind, detail).await;
                    match next {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => return Ok(Err(e)),
                    }
                }
            }
        }
    }
}
