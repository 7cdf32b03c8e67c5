//! Mail over SMTP (`LANDLORD_SMTP_URL`, sent with `lettre`): the welcome a customer gets once the tenant
//! is active, and notices to operators (`LANDLORD_OPERATOR_EMAIL`) when a tenant waits for a person.
//! Messages are written to the control plane's outbox and sent from there by every worker's sender,
//! retried with a growing delay, so a mail server that is slow or down never fails or delays a tenant.

pub mod sender;
mod template;

use std::time::Duration;

use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::Mailbox};
use secrecy::{ExposeSecret, SecretString};

pub use template::{Template, Values};

/// What mail Landlord sends and how.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `None` without `LANDLORD_SMTP_URL`: nothing is queued or sent.
    pub smtp: Option<Smtp>,
    pub welcome: Template,
    pub operators: Vec<Mailbox>,
    /// The first delay before a failed message is tried again.
    pub retry: Duration,
}

/// An SMTP server and the sender address.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The URL's password, decoded: removed from any error that might carry it.
    password: Option<String>,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    pub message: String,
    /// It cannot clear by itself: not tried again.
    pub permanent: bool,
}

impl SendFailure {
    fn permanent(message: String) -> Self {
        Self { message, permanent: true }
    }
}

/// How long one delivery may take before it counts as failed (and is tried again later).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

impl Mail {
    /// From the worker's settings; a URL, sender or address that does not parse stops the worker with
    /// the setting's name.
    pub fn from_config(cfg: &crate::WorkerConfig) -> anyhow::Result<Self> {
        let welcome =
            match &cfg.welcome_template {
                Some(path) => Template::parse(&std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("LANDLORD_WELCOME_TEMPLATE {}: cannot read it: {e}", path.display())
                })?)
                .map_err(|e| anyhow::anyhow!("LANDLORD_WELCOME_TEMPLATE {}: {e}", path.display()))?,
                None => Template::parse(include_str!("welcome.txt")).expect("the built-in welcome parses"),
            };
        let operators = cfg
            .operator_email
            .iter()
            .map(|a| a.parse::<Mailbox>().map_err(|e| anyhow::anyhow!("LANDLORD_OPERATOR_EMAIL {a:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let smtp = match &cfg.smtp_url {
            Some(url) => Some(Smtp::new(url, &cfg.smtp_from)?),
            None => None,
        };
        Ok(Self { smtp, welcome, operators, retry: cfg.mail_retry })
    }

    /// No mail at all.
    pub fn none() -> Self {
        Self {
            smtp: None,
            welcome: Template::parse(include_str!("welcome.txt")).expect("the built-in welcome parses"),
            operators: Vec::new(),
            retry: Duration::from_secs(30),
        }
    }
}

