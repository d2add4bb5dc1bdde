//! Pending messages, one FIFO per robot, and the dead letters.
//!
//! A message stays queued until the delivery worker acknowledges it (DingTalk accepted it)
//! or buries it as a dead letter (a permanent error, or too old), so a message being sent
//! or waiting for a retry is never only in the worker's hands. Storage sits behind the
//! [`Store`] trait: [`MemoryStore`] without `delivery.queue_dir`, [`DurableStore`] (redb)
//! with it. Appends to a durable store go through one committer thread that writes
//! everything waiting in a single transaction, so concurrent webhooks share one fsync;
//! appends to memory happen in place, where handing them to a thread would cost more
//! than the append.

mod durable;
mod memory;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, oneshot};

pub use durable::{DurableStore, Recovery};
pub use memory::MemoryStore;

use crate::dingtalk::Message;
use crate::payload::Status;

/// One message waiting to be sent to one robot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Queue position: unique and increasing, also across restarts.
    pub id: u64,
    /// Robot the message is for.
    pub robot: String,
    /// Strategy that produced it, or `direct` for `/dingtalk/{robot}/send`.
    pub strategy: String,
    /// DingTalk's `msgUuid`: the same on every retry, so a retry after a timeout is
    /// not shown twice.
    pub uuid: String,
    /// The rendered message.
    pub message: Message,
    /// What a digest needs to list this message's alert group.
    pub summary: GroupSummary,
    /// When the message was accepted.
    pub accepted_at: Timestamp,
}

/// The alert group of a message, in brief: what a digest lists when it merges messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Firing if any alert of the message fires.
    pub status: Status,
    /// The message's title, e.g. `[FIRING:3] HighCPU · critical`.
    pub title: String,
    /// The name of every alert of the message, including any the text had to leave out.
    pub alerts: Vec<String>,
    /// Alertmanager's URL, for the digest's link.
    pub external_url: String,
}

/// A message given up on, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The message.
    pub envelope: Envelope,
    /// Why it was given up on: DingTalk's error and hint, or its age.
    pub reason: String,
    /// When it was given up on.
    pub at: Timestamp,
}

/// Pending messages of one robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RobotStats {
    /// How many.
    pub depth: usize,
    /// When the oldest was accepted.
    pub oldest: Option<Timestamp>,
}

/// Why the queue could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("queue: {0}")]
pub struct QueueError(pub String);

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
    /// Pending messages per robot that has any. Reads the whole store: called once, at
    /// start; [`Queue`] keeps the counts from then on.
    fn stats(&self) -> Result<BTreeMap<String, RobotStats>, QueueError>;
    /// The highest id pending or dead, 0 when empty.
    fn last_id(&self) -> Result<u64, QueueError>;
    /// Whether appends are synced to disk: then concurrent appends are worth gathering
    /// into one commit.
    fn syncs_to_disk(&self) -> bool;
}

type Commit = (Vec<Envelope>, oneshot::Sender<Result<(), QueueError>>);

/// The queue the HTTP handlers push to and the delivery workers drain.
pub struct Queue {
    store: Arc<dyn Store>,
    /// The commit thread's inbox, for a store that syncs to disk.
    committer: Option<Mutex<mpsc::Sender<Commit>>>,
    next_id: AtomicU64,
    depths: Arc<Depths>,
    arrivals: Mutex<BTreeMap<String, Arc<Notify>>>,
    changes: Notify,
}

/// Pending messages per robot, kept alongside the store so that the worker's every send
/// and every scrape need not count the store. Counts are signed: an acknowledgement may
/// be counted just before the append it follows, and the two still add up.
#[derive(Default)]
struct Depths(Mutex<BTreeMap<String, i64>>);

impl Depths {
    fn add(&self, robot: &str, count: i64) {
        let mut depths = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *depths.entry(robot.to_owned()).or_default() += count;
    }

    fn set(&self, robot: &str, count: usize) {
        let mut depths = self.0.lock().unwrap_or_else(|p| p.into_inner());
        depths.insert(robot.to_owned(), i64::try_from(count).unwrap_or(i64::MAX));
    }

    fn get(&self, robot: &str) -> usize {
        let depths = self.0.lock().unwrap_or_else(|p| p.into_inner());
        depths
            .get(robot)
            .map_or(0, |d| usize::try_from(*d).unwrap_or(0))
    }

    fn all(&self) -> Vec<(String, usize)> {
        let depths = self.0.lock().unwrap_or_else(|p| p.into_inner());
        depths
            .iter()
            .map(|(robot, d)| (robot.clone(), usize::try_from(*d).unwrap_or(0)))
            .collect()
    }
}

impl Queue {
    /// A queue over `store`, numbering new messages after those already in it.
    pub fn new(store: Arc<dyn Store>) -> Result<Self, QueueError> {
        let next_id = store.last_id()? + 1;
        let depths = Arc::new(Depths::default());
        for (robot, stats) in store.stats()? {
            depths.set(&robot, stats.depth);
        }
        let committer = if store.syncs_to_disk() {
            let (committer, commits) = mpsc::channel::<Commit>();
            let commit_store = store.clone();
            let commit_depths = depths.clone();
            std::thread::Builder::new()
                .name("queue-commit".to_owned())
                .spawn(move || commit_loop(&*commit_store, &commit_depths, &commits))
                .map_err(|e| QueueError(format!("cannot start the commit thread: {e}")))?;
            Some(Mutex::new(committer))
        } else {
            None
        };
        Ok(Queue {
            store,
            committer,
            next_id: AtomicU64::new(next_id),
            depths,
            arrivals: Mutex::default(),
            changes: Notify::new(),
        })
    }

