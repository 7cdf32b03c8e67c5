//! Keeping a JetStream message alive while a long step (a stack, a health check) runs: a progress
//! acknowledgement resets its `ack_wait`, so it is not redelivered to another worker meanwhile.

use async_nats::jetstream::{AckKind, Message};
use futures::{FutureExt, future::BoxFuture};

pub trait KeepAlive: Send + Sync {
    fn touch(&self) -> BoxFuture<'_, ()>;
}

impl KeepAlive for Message {
    fn touch(&self) -> BoxFuture<'_, ()> {
        async move {
            metrics::counter!(crate::telemetry::PROGRESS_ACKS).increment(1);
            if let Err(e) = self.ack_with(AckKind::Progress).await {
                tracing::warn!(error = %e, "progress acknowledgement not sent");
            }
        }
        .boxed()
    }
}

/// For work driven without a message (tests, background retries).
#[derive(Debug, Clone, Copy)]
pub struct NoKeepAlive;

impl KeepAlive for NoKeepAlive {
    fn touch(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
}
