//! The ingress's settings: compiled-in defaults, then an optional TOML file, then `LANDLORD_*`
//! environment variables, then validation. Webhook secrets are `SecretString`s so they cannot be printed
//! by accident.

use std::{net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// `Debug` is written by hand (below): the NATS URL may carry a password.
#[derive(Clone)]
pub struct IngressConfig {
    pub http_addr: SocketAddr,
    pub nats_url: String,
    /// How to authenticate to NATS and whether TLS is required (its `url` is unused: see
    /// [`IngressConfig::nats_settings`]).
    pub nats_auth: landlord_bus::NatsSettings,
    /// Every secret currently accepted; several during a rotation.
    pub stripe_webhook_secrets: Vec<SecretString>,
    /// How far a signature's timestamp may be from now, either way.
    pub stripe_tolerance: Duration,
    /// JetStream duplicate window for the command stream, when the ingress creates it.
    pub duplicate_window: Duration,
    /// Stream replicas, when the ingress creates the streams (3 on a three-node cluster).
    pub replicas: usize,
    /// Named admin tokens with their roles; none means the admin API refuses every request.
    pub admin_tokens: Vec<crate::admin_tokens::AdminToken>,
    /// The control plane (`LANDLORD_DATABASE_URL`, the workers' setting), read by the admin API; without it
    /// the tenant endpoints answer 503.
    pub database_url: Option<SecretString>,
    /// `LANDLORD_SECRET_KEYS` (the workers' setting): the admin API encrypts the admin URLs of database
    /// servers it registers or is handed with it; without it those endpoints answer 503.
    pub secret_keys: Option<SecretString>,
    /// How much the HTTP edge gives one caller before refusing.
    pub limits: Limits,
    /// The plan catalogue purchases buy from (`LANDLORD_PLANS`, see `plans.toml`).
    pub plans: landlord_protocol::Plans,
}

impl std::fmt::Debug for IngressConfig {
    /// Every setting, as `landlord-ingress --check-config` prints it: the NATS URL without its password,
    /// secrets as `[REDACTED]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressConfig")
            .field("http_addr", &self.http_addr)
            .field("nats_url", &landlord_bus::redact_url(&self.nats_url))
            .field("nats_auth", &self.nats_auth)
            .field("stripe_webhook_secrets", &self.stripe_webhook_secrets)
            .field("stripe_tolerance", &self.stripe_tolerance)
            .field("duplicate_window", &self.duplicate_window)
            .field("replicas", &self.replicas)
            .field("admin_tokens", &self.admin_tokens)
            .field("database_url", &self.database_url.as_ref().map(|u| landlord_bus::redact_url(u.expose_secret())))
            .field("secret_keys", &self.secret_keys.as_ref().map(|_| "[REDACTED]"))
            .field("limits", &self.limits)
            .field("plans", &self.plans.source())
            .finish()
    }
}

/// How much the HTTP edge gives one caller, so that a slow or hostile one cannot tie it up or guess a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request, its body included, must arrive and be answered within this, or it gets `408`.
    pub request_timeout: Duration,
    /// A connection must deliver a request's headers within this, or it is closed (hyper's header read
    /// timeout; it also closes a keep-alive connection idle for this long).
    pub header_timeout: Duration,
    /// Requests handled at once; one more gets `503` at once rather than waiting in a queue.
    pub max_concurrency: usize,
    /// Failed admin authentications one client address may make per minute; after that it gets `429`
    /// until the minute has passed, even with a correct token.
    pub admin_auth_failures_per_minute: u32,
    /// Server-Sent Event streams open at once (each holds a connection and a JetStream consumer); one
    /// more gets `503`.
    pub max_event_streams: usize,
    /// A quiet event stream carries a comment line this often, so proxies and load balancers keep it open.
    pub event_keep_alive: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(5),
            max_concurrency: 256,
            admin_auth_failures_per_minute: 10,
            max_event_streams: 512,
            event_keep_alive: Duration::from_secs(15),
        }
    }
}

