//! Queued mode: the messages of a notification are committed to the queue before the
//! webhook is answered 200, and the robots' workers deliver them from there. The commit
//! and what follows it run in a task of their own, so a client that goes away mid-commit
//! leaves neither a stored message without a woken worker nor a duplicate claim for a
//! notification that was not stored.

use std::sync::Arc;

use jiff::Timestamp;

use super::{AcceptError, plan};
use crate::dedup::{self, Dedup};
use crate::deliver::Delivery;
use crate::payload::Notification;
use crate::plan::PlannedMessage;
use crate::queue::{Envelope, QueueError};
use crate::runtime::Runtime;

/// Routes, renders and durably queues `notification` (or, with `direct_robot`, all of it
/// for that robot) under `runtime`; returns how many messages were queued, 0 for a
/// duplicate.
pub async fn accept(
    delivery: &Arc<Delivery>,
    dedup: &Arc<Dedup>,
    runtime: &Runtime,
    notification: &Notification,
    direct_robot: Option<&str>,
) -> Result<usize, AcceptError> {
    let config = &runtime.config;
    let identity = dedup::identity(notification, direct_robot);
    if !dedup.claim(&identity, config.dedup_window) {
        return Ok(0);
    }
    let planned = match plan(&delivery.metrics, config, notification, direct_robot) {
        Ok(planned) => planned,
        Err(error) => {
            dedup.forget(&identity);
            return Err(error);
        }
    };
    let count = planned.len();
    let robots: Vec<String> = planned.iter().map(|m| m.robot.clone()).collect();
    let accepted_at = Timestamp::now();
    let envelopes = planned
        .into_iter()
        .map(|m| envelope(delivery, m, accepted_at))
        .collect();
    let committed = tokio::spawn({
        let (delivery, dedup) = (delivery.clone(), dedup.clone());
        let max_pending = config.max_pending;
        async move {
            if let Err(error) = delivery.queue.push(envelopes, max_pending).await {
                // Not queued, so Alertmanager's retry must not count as a duplicate.
                dedup.forget(&identity);
                return Err(error);
            }
            for robot in robots {
                delivery.wake(&robot);
            }
            Ok(())
        }
    });
    match committed.await {
        Ok(result) => result.map(|()| count).map_err(AcceptError::from),
        // Only a panic in the task: the messages may or may not be stored.
        Err(error) => Err(AcceptError::Queue(QueueError::Store(format!(
            "queueing failed: {error}"
        )))),
    }
}

fn envelope(delivery: &Delivery, message: PlannedMessage, accepted_at: Timestamp) -> Envelope {
    Envelope {
        id: delivery.queue.next_id(),
        robot: message.robot,
        strategy: message.strategy,
        message: message.message,
        summary: message.summary,
        accepted_at,
    }
}
