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
//! Nothing that can wait on the disk runs on an async worker thread: a call that reads or
//! writes a store that syncs to disk runs on tokio's blocking pool (`spawn_blocking`), and
//! appends go to the commit thread; a memory store is called in place. [`Queue`] keeps
//! each robot's depth, the age of its oldest message and its dead letters beside the store
//! (its ledger), so that a send, a scrape, the API and the status page never read the
//! store for them; it reads the whole store once at start ([`Store::scan`]), and again
//! after the store was opened again after a failure.
//!
//! A robot's queue holds at most `delivery.max_pending` messages: past that,
//! [`Queue::push`] refuses with [`QueueError::Full`], so memory stays bounded and
//! Alertmanager, answered 503, retries later. An acknowledgement or a burial the store
//! cannot write (a full disk) is kept here and written later by [`Queue::settle`]:
//! meanwhile those messages are neither counted nor handed out again, so what DingTalk
//! accepted is not sent twice while the process lives.

mod commit;
mod durable;
mod envelope;
mod ledger;
mod memory;
mod settle;
mod store;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::futures::Notified;
use tokio::sync::{Notify, oneshot};

pub use durable::{DurableStore, Recovery};
pub use envelope::{DeadLetter, Envelope, GroupSummary, Inventory, RobotStats, group_id};
pub use memory::MemoryStore;
pub use store::Store;

use commit::{Commit, append, commit_loop};
use ledger::{Ledger, Unsettled};

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
    ledger: Arc<Ledger>,
    unsettled: Mutex<BTreeMap<String, Unsettled>>,
    /// The store's generation the counts were last taken at.
    seen_generation: AtomicU64,
    arrivals: Mutex<BTreeMap<String, Arc<Notify>>>,
    changes: Notify,
}

