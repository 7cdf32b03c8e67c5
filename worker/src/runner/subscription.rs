//! Stripe drives the tenant's life. A `stripe_subscription` command keeps the newest snapshot of its
//! subscription and asks the tenant it pays for to `reconcile`; a reconcile brings the tenant to the state
//! the newest snapshot asks for (read from Stripe's API first when `LANDLORD_STRIPE_API_KEY` is set), one
//! flow per command: suspend, resume, change plan, or schedule the offboarding of a deleted subscription.
//! Each derived command has an id made from its cause, so publishing it twice stores it once, and a
//! command is marked processed only after what it derived is stored.

use std::time::Duration;

use landlord_protocol::{
    Action, Command, CommandId, Desired, EventKind, PlanChange, SubscriptionEvent, SubscriptionEventType,
    SubscriptionSnapshot, SubscriptionStatus, TenantId, TenantStatus,
};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::{Flow, Outcome, Runner, plan_of};
use crate::{
    keepalive::KeepAlive,
    progress::Detail,
    steps::StepName,
    store::{StoreError, entities::tenant},
};

/// A derived command could not be stored: hand the cause back and try again shortly.
const REPUBLISH_DELAY: Duration = Duration::from_secs(5);

impl Runner {
    /// Records what a Stripe event showed and asks the subscription's tenant, if there is one yet, to
    /// reconcile. A subscription whose tenant does not exist yet is kept: the tenant reconciles once
    /// provisioned.
    pub(super) async fn subscription_event(
        &self,
        cmd: &Command,
        ev: &SubscriptionEvent,
    ) -> Result<Outcome, StoreError> {
        let store = &self.deps.store;
        // The subject names the subscription's key: events of one subscription share one lease, and a
        // command cannot name one subscription in its subject and act on another.
        if cmd.tenant_id != TenantId::for_subscription(ev.subscription.as_str()) {
            let reason = format!("command key {} is not that of subscription {}", cmd.tenant_id, ev.subscription);
            return self.reject(cmd, reason).await;
        }
        if let Some(snapshot) = &ev.snapshot {
            let kept = store
                .record_subscription(
                    &ev.subscription,
                    ev.customer.as_ref(),
                    snapshot,
                    ev.event_created,
                    ev.event_id.as_str(),
                    false,
                )
                .await?;
            tracing::info!(subscription = %ev.subscription, status = snapshot.status.as_str(), kept, "subscription event");
        }
        let Some(row) = store.tenant_of_subscription(ev.subscription.as_str()).await? else {
            tracing::info!(subscription = %ev.subscription, "no tenant of this subscription yet; it reconciles once provisioned");
            store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
            return Ok(Outcome::Completed);
        };
        let Ok(tenant) = TenantId::parse(&row.id) else {
            return self.reject(cmd, format!("stored tenant {} is invalid", row.id)).await;
        };
        if ev.event_type == SubscriptionEventType::TrialWillEnd {
            let detail = Detail {
                message: Some(format!("the trial of tenant {} ends soon (Stripe event {})", row.slug, ev.event_id)),
                event_id: Some(Uuid::new_v5(
                    &tenant.as_uuid(),
                    format!("landlord:trial:{}", cmd.id.as_str()).as_bytes(),
                )),
                ..Detail::default()
            };
            if self.progress.publish(Some(tenant), None, EventKind::TrialWillEnd, detail).await.is_err() {
                return Ok(Outcome::RetryLater { delay: REPUBLISH_DELAY });
            }
        }
        let key = format!("reconcile-{}", ev.event_id);
        if !self.derive(cmd, tenant, &key, Action::Reconcile).await {
            return Ok(Outcome::RetryLater { delay: REPUBLISH_DELAY });
        }
        store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
        Ok(Outcome::Completed)
    }

