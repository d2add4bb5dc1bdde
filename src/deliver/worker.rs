//! The per-robot worker: waits for a slot in the robot's gate, takes the robot's oldest
//! pending messages, sends them (merged into a digest when more are pending than the
//! window can send), and acts on DingTalk's answer. A pool's worker does the same for the
//! pool's queue through whichever member [`pool`] puts first, and leaves a message a
//! member could not send to the others.
//!
//! Messages leave the queue only when DingTalk accepted them, or as dead letters: after a
//! permanent error, when older than `delivery.max_age`, or when their robot was removed
//! from the config. Retryable failures back off exponentially with jitter; a rate-limit
//! answer pauses the robot (in the gate); a "too long" answer lowers the robot's size
//! budget and the same alerts go again in shorter messages. The worker holds the robot's
//! lane only from choosing what to send to DingTalk's answer: it waits for a slot, a
//! backoff or the queue without it.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::outgoing::Outgoing;
use super::supersede::{self, Line};
use super::{Delivery, Failure, digest, pool};

use crate::dingtalk::{MIN_BUDGET, Retry, Robot};
use crate::limit::{self, Gate, Take};
use crate::metrics::RobotLabels;
use crate::queue::{Envelope, QueueError};
use crate::snapshot::Snapshot;

/// First retry delay after a retryable failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How many pending messages a worker looks at, and merges at most, per send.
const BATCH: usize = 1000;

/// The delay before retry number `attempt` (1-based): doubling from 1 s up to 60 s, then
/// scaled by `jitter` in [0.5, 1] so that robots failing together do not retry together.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF).mul_f64(jitter.clamp(0.5, 1.0))
}

fn jittered_backoff(attempt: u32) -> Duration {
    backoff(attempt, 0.5 + fastrand::f64() / 2.0)
}

/// Delivers the queue `queue_name` (a robot, or a pool through its members) until the task
/// is aborted.
pub(super) async fn run(delivery: Arc<Delivery>, queue_name: String) {
    let queue = &delivery.queue;
    // Sends of the message at the front so far, for the log; retryable failures in a
    // row, for the backoff; failures to read or write the queue in a row.
    let mut attempt = 0u32;
    let mut retries = 0u32;
    let mut queue_failures = 0u32;
    let mut settle_at = Instant::now();
    loop {
        if queue.unsettled(&queue_name) > 0 && Instant::now() >= settle_at {
            match queue.settle(&queue_name).await {
                Ok(()) => queue_failures = 0,
                Err(error) => {
                    queue_failures += 1;
                    settle_at = Instant::now() + jittered_backoff(queue_failures);
                    tracing::warn!(
                        message = "Cannot write deliveries and dead letters to the queue yet; will retry.",
                        robot = %queue_name,
                        unsettled = queue.unsettled(&queue_name),
                        %error,
                    );
                }
            }
        }
        if queue.unsettled(&queue_name) > 0 {
            tokio::select! {
                () = queue.wait_pending(&queue_name) => {}
                () = tokio::time::sleep_until(settle_at) => continue,
            }
        } else {
            queue.wait_pending(&queue_name).await;
        }

        let snapshot = delivery.config.snapshot();
        let Some(queued_for) = snapshot.config.robots.get(&queue_name).cloned() else {
            let removed = "the robot is no longer configured";
            match bury_all(&delivery, &queue_name, "robot_removed", removed).await {
                Ok(()) => queue_failures = 0,
                Err(error) => {
                    queue_failures += 1;
                    tracing::error!(message = "Cannot read the queue.", robot = %queue_name, %error);
                    tokio::time::sleep(jittered_backoff(queue_failures)).await;
                }
            }
            continue;
        };
        let now = Instant::now();
        let Some((robot_config, gate, slot)) = pool::sender(&delivery, &snapshot, &queued_for, now)
        else {
            // A pool none of whose robots is configured: validation refuses it.
            tokio::time::sleep(MAX_BACKOFF).await;
            continue;
        };
        if slot > now {
            // Waited for without the lane, and looked at again with the config then in
            // force.
            tokio::time::sleep_until(slot).await;
            continue;
        }

        let held = gate.lane().await;
        let room = pool::room(&delivery, &snapshot, &queued_for, &gate);
        let chosen = choose(
            &delivery,
            &snapshot,
            (&queue_name, &robot_config),
            &gate,
            room,
        )
        .await;
        let send = match chosen {
            Ok(Some(send)) => send,
            Ok(None) => continue,
            Err(error) => {
                drop(held);
                queue_failures += 1;
                tracing::error!(message = "Cannot read the queue.", robot = %queue_name, %error);
                tokio::time::sleep(jittered_backoff(queue_failures)).await;
                continue;
            }
        };
        queue_failures = 0;
        // Alone, only a passthrough webhook can have taken the slot since it was seen
        // free; in a cluster, the other replicas' sends are known only now.
        let deadline = snapshot.cluster.is_none().then(Instant::now);
        let Ok(reserved) = limit::reserve(&held, &snapshot, &robot_config, deadline).await else {
            continue;
        };
        attempt += 1;
        let result = super::send(
            reserved,
            &*snapshot.sender,
            snapshot.cluster.as_deref(),
            &robot_config,
            &delivery.metrics,
            (&send.message, send.post(&delivery.cards, &robot_config)),
        )
        .await;
        drop(held);
        let Err(failure) = result else {
            delivered(&delivery, (&queue_name, &robot_config), &send, attempt).await;
            if queued_for.pool_members().is_some() {
                delivery.pools.delivered(&queue_name, &robot_config.name);
            }
            (attempt, retries) = (0, 0);
            continue;
        };
        if pool::passes_on(&delivery, &queued_for, &robot_config, &failure) {
            continue;
        }
        let retry = failure.retry;
        let given_up = failed(
            &delivery,
            (&queue_name, &robot_config),
            &send,
            failure,
            attempt,
        )
        .await;
        if given_up {
            (attempt, retries) = (0, 0);
        } else if retry == Retry::Later {
            retries += 1;
            tokio::time::sleep(jittered_backoff(retries)).await;
        } else {
            retries = 0;
        }
    }
}

