//! Delivery: what stands between a queued message and DingTalk's answer. One worker per
//! robot ([`worker`]) drains the robot's queue: a group's newer state supersedes its
//! pending older ones ([`supersede`]), and a backlog is merged into digests ([`digest`]);
//! [`send()`] is the one place a message goes out, for the worker and for
//! passthrough webhooks alike. A pool's queue is delivered through its members
//! ([`pool`]). The slot each send takes comes from [`crate::limit`].
//!
//! [`Delivery`] holds the parts the workers share: the configuration in force (looked up
//! at send time, so a reload applies to pending messages too), the queue, the gates and
//! the metrics. No lock the API or a scrape reads is held across I/O; it knows nothing of
//! HTTP requests.

pub mod cards;
pub mod digest;
mod outgoing;
pub mod pool;
mod send;
pub mod supersede;
mod worker;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use send::{Failure, Post, send};
pub use worker::backoff;

use crate::limit::{Gate, Gates};
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::snapshot::{ConfigHandle, Snapshot};
use cards::Cards;

/// The parts the delivery workers share, and the workers themselves.
pub struct Delivery {
    /// The configuration in force.
    pub config: Arc<ConfigHandle>,
    /// Pending messages and dead letters.
    pub queue: Arc<Queue>,
    /// The service's metrics.
    pub metrics: Arc<Metrics>,
    /// Every robot's gate.
    pub gates: Arc<Gates>,
    /// The cards of robots that send cards.
    pub cards: Arc<Cards>,
    /// The health of pools' members.
    pub pools: pool::Members,
    workers: Mutex<BTreeMap<String, JoinHandle<()>>>,
}

impl Delivery {
    /// Delivery over `queue` and `cards` with the configuration of `config`; no worker
    /// runs yet.
    pub fn new(
        config: Arc<ConfigHandle>,
        queue: Arc<Queue>,
        cards: Arc<Cards>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Delivery {
            config,
            queue,
            metrics,
            cards,
            gates: Arc::default(),
            pools: pool::Members::default(),
            workers: Mutex::default(),
        }
    }

    /// The gate of `robot`, shared by everything that sends to it.
    pub fn gate(&self, robot: &str) -> Arc<Gate> {
        self.gates.gate(robot)
    }

    /// Makes sure a worker delivers `robot`'s queue.
    pub fn wake(self: &Arc<Self>, robot: &str) {
        let mut workers = lock(&self.workers);
        if workers.get(robot).is_some_and(|w| !w.is_finished()) {
            return;
        }
        let worker = tokio::spawn(worker::run(self.clone(), robot.to_owned()));
        workers.insert(robot.to_owned(), worker);
    }

    /// Sets the queue and pause gauges of every robot configured in `snapshot` or with
    /// messages queued, and removes those of robots that are neither any more.
    pub fn refresh_gauges(&self, snapshot: &Snapshot) {
        let stats = self.queue.stats();
        let now = Timestamp::now();
        let instant = Instant::now();
        let current: BTreeSet<&String> =
            snapshot.config.robots.keys().chain(stats.keys()).collect();
        for robot in &current {
            let robot_stats = stats.get(*robot).copied().unwrap_or_default();
            let age = match robot_stats.oldest {
                Some(oldest) => Some(now.duration_since(oldest).as_secs_f64().max(0.0)),
                None if robot_stats.depth == 0 => Some(0.0),
                // Queued, but the store cannot say since when: the last age stands.
                None => None,
            };
            self.metrics.set_queue(robot, robot_stats.depth, age);
            let paused = self.gates.is_paused(robot, instant);
            self.metrics.set_paused(robot, paused);
        }
        for robot in self.metrics.robots() {
            if !current.contains(&robot) {
                self.metrics.retire_robot(&robot);
            }
        }
        let mut members = Vec::new();
        for pool in snapshot.config.robots.values() {
            for member in pool.pool_members().unwrap_or_default() {
                let up = self.pools.is_up(&self.gates, member, instant);
                members.push((pool.name.as_str(), member.as_str(), up));
            }
        }
        self.metrics.pools.set_members(&members);
    }

    /// Gives pending messages up to `timeout` to be delivered, then stops the workers
    /// (what is left stays in the queue). Returns how many messages were left.
    pub async fn drain(&self, timeout: Duration) -> usize {
        let pending = || self.queue.total_depth();
        let deadline = Instant::now() + timeout;
        loop {
            let changed = self.queue.changed();
            if pending() == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
        for worker in lock(&self.workers).values() {
            worker.abort();
        }
        pending()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the map consistent.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
