//! The ingress at its edges: a body too large, a client too slow, too many callers at once, an admin token
//! being guessed, and NATS gone. Each is refused quickly, in the JSON error shape, without internal text.
//! Tests that need limits smaller than production's run a second ingress on the app's NATS.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use landlord_ingress::{IngressConfig, Limits};
use landlord_tests::{ADMIN_TOKEN, Engine, TestApp, checkout_event, plan_metadata};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A webhook whose headers arrive whole but whose body stops after six of its 1000 bytes.
const STALLED_WEBHOOK: &str = "POST /webhooks/stripe HTTP/1.1\r\nHost: landlord\r\n\
     Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":";

/// A second ingress on `app`'s NATS with `limits`, serving once this returns; it stops with the app.
async fn spawn_ingress(app: &TestApp, limits: Limits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = IngressConfig {
        http_addr: addr,
        nats_url: app.nats_url.clone(),
        nats_auth: landlord_bus::NatsSettings::default(),
        stripe_webhook_secrets: vec![SecretString::from(app.secret.clone())],
        stripe_tolerance: Duration::from_secs(300),
        duplicate_window: Duration::from_secs(120),
        replicas: 1,
        admin_tokens: landlord_tests::admin_tokens(),
        database_url: Some(app.worker_config.database_url.clone()),
        secret_keys: None,
        limits,
        plans: landlord_tests::test_plans(),
    };
    tokio::spawn(landlord_ingress::run(cfg, listener, app.shutdown.child_token()));
    let healthz = format!("http://{addr}/healthz");
    for _ in 0..100 {
        if app.http.get(&healthz).send().await.is_ok_and(|r| r.status().is_success()) {
            return addr;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the second ingress never answered /healthz");
}

/// Writes `request` on a fresh connection and sends nothing more. Returns what the ingress wrote before it
/// closed the connection (nothing, when it just closed it) and how long after the write that took.
async fn send_and_stall(addr: SocketAddr, request: &str) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let written = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), stream.read_to_end(&mut answer))
        .await
        .expect("the ingress cut the stalled client off");
    // A reset ends the connection as surely as a close.
    if let Err(e) = read {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    (String::from_utf8_lossy(&answer).into_owned(), written.elapsed())
}

/// The status and the JSON body of an answer.
async fn status_and_json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.expect("a JSON body"))
}

