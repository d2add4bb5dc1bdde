//! The rate limit of every send: the one place that decides when a message to a robot may
//! leave, for the queue's workers and for passthrough webhooks alike.
//!
//! - [`RateWindow`] ([`window`]): the sliding window that keeps a robot under
//!   `rate_limit` (DingTalk's 20 a minute), ours on purpose (see there).
//! - [`Gate`] ([`gate`]): a robot's window, its pause after a rate-limit answer, the
//!   pacing of the window's last slots and its size budget, behind one short mutex; and its
//!   send [`Lane`].
//! - [`Gates`]: every robot's gate, and with `cluster:` the heartbeat that shares this
//!   replica's sends with the others.
//! - [`reserve`] and [`room`]: a slot in the robot's gate and, with `cluster:`, in the
//!   window all replicas share through Redis (this replica's share of it while Redis
//!   cannot be reached) — one interface whether or not there is a cluster.
//! - [`pace`]: how a worker takes a backlog, given the room the window has.
//!
//! Time is `tokio::time::Instant`, so tests pause it. No I/O here but the cluster's.

mod gate;
mod window;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

pub use gate::{FIRST_PAUSE, Gate, GateView, Lane, LastError, MAX_PAUSE, Reserved, paced_slots};
pub use window::RateWindow;

use crate::cluster::{self, Slot};
use crate::dingtalk::{RateLimit, Robot};
use crate::snapshot::{ConfigHandle, Snapshot};

/// More messages than this pending for one robot is a storm, however wide its window: they
/// are merged into digests, so the group reads a few messages instead of hundreds and the
/// queue drains at a digest's pace, not one message per round trip. (At DingTalk's 20 a
/// minute the window decides long before.)
pub const STORM: usize = 100;

/// How a worker takes the next send of a robot's backlog ([`pace`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The oldest message alone.
    One,
    /// As many pending messages as fit one digest: more are pending than the window
    /// takes (or than [`STORM`]), or the window is down to its paced slots.
    Digest,
}

/// How the next send of a backlog of `depth` is taken when the window has `room` left
/// under `limit`.
pub fn pace(depth: usize, room: usize, limit: RateLimit) -> Take {
    if depth > 1 && (depth > room.min(STORM) || room <= paced_slots(limit)) {
        Take::Digest
    } else {
        Take::One
    }
}

/// Every robot's gate, shared by everything that sends to it.
#[derive(Debug, Default)]
pub struct Gates(Mutex<BTreeMap<String, Arc<Gate>>>);

impl Gates {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Gate>>> {
        // Every critical section leaves the map consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The gate of `robot`, made on first use.
    pub fn gate(&self, robot: &str) -> Arc<Gate> {
        self.lock().entry(robot.to_owned()).or_default().clone()
    }

    /// Whether `robot` is paused at `now` (a robot without a gate is not).
    pub fn is_paused(&self, robot: &str, now: Instant) -> bool {
        self.lock()
            .get(robot)
            .is_some_and(|gate| gate.view(now).paused_until.is_some())
    }

    /// Every [`cluster::HEARTBEAT`], while the configuration in force has `cluster:`,
    /// renews this replica's membership of every robot and uploads its sends of the
    /// window; asks again for a Redis that could not be reached. Runs until aborted.
    pub async fn share_with_cluster(self: Arc<Self>, config: Arc<ConfigHandle>) {
        let mut tick = tokio::time::interval(cluster::HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let snapshot = config.snapshot();
            let Some(cluster) = &snapshot.cluster else {
                continue;
            };
            let now = Instant::now();
            let robots: Vec<_> = snapshot
                .config
                .robots
                .values()
                .filter(|robot| robot.pool_members().is_none())
                .map(|robot| {
                    let sends = self.gate(&robot.name).sends(now);
                    (robot.name.clone(), robot.rate_limit, sends)
                })
                .collect();
            cluster.heartbeat(&robots).await;
        }
    }
}

/// Replicas told to wait for the same slot of a shared window ask again spread over this
/// much, so that they do not all ask at the same instant.
const SHARED_WAIT_JITTER: Duration = Duration::from_millis(50);

/// Records a send to `robot` starting now, on `lane`: in the robot's gate and, with
/// `cluster:` in `snapshot`, in the window the replicas share (this replica's share of it
/// while Redis cannot be reached). Waits for the slot; `Err` with the slot if it comes
/// after `deadline`.
pub async fn reserve<'l, 'g>(
    lane: &'l Lane<'g>,
    snapshot: &Snapshot,
    robot: &Robot,
    deadline: Option<Instant>,
) -> Result<Reserved<'l, 'g>, Instant> {
    let limit = robot.rate_limit;
    let Some(cluster) = snapshot.cluster.as_deref() else {
        return lane.reserve(limit, deadline).await;
    };
    let gate = lane.gate();
    loop {
        let now = Instant::now();
        // This replica's own sends and pause, which Redis may have lost, come first.
        let own = gate.next_slot(limit, now);
        let (slot, wake) = if own > now {
            (own, own)
        } else {
            match cluster
                .reserve(&robot.name, limit, now, || gate.sends(now))
                .await
            {
                Slot::Granted => return Ok(lane.granted(now)),
                Slot::Wait {
                    until,
                    paused_until,
                } => {
                    if let Some(paused_until) = paused_until {
                        gate.paused_elsewhere(paused_until);
                    }
                    let spread = SHARED_WAIT_JITTER.mul_f64(fastrand::f64());
                    (until, until + spread)
                }
                Slot::Unreachable { not_before } => {
                    let now = Instant::now();
                    let slot = if not_before > now {
                        not_before
                    } else {
                        match lane.try_reserve(cluster.share(limit), now) {
                            Ok(reserved) => return Ok(reserved),
                            Err(slot) => slot,
                        }
                    };
                    // Redis may answer again meanwhile.
                    (slot, slot.min(now + cluster::HEARTBEAT))
                }
            }
        };
        if deadline.is_some_and(|deadline| slot > deadline) {
            return Err(slot);
        }
        tokio::time::sleep_until(wake).await;
    }
}

/// How many more sends `robot`'s window takes now: the gate's, and with `cluster:` the
/// shared window's as Redis last said (or this replica's share while it cannot be
/// reached).
pub fn room(snapshot: &Snapshot, gate: &Gate, robot: &Robot) -> usize {
    let now = Instant::now();
    let own = gate.room(robot.rate_limit, now);
    match snapshot.cluster.as_deref() {
        None => own,
        Some(cluster) if !cluster.is_reachable() => gate.room(cluster.share(robot.rate_limit), now),
        Some(cluster) => cluster
            .room(&robot.name)
            .map_or(own, |shared| shared.min(own)),
    }
}
