//! The running service, composed: the configuration in force and the restart-only
//! settings pinned at start, delivery (queue, gates, workers), duplicate suppression and
//! the metrics. `App` only builds and holds these parts and swaps the configuration on
//! reload; each part owns its state and decides its own policy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;

use crate::accept::dedup::Dedup;
use crate::act::acks::AckError;
use crate::act::{Acks, Act};
use crate::cluster;
use crate::config::{self, Config, ConfigErrors, DeliveryMode};
use crate::deliver::Delivery;
use crate::deliver::cards::Cards;
use crate::escalate::{self, Escalations};
use crate::metrics::Metrics;
use crate::queue::{DurableStore, MemoryStore, Queue, QueueError, Store};
use crate::snapshot::{ConfigHandle, Pinned, Snapshot, SnapshotError};
use crate::stream::Streams;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client or the cluster could not be built.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The queue could not be opened.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The acknowledgements could not be read.
    #[error(transparent)]
    Acks(#[from] AckError),
    /// The cards could not be read.
    #[error("cards: {0}")]
    Cards(String),
    /// The escalation episodes could not be read.
    #[error(transparent)]
    Escalations(#[from] escalate::StoreError),
}

/// What a successful reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The new configuration in one line.
    pub summary: String,
    /// Restart-only settings the file changed, each with the value that stays in force.
    pub kept: Vec<String>,
}

/// When the configuration in force was loaded, and the last reload that failed since.
#[derive(Debug, Clone)]
pub struct Loads {
    /// When the configuration in force was loaded.
    pub loaded_at: Timestamp,
    /// When the last reload failed and its errors, if one failed since.
    pub failure: Option<(Timestamp, String)>,
}

/// The running service.
pub struct App {
    config_file: PathBuf,
    pinned: Pinned,
    loads: Mutex<Loads>,
    /// The configuration in force.
    pub config: Arc<ConfigHandle>,
    /// The queue, the robots' gates and their workers.
    pub delivery: Arc<Delivery>,
    /// Duplicate suppression.
    pub dedup: Arc<Dedup>,
    /// Acting on groups from their messages' links and commands: acknowledgements,
    /// silences.
    pub act: Arc<Act>,
    /// The Stream connections commands arrive on.
    pub streams: Arc<Streams>,
    /// The escalation episodes, and the loop that takes their steps.
    pub escalations: Arc<Escalations>,
    /// The service's metrics.
    pub metrics: Arc<Metrics>,
    ready: AtomicBool,
}

impl App {
    /// The service for an already loaded `config` from `config_file`; `listen_override`
    /// (from `--listen`) wins over the file's `listen:`. Opens the queue and resumes
    /// delivery of what it holds.
    pub fn start(
        config: Config,
        config_file: PathBuf,
        listen_override: Option<SocketAddr>,
    ) -> Result<Arc<Self>, StartError> {
        cluster::init();
        let pinned = Pinned::of(&config, listen_override);
        let queue = Arc::new(Queue::new(open_store(&config)?)?);
        let (acks, cards, episodes) = match &config.queue_dir {
            Some(dir) => (
                Acks::open(dir)?,
                Cards::open(dir).map_err(StartError::Cards)?,
                escalate::Store::open(dir)?,
            ),
            None => (
                Acks::in_memory(),
                Cards::in_memory(),
                escalate::Store::in_memory(),
            ),
        };
        let metrics = Arc::new(Metrics::new());
        let config = Arc::new(ConfigHandle::new(Snapshot::new(config, None, &metrics)?));
        let delivery = Arc::new(Delivery::new(
            config.clone(),
            queue.clone(),
            Arc::new(cards),
            metrics.clone(),
        ));
        let act = Arc::new(Act::new(Arc::new(acks), metrics.clone()));
        let redraw = (delivery.clone(), pinned.mode);
        let streams = Streams::new(config.clone(), act.clone(), redraw, metrics.clone());
        let escalations = Arc::new(Escalations::new(episodes, metrics.clone()));
        let app = Arc::new(App {
            config_file,
            pinned,
            loads: Mutex::new(Loads {
                loaded_at: Timestamp::now(),
                failure: None,
            }),
            config,
            delivery,
            dedup: Arc::new(Dedup::new(metrics.duplicates_suppressed.clone())),
            act,
            streams,
            escalations,
            metrics,
            ready: AtomicBool::new(false),
        });
        app.loaded(Ok(()));
        warn_about(&app.config.snapshot().config);
        tokio::spawn(
            app.delivery
                .gates
                .clone()
                .share_with_cluster(app.config.clone()),
        );
        tokio::spawn(share_acks(app.act.clone(), app.config.clone()));
        tokio::spawn(app.escalations.clone().run(
            app.config.clone(),
            app.act.clone(),
            app.delivery.clone(),
        ));
        app.streams.apply();
        for (robot, pending) in queue.depths() {
            tracing::info!(message = "Resuming delivery of queued messages.", %robot, pending);
            app.delivery.wake(&robot);
        }
        Ok(app)
    }

