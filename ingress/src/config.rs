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

#[derive(Debug, Clone)]
pub struct IngressConfig {
    pub http_addr: SocketAddr,
    pub nats_url: String,
    /// Every secret currently accepted; several during a rotation.
    pub stripe_webhook_secrets: Vec<SecretString>,
    /// How far a signature's timestamp may be from now, either way.
    pub stripe_tolerance: Duration,
    /// JetStream duplicate window for the command stream, when the ingress creates it.
    pub duplicate_window: Duration,
    /// Stream replicas, when the ingress creates the streams (3 on a three-node cluster).
    pub replicas: usize,
    /// Bearer tokens for the admin API; none means the admin API refuses every request.
    pub admin_tokens: Vec<SecretString>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Raw {
    http_addr: SocketAddr,
    nats_url: String,
    stripe_webhook_secret: Option<String>,
    stripe_tolerance_secs: u64,
    nats_duplicate_window_secs: u64,
    nats_replicas: usize,
    admin_tokens: Option<String>,
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            nats_url: "nats://127.0.0.1:4222".into(),
            stripe_webhook_secret: None,
            stripe_tolerance_secs: 300,
            nats_duplicate_window_secs: 120,
            nats_replicas: 1,
            admin_tokens: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration: {0}")]
    Read(#[from] Box<figment::Error>),
    #[error("LANDLORD_STRIPE_WEBHOOK_SECRET is required (comma-separated during a rotation); each starts with whsec_")]
    NoWebhookSecret,
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
        Ok(Self {
            http_addr: raw.http_addr,
            nats_url: raw.nats_url,
            stripe_webhook_secrets: secrets,
            stripe_tolerance: Duration::from_secs(raw.stripe_tolerance_secs),
            duplicate_window: Duration::from_secs(raw.nats_duplicate_window_secs),
            replicas: raw.nats_replicas.max(1),
            admin_tokens: parse_secrets(raw.admin_tokens.map(SecretString::from)),
        })
    }
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
}
