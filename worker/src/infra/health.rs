//! The tenant's health URL, polled with backoff until it answers 2xx or a deadline passes. HTTPS trusts the
//! platform's roots and `SSL_CERT_FILE` (rustls with the native root store).

use std::time::Duration;

use backon::BackoffBuilder;
use tokio::time::Instant;

use crate::{
    RetryPolicy,
    error::{ErrorCode, StepError},
    keepalive::KeepAlive,
};

#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub http: reqwest::Client,
    pub poll: RetryPolicy,
    pub deadline: Duration,
}

impl HealthCheck {
    pub fn new(poll: RetryPolicy, deadline: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client");
        Self { http, poll, deadline }
    }

    /// GETs `url` until a 2xx. Past the deadline it is a permanent failure naming the last answer.
    pub async fn wait_healthy(&self, url: &str, alive: &dyn KeepAlive) -> Result<u16, StepError> {
        let deadline = Instant::now() + self.deadline;
        let mut delays = self.poll.backoff().build();
        loop {
            let last = match self.http.get(url).send().await {
                Ok(res) if res.status().is_success() => return Ok(res.status().as_u16()),
                Ok(res) => format!("HTTP {}", res.status()),
                Err(e) => format!("no answer ({})", error_chain(&e)),
            };
            alive.touch().await;
            let delay = delays.next().unwrap_or(Duration::from_millis(self.poll.max_delay_ms));
            if Instant::now() + delay > deadline {
                return Err(StepError::permanent(
                    ErrorCode::Unhealthy,
                    format!("{url} did not answer 2xx within {} s (last: {last})", self.deadline.as_secs()),
                ));
            }
            tokio::time::sleep(delay).await;
        }
    }
}

/// An error with its causes, `a: b: c`: reqwest's own text stops at "error sending request", while the
/// cause a person can act on (a refused connection, an untrusted certificate) is further down.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}
