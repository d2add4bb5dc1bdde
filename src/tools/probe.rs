//! A test message to one robot, for `test-robot` and `POST /api/v1/robots/{name}/test`:
//! sent like a passthrough webhook's message (the robot's gate, lane and rate window,
//! signing and keyword, `deliver::send`), and DingTalk's answer explained: what it means
//! and what to change.

use std::fmt::Write as _;

use crate::accept::passthrough::{self, Passed};
use crate::deliver::Delivery;
use crate::dingtalk::{Mention, Message, Robot};
use crate::snapshot::Snapshot;

/// The text of a test message when none is given.
pub const DEFAULT_TEXT: &str =
    "If you can read this, alertmanager-dingtalk can post to this group.";

/// What a test send did, and the report that explains it.
#[derive(Debug)]
pub struct Probe {
    /// Whether DingTalk accepted the message (`errcode` 0).
    pub delivered: bool,
    /// Where it went, DingTalk's answer, what it means and what to change.
    pub report: String,
    /// What happened, as a passthrough webhook would see it.
    pub outcome: Passed,
}

/// The test message for `robot`: `text` under a title that carries the robot's keyword.
pub fn message(robot: &Robot, text: &str) -> Message {
    let title = match robot.primary_keyword() {
        "" => "Test message".to_owned(),
        keyword => format!("Test message · {keyword}"),
    };
    Message {
        text: format!("#### {title}\n\n{text}\n\n(sent by alertmanager-dingtalk test-robot)"),
        title,
        mention: Mention::default(),
        buttons: Vec::new(),
        msgtype: None,
    }
}

/// Sends the test message with `text` to `robot` under `snapshot`, through `delivery`; to
/// each robot of a pool, delivered only when every one delivered it.
pub async fn send(delivery: &Delivery, snapshot: &Snapshot, robot: &Robot, text: &str) -> Probe {
    let Some(members) = robot.pool_members() else {
        return send_one(delivery, snapshot, robot, text).await;
    };
    let mut report = format!(
        "{} is a pool: each of its robots is sent the test message.\n",
        robot.name
    );
    let mut outcome = Passed::Delivered { messages: 0 };
    for member in members.iter().filter_map(|m| snapshot.config.robots.get(m)) {
        let probe = Box::pin(send_one(delivery, snapshot, member, text)).await;
        let _ = write!(report, "\nrobot {}: {}", member.name, probe.report);
        outcome = match (outcome, probe.outcome) {
            (Passed::Delivered { messages }, Passed::Delivered { .. }) => Passed::Delivered {
                messages: messages + 1,
            },
            (Passed::Delivered { .. }, failed) | (failed, _) => failed,
        };
    }
    Probe {
        delivered: matches!(outcome, Passed::Delivered { .. }),
        report,
        outcome,
    }
}

/// [`send`] to one robot.
async fn send_one(delivery: &Delivery, snapshot: &Snapshot, robot: &Robot, text: &str) -> Probe {
    let message = message(robot, text);
    let outcome = match passthrough::send_message(
        delivery,
        snapshot,
        robot,
        (&message, None),
        "test-robot",
        0,
    )
    .await
    {
        Ok(()) => Passed::Delivered { messages: 1 },
        Err(refused) => refused,
    };
    let credentials = match robot.app_note() {
        Some(app) => format!(" ({app})"),
        None if robot.is_signed() => " (signed)".to_owned(),
        None => String::new(),
    };
    let mut report = format!("POST {}{credentials}\n", robot.redacted_url());
    let delivered = matches!(outcome, Passed::Delivered { .. });
    match &outcome {
        Passed::Delivered { .. } => {
            let answer = if robot.is_app() {
                "a processQueryKey"
            } else {
                "errcode 0"
            };
            let _ = writeln!(
                report,
                "DingTalk answered {answer}: the message was accepted. Look for \"{}\" in the group.",
                message.title
            );
        }
        Passed::Failed { failure, .. } => {
            let _ = writeln!(report, "DingTalk's answer: {}", failure.error);
            let _ = writeln!(report, "What it means: {}", failure.error.meaning());
            let _ = writeln!(report, "What to change: {}", failure.hint);
        }
        Passed::RateLimited { wait, .. } => {
            let _ = writeln!(
                report,
                "Not sent: the robot's rate window (rate_limit {}) or a pause has no slot for {}s, longer than delivery.passthrough_max_wait; try again later.",
                robot.rate_limit,
                wait.as_secs()
            );
        }
        Passed::Busy { .. } => {
            let _ = writeln!(
                report,
                "Not sent: another send to the robot is still waiting for DingTalk; try again later."
            );
        }
        // Only a webhook's notification can be a duplicate.
        Passed::Duplicate => {}
    }
    Probe {
        delivered,
        report,
        outcome,
    }
}
