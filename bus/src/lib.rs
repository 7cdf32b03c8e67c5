//! Landlord's use of NATS JetStream, shared by the ingress, the workers and the CLI: the two streams and
//! their settings, publishing a command so that it is stored exactly once, and publishing progress.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use landlord_protocol::{Command, ProgressEvent, subjects};

mod settings;
pub mod trace;
mod watch;

pub use settings::{NatsAuth, NatsSettings, check_nats_url, redact_url};

/// How the streams are laid out. Defaults suit one server; a cluster raises `replicas`.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// How long JetStream remembers a command id to drop a repeated publish. Older duplicates are caught
    /// by the control plane's record of processed commands.
    pub duplicate_window: Duration,
    /// How long progress events stay replayable for dashboards and `landlord watch` when this process
    /// creates the stream (30 days by default).
    pub progress_max_age: Duration,
    /// Set by the process that owns the retention policy (the worker): an existing progress stream is
    /// brought to `progress_max_age`. Others only create, so they never undo the policy.
    pub enforce_progress_max_age: bool,
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            duplicate_window: Duration::from_secs(120),
            progress_max_age: Duration::from_secs(30 * 24 * 3600),
            enforce_progress_max_age: false,
            replicas: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect { url: String, source: async_nats::ConnectError },
    #[error("cannot set up stream {stream}: {source}")]
    Stream { stream: &'static str, source: jetstream::context::CreateStreamError },
    #[error("JetStream did not store the message on {subject}: {source}")]
    Publish { subject: String, source: jetstream::context::PublishError },
    #[error("JetStream is not answering: {0}")]
    Unavailable(String),
}

/// What JetStream said about a stored command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub sequence: u64,
    /// True when a command with the same id was already stored within the duplicate window.
    pub duplicate: bool,
}

/// The counter of commands stored on JetStream, by `kind` and `duplicate` (`landlord_worker::telemetry`
/// lists every series).
pub const COMMANDS_PUBLISHED: &str = "landlord_commands_published_total";

/// A connection to NATS with its JetStream context. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
}

