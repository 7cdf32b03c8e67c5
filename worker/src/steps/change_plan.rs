//! The steps of a plan change: `upgrade_schema` runs the upgrade script between the two plans when there
//! is one, `record_plan` makes the new plan the tenant's, and `update_stack` gives the stack its new `Plan`
//! parameter. The run's [`TenantPlan`](super::TenantPlan) carries the new plan and the one it replaces.

use futures::{FutureExt, future::BoxFuture};

use super::{DeployStack, ErrorCode, Step, StepContext, StepDone, StepError, StepName};
use crate::{
    names::{DatabaseName, LoginName},
    scripts::{ScriptError, split},
    store::ResourceKind,
    tenant_db::Applied,
};

#[derive(Debug)]
pub struct UpgradeSchema;
#[derive(Debug)]
pub struct RecordPlan;
#[derive(Debug)]
pub struct UpdateStack;

async fn upgrade(ctx: &StepContext<'_>) -> Result<StepDone, StepError> {
    let t = ctx.tenant;
    let to = (t.package_id, t.subscription_type_id);
    let Some(from) = t.previous else {
        return Ok(StepDone::Skipped("the plan was already recorded; nothing to upgrade".into()));
    };
    let db = DatabaseName::for_slug(&t.slug);
    if !super::ownership::is_ours(ctx, ResourceKind::Database, db.as_str()).await? {
        return Ok(StepDone::Skipped(format!("no database {db} of Landlord's to upgrade")));
    }
    let server = &ctx.server().await?;
    let script = match ctx.deps.scripts.load_upgrade(server.dialect(), from, to).await {
        Ok(script) => script,
        Err(ScriptError::Missing(looked)) => {
            return Ok(StepDone::Skipped(format!("no upgrade script between the plans (looked for {looked})")));
        }
        Err(e) if e.is_permanent() => return Err(StepError::permanent(ErrorCode::ScriptInvalid, e.to_string())),
        Err(e) => return Err(StepError::transient(ErrorCode::ScriptUnreadable, e.to_string())),
    };
    let statements = split(&script.sql, server.dialect())
        .map_err(|e| StepError::permanent(ErrorCode::ScriptInvalid, format!("{}: {e}", script.location)))?;
    let login = LoginName::for_slug(&t.slug);
    let password = ctx.deps.store.database_password(&t.id).await?.ok_or_else(|| {
        StepError::permanent(ErrorCode::NotReady, format!("no password is recorded for login {login}"))
    })?;
    let checkpoint = ctx.checkpoint;
    let before = move |i: usize, total: usize| -> BoxFuture<'static, ()> {
        if i == total / 2 { checkpoint(StepName::UpgradeSchema, "middle") } else { Box::pin(async {}) }
    };
    Ok(match server.apply_upgrade(&db, &login, &password, &script, &statements, &before).await? {
        Applied::Now { statements } => StepDone::Done(format!("{} applied: {statements} statements", script.name)),
        Applied::Already => StepDone::Done(format!("{} was already applied", script.name)),
    })
}

impl Step for UpgradeSchema {
    fn name(&self) -> StepName {
        StepName::UpgradeSchema
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        upgrade(ctx).boxed()
    }
}

impl Step for RecordPlan {
    fn name(&self) -> StepName {
        StepName::RecordPlan
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let t = ctx.tenant;
            ctx.deps.store.set_plan(&t.id, t.package_id, t.subscription_type_id).await?;
            Ok(StepDone::Done(format!("plan package {} type {} recorded", t.package_id, t.subscription_type_id)))
        }
        .boxed()
    }
}

impl Step for UpdateStack {
    fn name(&self) -> StepName {
        StepName::UpdateStack
    }

    /// The provisioning step again: it updates a stack that exists (no change is success) with the
    /// parameters of the tenant as it is now, its new plan included.
    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        DeployStack.run(ctx)
    }
}
