//! Delivery: one worker per robot waits for a slot in the robot's [`RobotGate`], takes the
//! robot's oldest pending messages, sends them (merged into a digest when more are pending
//! than the window can send), and acts on DingTalk's answer.
//!
//! Messages leave the queue only when DingTalk accepted them, or as dead letters: after a
//! permanent error, when older than `delivery.max_age`, or when their robot was removed
//! from the config. Retryable failures back off exponentially with jitter; a rate-limit
//! answer pauses the robot for at least a minute, longer if it repeats. The robot's
//! credentials are looked up at send time, so a reload applies to pending messages too.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::app::{App, Runtime};
use crate::coalesce;
use crate::dingtalk::{self, Retry, Robot, SendError};
use crate::metrics::{ErrorLabels, RobotLabels};
use crate::queue::Envelope;
use crate::rate_window::{RateLimit, RateWindow};

/// First retry delay after a retryable failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Pause after DingTalk says the robot sends too fast; it blocks for 10 minutes at most.
const FIRST_PAUSE: Duration = Duration::from_secs(60);
/// Longest pause after repeated rate-limit answers.
const MAX_PAUSE: Duration = Duration::from_secs(600);
/// How many pending messages a worker looks at, and merges at most, per send.
const BATCH: usize = 1000;
/// More messages than this pending for one robot is a storm, however wide its window: they
/// are merged into digests, so the group reads a few messages instead of hundreds and the
/// queue drains at a digest's pace, not one message per round trip. (At DingTalk's 20 a
/// minute the window decides long before.)
const STORM: usize = 100;

/// The delay before retry number `attempt` (1-based): doubling from 1 s up to 60 s, then
/// scaled by `jitter` in [0.5, 1] so that robots failing together do not retry together.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF).mul_f64(jitter.clamp(0.5, 1.0))
}

/// The last failure of a robot, for `/api/v1/queue`.
#[derive(Debug, Clone)]
pub struct LastError {
    /// What went wrong (no credentials).
    pub error: String,
    /// What to check.
    pub hint: String,
    /// When.
    pub at: Timestamp,
}

/// When a robot may send next: its rate window, a pause after DingTalk's rate-limit
/// answer, and the pacing of the window's last slots. Shared by the robot's worker and,
/// in passthrough mode, the webhook handlers.
#[derive(Debug)]
pub struct RobotGate {
    window: RateWindow,
    paused_until: Option<Instant>,
    next_pause: Duration,
    last_send: Option<Instant>,
    /// The robot's last failure, cleared by a success.
    pub last_error: Option<LastError>,
}

impl Default for RobotGate {
    fn default() -> Self {
        RobotGate {
            window: RateWindow::new(RateLimit::DINGTALK),
            paused_until: None,
            next_pause: FIRST_PAUSE,
            last_send: None,
            last_error: None,
        }
    }
}

impl RobotGate {
    /// Sends the window can still take at `now`.
    pub fn room(&mut self, now: Instant) -> usize {
        self.window.room(now)
    }

    /// When the next send may start. Once only a quarter of the window is left, sends
    /// are spaced evenly (window / count) so that the rest of a storm gathers into the
    /// next digests instead of using up the window at once.
    pub fn ready_at(&mut self, limit: RateLimit, now: Instant) -> Instant {
        self.window.set_limit(limit);
        let mut ready = self.window.next_slot(now);
        if let Some(paused_until) = self.paused_until {
            ready = ready.max(paused_until);
        }
        if let Some(last) = self.last_send
            && self.window.room(now) <= reserve(limit)
        {
            ready = ready.max(last + limit.window / limit.count);
        }
        ready
    }

    /// Records a send starting at `now`.
    pub fn record_send(&mut self, now: Instant) {
        self.window.record(now);
        self.last_send = Some(now);
    }

    /// Pauses the robot after a rate-limit answer; returns the pause.
    pub fn pause(&mut self, now: Instant) -> Duration {
        let pause = self.next_pause;
        self.paused_until = Some(now + pause);
        self.next_pause = (pause * 2).min(MAX_PAUSE);
        pause
    }

    /// When the pause ends, if the robot is paused at `now`.
    pub fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|until| *until > now)
    }

    /// Notes a successful send: pauses start again from a minute, errors are cleared.
    pub fn succeeded(&mut self) {
        self.next_pause = FIRST_PAUSE;
        self.paused_until = None;
        self.last_error = None;
    }
}