impl Queue {
    /// A queue over `store`, numbering new messages after those already in it. Reads the
    /// whole store, on this thread: at start, before anything is served.
    pub fn new(store: Arc<dyn Store>) -> Result<Self, QueueError> {
        let store_generation = store.generation();
        let inventory = store.scan()?;
        let ledger = Arc::new(Ledger::default());
        for (robot, stats) in &inventory.robots {
            ledger.add(robot, stats.depth);
            ledger.set_oldest(robot, stats.oldest);
        }
        for (robot, count) in &inventory.dead {
            ledger.buried(robot, *count);
        }
        for (robot, id, group) in &inventory.grouped {
            ledger.grouped(robot, *id, *group);
        }
        let committer = if store.syncs_to_disk() {
            let (committer, commits) = mpsc::channel::<Commit>();
            let commit_store = store.clone();
            let commit_ledger = ledger.clone();
            std::thread::Builder::new()
                .name("queue-commit".to_owned())
                .spawn(move || commit_loop(&*commit_store, &commit_ledger, &commits))
                .map_err(|e| QueueError::Store(format!("cannot start the commit thread: {e}")))?;
            Some(committer)
        } else {
            None
        };
        Ok(Queue {
            store,
            committer,
            next_id: AtomicU64::new(inventory.last_id + 1),
            ledger,
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

    /// Runs `op` where waiting on the disk holds up no async task: on tokio's blocking
    /// pool for a store that syncs to disk, in place for memory.
    async fn off_the_runtime<T: Send + 'static>(
        self: &Arc<Self>,
        op: impl FnOnce(&Queue) -> Result<T, QueueError> + Send + 'static,
    ) -> Result<T, QueueError> {
        if !self.store.syncs_to_disk() {
            return op(self);
        }
        let queue = self.clone();
        tokio::task::spawn_blocking(move || op(&queue))
            .await
            .unwrap_or_else(|error| Err(QueueError::Store(format!("queue call failed: {error}"))))
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
            None => append(&*self.store, &self.ledger, &messages)?,
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
        self.ledger.depth(robot)
    }

    /// Whether an alert group has more than one message pending for `robot`: then a
    /// newer state may supersede an older one.
    pub fn has_repeated_group(&self, robot: &str) -> bool {
        self.ledger.has_repeated_group(robot)
    }

    /// Up to `limit` pending messages of `robot`, oldest first, without waiting.
    pub async fn oldest(
        self: &Arc<Self>,
        robot: &str,
        limit: usize,
    ) -> Result<Vec<Envelope>, QueueError> {
        let robot = robot.to_owned();
        self.off_the_runtime(move |queue| queue.oldest_blocking(&robot, limit))
            .await
    }

    fn oldest_blocking(&self, robot: &str, limit: usize) -> Result<Vec<Envelope>, QueueError> {
        self.recount_if_reopened();
        let counted = self.ledger.depth(robot);
        let oldest = self.read_oldest(robot, limit)?;
        if limit > 0 {
            self.ledger
                .set_oldest(robot, oldest.first().map(|m| m.accepted_at));
        }
        if oldest.is_empty() && limit > 0 {
            // The store has nothing readable for the robot (what it cannot decode stays
            // in the file): the worker must not spin on a count that says otherwise. What
            // was counted is taken off rather than the count set to 0, so that an append
            // committed after the read above keeps its count.
            self.ledger.take(robot, counted);
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

    /// Reads `robot`'s oldest message again after some left the queue, for its age.
    fn reread_oldest(&self, robot: &str) {
        let oldest = match self.ledger.depth(robot) {
            0 => None,
            _ => self
                .read_oldest(robot, 1)
                .ok()
                .and_then(|m| m.first().map(|m| m.accepted_at)),
        };
        self.ledger.set_oldest(robot, oldest);
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
            if self.ledger.raise_to(&robot, held) {
                self.arrival(&robot).notify_one();
            }
        }
    }

    /// Every dead letter, oldest first: read from the store.
    pub async fn dead_letters(self: &Arc<Self>) -> Result<Vec<DeadLetter>, QueueError> {
        self.off_the_runtime(|queue| queue.store.dead_letters())
            .await
    }

    /// Dead letters per robot that has any, from the ledger.
    pub fn dead_counts(&self) -> BTreeMap<String, usize> {
        self.ledger.dead()
    }

    /// Makes every change so far durable: at shutdown, so that no delivered message is
    /// sent again after the restart.
    pub async fn sync(self: &Arc<Self>) -> Result<(), QueueError> {
        self.off_the_runtime(|queue| queue.store.sync()).await
    }

    /// Re-queues every dead letter and wakes the workers; returns the robots concerned.
    pub async fn revive_dead_letters(self: &Arc<Self>) -> Result<Vec<String>, QueueError> {
        let revived = self
            .off_the_runtime(|queue| queue.store.revive_all())
            .await?;
        let mut revived_of: BTreeMap<String, Vec<Envelope>> = BTreeMap::new();
        for message in revived {
            revived_of
                .entry(message.robot.clone())
                .or_default()
                .push(message);
        }
        for (robot, messages) in &revived_of {
            self.ledger.revived(robot, messages.len());
            self.ledger.add(robot, messages.len());
            let revived_oldest = messages.iter().map(|m| m.accepted_at).min();
            let oldest = match (self.ledger.oldest(robot), revived_oldest) {
                (Some(known), Some(revived)) => Some(known.min(revived)),
                (known, revived) => known.or(revived),
            };
            self.ledger.set_oldest(robot, oldest);
            for message in messages {
                if let Some(group) = message.group() {
                    self.ledger.grouped(robot, message.id, group);
                }
            }
            self.arrival(robot).notify_one();
        }
        self.changes.notify_waiters();
        Ok(revived_of.into_keys().collect())
    }

    /// Pending messages per robot that has any, with when the oldest was accepted, from
    /// the ledger. The age is `None` while the store could not say.
    pub fn stats(&self) -> BTreeMap<String, RobotStats> {
        self.ledger
            .depths()
            .into_iter()
            .filter(|(_, depth)| *depth > 0)
            .map(|(robot, depth)| {
                let oldest = self.ledger.oldest(&robot);
                (robot, RobotStats { depth, oldest })
            })
            .collect()
    }

    /// Robots with pending messages, and how many each has.
    pub fn depths(&self) -> Vec<(String, usize)> {
        let mut depths = self.ledger.depths();
        depths.retain(|(_, depth)| *depth > 0);
        depths
    }

    /// Pending messages of every robot.
    pub fn total_depth(&self) -> usize {
        self.ledger.depths().iter().map(|(_, depth)| depth).sum()
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
