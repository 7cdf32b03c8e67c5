//! The worker's settings: compiled-in defaults, then an optional TOML file, then `LANDLORD_*`
//! environment variables. Database URLs may carry passwords and are held as `SecretString`s. AWS itself
//! is configured the standard AWS way (`AWS_REGION`, `AWS_ENDPOINT_URL`, the credential chain).

use std::{collections::HashMap, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::{RetryPolicy, step_name::StepName};

/// `Debug` is written by hand (below): the NATS URL may carry a password.
#[derive(Clone)]
pub struct WorkerConfig {
    pub nats_url: String,
    /// How to authenticate to NATS and whether TLS is required (its `url` is unused: see
    /// [`WorkerConfig::nats_settings`]).
    pub nats_auth: landlord_bus::NatsSettings,
    /// Control plane; SQLite by default, PostgreSQL in production.
    pub database_url: SecretString,
    /// The server tenant databases are created on.
    pub tenant_db_url: SecretString,
    /// Connections one tenant login may hold at once (PostgreSQL `CONNECTION LIMIT`, MySQL
    /// `MAX_USER_CONNECTIONS`), so one tenant cannot exhaust a shared server.
    pub tenant_max_connections: u32,
    /// How many tenants the default server takes when it is registered (`LANDLORD_TENANT_DB_CAPACITY`).
    pub default_server_capacity: u32,
    /// How often operators are reminded of a tenant waiting for them (`LANDLORD_OPERATOR_REMINDER`).
    pub operator_reminder: Duration,
    /// CloudFormation template a new shared server is made from when every one is full
    /// (`LANDLORD_POOL_TEMPLATE`); its outputs give the admin URL.
    pub pool_template: Option<String>,
    /// CloudFormation template a dedicated tenant's server is made from (`LANDLORD_DEDICATED_TEMPLATE`).
    pub dedicated_template: Option<String>,
    /// `LANDLORD_SECRET_KEYS`: keys that encrypt tenant secrets in the control plane (see `secret_box`).
    /// Required by the worker; `landlord dev` makes a development key when it is unset.
    pub secret_keys: Option<SecretString>,
    /// Plan scripts: a folder holding `mysql/` and `postgres/`, or `s3://bucket/prefix/` with the same layout.
    pub scripts: String,
    /// Where offboarded tenants' final dumps go: a folder, or `s3://bucket/prefix/`.
    pub archive: String,
    /// The plan catalogue (`LANDLORD_PLANS`): a plan change must name one of its plans.
    pub plans: landlord_protocol::Plans,
    /// Messages handled at once by this process.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub duplicate_window: Duration,
    /// Hosted zone for tenant records; DNS is skipped without it.
    pub route53_zone_id: Option<String>,
    /// What tenant hostnames point at: a hostname (CNAME) or `alias:<zone id>:<dns name>`.
    pub dns_target: Option<String>,
    /// Domain for tenant hostnames when it differs from the hosted zone's.
    pub tenant_domain: Option<String>,
    /// `LANDLORD_SUSPENDED_DNS_TARGET`: where a suspended tenant's names point (a "suspended" page); they
    /// stay as they are without it.
    pub suspended_dns_target: Option<String>,
    pub dns_budget: Duration,
    /// How often pending DNS is retried in the background.
    pub dns_retry_interval: Duration,
    /// Stack template, a file or `s3://bucket/key`; stacks are skipped without it.
    pub stack_template: Option<String>,
    /// Environment name in stack names (`{slug}-{environment}-website`) and parameters.
    pub environment: String,
    pub stack_deadline: Duration,
    /// Health URL template with `{hostname}`; the stack's `HealthUrl` output when absent.
    pub health_url: Option<String>,
    pub health_deadline: Duration,
    /// `LANDLORD_STRIPE_API_KEY`: with it, a reconcile reads the subscription from Stripe's API (the
    /// truth) instead of trusting the newest event alone.
    pub stripe_api_key: Option<SecretString>,
    /// `LANDLORD_STRIPE_API_BASE`: Stripe's API address (a test server's in tests).
    pub stripe_api_base: String,
    /// `LANDLORD_OFFBOARD_AFTER`: how long a tenant whose subscription was deleted stays suspended (and
    /// can be restored) before it is offboarded.
    pub offboard_after: Duration,
    /// `LANDLORD_TIMER_INTERVAL_SECS`: how often a worker looks for due timers (default 5).
    pub timer_interval: Duration,
    /// `LANDLORD_WORKER_HTTP_ADDR`: where the worker serves `/healthz`, `/readyz` and `/metrics`; off
    /// when unset (several workers on one machine would otherwise fight over one port).
    pub http_addr: Option<std::net::SocketAddr>,
    /// `LANDLORD_SMTP_URL`: the SMTP server mail goes through (`smtp://user:pass@host:587?tls=required`,
    /// `smtps://…:465`); no mail without it.
    pub smtp_url: Option<SecretString>,
    /// `LANDLORD_SMTP_FROM`: the sender of every message.
    pub smtp_from: String,
    /// `LANDLORD_OPERATOR_EMAIL`: where notices for operators go (comma-separated addresses).
    pub operator_email: Vec<String>,
    /// `LANDLORD_WELCOME_TEMPLATE`: a file replacing the built-in welcome (`Subject: …`, a blank line,
    /// the body; `{{store_name}}`, `{{store_url}}`, `{{admin_url}}`, `{{plan}}`, `{{subdomain}}`,
    /// `{{contact_email}}` are filled in).
    pub welcome_template: Option<std::path::PathBuf>,
    /// `LANDLORD_MAIL_RETRY_SECS`: the first delay before a failed message is tried again (doubling, at
    /// most an hour).
    pub mail_retry: Duration,
    /// Polling schedule for DNS changes, stacks and health checks.
    pub poll: RetryPolicy,
    /// Retry policies of single steps, overriding `retry`.
    pub step_retry: HashMap<StepName, RetryPolicy>,
    /// Steps undone, in reverse order, when a run fails permanently.
    pub compensate: Vec<StepName>,
    /// How long JetStream waits for an acknowledgement before redelivering a message.
    pub ack_wait: Duration,
    /// How long a tenant lease lasts unless renewed.
    pub lease_ttl: Duration,
    /// How long in-flight runs may take to reach a checkpoint after SIGTERM.
    pub shutdown_grace: Duration,
    /// Stream replicas (3 on a three-node cluster).
    pub nats_replicas: usize,
    /// How long processed commands and finished runs are kept.
    pub retention: crate::retention::Retention,
    /// Testing hook: a point where the worker stops and waits to be killed (see `failpoint`).
    pub failpoint: Option<String>,
    pub failpoint_file: Option<String>,
}

impl std::fmt::Debug for WorkerConfig {
    /// Every setting, as `landlord-worker --check-config` prints it: URLs without their passwords, secrets
    /// as `[REDACTED]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use landlord_bus::redact_url;
        use secrecy::ExposeSecret;
        f.debug_struct("WorkerConfig")
            .field("nats_url", &redact_url(&self.nats_url))
            .field("nats_auth", &self.nats_auth)
            .field("database_url", &masked_url(self.database_url.expose_secret()))
            .field("tenant_db_url", &masked_url(self.tenant_db_url.expose_secret()))
            .field("tenant_max_connections", &self.tenant_max_connections)
            .field("default_server_capacity", &self.default_server_capacity)
            .field("operator_reminder", &self.operator_reminder)
            .field("pool_template", &self.pool_template)
            .field("dedicated_template", &self.dedicated_template)
            .field("secret_keys", &self.secret_keys.as_ref().map(|_| "[REDACTED]"))
            .field("scripts", &self.scripts)
            .field("archive", &self.archive)
            .field("plans", &self.plans.source())
            .field("concurrency", &self.concurrency)
            .field("retry", &self.retry)
            .field("duplicate_window", &self.duplicate_window)
            .field("route53_zone_id", &self.route53_zone_id)
            .field("dns_target", &self.dns_target)
            .field("tenant_domain", &self.tenant_domain)
            .field("suspended_dns_target", &self.suspended_dns_target)
            .field("dns_budget", &self.dns_budget)
            .field("dns_retry_interval", &self.dns_retry_interval)
            .field("stack_template", &self.stack_template)
            .field("environment", &self.environment)
            .field("stack_deadline", &self.stack_deadline)
            .field("health_url", &self.health_url.as_deref().map(masked_url))
            .field("health_deadline", &self.health_deadline)
            .field("stripe_api_key", &self.stripe_api_key.as_ref().map(|_| "[REDACTED]"))
            .field("stripe_api_base", &self.stripe_api_base)
            .field("offboard_after", &self.offboard_after)
            .field("timer_interval", &self.timer_interval)
            .field("http_addr", &self.http_addr)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "[REDACTED]"))
            .field("smtp_from", &self.smtp_from)
            .field("operator_email", &self.operator_email)
            .field("welcome_template", &self.welcome_template)
            .field("mail_retry", &self.mail_retry)
            .field("poll", &self.poll)
            .field("step_retry", &self.step_retry)
            .field("compensate", &self.compensate)
            .field("ack_wait", &self.ack_wait)
            .field("lease_ttl", &self.lease_ttl)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("nats_replicas", &self.nats_replicas)
            .field("retention", &self.retention)
            .field("failpoint", &self.failpoint)
            .finish()
    }
}

