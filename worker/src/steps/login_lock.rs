//! `lock_login` and `unlock_login`: a suspended tenant's database login is locked and its open sessions
//! ended; resuming unlocks it. Both are safe to repeat. The login is the one Landlord made for the tenant
//! (its name follows from the subdomain); one that is not Landlord's is never touched.

use futures::{FutureExt, future::BoxFuture};

use super::{Step, StepContext, StepDone, StepError, StepName, ownership};
use crate::{names::LoginName, store::ResourceKind};

#[derive(Debug)]
pub struct LockLogin;

#[derive(Debug)]
pub struct UnlockLogin;

async fn set_locked(ctx: &StepContext<'_>, locked: bool) -> Result<StepDone, StepError> {
    let login = LoginName::for_slug(&ctx.tenant.slug);
    if !ownership::is_ours(ctx, ResourceKind::Login, login.as_str()).await? {
        return Err(ownership::not_ours(ResourceKind::Login, login.as_str()));
    }
    ctx.server().await?.set_login_locked(&login, locked).await?;
    Ok(StepDone::Done(if locked {
        format!("login {login} locked and its sessions ended")
    } else {
        format!("login {login} unlocked")
    }))
}

impl Step for LockLogin {
    fn name(&self) -> StepName {
        StepName::LockLogin
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        set_locked(ctx, true).boxed()
    }
}

impl Step for UnlockLogin {
    fn name(&self) -> StepName {
        StepName::UnlockLogin
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        set_locked(ctx, false).boxed()
    }
}
