//! Passthrough mode: the messages of a notification are sent before the webhook is
//! answered, through the same gates and [`deliver::send`] as the queue's workers, and the
//! webhook gets DingTalk's verdict, so Alertmanager owns the retries. Nothing is queued.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{AcceptError, messages};
use crate::accept::dedup::{self, Dedup};
use crate::deliver::cards::CardGroup;
use crate::deliver::{self, Delivery, Failure, Post};
use crate::dingtalk::{MIN_BUDGET, Message, Retry, Robot};
use crate::ingest::Notification;
use crate::limit;
use crate::render::{self, Handling};
use crate::snapshot::Snapshot;

/// What became of a notification sent at once.
#[derive(Debug)]
pub enum Passed {
    /// DingTalk accepted every message (none when routing sent nothing).
    Delivered {
        /// How many messages.
        messages: usize,
    },
    /// A copy of a notification delivered within `delivery.dedup_window`.
    Duplicate,
    /// The robot's rate window, or a pause, has no slot within
    /// `delivery.passthrough_max_wait`.
    RateLimited {
        /// The robot.
        robot: String,
        /// When the next slot opens, from now.
        wait: Duration,
    },
    /// Another send to the robot held its lane for all of `delivery.passthrough_max_wait`.
    Busy {
        /// The robot.
        robot: String,
    },
    /// DingTalk refused a message or could not be reached; messages before it were
    /// delivered and are sent again when Alertmanager retries.
    Failed {
        /// The robot.
        robot: String,
        /// What DingTalk said, and whether a retry can help.
        failure: Failure,
    },
}

/// Sends the messages of `notification` (or, with `direct_robot`, all of it to that robot)
/// now, within the robots' rate windows, and says what DingTalk made of them; the messages
/// say how people are `handling` the group.
pub async fn send_now(
    delivery: &Arc<Delivery>,
    dedup: &Dedup,
    snapshot: &Snapshot,
    notification: &Notification,
    direct_robot: Option<&str>,
    handling: Handling,
) -> Result<Passed, AcceptError> {
    let config = &snapshot.config;
    let identity = dedup::identity(notification, direct_robot);
    if dedup.seen(&identity, config.dedup_window) {
        return Ok(Passed::Duplicate);
    }
    let cluster = snapshot
        .cluster
        .as_deref()
        .filter(|_| !config.dedup_window.is_zero());
    if let Some(cluster) = cluster
        && cluster.seen(&identity).await == Some(true)
    {
        dedup.duplicate(&identity);
        return Ok(Passed::Duplicate);
    }
    let planned = messages(delivery, snapshot, notification, direct_robot, handling)?;
    let mut delivered = 0;
    for message in &planned {
        let Some(robot) = config.robots.get(&message.robot) else {
            continue;
        };
        let alerts = message.summary.alerts.len();
        let card = CardGroup::of(robot, &message.message, &message.summary);
        let strategy = &message.strategy;
        let sent = match robot.pool_members() {
            None => {
                let message = (&message.message, card);
                send_message(delivery, snapshot, robot, message, strategy, alerts).await
            }
            Some(_) => {
                send_through_pool(
                    delivery,
                    snapshot,
                    robot,
                    &message.message,
                    strategy,
                    alerts,
                )
                .await
            }
        };
        if let Err(refused) = sent {
            return Ok(refused);
        }
        delivered += 1;
    }
    // Remembered only once delivered: Alertmanager's retry of a failed one is no
    // duplicate.
    dedup.remember(&identity, config.dedup_window);
    if let Some(cluster) = cluster {
        let group = dedup::group_of(&identity);
        cluster.confirm(&identity, group, config.dedup_window).await;
    }
    Ok(Passed::Delivered {
        messages: delivered,
    })
}

/// Sends one message (of `strategy`, carrying `alerts`) to the pool `pool`: through its
/// members in the order [`deliver::pool::Members::order`] gives, each passed over as the
/// queue's worker would pass it over (paused, failing, refused while another may
/// deliver); the first other answer, or the last member's, is the pool's.
async fn send_through_pool(
    delivery: &Delivery,
    snapshot: &Snapshot,
    pool: &Robot,
    message: &Message,
    strategy: &str,
    alerts: usize,
) -> Result<(), Passed> {
    let members = pool.pool_members().unwrap_or_default();
    let order = delivery
        .pools
        .order(snapshot, &delivery.gates, members, Instant::now());
    let mut last = Passed::Busy {
        robot: pool.name.clone(),
    };
    for (member, _) in order {
        let sent = send_message(
            delivery,
            snapshot,
            &member,
            (message, None),
            strategy,
            alerts,
        );
        match sent.await {
            Ok(()) => {
                delivery.pools.delivered(&pool.name, &member.name);
                return Ok(());
            }
            Err(Passed::Failed { robot, failure }) => {
                if !deliver::pool::passes_on(delivery, pool, &member, &failure) {
                    return Err(Passed::Failed { robot, failure });
                }
                last = Passed::Failed { robot, failure };
            }
            Err(other) => last = other,
        }
    }
    Err(last)
}

/// Sends one message (of `strategy`, carrying `alerts`, for the log), shortened as often
/// as DingTalk says it is too long; it waits for the robot's lane and slot up to
/// `passthrough_max_wait`.
pub async fn send_message(
    delivery: &Delivery,
    snapshot: &Snapshot,
    robot: &Robot,
    (message, card): (&Message, Option<CardGroup<'_>>),
    strategy: &str,
    alerts: usize,
) -> Result<(), Passed> {
    let gate = delivery.gate(&robot.name);
    let limit = robot.rate_limit;
    let now = Instant::now();
    let deadline = now + snapshot.config.passthrough_max_wait;
    let rate_limited = |slot: Instant| {
        delivery.metrics.message(&robot.name, "retried");
        Passed::RateLimited {
            robot: robot.name.clone(),
            wait: slot.saturating_duration_since(Instant::now()),
        }
    };
    // Refused at once, without waiting for a lane another send holds.
    let slot = gate.next_slot(limit, now);
    if slot > deadline {
        return Err(rate_limited(slot));
    }
    let Some(lane) = gate.lane_until(deadline).await else {
        delivery.metrics.message(&robot.name, "retried");
        return Err(Passed::Busy {
            robot: robot.name.clone(),
        });
    };
    let mut message = render::shorten(message, robot, gate.size_budget(robot));
    let post = match card {
        Some(group) => Post::Card(&delivery.cards, group),
        None => Post::Message,
    };
    loop {
        let reserved = limit::reserve(&lane, snapshot, robot, Some(deadline))
            .await
            .map_err(rate_limited)?;
        let sent = deliver::send(
            reserved,
            &*snapshot.sender,
            snapshot.cluster.as_deref(),
            robot,
            &delivery.metrics,
            (&message, post),
        )
        .await;
        match sent {
            Ok(()) => {
                tracing::info!(
                    message = "Delivered message.",
                    robot = %robot.name,
                    %strategy,
                    alerts,
                );
                return Ok(());
            }
            Err(failure) if failure.retry == Retry::Shorter && message.size() >= MIN_BUDGET => {
                message = render::shorten(&message, robot, failure.budget);
            }
            Err(failure) => {
                tracing::warn!(
                    message = "Send failed; answering Alertmanager with the error.",
                    robot = %robot.name,
                    error = %failure.error,
                    hint = %failure.hint,
                );
                return Err(Passed::Failed {
                    robot: robot.name.clone(),
                    failure,
                });
            }
        }
    }
}
