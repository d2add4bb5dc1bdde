//! The running service: the current configuration (swapped whole on reload), the queue,
//! the per-robot gates and workers, the metrics, and what the HTTP handlers need:
//! accept a notification (queued mode) or send it now (passthrough mode).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{self, Config, ConfigErrors};
use crate::dedup::RecentNotifications;
use crate::deliver::{self, Failure, RobotGate};
use crate::dingtalk::{self, ClientError, Retry};
use crate::metrics::{
    HeldLabels, Metrics, OutcomeLabels, RobotLabels, StatusLabels, StrategyLabels,
};
use crate::payload::Notification;
use crate::plan::{self, PlannedMessage};
use crate::queue::{DurableStore, Envelope, MemoryStore, Queue, QueueError, Store};

/// A configuration together with what is built from it.
#[derive(Debug)]
pub struct Runtime {
    /// The validated configuration.
    pub config: Config,
    /// HTTP client with the configured timeout and proxy.
    pub client: dingtalk::Client,
}

impl Runtime {
    /// Builds the client for `config`.
    pub fn new(config: Config) -> Result<Self, ClientError> {
        let client = dingtalk::Client::new(config.timeout, config.proxy_url.as_ref())?;
        Ok(Runtime { config, client })
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The queue could not be opened.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Why a notification was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// `/dingtalk/{robot}/send` named a robot the config does not have.
    #[error("unknown robot {0:?}")]
    UnknownRobot(String),
    /// The queue refused the messages.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The answer to a passthrough webhook: DingTalk's verdict, as an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassthroughAnswer {
    /// 200 delivered; 502/503 retryable (Alertmanager retries); 4xx permanent.
    pub status: u16,
    /// One line: what was delivered, or DingTalk's error and the hint.
    pub text: String,
}

/// One robot's line in `GET /api/v1/queue`.
#[derive(Debug, Serialize)]
pub struct RobotQueue {
    /// Robot name.
    pub robot: String,
    /// Pending messages.
    pub depth: usize,
    /// Age of the oldest pending message.
    pub oldest_age_seconds: Option<f64>,
    /// When a rate-limit pause ends, if paused.
    pub paused_until: Option<String>,
    /// The last failure, with what to check.
    pub last_error: Option<ErrorView>,
}

/// A failure as the queue API shows it.
#[derive(Debug, Serialize)]
pub struct ErrorView {
    /// What went wrong.
    pub error: String,
    /// What to check.
    pub hint: String,
    /// When.
    pub at: String,
}

/// Shared state of the service.
pub struct App {
    config_file: PathBuf,
    listen_override: Option<SocketAddr>,
    runtime: RwLock<Arc<Runtime>>,
    /// The service's metrics.
    pub metrics: Metrics,
    /// Pending messages and dead letters.
    pub queue: Queue,
    gates: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<RobotGate>>>>,
    workers: Mutex<BTreeMap<String, JoinHandle<()>>>,
    /// Notifications accepted recently, for duplicate suppression.
    recent: Mutex<RecentNotifications>,
    ready: AtomicBool,
}

impl App {
    /// The service for an already loaded `config` from `config_file`; `listen_override`
    /// (from `--listen`) wins over the file's `listen:` now and after reloads. Opens the
    /// queue and resumes delivery of what it holds.
    pub fn start(
        config: Config,
        config_file: PathBuf,
        listen_override: Option<SocketAddr>,
    ) -> Result<Arc<Self>, StartError> {
        let mut config = config;
        if let Some(listen) = listen_override {
            config.listen = listen;
        }
        let store = open_store(&config)?;
        let app = Arc::new(App {
            config_file,
            listen_override,
            runtime: RwLock::new(Arc::new(Runtime::new(config)?)),
            metrics: Metrics::new(),
            queue: Queue::new(store)?,
            gates: Mutex::default(),
            workers: Mutex::default(),
            recent: Mutex::default(),
            ready: AtomicBool::new(false),
        });
        app.record_reload(true);
        let pending = app.queue.stats()?;
        for (robot, stats) in &pending {
            tracing::info!(message = "Resuming delivery of queued messages.", %robot, pending = stats.depth);
            app.ensure_worker(robot);
        }
        app.update_queue_gauges();
        Ok(app)
    }

