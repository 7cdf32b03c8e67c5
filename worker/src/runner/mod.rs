//! Runs a tenant's steps as their plan says: every step whose needs are settled at once, starting from
//! what the control plane recorded, each outcome recorded before the message is acknowledged. A permanent
//! failure stops the steps beside it, undoes what the compensation policy names in reverse plan order,
//! and leaves the tenant `failed` until a retry.

mod compensate;
mod execute;
mod subscription;

pub use subscription::{StripeApiError, fetch_subscription};

use std::time::Duration;

use futures::{StreamExt, stream::FuturesUnordered};

use landlord_protocol::{
    Action, Command, EventError, EventKind, PackageId, PlanChange, ProvisionSpec, SubscriptionTypeId, TenantId,
    TenantSlug, TenantStatus,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    WorkerConfig,
    error::{ErrorCode, StepError},
    failpoint,
    keepalive::KeepAlive,
    progress::{Detail, Progress},
    steps::{Deps, Flows, Plan, PlannedStep, StepContext, StepName, TenantPlan},
    store::{NewTenant, Refusal, RefusalCode, RunEnd, RunStatus, StepState, StoreError, entities::tenant},
    telemetry,
};

/// What became of one command; decides how its message is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step succeeded.
    Completed,
    /// Already processed (or the tenant is already active): nothing to do.
    AlreadyDone,
    /// A step failed permanently; what policy says was undone, and the tenant is `failed` until a retry.
    Failed { step: StepName, code: ErrorCode, undone: Vec<StepName> },
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
    /// A step needs a person (a server to hand over, a full pool): the tenant waits in
    /// `awaiting_operator` with the reason, and a later command resumes it.
    AwaitingOperator { step: StepName, reason: String },
}

/// One flow as a run of it goes: its plan, the tenant's status while it runs, when it succeeds and when it
/// fails for good, and whether it may happen again for the same tenant (suspend, resume) or resumes where
/// an earlier command left it (provisioning, whose retry continues).
struct Flow<'a> {
    plan: &'a Plan,
    /// The tenant's status while the run goes, set when it starts (provisioning, offboarding) or kept as it
    /// was until the end (suspend and resume are one short step).
    during: TenantStatus,
    ending: TenantStatus,
    failed: TenantStatus,
    repeatable: bool,
    /// A move of the tenant's database: a permanent failure before its switch is rolled back whole (the
    /// copy dropped, the place freed, the tenant resumed on its old server), whatever the policy says.
    moving: bool,
}

/// Why a run stopped before its last step.
enum Stop {
    /// The worker is shutting down.
    Interrupted,
    /// A step's transient error outlasted its retries.
    Transient(StepName, StepError),
    /// A step failed for good.
    Permanent(StepName, StepError),
    /// A step needs a person.
    Operator(StepName, StepError),
}

pub struct Runner {
    pub deps: Deps,
    pub progress: Progress,
    /// The flows this runner runs: provisioning, suspension, resumption.
    pub flows: Flows,
    /// Retry policies and the compensation policy.
    pub config: WorkerConfig,
    /// Cancelled on shutdown: runs stop at the next step boundary.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("flows", &self.flows).finish()
    }
}

/// The id of the status event that ends `cmd`'s run: the same for every attempt to announce it.
fn ending_event_id(tenant: &TenantId, cmd: &Command) -> Uuid {
    Uuid::new_v5(&tenant.as_uuid(), format!("landlord:ended:{}", cmd.id.as_str()).as_bytes())
}

/// Counts a run that ended (or stopped), by the command's kind, how, and the step that stopped it.
fn count_run(cmd: &Command, outcome: &'static str, failing: Option<StepName>) {
    let failing = failing.map_or("", StepName::as_str);
    metrics::counter!(telemetry::RUNS, "kind" => cmd.action.kind().as_str(), "outcome" => outcome, "failing_step" => failing)
        .increment(1);
}