/// Picks what to send: the oldest group's newest state, or a digest when more are pending
/// than the window can take (or than [`limit::STORM`]). It reads one message, or a batch
/// when it may make a digest or when a group has more than one message pending (so that
/// the newer supersedes the older, [`supersede`]); it buries what it read whose newest
/// state is older than `max_age`. Everything fits the gate's size budget.
async fn choose(
    delivery: &Delivery,
    snapshot: &Snapshot,
    (queue_name, robot): (&str, &Robot),
    gate: &Gate,
    room: usize,
) -> Result<Option<Outgoing>, QueueError> {
    let queue = &delivery.queue;
    let depth = queue.depth(queue_name);
    let many = limit::pace(depth, room, robot.rate_limit) == Take::Digest
        || queue.has_repeated_group(queue_name);
    let pending = queue
        .oldest(queue_name, if many { BATCH } else { 1 })
        .await?;
    let unread = depth.saturating_sub(pending.len());
    let budget = gate.size_budget(robot);
    let zone = &snapshot.config.timezone;
    let max_age = snapshot.config.max_age;
    let now = Timestamp::now();
    let (expired, live): (Vec<Line>, Vec<Line>) = supersede::supersede(pending, zone, budget)
        .into_iter()
        .partition(|line| {
            now.duration_since(line.latest.accepted_at)
                .try_into()
                .is_ok_and(|age: Duration| age > max_age)
        });
    bury(
        delivery,
        queue_name,
        expired.into_iter().flat_map(Line::into_envelopes).collect(),
        "expired",
        "older than delivery.max_age",
    )
    .await;
    let merge = limit::pace(live.len() + unread, room, robot.rate_limit) == Take::Digest;
    if !merge || live.len() <= 1 {
        return Ok(live
            .into_iter()
            .next()
            .map(|first| Outgoing::line(first, zone, robot, budget)));
    }
    let in_digest: Vec<_> = live.iter().map(|line| line.for_digest(zone)).collect();
    let Some(digest) = digest::digests(&in_digest, robot.primary_keyword(), budget)
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    drop(in_digest);
    let mut merged: Vec<Line> = live
        .into_iter()
        .filter(|line| digest.ids.contains(&line.latest.id))
        .collect();
    if merged.len() == 1 {
        // Not even two groups fit the budget.
        let only = merged.remove(0);
        return Ok(Some(Outgoing::line(only, zone, robot, budget)));
    }
    let superseded = merged.iter().map(|line| line.superseded.len()).sum();
    let envelopes: Vec<Envelope> = merged.into_iter().flat_map(Line::into_envelopes).collect();
    delivery
        .metrics
        .coalesced_messages
        .get_or_create(&RobotLabels {
            robot: queue_name.to_owned(),
        })
        .inc_by(envelopes.len() as u64);
    Ok(Some(Outgoing {
        strategy: "digest".to_owned(),
        message: digest.message,
        superseded,
        card: false,
        envelopes,
    }))
}

