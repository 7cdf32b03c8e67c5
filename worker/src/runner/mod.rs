//! Runs a tenant's steps in order, starting at the first one not yet settled, and records each outcome in
//! the control plane before the message is acknowledged. A permanent failure undoes what the
//! compensation policy names, in reverse order, and leaves the tenant `failed` until a retry.

mod compensate;
mod execute;

use std::time::Duration;

use landlord_protocol::{
    Action, Command, EventError, EventKind, PackageId, SubscriptionTypeId, TenantId, TenantSlug, TenantStatus,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    WorkerConfig, failpoint,
    keepalive::KeepAlive,
    progress::{Detail, Progress},
    steps::{Deps, Step, StepContext, StepError, TenantPlan},
    store::{NewTenant, Refusal, RefusalCode, RunEnd, StepState, StoreError, entities::tenant},
};

/// What became of one command; decides how its message is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step succeeded.
    Completed,
    /// Already processed (or the tenant is already active): nothing to do.
    AlreadyDone,
    /// A step failed permanently; what policy says was undone, and the tenant is `failed` until a retry.
    Failed { step: &'static str, code: String, undone: Vec<&'static str> },
    /// The command cannot be acted on; it must not be redelivered.
    Rejected { reason: String },
    /// A paid purchase could not become a tenant; it is recorded for an operator and announced.
    Refused { reason: String },
    /// A transient error outlasted this attempt's budget; hand the message back with a delay.
    RetryLater { delay: Duration },
    /// Another worker holds the tenant's lease; try again after the delay.
    Busy { delay: Duration },
    /// The worker is shutting down; the run stopped at a checkpoint and resumes elsewhere.
    Interrupted,
}

pub struct Runner {
    pub deps: Deps,
    pub progress: Progress,
    pub steps: Vec<Box<dyn Step>>,
    /// Retry policies and the compensation policy.
    pub config: WorkerConfig,
    /// Cancelled on shutdown: runs stop at the next step boundary.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("steps", &self.steps.iter().map(|s| s.name()).collect::<Vec<_>>()).finish()
    }
}

/// The id of the status event that ends `cmd`'s run: the same for every attempt to announce it.
fn ending_event_id(tenant: &TenantId, cmd: &Command) -> Uuid {
    Uuid::new_v5(&tenant.as_uuid(), format!("landlord:ended:{}", cmd.id.as_str()).as_bytes())
}

fn plan_of(row: &tenant::Model) -> Result<TenantPlan, String> {
    let bad = |e: landlord_protocol::IdError| format!("stored tenant {} is invalid: {e}", row.id);
    Ok(TenantPlan {
        id: TenantId::parse(&row.id).map_err(bad)?,
        slug: TenantSlug::parse(&row.slug).map_err(bad)?,
        package_id: PackageId::try_from(row.package_id as u32).map_err(bad)?,
        subscription_type_id: SubscriptionTypeId::try_from(row.subscription_type_id as u32).map_err(bad)?,
    })
}

