//! Pending messages, one FIFO per robot.
//!
//! A message stays at the front of its robot's queue until the delivery worker
//! acknowledges it, so a message being sent or waiting for a retry is never only in the
//! worker's hands. Storage sits behind the [`Store`] trait: this module ships the in-memory
//! store; a durable one plugs in without changing the callers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// One message waiting to be sent to one robot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Unique, increasing id within the process.
    pub id: u64,
    /// Robot the message is for.
    pub robot: String,
    /// Strategy that produced it, or `direct` for `/dingtalk/{robot}/send`.
    pub strategy: String,
    /// The encoded DingTalk JSON body.
    pub body: String,
    /// How many alerts the message carries.
    pub alerts: usize,
    /// When the message was accepted.
    pub accepted_at: Timestamp,
}

/// Why messages could not be queued.
#[derive(Debug, thiserror::Error)]
#[error("cannot queue messages: {0}")]
pub struct QueueError(pub String);

/// Where pending messages are kept.
pub trait Store: Send + Sync {
    /// Appends messages, all or none.
    fn append(&self, messages: Vec<Envelope>) -> Result<(), QueueError>;
    /// The oldest pending message for `robot`.
    fn front(&self, robot: &str) -> Option<Envelope>;
    /// Removes the message `id` of `robot` after it was delivered or given up on.
    fn remove(&self, robot: &str, id: u64) -> Result<(), QueueError>;
    /// Pending messages per robot.
    fn depths(&self) -> BTreeMap<String, usize>;
}

/// Messages kept in process memory: lost on restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    queues: Mutex<BTreeMap<String, VecDeque<Envelope>>>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, VecDeque<Envelope>>> {
        // A panic while holding the lock leaves the queues consistent: every operation
        // is a single push or pop.
        self.queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    fn append(&self, messages: Vec<Envelope>) -> Result<(), QueueError> {
        let mut queues = self.lock();
        for message in messages {
            queues
                .entry(message.robot.clone())
                .or_default()
                .push_back(message);
        }
        Ok(())
    }

    fn front(&self, robot: &str) -> Option<Envelope> {
        self.lock().get(robot).and_then(|q| q.front().cloned())
    }

    fn remove(&self, robot: &str, id: u64) -> Result<(), QueueError> {
        if let Some(queue) = self.lock().get_mut(robot) {
            queue.retain(|m| m.id != id);
        }
        Ok(())
    }

    fn depths(&self) -> BTreeMap<String, usize> {
        self.lock()
            .iter()
            .map(|(robot, q)| (robot.clone(), q.len()))
            .collect()
    }
}

/// The queue the HTTP handlers push to and the delivery workers drain.
pub struct Queue {
    store: Box<dyn Store>,
    arrivals: Mutex<BTreeMap<String, Arc<Notify>>>,
    acks: Notify,
}

impl Queue {
    /// A queue over `store`.
    pub fn new(store: Box<dyn Store>) -> Self {
        Queue {
            store,
            arrivals: Mutex::default(),
            acks: Notify::new(),
        }
    }

    /// Stores `messages` and wakes the workers of their robots.
    pub fn push(&self, messages: Vec<Envelope>) -> Result<(), QueueError> {
        let robots: Vec<String> = messages.iter().map(|m| m.robot.clone()).collect();
        self.store.append(messages)?;
        for robot in robots {
            self.arrival(&robot).notify_one();
        }
        Ok(())
    }

    /// Waits for and returns the oldest message for `robot`, leaving it queued.
    pub async fn front(&self, robot: &str) -> Envelope {
        let arrival = self.arrival(robot);
        loop {
            // Register interest before looking, so a push between the look and the
            // wait is not missed.
            let notified = arrival.notified();
            if let Some(message) = self.store.front(robot) {
                return message;
            }
            notified.await;
        }
    }

    /// Removes a message that was delivered or given up on.
    pub fn ack(&self, message: &Envelope) -> Result<(), QueueError> {
        let removed = self.store.remove(&message.robot, message.id);
        self.acks.notify_waiters();
        removed
    }

    /// Completes at the next [`ack`](Self::ack) after this call.
    pub fn acked(&self) -> Notified<'_> {
        self.acks.notified()
    }

    /// Pending messages per robot.
    pub fn depths(&self) -> BTreeMap<String, usize> {
        self.store.depths()
    }

    fn arrival(&self, robot: &str) -> Arc<Notify> {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        arrivals.entry(robot.to_owned()).or_default().clone()
    }
}
