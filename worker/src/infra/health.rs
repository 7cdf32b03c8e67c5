//! The tenant's health URL, polled with backoff until it answers 2xx or a deadline passes.

use std::time::Duration;

use backon::BackoffBuilder;
use tokio::time::Instant;

use crate::{RetryPolicy, keepalive::KeepAlive, steps::StepError};

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
                Err(e) => format!("no answer ({e})"),
            };
            alive.touch().await;
            let delay = delays.next().unwrap_or(Duration::from_millis(self.poll.max_delay_ms));
            if Instant::now() + delay > deadline {
                return Err(StepError::permanent(
                    "unhealthy",
                    format!("{url} did not answer 2xx within {} s (last: {last})", self.deadline.as_secs()),
                ));
            }
            tokio::time::sleep(delay).await;
        }
    }
}