/// The settings as read, secrets still plain text: no `Debug`, so none can be printed by accident.
#[derive(Serialize, Deserialize)]
struct Raw {
    nats_url: String,
    nats_creds_file: Option<String>,
    nats_nkey_seed: Option<String>,
    nats_user: Option<String>,
    nats_password: Option<String>,
    nats_tls_ca_file: Option<String>,
    nats_tls_required: bool,
    database_url: String,
    tenant_db_url: String,
    tenant_max_connections: u32,
    tenant_db_capacity: u32,
    operator_reminder: String,
    pool_template: Option<String>,
    dedicated_template: Option<String>,
    secret_keys: Option<String>,
    scripts: String,
    archive: String,
    plans: Option<String>,
    worker_concurrency: usize,
    retry: RetryPolicy,
    nats_duplicate_window_secs: u64,
    route53_zone_id: Option<String>,
    dns_target: Option<String>,
    tenant_domain: Option<String>,
    suspended_dns_target: Option<String>,
    dns_budget_secs: u64,
    dns_retry_interval_secs: u64,
    stack_template: Option<String>,
    environment: String,
    stack_deadline_secs: u64,
    health_url: Option<String>,
    health_deadline_secs: u64,
    stripe_api_key: Option<String>,
    stripe_api_base: String,
    offboard_after: String,
    timer_interval_secs: u64,
    worker_http_addr: Option<String>,
    smtp_url: Option<String>,
    smtp_from: String,
    operator_email: Option<String>,
    welcome_template: Option<String>,
    mail_retry_secs: u64,
    poll: RetryPolicy,
    step_retry: HashMap<String, RetryOverride>,
    compensate: String,
    ack_wait_secs: u64,
    lease_ttl_secs: u64,
    shutdown_grace_secs: u64,
    nats_replicas: usize,
    retention: crate::retention::Retention,
    failpoint: Option<String>,
    failpoint_file: Option<String>,
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_creds_file: None,
            nats_nkey_seed: None,
            nats_user: None,
            nats_password: None,
            nats_tls_ca_file: None,
            nats_tls_required: false,
            database_url: "sqlite://landlord.db?mode=rwc".into(),
            tenant_db_url: "mysql://root@127.0.0.1:3306".into(),
            tenant_max_connections: crate::tenant_db::DEFAULT_LOGIN_CONNECTION_LIMIT,
            tenant_db_capacity: 1000,
            operator_reminder: "4h".into(),
            pool_template: None,
            dedicated_template: None,
            secret_keys: None,
            scripts: "./sql-scripts".into(),
            archive: "./archive".into(),
            plans: None,
            worker_concurrency: 4,
            retry: RetryPolicy::default(),
            nats_duplicate_window_secs: 120,
            route53_zone_id: None,
            dns_target: None,
            tenant_domain: None,
            suspended_dns_target: None,
            dns_budget_secs: 120,
            dns_retry_interval_secs: 60,
            stack_template: None,
            environment: "production".into(),
            stack_deadline_secs: 1800,
            health_url: None,
            health_deadline_secs: 300,
            stripe_api_key: None,
            stripe_api_base: "https://api.stripe.com".into(),
            offboard_after: "30d".into(),
            timer_interval_secs: 5,
            worker_http_addr: None,
            smtp_url: None,
            smtp_from: "Landlord <landlord@localhost>".into(),
            operator_email: None,
            welcome_template: None,
            mail_retry_secs: 30,
            poll: RetryPolicy {
                initial_ms: 1000,
                multiplier: 1.5,
                max_delay_ms: 15_000,
                max_attempts: 100,
                jitter: true,
            },
            step_retry: HashMap::new(),
            // A database whose schema failed half-way is dropped; DNS and stacks are kept for the retry.
            compensate: StepName::CreateDatabase.as_str().into(),
            ack_wait_secs: 4,
            lease_ttl_secs: 4,
            shutdown_grace_secs: 30,
            nats_replicas: 1,
            retention: crate::retention::Retention::default(),
            failpoint: None,
            failpoint_file: None,
        }
    }
}

