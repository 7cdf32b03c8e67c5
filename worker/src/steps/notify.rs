//! `notify`, last in provisioning: the welcome for the store's contact address goes into the mail
//! outbox, from `LANDLORD_WELCOME_TEMPLATE` (or the built-in one) with the store's and its admin's
//! addresses. Writing it is all the step does: the workers' sender delivers it and retries a failure,
//! so a mail server that is slow or down never fails or delays the tenant. Queued once per tenant.

use futures::{FutureExt, future::BoxFuture};
use lettre::message::Mailbox;
use uuid::Uuid;

use super::{ErrorCode, Step, StepContext, StepDone, StepError, StepName};
use crate::store::NewMail;

#[derive(Debug)]
pub struct Notify;

async fn welcome(ctx: &StepContext<'_>) -> Result<StepDone, StepError> {
    let (deps, t) = (ctx.deps, ctx.tenant);
    if deps.mail.smtp.is_none() {
        return Ok(StepDone::Skipped(NO_SMTP.into()));
    }
    let row = deps
        .store
        .tenant(&t.id)
        .await?
        .ok_or_else(|| StepError::permanent(ErrorCode::NoTenant, format!("tenant {} is not recorded", t.id)))?;
    if row.contact_email.parse::<Mailbox>().is_err() {
        return Ok(StepDone::Skipped("the store's contact address cannot receive mail; no welcome email".into()));
    }
    let host = match row.hostname.clone() {
        Some(host) => host,
        None => deps.infra.hostnames(&t.slug).await.ok().flatten().map(|(host, _)| host).unwrap_or_default(),
    };
    let (store_url, admin_url) = if host.is_empty() {
        (String::new(), String::new())
    } else {
        (format!("https://{host}"), format!("https://{host}/admin"))
    };
    let plan = deps
        .plans
        .get(t.package_id, t.subscription_type_id)
        .map_or_else(|| format!("package {} type {}", t.package_id, t.subscription_type_id), |p| p.name.clone());
    let values = [
        ("store_name", row.store_name.as_str()),
        ("store_url", store_url.as_str()),
        ("admin_url", admin_url.as_str()),
        ("plan", plan.as_str()),
        ("subdomain", t.slug.as_str()),
        ("contact_email", row.contact_email.as_str()),
    ];
    let (subject, body) = deps.mail.welcome.render(&values);
    let tenant = t.id.to_string();
    let mail = NewMail {
        id: Uuid::new_v5(&t.id.as_uuid(), b"landlord:welcome"),
        kind: "welcome",
        tenant_id: Some(&tenant),
        recipient: &row.contact_email,
        subject: &subject,
        body: &body,
    };
    Ok(StepDone::Done(if deps.store.queue_mail(mail).await? {
        "the welcome email is queued for the store's contact address".into()
    } else {
        "the welcome email was queued already".into()
    }))
}

const NO_SMTP: &str = "no LANDLORD_SMTP_URL: no welcome email";

impl Step for Notify {
    fn name(&self) -> StepName {
        StepName::Notify
    }

    fn configured_off(&self, deps: &super::Deps) -> Option<String> {
        deps.mail.smtp.is_none().then(|| NO_SMTP.to_owned())
    }

    fn run<'a>(&'a self, ctx: &'a StepContext<'a>) -> BoxFuture<'a, Result<StepDone, StepError>> {
        welcome(ctx).boxed()
    }
}
