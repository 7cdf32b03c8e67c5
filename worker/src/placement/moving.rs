//! Moving a tenant's database when a plan change crosses placement (shared to dedicated and back):
//! `reserve_server` takes a place on the server the new plan calls for, `copy_database` locks the tenant's
//! login, dumps its database and restores it there and checks every table's rows, `switch_server` makes
//! the copy the tenant's database, and `drop_old_copy` removes the old one last. Each step reads what the
//! control plane recorded, so a resumed move continues where it stopped and a repeated step does nothing
//! twice; before the switch, undoing the steps leaves the tenant where it was.

use futures::{FutureExt, future::BoxFuture};
use landlord_protocol::{DbEngine, Placement};

use super::templates::{self, Target};
use crate::{
    error::{ErrorCode, StepError},
    names::{DatabaseName, LoginName},
    steps::{Step, StepContext, StepDone, StepName, ownership},
    store::{ResourceKind, entities::db_server},
};

#[derive(Debug)]
pub struct ReserveServer;
#[derive(Debug)]
pub struct CopyDatabase;
#[derive(Debug)]
pub struct SwitchServer;
#[derive(Debug)]
pub struct DropOldCopy;

/// Whether the tenant's database must move for its plan (the run's new plan): it is on a server of the
/// other kind. The engine never changes: the plan's scripts are written for one.
pub async fn must_move(ctx: &StepContext<'_>) -> Result<Option<(Placement, DbEngine)>, StepError> {
    let t = ctx.tenant;
    let (placement, engine) = ctx.deps.servers.placement_of(ctx.deps.plans.get(t.package_id, t.subscription_type_id));
    let Some(current) = ctx.deps.store.placement_of(&t.id).await? else {
        // Never placed (made before the registry): it is on the default server, a shared one.
        return Ok((placement == Placement::Dedicated).then_some((placement, engine)));
    };
    if current.kind == placement.as_str() {
        return Ok(None);
    }
    if current.engine != engine.as_str() {
        return Err(StepError::permanent(
            ErrorCode::MoveFailed,
            format!(
                "the new plan's database is {} and the tenant's is {} on server {}; a plan change does not \
                 change the database engine",
                engine.as_str(),
                current.engine,
                current.name
            ),
        ));
    }
    Ok(Some((placement, engine)))
}

fn described(server: &db_server::Model) -> String {
    format!("{} database server {}", server.kind, server.name)
}

async fn reserve(ctx: &StepContext<'_>) -> Result<StepDone, StepError> {
    let (store, t) = (&ctx.deps.store, ctx.tenant);
    // The old copy of an earlier move that stopped after its switch goes first: the switch needs none.
    if store.moved_from(&t.id).await?.is_some() {
        drop_old(ctx).await?;
    }
    let needed = must_move(ctx).await?;
    if let Some(server) = store.moving_to(&t.id).await? {
        if needed.is_some_and(|(placement, _)| placement.as_str() == server.kind) {
            return Ok(StepDone::Done(format!("a place is reserved on {}", described(&server))));
        }
        // Reserved by a move this plan no longer calls for (an earlier change that was not rolled back):
        // given up, with anything copied there.
        undo_copy(ctx).await?;
        store.release_reservation(&t.id).await?;
    }
    let Some((placement, engine)) = needed else {
        return Ok(StepDone::Skipped("the tenant's database is on a server of the kind its plan calls for".into()));
    };
    let server = match placement {
        Placement::Shared => match store.reserve_shared(&t.id, engine).await? {
            Some(server) => server,
            None => match &ctx.deps.templates.pool {
                Some(stacks) => {
                    templates::provide_shared(ctx, stacks, engine).await?;
                    store.reserve_shared(&t.id, engine).await?.ok_or_else(|| {
                        StepError::transient(
                            ErrorCode::NoRoom,
                            format!("the new shared {} server filled up before this tenant's move", engine.as_str()),
                        )
                    })?
                }
                None => {
                    return Err(StepError::permanent(
                        ErrorCode::NoRoom,
                        format!(
                            "every open shared {} database server is full, draining or closed, so the tenant \
                             stays where it is; register one or give one more capacity, then change the plan again",
                            engine.as_str()
                        ),
                    ));
                }
            },
        },
        Placement::Dedicated => match &ctx.deps.templates.dedicated {
            Some(stacks) => templates::provide_dedicated(ctx, stacks, engine, Target::Move).await?,
            None => {
                return Err(StepError::permanent(
                    ErrorCode::DedicatedServerNeeded,
                    format!(
                        "the new plan needs a dedicated {} database server, so the tenant stays where it is; \
                         hand one over with `landlord tenants hand-over {}` (POST /v1/tenants/{}/database), \
                         then change the plan again",
                        engine.as_str(),
                        t.id,
                        t.id
                    ),
                ));
            }
        },
    };
    Ok(StepDone::Done(format!("a place is reserved on {}", described(&server))))
}

