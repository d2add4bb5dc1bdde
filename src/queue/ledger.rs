//! What the queue keeps beside its store, so that a send, a scrape, the API and the status
//! page never read the store for it ([`Ledger`]), and the acknowledgements and burials the
//! store still owes (see `Queue::settle`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;

use super::Envelope;

/// Per robot: how many messages are pending, when the oldest of them was accepted, how
/// many are dead letters, and whether an alert group has more than one message pending.
/// One short mutex over all of it, so that an append counts its messages in one step.
///
/// Depths are signed: an acknowledgement may be counted just before the append it follows,
/// and the two still add up. The oldest acceptance time is the store's as last read
/// (at start, by the worker reading its robot's oldest messages, after every removal), or
/// the first append's while the robot had none; a robot without one has no known age.
#[derive(Debug, Default)]
pub(super) struct Ledger(Mutex<BTreeMap<String, RobotLedger>>);

/// What the ledger knows of one robot.
#[derive(Debug, Default)]
struct RobotLedger {
    depth: i64,
    oldest: Option<Timestamp>,
    dead: usize,
    groups: Groups,
}

/// Which pending messages of one robot belong to which (alert group, strategy), as
/// `group_id` hashes: enough to say whether a group has more than one pending, so that the
/// worker reads a batch (for the newer to supersede the older) only when one has.
#[derive(Debug, Default)]
struct Groups {
    /// Message id → its group.
    of: HashMap<u64, u64>,
    /// Group → its pending messages.
    pending: HashMap<u64, usize>,
    /// Groups with more than one pending message.
    repeated: usize,
}

impl Groups {
    fn add(&mut self, id: u64, group: u64) {
        if self.of.insert(id, group).is_some() {
            return;
        }
        let pending = self.pending.entry(group).or_default();
        *pending += 1;
        if *pending == 2 {
            self.repeated += 1;
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(group) = self.of.remove(&id) else {
            return;
        };
        if let Some(pending) = self.pending.get_mut(&group) {
            *pending -= 1;
            match *pending {
                0 => {
                    self.pending.remove(&group);
                }
                1 => self.repeated -= 1,
                _ => {}
            }
        }
    }
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, RobotLedger>> {
        // Every critical section leaves the map consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `change` on `robot`'s entry, made if it is missing.
    fn with<T>(&self, robot: &str, change: impl FnOnce(&mut RobotLedger) -> T) -> T {
        let mut robots = self.lock();
        match robots.get_mut(robot) {
            Some(entry) => change(entry),
            None => change(robots.entry(robot.to_owned()).or_default()),
        }
    }

    pub(super) fn add(&self, robot: &str, count: usize) {
        self.with(robot, |r| r.depth += signed(count));
    }

    pub(super) fn take(&self, robot: &str, count: usize) {
        self.with(robot, |r| r.depth -= signed(count));
    }

    /// Counts `messages` in, just appended to the store.
    pub(super) fn appended(&self, messages: &[Envelope]) {
        let mut robots = self.lock();
        for message in messages {
            let entry = match robots.get_mut(&message.robot) {
                Some(entry) => entry,
                None => robots.entry(message.robot.clone()).or_default(),
            };
            entry.depth += 1;
            entry.oldest.get_or_insert(message.accepted_at);
            if let Some(group) = message.group() {
                entry.groups.add(message.id, group);
            }
        }
    }

    /// Notes that pending message `id` of `robot` belongs to `group`.
    pub(super) fn grouped(&self, robot: &str, id: u64, group: u64) {
        self.with(robot, |r| r.groups.add(id, group));
    }

    /// Forgets the groups of messages `ids` of `robot`, which left the queue.
    pub(super) fn ungrouped(&self, robot: &str, ids: impl IntoIterator<Item = u64>) {
        self.with(robot, |r| {
            for id in ids {
                r.groups.remove(id);
            }
        });
    }

    /// Whether an alert group has more than one message pending for `robot`.
    pub(super) fn has_repeated_group(&self, robot: &str) -> bool {
        self.lock()
            .get(robot)
            .is_some_and(|r| r.groups.repeated > 0)
    }

    /// Raises the count of `robot` to `count` if it is lower; returns whether it was.
    pub(super) fn raise_to(&self, robot: &str, count: usize) -> bool {
        self.with(robot, |r| {
            let raised = r.depth < signed(count);
            if raised {
                r.depth = signed(count);
            }
            raised
        })
    }

    pub(super) fn depth(&self, robot: &str) -> usize {
        self.lock()
            .get(robot)
            .map_or(0, |r| usize::try_from(r.depth).unwrap_or(0))
    }

    pub(super) fn depths(&self) -> Vec<(String, usize)> {
        self.lock()
            .iter()
            .map(|(robot, r)| (robot.clone(), usize::try_from(r.depth).unwrap_or(0)))
            .collect()
    }

    /// Records when `robot`'s oldest pending message was accepted, as the store says now;
    /// `None` when it holds none, or cannot say.
    pub(super) fn set_oldest(&self, robot: &str, oldest: Option<Timestamp>) {
        self.with(robot, |r| r.oldest = oldest);
    }

    /// When `robot`'s oldest pending message was accepted, if known.
    pub(super) fn oldest(&self, robot: &str) -> Option<Timestamp> {
        self.lock().get(robot).and_then(|r| r.oldest)
    }

    /// Counts `count` more dead letters of `robot`.
    pub(super) fn buried(&self, robot: &str, count: usize) {
        self.with(robot, |r| r.dead += count);
    }

    /// Counts `count` dead letters of `robot` fewer.
    pub(super) fn revived(&self, robot: &str, count: usize) {
        self.with(robot, |r| r.dead = r.dead.saturating_sub(count));
    }

    /// Dead letters per robot that has any.
    pub(super) fn dead(&self) -> BTreeMap<String, usize> {
        self.lock()
            .iter()
            .filter(|(_, r)| r.dead > 0)
            .map(|(robot, r)| (robot.clone(), r.dead))
            .collect()
    }
}

fn signed(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// What the store still has to be told about one robot's messages.
#[derive(Debug, Default)]
pub(super) struct Unsettled {
    /// Delivered messages still in the store.
    pub(super) removals: BTreeSet<u64>,
    /// Messages given up on, still pending in the store: one burial per entry.
    pub(super) burials: Vec<Burial>,
}

/// Messages to move to the dead letters, with why and when.
#[derive(Debug, Clone)]
pub(super) struct Burial {
    pub(super) messages: Vec<Envelope>,
    pub(super) reason: String,
    pub(super) at: Timestamp,
}

impl Unsettled {
    /// The ids of every message concerned.
    pub(super) fn ids(&self) -> BTreeSet<u64> {
        let buried = self
            .burials
            .iter()
            .flat_map(|b| b.messages.iter().map(|m| m.id));
        self.removals.iter().copied().chain(buried).collect()
    }

    pub(super) fn len(&self) -> usize {
        self.removals.len() + self.burials.iter().map(|b| b.messages.len()).sum::<usize>()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.removals.is_empty() && self.burials.is_empty()
    }
}