impl Smtp {
    fn new(url: &SecretString, from: &str) -> anyhow::Result<Self> {
        let text = url.expose_secret();
        let parsed = url::Url::parse(text).map_err(|_| anyhow::anyhow!("LANDLORD_SMTP_URL is not a URL"))?;
        let password =
            parsed.password().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
        // A login over a connection without TLS would send the password in clear: only to this machine.
        let tls = requires_tls(&parsed);
        let local = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if password.is_some() && !tls && !local {
            anyhow::bail!("LANDLORD_SMTP_URL carries a password but no TLS: use smtps://…:465 or add ?tls=required");
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(text)
            .map_err(|e| anyhow::anyhow!("LANDLORD_SMTP_URL is not an smtp:// or smtps:// URL lettre reads: {e}"))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from = from.parse::<Mailbox>().map_err(|e| anyhow::anyhow!("LANDLORD_SMTP_FROM {from:?}: {e}"))?;
        Ok(Self { transport, from, password })
    }

    /// Sends one plain-text message. The error says why, without the SMTP password, and whether it
    /// can clear (a timeout, a 4xx) or not (a 5xx, an address that is not one).
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), SendFailure> {
        let to =
            to.parse::<Mailbox>().map_err(|e| SendFailure::permanent(format!("{to:?} is not a mail address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| SendFailure::permanent(format!("cannot build the message: {e}")))?;
        let sent = tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await;
        let (error, permanent) = match sent {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => (e.to_string(), e.status().is_some_and(|code| refuses_recipient(&code.to_string()))),
            Err(_) => (format!("the SMTP server did not answer within {} s", SEND_TIMEOUT.as_secs()), false),
        };
        let mut message = error;
        for secret in self.password.iter().filter(|p| !p.is_empty()) {
            message = message.replace(secret.as_str(), "[REDACTED]");
            let encoded = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC).to_string();
            message = message.replace(&encoded, "[REDACTED]");
        }
        Err(SendFailure { message, permanent })
    }
}

/// Whether a connection to `url` is always encrypted: `smtps://`, or exactly one `tls` parameter, set to
/// `required` (lettre reads the first of several, so a second one could not be trusted to be it).
fn requires_tls(url: &url::Url) -> bool {
    let tls: Vec<_> = url.query_pairs().filter(|(k, _)| k == "tls").map(|(_, v)| v.into_owned()).collect();
    url.scheme() == "smtps" || tls == ["required"]
}

/// Whether an SMTP refusal is about the recipient and so cannot clear by trying again: 550 (no such
/// mailbox), 551 (not local), 553 (not a mailbox name). Other 5xx replies (535 login refused, 530 login
/// needed, 554 relaying denied) are faults of the mail settings, which an operator fixes: those messages
/// are kept and tried again.
fn refuses_recipient(code: &str) -> bool {
    matches!(code, "550" | "551" | "553")
}

/// Queues a notice for every operator address (`LANDLORD_OPERATOR_EMAIL`) about `tenant`, once per
/// `key` (the same key from another worker or a repeat queues nothing). Nothing without SMTP or addresses.
pub async fn notify_operators(
    store: &crate::store::Store,
    mail: &Mail,
    tenant: &landlord_protocol::TenantId,
    key: &str,
    subject: &str,
    body: &str,
) -> Result<usize, crate::store::StoreError> {
    if mail.smtp.is_none() {
        return Ok(0);
    }
    let mut queued = 0;
    let tenant_id = tenant.to_string();
    for operator in &mail.operators {
        let to = operator.to_string();
        let id = uuid::Uuid::new_v5(&tenant.as_uuid(), format!("landlord:operator:{key}:{to}").as_bytes());
        let new =
            crate::store::NewMail { id, kind: "operator", tenant_id: Some(&tenant_id), recipient: &to, subject, body };
        if store.queue_mail(new).await? {
            queued += 1;
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(url: &str) -> anyhow::Result<Smtp> {
        Smtp::new(&SecretString::from(url.to_owned()), "Landlord <landlord@example.com>")
    }

    #[test]
    fn a_password_goes_only_over_a_connection_that_is_always_encrypted() {
        assert!(smtp("smtps://user:secret@mail.example.com:465").is_ok());
        assert!(smtp("smtp://user:secret@mail.example.com:587?tls=required").is_ok());
        // To this machine only, a relay without TLS may take a login.
        assert!(smtp("smtp://user:secret@127.0.0.1:2525").is_ok());
        assert!(smtp("smtp://mail.example.com:25").is_ok(), "no password, nothing to protect");
        for refused in [
            "smtp://user:secret@mail.example.com:587",
            "smtp://user:secret@mail.example.com:587?tls=opportunistic",
            // lettre reads the first `tls`: a later `required` must not hide an earlier weaker one.
            "smtp://user:secret@mail.example.com:587?tls=opportunistic&tls=required",
            "smtp://user:secret@mail.example.com:587?tls=required&tls=none",
        ] {
            let err = smtp(refused).map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("no TLS"), "{refused}: {err}");
            assert!(!err.contains("secret"), "the password is not in the error: {err}");
        }
    }

    #[test]
    fn only_a_refused_recipient_is_given_up() {
        for code in ["550", "551", "553"] {
            assert!(refuses_recipient(code), "{code}");
        }
        // A wrong login, a login needed, relaying denied, a full mailbox, a busy server: kept and tried again.
        for code in ["535", "530", "554", "552", "421", "451"] {
            assert!(!refuses_recipient(code), "{code}");
        }
    }
}
