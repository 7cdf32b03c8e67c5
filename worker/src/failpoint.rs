//! A testing hook for the chaos suite: with `LANDLORD_FAILPOINT=<point>`, a worker that reaches that
//! point writes `LANDLORD_FAILPOINT_FILE` and stops there, still holding its lease and keeping its
//! message alive, until the test SIGKILLs it. Off unless configured; production never sets it.
//!
//! Points: `before:<step>` (started, nothing done), `during:<step>` (the step's effects are done but not
//! recorded — the window idempotency must cover), `after:<step>` (recorded, next step not started), and
//! `apply_schema:middle` (half the plan script's statements have run).

use std::sync::OnceLock;

static POINT: OnceLock<(String, Option<String>)> = OnceLock::new();

/// Arms the failpoint for this process (first call wins).
pub fn install(point: Option<String>, file: Option<String>) {
    if let Some(point) = point {
        tracing::warn!(%point, "failpoint armed: this worker will stop there (testing only)");
        POINT.set((point, file)).ok();
    }
}

/// Stops forever if `name` is the armed point.
pub async fn hit(name: &str) {
    let Some((point, file)) = POINT.get() else {
        return;
    };
    if point != name {
        return;
    }
    tracing::warn!(point = %name, "failpoint reached; waiting to be killed");
    if let Some(file) = file {
        std::fs::write(file, name).ok();
    }
    std::future::pending::<()>().await;
}