async fn copy(ctx: &StepContext<'_>) -> Result<StepDone, StepError> {
    let (store, t) = (&ctx.deps.store, ctx.tenant);
    let Some(target_row) = store.moving_to(&t.id).await? else {
        return nothing_reserved(ctx, "nothing to copy").await;
    };
    let db = DatabaseName::for_slug(&t.slug);
    let login = LoginName::for_slug(&t.slug);
    if !ownership::is_ours(ctx, ResourceKind::Database, db.as_str()).await? {
        return Err(ownership::not_ours(ResourceKind::Database, db.as_str()));
    }
    let password = store.database_password(&t.id).await?.ok_or_else(|| {
        StepError::permanent(ErrorCode::NotReady, format!("no password is recorded for login {login}"))
    })?;
    let (source, target) = (ctx.server().await?, ctx.deps.servers.get(&target_row).await?);
    let started = store.tenant(&t.id).await?.is_some_and(|row| row.move_copy_started);
    if !started && (target.database_exists(&db).await? || target.login_exists(&login).await?) {
        return Err(StepError::permanent(
            ErrorCode::ResourceNotOurs,
            format!(
                "database {db} or login {login} already exists on database server {} and was not made by \
                 Landlord; the tenant stays where it is. Remove them there, then change the plan again",
                target_row.name
            ),
        ));
    }
    // Scheduled events run whatever the login's state and would change rows after the dump was taken.
    let events = source.scheduled_events(&db).await?;
    if events > 0 {
        return Err(StepError::permanent(
            ErrorCode::MoveFailed,
            format!(
                "database {db} has {events} enabled scheduled event(s), which keep changing it while it is \
                 copied; the tenant stays where it is. Disable them (ALTER EVENT … DISABLE), change the plan \
                 again, and enable them on the new server"
            ),
        ));
    }
    // Nothing may change while it is copied: the login is locked and its sessions ended first.
    source.set_login_locked(&login, true).await?;
    store.mark_copy_started(&t.id, true).await?;
    // A copy an earlier attempt left half-restored is replaced whole.
    target.drop_db(&db).await?;
    target.create_database(&db, &login, &password).await?;
    ctx.alive.touch().await;
    source.copy_to(&target, &db, &login, &password, ctx.alive).await?;
    (ctx.checkpoint)(StepName::CopyDatabase, "restored").await;
    let (before, after) = (source.table_rows(&db).await?, target.table_rows(&db).await?);
    if before != after {
        let tables: std::collections::BTreeSet<_> = before.keys().chain(after.keys()).collect();
        let differ: Vec<String> = tables
            .into_iter()
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| {
                let (here, there) = (before.get(k).unwrap_or(&0), after.get(k).unwrap_or(&0));
                format!("{}.{}: {here} here, {there} there", k.0, k.1)
            })
            .collect();
        return Err(StepError::permanent(
            ErrorCode::MoveFailed,
            format!("the copy of {db} on {} does not hold the same rows ({})", target_row.name, differ.join("; ")),
        ));
    }
    let rows: i64 = after.values().sum();
    Ok(StepDone::Done(format!(
        "database {db} copied to {} ({} tables, {rows} rows, every table's count checked)",
        described(&target_row),
        after.len()
    )))
}

/// No place is reserved: right when the plan needs no move, an error when it does (a rollback that stopped
/// half-way freed it), so the new plan is never recorded on a server of the wrong kind.
async fn nothing_reserved(ctx: &StepContext<'_>, what: &str) -> Result<StepDone, StepError> {
    if must_move(ctx).await?.is_none() {
        return Ok(StepDone::Skipped(format!("no move is under way; {what}")));
    }
    Err(StepError::permanent(
        ErrorCode::MoveFailed,
        "the new plan needs the database on another server, but no place is reserved there any more (an \
         earlier attempt was rolled back); the tenant stays where it is: change the plan again",
    ))
}

