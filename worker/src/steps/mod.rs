//! The steps of a provisioning run. Each is a small unit with one job that is safe to repeat; the plan
//! ([`provisioning`]) says what each needs, the runner runs whatever is ready, and a step knows its provider.

mod activate;
mod apply_schema;
mod change_plan;
mod configure_dns;
mod create_database;
mod deploy_stack;
mod health_check;
mod login_lock;
mod notify;
mod offboard;
pub mod ownership;
mod park_dns;
mod plan;

use futures::future::BoxFuture;
use landlord_protocol::{PackageId, SubscriptionTypeId, TenantId, TenantSlug};

pub use activate::Activate;
pub use apply_schema::ApplySchema;
pub use change_plan::{RecordPlan, UpdateStack, UpgradeSchema};
pub use configure_dns::{ConfigureDns, apply as apply_dns};
pub use create_database::CreateDatabase;
pub use deploy_stack::DeployStack;
pub use health_check::HealthCheck;
pub use login_lock::{LockLogin, UnlockLogin};
pub use notify::Notify;
pub use offboard::{ArchiveDatabase, DeleteStack, DropDatabase, ForgetCredentials, RemoveDns};
pub use park_dns::{ParkDns, RestoreDns};
pub use plan::{Plan, PlannedStep};

pub use crate::{
    error::{ErrorCode, Retry, StepError},
    step_name::StepName,
};

use crate::{
    archive::ArchiveTarget, infra::Infra, keepalive::KeepAlive, scripts::ScriptSource, store::Store,
    tenant_db::TenantDbServer,
};

/// What a step did, for its progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepDone {
    Done(String),
    /// Nothing to do here (not configured); counts as done.
    Skipped(String),
    /// Not finished, but the run goes on; something else completes it later (DNS in the background).
    Deferred(String),
}

/// The services steps use, built once per worker.
#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Store,
    /// The tenant database servers: the default one and every registered one.
    pub servers: crate::placement::Servers,
    pub scripts: ScriptSource,
    pub infra: std::sync::Arc<Infra>,
    /// Where offboarded tenants' final dumps go (`LANDLORD_ARCHIVE`).
    pub archive: ArchiveTarget,
    /// How many days a final dump is kept (`LANDLORD_RETENTION__ARCHIVE_DAYS`).
    pub archive_days: u32,
    /// The plan catalogue: where each plan's tenants are placed.
    pub plans: landlord_protocol::Plans,
    /// Templates new database servers are made from, when configured.
    pub templates: std::sync::Arc<crate::placement::templates::ServerTemplates>,
    /// What mail is sent (the welcome, operator notices) and through which server.
    pub mail: std::sync::Arc<crate::mail::Mail>,
}

/// The tenant a run is for, read back from the control plane as valid types.
#[derive(Debug, Clone)]
pub struct TenantPlan {
    pub id: TenantId,
    pub slug: TenantSlug,
    pub package_id: PackageId,
    pub subscription_type_id: SubscriptionTypeId,
    /// In a plan change, the plan the tenant leaves (`package_id`/`subscription_type_id` are the new one);
    /// `None` elsewhere, and once the new plan is recorded.
    pub previous: Option<(PackageId, SubscriptionTypeId)>,
}

/// A named point inside a step's work (`"middle"` of a plan script). The runner owns what happens there:
/// the chaos suite's failpoint `<step>:<label>`; elsewhere nothing.
pub type Checkpoint<'a> = &'a (dyn Fn(StepName, &'static str) -> BoxFuture<'static, ()> + Send + Sync);

/// A [`Checkpoint`] where nothing happens, for steps run outside the runner.
pub fn no_checkpoint(_: StepName, _: &'static str) -> BoxFuture<'static, ()> {
    Box::pin(async {})
}

pub struct StepContext<'a> {
    pub tenant: &'a TenantPlan,
    pub deps: &'a Deps,
    /// Keeps the command's message alive during long waits.
    pub alive: &'a dyn KeepAlive,
    pub checkpoint: Checkpoint<'a>,
}

impl StepContext<'_> {
    /// The server the tenant's database is placed on (the default server until it is placed).
    pub async fn server(&self) -> Result<TenantDbServer, StepError> {
        self.deps.servers.of_tenant(&self.tenant.id).await
    }
}

