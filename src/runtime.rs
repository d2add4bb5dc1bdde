//! The configuration in force: one immutable [`Runtime`] (config plus the DingTalk client
//! built from it) handed out whole, swapped whole on reload, and the settings that only a
//! restart changes, pinned at start in [`Pinned`].
//!
//! A request or a send takes one snapshot and uses it throughout, so it never straddles
//! two configurations. This module decides nothing about delivery; it only holds what the
//! others read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::config::{Config, DeliveryMode};
use crate::dingtalk::{self, ClientError, Sender};

/// A configuration together with the sender built from it.
pub struct Runtime {
    /// The validated configuration.
    pub config: Config,
    /// Sends to DingTalk with the configured timeout and proxy.
    pub sender: Arc<dyn Sender>,
}

impl Runtime {
    /// Builds the DingTalk client for `config`.
    pub fn new(config: Config) -> Result<Self, ClientError> {
        let client = dingtalk::Client::new(config.timeout, config.proxy_url.as_ref())?;
        Ok(Runtime {
            config,
            sender: Arc::new(client),
        })
    }
}

/// Hands out the configuration in force.
pub struct ConfigHandle {
    current: RwLock<Arc<Runtime>>,
}

impl ConfigHandle {
    /// Starts with `runtime`.
    pub fn new(runtime: Runtime) -> Self {
        ConfigHandle {
            current: RwLock::new(Arc::new(runtime)),
        }
    }

    /// The configuration in force now; it stays valid however long it is held.
    pub fn snapshot(&self) -> Arc<Runtime> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `runtime` in force.
    pub fn replace(&self, runtime: Runtime) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(runtime);
    }
}

/// The settings a reload does not change: what the process listens on, how it answers
/// webhooks, and where its queue lives. Read from the config at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// `listen:` as the file said at start (`--listen` may override where the server
    /// really listens).
    pub listen: SocketAddr,
    /// `delivery.mode`.
    pub mode: DeliveryMode,
    /// `delivery.queue_dir`.
    pub queue_dir: Option<PathBuf>,
}

impl Pinned {
    /// The restart-only settings of `config`.
    pub fn of(config: &Config) -> Self {
        Pinned {
            listen: config.listen,
            mode: config.mode,
            queue_dir: config.queue_dir.clone(),
        }
    }

    /// One line per restart-only setting that `config` changes, naming the value that
    /// stays in force: what a reload reports.
    pub fn changes(&self, config: &Config) -> Vec<String> {
        let new = Pinned::of(config);
        let mut changes = Vec::new();
        if new.listen != self.listen {
            changes.push(format!(
                "listen: {} stays in force until a restart (the file now says {})",
                self.listen, new.listen
            ));
        }
        if new.mode != self.mode {
            changes.push(format!(
                "delivery.mode: {} stays in force until a restart (the file now says {})",
                self.mode, new.mode
            ));
        }
        if new.queue_dir != self.queue_dir {
            let show = |dir: &Option<PathBuf>| {
                dir.as_ref().map_or_else(
                    || "none (in memory)".to_owned(),
                    |d| d.display().to_string(),
                )
            };
            changes.push(format!(
                "delivery.queue_dir: {} stays in force until a restart (the file now says {})",
                show(&self.queue_dir),
                show(&new.queue_dir)
            ));
        }
        changes
    }
}
