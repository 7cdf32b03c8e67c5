//! Progress as Server-Sent Events over real HTTP: a client that drops its stream in the middle of a
//! provisioning and reconnects with `Last-Event-ID` receives every event exactly once, in order; a quiet
//! stream carries keep-alive comments; a bad `Last-Event-ID` is refused, a missing token too, and one
//! stream more than the limit gets `503`.

use std::time::Duration;

use landlord_protocol::{EventKind, ProgressEvent, TenantStatus};
use landlord_tests::{ADMIN_TOKEN, Engine, Options, TestApp, VIEWER_TOKEN, purchase_body, unique_slug};

/// One event as the stream carried it.
#[derive(Debug)]
struct Received {
    id: u64,
    event: ProgressEvent,
}

/// Reads an SSE response frame by frame.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
    comments: usize,
}

impl SseReader {
    async fn open(app: &TestApp, path: &str, token: &str, last_event_id: Option<u64>) -> reqwest::Response {
        let mut request = app.http.get(format!("{}{path}", app.base_url)).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        request.send().await.unwrap()
    }

    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        // A buffering proxy in front would hold events back otherwise.
        assert_eq!(response.headers()["x-accel-buffering"], "no");
        Self { response, buffer: String::new(), comments: 0 }
    }

    /// The next event (keep-alive comments are counted, not returned); `None` after `wait` without one.
    async fn next(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, None, String::new());
                for line in frame.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse::<u64>().expect("a numeric id"));
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if let Some(id) = id {
                    assert_eq!(kind.as_deref(), Some("progress"));
                    return Some(Received { id, event: serde_json::from_str(&data).expect("a progress event") });
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) => panic!("the stream ended"),
                Ok(Err(e)) => panic!("the stream failed: {e}"),
                Err(_) => return None,
            }
        }
    }
}

fn is_active(e: &ProgressEvent) -> bool {
    e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reconnects_with_last_event_id_gets_every_event_exactly_once() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let slug = unique_slug("sse");
    let (body, tenant) = purchase_body(&slug, 10, 10);
    let path = format!("/v1/tenants/{tenant}/events");
    // Opened before the purchase: no history yet, then everything live.
    let mut first = SseReader::new(SseReader::open(&app, &path, VIEWER_TOKEN, None).await);
    assert_eq!(app.post_signed(body).await.status(), 200);
    let mut received = Vec::new();
    for _ in 0..3 {
        received.push(first.next(Duration::from_secs(60)).await.expect("an event"));
    }
    assert!(!received.iter().any(|r| is_active(&r.event)), "dropped in the middle of the provisioning");
    drop(first);

    let last = received.last().unwrap().id;
    let mut second = SseReader::new(SseReader::open(&app, &path, VIEWER_TOKEN, Some(last)).await);
    loop {
        let next = second.next(Duration::from_secs(60)).await.expect("the rest of the provisioning");
        let done = is_active(&next.event);
        received.push(next);
        if done {
            break;
        }
    }
    // Exactly what the bus holds for the tenant, each once, in order, with increasing ids.
    let all = app.events_until(&tenant, is_active).await;
    let got: Vec<uuid::Uuid> = received.iter().map(|r| r.event.id).collect();
    let want: Vec<uuid::Uuid> = all.iter().map(|e| e.id).collect();
    assert_eq!(got, want, "every event once, in order");
    assert!(received.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    println!("sse: {} events, reconnected after id {last}", received.len());
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_streams_keep_alive_and_bad_requests_are_refused() {
    let mut opts = Options::new(Engine::MariaDb);
    opts.ingress_limits.event_keep_alive = Duration::from_secs(1);
    opts.ingress_limits.max_event_streams = 2;
    let app = TestApp::spawn_with(opts).await;
    // A private NATS with no events yet: the stream is quiet but for its keep-alives.
    let mut quiet = SseReader::new(SseReader::open(&app, "/v1/events", ADMIN_TOKEN, None).await);
    assert!(quiet.next(Duration::from_millis(2500)).await.is_none());
    assert!(quiet.comments >= 2, "a keep-alive comment every second: {}", quiet.comments);

    let tenant = landlord_protocol::TenantId::from_checkout_session("cs_sse_none");
    let path = format!("/v1/tenants/{tenant}/events");
    let res = app.http.get(format!("{}{path}", app.base_url)).send().await.unwrap();
    assert_eq!(res.status(), 401, "a token is needed");
    let res = app
        .http
        .get(format!("{}{path}", app.base_url))
        .bearer_auth(VIEWER_TOKEN)
        .header("Last-Event-ID", "1 OR 1=1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Bytes that are not text are refused too, not taken for "no id" (a replay of everything).
    let not_text = reqwest::header::HeaderValue::from_bytes(b"\xff\xfe12").unwrap();
    let res = app
        .http
        .get(format!("{}{path}", app.base_url))
        .bearer_auth(VIEWER_TOKEN)
        .header("Last-Event-ID", not_text)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let _second = SseReader::new(SseReader::open(&app, &path, VIEWER_TOKEN, None).await);
    let third = SseReader::open(&app, &path, VIEWER_TOKEN, None).await;
    assert_eq!(third.status(), 503, "one stream more than the limit");
    drop(quiet);
    // The closed stream's place is free again (the server notices the client left on its next write).
    let mut reopened = None;
    for _ in 0..50 {
        let res = SseReader::open(&app, &path, VIEWER_TOKEN, None).await;
        if res.status() == 200 {
            reopened = Some(res);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "a closed stream frees its place");
}
