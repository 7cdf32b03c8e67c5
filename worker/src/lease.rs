//! A tenant's lease as one holder (a handling, the DNS retrier) takes, keeps and releases it.
//!
//! Leases are kept alive by the worker as a whole, not one by one: one UPDATE renews every lease the
//! process holds ([`Renewals`]), and every running lease shares it. So control-plane writes for leases are
//! about one a second per worker process however many tenants it runs, and leases can be short (a few
//! seconds) so that a dead worker's tenants pass to another within seconds.

use std::time::Duration;

use landlord_protocol::TenantId;
use tokio::{
    sync::Mutex,
    time::{Instant, MissedTickBehavior},
};

use crate::{
    keepalive::KeepAlive,
    store::{Store, StoreError},
    telemetry,
};

/// How long a lease is relied on after the last acquire or renewal that succeeded: two thirds of its
/// ttl. The lease itself lasts the whole ttl from a moment (the control plane's) after the request was
/// sent, so the last third is a safety margin: for noticing and dropping the work, for a runtime slowed
/// down under load, and for this host's clock running at a slightly different rate than the control
/// plane's. With renewals every quarter of the ttl, one renewal may fail and the next still lands in
/// time; the second failure in a row ends the work.
pub(crate) fn reliable_for(ttl: Duration) -> Duration {
    ttl - ttl / 3
}

/// Why work under a lease was dropped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LeaseGone {
    #[error("the lease was lost: it expired and another holder took it")]
    Lost,
    #[error("the lease was not renewed for {unrenewed:?} of its {ttl:?}, so it may be about to expire")]
    Unsure { unrenewed: Duration, ttl: Duration },
}

/// What a renewal of all of a worker's leases did.
#[derive(Debug, Clone, Copy)]
struct Renewal {
    /// When its request was sent: every lease it found lasts until at least `ttl` after this.
    asked: Instant,
    /// Leases it extended.
    extended: u64,
    /// Leases the worker held when it was sent; more than `extended` means one was taken away.
    held: u64,
}

/// The one renewal of a worker's leases that every holder in the process shares. A holder asks for a
/// renewal no older than half a heartbeat; the first to ask after that makes it, the others use its
/// answer. Only leases held right now are renewed, by name: one whose release failed expires by itself.
#[derive(Debug)]
pub struct Renewals {
    ttl: Duration,
    last: Mutex<Option<Renewal>>,
    held: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Renewals {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, last: Mutex::new(None), held: Default::default() }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A renewal asked at or after `fresh_from`: the last one if it is recent enough, else a new one.
    async fn renew(&self, store: &Store, fresh_from: Instant) -> Result<Renewal, StoreError> {
        let mut last = self.last.lock().await;
        if let Some(done) = *last
            && done.asked >= fresh_from
        {
            return Ok(done);
        }
        // Asked before the names are read: a lease taken meanwhile is not counted as renewed by this.
        let asked = Instant::now();
        let holders: Vec<String> = self.held().iter().cloned().collect();
        let held = holders.len() as u64;
        let extended = store.renew_leases(&holders, self.ttl).await?;
        if held > 0 {
            metrics::counter!(telemetry::LEASE_RENEWALS).increment(1);
        }
        let done = Renewal { asked, extended, held };
        *last = Some(done);
        Ok(done)
    }
}

/// Whether a lease could be taken.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Acquired {
    /// Taken; relied on from this moment (when the request was sent).
    At(Instant),
    /// Another holder has it for about this long still.
    Busy(Duration),
}

/// A tenant's lease for one holder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease<'a> {
    pub store: &'a Store,
    pub renewals: &'a Renewals,
    pub tenant: &'a TenantId,
    pub holder: &'a str,
}

impl Lease<'_> {
    fn ttl(&self) -> Duration {
        self.renewals.ttl
    }

    /// Takes the lease, or says how long another holder still has it.
    pub async fn acquire(&self) -> Result<Acquired, StoreError> {
        let asked = Instant::now();
        if self.store.acquire_lease(self.tenant, self.holder, self.ttl()).await? {
            self.renewals.held().insert(self.holder.to_owned());
            return Ok(Acquired::At(asked));
        }
        let left = self.store.lease_left(self.tenant).await?.unwrap_or_default();
        Ok(Acquired::Busy(left))
    }

    /// Runs `work` while the worker's leases are renewed every `every` (touching `alive` first, a
    /// progress acknowledgement that keeps the message from being redelivered). The work is dropped when
    /// the lease is lost, or once it has gone unrenewed for [`reliable_for`] its ttl (the control plane
    /// failing or slow), before another holder may take it.
    pub async fn hold<T>(
        &self,
        acquired: Instant,
        every: Duration,
        alive: &dyn KeepAlive,
        work: impl Future<Output = T>,
    ) -> Result<T, LeaseGone> {
        let reliable = reliable_for(self.ttl());
        let mut renewed = acquired;
        // A renewal sent before the lease row existed did not extend it.
        let taken = Instant::now();
        let mut beat = tokio::time::interval(every);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        beat.tick().await;
        tokio::pin!(work);
        loop {
            let unsure_at = renewed + reliable;
            tokio::select! {
                // The deadline first: after a stall (a paused machine, a starved thread) the work must not
                // take one more step once the lease may have passed to another worker.
                biased;
                () = tokio::time::sleep_until(unsure_at) => return Err(self.unsure(renewed)),
                done = &mut work => return Ok(done),
                tick = beat.tick() => {
                    let fresh_from = taken.max(tick.checked_sub(every / 2).unwrap_or(tick));
                    let renewal = async {
                        alive.touch().await;
                        let done = self.renewals.renew(self.store, fresh_from).await?;
                        // Fewer leases extended than held: look whether this one is among the missing.
                        let ours = done.extended >= done.held
                            || self.store.lease_holder(self.tenant).await?.as_deref() == Some(self.holder);
                        Ok::<_, StoreError>((done.asked, ours))
                    };
                    // A renewal that hangs (a control plane not answering) must not outlast the lease.
                    match tokio::time::timeout_at(unsure_at, renewal).await {
                        Ok(Ok((_, false))) => return Err(LeaseGone::Lost),
                        Ok(Ok((asked, true))) => renewed = renewed.max(asked),
                        Ok(Err(e)) => {
                            tracing::warn!(tenant_id = %self.tenant, error = %e, "lease not renewed this time");
                        }
                        Err(_) => return Err(self.unsure(renewed)),
                    }
                }
            }
        }
    }

    fn unsure(&self, renewed: Instant) -> LeaseGone {
        LeaseGone::Unsure { unrenewed: renewed.elapsed(), ttl: self.ttl() }
    }

    /// Gives the lease up; if that fails it expires by itself.
    pub async fn release(&self) {
        self.renewals.held().remove(self.holder);
        if let Err(e) = self.store.release_lease(self.tenant, self.holder).await {
            tracing::warn!(tenant_id = %self.tenant, error = %e, "lease not released; it expires by itself");
        }
    }
}