/// Slots kept back for digests once a storm starts: a quarter of the window, at least one.
fn reserve(limit: RateLimit) -> usize {
    (limit.count as usize / 4).max(1)
}

/// Messages chosen for one send.
struct Send {
    /// The queued messages it covers.
    envelopes: Vec<Envelope>,
    message: dingtalk::Message,
    uuid: String,
    strategy: String,
}

impl Send {
    fn ids(&self) -> Vec<u64> {
        self.envelopes.iter().map(|m| m.id).collect()
    }

    fn alerts(&self) -> usize {
        self.envelopes.iter().map(|m| m.summary.alerts.len()).sum()
    }
}

/// Runs the worker of `robot` until the task is aborted.
pub async fn run_worker(app: Arc<App>, robot: String) {
    let gate = app.gate(&robot);
    let mut attempt = 0u32;
    loop {
        app.queue.wait_pending(&robot).await;
        let runtime = app.runtime();
        let Some(robot_config) = runtime.config.robots.get(&robot).cloned() else {
            bury_all(
                &app,
                &robot,
                "robot_removed",
                "the robot is no longer configured",
            );
            continue;
        };
        let ready_at = gate
            .lock()
            .await
            .ready_at(robot_config.rate_limit, Instant::now());
        wait_until(ready_at).await;
        let Some(send) = choose(&app, &runtime, &robot_config, &gate).await else {
            continue;
        };
        attempt += 1;
        match deliver(&app, &runtime, &robot_config, &gate, &send, attempt).await {
            Some(Retry::Later) => {
                tokio::time::sleep(backoff(attempt, 0.5 + fastrand::f64() / 2.0)).await
            }
            Some(Retry::AfterPause) => {}
            Some(Retry::Never) | None => attempt = 0,
        }
    }
}

/// Waits until `instant`; returns at once when it has passed. (`sleep_until` would wait
/// for the timer's next tick, about a millisecond, even then: a cap of ~1000 sends a
/// second per robot.)
pub(crate) async fn wait_until(instant: Instant) {
    if instant > Instant::now() {
        tokio::time::sleep_until(instant).await;
    }
}

/// Picks what to send: the oldest message, or a digest when more are pending than the
/// window can take (or than [`STORM`]). Reads only the oldest message unless it makes a
/// digest, and buries what it read that is older than `max_age`.
async fn choose(
    app: &App,
    runtime: &Runtime,
    robot: &Robot,
    gate: &Mutex<RobotGate>,
) -> Option<Send> {
    let depth = app.queue.depth(&robot.name);
    let room = gate.lock().await.room(Instant::now());
    let merge = depth > 1 && (depth > room.min(STORM) || room <= reserve(robot.rate_limit));
    let pending = app
        .queue
        .oldest(&robot.name, if merge { BATCH } else { 1 })
        .inspect_err(|error| tracing::error!(message = "Cannot read the queue.", robot = %robot.name, %error))
        .ok()?;
    let max_age = runtime.config.max_age;
    let now = Timestamp::now();
    let (expired, live): (Vec<Envelope>, Vec<Envelope>) = pending.into_iter().partition(|m| {
        now.duration_since(m.accepted_at)
            .try_into()
            .is_ok_and(|age: Duration| age > max_age)
    });
    if !expired.is_empty() {
        bury(
            app,
            &robot.name,
            &expired,
            "expired",
            "older than delivery.max_age",
        );
    }
    if live.len() <= 1 {
        let first = live.into_iter().next()?;
        return Some(Send {
            message: first.message.clone(),
            uuid: first.uuid.clone(),
            strategy: first.strategy.clone(),
            envelopes: vec![first],
        });
    }
    let digest = coalesce::digests(&live, robot.primary_keyword())
        .into_iter()
        .next()?;
    let merged: Vec<Envelope> = live
        .into_iter()
        .filter(|m| digest.ids.contains(&m.id))
        .collect();
    app.metrics
        .coalesced_messages
        .get_or_create(&RobotLabels {
            robot: robot.name.clone(),
        })
        .inc_by(merged.len() as u64);
    Some(Send {
        uuid: format!("digest-{}-{}", merged.first()?.uuid, merged.len()),
        strategy: "digest".to_owned(),
        message: digest.message,
        envelopes: merged,
    })
}

/// A failed attempt, with what the caller needs to log or answer.
pub(crate) struct Failure {
    /// What went wrong.
    pub error: SendError,
    /// What to check.
    pub hint: String,
    /// Whether and how to retry.
    pub retry: Retry,
}

