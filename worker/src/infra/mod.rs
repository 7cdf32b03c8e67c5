//! Providers for the infrastructure steps, all through the real AWS SDK configured the standard AWS way
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, the default credential chain), so one binary talks to AWS in
//! production and to an emulator in tests.

pub mod dns;
pub mod health;
pub mod stacks;

#[cfg(test)]
mod recorded_tests;

use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use landlord_protocol::TenantSlug;

use crate::{
    RetryPolicy,
    error::{ErrorCode, StepError},
};

/// The infrastructure a deployment configured; each part is optional and its step is skipped without it.
#[derive(Debug)]
pub struct Infra {
    pub dns: Option<dns::Dns>,
    /// How the DNS target is described in progress messages.
    pub dns_target_label: String,
    /// The same zone with `LANDLORD_SUSPENDED_DNS_TARGET`: where a suspended tenant's names point.
    pub parked_dns: Option<dns::Dns>,
    pub parked_target_label: String,
    /// Domain for tenant hostnames when it is not the hosted zone's own.
    pub tenant_domain: Option<String>,
    /// How long `configure_dns` tries before deferring to the background.
    pub dns_budget: Duration,
    pub stacks: Option<stacks::Stacks>,
    /// How long `deploy_stack` waits in one attempt before handing the stack to the next one.
    pub stack_deadline: Duration,
    pub health: health::HealthCheck,
    /// `https://{hostname}/healthz`-style template; the stack's `HealthUrl` output otherwise.
    pub health_url: Option<String>,
    /// Polling schedule for DNS changes.
    pub poll: RetryPolicy,
}

impl Infra {
    /// Nothing configured: every infrastructure step is skipped.
    pub fn none() -> Self {
        let poll =
            RetryPolicy { initial_ms: 1000, multiplier: 1.5, max_delay_ms: 15_000, max_attempts: 100, jitter: true };
        Self {
            dns: None,
            dns_target_label: String::new(),
            parked_dns: None,
            parked_target_label: String::new(),
            tenant_domain: None,
            dns_budget: Duration::from_secs(120),
            stacks: None,
            stack_deadline: Duration::from_secs(1800),
            health: health::HealthCheck::new(poll.clone(), Duration::from_secs(300)),
            health_url: None,
            poll,
        }
    }

    /// The tenant's hostname and API hostname, when a domain is known.
    pub async fn hostnames(&self, slug: &TenantSlug) -> Result<Option<(String, String)>, StepError> {
        let domain = match (&self.tenant_domain, &self.dns) {
            (Some(d), _) => d.clone(),
            (None, Some(dns)) => dns.domain().await?,
            (None, None) => return Ok(None),
        };
        Ok(Some(dns::hostnames(slug, &domain)))
    }
}

/// Loads the SDK configuration from the environment, as every AWS tool does.
///
/// Every AWS call is bounded: an endpoint that accepts a connection and never answers would otherwise hold
/// a step (and the tenant's lease) for ever. One attempt may take 30 s, a call with its retries 90 s;
/// CloudFormation's and Route 53's slow work is polled by Landlord, so no single call needs longer.
pub async fn sdk_config_from_env() -> aws_config::SdkConfig {
    use aws_config::timeout::TimeoutConfig;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(30))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(90))
        .build();
    aws_config::from_env().timeout_config(timeouts).load().await
}

/// An S3 client. Path-style addressing is forced when a custom endpoint is configured: S3 emulators and
/// gateways (moto, MinIO) do not serve virtual-hosted buckets; AWS itself still accepts path style.
pub fn s3_client(cfg: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(cfg).force_path_style(cfg.endpoint_url().is_some()).build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Error codes AWS uses for "slow down" and "try again": throttling, a change still being applied,
/// internal errors.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "PriorRequestNotComplete",
    "SlowDown",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "RequestTimeout",
];

/// Classifies an SDK error: no answer, an unreadable answer (an HTTP 5xx page) or a throttling code is
/// transient; any other service error (validation, missing resource, refused input) is permanent.
pub fn sdk_error<E, R>(code: ErrorCode, context: &str, e: &SdkError<E, R>) -> StepError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let message = format!("{context}: {}", DisplayErrorContext(e));
    let transient = match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(se) => se.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c)),
        _ => false,
    };
    let error = if transient { StepError::transient(code, message) } else { StepError::permanent(code, message) };
    // The SDK's own error, for whoever walks the chain; AWS errors never carry the credentials.
    error.caused_by(Cause(format!("{}", DisplayErrorContext(e))))
}

/// An SDK error's text as a cause: the SDK's errors are generic over their response type, which is not
/// `Send + Sync` for every operation, so the text is what is kept.
#[derive(Debug)]
struct Cause(String);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

/// The service error code, if the error is one.
pub fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// A key prefix as a folder: empty, or ending in `/`.
pub fn folder_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') { prefix.to_owned() } else { format!("{prefix}/") }
}

/// `s3://bucket/key-or-prefix` split into its parts.
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_owned(), key.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn s3_urls() {
        assert_eq!(super::parse_s3_url("s3://b/p/x/"), Some(("b".into(), "p/x/".into())));
        assert_eq!(super::parse_s3_url("s3://b"), Some(("b".into(), "".into())));
        assert_eq!(super::parse_s3_url("s3:///x"), None);
        assert_eq!(super::parse_s3_url("/tmp/x"), None);
    }
}
