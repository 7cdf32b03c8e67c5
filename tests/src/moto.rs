//! A private moto server (`moto_server`, AWS emulator from PyPI) on a free loopback port, killed when
//! dropped, and an AWS SDK configuration pointing at it. The code under test uses the real AWS SDK.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::free_port;

/// `$LANDLORD_MOTO_SERVER`, the tools venv, or the PATH.
fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("LANDLORD_MOTO_SERVER") {
        return p.into();
    }
    let venv = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/landlord/venv/bin/moto_server");
    if venv.exists() { venv } else { "moto_server".into() }
}

#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    pub endpoint: String,
}

impl MotoServer {
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new(binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts (run scripts/services to install it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    /// What `AWS_ENDPOINT_URL`, `AWS_REGION` and test credentials would give.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_at(&self.endpoint).await
    }
}

/// AWS SDK configuration for an endpoint of the test's own (moto, or a peer that never answers), with test
/// credentials in `us-east-1`.
pub async fn sdk_config_at(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
