//! `deploy_stack`: the tenant's CloudFormation stack, with parameters from the tenant, its id and outputs
//! stored on the tenant; a failure stores the failing resource and its reason.

use futures::{FutureExt, future::BoxFuture};
use tokio::time::Instant;

use super::{ErrorCode, Step, StepContext, StepDone, StepError, StepName, ownership};
use crate::{infra::stacks::DeployError, names::DatabaseName, store::ResourceKind};

/// The tag every stack Landlord creates carries: the tenant it belongs to.
pub const TENANT_TAG: &str = "landlord:tenant-id";

#[derive(Debug)]
pub struct DeployStack;

const NO_TEMPLATE: &str = "no stack template configured (LANDLORD_STACK_TEMPLATE)";

/// Whether a live stack is the tenant's: it carries the tenant's tag, or the control plane recorded its id
/// for the tenant (stacks made before tags existed).
fn carries_tenant(
    stack: &aws_sdk_cloudformation::types::Stack,
    tenant: &landlord_protocol::TenantId,
    recorded: Option<&str>,
) -> bool {
    let id = tenant.to_string();
    stack.tags().iter().any(|tag| tag.key() == Some(TENANT_TAG) && tag.value() == Some(id.as_str()))
        || (recorded.is_some() && stack.stack_id() == recorded)
}

impl Step for DeployStack {
    fn name(&self) -> StepName {
        StepName::DeployStack
    }

    fn configured_off(&self, deps: &super::Deps) -> Option<String> {
        deps.infra.stacks.is_none().then(|| NO_TEMPLATE.to_owned())
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let infra = &ctx.deps.infra;
            let Some(stacks) = &infra.stacks else {
                return Ok(StepDone::Skipped(NO_TEMPLATE.into()));
            };
            let t = ctx.tenant;
            // Unknown hostnames (no domain, or DNS unreachable) must not fail the stack: DNS never fails provisioning.
            let (host, api) = infra.hostnames(&t.slug).await.ok().flatten().unwrap_or_default();
            let url = |h: &str| {
                if h.is_empty() { String::new() } else { format!("https://{h}") }
            };
            let parameters = [
                ("TenantUrl", url(&host)),
                ("ApiUrl", url(&api)),
                ("DatabaseName", DatabaseName::for_slug(&t.slug).to_string()),
                ("Plan", format!("package-{}-type-{}", t.package_id, t.subscription_type_id)),
                ("Environment", stacks.environment.clone()),
            ];
            let name = stacks.stack_name(t.slug.as_str());
            let token = format!("landlord-{}", t.id.as_uuid().simple());
            let deadline = Instant::now() + infra.stack_deadline;
            let store = &ctx.deps.store;
            let control_plane =
                |e: crate::store::StoreError| StepError::transient(ErrorCode::ControlPlane, e.to_string());
            // A live stack of that name is the tenant's only if Landlord claimed it, it carries the tenant's
            // tag, or the control plane recorded its id for this tenant (stacks from before claims existed);
            // anything else is someone else's.
            let existing = stacks.describe(&name).await?;
            let live =
                existing.as_ref().filter(|s| s.stack_status().is_some_and(|st| st.as_str() != "DELETE_COMPLETE"));
            let recorded = store.tenant(&t.id).await?.and_then(|row| row.stack_id);
            let known = live.is_some_and(|s| carries_tenant(s, &t.id, recorded.as_deref()));
            // Every stack Landlord creates carries the tag, so a live one without it is not Landlord's even
            // when a claim exists (the name may have been taken between the claim and the creation).
            if live.is_some() && !known {
                return Err(ownership::not_ours(ResourceKind::Stack, &name));
            }
            ownership::claim(ctx, ResourceKind::Stack, &name, false).await?;
            let tags = [(TENANT_TAG, t.id.to_string()), ("landlord:managed-by", "landlord".to_owned())];
            match stacks.deploy(&name, &parameters, &tags, &token, ctx.alive, deadline).await {
                Ok(d) => {
                    store.save_stack(&t.id, Some(&d.stack_id), Some(&d.outputs), None).await.map_err(control_plane)?;
                    let keys = d
                        .outputs
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    Ok(StepDone::Done(format!("stack {name} is ready (outputs: {keys})")))
                }
                Err(DeployError::Failed(f)) => {
                    store
                        .save_stack(&t.id, f.stack_id.as_deref(), None, Some(&f.reason))
                        .await
                        .map_err(control_plane)?;
                    Err(StepError::permanent(ErrorCode::StackFailed, f.reason))
                }
                Err(DeployError::Step(e)) => Err(e),
            }
        }
        .boxed()
    }

    fn undo<'a>(&'a self, ctx: &'a StepContext<'a>) -> Option<BoxFuture<'a, Result<StepDone, StepError>>> {
        Some(
            async move {
                let infra = &ctx.deps.infra;
                let Some(stacks) = &infra.stacks else {
                    return Ok(StepDone::Skipped("no stack template configured".into()));
                };
                let name = stacks.stack_name(ctx.tenant.slug.as_str());
                let not_ours =
                    || Ok(StepDone::Skipped(format!("stack {name} was not created by Landlord; left as it is")));
                if !ownership::is_ours(ctx, ResourceKind::Stack, &name).await? {
                    return not_ours();
                }
                // The claim says Landlord meant to create it; the stack itself must say it is the tenant's too,
                // or it was made by someone else between the claim and the creation.
                let recorded = ctx.deps.store.tenant(&ctx.tenant.id).await?.and_then(|row| row.stack_id);
                if let Some(stack) = stacks.describe(&name).await?
                    && stack.stack_status().is_some_and(|st| st.as_str() != "DELETE_COMPLETE")
                    && !carries_tenant(&stack, &ctx.tenant.id, recorded.as_deref())
                {
                    return not_ours();
                }
                stacks.delete_and_wait(&name, ctx.alive, Instant::now() + infra.stack_deadline).await?;
                ownership::release(ctx, ResourceKind::Stack, &name).await?;
                Ok(StepDone::Done(format!("stack {name} deleted")))
            }
            .boxed(),
        )
    }
}