    /// The configuration in force.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Loads the config file again; on any error the running config stays in force.
    pub fn reload(&self) -> Result<String, ConfigErrors> {
        let loaded = config::load(&self.config_file).and_then(|mut config| {
            if let Some(listen) = self.listen_override {
                config.listen = listen;
            }
            Runtime::new(config).map_err(|e| {
                ConfigErrors(vec![config::ConfigError {
                    file: self.config_file.clone(),
                    position: config::Position::default(),
                    message: e.to_string(),
                }])
            })
        });
        match loaded {
            Ok(runtime) => {
                let old = self.runtime();
                if (&old.config.queue_dir, old.config.mode)
                    != (&runtime.config.queue_dir, runtime.config.mode)
                {
                    tracing::warn!(
                        message = "delivery.queue_dir and delivery.mode change only on restart."
                    );
                }
                let summary = runtime.config.summary();
                *self.runtime.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(runtime);
                self.record_reload(true);
                tracing::info!(message = "Configuration reloaded.", %summary);
                Ok(summary)
            }
            Err(errors) => {
                self.record_reload(false);
                tracing::error!(
                    message = "Configuration reload failed; the running configuration stays in force.",
                    errors = %errors,
                );
                Err(errors)
            }
        }
    }

    fn record_reload(&self, success: bool) {
        if success {
            for robot in self.runtime().config.robots.keys() {
                self.metrics.declare_robot(robot);
            }
        }
        self.metrics
            .config_last_reload_successful
            .set(i64::from(success));
        if success {
            self.metrics
                .config_last_reload_success_timestamp
                .set(Timestamp::now().as_millisecond() as f64 / 1000.0);
        }
    }

    /// Routes and renders `notification` (or, with `direct_robot`, renders all of it for
    /// that robot), skipping it if it duplicates a recent one.
    fn plan(
        &self,
        config: &Config,
        notification: &Notification,
        direct_robot: Option<&str>,
    ) -> Result<Vec<PlannedMessage>, AcceptError> {
        for alert in &notification.alerts {
            self.metrics
                .alerts_received
                .get_or_create(&StatusLabels {
                    status: alert.status.as_str().to_owned(),
                })
                .inc();
        }
        match direct_robot {
            Some(robot) => Ok(vec![
                plan::plan_direct(config, notification, robot)
                    .ok_or_else(|| AcceptError::UnknownRobot(robot.to_owned()))?,
            ]),
            None => {
                let plan = plan::plan(config, notification, Timestamp::now());
                self.count_routes(config, notification, &plan);
                Ok(plan.messages)
            }
        }
    }

    /// Queued mode: routes, renders and durably queues `notification`; returns how many
    /// messages were queued (0 for a duplicate).
    pub async fn accept(
        self: &Arc<Self>,
        notification: &Notification,
        direct_robot: Option<&str>,
    ) -> Result<usize, AcceptError> {
        let runtime = self.runtime();
        let config = &runtime.config;
        let identity = identity(notification, direct_robot);
        if !self.claim(&identity, config.dedup_window) {
            return Ok(0);
        }
        let planned = match self.plan(config, notification, direct_robot) {
            Ok(planned) => planned,
            Err(error) => {
                self.forget(&identity);
                return Err(error);
            }
        };
        let count = planned.len();
        let robots: Vec<String> = planned.iter().map(|m| m.robot.clone()).collect();
        let envelopes = planned.into_iter().map(|m| self.envelope(m)).collect();
        if let Err(error) = self.queue.push(envelopes).await {
            // Not queued, so Alertmanager's retry must not count as a duplicate.
            self.forget(&identity);
            return Err(error.into());
        }
        for robot in robots {
            self.ensure_worker(&robot);
        }
        Ok(count)
    }

    /// Passthrough mode: sends the messages of `notification` now, within the robots'
    /// rate windows, and answers with DingTalk's verdict.
    pub async fn send_now(
        &self,
        notification: &Notification,
        direct_robot: Option<&str>,
    ) -> Result<PassthroughAnswer, AcceptError> {
        let runtime = self.runtime();
        let config = &runtime.config;
        let identity = identity(notification, direct_robot);
        if self.seen(&identity, config.dedup_window) {
            return Ok(PassthroughAnswer {
                status: 200,
                text: "ok: duplicate of a notification already delivered".to_owned(),
            });
        }
        let planned = self.plan(config, notification, direct_robot)?;
        for message in &planned {
            let Some(robot) = config.robots.get(&message.robot) else {
                continue;
            };
            if let Err(answer) = self.send_one(&runtime, robot, message, notification).await {
                return Ok(answer);
            }
        }
        // Remembered only once delivered: Alertmanager's retry of a failed one is no
        // duplicate.
        self.remember(&identity, config.dedup_window);
        Ok(PassthroughAnswer {
            status: 200,
            text: format!("ok: {} messages delivered", planned.len()),
        })
    }

