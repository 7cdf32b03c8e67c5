//! Runs a tenant's steps in order, starting at the first one not yet recorded as succeeded, and records
//! each outcome in the control plane before the message is acknowledged.

use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use landlord_protocol::{
    Action, Command, EventKind, PackageId, SubscriptionTypeId, TenantId, TenantSlug, TenantStatus,
};
use uuid::Uuid;

use crate::{
    RetryPolicy,
    keepalive::KeepAlive,
    progress::{Detail, Progress},
    steps::{Deps, Step, StepContext, StepDone, StepError, TenantPlan},
    store::{NewTenant, StepState, StoreError, entities::tenant},
};

/// What became of one command; decides how its message is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step succeeded.
    Completed,
    /// Already processed (or the tenant is already active): nothing to do.
    AlreadyDone,
    /// A step failed permanently; the tenant is `failed` and waits for a retry.
    Failed { step: &'static str, code: String },
    /// The command cannot be acted on; it must not be redelivered.
    Rejected { reason: String },
    /// A transient error outlasted this attempt's budget; hand the message back with a delay.
    RetryLater { delay: Duration },
}

pub struct Runner {
    pub deps: Deps,
    pub progress: Progress,
    pub steps: Vec<Box<dyn Step>>,
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field(
                "steps",
                &self.steps.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn plan_of(row: &tenant::Model) -> Result<TenantPlan, String> {
    let bad = |e: landlord_protocol::IdError| format!("stored tenant {} is invalid: {e}", row.id);
    Ok(TenantPlan {
        id: TenantId::parse(&row.id).map_err(bad)?,
        slug: TenantSlug::parse(&row.slug).map_err(bad)?,
        package_id: PackageId::try_from(row.package_id as u32).map_err(bad)?,
        subscription_type_id: SubscriptionTypeId::try_from(row.subscription_type_id as u32)
            .map_err(bad)?,
    })
}

impl Runner {
    /// Handles one decoded command. `delivered` is JetStream's delivery count, for the redelivery delay.
    #[tracing::instrument(skip_all, fields(tenant_id = %cmd.tenant_id, command_id = %cmd.id, kind = cmd.action.kind().as_str()))]
    pub async fn handle(
        &self,
        cmd: &Command,
        delivered: i64,
        alive: &dyn KeepAlive,
    ) -> Result<Outcome, StoreError> {
        let store = &self.deps.store;
        if store.is_processed(cmd.id.as_str()).await? {
            return Ok(Outcome::AlreadyDone);
        }
        let row = match &cmd.action {
            Action::Provision(spec) => match store.create_tenant(&cmd.tenant_id, spec).await? {
                NewTenant::Created(row) => row,
                NewTenant::Exists(row) if row.status == TenantStatus::Active.as_str() => {
                    store
                        .mark_processed(cmd.id.as_str(), &cmd.tenant_id, "provision")
                        .await?;
                    return Ok(Outcome::AlreadyDone);
                }
                NewTenant::Exists(row) => row,
                NewTenant::SlugTaken => {
                    let reason = format!(
                        "subdomain {} is already taken by another tenant; choose another",
                        spec.slug
                    );
                    return self.reject(cmd, reason).await;
                }
            },
            Action::Retry => match store.tenant(&cmd.tenant_id).await? {
                Some(row) if row.status == TenantStatus::Active.as_str() => {
                    store
                        .mark_processed(cmd.id.as_str(), &cmd.tenant_id, "retry")
                        .await?;
                    return Ok(Outcome::AlreadyDone);
                }
                Some(row) => row,
                None => {
                    return self
                        .reject(cmd, format!("no tenant {} to retry", cmd.tenant_id))
                        .await;
                }
            },
            other => {
                let reason = format!(
                    "command kind {} is not handled by this worker version",
                    other.kind().as_str()
                );
                return self.reject(cmd, reason).await;
            }
        };
        let plan = match plan_of(&row) {
            Ok(p) => p,
            Err(reason) => return self.reject(cmd, reason).await,
        };
        self.provision(cmd, &plan, delivered, alive).await
    }

    async fn reject(&self, cmd: &Command, reason: String) -> Result<Outcome, StoreError> {
        tracing::warn!(%reason, "command rejected");
        self.progress
            .rejected(Some(cmd.tenant_id), "rejected", &reason)
            .await;
        self.deps
            .store
            .mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind().as_str())
            .await?;
        Ok(Outcome::Rejected { reason })
    }

    async fn set_status(
        &self,
        plan: &TenantPlan,
        run: Uuid,
        status: TenantStatus,
        error: Option<&StepError>,
    ) -> Result<(), StoreError> {
        self.deps
            .store
            .set_status(&plan.id, status, error.map(|e| e.message.clone()))
            .await?;
        let detail = Detail {
            status: Some(status),
            error: error.map(StepError::to_event),
            message: Some(format!("tenant {} is {}", plan.slug, status.as_str())),
            ..Detail::default()
        };
        self.progress
            .emit(Some(plan.id), Some(run), EventKind::StatusChanged, detail)
            .await;
        Ok(())
    }

    async fn provision(
        &self,
        cmd: &Command,
        plan: &TenantPlan,
        delivered: i64,
        alive: &dyn KeepAlive,
    ) -> Result<Outcome, StoreError> {
        let store = &self.deps.store;
        let run = store
            .start_run(&plan.id, cmd.id.as_str(), cmd.action.kind().as_str())
            .await?;
        self.set_status(plan, run, TenantStatus::Provisioning, None)
            .await?;
        let ctx = StepContext {
            tenant: plan,
            deps: &self.deps,
            alive,
        };
        for step in &self.steps {
            let name = step.name();
            if store
                .step(&plan.id, name)
                .await?
                .is_some_and(|s| StepState::is_settled(&s.status))
            {
                continue;
            }
            alive.touch().await;
            match self.run_step(step.as_ref(), &ctx, run).await? {
                Ok(()) => {}
                Err(e) if e.is_transient() => {
                    store.finish_run(run, "interrupted").await?;
                    let delay = self.retry.redelivery_delay(delivered);
                    tracing::warn!(step = name, error = %e, ?delay, "transient error outlasted retries; will resume later");
                    return Ok(Outcome::RetryLater { delay });
                }
                Err(e) => {
                    self.set_status(plan, run, TenantStatus::Failed, Some(&e))
                        .await?;
                    store.finish_run(run, "failed").await?;
                    store
                        .mark_processed(cmd.id.as_str(), &plan.id, cmd.action.kind().as_str())
                        .await?;
                    return Ok(Outcome::Failed {
                        step: name,
                        code: e.code,
                    });
                }
            }
        }
        let detail = Detail {
            status: Some(TenantStatus::Active),
            message: Some(format!("tenant {} is active", plan.slug)),
            ..Detail::default()
        };
        self.progress
            .emit(Some(plan.id), Some(run), EventKind::StatusChanged, detail)
            .await;
        store.finish_run(run, "succeeded").await?;
        store
            .mark_processed(cmd.id.as_str(), &plan.id, cmd.action.kind().as_str())
            .await?;
        Ok(Outcome::Completed)
    }

    /// Runs one step with in-process retries on transient errors, recording and reporting each attempt.
    async fn run_step(
        &self,
        step: &dyn Step,
        ctx: &StepContext<'_>,
        run: Uuid,
    ) -> Result<Result<(), StepError>, StoreError> {
        let (store, name, tenant) = (&self.deps.store, step.name(), ctx.tenant.id);
        let mut delays = self.retry.backoff().build();
        loop {
            let attempt = store.step_started(&tenant, name, run).await?;
            let detail = Detail {
                step: Some(name),
                attempt: Some(attempt),
                status: Some(TenantStatus::Provisioning),
                ..Detail::default()
            };
            self.progress
                .emit(Some(tenant), Some(run), EventKind::StepStarted, detail)
                .await;
            let started = Instant::now();
            let result = step.run(ctx).await;
            let took = started.elapsed();
            let base = Detail {
                step: Some(name),
                attempt: Some(attempt),
                duration: Some(took),
                ..Detail::default()
            };
            match result {
                Ok(done) => {
                    let (state, kind, message) = match done {
                        StepDone::Done(m) => (StepState::Succeeded, EventKind::StepSucceeded, m),
                        StepDone::Skipped(m) => (StepState::Skipped, EventKind::StepSkipped, m),
                        StepDone::Deferred(m) => (StepState::Deferred, EventKind::StepSkipped, m),
                    };
                    store
                        .step_finished(&tenant, name, state, took, None)
                        .await?;
                    tracing::info!(step = name, attempt, duration_ms = took.as_millis() as u64, %message, "step succeeded");
                    let status = if name == "activate" {
                        TenantStatus::Active
                    } else {
                        TenantStatus::Provisioning
                    };
                    self.progress
                        .emit(
                            Some(tenant),
                            Some(run),
                            kind,
                            Detail {
                                message: Some(message),
                                status: Some(status),
                                ..base
                            },
                        )
                        .await;
                    return Ok(Ok(()));
                }
                Err(e) => {
                    store
                        .step_finished(
                            &tenant,
                            name,
                            StepState::Failed,
                            took,
                            Some((&e.code, &e.message)),
                        )
                        .await?;
                    let next = if e.is_transient() {
                        delays.next()
                    } else {
                        None
                    };
                    let (kind, status) = match next {
                        Some(_) => (EventKind::StepRetrying, TenantStatus::Provisioning),
                        None if e.is_transient() => {
                            (EventKind::StepFailed, TenantStatus::Provisioning)
                        }
                        None => (EventKind::StepFailed, TenantStatus::Failed),
                    };
                    tracing::warn!(step = name, attempt, error = %e, retry_in = ?next, "step failed");
                    self.progress
                        .emit(
                            Some(tenant),
                            Some(run),
                            kind,
                            Detail {
                                error: Some(e.to_event()),
                                status: Some(status),
                                ..base
                            },
                        )
                        .await;
                    match next {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => return Ok(Err(e)),
                    }
                }
            }
        }
    }
}
