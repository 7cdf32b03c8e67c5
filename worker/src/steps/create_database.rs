//! `create_database`: the tenant's own database and a login that can reach only it, with a fresh random
//! password that is recorded in the control plane and never logged.

use futures::{FutureExt, future::BoxFuture};
use rand::{Rng, distr::Alphanumeric};
use secrecy::SecretString;

use super::{Step, StepContext, StepDone, StepError, StepName, ownership};
use crate::{
    names::{DatabaseName, LoginName},
    store::ResourceKind,
};

#[derive(Debug)]
pub struct CreateDatabase;

/// 32 alphanumeric characters (~190 bits). Alphanumeric so it can be written into DDL that takes no
/// bind parameters without any escaping.
fn new_password() -> SecretString {
    rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect::<String>().into()
}

impl Step for CreateDatabase {
    fn name(&self) -> StepName {
        StepName::CreateDatabase
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let db = DatabaseName::for_slug(&ctx.tenant.slug);
            let login = LoginName::for_slug(&ctx.tenant.slug);
            let password = new_password();
            let server = &ctx.server().await?;
            // Claimed before they are created; an existing one without a claim is someone else's. Both are
            // looked at before either is claimed, so a refused login leaves no claim on the database behind.
            let (db_exists, login_exists) = (server.database_exists(&db).await?, server.login_exists(&login).await?);
            ownership::refuse_unclaimed(ctx, ResourceKind::Database, db.as_str(), db_exists).await?;
            ownership::refuse_unclaimed(ctx, ResourceKind::Login, login.as_str(), login_exists).await?;
            ownership::claim(ctx, ResourceKind::Database, db.as_str(), db_exists).await?;
            ownership::claim(ctx, ResourceKind::Login, login.as_str(), login_exists).await?;
            server.create_database(&db, &login, &password).await?;
            ctx.deps
                .store
                .save_database(&ctx.tenant.id, server.dialect().as_str(), db.as_str(), login.as_str(), &password)
                .await?;
            Ok(StepDone::Done(format!("database {db} and login {login} ready on {}", server.dialect().as_str())))
        }
        .boxed()
    }

    fn undo<'a>(&'a self, ctx: &'a StepContext<'a>) -> Option<BoxFuture<'a, Result<StepDone, StepError>>> {
        Some(
            async move {
                let db = DatabaseName::for_slug(&ctx.tenant.slug);
                let login = LoginName::for_slug(&ctx.tenant.slug);
                let server = &ctx.server().await?;
                let mut dropped = Vec::new();
                if ownership::is_ours(ctx, ResourceKind::Database, db.as_str()).await? {
                    server.drop_db(&db).await?;
                    ownership::release(ctx, ResourceKind::Database, db.as_str()).await?;
                    dropped.push(format!("database {db}"));
                }
                if ownership::is_ours(ctx, ResourceKind::Login, login.as_str()).await? {
                    server.drop_login(&login).await?;
                    ownership::release(ctx, ResourceKind::Login, login.as_str()).await?;
                    dropped.push(format!("login {login}"));
                }
                Ok(if dropped.is_empty() {
                    StepDone::Skipped(format!(
                        "no database {db} or login {login} of Landlord's is left (already removed, or never made by Landlord); nothing dropped"
                    ))
                } else {
                    StepDone::Done(format!("{} dropped", dropped.join(" and ")))
                })
            }
            .boxed(),
        )
    }
}
