//! The retry policy for transient step errors, as configuration rather than constants in steps.

use std::time::Duration;

use std::future::Future;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

use crate::error::StepError;
use serde::{Deserialize, Serialize};

/// Exponential backoff with jitter: `initial_ms`, multiplied by `multiplier` per attempt, capped at
/// `max_delay_ms`, for at most `max_attempts` attempts in this process before the message is handed back
/// to JetStream with a delay.
///
/// ```
/// use backon::BackoffBuilder;
/// use landlord_worker::RetryPolicy;
/// let p: RetryPolicy = serde_json::from_str(r#"{"initial_ms":100,"multiplier":2.0,"max_delay_ms":1000,"max_attempts":4,"jitter":false}"#).unwrap();
/// let delays: Vec<_> = p.backoff().build().map(|d| d.as_millis()).collect();
/// assert_eq!(delays, [100, 200, 400]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    pub initial_ms: u64,
    pub multiplier: f32,
    pub max_delay_ms: u64,
    pub max_attempts: usize,
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { initial_ms: 500, multiplier: 2.0, max_delay_ms: 10_000, max_attempts: 5, jitter: true }
    }
}

impl RetryPolicy {
    /// The backoff schedule between attempts (`max_attempts - 1` delays).
    pub fn backoff(&self) -> ExponentialBuilder {
        let b = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.initial_ms))
            .with_factor(self.multiplier)
            .with_max_delay(Duration::from_millis(self.max_delay_ms))
            .with_max_times(self.max_attempts.saturating_sub(1));
        if self.jitter { b.with_jitter() } else { b }
    }

    /// How long JetStream should wait before redelivering a message whose attempts ran out here.
    pub fn redelivery_delay(&self, delivered: i64) -> Duration {
        let exp = self.multiplier.powi(delivered.clamp(1, 16) as i32) as f64;
        Duration::from_millis(((self.initial_ms as f64) * exp).min(self.max_delay_ms as f64 * 6.0) as u64)
    }
}

/// Runs `f` until it succeeds, fails permanently, or `deadline` would pass before the next attempt;
/// transient errors wait out the policy's backoff (its delays repeat at the cap once attempts run out).
pub async fn until_deadline<T, F, Fut>(policy: &RetryPolicy, deadline: Instant, mut f: F) -> Result<T, StepError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StepError>>,
{
    let mut delays = policy.backoff().build();
    loop {
        match f().await {
            Err(e) if e.is_transient() => {
                let delay = delays.next().unwrap_or(Duration::from_millis(policy.max_delay_ms));
                if Instant::now() + delay > deadline {
                    return Err(e);
                }
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}
