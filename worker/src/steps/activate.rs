//! `activate`: the tenant becomes `active`.

use futures::{FutureExt, future::BoxFuture};
use landlord_protocol::TenantStatus;

use super::{Step, StepContext, StepDone, StepError};

#[derive(Debug)]
pub struct Activate;

impl Step for Activate {
    fn name(&self) -> &'static str {
        "activate"
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            ctx.deps
                .store
                .set_status(&ctx.tenant.id, TenantStatus::Active, None)
                .await
                .map_err(|e| StepError::transient("control_plane", e.to_string()))?;
            Ok(StepDone::Done(format!("tenant {} is active", ctx.tenant.slug)))
        }
        .boxed()
    }
}
