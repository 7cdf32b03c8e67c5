//! A testing hook for the chaos suite: with `LANDLORD_FAILPOINT=<point>`, a worker that reaches that
//! point writes `LANDLORD_FAILPOINT_FILE` and stops there, still holding its lease and keeping its
//! message alive, until the test SIGKILLs it. Off unless configured; production never sets it.
//!
//! Points: `before:<step>` (started, nothing done), `during:<step>` (the step's effects are done but not
//! recorded — the window idempotency must cover), `after:<step>` (recorded; steps that need it not
//! started), and `apply_schema:middle` (half the plan script's statements have run). Several points,
//! comma-separated, stop steps that run side by side each at its own point: each one reached is appended
//! to the file as a line.

use std::sync::OnceLock;

static POINT: OnceLock<(Vec<String>, Option<String>)> = OnceLock::new();

/// Arms the failpoint for this process (first call wins).
pub fn install(point: Option<String>, file: Option<String>) {
    if let Some(point) = point {
        tracing::warn!(%point, "failpoint armed: this worker will stop there (testing only)");
        let points = point.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect();
        POINT.set((points, file)).ok();
    }
}

/// Stops forever if `name` is the armed point.
pub async fn hit(name: &str) {
    let Some((point, file)) = POINT.get() else {
        return;
    };
    if !point.iter().any(|p| p == name) {
        return;
    }
    tracing::warn!(point = %name, "failpoint reached; waiting to be killed");
    if let Some(file) = file {
        use std::io::Write;
        let appended = std::fs::OpenOptions::new().create(true).append(true).open(file);
        appended.and_then(|mut f| writeln!(f, "{name}")).ok();
    }
    std::future::pending::<()>().await;
}
