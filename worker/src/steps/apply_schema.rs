//! `apply_schema`: the plan's script, split into statements and run in order in the tenant database.

use futures::{FutureExt, future::BoxFuture};

use super::{ErrorCode, Step, StepContext, StepDone, StepError, StepName};
use crate::{
    names::{DatabaseName, LoginName},
    scripts::split,
    tenant_db::Applied,
};

#[derive(Debug)]
pub struct ApplySchema;

impl Step for ApplySchema {
    fn name(&self) -> StepName {
        StepName::ApplySchema
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let server = &ctx.server().await?;
            let script = ctx
                .deps
                .scripts
                .load(server.dialect(), ctx.tenant.package_id, ctx.tenant.subscription_type_id)
                .await
                .map_err(|e| {
                    if e.is_permanent() {
                        StepError::permanent(ErrorCode::ScriptMissing, e.to_string())
                    } else {
                        StepError::transient(ErrorCode::ScriptUnreadable, e.to_string())
                    }
                })?;
            let statements = split(&script.sql, server.dialect())
                .map_err(|e| StepError::permanent(ErrorCode::ScriptInvalid, format!("{}: {e}", script.location)))?;
            let db = DatabaseName::for_slug(&ctx.tenant.slug);
            let login = LoginName::for_slug(&ctx.tenant.slug);
            // The script runs as the tenant's own login, with the password create_database recorded.
            let password = ctx.deps.store.database_password(&ctx.tenant.id).await?.ok_or_else(|| {
                StepError::permanent(
                    ErrorCode::NotReady,
                    format!("no password is recorded for login {login}; retry the tenant"),
                )
            })?;
            // Half-way through the script is a checkpoint (the chaos suite stops a worker there).
            let checkpoint = ctx.checkpoint;
            let before = move |i: usize, total: usize| -> futures::future::BoxFuture<'static, ()> {
                if i == total / 2 { checkpoint(StepName::ApplySchema, "middle") } else { Box::pin(async {}) }
            };
            Ok(match server.apply_script(&db, &login, &password, &script, &statements, &before).await? {
                Applied::Now { statements } => {
                    StepDone::Done(format!("{} applied: {statements} statements", script.name))
                }
                Applied::Already => StepDone::Done(format!("{} was already applied", script.name)),
            })
        }
        .boxed()
    }
}
