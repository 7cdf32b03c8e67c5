//! Every worker's mail sender: every few seconds it claims the messages that are due, sends them, and
//! records each outcome. A failure is tried again after `LANDLORD_MAIL_RETRY_SECS`, doubling each time up
//! to an hour; a claim lasts a few minutes, so a sender that dies mid-way leaves its messages to another.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Smtp;
use crate::{store::Store, telemetry};

/// How long a claimed message is held by its sender before another may take it.
const CLAIM: Duration = Duration::from_secs(300);
/// The longest delay between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);

pub async fn run(store: &Store, smtp: &Smtp, retry: Duration, every: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(e) = send_due(store, smtp, retry).await {
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

/// Sends what is due now; returns how many were sent.
pub async fn send_due(store: &Store, smtp: &Smtp, retry: Duration) -> Result<usize, crate::store::StoreError> {
    let hold = chrono::Utc::now() + chrono::Duration::from_std(CLAIM).expect("a short duration");
    let mut sent = 0;
    for m in store.claim_due_mail(20, hold).await? {
        match smtp.send(&m.recipient, &m.subject, &m.body).await {
            Ok(()) => {
                store.mail_sent(&m.id).await?;
                metrics::counter!(telemetry::MAILS, "kind" => m.kind.clone(), "outcome" => "sent").increment(1);
                tracing::info!(kind = %m.kind, tenant_id = ?m.tenant_id, "mail sent");
                sent += 1;
            }
            Err(error) => {
                let delay = backoff(retry, m.attempts);
                let at = chrono::Utc::now() + chrono::Duration::from_std(delay).expect("at most an hour");
                store.mail_failed(&m.id, &error, at).await?;
                metrics::counter!(telemetry::MAILS, "kind" => m.kind.clone(), "outcome" => "failed").increment(1);
                tracing::warn!(kind = %m.kind, tenant_id = ?m.tenant_id, %error, retry_in = ?delay, "mail not sent; trying again later");
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
