//! What the bridge does with a notification it took from a webhook. [`notification`] is
//! the whole path in one place: in queued mode ([`queued`]) the messages are routed,
//! rendered and durably queued for the robots' workers; in passthrough mode
//! ([`passthrough`]) they are sent at once and DingTalk's verdict passed back. Both plan
//! the same way ([`plan`]), apply the duplicate policy of [`dedup`], and count what
//! routing did.
//!
//! Everything here runs on one configuration snapshot. It knows nothing of HTTP: the
//! server maps the outcomes to status codes.

pub mod dedup;
pub mod passthrough;
pub mod plan;
pub mod queued;
pub mod refresh;

use std::sync::Arc;

use jiff::Timestamp;

use crate::act::{Act, link};
use crate::config::{Config, DeliveryMode};
use crate::deliver::Delivery;
use crate::deliver::cards::CardGroup;
use crate::escalate::Escalations;
use crate::ingest::{Notification, Status};
use crate::metrics::{HeldLabels, Metrics, StatusLabels, StrategyLabels};
use crate::queue::QueueError;
use crate::render::Handling;
use crate::snapshot::Snapshot;
use dedup::Dedup;
use passthrough::Passed;
use plan::PlannedMessage;

/// What became of a notification.
#[derive(Debug)]
pub enum Accepted {
    /// Queued mode: how many messages were queued, 0 for a duplicate.
    Queued(usize),
    /// Passthrough mode: what DingTalk made of the messages.
    Passed(Passed),
}

/// The path of one notification through the bridge, in the order it runs, once the
/// webhook's body is parsed ([`crate::ingest`]):
///
/// 1. Duplicate suppression ([`dedup`]): the copy an Alertmanager HA pair's other member
///    sends is taken once (with `cluster:`, once by all replicas).
/// 2. The plan ([`plan`]): each alert routed through the strategies ([`crate::route`]),
///    one message rendered per (robot, strategy) ([`crate::render`]); with `actions:`,
///    each carrying the links that act on the group ([`crate::act`]) and who acknowledged
///    it.
/// 3. Queued mode ([`queued`]): the messages committed to each robot's queue
///    ([`crate::queue`]) before the webhook gets its 200, and the robots' workers woken
///    ([`crate::deliver`]). A worker waits for a slot in the robot's window
///    ([`crate::limit`]), lets a group's newer state supersede its older ones, merges a
///    backlog into digests, sends ([`crate::dingtalk`]), then acknowledges, retries,
///    pauses, sends shorter or gives up as DingTalk's answer says.
///
///    Passthrough mode ([`passthrough`]): each message sent now through the same gates
///    and [`crate::deliver::send`]; DingTalk's verdict is the webhook's answer.
/// 4. A group that resolved is no longer acknowledged: the message just sent was the
///    last to say who acknowledged it.
/// 5. Escalation ([`crate::escalate`]): a firing group of a strategy with `escalate:`
///    steps opens an episode, from now; a resolved one ends its episodes.
#[expect(
    clippy::too_many_arguments,
    reason = "the stages a notification passes through, and what it is"
)]
pub async fn notification(
    delivery: &Arc<Delivery>,
    dedup: &Arc<Dedup>,
    act: &Act,
    escalations: &Escalations,
    snapshot: &Snapshot,
    mode: DeliveryMode,
    notification: &Notification,
    direct_robot: Option<&str>,
) -> Result<Accepted, AcceptError> {
    let now = Timestamp::now();
    let groups = ack_groups(snapshot, notification);
    let handling = Handling {
        acknowledged: acknowledgement(act, groups.as_ref()),
        silenced: None,
    };
    let accepted = match mode {
        DeliveryMode::Queued => queued::accept(
            delivery,
            dedup,
            snapshot,
            notification,
            direct_robot,
            handling,
        )
        .await
        .map(Accepted::Queued),
        DeliveryMode::Passthrough => passthrough::send_now(
            delivery,
            dedup,
            snapshot,
            notification,
            direct_robot,
            handling,
        )
        .await
        .map(Accepted::Passed),
    }?;
    let sent = matches!(
        accepted,
        Accepted::Queued(1..) | Accepted::Passed(Passed::Delivered { .. })
    );
    if sent {
        escalations.accepted(snapshot, notification, now).await;
    }
    let resolved = sent && notification.status == Status::Resolved;
    for group in groups.iter().flatten().filter(|_| resolved) {
        if let Err(error) = act.acks.clear(group, snapshot.cluster.as_deref()).await {
            tracing::error!(message = "Cannot forget the acknowledgement of a resolved group.", %group, %error);
        }
    }
    Ok(accepted)
}