/// Before the switch: the copy on the reserved server is dropped (with its login) and the tenant's login
/// on its own server unlocked, so a failed move leaves the tenant as it was.
async fn undo_copy(ctx: &StepContext<'_>) -> Result<StepDone, StepError> {
    let (store, t) = (&ctx.deps.store, ctx.tenant);
    let db = DatabaseName::for_slug(&t.slug);
    let login = LoginName::for_slug(&t.slug);
    let Some(row) = store.tenant(&t.id).await? else { return Ok(StepDone::Skipped("no tenant".into())) };
    let mut done = Vec::new();
    // The tenant serves again first, whatever becomes of the copy.
    if row.moving_to.is_some() {
        ctx.server().await?.set_login_locked(&login, false).await?;
        done.push(format!("login {login} unlocked"));
    }
    if row.move_copy_started
        && let Some(target_row) = store.moving_to(&t.id).await?
    {
        ctx.deps.servers.get(&target_row).await?.drop_database(&db, &login).await?;
        store.mark_copy_started(&t.id, false).await?;
        done.push(format!("the copy on {} dropped", target_row.name));
    }
    Ok(if done.is_empty() {
        StepDone::Skipped("the database was switched already; nothing to undo".into())
    } else {
        StepDone::Done(done.join(" and "))
    })
}

async fn switch(ctx: &StepContext<'_>) -> Result<StepDone, StepError> {
    let (store, t) = (&ctx.deps.store, ctx.tenant);
    let Some(target) = store.moving_to(&t.id).await? else {
        return match store.moved_from(&t.id).await? {
            Some(old) => Ok(StepDone::Done(format!("switched already; the old copy waits on {}", old.name))),
            None => nothing_reserved(ctx, "nothing to switch").await,
        };
    };
    if !store.switch_server(&t.id).await? {
        return Err(StepError::permanent(
            ErrorCode::MoveFailed,
            format!("the move to {} cannot be switched: its copy was not made by this run", target.name),
        ));
    }
    Ok(StepDone::Done(format!("the tenant's database is now the one on {}", described(&target))))
}

/// Drops the old copy and its login on the server the tenant moved from, and frees its place there.
async fn drop_old(ctx: &StepContext<'_>) -> Result<StepDone, StepError> {
    let (store, t) = (&ctx.deps.store, ctx.tenant);
    let Some(old) = store.moved_from(&t.id).await? else {
        return Ok(StepDone::Skipped("no old copy to drop".into()));
    };
    let db = DatabaseName::for_slug(&t.slug);
    let login = LoginName::for_slug(&t.slug);
    ctx.deps.servers.get(&old).await?.drop_database(&db, &login).await?;
    store.forget_old_copy(&t.id).await?;
    Ok(StepDone::Done(format!("the old copy of {db} and login {login} dropped on {}", old.name)))
}

/// For offboarding: whatever a move left behind (a copy on a reserved server, an old copy not yet
/// dropped) is dropped and its place freed. What it did, for the step's message.
pub async fn drop_leftovers(ctx: &StepContext<'_>) -> Result<Vec<String>, StepError> {
    let (store, t) = (&ctx.deps.store, ctx.tenant);
    let mut done = Vec::new();
    if let Some(reserved) = store.moving_to(&t.id).await? {
        if store.tenant(&t.id).await?.is_some_and(|row| row.move_copy_started) {
            let db = DatabaseName::for_slug(&t.slug);
            ctx.deps.servers.get(&reserved).await?.drop_database(&db, &LoginName::for_slug(&t.slug)).await?;
            done.push(format!("the unfinished copy on {} dropped", reserved.name));
        }
        store.release_reservation(&t.id).await?;
    }
    if let StepDone::Done(message) = drop_old(ctx).await? {
        done.push(message);
    }
    Ok(done)
}

impl Step for ReserveServer {
    fn name(&self) -> StepName {
        StepName::ReserveServer
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        reserve(ctx).boxed()
    }

    fn undo<'a>(&'a self, ctx: &'a StepContext<'a>) -> Option<BoxFuture<'a, Result<StepDone, StepError>>> {
        Some(
            async move {
                Ok(match ctx.deps.store.release_reservation(&ctx.tenant.id).await? {
                    Some(server) => StepDone::Done(format!("the place reserved on server {server} is freed")),
                    None => StepDone::Skipped("no place is reserved".into()),
                })
            }
            .boxed(),
        )
    }
}

impl Step for CopyDatabase {
    fn name(&self) -> StepName {
        StepName::CopyDatabase
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        copy(ctx).boxed()
    }

    fn undo<'a>(&'a self, ctx: &'a StepContext<'a>) -> Option<BoxFuture<'a, Result<StepDone, StepError>>> {
        Some(undo_copy(ctx).boxed())
    }
}

impl Step for SwitchServer {
    fn name(&self) -> StepName {
        StepName::SwitchServer
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        switch(ctx).boxed()
    }
}

impl Step for DropOldCopy {
    fn name(&self) -> StepName {
        StepName::DropOldCopy
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        drop_old(ctx).boxed()
    }
}
