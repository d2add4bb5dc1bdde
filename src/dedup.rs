//! Duplicate suppression: the notifications accepted within `delivery.dedup_window`, by
//! identity, so that the copy an Alertmanager HA pair's second member sends is not sent
//! again.
//!
//! Memory stays bounded whatever the traffic: identities are kept as 128-bit digests, at
//! most [`CAPACITY`] of them, and past that the oldest is forgotten early. In a storm that
//! costs at most a duplicate message, never memory. Time is a parameter; no I/O.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// Most identities remembered: about 1 MiB. At 270 notifications a second every one is
/// still remembered for a full minute; HA copies arrive within seconds of each other.
pub const CAPACITY: usize = 16_384;

type Digest = [u8; 16];

/// Identities accepted recently, oldest first.
#[derive(Debug, Default)]
pub struct RecentNotifications {
    accepted: HashMap<Digest, Instant>,
    /// Insertion order, for expiry; may hold entries already removed from `accepted`.
    order: VecDeque<(Digest, Instant)>,
}

impl RecentNotifications {
    /// Whether `identity` was recorded within `window` before `now`.
    pub fn contains(&mut self, identity: &str, window: Duration, now: Instant) -> bool {
        self.expire(window, now);
        self.accepted.contains_key(&digest(identity))
    }

    /// Records `identity` at `now`, unless it was recorded within `window`: returns
    /// whether it was new. Checking and recording in one step means that of two copies
    /// arriving together, one is the duplicate.
    pub fn insert(&mut self, identity: &str, window: Duration, now: Instant) -> bool {
        self.expire(window, now);
        let key = digest(identity);
        if self.accepted.contains_key(&key) {
            return false;
        }
        if self.order.len() >= CAPACITY {
            self.forget_oldest();
        }
        self.accepted.insert(key, now);
        self.order.push_back((key, now));
        true
    }

    /// Forgets `identity`, so that it is new again.
    pub fn remove(&mut self, identity: &str) {
        self.accepted.remove(&digest(identity));
    }

    /// How many identities are remembered.
    pub fn len(&self) -> usize {
        self.accepted.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }

    fn expire(&mut self, window: Duration, now: Instant) {
        while self
            .order
            .front()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) >= window)
        {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((key, at)) = self.order.pop_front()
            // Removed and recorded again since: the newer entry stays.
            && self.accepted.get(&key) == Some(&at)
        {
            self.accepted.remove(&key);
        }
    }
}

fn digest(identity: &str) -> Digest {
    let hash = Sha256::digest(identity.as_bytes());
    let mut digest = Digest::default();
    digest.copy_from_slice(&hash[..16]);
    digest
}