/// The settings as read, secrets still plain text: no `Debug`, so none can be printed by accident.
#[derive(Serialize, Deserialize)]
struct Raw {
    http_addr: SocketAddr,
    nats_url: String,
    nats_creds_file: Option<String>,
    nats_nkey_seed: Option<String>,
    nats_user: Option<String>,
    nats_password: Option<String>,
    nats_tls_ca_file: Option<String>,
    nats_tls_required: bool,
    stripe_webhook_secret: Option<String>,
    stripe_tolerance_secs: u64,
    nats_duplicate_window_secs: u64,
    nats_replicas: usize,
    admin_tokens: Option<String>,
    database_url: Option<String>,
    secret_keys: Option<String>,
    http_request_timeout_secs: u64,
    http_header_timeout_secs: u64,
    http_max_concurrency: usize,
    admin_auth_failures_per_minute: u32,
    http_max_event_streams: usize,
    http_event_keep_alive_secs: u64,
    plans: Option<String>,
}

impl Default for Raw {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_creds_file: None,
            nats_nkey_seed: None,
            nats_user: None,
            nats_password: None,
            nats_tls_ca_file: None,
            nats_tls_required: false,
            stripe_webhook_secret: None,
            stripe_tolerance_secs: 300,
            nats_duplicate_window_secs: 120,
            nats_replicas: 1,
            admin_tokens: None,
            database_url: None,
            secret_keys: None,
            http_request_timeout_secs: limits.request_timeout.as_secs(),
            http_header_timeout_secs: limits.header_timeout.as_secs(),
            http_max_concurrency: limits.max_concurrency,
            admin_auth_failures_per_minute: limits.admin_auth_failures_per_minute,
            http_max_event_streams: limits.max_event_streams,
            http_event_keep_alive_secs: limits.event_keep_alive.as_secs(),
            plans: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration: {0}")]
    Read(#[from] Box<figment::Error>),
    #[error("LANDLORD_STRIPE_WEBHOOK_SECRET is required (comma-separated during a rotation); each starts with whsec_")]
    NoWebhookSecret,
    #[error("{variable} must be greater than zero")]
    Zero { variable: &'static str },
    #[error("{0}")]
    Nats(String),
    #[error("LANDLORD_PLANS: {0}")]
    Plans(#[from] landlord_protocol::PlansError),
    #[error("{0}")]
    AdminTokens(String),
    #[error("LANDLORD_SECRET_KEYS: {0}")]
    SecretKeys(String),
}

impl IngressConfig {
    /// Loads defaults, then `file` if given, then the environment. `fallback_secret` is used only when
    /// no webhook secret is configured (`landlord dev` passes a development one).
    pub fn load(file: Option<&Path>, fallback_secret: Option<&str>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Raw::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file(file));
        }
        let raw: Raw = figment.merge(Env::prefixed("LANDLORD_")).extract().map_err(Box::new)?;
        let secret = raw.stripe_webhook_secret.or_else(|| fallback_secret.map(str::to_owned));
        let secrets = parse_secrets(secret.map(SecretString::from));
        if secrets.is_empty() {
            return Err(ConfigError::NoWebhookSecret);
        }
        let request_timeout = non_zero(raw.http_request_timeout_secs, "LANDLORD_HTTP_REQUEST_TIMEOUT_SECS")?;
        let header_timeout = non_zero(raw.http_header_timeout_secs, "LANDLORD_HTTP_HEADER_TIMEOUT_SECS")?;
        let limits = Limits {
            request_timeout: Duration::from_secs(request_timeout),
            header_timeout: Duration::from_secs(header_timeout),
            max_concurrency: non_zero(raw.http_max_concurrency, "LANDLORD_HTTP_MAX_CONCURRENCY")?,
            admin_auth_failures_per_minute: non_zero(
                raw.admin_auth_failures_per_minute,
                "LANDLORD_ADMIN_AUTH_FAILURES_PER_MINUTE",
            )?,
            max_event_streams: non_zero(raw.http_max_event_streams, "LANDLORD_HTTP_MAX_EVENT_STREAMS")?,
            event_keep_alive: Duration::from_secs(non_zero(
                raw.http_event_keep_alive_secs,
                "LANDLORD_HTTP_EVENT_KEEP_ALIVE_SECS",
            )?),
        };
        landlord_bus::check_nats_url(&raw.nats_url).map_err(ConfigError::Nats)?;
        let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let nats_auth = landlord_bus::NatsSettings::from_parts(
            &raw.nats_url,
            set(raw.nats_creds_file),
            set(raw.nats_nkey_seed).map(SecretString::from),
            set(raw.nats_user),
            set(raw.nats_password).map(SecretString::from),
            set(raw.nats_tls_ca_file),
            raw.nats_tls_required,
        )
        .map_err(ConfigError::Nats)?;
        let plans = landlord_protocol::Plans::load(raw.plans.as_deref())?;
        let secret_keys = set(raw.secret_keys).map(SecretString::from);
        if let Some(keys) = &secret_keys {
            landlord_worker::secret_box::SecretKeys::parse(keys).map_err(|e| ConfigError::SecretKeys(e.to_string()))?;
        }
        Ok(Self {
            http_addr: raw.http_addr,
            nats_auth,
            nats_url: raw.nats_url,
            stripe_webhook_secrets: secrets,
            stripe_tolerance: Duration::from_secs(raw.stripe_tolerance_secs),
            duplicate_window: Duration::from_secs(raw.nats_duplicate_window_secs),
            replicas: raw.nats_replicas.max(1),
            admin_tokens: crate::admin_tokens::parse(raw.admin_tokens.map(SecretString::from).as_ref())
                .map_err(ConfigError::AdminTokens)?,
            database_url: set(raw.database_url).map(SecretString::from),
            secret_keys,
            limits,
            plans,
        })
    }
}

impl IngressConfig {
    /// Everything needed to reach NATS: the URL and how to authenticate.
    pub fn nats_settings(&self) -> landlord_bus::NatsSettings {
        landlord_bus::NatsSettings { url: self.nats_url.clone(), ..self.nats_auth.clone() }
    }
}

/// Refuses a zero (the type's default) for `variable`: a zero timeout would refuse every request, a zero
/// limit would lock every caller out.
fn non_zero<T: Default + PartialEq>(value: T, variable: &'static str) -> Result<T, ConfigError> {
    if value == T::default() { Err(ConfigError::Zero { variable }) } else { Ok(value) }
}

/// Splits the comma-separated secret list, dropping blanks.
pub fn parse_secrets(list: Option<SecretString>) -> Vec<SecretString> {
    list.map(|s| {
        s.expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_split_on_commas() {
        let got = parse_secrets(Some(SecretString::from("whsec_a, whsec_b,,".to_owned())));
        assert_eq!(got.iter().map(|s| s.expose_secret().to_owned()).collect::<Vec<_>>(), ["whsec_a", "whsec_b"]);
        assert!(format!("{:?}", got[0]).contains("REDACTED"), "secrets must not print");
    }

    /// Loads `toml` as the configuration file (the environment still applies on top).
    fn load_toml(toml: &str) -> Result<IngressConfig, ConfigError> {
        let path = std::env::temp_dir().join(format!("landlord-ingress-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, toml).unwrap();
        let loaded = IngressConfig::load(Some(path.as_path()), Some("whsec_test"));
        std::fs::remove_file(&path).ok();
        loaded
    }

    #[test]
    fn limits_default_to_the_documented_values() {
        assert_eq!(load_toml("").unwrap().limits, Limits::default());
        let limits = load_toml("http_request_timeout_secs = 3\nhttp_max_concurrency = 8\n").unwrap().limits;
        assert_eq!((limits.request_timeout, limits.max_concurrency), (Duration::from_secs(3), 8));
    }

    #[test]
    fn a_zero_limit_is_refused_with_its_variable_name() {
        for (key, variable) in [
            ("http_request_timeout_secs", "LANDLORD_HTTP_REQUEST_TIMEOUT_SECS"),
            ("http_header_timeout_secs", "LANDLORD_HTTP_HEADER_TIMEOUT_SECS"),
            ("http_max_concurrency", "LANDLORD_HTTP_MAX_CONCURRENCY"),
            ("admin_auth_failures_per_minute", "LANDLORD_ADMIN_AUTH_FAILURES_PER_MINUTE"),
            ("http_max_event_streams", "LANDLORD_HTTP_MAX_EVENT_STREAMS"),
            ("http_event_keep_alive_secs", "LANDLORD_HTTP_EVENT_KEEP_ALIVE_SECS"),
        ] {
            let err = load_toml(&format!("{key} = 0\n")).unwrap_err();
            assert!(err.to_string().contains(variable), "{key}: {err}");
        }
    }
}