    async fn send_one(
        &self,
        runtime: &Runtime,
        robot: &dingtalk::Robot,
        message: &PlannedMessage,
        notification: &Notification,
    ) -> Result<(), PassthroughAnswer> {
        let gate = self.gate(&robot.name);
        // One send at a time per robot: keeps the window exact and the connection reused.
        let mut gate = gate.lock().await;
        let now = Instant::now();
        let ready = gate.ready_at(robot.rate_limit, now);
        let max_wait = runtime.config.passthrough_max_wait;
        if ready.duration_since(now) > max_wait {
            self.metrics.message(&robot.name, "retried");
            return Err(PassthroughAnswer {
                status: 503,
                text: format!(
                    "robot {}: rate limit reached; the next slot is in {}s (more than delivery.passthrough_max_wait)",
                    robot.name,
                    ready.duration_since(now).as_secs()
                ),
            });
        }
        deliver::wait_until(ready).await;
        let body = dingtalk::encode(
            robot.msgtype,
            &message.message,
            &message.stable_uuid(notification),
        );
        let Err(Failure { error, hint, retry }) =
            deliver::attempt(self, runtime, robot, &mut gate, body).await
        else {
            tracing::info!(
                message = "Delivered message.",
                robot = %robot.name,
                strategy = %message.strategy,
                alerts = message.summary.alerts.len(),
            );
            return Ok(());
        };
        let status = match retry {
            Retry::Never => 400,
            Retry::Later => 502,
            Retry::AfterPause => 503,
        };
        tracing::warn!(
            message = "Send failed; answering Alertmanager with the error.",
            robot = %robot.name,
            status,
            %error,
            %hint,
        );
        Err(PassthroughAnswer {
            status,
            text: format!("robot {}: {error}; hint: {hint}", robot.name),
        })
    }

    fn envelope(&self, message: PlannedMessage) -> Envelope {
        let id = self.queue.next_id();
        let accepted_at = Timestamp::now();
        Envelope {
            id,
            uuid: format!(
                "{:x}-{id:x}-{:08x}",
                accepted_at.as_millisecond(),
                fastrand::u32(..)
            ),
            robot: message.robot,
            strategy: message.strategy,
            message: message.message,
            summary: message.summary,
            accepted_at,
        }
    }

    /// Like [`remember`](Self::remember), and a duplicate is counted and logged.
    fn claim(&self, identity: &str, window: Duration) -> bool {
        let new = self.remember(identity, window);
        if !new {
            self.count_duplicate(identity);
        }
        new
    }

    /// Records `identity` as accepted unless it was accepted within `window`: returns
    /// whether it is new.
    fn remember(&self, identity: &str, window: Duration) -> bool {
        window.is_zero()
            || self
                .recent()
                .insert(identity, window, std::time::Instant::now())
    }

    /// Whether `identity` was accepted within `window`, without recording it. A duplicate
    /// is counted and logged.
    fn seen(&self, identity: &str, window: Duration) -> bool {
        if window.is_zero() {
            return false;
        }
        let now = std::time::Instant::now();
        let seen = self.recent().contains(identity, window, now);
        if seen {
            self.count_duplicate(identity);
        }
        seen
    }

    fn forget(&self, identity: &str) {
        self.recent().remove(identity);
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, RecentNotifications> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count_duplicate(&self, identity: &str) {
        self.metrics.duplicates_suppressed.inc();
        tracing::info!(message = "Duplicate notification suppressed.", %identity);
    }

    fn count_routes(&self, config: &Config, notification: &Notification, plan: &plan::Plan) {
        let routes = &plan.routes;
        for strategies in &routes.matched {
            for strategy in strategies {
                self.metrics
                    .alerts_routed
                    .get_or_create(&StrategyLabels {
                        strategy: strategy.clone(),
                    })
                    .inc();
            }
        }
        for (alert, strategy, why) in &routes.held {
            let strategy = &config.strategies[*strategy].name;
            self.metrics
                .alerts_held
                .get_or_create(&HeldLabels {
                    strategy: strategy.clone(),
                    reason: why.as_str().to_owned(),
                })
                .inc();
            tracing::debug!(
                message = "Alert matched but held back.",
                alertname = notification.alerts[*alert].name(),
                %strategy,
                reason = why.as_str(),
            );
        }
        for alert in &routes.unrouted {
            self.metrics.alerts_unrouted.inc();
            tracing::info!(
                message = "Alert matched no strategy.",
                alertname = notification.alerts[*alert].name(),
                labels = ?notification.alerts[*alert].labels,
            );
        }
    }

    /// Counts a webhook request's outcome.
    pub fn count_webhook(&self, outcome: &str) {
        self.metrics
            .webhooks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The rate window and pause state of `robot`.
    pub fn gate(&self, robot: &str) -> Arc<tokio::sync::Mutex<RobotGate>> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates.entry(robot.to_owned()).or_default().clone()
    }

    /// Sets the `robot_paused` gauge.
    pub fn set_paused(&self, robot: &str, paused: bool) {
        self.metrics
            .robot_paused
            .get_or_create(&RobotLabels {
                robot: robot.to_owned(),
            })
            .set(i64::from(paused));
    }

    fn ensure_worker(self: &Arc<Self>, robot: &str) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if workers.get(robot).is_some_and(|w| !w.is_finished()) {
            return;
        }
        let worker = tokio::spawn(deliver::run_worker(self.clone(), robot.to_owned()));
        workers.insert(robot.to_owned(), worker);
    }

