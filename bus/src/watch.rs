//! Reading progress back: history first, then live, in order. Used by `landlord watch`, dashboards'
//! helpers and the tests.

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::{Stream, StreamExt};
use landlord_protocol::{ProgressEvent, TenantId, subjects};

use crate::{Bus, BusError};

impl Bus {
    /// Every progress event of `tenant` (or of all tenants), from the oldest kept, then live ones as they
    /// arrive. Events that do not decode are skipped with a warning rather than ending the stream.
    pub async fn progress(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<impl Stream<Item = ProgressEvent> + use<>, BusError> {
        let filter = match tenant {
            Some(t) => subjects::progress_subject(Some(t)),
            None => subjects::PROGRESS_WILDCARD.to_owned(),
        };
        let fail = |e: &dyn std::fmt::Display| BusError::Unavailable(e.to_string());
        let stream = self.js.get_stream(subjects::PROGRESS_STREAM).await.map_err(|e| fail(&e))?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: filter,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| fail(&e))?;
        let messages = consumer.messages().await.map_err(|e| fail(&e))?;
        Ok(messages.filter_map(|m| async move {
            let m = m.ok()?;
            serde_json::from_slice::<ProgressEvent>(&m.payload)
                .inspect_err(|e| tracing::warn!(error = %e, "skipping undecodable progress event"))
                .ok()
        }))
    }
}