/// Acknowledges what DingTalk accepted from `robot`, in the queue `queue_name`.
async fn delivered(
    delivery: &Delivery,
    (queue_name, robot): (&str, &Robot),
    send: &Outgoing,
    attempt: u32,
) {
    if let Err(error) = delivery.queue.ack(queue_name, send.ids()).await {
        tracing::error!(
            message = "Cannot remove delivered messages from the queue file yet; they are kept from being sent again, and removed once the file can be written.",
            robot = %robot.name,
            %error,
        );
    }
    if send.superseded > 0 {
        delivery
            .metrics
            .messages_superseded
            .get_or_create(&RobotLabels {
                robot: queue_name.to_owned(),
            })
            .inc_by(send.superseded as u64);
    }
    tracing::info!(
        message = "Delivered message.",
        robot = %robot.name,
        queue = %queue_name,
        strategy = %send.strategy,
        alerts = send.alerts(),
        merged = send.envelopes.len(),
        superseded = send.superseded,
        attempt,
    );
}

/// Logs a failed send of `robot`, and buries its messages (in the queue `queue_name`) if it
/// cannot succeed; returns whether it did.
async fn failed(
    delivery: &Delivery,
    (queue_name, robot): (&str, &Robot),
    send: &Outgoing,
    failure: Failure,
    attempt: u32,
) -> bool {
    let Failure {
        error, hint, retry, ..
    } = failure;
    let hopeless = match retry {
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
            format!("{error}; {hint}")
        }
        Retry::Shorter if send.message.size() < MIN_BUDGET => format!(
            "{error}; DingTalk refused even a {}-byte message as too long",
            send.message.size()
        ),
        Retry::Later => {
            tracing::warn!(
                message = "Send failed; will retry.",
                robot = %robot.name,
                strategy = %send.strategy,
                attempt,
                %error,
                %hint,
            );
            return false;
        }
        Retry::AfterPause | Retry::Shorter => return false,
    };
    let reason = error.metric_code();
    bury(
        delivery,
        queue_name,
        send.envelopes.clone(),
        &reason,
        &hopeless,
    )
    .await;
    true
}

/// Moves `messages` to the dead letters, counted under `reason`.
async fn bury(
    delivery: &Delivery,
    robot: &str,
    messages: Vec<Envelope>,
    reason: &str,
    detail: &str,
) {
    if messages.is_empty() {
        return;
    }
    let count = messages.len();
    if let Err(error) = delivery
        .queue
        .bury(robot, messages, format!("{reason}: {detail}"))
        .await
    {
        tracing::error!(
            message = "Cannot move messages to the dead letters in the queue file yet; they are kept from being sent again, and moved once the file can be written.",
            %robot,
            %error,
        );
    }
    delivery.metrics.dead_letter(robot, reason, count);
    tracing::error!(
        message = "Messages moved to the dead letters.",
        %robot,
        count,
        %reason,
        %detail,
    );
}

/// Moves every pending message of `robot` to the dead letters.
async fn bury_all(
    delivery: &Delivery,
    robot: &str,
    reason: &str,
    detail: &str,
) -> Result<(), QueueError> {
    let messages = delivery.queue.oldest(robot, usize::MAX).await?;
    bury(delivery, robot, messages, reason, detail).await;
    Ok(())
}
