//! Touch only what Landlord created. Before a step creates a database, login, DNS record or stack, it
//! claims the name for its tenant in the control plane; a resource of that name that already exists
//! without a claim was made by someone else, and the step stops with a clear, permanent error that changes
//! nothing. Undo removes only what is claimed for the tenant.

use super::{ErrorCode, StepContext, StepError};
use crate::store::ResourceKind;

/// Claims `name` for the run's tenant, or refuses it when it `exists` and is not Landlord's.
pub async fn claim(ctx: &StepContext<'_>, kind: ResourceKind, name: &str, exists: bool) -> Result<(), StepError> {
    let store = &ctx.deps.store;
    let tenant = ctx.tenant.id;
    // A resource that does not exist yet is claimed at once (the claim answers with its owner); one that
    // exists is Landlord's only if it was claimed before.
    let owner = if exists {
        store.resource_owner(kind, name).await?.ok_or_else(|| not_ours(kind, name))?
    } else {
        store.claim_resource(&tenant, kind, name).await?
    };
    if owner == tenant {
        Ok(())
    } else {
        Err(StepError::permanent(
            ErrorCode::ResourceConflict,
            format!("{kind} {name} was created by Landlord for another tenant ({owner}); it is left as it is"),
        ))
    }
}

/// Refuses an existing resource nobody claimed, without claiming anything (to check several first).
pub async fn refuse_unclaimed(
    ctx: &StepContext<'_>,
    kind: ResourceKind,
    name: &str,
    exists: bool,
) -> Result<(), StepError> {
    if exists && ctx.deps.store.resource_owner(kind, name).await?.is_none() {
        return Err(not_ours(kind, name));
    }
    Ok(())
}

/// Whether `name` is claimed for the run's tenant (so its undo may remove it).
pub async fn is_ours(ctx: &StepContext<'_>, kind: ResourceKind, name: &str) -> Result<bool, StepError> {
    Ok(ctx.deps.store.resource_owner(kind, name).await? == Some(ctx.tenant.id))
}

/// Forgets the claim once the resource is removed.
pub async fn release(ctx: &StepContext<'_>, kind: ResourceKind, name: &str) -> Result<(), StepError> {
    Ok(ctx.deps.store.release_resource(&ctx.tenant.id, kind, name).await?)
}

/// The error for a resource that carries the tenant's name but was not made by Landlord.
pub fn not_ours(kind: ResourceKind, name: &str) -> StepError {
    StepError::permanent(
        ErrorCode::ResourceNotOurs,
        format!(
            "{kind} {name} already exists and was not created by Landlord; Landlord will not adopt, change or \
             delete it. Remove or rename it (or give the tenant another subdomain), then retry"
        ),
    )
}
