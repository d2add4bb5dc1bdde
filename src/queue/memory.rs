//! Messages kept in process memory: fast, and lost on restart. Used when no
//! `delivery.queue_dir` is configured.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;

use super::{DeadLetter, Envelope, Inventory, QueueError, RobotStats, Store};

/// Pending messages per robot, and dead letters, in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pending: BTreeMap<String, VecDeque<Envelope>>,
    dead: Vec<DeadLetter>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every operation leaves the state consistent, so a panic elsewhere while the lock
        // was held does not make it unusable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn append(&self, messages: &[Envelope]) -> Result<(), QueueError> {
        let mut state = self.lock();
        for message in messages {
            insert_in_order(
                state.pending.entry(message.robot.clone()).or_default(),
                message,
            );
        }
        Ok(())
    }

    fn oldest(&self, robot: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        Ok(self
            .lock()
            .pending
            .get(robot)
            .map(|q| q.iter().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    fn remove(&self, robot: &str, ids: &[u64]) -> Result<usize, QueueError> {
        Ok(self
            .lock()
            .pending
            .get_mut(robot)
            .map_or(0, |queue| remove_ids(queue, ids)))
    }

    fn bury(
        &self,
        messages: &[Envelope],
        reason: &str,
        at: Timestamp,
    ) -> Result<usize, QueueError> {
        let mut state = self.lock();
        let mut by_robot: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for message in messages {
            by_robot.entry(&message.robot).or_default().push(message.id);
        }
        let mut removed = 0;
        for (robot, ids) in by_robot {
            if let Some(queue) = state.pending.get_mut(robot) {
                removed += remove_ids(queue, &ids);
            }
        }
        state.dead.extend(messages.iter().map(|message| DeadLetter {
            envelope: message.clone(),
            reason: reason.to_owned(),
            at,
        }));
        Ok(removed)
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.lock().dead.clone())
    }

    fn revive_all(&self) -> Result<Vec<Envelope>, QueueError> {
        let mut state = self.lock();
        let revived: Vec<Envelope> = state.dead.drain(..).map(|d| d.envelope).collect();
        for message in &revived {
            insert_in_order(
                state.pending.entry(message.robot.clone()).or_default(),
                message,
            );
        }
        Ok(revived)
    }

    fn scan(&self) -> Result<Inventory, QueueError> {
        let state = self.lock();
        let robots = state
            .pending
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(robot, q)| {
                let stats = RobotStats {
                    depth: q.len(),
                    oldest: q.front().map(|m| m.accepted_at),
                };
                (robot.clone(), stats)
            })
            .collect();
        // Queues are kept in id order, so each one's last message has its highest id.
        let pending = state
            .pending
            .values()
            .filter_map(|q| q.back())
            .map(|m| m.id);
        let grouped = state
            .pending
            .values()
            .flatten()
            .filter_map(|m| Some((m.robot.clone(), m.id, m.group()?)))
            .collect();
        let mut dead = BTreeMap::<String, usize>::new();
        for letter in &state.dead {
            *dead.entry(letter.envelope.robot.clone()).or_default() += 1;
        }
        let dead_ids = state.dead.iter().map(|d| d.envelope.id);
        Ok(Inventory {
            robots,
            dead,
            grouped,
            last_id: pending.chain(dead_ids).max().unwrap_or(0),
        })
    }

    fn sync(&self) -> Result<(), QueueError> {
        Ok(())
    }

    fn syncs_to_disk(&self) -> bool {
        false
    }
}

/// Removes the messages with `ids` from `queue`; returns how many there were. Delivered
/// messages are nearly always the oldest, so they are taken off the front without
/// looking at the rest of a long queue.
fn remove_ids(queue: &mut VecDeque<Envelope>, ids: &[u64]) -> usize {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    let listed = |id: &u64| ids.binary_search(id).is_ok();
    let before = queue.len();
    while queue.front().is_some_and(|m| listed(&m.id)) {
        queue.pop_front();
    }
    if before - queue.len() < ids.len() {
        queue.retain(|m| !listed(&m.id));
    }
    before - queue.len()
}

/// Concurrent webhooks may commit out of id order; the queue stays in id order.
fn insert_in_order(queue: &mut VecDeque<Envelope>, message: &Envelope) {
    let at = queue.partition_point(|m| m.id < message.id);
    queue.insert(at, message.clone());
}
