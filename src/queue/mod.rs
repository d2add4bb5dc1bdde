//! Pending messages, one FIFO per robot, and the dead letters.
//!
//! A message stays queued until the delivery worker acknowledges it (DingTalk accepted it)
//! or buries it as a dead letter, so a message being sent or waiting for a retry is never
//! only in the worker's hands. Storage sits behind the [`Store`] trait: [`MemoryStore`]
//! without `delivery.queue_dir`, [`DurableStore`] (redb) with it. Appends to a durable
//! store go through one committer thread that writes everything waiting in a single
//! transaction, so concurrent webhooks share one fsync; appends to memory happen in place,
//! where handing them to a thread would cost more than the append.
//!
//! [`Queue`] keeps each robot's depth beside the store, so that a send, a scrape and
//! shutdown never count the store; it counts the store once at start ([`Store::scan`]),
//! and again after the store was opened again after a failure. A robot's queue holds at most `delivery.max_pending` messages: past
//! that, [`Queue::push`] refuses with [`QueueError::Full`], so memory stays bounded and
//! Alertmanager, answered 503, retries later. An acknowledgement or a burial the store
//! cannot write (a full disk) is kept here and written later by [`Queue::settle`]:
//! meanwhile those messages are neither counted nor handed out again, so what DingTalk
//! accepted is not sent twice while the process lives.

mod commit;
mod durable;
mod envelope;
mod ledger;
mod memory;
mod store;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use jiff::Timestamp;
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, oneshot};

pub use durable::{DurableStore, Recovery};
pub use envelope::{DeadLetter, Envelope, GroupSummary, Inventory, RobotStats};
pub use memory::MemoryStore;
pub use store::Store;

use commit::{Commit, append, commit_loop};
use ledger::{Burial, Depths, Unsettled};

/// Why the queue could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The robot's queue holds `delivery.max_pending` messages already.
    #[error(
        "queue of robot {robot} is full ({limit} messages pending, delivery.max_pending); try again later"
    )]
    Full {
        /// The robot.
        robot: String,
        /// `delivery.max_pending`.
        limit: usize,
    },
    /// The store failed: a disk error, a full disk, a damaged file.
    #[error("queue: {0}")]
    Store(String),
}

/// The queue the HTTP handlers push to and the delivery workers drain.
pub struct Queue {
    store: Arc<dyn Store>,
    /// The commit thread's inbox, for a store that syncs to disk.
    committer: Option<mpsc::Sender<Commit>>,
    next_id: AtomicU64,
    depths: Arc<Depths>,
    unsettled: Mutex<BTreeMap<String, Unsettled>>,
    /// The store's generation the counts were last taken at.
    seen_generation: AtomicU64,
    arrivals: Mutex<BTreeMap<String, Arc<Notify>>>,
    changes: Notify,
}

impl Queue {
    /// A queue over `store`, numbering new messages after those already in it.
    pub fn new(store: Arc<dyn Store>) -> Result<Self, QueueError> {
        let store_generation = store.generation();
        let inventory = store.scan()?;
        let depths = Arc::new(Depths::default());
        for (robot, stats) in &inventory.robots {
            depths.add(robot, stats.depth);
        }
        let committer = if store.syncs_to_disk() {
            let (committer, commits) = mpsc::channel::<Commit>();
            let commit_store = store.clone();
            let commit_depths = depths.clone();
            std::thread::Builder::new()
                .name("queue-commit".to_owned())
                .spawn(move || commit_loop(&*commit_store, &commit_depths, &commits))
                .map_err(|e| QueueError::Store(format!("cannot start the commit thread: {e}")))?;
            Some(committer)
        } else {
            None
        };
        Ok(Queue {
            store,
            committer,
            next_id: AtomicU64::new(inventory.last_id + 1),
            depths,
            unsettled: Mutex::default(),
            seen_generation: AtomicU64::new(store_generation),
            arrivals: Mutex::default(),
            changes: Notify::new(),
        })
    }

