//! A real SMTP server for the mail tests: `aiosmtpd` (PyPI, installed by `scripts/services`) on a free
//! loopback port, writing every message it accepts into a Maildir the test reads.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running sink; stopped when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

fn aiosmtpd() -> PathBuf {
    let venv = crate::tools_venv().join("bin/aiosmtpd");
    if venv.exists() { venv } else { "aiosmtpd".into() }
}

impl SmtpSink {
    /// Starts the sink on `port` (a free one the test chose, perhaps before the sink was wanted).
    pub fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(aiosmtpd())
            .args(["-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts (scripts/services installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, dir, port }
    }

    /// Every message received so far, as its raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.dir.path().join("maildir").join(sub)) else { continue };
            for entry in entries.flatten() {
                out.push(std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        out
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
