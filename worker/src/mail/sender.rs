//! Every worker's mail sender: every few seconds it claims one due message at a time, sends it, and
//! records the outcome only if its claim still holds. A failure is tried again after
//! `LANDLORD_MAIL_RETRY_SECS`, doubling each time up to an hour, at most 20 times; one the server refuses
//! for good (550, 551, 553: no such recipient) is not tried again; a wrong login or relaying denied is a
//! setting to fix, so those are kept and retried. A claim outlasts one delivery's timeout, so two senders
//! never send the same message unless one of them stalled for longer than that.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Smtp;
use crate::{store::Store, telemetry};

/// How long a claimed message is held by its sender before another may take it: well beyond one
/// delivery's timeout.
const CLAIM: Duration = Duration::from_secs(120);
/// Attempts before a message is given up.
const MAX_ATTEMPTS: i32 = 20;
/// The longest delay between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);

pub async fn run(store: &Store, smtp: &Smtp, retry: Duration, every: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(e) = send_due(store, smtp, retry, &shutdown).await {
            tracing::warn!(error = %e, "the mail outbox could not be read; trying again");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The delay before attempt `attempts + 1`.
pub fn backoff(first: Duration, attempts: i32) -> Duration {
    let doubled = first.saturating_mul(2u32.saturating_pow(u32::try_from(attempts.clamp(0, 20)).unwrap_or(20)));
    doubled.min(MAX_DELAY)
}

/// Sends what is due now, one message at a time, until nothing is due or the worker stops; returns how
/// many were sent.
pub async fn send_due(
    store: &Store,
    smtp: &Smtp,
    retry: Duration,
    shutdown: &CancellationToken,
) -> Result<usize, crate::store::StoreError> {
    let mut sent = 0;
    while !shutdown.is_cancelled() {
        let hold = chrono::Utc::now() + chrono::Duration::from_std(CLAIM).expect("a short duration");
        let Some(m) = store.claim_due_mail(hold).await? else { break };
        match smtp.send(&m.recipient, &m.subject, &m.body).await {
            Ok(()) => {
                if !store.mail_sent(&m).await? {
                    tracing::warn!(kind = %m.kind, "mail sent after its claim lapsed; another sender may send it too");
                }
                metrics::counter!(telemetry::MAILS, "kind" => m.kind.clone(), "outcome" => "sent").increment(1);
                tracing::info!(kind = %m.kind, tenant_id = ?m.tenant_id, "mail sent");
                sent += 1;
            }
            Err(failure) => {
                let give_up = failure.permanent || m.attempts + 1 >= MAX_ATTEMPTS;
                let delay = backoff(retry, m.attempts);
                let at = (!give_up)
                    .then(|| chrono::Utc::now() + chrono::Duration::from_std(delay).expect("at most an hour"));
                store.mail_failed(&m, &failure.message, at).await?;
                let outcome = if give_up { "given_up" } else { "failed" };
                metrics::counter!(telemetry::MAILS, "kind" => m.kind.clone(), "outcome" => outcome).increment(1);
                if give_up {
                    tracing::error!(kind = %m.kind, tenant_id = ?m.tenant_id, error = %failure.message, "mail given up");
                } else {
                    tracing::warn!(kind = %m.kind, tenant_id = ?m.tenant_id, error = %failure.message, retry_in = ?delay, "mail not sent; trying again later");
                }
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_up_to_an_hour() {
        let first = Duration::from_secs(30);
        assert_eq!(backoff(first, 0), Duration::from_secs(30));
        assert_eq!(backoff(first, 3), Duration::from_secs(240));
        assert_eq!(backoff(first, 30), MAX_DELAY);
        assert_eq!(backoff(first, -1), first);
    }
}
