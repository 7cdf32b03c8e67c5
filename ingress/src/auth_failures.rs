//! Counts failed admin authentications per client address so that guessing a token is bounded: once an
//! address has failed `max_failures` times within a window (a minute), it is refused until that window has
//! passed, even with a correct token. A success resets nothing, so a legitimate admin behind the same
//! address cannot clear a guesser's count. The map is bounded: past `capacity` addresses, expired
//! windows are dropped and then the oldest is forgotten.
//!
//! Time is passed in (`now`) so the rules are tested without sleeping. A leaf module: it knows nothing of
//! HTTP or tokens.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// How long failures count against an address.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Addresses remembered at most; enough for every real admin, small enough to stay a few hundred kilobytes.
pub const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug)]
pub struct AuthFailures {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    by_client: Mutex<HashMap<IpAddr, Window>>,
}

/// One address's failures in the current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Why an attempt did not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal<E> {
    /// The address has failed too often; it may try again after `retry_after`. The credentials were not
    /// looked at.
    LockedOut { retry_after: Duration },
    /// The credentials were refused for `reason`. `failures` counts this one; `locked_out` says whether the
    /// address is refused from now until its window ends.
    Failed { reason: E, failures: u32, locked_out: bool },
}

impl AuthFailures {
    /// Allows `max_failures` failures per address per [`WINDOW`], for at most [`MAX_ADDRESSES`] addresses.
    pub fn new(max_failures: u32) -> Self {
        Self::with_window(max_failures, WINDOW, MAX_ADDRESSES)
    }

    fn with_window(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self { max_failures, window, capacity, by_client: Mutex::new(HashMap::new()) }
    }

    /// Runs `authenticate` for `client` unless the address is locked out, and counts a failure when it
    /// refuses. Check, authentication and count happen under one lock, so parallel requests from one
    /// address cannot all slip past the limit.
    pub fn attempt<T, E>(
        &self,
        client: IpAddr,
        now: Instant,
        authenticate: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Refusal<E>> {
        let key = bucket(client);
        // A panic elsewhere cannot leave a count half-written, so a poisoned map is still good.
        let mut by_client = self.by_client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(window) = by_client.get(&key).copied() {
            let ends = window.started + self.window;
            if now >= ends {
                by_client.remove(&key);
            } else if window.failures >= self.max_failures {
                return Err(Refusal::LockedOut { retry_after: ends - now });
            }
        }
        let reason = match authenticate() {
            Ok(value) => return Ok(value),
            Err(reason) => reason,
        };
        if !by_client.contains_key(&key) && by_client.len() >= self.capacity {
            self.make_room(&mut by_client, now);
        }
        let window = by_client.entry(key).or_insert(Window { started: now, failures: 0 });
        window.failures += 1;
        Err(Refusal::Failed { reason, failures: window.failures, locked_out: window.failures >= self.max_failures })
    }

    /// Drops expired windows and, if the map is still full, the oldest one.
    fn make_room(&self, by_client: &mut HashMap<IpAddr, Window>, now: Instant) {
        by_client.retain(|_, w| now < w.started + self.window);
        if by_client.len() >= self.capacity
            && let Some(oldest) = by_client.iter().min_by_key(|(_, w)| w.started).map(|(client, _)| *client)
        {
            by_client.remove(&oldest);
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.by_client.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// The address failures are counted against: IPv4 as is (an IPv4-mapped IPv6 address as its IPv4), IPv6
/// by its /64, since one host commonly holds a whole /64 and could otherwise rotate through it.
fn bucket(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & (u128::MAX << 64))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn wrong() -> Result<(), &'static str> {
        Err("wrong")
    }

    fn right() -> Result<(), &'static str> {
        Ok(())
    }

    #[test]
    fn an_address_is_locked_out_after_its_failures_even_with_the_right_token() {
        let limiter = AuthFailures::new(3);
        let t0 = Instant::now();
        for n in 1..=3 {
            let Err(Refusal::Failed { failures, locked_out, .. }) = limiter.attempt(A, t0, wrong) else { panic!() };
            assert_eq!((failures, locked_out), (n, n == 3));
        }
        let later = t0 + Duration::from_secs(20);
        assert_eq!(limiter.attempt(A, later, right), Err(Refusal::LockedOut { retry_after: Duration::from_secs(40) }));
        assert_eq!(limiter.attempt(A, later, wrong), Err(Refusal::LockedOut { retry_after: Duration::from_secs(40) }));
        // Another address is unaffected, and its success clears nothing for A.
        assert_eq!(limiter.attempt(B, later, right), Ok(()));
        assert!(matches!(limiter.attempt(A, later, right), Err(Refusal::LockedOut { .. })));
    }

    #[test]
    fn the_window_passing_lifts_the_lockout() {
        let limiter = AuthFailures::new(2);
        let t0 = Instant::now();
        assert!(limiter.attempt(A, t0, wrong).is_err());
        assert!(limiter.attempt(A, t0 + Duration::from_secs(30), wrong).is_err());
        assert!(matches!(limiter.attempt(A, t0 + Duration::from_secs(59), right), Err(Refusal::LockedOut { .. })));
        assert_eq!(limiter.attempt(A, t0 + WINDOW, right), Ok(()));
        // A fresh window: one failure is not a lockout.
        let Err(Refusal::Failed { failures, .. }) = limiter.attempt(A, t0 + WINDOW, wrong) else { panic!() };
        assert_eq!(failures, 1);
    }

    #[test]
    fn successes_are_not_counted() {
        let limiter = AuthFailures::new(1);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(limiter.attempt(A, t0, right), Ok(()));
        }
        assert_eq!(limiter.remembered(), 0);
    }

    #[test]
    fn the_map_stays_bounded_and_forgets_the_oldest_first() {
        let limiter = AuthFailures::with_window(1, WINDOW, 3);
        let t0 = Instant::now();
        for (i, last) in [1u8, 2, 3, 4].into_iter().enumerate() {
            let client = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, last));
            assert!(limiter.attempt(client, t0 + Duration::from_secs(i as u64), wrong).is_err());
        }
        assert_eq!(limiter.remembered(), 3);
        // .1 was the oldest and is forgotten; .4 is remembered.
        let at = t0 + Duration::from_secs(10);
        assert_eq!(limiter.attempt(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1)), at, right), Ok(()));
        let four = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 4));
        assert!(matches!(limiter.attempt(four, at, right), Err(Refusal::LockedOut { .. })));
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(bucket(one), bucket(other));
        assert_ne!(bucket(one), bucket("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(bucket("::ffff:192.0.2.1".parse().unwrap()), A);
    }
}