impl WorkerConfig {
    /// Loads defaults, then `file` if given, then the environment (`LANDLORD_RETRY__INITIAL_MS=…` sets
    /// a nested key). Empty values count as unset.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Raw::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file(file));
        }
        let raw: Raw = figment.merge(Env::prefixed("LANDLORD_").split("__")).extract().map_err(Box::new)?;
        let nats_auth = nats_settings_of(&raw).map_err(|e| Box::new(figment::Error::from(e)))?;
        let cfg = Self::from_raw(raw).map_err(|e| Box::new(figment::Error::from(e)))?;
        Ok(Self { nats_auth, ..cfg })
    }

    /// The compiled-in defaults alone, ignoring files and the environment.
    pub fn defaults() -> Self {
        Self::from_raw(Raw::default()).expect("the defaults are valid")
    }

    fn from_raw(raw: Raw) -> Result<Self, String> {
        check(&raw)?;
        let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        // Empty means unset (the default); turning compensation off takes an explicit `none`.
        let compensate = match raw.compensate.trim() {
            "" => vec![StepName::CreateDatabase],
            "none" => Vec::new(),
            list => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| StepName::parse(s).map_err(|e| format!("LANDLORD_COMPENSATE (or `none`): {e}")))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let step_retry = raw
            .step_retry
            .into_iter()
            .map(|(k, v)| {
                let name = StepName::parse(&k).map_err(|e| format!("LANDLORD_STEP_RETRY__{k}__*: {e}"))?;
                Ok((name, v.over(&raw.retry)))
            })
            .collect::<Result<HashMap<_, _>, String>>()?;
        Ok(Self {
            nats_auth: landlord_bus::NatsSettings::default(),
            nats_url: raw.nats_url,
            database_url: raw.database_url.into(),
            tenant_db_url: raw.tenant_db_url.into(),
            tenant_max_connections: raw.tenant_max_connections,
            default_server_capacity: raw.tenant_db_capacity,
            operator_reminder: parse_duration(&raw.operator_reminder).ok().filter(|d| !d.is_zero()).ok_or_else(
                || {
                    format!(
                        "LANDLORD_OPERATOR_REMINDER {:?}: expected a duration such as 4h or 30m",
                        raw.operator_reminder
                    )
                },
            )?,
            pool_template: set(raw.pool_template),
            dedicated_template: set(raw.dedicated_template),
            secret_keys: set(raw.secret_keys).map(SecretString::from),
            scripts: raw.scripts,
            archive: raw.archive,
            plans: landlord_protocol::Plans::load(raw.plans.as_deref()).map_err(|e| format!("LANDLORD_PLANS: {e}"))?,
            concurrency: raw.worker_concurrency,
            retry: raw.retry,
            duplicate_window: Duration::from_secs(raw.nats_duplicate_window_secs),
            route53_zone_id: set(raw.route53_zone_id),
            dns_target: set(raw.dns_target),
            tenant_domain: set(raw.tenant_domain),
            suspended_dns_target: set(raw.suspended_dns_target),
            dns_budget: Duration::from_secs(raw.dns_budget_secs),
            dns_retry_interval: Duration::from_secs(raw.dns_retry_interval_secs.max(1)),
            stack_template: set(raw.stack_template),
            environment: raw.environment,
            stack_deadline: Duration::from_secs(raw.stack_deadline_secs),
            health_url: set(raw.health_url),
            health_deadline: Duration::from_secs(raw.health_deadline_secs),
            stripe_api_key: set(raw.stripe_api_key).map(SecretString::from),
            stripe_api_base: raw.stripe_api_base.trim_end_matches('/').to_owned(),
            offboard_after: parse_duration(&raw.offboard_after)
                .map_err(|e| format!("LANDLORD_OFFBOARD_AFTER {:?}: {e}", raw.offboard_after))?,
            timer_interval: Duration::from_secs(raw.timer_interval_secs.max(1)),
            http_addr: match raw.worker_http_addr.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
                Some(addr) => Some(
                    addr.parse()
                        .map_err(|e| format!("LANDLORD_WORKER_HTTP_ADDR {addr:?} is not an address:port: {e}"))?,
                ),
                None => None,
            },
            smtp_url: set(raw.smtp_url).map(SecretString::from),
            smtp_from: raw.smtp_from,
            operator_email: raw
                .operator_email
                .unwrap_or_default()
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
            welcome_template: set(raw.welcome_template).map(Into::into),
            mail_retry: Duration::from_secs(raw.mail_retry_secs.max(1)),
            poll: raw.poll,
            step_retry,
            compensate,
            ack_wait: Duration::from_secs(raw.ack_wait_secs),
            lease_ttl: Duration::from_secs(raw.lease_ttl_secs),
            shutdown_grace: Duration::from_secs(raw.shutdown_grace_secs),
            nats_replicas: raw.nats_replicas,
            retention: raw.retention,
            failpoint: set(raw.failpoint),
            failpoint_file: set(raw.failpoint_file),
        })
    }

    /// The parsed `LANDLORD_SECRET_KEYS`. Landlord stores tenant passwords encrypted and does not run
    /// without a key.
    pub fn parsed_secret_keys(&self) -> anyhow::Result<crate::secret_box::SecretKeys> {
        let text = self.secret_keys.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "LANDLORD_SECRET_KEYS is not set: Landlord encrypts tenant passwords in the control plane and needs a \
                 key; make one with `landlord secrets generate-key` and keep it outside the control-plane database"
            )
        })?;
        Ok(crate::secret_box::SecretKeys::parse(text)?)
    }

    /// Everything needed to reach NATS: the URL and how to authenticate.
    pub fn nats_settings(&self) -> landlord_bus::NatsSettings {
        landlord_bus::NatsSettings { url: self.nats_url.clone(), ..self.nats_auth.clone() }
    }

    /// The retry policy of one step.
    pub fn retry_for(&self, step: StepName) -> &RetryPolicy {
        self.step_retry.get(&step).unwrap_or(&self.retry)
    }

    /// Whether any setting needs AWS (so the SDK configuration is loaded only then).
    pub fn uses_aws(&self) -> bool {
        self.scripts.starts_with("s3://")
            || self.archive.starts_with("s3://")
            || self.route53_zone_id.is_some()
            || self.stack_template.is_some()
            || self.pool_template.is_some()
            || self.dedicated_template.is_some()
    }
}

