//! The one place a message goes out, for the queue's workers and for passthrough webhooks
//! alike: [`send`] takes a reserved slot, posts through the [`Sender`], and keeps the
//! robot's [`Gate`](crate::limit::Gate) and the metrics in step with DingTalk's answer
//! (success, last error, pause, size budget). What to do next with the message is the
//! caller's.

use jiff::Timestamp;
use tokio::time::Instant;

use super::cards::{CardGroup, Cards};
use crate::cluster::Cluster;
use crate::dingtalk::{MIN_BUDGET, Message, Retry, Robot, SendError, Sender};
use crate::limit::{LastError, Reserved};
use crate::metrics::{ErrorLabels, Metrics, RobotLabels};

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

/// How a message goes out.
#[derive(Debug, Clone, Copy)]
pub enum Post<'a> {
    /// As a message of its own.
    Message,
    /// As its group's card, sent or updated ([`Cards::post`]).
    Card(&'a Cards, CardGroup<'a>),
}

/// After `message` went to the group of `robot`, a robot of an application, sends it 1:1
/// to the people on call it names: the group message could not mention them. A failure
/// is logged and counted; the message was delivered all the same.
async fn reach_on_call(sender: &dyn Sender, robot: &Robot, metrics: &Metrics, message: &Message) {
    let Some(body) = robot.one_to_one_body(message) else {
        return;
    };
    if let Err(error) = sender.one_to_one(robot, body).await {
        count_error(metrics, robot, &error);
        tracing::warn!(
            message = "Cannot send the message 1:1 to the people on call.",
            robot = %robot.name,
            people = ?message.mention.user_ids,
            %error,
        );
    }
}

/// Sends `message` to `robot` through `sender` on the slot `reserved`, as `post` says, and
/// records DingTalk's answer: in the gate (success, last error, pause, size budget), in
/// the metrics, and a pause in `cluster` for every replica.
pub async fn send(
    reserved: Reserved<'_, '_>,
    sender: &dyn Sender,
    cluster: Option<&Cluster>,
    robot: &Robot,
    metrics: &Metrics,
    (message, post): (&Message, Post<'_>),
) -> Result<(), Failure> {
    let gate = reserved.gate();
    let started = Instant::now();
    let result = match post {
        Post::Card(cards, group) => cards.post(sender, cluster, robot, message, group).await,
        Post::Message => match robot.body(message) {
            Ok(body) => sender.send(robot, body).await,
            // Longer than the robot's API takes: not sent, and handled as DingTalk's "too
            // long".
            Err(too_long) => Err(too_long),
        },
    };
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
        reach_on_call(sender, robot, metrics, message).await;
        return Ok(());
    };
    count_error(metrics, robot, &error);
    let hint = error.hint(robot);
    gate.failed(LastError {
        error: error.to_string(),
        hint: hint.clone(),
        at: Timestamp::now(),
    });
    let retry = error.retry();
    let mut budget = gate.size_budget(robot);
    match retry {
        Retry::Never => metrics.message(&robot.name, "failed"),
        Retry::Later => metrics.message(&robot.name, "retried"),
        Retry::AfterPause => {
            metrics.message(&robot.name, "retried");
            let pause = gate.pause(Instant::now());
            metrics.set_paused(&robot.name, true);
            if let Some(cluster) = cluster {
                cluster.pause(&robot.name, pause).await;
            }
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
                message = "A message was too long for the robot; sending its alerts in shorter messages.",
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

/// Counts DingTalk's `error` for `robot` in `dingtalk_errors_total`.
fn count_error(metrics: &Metrics, robot: &Robot, error: &SendError) {
    metrics
        .dingtalk_errors
        .get_or_create(&ErrorLabels {
            robot: robot.name.clone(),
            errcode: error.metric_code(),
        })
        .inc();
}
