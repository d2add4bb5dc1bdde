//! The subcommands: `check` and `render`, offline tools that load the config exactly as
//! the server does and print what it would do (neither opens a network connection), and
//! `test-robot`, which sends one test message to a robot and explains the answer.

use std::fmt::Write as _;
use std::path::Path;

use jiff::Timestamp;

use std::sync::Arc;

use crate::config::{self, ConfigErrors};
use crate::deliver::Delivery;
use crate::ingest::{self, Source};
use crate::metrics::Metrics;
use crate::oncall;
use crate::queue::{MemoryStore, Queue};
use crate::server::{WebConfigError, WebConfigFile};
use crate::snapshot::{ConfigHandle, Pinned, Snapshot, queue_dir_text};
use crate::tools::preview;
use crate::tools::probe::{self, Probe};

/// `check`: the one-line summary of a valid config, its restart-only settings, what the
/// web configuration asks of clients when one is given, who is on call in each schedule,
/// and a line per warning; or every error in them.
pub fn check(config_file: &Path, web_config_file: Option<&Path>) -> Result<String, CheckErrors> {
    let config = config::load(config_file)?;
    let web = web_config_file.map(WebConfigFile::load).transpose()?;
    let pinned = Pinned::of(&config, None);
    let queue_dir = queue_dir_text(pinned.queue_dir.as_deref());
    let mut out = format!(
        "OK: {}\nrestart-only (a reload keeps the running values): listen {}, delivery.mode {}, delivery.queue_dir {queue_dir}",
        config.summary(),
        pinned.listen,
        pinned.mode,
    );
    if let Some(web) = web {
        out.push_str("\nweb: ");
        out.push_str(&web.summary());
    }
    for shift in oncall::shifts(&config.oncall, Timestamp::now(), 3) {
        out.push('\n');
        out.push_str(&shift.to_string());
    }
    for warning in config.warnings() {
        out.push_str("\nwarning: ");
        out.push_str(&warning);
    }
    Ok(out)
}

/// Why `check` failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckErrors {
    /// The config does not load.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The web configuration does not load.
    #[error("{0}")]
    Web(#[from] WebConfigError),
}

/// Why `render` could not run.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The config does not load.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The payload file cannot be read.
    #[error("{file}: {source}")]
    Read {
        /// The payload file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The payload file is not a notification of its source.
    #[error("{file}: {source}")]
    Payload {
        /// The payload file.
        file: String,
        /// Why it is not.
        source: ingest::PayloadError,
    },
}

/// `render`: which strategies each alert of the payload matches, and the exact bodies
/// that would be POSTed to which robot, with tokens redacted.
pub fn render(
    config_file: &Path,
    payload_file: &Path,
    source: Source,
    now: Timestamp,
) -> Result<String, RenderError> {
    let config = config::load(config_file)?;
    let file = payload_file.display().to_string();
    let body = std::fs::read(payload_file).map_err(|source| RenderError::Read {
        file: file.clone(),
        source,
    })?;
    let zone = &config.sources.hertzbeat_timezone;
    let notification = ingest::parse_from(source, &body, zone, now)
        .map_err(|source| RenderError::Payload { file, source })?;
    let preview = preview::preview(&config, &notification, now);

    let mut out = String::new();
    for (index, alert) in preview.alerts.iter().enumerate() {
        let routed = if alert.strategies.is_empty() {
            "no strategy matched".to_owned()
        } else {
            format!("strategies: {}", alert.strategies.join(", "))
        };
        let _ = writeln!(
            out,
            "alert {} {} ({}): {routed}",
            index + 1,
            alert.name,
            alert.status
        );
    }
    for (index, alert) in preview.alerts.iter().enumerate() {
        for (strategy, why) in &alert.held {
            let _ = writeln!(
                out,
                "alert {} held back by strategy {strategy}: {why}",
                index + 1
            );
        }
    }
    for message in &preview.messages {
        let signed = match &message.app {
            Some(app) => format!(" ({app}, with its access token)"),
            None if message.signed => " (signed with timestamp and sign at send time)".to_owned(),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "\nPOST {}{signed}\nrobot {}, strategy {}, {} alerts, {} bytes\n{}",
            message.url,
            message.robot,
            message.strategy,
            message.alerts,
            message.bytes,
            message.body,
        );
    }
    if preview.messages.is_empty() {
        out.push_str("\nno messages would be sent\n");
    }
    Ok(out)
}

/// Why `test-robot` could not send.
#[derive(Debug, thiserror::Error)]
pub enum TestRobotError {
    /// The config does not load.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The config has no robot of that name.
    #[error("no robot {name:?} in the config; its robots: {known}")]
    UnknownRobot {
        /// The name asked for.
        name: String,
        /// The robots the config has.
        known: String,
    },
    /// The HTTP client could not be built.
    #[error("{0}")]
    Start(String),
}

/// `test-robot`: sends one test message with `text` to the robot `name` of the config,
/// through this process's own rate window for it (its queue, and its `cluster:`, are the
/// running bridge's, and not touched), and explains DingTalk's answer.
pub async fn test_robot(
    config_file: &Path,
    name: &str,
    text: Option<&str>,
) -> Result<Probe, TestRobotError> {
    let mut config = config::load(config_file)?;
    let Some(robot) = config.robots.get(name).cloned() else {
        let known: Vec<&str> = config.robots.keys().map(String::as_str).collect();
        return Err(TestRobotError::UnknownRobot {
            name: name.to_owned(),
            known: known.join(", "),
        });
    };
    config.cluster = None;
    let metrics = Arc::new(Metrics::new());
    let snapshot =
        Snapshot::new(config, None, &metrics).map_err(|e| TestRobotError::Start(e.to_string()))?;
    let handle = Arc::new(ConfigHandle::new(snapshot));
    let queue = Queue::new(Arc::new(MemoryStore::default()))
        .map_err(|e| TestRobotError::Start(e.to_string()))?;
    let delivery = Delivery::new(handle.clone(), Arc::new(queue), Arc::default(), metrics);
    let snapshot = handle.snapshot();
    Ok(probe::send(
        &delivery,
        &snapshot,
        &robot,
        text.unwrap_or(probe::DEFAULT_TEXT),
    )
    .await)
}
