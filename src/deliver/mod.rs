//! Delivery: what stands between a queued message and DingTalk's answer. One worker per
//! robot ([`worker`]) drains the robot's queue; [`send`] is the one place a message goes
//! out, for the worker and for passthrough webhooks alike, and keeps the robot's [`Gate`]
//! and the metrics in step with DingTalk's answer.
//!
//! [`Delivery`] holds the parts the workers share: the configuration in force (looked up
//! at send time, so a reload applies to pending messages too), the queue, the gates and
//! the metrics. It never holds a lock across I/O, and knows nothing of HTTP requests.

mod worker;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use worker::backoff;

use crate::dingtalk::{self, Message, Retry, Robot, SendError, Sender};
use crate::gate::{Gate, Lane, LastError};
use crate::metrics::{ErrorLabels, Metrics, RobotLabels};
use crate::queue::Queue;
use crate::runtime::ConfigHandle;

/// Below this many bytes of title and text, a "too long" answer is not about length: the
/// message is given up on instead of being cut shorter still.
pub const MIN_BUDGET: usize = 1000;

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

    /// Sets the queue gauges of every robot configured or with messages queued, and
    /// removes those of robots that are neither any more.
    pub fn refresh_gauges(&self) {
        let Ok(stats) = self.queue.stats() else {
            return;
        };
        let runtime = self.config.snapshot();
        let now = Timestamp::now();
        let current: BTreeSet<&String> = runtime.config.robots.keys().chain(stats.keys()).collect();
        for robot in &current {
            let robot_stats = stats.get(*robot).copied().unwrap_or_default();
            let age = robot_stats
                .oldest
                .map_or(0.0, |t| now.duration_since(t).as_secs_f64().max(0.0));
            self.metrics.set_queue(robot, robot_stats.depth, age);
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
    /// After [`Retry::Shorter`]: the size budget now in force for the robot; below
    /// [`MIN_BUDGET`], the message should be given up on.
    pub budget: usize,
}

/// Sends `message` to `robot` through `sender`, on a lane whose send was just reserved,
/// and records DingTalk's answer: in the gate (success, last error, pause, size budget)
/// and in the metrics.
pub async fn send(
    lane: &Lane<'_>,
    sender: &dyn Sender,
    robot: &Robot,
    metrics: &Metrics,
    message: &Message,
) -> Result<(), Failure> {
    let gate = lane.gate();
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
            let outcome = if budget < MIN_BUDGET {
                "failed"
            } else {
                "retried"
            };
            metrics.message(&robot.name, outcome);
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
