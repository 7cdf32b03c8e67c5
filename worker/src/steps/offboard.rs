//! The steps of offboarding, provisioning in reverse: a final dump of the database into the archive,
//! then the stack, the DNS records, the database and its login, and the stored password. Each removes
//! only what Landlord claimed for this tenant (the undo of the provisioning step that made it), and each
//! is safe to repeat: a resource already gone counts as removed.

use std::{process::ExitStatus, time::Duration};

use futures::{FutureExt, future::BoxFuture};
use tokio::io::AsyncReadExt;

use super::{ConfigureDns, CreateDatabase, DeployStack, Step, StepContext, StepDone, StepError, StepName, ownership};
use crate::{
    error::ErrorCode,
    names::{DatabaseName, LoginName},
    store::ResourceKind,
};

#[derive(Debug)]
pub struct ArchiveDatabase;
#[derive(Debug)]
pub struct DeleteStack;
#[derive(Debug)]
pub struct RemoveDns;
#[derive(Debug)]
pub struct DropDatabase;
#[derive(Debug)]
pub struct ForgetCredentials;

/// The last this much of a dump tool's standard error is kept for the step's error.
const STDERR_KEPT: usize = 2000;

async fn archive(ctx: &StepContext<'_>) -> Result<StepDone, StepError> {
    let db = DatabaseName::for_slug(&ctx.tenant.slug);
    if !ownership::is_ours(ctx, ResourceKind::Database, db.as_str()).await? {
        return Ok(StepDone::Skipped(format!("no database {db} of Landlord's for this tenant; nothing to archive")));
    }
    let deps = ctx.deps;
    let server = ctx.server().await?;
    // The tool first: a worker without it must not lock the tenant out and then stop.
    let mut command = server.dump_command(&db)?;
    // Nothing may change while it is dumped: the tenant's login is locked and its sessions ended first.
    let login = LoginName::for_slug(&ctx.tenant.slug);
    if ownership::is_ours(ctx, ResourceKind::Login, login.as_str()).await? {
        server.set_login_locked(&login, true).await?;
    }
    let name = format!("{}/{db}.sql", ctx.tenant.id);
    let location = deps.archive.location(&name);
    let mut child = command.spawn().map_err(|e| {
        StepError::permanent(ErrorCode::ArchiveTool, format!("cannot start the dump tool for {db}: {e}"))
    })?;
    let (mut stdout, mut stderr) =
        (child.stdout.take().expect("stdout is piped"), child.stderr.take().expect("stderr is piped"));
    // Read at the same time as the dump, or a tool with much to say would block on a full pipe.
    let complaint = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = (&mut stderr).take(1 << 20).read_to_end(&mut text).await;
        let text = String::from_utf8_lossy(&text).trim().to_owned();
        let cut = text.char_indices().rev().nth(STDERR_KEPT).map_or(0, |(i, _)| i);
        text[cut..].to_owned()
    });
    let retain_until = chrono::Utc::now() + chrono::Duration::days(i64::from(deps.archive_days));
    let stored = {
        let store = deps.archive.store(&name, &mut stdout, retain_until);
        tokio::pin!(store);
        // A large dump may take longer than the message's ack wait: keep the command alive meanwhile.
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                stored = &mut store => break stored,
                _ = tick.tick() => ctx.alive.touch().await,
            }
        }
    };
    drop(stdout);
    let status: std::io::Result<ExitStatus> = child.wait().await;
    let complaint = complaint.await.unwrap_or_default();
    let dump_ok = status.as_ref().is_ok_and(ExitStatus::success);
    // The archive failing first makes the tool fail too (a closed pipe): the archive's error is the cause.
    if let Err(mut e) = stored {
        if !dump_ok {
            let _ = deps.archive.delete(&location).await;
        }
        e.message = format!("{} (the dump of {db} stopped with it)", e.message);
        return Err(e);
    }
    if !dump_ok {
        // What was stored is a broken dump: it must not be taken for the tenant's last state.
        if let Err(e) = deps.archive.delete(&location).await {
            tracing::warn!(error = %e, %location, "could not delete an incomplete dump");
        }
        let how = match status {
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        };
        let mut err = StepError::transient(
            ErrorCode::ArchiveFailed,
            format!(
                "dumping database {db} failed ({how}): {}",
                if complaint.is_empty() { "no output" } else { &complaint }
            ),
        );
        err.redact(server.admin_password().unwrap_or_default().as_str());
        return Err(err);
    }
    let archived = stored.expect("an archive error returned above");
    deps.store.claim_resource(&ctx.tenant.id, ResourceKind::Archive, &archived.location).await?;
    Ok(StepDone::Done(format!(
        "database {db} dumped to {} ({} bytes, sha256 {})",
        archived.location, archived.bytes, archived.sha256
    )))
}

/// Runs the undo of the provisioning step that made a resource.
fn undo_of<'a>(step: &'a dyn Step, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
    match step.undo(ctx) {
        Some(undo) => undo,
        None => async move { Ok(StepDone::Skipped(format!("{} has nothing to undo", step.name()))) }.boxed(),
    }
}

impl Step for ArchiveDatabase {
    fn name(&self) -> StepName {
        StepName::ArchiveDatabase
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        archive(ctx).boxed()
    }
}

impl Step for DeleteStack {
    fn name(&self) -> StepName {
        StepName::DeleteStack
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        undo_of(&DeployStack, ctx)
    }
}

impl Step for RemoveDns {
    fn name(&self) -> StepName {
        StepName::RemoveDns
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        undo_of(&ConfigureDns, ctx)
    }
}

impl Step for DropDatabase {
    fn name(&self) -> StepName {
        StepName::DropDatabase
    }

    /// The tenant's database and login, and any copy a move left on another server.
    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let leftovers = crate::placement::moving::drop_leftovers(ctx).await?;
            let done = undo_of(&CreateDatabase, ctx).await?;
            Ok(match (done, leftovers.is_empty()) {
                (done, true) => done,
                (StepDone::Done(m) | StepDone::Skipped(m) | StepDone::Deferred(m), false) => {
                    StepDone::Done(format!("{m}; {}", leftovers.join("; ")))
                }
            })
        }
        .boxed()
    }
}

impl Step for ForgetCredentials {
    fn name(&self) -> StepName {
        StepName::ForgetCredentials
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let store = &ctx.deps.store;
            store.forget_database_password(&ctx.tenant.id).await?;
            // The database is gone (the step before): its place on the server is free for another tenant.
            let freed = match store.release_placement(&ctx.tenant.id).await? {
                Some(server) => match store.server(&server).await? {
                    Some(row) => format!("; its place on database server {} is free", row.name),
                    None => String::new(),
                },
                None => String::new(),
            };
            Ok(StepDone::Done(format!("the tenant login's stored password is deleted{freed}")))
        }
        .boxed()
    }
}