/// One send of `body` to `robot`: the gate's bookkeeping (window, pause, last error) and
/// the metrics every caller needs. The caller holds the gate, so sends of one robot never
/// overlap.
pub(crate) async fn attempt(
    app: &App,
    runtime: &Runtime,
    robot: &Robot,
    gate: &mut RobotGate,
    body: String,
) -> Result<(), Failure> {
    let started = Instant::now();
    gate.record_send(started);
    let result = runtime
        .client
        .send(robot, body, Timestamp::now().as_millisecond())
        .await;
    app.metrics
        .send_duration
        .get_or_create(&RobotLabels {
            robot: robot.name.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    let Err(error) = result else {
        gate.succeeded();
        app.set_paused(&robot.name, false);
        app.metrics.message(&robot.name, "sent");
        return Ok(());
    };
    app.metrics
        .dingtalk_errors
        .get_or_create(&ErrorLabels {
            robot: robot.name.clone(),
            errcode: error.metric_code(),
        })
        .inc();
    let hint = error.hint(robot.primary_keyword());
    gate.last_error = Some(LastError {
        error: error.to_string(),
        hint: hint.clone(),
        at: Timestamp::now(),
    });
    let retry = error.retry();
    match retry {
        Retry::Never => app.metrics.message(&robot.name, "failed"),
        Retry::Later => app.metrics.message(&robot.name, "retried"),
        Retry::AfterPause => {
            app.metrics.message(&robot.name, "retried");
            let pause = gate.pause(Instant::now());
            app.set_paused(&robot.name, true);
            tracing::warn!(
                message = "DingTalk rate-limited the robot; pausing it.",
                robot = %robot.name,
                pause = ?pause,
                %error,
                %hint,
            );
        }
    }
    Err(Failure { error, hint, retry })
}

/// Sends once from the queue and acts on the answer; returns how to go on after a
/// failure.
async fn deliver(
    app: &App,
    runtime: &Runtime,
    robot: &Robot,
    gate: &Mutex<RobotGate>,
    send: &Send,
    attempt_number: u32,
) -> Option<Retry> {
    let body = dingtalk::encode(robot.msgtype, &send.message, &send.uuid);
    let result = attempt(app, runtime, robot, &mut *gate.lock().await, body).await;
    let Err(Failure { error, hint, retry }) = result else {
        if let Err(error) = app.queue.ack(&robot.name, &send.ids()) {
            tracing::error!(message = "Cannot remove delivered messages from the queue; they may be sent again.", robot = %robot.name, %error);
        }
        tracing::info!(
            message = "Delivered message.",
            robot = %robot.name,
            strategy = %send.strategy,
            alerts = send.alerts(),
            merged = send.envelopes.len(),
            attempt = attempt_number,
        );
        return None;
    };
    match retry {
        Retry::Never => {
            tracing::error!(
                message = "DingTalk refused the message; giving up on it.",
                robot = %robot.name,
                url = %robot.redacted_url(),
                strategy = %send.strategy,
                alerts = send.alerts(),
                %error,
                %hint,
            );
            let detail = format!("{error}; {hint}");
            bury(
                app,
                &robot.name,
                &send.envelopes,
                &error.metric_code(),
                &detail,
            );
        }
        Retry::Later => tracing::warn!(
            message = "Send failed; will retry.",
            robot = %robot.name,
            strategy = %send.strategy,
            attempt = attempt_number,
            %error,
            %hint,
        ),
        Retry::AfterPause => {}
    }
    Some(retry)
}

/// Moves `messages` to the dead letters, counted under `reason`.
fn bury(app: &App, robot: &str, messages: &[Envelope], reason: &str, detail: &str) {
    if messages.is_empty() {
        return;
    }
    if let Err(error) = app
        .queue
        .bury(robot, messages, &format!("{reason}: {detail}"))
    {
        tracing::error!(message = "Cannot move messages to the dead letters.", %robot, %error);
        return;
    }
    app.metrics.dead_letter(robot, reason, messages.len());
    tracing::error!(
        message = "Messages moved to the dead letters.",
        %robot,
        count = messages.len(),
        %reason,
        %detail,
    );
}

fn bury_all(app: &App, robot: &str, reason: &str, detail: &str) {
    match app.queue.oldest(robot, usize::MAX) {
        Ok(messages) => bury(app, robot, &messages, reason, detail),
        Err(error) => tracing::error!(message = "Cannot read the queue.", %robot, %error),
    }
}
