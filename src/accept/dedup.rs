//! Duplicate suppression: the notifications accepted within `delivery.dedup_window`, by
//! identity, so that the copy an Alertmanager HA pair's second member sends is not sent
//! again.
//!
//! [`Dedup`] is the policy the webhook handlers apply: in queued mode a notification is
//! claimed before it is queued, and forgotten again if queueing fails, so Alertmanager's
//! retry is not taken for a duplicate; in passthrough mode it is remembered only once
//! delivered, so two copies arriving at the same moment can both be sent.
//! With `cluster:`, [`Dedup::claim_shared`] also claims the notification in Redis, so
//! that the copy reaching another replica is a duplicate there too.
//! [`RecentNotifications`] is the memory under it: bounded whatever the traffic, since
//! identities are kept as 128-bit digests, at most [`CAPACITY`] of them, and past that the
//! oldest is forgotten early. In a storm that costs at most a duplicate message, never
//! memory. Time is a parameter of the memory; no I/O but the cluster's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use sha2::{Digest as _, Sha256};

use crate::cluster::{Claim, Cluster};
use crate::ingest::Notification;

/// Most identities remembered: about 2 MiB (each with its time and group, and each group's
/// last). At 270 notifications a second every one is still remembered for a full minute;
/// HA copies arrive within seconds of each other.
pub const CAPACITY: usize = 16_384;

/// How long a webhook waits for another replica to finish queueing the same notification.
const PENDING_WAIT: Duration = Duration::from_secs(2);
/// How often it asks meanwhile.
const PENDING_POLL: Duration = Duration::from_millis(50);

type Digest = [u8; 16];

/// Why [`Dedup::claim_shared`] did not claim a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Another replica queued it within the window.
    Duplicate,
    /// Another replica is still queueing it.
    Pending,
}

/// What duplicate suppression compares: the notification, and the robot of the drop-in
/// path if any: `{robot}#{groupKey}|{status}|{alerts}` ([`Notification::identity`]).
pub fn identity(notification: &Notification, direct_robot: Option<&str>) -> String {
    format!("{}#{}", direct_robot.unwrap_or(""), notification.identity())
}

/// The group part of an [`identity`], `{robot}#{groupKey}`: a notification is a duplicate
/// only of its group's last one, so that a group that changes back (fires, resolves,
/// fires again as before) is never swallowed. (A `groupKey` may hold `|`; the status and
/// the alerts, the last two parts, do not.)
pub fn group_of(identity: &str) -> &str {
    identity.rsplitn(3, '|').nth(2).unwrap_or(identity)
}

/// Duplicate suppression within `delivery.dedup_window` (a zero window turns it off); a
/// duplicate is counted in `suppressed` and logged.
#[derive(Debug)]
pub struct Dedup {
    recent: Mutex<RecentNotifications>,
    suppressed: Counter,
}

impl Dedup {
    /// Suppression that counts duplicates in `suppressed`.
    pub fn new(suppressed: Counter) -> Self {
        Dedup {
            recent: Mutex::default(),
            suppressed,
        }
    }

    /// Records `identity` unless it was recorded within `window`: returns whether it is
    /// new. Of two copies arriving together, one is the duplicate.
    pub fn claim(&self, identity: &str, window: Duration) -> bool {
        let new = self.remember(identity, window);
        if !new {
            self.duplicate(identity);
        }
        new
    }

    /// After a local [`claim`](Self::claim): claims `identity` for every replica of
    /// `cluster` as well. Another replica's pending claim is waited for up to
    /// `PENDING_WAIT`, since its commit may still fail. `Ok(true)` when this replica holds
    /// the shared claim (confirm it once queued), `Ok(false)` when only local memory
    /// applies (Redis cannot be reached), `Err` when the notification is a duplicate or
    /// still being queued elsewhere.
    pub async fn claim_shared(
        &self,
        cluster: &Cluster,
        identity: &str,
        window: Duration,
    ) -> Result<bool, Taken> {
        if window.is_zero() {
            return Ok(false);
        }
        let deadline = tokio::time::Instant::now() + PENDING_WAIT;
        loop {
            match cluster.claim(identity).await {
                Claim::Claimed => return Ok(true),
                Claim::Unreachable => return Ok(false),
                Claim::Queued => {
                    self.duplicate(identity);
                    return Err(Taken::Duplicate);
                }
                Claim::Pending if tokio::time::Instant::now() >= deadline => {
                    self.forget(identity);
                    return Err(Taken::Pending);
                }
                Claim::Pending => tokio::time::sleep(PENDING_POLL).await,
            }
        }
    }

    /// Forgets `identity`, so that it is new again.
    pub fn forget(&self, identity: &str) {
        self.recent().remove(identity);
    }

    /// Whether `identity` was recorded within `window`, without recording it.
    pub fn seen(&self, identity: &str, window: Duration) -> bool {
        let seen = !window.is_zero() && self.recent().contains(identity, window, Instant::now());
        if seen {
            self.duplicate(identity);
        }
        seen
    }

    /// Records `identity` unless it was recorded within `window`, without counting a
    /// duplicate: returns whether it is new.
    pub fn remember(&self, identity: &str, window: Duration) -> bool {
        window.is_zero() || self.recent().insert(identity, window, Instant::now())
    }

    /// Counts and logs a duplicate of `identity`.
    pub fn duplicate(&self, identity: &str) {
        self.suppressed.inc();
        tracing::info!(message = "Duplicate notification suppressed.", %identity);
    }

    fn recent(&self) -> MutexGuard<'_, RecentNotifications> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Identities accepted recently, oldest first, each its group's last.
#[derive(Debug, Default)]
pub struct RecentNotifications {
    /// Each identity with when it was accepted and its group.
    accepted: HashMap<Digest, (Instant, Digest)>,
    /// Insertion order, for expiry; may hold entries already removed from `accepted`.
    order: VecDeque<(Digest, Instant)>,
    /// Each group's last identity ([`group_of`]), while it is remembered.
    last: HashMap<Digest, Digest>,
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
        let group = digest(group_of(identity));
        self.accepted.insert(key, (now, group));
        self.order.push_back((key, now));
        // The group's state before this one is not a duplicate any more.
        if let Some(previous) = self.last.insert(group, key)
            && previous != key
        {
            self.accepted.remove(&previous);
        }
        true
    }

    /// Forgets `identity`, so that it is new again.
    pub fn remove(&mut self, identity: &str) {
        let key = digest(identity);
        if let Some((_, group)) = self.accepted.remove(&key)
            && self.last.get(&group) == Some(&key)
        {
            self.last.remove(&group);
        }
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
            && self.accepted.get(&key).is_some_and(|(accepted, _)| *accepted == at)
            && let Some((_, group)) = self.accepted.remove(&key)
            && self.last.get(&group) == Some(&key)
        {
            self.last.remove(&group);
        }
    }
}

fn digest(identity: &str) -> Digest {
    let hash = Sha256::digest(identity.as_bytes());
    let mut digest = Digest::default();
    digest.copy_from_slice(&hash[..16]);
    digest
}
