//! Starts a local `nats-server -js` for `landlord dev` when nothing answers at the configured URL, and
//! stops it when Landlord exits.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use tokio::process::{Child, Command};

/// Where to find nats-server: `$LANDLORD_NATS_SERVER`, the tools venv `scripts/services` fills, or PATH.
fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("LANDLORD_NATS_SERVER") {
        return p.into();
    }
    let venv = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/landlord/venv/bin/nats-server");
    if venv.exists() { venv } else { "nats-server".into() }
}

/// Returns a running child when one had to be started, `None` when a server already answers.
pub async fn ensure(nats_url: &str) -> anyhow::Result<Option<Child>> {
    let url = url::Url::parse(nats_url).context("LANDLORD_NATS_URL is not a URL")?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(4222);
    if tokio::net::TcpStream::connect((host.as_str(), port)).await.is_ok() {
        return Ok(None);
    }
    let dir = PathBuf::from(".landlord/nats");
    std::fs::create_dir_all(&dir)?;
    tracing::info!(%host, port, "no NATS answering; starting a local nats-server with JetStream");
    let child = Command::new(binary())
        .args(["-js", "-a", &host, "-p", &port.to_string(), "-sd"])
        .arg(&dir)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start nats-server (run scripts/services to install it, or set LANDLORD_NATS_SERVER)")?;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect((host.as_str(), port)).await.is_ok() {
            return Ok(Some(child));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("nats-server did not start listening on {host}:{port}")
}
