//! The [`Store`] trait: where pending messages and dead letters are kept, in memory or in
//! the queue file.

use jiff::Timestamp;

use super::{DeadLetter, Envelope, Inventory, QueueError};

/// Where pending messages and dead letters are kept. Every method is one atomic step.
pub trait Store: Send + Sync {
    /// Appends messages, all or none, durably when the store is durable.
    fn append(&self, messages: &[Envelope]) -> Result<(), QueueError>;
    /// Up to `limit` pending messages of `robot`, oldest first.
    fn oldest(&self, robot: &str, limit: usize) -> Result<Vec<Envelope>, QueueError>;
    /// Removes delivered messages; returns how many of them were pending.
    fn remove(&self, robot: &str, ids: &[u64]) -> Result<usize, QueueError>;
    /// Moves messages to the dead letters; returns how many of them were pending.
    fn bury(&self, messages: &[Envelope], reason: &str, at: Timestamp)
    -> Result<usize, QueueError>;
    /// Every dead letter, oldest first.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError>;
    /// Moves every dead letter back to its robot's queue, in id order; returns them.
    fn revive_all(&self) -> Result<Vec<Envelope>, QueueError>;
    /// Reads the whole store: called once, at start; [`Queue`] keeps the counts from then
    /// on.
    fn scan(&self) -> Result<Inventory, QueueError>;
    /// Makes every change made so far durable, if the store is durable and some change
    /// is not yet.
    fn sync(&self) -> Result<(), QueueError>;
    /// What the commit thread does every second: syncs, and opens the store again if a
    /// failure closed it.
    fn maintain(&self) -> Result<(), QueueError> {
        self.sync()
    }
    /// How many times the store was opened again after a failure. What it holds may then
    /// differ from what the queue counted (a commit that failed may have been written).
    fn generation(&self) -> u64 {
        0
    }
    /// Whether appends are synced to disk: then concurrent appends are worth gathering
    /// into one commit.
    fn syncs_to_disk(&self) -> bool;
}