    /// Publishes a command derived from `cause` under the id `landlord:<key>`; false when JetStream did not
    /// store it.
    pub(super) async fn derive(&self, cause: &Command, tenant: TenantId, key: &str, action: Action) -> bool {
        let Ok(id) = CommandId::derived(key) else {
            tracing::error!(key, "a derived command id is invalid");
            return false;
        };
        let derived = Command::new(id, tenant, format!("landlord (after {})", cause.id), action);
        match self.progress.bus().publish_command(&derived).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, command_id = %derived.id, "derived command not stored yet");
                false
            }
        }
    }

    /// Before a provisioning runs, for a tenant paid by a subscription: a reconcile that waits until the
    /// provisioning has ended, so events that came before the tenant existed (or while it was made) are
    /// applied then. Stored before the provisioning starts, so no crash can lose it; false when JetStream
    /// did not take it.
    pub(super) async fn reconcile_after_provisioning(&self, cmd: &Command, row: &tenant::Model) -> bool {
        if row.stripe_subscription.is_none() {
            return true;
        }
        // One per provisioning command (a purchase, each retry), the same for every delivery of it.
        let key = Uuid::new_v5(&cmd.tenant_id.as_uuid(), cmd.id.as_str().as_bytes());
        self.derive(cmd, cmd.tenant_id, &format!("reconcile-after-{key}"), Action::Reconcile).await
    }

    /// Brings the tenant to what its subscription asks for; one flow per command, and another reconcile
    /// when more remains (a resume, then a plan change).
    pub(super) async fn reconcile(
        &self,
        cmd: &Command,
        delivered: i64,
        alive: &dyn KeepAlive,
    ) -> Result<Outcome, StoreError> {
        let store = &self.deps.store;
        let Some(row) = store.tenant(&cmd.tenant_id).await? else {
            return self.reject(cmd, format!("no tenant {}", cmd.tenant_id)).await;
        };
        let Some(sub) = row.stripe_subscription.clone() else {
            return self.reject(cmd, format!("tenant {} has no Stripe subscription", row.slug)).await;
        };
        if let Some(key) = &self.config.stripe_api_key {
            match fetch_subscription(&self.config.stripe_api_base, key.expose_secret(), &sub).await {
                Ok(Some(snapshot)) => {
                    let id = landlord_protocol::StripeId::parse(&sub)
                        .map_err(|e| StoreError::Db(sea_orm::DbErr::Custom(format!("stored subscription id: {e}"))))?;
                    store.record_subscription(&id, None, &snapshot, chrono::Utc::now(), "stripe-api", true).await?;
                }
                Ok(None) => tracing::warn!(subscription = %sub, "Stripe does not know this subscription"),
                Err(e) => {
                    if matches!(e, StripeApiError::Refused { status: 401 | 403, .. }) {
                        tracing::error!(error = %e, "Stripe refuses LANDLORD_STRIPE_API_KEY; reconciles wait until it is fixed");
                    } else {
                        tracing::warn!(error = %e, "cannot read the subscription from Stripe; trying again later");
                    }
                    return Ok(Outcome::RetryLater { delay: self.config.retry.redelivery_delay(delivered) });
                }
            }
        }
        let Some(known) = store.subscription(&sub).await? else {
            store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
            return Ok(Outcome::AlreadyDone);
        };
        let desired = known.snapshot.status.desired(known.snapshot.deleted);
        let status = TenantStatus::parse(&row.status);
        let done = |outcome| async move {
            store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
            Ok(outcome)
        };
        match (status, desired) {
            // A move this reconcile began (a plan bought on Stripe), delivered again: it goes on.
            (Some(TenantStatus::Moving), _) if store.is_latest_run_of(&cmd.tenant_id, cmd.id.as_str()).await? => {
                let change = match self.plan_bought(&row, &known.snapshot) {
                    Some(change) => change,
                    // The new plan is recorded already: the move goes on to the plan the tenant has.
                    None => recorded_plan(&row)?,
                };
                self.change_plan(cmd, &change, delivered, alive).await
            }
            // A provisioning or a move under way: this waits for it to end.
            (Some(TenantStatus::Pending | TenantStatus::Provisioning | TenantStatus::Moving), _) => {
                Ok(Outcome::RetryLater { delay: Duration::from_secs(5) })
            }
            // Past the point of return, or for a person to settle.
            (
                Some(
                    TenantStatus::Failed
                    | TenantStatus::AwaitingOperator
                    | TenantStatus::Offboarding
                    | TenantStatus::Deleted,
                )
                | None,
                _,
            ) => done(Outcome::AlreadyDone).await,
            (Some(TenantStatus::Active), Desired::Active { payment_overdue }) => {
                if row.payment_overdue != payment_overdue {
                    store.set_payment_overdue(&cmd.tenant_id, payment_overdue).await?;
                }
                match self.plan_bought(&row, &known.snapshot) {
                    Some(change) => self.change_plan(cmd, &change, delivered, alive).await,
                    // This command's own plan change recorded the plan and stopped before its last step.
                    None if store
                        .step_settled_by_command(&cmd.tenant_id, StepName::RecordPlan, cmd.id.as_str())
                        .await? =>
                    {
                        self.change_plan(cmd, &recorded_plan(&row)?, delivered, alive).await
                    }
                    None => done(Outcome::AlreadyDone).await,
                }
            }
            (Some(TenantStatus::Suspended), Desired::Active { payment_overdue }) => {
                store.set_payment_overdue(&cmd.tenant_id, payment_overdue).await?;
                // Stripe resumes only what billing suspended; an operator's suspension is the operator's.
                // (`suspend`, or `offboard` with a grace period: both an operator's, never undone by a payment).
                if matches!(
                    store.kind_that_ran(&cmd.tenant_id, StepName::LockLogin).await?.as_deref(),
                    Some("suspend" | "offboard")
                ) {
                    tracing::info!("the subscription is paid, but an operator suspended the tenant; left suspended");
                    return done(Outcome::AlreadyDone).await;
                }
                // A plan change may follow the resume: its reconcile is stored first, and waits for this one.
                if self.plan_bought(&row, &known.snapshot).is_some() {
                    let key = format!("{}-again", cmd.id.as_str().replace(':', "-"));
                    if !self.derive(cmd, cmd.tenant_id, &key, Action::Reconcile).await {
                        return Ok(Outcome::RetryLater { delay: REPUBLISH_DELAY });
                    }
                }
                self.move_to(cmd, &row, TenantStatus::Active, delivered, alive).await
            }
            (Some(TenantStatus::Active), Desired::Suspended) => {
                self.move_to(cmd, &row, TenantStatus::Suspended, delivered, alive).await
            }
            (Some(TenantStatus::Active | TenantStatus::Suspended), Desired::Ended) => {
                self.schedule_offboarding(cmd, &row, delivered, alive).await
            }
            (Some(TenantStatus::Suspended), Desired::Suspended) => done(Outcome::AlreadyDone).await,
        }
    }

    /// Suspends the tenant now and sets its offboarding timer (now + `LANDLORD_OFFBOARD_AFTER`) unless one
    /// is set: a deleted subscription, or an operator's offboarding with a grace period.
    pub(super) async fn schedule_offboarding(
        &self,
        cmd: &Command,
        row: &tenant::Model,
        delivered: i64,
        alive: &dyn KeepAlive,
    ) -> Result<Outcome, StoreError> {
        let store = &self.deps.store;
        if row.offboard_at.is_none() {
            let after = chrono::Duration::from_std(self.config.offboard_after).unwrap_or(chrono::Duration::days(30));
            let at = chrono::Utc::now() + after;
            store.set_offboard_at(&cmd.tenant_id, Some(at)).await?;
            let detail = Detail {
                message: Some(format!(
                    "tenant {} is suspended and will be offboarded at {} unless resumed first",
                    row.slug,
                    at.to_rfc3339()
                )),
                event_id: Some(Uuid::new_v5(
                    &cmd.tenant_id.as_uuid(),
                    format!("landlord:offboarding-scheduled:{}", at.timestamp()).as_bytes(),
                )),
                ..Detail::default()
            };
            self.progress.emit(Some(cmd.tenant_id), None, EventKind::OffboardingScheduled, detail).await;
        }
        if row.status == TenantStatus::Active.as_str() {
            self.move_to(cmd, row, TenantStatus::Suspended, delivered, alive).await
        } else {
            store.mark_processed(cmd.id.as_str(), &cmd.tenant_id, cmd.action.kind()).await?;
            Ok(Outcome::AlreadyDone)
        }
    }

    /// The plan the subscription's prices buy, when the catalogue knows it and the tenant has another.
    fn plan_bought(&self, row: &tenant::Model, snapshot: &SubscriptionSnapshot) -> Option<PlanChange> {
        let plan = snapshot.prices.iter().find_map(|p| self.config.plans.for_price(p))?;
        let current = (row.package_id, row.subscription_type_id);
        let wanted = (plan.package_id.get() as i32, plan.subscription_type_id.get() as i32);
        (current != wanted)
            .then_some(PlanChange { package_id: plan.package_id, subscription_type_id: plan.subscription_type_id })
    }

    /// Suspends or resumes the tenant: the flow of an operator's `suspend`/`resume` and of a reconcile.
    pub(super) async fn move_to(
        &self,
        cmd: &Command,
        row: &tenant::Model,
        to: TenantStatus,
        delivered: i64,
        alive: &dyn KeepAlive,
    ) -> Result<Outcome, StoreError> {
        let plan = match plan_of(row) {
            Ok(p) => p,
            Err(reason) => return self.reject(cmd, reason).await,
        };
        let (flow, from) = if to == TenantStatus::Suspended {
            (&self.flows.suspend, TenantStatus::Active)
        } else {
            (&self.flows.resume, TenantStatus::Suspended)
        };
        let run = Flow { plan: flow, during: from, ending: to, failed: from, repeatable: true, moving: false };
        self.run_flow(cmd, &plan, run, delivered, alive).await
    }
}