impl std::fmt::Debug for StepContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext").field("tenant", self.tenant).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for dyn KeepAlive + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeepAlive")
    }
}

pub trait Step: Send + Sync {
    /// The name shown in progress events and stored per tenant.
    fn name(&self) -> StepName;
    /// Why this deployment has nothing for the step to do (its provider is not configured), known
    /// before it runs: the runner then records it skipped in one write and one event, instead of a
    /// `started` record and event, the run, and a second write and event. `None` when the step has to run
    /// to know.
    fn configured_off(&self, _deps: &Deps) -> Option<String> {
        None
    }
    /// Does the step's work; must be safe to run again after a crash at any point.
    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>>;
    /// Undoes the step's work, for rollback and offboarding; `None` when there is nothing to undo.
    fn undo<'a>(&'a self, _ctx: &'a StepContext<'a>) -> Option<BoxFuture<'a, Result<StepDone, StepError>>> {
        None
    }
}

/// Provisioning, the whole flow at once: each step with the steps whose results it reads. The database's
/// server is chosen first (then the database, then its schema), the DNS records and the stack do not wait for one another: the stack is given the
/// database's name and the hostnames, both known from the slug and the zone. The health check needs the
/// tenant reachable (its records and its stack) and able to answer (its schema); `activate` needs
/// everything; `notify` queues the welcome last (it only writes to the outbox, so mail never delays it).
pub fn provisioning() -> Plan {
    use StepName::*;
    Plan::new(vec![
        PlannedStep::new(PlaceDatabase, &[]),
        PlannedStep::new(CreateDatabase, &[PlaceDatabase]),
        PlannedStep::new(ApplySchema, &[CreateDatabase]),
        PlannedStep::new(ConfigureDns, &[]),
        PlannedStep::new(DeployStack, &[]),
        PlannedStep::new(HealthCheck, &[ApplySchema, ConfigureDns, DeployStack]),
        PlannedStep::new(
            Activate,
            &[PlaceDatabase, CreateDatabase, ApplySchema, ConfigureDns, DeployStack, HealthCheck],
        ),
        PlannedStep::new(Notify, &[Activate]),
    ])
}

/// Suspending a tenant: its login is locked and its sessions ended, and its names point at the suspended
/// target when one is configured.
pub fn suspension() -> Plan {
    Plan::new(vec![PlannedStep::new(StepName::LockLogin, &[]), PlannedStep::new(StepName::ParkDns, &[])])
}

/// Resuming a suspended tenant: exactly what suspension did, undone.
pub fn resumption() -> Plan {
    Plan::new(vec![PlannedStep::new(StepName::UnlockLogin, &[]), PlannedStep::new(StepName::RestoreDns, &[])])
}

/// Offboarding, provisioning in reverse: the final dump first (with the login locked, so nothing changes
/// while it is taken), and nothing removed unless it succeeded; then the stack and the DNS records; the
/// database and its login once the stack that used them is gone; the stored password last.
pub fn offboarding() -> Plan {
    use StepName::*;
    Plan::new(vec![
        PlannedStep::new(ArchiveDatabase, &[]),
        PlannedStep::new(DeleteStack, &[ArchiveDatabase]),
        PlannedStep::new(RemoveDns, &[ArchiveDatabase]),
        PlannedStep::new(DropDatabase, &[ArchiveDatabase, DeleteStack]),
        PlannedStep::new(ForgetCredentials, &[DropDatabase]),
    ])
}

