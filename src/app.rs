//! The running service: the current configuration (swapped whole on reload), the queue,
//! the delivery workers and the metrics, and the one operation the HTTP handlers need:
//! accept a notification.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinHandle;

use crate::config::{self, Config, ConfigErrors};
use crate::deliver;
use crate::dingtalk::{self, ClientError};
use crate::metrics::{HeldLabels, Metrics, OutcomeLabels, StatusLabels, StrategyLabels};
use crate::payload::Notification;
use crate::plan::{self, PlannedMessage};
use crate::queue::{Envelope, MemoryStore, Queue, QueueError};

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

/// Shared state of the service.
pub struct App {
    config_file: PathBuf,
    listen_override: Option<SocketAddr>,
    runtime: RwLock<Arc<Runtime>>,
    /// The service's metrics.
    pub metrics: Metrics,
    /// Pending messages.
    pub queue: Queue,
    workers: Mutex<BTreeMap<String, JoinHandle<()>>>,
    /// When each recent notification (by identity) was accepted, for duplicate suppression.
    recent: Mutex<HashMap<String, tokio::time::Instant>>,
    ready: AtomicBool,
    next_id: AtomicU64,
}

impl App {
    /// The service for an already loaded `config` from `config_file`; `listen_override`
    /// (from `--listen`) wins over the file's `listen:` now and after reloads.
    pub fn new(
        config: Config,
        config_file: PathBuf,
        listen_override: Option<SocketAddr>,
    ) -> Result<Arc<Self>, ClientError> {
        let mut config = config;
        if let Some(listen) = listen_override {
            config.listen = listen;
        }
        let app = App {
            config_file,
            listen_override,
            runtime: RwLock::new(Arc::new(Runtime::new(config)?)),
            metrics: Metrics::new(),
            queue: Queue::new(Box::new(MemoryStore::default())),
            workers: Mutex::default(),
            recent: Mutex::default(),
            ready: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        };
        app.record_reload(true);
        Ok(Arc::new(app))
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
        self.metrics
            .config_last_reload_successful
            .set(i64::from(success));
        if success {
            self.metrics
                .config_last_reload_success_timestamp
                .set(Timestamp::now().as_millisecond() as f64 / 1000.0);
        }
    }

    /// Routes, renders and queues `notification`; with `direct_robot`, sends all of it to
    /// that robot without routing. Returns how many messages were queued.
    pub fn accept(
        self: &Arc<Self>,
        notification: &Notification,
        direct_robot: Option<&str>,
    ) -> Result<usize, AcceptError> {
        let runtime = self.runtime();
        let config = &runtime.config;
        let identity = format!("{}#{}", direct_robot.unwrap_or(""), notification.identity());
        if self.seen_recently(&identity, config.dedup_window) {
            self.metrics.duplicates_suppressed.inc();
            tracing::info!(
                message = "Duplicate notification suppressed.",
                group_key = %notification.group_key,
                status = notification.status.as_str(),
            );
            return Ok(0);
        }
        let planned = match direct_robot {
            Some(robot) => vec![
                plan::plan_direct(config, notification, robot)
                    .ok_or_else(|| AcceptError::UnknownRobot(robot.to_owned()))?,
            ],
            None => {
                let plan = plan::plan(config, notification, Timestamp::now());
                self.count_routes(config, notification, &plan);
                plan.messages
            }
        };
        for alert in &notification.alerts {
            self.metrics
                .alerts_received
                .get_or_create(&StatusLabels {
                    status: alert.status.as_str().to_owned(),
                })
                .inc();
        }
        let count = planned.len();
        let robots: Vec<String> = planned.iter().map(|m| m.robot.clone()).collect();
        self.queue
            .push(planned.into_iter().map(|m| self.envelope(m)).collect())?;
        for robot in robots {
            self.ensure_worker(&robot);
        }
        self.update_queue_depth();
        Ok(count)
    }

    /// Whether `identity` was accepted within `window`; records it if not.
    fn seen_recently(&self, identity: &str, window: Duration) -> bool {
        if window.is_zero() {
            return false;
        }
        let now = tokio::time::Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|_, accepted| now.duration_since(*accepted) < window);
        if recent.contains_key(identity) {
            return true;
        }
        recent.insert(identity.to_owned(), now);
        false
    }

    fn envelope(&self, message: PlannedMessage) -> Envelope {
        Envelope {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            robot: message.robot,
            strategy: message.strategy,
            body: message.body,
            alerts: message.alerts,
            accepted_at: Timestamp::now(),
        }
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

    fn ensure_worker(self: &Arc<Self>, robot: &str) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if workers.get(robot).is_some_and(|w| !w.is_finished()) {
            return;
        }
        let worker = tokio::spawn(deliver::run_worker(self.clone(), robot.to_owned()));
        workers.insert(robot.to_owned(), worker);
    }

    /// Refreshes the queue-depth gauges.
    pub fn update_queue_depth(&self) {
        for (robot, depth) in self.queue.depths() {
            self.metrics.set_queue_depth(&robot, depth);
        }
    }

    /// Whether the service takes webhooks.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Marks the service as taking webhooks or not (readiness probe).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Gives pending messages up to `timeout` to be delivered, then stops the workers.
    /// Returns how many messages were left undelivered.
    pub async fn drain(&self, timeout: Duration) -> usize {
        let pending = || self.queue.depths().values().sum::<usize>();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let acked = self.queue.acked();
            if pending() == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                () = acked => {}
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