/// The plan the tenant has recorded, as a change to it.
fn recorded_plan(row: &tenant::Model) -> Result<PlanChange, StoreError> {
    let bad = |e: landlord_protocol::IdError| StoreError::Db(sea_orm::DbErr::Custom(e.to_string()));
    Ok(PlanChange {
        package_id: landlord_protocol::PackageId::try_from(row.package_id as u32).map_err(bad)?,
        subscription_type_id: landlord_protocol::SubscriptionTypeId::try_from(row.subscription_type_id as u32)
            .map_err(bad)?,
    })
}

/// Why Stripe's API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StripeApiError {
    #[error("Stripe's API did not answer: {0}")]
    Unreachable(String),
    #[error("Stripe's API answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("Stripe's answer is not a subscription Landlord can read: {0}")]
    Unreadable(String),
}

/// `GET /v1/subscriptions/{id}`: the subscription as it is now; `None` when Stripe has no such subscription.
pub async fn fetch_subscription(
    base: &str,
    key: &str,
    id: &str,
) -> Result<Option<SubscriptionSnapshot>, StripeApiError> {
    let id = landlord_protocol::StripeId::parse(id).map_err(|e| StripeApiError::Unreadable(e.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| StripeApiError::Unreachable(e.to_string()))?;
    let res = client
        .get(format!("{base}/v1/subscriptions/{id}"))
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| StripeApiError::Unreachable(e.without_url().to_string()))?;
    let status = res.status().as_u16();
    if status == 404 {
        return Ok(None);
    }
    let body = res.text().await.map_err(|e| StripeApiError::Unreachable(e.without_url().to_string()))?;
    if status != 200 {
        let body: String = body.chars().take(300).collect();
        return Err(StripeApiError::Refused { status, body });
    }
    let value: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| StripeApiError::Unreadable(e.to_string()))?;
    let status = value["status"]
        .as_str()
        .and_then(SubscriptionStatus::parse)
        .ok_or_else(|| StripeApiError::Unreadable("no known status".into()))?;
    let prices = value["items"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["price"]["id"].as_str().and_then(|p| landlord_protocol::StripeId::parse(p).ok()))
        .collect();
    // A subscription Stripe canceled for good has ended (`customer.subscription.deleted` was sent for it).
    let deleted = status == SubscriptionStatus::Canceled && !value["ended_at"].is_null();
    Ok(Some(SubscriptionSnapshot { status, prices, deleted }))
}
