//! `create_database`: the tenant's own database and a login that can reach only it, with a fresh random
//! password that is recorded in the control plane and never logged.

use futures::{FutureExt, future::BoxFuture};
use rand::{Rng, distr::Alphanumeric};
use secrecy::SecretString;

use super::{Step, StepContext, StepDone, StepError};
use crate::names::{DatabaseName, LoginName};

#[derive(Debug)]
pub struct CreateDatabase;

/// 32 alphanumeric characters (~190 bits). Alphanumeric so it can be written into DDL that takes no
/// bind parameters without any escaping.
fn new_password() -> SecretString {
    rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect::<String>().into()
}

impl Step for CreateDatabase {
    fn name(&self) -> &'static str {
        "create_database"
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        async move {
            let db = DatabaseName::for_slug(&ctx.tenant.slug);
            let login = LoginName::for_slug(&ctx.tenant.slug);
            let password = new_password();
            let server = &ctx.deps.tenant_db;
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
                ctx.deps.tenant_db.drop_database(&db, &login).await?;
                Ok(StepDone::Done(format!("database {db} and login {login} dropped")))
            }
            .boxed(),
        )
    }
}