    /// The next message id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Stores `messages` (committed before this returns) and wakes their robots' workers.
    pub async fn push(&self, messages: Vec<Envelope>) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        let robots: Vec<String> = messages.iter().map(|m| m.robot.clone()).collect();
        match &self.committer {
            Some(committer) => {
                let (done, committed) = oneshot::channel();
                let stopped = || QueueError("the commit thread has stopped".to_owned());
                committer
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .send((messages, done))
                    .map_err(|_| stopped())?;
                committed.await.map_err(|_| stopped())??;
            }
            None => append(&*self.store, &self.depths, &messages)?,
        }
        for robot in robots {
            self.arrival(&robot).notify_one();
        }
        self.changes.notify_waiters();
        Ok(())
    }

    /// Waits until `robot` has pending messages.
    pub async fn wait_pending(&self, robot: &str) {
        let arrival = self.arrival(robot);
        loop {
            // Register interest before looking, so a push between the look and the wait
            // is not missed.
            let notified = arrival.notified();
            if self.depth(robot) > 0 {
                return;
            }
            notified.await;
        }
    }

    /// How many messages of `robot` are pending.
    pub fn depth(&self, robot: &str) -> usize {
        self.depths.get(robot)
    }

    /// Up to `limit` pending messages of `robot`, oldest first, without waiting.
    pub fn oldest(&self, robot: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        let counted = self.depths.get(robot);
        let oldest = self.store.oldest(robot, limit)?;
        if oldest.is_empty() && limit > 0 {
            // The store has nothing readable for the robot (what it cannot decode stays
            // in the file): the worker must not spin on a count that says otherwise. What
            // was counted is taken off rather than the count set to 0, so that an append
            // committed after the read above keeps its count.
            self.depths.add(robot, -count(counted));
        }
        Ok(oldest)
    }

    /// Removes messages of `robot` that DingTalk accepted.
    pub fn ack(&self, robot: &str, ids: &[u64]) -> Result<(), QueueError> {
        let removed = self.store.remove(robot, ids)?;
        self.depths.add(robot, -count(removed));
        self.changes.notify_waiters();
        Ok(())
    }

    /// Moves messages of `robot` that cannot be delivered to the dead letters.
    pub fn bury(&self, robot: &str, messages: &[Envelope], reason: &str) -> Result<(), QueueError> {
        let removed = self.store.bury(messages, reason, Timestamp::now())?;
        self.depths.add(robot, -count(removed));
        self.changes.notify_waiters();
        Ok(())
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        self.store.dead_letters()
    }

    /// Re-queues every dead letter and wakes the workers; returns the robots concerned.
    pub fn revive_dead_letters(&self) -> Result<Vec<String>, QueueError> {
        let revived = self.store.revive_all()?;
        let mut robots: Vec<String> = revived.into_iter().map(|m| m.robot).collect();
        robots.sort_unstable();
        for robot in &robots {
            self.depths.add(robot, 1);
        }
        robots.dedup();
        for robot in &robots {
            self.arrival(robot).notify_one();
        }
        self.changes.notify_waiters();
        Ok(robots)
    }

    /// Pending messages per robot that has any, with the oldest one's age read from the
    /// store: one short read per robot.
    pub fn stats(&self) -> Result<BTreeMap<String, RobotStats>, QueueError> {
        let mut stats = BTreeMap::new();
        for (robot, depth) in self.depths.all() {
            if depth == 0 {
                continue;
            }
            let oldest = self.store.oldest(&robot, 1)?.first().map(|m| m.accepted_at);
            stats.insert(robot, RobotStats { depth, oldest });
        }
        Ok(stats)
    }

    /// Pending messages of every robot.
    pub fn total_depth(&self) -> usize {
        self.depths.all().iter().map(|(_, depth)| depth).sum()
    }

    /// Completes at the next change of the queue after this call.
    pub fn changed(&self) -> Notified<'_> {
        self.changes.notified()
    }

    fn arrival(&self, robot: &str) -> Arc<Notify> {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        arrivals.entry(robot.to_owned()).or_default().clone()
    }
}

/// Appends `messages` to `store` and counts them in.
fn append(store: &dyn Store, depths: &Depths, messages: &[Envelope]) -> Result<(), QueueError> {
    store.append(messages)?;
    for message in messages {
        depths.add(&message.robot, 1);
    }
    Ok(())
}

fn count(messages: usize) -> i64 {
    i64::try_from(messages).unwrap_or(i64::MAX)
}

/// Writes what is waiting in one transaction: while one commit (and its fsync) runs,
/// the next webhooks' messages gather and share the following one.
fn commit_loop(store: &dyn Store, depths: &Depths, commits: &mpsc::Receiver<Commit>) {
    while let Ok(first) = commits.recv() {
        let mut batch = vec![first];
        batch.extend(commits.try_iter());
        let messages: Vec<Envelope> = batch
            .iter()
            .flat_map(|(messages, _)| messages.iter().cloned())
            .collect();
        let result = append(store, depths, &messages);
        for (_, done) in batch {
            // The webhook may have gone away; its messages are stored all the same.
            let _ = done.send(result.clone());
        }
    }
}
