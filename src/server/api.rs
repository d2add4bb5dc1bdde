//! The JSON views of the admin API: `GET /api/v1/queue` (per robot: depth, age, rate
//! window, pause, last delivery and error), `GET /api/v1/dead-letters`, `GET
//! /api/v1/acks` and `GET /api/v1/oncall` (who is on call, the next handoffs, the open
//! escalation episodes). Built from the
//! queue's counts and the gates' state, both read under short locks, so the API answers
//! while a send to DingTalk hangs. No credentials appear here.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::time::Instant;

use crate::app::App;
use crate::escalate::{EpisodeView, StoreError};
use crate::oncall;
use crate::queue::QueueError;
use crate::snapshot::Snapshot;

/// One robot's line in `GET /api/v1/queue`.
#[derive(Debug, Serialize)]
pub struct RobotQueue {
    /// Robot name.
    pub robot: String,
    /// Whether the robot is in the configuration in force (a removed robot is listed
    /// while messages of it are queued).
    pub configured: bool,
    /// Pending messages.
    pub depth: usize,
    /// Age of the oldest pending message.
    pub oldest_age_seconds: Option<f64>,
    /// Sends in the current rate window.
    pub sent_in_window: usize,
    /// The robot's `rate_limit`, e.g. `20/60s`.
    pub rate_limit: Option<String>,
    /// When a rate-limit pause ends, if paused.
    pub paused_until: Option<Timestamp>,
    /// When DingTalk last accepted a message of the robot.
    pub last_delivery: Option<Timestamp>,
    /// Bytes of title and text a message may take: the robot's `message_budget` unless
    /// DingTalk refused one as too long.
    pub size_budget: usize,
    /// The last failure since the last success, with what to check.
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
    pub at: Timestamp,
}

/// Per-robot queue state: configured robots in name order, then removed ones that still
/// have messages queued.
pub fn queue_report(app: &App, snapshot: &Snapshot) -> Vec<RobotQueue> {
    let delivery = &app.delivery;
    let stats = delivery.queue.stats();
    let robots = &snapshot.config.robots;
    let mut names: Vec<&String> = robots.keys().collect();
    names.extend(stats.keys().filter(|r| !robots.contains_key(*r)));
    let now = Timestamp::now();
    let instant_now = Instant::now();
    // An instant of the gate as wall-clock time.
    let wall = |at: Instant| {
        let left = SignedDuration::try_from(at.saturating_duration_since(instant_now)).ok()?;
        now.checked_add(left).ok()
    };
    names
        .into_iter()
        .map(|robot| {
            let robot_stats = stats.get(robot).copied().unwrap_or_default();
            let robot_gate = delivery.gate(robot);
            let gate = robot_gate.view(instant_now);
            // A pool's window is its robots' windows together.
            let members = robots.get(robot).and_then(|r| r.pool_members());
            let in_window = |name: &String| delivery.gate(name).view(instant_now).in_window;
            RobotQueue {
                configured: robots.contains_key(robot),
                depth: robot_stats.depth,
                oldest_age_seconds: robot_stats
                    .oldest
                    .map(|t| now.duration_since(t).as_secs_f64().max(0.0)),
                sent_in_window: members.map_or(gate.in_window, |m| m.iter().map(in_window).sum()),
                rate_limit: robots.get(robot).map(|r| match members {
                    Some(members) => format!("{} × {}", members.len(), r.rate_limit),
                    None => r.rate_limit.to_string(),
                }),
                paused_until: gate.paused_until.and_then(wall),
                last_delivery: gate.last_delivery,
                size_budget: robots
                    .get(robot)
                    .map_or(gate.size_budget, |r| robot_gate.size_budget(r)),
                last_error: gate.last_error.map(|e| ErrorView {
                    error: e.error,
                    hint: e.hint,
                    at: e.at,
                }),
                robot: robot.clone(),
            }
        })
        .collect()
}

/// A dead letter as `GET /api/v1/dead-letters` shows it: no message body, no secrets.
#[derive(Debug, Serialize)]
pub struct DeadLetterView {
    id: u64,
    robot: String,
    strategy: String,
    title: String,
    alerts: Vec<String>,
    accepted_at: String,
    dead_at: String,
    reason: String,
}

/// Every dead letter, oldest first.
pub async fn dead_letters(app: &App) -> Result<Vec<DeadLetterView>, QueueError> {
    Ok(app
        .delivery
        .queue
        .dead_letters()
        .await?
        .into_iter()
        .map(|dead| DeadLetterView {
            id: dead.envelope.id,
            robot: dead.envelope.robot,
            strategy: dead.envelope.strategy,
            title: dead.envelope.summary.title,
            alerts: dead.envelope.summary.alerts,
            accepted_at: dead.envelope.accepted_at.to_string(),
            dead_at: dead.at.to_string(),
            reason: dead.reason,
        })
        .collect())
}

/// An open acknowledgement as `GET /api/v1/acks` shows it.
#[derive(Debug, Serialize)]
pub struct AckView {
    group: String,
    alerts: Vec<String>,
    by: String,
    at: Timestamp,
}

/// Every open acknowledgement, oldest first.
pub fn acks(app: &App) -> Vec<AckView> {
    app.act
        .acks
        .all()
        .into_iter()
        .map(|ack| AckView {
            group: ack.group,
            alerts: ack.alerts,
            by: ack.by,
            at: ack.at,
        })
        .collect()
}

/// The next handoffs `GET /api/v1/oncall` and the status page show per schedule.
pub const HANDOFFS_SHOWN: usize = 3;

/// `GET /api/v1/oncall`.
#[derive(Debug, Serialize)]
pub struct OnCallReport {
    /// Who is on call now in each schedule, and the next handoffs.
    schedules: Vec<oncall::Shift>,
    /// The open escalation episodes, oldest first.
    episodes: Vec<EpisodeView>,
}

/// Who is on call, and what is escalating.
pub async fn oncall(app: &App, snapshot: &Snapshot) -> Result<OnCallReport, StoreError> {
    Ok(OnCallReport {
        schedules: oncall::shifts(&snapshot.config.oncall, Timestamp::now(), HANDOFFS_SHOWN),
        episodes: app.escalations.episodes(snapshot).await?,
    })
}
