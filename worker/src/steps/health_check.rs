//! `health_check`: the tenant answers 2xx at its health URL — `LANDLORD_HEALTH_URL` (with `{hostname}`
//! replaced) or the stack's `HealthUrl` output.

use futures::{FutureExt, future::BoxFuture};

use super::{ErrorCode, Step, StepContext, StepDone, StepError, StepName};

#[derive(Debug)]
pub struct HealthCheck;

impl Step for HealthCheck {
    fn name(&self) -> StepName {
        StepName::HealthCheck
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let infra = &ctx.deps.infra;
            let tenant = ctx
                .deps
                .store
                .tenant(&ctx.tenant.id)
                .await
                .map_err(|e| StepError::transient(ErrorCode::ControlPlane, e.to_string()))?
                .ok_or_else(|| {
                    StepError::permanent(ErrorCode::NoTenant, "the tenant disappeared from the control plane")
                })?;
            let from_stack = tenant
                .stack_outputs
                .as_deref()
                .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
                .and_then(|o| o.get("HealthUrl").and_then(|v| v.as_str()).map(str::to_owned));
            let configured = infra
                .health_url
                .as_deref()
                .map(|t| t.replace("{hostname}", tenant.hostname.as_deref().unwrap_or_default()));
            let Some(url) = configured.or(from_stack) else {
                return Ok(StepDone::Skipped(
                    "no health URL (set LANDLORD_HEALTH_URL or give the stack a HealthUrl output)".into(),
                ));
            };
            let status = infra.health.wait_healthy(&url, ctx.alive).await?;
            Ok(StepDone::Done(format!("{url} answered {status}")))
        }
        .boxed()
    }
}
