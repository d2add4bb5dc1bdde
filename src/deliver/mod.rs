//! Delivery: what stands between a queued message and DingTalk's answer. One worker per
//! robot ([`worker`]) drains the robot's queue; [`send`] is the one place a message goes
//! out, for the worker and for passthrough webhooks alike, and keeps the robot's [`Gate`]
//! and the metrics in step with DingTalk's answer.
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

use crate::dingtalk::{self, MIN_BUDGET, Message, Retry, Robot, SendError, Sender};
use crate::gate::{Gate, LastError, Reserved};
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

/// Sends `message` to `robot` through `sender` on the slot `reserved`, and records
/// DingTalk's answer: in the gate (success, last error, pause, size budget) and in the
/// metrics.
pub async fn send(
    reserved: Reserved<'_, '_>,
    sender: &dyn Sender,
    robot: &Robot,
    metrics: &Metrics,
    message: &Message,
) -> Result<(), Failure> {
    let gate = reserved.gate();
    let body = dingtalk::encode(robot.msgtype, message);
    let started = Instant::now();
    let result = sender.send(robot, body).await;
    metrics
        .send_duration
        .get_or_create(&RobotLabels {
            robot: robot.name.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
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
    let mut budget = gate.size_budget();
    match retry {
        Retry::Never => metrics.message(&robot.name, "failed"),
        Retry::Later => metrics.message(&robot.name, "retried"),
        Retry::AfterPause => {
            metrics.message(&robot.name, "retried");
            let pause = gate.pause(Instant::now());
            metrics.set_paused(&robot.name, true);
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
                message = "DingTalk refused a message as too long; sending its alerts in shorter messages.",
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
