//! Real processes for the chaos suite: `landlord-worker` processes to SIGKILL or SIGTERM, a private
//! MariaDB to stop and start, a three-node NATS cluster to lose a node from, and fresh PostgreSQL
//! databases for a control plane several processes share.

use std::{
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use crate::{free_port, nats::nats_server_binary};

/// A binary of this workspace, next to the test binary (`target/debug/`). `scripts/test` builds them.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "kill {sig} {pid} failed");
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `landlord-worker` process configured by environment variables, as in production.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Child,
    pub log: PathBuf,
}

impl WorkerProcess {
    pub fn spawn(env: &[(String, String)], log: PathBuf) -> Self {
        Self::spawn_bin("landlord-worker", env, log)
    }

    /// Another binary of the workspace (`landlord-ingress`), configured the same way.
    pub fn spawn_bin(bin: &str, env: &[(String, String)], log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("process log");
        let child = Command::new(workspace_bin(bin))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} starts: {e}"));
        Self { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no cleanup, no last acknowledgement, leases left to expire.
    pub fn kill(&mut self) {
        signal(self.pid(), "-KILL");
        self.child.wait().ok();
    }

    /// SIGTERM: the graceful stop.
    pub fn terminate(&self) {
        signal(self.pid(), "-TERM");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// MariaDB refuses to run as root unless told to; as a normal user it runs as that user, in a data
/// directory that user owns, and must not be given `--user` (it cannot switch users).
fn run_as_arg() -> Option<&'static str> {
    let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    (uid.ok().as_deref() == Some("0")).then_some("--user=root")
}

/// A private MariaDB on a free port, in its own data directory, root without a password over TCP.
#[derive(Debug)]
pub struct MariaDbServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Server options beyond the defaults (`--general-log=1`, …), kept across restarts.
    extra: Vec<String>,
    pub port: u16,
    pub url: String,
}

impl MariaDbServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts with extra server options; `{dir}` in one is replaced by the server's own folder.
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let status = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db"])
            .args(run_as_arg())
            .arg(format!("--datadir={}", data.display()))
            .output()
            .expect("mariadb-install-db runs");
        assert!(status.status.success(), "mariadb-install-db failed: {}", String::from_utf8_lossy(&status.stderr));
        let port = free_port();
        let home = dir.path().display().to_string();
        let extra = extra.iter().map(|e| e.replace("{dir}", &home)).collect();
        let mut server = Self { child: None, dir, extra, port, url: format!("mysql://root@127.0.0.1:{port}") };
        server.restart();
        server
    }

    pub fn restart(&mut self) {
        let data = self.dir.path().join("data");
        // Debian puts the server in /usr/sbin, which a non-login PATH may lack.
        let server =
            if std::path::Path::new("/usr/sbin/mariadbd").exists() { "/usr/sbin/mariadbd" } else { "mariadbd" };
        let child = Command::new(server)
            .args(["--no-defaults", "--bind-address=127.0.0.1", "--skip-log-bin"])
            .args(run_as_arg())
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={}", self.dir.path().join("sock").display()))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        self.child = Some(child);
        wait_listening(self.port, "mariadbd");
    }

    /// The server's own folder (its data, socket and any log files asked for).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the server the way an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "-TERM");
            c.wait().ok();
        }
    }
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

/// A private PostgreSQL on a free port, in its own data directory: user `postgres`, trust over TCP on
/// 127.0.0.1. Run as the `postgres` system user when the tests run as root (PostgreSQL refuses root).
#[derive(Debug)]
pub struct PostgresServer {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    pub port: u16,
    pub url: String,
}

/// The folder of the newest installed PostgreSQL's server programs (`initdb`, `postgres`).
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (/usr/lib/postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().expect("a PostgreSQL with initdb")
}

impl PostgresServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let bin = postgres_bin();
        let as_root = run_as_arg().is_some();
        let command = |program: PathBuf| {
            if as_root {
                // `setpriv` execs the program itself: the child is the server, signals reach it.
                let mut c = Command::new("setpriv");
                c.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        if as_root {
            let owned = Command::new("chown").arg("postgres").arg(dir.path()).status().expect("chown runs");
            assert!(owned.success(), "chown postgres {} failed", dir.path().display());
        }
        let init = command(bin.join("initdb"))
            .args(["--username=postgres", "--auth=trust", "--no-sync", "--encoding=UTF8"])
            .arg(format!("--pgdata={}", data.display()))
            .output()
            .expect("initdb runs");
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        let port = free_port();
        let child = command(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("port={port}"))
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        wait_listening(port, "postgres");
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        Self { child: Some(child), _dir: dir, port, url }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            // Stopped at once (SIGQUIT), without a checkpoint: its data is thrown away.
            let mut c = c;
            Command::new("kill").args(["-QUIT", &c.id().to_string()]).status().ok();
            c.wait().ok();
        }
    }
}

/// A three-node NATS cluster with JetStream on loopback ports.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Option<Child>>,
    _dirs: Vec<tempfile::TempDir>,
    /// All three client URLs, comma-separated, as Landlord's `LANDLORD_NATS_URL` takes them.
    pub url: String,
}

impl NatsCluster {
    /// Starts three nodes, each logging to `n<i>.log` in `logs`.
    pub fn start(logs: &std::path::Path) -> Self {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let others: Vec<String> =
                (0..3).filter(|j| *j != i).map(|j| format!("nats://127.0.0.1:{}", routes[j])).collect();
            let child = Command::new(nats_server_binary())
                .args(["-js", "-a", "127.0.0.1", "-p", &ports[i].to_string(), "-sd"])
                .arg(dir.path())
                .args(["--server_name", &format!("n{i}"), "--cluster_name", "landlord"])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", routes[i]), "--routes", &others.join(",")])
                .arg("-l")
                .arg(logs.join(format!("n{i}.log")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nats-server starts");
            nodes.push(Some(child));
            dirs.push(dir);
        }
        for p in &ports {
            wait_listening(*p, "cluster node");
        }
        let url = ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
        Self { nodes, _dirs: dirs, url }
    }

    /// Waits until the cluster has elected its JetStream meta leader (the account's JetStream answers), up
    /// to 90 s: on a loaded two-core machine an election can take many seconds, and what the scenario
    /// tests starts only after it.
    pub async fn wait_jetstream(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = String::new();
        while Instant::now() < deadline {
            let servers: Vec<async_nats::ServerAddr> =
                self.url.split(',').map(|u| u.parse().expect("a node's URL parses")).collect();
            match async_nats::connect(servers).await {
                Ok(client) => match async_nats::jetstream::new(client).query_account().await {
                    Ok(_) => return,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the cluster's JetStream did not answer within 90 s: {last}");
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// A fresh PostgreSQL database for a control plane shared by several worker processes; dropped by
/// [`drop_database`].
pub async fn fresh_postgres_database(prefix: &str) -> (String, String) {
    use sea_orm::ConnectionTrait;
    let admin_url = crate::tenant_db_url(crate::Engine::Postgres);
    let name = crate::unique_slug(prefix).replace('-', "_");
    let admin = sea_orm::Database::connect(admin_url.clone()).await.expect("postgres");
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
    admin.close().await.ok();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

pub async fn drop_database(name: &str) {
    use sea_orm::ConnectionTrait;
    let admin = sea_orm::Database::connect(crate::tenant_db_url(crate::Engine::Postgres)).await.expect("postgres");
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok();
    admin.close().await.ok();
}

/// Waits until `check` holds, polling every 100 ms; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
