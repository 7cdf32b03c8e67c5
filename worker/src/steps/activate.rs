//! `activate`: the last check before a tenant goes live. It confirms the control plane holds what the
//! tenant's application needs (its database and login); the run's ending then marks the tenant `active`
//! in the same transaction that records the run finished, so nobody sees an active tenant whose run
//! still looks unfinished.

use futures::{FutureExt, future::BoxFuture};

use super::{ErrorCode, Step, StepContext, StepDone, StepError, StepName};

#[derive(Debug)]
pub struct Activate;

impl Step for Activate {
    fn name(&self) -> StepName {
        StepName::Activate
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let row = ctx
                .deps
                .store
                .tenant(&ctx.tenant.id)
                .await?
                .ok_or_else(|| StepError::permanent(ErrorCode::TenantMissing, "the tenant's record is gone"))?;
            if row.db_name.is_none() || row.db_login.is_none() {
                return Err(StepError::permanent(
                    ErrorCode::NotReady,
                    format!("tenant {} has no database recorded; retry it to create one", ctx.tenant.slug),
                ));
            }
            Ok(StepDone::Done(format!("tenant {} is ready to go live", ctx.tenant.slug)))
        }
        .boxed()
    }
}