impl Runner {
    /// Handles one decoded command. `delivered` is JetStream's delivery count, for the redelivery delay.
    #[tracing::instrument(skip_all, fields(tenant_id = %cmd.tenant_id, command_id = %cmd.id, kind = cmd.action.kind().as_str()))]
    pub async fn handle(&self, cmd: &Command, delivered: i64, alive: &dyn KeepAlive) -> Result<Outcome, StoreError> {
        let store = &self.deps.store;
        if store.is_processed(cmd.id.as_str()).await? {
            self.announce_ending_again(cmd).await?;
            return Ok(Outcome::AlreadyDone);
        }
        let row = match &cmd.action {
            Action::Provision(spec) => match store.create_tenant(&cmd.tenant_id, spec).await? {
                NewTenant::Created(row) => row,
                NewTenant::Exists(_) if store.has_succeeded_run(&cmd.tenant_id).await? => {
                    store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, "provision").await?;
                    return Ok(Outcome::AlreadyDone);
                }
                NewTenant::Exists(row) => row,
                NewTenant::SlugTaken => {
                    let reason = format!(
                        "subdomain {} is already taken by another tenant; the purchase needs another subdomain or a refund",
                        spec.slug
                    );
                    let refusal = Refusal {
                        tenant: &cmd.tenant_id,
                        command_id: cmd.id.as_str(),
                        code: RefusalCode::SubdomainTaken,
                        reason: &reason,
                        purchase: spec.purchase.as_ref(),
                        contact_email: Some(&spec.contact_email),
                        subdomain: Some(&spec.slug),
                    };
                    return self.refuse(cmd, refusal).await;
                }
            },
            Action::Retry => match store.tenant(&cmd.tenant_id).await? {
                Some(_) if store.has_succeeded_run(&cmd.tenant_id).await? => {
                    store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, "retry").await?;
                    return Ok(Outcome::AlreadyDone);
                }
                Some(row) => row,
                None => {
                    return self.reject(cmd, format!("no tenant {} to retry", cmd.tenant_id)).await;
                }
            },
            Action::RefusedPurchase(refused) => {
                let refusal = Refusal {
                    tenant: &cmd.tenant_id,
                    command_id: cmd.id.as_str(),
                    code: RefusalCode::InvalidMetadata,
                    reason: &refused.reason,
                    purchase: Some(&refused.purchase),
                    contact_email: refused.contact_email.as_ref(),
                    subdomain: None,
                };
                return self.refuse(cmd, refusal).await;
            }
            other => {
                let reason = format!("command kind {} is not handled by this worker version", other.kind().as_str());
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
        self.progress.rejected(Some(cmd.tenant_id), "rejected", &reason).await;
        self.deps.store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind().as_str()).await?;
        Ok(Outcome::Rejected { reason })
    }

    /// Records a refused purchase, announces it, then marks the command processed: a worker that dies in
    /// between leaves a redelivery that finds the record and repeats the announcement under the same
    /// event id, which JetStream stores once.
    async fn refuse(&self, cmd: &Command, refusal: Refusal<'_>) -> Result<Outcome, StoreError> {
        tracing::warn!(
            code = refusal.code.as_str(),
            reason = refusal.reason,
            "paid purchase refused; recorded for an operator"
        );
        self.deps.store.record_refused_purchase(refusal).await?;
        let error = EventError { code: refusal.code.as_str().into(), message: refusal.reason.into(), retryable: false };
        let message = match refusal.purchase {
            Some(p) => format!(
                "checkout session {} was paid but no tenant was made; see `landlord purchases refused`",
                p.checkout_session
            ),
            None => "no tenant was made; see `landlord purchases refused`".to_owned(),
        };
        let detail = Detail {
            error: Some(error),
            message: Some(message),
            event_id: Some(ending_event_id(&cmd.tenant_id, cmd)),
            ..Detail::default()
        };
        self.progress.emit(Some(cmd.tenant_id), None, EventKind::PurchaseRefused, detail).await;
        self.deps.store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind().as_str()).await?;
        Ok(Outcome::Refused { reason: refusal.reason.to_owned() })
    }

    async fn set_status(
        &self,
        plan: &TenantPlan,
        run: Uuid,
        status: TenantStatus,
        error: Option<&StepError>,
        message: String,
    ) -> Result<(), StoreError> {
        self.deps.store.set_status(&plan.id, status, error.map(|e| e.message.clone())).await?;
        self.announce_status(plan, run, status, error, message, None).await;
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
        let kind = cmd.action.kind().as_str();
        let run = store.start_run(&plan.id, cmd.id.as_str(), kind).await?;
        self.set_status(plan, run, TenantStatus::Provisioning, None, format!("tenant {} is provisioning", plan.slug))
            .await?;
        let ctx = StepContext { tenant: plan, deps: &self.deps, alive };
        for step in &self.steps {
            let name = step.name();
            if store.step(&plan.id, name).await?.is_some_and(|s| StepState::is_settled(&s.status)) {
                continue;
            }
            // A step boundary is a checkpoint: on shutdown the run stops here and resumes elsewhere.
            if self.shutdown.is_cancelled() {
                store.finish_run(run, "interrupted").await?;
                return Ok(Outcome::Interrupted);
            }
            alive.touch().await;
            failpoint::hit(&format!("before:{name}")).await;
            match self.run_step(step.as_ref(), &ctx, run).await? {
                Ok(()) => failpoint::hit(&format!("after:{name}")).await,
                Err(e) if e.is_transient() => {
                    store.finish_run(run, "interrupted").await?;
                    let delay = self.config.retry_for(name).redelivery_delay(delivered);
                    tracing::warn!(step = name, error = %e, ?delay, "transient error outlasted retries; will resume later");
                    return Ok(Outcome::RetryLater { delay });
                }
                Err(e) => {
                    let undone = self.compensate(&ctx, run).await?;
                    let message = if undone.is_empty() {
                        format!("tenant {} failed at {name}: {}", plan.slug, e.message)
                    } else {
                        format!("tenant {} failed at {name}: {}; undone: {}", plan.slug, e.message, undone.join(", "))
                    };
                    let end = RunEnd {
                        tenant: &plan.id,
                        run,
                        status: TenantStatus::Failed,
                        last_error: Some(&e.message),
                        outcome: "failed",
                        command_id: cmd.id.as_str(),
                        kind,
                    };
                    store.end_run(end).await?;
                    let id = Some(ending_event_id(&plan.id, cmd));
                    self.announce_status(plan, run, TenantStatus::Failed, Some(&e), message, id).await;
                    return Ok(Outcome::Failed { step: name, code: e.code, undone });
                }
            }
        }
        // The tenant becomes active together with its run's record, in one transaction.
        let end = RunEnd {
            tenant: &plan.id,
            run,
            status: TenantStatus::Active,
            last_error: None,
            outcome: "succeeded",
            command_id: cmd.id.as_str(),
            kind,
        };
        store.end_run(end).await?;
        let message = format!("tenant {} is active", plan.slug);
        let id = Some(ending_event_id(&plan.id, cmd));
        self.announce_status(plan, run, TenantStatus::Active, None, message, id).await;
        Ok(Outcome::Completed)
    }

    /// A command found processed may have ended its run just before its worker died, before the status
    /// event went out: the ending is announced again under the same event id, which JetStream drops when
    /// the first one did go out (within its duplicate window).
    async fn announce_ending_again(&self, cmd: &Command) -> Result<(), StoreError> {
        let Some(row) = self.deps.store.tenant(&cmd.tenant_id).await? else { return Ok(()) };
        let status = TenantStatus::parse(&row.status);
        if !matches!(status, Some(TenantStatus::Active | TenantStatus::Failed)) {
            return Ok(());
        }
        let Ok(plan) = plan_of(&row) else { return Ok(()) };
        let detail = Detail {
            status,
            message: Some(match row.last_error {
                Some(reason) => format!("tenant {} is {}: {reason}", plan.slug, row.status),
                None => format!("tenant {} is {}", plan.slug, row.status),
            }),
            event_id: Some(ending_event_id(&plan.id, cmd)),
            ..Detail::default()
        };
        self.progress.emit(Some(plan.id), None, EventKind::StatusChanged, detail).await;
        Ok(())
    }

    /// Publishes a status change already recorded in the control plane.
    async fn announce_status(
        &self,
        plan: &TenantPlan,
        run: Uuid,
        status: TenantStatus,
        error: Option<&StepError>,
        message: String,
        event_id: Option<Uuid>,
    ) {
        let detail = Detail {
            status: Some(status),
            error: error.map(StepError::to_event),
            message: Some(message),
            event_id,
            ..Detail::default()
        };
        self.progress.emit(Some(plan.id), Some(run), EventKind::StatusChanged, detail).await;
    }
}
