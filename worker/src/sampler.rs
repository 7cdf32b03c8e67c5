//! Gauges sampled every few seconds: the control plane's tenants by status, DNS pending, the oldest
//! running step and the longest wait for an operator, and the command consumer's pending and unacknowledged
//! messages; and the consumer's ack wait, which another worker may have changed. Every worker samples the same control plane and consumer, so dashboards take the `max` of
//! these across workers, not the sum.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use tokio_util::sync::CancellationToken;

use crate::{Worker, telemetry};

pub async fn run(worker: &Worker, consumer: &PullConsumer, interval: Duration, shutdown: CancellationToken) {
    loop {
        sample(worker, consumer).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Age in seconds of `since`, 0 when there is none.
fn age(since: Option<chrono::DateTime<chrono::Utc>>) -> f64 {
    since.map_or(0.0, |t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
}

pub async fn sample(worker: &Worker, consumer: &PullConsumer) {
    match worker.runner.deps.store.gauges().await {
        Ok(g) => {
            for (status, n) in g.by_status {
                metrics::gauge!(telemetry::TENANTS, "status" => status.as_str()).set(n as f64);
            }
            metrics::gauge!(telemetry::DNS_PENDING).set(g.dns_pending as f64);
            metrics::gauge!(telemetry::OLDEST_RUNNING_STEP).set(age(g.oldest_running_step));
            metrics::gauge!(telemetry::OLDEST_AWAITING_OPERATOR).set(age(g.oldest_awaiting_operator));
        }
        Err(e) => tracing::debug!(error = %e, "cannot sample the control plane for metrics"),
    }
    match consumer.get_info().await {
        Ok(info) => {
            metrics::gauge!(telemetry::CONSUMER_PENDING).set(info.num_pending as f64);
            metrics::gauge!(telemetry::CONSUMER_ACK_PENDING).set(info.num_ack_pending as f64);
            worker.ack_wait.observe(info.config.ack_wait);
        }
        Err(e) => tracing::debug!(error = %e, "cannot read the consumer for metrics"),
    }
}
