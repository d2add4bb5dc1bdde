//! What the queue keeps beside its store: each robot's depth, and the acknowledgements
//! and burials the store still owes (see `Queue::settle`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;

use super::Envelope;

/// Pending messages per robot, kept alongside the store so that the worker's every send
/// and every scrape need not count the store. Counts are signed: an acknowledgement may
/// be counted just before the append it follows, and the two still add up.
#[derive(Default)]
pub(super) struct Depths(Mutex<BTreeMap<String, i64>>);

impl Depths {
    pub(super) fn lock(&self) -> MutexGuard<'_, BTreeMap<String, i64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn add(&self, robot: &str, count: usize) {
        *self.lock().entry(robot.to_owned()).or_default() += signed(count);
    }

    pub(super) fn take(&self, robot: &str, count: usize) {
        *self.lock().entry(robot.to_owned()).or_default() -= signed(count);
    }

    /// Raises the count of `robot` to `count` if it is lower; returns whether it was.
    pub(super) fn raise_to(&self, robot: &str, count: usize) -> bool {
        let mut depths = self.lock();
        let depth = depths.entry(robot.to_owned()).or_default();
        let raised = *depth < signed(count);
        if raised {
            *depth = signed(count);
        }
        raised
    }

    pub(super) fn get(&self, robot: &str) -> usize {
        self.lock()
            .get(robot)
            .map_or(0, |d| usize::try_from(*d).unwrap_or(0))
    }

    pub(super) fn all(&self) -> Vec<(String, usize)> {
        self.lock()
            .iter()
            .map(|(robot, d)| (robot.clone(), usize::try_from(*d).unwrap_or(0)))
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
