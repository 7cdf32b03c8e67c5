//! Metrics as Prometheus scrapes them: a worker process with its own port (`LANDLORD_WORKER_HTTP_ADDR`:
//! `/healthz`, `/readyz`, `/metrics`) and the ingress's `/metrics`, after one purchase provisioned, one
//! whose plan script fails, and one webhook with a bad signature. The counters and histograms have exactly
//! the expected values; the gauges come from the control plane and the consumer. The Grafana dashboard
//! shipped in `deploy/` queries only series Landlord exports.

use std::{collections::BTreeMap, time::Duration};

use landlord_protocol::TenantStatus;
use landlord_tests::{
    Engine, Options, TestApp,
    chaos::{WorkerProcess, drop_database, eventually, fresh_postgres_database},
    free_port, purchase_body, repo_root, tenant_db_url, unique_slug,
};
use landlord_worker::telemetry;

/// A scrape: `name` and its labels (sorted) → value.
type Scrape = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn parse(text: &str) -> Scrape {
    let mut out = Scrape::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest.trim_end_matches('}');
                let pairs = labels
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').expect("label=value");
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), pairs)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        out.insert((name, labels), value.parse().expect("a number"));
    }
    out
}

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    *scrape.get(&(name.to_owned(), labels.clone())).unwrap_or_else(|| {
        let known: Vec<_> = scrape.keys().filter(|(n, _)| n == name).collect();
        panic!("no series {name}{labels:?}; there are {known:?}")
    })
}