/// One URL as it may be shown: its password, and any query parameter that looks like one, replaced by `***`.
/// A URL that does not parse is not shown at all (its password cannot be found to hide).
fn masked_url(value: &str) -> String {
    let Ok(mut url) = url::Url::parse(value) else { return "[not a URL]".into() };
    if url.password().is_some() {
        url.set_password(Some("***")).ok();
    }
    let secret_key = |k: &str| ["password", "pass", "pwd", "secret", "token", "key"].iter().any(|s| k.contains(s));
    if url.query_pairs().any(|(k, _)| secret_key(&k.to_lowercase())) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_key(&k.to_lowercase()) { "***".to_owned() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// One step's retry settings: whatever is given replaces `LANDLORD_RETRY__*`, the rest comes from it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RetryOverride {
    initial_ms: Option<u64>,
    multiplier: Option<f32>,
    max_delay_ms: Option<u64>,
    max_attempts: Option<usize>,
    jitter: Option<bool>,
}

impl RetryOverride {
    fn over(self, base: &RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            initial_ms: self.initial_ms.unwrap_or(base.initial_ms),
            multiplier: self.multiplier.unwrap_or(base.multiplier),
            max_delay_ms: self.max_delay_ms.unwrap_or(base.max_delay_ms),
            max_attempts: self.max_attempts.unwrap_or(base.max_attempts),
            jitter: self.jitter.unwrap_or(base.jitter),
        }
    }
}