fn plan_of(row: &tenant::Model) -> Result<TenantPlan, String> {
    let bad = |e: landlord_protocol::IdError| format!("stored tenant {} is invalid: {e}", row.id);
    Ok(TenantPlan {
        id: TenantId::parse(&row.id).map_err(bad)?,
        slug: TenantSlug::parse_stored(&row.slug).map_err(bad)?,
        package_id: PackageId::try_from(row.package_id as u32).map_err(bad)?,
        subscription_type_id: SubscriptionTypeId::try_from(row.subscription_type_id as u32).map_err(bad)?,
        previous: None,
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
        store.audit(cmd).await?;
        let row = match &cmd.action {
            Action::Provision(spec) => match self.create_tenant(&cmd.tenant_id, spec).await? {
                NewTenant::Created(row) => {
                    // A purchase refused earlier (its subdomain was taken) that a later delivery could fulfil
                    // is settled: the customer is served and must not be refunded.
                    if store.dismiss_refused_purchase(&cmd.tenant_id, "landlord (tenant created)").await? {
                        tracing::info!("an earlier refusal of this purchase is dismissed: its tenant is being made");
                    }
                    row
                }
                NewTenant::Exists(_) if store.has_succeeded_run(&cmd.tenant_id).await? => {
                    store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
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
                Some(row) if matches!(row.status.as_str(), "offboarding" | "deleted") => {
                    let reason = format!(
                        "tenant {} is {}; a retry provisions, so it is refused (offboard it again to resume an unfinished offboarding)",
                        row.slug, row.status
                    );
                    return self.reject(cmd, reason).await;
                }
                Some(_) if store.has_succeeded_run(&cmd.tenant_id).await? => {
                    store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
                    return Ok(Outcome::AlreadyDone);
                }
                Some(row) => row,
                None => {
                    return self.reject(cmd, format!("no tenant {} to retry", cmd.tenant_id)).await;
                }
            },
            Action::RefusedPurchase(refused) => {
                // Only a purchase that made no tenant can be refused: the tenant id is the session's, and no
                // tenant holds it. Anything else would invite a refund for a customer who was served.
                let session = refused.purchase.checkout_session.as_str();
                if cmd.tenant_id != TenantId::from_checkout_session(session) {
                    let reason = format!("tenant {} is not the tenant of checkout session {session}", cmd.tenant_id);
                    return self.reject(cmd, reason).await;
                }
                if store.tenant(&cmd.tenant_id).await?.is_some() {
                    let reason = format!("tenant {} exists; its purchase cannot be refused", cmd.tenant_id);
                    return self.reject(cmd, reason).await;
                }
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
            Action::Suspend | Action::Resume => {
                let Some(row) = store.tenant(&cmd.tenant_id).await? else {
                    return self.reject(cmd, format!("no tenant {}", cmd.tenant_id)).await;
                };
                let (from, to) = if matches!(cmd.action, Action::Suspend) {
                    (TenantStatus::Active, TenantStatus::Suspended)
                } else {
                    (TenantStatus::Suspended, TenantStatus::Active)
                };
                let status = TenantStatus::parse(&row.status);
                // Its database is moving: this waits for the move to end.
                if status == Some(TenantStatus::Moving) {
                    return Ok(Outcome::RetryLater { delay: Duration::from_secs(5) });
                }
                // Already there (a repeated click, a second suspension request): nothing to do.
                if status == Some(to) {
                    store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
                    return Ok(Outcome::AlreadyDone);
                }
                if status != Some(from) && status != Some(to) {
                    let reason = format!(
                        "tenant {} is {}; only an {} tenant can be {}",
                        row.slug,
                        row.status,
                        from.as_str(),
                        if to == TenantStatus::Suspended { "suspended" } else { "resumed" }
                    );
                    return self.reject(cmd, reason).await;
                }
                // (Ending active also clears an offboarding timer: a resume restores the tenant.)
                return self.move_to(cmd, &row, to, delivered, alive).await;
            }
            Action::Offboard(request) => {
                let Some(row) = store.tenant(&cmd.tenant_id).await? else {
                    return self.reject(cmd, format!("no tenant {}", cmd.tenant_id)).await;
                };
                match TenantStatus::parse(&row.status) {
                    // Its database is moving: offboarding waits for the move to end.
                    Some(TenantStatus::Moving) => return Ok(Outcome::RetryLater { delay: Duration::from_secs(5) }),
                    Some(TenantStatus::Deleted) => {
                        store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
                        return Ok(Outcome::AlreadyDone);
                    }
                    // A provisioning still under way would make again what offboarding removes.
                    Some(TenantStatus::Pending | TenantStatus::Provisioning) | None => {
                        let reason = format!(
                            "tenant {} is {}; it can be offboarded once its provisioning has ended (active or failed)",
                            row.slug, row.status
                        );
                        return self.reject(cmd, reason).await;
                    }
                    // Later: suspended meanwhile, offboarded by the timer when the grace period is over.
                    Some(TenantStatus::Active | TenantStatus::Suspended) if request.after_grace => {
                        return self.schedule_offboarding(cmd, &row, delivered, alive).await;
                    }
                    // Nothing runs to suspend: asked for a grace period, such a tenant is not removed at once.
                    Some(_) if request.after_grace => {
                        let reason = format!(
                            "tenant {} is {}; only an active or suspended tenant waits out a grace period: offboard it now instead",
                            row.slug, row.status
                        );
                        return self.reject(cmd, reason).await;
                    }
                    Some(_) => {}
                }
                let plan = match plan_of(&row) {
                    Ok(p) => p,
                    Err(reason) => return self.reject(cmd, reason).await,
                };
                let flow = Flow {
                    plan: &self.flows.offboard,
                    during: TenantStatus::Offboarding,
                    ending: TenantStatus::Deleted,
                    // Half-offboarded stays offboarding, with its reason: sending offboard again resumes it.
                    failed: TenantStatus::Offboarding,
                    repeatable: false,
                    moving: false,
                };
                return self.run_flow(cmd, &plan, flow, delivered, alive).await;
            }
            Action::ChangePlan(change) => return self.change_plan(cmd, change, delivered, alive).await,
            Action::StripeSubscription(ev) => return self.subscription_event(cmd, ev).await,
            Action::Reconcile => return self.reconcile(cmd, delivered, alive).await,
        };
        let plan = match plan_of(&row) {
            Ok(p) => p,
            Err(reason) => return self.reject(cmd, reason).await,
        };
        let flow = Flow {
            plan: &self.flows.provision,
            during: TenantStatus::Provisioning,
            ending: TenantStatus::Active,
            failed: TenantStatus::Failed,
            repeatable: false,
            moving: false,
        };
        if !self.reconcile_after_provisioning(cmd, &row).await {
            return Ok(Outcome::RetryLater { delay: Duration::from_secs(5) });
        }
        self.run_flow(cmd, &plan, flow, delivered, alive).await
    }

    /// A plan change: to a plan of the catalogue, for an active tenant. Asking for the plan the tenant has
    /// does nothing, unless it is this command's own run that recorded it and must still finish, or a move
    /// of its database stopped half-way (sending the plan change again finishes it). A change across
    /// placement moves the database; while it moves, other commands for the tenant wait for it.
    async fn change_plan(
        &self,
        cmd: &Command,
        change: &PlanChange,
        delivered: i64,
        alive: &dyn KeepAlive,
    ) -> Result<Outcome, StoreError> {
        let store = &self.deps.store;
        let Some(row) = store.tenant(&cmd.tenant_id).await? else {
            return self.reject(cmd, format!("no tenant {}", cmd.tenant_id)).await;
        };
        let to = (change.package_id, change.subscription_type_id);
        let Some(target) = self.config.plans.get(to.0, to.1) else {
            let reason = format!(
                "package {} with subscription type {} is not a plan in {}",
                to.0,
                to.1,
                self.config.plans.source()
            );
            return self.reject(cmd, reason).await;
        };
        let status = TenantStatus::parse(&row.status);
        if status == Some(TenantStatus::Moving) && !store.is_latest_run_of(&cmd.tenant_id, cmd.id.as_str()).await? {
            // Another plan change is moving the tenant's database; this one waits for it to finish.
            return Ok(Outcome::RetryLater { delay: Duration::from_secs(5) });
        }
        if !matches!(status, Some(TenantStatus::Active | TenantStatus::Moving)) {
            let reason = format!("tenant {} is {}; only an active tenant changes plan", row.slug, row.status);
            return self.reject(cmd, reason).await;
        }
        let mut plan = match plan_of(&row) {
            Ok(p) => p,
            Err(reason) => return self.reject(cmd, reason).await,
        };
        // A copy begun, or an old copy not yet dropped; a place merely kept for a move (a hand-over) is not one.
        let unfinished_move = row.moved_from.is_some() || (row.moving_to.is_some() && row.move_copy_started);
        let from = (plan.package_id, plan.subscription_type_id);
        if from == to {
            if !unfinished_move
                && !store.step_settled_by_command(&plan.id, StepName::RecordPlan, cmd.id.as_str()).await?
            {
                store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
                return Ok(Outcome::AlreadyDone);
            }
        } else {
            plan.previous = Some(from);
        }
        (plan.package_id, plan.subscription_type_id) = to;
        let moving = unfinished_move || status == Some(TenantStatus::Moving) || self.crosses_placement(&plan).await?;
        tracing::info!(plan = %target.name, moving, "changing plan");
        let flow = Flow {
            plan: if moving { &self.flows.move_plan } else { &self.flows.change_plan },
            during: if moving { TenantStatus::Moving } else { TenantStatus::Active },
            ending: TenantStatus::Active,
            failed: TenantStatus::Active,
            repeatable: true,
            moving,
        };
        self.run_flow(cmd, &plan, flow, delivered, alive).await
    }

    /// Whether a move's switch is done: the tenant's database is the copy (or no move is under way).
    async fn switched(&self, plan: &TenantPlan) -> Result<bool, StoreError> {
        Ok(self.deps.store.tenant(&plan.id).await?.is_none_or(|row| row.moving_to.is_none()))
    }

    /// Whether the plan in `plan` puts the tenant on a server of another kind than the one it is on.
    async fn crosses_placement(&self, plan: &TenantPlan) -> Result<bool, StoreError> {
        let (placement, _) =
            self.deps.servers.placement_of(self.config.plans.get(plan.package_id, plan.subscription_type_id));
        let current = self.deps.store.placement_of(&plan.id).await?;
        // Never placed (made before the registry): on the default server, a shared one.
        let kind = current.map_or_else(|| landlord_protocol::Placement::Shared.as_str().to_owned(), |s| s.kind);
        Ok(kind != placement.as_str())
    }

    /// Records the tenant of a provision. A subdomain Landlord derived from the store's name that another
    /// tenant holds gets a short suffix of this tenant's id (the same on every delivery) instead.
    async fn create_tenant(&self, id: &TenantId, spec: &ProvisionSpec) -> Result<NewTenant, StoreError> {
        let store = &self.deps.store;
        match store.create_tenant(id, spec).await? {
            NewTenant::SlugTaken if spec.slug_derived => {
                let suffix = &id.as_uuid().simple().to_string()[..4];
                let Ok(slug) = spec.slug.with_suffix(suffix) else { return Ok(NewTenant::SlugTaken) };
                tracing::info!(%slug, "the derived subdomain is taken; this tenant gets a suffixed one");
                store.create_tenant(id, &ProvisionSpec { slug, ..spec.clone() }).await
            }
            other => Ok(other),
        }
    }

    async fn reject(&self, cmd: &Command, reason: String) -> Result<Outcome, StoreError> {
        tracing::warn!(%reason, "command rejected");
        self.progress.rejected(Some(cmd.tenant_id), "rejected", &reason).await;
        self.deps.store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
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
        if let Err(e) = self.progress.publish(Some(cmd.tenant_id), None, EventKind::PurchaseRefused, detail).await {
            // Recorded but not announced: handled again shortly, the record stays one and the event is stored once.
            tracing::warn!(error = %e, "refused purchase recorded but not yet announced; trying again");
            return Ok(Outcome::RetryLater { delay: Duration::from_secs(5) });
        }
        self.deps.store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
        Ok(Outcome::Refused { reason: refusal.reason.to_owned() })
    }

    async fn set_status(
        &self,
        plan: &TenantPlan,
        run: Uuid,
        status: TenantStatus,
        message: String,
    ) -> Result<(), StoreError> {
        self.deps.store.set_status(&plan.id, status, None).await?;
        self.announce_status(plan, run, status, None, message, None).await;
        Ok(())
    }

    async fn run_flow(
        &self,
        cmd: &Command,
        plan: &TenantPlan,
        flow: Flow<'_>,
        delivered: i64,
        alive: &dyn KeepAlive,
    ) -> Result<Outcome, StoreError> {
        let store = &self.deps.store;
        let run_started = std::time::Instant::now();
        let run = store.start_run(&plan.id, cmd.id.as_str(), cmd.action.kind()).await?;
        if matches!(flow.during, TenantStatus::Provisioning | TenantStatus::Offboarding | TenantStatus::Moving) {
            let message = format!("tenant {} is {}", plan.slug, flow.during.as_str());
            self.set_status(plan, run, flow.during, message).await?;
        }
        if flow.repeatable {
            // A flow that happens again and again (suspend, resume) starts afresh for each command: its steps'
            // records from an earlier command do not count, those of an earlier delivery of this one do.
            store.reset_steps_of_other_commands(&plan.id, flow.plan.names(), cmd.id.as_str()).await?;
        }
        let checkpoint = |step: StepName, label: &'static str| -> futures::future::BoxFuture<'static, ()> {
            Box::pin(async move { failpoint::hit(&format!("{step}:{label}")).await })
        };
        let ctx = StepContext { tenant: plan, deps: &self.deps, alive, checkpoint: &checkpoint };
        let ctx = &ctx;
        // The tenant's steps as earlier runs left them, in one query: which are settled, and how many
        // attempts each has had.
        let recorded: std::collections::HashMap<String, (String, u32)> = store
            .steps(&plan.id)
            .await?
            .into_iter()
            .map(|row| (row.step, (row.status, u32::try_from(row.attempts).unwrap_or(0))))
            .collect();
        let attempts_of = |name: StepName| recorded.get(name.as_str()).map_or(0, |r| r.1);
        let settled_before = |name: &StepName| recorded.get(name.as_str()).is_some_and(|r| StepState::is_settled(&r.0));
        let mut settled: Vec<StepName> = flow.plan.names().filter(settled_before).collect();
        // Every step whose needs are settled runs at once; a step boundary is a checkpoint: once the run
        // must stop (shutdown, a transient failure), nothing new starts and the steps in flight finish
        // first. A permanent failure stops the steps in flight at once, as a crash would (each is safe to
        // redo): the tenant is failed now, not after a stack that may take half an hour.
        let mut in_flight = Vec::new();
        let mut running = FuturesUnordered::new();
        let mut stop = None;
        let mut store_error = None;
        let mut cancelled = Vec::new();
        loop {
            if stop.is_none() && self.shutdown.is_cancelled() {
                stop = Some(Stop::Interrupted);
            }
            if stop.is_none() {
                let ready = flow.plan.ready(&settled).into_iter().filter(|s| !in_flight.contains(&s.name()));
                for planned in ready.collect::<Vec<&PlannedStep>>() {
                    let name = planned.name();
                    let attempts = attempts_of(name);
                    in_flight.push(name);
                    alive.touch().await;
                    let span = tracing::info_span!("step", step = name.as_str(), tenant_id = %plan.id);
                    running.push(tracing::Instrument::instrument(
                        async move {
                            failpoint::hit(&format!("before:{name}")).await;
                            let result = self.run_step(planned.step.as_ref(), ctx, run, flow.during, attempts).await;
                            if matches!(result, Ok(Ok(()))) {
                                failpoint::hit(&format!("after:{name}")).await;
                            }
                            (name, result)
                        },
                        span,
                    ));
                }
            }
            let Some((name, result)) = running.next().await else { break };
            in_flight.retain(|n| *n != name);
            // The control plane failed under a step: the others in flight finish (dropping them mid-call
            // would leave half-made resources) before the error is returned.
            let result = match result {
                Ok(r) => r,
                Err(e) => {
                    store_error.get_or_insert(e);
                    stop.get_or_insert(Stop::Interrupted);
                    continue;
                }
            };
            match result {
                Ok(()) => settled.push(name),
                Err(e) if e.is_transient() => {
                    stop.get_or_insert(Stop::Transient(name, e));
                }
                // The steps beside it finish (DNS and the stack are made while the tenant waits).
                Err(e) if e.waits_for_operator() => {
                    stop.get_or_insert(Stop::Operator(name, e));
                }
                // A permanent failure wins over anything else that stopped the run: it needs compensation.
                Err(e) => {
                    if !matches!(stop, Some(Stop::Permanent(..))) {
                        cancelled.append(&mut in_flight);
                        running.clear();
                        stop = Some(Stop::Permanent(name, e));
                    }
                }
            }
        }
        drop(running);
        for sibling in cancelled {
            self.record_cancelled(plan, run, sibling, &stop).await?;
        }
        if let Some(e) = store_error {
            store.finish_run(run, RunStatus::Interrupted).await.ok();
            return Err(e);
        }
        // Shutdown while the last steps ran: they finished, so the run is complete, not interrupted.
        if matches!(stop, Some(Stop::Interrupted)) && flow.plan.names().all(|n| settled.contains(&n)) {
            stop = None;
        }
        match stop {
            None => {}
            Some(Stop::Interrupted) => {
                store.finish_run(run, RunStatus::Interrupted).await?;
                count_run(cmd, "interrupted", None);
                return Ok(Outcome::Interrupted);
            }
            // A move never keeps a tenant locked out waiting for a server: before the switch, an error that
            // outlasted its retries rolls the move back, and the change can be sent again.
            Some(Stop::Transient(name, e)) if flow.moving && !self.switched(plan).await? => {
                let outcome = self.fail(cmd, plan, run, ctx, &flow, name, e).await?;
                count_run(cmd, "failed", Some(name));
                return Ok(outcome);
            }
            Some(Stop::Transient(name, e)) => {
                store.finish_run(run, RunStatus::Interrupted).await?;
                count_run(cmd, "retry_later", Some(name));
                let delay = self.config.retry_for(name).redelivery_delay(delivered);
                tracing::warn!(step = %name, error = %e, ?delay, "transient error outlasted retries; will resume later");
                return Ok(Outcome::RetryLater { delay });
            }
            Some(Stop::Permanent(name, e)) => {
                let outcome = self.fail(cmd, plan, run, ctx, &flow, name, e).await?;
                count_run(cmd, "failed", Some(name));
                return Ok(outcome);
            }
            Some(Stop::Operator(name, e)) => {
                let outcome = self.await_operator(cmd, plan, run, name, e).await?;
                count_run(cmd, "awaiting_operator", Some(name));
                return Ok(outcome);
            }
        }
        // The tenant takes its new status together with its run's record, in one transaction.
        self.end(cmd, plan, run, flow.ending, RunStatus::Succeeded, None).await?;
        count_run(cmd, "completed", None);
        if flow.during == TenantStatus::Provisioning {
            // The run that made the tenant active, from its start: a wait for an operator or a failure
            // fixed days later is not provisioning time (the waiting-for-an-operator gauge watches those waits).
            metrics::histogram!(telemetry::PROVISIONING_DURATION).record(run_started.elapsed().as_secs_f64());
        }
        let message = format!("tenant {} is {}", plan.slug, flow.ending.as_str());
        let id = Some(ending_event_id(&plan.id, cmd));
        self.announce_status(plan, run, flow.ending, None, message, id).await;
        Ok(Outcome::Completed)
    }

    /// Records a step stopped because another failed for good: it is not settled, so a retry redoes it.
    async fn record_cancelled(
        &self,
        plan: &TenantPlan,
        run: Uuid,
        step: StepName,
        stop: &Option<Stop>,
    ) -> Result<(), StoreError> {
        let cause = match stop {
            Some(Stop::Permanent(failed, _)) => failed.as_str(),
            _ => "another step",
        };
        let error = StepError::transient(
            ErrorCode::Cancelled,
            format!("stopped because {cause} failed; a retry of the tenant runs it again"),
        );
        let (code, message) = (error.code.as_str(), error.message.as_str());
        self.deps.store.step_finished(&plan.id, step, StepState::Failed, Duration::ZERO, Some((code, message))).await?;
        let detail = Detail { step: Some(step), error: Some(error.to_event()), ..Detail::default() };
        self.progress.emit(Some(plan.id), Some(run), EventKind::StepFailed, detail).await;
        Ok(())
    }

    /// After a permanent failure: undoes what policy says, then ends the run with the tenant `failed`.
    #[allow(clippy::too_many_arguments)]
    async fn fail(
        &self,
        cmd: &Command,
        plan: &TenantPlan,
        run: Uuid,
        ctx: &StepContext<'_>,
        flow: &Flow<'_>,
        name: StepName,
        e: StepError,
    ) -> Result<Outcome, StoreError> {
        let undone = if flow.moving {
            self.roll_back_move(flow.plan, ctx, run).await?
        } else {
            self.compensate(flow.plan, ctx, run).await?
        };
        let message = if undone.is_empty() {
            format!("tenant {} failed at {name}: {}", plan.slug, e.message)
        } else {
            let list: Vec<&str> = undone.iter().map(|n| n.as_str()).collect();
            format!("tenant {} failed at {name}: {}; undone: {}", plan.slug, e.message, list.join(", "))
        };
        self.end(cmd, plan, run, flow.failed, RunStatus::Failed, Some(&e.message)).await?;
        let id = Some(ending_event_id(&plan.id, cmd));
        self.announce_status(plan, run, flow.failed, Some(&e), message, id).await;
        Ok(Outcome::Failed { step: name, code: e.code, undone })
    }

    /// Pauses the run for a person: the tenant waits in `awaiting_operator` with the reason (the tenant list
    /// shows since when), operators are told with a progress event, and the command is done; whatever the
    /// person does (a hand-over, a new server) sends a command that resumes the run where it stopped.
    async fn await_operator(
        &self,
        cmd: &Command,
        plan: &TenantPlan,
        run: Uuid,
        name: StepName,
        e: StepError,
    ) -> Result<Outcome, StoreError> {
        let status = TenantStatus::AwaitingOperator;
        // The notice first, once per command (a redelivery queues nothing new): recorded before the run's
        // end, so a crash between them cannot lose it.
        let subject = format!("Landlord: tenant {} waits for an operator", plan.slug);
        let body = format!(
            "Tenant {} ({}) waits for an operator at {name}:\n\n{}\n\n`landlord queue` lists everything waiting \
             for a person.\n",
            plan.slug, plan.id, e.message
        );
        let key = format!("waiting:{}", cmd.id.as_str());
        crate::mail::notify_operators(&self.deps.store, &self.deps.mail, &plan.id, &key, &subject, &body).await?;
        self.end(cmd, plan, run, status, RunStatus::Waiting, Some(&e.message)).await?;
        tracing::warn!(step = %name, reason = %e.message, "the tenant waits for an operator");
        let message = format!("tenant {} waits for an operator at {name}: {}", plan.slug, e.message);
        self.announce_status(plan, run, status, Some(&e), message, Some(ending_event_id(&plan.id, cmd))).await;
        Ok(Outcome::AwaitingOperator { step: name, reason: e.message })
    }

    /// Records the run's end, the tenant's status and the command processed, in one transaction.
    async fn end(
        &self,
        cmd: &Command,
        plan: &TenantPlan,
        run: Uuid,
        status: TenantStatus,
        outcome: RunStatus,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        let kind = cmd.action.kind();
        let end = RunEnd { tenant: &plan.id, run, status, last_error, outcome, command_id: cmd.id.as_str(), kind };
        self.deps.store.end_run(end).await
    }

    /// A command found processed may have ended its run just before its worker died, before the status
    /// event went out: the ending is announced again under the same event id, which JetStream drops when
    /// the first one did go out (within its duplicate window).
    async fn announce_ending_again(&self, cmd: &Command) -> Result<(), StoreError> {
        let Some(row) = self.deps.store.tenant(&cmd.tenant_id).await? else { return Ok(()) };
        let status = TenantStatus::parse(&row.status);
        if !matches!(status, Some(TenantStatus::Active | TenantStatus::Failed | TenantStatus::AwaitingOperator)) {
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
