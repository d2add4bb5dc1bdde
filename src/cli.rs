//! The `check` and `render` subcommands: offline tools that load the config exactly as
//! the server does and print what it would do. Neither opens a network connection.

use std::fmt::Write as _;
use std::path::Path;

use jiff::Timestamp;

use crate::config::{self, ConfigErrors};
use crate::dingtalk;
use crate::payload;
use crate::plan;
use crate::runtime::{Pinned, queue_dir_text};

/// `check`: the one-line summary of a valid config and its restart-only settings, or
/// every error in it.
pub fn check(config_file: &Path) -> Result<String, ConfigErrors> {
    let config = config::load(config_file)?;
    let pinned = Pinned::of(&config, None);
    let queue_dir = queue_dir_text(pinned.queue_dir.as_deref());
    Ok(format!(
        "OK: {}\nrestart-only (a reload keeps the running values): listen {}, delivery.mode {}, delivery.queue_dir {queue_dir}",
        config.summary(),
        pinned.listen,
        pinned.mode,
    ))
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
    /// The payload file is not an Alertmanager notification.
    #[error("{file}: {source}")]
    Payload {
        /// The payload file.
        file: String,
        /// Why it is not.
        source: payload::PayloadError,
    },
}

/// `render`: which strategies each alert of the payload matches, and the exact bodies
/// that would be POSTed to which robot, with tokens redacted.
pub fn render(
    config_file: &Path,
    payload_file: &Path,
    now: Timestamp,
) -> Result<String, RenderError> {
    let config = config::load(config_file)?;
    let file = payload_file.display().to_string();
    let body = std::fs::read(payload_file).map_err(|source| RenderError::Read {
        file: file.clone(),
        source,
    })?;
    let notification =
        payload::parse(&body).map_err(|source| RenderError::Payload { file, source })?;
    let plan = plan::plan(&config, &notification, now);

    let mut out = String::new();
    for (index, alert) in notification.alerts.iter().enumerate() {
        let strategies = &plan.routes.matched[index];
        let routed = if strategies.is_empty() {
            "no strategy matched".to_owned()
        } else {
            format!("strategies: {}", strategies.join(", "))
        };
        let _ = writeln!(
            out,
            "alert {} {} ({}): {routed}",
            index + 1,
            alert.name(),
            alert.status.as_str()
        );
    }
    for (alert, strategy, why) in &plan.routes.held {
        let _ = writeln!(
            out,
            "alert {} held back by strategy {}: {}",
            alert + 1,
            config.strategies[*strategy].name,
            why.as_str()
        );
    }
    for message in &plan.messages {
        let Some(robot) = config.robots.get(&message.robot) else {
            continue;
        };
        let signed = if robot.secret.is_some() {
            " (signed with timestamp and sign at send time)"
        } else {
            ""
        };
        let body = dingtalk::encode(robot.msgtype, &message.message);
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        let pretty = serde_json::to_string_pretty(&json).unwrap_or_else(|_| body.clone());
        let _ = writeln!(
            out,
            "\nPOST {}{signed}\nrobot {}, strategy {}, {} alerts, {} bytes\n{pretty}",
            robot.redacted_url(),
            message.robot,
            message.strategy,
            message.summary.alerts.len(),
            body.len(),
        );
    }
    if plan.messages.is_empty() {
        out.push_str("\nno messages would be sent\n");
    }
    Ok(out)
}