    /// The settings pinned at start.
    pub fn pinned(&self) -> &Pinned {
        &self.pinned
    }

    /// The config file, as given at start.
    pub fn config_file(&self) -> &std::path::Path {
        &self.config_file
    }

    /// When the configuration was loaded, and how the last reload went.
    pub fn loads(&self) -> Loads {
        self.loads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads the config file again; on any error the running config stays in force.
    /// Restart-only settings keep their running values, and the answer says which the file
    /// changed.
    ///
    /// Reading the files runs on tokio's blocking pool, like every other wait on the disk.
    pub async fn reload(self: &Arc<Self>) -> Result<Reloaded, ConfigErrors> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || app.reload_blocking())
            .await
            .unwrap_or_else(|error| {
                Err(ConfigErrors(vec![config::ConfigError {
                    file: self.config_file.clone(),
                    position: config::Position::default(),
                    message: format!("reload failed: {error}"),
                }]))
            })
    }

    fn reload_blocking(&self) -> Result<Reloaded, ConfigErrors> {
        let mut kept = Vec::new();
        let loaded = config::load(&self.config_file).and_then(|mut config| {
            kept = self.pinned.keep(&mut config);
            Snapshot::new(config, Some(&self.config.snapshot()), &self.metrics).map_err(|e| {
                ConfigErrors(vec![config::ConfigError {
                    file: self.config_file.clone(),
                    position: config::Position::default(),
                    message: e.to_string(),
                }])
            })
        });
        let snapshot = match loaded {
            Ok(snapshot) => snapshot,
            Err(errors) => {
                self.loaded(Err(&errors));
                tracing::error!(
                    message = "Configuration reload failed; the running configuration stays in force.",
                    errors = %errors,
                );
                return Err(errors);
            }
        };
        let reloaded = Reloaded {
            summary: snapshot.config.summary(),
            kept,
        };
        for kept in &reloaded.kept {
            tracing::warn!(message = "A restart-only setting changed; it applies after a restart.", %kept);
        }
        warn_about(&snapshot.config);
        self.config.replace(snapshot);
        self.streams.apply();
        self.loaded(Ok(()));
        tracing::info!(message = "Configuration reloaded.", summary = %reloaded.summary);
        Ok(reloaded)
    }

    /// Records the outcome of a config load for the status page and in the metrics.
    fn loaded(&self, outcome: Result<(), &ConfigErrors>) {
        let metrics = &self.metrics;
        metrics
            .config_last_reload_successful
            .set(i64::from(outcome.is_ok()));
        let now = Timestamp::now();
        {
            let mut loads = self.loads.lock().unwrap_or_else(PoisonError::into_inner);
            match outcome {
                Ok(()) => {
                    *loads = Loads {
                        loaded_at: now,
                        failure: None,
                    }
                }
                Err(errors) => {
                    loads.failure = Some((now, errors.to_string()));
                    return;
                }
            }
        }
        metrics
            .config_last_reload_success_timestamp
            .set(now.as_millisecond() as f64 / 1000.0);
        let snapshot = self.config.snapshot();
        for robot in snapshot.config.robots.keys() {
            metrics.declare_robot(robot);
        }
        self.delivery.refresh_gauges(&snapshot);
    }

    /// Re-queues every dead letter; returns how many robots get messages back.
    pub async fn retry_dead_letters(&self) -> Result<usize, QueueError> {
        let robots = self.delivery.queue.revive_dead_letters().await?;
        for robot in &robots {
            self.delivery.wake(robot);
        }
        self.delivery.refresh_gauges(&self.config.snapshot());
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
}

/// Logs what `check` would warn about in `config`.
fn warn_about(config: &Config) {
    for warning in config.warnings() {
        tracing::warn!(message = "The configuration may not do what was meant.", %warning);
    }
}

fn open_store(config: &Config) -> Result<Arc<dyn Store>, QueueError> {
    let Some(dir) = &config.queue_dir else {
        if config.mode == DeliveryMode::Queued {
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

/// Every [`cluster::HEARTBEAT`], while the configuration in force has `cluster:`, shares
/// the acknowledgements with the other replicas (`Acks::share`). Runs until aborted.
async fn share_acks(act: Arc<Act>, config: Arc<ConfigHandle>) {
    let mut tick = tokio::time::interval(cluster::HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let snapshot = config.snapshot();
        if let Some(cluster) = &snapshot.cluster {
            act.acks.share(cluster).await;
        }
    }
}