async fn scrape(http: &reqwest::Client, url: &str) -> Scrape {
    let res = http.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    parse(&res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened_and_the_worker_port_answers_probes() {
    let (control_plane, cp_name) = fresh_postgres_database("metrics").await;
    let opts = Options {
        in_process_worker: false,
        control_plane: Some(control_plane.clone()),
        ..Options::new(Engine::MariaDb)
    };
    let app = TestApp::spawn_with(opts).await;
    let port = free_port();
    let extra =
        [("LANDLORD_WORKER_HTTP_ADDR", format!("127.0.0.1:{port}")), ("LANDLORD_TIMER_INTERVAL_SECS", "1".to_owned())];
    let logs = crate::chaos::harness::log_dir("metrics");
    let env = crate::chaos::harness::worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &extra);
    let _worker = WorkerProcess::spawn(&env, crate::chaos::harness::log(&logs, "worker"));
    let worker_url = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(60), "the worker ready", || async {
        let res = app.http.get(format!("{worker_url}/readyz")).send().await;
        res.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert_eq!(app.http.get(format!("{worker_url}/healthz")).send().await.unwrap().status(), 200);

    let (good, good_tenant) = purchase_body(&unique_slug("metrics"), 10, 10);
    let (broken, broken_tenant) = purchase_body(&unique_slug("metricsbad"), 8, 10);
    assert_eq!(app.post_webhook(good.clone(), Some("t=1,v1=00".into())).await.status(), 400);
    assert_eq!(app.post_signed(good).await.status(), 200);
    assert_eq!(app.post_signed(broken).await.status(), 200);
    app.wait_for_status(&good_tenant, TenantStatus::Active).await;
    app.wait_for_status(&broken_tenant, TenantStatus::Failed).await;

    let ingress = scrape(&app.http, &format!("{}/metrics", app.base_url)).await;
    assert_eq!(value(&ingress, telemetry::WEBHOOKS_RECEIVED, &[]), 3.0);
    assert_eq!(value(&ingress, telemetry::WEBHOOKS_VERIFIED, &[]), 2.0);
    assert_eq!(value(&ingress, telemetry::WEBHOOKS_REJECTED, &[("reason", "bad_signature")]), 1.0);
    let published = [("kind", "provision"), ("duplicate", "false")];
    assert_eq!(value(&ingress, telemetry::COMMANDS_PUBLISHED, &published), 2.0);

    // The gauges are sampled every second: wait for a sample taken after both runs ended.
    eventually(Duration::from_secs(30), "the gauges sampled", || async {
        let worker = scrape(&app.http, &format!("{worker_url}/metrics")).await;
        worker.get(&(telemetry::TENANTS.to_owned(), [("status".to_owned(), "active".to_owned())].into())) == Some(&1.0)
            && worker.get(&(telemetry::TENANTS.to_owned(), [("status".to_owned(), "failed".to_owned())].into()))
                == Some(&1.0)
    })
    .await;
    let worker = scrape(&app.http, &format!("{worker_url}/metrics")).await;
    let completed = [("kind", "provision"), ("outcome", "completed"), ("failing_step", "")];
    assert_eq!(value(&worker, telemetry::RUNS, &completed), 1.0);
    let failed = [("kind", "provision"), ("outcome", "failed"), ("failing_step", "apply_schema")];
    assert_eq!(value(&worker, telemetry::RUNS, &failed), 1.0);
    let count = format!("{}_count", telemetry::PROVISIONING_DURATION);
    assert_eq!(value(&worker, &count, &[]), 1.0, "only the tenant that became active");
    let step_count = format!("{}_count", telemetry::STEP_DURATION);
    // Both purchases placed and made their databases; only the good one got further.
    for (step, times) in [("place_database", 2.0), ("create_database", 2.0), ("apply_schema", 1.0), ("activate", 1.0)] {
        let n = value(&worker, &step_count, &[("step", step), ("outcome", "succeeded")]);
        assert_eq!(n, times, "{step} succeeded {times} times");
    }
    // Skipped steps are counted apart: the health check (no health URL: skipped when it ran) and the
    // welcome (no mail server: skipped without running) of the good purchase; DNS (no zone) runs beside
    // the database steps, so the broken purchase may have skipped it too.
    for step in ["health_check", "notify"] {
        assert_eq!(value(&worker, &step_count, &[("step", step), ("outcome", "skipped")]), 1.0, "{step} skipped");
        let succeeded = worker.get(&(
            step_count.clone(),
            [("step", step), ("outcome", "succeeded")].map(|(k, v)| (k.to_owned(), v.to_owned())).into(),
        ));
        assert_eq!(succeeded, None, "{step} is not counted as succeeded");
    }
    assert!(value(&worker, &step_count, &[("step", "configure_dns"), ("outcome", "skipped")]) >= 1.0);
    assert_eq!(value(&worker, &step_count, &[("step", "apply_schema"), ("outcome", "failed")]), 1.0);
    for status in ["pending", "provisioning", "suspended", "awaiting_operator", "moving", "offboarding", "deleted"] {
        assert_eq!(value(&worker, telemetry::TENANTS, &[("status", status)]), 0.0, "{status}");
    }
    assert_eq!(value(&worker, telemetry::DNS_PENDING, &[]), 0.0);
    assert_eq!(value(&worker, telemetry::CONSUMER_PENDING, &[]), 0.0);
    assert_eq!(value(&worker, telemetry::CONSUMER_ACK_PENDING, &[]), 0.0);
    assert_eq!(value(&worker, telemetry::OLDEST_AWAITING_OPERATOR, &[]), 0.0);
    // The broken purchase's failed step is not running.
    assert_eq!(value(&worker, telemetry::OLDEST_RUNNING_STEP, &[]), 0.0);
    let buckets = format!("{}_bucket", telemetry::STEP_DURATION);
    assert!(worker.keys().any(|(n, l)| *n == buckets && l.get("le").is_some_and(|le| le == "+Inf")), "a histogram");

    drop_database(&cp_name).await;
}

/// Every `landlord_…` name a Grafana panel or an alert queries is one Landlord exports.
#[test]
fn the_shipped_dashboard_and_alerts_query_only_exported_series() {
    let exported: Vec<String> = telemetry::ALL
        .iter()
        .flat_map(|(name, kind, _)| match kind {
            telemetry::Kind::Histogram => {
                vec![(*name).to_owned(), format!("{name}_bucket"), format!("{name}_count"), format!("{name}_sum")]
            }
            _ => vec![(*name).to_owned()],
        })
        .collect();
    let queried = |text: &str| -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("landlord_") {
            let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            names.push(name.clone());
            rest = &rest[at + name.len()..];
        }
        names
    };
    let dashboard = std::fs::read_to_string(repo_root().join("deploy/grafana/landlord.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let panels = json["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "a panel per series group");
    for panel in panels {
        let targets = panel["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(!targets.is_empty() || panel["type"] == "row", "panel {} queries something", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            let names = queried(expr);
            assert!(!names.is_empty(), "panel {}: {expr}", panel["title"]);
            for name in names {
                assert!(
                    exported.contains(&name),
                    "panel {} queries {name}, which Landlord does not export",
                    panel["title"]
                );
            }
        }
    }
    let alerts = std::fs::read_to_string(repo_root().join("deploy/prometheus/alerts.yml")).unwrap();
    let names = queried(&alerts);
    assert!(names.len() >= 5, "the alerts query Landlord's series");
    for name in names {
        assert!(exported.contains(&name), "an alert queries {name}, which Landlord does not export");
    }
}

/// Where promtool is: `$LANDLORD_PROMTOOL`, the tools venv (`scripts/test` puts it there), or the PATH.
fn promtool() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("LANDLORD_PROMTOOL") {
        return p.into();
    }
    let venv = landlord_tests::tools_venv().join("bin/promtool");
    if venv.exists() { venv } else { "promtool".into() }
}

/// The shipped alert rules load, and each fires on the series that should fire it and not on healthy
/// ones (`deploy/prometheus/alerts_test.yml`, run by Prometheus's own `promtool test rules`).
#[test]
fn the_shipped_alerts_fire_when_they_should_and_not_otherwise() {
    let dir = repo_root().join("deploy/prometheus");
    for args in [["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]] {
        let out = std::process::Command::new(promtool())
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("promtool runs (scripts/test installs it): {e}"));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "promtool {}: {text}", args.join(" "));
        assert!(text.contains("SUCCESS"), "{text}");
    }
}
