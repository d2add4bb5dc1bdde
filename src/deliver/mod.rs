//! Delivery: what stands between a queued message and DingTalk's answer. One worker per
//! robot ([`worker`]) drains the robot's queue; [`send`] is the one place a message goes
//! out, for the worker and for passthrough webhooks alike, and keeps the robot's [`Gate`]
//! and the metrics in step with DingTalk's answer.
//!
//! [`reserve`] is the one place a send gets its slot: in the robot's gate, and with
//! `cluster:` in the window all replicas share (or, while Redis cannot be reached, in
//! this replica's share of it).
//!
//! [`Delivery`] holds the parts the workers share: the configuration in force (looked up
//! at send time, so a reload applies to pending messages too), the queue, the gates and
//! the metrics. No lock the API or a scrape reads is held across I/O; it knows nothing of
//! HTTP requests.

mod worker;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use worker::backoff;

use crate::cluster::{self, Cluster, Slot};
use crate::dingtalk::{MIN_BUDGET, Message, Retry, Robot, SendError, Sender};
use crate::gate::{Gate, Lane, LastError, Reserved};
use crate::metrics::{ErrorLabels, Metrics, RobotLabels};
use crate::queue::Queue;
use crate::runtime::{ConfigHandle, Runtime};

/// The parts the delivery workers share, and the workers themselves.
pub struct Delivery {
    /// The configuration in force.
    pub config: Arc<ConfigHandle>,
    /// Pending messages and dead letters.
    pub queue: Arc<Queue>,
    /// The service's metrics.
    pub metrics: Arc<Metrics>,
    gates: Mutex<BTreeMap<String, Arc<Gate>>>,
    workers: Mutex<BTreeMap<String, JoinHandle<()>>>,
}

impl Delivery {
    /// Delivery over `queue` with the configuration of `config`; no worker runs yet.
    pub fn new(config: Arc<ConfigHandle>, queue: Arc<Queue>, metrics: Arc<Metrics>) -> Self {
        Delivery {
            config,
            queue,
            metrics,
            gates: Mutex::default(),
            workers: Mutex::default(),
        }
    }

