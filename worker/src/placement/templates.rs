//! Database servers made from CloudFormation templates: a new shared server when every one is full
//! (`LANDLORD_POOL_TEMPLATE`), a dedicated tenant's own server (`LANDLORD_DEDICATED_TEMPLATE`). A server
//! is registered in state `creating` before its stack is made, under a name every worker derives the same
//! way, so many tenants hitting the limit together make one server (the unique name lets one insert win);
//! whichever worker finds a `creating` server drives its stack to the end (deploying is idempotent) and
//! opens it with the `AdminUrl` output, so a worker killed meanwhile leaves nothing stuck.
//!
//! The template gets two parameters, `ServerName` and `Environment`, and must output `AdminUrl` (an
//! administrator's `mysql://…` or `postgres://…` URL); an output `Capacity` sets how many tenants a shared
//! server takes (else `LANDLORD_TENANT_DB_CAPACITY`).

use landlord_protocol::{DbEngine, Placement};
use secrecy::SecretString;
use tokio::time::Instant;

use crate::{
    error::{ErrorCode, StepError},
    infra::stacks::{DeployError, Stacks},
    steps::StepContext,
    store::{NewServer, ServerName, ServerState, entities::db_server},
};

/// The templates a worker was given.
#[derive(Debug, Default)]
pub struct ServerTemplates {
    pub pool: Option<Stacks>,
    pub dedicated: Option<Stacks>,
    /// Places on a pool server whose template gives no `Capacity`.
    pub default_capacity: u32,
}

/// Makes (or finishes making) the next shared server of `engine` from the pool template and opens it.
/// Returns once it is open; the caller places the tenant.
pub async fn provide_shared(ctx: &StepContext<'_>, stacks: &Stacks, engine: DbEngine) -> Result<(), StepError> {
    let store = &ctx.deps.store;
    let prefix = format!("pool-{}-", engine.as_str());
    let servers = store.servers().await?;
    let ours: Vec<&db_server::Model> = servers.iter().filter(|s| s.name.starts_with(&prefix)).collect();
    // One in the making is finished first, by whoever comes: no second server while one is on its way.
    let row = match ours.iter().find(|s| s.state == ServerState::Creating.as_str()) {
        Some(row) => (*row).clone(),
        None => {
            let name = ServerName::parse(&format!("{prefix}{}", ours.len() + 1)).map_err(|e| {
                StepError::permanent(ErrorCode::ServerTemplate, format!("cannot name a new shared server: {e}"))
            })?;
            let new = NewServer {
                name: &name,
                engine,
                admin_url: None,
                kind: Placement::Shared,
                capacity: ctx.deps.templates.default_capacity,
                state: ServerState::Creating,
                stack_id: None,
            };
            match store.register_server(new).await? {
                Some(row) => {
                    tracing::info!(server = %name, "every shared server is full; making a new one from LANDLORD_POOL_TEMPLATE");
                    row
                }
                // Another worker registered it a moment ago: finish it together.
                None => store.server_named(name.as_str()).await?.ok_or_else(|| {
                    StepError::transient(ErrorCode::NotReady, format!("database server {name} is being registered"))
                })?,
            }
        }
    };
    finish(ctx, stacks, &row).await
}

/// What the server made for a tenant is for: its first placement, or the move of its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Place,
    Move,
}

/// Makes (or finishes making) the tenant's own server from the dedicated template and places the tenant on it.
pub async fn provide_dedicated(
    ctx: &StepContext<'_>,
    stacks: &Stacks,
    engine: DbEngine,
    target: Target,
) -> Result<db_server::Model, StepError> {
    let store = &ctx.deps.store;
    let name: String = format!("dedicated-{}", ctx.tenant.slug.as_str()).chars().take(63).collect();
    let name = ServerName::parse(name.trim_end_matches('-')).map_err(|e| {
        StepError::permanent(ErrorCode::ServerTemplate, format!("cannot name the tenant's server: {e}"))
    })?;
    let row = match store.server_named(name.as_str()).await? {
        Some(row) => row,
        None => {
            let new = NewServer {
                name: &name,
                engine,
                admin_url: None,
                kind: Placement::Dedicated,
                capacity: 1,
                state: ServerState::Creating,
                stack_id: None,
            };
            match store.register_server(new).await? {
                Some(row) => row,
                None => store.server_named(name.as_str()).await?.ok_or_else(|| {
                    StepError::transient(ErrorCode::NotReady, format!("database server {name} is being registered"))
                })?,
            }
        }
    };
    if row.kind != Placement::Dedicated.as_str() || row.placed > 0 {
        return Err(StepError::permanent(
            ErrorCode::ResourceConflict,
            format!("a database server named {name} is registered already and is not this tenant's to take"),
        ));
    }
    finish(ctx, stacks, &row).await?;
    let taken = match target {
        Target::Place => store.place_on(&ctx.tenant.id, &row.id).await?,
        Target::Move => store.reserve_on(&ctx.tenant.id, &row.id).await?,
    };
    if !taken {
        return Err(StepError::transient(ErrorCode::NotReady, format!("the tenant could not be placed on {name} yet")));
    }
    Ok(store.server(&row.id).await?.unwrap_or(row))
}

/// Deploys the server's stack (creating it, or monitoring the one in progress) and opens the server with
/// its `AdminUrl` output; nothing to do for a server that is open already.
async fn finish(ctx: &StepContext<'_>, stacks: &Stacks, row: &db_server::Model) -> Result<(), StepError> {
    if row.state != ServerState::Creating.as_str() {
        return Ok(());
    }
    let stack = format!("landlord-db-{}-{}", row.name, stacks.environment);
    let params = [("ServerName", row.name.clone()), ("Environment", stacks.environment.clone())];
    let tags = [("landlord:server", row.name.clone())];
    let deadline = Instant::now() + ctx.deps.infra.stack_deadline;
    let token = format!("landlord-{}", &row.id[..8]);
    let deployed = stacks.deploy(&stack, &params, &tags, &token, ctx.alive, deadline).await.map_err(|e| match e {
        DeployError::Step(e) => e,
        DeployError::Failed(f) => StepError::permanent(ErrorCode::ServerTemplate, f.reason),
    })?;
    let url = deployed.outputs.get("AdminUrl").and_then(|v| v.as_str()).ok_or_else(|| {
        StepError::permanent(ErrorCode::ServerTemplate, format!("stack {stack} has no AdminUrl output"))
    })?;
    let engine = super::check_admin_url(&SecretString::from(url.to_owned())).map_err(|e| {
        StepError::permanent(ErrorCode::ServerTemplate, format!("stack {stack}'s AdminUrl output: {e}"))
    })?;
    if engine.as_str() != row.engine {
        return Err(StepError::permanent(
            ErrorCode::ServerTemplate,
            format!("stack {stack}'s AdminUrl is not a {} URL (mysql://… or postgres://…)", row.engine),
        ));
    }
    let capacity = deployed.outputs.get("Capacity").and_then(|v| v.as_str()).and_then(|c| c.parse::<i32>().ok());
    let url = SecretString::from(url.to_owned());
    // Landlord must be able to use it before any tenant is placed there.
    let server = crate::tenant_db::TenantDbServer::new(&url).await?;
    server.check().await.map_err(|mut e| {
        e.message = format!("the server stack {stack} made cannot be used yet: {}", e.message);
        e
    })?;
    ctx.deps.store.open_created_server(&row.id, &url, &deployed.stack_id, capacity).await?;
    tracing::info!(server = %row.name, %stack, "database server made from its template and opened");
    Ok(())
}