impl Bus {
    /// Connects to `url` with no settings beyond it (tests and tools).
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::connect_with(&NatsSettings::new(url)).await
    }

    /// Connects as `settings` say (several servers of a cluster may be given comma-separated), retrying
    /// the initial connection so a worker can start before its server does. Errors name the servers
    /// without any password.
    pub async fn connect_with(settings: &NatsSettings) -> Result<Self, BusError> {
        // The build holds two rustls crypto providers (the AWS SDK brings aws-lc, others ring), so rustls
        // cannot pick one by itself and a `tls://` connection would panic; ring is chosen once here. An
        // error only means a provider was installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = settings.redacted_url();
        let fail = |e: std::io::Error| BusError::Unavailable(format!("bad NATS URL {url:?}: {e}"));
        let servers = settings
            .url
            .split(',')
            .map(|u| u.trim().parse::<async_nats::ServerAddr>().map_err(fail))
            .collect::<Result<Vec<_>, _>>()?;
        let opts = settings
            .connect_options()
            .await
            .map_err(|e| BusError::Unavailable(format!("cannot read the NATS credentials: {e}")))?;
        let client = opts
            .name("landlord")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(servers)
            .await
            .map_err(|source| BusError::Connect { url: url.clone(), source })?;
        Ok(Self::from_client(client))
    }

    pub fn from_client(client: async_nats::Client) -> Self {
        let mut js = jetstream::new(client.clone());
        // A publish must be answered promptly: the ingress holds Stripe's request open meanwhile.
        js.set_timeout(Duration::from_secs(5));
        Self { client, js }
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Creates both streams if they are missing. Safe to call from every process at start.
    pub async fn ensure_streams(&self, settings: &StreamSettings) -> Result<(), BusError> {
        let commands = stream::Config {
            name: subjects::COMMANDS_STREAM.into(),
            subjects: vec![subjects::COMMANDS_WILDCARD.into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: settings.duplicate_window,
            num_replicas: settings.replicas,
            ..Default::default()
        };
        let progress = stream::Config {
            name: subjects::PROGRESS_STREAM.into(),
            subjects: vec![subjects::PROGRESS_WILDCARD.into()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_age: settings.progress_max_age,
            num_replicas: settings.replicas,
            ..Default::default()
        };
        for (name, config) in [(subjects::COMMANDS_STREAM, commands), (subjects::PROGRESS_STREAM, progress)] {
            let mut stream = self
                .js
                .get_or_create_stream(config)
                .await
                .map_err(|source| BusError::Stream { stream: name, source })?;
            if name != subjects::PROGRESS_STREAM || !settings.enforce_progress_max_age {
                continue;
            }
            let info = stream.info().await.map_err(|e| BusError::Unavailable(e.to_string()))?;
            if info.config.max_age != settings.progress_max_age {
                let config = stream::Config { max_age: settings.progress_max_age, ..info.config.clone() };
                self.js.update_stream(config).await.map_err(|e| BusError::Unavailable(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Publishes a command with its id as `Nats-Msg-Id` and waits until JetStream has stored it.
    pub async fn publish_command(&self, cmd: &Command) -> Result<Stored, BusError> {
        let subject = cmd.subject();
        let mut headers = async_nats::HeaderMap::new();
        trace::inject(&mut headers);
        let mut message = PublishMessage::build().payload(cmd.to_json().into()).message_id(cmd.id.as_str());
        for (name, values) in headers.iter() {
            for value in values {
                message = message.header(name.clone(), value.clone());
            }
        }
        let stored = self.store(subject, message).await?;
        let duplicate = if stored.duplicate { "true" } else { "false" };
        metrics::counter!(COMMANDS_PUBLISHED, "kind" => cmd.action.kind().as_str(), "duplicate" => duplicate)
            .increment(1);
        Ok(stored)
    }

    /// Publishes a progress event, deduplicated by its event id.
    pub async fn publish_progress(&self, event: &ProgressEvent) -> Result<(), BusError> {
        self.send_progress(event).await?.await
    }

    /// Sends a progress event without waiting for JetStream's acknowledgement; the returned future
    /// resolves when JetStream has stored it (or says it did not). Events sent this way reach the stream
    /// in the order they were sent (one connection), so a caller that only logs a lost event need not
    /// wait a round trip per event.
    pub async fn send_progress(
        &self,
        event: &ProgressEvent,
    ) -> Result<impl Future<Output = Result<(), BusError>> + Send + 'static, BusError> {
        let payload = serde_json::to_vec(event).expect("a progress event always serializes");
        let message = PublishMessage::build().payload(payload.into()).message_id(event.id.to_string());
        let subject = event.subject();
        let fail = |subject: &String, source| BusError::Publish { subject: subject.clone(), source };
        let ack = self.js.send_publish(subject.clone(), message).await.map_err(|e| fail(&subject, e))?;
        Ok(async move { ack.await.map(|_| ()).map_err(|e| fail(&subject, e)) })
    }

    async fn store(&self, subject: String, message: PublishMessage) -> Result<Stored, BusError> {
        let fail = |source| BusError::Publish { subject: subject.clone(), source };
        let ack = self.js.send_publish(subject.clone(), message).await.map_err(fail)?.await.map_err(fail)?;
        Ok(Stored { sequence: ack.sequence, duplicate: ack.duplicate })
    }

    /// Whether JetStream answers and holds the command stream: what "ready" means for every Landlord
    /// process.
    pub async fn ready(&self) -> Result<(), BusError> {
        tokio::time::timeout(Duration::from_secs(2), self.js.get_stream(subjects::COMMANDS_STREAM))
            .await
            .map_err(|_| BusError::Unavailable("no answer within 2 s".into()))?
            .map(|_| ())
            .map_err(|e| BusError::Unavailable(e.to_string()))
    }
}