/// A plan change: the database is upgraded (when an upgrade script exists) before the new plan is
/// recorded, so a failed upgrade leaves the old plan recorded; the stack learns the new plan last.
pub fn plan_change() -> Plan {
    use StepName::*;
    Plan::new(vec![
        PlannedStep::new(UpgradeSchema, &[]),
        PlannedStep::new(RecordPlan, &[UpgradeSchema]),
        PlannedStep::new(UpdateStack, &[RecordPlan]),
    ])
}

/// A plan change that crosses placement (shared to dedicated, or back) moves the database. A place on the
/// new server is reserved first (no server to be had fails the change with nothing changed); the upgrade
/// runs on the old server while the tenant still serves; then the tenant is suspended (its names parked,
/// its login locked inside the copy), its database copied and checked, and switched; the new plan is
/// recorded, the tenant resumed, its stack told; the old copy is dropped last.
pub fn plan_move() -> Plan {
    use StepName::*;
    Plan::new(vec![
        PlannedStep::new(ReserveServer, &[]),
        PlannedStep::new(UpgradeSchema, &[ReserveServer]),
        PlannedStep::new(ParkDns, &[UpgradeSchema]),
        PlannedStep::new(CopyDatabase, &[UpgradeSchema]),
        PlannedStep::new(SwitchServer, &[CopyDatabase, ParkDns]),
        PlannedStep::new(RecordPlan, &[SwitchServer]),
        PlannedStep::new(UnlockLogin, &[SwitchServer]),
        PlannedStep::new(RestoreDns, &[SwitchServer]),
        PlannedStep::new(UpdateStack, &[RecordPlan]),
        PlannedStep::new(DropOldCopy, &[UnlockLogin, RestoreDns, UpdateStack]),
    ])
}

/// Every flow a worker runs, each a plan of steps.
#[derive(Debug)]
pub struct Flows {
    pub provision: Plan,
    pub suspend: Plan,
    pub resume: Plan,
    pub offboard: Plan,
    pub change_plan: Plan,
    /// A plan change across placement.
    pub move_plan: Plan,
}

impl Default for Flows {
    fn default() -> Self {
        Self {
            provision: provisioning(),
            suspend: suspension(),
            resume: resumption(),
            offboard: offboarding(),
            change_plan: plan_change(),
            move_plan: plan_move(),
        }
    }
}

/// The implementation of a step, by name.
pub fn step(name: StepName) -> Box<dyn Step> {
    match name {
        StepName::CreateDatabase => Box::new(CreateDatabase),
        StepName::ApplySchema => Box::new(ApplySchema),
        StepName::ConfigureDns => Box::new(ConfigureDns),
        StepName::DeployStack => Box::new(DeployStack),
        StepName::HealthCheck => Box::new(HealthCheck),
        StepName::Activate => Box::new(Activate),
        StepName::LockLogin => Box::new(LockLogin),
        StepName::UnlockLogin => Box::new(UnlockLogin),
        StepName::ArchiveDatabase => Box::new(ArchiveDatabase),
        StepName::DeleteStack => Box::new(DeleteStack),
        StepName::RemoveDns => Box::new(RemoveDns),
        StepName::DropDatabase => Box::new(DropDatabase),
        StepName::ForgetCredentials => Box::new(ForgetCredentials),
        StepName::UpgradeSchema => Box::new(UpgradeSchema),
        StepName::RecordPlan => Box::new(RecordPlan),
        StepName::UpdateStack => Box::new(UpdateStack),
        StepName::ParkDns => Box::new(ParkDns),
        StepName::RestoreDns => Box::new(RestoreDns),
        StepName::PlaceDatabase => Box::new(crate::placement::place::PlaceDatabase),
        StepName::ReserveServer => Box::new(crate::placement::moving::ReserveServer),
        StepName::CopyDatabase => Box::new(crate::placement::moving::CopyDatabase),
        StepName::SwitchServer => Box::new(crate::placement::moving::SwitchServer),
        StepName::DropOldCopy => Box::new(crate::placement::moving::DropOldCopy),
        StepName::Notify => Box::new(Notify),
    }
}
