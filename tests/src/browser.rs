//! Real headless Chromium, driven through chromedriver (Debian's `chromium` and `chromium-driver`, which
//! `scripts/test` installs) over the W3C WebDriver protocol: plain HTTP and JSON, enough to open a page,
//! read and click what is on it, answer a confirmation and take a screenshot.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::free_port;

/// A browser session; the driver and its browser are stopped when dropped.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    profile: tempfile::TempDir,
}

fn program(names: &[&str]) -> String {
    for name in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let path = Path::new(dir).join(name);
            if path.exists() {
                return path.display().to_string();
            }
        }
    }
    names[0].to_owned()
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session of `width`×`height`.
    pub async fn start(width: u32, height: u32) -> Self {
        let port = free_port();
        let driver = Command::new(program(&["chromedriver"]))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (Debian package chromium-driver; scripts/test installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer on {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        // Chromium's sandbox needs user namespaces that containers and root processes often do not get;
        // the browser only ever opens this test's own page on 127.0.0.1.
        args.push("--no-sandbox".to_owned());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": program(&["chromium", "chromium-browser"]), "args": args},
        }}});
        let res: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = res["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {res}")).to_owned();
        Self { driver, http, session: format!("{base}/session/{session}"), profile }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res: Value = req.send().await.unwrap().json().await.unwrap();
        res["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its result.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let v = self
            .eval("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", json!([css]))
            .await;
        v.as_str().map(str::to_owned)
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let found =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned();
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
    }

    /// Types `text` into the first element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let found =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        let id = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("element").to_owned();
        self.call(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({"text": text}))).await;
    }

    /// The text of the open confirmation, then accepts it.
    pub async fn accept_confirmation(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.call(reqwest::Method::GET, "/alert/text", None).await;
            if let Some(text) = text.as_str() {
                self.call(reqwest::Method::POST, "/alert/accept", Some(json!({}))).await;
                return text.to_owned();
            }
            assert!(Instant::now() < deadline, "no confirmation opened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` (a function body) returns something truthy; returns it.
    pub async fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(script, json!([])).await;
            let truthy = !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0));
            if truthy {
                return v;
            }
            if Instant::now() >= deadline {
                let page = self.eval("return document.body.innerText;", json!([])).await;
                let logs = self.eval("return JSON.stringify(window.__errors || []);", json!([])).await;
                panic!(
                    "the page never showed {what}; it shows:\n{}\nerrors: {logs}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().expect("base64")).unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The browser is the driver's child; it goes when its session is deleted or, failing that, with
        // anything still running from this session's profile.
        let _ = Command::new("curl").args(["-s", "-X", "DELETE", &self.session]).output();
        self.driver.kill().ok();
        self.driver.wait().ok();
        let _ = Command::new("pkill").arg("-f").arg(self.profile.path()).status();
    }
}
