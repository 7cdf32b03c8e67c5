//! The stack and DNS waiting logic over recorded AWS responses (`worker/tests/recorded/`), served to the
//! real SDK clients: the paths moto never takes. Time is paused, so backoff costs nothing.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::{config::Credentials, primitives::SdkBody};
use aws_smithy_http_client::test_util::infallible_client_fn;
use tokio::time::Instant;

use super::{
    dns::{Dns, DnsTarget},
    stacks::{DeployError, Stacks, TemplateSource},
};
use crate::{RetryPolicy, keepalive::NoKeepAlive};

fn recorded(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recorded").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Recorded answers per operation: (HTTP status, body).
type Answers = HashMap<String, VecDeque<(u16, String)>>;

/// Answers each operation from its own queue of (status, recorded file); the last answer repeats.
/// Every operation called is logged, in order.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<Answers>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn on(self, operation: &str, answers: &[(u16, &str)]) -> Self {
        let queue = answers.iter().map(|(s, f)| (*s, recorded(f))).collect();
        self.answers.lock().unwrap().insert(operation.into(), queue);
        self
    }

    fn calls(&self, operation: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| *c == operation).count()
    }

    fn http_client(&self, operation_of: fn(&http::Request<SdkBody>) -> String) -> aws_sdk_s3::config::SharedHttpClient {
        let me = self.clone();
        infallible_client_fn(move |req| {
            let op = operation_of(&req);
            me.calls.lock().unwrap().push(op.clone());
            let mut answers = me.answers.lock().unwrap();
            let queue = answers.get_mut(&op).unwrap_or_else(|| panic!("no recorded answer for {op}"));
            let (status, body) = if queue.len() > 1 { queue.pop_front().unwrap() } else { queue[0].clone() };
            http::Response::builder().status(status).body(body).unwrap()
        })
    }
}

fn query_action(req: &http::Request<SdkBody>) -> String {
    let body = std::str::from_utf8(req.body().bytes().unwrap_or_default()).unwrap_or_default();
    body.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or("?").to_owned()
}

fn route53_operation(req: &http::Request<SdkBody>) -> String {
    if req.uri().path().contains("/change/") { "GetChange".into() } else { req.uri().path().to_owned() }
}

fn sdk_config(http: aws_sdk_s3::config::SharedHttpClient) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(Credentials::new(
            "a", "b", None, None, "recorded",
        )))
        .http_client(http)
        .build()
}

fn poll() -> RetryPolicy {
    RetryPolicy { initial_ms: 1000, multiplier: 2.0, max_delay_ms: 10_000, max_attempts: 100, jitter: false }
}

fn stacks(script: &Script, template: &tempfile::NamedTempFile) -> Stacks {
    let cfg = sdk_config(script.http_client(query_action));
    Stacks {
        client: aws_sdk_cloudformation::Client::new(&cfg),
        template: TemplateSource::File(template.path().to_owned()),
        environment: "production".into(),
        poll: poll(),
    }
}

fn template() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), r#"{"Resources": {}}"#).unwrap();
    file
}

const NAME: &str = "acme-production-website";

#[tokio::test(start_paused = true)]
async fn a_rolled_back_stack_reports_its_failing_resource() {
    let script = Script::default()
        .on(
            "DescribeStacks",
            &[
                (400, "describe-stacks-missing.xml"),
                (200, "describe-stacks-create-in-progress.xml"),
                (200, "describe-stacks-rollback-in-progress.xml"),
                (200, "describe-stacks-rollback-complete.xml"),
            ],
        )
        .on("CreateStack", &[(200, "create-stack.xml")])
        .on("DescribeStackEvents", &[(200, "describe-stack-events-rollback.xml")]);
    let file = template();
    let stacks = stacks(&script, &file);
    let deadline = Instant::now() + Duration::from_secs(1800);
    let result = stacks.deploy(NAME, &[("Plan", "p".into())], &[], "landlord-token", &NoKeepAlive, deadline).await;
    let Err(DeployError::Failed(failure)) = result else { panic!("expected a failed stack, got {result:?}") };
    assert_eq!(
        failure.reason,
        "stack acme-production-website ended ROLLBACK_COMPLETE: AssetsBucket (AWS::S3::Bucket): \
         acme-production-assets already exists (Service: S3, Status Code: 409, Request ID: 6WEXAMPLE)"
    );
    assert!(failure.stack_id.unwrap().starts_with("arn:aws:cloudformation:"));
    assert_eq!(script.calls("CreateStack"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stack_in_progress_past_the_deadline_is_monitored_and_never_created_twice() {
    let script = Script::default().on("DescribeStacks", &[(200, "describe-stacks-create-in-progress.xml")]);
    let file = template();
    let stacks = stacks(&script, &file);
    // First attempt: the stack exists (an earlier attempt created it) and outlasts the deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = stacks.deploy(NAME, &[], &[], "landlord-token", &NoKeepAlive, deadline).await;
    let Err(DeployError::Step(e)) = first else { panic!("expected a transient hand-over, got {first:?}") };
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(e.code.as_str(), "stack_in_progress");
    let polls = script.calls("DescribeStacks");
    assert!(polls >= 4, "polled with backoff until the deadline ({polls} polls)");

    // The next attempt keeps monitoring the same stack, which then completes.
    script.answers.lock().unwrap().insert(
        "DescribeStacks".into(),
        [
            (200, recorded("describe-stacks-create-in-progress.xml")),
            (200, recorded("describe-stacks-create-complete.xml")),
        ]
        .into(),
    );
    let second =
        stacks.deploy(NAME, &[], &[], "landlord-token", &NoKeepAlive, Instant::now() + Duration::from_secs(600)).await;
    let deployed = second.expect("completes");
    assert_eq!(deployed.outputs["HealthUrl"], "https://acme.tenants.example.com/healthz");
    assert_eq!(script.calls("CreateStack"), 0, "an existing stack is never created again");
    assert_eq!(script.calls("UpdateStack"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_route53_change_is_waited_on_until_insync_and_a_stuck_one_is_reported() {
    let script = Script::default().on(
        "GetChange",
        &[(200, "get-change-pending.xml"), (200, "get-change-pending.xml"), (200, "get-change-insync.xml")],
    );
    let cfg = sdk_config(script.http_client(route53_operation));
    let dns = Dns::new(aws_sdk_route53::Client::new(&cfg), "Z1".into(), DnsTarget::Cname("lb.example.net".into()));
    let started = Instant::now();
    dns.wait_in_sync("/change/C2682N5HXP0BZ4", &poll(), Instant::now() + Duration::from_secs(120)).await.unwrap();
    assert_eq!(script.calls("GetChange"), 3);
    assert_eq!(started.elapsed(), Duration::from_secs(3), "waited 1 s then 2 s between polls");

    let stuck = Script::default().on("GetChange", &[(200, "get-change-pending.xml")]);
    let cfg = sdk_config(stuck.http_client(route53_operation));
    let dns = Dns::new(aws_sdk_route53::Client::new(&cfg), "Z1".into(), DnsTarget::Cname("lb.example.net".into()));
    let err = dns
        .wait_in_sync("/change/C2682N5HXP0BZ4", &poll(), Instant::now() + Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.code.as_str(), "dns_pending");
    assert!(err.message.contains("PENDING"));
}