/// Refuses settings that cannot work, naming the variable and what it may be: a typo must not silently
/// turn a feature off (a DNS target without a zone skips DNS) or stall every run (a zero lease).
/// `30d`, `12h`, `15m`, `90s` (or plain seconds): a whole number and a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 =
        number.parse().map_err(|_| "expected a whole number and a unit (s, m, h or d), as in 30d".to_owned())?;
    let secs = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unknown unit {other:?}; use s, m, h or d")),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(|| "too long".to_owned())
}

fn check(raw: &Raw) -> Result<(), String> {
    let set = |v: &Option<String>| v.as_deref().filter(|s| !s.trim().is_empty()).map(str::to_owned);
    for (variable, value) in [
        ("LANDLORD_WORKER_CONCURRENCY", raw.worker_concurrency as u64),
        ("LANDLORD_ACK_WAIT_SECS", raw.ack_wait_secs),
        ("LANDLORD_LEASE_TTL_SECS", raw.lease_ttl_secs),
        ("LANDLORD_NATS_REPLICAS", raw.nats_replicas as u64),
        ("LANDLORD_TENANT_MAX_CONNECTIONS", u64::from(raw.tenant_max_connections)),
        ("LANDLORD_TENANT_DB_CAPACITY", u64::from(raw.tenant_db_capacity)),
        ("LANDLORD_DNS_BUDGET_SECS", raw.dns_budget_secs),
    ] {
        if value == 0 {
            return Err(format!("{variable} must be at least 1"));
        }
    }
    match (set(&raw.route53_zone_id), set(&raw.dns_target)) {
        (Some(_), None) => {
            return Err("LANDLORD_ROUTE53_ZONE_ID needs LANDLORD_DNS_TARGET (what tenant hostnames point at)".into());
        }
        (None, Some(_)) => {
            return Err(
                "LANDLORD_DNS_TARGET is set without LANDLORD_ROUTE53_ZONE_ID, so DNS would be skipped; set the hosted \
                 zone or unset the target"
                    .into(),
            );
        }
        (Some(_), Some(target)) => {
            crate::infra::dns::DnsTarget::parse(&target)?;
        }
        (None, None) => {}
    }
    url_with_scheme("LANDLORD_DATABASE_URL", &raw.database_url, &["sqlite", "postgres", "postgresql"])?;
    url_with_scheme("LANDLORD_TENANT_DB_URL", &raw.tenant_db_url, &["mysql", "mariadb", "postgres", "postgresql"])?;
    landlord_bus::check_nats_url(&raw.nats_url)?;
    if let Some(health) = set(&raw.health_url) {
        url_with_scheme("LANDLORD_HEALTH_URL", &health.replace("{hostname}", "tenant.example"), &["http", "https"])?;
    }
    raw.retention.validate()
}

