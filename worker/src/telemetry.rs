//! Metrics: every Landlord process records into one Prometheus registry, rendered as text on demand
//! (`GET /metrics` on the ingress and on the worker's own port). The names are listed here once, with
//! their help text, so the dashboards and alerts shipped in `deploy/` and the tests have one list to
//! check against.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Webhook requests that reached the ingress.
pub const WEBHOOKS_RECEIVED: &str = "landlord_webhooks_received_total";
/// Webhook requests whose Stripe signature was good.
pub const WEBHOOKS_VERIFIED: &str = "landlord_webhooks_verified_total";
/// Webhook requests refused, by `reason` (the error code answered).
pub const WEBHOOKS_REJECTED: &str = "landlord_webhooks_rejected_total";
/// Commands stored on JetStream, by `kind` and `duplicate` (counted where they are published).
pub const COMMANDS_PUBLISHED: &str = landlord_bus::COMMANDS_PUBLISHED;
/// Each step's duration, by `step` and `outcome` (`succeeded`, `skipped`, `failed`, `retried`).
pub const STEP_DURATION: &str = "landlord_step_duration_seconds";
/// Step attempts that failed and were tried again, by `step`.
pub const STEP_RETRIES: &str = "landlord_step_retries_total";
/// The provisioning run that made a tenant active, from its start to `active`.
pub const PROVISIONING_DURATION: &str = "landlord_provisioning_duration_seconds";
/// Runs that ended, by `kind`, `outcome` and `failing_step` (empty unless one failed).
pub const RUNS: &str = "landlord_runs_total";
/// Tenants by `status`, from the control plane.
pub const TENANTS: &str = "landlord_tenants";
/// Tenants whose DNS is not confirmed yet.
pub const DNS_PENDING: &str = "landlord_dns_pending_tenants";
/// Commands stored and not yet delivered to a worker.
pub const CONSUMER_PENDING: &str = "landlord_consumer_pending_messages";
/// Commands delivered and not yet acknowledged.
pub const CONSUMER_ACK_PENDING: &str = "landlord_consumer_ack_pending_messages";
/// How long the longest-running step has been running (0 when none runs).
pub const OLDEST_RUNNING_STEP: &str = "landlord_oldest_running_step_seconds";
/// How long the tenant waiting longest for an operator has waited (0 when none waits).
pub const OLDEST_AWAITING_OPERATOR: &str = "landlord_oldest_awaiting_operator_seconds";
/// Delivery attempts of mail, by `kind` (`welcome`, `operator`) and `outcome` (`sent`, `failed`, `given_up`).
pub const MAILS: &str = "landlord_mails_total";

/// Renewals of a worker's leases (one control-plane write each, however many tenants it runs).
pub const LEASE_RENEWALS: &str = "landlord_lease_renewals_total";
/// Progress acknowledgements sent to JetStream for messages being worked on.
pub const PROGRESS_ACKS: &str = "landlord_progress_acks_total";

/// What a series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every series Landlord exports, with its kind and help text.
pub const ALL: &[(&str, Kind, &str)] = &[
    (WEBHOOKS_RECEIVED, Kind::Counter, "Stripe webhook requests received"),
    (WEBHOOKS_VERIFIED, Kind::Counter, "Stripe webhook requests with a good signature"),
    (WEBHOOKS_REJECTED, Kind::Counter, "Stripe webhook requests refused, by reason"),
    (COMMANDS_PUBLISHED, Kind::Counter, "commands stored on JetStream, by kind"),
    (STEP_DURATION, Kind::Histogram, "step durations, by step and outcome"),
    (STEP_RETRIES, Kind::Counter, "step attempts tried again, by step"),
    (PROVISIONING_DURATION, Kind::Histogram, "provisioning runs that ended active, start to end"),
    (RUNS, Kind::Counter, "runs ended, by kind, outcome and failing step"),
    (TENANTS, Kind::Gauge, "tenants by status"),
    (DNS_PENDING, Kind::Gauge, "tenants whose DNS is not confirmed yet"),
    (CONSUMER_PENDING, Kind::Gauge, "commands waiting for a worker"),
    (CONSUMER_ACK_PENDING, Kind::Gauge, "commands delivered and not yet acknowledged"),
    (OLDEST_RUNNING_STEP, Kind::Gauge, "age of the longest-running step"),
    (OLDEST_AWAITING_OPERATOR, Kind::Gauge, "age of the longest wait for an operator"),
    (MAILS, Kind::Counter, "mail delivery attempts, by kind and outcome"),
    (LEASE_RENEWALS, Kind::Counter, "control-plane writes renewing a worker's tenant leases"),
    (PROGRESS_ACKS, Kind::Counter, "progress acknowledgements keeping running commands from redelivery"),
];

/// Duration buckets in seconds: a step takes milliseconds, a stack up to half an hour.
const DURATION_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 1800.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's registry, installed as the global recorder on first use. Durations are histograms (not
/// summaries), so several workers' series add up.
pub fn metrics() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder installed first (an embedding program's) keeps recording; this one renders empty.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed already; /metrics shows only Landlord's own");
        }
        // The first failure of a process must show in `rate()`: the series alerts divide exist from the start,
        // a failed provisioning's once for every step it can fail at (a failure names its step).
        metrics::counter!(RUNS, "kind" => "provision", "outcome" => "completed", "failing_step" => "").increment(0);
        for step in crate::steps::provisioning().names() {
            metrics::counter!(RUNS, "kind" => "provision", "outcome" => "failed", "failing_step" => step.as_str())
                .increment(0);
        }
        for (name, kind, help) in ALL {
            match kind {
                Kind::Counter => metrics::describe_counter!(*name, *help),
                Kind::Gauge => metrics::describe_gauge!(*name, *help),
                Kind::Histogram => metrics::describe_histogram!(*name, metrics::Unit::Seconds, *help),
            }
        }
        handle
    })
}

/// The registry as Prometheus text.
pub fn render() -> String {
    let handle = metrics();
    handle.run_upkeep();
    handle.render()
}
