//! What the queue keeps beside its store, so that a send, a scrape, the API and the status
//! page never read the store for it ([`Ledger`]), and the acknowledgements and burials the
//! store still owes (see `Queue::settle`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;

use super::Envelope;

/// Per robot: how many messages are pending, when the oldest of them was accepted, how
/// many are dead letters, and whether an alert group has more than one message pending.
///
/// Depths are signed: an acknowledgement may be counted just before the append it follows,
/// and the two still add up. The oldest acceptance time is the store's as last read
/// (at start, by the worker reading its robot's oldest messages, after every removal), or
/// the first append's while the robot had none; a robot without one has no known age.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    depths: Mutex<BTreeMap<String, i64>>,
    oldest: Mutex<BTreeMap<String, Timestamp>>,
    dead: Mutex<BTreeMap<String, usize>>,
    groups: Mutex<BTreeMap<String, Groups>>,
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the maps consistent.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ledger {
    pub(super) fn add(&self, robot: &str, count: usize) {
        *lock(&self.depths).entry(robot.to_owned()).or_default() += signed(count);
    }

    pub(super) fn take(&self, robot: &str, count: usize) {
        *lock(&self.depths).entry(robot.to_owned()).or_default() -= signed(count);
    }

    /// Counts `messages` in, just appended to the store.
    pub(super) fn appended(&self, messages: &[Envelope]) {
        for message in messages {
            self.add(&message.robot, 1);
            lock(&self.oldest)
                .entry(message.robot.clone())
                .or_insert(message.accepted_at);
            if let Some(group) = message.group() {
                self.grouped(&message.robot, message.id, group);
            }
        }
    }

    /// Notes that pending message `id` of `robot` belongs to `group`.
    pub(super) fn grouped(&self, robot: &str, id: u64, group: u64) {
        lock(&self.groups)
            .entry(robot.to_owned())
            .or_default()
            .add(id, group);
    }

    /// Forgets the groups of messages `ids` of `robot`, which left the queue.
    pub(super) fn ungrouped(&self, robot: &str, ids: impl IntoIterator<Item = u64>) {
        if let Some(groups) = lock(&self.groups).get_mut(robot) {
            for id in ids {
                groups.remove(id);
            }
        }
    }

    /// Whether an alert group has more than one message pending for `robot`.
    pub(super) fn has_repeated_group(&self, robot: &str) -> bool {
        lock(&self.groups)
            .get(robot)
            .is_some_and(|groups| groups.repeated > 0)
    }

    /// Raises the count of `robot` to `count` if it is lower; returns whether it was.
    pub(super) fn raise_to(&self, robot: &str, count: usize) -> bool {
        let mut depths = lock(&self.depths);
        let depth = depths.entry(robot.to_owned()).or_default();
        let raised = *depth < signed(count);
        if raised {
            *depth = signed(count);
        }
        raised
    }

    pub(super) fn depth(&self, robot: &str) -> usize {
        lock(&self.depths)
            .get(robot)
            .map_or(0, |d| usize::try_from(*d).unwrap_or(0))
    }

    pub(super) fn depths(&self) -> Vec<(String, usize)> {
        lock(&self.depths)
            .iter()
            .map(|(robot, d)| (robot.clone(), usize::try_from(*d).unwrap_or(0)))
            .collect()
    }

    /// Records when `robot`'s oldest pending message was accepted, as the store says now;
    /// `None` when it holds none, or cannot say.
    pub(super) fn set_oldest(&self, robot: &str, oldest: Option<Timestamp>) {
        let mut known = lock(&self.oldest);
        match oldest {
            Some(at) => known.insert(robot.to_owned(), at),
            None => known.remove(robot),
        };
    }

    /// When `robot`'s oldest pending message was accepted, if known.
    pub(super) fn oldest(&self, robot: &str) -> Option<Timestamp> {
        lock(&self.oldest).get(robot).copied()
    }

    /// Counts `count` more dead letters of `robot`.
    pub(super) fn buried(&self, robot: &str, count: usize) {
        *lock(&self.dead).entry(robot.to_owned()).or_default() += count;
    }

    /// Counts `count` dead letters of `robot` fewer.
    pub(super) fn revived(&self, robot: &str, count: usize) {
        let mut dead = lock(&self.dead);
        if let Some(left) = dead.get_mut(robot) {
            *left = left.saturating_sub(count);
            if *left == 0 {
                dead.remove(robot);
            }
        }
    }

    /// Dead letters per robot that has any.
    pub(super) fn dead(&self) -> BTreeMap<String, usize> {
        lock(&self.dead).clone()
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