/// The checked-in checkout event turned into an event type Landlord ignores, padded with trailing
/// whitespace (still valid JSON) to exactly `len` bytes.
fn ignored_event_of_length(len: usize) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(&checkout_event("evt_pad", "cs_pad", json!({}))).unwrap();
    event["type"] = "invoice.paid".into();
    let mut body = serde_json::to_vec(&event).unwrap();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_body_over_64_kib_is_refused_with_413_and_nothing_is_published() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    // Correctly signed, so its size is the only thing wrong with it.
    let (status, body) = status_and_json(app.post_signed(ignored_event_of_length(64 * 1024 + 1)).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("body_too_large")));
    // Exactly 64 KiB is still read, verified and answered.
    let (status, body) = status_and_json(app.post_signed(ignored_event_of_length(64 * 1024)).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["ignored"].as_str().unwrap().contains("invoice.paid"));
    let stream = app.bus.jetstream().get_stream("LANDLORD_COMMANDS").await.unwrap();
    assert_eq!(stream.get_info().await.unwrap().state.last_sequence, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_its_body_gets_408_when_the_request_timeout_passes() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let ingress = spawn_ingress(&app, Limits { request_timeout: Duration::from_secs(1), ..Limits::default() }).await;
    let (answer, took) = send_and_stall(ingress, STALLED_WEBHOOK).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"timeout""#), "{answer}");
    assert!(took >= Duration::from_millis(800) && took < Duration::from_secs(4), "answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_its_headers_is_disconnected_when_the_header_timeout_passes() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let ingress = spawn_ingress(&app, Limits { header_timeout: Duration::from_secs(1), ..Limits::default() }).await;
    let (answer, took) = send_and_stall(ingress, "POST /webhooks/stripe HTTP/1.1\r\nHost: landlord\r\n").await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(4), "disconnected after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_concurrency_limit_get_503_at_once_while_liveness_still_answers() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let limits = Limits { max_concurrency: 1, request_timeout: Duration::from_secs(5), ..Limits::default() };
    let ingress = spawn_ingress(&app, limits).await;
    // An unsigned webhook: 400 when it gets a permit, 503 when none is free.
    let probe = || app.http.post(format!("http://{ingress}/webhooks/stripe")).body("{}").send();
    // A webhook whose body never comes holds the only permit.
    let stall = || async {
        let mut stalled = TcpStream::connect(ingress).await.unwrap();
        stalled.write_all(STALLED_WEBHOOK.as_bytes()).await.unwrap();
        stalled
    };
    let mut stalled = stall().await;
    let mut refused = None;
    for _ in 0..40 {
        let res = probe().await.unwrap();
        if res.status() == 503 {
            refused = Some(res);
            break;
        }
        // The ingress may have taken this probe before the stalled request, which was then the one refused
        // (it was answered): stall another.
        let mut byte = [0u8; 1];
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(50), stalled.peek(&mut byte)).await {
            stalled = stall().await;
        }
    }
    let refused = refused.expect("a second request is refused while the first holds the only permit");
    assert_eq!(refused.headers()["retry-after"], "1");
    let (_, body) = status_and_json(refused).await;
    assert_eq!(body["error"]["code"], "overloaded");
    // The refusal is counted with the webhooks, though no handler saw it: an overloaded ingress must not
    // look quiet on its dashboard.
    let metrics = app.http.get(format!("http://{ingress}/metrics")).send().await.unwrap().text().await.unwrap();
    let value = |series: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse::<f64>().ok()))
            .unwrap_or_else(|| panic!("{series} in /metrics:\n{metrics}"))
    };
    let overloaded = value("landlord_webhooks_rejected_total{reason=\"overloaded\"}");
    assert!(overloaded >= 1.0, "overloaded refusals counted: {overloaded}");
    assert!(value("landlord_webhooks_received_total") >= overloaded + 1.0, "every probe and the stall received");
    // Liveness and readiness still answer, so no orchestrator restarts or unroutes a busy replica.
    assert_eq!(app.http.get(format!("http://{ingress}/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(app.http.get(format!("http://{ingress}/readyz")).send().await.unwrap().status(), 200);
    // Once the stalled client goes away (or at the latest its request timeout), its permit is free again.
    drop(stalled);
    let mut ready = false;
    for _ in 0..160 {
        if probe().await.unwrap().status() == 400 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the permit came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_wrong_tokens_lock_an_address_out_even_with_the_right_token_while_other_routes_answer() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    // Not a tenant id: a request that passes authentication gets 400 and publishes nothing.
    let url = format!("{}/v1/tenants/not-a-tenant/provision", app.base_url);
    for guess in 1..=10 {
        let res = app.http.post(&url).bearer_auth(format!("guess-{guess}")).send().await.unwrap();
        assert_eq!(res.status(), 401, "guess {guess}");
    }
    let eleventh = app.http.post(&url).bearer_auth("guess-11").send().await.unwrap();
    let retry_after: u64 = eleventh.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After: {retry_after}");
    let (status, body) = status_and_json(eleventh).await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("too_many_attempts")));
    let correct = app.http.post(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(correct.status(), 429);

    // Everything that is not the admin API still answers the same address.
    assert_eq!(app.http.get(format!("{}/healthz", app.base_url)).send().await.unwrap().status(), 200);
    assert_eq!(app.http.get(format!("{}/readyz", app.base_url)).send().await.unwrap().status(), 200);
    let (status, body) = status_and_json(app.post_signed(b"{\"nope\":1}".to_vec()).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_event")));
}

/// Linux routes all of 127.0.0.0/8 to the loopback interface, so a second client address is at hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_out_address_does_not_lock_out_another() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let url = format!("{}/v1/tenants/not-a-tenant/provision", app.base_url);
    for _ in 0..11 {
        app.http.post(&url).bearer_auth("guess").send().await.unwrap();
    }
    assert_eq!(app.http.post(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().status(), 429);

    let other = reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, 2])).build().unwrap();
    // Authenticated, then refused for the path: the other address is not locked out.
    let (status, body) = status_and_json(other.post(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_tenant_id")));
    // Its own failures count from zero.
    assert_eq!(other.post(&url).bearer_auth("guess").send().await.unwrap().status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_answers_503_without_nats_text_and_readyz_says_only_not_ready() {
    let mut app = TestApp::spawn(Engine::MariaDb).await;
    // An active tenant, so suspending it passes the API's checks and meets the outage.
    let slug = landlord_tests::unique_slug("outage");
    let tenant = app.buy(&slug, 10).await;
    app.wait_for_status(&tenant, landlord_protocol::TenantStatus::Active).await;
    app.nats.as_mut().expect("a private NATS").kill();
    let message = "Landlord cannot take this request now; try again";
    let generic = json!({"error": {"code": "unavailable", "message": message}});

    let body = checkout_event("evt_outage", "cs_outage", plan_metadata("outage-shop", 10, 10));
    assert_eq!(status_and_json(app.post_signed(body).await).await, (503, generic.clone()));
    let suspend = app
        .http
        .post(format!("{}/v1/tenants/{tenant}/suspend", app.base_url))
        .bearer_auth(landlord_tests::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_json(suspend).await, (503, generic));

    let readyz = app.http.get(format!("{}/readyz", app.base_url)).send().await.unwrap();
    assert_eq!(status_and_json(readyz).await, (503, json!({"status": "not ready"})));
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_in_the_json_error_shape() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let (status, body) = status_and_json(app.http.get(format!("{}/nope", app.base_url)).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let get_webhook = app.http.get(format!("{}/webhooks/stripe", app.base_url)).send().await.unwrap();
    let (status, body) = status_and_json(get_webhook).await;
    assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")));
}