    /// The gate of `robot`, shared by everything that sends to it.
    pub fn gate(&self, robot: &str) -> Arc<Gate> {
        lock(&self.gates)
            .entry(robot.to_owned())
            .or_default()
            .clone()
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

    /// Sets the queue and pause gauges of every robot configured in `runtime` or with
    /// messages queued, and removes those of robots that are neither any more.
    pub fn refresh_gauges(&self, runtime: &Runtime) {
        let stats = self.queue.stats();
        let now = Timestamp::now();
        let instant = Instant::now();
        let current: BTreeSet<&String> = runtime.config.robots.keys().chain(stats.keys()).collect();
        for robot in &current {
            let robot_stats = stats.get(*robot).copied().unwrap_or_default();
            let age = match robot_stats.oldest {
                Some(oldest) => Some(now.duration_since(oldest).as_secs_f64().max(0.0)),
                None if robot_stats.depth == 0 => Some(0.0),
                // Queued, but the store cannot say since when: the last age stands.
                None => None,
            };
            self.metrics.set_queue(robot, robot_stats.depth, age);
            let paused = lock(&self.gates)
                .get(*robot)
                .is_some_and(|gate| gate.view(instant).paused_until.is_some());
            self.metrics.set_paused(robot, paused);
        }
        for robot in self.metrics.robots() {
            if !current.contains(&robot) {
                self.metrics.retire_robot(&robot);
            }
        }
    }

    /// Every [`cluster::HEARTBEAT`], while the configuration in force has `cluster:`,
    /// renews this replica's membership of every robot and uploads its sends of the
    /// window; asks again for a Redis that could not be reached. Runs until aborted.
    pub async fn share_with_cluster(self: Arc<Self>) {
        let mut tick = tokio::time::interval(cluster::HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let runtime = self.config.snapshot();
            let Some(cluster) = &runtime.cluster else {
                continue;
            };
            let now = Instant::now();
            let robots: Vec<_> = runtime
                .config
                .robots
                .values()
                .map(|robot| {
                    let sends = self.gate(&robot.name).sends(now);
                    (robot.name.clone(), robot.rate_limit, sends)
                })
                .collect();
            cluster.heartbeat(&robots).await;
        }
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

/// A failed send, with what the caller needs to log or answer.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub error: SendError,
    /// What to check.
    pub hint: String,
    /// Whether and how to retry.
    pub retry: Retry,
    /// After [`Retry::Shorter`]: the size budget now in force for the robot.
    pub budget: usize,
}

/// Replicas told to wait for the same slot of a shared window ask again spread over this
/// much, so that they do not all ask at the same instant.
const SHARED_WAIT_JITTER: Duration = Duration::from_millis(50);

/// Records a send to `robot` starting now, on `lane`: in the robot's gate and, with
/// `cluster:` in `runtime`, in the window the replicas share (this replica's share of it
/// while Redis cannot be reached). Waits for the slot; `Err` with the slot if it comes
/// after `deadline`.
pub async fn reserve<'l, 'g>(
    lane: &'l Lane<'g>,
    runtime: &Runtime,
    robot: &Robot,
    deadline: Option<Instant>,
) -> Result<Reserved<'l, 'g>, Instant> {
    let limit = robot.rate_limit;
    let Some(cluster) = runtime.cluster.as_deref() else {
        return lane.reserve(limit, deadline).await;
    };
    let gate = lane.gate();
    loop {
        let now = Instant::now();
        // This replica's own sends and pause, which Redis may have lost, come first.
        let own = gate.next_slot(limit, now);
        let (slot, wake) = if own > now {
            (own, own)
        } else {
            match cluster
                .reserve(&robot.name, limit, now, || gate.sends(now))
                .await
            {
                Slot::Granted => return Ok(lane.granted(now)),
                Slot::Wait {
                    until,
                    paused_until,
                } => {
                    if let Some(paused_until) = paused_until {
                        gate.paused_elsewhere(paused_until);
                    }
                    let spread = SHARED_WAIT_JITTER.mul_f64(fastrand::f64());
                    (until, until + spread)
                }
                Slot::Unreachable { not_before } => {
                    let now = Instant::now();
                    let slot = if not_before > now {
                        not_before
                    } else {
                        match lane.try_reserve(cluster.share(limit), now) {
                            Ok(reserved) => return Ok(reserved),
                            Err(slot) => slot,
                        }
                    };
                    // Redis may answer again meanwhile.
                    (slot, slot.min(now + cluster::HEARTBEAT))
                }
            }
        };
        if deadline.is_some_and(|deadline| slot > deadline) {
            return Err(slot);
        }
        tokio::time::sleep_until(wake).await;
    }
}

/// How many more sends `robot`'s window takes now: the gate's, and with `cluster:` the
/// shared window's as Redis last said (or this replica's share while it cannot be
/// reached).
pub fn room(runtime: &Runtime, gate: &Gate, robot: &Robot) -> usize {
    let now = Instant::now();
    let own = gate.room(robot.rate_limit, now);
    match runtime.cluster.as_deref() {
        None => own,
        Some(cluster) if !cluster.is_reachable() => gate.room(cluster.share(robot.rate_limit), now),
        Some(cluster) => cluster
            .room(&robot.name)
            .map_or(own, |shared| shared.min(own)),
    }
}

/// Sends `message` to `robot` through `sender` on the slot `reserved`, and records
/// DingTalk's answer: in the gate (success, last error, pause, size budget), in the
/// metrics, and a pause in `cluster` for every replica.
pub async fn send(
    reserved: Reserved<'_, '_>,
    sender: &dyn Sender,
    cluster: Option<&Cluster>,
    robot: &Robot,
    metrics: &Metrics,
    message: &Message,
) -> Result<(), Failure> {
    let gate = reserved.gate();
    let result = match robot.body(message) {
        Ok(body) => {
            let started = Instant::now();
            let result = sender.send(robot, body).await;
            metrics
                .send_duration
                .get_or_create(&RobotLabels {
                    robot: robot.name.clone(),
                })
                .observe(started.elapsed().as_secs_f64());
            result
        }
        // Longer than the robot's API takes: not sent, and handled as DingTalk's "too long".
        Err(too_long) => Err(too_long),
    };
    let Err(error) = result else {
        gate.succeeded(Timestamp::now());
        metrics.set_paused(&robot.name, false);
        metrics.message(&robot.name, "sent");
        return Ok(());
    };
    metrics
        .dingtalk_errors
        .get_or_create(&ErrorLabels {
            robot: robot.name.clone(),
            errcode: error.metric_code(),
        })
        .inc();
    let hint = error.hint(robot);
    gate.failed(LastError {
        error: error.to_string(),
        hint: hint.clone(),
        at: Timestamp::now(),
    });
    let retry = error.retry();
    let mut budget = gate.size_budget(robot);
    match retry {
        Retry::Never => metrics.message(&robot.name, "failed"),
        Retry::Later => metrics.message(&robot.name, "retried"),
        Retry::AfterPause => {
            metrics.message(&robot.name, "retried");
            let pause = gate.pause(Instant::now());
            metrics.set_paused(&robot.name, true);
            if let Some(cluster) = cluster {
                cluster.pause(&robot.name, pause).await;
            }
            tracing::warn!(
                message = "DingTalk rate-limited the robot; pausing it.",
                robot = %robot.name,
                pause = ?pause,
                %error,
                %hint,
            );
        }
        Retry::Shorter => {
            budget = gate.shrink(message.size());
            let short = message.size() < MIN_BUDGET;
            metrics.message(&robot.name, if short { "failed" } else { "retried" });
            tracing::warn!(
                message = "A message was too long for the robot; sending its alerts in shorter messages.",
                robot = %robot.name,
                refused_bytes = message.size(),
                budget,
                %error,
            );
        }
    }
    Err(Failure {
        error,
        hint,
        retry,
        budget,
    })
}