    /// Whether appends go to the commit thread: then a push waits for it, and a push
    /// that is dropped meanwhile is still committed.
    pub fn commits_on_a_thread(&self) -> bool {
        self.committer.is_some()
    }

    /// The next message id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Stores `messages` (committed before this returns) and wakes their robots'
    /// workers, unless that would take a robot's queue past `max_pending`. Concurrent
    /// pushes are checked against the same depth, so they may pass the limit by what
    /// they carry together.
    pub async fn push(
        &self,
        messages: Vec<Envelope>,
        max_pending: usize,
    ) -> Result<(), QueueError> {
        let mut incoming: BTreeMap<&str, usize> = BTreeMap::new();
        for message in &messages {
            *incoming.entry(&message.robot).or_default() += 1;
        }
        for (robot, count) in &incoming {
            if self.depth(robot) + count > max_pending {
                return Err(QueueError::Full {
                    robot: (*robot).to_owned(),
                    limit: max_pending,
                });
            }
        }
        let robots: Vec<String> = incoming.keys().map(|r| (*r).to_owned()).collect();
        match &self.committer {
            Some(committer) => {
                let (done, committed) = oneshot::channel();
                let stopped = || QueueError::Store("the commit thread has stopped".to_owned());
                committer.send((messages, done)).map_err(|_| stopped())?;
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
        self.recount_if_reopened();
        let counted = self.depths.get(robot);
        let oldest = self.read_oldest(robot, limit)?;
        if oldest.is_empty() && limit > 0 {
            // The store has nothing readable for the robot (what it cannot decode stays
            // in the file): the worker must not spin on a count that says otherwise. What
            // was counted is taken off rather than the count set to 0, so that an append
            // committed after the read above keeps its count.
            self.depths.take(robot, counted);
        }
        Ok(oldest)
    }

    /// The store's oldest messages of `robot`, leaving out those already settled here.
    fn read_oldest(&self, robot: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        // Copied, so that no lock is held while the store reads.
        let skip = self
            .unsettled_map()
            .get(robot)
            .map(Unsettled::ids)
            .unwrap_or_default();
        if skip.is_empty() {
            return self.store.oldest(robot, limit);
        }
        let mut oldest = self.store.oldest(robot, limit.saturating_add(skip.len()))?;
        oldest.retain(|m| !skip.contains(&m.id));
        oldest.truncate(limit);
        Ok(oldest)
    }

    /// After the store was opened again, counts what it holds again: a commit that was
    /// answered with an error may have been written after all. Counts are only raised,
    /// never lowered here, so no message is left uncounted (a count too high corrects
    /// itself when the worker finds nothing more to read).
    fn recount_if_reopened(&self) {
        let generation = self.store.generation();
        if self.seen_generation.swap(generation, Ordering::Relaxed) == generation {
            return;
        }
        let Ok(inventory) = self.store.scan() else {
            // Counted again at the next reopen.
            return;
        };
        for (robot, stats) in inventory.robots {
            let held = stats.depth.saturating_sub(self.unsettled(&robot));
            if self.depths.raise_to(&robot, held) {
                self.arrival(&robot).notify_one();
            }
        }
    }

    /// Removes messages of `robot` that DingTalk accepted. If the store fails, they are
    /// removed from the count and kept from being handed out again, and [`settle`]
    /// (Self::settle) writes the removal later.
    pub fn ack(&self, robot: &str, ids: &[u64]) -> Result<(), QueueError> {
        let result = self.store.remove(robot, ids);
        match &result {
            Ok(removed) => self.depths.take(robot, *removed),
            Err(_) => {
                let mut unsettled = self.unsettled_map();
                let robot_unsettled = unsettled.entry(robot.to_owned()).or_default();
                robot_unsettled.removals.extend(ids);
                self.depths.take(robot, ids.len());
            }
        }
        self.changes.notify_waiters();
        result.map(|_| ())
    }

    /// Moves messages of `robot` that cannot be delivered to the dead letters. If the
    /// store fails, they are kept as [`ack`](Self::ack) keeps removals.
    pub fn bury(&self, robot: &str, messages: &[Envelope], reason: &str) -> Result<(), QueueError> {
        let at = Timestamp::now();
        let result = self.store.bury(messages, reason, at);
        match &result {
            Ok(removed) => self.depths.take(robot, *removed),
            Err(_) => {
                let mut unsettled = self.unsettled_map();
                let robot_unsettled = unsettled.entry(robot.to_owned()).or_default();
                robot_unsettled.burials.push(Burial {
                    messages: messages.to_vec(),
                    reason: reason.to_owned(),
                    at,
                });
                self.depths.take(robot, messages.len());
            }
        }
        self.changes.notify_waiters();
        result.map(|_| ())
    }

    /// How many acknowledgements and burials of `robot` the store has yet to write.
    pub fn unsettled(&self, robot: &str) -> usize {
        self.unsettled_map().get(robot).map_or(0, Unsettled::len)
    }

    /// Acknowledgements and burials of every robot the store has yet to write.
    pub fn total_unsettled(&self) -> usize {
        self.unsettled_map().values().map(Unsettled::len).sum()
    }

    /// Writes what [`ack`](Self::ack) and [`bury`](Self::bury) could not, stopping at the
    /// first failure; what is not written stays for the next call.
    pub fn settle(&self, robot: &str) -> Result<(), QueueError> {
        let (removals, burials) = match self.unsettled_map().get(robot) {
            Some(u) => (
                u.removals.iter().copied().collect::<Vec<_>>(),
                u.burials.clone(),
            ),
            None => return Ok(()),
        };
        if !removals.is_empty() {
            self.store.remove(robot, &removals)?;
            self.settled(robot, |u| u.removals.retain(|id| !removals.contains(id)));
        }
        // Only this robot's worker buries and settles, so the first burial stays the
        // first until it is written.
        for burial in burials {
            self.store
                .bury(&burial.messages, &burial.reason, burial.at)?;
            self.settled(robot, |u| {
                u.burials.remove(0);
            });
        }
        Ok(())
    }

    /// Applies `written` to what `robot` has unsettled, and forgets the robot's entry once
    /// it is empty.
    fn settled(&self, robot: &str, written: impl FnOnce(&mut Unsettled)) {
        let mut unsettled = self.unsettled_map();
        if let Some(robot_unsettled) = unsettled.get_mut(robot) {
            written(robot_unsettled);
            if robot_unsettled.is_empty() {
                unsettled.remove(robot);
            }
        }
    }

    fn unsettled_map(&self) -> MutexGuard<'_, BTreeMap<String, Unsettled>> {
        self.unsettled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        self.store.dead_letters()
    }

    /// Makes every change so far durable: at shutdown, so that no delivered message is
    /// sent again after the restart.
    pub fn sync(&self) -> Result<(), QueueError> {
        self.store.sync()
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
    /// store: one short read per robot. Depths come from the counts, so they are there
    /// also while the store fails; the age is then `None`.
    pub fn stats(&self) -> BTreeMap<String, RobotStats> {
        self.recount_if_reopened();
        let mut stats = BTreeMap::new();
        for (robot, depth) in self.depths.all() {
            if depth == 0 {
                continue;
            }
            let oldest = self
                .read_oldest(&robot, 1)
                .ok()
                .and_then(|m| m.first().map(|m| m.accepted_at));
            stats.insert(robot, RobotStats { depth, oldest });
        }
        stats
    }

    /// Robots with pending messages, and how many each has.
    pub fn depths(&self) -> Vec<(String, usize)> {
        let mut depths = self.depths.all();
        depths.retain(|(_, depth)| *depth > 0);
        depths
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