/// The ids the group of `notification` is acknowledged under ([`link::ack_ids`]), when
/// anything in the configuration acknowledges groups.
fn ack_groups(snapshot: &Snapshot, notification: &Notification) -> Option<[String; 2]> {
    snapshot.config.acknowledges().then(|| {
        let n = notification;
        link::ack_ids(&n.group_key, &n.receiver, &n.group_labels)
    })
}

/// Who acknowledged the group with the ids `groups` ([`ack_groups`]), and when, if anyone
/// did.
fn acknowledgement(act: &Act, groups: Option<&[String; 2]>) -> Option<(String, Timestamp)> {
    groups?
        .iter()
        .find_map(|group| act.acks.get(group))
        .map(|ack| (ack.by, ack.at))
}

/// Keeps `notification` as what the cards among `planned` are drawn from, on a task of
/// its own (the webhook's answer does not wait for it).
fn remember_cards(
    delivery: &Arc<Delivery>,
    snapshot: &Snapshot,
    notification: &Notification,
    planned: &[PlannedMessage],
) {
    let robots = &snapshot.config.robots;
    let sources: Vec<(String, String)> = planned
        .iter()
        .filter(|m| {
            let robot = robots.get(&m.robot);
            robot.is_some_and(|r| CardGroup::of(r, &m.message, &m.summary).is_some())
        })
        .map(|m| (m.robot.clone(), m.strategy.clone()))
        .collect();
    if sources.is_empty() {
        return;
    }
    let (delivery, cluster) = (delivery.clone(), snapshot.cluster.clone());
    let notification = notification.clone();
    tokio::spawn(async move {
        for (robot, strategy) in sources {
            let cluster = cluster.as_deref();
            delivery
                .cards
                .remember(&robot, &strategy, &notification, cluster)
                .await;
        }
    });
}

/// Why a notification was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// `/dingtalk/{robot}/send` named a robot the config does not have.
    #[error("unknown robot {0:?}")]
    UnknownRobot(String),
    /// Another replica of the cluster is queueing the same notification and has not
    /// finished; the retry will be a duplicate, or queued here if that replica failed.
    #[error("another replica is queueing the same notification; retry")]
    QueueingElsewhere,
    /// The queue refused the messages: full, or its store failing.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Routes and renders `notification` (or, with `direct_robot`, renders all of it for
/// that robot), counting what routing did, and keeping it for the cards it is shown on.
fn messages(
    delivery: &Arc<Delivery>,
    snapshot: &Snapshot,
    notification: &Notification,
    direct_robot: Option<&str>,
    handling: Handling,
) -> Result<Vec<PlannedMessage>, AcceptError> {
    let (metrics, config) = (&delivery.metrics, &snapshot.config);
    for alert in &notification.alerts {
        metrics
            .alerts_received
            .get_or_create(&StatusLabels {
                status: alert.status.as_str().to_owned(),
            })
            .inc();
    }
    let planned = match direct_robot {
        Some(robot) => vec![
            plan::plan_direct(config, notification, robot, handling, Timestamp::now())
                .ok_or_else(|| AcceptError::UnknownRobot(robot.to_owned()))?,
        ],
        None => {
            let plan = plan::plan_handled(config, notification, handling, Timestamp::now());
            count_routes(metrics, config, notification, &plan);
            plan.messages
        }
    };
    remember_cards(delivery, snapshot, notification, &planned);
    Ok(planned)
}

fn count_routes(
    metrics: &Metrics,
    config: &Config,
    notification: &Notification,
    plan: &plan::Plan,
) {
    let routes = &plan.routes;
    for strategies in &routes.matched {
        for strategy in strategies {
            metrics
                .alerts_routed
                .get_or_create(&StrategyLabels {
                    strategy: strategy.clone(),
                })
                .inc();
        }
    }
    for (alert, strategy, why) in &routes.held {
        let strategy = &config.strategies[*strategy].name;
        metrics
            .alerts_held
            .get_or_create(&HeldLabels {
                strategy: strategy.clone(),
                reason: why.as_str().to_owned(),
            })
            .inc();
        tracing::debug!(
            message = "Alert matched but held back.",
            alertname = notification.alerts[*alert].name(),
            %strategy,
            reason = why.as_str(),
        );
    }
    for alert in &routes.unrouted {
        metrics.alerts_unrouted.inc();
        tracing::info!(
            message = "Alert matched no strategy.",
            alertname = notification.alerts[*alert].name(),
            labels = ?notification.alerts[*alert].labels,
        );
    }
}