    /// Refreshes the queue gauges of every robot the queue or the config knows.
    pub fn update_queue_gauges(&self) {
        let Ok(stats) = self.queue.stats() else {
            return;
        };
        let runtime = self.runtime();
        let now = Timestamp::now();
        let robots = runtime.config.robots.keys().chain(stats.keys());
        for robot in robots {
            let robot_stats = stats.get(robot).copied().unwrap_or_default();
            let age = robot_stats
                .oldest
                .map_or(0.0, |t| now.duration_since(t).as_secs_f64().max(0.0));
            self.metrics.set_queue(robot, robot_stats.depth, age);
        }
    }

    /// Per-robot queue state for `GET /api/v1/queue`.
    pub async fn queue_report(&self) -> Result<Vec<RobotQueue>, QueueError> {
        let stats = self.queue.stats()?;
        let runtime = self.runtime();
        let mut robots: Vec<String> = runtime.config.robots.keys().cloned().collect();
        robots.extend(
            stats
                .keys()
                .filter(|r| !runtime.config.robots.contains_key(*r))
                .cloned(),
        );
        let now = Timestamp::now();
        let mut report = Vec::new();
        for robot in robots {
            let robot_stats = stats.get(&robot).copied().unwrap_or_default();
            let gate = self.gate(&robot);
            let gate = gate.lock().await;
            let instant_now = Instant::now();
            report.push(RobotQueue {
                depth: robot_stats.depth,
                oldest_age_seconds: robot_stats
                    .oldest
                    .map(|t| now.duration_since(t).as_secs_f64().max(0.0)),
                paused_until: gate.paused_until(instant_now).and_then(|until| {
                    let left =
                        jiff::SignedDuration::try_from(until.duration_since(instant_now)).ok()?;
                    Some(now.checked_add(left).ok()?.to_string())
                }),
                last_error: gate.last_error.as_ref().map(|e| ErrorView {
                    error: e.error.clone(),
                    hint: e.hint.clone(),
                    at: e.at.to_string(),
                }),
                robot,
            });
        }
        Ok(report)
    }

    /// Re-queues every dead letter; returns how many robots get messages back.
    pub fn retry_dead_letters(self: &Arc<Self>) -> Result<usize, QueueError> {
        let robots = self.queue.revive_dead_letters()?;
        for robot in &robots {
            self.ensure_worker(robot);
        }
        self.update_queue_gauges();
        Ok(robots.len())
    }

    /// Whether the service takes webhooks.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Marks the service as taking webhooks or not (readiness probe).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
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
        for worker in self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            worker.abort();
        }
        pending()
    }
}

/// What duplicate suppression compares: the notification, and the robot of the drop-in
/// path if any.
fn identity(notification: &Notification, direct_robot: Option<&str>) -> String {
    format!("{}#{}", direct_robot.unwrap_or(""), notification.identity())
}

fn open_store(config: &Config) -> Result<Arc<dyn Store>, QueueError> {
    let Some(dir) = &config.queue_dir else {
        if config.mode == config::DeliveryMode::Queued {
            tracing::warn!(
                message = "delivery.queue_dir is not set: the queue is in memory, and accepted messages are lost if the process dies."
            );
        }
        return Ok(Arc::new(MemoryStore::default()));
    };
    let (store, recovery) = DurableStore::open(dir)?;
    if let Some(recovery) = recovery {
        tracing::error!(
            message = "The queue file could not be read; it was moved aside and a new one started.",
            moved_to = %recovery.moved_to.display(),
            error = %recovery.error,
        );
    }
    tracing::info!(message = "Durable queue opened.", dir = %dir.display());
    Ok(Arc::new(store))
}
