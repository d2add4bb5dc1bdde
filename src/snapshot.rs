//! The configuration in force: one immutable [`Snapshot`] (config plus the DingTalk client
//! built from it) handed out whole, swapped whole on reload, and the settings that only a
//! restart changes, pinned at start in [`Pinned`].
//!
//! A request or a send takes one snapshot and uses it throughout, so it never straddles
//! two configurations. This module decides nothing about delivery; it only holds what the
//! others read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::act::AlertmanagerClient;
use crate::cluster::{Cluster, ClusterError};
use crate::config::{Config, DeliveryMode};
use crate::dingtalk::{self, ClientError, Sender};
use crate::metrics::Metrics;
use crate::metrics::quota::Calls;

/// A configuration together with the sender and the cluster built from it.
pub struct Snapshot {
    /// The validated configuration.
    pub config: Config,
    /// Sends to DingTalk with the configured timeout and proxy.
    pub sender: Arc<dyn Sender>,
    /// The same client, for what only it does: Stream connections and replies.
    pub dingtalk: dingtalk::Client,
    /// The Redis shared with other replicas, with `cluster:`.
    pub cluster: Option<Arc<Cluster>>,
    /// The Alertmanagers that actions and commands act through, with `alertmanager:`.
    pub alertmanager: Option<Arc<AlertmanagerClient>>,
    /// Counts OpenAPI calls against `dingtalk.monthly_call_quota`.
    pub calls: Calls,
}

/// Why a configuration could not be put in force.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// `cluster:` could not be used.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The Alertmanager client could not be built (its certificates).
    #[error("alertmanager: {0}")]
    Alertmanager(String),
}

impl Snapshot {
    /// Builds the DingTalk client for `config`, and its cluster unless `previous` has one
    /// for the same `cluster:` (a reload keeps it, with its connection and state).
    pub fn new(
        config: Config,
        previous: Option<&Snapshot>,
        metrics: &Metrics,
    ) -> Result<Self, SnapshotError> {
        let client = dingtalk::Client::new(config.timeout, &config.proxy)?;
        let kept = previous
            .and_then(|p| p.cluster.clone())
            .filter(|cluster| Some(cluster.config()) == config.cluster.as_ref());
        let cluster = match (kept, &config.cluster) {
            (Some(kept), _) => Some(kept),
            (None, Some(cluster)) => {
                let up = metrics.cluster_redis_up(&cluster.redis_url.to_string());
                Some(Arc::new(Cluster::new(cluster.clone(), up)?))
            }
            (None, None) => {
                metrics.forget_cluster();
                None
            }
        };
        let alertmanager = config
            .alertmanager
            .as_ref()
            .map(|alertmanager| AlertmanagerClient::new(alertmanager).map(Arc::new))
            .transpose()
            .map_err(SnapshotError::Alertmanager)?;
        let month = previous.map(|p| p.calls.month()).unwrap_or_default();
        let calls = Calls::new(metrics, month, config.monthly_call_quota, cluster.clone());
        let counting = calls.clone();
        let client = client.counting(Arc::new(move |call| counting.count(call)));
        Ok(Snapshot {
            config,
            sender: Arc::new(client.clone()),
            dingtalk: client,
            cluster,
            alertmanager,
            calls,
        })
    }
}

/// Hands out the configuration in force.
pub struct ConfigHandle {
    current: RwLock<Arc<Snapshot>>,
}

impl ConfigHandle {
    /// Starts with `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        ConfigHandle {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// The configuration in force now; it stays valid however long it is held.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `snapshot` in force.
    pub fn replace(&self, snapshot: Snapshot) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
    }
}

/// The settings a reload does not change: what the process listens on, how it answers
/// webhooks, and where its queue lives. Read at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// Where the server listens: `--listen`, or else the file's `listen:`.
    pub listen: SocketAddr,
    /// `listen:` as the file said at start: what a reloaded file is compared with.
    pub file_listen: SocketAddr,
    /// `delivery.mode`.
    pub mode: DeliveryMode,
    /// `delivery.queue_dir`.
    pub queue_dir: Option<PathBuf>,
}

impl Pinned {
    /// The restart-only settings of `config`, with `--listen` if given.
    pub fn of(config: &Config, listen_override: Option<SocketAddr>) -> Self {
        Pinned {
            listen: listen_override.unwrap_or(config.listen),
            file_listen: config.listen,
            mode: config.mode,
            queue_dir: config.queue_dir.clone(),
        }
    }

    /// Puts the running values of the restart-only settings back into `config`, a
    /// reloaded file, so that nothing reads what the file says of them; returns one line
    /// per setting the file changed, naming the value that stays in force.
    pub fn keep(&self, config: &mut Config) -> Vec<String> {
        let changes = self.changes(config);
        config.listen = self.listen;
        config.mode = self.mode;
        config.queue_dir.clone_from(&self.queue_dir);
        changes
    }

    fn changes(&self, config: &Config) -> Vec<String> {
        let kept = |key: &str, running: &dyn std::fmt::Display, new: &dyn std::fmt::Display| {
            format!("{key}: {running} stays in force until a restart (the file now says {new})")
        };
        let mut changes = Vec::new();
        if config.listen != self.file_listen {
            changes.push(kept("listen", &self.listen, &config.listen));
        }
        if config.mode != self.mode {
            changes.push(kept("delivery.mode", &self.mode, &config.mode));
        }
        if config.queue_dir != self.queue_dir {
            changes.push(kept(
                "delivery.queue_dir",
                &queue_dir_text(self.queue_dir.as_deref()),
                &queue_dir_text(config.queue_dir.as_deref()),
            ));
        }
        changes
    }
}

/// A `delivery.queue_dir` as operators read it.
pub fn queue_dir_text(dir: Option<&std::path::Path>) -> String {
    dir.map_or_else(
        || "none (in memory)".to_owned(),
        |d| d.display().to_string(),
    )
}
