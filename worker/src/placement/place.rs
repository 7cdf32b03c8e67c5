//! `place_database`, the first step of provisioning: chooses the server the tenant's database goes on
//! and records it before anything is created there, so a resumed run creates it on the same server. A
//! plan's `placement` says how: `shared`, the least-loaded open shared server of its engine with room;
//! `dedicated`, a server of the tenant's own. When no server can be had, the run waits for a person.

use futures::{FutureExt, future::BoxFuture};
use landlord_protocol::Placement;

use crate::{
    error::{ErrorCode, StepError},
    steps::{Step, StepContext, StepDone, StepName},
    store::entities::db_server,
};

#[derive(Debug)]
pub struct PlaceDatabase;

fn placed_on(server: &db_server::Model) -> String {
    format!(
        "placed on {} database server {} ({} of {} places taken)",
        server.kind, server.name, server.placed, server.capacity
    )
}

async fn place(ctx: &StepContext<'_>) -> Result<StepDone, StepError> {
    let (store, t) = (&ctx.deps.store, ctx.tenant);
    if let Some(server) = store.placement_of(&t.id).await? {
        return Ok(StepDone::Done(placed_on(&server)));
    }
    let plan = ctx.deps.plans.get(t.package_id, t.subscription_type_id);
    let (placement, engine) = ctx.deps.servers.placement_of(plan);
    let plan_name =
        plan.map_or_else(|| format!("package {} type {}", t.package_id, t.subscription_type_id), |p| p.name.clone());
    match placement {
        Placement::Shared => {
            if let Some(server) = store.place_shared(&t.id, engine).await? {
                return Ok(StepDone::Done(placed_on(&server)));
            }
            if let Some(stacks) = &ctx.deps.templates.pool {
                super::templates::provide_shared(ctx, stacks, engine).await?;
                if let Some(server) = store.place_shared(&t.id, engine).await? {
                    return Ok(StepDone::Done(format!("{} (made from LANDLORD_POOL_TEMPLATE)", placed_on(&server))));
                }
                // Filled by others before this tenant got there: the next attempt makes another.
                return Err(StepError::transient(
                    ErrorCode::NoRoom,
                    format!("the new shared {} server filled up before this tenant was placed", engine.as_str()),
                ));
            }
            Err(StepError::awaiting_operator(
                ErrorCode::NoRoom,
                format!(
                    "every open shared {} database server is full, draining or closed; register one \
                     (`landlord servers register`) or give one more capacity, and the tenant is placed there",
                    engine.as_str()
                ),
            ))
        }
        Placement::Dedicated if ctx.deps.templates.dedicated.is_some() => {
            let stacks = ctx.deps.templates.dedicated.as_ref().expect("checked");
            let server =
                super::templates::provide_dedicated(ctx, stacks, engine, super::templates::Target::Place).await?;
            Ok(StepDone::Done(format!("{} (made from LANDLORD_DEDICATED_TEMPLATE)", placed_on(&server))))
        }
        Placement::Dedicated => Err(StepError::awaiting_operator(
            ErrorCode::DedicatedServerNeeded,
            format!(
                "plan {plan_name} needs a dedicated {} database server; hand one over with \
                 `landlord tenants hand-over {} < file-with-its-admin-URL` (POST /v1/tenants/{}/database)",
                engine.as_str(),
                t.id,
                t.id
            ),
        )),
    }
}

impl Step for PlaceDatabase {
    fn name(&self) -> StepName {
        StepName::PlaceDatabase
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        place(ctx).boxed()
    }
}
