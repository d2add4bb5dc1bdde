//! Cards drawn again when people act on their group: an acknowledgement, a silence or its
//! end, made through a link or a command, shows on the group's card within seconds, not at
//! its next notification. Each open card's latest notification ([`Cards::sources`]) is
//! planned again with how the group is handled now, and the card's message goes the way
//! every message goes: queued (and then through the gate, retries and dead letters), or
//! sent at once in passthrough mode.
//!
//! [`Cards::sources`]: crate::deliver::cards::Cards::sources

use std::sync::Arc;

use jiff::Timestamp;

use super::passthrough::send_message;
use super::plan::{self, PlannedMessage};
use super::{ack_groups, acknowledgement, queued};
use crate::act::Act;
use crate::config::DeliveryMode;
use crate::deliver::Delivery;
use crate::deliver::cards::CardGroup;
use crate::ingest::Notification;
use crate::render::Handling;
use crate::snapshot::Snapshot;

/// Draws again the cards whose group `matches`, showing it `silenced` (by whom, until
/// when) if it was just silenced; returns how many messages went. Failures are logged.
pub async fn cards(
    delivery: &Arc<Delivery>,
    act: &Act,
    snapshot: &Snapshot,
    mode: DeliveryMode,
    matches: impl Fn(&Notification) -> bool,
    silenced: Option<(String, Timestamp)>,
) -> usize {
    let sources = delivery.cards.sources(snapshot.cluster.as_deref()).await;
    let mut drawn = 0;
    for source in sources.iter().filter(|s| matches(&s.notification)) {
        let notification = &source.notification;
        let handling = Handling {
            acknowledged: acknowledgement(act, ack_groups(snapshot, notification).as_ref()),
            silenced: silenced.clone(),
        };
        let planned: Vec<PlannedMessage> =
            plan::plan_handled(&snapshot.config, notification, handling, Timestamp::now())
                .messages
                .into_iter()
                .filter(|m| m.robot == source.robot && m.strategy == source.strategy)
                // The robot may have stopped sending cards since (a reload).
                .filter(|m| {
                    let robot = snapshot.config.robots.get(&m.robot);
                    robot.is_some_and(|robot| robot.sends_cards(&m.message))
                })
                .collect();
        drawn += planned.len();
        let outcome = match mode {
            DeliveryMode::Queued => queued::requeue(delivery, snapshot, planned).await,
            DeliveryMode::Passthrough => send_now(delivery, snapshot, planned).await,
        };
        if let Err(error) = outcome {
            tracing::error!(
                message = "Cannot draw a card again; it changes with the group's next notification.",
                robot = %source.robot,
                %error,
            );
        }
    }
    drawn
}

async fn send_now(
    delivery: &Delivery,
    snapshot: &Snapshot,
    planned: Vec<PlannedMessage>,
) -> Result<(), String> {
    for message in planned {
        let Some(robot) = snapshot.config.robots.get(&message.robot) else {
            continue;
        };
        let card = CardGroup::of(robot, &message.message, &message.summary);
        let alerts = message.summary.alerts.len();
        send_message(
            delivery,
            snapshot,
            robot,
            (&message.message, card),
            &message.strategy,
            alerts,
        )
        .await
        .map_err(|refused| format!("{refused:?}"))?;
    }
    Ok(())
}
