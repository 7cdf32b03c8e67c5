//! One trace per purchase: the ingress and a worker run as processes with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! pointing at a small OTLP/HTTP receiver in the test, a signed checkout goes to the ingress, and the
//! spans that arrive show one trace id from the ingress's request through the worker's command to every
//! step of the provisioning. An operator's command through the admin API is traced the same way.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use landlord_protocol::TenantStatus;
use landlord_tests::{
    Engine, Options, TestApp,
    chaos::{WorkerProcess, drop_database, eventually, fresh_postgres_database},
    free_port, purchase_body, repo_root, tenant_db_url, unique_slug,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

/// A span as received: the service that sent it, its trace id (hex) and its name.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    trace: String,
    name: String,
    step: Option<String>,
}

/// An OTLP/HTTP receiver for traces (protobuf), keeping every span it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    use axum::{Router, body::Bytes, routing::post};
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = spans.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
                let mut kept = kept.lock().unwrap();
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref())
                        .map(|v| format!("{:?}", v.value))
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let step = span
                                .attributes
                                .iter()
                                .find(|a| a.key == "step")
                                .and_then(|a| a.value.as_ref())
                                .map(|v| format!("{:?}", v.value));
                            kept.push(Received {
                                service: service.clone(),
                                trace: hex::encode(&span.trace_id),
                                name: span.name,
                                step,
                            });
                        }
                    }
                }
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (url, spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_the_webhook_the_command_and_every_step() {
    let (collector, spans) = receiver().await;
    let (control_plane, cp_name) = fresh_postgres_database("traces").await;
    let opts = Options {
        in_process_worker: false,
        control_plane: Some(control_plane.clone()),
        ..Options::new(Engine::MariaDb)
    };
    let app = TestApp::spawn_with(opts).await;
    let logs = crate::chaos::harness::log_dir("traces");
    let otel = [("OTEL_EXPORTER_OTLP_ENDPOINT", collector.clone()), ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned())];
    let worker_env = crate::chaos::harness::worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &otel);
    let _worker = WorkerProcess::spawn(&worker_env, crate::chaos::harness::log(&logs, "worker"));
    let port = free_port();
    let ingress_env: Vec<(String, String)> = [
        ("LANDLORD_HTTP_ADDR", format!("127.0.0.1:{port}")),
        ("LANDLORD_NATS_URL", app.nats_url.clone()),
        ("LANDLORD_STRIPE_WEBHOOK_SECRET", app.secret.clone()),
        ("LANDLORD_PLANS", repo_root().join("tests/plans.toml").display().to_string()),
        ("LANDLORD_NATS_DUPLICATE_WINDOW_SECS", app.worker_config.duplicate_window.as_secs().to_string()),
        ("LANDLORD_DATABASE_URL", control_plane.clone()),
        ("LANDLORD_ADMIN_TOKENS", format!("ops:admin:{}", landlord_tests::ADMIN_TOKEN)),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.clone()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let _ingress =
        WorkerProcess::spawn_bin("landlord-ingress", &ingress_env, crate::chaos::harness::log(&logs, "ingress"));
    let ingress = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(60), "the ingress ready", || async {
        app.http.get(format!("{ingress}/readyz")).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;

    let (body, tenant) = purchase_body(&unique_slug("trace"), 10, 10);
    let signature = app.sign(&body);
    let res = app
        .http
        .post(format!("{ingress}/webhooks/stripe"))
        .header("Stripe-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.wait_for_status(&tenant, TenantStatus::Active).await;

    // The worker's step spans and the ingress's request span arrive in batches.
    let steps = ["place_database", "create_database", "apply_schema", "health_check", "activate", "notify"];
    eventually(Duration::from_secs(30), "the spans of the provisioning exported", || async {
        one_trace_holds(&spans.lock().unwrap(), "stripe_webhook", &steps)
    })
    .await;

    // An operator's suspend: the admin API's command span, the worker's command and its step, one trace.
    let res = app
        .http
        .post(format!("{ingress}/v1/tenants/{tenant}/suspend"))
        .bearer_auth(landlord_tests::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap_or_default());
    app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    eventually(Duration::from_secs(30), "the spans of the suspension exported", || async {
        one_trace_holds(&spans.lock().unwrap(), "admin_command", &["lock_login"])
    })
    .await;
    let spans = spans.lock().unwrap().clone();
    let traces: BTreeSet<&str> =
        spans.iter().filter(|s| s.service.contains("landlord-worker")).map(|s| s.trace.as_str()).collect();
    println!("traces: {} spans received, {} worker trace(s)", spans.len(), traces.len());
    drop_database(&cp_name).await;
}

/// Whether one trace holds the ingress's span `ingress_span`, the worker's `command` span and a worker span
/// for each of `steps`.
fn one_trace_holds(spans: &[Received], ingress_span: &str, steps: &[&str]) -> bool {
    let mut by_trace: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for s in spans {
        let what = match &s.step {
            Some(step) => {
                format!("{}:{}", s.service, step.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
            }
            None => format!("{}:{}", s.service, s.name),
        };
        by_trace.entry(s.trace.as_str()).or_default().insert(what);
    }
    by_trace.values().any(|seen| {
        seen.iter().any(|w| w.contains("landlord-ingress") && w.ends_with(&format!(":{ingress_span}")))
            && seen.iter().any(|w| w.contains("landlord-worker") && w.ends_with(":command"))
            && steps.iter().all(|step| seen.iter().any(|w| w.contains("landlord-worker") && w.contains(step)))
    })
}
