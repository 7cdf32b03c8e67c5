//! How long the control plane keeps what it no longer needs, and the hourly pruning that enforces it.
//! Processed-command ids are what turns a Stripe retry days later into a no-op, so they are kept well past
//! Stripe's three days of retries; finished runs are history for operators; progress events age out of
//! their stream; offboarded tenants' final dumps are deleted after `archive_days`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    archive::ArchiveTarget,
    store::{ResourceKind, Store},
};

/// `LANDLORD_RETENTION__*`: days to keep each kind of record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Processed command ids (default 30). At least 4: Stripe retries an event for up to 3 days.
    pub processed_commands_days: u32,
    /// Finished runs that did not succeed (default 90); a run still going, or one that succeeded (it
    /// records that its tenant was provisioned), is never pruned.
    pub runs_days: u32,
    /// Progress events in the `LANDLORD_PROGRESS` stream (default 30); JetStream drops older ones itself.
    pub progress_days: u32,
    /// Offboarded tenants' final dumps in `LANDLORD_ARCHIVE` (default 90); each also carries its
    /// `landlord-retain-until` date in S3.
    pub archive_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self { processed_commands_days: 30, runs_days: 90, progress_days: 30, archive_days: 90 }
    }
}

impl Retention {
    /// Refuses a policy that would forget a purchase Stripe may still deliver again.
    pub fn validate(&self) -> Result<(), String> {
        if self.processed_commands_days < 4 {
            return Err(format!(
                "LANDLORD_RETENTION__PROCESSED_COMMANDS_DAYS is {}: keep processed commands at least 4 days, as Stripe \
                 retries an event for up to 3",
                self.processed_commands_days
            ));
        }
        if self.runs_days == 0 {
            return Err("LANDLORD_RETENTION__RUNS_DAYS must be at least 1".into());
        }
        if self.progress_days == 0 {
            return Err("LANDLORD_RETENTION__PROGRESS_DAYS must be at least 1".into());
        }
        if self.archive_days == 0 {
            return Err("LANDLORD_RETENTION__ARCHIVE_DAYS must be at least 1".into());
        }
        Ok(())
    }

    /// How long the progress stream keeps an event.
    pub fn progress_max_age(&self) -> Duration {
        Duration::from_secs(u64::from(self.progress_days) * 24 * 3600)
    }

    fn days(n: u32) -> chrono::Duration {
        chrono::Duration::days(i64::from(n))
    }

    /// Deletes what is older than the policy keeps; returns (processed commands, runs) deleted.
    pub async fn prune(&self, store: &Store) -> Result<(u64, u64), crate::store::StoreError> {
        let now = chrono::Utc::now();
        store.prune(now - Self::days(self.processed_commands_days), now - Self::days(self.runs_days)).await
    }

    /// Deletes final dumps older than `archive_days` (each recorded as an `archive` claim when it was made)
    /// and forgets their claims; returns how many. One that cannot be deleted now is tried again next time.
    pub async fn prune_archives(
        &self,
        store: &Store,
        archive: &ArchiveTarget,
    ) -> Result<usize, crate::store::StoreError> {
        let cutoff = chrono::Utc::now() - Self::days(self.archive_days);
        let mut deleted = 0;
        for (tenant, location) in store.claims_older_than(ResourceKind::Archive, cutoff).await? {
            match archive.delete(&location).await {
                Ok(()) => {
                    store.release_resource(&tenant, ResourceKind::Archive, &location).await?;
                    deleted += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, %location, "a final dump past its retention could not be deleted yet")
                }
            }
        }
        Ok(deleted)
    }
}

/// Prunes once an hour (the first time a minute after start) until `shutdown`.
pub async fn run(store: &Store, archive: &ArchiveTarget, policy: &Retention, shutdown: CancellationToken) {
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        wait = Duration::from_secs(3600);
        match policy.prune(store).await {
            Ok((commands, runs)) => tracing::info!(commands, runs, "pruned records past their retention"),
            Err(e) => tracing::warn!(error = %e, "pruning failed; trying again in an hour"),
        }
        match policy.prune_archives(store, archive).await {
            Ok(0) => {}
            Ok(dumps) => tracing::info!(dumps, "deleted final dumps past their retention"),
            Err(e) => tracing::warn!(error = %e, "pruning final dumps failed; trying again in an hour"),
        }
    }
}