/// A URL that parses and has one of `schemes`; the error shows the URL without its password.
fn url_with_scheme(variable: &str, value: &str, schemes: &[&str]) -> Result<(), String> {
    let expected = schemes.join("://, ") + "://";
    // Unparsed, a URL's password cannot be found to hide, so the value is not repeated.
    let url =
        url::Url::parse(value).map_err(|e| format!("{variable} is not a URL ({e}); it starts with {expected}"))?;
    let shown = landlord_bus::redact_url(value);
    if !schemes.contains(&url.scheme()) {
        return Err(format!("{variable} {shown:?} must start with one of {expected}"));
    }
    Ok(())
}

/// The NATS settings from their variables, empty values counting as unset.
fn nats_settings_of(raw: &Raw) -> Result<landlord_bus::NatsSettings, String> {
    let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    landlord_bus::NatsSettings::from_parts(
        &raw.nats_url,
        set(&raw.nats_creds_file),
        set(&raw.nats_nkey_seed).map(SecretString::from),
        set(&raw.nats_user),
        set(&raw.nats_password).map(SecretString::from),
        set(&raw.nats_tls_ca_file),
        raw.nats_tls_required,
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn durations_take_a_unit() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(super::parse_duration(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(super::parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(super::parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert!(super::parse_duration("thirty days").is_err());
        assert!(super::parse_duration("3w").unwrap_err().contains("unknown unit"));
        assert!(super::parse_duration("99999999999999999999d").is_err());
    }
    use super::*;

    #[test]
    fn debug_never_prints_a_password() {
        let mut cfg = WorkerConfig::defaults();
        cfg.nats_url = "nats://landlord:hunter2@nats.example:4222".into();
        cfg.database_url = "postgres://cp:s3,cret@db.example/landlord".to_owned().into();
        cfg.tenant_db_url = "mysql://root@db.example:3306/?password=qu3ry&ssl-mode=REQUIRED".to_owned().into();
        cfg.health_url = Some("https://probe:h3alth@{hostname}/healthz".into());
        let printed = format!("{cfg:?}");
        for secret in ["hunter2", "s3,cret", "cret@", "qu3ry", "h3alth"] {
            assert!(!printed.contains(secret), "{secret}: {printed}");
        }
        assert!(printed.contains("db.example") && printed.contains("ssl-mode=REQUIRED"), "{printed}");
    }

    fn refused(raw: Raw) -> String {
        WorkerConfig::from_raw(raw).expect_err("refused")
    }

    #[test]
    fn a_step_retry_override_takes_the_rest_from_the_general_policy_and_none_turns_compensation_off() {
        let base = RetryPolicy { initial_ms: 7, max_attempts: 9, ..RetryPolicy::default() };
        let mut step_retry = HashMap::new();
        step_retry
            .insert("deploy_stack".to_owned(), RetryOverride { max_attempts: Some(2), ..RetryOverride::default() });
        let cfg = WorkerConfig::from_raw(Raw { retry: base, step_retry, ..Raw::default() }).unwrap();
        let stack = cfg.retry_for(StepName::DeployStack);
        assert_eq!((stack.initial_ms, stack.max_attempts), (7, 2));
        assert_eq!(cfg.retry_for(StepName::HealthCheck).max_attempts, 9);
        let off = WorkerConfig::from_raw(Raw { compensate: "none".into(), ..Raw::default() }).unwrap();
        assert!(off.compensate.is_empty());
        let unset = WorkerConfig::from_raw(Raw { compensate: " ".into(), ..Raw::default() }).unwrap();
        assert_eq!(unset.compensate, [StepName::CreateDatabase], "empty means the default, not off");
    }

    #[test]
    fn zeros_that_would_stall_every_run_are_refused_by_name() {
        assert!(refused(Raw { worker_concurrency: 0, ..Raw::default() }).contains("LANDLORD_WORKER_CONCURRENCY"));
        assert!(refused(Raw { ack_wait_secs: 0, ..Raw::default() }).contains("LANDLORD_ACK_WAIT_SECS"));
        assert!(refused(Raw { lease_ttl_secs: 0, ..Raw::default() }).contains("LANDLORD_LEASE_TTL_SECS"));
    }

    #[test]
    fn a_dns_target_without_a_zone_and_a_zone_without_a_target_are_refused() {
        let err = refused(Raw { dns_target: Some("lb.example.net".into()), ..Raw::default() });
        assert!(err.contains("LANDLORD_DNS_TARGET") && err.contains("LANDLORD_ROUTE53_ZONE_ID"), "{err}");
        let err = refused(Raw { route53_zone_id: Some("Z1".into()), ..Raw::default() });
        assert!(err.contains("LANDLORD_DNS_TARGET"), "{err}");
        let bad = Raw { route53_zone_id: Some("Z1".into()), dns_target: Some("not a host".into()), ..Raw::default() };
        assert!(refused(bad).contains("is not a hostname"));
    }

    #[test]
    fn unparseable_urls_are_refused_without_their_password() {
        let err = refused(Raw { database_url: "postgres//cp:s3cret@db".into(), ..Raw::default() });
        assert!(err.contains("LANDLORD_DATABASE_URL") && !err.contains("s3cret"), "{err}");
        let err = refused(Raw { tenant_db_url: "http://root:pw@db:3306".into(), ..Raw::default() });
        assert!(err.contains("LANDLORD_TENANT_DB_URL") && err.contains("mysql://") && !err.contains(":pw@"), "{err}");
        let err = refused(Raw { health_url: Some("ftp://{hostname}/x".into()), ..Raw::default() });
        assert!(err.contains("LANDLORD_HEALTH_URL"), "{err}");
        assert!(
            refused(Raw { nats_url: "nats://a:4222,http://[::1".into(), ..Raw::default() })
                .contains("LANDLORD_NATS_URL")
        );
        let bare = Raw { nats_url: "127.0.0.1:4222, nats://b:4222".into(), ..Raw::default() };
        assert!(WorkerConfig::from_raw(bare).is_ok(), "a bare host:port is what the NATS client accepts too");
    }

    #[test]
    fn an_unknown_step_in_the_compensation_policy_is_refused_by_name() {
        let raw = Raw { compensate: "create_database,create_databse".into(), ..Raw::default() };
        let err = WorkerConfig::from_raw(raw).err().unwrap();
        assert!(err.contains("LANDLORD_COMPENSATE") && err.contains("create_databse"), "{err}");
        let mut retry = HashMap::new();
        retry.insert("helth_check".to_owned(), RetryOverride::default());
        let err = WorkerConfig::from_raw(Raw { step_retry: retry, ..Raw::default() }).err().unwrap();
        assert!(err.contains("LANDLORD_STEP_RETRY__helth_check__*"), "{err}");
    }
}
