//! Landlord reaches a NATS server that requires a user and password over TLS with a private CA, and never
//! prints the password: not in errors, not in the settings' debug output.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use landlord_bus::{Bus, NatsSettings, StreamSettings};
use landlord_tests::{free_port, tls::TlsServer};
use secrecy::SecretString;

/// A private nats-server with JetStream, a user and password, and TLS with the test CA's certificate.
struct SecureNats {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl SecureNats {
    fn start(tls: &TlsServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\n\
                 authorization {{ user: landlord, password: \"pw-never-printed\" }}\n\
                 tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
                dir.path().join("js").display(),
                tls.cert_file.display(),
                tls.key_file.display()
            ),
        )
        .unwrap();
        let child = Command::new(landlord_tests::nats_server_binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port, _dir: dir }
    }
}

impl Drop for SecureNats {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn settings(nats: &SecureNats, tls: &TlsServer, password: &str) -> NatsSettings {
    NatsSettings::from_parts(
        &format!("tls://localhost:{}", nats.port),
        None,
        None,
        Some("landlord".into()),
        Some(SecretString::from(password.to_owned())),
        Some(tls.ca_file.display().to_string()),
        true,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landlord_reaches_nats_with_a_password_over_tls_and_never_prints_the_password() {
    let tls = TlsServer::start().await;
    let nats = SecureNats::start(&tls);

    // The right password, over TLS trusting the private CA: streams are set up as usual.
    let good = settings(&nats, &tls, "pw-never-printed");
    assert!(!format!("{good:?}").contains("pw-never-printed"));
    let bus = tokio::time::timeout(Duration::from_secs(20), Bus::connect_with(&good))
        .await
        .expect("connects in time")
        .expect("connects");
    bus.ensure_streams(&StreamSettings::default()).await.expect("JetStream over an authenticated TLS link");

    // A wrong password never gets in: the client keeps retrying in the background, as at any start-up,
    // and nothing can be done over it.
    let wrong = settings(&nats, &tls, "wrong-password");
    let attempt = tokio::time::timeout(Duration::from_secs(3), async {
        let bus = Bus::connect_with(&wrong).await?;
        bus.ensure_streams(&StreamSettings::default()).await
    })
    .await;
    assert!(!matches!(attempt, Ok(Ok(()))), "a wrong password was let in");

    // A password in the URL is never repeated in an error.
    let in_url = NatsSettings::new("nats://landlord:pw-in-url@127.0.0.1:1,bad url");
    let err = Bus::connect_with(&in_url).await.unwrap_err().to_string();
    assert!(!err.contains("pw-in-url"), "{err}");
    assert!(err.contains("landlord:***@127.0.0.1:1"), "{err}");
}
