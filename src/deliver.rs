//! Delivery: one worker per robot takes the robot's oldest pending message, waits for a
//! slot in the robot's [`RateWindow`], sends it, and acts on DingTalk's answer.
//!
//! A message leaves the queue only when DingTalk accepted it or trying again cannot help
//! (a permanent error, logged and counted). Retryable failures back off exponentially
//! with jitter; a rate-limit answer pauses the robot for at least a minute, longer if it
//! repeats. Messages are sent one at a time per robot and in order. The robot's
//! credentials are looked up at send time, so a reload applies to pending messages too.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use crate::app::App;
use crate::dingtalk::{Retry, SendError};
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

/// The delay before retry number `attempt` (1-based): doubling from 1 s up to 60 s, then
/// scaled by `jitter` in [0.5, 1] so that robots failing together do not retry together.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF).mul_f64(jitter.clamp(0.5, 1.0))
}

/// What a worker knows about its robot between messages.
struct RobotState {
    name: String,
    window: RateWindow,
    paused_until: Option<Instant>,
    next_pause: Duration,
}

/// Runs the worker of `robot` until the task is aborted.
pub async fn run_worker(app: Arc<App>, robot: String) {
    let mut state = RobotState {
        name: robot,
        window: RateWindow::new(RateLimit::DINGTALK),
        paused_until: None,
        next_pause: FIRST_PAUSE,
    };
    loop {
        let message = app.queue.front(&state.name).await;
        deliver(&app, &mut state, &message).await;
        if let Err(error) = app.queue.ack(&message) {
            tracing::error!(message = "Cannot remove a finished message from the queue.", robot = %state.name, %error);
        }
        app.update_queue_depth();
    }
}

/// Sends `message` until it is delivered or given up on.
async fn deliver(app: &App, state: &mut RobotState, message: &Envelope) {
    let robot_label = RobotLabels {
        robot: state.name.clone(),
    };
    for attempt in 1u32.. {
        let runtime = app.runtime();
        let Some(robot) = runtime.config.robots.get(&state.name).cloned() else {
            app.metrics.message(&state.name, "failed");
            tracing::error!(
                message = "Robot is no longer configured; giving up on its message.",
                robot = %state.name,
                strategy = %message.strategy,
                alerts = message.alerts,
            );
            return;
        };
        state.window.set_limit(robot.rate_limit);
        let now = Instant::now();
        let slot = state
            .window
            .next_slot(now)
            .max(state.paused_until.unwrap_or(now));
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
        let now = Instant::now();
        state.window.record(now);
        let result = runtime
            .client
            .send(
                &robot,
                message.body.clone(),
                Timestamp::now().as_millisecond(),
            )
            .await;
        app.metrics
            .send_duration
            .get_or_create(&robot_label)
            .observe(now.elapsed().as_secs_f64());
        let error = match result {
            Ok(()) => {
                app.metrics.message(&state.name, "sent");
                state.next_pause = FIRST_PAUSE;
                tracing::info!(
                    message = "Delivered message.",
                    robot = %state.name,
                    strategy = %message.strategy,
                    alerts = message.alerts,
                    attempt,
                );
                return;
            }
            Err(error) => error,
        };
        count_error(app, &state.name, &error);
        let hint = error.hint(robot.primary_keyword());
        match error.retry() {
            Retry::Never => {
                app.metrics.message(&state.name, "failed");
                tracing::error!(
                    message = "DingTalk refused the message; giving up on it.",
                    robot = %state.name,
                    url = %robot.redacted_url(),
                    strategy = %message.strategy,
                    alerts = message.alerts,
                    %error,
                    %hint,
                );
                return;
            }
            Retry::Later => {
                app.metrics.message(&state.name, "retried");
                let delay = backoff(attempt, 0.5 + fastrand::f64() / 2.0);
                tracing::warn!(
                    message = "Send failed; will retry.",
                    robot = %state.name,
                    strategy = %message.strategy,
                    attempt,
                    retry_in = ?delay,
                    %error,
                    %hint,
                );
                tokio::time::sleep(delay).await;
            }
            Retry::AfterPause => {
                app.metrics.message(&state.name, "retried");
                let pause = state.next_pause;
                state.paused_until = Some(Instant::now() + pause);
                state.next_pause = (pause * 2).min(MAX_PAUSE);
                tracing::warn!(
                    message = "DingTalk rate-limited the robot; pausing it.",
                    robot = %state.name,
                    pause = ?pause,
                    %error,
                    %hint,
                );
            }
        }
    }
}

fn count_error(app: &App, robot: &str, error: &SendError) {
    app.metrics
        .dingtalk_errors
        .get_or_create(&ErrorLabels {
            robot: robot.to_owned(),
            errcode: error.metric_code(),
        })
        .inc();
}
